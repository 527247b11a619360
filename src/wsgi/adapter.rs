//! `start_response` and the `write()` callable (PEP 3333 §The
//! start_response() Callable), and the output path to Apache: status and
//! headers go to `request_rec` on the first body data, body data goes down
//! the output filter chain as transient buckets (no copy) with the GIL
//! released during each `ap_pass_brigade`.
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

/// How a pass down the filter chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// More data may follow; everything so far must reach the client
    /// (a FLUSH bucket), as PEP 3333 requires for each yielded block.
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
}

/// Largest amount of unflushed in-memory body (bytes) passed with EOS while
/// keeping the GIL: well under Apache's FlushMaxThreshold (default 64 KiB),
/// below which the core output filter never writes synchronously.
const NONBLOCKING_PASS_LIMIT: u64 = 16 * 1024;

/// A validated response header: name, value, and what it means to Apache.
type Header = (String, String, HeaderKind);

/// Response state of one request.
pub struct AdapterState {
    /// The request; null once it has finished (later calls raise).
    pub r: *mut ffi::request_rec,
    /// Validated status code and line, once `start_response` was called.
    pub status: Option<(u16, String)>,
    headers: Vec<Header>,
    /// Whether status and headers were handed to Apache.
    pub headers_sent: bool,
    /// Whether the EOS bucket was passed.
    pub eos_sent: bool,
    /// `Content-Length` declared by the application, in bytes.
    pub content_length: Option<u64>,
    /// Body bytes passed to Apache so far.
    pub bytes_sent: u64,
    /// Set when the client went away.
    pub client_gone: bool,
    /// Set while output is being passed with the GIL released, so a second
    /// thread cannot use the same adapter concurrently.
    busy: bool,
    /// In-memory body bytes passed since the last FLUSH: Apache's core
    /// output filter buffers them without blocking while they stay under its
    /// FlushMaxThreshold (64 KiB by default).
    unflushed: u64,
    /// Whether a file bucket was passed (reading it may block).
    sent_file: bool,
    bb: *mut ffi::apr_bucket_brigade,
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
    (*(o.as_ptr() as *mut AdapterObject)).state = Box::into_raw(Box::new(AdapterState {
        r,
        status: None,
        headers: Vec::new(),
        headers_sent: false,
        eos_sent: false,
        content_length: None,
        bytes_sent: 0,
        client_gone: false,
        busy: false,
        unflushed: 0,
        sent_file: false,
        bb: ptr::null_mut(),
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

impl AdapterState {
    /// Detaches the adapter from its finished request: later calls raise,
    /// and the `write` callable's reference back to the adapter (a cycle)
    /// is dropped so both are freed. GIL held.
    pub unsafe fn detach(&mut self) {
        self.r = ptr::null_mut();
        let w = std::mem::replace(&mut self.write_callable, ptr::null_mut());
        if !w.is_null() {
            Py_DECREF(w);
        }
    }

    /// Whether no more body may be sent (Content-Length reached).
    pub fn complete(&self) -> bool {
        self.content_length.is_some_and(|cl| self.bytes_sent >= cl)
    }

    /// Hands status and headers to Apache (`r->status`, `status_line`,
    /// `headers_out`, `content_type`, `clength`).
    unsafe fn apply_headers(&mut self) {
        let r = self.r;
        let pool = (*r).pool;
        let (code, line) = self.status.as_ref().expect("status set before output");
        (*r).status = *code as _;
        (*r).status_line = pool_latin1(pool, line);
        // What mod_mime derived from the script's file name (`.py` is
        // text/x-python, `.gz` an encoding, `.en` a language) describes the
        // script, not the response: the response carries only what the
        // application set.
        (*r).content_type = ptr::null();
        (*r).content_encoding = ptr::null();
        (*r).content_languages = ptr::null_mut();
        for (name, value, kind) in &self.headers {
            match kind {
                HeaderKind::ContentType => {
                    ffi::ap_set_content_type(r, pool_latin1(pool, value));
                }
                HeaderKind::ContentLength(n) => ffi::ap_set_content_length(r, *n as _),
                HeaderKind::Other => {
                    let k = apache::pstrdup(pool, name.as_bytes());
                    let v = pool_latin1(pool, value);
                    ffi::apr_table_addn((*r).headers_out, k, v);
                }
            }
        }
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
    /// truncated to what `Content-Length` still allows. Returns the number of
    /// bytes added. Status and headers are applied first if not yet done.
    ///
    /// # Safety
    /// `data` must stay alive and unchanged until the next [`pass`](Self::pass).
    pub unsafe fn add_data(&mut self, data: &[u8]) -> usize {
        if !self.headers_sent {
            self.apply_headers();
        }
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
        n
    }

    /// Appends a file region as a file bucket (sent with sendfile or mmap by
    /// Apache's core output filter). The descriptor must stay open until the
    /// next [`pass`](Self::pass), which must use `Finish::FlushEos`.
    pub unsafe fn add_file(&mut self, fd: i32, offset: u64, len: u64) -> u64 {
        if !self.headers_sent {
            self.apply_headers();
        }
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
        len
    }

    /// Passes the brigade down Apache's output filters with the GIL
    /// released, ending it as `finish` says.
    pub unsafe fn pass(&mut self, gil: &Gil, finish: Finish) -> Result<(), SendError> {
        if self.client_gone {
            return Err(SendError::ClientGone(0));
        }
        if !self.headers_sent {
            self.apply_headers();
        }
        let bb = self.brigade();
        let alloc = (*bb).bucket_alloc;
        match finish {
            Finish::Flush => {
                ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_flush_create(alloc))
            }
            Finish::Eos => {
                ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_eos_create(alloc));
                self.eos_sent = true;
            }
            Finish::FlushEos => {
                ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_flush_create(alloc));
                ffi::rwsgi_brigade_insert_tail(bb, ffi::apr_bucket_eos_create(alloc));
                self.eos_sent = true;
            }
        }
        let r = self.r;
        let pass = || unsafe {
            let rv = ffi::ap_pass_brigade((*r).output_filters, bb);
            ffi::apr_brigade_cleanup(bb as *mut c_void);
            rv
        };
        // Only a pass that can block releases the GIL: one with a FLUSH, a
        // file, or enough buffered data for the core output filter to write
        // synchronously. A small final response is written without blocking
        // (or set aside by Apache), so keeping the GIL saves two GIL
        // hand-offs per request under load.
        let may_block = !matches!(finish, Finish::Eos)
            || self.sent_file
            || self.unflushed >= NONBLOCKING_PASS_LIMIT;
        let rv = if may_block {
            self.busy = true;
            let rv = python::allow_threads(gil, pass);
            self.busy = false;
            rv
        } else {
            pass()
        };
        if finish != Finish::Eos {
            self.unflushed = 0;
        }
        if rv != ffi::APR_SUCCESS as ffi::apr_status_t || (*(*r).connection).aborted != 0 {
            self.client_gone = true;
            return Err(SendError::ClientGone(rv));
        }
        Ok(())
    }

    /// Ends a response that already started but cannot be completed (an
    /// exception mid-stream): an error bucket makes Apache's chunk filter
    /// omit the final chunk and close the connection, so the client sees an
    /// incomplete response rather than a short "complete" one.
    pub unsafe fn abort_response(&mut self, gil: &Gil) {
        if self.eos_sent || self.client_gone {
            return;
        }
        let r = self.r;
        (*(*r).connection).keepalive = ffi::ap_conn_keepalive_e_AP_CONN_CLOSE;
        let bb = self.brigade();
        let e = ffi::ap_bucket_error_create(
            ffi::HTTP_BAD_GATEWAY as i32,
            ptr::null(),
            (*r).pool,
            (*bb).bucket_alloc,
        );
        ffi::rwsgi_brigade_insert_tail(bb, e);
        let _ = self.pass(gil, Finish::Eos);
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
    if st.r.is_null() {
        object::raise(
            PyExc_RuntimeError,
            &format!("{what} called after the request finished"),
        );
        return Err(());
    }
    if st.busy {
        object::raise(
            PyExc_RuntimeError,
            &format!("{what} called from another thread while the response is being written"),
        );
        return Err(());
    }
    Ok(())
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
    if !exc_info.is_null() && exc_info != Py_None() {
        if st.headers_sent {
            // PEP 3333: re-raise the application's exception.
            if PyTuple_Check(exc_info) == 0 || PyTuple_Size(exc_info) != 3 {
                return object::raise(
                    PyExc_TypeError,
                    "start_response() exc_info must be a 3-tuple from sys.exc_info()",
                );
            }
            let (t, v, tb) = (
                PyTuple_GetItem(exc_info, 0),
                PyTuple_GetItem(exc_info, 1),
                PyTuple_GetItem(exc_info, 2),
            );
            Py_XINCREF(t);
            Py_XINCREF(v);
            Py_XINCREF(tb);
            PyErr_Restore(t, v, if tb == Py_None() { ptr::null_mut() } else { tb });
            if tb == Py_None() {
                Py_DECREF(tb);
            }
            return ptr::null_mut();
        }
    } else if st.headers_sent {
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
        if bytes.is_empty() || st.complete() {
            return Py_NewRef(Py_None());
        }
        st.add_data(bytes);
        let finish = if st.complete() {
            Finish::Eos
        } else {
            Finish::Flush
        };
        match st.pass(&gil, finish) {
            Ok(()) => Py_NewRef(Py_None()),
            Err(SendError::ClientGone(_)) => {
                object::raise(PyExc_OSError, "write(): the client closed the connection")
            }
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
