//! Small safe layer over the Apache/APR bindings: C strings, pool-owned Rust
//! values, module configuration lookup and logging ([`LogTarget`]), plus
//! the embedded-mode request transport ([`request`]).
//!
//! Logging always passes the message as an argument to a literal `"%s"` format
//! (in the C shim), never as a format string. Messages start with a stable
//! `RWSGInnnn` identifier, documented in docs/errors.md.

pub mod auth;
pub mod dispatch;
pub mod handler_script;
pub mod request;

use crate::ffi;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

/// Log levels of `http_log.h` (`APLOG_*`).
#[derive(Debug, Clone, Copy)]
#[repr(i32)]
pub enum Level {
    /// `APLOG_CRIT`
    Crit = ffi::APLOG_CRIT as i32,
    /// `APLOG_ERR`
    Error = ffi::APLOG_ERR as i32,
    /// `APLOG_WARNING`
    Warn = ffi::APLOG_WARNING as i32,
    /// `APLOG_INFO`
    Info = ffi::APLOG_INFO as i32,
}

/// The module's index in Apache's module table (gives the `[wsgi:...]` tag).
pub fn module_index() -> c_int {
    // SAFETY: Apache writes module_index once while loading the module, before
    // any hook or directive handler of ours can run.
    unsafe { (*ptr::addr_of!(crate::wsgi_module)).module_index }
}

fn to_cstring(msg: &str) -> CString {
    CString::new(msg.replace('\0', "\\0")).expect("NULs replaced")
}

/// Logs `msg` against request `r` (`ap_log_rerror`), so the line carries the
/// client address and request context. `status` is an APR status or 0.
pub fn log_r(r: *const ffi::request_rec, level: Level, status: ffi::apr_status_t, msg: &str) {
    crate::observe::note_log_line(level, msg);
    if r.is_null() {
        return log_s(ptr::null(), level, status, msg);
    }
    let idx = module_index();
    // SAFETY: r is a live request_rec supplied by Apache for this request.
    unsafe {
        if ffi::rwsgi_log_r_is_level(r, idx, level as c_int) == 0 {
            return;
        }
        let m = to_cstring(msg);
        ffi::rwsgi_log_rerror(
            c"mod_rwsgi".as_ptr(),
            0,
            idx,
            level as c_int,
            status,
            r,
            m.as_ptr(),
        );
    }
}

/// Logs `msg` against server `s` (`ap_log_error`); a null `s` logs to the
/// main server's log (as Apache does).
pub fn log_s(s: *const ffi::server_rec, level: Level, status: ffi::apr_status_t, msg: &str) {
    crate::observe::note_log_line(level, msg);
    let idx = module_index();
    let s = if s.is_null() {
        DEFAULT_LOG_SERVER.load(std::sync::atomic::Ordering::Relaxed) as *const ffi::server_rec
    } else {
        s
    };
    // SAFETY: s is null or a server_rec that lives as long as the configuration.
    unsafe {
        if !s.is_null() && ffi::rwsgi_log_s_is_level(s, idx, level as c_int) == 0 {
            return;
        }
        let m = to_cstring(msg);
        ffi::rwsgi_log_error(
            c"mod_rwsgi".as_ptr(),
            0,
            idx,
            level as c_int,
            status,
            s,
            m.as_ptr(),
        );
    }
}

/// The server lines without one (`log_s(null)`, [`LogTarget::None`]) go to:
/// null (Apache's main server) unless [`set_default_log_server`] was called.
static DEFAULT_LOG_SERVER: std::sync::atomic::AtomicPtr<ffi::server_rec> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

/// In a daemon process: lines that name no server (Python's output, the
/// application's log lines) go to `s`, the server whose configuration
/// defined the process group (as mod_wsgi: a `<VirtualHost>`'s `ErrorLog`).
pub fn set_default_log_server(s: *mut ffi::server_rec) {
    DEFAULT_LOG_SERVER.store(s, std::sync::atomic::Ordering::Relaxed);
}

/// Where log lines about a request go: against Apache's `request_rec` (the
/// line carries `[client ...]`), against a server with a client tag of our
/// own (daemon processes, which have no `request_rec`), or to the main
/// server. Small and `Copy`, so a thread can keep "the request it serves".
#[derive(Clone, Copy)]
pub enum LogTarget {
    /// The main server's log, no request context.
    None,
    /// A live request (embedded mode, or the Apache child of a daemon request).
    Request(*const ffi::request_rec),
    /// A server's log with a `[client ADDR]` tag (daemon processes).
    Client(*const ffi::server_rec, ClientTag),
}

/// A client address as text (`127.0.0.1:51234`, at most 47 bytes), kept
/// inline so [`LogTarget`] stays `Copy`.
#[derive(Clone, Copy)]
pub struct ClientTag {
    len: u8,
    text: [u8; 47],
}

impl ClientTag {
    /// Tags lines with `addr` (cut to 47 bytes).
    pub fn new(addr: &[u8]) -> ClientTag {
        let mut text = [0u8; 47];
        let n = addr.len().min(47);
        text[..n].copy_from_slice(&addr[..n]);
        ClientTag { len: n as u8, text }
    }

    /// The address text.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.text[..self.len as usize])
    }
}

// SAFETY: a LogTarget is only used while what it points to lives (a request
// during its handler, a server for the process's life); Apache's logging is
// thread-safe.
unsafe impl Send for LogTarget {}
unsafe impl Sync for LogTarget {}

impl From<*mut ffi::request_rec> for LogTarget {
    /// A request's target; null is the main server.
    fn from(r: *mut ffi::request_rec) -> LogTarget {
        if r.is_null() {
            LogTarget::None
        } else {
            LogTarget::Request(r)
        }
    }
}

impl LogTarget {
    /// Logs `msg` at `level`.
    pub fn log(&self, level: Level, msg: &str) {
        match *self {
            LogTarget::None => log_s(ptr::null(), level, 0, msg),
            LogTarget::Request(r) => log_r(r, level, 0, msg),
            LogTarget::Client(s, tag) => {
                log_s(s, level, 0, &format!("[client {}] {msg}", tag.as_str()))
            }
        }
    }
}

/// Borrows a NUL-terminated C string as bytes; null gives `None`.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string that outlives `'a`.
pub unsafe fn opt_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_bytes())
    }
}

/// Borrows a C string as bytes; null gives `b""`.
///
/// # Safety
/// As [`opt_bytes`].
pub unsafe fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    opt_bytes(p).unwrap_or(b"")
}

/// Borrows a C string as `&str` (lossy is not possible here, so invalid UTF-8
/// gives `None`).
///
/// # Safety
/// As [`opt_bytes`].
pub unsafe fn opt_str<'a>(p: *const c_char) -> Option<&'a str> {
    opt_bytes(p).and_then(|b| std::str::from_utf8(b).ok())
}

/// Iterates an APR table's entries as `(key, value)` byte strings.
///
/// # Safety
/// `t` must be a live table; the entries must not change while iterating.
pub unsafe fn table_entries<'a>(
    t: *const ffi::apr_table_t,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    // apr_table_elts() is a macro: an apr_table_t begins with its array header.
    let arr = t as *const ffi::apr_array_header_t;
    let (elts, n) = if arr.is_null() {
        (std::ptr::null(), 0)
    } else {
        (
            (*arr).elts as *const ffi::apr_table_entry_t,
            (*arr).nelts as usize,
        )
    };
    (0..n).filter_map(move |i| {
        let e = &*elts.add(i);
        if e.key.is_null() {
            None
        } else {
            Some((bytes(e.key), bytes(e.val)))
        }
    })
}

/// Copies `s` into `pool` as a NUL-terminated string (`apr_pstrmemdup`).
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pstrdup(pool: *mut ffi::apr_pool_t, s: &[u8]) -> *mut c_char {
    ffi::apr_pstrmemdup(pool, s.as_ptr() as *const c_char, s.len())
}

/// Copies `a` followed by `b` into `pool` as one NUL-terminated string
/// (a single pool allocation, no intermediate buffer).
///
/// # Safety
/// `pool` must be a live APR pool.
pub unsafe fn pstrcat2(pool: *mut ffi::apr_pool_t, a: &[u8], b: &[u8]) -> *mut c_char {
    let len = a.len() + b.len();
    let p = ffi::apr_palloc(pool, len + 1) as *mut u8;
    ptr::copy_nonoverlapping(a.as_ptr(), p, a.len());
    ptr::copy_nonoverlapping(b.as_ptr(), p.add(a.len()), b.len());
    *p.add(len) = 0;
    p as *mut c_char
}

unsafe extern "C" fn drop_in_pool<T>(data: *mut c_void) -> ffi::apr_status_t {
    // SAFETY: registered by `pool_box` for exactly this T, run once by APR.
    ptr::drop_in_place(data as *mut T);
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// Moves `value` into memory owned by `pool`; it is dropped when the pool is
/// cleared or destroyed (a registered cleanup). Returns a pointer valid for
/// the pool's lifetime.
///
/// # Safety
/// `pool` must be a live APR pool; the pointer must not be used after the
/// pool is cleared.
pub unsafe fn pool_box<T>(pool: *mut ffi::apr_pool_t, value: T) -> *mut T {
    assert!(std::mem::align_of::<T>() <= 8, "APR pools align to 8 bytes");
    let p = ffi::apr_palloc(pool, std::mem::size_of::<T>().max(1)) as *mut T;
    ptr::write(p, value);
    ffi::apr_pool_cleanup_register(
        pool,
        p as *const c_void,
        Some(drop_in_pool::<T>),
        Some(ffi::apr_pool_cleanup_null),
    );
    p
}

/// This module's entry in a configuration vector (`ap_get_module_config`).
///
/// # Safety
/// `cv` must be a configuration vector of the running configuration.
pub unsafe fn module_config<T>(cv: *mut ffi::ap_conf_vector_t) -> *mut T {
    *(cv as *mut *mut c_void).add(module_index() as usize) as *mut T
}

/// Sets this module's entry in a configuration vector (`ap_set_module_config`).
///
/// # Safety
/// As [`module_config`].
pub unsafe fn set_module_config<T>(cv: *mut ffi::ap_conf_vector_t, value: *const T) {
    *(cv as *mut *mut c_void).add(module_index() as usize) = value as *mut c_void;
}

/// Runs `f`, turning a panic into `on_panic` and a `RWSGI0001` log line, so no
/// unwind crosses an `extern "C"` boundary into Apache.
pub fn guard<R>(what: &str, on_panic: R, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(e) => {
            let detail = e
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| e.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log_s(
                ptr::null(),
                Level::Crit,
                0,
                &format!("RWSGI0001: internal error (panic) in {what}: {detail}"),
            );
            on_panic
        }
    }
}

/// Makes a `*const c_char` for a static C string.
pub const fn cs(s: &'static CStr) -> *const c_char {
    s.as_ptr()
}

/// This process's id, without a `getpid` system call per use: cached, and
/// forgotten in the child at every `fork` (Apache's children, daemon
/// processes), so a forked process never sees its parent's.
pub fn pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static PID: AtomicU32 = AtomicU32::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forget() {
        PID.store(0, Ordering::Relaxed);
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only stores an atomic, which is
        // async-signal-safe and so allowed in a fork child handler.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}
