//! Name-based virtual hosts: `--server-name`, `--server-alias`,
//! `--allow-localhost` (a clap group flattened into
//! [`crate::cli::ServerArgs`]) and the model of the `<VirtualHost>` blocks.
//!
//! As mod_wsgi-express 6.1.1 generates them, `--server-name NAME` gives,
//! for the HTTP port and (with [`crate::https`]) for the HTTPS port:
//!
//! - `<VirtualHost _default_:PORT>` with `ServerName _wsgi_`, answering any
//!   other host name with 403 (`Require all denied`; with
//!   `--allow-localhost`, `Require host localhost` lets local clients in);
//! - `<VirtualHost *:PORT>` with `ServerName NAME` and `ServerAlias` for
//!   the `--server-alias`es (on the HTTP port with `--https-only`, a
//!   redirect to the HTTPS port);
//! - for a name starting with `www.`, a `<VirtualHost *:PORT>` for the
//!   parent domain redirecting to the `www.` name.
//!
//! The application's `WSGIScriptAlias` and everything else stays at server
//! level, so every virtual host serves it.

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::model::conf_safe_str;

/// The virtual host options (field comments are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct VhostArgs {
    /// Primary host name of the site: requests for other names get 403 (name-based virtual hosts); a name starting with www. also redirects the parent domain to it [default: none, any name is served as localhost].
    #[arg(long, value_name = "HOSTNAME")]
    pub server_name: Option<String>,

    /// Secondary host name of the site (ServerAlias; wildcards allowed; repeatable; needs --server-name).
    #[arg(long = "server-alias", value_name = "HOSTNAME")]
    pub server_alias: Vec<String>,

    /// With --server-name: still accept requests naming another host from localhost clients (Require host localhost).
    #[arg(long)]
    pub allow_localhost: bool,
}

/// The `<VirtualHost>` blocks' parameters (present with `--server-name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VirtualHosts {
    /// `--server-name`.
    pub server_name: String,
    /// `--server-alias`es, in order (one `ServerAlias` line).
    pub aliases: Vec<String>,
    /// `--allow-localhost`.
    pub allow_localhost: bool,
    /// For a `www.` server name, the parent domain redirected to it.
    pub parent_domain: Option<String>,
}

/// A host name for `ServerName`/`ServerAlias`: non-empty, no white space,
/// writable in httpd.conf.
fn check_name(option: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains(char::is_whitespace) {
        bail!("{option} {name:?} is not a host name");
    }
    conf_safe_str(option, name)
}

/// Validates the options. Output: `None` without `--server-name`. Errors:
/// a name that is empty, has white space or cannot be written into
/// httpd.conf; `--server-alias` or `--allow-localhost` without
/// `--server-name`.
pub fn build(a: &VhostArgs) -> Result<Option<VirtualHosts>> {
    let Some(name) = &a.server_name else {
        if !a.server_alias.is_empty() {
            bail!("--server-alias needs --server-name");
        }
        if a.allow_localhost {
            bail!("--allow-localhost needs --server-name");
        }
        return Ok(None);
    };
    check_name("--server-name", name)?;
    for alias in &a.server_alias {
        check_name("--server-alias", alias)?;
    }
    let parent_domain = name
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("www."))
        .map(|_| name[4..].to_string())
        .filter(|p| !p.is_empty());
    Ok(Some(VirtualHosts {
        server_name: name.clone(),
        aliases: a.server_alias.clone(),
        allow_localhost: a.allow_localhost,
        parent_domain,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;

    fn args(name: Option<&str>, aliases: &[&str], local: bool) -> VhostArgs {
        VhostArgs {
            server_name: name.map(str::to_string),
            server_alias: aliases.iter().map(|s| s.to_string()).collect(),
            allow_localhost: local,
        }
    }

    #[test]
    fn server_name_gives_virtual_hosts() {
        let v = build(&args(
            Some("example.com"),
            &["*.example.com", "alt.test"],
            true,
        ))
        .unwrap()
        .unwrap();
        assert_eq!(v.server_name, "example.com");
        assert_eq!(v.aliases, vec!["*.example.com", "alt.test"]);
        assert!(v.allow_localhost);
        assert_eq!(v.parent_domain, None);
        assert_eq!(build(&args(None, &[], false)).unwrap(), None);
    }

    #[test]
    fn www_name_redirects_parent_domain() {
        let v = build(&args(Some("WWW.example.com"), &[], false))
            .unwrap()
            .unwrap();
        assert_eq!(v.parent_domain.as_deref(), Some("example.com"));
        let v = build(&args(Some("www."), &[], false)).unwrap().unwrap();
        assert_eq!(v.parent_domain, None);
    }

    fn conf(f: &Fixture, extra: &[&str]) -> String {
        crate::render::httpd_conf(&f.config(extra).unwrap()).unwrap()
    }

    fn lines(t: &str) -> Vec<&str> {
        t.lines().map(str::trim).collect()
    }

    /// `want` appears in `t` as consecutive lines (trimmed).
    fn has_block(t: &str, want: &[&str]) -> bool {
        lines(t).windows(want.len()).any(|w| w == want)
    }

    #[test]
    fn generated_virtual_hosts() {
        let f = Fixture::new();
        let t = conf(
            &f,
            &[
                "app.wsgi",
                "--server-name",
                "example.com",
                "--server-alias",
                "*.example.com",
                "--server-alias",
                "alt.test",
            ],
        );
        assert!(
            has_block(
                &t,
                &[
                    "<VirtualHost _default_:8000>",
                    "ServerName _wsgi_",
                    "# Requests naming another host than --server-name (or an alias).",
                    "<Location />",
                    "Require all denied",
                    "</Location>",
                    "# The server's rewrite rules (the document root's files under the mount point).",
                    "RewriteEngine On",
                    "RewriteOptions Inherit",
                    "</VirtualHost>",
                    "<VirtualHost *:8000>",
                    "ServerName example.com",
                    "ServerAlias *.example.com alt.test",
                    "# The server's rewrite rules (the document root's files under the mount point).",
                    "RewriteEngine On",
                    "RewriteOptions Inherit",
                    "</VirtualHost>",
                ]
            ),
            "{t}"
        );
        for line in [
            "ServerName example.com",
            "Define MOD_WSGI_VIRTUAL_HOST",
            "Define MOD_WSGI_SERVER_ALIAS",
        ] {
            assert!(lines(&t).contains(&line), "{line} in\n{t}");
        }
        assert!(!t.contains("SSLEngine") && !t.contains("Redirect"), "{t}");
        // The application stays at server level, after the virtual hosts.
        assert!(t.rfind("</VirtualHost>").unwrap() < t.find("WSGIScriptAlias /").unwrap());
    }

    #[test]
    fn allow_localhost_and_www_redirect() {
        let f = Fixture::new();
        let t = conf(
            &f,
            &[
                "app.wsgi",
                "--server-name",
                "www.example.com",
                "--allow-localhost",
                "--port",
                "8080",
            ],
        );
        assert!(lines(&t).contains(&"Require host localhost"), "{t}");
        assert!(
            has_block(
                &t,
                &[
                    "<VirtualHost *:8080>",
                    "ServerName example.com",
                    "Redirect permanent / http://www.example.com:8080/",
                    "</VirtualHost>",
                ]
            ),
            "{t}"
        );
        assert!(lines(&t).contains(&"Define MOD_WSGI_REDIRECT_WWW"), "{t}");
        assert!(
            lines(&t).contains(&"Define MOD_WSGI_ALLOW_LOCALHOST"),
            "{t}"
        );
        let c = f
            .config(&["app.wsgi", "--server-name", "www.example.com"])
            .unwrap();
        assert_eq!(c.url, "http://www.example.com:8000/");
    }

    #[test]
    fn no_server_name_no_virtual_hosts() {
        let f = Fixture::new();
        let t = conf(&f, &["app.wsgi"]);
        assert!(
            !t.contains("<VirtualHost") && !t.contains("MOD_WSGI_VIRTUAL_HOST"),
            "{t}"
        );
        assert!(lines(&t).contains(&"ServerName localhost"), "{t}");
    }

    #[test]
    fn refused() {
        for (a, needle) in [
            (
                args(None, &["x"], false),
                "--server-alias needs --server-name",
            ),
            (
                args(None, &[], true),
                "--allow-localhost needs --server-name",
            ),
            (args(Some("a b"), &[], false), "is not a host name"),
            (args(Some("x"), &[""], false), "is not a host name"),
            (args(Some("x${Y}"), &[], false), "cannot be written"),
        ] {
            let e = build(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
    }
}
