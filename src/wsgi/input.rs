//! `wsgi.input` (PEP 3333 §Input and Error Streams), type `mod_wsgi.Input`:
//! `read([size])`, `readline([size])`, `readlines([hint])`, iteration and
//! `close()`, streamed from the request's [`BodyReader`] (embedded: Apache's
//! input filters; daemon: the Apache child) with the GIL released during
//! each read. Memory is bounded by what the application asks for: nothing
//! is read ahead beyond one 8 KiB block for `readline`.

use super::module::{free_instance, type_slot};
use super::transport::BodyReader;
use crate::apache;
use crate::python::object::{self, Owned};
use crate::python::{self, Gil};
use pyo3_ffi::*;
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::{Arc, Mutex};

extern "C" {
    fn _PyBytes_Resize(bytes: *mut *mut PyObject, newsize: Py_ssize_t) -> std::ffi::c_int;
}

/// Bytes `readline` reads from Apache at a time.
const LINE_BLOCK: usize = 8192;
/// Bytes read per call when the body length is unknown (chunked).
const READ_BLOCK: usize = 65536;

/// The request's body reader behind a lock: `None` once the request has
/// finished. A read happens with the lock held, and the end of the request
/// takes it, so a thread blocked in `read()` when the request ends finishes
/// that read and then gets an error; it never touches the finished request.
type Source = Arc<Mutex<Option<Box<dyn BodyReader>>>>;

/// The end of a request's input, held by the request thread: dropping it
/// (without the GIL, after the response went out) waits for a read still in
/// progress in an application thread, then makes later reads fail.
pub struct InputEnd(Source);

impl Drop for InputEnd {
    fn drop(&mut self) {
        let reader = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(reader);
    }
}

/// State of one request's input stream. GIL-protected, except `source`.
pub struct InputState {
    /// Set when the request has finished: reads that start later raise.
    finished: bool,
    source: Source,
    /// Body bytes still to come when the length is known (Content-Length).
    remaining: Option<u64>,
    /// Read-ahead from `readline`, consumed from `pos`.
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Reads, bytes and their time (metrics).
    io: super::metrics::Io,
}

/// The Python object (`mod_wsgi.Input`).
#[repr(C)]
pub struct InputObject {
    ob_base: PyObject,
    /// Owned `Box<InputState>`, null until initialised.
    pub state: *mut InputState,
}

/// Creates the `wsgi.input` object of a request whose body comes from
/// `reader`; `length` is its Content-Length in bytes, `None` when chunked.
/// GIL held.
pub unsafe fn new_input(
    tp: *mut PyTypeObject,
    reader: Box<dyn BodyReader>,
    length: Option<u64>,
) -> Option<Owned> {
    let o = Owned::new(PyType_GenericAlloc(tp, 0))?;
    (*(o.as_ptr() as *mut InputObject)).state = Box::into_raw(Box::new(InputState {
        finished: false,
        source: Arc::new(Mutex::new(Some(reader))),
        remaining: length,
        buf: Vec::new(),
        pos: 0,
        eof: length == Some(0),
        io: Default::default(),
    }));
    Some(o)
}

/// Detaches the input object from its request: reads that start from now
/// on raise. Returns the [`InputEnd`] that the request thread drops once the
/// GIL is released, waiting for a read already in progress. GIL held.
pub unsafe fn detach(o: *mut PyObject) -> InputEnd {
    let st = &mut *(*(o as *mut InputObject)).state;
    st.finished = true;
    InputEnd(Arc::clone(&st.source))
}

/// The request body reads of input object `o` so far (metrics). GIL held.
///
/// # Safety
/// `o` must be an `InputObject` made by [`new_input`].
pub unsafe fn io(o: *mut PyObject) -> super::metrics::Io {
    (*(*(o as *mut InputObject)).state).io
}

unsafe extern "C" fn dealloc(o: *mut PyObject) {
    let st = (*(o as *mut InputObject)).state;
    if !st.is_null() {
        drop(Box::from_raw(st));
    }
    free_instance(o);
}

enum ReadError {
    Finished,
    /// The body could not be read; says what happened.
    Body(String),
    /// A Python exception (MemoryError) is already set.
    Python,
}

impl ReadError {
    unsafe fn raise(self) -> *mut PyObject {
        match self {
            ReadError::Finished => object::raise(
                PyExc_OSError,
                "wsgi.input was used after its request finished",
            ),
            ReadError::Body(why) => {
                object::raise(PyExc_OSError, &format!("request body read error: {why}"))
            }
            ReadError::Python => ptr::null_mut(),
        }
    }
}

impl InputState {
    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes of body still to come, when known (Content-Length).
    fn known_remaining(&self) -> Option<usize> {
        if self.finished {
            None
        } else {
            self.remaining.map(|n| n as usize)
        }
    }

    /// Reads body bytes into `dst` with the GIL released once: one read
    /// when `until_full` is false (what is available, for `readline`), else
    /// until `dst` is full or the body ends (`dst` must then not be
    /// reachable from Python meanwhile). Returns the bytes read; 0 at the
    /// end of the body.
    unsafe fn read_body(
        &mut self,
        gil: &Gil,
        dst: &mut [u8],
        until_full: bool,
    ) -> Result<usize, ReadError> {
        if self.eof || dst.is_empty() {
            return Ok(0);
        }
        if self.finished {
            return Err(ReadError::Finished);
        }
        let source = &self.source;
        let t0 = super::metrics::io_timer();
        let (filled, end) = python::allow_threads(gil, || {
            let mut filled = 0usize;
            while filled < dst.len() {
                let mut reader = source.lock().unwrap_or_else(|e| e.into_inner());
                let Some(reader) = reader.as_mut() else {
                    return (filled, Some(Err(ReadError::Finished)));
                };
                match reader.read(&mut dst[filled..]) {
                    Ok(0) => return (filled, Some(Ok(()))),
                    Ok(n) => filled += n,
                    Err(why) => return (filled, Some(Err(ReadError::Body(why)))),
                }
                if !until_full {
                    break;
                }
            }
            (filled, None)
        });
        self.io.add(filled as u64, t0);
        if let Some(rem) = self.remaining.as_mut() {
            *rem = rem.saturating_sub(filled as u64);
        }
        match end {
            Some(Ok(())) => self.eof = true,
            Some(Err(e)) => {
                self.eof = true;
                return Err(e);
            }
            None => {}
        }
        Ok(filled)
    }

    /// Appends up to `want` more bytes from Apache to the read-ahead buffer.
    unsafe fn fill(&mut self, gil: &Gil, want: usize) -> Result<usize, ReadError> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > LINE_BLOCK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let mut tmp = std::mem::take(&mut self.buf);
        let res = self.read_body(gil, &mut tmp[old..], false);
        let n = *res.as_ref().unwrap_or(&0);
        tmp.truncate(old + n);
        self.buf = tmp;
        res
    }

    /// `read(size)`; `size < 0` reads to the end of the body.
    unsafe fn read(&mut self, gil: &Gil, size: isize) -> Result<Owned, ReadError> {
        if self.finished {
            return Err(ReadError::Finished);
        }
        let buffered = self.buffered();
        let cap = match (size, self.known_remaining()) {
            (s, Some(rem)) if s < 0 => buffered + rem,
            (s, Some(rem)) => (s as usize).min(buffered + rem),
            (s, None) if s < 0 => buffered + READ_BLOCK,
            (s, None) => (s as usize).min(buffered + READ_BLOCK),
        };
        let target = if size < 0 { usize::MAX } else { size as usize };
        let mut out = PyBytes_FromStringAndSize(ptr::null(), cap as Py_ssize_t);
        if out.is_null() {
            return Err(ReadError::Python);
        }
        let mut len = buffered.min(cap);
        let base = PyBytes_AsString(out) as *mut u8;
        ptr::copy_nonoverlapping(self.buf.as_ptr().add(self.pos), base, len);
        self.pos += len;
        let mut capacity = cap;
        let mut result = Ok(());
        while len < target {
            if len == capacity {
                if self.eof || (self.known_remaining() == Some(0)) {
                    break;
                }
                // Unknown length (chunked): grow geometrically.
                let grow = capacity.max(READ_BLOCK).min(target - len);
                capacity += grow;
                if _PyBytes_Resize(&mut out, capacity as Py_ssize_t) < 0 {
                    return Err(ReadError::Python);
                }
            }
            let base = PyBytes_AsString(out) as *mut u8;
            let dst = std::slice::from_raw_parts_mut(base.add(len), capacity - len);
            // `out` is not shared with Python yet: it can be filled without the GIL.
            match self.read_body(gil, dst, true) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = result {
            Py_DECREF(out);
            return Err(e);
        }
        if len != capacity && _PyBytes_Resize(&mut out, len as Py_ssize_t) < 0 {
            return Err(ReadError::Python);
        }
        Ok(Owned::from_owned(out))
    }

    /// `readline(size)`: up to and including the next `\n`, at most `size`
    /// bytes when `size >= 0`.
    unsafe fn readline(&mut self, gil: &Gil, size: isize) -> Result<Owned, ReadError> {
        if self.finished {
            return Err(ReadError::Finished);
        }
        let limit = if size < 0 { usize::MAX } else { size as usize };
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.pos..];
            let end = match avail[scanned..].iter().position(|&b| b == b'\n') {
                Some(i) => Some((scanned + i + 1).min(limit)),
                None if avail.len() >= limit => Some(limit),
                None if self.eof => Some(avail.len()),
                None => None,
            };
            if let Some(end) = end {
                let line = &avail[..end];
                let o = Owned::from_owned(PyBytes_FromStringAndSize(
                    line.as_ptr() as *const c_char,
                    line.len() as Py_ssize_t,
                ));
                self.pos += end;
                return Ok(o);
            }
            scanned = avail.len();
            let want = LINE_BLOCK.min(limit - avail.len());
            if self.fill(gil, want)? == 0 {
                self.eof = true;
            }
        }
    }
}

unsafe fn state<'a>(o: *mut PyObject) -> &'a mut InputState {
    &mut *(*(o as *mut InputObject)).state
}

/// Parses an optional size argument (None or an int; negative = all).
unsafe fn size_arg(args: *mut *mut PyObject, nargs: Py_ssize_t, what: &str) -> Result<isize, ()> {
    if nargs > 1 {
        object::raise(
            PyExc_TypeError,
            &format!("{what}() takes at most 1 argument"),
        );
        return Err(());
    }
    if nargs == 0 || *args == Py_None() {
        return Ok(-1);
    }
    let v = PyLong_AsSsize_t(*args);
    if v == -1 && !PyErr_Occurred().is_null() {
        PyErr_Clear();
        object::raise(
            PyExc_TypeError,
            &format!(
                "{what}() size must be an integer or None, not {}",
                object::type_name(*args)
            ),
        );
        return Err(());
    }
    Ok(v)
}

unsafe extern "C" fn read(
    o: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    apache::guard("wsgi.input.read", ptr::null_mut(), || unsafe {
        let Ok(size) = size_arg(args, nargs, "read") else {
            return ptr::null_mut();
        };
        let gil = Gil::assume_held();
        let r = state(o).read(&gil, size);
        match r {
            Ok(b) => b.into_ptr(),
            Err(e) => e.raise(),
        }
    })
}

unsafe extern "C" fn readline(
    o: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    apache::guard("wsgi.input.readline", ptr::null_mut(), || unsafe {
        let Ok(size) = size_arg(args, nargs, "readline") else {
            return ptr::null_mut();
        };
        let gil = Gil::assume_held();
        let r = state(o).readline(&gil, size);
        match r {
            Ok(b) => b.into_ptr(),
            Err(e) => e.raise(),
        }
    })
}

unsafe extern "C" fn readlines(
    o: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    apache::guard("wsgi.input.readlines", ptr::null_mut(), || unsafe {
        let Ok(hint) = size_arg(args, nargs, "readlines") else {
            return ptr::null_mut();
        };
        let Some(list) = Owned::new(PyList_New(0)) else {
            return ptr::null_mut();
        };
        let gil = Gil::assume_held();
        let mut total = 0usize;
        let result = loop {
            match state(o).readline(&gil, -1) {
                Ok(line) => {
                    let n = PyBytes_Size(line.as_ptr()) as usize;
                    if n == 0 {
                        break Ok(());
                    }
                    PyList_Append(list.as_ptr(), line.as_ptr());
                    total += n;
                    if hint > 0 && total >= hint as usize {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => list.into_ptr(),
            Err(e) => e.raise(),
        }
    })
}

unsafe extern "C" fn iternext(o: *mut PyObject) -> *mut PyObject {
    apache::guard("wsgi.input.__next__", ptr::null_mut(), || unsafe {
        let gil = Gil::assume_held();
        let r = state(o).readline(&gil, -1);
        match r {
            Ok(line) if PyBytes_Size(line.as_ptr()) == 0 => ptr::null_mut(),
            Ok(line) => line.into_ptr(),
            Err(e) => e.raise(),
        }
    })
}

unsafe extern "C" fn iter_self(o: *mut PyObject) -> *mut PyObject {
    Py_NewRef(o)
}

unsafe extern "C" fn close(_o: *mut PyObject, _a: *mut PyObject) -> *mut PyObject {
    Py_NewRef(Py_None())
}

static mut METHODS: [PyMethodDef; 5] = [
    PyMethodDef {
        ml_name: c"read".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunctionFast: read },
        ml_flags: METH_FASTCALL,
        ml_doc: c"read(size=-1) -> bytes: up to size bytes of the request body (all if size < 0 or None).".as_ptr(),
    },
    PyMethodDef {
        ml_name: c"readline".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunctionFast: readline },
        ml_flags: METH_FASTCALL,
        ml_doc: c"readline(size=-1) -> bytes: the next line, including b'\\n', at most size bytes.".as_ptr(),
    },
    PyMethodDef {
        ml_name: c"readlines".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunctionFast: readlines },
        ml_flags: METH_FASTCALL,
        ml_doc: c"readlines(hint=-1) -> list of bytes lines, stopping once hint bytes were read.".as_ptr(),
    },
    PyMethodDef {
        ml_name: c"close".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunction: close },
        ml_flags: METH_NOARGS,
        ml_doc: c"close(): no-op (the server owns the stream).".as_ptr(),
    },
    PyMethodDef::zeroed(),
];

/// Type slots of `mod_wsgi.Input`.
pub fn slots() -> Vec<PyType_Slot> {
    vec![
        type_slot(Py_tp_dealloc, dealloc as *mut c_void),
        type_slot(Py_tp_iter, iter_self as *mut c_void),
        type_slot(Py_tp_iternext, iternext as *mut c_void),
        type_slot(Py_tp_methods, ptr::addr_of_mut!(METHODS) as *mut c_void),
        type_slot(
            Py_tp_doc,
            c"wsgi.input: the request body stream (PEP 3333).".as_ptr() as *mut c_void,
        ),
    ]
}
