//! The Python side of `WSGIDispatchScript`: the script's optional
//! `process_group(environ)`, `application_group(environ)` and
//! `callable_object(environ)` choose, per request, where and what runs
//! (`None` keeps the configured value), as mod_wsgi's dispatch scripts.

use crate::apache::LogTarget;
use crate::python::object::{self, Owned};
use crate::python::{self, GilGuard, Runtime};
use pyo3_ffi::*;
use std::ffi::{c_void, CStr};

/// What the script chose; `None`: keep the configured value.
#[derive(Debug, Default)]
pub struct Choice {
    /// From `process_group(environ)`.
    pub process_group: Option<String>,
    /// From `application_group(environ)`.
    pub application_group: Option<String>,
    /// From `callable_object(environ)`.
    pub callable_object: Option<String>,
}

/// One dispatch call.
pub struct Call<'a> {
    /// The script file.
    pub script: &'a str,
    /// Re-import it when its modification time changed.
    pub reload: bool,
    /// The environ items (as the daemon's: latin-1 bytes, later names win).
    pub environ: &'a [(Vec<u8>, Vec<u8>)],
    /// The application group the script runs for (`mod_wsgi.application_group`).
    pub application_group: &'a str,
    /// `apache.request_rec` (WSGIPassApacheRequest), or null.
    pub request_rec: *mut c_void,
    /// Where errors and the script's output go.
    pub log: LogTarget,
}

/// Runs the dispatch script for one request. Errors (the script does not
/// load, a function raises or returns something other than a string or
/// None) are logged with the traceback and returned as their description.
pub fn run(rt: &Runtime, call: &Call<'_>) -> Result<Choice, String> {
    let gil = GilGuard::acquire(rt);
    let outer = python::replace_log_target(call.log);
    // SAFETY: GIL held for the whole call.
    let result = unsafe { run_locked(&gil, rt, call) };
    python::flush_application_output();
    python::replace_log_target(outer);
    result
}

unsafe fn run_locked(gil: &python::Gil, rt: &Runtime, call: &Call<'_>) -> Result<Choice, String> {
    let fail = |what: String| -> String {
        python::log_exception(call.log, &format!("RWSGI0070: {what}"));
        what
    };
    let using = python::ScriptUse {
        path: call.script,
        mtime: python::file_mtime_us(call.script),
        reload: call.reload,
        resource: None,
        on_change: python::OnChange::Reload,
        log: call.log,
    };
    let module = python::script_module(gil, rt, &using).map_err(|e| {
        fail(format!(
            "WSGIDispatchScript {:?} cannot be loaded: {e}",
            call.script
        ))
    })?;
    let environ = crate::python::auth::child_script_environ(
        call.environ,
        call.application_group,
        call.request_rec,
    )
    .ok_or_else(|| fail("cannot build the environ".into()))?;
    let d = environ.as_ptr();
    let mut choice = Choice::default();
    for (name, slot) in [
        (c"process_group", &mut choice.process_group),
        (c"application_group", &mut choice.application_group),
        (c"callable_object", &mut choice.callable_object),
    ] {
        *slot = call_one(module.as_ptr(), name, d).map_err(|e| {
            fail(format!(
                "{}(environ) of WSGIDispatchScript {:?} failed: {e}",
                name.to_string_lossy(),
                call.script
            ))
        })?;
    }
    Ok(choice)
}

/// Calls `module.name(environ)` if the module has it: `Ok(None)` for a
/// missing function or a None result, the text of a str (latin-1) or bytes.
unsafe fn call_one(
    module: *mut PyObject,
    name: &CStr,
    environ: *mut PyObject,
) -> Result<Option<String>, String> {
    let key = object::str_from(&name.to_string_lossy());
    let f = match object::lookup_attr(module, key.as_ptr()) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(()) => return Err("looking the function up raised".into()),
    };
    let r = Owned::new(PyObject_CallOneArg(f.as_ptr(), environ)).ok_or("it raised")?;
    let p = r.as_ptr();
    if p == Py_None() {
        return Ok(None);
    }
    let bytes = if PyUnicode_Check(p) != 0 {
        Owned::new(PyUnicode_AsLatin1String(p)).ok_or_else(|| {
            let e = "it returned a str with characters outside latin-1".to_string();
            PyErr_SetString(
                PyExc_TypeError,
                c"the name must be a latin-1 string".as_ptr(),
            );
            e
        })?
    } else if PyBytes_Check(p) != 0 {
        Owned::from_borrowed(p)
    } else {
        let t = CStr::from_ptr((*Py_TYPE(p)).tp_name)
            .to_string_lossy()
            .into_owned();
        let msg = format!("it returned a {t}, not a str, bytes or None");
        let c = std::ffi::CString::new(msg.clone()).unwrap_or_default();
        PyErr_SetString(PyExc_TypeError, c.as_ptr());
        return Err(msg);
    };
    let data = std::slice::from_raw_parts(
        PyBytes_AsString(bytes.as_ptr()) as *const u8,
        PyBytes_Size(bytes.as_ptr()) as usize,
    );
    Ok(Some(data.iter().map(|&b| b as char).collect()))
}
