//! mod_rwsgi: a mod_wsgi-compatible Apache httpd module written in Rust.
//!
//! Loaded with `LoadModule wsgi_module /path/mod_rwsgi.so`; the module's name
//! is `mod_wsgi.c`, so `<IfModule mod_wsgi.c>` and `<IfModule wsgi_module>`
//! blocks apply. It runs WSGI applications (PEP 3333) embedded in Apache's
//! child processes under the event, worker and prefork MPMs.
//!
//! Layout: `ffi` (bindgen bindings + C shim), `apache` (safe helpers,
//! logging), `config` (directives), `python` (interpreter, GIL, script
//! cache), `wsgi` (environ, input, start_response, response, file wrapper).
//! Pure logic lives in the `rwsgi-core` crate.

mod apache;
mod config;
mod config_auth;
mod config_handler;
mod config_interp;
mod config_more;
mod config_observe;
mod config_telemetry;
mod daemon;
#[allow(clippy::all)]
mod ffi;
mod observe;
mod python;
mod wsgi;

use apache::{cs, Level};
use config::{DirConfig, RequestSettings, ServerConfig};
use rwsgi_core::directives::ScriptAlias;
use std::ffi::{c_char, c_int, c_void};
use std::ptr;

/// The module record Apache looks up by the symbol name given to
/// `LoadModule` (`wsgi_module`). Apache writes `module_index`, `next` and
/// `dynamic_load_handle`, hence `static mut`.
#[no_mangle]
#[used]
pub static mut wsgi_module: ffi::module = ffi::module {
    version: ffi::MODULE_MAGIC_NUMBER_MAJOR as c_int,
    minor_version: ffi::MODULE_MAGIC_NUMBER_MINOR as c_int,
    module_index: -1,
    name: c"mod_wsgi.c".as_ptr(),
    dynamic_load_handle: ptr::null_mut(),
    next: ptr::null_mut(),
    magic: ffi::MODULE_MAGIC_COOKIE as _,
    rewrite_args: None,
    create_dir_config: Some(config::create_dir_config),
    merge_dir_config: Some(config::merge_dir_config),
    create_server_config: Some(config::create_server_config),
    merge_server_config: Some(config::merge_server_config),
    cmds: &config::COMMANDS.0 as *const _ as *const ffi::command_rec,
    register_hooks: Some(register_hooks),
    flags: 0,
};

const HANDLER_NAMES: [&[u8]; 2] = [b"wsgi-script", b"application/x-httpd-wsgi"];

unsafe extern "C" fn register_hooks(p: *mut ffi::apr_pool_t) {
    apache::guard("register_hooks", (), || unsafe {
        let middle = ffi::APR_HOOK_MIDDLE as c_int;
        ffi::ap_hook_pre_config(Some(pre_config), ptr::null(), ptr::null(), middle);
        ffi::ap_hook_post_config(Some(post_config), ptr::null(), ptr::null(), middle);
        ffi::ap_hook_child_init(Some(child_init), ptr::null(), ptr::null(), middle);
        ffi::ap_hook_test_config(Some(test_config), ptr::null(), ptr::null(), middle);
        // As mod_wsgi: after mod_alias (so Alias wins for static files), before
        // mod_userdir and mod_vhost_alias.
        static PRED: [SyncPtr; 2] = [SyncPtr(c"mod_alias.c".as_ptr()), SyncPtr(ptr::null())];
        static SUCC: [SyncPtr; 3] = [
            SyncPtr(c"mod_userdir.c".as_ptr()),
            SyncPtr(c"mod_vhost_alias.c".as_ptr()),
            SyncPtr(ptr::null()),
        ];
        ffi::ap_hook_translate_name(
            Some(translate_name),
            PRED.as_ptr() as *const *const c_char,
            SUCC.as_ptr() as *const *const c_char,
            middle,
        );
        ffi::ap_hook_handler(Some(handler), ptr::null(), ptr::null(), middle);
        // WSGIMetricsEndpoint / WSGIStatusPage.
        ffi::ap_hook_quick_handler(
            Some(observe::handler::quick_handler),
            ptr::null(),
            ptr::null(),
            middle,
        );
        apache::auth::register(p);
    })
}

/// A C string pointer in a static hook-order list.
#[repr(transparent)]
struct SyncPtr(*const c_char);
// SAFETY: points to immutable static strings.
unsafe impl Sync for SyncPtr {}

/// pre_config: fail start-up and `configtest` when the libpython mapped into
/// Apache is not the one the module was built for (RWSGI0002).
unsafe extern "C" fn pre_config(
    _pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
) -> c_int {
    apache::guard(
        "pre_config",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || {
            config::reset_daemons();
            config_more::reset();
            config_telemetry::reset();
            config_observe::reset();
            config_interp::reset();
            match python::check_libpython() {
                Ok(()) => ffi::OK as c_int,
                Err(msg) => {
                    apache::log_s(ptr::null(), Level::Crit, 0, &msg);
                    ffi::HTTP_INTERNAL_SERVER_ERROR as c_int
                }
            }
        },
    )
}

/// post_config: announce the module in the server banner; in the pass that
/// really starts the server, check the daemon groups and start their
/// processes (failing start-up with the reason).
unsafe extern "C" fn post_config(
    pconf: *mut ffi::apr_pool_t,
    _plog: *mut ffi::apr_pool_t,
    _ptemp: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
) -> c_int {
    apache::guard(
        "post_config",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || unsafe {
            let banner = format!(
                "rwsgi/{} Python/{}",
                env!("CARGO_PKG_VERSION"),
                python::BUILD_PY_VERSION
            );
            let c = apache::pstrdup(pconf, banner.as_bytes());
            ffi::ap_add_version_component(pconf, c);
            // Before any Apache child or daemon is forked: they inherit it.
            python::options::configure(&config::server_config(s).more);
            if let Err(e) = check_daemons(s) {
                apache::log_s(s, Level::Crit, 0, &e);
                return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
            }
            let observed = config_observe::publish();
            if daemon::supervisor::is_real_start() && observed {
                let names: Vec<String> = config::daemons().into_iter().map(|d| d.name).collect();
                if let Err(e) = observe::process::parent_start(&names) {
                    apache::log_s(s, Level::Error, 0, &format!("RWSGI0131: {e}"));
                }
            }
            if daemon::supervisor::is_real_start() {
                let mirror = config::daemons().iter().any(|d| d.server_metrics);
                if let Err(e) = wsgi::scoreboard::prepare_mirror(pconf, mirror) {
                    apache::log_s(s, Level::Warn, 0, &format!("RWSGI0087: {e}"));
                }
                let cfg: &'static ServerConfig = config::server_config(s);
                if let Err(e) = daemon::supervisor::start(pconf, s, cfg, config::daemons()) {
                    apache::log_s(
                        s,
                        Level::Crit,
                        0,
                        &format!("RWSGI0048: cannot start daemon mode: {e}"),
                    );
                    return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
                }
            }
            ffi::OK as c_int
        },
    )
}

/// test_config (`apachectl configtest`): the checks post_config makes.
unsafe extern "C" fn test_config(_pconf: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    apache::guard("test_config", (), || unsafe {
        if let Err(e) = check_daemons(s) {
            apache::log_s(s, Level::Crit, 0, &e);
            // configtest reports failure through its exit status.
            libc::_exit(1);
        }
    })
}

/// Checks what the directives alone could not: no daemon group would run
/// application code as root, and every `process-group=` of a
/// `WSGIScriptAlias` names a configured group.
unsafe fn check_daemons(s: *mut ffi::server_rec) -> Result<(), String> {
    let daemons = config::daemons();
    for d in &daemons {
        daemon::process::check_not_root(d)?;
    }
    let mut server = s;
    while !server.is_null() {
        let cfg: &ServerConfig = config::server_config(server);
        for alias in &cfg.aliases {
            if let Some(g) = alias.options.process_group.as_deref() {
                if !rwsgi_core::directives::is_embedded_group(g)
                    && !g.starts_with("%{")
                    && !daemons.iter().any(|d| d.name == g)
                {
                    return Err(format!(
                        "RWSGI0046: WSGIScriptAlias for {:?} names process-group={g:?}, but no WSGIDaemonProcess {g:?} is configured",
                        alias.target
                    ));
                }
            }
        }
        server = (*server).next;
    }
    Ok(())
}

/// child_init: start Python in this Apache child unless WSGIRestrictEmbedded
/// is On (and no WSGIDispatchScript needs it, as with mod_wsgi); register
/// the exit cleanup on the child pool.
unsafe extern "C" fn child_init(p: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    apache::guard("child_init", (), || unsafe {
        wsgi::scoreboard::start_mirror_thread();
        observe::process::child_init(p, wsgi::module::mpm_threads());
        let cfg: &ServerConfig = config::server_config(s);
        if cfg.restrict_embedded == Some(true) && !config_more::python_required() {
            return;
        }
        python::init_embedded(s, cfg);
        wsgi::telemetry::start("", s);
        ffi::apr_pool_cleanup_register(
            p,
            ptr::null(),
            Some(child_exit),
            Some(ffi::apr_pool_cleanup_null),
        );
    })
}

unsafe extern "C" fn child_exit(_data: *mut c_void) -> ffi::apr_status_t {
    apache::guard("child_exit", (), python::shutdown);
    ffi::APR_SUCCESS as ffi::apr_status_t
}

/// translate_name: map URLs under a `WSGIScriptAlias`/`WSGIScriptAliasMatch`
/// to the script (`r->filename` = script + rest of the URL; Apache's
/// directory walk turns the rest into `PATH_INFO`), and select our handler.
unsafe extern "C" fn translate_name(r: *mut ffi::request_rec) -> c_int {
    apache::guard("translate_name", ffi::DECLINED, || unsafe {
        let uri = match apache::opt_str((*r).uri) {
            Some(u) if u.starts_with('/') => u,
            _ => return ffi::DECLINED,
        };
        if (*r).proxyreq != 0 {
            return ffi::DECLINED;
        }
        let cfg: &ServerConfig = config::server_config((*r).server);
        for alias in &cfg.aliases {
            if let Some(m) = alias.matches(uri) {
                (*r).filename = apache::pstrcat2((*r).pool, m.head.as_bytes(), m.rest.as_bytes());
                (*r).handler = cs(c"wsgi-script");
                ffi::apr_table_setn((*r).notes, cs(c"alias-forced-type"), (*r).handler);
                apache::set_module_config((*r).request_config, alias as *const ScriptAlias);
                return ffi::OK as c_int;
            }
        }
        ffi::DECLINED
    })
}

/// The content handler for `wsgi-script` (and mod_wsgi's
/// `application/x-httpd-wsgi`).
unsafe extern "C" fn handler(r: *mut ffi::request_rec) -> c_int {
    apache::guard(
        "handler",
        ffi::HTTP_INTERNAL_SERVER_ERROR as c_int,
        || unsafe { handle(r) },
    )
}

unsafe fn handle(r: *mut ffi::request_rec) -> c_int {
    let Some(h) = apache::opt_bytes((*r).handler) else {
        return ffi::DECLINED;
    };
    let dcfg = apache::module_config::<DirConfig>((*r).per_dir_config);
    // WSGIHandlerScript: a named handler answered by a WSGI script.
    let handler_script = if HANDLER_NAMES.contains(&h) {
        None
    } else {
        match dcfg.as_ref().and_then(|d| d.handlers.get(h)) {
            Some(hs) => Some(hs.clone()),
            None => return ffi::DECLINED,
        }
    };
    if let Some(hs) = handler_script {
        let settings = RequestSettings::resolve(None, dcfg.as_ref());
        let settings = config_handler::apply(&hs, settings);
        return apache::handler_script::handle(r, &settings, &hs);
    }
    // As mod_wsgi: only a script that is the target itself must exist; a
    // WSGIHandlerScript answers for any URL its handler is set for, files
    // or not (mod_wsgi-express routes every URL without a file under its
    // document root to its handler.wsgi with `RewriteRule .* - [H=...]`).
    match (*r).finfo.filetype {
        ffi::apr_filetype_e_APR_NOFILE => {
            apache::log_r(
                r,
                Level::Error,
                0,
                &format!(
                    "RWSGI0014: target WSGI script not found or unable to stat: {:?}",
                    String::from_utf8_lossy(apache::bytes((*r).filename))
                ),
            );
            return ffi::HTTP_NOT_FOUND as c_int;
        }
        ffi::apr_filetype_e_APR_DIR => {
            apache::log_r(
                r,
                Level::Error,
                0,
                &format!(
                    "RWSGI0015: attempt to invoke directory {:?} as a WSGI application",
                    String::from_utf8_lossy(apache::bytes((*r).filename))
                ),
            );
            return ffi::HTTP_FORBIDDEN as c_int;
        }
        _ => {}
    }
    let alias = apache::module_config::<ScriptAlias>((*r).request_config);
    let alias_options = alias.as_ref().map(|a| &a.options);
    let settings = RequestSettings::resolve(alias_options, dcfg.as_ref());
    let outer = observe::request::begin((*r).request_time.max(0) as u64);
    let rc = apache::request::handle_request(r, &settings);
    let status = if rc == ffi::OK as c_int || rc == ffi::DONE {
        (*r).status as i64
    } else {
        rc as i64
    };
    observe::request::end(
        outer,
        status,
        apache::bytes((*r).method),
        (*r).read_length.max(0) as u64,
        // A HEAD response's body is counted by Apache but not sent.
        if (*r).header_only != 0 {
            0
        } else {
            (*r).bytes_sent.max(0) as u64
        },
    );
    rc
}
