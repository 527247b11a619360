//! mod_wsgi's configuration directives: per-server and per-directory
//! configuration records, their merge rules, and the command table.
//!
//! Argument parsing is in `rwsgi_core::directives` (unit-tested); this file
//! adapts it to Apache's `command_rec` callbacks. A refused value is returned
//! as the directive's error string, which Apache reports with the file and line
//! (`apachectl configtest` fails).

use crate::apache::{self, pool_box};
use crate::config_more::{DirMore, MoreSettings, ServerMore};
use crate::ffi;
use rwsgi_core::daemon_config::{parse_daemon_process, DaemonProcess};
use rwsgi_core::directives::{
    self, is_embedded_group, AliasOptions, DirectiveError, ImportScript, MapHeadToGet, ScriptAlias,
};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::path::Path;
use std::ptr;

/// Per-server (virtual host) configuration.
#[derive(Debug, Default, Clone)]
pub struct ServerConfig {
    /// `WSGIScriptAlias` and `WSGIScriptAliasMatch`, in configuration order.
    pub aliases: Vec<ScriptAlias>,
    /// `WSGIPythonHome` (main server only).
    pub python_home: Option<String>,
    /// `WSGIPythonPath` directories (main server only).
    pub python_path: Vec<String>,
    /// `WSGIImportScript` (main server only).
    pub import_scripts: Vec<ImportScript>,
    /// `WSGIRestrictEmbedded` (main server only; default Off).
    pub restrict_embedded: Option<bool>,
    /// `WSGISocketPrefix` (main server only): path prefix of the daemon
    /// sockets, relative to ServerRoot unless absolute; default `None`:
    /// `<DefaultRuntimeDir>/rwsgi/`, a directory only Apache's user enters.
    pub socket_prefix: Option<String>,
    /// `WSGISocketRotation` (main server only; default On): a new socket
    /// name for each configuration generation.
    pub socket_rotation: Option<bool>,
    /// The interpreter and restriction directives (config_more.rs).
    pub more: ServerMore,
}

/// Per-directory configuration (also the server default, as Apache passes the
/// server's default directory record for directives at server level).
#[derive(Debug, Default, Clone)]
pub struct DirConfig {
    /// `WSGIProcessGroup` (`%{GLOBAL}` = embedded, or a daemon group).
    pub process_group: Option<String>,
    /// `WSGIApplicationGroup` (default `%{RESOURCE}`).
    pub application_group: Option<String>,
    /// `WSGICallableObject` (default `application`).
    pub callable_object: Option<String>,
    /// `WSGIPassAuthorization` (default Off).
    pub pass_authorization: Option<bool>,
    /// `WSGIChunkedRequest` (default Off).
    pub chunked_request: Option<bool>,
    /// `WSGIScriptReloading` (default On).
    pub script_reloading: Option<bool>,
    /// `WSGIMapHEADToGET` (default Auto).
    pub map_head_to_get: Option<MapHeadToGet>,
    /// `WSGIRestrictProcess group ...`: the process groups requests here may
    /// be delegated to (default: any).
    pub restrict_process: Option<Vec<String>>,
    /// `WSGIIgnoreActivity` (default Off): requests here do not count as
    /// activity for the daemon's inactivity-timeout.
    pub ignore_activity: Option<bool>,
    /// Dispatch, proxy, sendfile, error override... (config_more.rs).
    pub more: DirMore,
    /// `WSGIHandlerScript` definitions (config_handler.rs).
    pub handlers: crate::config_handler::HandlerScripts,
}

impl DirConfig {
    fn merge(base: &DirConfig, add: &DirConfig) -> DirConfig {
        DirConfig {
            process_group: add
                .process_group
                .clone()
                .or_else(|| base.process_group.clone()),
            application_group: add
                .application_group
                .clone()
                .or_else(|| base.application_group.clone()),
            callable_object: add
                .callable_object
                .clone()
                .or_else(|| base.callable_object.clone()),
            pass_authorization: add.pass_authorization.or(base.pass_authorization),
            chunked_request: add.chunked_request.or(base.chunked_request),
            script_reloading: add.script_reloading.or(base.script_reloading),
            map_head_to_get: add.map_head_to_get.or(base.map_head_to_get),
            restrict_process: add
                .restrict_process
                .clone()
                .or_else(|| base.restrict_process.clone()),
            ignore_activity: add.ignore_activity.or(base.ignore_activity),
            more: DirMore::merge(&base.more, &add.more),
            handlers: crate::config_handler::HandlerScripts::merge(&base.handlers, &add.handlers),
        }
    }
}

/// The effective settings of one request: alias options over directory
/// configuration over defaults (mod_wsgi's precedence).
#[derive(Debug, Clone)]
pub struct RequestSettings {
    /// Application group spec before expansion, e.g. `%{GLOBAL}`.
    pub application_group: String,
    /// Process group ('' = embedded).
    pub process_group: String,
    /// Name of the WSGI callable.
    pub callable_object: String,
    /// Expose `HTTP_AUTHORIZATION`.
    pub pass_authorization: bool,
    /// Accept chunked request bodies.
    pub chunked_request: bool,
    /// Re-import the script when its modification time changes.
    pub script_reloading: bool,
    /// HEAD → GET mapping.
    pub map_head_to_get: MapHeadToGet,
    /// Process groups allowed here (`WSGIRestrictProcess`; `None`: any).
    pub restrict_process: Option<Vec<String>>,
    /// Not activity for inactivity-timeout (`WSGIIgnoreActivity`).
    pub ignore_activity: bool,
    /// The settings of config_more.rs's directives.
    pub more: MoreSettings,
    /// The `WSGIHandlerScript` answering the request (config_handler.rs):
    /// it runs instead of `r->filename`, which stays `SCRIPT_FILENAME`.
    pub handler_script: Option<std::sync::Arc<crate::config_handler::HandlerScript>>,
}

impl RequestSettings {
    /// Resolves the settings of a request from the matched alias options (if
    /// the request came through `WSGIScriptAlias`) and the directory config.
    pub fn resolve(alias: Option<&AliasOptions>, dir: Option<&DirConfig>) -> RequestSettings {
        let d = dir.cloned().unwrap_or_default();
        let a = alias.cloned().unwrap_or_default();
        let process_group = a.process_group.or(d.process_group).unwrap_or_default();
        RequestSettings {
            application_group: a
                .application_group
                .or(d.application_group)
                .unwrap_or_else(|| "%{RESOURCE}".into()),
            process_group: if is_embedded_group(&process_group) {
                String::new()
            } else {
                process_group
            },
            callable_object: a
                .callable_object
                .or(d.callable_object)
                .unwrap_or_else(|| "application".into()),
            pass_authorization: a
                .pass_authorization
                .or(d.pass_authorization)
                .unwrap_or(false),
            chunked_request: d.chunked_request.unwrap_or(false),
            script_reloading: d.script_reloading.unwrap_or(true),
            map_head_to_get: d.map_head_to_get.unwrap_or_default(),
            restrict_process: d.restrict_process,
            ignore_activity: d.ignore_activity.unwrap_or(false),
            more: MoreSettings::resolve(&d.more),
            handler_script: None,
        }
    }
}

// ---- configuration record callbacks -----------------------------------------

/// `create_server_config` of the module record: an empty [`ServerConfig`]
/// owned by pool `p`.
pub unsafe extern "C" fn create_server_config(
    p: *mut ffi::apr_pool_t,
    _s: *mut ffi::server_rec,
) -> *mut c_void {
    apache::guard("create_server_config", ptr::null_mut(), || unsafe {
        pool_box(p, ServerConfig::default()) as *mut c_void
    })
}

/// `merge_server_config`: a virtual host's config over the main server's
/// (its aliases first, then the main server's; global directives from the
/// main server). Result owned by pool `p`.
pub unsafe extern "C" fn merge_server_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    apache::guard("merge_server_config", ptr::null_mut(), || unsafe {
        let base = &*(base as *const ServerConfig);
        let add = &*(add as *const ServerConfig);
        let mut merged = add.clone();
        // A virtual host sees its own aliases first, then the main server's.
        merged.aliases.extend(base.aliases.iter().cloned());
        merged.python_home = base.python_home.clone();
        merged.python_path = base.python_path.clone();
        merged.import_scripts = base.import_scripts.clone();
        merged.restrict_embedded = base.restrict_embedded;
        merged.socket_prefix = base.socket_prefix.clone();
        merged.socket_rotation = base.socket_rotation;
        merged.more = base.more.clone();
        pool_box(p, merged) as *mut c_void
    })
}

/// `create_dir_config`: an empty [`DirConfig`] owned by pool `p`.
pub unsafe extern "C" fn create_dir_config(
    p: *mut ffi::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    apache::guard("create_dir_config", ptr::null_mut(), || unsafe {
        pool_box(p, DirConfig::default()) as *mut c_void
    })
}

/// `merge_dir_config`: `add` over `base`, setting by setting. Result owned
/// by pool `p`.
pub unsafe extern "C" fn merge_dir_config(
    p: *mut ffi::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    apache::guard("merge_dir_config", ptr::null_mut(), || unsafe {
        let merged = DirConfig::merge(&*(base as *const DirConfig), &*(add as *const DirConfig));
        pool_box(p, merged) as *mut c_void
    })
}

/// The main server's configuration record.
///
/// # Safety
/// `s` must be a live server_rec of the current configuration.
pub unsafe fn server_config<'a>(s: *const ffi::server_rec) -> &'a ServerConfig {
    &*apache::module_config::<ServerConfig>((*s).module_config)
}

// ---- directive handlers -----------------------------------------------------

/// Turns a handler result into Apache's convention: NULL on success, else an
/// error string allocated in the command pool.
pub(crate) unsafe fn finish(
    cmd: *mut ffi::cmd_parms,
    r: Result<(), DirectiveError>,
) -> *const c_char {
    match r {
        Ok(()) => ptr::null(),
        Err(e) => apache::pstrdup((*cmd).pool, format!("{e}").as_bytes()),
    }
}

/// Apache's `GLOBAL_ONLY` context check for directive `d`: `Ok` in the
/// main server's configuration, else a configtest error naming `d` with
/// Apache's own reason (e.g. "cannot occur within <VirtualHost> section").
pub(crate) unsafe fn main_server_only(
    cmd: *mut ffi::cmd_parms,
    d: &'static str,
) -> Result<(), DirectiveError> {
    let e = ffi::ap_check_cmd_context(cmd, ffi::GLOBAL_ONLY as c_uint);
    if e.is_null() {
        return Ok(());
    }
    Err(DirectiveError {
        directive: d,
        message: CStr::from_ptr(e).to_string_lossy().into(),
    })
}
use std::ffi::c_uint;

pub(crate) unsafe fn arg_str<'a>(
    directive: &'static str,
    w: *const c_char,
) -> Result<&'a str, DirectiveError> {
    CStr::from_ptr(w).to_str().map_err(|_| DirectiveError {
        directive,
        message: "argument is not valid UTF-8".into(),
    })
}

pub(crate) unsafe fn srv<'a>(cmd: *mut ffi::cmd_parms) -> &'a mut ServerConfig {
    &mut *apache::module_config::<ServerConfig>((*(*cmd).server).module_config)
}

/// The `WSGIDaemonProcess` groups of the configuration being read (all
/// virtual hosts: group names are server-wide), in order. Cleared at the
/// start of each configuration pass (`reset_daemons`).
static DAEMONS: std::sync::Mutex<Vec<DaemonProcess>> = std::sync::Mutex::new(Vec::new());

/// Per group (by name): the server (main or virtual host) whose
/// configuration defined it, as an address: its daemons log there, as
/// mod_wsgi's do (a `<VirtualHost>`'s own `ErrorLog`).
static DAEMON_SERVERS: std::sync::Mutex<Vec<(String, usize)>> = std::sync::Mutex::new(Vec::new());

/// The server whose configuration defined group `name` (this pass), if
/// known. It lives as long as the configuration (pconf).
pub fn daemon_server(name: &str) -> Option<*mut ffi::server_rec> {
    DAEMON_SERVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(n, _)| n == name)
        .map(|&(_, s)| s as *mut ffi::server_rec)
}

/// Forgets the groups of a previous configuration pass (pre_config).
pub fn reset_daemons() {
    DAEMONS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    DAEMON_SERVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    VHOST_IMPORT_SCRIPTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
}

/// The `WSGIDaemonProcess` groups of the configuration just read.
pub fn daemons() -> Vec<DaemonProcess> {
    DAEMONS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

macro_rules! handler {
    ($name:ident, |$cmd:ident, $cfg:ident, $arg:ident| $body:block) => {
        unsafe extern "C" fn $name(
            $cmd: *mut $crate::ffi::cmd_parms,
            $cfg: *mut std::ffi::c_void,
            $arg: *const std::ffi::c_char,
        ) -> *const std::ffi::c_char {
            $crate::apache::guard(
                stringify!($name),
                $crate::apache::cs(c"internal error in directive handler"),
                || unsafe {
                    let _ = &$cfg;
                    #[allow(clippy::redundant_closure_call)]
                    let r: Result<(), rwsgi_core::directives::DirectiveError> = (|| $body)();
                    $crate::config::finish($cmd, r)
                },
            )
        }
    };
}
pub(crate) use handler;

unsafe fn add_alias(
    cmd: *mut ffi::cmd_parms,
    args: *const c_char,
    is_match: bool,
) -> Result<(), DirectiveError> {
    let d = if is_match {
        "WSGIScriptAliasMatch"
    } else {
        "WSGIScriptAlias"
    };
    let alias = ScriptAlias::parse(arg_str(d, args)?, is_match)?;
    srv(cmd).aliases.push(alias);
    Ok(())
}

handler!(cmd_script_alias, |cmd, cfg, args| {
    add_alias(cmd, args, false)
});
handler!(cmd_script_alias_match, |cmd, cfg, args| {
    add_alias(cmd, args, true)
});

handler!(cmd_python_home, |cmd, cfg, w| {
    main_server_only(cmd, "WSGIPythonHome")?;
    let home = arg_str("WSGIPythonHome", w)?;
    check_python_home(home)?;
    srv(cmd).python_home = Some(home.to_string());
    Ok(())
});

/// Checks that `home` is a Python installation prefix or virtualenv for the
/// Python version the module was built for.
fn check_python_home(home: &str) -> Result<(), DirectiveError> {
    let d = "WSGIPythonHome";
    let path = Path::new(home);
    if !path.is_dir() {
        return Err(DirectiveError {
            directive: d,
            message: format!("{home:?} is not a directory"),
        });
    }
    let built = crate::python::BUILD_PY_VERSION;
    let minor: String = built.split('.').take(2).collect::<Vec<_>>().join(".");
    let cfg = path.join("pyvenv.cfg");
    if cfg.is_file() {
        let text = std::fs::read_to_string(&cfg).unwrap_or_default();
        let version = text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            matches!(k.trim(), "version" | "version_info").then(|| v.trim().to_string())
        });
        if let Some(v) = version {
            if !(v == minor || v.starts_with(&format!("{minor}."))) {
                return Err(DirectiveError {
                    directive: d,
                    message: format!(
                        "virtualenv {home:?} was made with Python {v}, but this mod_rwsgi was built for Python {built}"
                    ),
                });
            }
        }
        return Ok(());
    }
    if !path.join(format!("lib/python{minor}")).is_dir() {
        return Err(DirectiveError {
            directive: d,
            message: format!(
                "{home:?} is neither a virtualenv (no pyvenv.cfg) nor a Python {minor} prefix (no lib/python{minor}); \
                 this mod_rwsgi was built for Python {built}"
            ),
        });
    }
    Ok(())
}

handler!(cmd_python_path, |cmd, cfg, w| {
    main_server_only(cmd, "WSGIPythonPath")?;
    let v = arg_str("WSGIPythonPath", w)?;
    srv(cmd)
        .python_path
        .extend(directives::split_python_path(v));
    Ok(())
});

handler!(cmd_import_script, |cmd, cfg, args| {
    // server config or virtual host (as mod_wsgi; mod_wsgi-express puts a
    // service's inside the <VirtualHost> that gives it its ErrorLog).
    let script = directives::parse_import_script(arg_str("WSGIImportScript", args)?)?;
    if (*(*cmd).server).is_virtual != 0 {
        VHOST_IMPORT_SCRIPTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(script);
    } else {
        srv(cmd).import_scripts.push(script);
    }
    Ok(())
});

/// `WSGIImportScript`s given inside `<VirtualHost>`s (this pass): processes
/// are server-wide, so they join the main server's (see [`import_scripts`]).
static VHOST_IMPORT_SCRIPTS: std::sync::Mutex<Vec<ImportScript>> =
    std::sync::Mutex::new(Vec::new());

/// Every `WSGIImportScript` of the configuration: the main server's
/// (`cfg`), then those of virtual hosts, in order.
pub fn import_scripts(cfg: &ServerConfig) -> Vec<ImportScript> {
    let mut all = cfg.import_scripts.clone();
    all.extend(
        VHOST_IMPORT_SCRIPTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned(),
    );
    all
}

handler!(cmd_restrict_embedded, |cmd, cfg, w| {
    main_server_only(cmd, "WSGIRestrictEmbedded")?;
    srv(cmd).restrict_embedded = Some(directives::parse_on_off(
        "WSGIRestrictEmbedded",
        arg_str("WSGIRestrictEmbedded", w)?,
    )?);
    Ok(())
});

handler!(cmd_socket_prefix, |cmd, cfg, w| {
    main_server_only(cmd, "WSGISocketPrefix")?;
    let v = arg_str("WSGISocketPrefix", w)?;
    if v.is_empty() || v.ends_with('/') {
        return Err(DirectiveError {
            directive: "WSGISocketPrefix",
            message: format!("{v:?} must be a path prefix such as /var/run/apache2/wsgi (the socket names are appended to it)"),
        });
    }
    let path =
        apache::opt_str(ffi::ap_server_root_relative((*cmd).pool, w)).ok_or(DirectiveError {
            directive: "WSGISocketPrefix",
            message: format!("{v:?} is not a valid path"),
        })?;
    srv(cmd).socket_prefix = Some(path.to_string());
    Ok(())
});

handler!(cmd_socket_rotation, |cmd, cfg, w| {
    main_server_only(cmd, "WSGISocketRotation")?;
    srv(cmd).socket_rotation = Some(directives::parse_on_off(
        "WSGISocketRotation",
        arg_str("WSGISocketRotation", w)?,
    )?);
    Ok(())
});

handler!(cmd_restrict_process, |cmd, cfg, args| {
    let groups: Vec<String> = arg_str("WSGIRestrictProcess", args)?
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if groups.is_empty() {
        return Err(DirectiveError {
            directive: "WSGIRestrictProcess",
            message: "expected one or more process group names".into(),
        });
    }
    dir(cfg).restrict_process = Some(groups);
    Ok(())
});

handler!(cmd_ignore_activity, |cmd, cfg, w| {
    dir(cfg).ignore_activity = Some(directives::parse_on_off(
        "WSGIIgnoreActivity",
        arg_str("WSGIIgnoreActivity", w)?,
    )?);
    Ok(())
});

pub(crate) unsafe fn dir<'a>(cfg: *mut c_void) -> &'a mut DirConfig {
    &mut *(cfg as *mut DirConfig)
}

handler!(cmd_process_group, |cmd, cfg, w| {
    let g = arg_str("WSGIProcessGroup", w)?;
    dir(cfg).process_group = Some(g.to_string());
    Ok(())
});

handler!(cmd_daemon_process, |cmd, cfg, args| {
    let group = parse_daemon_process(arg_str("WSGIDaemonProcess", args)?)?;
    let mut all = DAEMONS.lock().unwrap_or_else(|e| e.into_inner());
    if all.iter().any(|g| g.name == group.name) {
        return Err(DirectiveError {
            directive: "WSGIDaemonProcess",
            message: format!(
                "process group {:?} is defined twice; group names are unique across the whole server",
                group.name
            ),
        });
    }
    DAEMON_SERVERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((group.name.clone(), (*cmd).server as usize));
    all.push(group);
    Ok(())
});

handler!(cmd_application_group, |cmd, cfg, w| {
    dir(cfg).application_group = Some(arg_str("WSGIApplicationGroup", w)?.to_string());
    Ok(())
});

handler!(cmd_callable_object, |cmd, cfg, w| {
    let v = arg_str("WSGICallableObject", w)?;
    if !directives::is_identifier(v) {
        return Err(DirectiveError {
            directive: "WSGICallableObject",
            message: format!("{v:?} is not a Python identifier"),
        });
    }
    dir(cfg).callable_object = Some(v.to_string());
    Ok(())
});

handler!(cmd_pass_authorization, |cmd, cfg, w| {
    dir(cfg).pass_authorization = Some(directives::parse_on_off(
        "WSGIPassAuthorization",
        arg_str("WSGIPassAuthorization", w)?,
    )?);
    Ok(())
});

handler!(cmd_chunked_request, |cmd, cfg, w| {
    dir(cfg).chunked_request = Some(directives::parse_on_off(
        "WSGIChunkedRequest",
        arg_str("WSGIChunkedRequest", w)?,
    )?);
    Ok(())
});

handler!(cmd_script_reloading, |cmd, cfg, w| {
    dir(cfg).script_reloading = Some(directives::parse_on_off(
        "WSGIScriptReloading",
        arg_str("WSGIScriptReloading", w)?,
    )?);
    Ok(())
});

handler!(cmd_map_head_to_get, |cmd, cfg, w| {
    dir(cfg).map_head_to_get = Some(directives::parse_map_head_to_get(arg_str(
        "WSGIMapHEADToGET",
        w,
    )?)?);
    Ok(())
});

// ---- command table ----------------------------------------------------------

/// A `command_rec` array that can live in a `static` (Apache only reads it).
#[repr(transparent)]
pub struct CommandTable<const N: usize>(pub [ffi::command_rec; N]);
// SAFETY: the table is immutable data with pointers to static strings and functions.
unsafe impl<const N: usize> Sync for CommandTable<N> {}

type RawFn = unsafe extern "C" fn(*mut ffi::cmd_parms, *mut c_void, *const c_char) -> *const c_char;

pub(crate) const fn command(
    name: &'static CStr,
    func: RawFn,
    how: ffi::cmd_how,
    req_override: u32,
    help: &'static CStr,
) -> ffi::command_rec {
    ffi::command_rec {
        name: name.as_ptr(),
        // take1 and raw_args share the signature (cmd, mconfig, const char *).
        func: ffi::cmd_func { take1: Some(func) },
        cmd_data: ptr::null_mut(),
        req_override: req_override as c_int,
        args_how: how,
        errmsg: help.as_ptr(),
    }
}

pub(crate) const RSRC: u32 = ffi::RSRC_CONF;
pub(crate) const DIRS: u32 = ffi::RSRC_CONF | ffi::ACCESS_CONF | ffi::OR_FILEINFO;

/// The directives of mod_wsgi that rwsgi implements, NULL-terminated.
pub static COMMANDS: CommandTable<
    { 19 + crate::config_more::COUNT + crate::config_auth::COUNT + crate::config_interp::COUNT + crate::config_handler::COUNT + crate::config_telemetry::COUNT + crate::config_observe::COUNT },
> = CommandTable([
    command(c"WSGIScriptAlias", cmd_script_alias, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Map a URL prefix to a WSGI script file or directory: WSGIScriptAlias URL-path path [options]"),
    command(c"WSGIScriptAliasMatch", cmd_script_alias_match, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Map URLs matching a regular expression to a WSGI script: WSGIScriptAliasMatch regex path [options]"),
    command(c"WSGIPythonHome", cmd_python_home, ffi::cmd_how_TAKE1, RSRC,
        c"Python installation prefix or virtualenv directory"),
    command(c"WSGIPythonPath", cmd_python_path, ffi::cmd_how_TAKE1, RSRC,
        c"Colon-separated directories added to sys.path with site.addsitedir"),
    command(c"WSGIImportScript", cmd_import_script, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Script imported at process start: WSGIImportScript path process-group=G application-group=A"),
    command(c"WSGIRestrictEmbedded", cmd_restrict_embedded, ffi::cmd_how_TAKE1, RSRC,
        c"On disables running applications embedded in Apache's processes"),
    command(c"WSGIProcessGroup", cmd_process_group, ffi::cmd_how_TAKE1, DIRS,
        c"Process group of the application (%{GLOBAL} = embedded mode)"),
    command(c"WSGIDaemonProcess", cmd_daemon_process, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Daemon process group: WSGIDaemonProcess name [processes=N threads=N user=U ...]"),
    command(c"WSGIApplicationGroup", cmd_application_group, ffi::cmd_how_TAKE1, DIRS,
        c"Application group (interpreter) name: %{GLOBAL}, %{SERVER}, %{RESOURCE}, %{ENV:var} or a name"),
    command(c"WSGICallableObject", cmd_callable_object, ffi::cmd_how_TAKE1, DIRS,
        c"Name of the WSGI application callable in the script (default application)"),
    command(c"WSGIPassAuthorization", cmd_pass_authorization, ffi::cmd_how_TAKE1, DIRS,
        c"On passes the Authorization header to the application as HTTP_AUTHORIZATION"),
    command(c"WSGIChunkedRequest", cmd_chunked_request, ffi::cmd_how_TAKE1, DIRS,
        c"On accepts chunked request bodies (otherwise 411 Length Required)"),
    command(c"WSGIScriptReloading", cmd_script_reloading, ffi::cmd_how_TAKE1, DIRS,
        c"On re-imports a WSGI script when its modification time changes"),
    command(c"WSGIMapHEADToGET", cmd_map_head_to_get, ffi::cmd_how_TAKE1, DIRS,
        c"On, Off or Auto: present HEAD requests to the application as GET"),
    command(c"WSGISocketPrefix", cmd_socket_prefix, ffi::cmd_how_TAKE1, RSRC,
        c"Path prefix of the daemon process groups' UNIX sockets (relative to ServerRoot)"),
    command(c"WSGISocketRotation", cmd_socket_rotation, ffi::cmd_how_TAKE1, RSRC,
        c"On (default) gives the daemon sockets new names at each restart"),
    command(c"WSGIRestrictProcess", cmd_restrict_process, ffi::cmd_how_RAW_ARGS, DIRS,
        c"Process groups that applications here may be delegated to: WSGIRestrictProcess group ..."),
    command(c"WSGIIgnoreActivity", cmd_ignore_activity, ffi::cmd_how_TAKE1, DIRS,
        c"On: requests here do not count as activity for inactivity-timeout"),
    // config_more.rs (keep COUNT there in step).
    crate::config_more::COMMANDS[0],
    crate::config_more::COMMANDS[1],
    crate::config_more::COMMANDS[2],
    crate::config_more::COMMANDS[3],
    crate::config_more::COMMANDS[4],
    crate::config_more::COMMANDS[5],
    crate::config_more::COMMANDS[6],
    crate::config_more::COMMANDS[7],
    crate::config_more::COMMANDS[8],
    crate::config_more::COMMANDS[9],
    crate::config_more::COMMANDS[10],
    crate::config_more::COMMANDS[11],
    crate::config_more::COMMANDS[12],
    crate::config_more::COMMANDS[13],
    crate::config_more::COMMANDS[14],
    crate::config_more::COMMANDS[15],
    crate::config_more::COMMANDS[16],
    crate::config_more::COMMANDS[17],
    crate::config_auth::COMMANDS[0],
    crate::config_auth::COMMANDS[1],
    crate::config_auth::COMMANDS[2],
    crate::config_auth::COMMANDS[3],
    crate::config_interp::COMMANDS[0],
    crate::config_interp::COMMANDS[1],
    crate::config_interp::COMMANDS[2],
    crate::config_interp::COMMANDS[3],
    crate::config_interp::COMMANDS[4],
    crate::config_handler::COMMANDS[0],
    crate::config_telemetry::COMMANDS[0],
    crate::config_telemetry::COMMANDS[1],
    crate::config_telemetry::COMMANDS[2],
    crate::config_observe::COMMANDS[0],
    crate::config_observe::COMMANDS[1],
    crate::config_observe::COMMANDS[2],
    ffi::command_rec {
        name: ptr::null(),
        func: ffi::cmd_func { take1: None },
        cmd_data: ptr::null_mut(),
        req_override: 0,
        args_how: 0,
        errmsg: ptr::null(),
    },
]);
