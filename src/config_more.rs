//! mod_wsgi's dispatch, interpreter, restriction, proxy and output
//! directives: their configuration records (parts of config.rs's
//! `ServerConfig`/`DirConfig`), merge rules, handlers and command entries.
//!
//! Argument parsing is in `rwsgi_core::options` and `rwsgi_core::proxy`
//! (unit-tested).

use crate::apache::{self, Level};
use crate::config::{arg_str, dir, handler, main_server_only, srv, DIRS, RSRC};
use crate::config_auth::AuthScripts;
use crate::ffi;
use rwsgi_core::directives::{parse_on_off, split_words, DirectiveError};
use rwsgi_core::options::{self, HashSeed};
use rwsgi_core::proxy::{self, IpNet};
use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `WSGIDispatchScript`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchSpec {
    /// Absolute path of the script.
    pub path: String,
    /// `application-group=`: reported to the script; every group is the
    /// main interpreter for now.
    pub application_group: String,
}

/// Per-directory settings of this file's directives (`None`: not set here).
#[derive(Debug, Default, Clone)]
pub struct DirMore {
    /// `WSGIDispatchScript`.
    pub dispatch_script: Option<Arc<DispatchSpec>>,
    /// `WSGIPassApacheRequest` (default Off).
    pub pass_apache_request: Option<bool>,
    /// `WSGIErrorOverride` (default Off).
    pub error_override: Option<bool>,
    /// `WSGIEnableSendfile` (default Off).
    pub enable_sendfile: Option<bool>,
    /// `WSGITrustedProxyHeaders`, as environ names.
    pub trusted_proxy_headers: Option<Arc<Vec<String>>>,
    /// `WSGITrustedProxies`.
    pub trusted_proxies: Option<Arc<Vec<IpNet>>>,
    /// Access and authentication scripts (config_auth.rs).
    pub auth: AuthScripts,
}

impl DirMore {
    /// `add` over `base`, setting by setting (mod_wsgi's merge).
    pub fn merge(base: &DirMore, add: &DirMore) -> DirMore {
        DirMore {
            dispatch_script: add
                .dispatch_script
                .clone()
                .or_else(|| base.dispatch_script.clone()),
            pass_apache_request: add.pass_apache_request.or(base.pass_apache_request),
            error_override: add.error_override.or(base.error_override),
            enable_sendfile: add.enable_sendfile.or(base.enable_sendfile),
            trusted_proxy_headers: add
                .trusted_proxy_headers
                .clone()
                .or_else(|| base.trusted_proxy_headers.clone()),
            trusted_proxies: add
                .trusted_proxies
                .clone()
                .or_else(|| base.trusted_proxies.clone()),
            auth: AuthScripts::merge(&base.auth, &add.auth),
        }
    }
}

/// The effective settings of one request (WSGIErrorOverride is read by
/// the response writer itself, from the request's directory configuration).
#[derive(Debug, Clone, Default)]
pub struct MoreSettings {
    /// The dispatch script, if any.
    pub dispatch_script: Option<Arc<DispatchSpec>>,
    /// Put `apache.request_rec` in the environ (embedded mode).
    pub pass_apache_request: bool,
    /// Send `wsgi.file_wrapper` files with sendfile().
    pub enable_sendfile: bool,
    /// Trusted proxy headers (environ names); `None`: none.
    pub trusted_proxy_headers: Option<Arc<Vec<String>>>,
    /// Trusted proxies; `None`: every peer.
    pub trusted_proxies: Option<Arc<Vec<IpNet>>>,
    /// Access and authentication scripts.
    pub auth: AuthScripts,
}

impl MoreSettings {
    /// The settings of a request from its directory configuration.
    pub fn resolve(d: &DirMore) -> MoreSettings {
        MoreSettings {
            dispatch_script: d.dispatch_script.clone(),
            pass_apache_request: d.pass_apache_request.unwrap_or(false),
            enable_sendfile: d.enable_sendfile.unwrap_or(false),
            trusted_proxy_headers: d.trusted_proxy_headers.clone(),
            trusted_proxies: d.trusted_proxies.clone(),
            auth: d.auth.clone(),
        }
    }
}

/// Main-server settings (all `server config` only).
#[derive(Debug, Default, Clone)]
pub struct ServerMore {
    /// `WSGIRestrictStdin` (default Off).
    pub restrict_stdin: Option<bool>,
    /// `WSGIRestrictStdout` (default Off).
    pub restrict_stdout: Option<bool>,
    /// `WSGIRestrictSignal` (default On).
    pub restrict_signal: Option<bool>,
    /// `WSGIDontWriteBytecode` (default Off).
    pub dont_write_bytecode: Option<bool>,
    /// `WSGIPythonOptimize` (default 0).
    pub python_optimize: Option<i32>,
    /// `WSGIPythonHashSeed` (default: Python's, random).
    pub python_hash_seed: Option<HashSeed>,
    /// `WSGIPythonWarnings`, in order.
    pub python_warnings: Vec<String>,
    /// `WSGIPythonEggs` (`PYTHON_EGG_CACHE`).
    pub python_eggs: Option<String>,
    /// `WSGISwitchInterval` seconds.
    pub switch_interval: Option<f64>,
    /// `WSGICaseSensitivity` (default On).
    pub case_sensitivity: Option<bool>,
    /// `WSGIDestroyInterpreter` (default On; config_interp.rs).
    pub destroy_interpreter: Option<bool>,
}

/// Whether a directive needs Python in Apache's children even with
/// `WSGIRestrictEmbedded On` (a dispatch, access or authentication script;
/// mod_wsgi's `wsgi_python_required`). Reset at each configuration pass.
static PYTHON_REQUIRED: AtomicBool = AtomicBool::new(false);

/// Forgets the previous configuration pass (pre_config).
pub fn reset() {
    PYTHON_REQUIRED.store(false, Ordering::Relaxed);
    crate::wsgi::scoreboard::set_embedded(false);
}

/// Whether Apache's children need Python whatever `WSGIRestrictEmbedded`
/// says (a `WSGIDispatchScript`, `WSGIAccessScript`, `WSGIAuthUserScript`
/// or `WSGIAuthGroupScript` is configured).
pub fn python_required() -> bool {
    PYTHON_REQUIRED.load(Ordering::Relaxed)
}

/// Records that a directive of this configuration pass runs Python in
/// Apache's children (see [`python_required`]).
pub fn require_python() {
    PYTHON_REQUIRED.store(true, Ordering::Relaxed);
}

// ---- handlers ---------------------------------------------------------------

/// A main-server-only On|Off directive's value (configtest error naming
/// `d` in a virtual host or for another value).
pub(crate) unsafe fn server_flag(
    cmd: *mut ffi::cmd_parms,
    d: &'static str,
    w: *const c_char,
) -> Result<bool, DirectiveError> {
    main_server_only(cmd, d)?;
    parse_on_off(d, arg_str(d, w)?)
}

/// An absolute path for `path` (relative to ServerRoot).
pub(crate) unsafe fn server_path(
    cmd: *mut ffi::cmd_parms,
    d: &'static str,
    path: &str,
) -> Result<String, DirectiveError> {
    let bad = || DirectiveError {
        directive: d,
        message: format!("{path:?} is not a valid path"),
    };
    let c = std::ffi::CString::new(path).map_err(|_| bad())?;
    let abs =
        apache::opt_str(ffi::ap_server_root_relative((*cmd).pool, c.as_ptr())).ok_or_else(bad)?;
    Ok(abs.to_string())
}

handler!(cmd_dispatch_script, |cmd, cfg, args| {
    let d = "WSGIDispatchScript";
    let spec = options::parse_dispatch_script(arg_str(d, args)?)?;
    let path = server_path(cmd, d, &spec.path)?;
    dir(cfg).more.dispatch_script = Some(Arc::new(DispatchSpec {
        path,
        application_group: spec.application_group.unwrap_or_else(|| "%{GLOBAL}".into()),
    }));
    require_python();
    Ok(())
});

handler!(cmd_server_metrics, |cmd, cfg, w| {
    crate::wsgi::scoreboard::set_embedded(server_flag(cmd, "WSGIServerMetrics", w)?);
    Ok(())
});

handler!(cmd_restrict_stdin, |cmd, cfg, w| {
    srv(cmd).more.restrict_stdin = Some(server_flag(cmd, "WSGIRestrictStdin", w)?);
    Ok(())
});

handler!(cmd_restrict_stdout, |cmd, cfg, w| {
    srv(cmd).more.restrict_stdout = Some(server_flag(cmd, "WSGIRestrictStdout", w)?);
    Ok(())
});

handler!(cmd_restrict_signal, |cmd, cfg, w| {
    srv(cmd).more.restrict_signal = Some(server_flag(cmd, "WSGIRestrictSignal", w)?);
    Ok(())
});

handler!(cmd_dont_write_bytecode, |cmd, cfg, w| {
    srv(cmd).more.dont_write_bytecode = Some(server_flag(cmd, "WSGIDontWriteBytecode", w)?);
    Ok(())
});

handler!(cmd_case_sensitivity, |cmd, cfg, w| {
    srv(cmd).more.case_sensitivity = Some(server_flag(cmd, "WSGICaseSensitivity", w)?);
    Ok(())
});

handler!(cmd_python_optimize, |cmd, cfg, w| {
    let d = "WSGIPythonOptimize";
    main_server_only(cmd, d)?;
    srv(cmd).more.python_optimize = Some(options::parse_optimize(arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_python_hash_seed, |cmd, cfg, w| {
    let d = "WSGIPythonHashSeed";
    main_server_only(cmd, d)?;
    srv(cmd).more.python_hash_seed = Some(options::parse_hash_seed(arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_python_warnings, |cmd, cfg, w| {
    let d = "WSGIPythonWarnings";
    main_server_only(cmd, d)?;
    let v = options::parse_warnings(arg_str(d, w)?)?;
    srv(cmd).more.python_warnings.push(v);
    Ok(())
});

handler!(cmd_python_eggs, |cmd, cfg, w| {
    let d = "WSGIPythonEggs";
    main_server_only(cmd, d)?;
    let v = arg_str(d, w)?;
    if v.is_empty() {
        return Err(DirectiveError {
            directive: d,
            message: "expected a directory".into(),
        });
    }
    srv(cmd).more.python_eggs = Some(server_path(cmd, d, v)?);
    Ok(())
});

handler!(cmd_switch_interval, |cmd, cfg, w| {
    let d = "WSGISwitchInterval";
    main_server_only(cmd, d)?;
    srv(cmd).more.switch_interval = Some(options::parse_switch_interval(arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_accept_mutex, |cmd, cfg, w| {
    let d = "WSGIAcceptMutex";
    main_server_only(cmd, d)?;
    options::parse_accept_mutex(arg_str(d, w)?)
});

handler!(cmd_pass_apache_request, |cmd, cfg, w| {
    let d = "WSGIPassApacheRequest";
    dir(cfg).more.pass_apache_request = Some(parse_on_off(d, arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_error_override, |cmd, cfg, w| {
    let d = "WSGIErrorOverride";
    dir(cfg).more.error_override = Some(parse_on_off(d, arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_enable_sendfile, |cmd, cfg, w| {
    let d = "WSGIEnableSendfile";
    dir(cfg).more.enable_sendfile = Some(parse_on_off(d, arg_str(d, w)?)?);
    Ok(())
});

handler!(cmd_trusted_proxy_headers, |cmd, cfg, args| {
    let d = "WSGITrustedProxyHeaders";
    let words = split_words(d, arg_str(d, args)?)?;
    let (names, unknown) = proxy::parse_trusted_headers(&words)?;
    if !unknown.is_empty() {
        apache::log_s(
            (*cmd).server,
            Level::Warn,
            0,
            &format!(
                "RWSGI0073: WSGITrustedProxyHeaders: {unknown:?} are not headers mod_wsgi rewrites from; they have no effect (known: {})",
                proxy::known_headers().join(", ")
            ),
        );
    }
    // Repeated directives in one context add to the list, as mod_wsgi.
    let slot = dir(cfg)
        .more
        .trusted_proxy_headers
        .get_or_insert_with(Default::default);
    Arc::make_mut(slot).extend(names);
    Ok(())
});

handler!(cmd_trusted_proxies, |cmd, cfg, args| {
    let d = "WSGITrustedProxies";
    let words = split_words(d, arg_str(d, args)?)?;
    let nets = proxy::parse_trusted_proxies(&words)?;
    let slot = dir(cfg)
        .more
        .trusted_proxies
        .get_or_insert_with(Default::default);
    Arc::make_mut(slot).extend(nets);
    Ok(())
});

// ---- command entries --------------------------------------------------------

use crate::config::command;
const TAKE1: ffi::cmd_how = ffi::cmd_how_TAKE1;
const RAW: ffi::cmd_how = ffi::cmd_how_RAW_ARGS;
const SRV_DIR: u32 = ffi::RSRC_CONF | ffi::ACCESS_CONF;

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 18;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [
    command(c"WSGIDispatchScript", cmd_dispatch_script, RAW, SRV_DIR,
        c"Script whose process_group(environ), application_group(environ), callable_object(environ) choose where a request runs: WSGIDispatchScript path [application-group=NAME]"),
    command(c"WSGIRestrictStdin", cmd_restrict_stdin, TAKE1, RSRC,
        c"On replaces sys.stdin with mod_wsgi.Restricted (any use raises OSError)"),
    command(c"WSGIRestrictStdout", cmd_restrict_stdout, TAKE1, RSRC,
        c"On replaces sys.stdout with mod_wsgi.Restricted (any use raises OSError)"),
    command(c"WSGIRestrictSignal", cmd_restrict_signal, TAKE1, RSRC,
        c"On (default) ignores signal.signal() registrations, with a warning"),
    command(c"WSGIDontWriteBytecode", cmd_dont_write_bytecode, TAKE1, RSRC,
        c"On stops Python writing .pyc files"),
    command(c"WSGIPythonOptimize", cmd_python_optimize, TAKE1, RSRC,
        c"Python optimisation level 0, 1 or 2 (python -O)"),
    command(c"WSGIPythonHashSeed", cmd_python_hash_seed, TAKE1, RSRC,
        c"Python hash seed: random or 0-4294967295 (PYTHONHASHSEED)"),
    command(c"WSGIPythonWarnings", cmd_python_warnings, TAKE1, RSRC,
        c"Python warnings filter, as python -W (repeatable)"),
    command(c"WSGIPythonEggs", cmd_python_eggs, TAKE1, RSRC,
        c"Python eggs cache directory (PYTHON_EGG_CACHE)"),
    command(c"WSGISwitchInterval", cmd_switch_interval, TAKE1, RSRC,
        c"Python GIL switch interval in seconds (sys.setswitchinterval)"),
    command(c"WSGIAcceptMutex", cmd_accept_mutex, TAKE1, RSRC,
        c"Accept mutex of daemon processes (accepted; rwsgi's daemons need none)"),
    command(c"WSGICaseSensitivity", cmd_case_sensitivity, TAKE1, RSRC,
        c"Off: the file system is case insensitive (resource names are lower-cased)"),
    command(c"WSGIPassApacheRequest", cmd_pass_apache_request, TAKE1, SRV_DIR,
        c"On puts a PyCapsule of the request_rec in environ['apache.request_rec'] (embedded mode)"),
    command(c"WSGIErrorOverride", cmd_error_override, TAKE1, DIRS,
        c"On lets Apache's ErrorDocument replace error responses of daemon-mode applications"),
    command(c"WSGIEnableSendfile", cmd_enable_sendfile, TAKE1, DIRS,
        c"On sends wsgi.file_wrapper files with the kernel's sendfile()"),
    command(c"WSGITrustedProxyHeaders", cmd_trusted_proxy_headers, RAW, DIRS,
        c"Proxy headers (X-Forwarded-For, X-Forwarded-Proto, ...) that rewrite the environ"),
    command(c"WSGITrustedProxies", cmd_trusted_proxies, RAW, DIRS,
        c"Addresses or networks of the proxies whose headers are trusted"),
    command(c"WSGIServerMetrics", cmd_server_metrics, TAKE1, RSRC,
        c"On lets mod_wsgi.server_metrics() read Apache's scoreboard in embedded mode (default Off)"),
];
