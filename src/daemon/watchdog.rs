//! `request-timeout` (mod_wsgi WSGIDaemonProcess request-timeout): a thread
//! of each daemon process that watches how long its requests run. When one
//! runs longer, it writes the Python stack of every thread of the process
//! to the error log (as `faulthandler.dump_traceback(all_threads=True)`),
//! answers that request with a 504 through the Apache child, and has the
//! process replaced: the other requests get `shutdown-timeout` to finish.

use super::process::{recycle, Pool, Recycle};
use super::serve::Context;
use crate::apache::{self, Level};
use rwsgi_core::wire::{Encoder, FailReason};
use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

extern "C" {
    /// CPython's faulthandler core (exported): writes the traceback of
    /// every thread of `interp` to `fd`; safe without the GIL.
    fn _Py_DumpTracebackThreads(
        fd: std::ffi::c_int,
        interp: *mut pyo3_ffi::PyInterpreterState,
        current: *mut pyo3_ffi::PyThreadState,
    ) -> *const std::ffi::c_char;
}

/// Runs until the process recycles itself; returns after one timeout.
pub fn watch(pool: &Pool, cx: &Context) {
    let limit = cx.group.config.request_timeout;
    let tick = (limit / 10).clamp(Duration::from_millis(50), Duration::from_millis(500));
    loop {
        std::thread::sleep(tick);
        if pool.recycle.load(std::sync::atomic::Ordering::SeqCst) != Recycle::NONE {
            return;
        }
        let overdue = pool
            .active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flatten()
            .find(|(since, _)| since.elapsed() > limit)
            .map(|(since, conn)| (since.elapsed(), conn.clone()));
        let Some((ran, conn)) = overdue else { continue };
        let pid = std::process::id();
        let group = &cx.group.config.name;
        apache::log_s(
            cx.server,
            Level::Error,
            0,
            &format!(
                "RWSGI0036: a request in daemon process {pid} of group {group:?} has run {:.1} s, longer than request-timeout ({} s); the stacks of its threads follow, then the process is replaced",
                ran.as_secs_f64(),
                limit.as_secs()
            ),
        );
        for line in stacks(cx) {
            apache::log_s(cx.server, Level::Error, 0, &format!("RWSGI0036: {line}"));
        }
        // Answer the hung request now (504), unless its thread is in the
        // middle of a write; then socket-timeout ends it on the other side.
        if let Ok(mut st) = conn.try_lock() {
            let mut e = Encoder::new();
            e.failed(
                FailReason::Timeout,
                format!("request ran {:.1} s", ran.as_secs_f64()).as_bytes(),
            );
            let _ = st.conn.write_all(&e.buf);
            st.broken = true;
        }
        recycle(pool, Recycle::REQUEST_TIMEOUT);
        return;
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
