//! The Python side of `WSGIDispatchScript`: the script's optional
//! `process_group(environ)`, `application_group(environ)` and
//! `callable_object(environ)` choose, per request, where and what runs
//! (`None` keeps the configured value), as mod_wsgi's dispatch scripts.

use super::child_script::ChildScript;
use super::object::{self, Owned};
use super::Runtime;
use pyo3_ffi::*;
use std::ffi::CStr;

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

/// Runs the dispatch script for one request (`call.directive` is
/// `WSGIDispatchScript`). Errors (the script does not load, a function
/// raises or returns something other than a string or None) are logged
/// with the traceback (RWSGI0070) and returned as their description.
pub fn run(rt: &Runtime, call: &ChildScript<'_>) -> Result<Choice, String> {
    call.run(rt, "RWSGI0070", |loaded| {
        let mut choice = Choice::default();
        for (name, slot) in [
            (c"process_group", &mut choice.process_group),
            (c"application_group", &mut choice.application_group),
            (c"callable_object", &mut choice.callable_object),
        ] {
            // SAFETY: ChildScript::run holds the GIL while this body runs.
            *slot = unsafe { call_one(loaded.module.as_ptr(), name, loaded.environ.as_ptr()) }
                .map_err(|e| {
                    loaded.fail(format!(
                        "{}(environ) of WSGIDispatchScript {:?} failed: {e}",
                        name.to_string_lossy(),
                        call.script
                    ))
                })?;
        }
        Ok(choice)
    })
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
