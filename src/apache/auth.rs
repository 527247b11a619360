//! mod_wsgi's access and authentication scripts in the Apache child:
//! the authentication provider `wsgi` (`AuthBasicProvider wsgi`,
//! `AuthDigestProvider wsgi`: `WSGIAuthUserScript`), the authorisation
//! provider `wsgi-group` (`Require wsgi-group NAME...`:
//! `WSGIAuthGroupScript`) and an access checker hook (`WSGIAccessScript`).
//!
//! As with mod_wsgi, the scripts run in this child's interpreter (embedded),
//! also when the application runs in a daemon process group; the
//! directives start Python in the children for them even with
//! `WSGIRestrictEmbedded On`. A script that fails (does not load, raises,
//! returns the wrong type) is logged with its traceback and the request
//! gets a 500 (`AUTH_GENERAL_ERROR`, `AUTHZ_GENERAL_ERROR`), never a crash.
//! The environ is the CGI environ of the request without the
//! `Authorization` header and without `SetEnv`-style variables, plus
//! `mod_wsgi.*` keys, as mod_wsgi builds it.

use super::request::{expand_application_group_of, gather_facts};
use super::{guard, opt_bytes, opt_str, pstrdup, Level, LogTarget};
use crate::config::{DirConfig, RequestSettings};
use crate::config_auth::AuthScript;
use crate::ffi;
use crate::python::auth::{self as pyauth, Access, Password};
use crate::python::child_script::ChildScript;
use crate::python::Runtime;
use crate::wsgi::environ::for_each_pair;
use rwsgi_core::directives::ScriptAlias;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;

/// The `wsgi` authentication provider (Basic and Digest).
static AUTHN_PROVIDER: ffi::authn_provider = ffi::authn_provider {
    check_password: Some(check_password),
    get_realm_hash: Some(get_realm_hash),
};

/// The `wsgi-group` authorisation provider.
static AUTHZ_PROVIDER: ffi::authz_provider = ffi::authz_provider {
    check_authorization: Some(check_authorization),
    parse_require_line: None,
};

/// Registers the providers and the access checker (register_hooks).
///
/// # Safety
/// `p` is the pool Apache passes to register_hooks.
pub unsafe fn register(p: *mut ffi::apr_pool_t) {
    let per_conf = ffi::AP_AUTH_INTERNAL_PER_CONF as c_int;
    ffi::ap_register_auth_provider(
        p,
        c"authn".as_ptr(),
        c"wsgi".as_ptr(),
        c"0".as_ptr(),
        &AUTHN_PROVIDER as *const _ as *const c_void,
        per_conf,
    );
    ffi::ap_register_auth_provider(
        p,
        c"authz".as_ptr(),
        c"wsgi-group".as_ptr(),
        c"0".as_ptr(),
        &AUTHZ_PROVIDER as *const _ as *const c_void,
        per_conf,
    );
    // After mod_ssl, as mod_wsgi (SSL variables are known by then).
    static PRED: [crate::SyncPtr; 2] = [
        crate::SyncPtr(c"mod_ssl.c".as_ptr()),
        crate::SyncPtr(ptr::null()),
    ];
    ffi::ap_hook_access_checker(
        Some(access_checker),
        PRED.as_ptr() as *const *const c_char,
        ptr::null(),
        ffi::APR_HOOK_MIDDLE as c_int,
    );
}

/// The settings of `r` (its `WSGIScriptAlias` options, if any, over its
/// directory configuration).
unsafe fn settings(r: *mut ffi::request_rec) -> RequestSettings {
    let alias = super::module_config::<ScriptAlias>((*r).request_config);
    let dcfg = super::module_config::<DirConfig>((*r).per_dir_config);
    RequestSettings::resolve(alias.as_ref().map(|a| &a.options), dcfg.as_ref())
}

/// Why a script could not give an answer (already logged).
struct Failed;

/// Runs `f` with the call context of script `spec` for `r`: the runtime,
/// the environ and the script's application group. Logs RWSGI0082/0083
/// when there is no script or no Python in this process.
unsafe fn with_script<T>(
    r: *mut ffi::request_rec,
    directive: &'static str,
    pick: impl FnOnce(&RequestSettings) -> Option<&AuthScript>,
    f: impl FnOnce(&Runtime, &ChildScript<'_>) -> Result<T, String>,
) -> Result<T, Failed> {
    let log = LogTarget::Request(r);
    let mut settings = settings(r);
    let Some(spec) = pick(&settings).cloned() else {
        let user = if directive == "WSGIAuthGroupScript" {
            "Require wsgi-group"
        } else {
            "the wsgi authentication provider"
        };
        log.log(
            Level::Error,
            &format!("RWSGI0082: {user} is used here but no {directive} applies to this location"),
        );
        return Err(Failed);
    };
    // It runs in the interpreter of its own application-group, as mod_wsgi.
    let own_group = expand_application_group_of(r, &spec.application_group);
    let rt = match crate::python::runtime() {
        Ok(_) => crate::python::runtime_for(&own_group)
            .map_err(|e| format!("the interpreter of application group {own_group:?}: {e}")),
        Err(e) => Err(format!("Python is not available in this process: {e}")),
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            log.log(
                Level::Error,
                &format!("RWSGI0083: cannot run {directive} {:?}: {e}", spec.path),
            );
            return Err(Failed);
        }
    };
    // mod_wsgi never shows the credentials to these scripts.
    settings.pass_authorization = false;
    let mut facts = gather_facts(r, &settings, &own_group);
    facts.extra.clear();
    let mut environ = Vec::with_capacity(40);
    for_each_pair(&facts, &mut |k, v| environ.push((k.to_vec(), v.to_vec())));
    let call = ChildScript {
        directive,
        script: &spec.path,
        reload: settings.script_reloading,
        environ: &environ,
        application_group: &own_group,
        request_rec: if settings.more.pass_apache_request {
            r as *mut c_void
        } else {
            ptr::null_mut()
        },
        log,
    };
    f(rt, &call).map_err(|_| Failed)
}

fn bytes_of<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: Apache passes NUL-terminated strings (or null) that live for
    // the request.
    unsafe { opt_bytes(p).unwrap_or(b"") }
}

/// authn `check_password`: `check_password(environ, user, password)`.
unsafe extern "C" fn check_password(
    r: *mut ffi::request_rec,
    user: *const c_char,
    password: *const c_char,
) -> ffi::authn_status {
    let error = ffi::authn_status_AUTH_GENERAL_ERROR;
    guard("check_password", error, || unsafe {
        let answer = with_script(
            r,
            "WSGIAuthUserScript",
            |s| s.more.auth.user.as_deref(),
            |rt, call| pyauth::check_password(rt, call, bytes_of(user), bytes_of(password)),
        );
        match answer {
            Ok(Password::Granted(None)) => ffi::authn_status_AUTH_GRANTED,
            Ok(Password::Granted(Some(name))) => {
                (*r).user = pstrdup((*r).pool, &name);
                ffi::authn_status_AUTH_GRANTED
            }
            Ok(Password::Denied) => ffi::authn_status_AUTH_DENIED,
            Ok(Password::UserNotFound) => ffi::authn_status_AUTH_USER_NOT_FOUND,
            Err(Failed) => error,
        }
    })
}

/// authn `get_realm_hash` (Digest): `get_realm_hash(environ, user, realm)`.
unsafe extern "C" fn get_realm_hash(
    r: *mut ffi::request_rec,
    user: *const c_char,
    realm: *const c_char,
    rethash: *mut *mut c_char,
) -> ffi::authn_status {
    let error = ffi::authn_status_AUTH_GENERAL_ERROR;
    guard("get_realm_hash", error, || unsafe {
        let answer = with_script(
            r,
            "WSGIAuthUserScript",
            |s| s.more.auth.user.as_deref(),
            |rt, call| pyauth::get_realm_hash(rt, call, bytes_of(user), bytes_of(realm)),
        );
        match answer {
            Ok(Some(hash)) => {
                *rethash = pstrdup((*r).pool, &hash);
                ffi::authn_status_AUTH_USER_FOUND
            }
            Ok(None) => ffi::authn_status_AUTH_USER_NOT_FOUND,
            Err(Failed) => error,
        }
    })
}

/// authz `check_authorization` of `Require wsgi-group NAME...`: granted when
/// `groups_for_user(environ, user)` names one of the groups.
unsafe extern "C" fn check_authorization(
    r: *mut ffi::request_rec,
    require_args: *const c_char,
    _parsed: *const c_void,
) -> ffi::authz_status {
    let error = ffi::authz_status_AUTHZ_GENERAL_ERROR;
    guard("check_authorization", error, || unsafe {
        if (*r).user.is_null() {
            return ffi::authz_status_AUTHZ_DENIED_NO_USER;
        }
        let user = bytes_of((*r).user).to_vec();
        let groups = match with_script(
            r,
            "WSGIAuthGroupScript",
            |s| s.more.auth.group.as_deref(),
            |rt, call| pyauth::groups_for_user(rt, call, &user),
        ) {
            Ok(g) => g,
            Err(Failed) => return error,
        };
        let mut line = require_args;
        loop {
            let w = ffi::ap_getword_conf((*r).pool, &mut line);
            if w.is_null() || *w == 0 {
                break;
            }
            if groups
                .iter()
                .any(|g| g.as_slice() == CStr::from_ptr(w).to_bytes())
            {
                return ffi::authz_status_AUTHZ_GRANTED;
            }
        }
        LogTarget::Request(r).log(
            Level::Error,
            &format!(
                "RWSGI0084: authorization of user {:?} to access {:?} failed: the user is not a member of {}",
                String::from_utf8_lossy(&user),
                opt_str((*r).uri).unwrap_or(""),
                if groups.is_empty() { "any group" } else { "the required groups" }
            ),
        );
        ffi::authz_status_AUTHZ_DENIED
    })
}

/// access_checker: `allow_access(environ, host)` of the location's
/// `WSGIAccessScript`: True lets the request on, False answers 403, None
/// leaves the decision to other modules.
unsafe extern "C" fn access_checker(r: *mut ffi::request_rec) -> c_int {
    let error = ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
    guard("access_checker", error, || unsafe {
        let dcfg = super::module_config::<DirConfig>((*r).per_dir_config);
        if dcfg
            .as_ref()
            .and_then(|d| d.more.auth.access.as_ref())
            .is_none()
        {
            return ffi::DECLINED;
        }
        // The host name when Apache looked it up (HostnameLookups), else
        // the address, as mod_wsgi.
        let mut host = ffi::ap_get_remote_host(
            (*r).connection,
            (*r).per_dir_config as *mut c_void,
            ffi::REMOTE_HOST as c_int,
            ptr::null_mut(),
        );
        if host.is_null() {
            host = (*r).useragent_ip;
        }
        let host = opt_bytes(host);
        let answer = with_script(
            r,
            "WSGIAccessScript",
            |s| s.more.auth.access.as_deref(),
            |rt, call| pyauth::allow_access(rt, call, host),
        );
        match answer {
            Ok(Access::Allow) => ffi::OK as c_int,
            Ok(Access::Decline) => ffi::DECLINED,
            Ok(Access::Deny) => {
                LogTarget::Request(r).log(
                    Level::Error,
                    &format!(
                        "RWSGI0084: client denied by WSGIAccessScript: {:?}",
                        String::from_utf8_lossy(bytes_of((*r).filename))
                    ),
                );
                ffi::HTTP_FORBIDDEN as c_int
            }
            Err(Failed) => error,
        }
    })
}
