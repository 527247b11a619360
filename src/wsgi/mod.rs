//! Running one request through a WSGI application (PEP 3333), whatever
//! carries it: load the script, build the environ, call the application,
//! send its response, always call `close()`. Embedded mode calls [`run`]
//! from Apache's handler (`crate::apache::request`), daemon mode from a
//! daemon process's connection loop (`crate::daemon`); the request's body
//! and response go through the [`transport`] traits.
//!
//! Failures are reported as what they are: an error-log line with a stable
//! `RWSGI` identifier naming the script, the value and the rule broken (plus
//! the traceback), a 500 when nothing was sent yet, or a cut connection
//! once the response has started. The server keeps serving either way.

pub mod adapter;
pub mod counters;
pub mod environ;
pub mod errors;
pub mod file_wrapper;
pub mod input;
pub mod metrics;
pub mod metrics_api;
pub mod module;
pub mod scoreboard;
pub mod start_response;
pub mod telemetry;
pub mod transport;

use crate::apache::{Level, LogTarget};
use crate::python::object::{self, Owned};
use crate::python::{self, Gil, Runtime};
use adapter::{AdapterState, FinalPass, Finish, SendError};
use pyo3_ffi::*;
use std::ptr;
use transport::{BodyReader, ResponseWriter};

/// A request as the WSGI core runs it.
pub struct Request<'a> {
    /// The WSGI script file.
    pub script: &'a str,
    /// Its modification time (microseconds), for `WSGIScriptReloading`.
    pub script_mtime_us: i64,
    /// Check whether the script changed (`WSGIScriptReloading`).
    pub script_reloading: bool,
    /// What a changed script does: re-import (embedded mode) or restart
    /// the daemon process ([`Outcome::Restart`]).
    pub on_change: python::OnChange,
    /// Name of the WSGI callable in the script.
    pub callable_object: &'a str,
    /// Where log lines about the request go.
    pub log: LogTarget,
    /// A response to HEAD: a body shorter than Content-Length is correct.
    pub head_only: bool,
    /// The environ's contents.
    pub environ: environ::Source<'a>,
    /// The request body, and its length in bytes (`None`: chunked).
    pub body: (Box<dyn BodyReader>, Option<u64>),
    /// Where the response goes.
    pub output: Box<dyn ResponseWriter>,
}

/// How a request ended, for the transport to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response was sent (or cut off after it started, or the client went
    /// away): nothing more to send.
    Sent,
    /// It failed before anything was sent (logged): answer 500.
    Failed,
    /// Not run: the script changed and this daemon process restarts
    /// ([`python::OnChange::Restart`]); nothing was sent or read.
    Restart,
    /// `mod_wsgi.RequestTimeout` ended it before anything was sent (raised
    /// by request-timeout's interrupt or by the application; logged, no
    /// traceback): answer 504, as mod_wsgi does.
    TimedOut,
}

/// What is left of a request once its Python part is over: done by the
/// request thread after it released the GIL ([`RequestEnd::finish`]).
pub struct RequestEnd {
    /// The final batch of output, put off until the GIL is released.
    last_pass: Option<FinalPass>,
    /// The request's input, closed when dropped.
    input: Option<input::InputEnd>,
}

impl RequestEnd {
    fn nothing() -> RequestEnd {
        RequestEnd {
            last_pass: None,
            input: None,
        }
    }

    /// Waits for a `wsgi.input` read still running in an application
    /// thread (in daemon mode it needs the Apache child, which stops
    /// answering reads once it has the end of the response), then sends the
    /// final batch (its filters may block or, in embedded mode, run
    /// sub-requests). Call without the GIL, before the request ends.
    pub fn finish(self, log: LogTarget, script: &str) {
        drop(self.input);
        if let Some(last) = self.last_pass {
            if last.send().is_err() {
                log_client_gone(log, script);
            }
        }
    }
}

/// Runs `req` with the GIL held. Returns the outcome and what is left to do
/// once the GIL is released.
pub unsafe fn run(gil: &Gil, rt: &Runtime, req: Request<'_>) -> (Outcome, RequestEnd) {
    let script = req.script;
    let using = python::ScriptUse {
        path: script,
        mtime: req.script_mtime_us,
        reload: req.script_reloading,
        resource: Some(script),
        on_change: req.on_change,
        log: req.log,
    };
    let module = match python::script_module(gil, rt, &using) {
        Ok(m) => m,
        Err(python::ScriptError::Restart) => return (Outcome::Restart, RequestEnd::nothing()),
        Err(e) => {
            python::log_exception(req.log, &format!("RWSGI0010: {e}"));
            return (Outcome::Failed, RequestEnd::nothing());
        }
    };
    let Some(app) = find_callable(rt, module.as_ptr(), req.callable_object) else {
        PyErr_Clear();
        req.log.log(
            Level::Error,
            &format!(
                "RWSGI0011: target WSGI script {script:?} does not contain WSGI application {:?}",
                req.callable_object
            ),
        );
        return (Outcome::Failed, RequestEnd::nothing());
    };
    let (reader, length) = req.body;
    let (Some(input), Some(adapter), Some((errors, errors_log))) = (
        input::new_input(rt.input_type, reader, length),
        adapter::new_adapter(rt.adapter_type, req.output),
        errors::new_stream(rt.log_type, req.log),
    ) else {
        python::log_exception(req.log, "RWSGI0008: cannot create request objects");
        return (Outcome::Failed, RequestEnd::nothing());
    };
    let outcome = match environ::build_environ(rt, &req.environ, input.as_ptr(), errors.as_ptr()) {
        Ok(env) => {
            let tracker = metrics::Tracker::begin(|| metrics_api::times_of(&req.environ));
            environ::set_counters(
                rt,
                env.as_ptr(),
                tracker.thread_id() as u64,
                tracker.thread_requests(),
            );
            let app = metrics_api::request_started(&tracker, env.as_ptr(), app);
            let outcome = call_application(
                gil,
                rt,
                &req.log,
                req.head_only,
                script,
                app.as_ptr(),
                env.as_ptr(),
                adapter.as_ptr(),
            );
            let st = adapter::state(adapter.as_ptr());
            let status = st.status.as_ref().map_or(0, |s| s.0);
            let finished = tracker.end(input::io(input.as_ptr()), st.output_io(gil), status);
            metrics_api::request_finished(finished, env.as_ptr());
            outcome
        }
        Err(e) => {
            python::log_exception(
                req.log,
                &format!("RWSGI0008: cannot build the WSGI environ: {e}"),
            );
            Outcome::Failed
        }
    };
    // The request ends here for every object the application may keep:
    // each waits for a use in progress in another thread, then refuses.
    let input = Some(input::detach(input.as_ptr()));
    errors::expire(errors_log.as_ptr());
    let last_pass = adapter::state(adapter.as_ptr()).detach(gil);
    (outcome, RequestEnd { last_pass, input })
}

/// The WSGI callable `name` of a script module: a lookup in the module's
/// dict with a cached interned name, falling back to `getattr` (module
/// `__getattr__`). `None` (error cleared) when it does not exist. GIL held.
unsafe fn find_callable(rt: &Runtime, module: *mut PyObject, name: &str) -> Option<Owned> {
    let names = rt.callable_names.get();
    let key = match names.iter().find(|(n, _)| n == name) {
        Some((_, k)) => Owned::from_borrowed(k.as_ptr()),
        None => {
            let k = object::interned_str(name);
            if names.len() < 16 {
                names.push((name.to_string(), Owned::from_borrowed(k.as_ptr())));
            }
            k
        }
    };
    let dict = PyModule_GetDict(module);
    if !dict.is_null() {
        let f = PyDict_GetItemWithError(dict, key.as_ptr());
        if !f.is_null() {
            return Some(Owned::from_borrowed(f));
        }
    }
    PyErr_Clear();
    match object::lookup_attr(module, key.as_ptr()) {
        Ok(found) => found,
        Err(()) => {
            PyErr_Clear();
            None
        }
    }
}

/// What went wrong while producing the response body.
enum BodyError {
    /// A Python exception is set.
    Exception(String),
    /// A rule was broken; the message names value and rule.
    Rule(String),
    /// The client went away.
    ClientGone,
}

#[allow(clippy::too_many_arguments)]
unsafe fn call_application(
    gil: &Gil,
    rt: &Runtime,
    log: &LogTarget,
    head_only: bool,
    script: &str,
    app: *mut PyObject,
    env: *mut PyObject,
    adapter: *mut PyObject,
) -> Outcome {
    let args = [env, adapter];
    let result = PyObject_Vectorcall(app, args.as_ptr(), 2, ptr::null_mut());
    let st = adapter::state(adapter);
    let Some(result) = Owned::new(result) else {
        metrics_api::exception_raised();
        if request_timeout_raised(log, script) {
            return timed_out(gil, st);
        }
        python::log_exception(*log, &exception_line(script, ""));
        return fail_response(gil, st);
    };
    let outcome = send_body(gil, rt, st, result.as_ptr(), script);
    call_close(rt, log, script, result.as_ptr());
    match outcome {
        Ok(()) => {
            if let Err(SendError::ClientGone) = st.send(gil, &[], Finish::Eos) {
                log_client_gone(*log, script);
            }
            let sent = st.progress(gil);
            // A HEAD response carries the GET's Content-Length and no body
            // (RFC 9110 §9.3.2): short is correct there.
            if let Some(cl) = sent.content_length {
                if sent.bytes_sent < cl && !sent.client_gone && !head_only {
                    log.log(
                        Level::Warn,
                        &format!(
                            "RWSGI0025: WSGI application {script:?} declared Content-Length {cl} but produced {} bytes; \
                             the connection is closed after the response",
                            sent.bytes_sent
                        ),
                    );
                    st.close_connection(gil);
                }
            }
            Outcome::Sent
        }
        Err(e) => {
            match e {
                BodyError::Exception(msg) => {
                    metrics_api::exception_raised();
                    if request_timeout_raised(log, script) {
                        return timed_out(gil, st);
                    }
                    python::log_exception(*log, &msg)
                }
                BodyError::Rule(msg) => log.log(Level::Error, &msg),
                BodyError::ClientGone => {
                    log_client_gone(*log, script);
                    return Outcome::Sent;
                }
            }
            fail_response(gil, st)
        }
    }
}

/// The outcome after a failure that was logged: a 500 when nothing was
/// sent yet, else the started response is cut (see `abort_response`).
unsafe fn fail_response(gil: &Gil, st: &mut AdapterState) -> Outcome {
    if st.progress(gil).headers_sent {
        st.abort_response(gil);
        Outcome::Sent
    } else {
        Outcome::Failed
    }
}

/// The outcome after `mod_wsgi.RequestTimeout` ended a request: 504 when
/// nothing was sent yet, else the started response ends where it stopped.
unsafe fn timed_out(gil: &Gil, st: &mut AdapterState) -> Outcome {
    match fail_response(gil, st) {
        Outcome::Failed => Outcome::TimedOut,
        other => other,
    }
}

/// The RWSGI0020 line for the Python exception now set, naming its class and
/// the script: "NAME exception raised processing WSGI script" for an
/// `Exception`, "NAME exception raised by WSGI script" for the others
/// (`SystemExit`, `KeyboardInterrupt`: ways to stop, which stop only this
/// request here), as mod_wsgi's lines read. `during` says when, e.g.
/// " while producing its response". GIL held; the exception stays set.
unsafe fn exception_line(script: &str, during: &str) -> String {
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    let (name, how) = if t.is_null() {
        ("unknown".to_string(), "raised by")
    } else {
        // `type.__name__` (PyType_GetName is 3.11+ only).
        let n = Owned::new(PyObject_GetAttrString(t, c"__name__".as_ptr()));
        let name = n.and_then(|n| object::to_string(n.as_ptr()));
        PyErr_Clear();
        let how = if PyErr_GivenExceptionMatches(t, PyExc_Exception) != 0 {
            "raised processing"
        } else {
            "raised by"
        };
        (name.unwrap_or_else(|| "unknown".into()), how)
    };
    PyErr_Restore(t, v, tb);
    format!("RWSGI0020: {name} exception {how} WSGI script {script:?}{during}")
}

/// Whether the exception set is `mod_wsgi.RequestTimeout` (request-timeout's
/// interrupt, or raised by the application): then it is cleared and logged
/// as RWSGI0090, without a traceback (it is not an application error).
/// Otherwise the exception stays set. GIL held.
unsafe fn request_timeout_raised(log: &LogTarget, script: &str) -> bool {
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    if t.is_null() {
        return false;
    }
    // Borrowed from sys.modules.
    let m = PyImport_AddModule(c"mod_wsgi".as_ptr());
    let class = if m.is_null() {
        None
    } else {
        Owned::new(PyObject_GetAttrString(m, c"RequestTimeout".as_ptr()))
    };
    PyErr_Clear();
    let matched = class.is_some_and(|c| PyErr_GivenExceptionMatches(t, c.as_ptr()) != 0);
    if !matched {
        PyErr_Restore(t, v, tb);
        return false;
    }
    Py_DECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
    log.log(
        Level::Info,
        &format!(
            "RWSGI0090: Request interrupted by RequestTimeout; thread recovered. \
             (mod_wsgi.RequestTimeout ended WSGI application {script:?}: 504 Gateway Timeout, \
             or its started response ends where it was)"
        ),
    );
    true
}

fn log_client_gone(log: LogTarget, script: &str) {
    log.log(
        Level::Info,
        &format!("RWSGI0026: client closed the connection while {script:?} was sending its response; output stopped"),
    );
}

/// Calls `result.close()` if it exists (PEP 3333: always, whatever happened).
/// Exceptions are logged (RWSGI0024).
unsafe fn call_close(rt: &Runtime, log: &LogTarget, script: &str, result: *mut PyObject) {
    // Preserve an exception that is pending for the caller.
    if PyList_CheckExact(result) != 0
        || PyTuple_CheckExact(result) != 0
        || PyBytes_CheckExact(result) != 0
    {
        return;
    }
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    match object::lookup_attr(result, rt.keys.close.as_ptr()) {
        Ok(Some(close)) => {
            let res = PyObject_CallNoArgs(close.as_ptr());
            if res.is_null() {
                metrics_api::exception_raised();
                python::log_exception(
                    *log,
                    &format!("RWSGI0024: exception in close() of the response of WSGI application {script:?}"),
                );
            } else {
                Py_DECREF(res);
            }
        }
        Ok(None) => {}
        Err(()) => python::log_exception(
            *log,
            &format!("RWSGI0024: looking up close() of the response of WSGI application {script:?} failed"),
        ),
    }
    PyErr_Restore(t, v, tb);
}

fn never_started(script: &str) -> BodyError {
    BodyError::Rule(format!(
        "RWSGI0023: WSGI application {script:?} returned without calling start_response() (PEP 3333)"
    ))
}

fn not_started(script: &str) -> BodyError {
    BodyError::Rule(format!(
        "RWSGI0021: WSGI application {script:?} produced body data without calling start_response() first (PEP 3333)"
    ))
}

unsafe fn non_bytes(script: &str, item: *mut PyObject) -> BodyError {
    BodyError::Rule(format!(
        "RWSGI0022: WSGI application {script:?} yielded {} {} in its response; items must be bytes (PEP 3333)",
        object::type_name(item),
        object::short_repr(item)
    ))
}

/// Sends the response iterable. List and tuple responses go down in one
/// brigade pass with EOS; other iterables are sent one block per pass with a
/// FLUSH (PEP 3333: each block is transmitted before the next is requested),
/// except a block that completes `Content-Length`, which goes with EOS.
unsafe fn send_body(
    gil: &Gil,
    rt: &Runtime,
    st: &mut AdapterState,
    result: *mut PyObject,
    script: &str,
) -> Result<(), BodyError> {
    if Py_TYPE(result) == rt.file_wrapper_type {
        if let Some(done) = send_file(gil, rt, st, result, script)? {
            return done;
        }
    }
    if PyList_CheckExact(result) != 0 || PyTuple_CheckExact(result) != 0 {
        let seq = result;
        let n = PySequence_Fast_GET_SIZE(seq);
        // Items are checked in order before anything reaches Apache; as with
        // mod_wsgi, the items before a bad one are still sent (a 200 cut
        // short) unless none has data (a clean 500).
        let mut bad = None;
        for i in 0..n {
            let item = PySequence_Fast_GET_ITEM(seq, i);
            if PyBytes_Check(item) == 0 {
                bad = Some((i, non_bytes(script, item)));
                break;
            }
            if st.status.is_none() && PyBytes_Size(item) > 0 {
                bad = Some((i, not_started(script)));
                break;
            }
        }
        if bad.is_none() && st.status.is_none() {
            return Err(never_started(script));
        }
        let good = bad.as_ref().map_or(n, |(i, _)| *i);
        // The list keeps every item alive until the single pass (or until
        // the data is set aside for the final pass).
        let items: Vec<&[u8]> = (0..good)
            .map(|i| object::bytes_ref(PySequence_Fast_GET_ITEM(seq, i)))
            .collect();
        let Some((_, err)) = bad else {
            return st
                .send(gil, &items, Finish::Eos)
                .map(|_| ())
                .map_err(|_| BodyError::ClientGone);
        };
        if items.iter().any(|d| !d.is_empty()) {
            st.send(gil, &items, Finish::Flush)
                .map_err(|_| BodyError::ClientGone)?;
        }
        return Err(err);
    }
    let Some(iter) = Owned::new(PyObject_GetIter(result)) else {
        return Err(BodyError::Exception(format!(
            "RWSGI0022: WSGI application {script:?} returned {}, which is not iterable (PEP 3333)",
            object::type_name(result)
        )));
    };
    loop {
        let item = PyIter_Next(iter.as_ptr());
        let Some(item) = Owned::new(item) else {
            if !PyErr_Occurred().is_null() {
                return Err(BodyError::Exception(exception_line(
                    script,
                    " while producing its response",
                )));
            }
            break;
        };
        if PyBytes_Check(item.as_ptr()) == 0 {
            return Err(non_bytes(script, item.as_ptr()));
        }
        let data = object::bytes_ref(item.as_ptr());
        if data.is_empty() {
            continue;
        }
        if st.status.is_none() {
            return Err(not_started(script));
        }
        if st
            .send(gil, &[data], Finish::Flush)
            .map_err(|_| BodyError::ClientGone)?
        {
            break;
        }
    }
    if st.status.is_none() {
        return Err(never_started(script));
    }
    Ok(())
}

/// Sends a `FileWrapper` response backed by a regular file with a file
/// bucket, from the file's current position (`tell()`), followed by FLUSH
/// and EOS so Apache has written everything before the file can be closed.
/// Returns `Ok(None)` when the wrapped object is not a real file (the caller
/// then iterates it).
unsafe fn send_file(
    gil: &Gil,
    rt: &Runtime,
    st: &mut AdapterState,
    result: *mut PyObject,
    script: &str,
) -> Result<Option<Result<(), BodyError>>, BodyError> {
    let fw = result as *mut file_wrapper::FileWrapperObject;
    let filelike = (*fw).filelike;
    let call = |name: *mut PyObject| -> Option<i64> {
        let m = Owned::new(PyObject_GetAttr(filelike, name))?;
        let v = Owned::new(PyObject_CallNoArgs(m.as_ptr()))?;
        let n = PyLong_AsLongLong(v.as_ptr());
        (n != -1 || PyErr_Occurred().is_null()).then_some(n)
    };
    let Some(fd) = call(rt.keys.fileno.as_ptr()) else {
        PyErr_Clear();
        return Ok(None);
    };
    let mut stat: libc::stat = std::mem::zeroed();
    if fd < 0
        || libc::fstat(fd as i32, &mut stat) != 0
        || (stat.st_mode & libc::S_IFMT) != libc::S_IFREG
    {
        return Ok(None);
    }
    let offset = match call(rt.keys.tell.as_ptr()) {
        Some(n) if n >= 0 => n as u64,
        _ => {
            PyErr_Clear();
            return Ok(None);
        }
    };
    if st.status.is_none() {
        return Err(never_started(script));
    }
    let len = (stat.st_size as u64).saturating_sub(offset);
    // Everything is written before this returns (FLUSH before EOS): the
    // application may close the file as soon as we return.
    match st.send_file(gil, fd as i32, offset, len) {
        Ok(true) => Ok(Some(Ok(()))),
        Ok(false) => Ok(None),
        Err(_) => Ok(Some(Err(BodyError::ClientGone))),
    }
}
