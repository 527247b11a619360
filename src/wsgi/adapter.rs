//! `start_response` and the `write()` callable (PEP 3333 §The
//! start_response() Callable), and the response's way out through a
//! [`ResponseWriter`] (embedded: Apache's output filters; daemon: the
//! connection to the Apache child).
//!
//! The GIL is never held while output is sent: in embedded mode any filter
//! may block (mod_ratelimit) or run a handler again on this thread
//! (mod_include's sub-requests). Sends during the response release it; the
//! final batch of a small response (EOS, no file, under 16 KiB) is instead
//! set aside and sent once the request has released the GIL
//! ([`FinalPass`]), its bytes copied out of the Python objects, which costs
//! less than a GIL hand-off.
//!
//! All output of one request (the request thread and any application thread
//! calling `write()`) is serialised by a per-request output lock; the end of
//! the request takes that lock, so no writer can touch the request after it
//! is gone (later calls raise).
//!
//! The Python object `mod_wsgi.Adapter` is itself the `start_response`
//! callable passed to the application.

use super::module::{free_instance, type_slot};
use super::start_response;
pub use super::transport::Finish;
use super::transport::{Header, ResponseWriter};
use crate::apache;
use crate::python::object::{self, Owned};
use crate::python::{self, Gil};
use pyo3_ffi::*;
use rwsgi_core::validate::HeaderKind;
use std::ffi::c_void;
use std::ptr;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Why output stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The client went away (or a filter failed): stop producing output.
    ClientGone,
    /// The request has finished (output from another thread after its end).
    Finished,
}

/// Largest in-memory final body (bytes) whose sending is put off until the
/// GIL is released, at the price of one copy; larger ones are sent at once
/// with the GIL released.
const DEFERRED_PASS_LIMIT: u64 = 16 * 1024;

/// The request's output: everything the send path touches, only reached
/// through the per-request output lock.
pub struct Output {
    /// Where the response goes; `None` once the request has finished.
    writer: Option<Box<dyn ResponseWriter>>,
    /// Whether status and headers were handed to the writer.
    headers_sent: bool,
    /// Whether the response was ended (or its end is in the deferred batch).
    eos_sent: bool,
    /// `Content-Length` of the sent headers, in bytes.
    content_length: Option<u64>,
    /// Body bytes given to the writer so far.
    bytes_sent: u64,
    /// Set when the client went away.
    client_gone: bool,
    /// In-memory body bytes since the last flush.
    unflushed: u64,
    /// Whether a file region was added (sending it may block).
    sent_file: bool,
    /// Whether the writer holds a final batch set aside for [`FinalPass`].
    deferred: bool,
    /// Passes that carried body bytes and their time (metrics).
    writes: super::metrics::Io,
    /// `bytes_sent` at the last pass.
    bytes_passed: u64,
}

/// What has been sent so far, for the checks at the end of a request.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Whether status and headers were handed to the writer.
    pub headers_sent: bool,
    /// `Content-Length` of the sent headers, in bytes.
    pub content_length: Option<u64>,
    /// Body bytes given to the writer, in bytes.
    pub bytes_sent: u64,
    /// Whether the client went away.
    pub client_gone: bool,
}

/// A request's final batch of output, to be sent by the request thread once
/// it no longer holds the GIL.
pub struct FinalPass(Box<dyn ResponseWriter>);

impl FinalPass {
    /// Sends the batch. Call without the GIL, before the request ends (in
    /// embedded mode the batch lives in the request pool). Errors: the
    /// client went away.
    pub fn send(mut self) -> Result<(), SendError> {
        self.0.send_deferred().map_err(|_| SendError::ClientGone)
    }
}

/// Response state of one request. GIL-protected, except `out`.
pub struct AdapterState {
    /// Set when the request finished: later calls raise.
    finished: bool,
    /// Validated status code and line, once `start_response` was called.
    pub status: Option<(u16, String)>,
    headers: Vec<Header>,
    /// `Content-Length` declared by the application, in bytes.
    content_length: Option<u64>,
    out: Mutex<Output>,
    write_callable: *mut PyObject,
}

/// The Python object (`mod_wsgi.Adapter`).
#[repr(C)]
pub struct AdapterObject {
    ob_base: PyObject,
    /// Owned `Box<AdapterState>`.
    pub state: *mut AdapterState,
}

/// Creates the adapter (start_response) of a request whose response goes
/// to `writer`. GIL held.
pub unsafe fn new_adapter(tp: *mut PyTypeObject, writer: Box<dyn ResponseWriter>) -> Option<Owned> {
    let o = Owned::new(PyType_GenericAlloc(tp, 0))?;
    let out = Output {
        writer: Some(writer),
        headers_sent: false,
        eos_sent: false,
        content_length: None,
        bytes_sent: 0,
        client_gone: false,
        unflushed: 0,
        sent_file: false,
        deferred: false,
        writes: Default::default(),
        bytes_passed: 0,
    };
    (*(o.as_ptr() as *mut AdapterObject)).state = Box::into_raw(Box::new(AdapterState {
        finished: false,
        status: None,
        headers: Vec::new(),
        content_length: None,
        out: Mutex::new(out),
        write_callable: ptr::null_mut(),
    }));
    Some(o)
}

/// The state of an adapter object.
///
/// # Safety
/// `o` must be an `AdapterObject` made by [`new_adapter`]; GIL held.
pub unsafe fn state<'a>(o: *mut PyObject) -> &'a mut AdapterState {
    &mut *(*(o as *mut AdapterObject)).state
}

unsafe extern "C" fn dealloc(o: *mut PyObject) {
    let st = (*(o as *mut AdapterObject)).state;
    if !st.is_null() {
        let st = Box::from_raw(st);
        if !st.write_callable.is_null() {
            Py_DECREF(st.write_callable);
        }
    }
    free_instance(o);
}

/// Takes the output lock of a request: at once when free, else waiting with
/// the GIL released (the holder may need the GIL to finish).
fn lock_output<'a>(gil: &Gil, m: &'a Mutex<Output>) -> MutexGuard<'a, Output> {
    match m.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => {
            python::allow_threads(gil, || m.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }
}

impl AdapterState {
    /// Runs `f` on the request's output under its lock. Errors:
    /// [`SendError::Finished`] once the request has ended.
    unsafe fn with_output<T>(
        &self,
        gil: &Gil,
        f: impl FnOnce(&mut Output) -> Result<T, SendError>,
    ) -> Result<T, SendError> {
        let mut o = lock_output(gil, &self.out);
        if o.writer.is_none() {
            return Err(SendError::Finished);
        }
        f(&mut o)
    }

    /// Runs `f` on the output under its lock, status and headers handed to
    /// the writer first (once). Requires `status`.
    unsafe fn with_head<T>(
        &self,
        gil: &Gil,
        f: impl FnOnce(&mut Output) -> Result<T, SendError>,
    ) -> Result<T, SendError> {
        let status = self
            .status
            .as_ref()
            .expect("start_response before body data");
        self.with_output(gil, |o| {
            o.head(status, &self.headers, self.content_length);
            f(o)
        })
    }

    /// Sends body data (`chunks`, not copied), truncated to what
    /// `Content-Length` still allows, handing over status and headers
    /// first. Returns whether the response is now complete (ended, or its
    /// end set aside for the [`FinalPass`]). Requires `status`.
    pub unsafe fn send(
        &self,
        gil: &Gil,
        chunks: &[&[u8]],
        finish: Finish,
    ) -> Result<bool, SendError> {
        self.with_head(gil, |o| {
            if o.eos_sent {
                // Complete by Content-Length: the rest is dropped, as it
                // always is; ended because the application returned: too
                // late (a write() from another thread).
                return if o.complete() {
                    Ok(true)
                } else {
                    Err(SendError::Finished)
                };
            }
            for data in chunks {
                if o.complete() {
                    break;
                }
                o.add_data(data);
            }
            let finish = if finish == Finish::Flush && o.complete() {
                Finish::Eos
            } else {
                finish
            };
            o.pass(gil, finish)?;
            Ok(finish != Finish::Flush)
        })
    }

    /// Sends `len` bytes of open file `fd` from `offset` without passing
    /// through memory, ending the response; everything is written before
    /// this returns, so the application may close the file. `Ok(false)`
    /// when the transport cannot send files (nothing was sent: iterate the
    /// file instead). Requires `status`.
    pub unsafe fn send_file(
        &self,
        gil: &Gil,
        fd: i32,
        offset: u64,
        len: u64,
    ) -> Result<bool, SendError> {
        self.with_head(gil, |o| {
            let len = match o.content_length {
                Some(cl) => cl.saturating_sub(o.bytes_sent).min(len),
                None => len,
            };
            if len > 0 {
                if !o.writer_mut().file(fd, offset, len) {
                    return Ok(false);
                }
                o.bytes_sent += len;
                o.sent_file = true;
            }
            o.pass(gil, Finish::FlushEos)?;
            Ok(true)
        })
    }

    /// What has been sent so far.
    pub unsafe fn progress(&self, gil: &Gil) -> Progress {
        let o = lock_output(gil, &self.out);
        Progress {
            headers_sent: o.headers_sent,
            content_length: o.content_length,
            bytes_sent: o.bytes_sent,
            client_gone: o.client_gone,
        }
    }

    /// The response's output so far (metrics): passes that carried body
    /// bytes, their time, and the body bytes sent.
    pub unsafe fn output_io(&self, gil: &Gil) -> super::metrics::Io {
        let o = lock_output(gil, &self.out);
        super::metrics::Io {
            bytes: o.bytes_sent,
            ..o.writes
        }
    }

    /// Asks for the client connection to be closed after the response.
    pub unsafe fn close_connection(&self, gil: &Gil) {
        let _ = self.with_output(gil, |o| {
            o.writer_mut().close_connection();
            Ok(())
        });
    }

    /// Ends a response that already started but cannot be completed (an
    /// exception mid-stream): as mod_wsgi, what was sent is the response
    /// and the connection is closed after it ([`ResponseWriter::abort`]).
    pub unsafe fn abort_response(&self, gil: &Gil) {
        let _ = self.with_output(gil, |o| {
            if o.eos_sent || o.client_gone {
                return Ok(());
            }
            o.writer_mut().abort();
            o.pass(gil, Finish::Eos)
        });
    }

    /// Detaches the adapter from its finished request, waiting for any
    /// other thread's output to finish first: later calls raise, and the
    /// `write` callable's reference back to the adapter (a cycle) is
    /// dropped so both are freed. Returns the final batch set aside to be
    /// sent once the GIL is released, if any. GIL held.
    pub unsafe fn detach(&mut self, gil: &Gil) -> Option<FinalPass> {
        self.finished = true;
        let mut o = lock_output(gil, &self.out);
        let writer = o.writer.take();
        let last = if o.deferred {
            writer.map(FinalPass)
        } else {
            None
        };
        o.deferred = false;
        drop(o);
        let w = std::mem::replace(&mut self.write_callable, ptr::null_mut());
        if !w.is_null() {
            Py_DECREF(w);
        }
        last
    }
}

impl Output {
    fn writer_mut(&mut self) -> &mut dyn ResponseWriter {
        self.writer.as_deref_mut().expect("checked by with_output")
    }

    /// Whether no more body may be sent (Content-Length reached).
    fn complete(&self) -> bool {
        self.content_length.is_some_and(|cl| self.bytes_sent >= cl)
    }

    /// Hands status and headers to the writer, once.
    fn head(&mut self, status: &(u16, String), headers: &[Header], content_length: Option<u64>) {
        if !self.headers_sent {
            self.writer_mut().head(status, headers);
            self.content_length = content_length;
            self.headers_sent = true;
        }
    }

    /// Adds body data (not copied), truncated to what `Content-Length` still
    /// allows.
    ///
    /// # Safety
    /// `data` must stay alive and unchanged until the next [`pass`](Self::pass).
    unsafe fn add_data(&mut self, data: &[u8]) {
        let n = match self.content_length {
            Some(cl) => (cl.saturating_sub(self.bytes_sent)).min(data.len() as u64) as usize,
            None => data.len(),
        };
        if n > 0 {
            self.writer_mut().data(&data[..n]);
            self.bytes_sent += n as u64;
            self.unflushed += n as u64;
        }
    }

    /// Ends the batch as `finish` says and sends it with the GIL released,
    /// or, for a small final batch without files, has it set aside for the
    /// request's [`FinalPass`].
    unsafe fn pass(&mut self, gil: &Gil, finish: Finish) -> Result<(), SendError> {
        if self.client_gone {
            return Err(SendError::ClientGone);
        }
        if finish != Finish::Flush {
            self.eos_sent = true;
        }
        let t0 = super::metrics::io_timer();
        let carried = self.bytes_sent - self.bytes_passed;
        self.bytes_passed = self.bytes_sent;
        let deferrable =
            finish == Finish::Eos && !self.sent_file && self.unflushed < DEFERRED_PASS_LIMIT;
        if deferrable && self.writer_mut().set_aside(finish) {
            self.deferred = true;
            if carried > 0 {
                self.writes.add(0, t0);
            }
            return Ok(());
        }
        let writer = self.writer_mut();
        let rv = python::allow_threads(gil, || writer.send(finish));
        if carried > 0 {
            self.writes.add(0, t0);
        }
        if finish != Finish::Eos {
            self.unflushed = 0;
        }
        rv.map_err(|_| {
            self.client_gone = true;
            SendError::ClientGone
        })
    }
}

// ---- start_response ---------------------------------------------------------

unsafe fn check_live(st: &AdapterState, what: &str) -> Result<(), ()> {
    if st.finished {
        object::raise(
            PyExc_RuntimeError,
            &format!("{what} called after the request finished"),
        );
        return Err(());
    }
    Ok(())
}

unsafe fn start_response(
    o: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    let st = state(o);
    if check_live(st, "start_response()").is_err() {
        return ptr::null_mut();
    }
    let nargs = PyTuple_Size(args);
    let get_kw = |name: &std::ffi::CStr| -> *mut PyObject {
        if kwargs.is_null() {
            ptr::null_mut()
        } else {
            PyDict_GetItemString(kwargs, name.as_ptr())
        }
    };
    let arg = |i: Py_ssize_t, name: &std::ffi::CStr| -> *mut PyObject {
        if i < nargs {
            PyTuple_GetItem(args, i)
        } else {
            get_kw(name)
        }
    };
    let (status, headers, exc_info) = (
        arg(0, c"status"),
        arg(1, c"response_headers"),
        arg(2, c"exc_info"),
    );
    if status.is_null() || headers.is_null() || nargs > 3 {
        return object::raise(
            PyExc_TypeError,
            "start_response() takes (status, response_headers, exc_info=None)",
        );
    }
    let Ok(has_exc_info) = start_response::check_exc_info(exc_info) else {
        return ptr::null_mut();
    };
    let gil = Gil::assume_held();
    if st.progress(&gil).headers_sent {
        return if has_exc_info {
            start_response::reraise(exc_info)
        } else {
            start_response::raise_called_twice()
        };
    }
    // A second call before anything was sent replaces the first, as mod_wsgi
    // allows (PEP 3333 asks applications to pass exc_info then).
    let Ok((status, headers)) = start_response::parse_response(status, headers) else {
        return ptr::null_mut();
    };
    st.content_length = headers.iter().rev().find_map(|(_, _, k)| match k {
        HeaderKind::ContentLength(n) => Some(*n),
        _ => None,
    });
    if super::metrics::subscribed() {
        super::metrics_api::response_started(
            arg(0, c"status"),
            arg(1, c"response_headers"),
            exc_info,
        );
    }
    st.status = Some(status);
    st.headers = headers;
    if st.write_callable.is_null() {
        st.write_callable = PyCFunction_NewEx(
            ptr::addr_of_mut!(METHODS) as *mut PyMethodDef,
            o,
            ptr::null_mut(),
        );
        if st.write_callable.is_null() {
            return ptr::null_mut();
        }
    }
    Py_NewRef(st.write_callable)
}

unsafe extern "C" fn call(
    o: *mut PyObject,
    args: *mut PyObject,
    kwargs: *mut PyObject,
) -> *mut PyObject {
    apache::guard("start_response", ptr::null_mut(), || unsafe {
        start_response(o, args, kwargs)
    })
}

unsafe extern "C" fn write(o: *mut PyObject, data: *mut PyObject) -> *mut PyObject {
    apache::guard("write", ptr::null_mut(), || unsafe {
        let st = state(o);
        if check_live(st, "write()").is_err() {
            return ptr::null_mut();
        }
        if PyBytes_Check(data) == 0 {
            return object::raise(
                PyExc_TypeError,
                &format!(
                    "write() argument must be bytes, not {}: {} (PEP 3333)",
                    object::type_name(data),
                    object::short_repr(data)
                ),
            );
        }
        if st.status.is_none() {
            return object::raise(PyExc_RuntimeError, "write() called before start_response()");
        }
        let gil = Gil::assume_held();
        let bytes = object::bytes_ref(data);
        if bytes.is_empty() {
            return Py_NewRef(Py_None());
        }
        // The output lock serialises this with the request thread; the
        // bytes object stays alive (borrowed from the caller) until the
        // pass returns or its data is set aside.
        match st.send(&gil, &[bytes], Finish::Flush) {
            Ok(_) => Py_NewRef(Py_None()),
            Err(SendError::ClientGone) => {
                object::raise(PyExc_OSError, "write(): the client closed the connection")
            }
            Err(SendError::Finished) => object::raise(
                PyExc_RuntimeError,
                "write() called after the request finished",
            ),
        }
    })
}

static mut METHODS: [PyMethodDef; 2] = [
    PyMethodDef {
        ml_name: c"write".as_ptr(),
        ml_meth: PyMethodDefPointer { PyCFunction: write },
        ml_flags: METH_O,
        ml_doc: c"write(data: bytes): send body data now (PEP 3333 write() callable).".as_ptr(),
    },
    PyMethodDef::zeroed(),
];

/// Type slots of `mod_wsgi.Adapter`.
pub fn slots() -> Vec<PyType_Slot> {
    vec![
        type_slot(Py_tp_dealloc, dealloc as *mut c_void),
        type_slot(Py_tp_call, call as *mut c_void),
        type_slot(Py_tp_methods, ptr::addr_of_mut!(METHODS) as *mut c_void),
        type_slot(
            Py_tp_doc,
            c"start_response(status, response_headers, exc_info=None) of one request (PEP 3333)."
                .as_ptr() as *mut c_void,
        ),
    ]
}
