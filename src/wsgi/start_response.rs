//! The arguments of `start_response(status, response_headers, exc_info=None)`
//! (PEP 3333 §The start_response() Callable): checked as mod_wsgi checks
//! them, with the exception types and messages mod_wsgi raises, so code
//! written against mod_wsgi (and its test suite) sees the same errors.
//!
//! mod_wsgi's messages are short ("no space following status code:
//! b'200OK'"); each exception raised here also carries a PEP 678 note
//! (shown in the traceback that RWSGI0020 logs) naming the value, the rule
//! and PEP 3333. Beyond mod_wsgi's rules, the stricter ones of
//! `rwsgi_core::validate` apply (RFC 9110 token header names, no control
//! characters in values, no hop-by-hop headers, a valid Content-Length, a
//! status code between 200 and 599).

use super::transport::Header;
use crate::python::object::{self, Owned};
use pyo3_ffi::*;
use rwsgi_core::validate::{validate_header, validate_status};
use std::ptr;

/// Raises `exc(msg)` with PEP 678 note `note` and returns NULL. GIL held.
unsafe fn raise_noted(exc: *mut PyObject, msg: &str, note: &str) -> *mut PyObject {
    let m = object::str_from(msg);
    match Owned::new(PyObject_CallOneArg(exc, m.as_ptr())) {
        Some(e) => {
            add_note(e.as_ptr(), note);
            PyErr_SetObject(exc, e.as_ptr());
        }
        None => {
            PyErr_Clear();
            PyErr_SetObject(exc, m.as_ptr());
        }
    }
    ptr::null_mut()
}

/// Adds PEP 678 note `note` to exception instance `e` (errors ignored).
unsafe fn add_note(e: *mut PyObject, note: &str) {
    let n = object::str_from(note);
    let r = PyObject_CallMethod(e, c"add_note".as_ptr(), c"O".as_ptr(), n.as_ptr());
    if r.is_null() {
        PyErr_Clear();
    } else {
        Py_DECREF(r);
    }
}

/// Adds note `note` to the exception now set (it stays set). GIL held.
unsafe fn note_pending(note: &str) {
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    PyErr_NormalizeException(&mut t, &mut v, &mut tb);
    if !v.is_null() {
        add_note(v, note);
    }
    PyErr_Restore(t, v, tb);
}

/// `o` encoded as latin-1 (PEP 3333 native strings): a `bytes` object, or
/// NULL with the `UnicodeEncodeError` set (noted with `what`).
unsafe fn latin1_bytes(o: *mut PyObject, what: impl FnOnce() -> String) -> Option<Owned> {
    let b = Owned::new(PyUnicode_AsLatin1String(o));
    if b.is_none() {
        // The message's reprs run Python code: not with the encoding
        // error pending (that would be a SystemError).
        let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        PyErr_Fetch(&mut t, &mut v, &mut tb);
        let msg = format!(
            "start_response(): {} {} is not latin-1 text (PEP 3333: native strings, \
             non-latin-1 text must be encoded, e.g. RFC 2047)",
            what(),
            object::short_repr(o)
        );
        PyErr_Restore(t, v, tb);
        note_pending(&msg);
    }
    b
}

/// Whether `c` is a control character (C `iscntrl`).
fn is_cntrl(c: u8) -> bool {
    c < 0x20 || c == 0x7f
}

/// Checks `exc_info` (PEP 3333): `None` or absent is allowed, otherwise it
/// must be a 3-tuple (RuntimeError, as mod_wsgi). Returns whether one was
/// given; `Err` with the exception set.
///
/// # Safety
/// GIL held; `exc_info` NULL or valid.
pub unsafe fn check_exc_info(exc_info: *mut PyObject) -> Result<bool, ()> {
    if exc_info.is_null() || exc_info == Py_None() {
        return Ok(false);
    }
    if PyTuple_Check(exc_info) == 0 || PyTuple_Size(exc_info) != 3 {
        raise_noted(
            PyExc_RuntimeError,
            "start_response() argument 'exc_info' must be a 3-tuple or None",
            &format!(
                "start_response() was given exc_info={}: pass sys.exc_info() of the exception \
                 being handled, or nothing (PEP 3333)",
                object::short_repr(exc_info)
            ),
        );
        return Err(());
    }
    Ok(true)
}

/// Re-raises the exception of `exc_info` (PEP 3333: start_response after
/// the headers were sent). It must be what `sys.exc_info()` gives while an
/// exception is handled: an exception class, an instance of it, and a
/// traceback or None; anything else raises TypeError naming what was passed.
/// Always returns NULL.
///
/// # Safety
/// GIL held; `exc_info` a 3-tuple ([`check_exc_info`]).
pub unsafe fn reraise(exc_info: *mut PyObject) -> *mut PyObject {
    let (t, v, tb) = (
        PyTuple_GetItem(exc_info, 0),
        PyTuple_GetItem(exc_info, 1),
        PyTuple_GetItem(exc_info, 2),
    );
    let valid = PyExceptionClass_Check(t) != 0
        && PyExceptionInstance_Check(v) != 0
        && PyObject_IsInstance(v, t) == 1
        && (tb == Py_None() || PyTraceBack_Check(tb) != 0);
    if !valid {
        PyErr_Clear();
        return object::raise(
            PyExc_TypeError,
            &format!(
                "start_response() exc_info must be sys.exc_info() of the exception being handled \
                 (class, instance, traceback), not {} (PEP 3333)",
                object::short_repr(exc_info)
            ),
        );
    }
    let tb = if tb == Py_None() { ptr::null_mut() } else { tb };
    Py_INCREF(t);
    Py_INCREF(v);
    Py_XINCREF(tb);
    PyErr_Restore(t, v, tb);
    ptr::null_mut()
}

/// Raises the error of a second `start_response` without exc_info once the
/// headers were sent (PEP 3333; RuntimeError as mod_wsgi). Returns NULL.
///
/// # Safety
/// GIL held.
pub unsafe fn raise_called_twice() -> *mut PyObject {
    raise_noted(
        PyExc_RuntimeError,
        "start_response() called more than once without exc_info",
        "the response headers were already sent: only a call with exc_info (which re-raises \
         that exception) is allowed now (PEP 3333)",
    )
}

/// Checks a status string as mod_wsgi does, then by the rules of
/// [`validate_status`]. Returns the code and the line; `Err` with
/// ValueError (or the latin-1 UnicodeEncodeError, TypeError for a non-str)
/// set.
unsafe fn parse_status(status: *mut PyObject) -> Result<(u16, String), ()> {
    let Some(text) = object::str_ref(status) else {
        raise_noted(
            PyExc_TypeError,
            &format!(
                "expected str object for status line, value of type {} found",
                object::type_name(status)
            ),
            &format!(
                "start_response() status must be str such as '200 OK', not {} (PEP 3333)",
                object::short_repr(status)
            ),
        );
        return Err(());
    };
    let b = latin1_bytes(status, || "status".into()).ok_or(())?;
    let bytes = object::bytes_ref(b.as_ptr());
    // The value's repr is made only for an error message (it costs).
    let shown = || object::short_repr(b.as_ptr());
    let rule = if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || bytes.get(3).is_some_and(u8::is_ascii_digit)
    {
        Some((
            "status code must be a 3 digit integer",
            "it must start with a 3-digit code",
        ))
    } else if bytes.get(3) != Some(&b' ') {
        Some((
            "no space following status code",
            "the code must be followed by one space",
        ))
    } else if bytes.iter().any(|&c| is_cntrl(c)) {
        Some((
            "control character in status reason phrase",
            "control characters (CR, LF) are refused: they would inject headers",
        ))
    } else {
        None
    };
    if let Some((msg, why)) = rule {
        let shown = shown();
        raise_noted(
            PyExc_ValueError,
            &format!("{msg}: {shown}"),
            &format!("start_response() status {shown}: {why} ('NNN Reason', PEP 3333)"),
        );
        return Err(());
    }
    match validate_status(text) {
        Ok(code) => Ok((code, text.to_string())),
        Err(e) => {
            object::raise(PyExc_ValueError, &format!("start_response(): {e}"));
            Err(())
        }
    }
}

/// One `(name, value)` item of `response_headers`, checked as mod_wsgi does,
/// then by [`validate_header`]. `Err` with the exception set.
unsafe fn parse_header(item: *mut PyObject) -> Result<Header, ()> {
    // The item's repr, made only for an error message (it costs).
    let shown = || object::short_repr(item);
    if PyTuple_Check(item) == 0 {
        raise_noted(
            PyExc_TypeError,
            &format!(
                "each header must be a 2-tuple, not {}",
                object::type_name(item)
            ),
            &format!(
                "start_response() response header {} must be a (name, value) tuple (PEP 3333)",
                shown()
            ),
        );
        return Err(());
    }
    let n = PyTuple_Size(item);
    if n != 2 {
        raise_noted(
            PyExc_ValueError,
            &format!("each header must be a 2-tuple, got length {n}"),
            &format!(
                "start_response() response header {} must be a (name, value) tuple (PEP 3333)",
                shown()
            ),
        );
        return Err(());
    }
    let (k, v) = (PyTuple_GetItem(item, 0), PyTuple_GetItem(item, 1));
    for o in [k, v] {
        if PyUnicode_Check(o) == 0 {
            raise_noted(
                PyExc_TypeError,
                &format!("must be str, not {}", object::type_name(o)),
                &format!(
                    "start_response() response header {}: name and value must be str \
                     (PEP 3333 native strings)",
                    shown()
                ),
            );
            return Err(());
        }
    }
    let kb = latin1_bytes(k, || format!("response header {}: name", shown())).ok_or(())?;
    let vb = latin1_bytes(v, || format!("response header {}: value", shown())).ok_or(())?;
    let (name, value) = (
        object::bytes_ref(kb.as_ptr()),
        object::bytes_ref(vb.as_ptr()),
    );
    let name_shown = || object::short_repr(kb.as_ptr());
    let value_shown = || object::short_repr(vb.as_ptr());
    let rule = if name.is_empty() {
        Some(("header name is empty".to_string(), "a header needs a name"))
    } else if let Some(&c) = name.iter().find(|&&c| is_cntrl(c) || c == b' ') {
        let what = if c == b' ' { "space" } else { "control" };
        Some((
            format!("{what} character in header name: {}", name_shown()),
            "header names are tokens: no spaces or control characters",
        ))
    } else if value.iter().any(|&c| c == b'\r' || c == b'\n') {
        Some((
            format!(
                "carriage return/line feed character in header value: {}",
                value_shown()
            ),
            "CR and LF are refused in values: they would inject headers",
        ))
    } else {
        None
    };
    if let Some((msg, why)) = rule {
        raise_noted(
            PyExc_ValueError,
            &msg,
            &format!(
                "start_response() response header {}: {why} (PEP 3333, RFC 9110 §5)",
                shown()
            ),
        );
        return Err(());
    }
    // Both are latin-1 (checked above), hence valid UTF-8 as str.
    let (Some(name), Some(value)) = (object::str_ref(k), object::str_ref(v)) else {
        object::raise(
            PyExc_ValueError,
            &format!(
                "start_response(): response header {} is not valid text",
                shown()
            ),
        );
        return Err(());
    };
    match validate_header(name, value) {
        Ok(kind) => Ok((name.to_string(), value.to_string(), kind)),
        Err(e) => {
            object::raise(PyExc_ValueError, &format!("start_response(): {e}"));
            Err(())
        }
    }
}

/// Validates `(status, response_headers)` and returns the parsed form, or
/// raises (see the module docs) and returns `Err`.
///
/// # Safety
/// GIL held; both valid.
pub unsafe fn parse_response(
    status: *mut PyObject,
    headers: *mut PyObject,
) -> Result<((u16, String), Vec<Header>), ()> {
    let status = parse_status(status)?;
    if PyList_Check(headers) == 0 {
        raise_noted(
            PyExc_TypeError,
            &format!(
                "start_response() argument 2 must be list, not {}",
                object::type_name(headers)
            ),
            "start_response() response_headers must be a list of (name, value) tuples (PEP 3333)",
        );
        return Err(());
    }
    let n = PyList_Size(headers);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        // A new reference: the list may change while items are checked.
        let p = PyList_GetItem(headers, i);
        if p.is_null() {
            return Err(());
        }
        let item = Owned::from_borrowed(p);
        out.push(parse_header(item.as_ptr())?);
    }
    Ok((status, out))
}
