//! mod_wsgi 6's telemetry directives (main server only):
//! `WSGITelemetryService unix:/path [interval=N]`, `WSGITelemetryOptions
//! [+|-]Flag... | None | All` and `WSGISlowRequests seconds`. Their values
//! are process-wide (the Apache parent reads them; children and daemon
//! processes inherit them); the reporter is `wsgi::telemetry`.

use crate::config::{arg_str, handler, main_server_only};
use crate::ffi;
use rwsgi_core::directives::split_words;
use rwsgi_core::telemetry::{
    apply_telemetry_options, parse_slow_requests, parse_telemetry_service,
};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// The telemetry configuration of this process.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// `WSGITelemetryService`: the UNIX datagram socket path and the interval
    /// in seconds; `None`: no reporter (the default).
    pub service: Option<(String, f64)>,
    /// `WSGISlowRequests` in microseconds (0: off, the default).
    pub slow_us: u64,
    /// `WSGITelemetryOptions` flags (`rwsgi_core::telemetry::*`; default none).
    pub options: u32,
}

static SERVICE: Mutex<Option<(String, f64)>> = Mutex::new(None);
static SLOW_US: AtomicU64 = AtomicU64::new(0);
static OPTIONS: AtomicU32 = AtomicU32::new(0);

/// Forgets the previous reading of the configuration (pre_config).
pub fn reset() {
    *SERVICE.lock().unwrap_or_else(|e| e.into_inner()) = None;
    SLOW_US.store(0, Relaxed);
    OPTIONS.store(0, Relaxed);
}

/// The telemetry configuration read from the directives.
pub fn telemetry() -> Telemetry {
    Telemetry {
        service: SERVICE.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        slow_us: SLOW_US.load(Relaxed),
        options: OPTIONS.load(Relaxed),
    }
}

/// `WSGISlowRequests` in microseconds (0: off).
pub fn slow_us() -> u64 {
    SLOW_US.load(Relaxed)
}

unsafe extern "C" fn cmd_telemetry_service(
    cmd: *mut ffi::cmd_parms,
    _cfg: *mut std::ffi::c_void,
    a1: *const std::ffi::c_char,
    a2: *const std::ffi::c_char,
) -> *const std::ffi::c_char {
    crate::apache::guard(
        "cmd_telemetry_service",
        crate::apache::cs(c"internal error in directive handler"),
        || unsafe {
            let d = "WSGITelemetryService";
            let r = (|| {
                main_server_only(cmd, d)?;
                let target = arg_str(d, a1)?;
                let second = if a2.is_null() {
                    None
                } else {
                    Some(arg_str(d, a2)?)
                };
                let parsed = parse_telemetry_service(target, second)?;
                *SERVICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(parsed);
                Ok(())
            })();
            crate::config::finish(cmd, r)
        },
    )
}

handler!(cmd_slow_requests, |cmd, cfg, w| {
    let d = "WSGISlowRequests";
    main_server_only(cmd, d)?;
    let secs = parse_slow_requests(arg_str(d, w)?)?;
    SLOW_US.store((secs * 1e6).round() as u64, Relaxed);
    Ok(())
});

handler!(cmd_telemetry_options, |cmd, cfg, args| {
    let d = "WSGITelemetryOptions";
    main_server_only(cmd, d)?;
    let words = split_words(d, arg_str(d, args)?)?;
    let flags = apply_telemetry_options(OPTIONS.load(Relaxed), &words)?;
    OPTIONS.store(flags, Relaxed);
    Ok(())
});

// ---- command entries --------------------------------------------------------

use crate::config::{command, RSRC};

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 3;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [
    ffi::command_rec {
        name: c"WSGITelemetryService".as_ptr(),
        func: ffi::cmd_func {
            take2: Some(cmd_telemetry_service),
        },
        cmd_data: std::ptr::null_mut(),
        req_override: RSRC as std::ffi::c_int,
        args_how: ffi::cmd_how_TAKE12,
        errmsg: c"Push telemetry to a metrics service. Args: unix:/path [interval=N]".as_ptr(),
    },
    command(c"WSGITelemetryOptions", cmd_telemetry_options, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Toggle metrics capture options. Args: [+|-]Flag... | None | All. Flags: CaptureUserAgent."),
    command(c"WSGISlowRequests", cmd_slow_requests, ffi::cmd_how_TAKE1, RSRC,
        c"Enable slow-request reporting. Arg: threshold in seconds."),
];
