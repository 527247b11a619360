//! `mod_wsgi.server_metrics()`: Apache's scoreboard (the data mod_status
//! shows) as a dict, in mod_wsgi 6's shape: server-level fields and a
//! `processes` list, each process with a `workers` list.
//!
//! Gated as in mod_wsgi: `WSGIServerMetrics On` in embedded mode,
//! `WSGIDaemonProcess ... server-metrics=On` for a daemon process group
//! (independently). Returns `None` when not allowed or when this process has
//! no scoreboard: Apache creates it after the configuration is read, so
//! daemon processes forked with the configuration (at start-up, and their
//! standbys) do not see it; a daemon process started later does.

use crate::ffi;
use pyo3_ffi::*;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

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
    if !ALLOWED.load(Ordering::Relaxed) || ffi::ap_exists_scoreboard_image() == 0 {
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
