//! The Python side of mod_wsgi's access and authentication scripts
//! (`WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript`): loads
//! the script (cached and reloaded as WSGI scripts are), builds its environ
//! and calls `allow_access(environ, host)`, `check_password(environ, user,
//! password)`, `get_realm_hash(environ, user, realm)` or
//! `groups_for_user(environ, user)`, converting the result as mod_wsgi does.
//!
//! Errors (the script does not load, lacks the function, raises, or returns
//! something of the wrong type) are logged with the traceback (RWSGI0080,
//! RWSGI0081) against the request and returned as their description; the
//! caller answers 500.

use super::child_script::{ChildScript, Loaded};
use super::object::{self, Owned};
use super::Runtime;
use crate::apache::Level;
use pyo3_ffi::*;
use std::ffi::CStr;

/// What `check_password` said.
#[derive(Debug, PartialEq, Eq)]
pub enum Password {
    /// `True`, or a str: the user is authenticated; with a str, it is the
    /// user name to use from now on (`REMOTE_USER`), as mod_wsgi.
    Granted(Option<Vec<u8>>),
    /// `False`: wrong password.
    Denied,
    /// `None`: no such user.
    UserNotFound,
}

/// What `allow_access` said.
#[derive(Debug, PartialEq, Eq)]
pub enum Access {
    /// `True`.
    Allow,
    /// `False`.
    Deny,
    /// `None`: no opinion (other access checkers decide).
    Decline,
}

/// Calls `check_password(environ, user, password)` (user and password
/// latin-1 decoded). Result: `True`/`False`/`None`/a str.
pub fn check_password(
    rt: &Runtime,
    call: &ChildScript<'_>,
    user: &[u8],
    password: &[u8],
) -> Result<Password, String> {
    run(
        rt,
        call,
        c"check_password",
        &[Some(user), Some(password)],
        |r| unsafe {
            if r == Py_None() {
                Ok(Password::UserNotFound)
            } else if r == Py_True() {
                Ok(Password::Granted(None))
            } else if r == Py_False() {
                Ok(Password::Denied)
            } else if PyUnicode_Check(r) != 0 {
                let s = object::str_ref(r).ok_or("the user name is not encodable")?;
                Ok(Password::Granted(Some(s.as_bytes().to_vec())))
            } else {
                Err(format!(
                    "it returned a {}: it must return True, False, None or the user name as a str",
                    object::type_name(r)
                ))
            }
        },
    )
}

/// Calls `get_realm_hash(environ, user, realm)`: `Ok(Some(hash))` (the hex
/// MD5 of `user:realm:password`, from a str or bytes), `Ok(None)` for
/// `None` (no such user).
pub fn get_realm_hash(
    rt: &Runtime,
    call: &ChildScript<'_>,
    user: &[u8],
    realm: &[u8],
) -> Result<Option<Vec<u8>>, String> {
    run(
        rt,
        call,
        c"get_realm_hash",
        &[Some(user), Some(realm)],
        |r| unsafe {
            if r == Py_None() {
                Ok(None)
            } else {
                latin1_bytes(r).map(Some).ok_or_else(|| {
                    format!(
                        "it returned a {}: it must return None or a latin-1 str (or bytes)",
                        object::type_name(r)
                    )
                })
            }
        },
    )
}

/// Calls `groups_for_user(environ, user)`: the names of the groups (an
/// iterable of latin-1 str or bytes).
pub fn groups_for_user(
    rt: &Runtime,
    call: &ChildScript<'_>,
    user: &[u8],
) -> Result<Vec<Vec<u8>>, String> {
    run(rt, call, c"groups_for_user", &[Some(user)], |r| unsafe {
        let it = Owned::new(PyObject_GetIter(r)).ok_or_else(|| {
            format!(
                "it returned a {}: it must return an iterable of group names",
                object::type_name(r)
            )
        })?;
        let mut groups = Vec::new();
        while let Some(item) = Owned::new(PyIter_Next(it.as_ptr())) {
            let name = latin1_bytes(item.as_ptr()).ok_or_else(|| {
                format!(
                    "a group name is a {}: group names must be latin-1 str (or bytes)",
                    object::type_name(item.as_ptr())
                )
            })?;
            groups.push(name);
        }
        if !PyErr_Occurred().is_null() {
            return Err("iterating over the groups raised".into());
        }
        Ok(groups)
    })
}

/// Calls `allow_access(environ, host)` (`host`: the client's host name or
/// address, `None` if unknown).
pub fn allow_access(
    rt: &Runtime,
    call: &ChildScript<'_>,
    host: Option<&[u8]>,
) -> Result<Access, String> {
    run(rt, call, c"allow_access", &[host], |r| unsafe {
        if r == Py_None() {
            Ok(Access::Decline)
        } else if r == Py_True() {
            Ok(Access::Allow)
        } else if r == Py_False() {
            Ok(Access::Deny)
        } else {
            Err(format!(
                "it returned a {}: it must return True, False or None",
                object::type_name(r)
            ))
        }
    })
}

/// The bytes of a latin-1 str, or of bytes; `None` (exception cleared)
/// otherwise. GIL held.
unsafe fn latin1_bytes(o: *mut PyObject) -> Option<Vec<u8>> {
    if PyBytes_Check(o) != 0 {
        return Some(object::bytes_ref(o).to_vec());
    }
    if PyUnicode_Check(o) == 0 {
        return None;
    }
    match Owned::new(PyUnicode_AsLatin1String(o)) {
        Some(b) => Some(object::bytes_ref(b.as_ptr()).to_vec()),
        None => {
            PyErr_Clear();
            None
        }
    }
}

/// Loads the script, calls `name(environ, *args)` (each arg a latin-1 str,
/// `None` for `None`) and converts the result with `convert` (GIL held).
fn run<T>(
    rt: &Runtime,
    call: &ChildScript<'_>,
    name: &CStr,
    args: &[Option<&[u8]>],
    convert: impl FnOnce(*mut PyObject) -> Result<T, String>,
) -> Result<T, String> {
    call.run(rt, "RWSGI0080", |loaded| {
        // SAFETY: ChildScript::run holds the GIL while this body runs.
        unsafe { call_function(loaded, name, args, convert) }
    })
}

/// # Safety
/// GIL held.
unsafe fn call_function<T>(
    loaded: &Loaded<'_>,
    name: &CStr,
    args: &[Option<&[u8]>],
    convert: impl FnOnce(*mut PyObject) -> Result<T, String>,
) -> Result<T, String> {
    let call = loaded.call;
    let func = name.to_string_lossy();
    let key = object::str_from(&func);
    let f = match object::lookup_attr(loaded.module.as_ptr(), key.as_ptr()) {
        Ok(Some(f)) => f,
        Ok(None) => {
            let msg = format!(
                "RWSGI0081: {} {:?} defines no {func}() function",
                call.directive, call.script
            );
            call.log.log(Level::Error, &msg);
            return Err(msg);
        }
        Err(()) => {
            return Err(loaded.fail(format!("looking up {func} in {:?} raised", call.script)))
        }
    };
    let tuple = Owned::new(PyTuple_New(1 + args.len() as Py_ssize_t))
        .ok_or_else(|| loaded.fail("cannot build the arguments".into()))?;
    // PyTuple_SetItem steals the references.
    PyTuple_SetItem(
        tuple.as_ptr(),
        0,
        Owned::from_borrowed(loaded.environ.as_ptr()).into_ptr(),
    );
    for (i, a) in args.iter().enumerate() {
        let item = match a {
            Some(b) => object::latin1(b),
            None => Owned::from_borrowed(Py_None()),
        };
        PyTuple_SetItem(tuple.as_ptr(), 1 + i as Py_ssize_t, item.into_ptr());
    }
    let r = Owned::new(PyObject_Call(
        f.as_ptr(),
        tuple.as_ptr(),
        std::ptr::null_mut(),
    ))
    .ok_or_else(|| {
        loaded.fail(format!(
            "{func}() of {} {:?} raised",
            call.directive, call.script
        ))
    })?;
    convert(r.as_ptr()).map_err(|e| {
        let what = format!("{func}() of {} {:?}: {e}", call.directive, call.script);
        if PyErr_Occurred().is_null() {
            call.log.log(Level::Error, &format!("RWSGI0080: {what}"));
            what
        } else {
            loaded.fail(what)
        }
    })
}
