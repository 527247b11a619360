//! The observability directives (server config and `<VirtualHost>`):
//! `WSGIMetricsEndpoint URL-PATH` (the whole server's metrics in the
//! Prometheus text format, or OpenMetrics), `WSGIStatusPage URL-PATH` (the
//! HTML status page, its JSON at `URL-PATH.json`) and
//! `WSGIMetricsAllow CIDR...` (the clients both answer; default
//! `127.0.0.1/32 ::1/128`, others get 403). All off by default; a virtual
//! host without its own uses the main server's. Served by `crate::observe`.

use crate::config::{arg_str, handler};
use crate::ffi;
use rwsgi_core::directives::DirectiveError;
use rwsgi_core::observe::cidr::{self, Cidr};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// The endpoints of one server (main or virtual host).
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// The `server_rec` they were configured in (its address).
    pub server: usize,
    /// `WSGIMetricsEndpoint`.
    pub metrics: Option<String>,
    /// `WSGIStatusPage`.
    pub status: Option<String>,
    /// `WSGIMetricsAllow` (`None`: the default, loopback only).
    pub allow: Option<Vec<Cidr>>,
}

static READING: Mutex<Vec<Endpoints>> = Mutex::new(Vec::new());
/// The table the request path reads (published at post_config, never freed:
/// a few bytes per configuration generation).
static PUBLISHED: AtomicPtr<Vec<Endpoints>> = AtomicPtr::new(std::ptr::null_mut());

/// Forgets the previous reading of the configuration (pre_config).
pub fn reset() {
    READING.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Publishes what the directives set (post_config, before the forks), for
/// [`endpoints`]; returns whether any endpoint is configured.
pub fn publish() -> bool {
    let table = READING.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let any = table
        .iter()
        .any(|e| e.metrics.is_some() || e.status.is_some());
    let p = if any {
        Box::into_raw(Box::new(table))
    } else {
        std::ptr::null_mut()
    };
    PUBLISHED.store(p, Ordering::Release);
    any
}

/// Whether any endpoint is configured (one atomic load).
#[inline]
pub fn configured() -> bool {
    !PUBLISHED.load(Ordering::Relaxed).is_null()
}

/// The endpoints answering on server `s` (its own, else the main server's
/// `main`), `None` when no endpoint is configured anywhere.
pub fn endpoints(s: usize, main: usize) -> Option<&'static Endpoints> {
    // SAFETY: published once per generation and never freed.
    let table = unsafe { PUBLISHED.load(Ordering::Acquire).as_ref() }?;
    let own = table.iter().find(|e| e.server == s);
    let main = table.iter().find(|e| e.server == main);
    match (own, main) {
        (Some(o), _) if o.metrics.is_some() || o.status.is_some() => Some(o),
        (_, m) => m,
    }
}

impl Endpoints {
    /// Whether client `addr` may read the endpoints.
    pub fn allows(&self, addr: &str) -> bool {
        match &self.allow {
            Some(list) => cidr::allowed(list, addr),
            None => cidr::allowed(&cidr::default_allow(), addr),
        }
    }
}

fn with_server<R>(
    cmd: *mut ffi::cmd_parms,
    f: impl FnOnce(&mut Endpoints) -> Result<R, DirectiveError>,
) -> Result<R, DirectiveError> {
    // SAFETY: cmd is the live cmd_parms of the directive being read.
    let s = unsafe { (*cmd).server } as usize;
    let mut t = READING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = t.iter_mut().find(|e| e.server == s) {
        return f(e);
    }
    t.push(Endpoints {
        server: s,
        ..Default::default()
    });
    f(t.last_mut().expect("just pushed"))
}

fn url_path(d: &'static str, v: &str) -> Result<String, DirectiveError> {
    if !v.starts_with('/') || v.len() < 2 || v.chars().any(|c| c.is_whitespace() || c == '?') {
        return Err(DirectiveError {
            directive: d,
            message: format!("RWSGI0130: {v:?} is not a URL path: give one such as /metrics (it starts with '/', has no query and no spaces)"),
        });
    }
    Ok(v.to_string())
}

handler!(cmd_metrics_endpoint, |cmd, cfg, w| {
    let d = "WSGIMetricsEndpoint";
    let path = url_path(d, arg_str(d, w)?)?;
    with_server(cmd, |e| {
        if e.status.as_deref() == Some(&path) {
            return Err(DirectiveError {
                directive: d,
                message: format!("RWSGI0130: {path:?} is already the WSGIStatusPage"),
            });
        }
        e.metrics = Some(path);
        Ok(())
    })
});

handler!(cmd_status_page, |cmd, cfg, w| {
    let d = "WSGIStatusPage";
    let path = url_path(d, arg_str(d, w)?)?;
    with_server(cmd, |e| {
        if e.metrics.as_deref() == Some(&path) {
            return Err(DirectiveError {
                directive: d,
                message: format!("RWSGI0130: {path:?} is already the WSGIMetricsEndpoint"),
            });
        }
        e.status = Some(path);
        Ok(())
    })
});

handler!(cmd_metrics_allow, |cmd, cfg, w| {
    let d = "WSGIMetricsAllow";
    let c = Cidr::parse(arg_str(d, w)?).map_err(|m| DirectiveError {
        directive: d,
        message: format!("RWSGI0130: {m}"),
    })?;
    with_server(cmd, |e| {
        e.allow.get_or_insert_with(Vec::new).push(c);
        Ok(())
    })
});

// ---- command entries --------------------------------------------------------

use crate::config::{command, RSRC};

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 3;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [
    command(c"WSGIMetricsEndpoint", cmd_metrics_endpoint, ffi::cmd_how_TAKE1, RSRC,
        c"URL path answering with the whole server's metrics (Prometheus text format or OpenMetrics)"),
    command(c"WSGIStatusPage", cmd_status_page, ffi::cmd_how_TAKE1, RSRC,
        c"URL path of the HTML status page (its JSON at URL-PATH.json)"),
    command(c"WSGIMetricsAllow", cmd_metrics_allow, ffi::cmd_how_ITERATE, RSRC,
        c"Clients (addresses or CIDR networks) allowed to read WSGIMetricsEndpoint and WSGIStatusPage (default 127.0.0.1/32 ::1/128)"),
];
