//! `wsgi.errors` (PEP 3333 §Input and Error Streams): as with mod_wsgi, an
//! `io.TextIOWrapper` (UTF-8, errors 'replace', line buffered,
//! write-through) over a `mod_wsgi.Log` (its `.buffer`), one per request,
//! writing to Apache's error log against that request (its `[client ...]`
//! context), one log line per text line.
//!
//! `mod_wsgi.Log` methods: `write(str|bytes-like)`, `writelines(iterable)`, `flush()` (logs a
//! partial line), `close()`, `closed`, `isatty()`, `readable()`,
//! `writable()`, `seekable()`, `name`, `encoding`, `errors`, and `buffer`
//! (the object itself, so `errors.buffer.write(b"...")` works as with
//! mod_wsgi's `io.TextIOWrapper`). Closing one request's stream affects
//! only that request; at the end of the request the stream expires: its
//! partial line is logged and later writes raise `RuntimeError` (as
//! mod_wsgi's "log object has expired"), so a stream kept in a global never
//! writes under another request's context.

use super::module::{free_instance, type_slot};
use crate::apache::{self, LogTarget};
use crate::python::object::{self, Owned};
use crate::python::{log_lines, take_complete_lines};
use pyo3_ffi::*;
use std::ffi::c_void;
use std::ptr;

/// The Python object (`mod_wsgi.Log`). All fields are GIL-protected.
#[repr(C)]
pub struct LogObject {
    ob_base: PyObject,
    /// Where the lines go (the request); `None` once expired.
    target: Option<LogTarget>,
    /// Owned `Box<Vec<u8>>`: a partial line waiting for its newline.
    pending: *mut Vec<u8>,
    closed: bool,
}

/// Creates the `wsgi.errors` stream of a request, logging to `target`.
/// GIL held.
pub unsafe fn new_log(tp: *mut PyTypeObject, target: LogTarget) -> Option<Owned> {
    let o = Owned::new(PyType_GenericAlloc(tp, 0))?;
    let log = o.as_ptr() as *mut LogObject;
    ptr::write(ptr::addr_of_mut!((*log).target), Some(target));
    (*log).pending = Box::into_raw(Box::default());
    (*log).closed = false;
    Some(o)
}

/// A thread's last `wsgi.errors` pair of one interpreter, kept for its next
/// request: the wrapper, the Log under it, the Log type (of the
/// interpreter) and the reference counts the pair had when only this cache
/// held it.
#[derive(Clone, Copy)]
struct Cached {
    wrapper: *mut PyObject,
    log: *mut PyObject,
    tp: *mut PyTypeObject,
    wrapper_refs: Py_ssize_t,
    log_refs: Py_ssize_t,
}

thread_local! {
    /// One pair per interpreter (Log type) this thread served requests in:
    /// a pair is only ever used and released in its own interpreter.
    static CACHED: std::cell::RefCell<Vec<Cached>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The `wsgi.errors` of a request, as mod_wsgi makes it: an
/// `io.TextIOWrapper` (UTF-8, errors `'replace'`, line buffered,
/// write-through) over a `mod_wsgi.Log` (its `.buffer`) logging to
/// `target`. Returns (wrapper, log); [`expire`] the log at the end of the
/// request. The pair is reused by this thread's next request in the same
/// interpreter when nothing else holds a reference to either (so no one can
/// tell), which keeps the wrapper's construction off the request path.
/// GIL held, with `tp`'s interpreter current.
pub unsafe fn new_stream(tp: *mut PyTypeObject, target: LogTarget) -> Option<(Owned, Owned)> {
    let reuse = CACHED.with(|c| {
        let c = c.borrow();
        let c = c.iter().find(|c| c.tp == tp)?;
        let l = log(c.log);
        let free = Py_REFCNT(c.wrapper) == c.wrapper_refs
            && Py_REFCNT(c.log) == c.log_refs
            && !l.closed
            && l.target.is_none()
            && !l.pending.is_null()
            && (*l.pending).is_empty();
        free.then_some((c.wrapper, c.log))
    });
    if let Some((w, l)) = reuse {
        log(l).target = Some(target);
        return Some((Owned::from_borrowed(w), Owned::from_borrowed(l)));
    }
    let log = new_log(tp, target)?;
    let io = Owned::new(PyImport_ImportModule(c"io".as_ptr()))?;
    let cls = Owned::new(PyObject_GetAttrString(
        io.as_ptr(),
        c"TextIOWrapper".as_ptr(),
    ))?;
    let args = Owned::new(PyTuple_New(6))?;
    for (i, item) in [
        Owned::from_borrowed(log.as_ptr()),
        object::str_from("utf-8"),
        object::str_from("replace"),
        Owned::from_borrowed(Py_None()),
        Owned::from_borrowed(Py_True()),
        Owned::from_borrowed(Py_True()),
    ]
    .into_iter()
    .enumerate()
    {
        // Steals the reference.
        PyTuple_SetItem(args.as_ptr(), i as Py_ssize_t, item.into_ptr());
    }
    let wrapper = Owned::new(PyObject_Call(cls.as_ptr(), args.as_ptr(), ptr::null_mut()))?;
    drop(args); // its reference to the log is not one "nobody else" holds
                // The cache holds one reference to each; the counts now are those of
                // "nobody else holds them" (the wrapper holds the log).
    let fresh = Cached {
        wrapper: Owned::from_borrowed(wrapper.as_ptr()).into_ptr(),
        log: Owned::from_borrowed(log.as_ptr()).into_ptr(),
        tp,
        wrapper_refs: Py_REFCNT(wrapper.as_ptr()) - 1,
        log_refs: Py_REFCNT(log.as_ptr()) - 1,
    };
    let old = CACHED.with(|c| {
        let mut c = c.borrow_mut();
        match c.iter_mut().find(|c| c.tp == tp) {
            Some(slot) => Some(std::mem::replace(slot, fresh)),
            None => {
                c.push(fresh);
                None
            }
        }
    });
    // Released outside the borrow (a dealloc may run Python code), in the
    // pair's own interpreter (the current one).
    if let Some(old) = old {
        Py_DECREF(old.wrapper);
        Py_DECREF(old.log);
    }
    Some((wrapper, log))
}

/// Ends the stream with its request: logs the partial line against it and
/// makes later writes raise. GIL held.
pub unsafe fn expire(o: *mut PyObject) {
    let log = &mut *(o as *mut LogObject);
    flush_pending(log);
    log.target = None;
}

unsafe fn flush_pending(log: &mut LogObject) {
    if let (Some(target), false) = (log.target, log.pending.is_null()) {
        let rest = std::mem::take(&mut *log.pending);
        log_lines(target, &rest);
    }
}

unsafe extern "C" fn dealloc(o: *mut PyObject) {
    let log = o as *mut LogObject;
    if !(*log).pending.is_null() {
        drop(Box::from_raw((*log).pending));
    }
    free_instance(o);
}

unsafe fn log<'a>(o: *mut PyObject) -> &'a mut LogObject {
    &mut *(o as *mut LogObject)
}

/// Checks that the stream can take text: not closed, request not over.
unsafe fn check_open(log: &LogObject) -> Result<(), ()> {
    if log.closed {
        object::raise(
            PyExc_ValueError,
            "I/O operation on closed file (wsgi.errors)",
        );
        return Err(());
    }
    if log.target.is_none() {
        object::raise(
            PyExc_RuntimeError,
            "wsgi.errors of a finished request used: the log object has expired (each request has its own)",
        );
        return Err(());
    }
    Ok(())
}

/// Logs `data` (UTF-8 text or raw bytes): complete lines now, a partial
/// line when its newline comes, at flush or at the end of the request.
unsafe fn write_bytes(log: &mut LogObject, data: &[u8]) {
    if let (Some(lines), Some(target)) = (take_complete_lines(&mut *log.pending, data), log.target)
    {
        log_lines(target, &lines);
    }
}

/// Writes one `str` or bytes-like item; returns its length (characters or
/// bytes, as `io` does) or `Err` with an exception set.
unsafe fn write_item(log: &mut LogObject, item: *mut PyObject) -> Result<Py_ssize_t, ()> {
    if PyUnicode_Check(item) != 0 {
        let mut n: Py_ssize_t = 0;
        let p = PyUnicode_AsUTF8AndSize(item, &mut n);
        if !p.is_null() {
            write_bytes(log, std::slice::from_raw_parts(p as *const u8, n as usize));
        } else {
            // Lone surrogates: escape them rather than lose the text.
            PyErr_Clear();
            let b = Owned::new(PyUnicode_AsEncodedString(
                item,
                c"utf-8".as_ptr(),
                c"backslashreplace".as_ptr(),
            ))
            .ok_or(())?;
            write_bytes(log, object::bytes_ref(b.as_ptr()));
        }
        return Ok(PyUnicode_GetLength(item));
    }
    if PyBytes_Check(item) != 0 {
        let b = object::bytes_ref(item);
        write_bytes(log, b);
        return Ok(b.len() as Py_ssize_t);
    }
    if PyObject_CheckBuffer(item) != 0 {
        // bytearray, memoryview, array...: the bytes they expose.
        let mut view = std::mem::MaybeUninit::<Py_buffer>::zeroed();
        if PyObject_GetBuffer(item, view.as_mut_ptr(), PyBUF_SIMPLE) < 0 {
            return Err(());
        }
        let v = view.assume_init_mut();
        let n = v.len;
        if !v.buf.is_null() && n > 0 {
            write_bytes(
                log,
                std::slice::from_raw_parts(v.buf as *const u8, n as usize),
            );
        }
        PyBuffer_Release(v);
        return Ok(n);
    }
    object::raise(
        PyExc_TypeError,
        &format!(
            "wsgi.errors.write() argument must be str, not {} (PEP 3333)",
            object::type_name(item)
        ),
    );
    Err(())
}

unsafe extern "C" fn write(o: *mut PyObject, item: *mut PyObject) -> *mut PyObject {
    apache::guard("wsgi.errors.write", ptr::null_mut(), || unsafe {
        let log = log(o);
        if check_open(log).is_err() {
            return ptr::null_mut();
        }
        match write_item(log, item) {
            Ok(n) => PyLong_FromSsize_t(n),
            Err(()) => ptr::null_mut(),
        }
    })
}

unsafe extern "C" fn writelines(o: *mut PyObject, lines: *mut PyObject) -> *mut PyObject {
    apache::guard("wsgi.errors.writelines", ptr::null_mut(), || unsafe {
        let log = log(o);
        if check_open(log).is_err() {
            return ptr::null_mut();
        }
        let Some(iter) = Owned::new(PyObject_GetIter(lines)) else {
            return ptr::null_mut();
        };
        while let Some(item) = Owned::new(PyIter_Next(iter.as_ptr())) {
            if write_item(log, item.as_ptr()).is_err() {
                return ptr::null_mut();
            }
        }
        if !PyErr_Occurred().is_null() {
            return ptr::null_mut();
        }
        Py_NewRef(Py_None())
    })
}

unsafe extern "C" fn flush(o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    apache::guard("wsgi.errors.flush", ptr::null_mut(), || unsafe {
        let log = log(o);
        if check_open(log).is_err() {
            return ptr::null_mut();
        }
        flush_pending(log);
        Py_NewRef(Py_None())
    })
}

unsafe extern "C" fn close(o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    apache::guard("wsgi.errors.close", ptr::null_mut(), || unsafe {
        let log = log(o);
        flush_pending(log);
        log.closed = true;
        Py_NewRef(Py_None())
    })
}

unsafe extern "C" fn false_(_o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    Py_NewRef(Py_False())
}

unsafe extern "C" fn true_(_o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    Py_NewRef(Py_True())
}

unsafe extern "C" fn get_closed(o: *mut PyObject, _c: *mut c_void) -> *mut PyObject {
    PyBool_FromLong(log(o).closed as _)
}

unsafe extern "C" fn get_self(o: *mut PyObject, _c: *mut c_void) -> *mut PyObject {
    Py_NewRef(o)
}

unsafe extern "C" fn get_const(_o: *mut PyObject, c: *mut c_void) -> *mut PyObject {
    PyUnicode_FromString(c as *const std::ffi::c_char)
}

const fn method(
    name: &'static std::ffi::CStr,
    meth: PyMethodDefPointer,
    flags: std::ffi::c_int,
    doc: &'static std::ffi::CStr,
) -> PyMethodDef {
    PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }
}

static mut METHODS: [PyMethodDef; 9] = [
    method(
        c"write",
        PyMethodDefPointer { PyCFunction: write },
        METH_O,
        c"write(text: str) -> int: log text (bytes accepted too); one log line per line.",
    ),
    method(
        c"writelines",
        PyMethodDefPointer {
            PyCFunction: writelines,
        },
        METH_O,
        c"writelines(lines): write each item.",
    ),
    method(
        c"flush",
        PyMethodDefPointer { PyCFunction: flush },
        METH_NOARGS,
        c"flush(): log a pending partial line now.",
    ),
    method(
        c"close",
        PyMethodDefPointer { PyCFunction: close },
        METH_NOARGS,
        c"close(): flush and close this request's stream (later writes raise ValueError).",
    ),
    method(
        c"isatty",
        PyMethodDefPointer {
            PyCFunction: false_,
        },
        METH_NOARGS,
        c"isatty() -> False",
    ),
    method(
        c"readable",
        PyMethodDefPointer {
            PyCFunction: false_,
        },
        METH_NOARGS,
        c"readable() -> False",
    ),
    method(
        c"seekable",
        PyMethodDefPointer {
            PyCFunction: false_,
        },
        METH_NOARGS,
        c"seekable() -> False",
    ),
    method(
        c"writable",
        PyMethodDefPointer { PyCFunction: true_ },
        METH_NOARGS,
        c"writable() -> True",
    ),
    PyMethodDef::zeroed(),
];

const fn getter(
    name: &'static std::ffi::CStr,
    get: getter,
    closure: *mut c_void,
    doc: &'static std::ffi::CStr,
) -> PyGetSetDef {
    PyGetSetDef {
        name: name.as_ptr(),
        get: Some(get),
        set: None,
        doc: doc.as_ptr(),
        closure,
    }
}

static mut GETSET: [PyGetSetDef; 6] = [
    getter(
        c"closed",
        get_closed,
        ptr::null_mut(),
        c"Whether close() was called on this request's stream.",
    ),
    getter(
        c"buffer",
        get_self,
        ptr::null_mut(),
        c"The stream itself (it takes bytes too).",
    ),
    getter(
        c"name",
        get_const,
        c"wsgi.errors".as_ptr() as *mut c_void,
        c"'wsgi.errors'",
    ),
    getter(
        c"encoding",
        get_const,
        c"utf-8".as_ptr() as *mut c_void,
        c"'utf-8'",
    ),
    getter(
        c"errors",
        get_const,
        c"backslashreplace".as_ptr() as *mut c_void,
        c"'backslashreplace'",
    ),
    PyGetSetDef {
        name: ptr::null(),
        get: None,
        set: None,
        doc: ptr::null(),
        closure: ptr::null_mut(),
    },
];

/// Type slots of `mod_wsgi.Log`.
pub fn slots() -> Vec<PyType_Slot> {
    vec![
        type_slot(Py_tp_dealloc, dealloc as *mut c_void),
        type_slot(Py_tp_methods, ptr::addr_of_mut!(METHODS) as *mut c_void),
        type_slot(Py_tp_getset, ptr::addr_of_mut!(GETSET) as *mut c_void),
        type_slot(
            Py_tp_doc,
            c"wsgi.errors: this request's error stream to Apache's error log (PEP 3333).".as_ptr()
                as *mut c_void,
        ),
    ]
}
