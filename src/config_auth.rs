//! mod_wsgi's access and authentication script directives:
//! `WSGIAccessScript`, `WSGIAuthUserScript`, `WSGIAuthGroupScript` and
//! `WSGIGroupAuthoritative`, their per-directory record (part of
//! config_more.rs's `DirMore`), merge rule, handlers and command entries.
//!
//! The scripts run in Apache's child processes (embedded), whatever process
//! group the application runs in, so naming one starts Python in the
//! children even with `WSGIRestrictEmbedded On`, as mod_wsgi does. The hooks
//! and providers that call them are in `apache::auth`.

use crate::config::{arg_str, dir, handler};
use crate::config_more::{require_python, server_path};
use crate::ffi;
use rwsgi_core::directives::parse_on_off;
use rwsgi_core::options::parse_child_script;
use std::sync::Arc;

/// One access or authentication script, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthScript {
    /// Absolute path of the script.
    pub path: String,
    /// `application-group=` spec (default `%{GLOBAL}`): the interpreter the
    /// script runs in, reported to it as `mod_wsgi.application_group`.
    pub application_group: String,
}

/// Per-directory access and authentication scripts (`None`: not set here).
#[derive(Debug, Default, Clone)]
pub struct AuthScripts {
    /// `WSGIAccessScript`: `allow_access(environ, host)`.
    pub access: Option<Arc<AuthScript>>,
    /// `WSGIAuthUserScript`: `check_password(environ, user, password)` and
    /// `get_realm_hash(environ, user, realm)` (provider `wsgi`).
    pub user: Option<Arc<AuthScript>>,
    /// `WSGIAuthGroupScript`: `groups_for_user(environ, user)` (provider
    /// `wsgi-group`).
    pub group: Option<Arc<AuthScript>>,
    /// `WSGIGroupAuthoritative` (default On). Accepted for compatibility:
    /// with Apache 2.4's provider-based authorisation it changes nothing.
    pub group_authoritative: Option<bool>,
}

impl AuthScripts {
    /// `add` over `base`, setting by setting (mod_wsgi's merge).
    pub fn merge(base: &AuthScripts, add: &AuthScripts) -> AuthScripts {
        AuthScripts {
            access: add.access.clone().or_else(|| base.access.clone()),
            user: add.user.clone().or_else(|| base.user.clone()),
            group: add.group.clone().or_else(|| base.group.clone()),
            group_authoritative: add.group_authoritative.or(base.group_authoritative),
        }
    }
}

/// Parses `path [application-group=NAME]` of directive `d` and makes the
/// path absolute (relative to ServerRoot).
unsafe fn script(
    cmd: *mut ffi::cmd_parms,
    d: &'static str,
    args: *const std::ffi::c_char,
) -> Result<Arc<AuthScript>, rwsgi_core::directives::DirectiveError> {
    let spec = parse_child_script(d, arg_str(d, args)?)?;
    let path = server_path(cmd, d, &spec.path)?;
    require_python();
    Ok(Arc::new(AuthScript {
        path,
        application_group: spec.application_group.unwrap_or_else(|| "%{GLOBAL}".into()),
    }))
}

handler!(cmd_access_script, |cmd, cfg, args| {
    dir(cfg).more.auth.access = Some(script(cmd, "WSGIAccessScript", args)?);
    Ok(())
});

handler!(cmd_auth_user_script, |cmd, cfg, args| {
    dir(cfg).more.auth.user = Some(script(cmd, "WSGIAuthUserScript", args)?);
    Ok(())
});

handler!(cmd_auth_group_script, |cmd, cfg, args| {
    dir(cfg).more.auth.group = Some(script(cmd, "WSGIAuthGroupScript", args)?);
    Ok(())
});

handler!(cmd_group_authoritative, |cmd, cfg, w| {
    let d = "WSGIGroupAuthoritative";
    dir(cfg).more.auth.group_authoritative = Some(parse_on_off(d, arg_str(d, w)?)?);
    Ok(())
});

// ---- command entries --------------------------------------------------------

use crate::config::command;
const AUTHCFG: u32 = ffi::OR_AUTHCFG;

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 4;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [
    command(c"WSGIAccessScript", cmd_access_script, ffi::cmd_how_RAW_ARGS, AUTHCFG,
        c"Script whose allow_access(environ, host) decides whether a client may access the location: WSGIAccessScript path [application-group=NAME]"),
    command(c"WSGIAuthUserScript", cmd_auth_user_script, ffi::cmd_how_RAW_ARGS, AUTHCFG,
        c"Script of the 'wsgi' authentication provider (check_password, get_realm_hash): WSGIAuthUserScript path [application-group=NAME]"),
    command(c"WSGIAuthGroupScript", cmd_auth_group_script, ffi::cmd_how_RAW_ARGS, AUTHCFG,
        c"Script of the 'wsgi-group' authorisation provider (groups_for_user): WSGIAuthGroupScript path [application-group=NAME]"),
    command(c"WSGIGroupAuthoritative", cmd_group_authoritative, ffi::cmd_how_TAKE1, AUTHCFG,
        c"On|Off (accepted for compatibility; Apache 2.4's Require rules decide)"),
];
