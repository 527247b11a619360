//! The quick handler answering `WSGIMetricsEndpoint`, `WSGIStatusPage` and
//! its `.json` (before Apache maps the URL to anything: the allow-list is
//! the only access control, a refused client gets 403). Any Apache child
//! answers for the whole server, from the shared segment.

use crate::apache::{self, opt_bytes, opt_str, pstrdup, Level};
use crate::config_observe;
use crate::ffi;
use rwsgi_core::observe::exposition::Format;
use std::ffi::{c_int, c_void};

enum What {
    Metrics,
    Page,
    Json,
}

/// quick_handler hook: `DECLINED` for any other URL (one atomic load when
/// no endpoint is configured), else the response.
pub unsafe extern "C" fn quick_handler(r: *mut ffi::request_rec, lookup: c_int) -> c_int {
    if !config_observe::configured() {
        return ffi::DECLINED;
    }
    apache::guard("metrics endpoint", ffi::DECLINED, || unsafe {
        if lookup != 0 || !(*r).main.is_null() {
            return ffi::DECLINED;
        }
        let Some(ep) =
            config_observe::endpoints((*r).server as usize, ffi::ap_server_conf as usize)
        else {
            return ffi::DECLINED;
        };
        let Some(uri) = opt_bytes((*r).uri) else {
            return ffi::DECLINED;
        };
        let is = |p: &Option<String>, suffix: &[u8]| {
            p.as_deref()
                .is_some_and(|p| uri.strip_prefix(p.as_bytes()) == Some(suffix))
        };
        let what = if is(&ep.metrics, b"") {
            What::Metrics
        } else if is(&ep.status, b"") {
            What::Page
        } else if is(&ep.status, b".json") {
            What::Json
        } else {
            return ffi::DECLINED;
        };
        let client = opt_str((*r).useragent_ip).unwrap_or("");
        if !ep.allows(client) {
            apache::log_r(
                r,
                Level::Info,
                0,
                &format!("RWSGI0132: client {client} may not read {:?}: it is not in WSGIMetricsAllow (or --metrics-allow); 403", String::from_utf8_lossy(uri)),
            );
            return ffi::HTTP_FORBIDDEN as c_int;
        }
        let method = opt_bytes((*r).method).unwrap_or(b"");
        if method != b"GET" && method != b"HEAD" {
            ffi::apr_table_setn((*r).headers_out, c"Allow".as_ptr(), c"GET, HEAD".as_ptr());
            return ffi::HTTP_METHOD_NOT_ALLOWED as c_int;
        }
        let Some(snap) = super::collect::snapshot() else {
            apache::log_r(
                r,
                Level::Error,
                0,
                "RWSGI0131: the metrics are not available: the shared memory segment was not made at start-up (see the RWSGI0131 line of the start)",
            );
            return ffi::HTTP_SERVICE_UNAVAILABLE as c_int;
        };
        let (ctype, body): (&str, String) = match what {
            What::Metrics => {
                let accept = opt_str(ffi::apr_table_get((*r).headers_in, c"Accept".as_ptr()));
                let f = Format::negotiate(accept);
                (f.content_type(), snap.metrics(f))
            }
            What::Page => (
                "text/html; charset=utf-8",
                rwsgi_core::observe::STATUS_PAGE_HTML.to_string(),
            ),
            What::Json => (
                "application/json",
                rwsgi_core::observe::status_json::render(&snap),
            ),
        };
        ffi::ap_set_content_type(r, pstrdup((*r).pool, ctype.as_bytes()));
        ffi::apr_table_setn(
            (*r).headers_out,
            c"Cache-Control".as_ptr(),
            c"no-store".as_ptr(),
        );
        ffi::ap_set_content_length(r, body.len() as _);
        if (*r).header_only == 0 {
            ffi::ap_rwrite(body.as_ptr() as *const c_void, body.len() as c_int, r);
        }
        ffi::OK as c_int
    })
}
