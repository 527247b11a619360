//! Requests answered by a `WSGIHandlerScript` (config_handler.rs): the
//! handler script runs, embedded or in its process group, while
//! `r->filename` (the requested file) stays `SCRIPT_FILENAME`.

use super::{Level, LogTarget};
use crate::config::RequestSettings;
use crate::config_handler::HandlerScript;
use crate::ffi;
use std::ffi::c_int;

/// Serves `r` with handler script `h` and `settings` (already carrying
/// `h`'s options). Returns 404 (RWSGI0100, logged) when the handler script
/// cannot be stat'ed, as mod_wsgi; otherwise what
/// [`super::request::handle_request`] returns (whose environ then has
/// `mod_wsgi.request_handler`, the handler name, and
/// `mod_wsgi.handler_script`, the script's path).
///
/// # Safety
/// `r` must be the live request of the calling handler hook.
pub unsafe fn handle(
    r: *mut ffi::request_rec,
    settings: &RequestSettings,
    h: &HandlerScript,
) -> c_int {
    if let Err(e) = std::fs::metadata(&h.path) {
        LogTarget::Request(r).log(
            Level::Error,
            &format!(
                "RWSGI0100: unable to stat the WSGIHandlerScript {:?} of handler {:?}: {e}",
                h.path,
                String::from_utf8_lossy(super::bytes((*r).handler))
            ),
        );
        return ffi::HTTP_NOT_FOUND as c_int;
    }
    super::request::handle_request(r, settings)
}

/// The script a request runs and its modification time (microseconds since
/// the epoch): the handler script when there is one, else `r->filename`
/// with the time Apache stat'ed. `filename` is `r->filename`.
///
/// # Safety
/// `r` must be live.
pub unsafe fn script_of<'a>(
    r: *mut ffi::request_rec,
    settings: &'a RequestSettings,
    filename: &'a str,
) -> (&'a str, i64) {
    match &settings.handler_script {
        Some(h) => (h.path.as_str(), crate::python::file_mtime_us(&h.path)),
        None => (filename, (*r).finfo.mtime),
    }
}
