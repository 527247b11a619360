//! Owned Python references and small conversions over the raw C API.
//! Every function here requires the GIL.

use pyo3_ffi::*;
use std::ffi::c_char;
use std::ptr::NonNull;

extern "C" {
    /// CPython 3.7-3.12's attribute lookup that reports "missing" without
    /// creating an AttributeError (`PyObject_GetOptionalAttr` from 3.13).
    fn _PyObject_LookupAttr(
        v: *mut PyObject,
        name: *mut PyObject,
        result: *mut *mut PyObject,
    ) -> std::ffi::c_int;
}

/// `getattr(o, name, None)` without the cost of raising and clearing an
/// AttributeError: `Ok(None)` when missing, `Err(())` with a Python error set
/// when the lookup itself failed.
///
/// # Safety
/// GIL held; `o` and `name` valid.
pub unsafe fn lookup_attr(o: *mut PyObject, name: *mut PyObject) -> Result<Option<Owned>, ()> {
    let mut out = std::ptr::null_mut();
    match _PyObject_LookupAttr(o, name, &mut out) {
        n if n < 0 => Err(()),
        0 => Ok(None),
        _ => Ok(Owned::new(out)),
    }
}

/// A strong reference to a Python object, released (`Py_DECREF`) on drop.
/// Must only be dropped with the GIL held.
pub struct Owned(NonNull<PyObject>);

/// Alias used for long-lived references kept in the runtime.
pub type PyPtr = Owned;

impl Owned {
    /// Takes ownership of a new reference; `None` for NULL (a Python error is set).
    pub fn new(p: *mut PyObject) -> Option<Owned> {
        NonNull::new(p).map(Owned)
    }

    /// Takes ownership of a new reference that must not be NULL.
    ///
    /// # Safety
    /// `p` must be a new, non-NULL reference.
    pub unsafe fn from_owned(p: *mut PyObject) -> Owned {
        Owned(NonNull::new(p).expect("unexpected NULL from the Python C API"))
    }

    /// Makes a new reference from a borrowed one (`Py_INCREF`).
    ///
    /// # Safety
    /// `p` must be a valid, non-NULL object; GIL held.
    pub unsafe fn from_borrowed(p: *mut PyObject) -> Owned {
        Py_INCREF(p);
        Owned::from_owned(p)
    }

    /// The raw pointer (still owned by `self`).
    pub fn as_ptr(&self) -> *mut PyObject {
        self.0.as_ptr()
    }

    /// Gives up ownership, returning the new reference.
    pub fn into_ptr(self) -> *mut PyObject {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own one reference; callers hold the GIL (type contract).
        unsafe { Py_DECREF(self.0.as_ptr()) }
    }
}

/// A new `str` from Rust text.
///
/// # Safety
/// GIL held.
pub unsafe fn str_from(s: &str) -> Owned {
    Owned::from_owned(PyUnicode_FromStringAndSize(
        s.as_ptr() as *const c_char,
        s.len() as Py_ssize_t,
    ))
}

/// An interned `str` (shared with every equal interned string).
///
/// # Safety
/// GIL held.
pub unsafe fn interned_str(s: &str) -> Owned {
    let mut p = PyUnicode_FromStringAndSize(s.as_ptr() as *const c_char, s.len() as Py_ssize_t);
    assert!(!p.is_null(), "cannot allocate a str");
    PyUnicode_InternInPlace(&mut p);
    Owned::from_owned(p)
}

/// A new `str` from bytes decoded as latin-1 (PEP 3333 native strings).
///
/// # Safety
/// GIL held.
pub unsafe fn latin1(b: &[u8]) -> Owned {
    Owned::from_owned(PyUnicode_DecodeLatin1(
        b.as_ptr() as *const c_char,
        b.len() as Py_ssize_t,
        std::ptr::null(),
    ))
}

/// The UTF-8 text of a `str` object; `None` (error cleared) for non-str or
/// un-encodable values.
///
/// # Safety
/// GIL held; `o` valid.
pub unsafe fn to_string(o: *mut PyObject) -> Option<String> {
    str_ref(o).map(str::to_owned)
}

/// Borrows the UTF-8 buffer of a `str` object (valid while `o` lives);
/// `None` (error cleared) for non-str or strings with lone surrogates.
///
/// # Safety
/// GIL held; `o` valid and kept alive for `'a`.
pub unsafe fn str_ref<'a>(o: *mut PyObject) -> Option<&'a str> {
    if PyUnicode_Check(o) == 0 {
        return None;
    }
    let mut len: Py_ssize_t = 0;
    let p = PyUnicode_AsUTF8AndSize(o, &mut len);
    if p.is_null() {
        PyErr_Clear();
        return None;
    }
    let bytes = std::slice::from_raw_parts(p as *const u8, len as usize);
    Some(std::str::from_utf8_unchecked(bytes))
}

/// Borrows the contents of a `bytes` object.
///
/// # Safety
/// GIL held; `o` must be a bytes object kept alive for `'a`.
pub unsafe fn bytes_ref<'a>(o: *mut PyObject) -> &'a [u8] {
    let p = PyBytes_AsString(o);
    let n = PyBytes_Size(o);
    std::slice::from_raw_parts(p as *const u8, n as usize)
}

/// `type(o).__name__` for error messages.
///
/// # Safety
/// GIL held; `o` valid.
pub unsafe fn type_name(o: *mut PyObject) -> String {
    let t = Py_TYPE(o);
    std::ffi::CStr::from_ptr((*t).tp_name)
        .to_string_lossy()
        .into_owned()
}

/// `repr(o)`, shortened to 200 characters, for error messages.
///
/// # Safety
/// GIL held; `o` valid.
pub unsafe fn short_repr(o: *mut PyObject) -> String {
    let r = Owned::new(PyObject_Repr(o));
    let mut s = r.and_then(|r| to_string(r.as_ptr())).unwrap_or_else(|| {
        PyErr_Clear();
        format!("<{} object>", type_name(o))
    });
    if s.chars().count() > 200 {
        s = s.chars().take(200).collect::<String>() + "...";
    }
    s
}

/// Raises `exc` with `msg` and returns NULL, for C-API callbacks.
///
/// # Safety
/// GIL held; `exc` an exception type.
pub unsafe fn raise(exc: *mut PyObject, msg: &str) -> *mut PyObject {
    let m = str_from(msg);
    PyErr_SetObject(exc, m.as_ptr());
    std::ptr::null_mut()
}
