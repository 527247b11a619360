//! Running one request through a WSGI application in embedded mode
//! (PEP 3333): load the script, build the environ, call the application,
//! send its response, always call `close()`.
//!
//! Failures are reported as what they are: an error-log line with a stable
//! `RWSGI` identifier naming the script, the value and the rule broken (plus
//! the traceback), a 500 when nothing was sent yet, or a cut connection
//! once the response has started. Apache keeps serving either way.

pub mod adapter;
pub mod environ;
pub mod errors;
pub mod file_wrapper;
pub mod input;
pub mod module;

use crate::apache::{self, Level};
use crate::config::RequestSettings;
use crate::ffi;
use crate::python::object::{self, Owned};
use crate::python::{self, Gil, GilGuard, Runtime};
use adapter::{AdapterState, FinalPass, Finish, SendError};
use pyo3_ffi::*;
use rwsgi_core::directives::{expand_application_group, MapHeadToGet};
use std::ffi::c_int;
use std::ptr;

const HTTP_500: c_int = ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;

/// Serves request `r` with the WSGI script in `r->filename`, using
/// `settings`. Returns the handler status for Apache: `OK` once a response
/// was sent, or an HTTP error status for Apache to send (411, 500, ...).
///
/// # Safety
/// `r` must be the live request of the calling handler hook.
pub unsafe fn handle_request(r: *mut ffi::request_rec, settings: &RequestSettings) -> c_int {
    // r->filename lives in the request pool, so it outlives this call.
    let Some(script) = apache::opt_str((*r).filename) else {
        apache::log_r(
            r,
            Level::Error,
            0,
            "RWSGI0007: WSGI script file name is not valid UTF-8",
        );
        return HTTP_500;
    };
    let rt = match python::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            apache::log_r(
                r,
                Level::Error,
                0,
                &format!("RWSGI0005: cannot run WSGI script {script:?}: Python is not available in this process: {e}"),
            );
            return HTTP_500;
        }
    };
    let policy = if settings.chunked_request {
        ffi::REQUEST_CHUNKED_DECHUNK
    } else {
        ffi::REQUEST_CHUNKED_ERROR
    };
    let rv = ffi::ap_setup_client_block(r, policy as c_int);
    if rv != ffi::OK as c_int {
        if rv == ffi::HTTP_LENGTH_REQUIRED as c_int {
            apache::log_r(
                r,
                Level::Info,
                0,
                &format!("RWSGI0006: chunked request body to {script:?} refused with 411: WSGIChunkedRequest is Off"),
            );
        }
        return rv;
    }
    if !settings.process_group.is_empty() {
        apache::log_r(
            r,
            Level::Error,
            0,
            &format!(
                "RWSGI0016: cannot run {script:?} in process group {:?}: daemon mode is not implemented yet",
                settings.process_group
            ),
        );
        return HTTP_500;
    }
    let gil = GilGuard::acquire(rt);
    let outer = python::replace_current_request(r);
    let (status, end) = run(&gil, rt, r, settings, script);
    python::flush_application_output();
    python::replace_current_request(outer);
    drop(gil);
    // The final brigade of a small response goes down the filter chain
    // only now, without the GIL: filters may block or run sub-requests.
    if let Some(last) = end.last_pass {
        if last.send().is_err() {
            log_client_gone(r, script);
        }
    }
    // Then wait for a wsgi.input read still running in an application
    // thread (the client may first need to see the response).
    drop(end.input);
    status
}

/// What is left of a request once its Python part is over.
struct RequestEnd {
    /// The final pass, put off until the GIL is released.
    last_pass: Option<FinalPass>,
    /// The request's input, closed when dropped.
    input: Option<input::InputEnd>,
}

impl RequestEnd {
    fn status_only() -> RequestEnd {
        RequestEnd {
            last_pass: None,
            input: None,
        }
    }
}

/// Whether HEAD should reach the application as GET (WSGIMapHEADToGET):
/// with Auto, when an output filter before the protocol filters (content
/// filters such as mod_deflate or mod_cache) could depend on the body.
unsafe fn map_head(r: *mut ffi::request_rec, mode: MapHeadToGet) -> bool {
    match mode {
        MapHeadToGet::On => true,
        MapHeadToGet::Off => false,
        MapHeadToGet::Auto => {
            let mut f = (*r).output_filters;
            while !f.is_null() {
                let frec = (*f).frec;
                if !frec.is_null() && (*frec).ftype < ffi::ap_filter_type_AP_FTYPE_PROTOCOL {
                    return true;
                }
                f = (*f).next;
            }
            false
        }
    }
}

/// Runs the application for `r`. Returns the handler status and what is
/// left to do once the GIL is released.
unsafe fn run(
    gil: &Gil,
    rt: &Runtime,
    r: *mut ffi::request_rec,
    settings: &RequestSettings,
    script: &str,
) -> (c_int, RequestEnd) {
    let module =
        match python::script_module(gil, rt, script, (*r).finfo.mtime, settings.script_reloading) {
            Ok(m) => m,
            Err(e) => {
                python::log_exception(r, &format!("RWSGI0010: {e}"));
                return (HTTP_500, RequestEnd::status_only());
            }
        };
    let Some(app) = find_callable(rt, module.as_ptr(), &settings.callable_object) else {
        PyErr_Clear();
        apache::log_r(
            r,
            Level::Error,
            0,
            &format!(
                "RWSGI0011: target WSGI script {script:?} does not contain WSGI application {:?}",
                settings.callable_object
            ),
        );
        return (HTTP_500, RequestEnd::status_only());
    };

    let uri = apache::bytes((*r).uri);
    let (script_name, path_info) =
        rwsgi_core::environ::split_script_name(uri, apache::bytes((*r).path_info));
    let server_name = apache::opt_str(ffi::ap_get_server_name(r)).unwrap_or("");
    let application_group = expand_application_group(
        &settings.application_group,
        server_name,
        ffi::ap_get_server_port(r),
        &String::from_utf8_lossy(script_name),
        |name| {
            let c = std::ffi::CString::new(name).ok()?;
            apache::opt_str(ffi::apr_table_get((*r).subprocess_env, c.as_ptr())).map(str::to_owned)
        },
    );
    let method = apache::bytes((*r).method);
    let method: &[u8] =
        if (*r).header_only != 0 && method == b"HEAD" && map_head(r, settings.map_head_to_get) {
            b"GET"
        } else {
            method
        };
    let cx = environ::RequestContext {
        r,
        settings,
        script_name,
        path_info,
        application_group: &application_group,
        method,
    };

    let (Some(input), Some(adapter), Some(errors)) = (
        input::new_input(rt.input_type, r),
        adapter::new_adapter(rt.adapter_type, r),
        errors::new_log(rt.log_type, r),
    ) else {
        python::log_exception(r, "RWSGI0008: cannot create request objects");
        return (HTTP_500, RequestEnd::status_only());
    };
    let status = match environ::build_environ(rt, &cx, input.as_ptr(), errors.as_ptr()) {
        Ok(env) => call_application(
            gil,
            rt,
            r,
            script,
            app.as_ptr(),
            env.as_ptr(),
            adapter.as_ptr(),
        ),
        Err(e) => {
            python::log_exception(r, &format!("RWSGI0008: cannot build the WSGI environ: {e}"));
            HTTP_500
        }
    };
    // The request ends here for every object the application may keep:
    // each waits for a use in progress in another thread, then refuses.
    let input = Some(input::detach(input.as_ptr()));
    errors::expire(errors.as_ptr());
    let last_pass = adapter::state(adapter.as_ptr()).detach(gil);
    (status, RequestEnd { last_pass, input })
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

unsafe fn call_application(
    gil: &Gil,
    rt: &Runtime,
    r: *mut ffi::request_rec,
    script: &str,
    app: *mut PyObject,
    env: *mut PyObject,
    adapter: *mut PyObject,
) -> c_int {
    let args = [env, adapter];
    let result = PyObject_Vectorcall(app, args.as_ptr(), 2, ptr::null_mut());
    let st = adapter::state(adapter);
    let Some(result) = Owned::new(result) else {
        python::log_exception(
            r,
            &format!("RWSGI0020: exception raised by WSGI application in {script:?}"),
        );
        return fail_response(gil, st);
    };
    let outcome = send_body(gil, rt, st, result.as_ptr(), script);
    call_close(rt, r, script, result.as_ptr());
    match outcome {
        Ok(()) => {
            if let Err(SendError::ClientGone(_)) = st.send(gil, &[], Finish::Eos) {
                log_client_gone(r, script);
            }
            let sent = st.progress(gil);
            // A HEAD response carries the GET's Content-Length and no body
            // (RFC 9110 §9.3.2): short is correct there.
            if let Some(cl) = sent.content_length {
                if sent.bytes_sent < cl && !sent.client_gone && (*r).header_only == 0 {
                    apache::log_r(
                        r,
                        Level::Warn,
                        0,
                        &format!(
                            "RWSGI0025: WSGI application {script:?} declared Content-Length {cl} but produced {} bytes; \
                             the connection is closed after the response",
                            sent.bytes_sent
                        ),
                    );
                    (*(*r).connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE;
                }
            }
            ffi::OK as c_int
        }
        Err(e) => {
            match e {
                BodyError::Exception(msg) => python::log_exception(r, &msg),
                BodyError::Rule(msg) => apache::log_r(r, Level::Error, 0, &msg),
                BodyError::ClientGone => {
                    log_client_gone(r, script);
                    return ffi::OK as c_int;
                }
            }
            fail_response(gil, st)
        }
    }
}

/// The handler status after a failure that was logged: a 500 when nothing
/// was sent yet, else the started response is cut (see `abort_response`).
unsafe fn fail_response(gil: &Gil, st: &mut AdapterState) -> c_int {
    if st.progress(gil).headers_sent {
        st.abort_response(gil);
        ffi::OK as c_int
    } else {
        HTTP_500
    }
}

unsafe fn log_client_gone(r: *mut ffi::request_rec, script: &str) {
    apache::log_r(
        r,
        Level::Info,
        0,
        &format!("RWSGI0026: client closed the connection while {script:?} was sending its response; output stopped"),
    );
}

/// Calls `result.close()` if it exists (PEP 3333: always, whatever happened).
/// Exceptions are logged (RWSGI0024).
unsafe fn call_close(rt: &Runtime, r: *mut ffi::request_rec, script: &str, result: *mut PyObject) {
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
                python::log_exception(
                    r,
                    &format!("RWSGI0024: exception in close() of the response of WSGI application {script:?}"),
                );
            } else {
                Py_DECREF(res);
            }
        }
        Ok(None) => {}
        Err(()) => python::log_exception(
            r,
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
        // Check every item before anything reaches Apache, so a bad item
        // still gives a clean 500.
        for i in 0..n {
            let item = PySequence_Fast_GET_ITEM(seq, i);
            if PyBytes_Check(item) == 0 {
                return Err(non_bytes(script, item));
            }
            if st.status.is_none() && PyBytes_Size(item) > 0 {
                return Err(not_started(script));
            }
        }
        if st.status.is_none() {
            return Err(never_started(script));
        }
        // The list keeps every item alive until the single pass (or until
        // the data is set aside for the final pass).
        let items: Vec<&[u8]> = (0..n)
            .map(|i| object::bytes_ref(PySequence_Fast_GET_ITEM(seq, i)))
            .collect();
        return st
            .send(gil, &items, Finish::Eos)
            .map(|_| ())
            .map_err(|_| BodyError::ClientGone);
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
                return Err(BodyError::Exception(format!(
                    "RWSGI0020: exception raised by WSGI application in {script:?} while producing its response"
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
    // FLUSH before EOS: Apache must not keep file buckets (e.g. for the
    // event MPM's write completion) after we return and the file is closed.
    let r = st.send_file(gil, fd as i32, offset, len);
    Ok(Some(r.map_err(|_| BodyError::ClientGone)))
}
