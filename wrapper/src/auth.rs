//! mod_wsgi-express's access and authentication options:
//! `--host-access-script` (`WSGIAccessScript` for the whole site),
//! `--auth-user-script` with `--auth-type Basic|Digest` (the `wsgi`
//! authentication provider for the whole site: `Require valid-user`), and
//! `--auth-group-script` with `--auth-group NAME` (`Require wsgi-group`).
//! The scripts run in Apache's children, as with mod_wsgi.
//!
//! [`build`] validates the arguments (pure, unit-tested); the template
//! writes the `<Location />` blocks.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

/// The options on the command line.
#[derive(Debug, Clone, Default, Args)]
pub struct AuthArgs {
    /// Python script whose allow_access(environ, host) decides who may access the site (WSGIAccessScript).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub host_access_script: Option<PathBuf>,

    /// Python script whose check_password(environ, user, password) (Basic) or get_realm_hash(environ, user, realm) (Digest) authenticates every request (WSGIAuthUserScript; Require valid-user).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_user_script: Option<PathBuf>,

    /// The authentication scheme of --auth-user-script: Basic or Digest.
    #[arg(long, value_name = "TYPE", default_value = "Basic")]
    pub auth_type: String,

    /// Python script whose groups_for_user(environ, user) gives the user's groups (WSGIAuthGroupScript; needs --auth-user-script).
    #[arg(long, value_name = "SCRIPT-PATH")]
    pub auth_group_script: Option<PathBuf>,

    /// The group --auth-group-script must name for a user to be let in (Require wsgi-group).
    #[arg(long, value_name = "NAME", default_value = "wsgi")]
    pub auth_group: String,
}

/// What the template writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// `WSGIAccessScript` of `<Location />`.
    pub host_access_script: Option<PathBuf>,
    /// `WSGIAuthUserScript` of `<Location />`.
    pub auth_user_script: Option<PathBuf>,
    /// `Basic` or `Digest`.
    pub auth_type: String,
    /// `WSGIAuthGroupScript` of `<Location />`.
    pub auth_group_script: Option<PathBuf>,
    /// The group of `Require wsgi-group`.
    pub auth_group: String,
}

/// Validates the options: scripts must exist (relative paths are taken
/// from `cwd`), `--auth-type` is Basic or Digest (any case), a group script
/// needs a user script, and names are safe to write in httpd.conf
/// (`conf_safe` checks paths and words as the rest of the model does).
pub fn build(
    a: &AuthArgs,
    cwd: &Path,
    conf_safe: impl Fn(&str, &Path) -> Result<()>,
) -> Result<Auth> {
    let script = |what: &str, p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
        let Some(p) = p else { return Ok(None) };
        let p = if p.is_absolute() {
            p.clone()
        } else {
            cwd.join(p)
        };
        if !p.is_file() {
            bail!("{what} {} does not exist", p.display());
        }
        conf_safe(what, &p)?;
        Ok(Some(p))
    };
    let auth_type = match a.auth_type.to_ascii_lowercase().as_str() {
        "basic" => "Basic",
        "digest" => "Digest",
        _ => bail!("--auth-type {:?} must be Basic or Digest", a.auth_type),
    };
    let auth_user_script = script("--auth-user-script", &a.auth_user_script)?;
    let auth_group_script = script("--auth-group-script", &a.auth_group_script)?;
    if auth_group_script.is_some() && auth_user_script.is_none() {
        bail!(
            "--auth-group-script needs --auth-user-script (the user must be authenticated first)"
        );
    }
    if a.auth_group.is_empty()
        || a.auth_group
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\')
    {
        bail!(
            "--auth-group {:?} must be a group name without spaces or quotes",
            a.auth_group
        );
    }
    Ok(Auth {
        host_access_script: script("--host-access-script", &a.host_access_script)?,
        auth_user_script,
        auth_type: auth_type.to_string(),
        auth_group_script,
        auth_group: a.auth_group.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> AuthArgs {
        AuthArgs {
            auth_type: "Basic".into(),
            auth_group: "wsgi".into(),
            ..Default::default()
        }
    }

    #[test]
    fn options_are_checked() {
        let dir = std::env::temp_dir().join(format!("rwsgi-auth-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("auth.wsgi");
        std::fs::write(&script, "def check_password(e, u, p): return True\n").unwrap();
        let ok = |_: &str, _: &Path| Ok(());
        assert_eq!(
            build(&args(), &dir, ok).unwrap(),
            Auth {
                auth_type: "Basic".into(),
                auth_group: "wsgi".into(),
                ..Default::default()
            }
        );
        let mut a = args();
        a.auth_user_script = Some("auth.wsgi".into());
        a.auth_type = "digest".into();
        let got = build(&a, &dir, ok).unwrap();
        assert_eq!(got.auth_user_script.as_deref(), Some(script.as_path()));
        assert_eq!(got.auth_type, "Digest");
        let mut bad = args();
        bad.auth_type = "Bearer".into();
        assert!(build(&bad, &dir, ok)
            .unwrap_err()
            .to_string()
            .contains("Basic or Digest"));
        let mut bad = args();
        bad.auth_group_script = Some(script.clone());
        assert!(build(&bad, &dir, ok)
            .unwrap_err()
            .to_string()
            .contains("needs --auth-user-script"));
        let mut bad = args();
        bad.host_access_script = Some(dir.join("missing.py"));
        assert!(build(&bad, &dir, ok)
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        let mut bad = a.clone();
        bad.auth_group = "two words".into();
        assert!(build(&bad, &dir, ok)
            .unwrap_err()
            .to_string()
            .contains("--auth-group"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
