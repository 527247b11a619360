//! mod_wsgi 6's Python metrics and events API on top of [`super::metrics`]:
//! the module functions `start_recording_metrics()`, `request_metrics()`,
//! `process_metrics()`, `server_metrics()` and `request_data()`, and the
//! request hooks that publish `request_started`, `response_started`,
//! `request_finished` and `request_exception` through the Python half in
//! `bootstrap.py` (subscriber lists, `active_requests`). Every function here
//! requires the GIL.
//!
//! Names, return shapes and semantics follow mod_wsgi 6's "Internal Metrics
//! API" and "Subscribing to Events" documents. The hooks do nothing unless
//! [`metrics::detailed`] (a subscriber exists or recording was started).

use super::metrics::{self, Finished, Times, Tracker};
use crate::apache::LogTarget;
use crate::python::object::{self, Owned};
use pyo3_ffi::*;
use std::ffi::{c_void, CStr};
use std::ptr;

unsafe fn set(d: *mut PyObject, key: &CStr, value: *mut PyObject) {
    if value.is_null() {
        PyErr_Clear();
        return;
    }
    PyDict_SetItemString(d, key.as_ptr(), value);
    Py_DECREF(value);
}

unsafe fn int(n: i64) -> *mut PyObject {
    PyLong_FromLongLong(n)
}

unsafe fn seconds(us: u64) -> *mut PyObject {
    PyFloat_FromDouble(us as f64 / 1e6)
}

unsafe fn float(x: f64) -> *mut PyObject {
    PyFloat_FromDouble(x)
}

unsafe fn list_of(values: impl Iterator<Item = *mut PyObject>) -> *mut PyObject {
    let l = PyList_New(0);
    if l.is_null() {
        return l;
    }
    for v in values {
        if !v.is_null() {
            PyList_Append(l, v);
            Py_DECREF(v);
        }
    }
    l
}

/// A function of the `_rwsgi_bootstrap` module of this interpreter.
unsafe fn bootstrap_fn(name: &CStr) -> Option<Owned> {
    let modules = PySys_GetObject(c"modules".as_ptr());
    if modules.is_null() {
        return None;
    }
    let m = PyDict_GetItemString(modules, c"_rwsgi_bootstrap".as_ptr());
    if m.is_null() {
        return None;
    }
    let f = Owned::new(PyObject_GetAttrString(m, name.as_ptr()));
    if f.is_none() {
        PyErr_Clear();
    }
    f
}

/// Calls bootstrap function `name` with `args` (a new tuple reference, or
/// null); logs an exception it raises (RWSGI0085). Returns its result.
unsafe fn call_bootstrap(name: &CStr, args: *mut PyObject) -> Option<Owned> {
    let args = Owned::new(args)?;
    let f = bootstrap_fn(name)?;
    let r = Owned::new(PyObject_Call(f.as_ptr(), args.as_ptr(), ptr::null_mut()));
    if r.is_none() {
        crate::python::log_exception(
            LogTarget::None,
            &format!(
                "RWSGI0085: publishing the mod_wsgi event {:?} failed",
                name.to_str().unwrap_or("?").trim_start_matches('_')
            ),
        );
    }
    r
}

/// The instants of a request from its environ source (daemon mode: the
/// `mod_wsgi.*_start` items, microseconds).
pub fn times_of(source: &super::environ::Source<'_>) -> Times {
    match source {
        super::environ::Source::Facts(f) => Times {
            request_start: f.request_start_us,
            ..Times::default()
        },
        super::environ::Source::Pairs(pairs) => {
            let get = |name: &[u8]| -> u64 {
                pairs
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
                    .unwrap_or(0)
            };
            Times {
                request_start: get(b"mod_wsgi.request_start"),
                queue_start: get(b"mod_wsgi.queue_start"),
                daemon_start: get(b"mod_wsgi.daemon_start"),
            }
        }
    }
}

/// Start of a request, after its environ was built: makes its
/// `request_data` dict and publishes `request_started`. Returns the
/// application to call: `app`, or the `application_object` a subscriber
/// put in its place.
pub unsafe fn request_started(t: &Tracker, env: *mut PyObject, app: Owned) -> Owned {
    if !t.detailed() {
        return app;
    }
    let data = PyDict_New();
    if data.is_null() {
        PyErr_Clear();
        return app;
    }
    metrics::set_request_data(data as *mut c_void);
    let mut rid = PyDict_GetItemString(env, c"mod_wsgi.request_id".as_ptr());
    if rid.is_null() {
        rid = Py_None();
    }
    let tm = &t.times;
    let args = PyTuple_New(9);
    if args.is_null() {
        PyErr_Clear();
        return app;
    }
    for (i, v) in [
        Py_NewRef(rid),
        int(t.thread_id() as i64),
        Py_NewRef(data),
        Py_NewRef(env),
        Py_NewRef(app.as_ptr()),
        seconds(tm.request_start),
        seconds(tm.queue_start),
        seconds(tm.daemon_start),
        seconds(t.application_start),
    ]
    .into_iter()
    .enumerate()
    {
        PyTuple_SetItem(args, i as Py_ssize_t, v);
    }
    match call_bootstrap(c"_request_started", args) {
        Some(replacement) if replacement.as_ptr() != Py_None() => replacement,
        _ => app,
    }
}

/// `start_response` was called: publishes `response_started` (status line,
/// headers list, exc_info or None) when a subscriber exists.
pub unsafe fn response_started(status: *mut PyObject, headers: *mut PyObject, exc: *mut PyObject) {
    if !metrics::subscribed() || metrics::request_data_slot().is_err() {
        return;
    }
    let exc = if exc.is_null() { Py_None() } else { exc };
    let args = PyTuple_Pack(3, status, headers, exc);
    call_bootstrap(c"_response_started", args);
}

/// An exception is set that escaped the application (or its iterable or
/// `close()`): publishes `request_exception` with it as `exception_info`,
/// leaving the exception set for the caller to log.
pub unsafe fn exception_raised() {
    if !metrics::subscribed() || PyErr_Occurred().is_null() {
        return;
    }
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    PyErr_NormalizeException(&mut t, &mut v, &mut tb);
    if !tb.is_null() && !v.is_null() {
        PyException_SetTraceback(v, tb);
    }
    let none = Py_None();
    let or_none = |p: *mut PyObject| if p.is_null() { none } else { p };
    let info = PyTuple_Pack(3, or_none(t), or_none(v), or_none(tb));
    if !info.is_null() {
        let args = PyTuple_Pack(1, info);
        Py_DECREF(info);
        call_bootstrap(c"_request_exception", args);
    }
    PyErr_Restore(t, v, tb);
}

/// End of a request's Python part: publishes `request_finished` with what
/// `f` measured (when detail was gathered), then releases the request's
/// `request_data` dict.
pub unsafe fn request_finished(end: (Option<Finished>, *mut c_void), env: *mut PyObject) {
    let (f, data) = (end.0, end.1 as *mut PyObject);
    if let Some(f) = f {
        publish_finished(&f, env, data);
    }
    if !data.is_null() {
        Py_DECREF(data);
    }
}

unsafe fn publish_finished(f: &Finished, env: *mut PyObject, data: *mut PyObject) {
    let mut rid = if env.is_null() {
        ptr::null_mut()
    } else {
        PyDict_GetItemString(env, c"mod_wsgi.request_id".as_ptr())
    };
    if rid.is_null() {
        rid = Py_None();
    }
    let data = if data.is_null() { Py_None() } else { data };
    let app_us = f.application_finish.saturating_sub(f.application_start);
    let (user, system) = (f.cpu.0.min(app_us), f.cpu.1);
    let system = system.min(app_us.saturating_sub(user));
    // In the order of bootstrap._FINISHED_KEYS.
    let values = [
        Py_NewRef(rid),
        int(f.thread_id as i64),
        Py_NewRef(data),
        seconds(f.times.request_start),
        seconds(f.times.queue_start),
        seconds(f.times.daemon_start),
        seconds(f.application_start),
        seconds(f.application_finish),
        seconds(app_us),
        int(f.input.ops as i64),
        int(f.input.bytes as i64),
        seconds(f.input.time_us),
        int(f.output.ops as i64),
        int(f.output.bytes as i64),
        seconds(f.output.time_us),
        int(f.status as i64),
        seconds(user),
        seconds(system),
        seconds(user + system),
        seconds(f.gil.0),
        int(f.gil.1 as i64),
    ];
    let args = PyTuple_New(values.len() as Py_ssize_t);
    if args.is_null() {
        PyErr_Clear();
        return;
    }
    for (i, v) in values.into_iter().enumerate() {
        PyTuple_SetItem(args, i as Py_ssize_t, v);
    }
    call_bootstrap(c"_request_finished", args);
}

// ---- module functions -------------------------------------------------------------

/// This process's resident set size and its peak, bytes.
pub(crate) fn memory() -> (i64, i64) {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as i64;
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<i64>().ok())
        .map(|p| p * page)
        .unwrap_or(0);
    // SAFETY: getrusage writes one rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let max = if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } == 0 {
        ru.ru_maxrss * 1024
    } else {
        0
    };
    (rss, max.max(rss))
}

unsafe extern "C" fn start_recording_metrics(
    _m: *mut PyObject,
    _a: *mut PyObject,
) -> *mut PyObject {
    crate::apache::guard(
        "mod_wsgi.start_recording_metrics",
        ptr::null_mut(),
        || unsafe {
            metrics::start_recording();
            Py_NewRef(Py_None())
        },
    )
}

unsafe extern "C" fn enable_events(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi._enable_events", ptr::null_mut(), || unsafe {
        metrics::set_subscribed();
        Py_NewRef(Py_None())
    })
}

unsafe extern "C" fn shutdown_reason(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi._shutdown_reason", ptr::null_mut(), || unsafe {
        object::str_from(metrics::shutdown_reason()).into_ptr()
    })
}

unsafe extern "C" fn request_data(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi.request_data", ptr::null_mut(), || unsafe {
        match metrics::request_data_slot() {
            Err(()) => object::raise(
                PyExc_RuntimeError,
                "mod_wsgi.request_data() called outside of a request (no active request on this thread)",
            ),
            Ok(p) if !p.is_null() => Py_NewRef(p as *mut PyObject),
            Ok(_) => {
                let d = PyDict_New();
                if !d.is_null() {
                    metrics::set_request_data(d as *mut c_void);
                    Py_INCREF(d);
                }
                d
            }
        }
    })
}

unsafe extern "C" fn process_metrics(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi.process_metrics", ptr::null_mut(), || unsafe {
        if !metrics::recording() {
            return Py_NewRef(Py_None());
        }
        let d = PyDict_New();
        if d.is_null() {
            return d;
        }
        let c = metrics::process_counters();
        let now = metrics::wall_us();
        let threads = metrics::threads();
        let (rss, max_rss) = memory();
        let (user, system) = metrics::cpu_us(false);
        set(d, c"pid", int(std::process::id() as i64));
        set(d, c"restart_time", seconds(c.start_us));
        set(d, c"current_time", seconds(now));
        set(
            d,
            c"running_time",
            int((now.saturating_sub(c.start_us) / 1_000_000) as i64),
        );
        set(d, c"request_count", int(c.request_count as i64));
        set(d, c"request_busy_time", seconds(c.busy_us));
        set(d, c"request_threads", int(threads.len() as i64));
        set(d, c"active_requests", int(c.active));
        set(d, c"cpu_user_time", seconds(user));
        set(d, c"cpu_system_time", seconds(system));
        set(d, c"cpu_time", seconds(user + system));
        set(d, c"memory_rss", int(rss));
        set(d, c"memory_max_rss", int(max_rss));
        let list = list_of(threads.iter().map(|t| {
            let e = PyDict_New();
            if !e.is_null() {
                set(e, c"thread_id", int(t.id as i64));
                set(
                    e,
                    c"request_count",
                    int(t.requests.load(std::sync::atomic::Ordering::Relaxed) as i64),
                );
            }
            e
        }));
        set(d, c"threads", list);
        d
    })
}

unsafe fn phase_keys(d: *mut PyObject, name: &str, p: &metrics::Phase, count: u64, absent: bool) {
    let key = |suffix: &str| std::ffi::CString::new(format!("{name}{suffix}")).expect("no NUL");
    let none = || Py_NewRef(Py_None());
    let mean = if absent {
        none()
    } else if count == 0 {
        float(0.0)
    } else {
        float(p.total_us as f64 / 1e6 / count as f64)
    };
    set(d, &key(""), mean);
    let (min, max) = if absent || p.n == 0 {
        (none(), none())
    } else {
        (int(p.min_us as i64), int(p.max_us as i64))
    };
    set(d, &key("_min_us"), min);
    set(d, &key("_max_us"), max);
    set(
        d,
        &key("_buckets"),
        list_of(p.buckets.iter().map(|&n| int(n as i64))),
    );
}

unsafe extern "C" fn request_metrics(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi.request_metrics", ptr::null_mut(), || unsafe {
        let Some(iv) = metrics::drain() else {
            return Py_NewRef(Py_None());
        };
        let d = PyDict_New();
        if d.is_null() {
            return d;
        }
        let period_us = iv.stop_us.saturating_sub(iv.start_us).max(1);
        let period = period_us as f64 / 1e6;
        let max = metrics::max_threads();
        set(d, c"pid", int(std::process::id() as i64));
        set(d, c"start_time", seconds(iv.start_us));
        set(d, c"stop_time", seconds(iv.stop_us));
        set(d, c"sample_period", float(period));
        set(d, c"request_count", int(iv.count as i64));
        set(d, c"request_throughput", float(iv.count as f64 / period));
        set(d, c"request_threads_maximum", int(max as i64));
        set(
            d,
            c"request_threads_started",
            int(iv.threads_started as i64),
        );
        let active = iv
            .slots
            .iter()
            .filter(|s| s.completed > 0 || s.current_us > 0)
            .count();
        set(d, c"request_threads_active", int(active as i64));
        let busy: u64 = iv.slots.iter().map(|s| s.busy_us).sum();
        set(
            d,
            c"capacity_utilization",
            float(busy as f64 / (period_us as f64 * max as f64)),
        );
        let completed = || list_of(iv.slots.iter().map(|s| int(s.completed as i64)));
        set(d, c"request_threads_completed", completed());
        set(d, c"request_threads_buckets", completed());
        set(
            d,
            c"request_threads_busy_time",
            list_of(iv.slots.iter().map(|s| seconds(s.busy_us))),
        );
        set(
            d,
            c"request_threads_cpu_time",
            list_of(iv.slots.iter().map(|s| seconds(s.cpu_us))),
        );
        set(
            d,
            c"request_threads_current_elapsed",
            list_of(iv.slots.iter().map(|s| seconds(s.current_us))),
        );
        set(
            d,
            c"request_threads_max_duration",
            list_of(iv.slots.iter().map(|s| seconds(s.max_duration_us))),
        );
        let embedded = !metrics::in_daemon();
        for (i, name) in metrics::PHASE_NAMES.iter().enumerate() {
            let daemon_only = i == 1 || i == 2;
            if let Some(p) = iv.phases.get(i) {
                phase_keys(d, name, p, iv.count, daemon_only && embedded);
            }
        }
        set(d, c"gil_wait_count", int(iv.gil_count as i64));
        set(d, c"input_bytes", int(iv.input.0 as i64));
        set(d, c"input_reads", int(iv.input.1 as i64));
        set(d, c"output_bytes", int(iv.output.0 as i64));
        set(d, c"output_writes", int(iv.output.1 as i64));
        for (i, key) in [
            c"status_1xx",
            c"status_2xx",
            c"status_3xx",
            c"status_4xx",
            c"status_5xx",
        ]
        .into_iter()
        .enumerate()
        {
            set(d, key, int(iv.status[i] as i64));
        }
        let (user, system) = (
            iv.cpu.0 as f64 / 1e6 / period,
            iv.cpu.1 as f64 / 1e6 / period,
        );
        for (key, v) in [
            (c"cpu_user_utilization", user),
            (c"cpu_system_utilization", system),
            (c"cpu_utilization", user + system),
            (c"cpu_user_time", user),
            (c"cpu_system_time", system),
            (c"cpu_time", user + system),
        ] {
            set(d, key, float(v));
        }
        let (rss, max_rss) = memory();
        set(d, c"memory_rss", int(rss));
        set(d, c"memory_max_rss", int(max_rss));
        d
    })
}

unsafe extern "C" fn server_metrics(_m: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi.server_metrics", ptr::null_mut(), || unsafe {
        super::scoreboard::server_metrics()
    })
}

const fn method(
    name: &'static CStr,
    f: unsafe extern "C" fn(*mut PyObject, *mut PyObject) -> *mut PyObject,
    doc: &'static CStr,
) -> PyMethodDef {
    PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunction: f },
        ml_flags: METH_NOARGS,
        ml_doc: doc.as_ptr(),
    }
}

static mut METHODS: [PyMethodDef; 8] = [
    method(
        c"start_recording_metrics",
        start_recording_metrics,
        c"Start per-request metrics accounting (idempotent); request_metrics() and process_metrics() return data from then on.",
    ),
    method(
        c"request_metrics",
        request_metrics,
        c"Metrics of the interval since the previous call (drained), or None unless recording.",
    ),
    method(
        c"process_metrics",
        process_metrics,
        c"Process-lifetime aggregates and current state, or None unless recording.",
    ),
    method(
        c"server_metrics",
        server_metrics,
        c"The Apache scoreboard (every process and worker), or None when not enabled.",
    ),
    method(
        c"request_data",
        request_data,
        c"The per-request scratchpad dict of this thread's request; RuntimeError outside a request.",
    ),
    method(
        c"_enable_events",
        enable_events,
        c"Note that an event subscriber exists (internal).",
    ),
    method(
        c"_shutdown_reason",
        shutdown_reason,
        c"process_stopping's shutdown_reason (internal).",
    ),
    PyMethodDef::zeroed(),
];

/// Adds the metrics functions to module `m`. GIL held.
pub unsafe fn add_functions(m: *mut PyObject) -> Result<(), String> {
    let defs = ptr::addr_of_mut!(METHODS) as *mut PyMethodDef;
    let mut i = 0;
    while !(*defs.add(i)).ml_name.is_null() {
        let def = defs.add(i);
        let f = Owned::new(PyCFunction_NewEx(def, ptr::null_mut(), m))
            .ok_or("cannot create a mod_wsgi metrics function")?;
        PyModule_AddObject(m, (*def).ml_name, f.into_ptr());
        i += 1;
    }
    Ok(())
}
