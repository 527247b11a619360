//! `mod_wsgi.server_metrics()`: Apache's scoreboard (the data mod_status
//! shows) as a dict, in mod_wsgi 6's shape: server-level fields and a
//! `processes` list, each process with a `workers` list.
//!
//! Gated as in mod_wsgi: `WSGIServerMetrics On` in embedded mode,
//! `WSGIDaemonProcess ... server-metrics=On` for a daemon process group
//! (independently). Returns `None` when not allowed.
//!
//! Daemon processes: Apache creates its scoreboard (anonymous shared memory)
//! after the configuration pass, when rwsgi has already forked the daemon
//! processes, so they cannot see it. When a group has `server-metrics=On`,
//! the Apache parent maps a shared mirror at post_config, before the forks
//! ([`prepare_mirror`]); a thread in each Apache child copies the scoreboard
//! into it once a second (one copy a second in all, [`start_mirror_thread`]),
//! and a daemon process reads the mirror with Apache's own scoreboard
//! functions (`ap_init_scoreboard` on the mirror). Its data is then at most
//! about a second old; `None` until the first copy.

use crate::ffi;
use pyo3_ffi::*;
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

static ALLOWED: AtomicBool = AtomicBool::new(false);

/// Allows or forbids `server_metrics()` in this process: a daemon process
/// calls it with its group's `server-metrics=`.
pub fn allow(on: bool) {
    ALLOWED.store(on, Ordering::Relaxed);
}

/// `WSGIServerMetrics` (configuration pass, Apache parent; inherited by
/// Apache's children; daemon processes override it with [`allow`]).
pub fn set_embedded(on: bool) {
    ALLOWED.store(on, Ordering::Relaxed);
}

/// The mirror: a header (the time of the last copy, us, an `AtomicU64`)
/// then a copy of the scoreboard's memory; null when no group needs one.
static MIRROR: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
/// Bytes of the mirror's scoreboard part (`ap_calc_scoreboard_size()`).
static MIRROR_LEN: AtomicUsize = AtomicUsize::new(0);
/// Header bytes before the scoreboard copy (keeps it aligned).
const HEADER: usize = 64;

unsafe extern "C" fn unmap_mirror(p: *mut c_void) -> ffi::apr_status_t {
    let len = MIRROR_LEN.load(Ordering::Relaxed);
    if MIRROR.load(Ordering::Relaxed) == p as *mut u8 {
        MIRROR.store(std::ptr::null_mut(), Ordering::Relaxed);
    }
    libc::munmap(p, HEADER + len);
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Apache parent, post_config of the real start, before the daemon
/// processes fork: maps the scoreboard mirror when `needed` (a group has
/// `server-metrics=On`), unmapped when `pconf` is cleared. Errors: the
/// mapping failed (returned as text; daemons then get `None`).
pub unsafe fn prepare_mirror(pconf: *mut ffi::apr_pool_t, needed: bool) -> Result<(), String> {
    MIRROR.store(std::ptr::null_mut(), Ordering::Relaxed);
    if !needed {
        return Ok(());
    }
    let len = ffi::ap_calc_scoreboard_size().max(0) as usize;
    let p = libc::mmap(
        std::ptr::null_mut(),
        HEADER + len,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return Err(format!(
            "cannot map {} bytes for the scoreboard copy of server-metrics=On: {}",
            HEADER + len,
            std::io::Error::last_os_error()
        ));
    }
    MIRROR_LEN.store(len, Ordering::Relaxed);
    MIRROR.store(p as *mut u8, Ordering::Relaxed);
    ffi::apr_pool_cleanup_register(
        pconf,
        p,
        Some(unmap_mirror),
        Some(ffi::apr_pool_cleanup_null),
    );
    Ok(())
}

fn last_copy() -> Option<&'static AtomicU64> {
    let p = MIRROR.load(Ordering::Relaxed);
    // SAFETY: the header is 64 aligned bytes of the live mapping.
    (!p.is_null()).then(|| unsafe { &*(p as *const AtomicU64) })
}

/// Apache child, child_init: when the mirror exists, starts the thread that
/// copies the scoreboard into it (the children take turns: one copy a
/// second in all).
pub fn start_mirror_thread() {
    let p = MIRROR.load(Ordering::Relaxed) as usize;
    if p == 0 {
        return;
    }
    let len = MIRROR_LEN.load(Ordering::Relaxed);
    let _ = std::thread::Builder::new()
        .name("rwsgi-scoreboard".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(250));
            let Some(stamp) = last_copy() else { return };
            let now = super::metrics::wall_us();
            let last = stamp.load(Ordering::Relaxed);
            if now.saturating_sub(last) < 900_000
                || stamp
                    .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            // SAFETY: the scoreboard is this child's live mapping of
            // ap_calc_scoreboard_size() bytes from its global record; the
            // mirror has as many after its header.
            unsafe {
                if ffi::ap_exists_scoreboard_image() == 0 {
                    continue;
                }
                let g = ffi::ap_get_scoreboard_global();
                if g.is_null() || ffi::ap_calc_scoreboard_size().max(0) as usize != len {
                    continue;
                }
                std::ptr::copy_nonoverlapping(g as *const u8, (p + HEADER) as *mut u8, len);
            }
        });
}

/// A daemon process without a scoreboard of its own: points Apache's
/// scoreboard functions at the mirror once it holds a copy. Returns whether
/// a scoreboard is readable now.
unsafe fn attach_mirror() -> bool {
    static ATTACHED: std::sync::Once = std::sync::Once::new();
    if ffi::ap_exists_scoreboard_image() != 0 {
        return true;
    }
    let p = MIRROR.load(Ordering::Relaxed);
    match last_copy() {
        Some(stamp) if stamp.load(Ordering::Acquire) != 0 => {}
        _ => return false,
    }
    if ffi::ap_calc_scoreboard_size().max(0) as usize != MIRROR_LEN.load(Ordering::Relaxed) {
        return false;
    }
    ATTACHED.call_once(|| ffi::ap_init_scoreboard(p.add(HEADER) as *mut c_void));
    ffi::ap_exists_scoreboard_image() != 0
}

/// mod_status's letter for a worker status (`SERVER_DEAD` .. `SERVER_IDLE_KILL`).
fn status_letter(status: u8) -> &'static str {
    const LETTERS: [&str; 11] = [".", "S", "_", "R", "W", "K", "L", "D", "C", "G", "I"];
    LETTERS.get(status as usize).copied().unwrap_or("?")
}

unsafe fn set(d: *mut PyObject, key: &CStr, value: *mut PyObject) {
    if value.is_null() {
        PyErr_Clear();
        return;
    }
    PyDict_SetItemString(d, key.as_ptr(), value);
    Py_DECREF(value);
}

unsafe fn seconds(t: ffi::apr_time_t) -> *mut PyObject {
    PyFloat_FromDouble(t as f64 / 1e6)
}

/// A NUL-terminated field of a scoreboard record, as str (latin-1).
unsafe fn text(buf: &[c_char]) -> *mut PyObject {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    PyUnicode_DecodeLatin1(
        bytes.as_ptr() as *const c_char,
        bytes.len() as Py_ssize_t,
        c"replace".as_ptr(),
    )
}

unsafe fn worker(process: i32, thread: i32) -> *mut PyObject {
    let mut ws: ffi::worker_score = std::mem::zeroed();
    ffi::ap_copy_scoreboard_worker(&mut ws, process, thread);
    let d = PyDict_New();
    if d.is_null() {
        return d;
    }
    set(d, c"thread_num", PyLong_FromLong(ws.thread_num as _));
    set(d, c"generation", PyLong_FromLong(ws.generation as _));
    set(
        d,
        c"status",
        PyUnicode_FromString(
            std::ffi::CString::new(status_letter(ws.status))
                .expect("no NUL")
                .as_ptr(),
        ),
    );
    set(
        d,
        c"access_count",
        PyLong_FromUnsignedLong(ws.access_count as _),
    );
    set(
        d,
        c"bytes_served",
        PyLong_FromLongLong(ws.bytes_served as _),
    );
    set(d, c"start_time", seconds(ws.start_time));
    set(d, c"stop_time", seconds(ws.stop_time));
    set(d, c"last_used", seconds(ws.last_used));
    set(d, c"client", text(&ws.client64));
    set(d, c"request", text(&ws.request));
    set(d, c"vhost", text(&ws.vhost));
    d
}

/// The scoreboard as mod_wsgi's `server_metrics()` returns it, or `None`.
/// GIL held; returns a new reference (NULL with an exception on failure).
pub unsafe fn server_metrics() -> *mut PyObject {
    if !ALLOWED.load(Ordering::Relaxed) || !attach_mirror() {
        return Py_NewRef(Py_None());
    }
    let gs = ffi::ap_get_scoreboard_global();
    if gs.is_null() {
        return Py_NewRef(Py_None());
    }
    let g = &*gs;
    let d = PyDict_New();
    if d.is_null() {
        return d;
    }
    let now = ffi::apr_time_now();
    set(d, c"server_limit", PyLong_FromLong(g.server_limit as _));
    set(d, c"thread_limit", PyLong_FromLong(g.thread_limit as _));
    set(
        d,
        c"running_generation",
        PyLong_FromLong(g.running_generation as _),
    );
    set(d, c"restart_time", seconds(g.restart_time));
    set(d, c"current_time", seconds(now));
    set(
        d,
        c"running_time",
        PyLong_FromLongLong(((now - g.restart_time) / 1_000_000) as _),
    );
    let processes = PyList_New(0);
    if processes.is_null() {
        Py_DECREF(d);
        return processes;
    }
    for i in 0..g.server_limit {
        let ps = ffi::ap_get_scoreboard_process(i);
        if ps.is_null() {
            continue;
        }
        let p = &*ps;
        let pd = PyDict_New();
        if pd.is_null() {
            break;
        }
        set(pd, c"process_num", PyLong_FromLong(i as _));
        set(pd, c"pid", PyLong_FromLong(p.pid as _));
        set(pd, c"generation", PyLong_FromLong(p.generation as _));
        set(pd, c"quiescing", PyBool_FromLong((p.quiescing != 0) as _));
        let workers = PyList_New(0);
        if !workers.is_null() {
            for j in 0..g.thread_limit {
                let w = worker(i, j);
                if !w.is_null() {
                    PyList_Append(workers, w);
                    Py_DECREF(w);
                }
            }
        }
        set(pd, c"workers", workers);
        PyList_Append(processes, pd);
        Py_DECREF(pd);
    }
    set(d, c"processes", processes);
    d
}
