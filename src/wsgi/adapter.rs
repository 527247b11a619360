//! `start_response` and the `write()` callable (PEP 3333 §The
//! start_response() Callable), and the output path to Apache: status and
//! headers go to `request_rec` on the first body data, body data goes down
//! the output filter chain as transient buckets (no copy).
//!
//! The GIL is never held while a brigade goes down the filter chain: any
//! filter may block (mod_ratelimit) or run a handler again on this thread
//! (mod_include's sub-requests). Passes during the response release it; the
//! final pass of a small response (EOS, no file, under 16 KiB) is instead
//! put off until the request has released the GIL ([`FinalPass`]), its
//! bytes copied out of the Python objects, which costs less than a GIL
//! hand-off.
//!
//! All output of one request (the request thread and any application thread
//! calling `write()`) is serialised by a per-request lock around the brigade
//! and `request_rec`; the end of the request takes that lock, so no writer
//! can touch the request after it is gone (later calls raise).
//!
//! The Python object `mod_wsgi.Adapter` is itself the `start_response`
//! callable passed to the application.

use super::module::{free_instance, type_slot};
use crate::apache;
use crate::ffi;
use crate::python::object::{self, Owned};
use crate::python::{self, Gil};
use pyo3_ffi::*;
use rwsgi_core::validate::{validate_header, validate_status, HeaderKind};
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::{Mutex, MutexGuard, TryLockError};

/// How a pass down the filter chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// More data may follow; everything so far must reach the client
    /// (a FLUSH bucket), as PEP 3333 requires for each yielded block. Becomes
    /// `Eos` when the data completes the declared `Content-Length`.
    Flush,
    /// The response is complete (an EOS bucket).
    Eos,
    /// Everything must be written before the pass returns (FLUSH), and the
    /// response is complete (EOS): used for file buckets, whose descriptor
    /// the application may close as soon as we return.
    FlushEos,
}

/// Why output stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The client went away (or a filter failed): stop producing output.
    ClientGone(ffi::apr_status_t),
    /// The request has finished (output from another thread after its end).
    Finished,
}

/// Largest in-memory final body (bytes) whose pass is put off until the GIL
/// is released, at the price of one copy; larger ones are passed at once
/// with the GIL released.
const DEFERRED_PASS_LIMIT: u64 = 16 * 1024;

/// A validated response header: name, value, and what it means to Apache.
type Header = (String, String, HeaderKind);

/// The request's output: everything the send path touches, only reached
/// through the per-request output lock.
pub struct Output {
    /// The request; null once it has finished.
    r: *mut ffi::request_rec,
    bb: *mut ffi::apr_bucket_brigade,
    /// Whether status and headers were handed to Apache.
    headers_sent: bool,
    /// Whether the EOS bucket was passed (or is in the deferred pass).
    eos_sent: bool,
    /// `Content-Length` of the sent headers, in bytes.
    content_length: Option<u64>,
    /// Body bytes given to Apache so far.
    bytes_sent: u64,
    /// Set when the client went away.
    client_gone: bool,
    /// In-memory body bytes since the last FLUSH.
    unflushed: u64,
    /// Whether a file bucket was added (reading it may block).
    sent_file: bool,
    /// Whether the brigade holds a final pass put off until the request
    /// releases the GIL.
    deferred: bool,
}

/// What has been sent so far, for the checks at the end of a request.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Whether status and headers were handed to Apache.
    pub headers_sent: bool,
    /// `Content-Length` of the sent headers, in bytes.
    pub content_length: Option<u64>,
    /// Body bytes given to Apache, in bytes.
    pub bytes_sent: u64,
    /// Whether the client went away.
    pub client_gone: bool,
}

/// A request's final brigade (ending in EOS), to be passed down the filter
/// chain by the request thread once it no longer holds the GIL.
pub struct FinalPass {
    r: *mut ffi::request_rec,
    bb: *mut ffi::apr_bucket_brigade,
}

impl FinalPass {
    /// Passes the brigade. Call without the GIL, before the handler
    /// returns (the brigade lives in the request pool). Errors: the client
    /// went away.
    ///
    /// # Safety
    /// The request must still be live (inside its handler).
    pub unsafe fn send(self) -> Result<(), SendError> {
        let rv = ffi::ap_pass_brigade((*self.r).output_filters, self.bb);
        ffi::apr_brigade_cleanup(self.bb as *mut c_void);
        if rv != ffi::APR_SUCCESS as ffi::apr_status_t || (*(*self.r).connection).aborted != 0 {
            return Err(SendError::ClientGone(rv));
        }
        Ok(())
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

/// Creates the adapter (start_response) of request `r`. GIL held.
pub unsafe fn new_adapter(tp: *mut PyTypeObject, r: *mut ffi::request_rec) -> Option<Owned> {
    let o = Owned::new(PyType_GenericAlloc(tp, 0))?;
    let out = Output {
        r,
        bb: ptr::null_mut(),
        headers_sent: false,
        eos_sent: false,
        content_length: None,
        bytes_sent: 0,
        client_gone: false,
        unflushed: 0,
        sent_file: false,
        deferred: false,
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
        if o.r.is_null() {
            return Err(SendError::Finished);
        }
        f(&mut o)
    }

    /// Sends body data (`chunks`, no copy: transient buckets), truncated to
    /// what `Content-Length` still allows, applying status and headers
    /// first. Returns whether the response is now complete (EOS sent, or
    /// put off until the request releases the GIL). Requires `status`.
    pub unsafe fn send(
        &self,
        gil: &Gil,
        chunks: &[&[u8]],
        finish: Finish,
    ) -> Result<bool, SendError> {
        let status = self
            .status
            .as_ref()
            .expect("start_response before body data");
        self.with_output(gil, |o| {
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
            if !o.headers_sent {
                o.apply_headers(status, &self.headers, self.content_length);
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

    /// Sends `len` bytes of open file `fd` from `offset` as a file bucket
    /// (sendfile or mmap), then FLUSH and EOS, so Apache has written it all
    /// before the application can close the file. Requires `status`.
    pub unsafe fn send_file(
        &self,
        gil: &Gil,
        fd: i32,
        offset: u64,
        len: u64,
    ) -> Result<(), SendError> {
        let status = self
            .status
            .as_ref()
            .expect("start_response before body data");
        self.with_output(gil, |o| {
            if !o.headers_sent {
                o.apply_headers(status, &self.headers, self.content_length);
            }
            o.add_file(fd, offset, len);
            o.pass(gil, Finish::FlushEos)
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

    /// Ends a response that already started but cannot be completed (an
    /// exception mid-stream): an error bucket makes Apache's chunk filter
    /// omit the final chunk and close the connection, so the client sees an
    /// incomplete response rather than a short "complete" one.
    pub unsafe fn abort_response(&self, gil: &Gil) {
        let _ = self.with_output(gil, |o| {
            if o.eos_sent || o.client_gone {
                return Ok(());
            }
            let r = o.r;
            (*(*r).connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE;
            let bb = o.brigade();
            let e = ffi::ap_bucket_error_create(
                ffi::HTTP_BAD_GATEWAY as i32,
                ptr::null(),
                (*r).pool,
                (*bb).bucket_alloc,
            );
            ffi::rwsgi_brigade_insert_tail(bb, e);
            o.pass(gil, Finish::Eos)
        });
    }

    /// Detaches the adapter from its finished request, waiting for any
    /// other thread's output to finish first: later calls raise, and the
    /// `write` callable's reference back to the adapter (a cycle) is
    /// dropped so both are freed. Returns the final pass put off until the
    /// GIL is released, if any. GIL held.
    pub unsafe fn detach(&mut self, gil: &Gil) -> Option<FinalPass> {
        self.finished = true;
        let mut o = lock_output(gil, &self.out);
        let last = (o.deferred && !o.r.is_null()).then(|| FinalPass { r: o.r, bb: o.bb });
        o.deferred = false;
        o.r = ptr::null_mut();
        drop(o);
        let w = std::mem::replace(&mut self.write_callable, ptr::null_mut());
        if !w.is_null() {
            Py_DECREF(w);
        }
        last
    }
}

impl Output {
    /// Whether no more body may be sent (Content-Length reached).
    fn complete(&self) -> bool {
        self.content_length.is_some_and(|cl| self.bytes_sent >= cl)
    }

    /// Hands status and headers to Apache (`r->status`, `status_line`,
    /// `headers_out`, `content_type`, `clength`).
    unsafe fn apply_headers(
        &mut self,
        (code, line): &(u16, String),
        headers: &[Header],
        content_length: Option<u64>,
    ) {
        let r = self.r;
        let pool = (*r).pool;
        (*r).status = *code as _;
        (*r).status_line = pool_latin1(pool, line);
        // What mod_mime derived from the script's file name (`.py` is
        // text/x-python, `.gz` an encoding, `.en` a language) describes the
        // script, not the response: the response carries only what the
        // application set.
        (*r).content_type = ptr::null();
        (*r).content_encoding = ptr::null();
        (*r).content_languages = ptr::null_mut();
        for (name, value, kind) in headers {
            match kind {
                HeaderKind::ContentType => {
                    ffi::ap_set_content_type(r, pool_latin1(pool, value));
                }
                // At most MAX_CONTENT_LENGTH (validated): fits apr_off_t.
                HeaderKind::ContentLength(n) => ffi::ap_set_content_length(r, *n as _),
                HeaderKind::Other => {
                    let k = apache::pstrdup(pool, name.as_bytes());
                    let v = pool_latin1(pool, value);
                    ffi::apr_table_addn((*r).headers_out, k, v);
                }
            }
        }
        self.content_length = content_length;
        self.headers_sent = true;
    }

    /// The brigade this request's output is built in (created on first use).
    unsafe fn brigade(&mut self) -> *mut ffi::apr_bucket_brigade {
        if self.bb.is_null() {
            let r = self.r;
            self.bb = ffi::apr_brigade_create((*r).pool, (*(*r).connection).bucket_alloc);
        }
        self.bb
    }

    /// Appends body data (no copy: a transient bucket) to the brigade,
    /// truncated to what `Content-Length` still allows.
    ///
    /// # Safety
    /// `data` must stay alive and unchanged until the next [`pass`](Self::pass).
    unsafe fn add_data(&mut self, data: &[u8]) {
        let n = match self.content_length {
            Some(cl) => (cl.saturating_sub(self.bytes_sent)).min(data.len() as u64) as usize,
            None => data.len(),
        };
        if n > 0 {
            let bb = self.brigade();
            let b = ffi::apr_bucket_transient_create(
                data.as_ptr() as *const c_char,
                n as _,
                (*bb).bucket_alloc,
            );
            ffi::rwsgi_brigade_insert_tail(bb, b);
            self.bytes_sent += n as u64;
            self.unflushed += n as u64;
        }
    }

    /// Appends a file region as a file bucket. The descriptor must stay
    /// open until the next [`pass`](Self::pass), which must use
    /// `Finish::FlushEos`.
    unsafe fn add_file(&mut self, fd: i32, offset: u64, len: u64) {
        let len = match self.content_length {
            Some(cl) => cl.saturating_sub(self.bytes_sent).min(len),
            None => len,
        };
        if len > 0 {
            let r = self.r;
            let mut file: *mut ffi::apr_file_t = ptr::null_mut();
            let mut os_fd: ffi::apr_os_file_t = fd;
            ffi::apr_os_file_put(
                &mut file,
                &mut os_fd,
                (ffi::APR_FOPEN_READ | ffi::APR_FOPEN_SENDFILE_ENABLED) as i32,
                (*r).pool,
            );
            let bb = self.brigade();
            ffi::apr_brigade_insert_file(bb, file, offset as _, len as _, (*r).pool);
            self.bytes_sent += len;
            self.sent_file = true;
        }
    }

    /// Copies the brigade's transient data into buckets of its own (the
    /// request pool's lifetime), so it survives the Python objects it came
    /// from. Fails if a bucket cannot be set aside.
    unsafe fn set_aside(&mut self) -> bool {
        let bb = self.bb;
        let pool = (*self.r).pool;
        let end = ffi::rwsgi_brigade_sentinel(bb);
        let mut b = ffi::rwsgi_brigade_first(bb);
        while b != end {
            let rv = ffi::rwsgi_bucket_setaside(b, pool);
            if rv != ffi::APR_SUCCESS as ffi::apr_status_t
                && rv != ffi::APR_ENOTIMPL as ffi::apr_status_t
            {
                return false;
            }
            b = ffi::rwsgi_bucket_next(b);
        }
        true
    }

    /// Ends the brigade as `finish` says and passes it down Apache's output
    /// filters with the GIL released, or, for a small final brigade without
    /// files, sets its data aside for the request's [`FinalPass`].
    unsafe fn pass(&mut self, gil: &Gil, finish: Finish) -> Result<(), SendError> {
        if self.client_gone {
            return Err(SendError::ClientGone(0));
        }
        let bb = self.brigade();
        let alloc = (*bb).bucket_alloc;
        if finish == Finish::Flush || finish == Finish::FlushEos {
            ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_flush_create(alloc));
        }
        if finish == Finish::Eos || finish == Finish::FlushEos {
            ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_eos_create(alloc));
            self.eos_sent = true;
        }
        if finish == Finish::Eos
            && !self.sent_file
            && self.unflushed < DEFERRED_PASS_LIMIT
            && self.set_aside()
        {
            self.deferred = true;
            return Ok(());
        }
        let r = self.r;
        let rv = python::allow_threads(gil, || unsafe {
            let rv = ffi::ap_pass_brigade((*r).output_filters, bb);
            ffi::apr_brigade_cleanup(bb as *mut c_void);
            rv
        });
        if finish != Finish::Eos {
            self.unflushed = 0;
        }
        if rv != ffi::APR_SUCCESS as ffi::apr_status_t || (*(*r).connection).aborted != 0 {
            self.client_gone = true;
            return Err(SendError::ClientGone(rv));
        }
        Ok(())
    }
}

/// Copies validated text (every character <= U+00FF) into `pool` as latin-1
/// bytes, the encoding PEP 3333 gives native strings on the wire.
unsafe fn pool_latin1(pool: *mut ffi::apr_pool_t, text: &str) -> *mut c_char {
    if text.is_ascii() {
        return apache::pstrdup(pool, text.as_bytes());
    }
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    apache::pstrdup(pool, &bytes)
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

/// Re-raises the exception of `exc_info` (PEP 3333: start_response after
/// the headers were sent). It must be what `sys.exc_info()` gives while an
/// exception is handled: an exception class, an instance of it, and a
/// traceback or None; anything else raises TypeError naming what was passed.
unsafe fn reraise(exc_info: *mut PyObject) -> *mut PyObject {
    let valid = PyTuple_Check(exc_info) != 0 && PyTuple_Size(exc_info) == 3 && {
        let (t, v, tb) = (
            PyTuple_GetItem(exc_info, 0),
            PyTuple_GetItem(exc_info, 1),
            PyTuple_GetItem(exc_info, 2),
        );
        PyExceptionClass_Check(t) != 0
            && PyExceptionInstance_Check(v) != 0
            && PyObject_IsInstance(v, t) == 1
            && (tb == Py_None() || PyTraceBack_Check(tb) != 0)
    };
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
    let (t, v, tb) = (
        PyTuple_GetItem(exc_info, 0),
        PyTuple_GetItem(exc_info, 1),
        PyTuple_GetItem(exc_info, 2),
    );
    let tb = if tb == Py_None() { ptr::null_mut() } else { tb };
    Py_INCREF(t);
    Py_INCREF(v);
    Py_XINCREF(tb);
    PyErr_Restore(t, v, tb);
    ptr::null_mut()
}

/// Validates `(status, response_headers)` and returns the parsed form, or
/// raises TypeError/ValueError naming the value and the rule.
unsafe fn parse_response(
    status: *mut PyObject,
    headers: *mut PyObject,
) -> Result<((u16, String), Vec<Header>), ()> {
    let Some(status_str) = object::str_ref(status) else {
        object::raise(
            PyExc_TypeError,
            &format!(
                "start_response() status must be str, not {}: {} (PEP 3333)",
                object::type_name(status),
                object::short_repr(status)
            ),
        );
        return Err(());
    };
    let code = match validate_status(status_str) {
        Ok(c) => c,
        Err(e) => {
            object::raise(PyExc_ValueError, &format!("start_response(): {e}"));
            return Err(());
        }
    };
    if PyList_Check(headers) == 0 {
        object::raise(
            PyExc_TypeError,
            &format!(
                "start_response() response_headers must be a list of (name, value) tuples, not {} (PEP 3333)",
                object::type_name(headers)
            ),
        );
        return Err(());
    }
    let n = PyList_Size(headers);
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let item = PyList_GetItem(headers, i);
        if PyTuple_Check(item) == 0 || PyTuple_Size(item) != 2 {
            object::raise(
                PyExc_TypeError,
                &format!(
                    "start_response() response header {} must be a (name, value) tuple, not {} (PEP 3333)",
                    object::short_repr(item),
                    object::type_name(item)
                ),
            );
            return Err(());
        }
        let (k, v) = (PyTuple_GetItem(item, 0), PyTuple_GetItem(item, 1));
        let (Some(name), Some(value)) = (object::str_ref(k), object::str_ref(v)) else {
            object::raise(
                PyExc_TypeError,
                &format!(
                    "start_response() response header {} must have str name and value (PEP 3333 native strings)",
                    object::short_repr(item)
                ),
            );
            return Err(());
        };
        match validate_header(name, value) {
            Ok(kind) => out.push((name.to_string(), value.to_string(), kind)),
            Err(e) => {
                object::raise(PyExc_ValueError, &format!("start_response(): {e}"));
                return Err(());
            }
        }
    }
    Ok(((code, status_str.to_string()), out))
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
    let gil = Gil::assume_held();
    let headers_sent = st.progress(&gil).headers_sent;
    if !exc_info.is_null() && exc_info != Py_None() {
        if headers_sent {
            return reraise(exc_info);
        }
    } else if headers_sent {
        return object::raise(
            PyExc_RuntimeError,
            "start_response() called again without exc_info after the response headers were sent (PEP 3333)",
        );
    }
    // A second call before anything was sent replaces the first, as mod_wsgi
    // allows (PEP 3333 asks applications to pass exc_info then).
    let Ok((status, headers)) = parse_response(status, headers) else {
        return ptr::null_mut();
    };
    st.content_length = headers.iter().rev().find_map(|(_, _, k)| match k {
        HeaderKind::ContentLength(n) => Some(*n),
        _ => None,
    });
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
            Err(SendError::ClientGone(_)) => {
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
