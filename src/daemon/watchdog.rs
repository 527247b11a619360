//! The monitor thread of each daemon process: the limits of mod_wsgi's
//! `WSGIDaemonProcess` that end a process, checked a few times a second.
//!
//! - `request-timeout`: a request ran longer. The Python stack of every
//!   thread goes to the error log (as `faulthandler.dump_traceback`), the
//!   request is answered 504 through the Apache child; with
//!   `interrupt-timeout`, `mod_wsgi.RequestTimeout` is raised in its thread
//!   and the process lives on if the request ends within that time;
//!   otherwise the process is replaced (the others get `shutdown-timeout`).
//! - `inactivity-timeout`: no request for that long: replaced.
//! - `restart-interval`: the process is that old: replaced gracefully.
//! - `startup-timeout`: the WSGI script keeps failing to load for that long
//!   since the first failure: replaced (a fresh interpreter may succeed).
//! - `deadlock-timeout`: a second thread takes the GIL every second; when
//!   it could not for that long, the stacks are logged and the process
//!   exits at once (a deadlocked interpreter cannot drain).

use super::process::{recycle, ExitCode, Pool, Recycle};
use super::serve::Context;
use crate::apache::{self, Level};
use crate::python::{self, GilGuard};
use rwsgi_core::wire::{Encoder, FailReason};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

extern "C" {
    /// CPython's faulthandler core (exported): writes the traceback of
    /// every thread of `interp` to `fd`; safe without the GIL.
    fn _Py_DumpTracebackThreads(
        fd: std::ffi::c_int,
        interp: *mut pyo3_ffi::PyInterpreterState,
        current: *mut pyo3_ffi::PyThreadState,
    ) -> *const std::ffi::c_char;
}

fn log(cx: &Context, level: Level, msg: &str) {
    apache::log_s(cx.server, level, 0, msg);
}

fn log_stacks(cx: &Context, id: &str) {
    for line in stacks(cx) {
        log(cx, Level::Error, &format!("{id}: {line}"));
    }
}

/// Milliseconds since `base`, for the GIL ticker's timestamp.
fn ms_since(base: Instant) -> u64 {
    base.elapsed().as_millis() as u64
}

/// A request timed out and was interrupted: which worker, which request
/// (its start), and when.
struct Interrupted {
    worker: usize,
    started: Instant,
    at: Instant,
    /// The request's connection, answered 504 if the interrupt fails.
    conn: super::serve::SharedConn,
}

/// Runs until the process recycles itself (it returns then) or exits it
/// (deadlock).
pub fn watch(pool: &Pool, cx: &Context) {
    let c = &cx.group.config;
    let base = Instant::now();
    let gil_tick = std::sync::Arc::new(AtomicU64::new(0));
    if !c.deadlock_timeout.is_zero() {
        let tick = std::sync::Arc::clone(&gil_tick);
        std::thread::spawn(move || {
            let Ok(rt) = python::runtime() else { return };
            loop {
                std::thread::sleep(Duration::from_secs(1));
                drop(GilGuard::acquire(rt));
                tick.store(ms_since(base), Ordering::Relaxed);
            }
        });
    }
    let mut interrupted: Option<Interrupted> = None;
    let pid = std::process::id();
    let group = &c.name;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if pool.recycle.load(Ordering::SeqCst) != Recycle::NONE {
            return;
        }
        // deadlock-timeout
        if !c.deadlock_timeout.is_zero() {
            let held = Duration::from_millis(
                ms_since(base).saturating_sub(gil_tick.load(Ordering::Relaxed)),
            );
            if held > c.deadlock_timeout + Duration::from_secs(1) {
                log(cx, Level::Error, &format!(
                    "RWSGI0054: daemon process {pid} of group {group:?} could not take the Python GIL for {:.0} s, longer than deadlock-timeout ({} s): the interpreter is deadlocked or a C extension holds the GIL; the stacks of its threads follow, then the process exits and is replaced",
                    held.as_secs_f64(), c.deadlock_timeout.as_secs()));
                log_stacks(cx, "RWSGI0054");
                super::shared::mark_current_exit(ExitCode::Deadlock as i32);
                // SAFETY: ends the process at once; nothing can drain.
                unsafe { libc::_exit(ExitCode::Deadlock as i32) };
            }
        }
        // request-timeout (and interrupt-timeout)
        if let Some(i) = &interrupted {
            let still = pool.active.lock().unwrap_or_else(|e| e.into_inner())[i.worker]
                .as_ref()
                .is_some_and(|(since, _)| *since == i.started);
            if !still {
                log(cx, Level::Info, &format!(
                    "RWSGI0036: the interrupted request in daemon process {pid} of group {group:?} ended within interrupt-timeout; the process keeps serving"));
                interrupted = None;
            } else if i.at.elapsed() > c.interrupt_timeout {
                log(cx, Level::Error, &format!(
                    "RWSGI0036: the interrupted request in daemon process {pid} of group {group:?} did not end within interrupt-timeout ({} s); the process is replaced",
                    c.interrupt_timeout.as_secs()));
                answer_timeout(&i.conn, i.started.elapsed());
                recycle(pool, Recycle::REQUEST_TIMEOUT);
                return;
            }
        } else if !c.request_timeout.is_zero() {
            if let Some(i) = request_timeout(pool, cx) {
                interrupted = Some(i);
            }
            if pool.recycle.load(Ordering::SeqCst) != Recycle::NONE {
                return;
            }
        }
        // restart-interval
        if !c.restart_interval.is_zero() && base.elapsed() > c.restart_interval {
            log(cx, Level::Info, &format!(
                "RWSGI0053: daemon process {pid} of group {group:?} has run for restart-interval ({} s); replacing it",
                c.restart_interval.as_secs()));
            recycle(pool, Recycle::RESTART_INTERVAL);
            return;
        }
        // inactivity-timeout
        if !c.inactivity_timeout.is_zero() {
            if let Some(idle) = pool.idle_for() {
                if idle > c.inactivity_timeout {
                    log(cx, Level::Info, &format!(
                        "RWSGI0053: daemon process {pid} of group {group:?} had no request for inactivity-timeout ({} s); replacing it",
                        c.inactivity_timeout.as_secs()));
                    recycle(pool, Recycle::INACTIVITY);
                    return;
                }
            }
        }
        // startup-timeout
        if !c.startup_timeout.is_zero() {
            if let Some((since, script)) = python::load_failing_since() {
                if since.elapsed() > c.startup_timeout {
                    log(cx, Level::Error, &format!(
                        "RWSGI0052: daemon process {pid} of group {group:?} could not load {script:?} within startup-timeout ({} s) of the first failure (the RWSGI0010/RWSGI0012 lines above have the traceback); replacing it with a fresh interpreter",
                        c.startup_timeout.as_secs()));
                    recycle(pool, Recycle::STARTUP);
                    return;
                }
            }
        }
    }
}

/// Checks for a request running past request-timeout: logs it with the
/// stacks, answers it 504, and either interrupts it (interrupt-timeout:
/// returned) or recycles the process.
fn request_timeout(pool: &Pool, cx: &Context) -> Option<Interrupted> {
    let c = &cx.group.config;
    let limit = c.request_timeout;
    let overdue = pool
        .active
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
        .find_map(|(w, a)| {
            a.as_ref()
                .filter(|(since, _)| since.elapsed() > limit)
                .map(|(since, conn)| (w, *since, conn.clone()))
        });
    let (worker, since, conn) = overdue?;
    let ran = since.elapsed();
    let pid = std::process::id();
    let group = &c.name;
    let then = if c.interrupt_timeout.is_zero() {
        "then the process is replaced".to_string()
    } else {
        format!(
            "then mod_wsgi.RequestTimeout is raised in its thread, which has interrupt-timeout ({} s) to end",
            c.interrupt_timeout.as_secs()
        )
    };
    log(cx, Level::Error, &format!(
        "RWSGI0036: a request in daemon process {pid} of group {group:?} has run {:.1} s, longer than request-timeout ({} s); the stacks of its threads follow, {then}",
        ran.as_secs_f64(), limit.as_secs()));
    log_stacks(cx, "RWSGI0036");
    if !c.interrupt_timeout.is_zero() {
        // The request is answered by its own thread once the exception
        // unwinds it (504, as mod_wsgi), or at the end of interrupt-timeout.
        let ident = pool.thread_ident(worker);
        if ident != 0 && python::interrupt_thread(cx.rt, ident, "RequestTimeout") {
            log(cx, Level::Info, &format!(
                "RWSGI0091: Injected RequestTimeout into thread {ident} of daemon process {pid} of group {group:?} (its request ran {:.1} s, longer than request-timeout); it has interrupt-timeout ({} s) to end",
                ran.as_secs_f64(), c.interrupt_timeout.as_secs()));
            return Some(Interrupted {
                worker,
                started: since,
                at: Instant::now(),
                conn,
            });
        }
    }
    answer_timeout(&conn, ran);
    recycle(pool, Recycle::REQUEST_TIMEOUT);
    None
}

/// Answers a hung request 504 through the Apache child, unless its thread
/// is in the middle of a write (then socket-timeout ends it on the other
/// side). `ran`: how long it has run.
fn answer_timeout(conn: &super::serve::SharedConn, ran: Duration) {
    if let Ok(mut st) = conn.try_lock() {
        let mut e = Encoder::new();
        e.failed(
            FailReason::Timeout,
            format!(
                "it ran {:.1} s; the daemon logged its threads' stacks and is being replaced",
                ran.as_secs_f64()
            )
            .as_bytes(),
        );
        let _ = st.conn.write_all(&e.buf);
        st.broken = true;
    }
}

/// The traceback of every Python thread of this process, line by line.
fn stacks(cx: &Context) -> Vec<String> {
    // SAFETY: memfd_create with a literal name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"rwsgi-stacks".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return vec!["(cannot dump stacks: memfd_create failed)".into()];
    }
    // SAFETY: fd is a fresh descriptor owned by this File.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    // SAFETY: faulthandler's dump reads the interpreter's thread states
    // without the GIL, as it does from a signal handler.
    let err =
        unsafe { _Py_DumpTracebackThreads(file.as_raw_fd(), cx.rt.interp, std::ptr::null_mut()) };
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if !err.is_null() {
        // SAFETY: CPython returns a static message.
        let msg = unsafe { std::ffi::CStr::from_ptr(err) }.to_string_lossy();
        lines.push(format!("(stack dump incomplete: {msg})"));
    }
    lines
}
