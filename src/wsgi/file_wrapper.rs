//! `wsgi.file_wrapper` (PEP 3333 §Optional Platform-Specific File Handling),
//! type `mod_wsgi.FileWrapper(filelike, blksize=8192)`.
//!
//! Returned as the response, a wrapper around a real file (`fileno()` of a
//! regular file) is sent by Apache from the file's current position with a
//! file bucket (sendfile or mmap); anything else is iterated, `blksize`
//! bytes per `read()`. `close()` closes the file-like object.

use super::module::{free_instance, type_slot};
use crate::python::object::{self, Owned};
use pyo3_ffi::*;
use std::ffi::c_void;
use std::ptr;

/// The Python object.
#[repr(C)]
pub struct FileWrapperObject {
    ob_base: PyObject,
    /// The wrapped file-like object (strong reference).
    pub filelike: *mut PyObject,
    /// Bytes per `read()` when iterated.
    pub blksize: Py_ssize_t,
}

unsafe extern "C" fn tp_new(
    tp: *mut PyTypeObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    crate::apache::guard("FileWrapper()", ptr::null_mut(), || unsafe {
        let nargs = PyTuple_Size(args);
        let kw = |name: &std::ffi::CStr| {
            if kwargs.is_null() {
                ptr::null_mut()
            } else {
                PyDict_GetItemString(kwargs, name.as_ptr())
            }
        };
        let filelike = if nargs >= 1 {
            PyTuple_GetItem(args, 0)
        } else {
            kw(c"filelike")
        };
        let blk = if nargs >= 2 {
            PyTuple_GetItem(args, 1)
        } else {
            kw(c"blksize")
        };
        if filelike.is_null() || nargs > 2 {
            return object::raise(PyExc_TypeError, "FileWrapper(filelike, blksize=8192)");
        }
        let blksize = if blk.is_null() {
            8192
        } else {
            let v = PyLong_AsSsize_t(blk);
            if v == -1 && !PyErr_Occurred().is_null() {
                return ptr::null_mut();
            }
            if v <= 0 {
                return object::raise(PyExc_ValueError, "FileWrapper blksize must be positive");
            }
            v
        };
        let o = PyType_GenericAlloc(tp, 0);
        if o.is_null() {
            return o;
        }
        let fw = o as *mut FileWrapperObject;
        (*fw).filelike = Py_NewRef(filelike);
        (*fw).blksize = blksize;
        o
    })
}

unsafe extern "C" fn dealloc(o: *mut PyObject) {
    let fw = o as *mut FileWrapperObject;
    if !(*fw).filelike.is_null() {
        Py_DECREF((*fw).filelike);
    }
    free_instance(o);
}

unsafe extern "C" fn iter_self(o: *mut PyObject) -> *mut PyObject {
    Py_NewRef(o)
}

unsafe extern "C" fn iternext(o: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("FileWrapper.__next__", ptr::null_mut(), || unsafe {
        let fw = o as *mut FileWrapperObject;
        let n = Owned::from_owned(PyLong_FromSsize_t((*fw).blksize));
        let Some(read) = Owned::new(PyObject_GetAttrString((*fw).filelike, c"read".as_ptr()))
        else {
            return ptr::null_mut();
        };
        let Some(data) = Owned::new(PyObject_CallOneArg(read.as_ptr(), n.as_ptr())) else {
            return ptr::null_mut();
        };
        let empty = if PyBytes_Check(data.as_ptr()) != 0 {
            PyBytes_Size(data.as_ptr()) == 0
        } else {
            PyObject_IsTrue(data.as_ptr()) == 0
        };
        if empty {
            ptr::null_mut()
        } else {
            data.into_ptr()
        }
    })
}

unsafe extern "C" fn close(o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    let fw = o as *mut FileWrapperObject;
    let f = (*fw).filelike;
    if PyObject_HasAttrString(f, c"close".as_ptr()) != 0 {
        return PyObject_CallMethod(f, c"close".as_ptr(), ptr::null());
    }
    Py_NewRef(Py_None())
}

static mut METHODS: [PyMethodDef; 2] = [
    PyMethodDef {
        ml_name: c"close".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunction: close },
        ml_flags: METH_NOARGS,
        ml_doc: c"close(): close the wrapped file-like object.".as_ptr(),
    },
    PyMethodDef::zeroed(),
];

static mut MEMBERS: [PyMemberDef; 3] = [
    PyMemberDef {
        name: c"filelike".as_ptr(),
        type_code: Py_T_OBJECT_EX,
        offset: std::mem::offset_of!(FileWrapperObject, filelike) as Py_ssize_t,
        flags: Py_READONLY,
        doc: c"The wrapped file-like object.".as_ptr(),
    },
    PyMemberDef {
        name: c"blksize".as_ptr(),
        type_code: Py_T_PYSSIZET,
        offset: std::mem::offset_of!(FileWrapperObject, blksize) as Py_ssize_t,
        flags: Py_READONLY,
        doc: c"Block size in bytes for iteration.".as_ptr(),
    },
    PyMemberDef {
        name: ptr::null(),
        type_code: 0,
        offset: 0,
        flags: 0,
        doc: ptr::null(),
    },
];

/// Type slots of `mod_wsgi.FileWrapper`.
pub fn slots() -> Vec<PyType_Slot> {
    vec![
        type_slot(Py_tp_new, tp_new as *mut c_void),
        type_slot(Py_tp_dealloc, dealloc as *mut c_void),
        type_slot(Py_tp_iter, iter_self as *mut c_void),
        type_slot(Py_tp_iternext, iternext as *mut c_void),
        type_slot(Py_tp_methods, ptr::addr_of_mut!(METHODS) as *mut c_void),
        type_slot(Py_tp_members, ptr::addr_of_mut!(MEMBERS) as *mut c_void),
        type_slot(
            Py_tp_doc,
            c"wsgi.file_wrapper(filelike, blksize=8192): send a file efficiently (PEP 3333)."
                .as_ptr() as *mut c_void,
        ),
    ]
}
