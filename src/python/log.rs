//! Logging of Python's output: exceptions with their tracebacks, and what
//! the application writes to `sys.stdout`/`sys.stderr`, one error-log line
//! per text line against the request the writing thread serves. A partial
//! line (no newline yet) waits per thread, up to 8 KiB, and is logged at
//! the end of the request, of the thread, or of the process.

use super::{object, Runtime};
use crate::apache::{Level, LogTarget};
use object::Owned;
use pyo3_ffi::*;
use std::cell::Cell;
use std::ptr;
use std::sync::Mutex;

thread_local! {
    static CURRENT_TARGET: Cell<LogTarget> = const { Cell::new(LogTarget::None) };
    // A partial line of application output (no newline yet). Its destructor
    // logs what is left and frees it when the thread ends: threads made by
    // the application (threading.Thread) come and go. Only threads that
    // write through sys.stdout/sys.stderr touch it, and those exist only in
    // processes where Python runs (never the Apache parent); the module is
    // linked with -z nodelete, so the destructor's code stays mapped.
    static LOG_PENDING: PendingLine = const { PendingLine(std::cell::RefCell::new(None)) };
}

/// Longest partial line kept back waiting for its newline, in bytes.
const MAX_PENDING_LOG: usize = 8192;

/// One thread's partial output line, shared with the registry that child
/// exit flushes.
type SharedPending = std::sync::Arc<Mutex<Vec<u8>>>;

/// Partial lines of the threads alive now, so child exit can log them.
static ALL_PENDING: Mutex<Vec<SharedPending>> = Mutex::new(Vec::new());

/// The thread-local owner of a thread's partial line.
struct PendingLine(std::cell::RefCell<Option<SharedPending>>);

impl Drop for PendingLine {
    fn drop(&mut self) {
        // Thread exit: log the unfinished line, forget the buffer.
        if let Some(buf) = self.0.get_mut().take() {
            let rest = std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
            let mut all = ALL_PENDING.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|b| !std::sync::Arc::ptr_eq(b, &buf));
            drop(all);
            log_lines(LogTarget::None, &rest);
        }
    }
}

/// Makes `target` where this thread's application output (`sys.stdout`,
/// `print`) is logged: the request it serves. Returns the previous one, to
/// be put back when that request ends (sub-requests nest).
pub fn replace_log_target(target: LogTarget) -> LogTarget {
    CURRENT_TARGET.replace(target)
}

/// Takes the pending Python exception and formats its traceback text.
/// Returns `None` if no exception is set. GIL held.
pub unsafe fn take_exception_text(rt: Option<&Runtime>) -> Option<String> {
    if PyErr_Occurred().is_null() {
        return None;
    }
    let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    PyErr_Fetch(&mut t, &mut v, &mut tb);
    PyErr_NormalizeException(&mut t, &mut v, &mut tb);
    if !tb.is_null() && !v.is_null() {
        PyException_SetTraceback(v, tb);
    }
    let t = Owned::new(t);
    let v = Owned::new(v);
    let tb = Owned::new(tb);
    let none = Py_None();
    let arg = |o: &Option<Owned>| o.as_ref().map(|o| o.as_ptr()).unwrap_or(none);
    let text = match rt {
        Some(rt) => {
            let s = PyObject_CallFunctionObjArgs(
                rt.format_exception.as_ptr(),
                arg(&t),
                arg(&v),
                arg(&tb),
                ptr::null_mut::<PyObject>(),
            );
            Owned::new(s).and_then(|s| object::to_string(s.as_ptr()))
        }
        None => None,
    };
    let text = text.or_else(|| {
        v.as_ref()
            .and_then(|v| Owned::new(PyObject_Repr(v.as_ptr())))
            .and_then(|s| object::to_string(s.as_ptr()))
    });
    PyErr_Clear();
    Some(text.unwrap_or_else(|| "<exception could not be formatted>".into()))
}

/// Logs `msg` and then the pending exception's traceback, line by line,
/// to `target` (a request, or the server), at level error. GIL held.
pub unsafe fn log_exception(target: impl Into<LogTarget>, msg: &str) {
    log_exception_at(target, Level::Error, msg)
}

/// As [`log_exception`], at `level` (e.g. a warning for an exception the
/// caller recovers from). GIL held.
pub unsafe fn log_exception_at(target: impl Into<LogTarget>, level: Level, msg: &str) {
    let target = target.into();
    // The formatter of the interpreter the exception belongs to.
    let rt = super::interp::current();
    let text = take_exception_text(rt);
    target.log(level, msg);
    if let Some(text) = text {
        for line in text.lines() {
            target.log(level, line);
        }
    }
}

/// Writes bytes written by the application through `sys.stdout` or
/// `sys.stderr` to the error log, one log line per text line, at level
/// error, against the request this thread is serving if any. A partial line
/// waits (up to 8 KiB) for its newline, the end of the request, or the end
/// of the thread.
pub fn log_application_output(data: &[u8]) {
    let ready = LOG_PENDING.try_with(|p| {
        let mut slot = p.0.borrow_mut();
        let buf = slot.get_or_insert_with(|| {
            let b = SharedPending::default();
            ALL_PENDING
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(b.clone());
            b
        });
        let mut pending = buf.lock().unwrap_or_else(|e| e.into_inner());
        take_complete_lines(&mut pending, data)
    });
    match ready {
        Ok(Some(lines)) => log_lines(CURRENT_TARGET.get(), &lines),
        Ok(None) => {}
        // The thread is exiting: nothing can wait any more.
        Err(_) => log_lines(CURRENT_TARGET.get(), data),
    }
}

/// Appends `data` to a partial-line buffer and takes out what is ready to
/// log: everything up to the last newline, or all of it once the partial
/// line exceeds 8 KiB. The buffer never keeps more than 8 KiB of capacity.
pub fn take_complete_lines(pending: &mut Vec<u8>, data: &[u8]) -> Option<Vec<u8>> {
    pending.extend_from_slice(data);
    let complete = match pending.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None if pending.len() > MAX_PENDING_LOG => pending.len(),
        None => return None,
    };
    let rest = pending[complete..].to_vec();
    let lines = std::mem::replace(pending, rest);
    Some(lines)
}

/// Logs what is left of this thread's partial output line at the end of a
/// request, so it carries that request's context. No Python call is made.
pub fn flush_application_output() {
    let rest = LOG_PENDING.try_with(|p| {
        p.0.borrow()
            .as_ref()
            .map(|b| std::mem::take(&mut *b.lock().unwrap_or_else(|e| e.into_inner())))
    });
    if let Ok(Some(rest)) = rest {
        log_lines(CURRENT_TARGET.get(), &rest);
    }
}

/// Logs the partial lines every thread still holds (child exit).
pub(super) fn flush_all_application_output() {
    let all: Vec<SharedPending> = ALL_PENDING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    for buf in all {
        let rest = std::mem::take(&mut *buf.lock().unwrap_or_else(|e| e.into_inner()));
        log_lines(LogTarget::None, &rest);
    }
}

/// Logs `data` line by line (a trailing partial line included; empty lines
/// and a CR before LF dropped) at level error to `target`.
pub fn log_lines(target: LogTarget, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.is_empty() {
            target.log(Level::Error, line);
        }
    }
}
