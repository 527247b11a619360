//! What include files, envvars scripts and rewrite rules written for
//! mod_wsgi-express rely on: the options `--setenv`, `--passenv`,
//! `--envvars-script`, `--rewrite-rules` (a clap group flattened into
//! [`crate::cli::ServerArgs`]), the `Define`s of httpd.conf and the
//! variables apachectl exports.
//!
//! mod_wsgi-express passes its `MOD_WSGI_*` flags as `-D` arguments of
//! httpd and `MOD_WSGI_MODULES_DIRECTORY`, `MOD_WSGI_SERVER_ROOT`, ... as
//! environment variables from apachectl; include files test the flags with
//! `<IfDefine>` and use the variables as `${NAME}`. rwsgi-express writes the
//! flags and the two directories as `Define`s at the top of httpd.conf (so
//! the file works however httpd is started) and apachectl exports the same
//! variables as mod_wsgi-express's, then sources `envvars`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::Mpm;
use crate::model::{absolute, conf_safe, conf_safe_str, ServerConfig};

/// The environment and rewrite options (field comments are the `--help`
/// texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct EnvArgs {
    /// Add KEY=VALUE to every request's WSGI environ (SetEnv; repeatable).
    #[arg(long = "setenv", num_args = 2, value_names = ["KEY", "VALUE"])]
    pub setenv: Vec<String>,

    /// Pass the process environment variable KEY of Apache (as set by envvars) to every request's WSGI environ (PassEnv; repeatable).
    #[arg(long = "passenv", value_name = "KEY")]
    pub passenv: Vec<String>,

    /// Shell script sourced by apachectl before Apache starts, to set environment variables [default: <server-root>/envvars, created empty].
    #[arg(long, value_name = "FILE-PATH")]
    pub envvars_script: Option<PathBuf>,

    /// File of mod_rewrite rules, included in the document root's <Directory> [default: <server-root>/rewrite.conf, created empty].
    #[arg(long, value_name = "FILE-PATH")]
    pub rewrite_rules: Option<PathBuf>,
}

/// One `--setenv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetEnv {
    /// Variable name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// The environment and rewrite settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// `--setenv`s, in order.
    pub setenv: Vec<SetEnv>,
    /// `--passenv`s, in order.
    pub passenv: Vec<String>,
    /// `<server root>/envvars`, sourced by apachectl: `. SCRIPT` with
    /// `--envvars-script`, else created empty when missing (and kept, with
    /// the user's edits, when it exists).
    pub envvars: PathBuf,
    /// `--envvars-script`, absolute.
    pub envvars_script: Option<PathBuf>,
    /// The rewrite rules file: `--rewrite-rules` or `<server root>/rewrite.conf`.
    pub rewrite_rules: PathBuf,
    /// Whether [`Self::rewrite_rules`] is the server root's, created empty
    /// when missing.
    pub rewrite_rules_default: bool,
}

/// An environment variable name: ASCII letters, digits and `_`, not
/// starting with a digit.
fn is_env_name(s: &str) -> bool {
    crate::model::is_identifier(s)
}

/// Validates the options. Errors: `--setenv`/`--passenv` names that are
/// not variable names, values that cannot be written into httpd.conf,
/// `--envvars-script`/`--rewrite-rules` that are not files (or whose path
/// cannot be written into a shell script / httpd.conf).
pub fn build(a: &EnvArgs, server_root: &Path, cwd: &Path) -> Result<Environment> {
    if a.setenv.len() % 2 != 0 {
        bail!("--setenv takes two values: KEY and VALUE");
    }
    let mut setenv = Vec::new();
    for pair in a.setenv.chunks(2) {
        let (name, value) = (&pair[0], &pair[1]);
        if !is_env_name(name) {
            bail!("--setenv name {name:?} is not a variable name (letters, digits, '_')");
        }
        conf_safe_str("--setenv value", value)?;
        setenv.push(SetEnv {
            name: name.clone(),
            value: value.clone(),
        });
    }
    for name in &a.passenv {
        if !is_env_name(name) {
            bail!("--passenv {name:?} is not a variable name (letters, digits, '_')");
        }
    }
    let envvars_script = match &a.envvars_script {
        Some(p) => {
            let p = absolute(cwd, p);
            if !p.is_file() {
                bail!(
                    "--envvars-script {} does not exist (or is not a file)",
                    p.display()
                );
            }
            if p.to_str().is_none() || p.to_string_lossy().chars().any(char::is_control) {
                bail!(
                    "--envvars-script {} cannot be written into apachectl",
                    p.display()
                );
            }
            Some(p)
        }
        None => None,
    };
    let (rewrite_rules, rewrite_rules_default) = match &a.rewrite_rules {
        Some(p) => {
            let p = absolute(cwd, p);
            if !p.is_file() {
                bail!(
                    "--rewrite-rules {} does not exist (or is not a file)",
                    p.display()
                );
            }
            conf_safe("--rewrite-rules", &p)?;
            (p, false)
        }
        None => (server_root.join("rewrite.conf"), true),
    };
    Ok(Environment {
        setenv,
        passenv: a.passenv.clone(),
        envvars: server_root.join("envvars"),
        envvars_script,
        rewrite_rules,
        rewrite_rules_default,
    })
}

/// A `Define` of httpd.conf: a flag (`Define NAME`) or a variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Define {
    /// Name, e.g. `MOD_WSGI_WITH_HTTPS`.
    pub name: String,
    /// Value of a variable (`${NAME}`), `None` for a flag.
    pub value: Option<String>,
}

/// The `Define`s include files may test or use, with mod_wsgi-express's
/// names and conditions: `MOD_WSGI_SERVER_ROOT` and
/// `MOD_WSGI_MODULES_DIRECTORY` (variables), then the flags
/// (`MOD_WSGI_VIRTUAL_HOST`, `MOD_WSGI_WITH_HTTPS`, `MOD_WSGI_MPM_ENABLE_*`,
/// ...) of what is configured. `mpms_present` are the MPMs whose module
/// exists (for `MOD_WSGI_MPM_EXISTS_*`).
pub fn defines(c: &ServerConfig, mpms_present: &[Mpm]) -> Vec<Define> {
    let var = |name: &str, value: &Path| Define {
        name: name.into(),
        value: Some(value.to_string_lossy().into_owned()),
    };
    let mut out = vec![
        var("MOD_WSGI_SERVER_ROOT", &c.server_root),
        var("MOD_WSGI_MODULES_DIRECTORY", &c.modules_directory),
    ];
    let https = c.https.as_ref();
    let vhosts = c.vhosts.as_ref();
    let flags = [
        ("MOD_WSGI_VIRTUAL_HOST", vhosts.is_some()),
        (
            "MOD_WSGI_REDIRECT_WWW",
            vhosts.is_some_and(|v| v.parent_domain.is_some()),
        ),
        ("MOD_WSGI_WITH_HTTP2", c.http2),
        ("MOD_WSGI_WITH_HTTPS", https.is_some()),
        (
            "MOD_WSGI_VERIFY_CLIENT",
            https.is_some_and(|h| h.ca_certificate_file.is_some()),
        ),
        (
            "MOD_WSGI_CERTIFICATE_CHAIN",
            https.is_some_and(|h| h.certificate_chain_file.is_some()),
        ),
        (
            "MOD_WSGI_SSL_ENVIRONMENT",
            https.is_some_and(|h| h.environment),
        ),
        ("MOD_WSGI_HTTPS_ONLY", https.is_some_and(|h| h.only)),
        (
            "MOD_WSGI_HSTS_POLICY",
            https.is_some_and(|h| h.hsts_policy.is_some()),
        ),
        (
            "MOD_WSGI_SERVER_ALIAS",
            vhosts.is_some_and(|v| !v.aliases.is_empty()),
        ),
        (
            "MOD_WSGI_ALLOW_LOCALHOST",
            vhosts.is_some_and(|v| v.allow_localhost),
        ),
        ("MOD_WSGI_STATIC_ONLY", !c.app.is_wsgi()),
        ("MOD_WSGI_ENABLE_SENDFILE", c.content.enable_sendfile),
        // --server-status turns on what --server-metrics does for Apache.
        (
            "MOD_WSGI_SERVER_METRICS",
            c.server_metrics || c.content.server_status,
        ),
        ("MOD_WSGI_SERVER_STATUS", c.content.server_status),
        (
            "MOD_WSGI_SWITCH_INTERVAL",
            c.python.switch_interval.is_some(),
        ),
        ("MOD_WSGI_DIRECTORY_INDEX", c.directory_index.is_some()),
        ("MOD_WSGI_DIRECTORY_LISTING", c.content.directory_listing),
        (
            "MOD_WSGI_ERROR_LOG_FORMAT",
            c.logs.error_log_format.is_some(),
        ),
        ("MOD_WSGI_ACCESS_LOG", c.logs.access_log.is_some()),
        ("MOD_WSGI_ROTATE_LOGS", c.logs.rotation.is_some()),
        ("MOD_WSGI_KEEP_ALIVE", c.keep_alive_timeout > 0),
        ("MOD_WSGI_COMPRESS_RESPONSES", c.content.compress_responses),
        ("MOD_WSGI_MULTIPROCESS", c.processes > 1),
        ("MOD_WSGI_WITH_LISTENER_HOST", c.host.is_some()),
        ("MOD_WSGI_ERROR_OVERRIDE", c.content.error_override),
        ("MOD_WSGI_CHUNKED_REQUEST", c.chunked_request),
        ("MOD_WSGI_WITH_PROXY", c.proxy.any()),
        (
            "MOD_WSGI_WITH_PROXY_HEADERS",
            !c.proxy.trusted_headers.is_empty(),
        ),
        (
            "MOD_WSGI_WITH_TRUSTED_PROXIES",
            !c.proxy.trusted_proxies.is_empty(),
        ),
        ("MOD_WSGI_HOST_ACCESS", c.auth.host_access_script.is_some()),
        ("MOD_WSGI_AUTH_USER", c.auth.auth_user_script.is_some()),
        ("MOD_WSGI_AUTH_GROUP", c.auth.auth_group_script.is_some()),
        ("MOD_WSGI_WITH_PYTHON_PATH", !c.python_paths.is_empty()),
        ("MOD_WSGI_WITH_SOCKET_PREFIX", c.socket_prefix.is_some()),
        ("MOD_WSGI_DISABLE_RELOADING", c.disable_reloading),
        (
            "MOD_WSGI_CGID_SCRIPT",
            c.content.cgi.as_deref() == Some("cgid"),
        ),
        (
            "MOD_WSGI_CGI_SCRIPT",
            c.content.cgi.as_deref() == Some("cgi"),
        ),
        ("ORPHAN_INTERPRETER", c.python.orphan_interpreter),
        ("EMBEDDED_MODE", c.daemon.is_none()),
    ];
    let flag = |name: String| Define { name, value: None };
    out.extend(
        flags
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| flag(n.to_string())),
    );
    out.push(flag(format!(
        "MOD_WSGI_MPM_ENABLE_{}_MODULE",
        c.mpm.name().to_ascii_uppercase()
    )));
    out.extend(mpms_present.iter().map(|m| {
        flag(format!(
            "MOD_WSGI_MPM_EXISTS_{}_MODULE",
            m.name().to_ascii_uppercase()
        ))
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use crate::{render, setup};
    use std::fs;

    fn env_args(setenv: &[&str], passenv: &[&str]) -> EnvArgs {
        EnvArgs {
            setenv: setenv.iter().map(|s| s.to_string()).collect(),
            passenv: passenv.iter().map(|s| s.to_string()).collect(),
            ..EnvArgs::default()
        }
    }

    #[test]
    fn defaults_are_in_the_server_root() {
        let d = tempfile::tempdir().unwrap();
        let e = build(&EnvArgs::default(), Path::new("/srv/root"), d.path()).unwrap();
        assert_eq!(e.envvars, PathBuf::from("/srv/root/envvars"));
        assert_eq!(e.rewrite_rules, PathBuf::from("/srv/root/rewrite.conf"));
        assert!(e.rewrite_rules_default);
        assert_eq!(e.envvars_script, None);
        assert!(e.setenv.is_empty() && e.passenv.is_empty());
    }

    #[test]
    fn setenv_passenv_and_files() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("vars.sh"), "export X=1\n").unwrap();
        fs::write(d.path().join("rules.conf"), "RewriteRule ^x$ y\n").unwrap();
        let a = EnvArgs {
            envvars_script: Some("vars.sh".into()),
            rewrite_rules: Some("rules.conf".into()),
            ..env_args(&["A", "1 2", "B_2", ""], &["HOME"])
        };
        let e = build(&a, Path::new("/r"), d.path()).unwrap();
        assert_eq!(
            e.setenv,
            vec![
                SetEnv {
                    name: "A".into(),
                    value: "1 2".into()
                },
                SetEnv {
                    name: "B_2".into(),
                    value: "".into()
                },
            ]
        );
        assert_eq!(e.passenv, vec!["HOME"]);
        assert_eq!(e.envvars_script, Some(d.path().join("vars.sh")));
        assert_eq!(e.rewrite_rules, d.path().join("rules.conf"));
        assert!(!e.rewrite_rules_default);
    }

    #[test]
    fn refused() {
        let d = tempfile::tempdir().unwrap();
        let cases = [
            (env_args(&["1A", "x"], &[]), "not a variable name"),
            (env_args(&["A", "x\"y"], &[]), "cannot be written"),
            (env_args(&["A", "${HOME}"], &[]), "cannot be written"),
            (env_args(&[], &["A-B"]), "not a variable name"),
            (
                EnvArgs {
                    envvars_script: Some("nope.sh".into()),
                    ..EnvArgs::default()
                },
                "does not exist",
            ),
            (
                EnvArgs {
                    rewrite_rules: Some("nope.conf".into()),
                    ..EnvArgs::default()
                },
                "does not exist",
            ),
        ];
        for (a, needle) in cases {
            let e = build(&a, Path::new("/r"), d.path())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
    }

    fn lines(t: &str) -> Vec<&str> {
        t.lines().map(str::trim).collect()
    }

    #[test]
    fn defines_of_the_default_config() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        let t = render::httpd_conf(&c).unwrap();
        let root = f.path("root");
        let mods = f.path("modules");
        let want = [
            format!("Define MOD_WSGI_SERVER_ROOT \"{}\"", root.display()),
            format!("Define MOD_WSGI_MODULES_DIRECTORY \"{}\"", mods.display()),
            "Define MOD_WSGI_KEEP_ALIVE".into(),
            "Define MOD_WSGI_MPM_ENABLE_EVENT_MODULE".into(),
            "Define MOD_WSGI_MPM_EXISTS_EVENT_MODULE".into(),
            "Define MOD_WSGI_MPM_EXISTS_WORKER_MODULE".into(),
            "Define MOD_WSGI_MPM_EXISTS_PREFORK_MODULE".into(),
        ];
        let defines: Vec<&str> = lines(&t)
            .into_iter()
            .filter(|l| l.starts_with("Define "))
            .collect();
        assert_eq!(defines, want, "{t}");
        // Before anything that could use them.
        assert!(t.find("Define ").unwrap() < t.find("ServerRoot").unwrap());
        // mod_wsgi-express's modules, for include files (SetEnv, Header, ...).
        for m in [
            "env_module",
            "headers_module",
            "rewrite_module",
            "access_compat_module",
        ] {
            assert!(t.contains(&format!("LoadModule {m} ")), "{m}");
        }
    }

    #[test]
    fn defines_follow_the_options() {
        let f = Fixture::new();
        let lib = f.path("py/lib");
        let c = f
            .config(&[
                "app.wsgi",
                "--embedded-mode",
                "--server-mpm",
                "prefork",
                "--keep-alive-timeout",
                "0",
                "--host",
                "127.0.0.1",
                "--chunked-request",
                "--access-log",
                "--processes",
                "2",
                "--python-path",
                lib.to_str().unwrap(),
            ])
            .unwrap();
        let names: Vec<&str> = c.defines.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "MOD_WSGI_SERVER_ROOT",
                "MOD_WSGI_MODULES_DIRECTORY",
                "MOD_WSGI_ACCESS_LOG",
                "MOD_WSGI_MULTIPROCESS",
                "MOD_WSGI_WITH_LISTENER_HOST",
                "MOD_WSGI_CHUNKED_REQUEST",
                "MOD_WSGI_WITH_PYTHON_PATH",
                "EMBEDDED_MODE",
                "MOD_WSGI_MPM_ENABLE_PREFORK_MODULE",
                "MOD_WSGI_MPM_EXISTS_PREFORK_MODULE",
            ]
        );
    }

    #[test]
    fn setenv_passenv_in_httpd_conf_before_includes() {
        let f = Fixture::new();
        let inc = f.path("extra.conf");
        fs::write(&inc, "# extra\n").unwrap();
        let c = f
            .config(&[
                "app.wsgi",
                "--setenv",
                "GREETING",
                "hello world",
                "--setenv",
                "EMPTY",
                "",
                "--passenv",
                "HOME",
                "--include-file",
                inc.to_str().unwrap(),
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        let l = lines(&t);
        for line in [
            "SetEnv GREETING \"hello world\"",
            "SetEnv EMPTY \"\"",
            "PassEnv HOME",
        ] {
            assert!(l.contains(&line), "{line} in\n{t}");
        }
        let include = t.find(&format!("Include \"{}\"", inc.display())).unwrap();
        assert!(t.find("SetEnv GREETING").unwrap() < include);
        assert!(include < t.find("WSGIScriptAlias /").unwrap());
        // The rewrite rules are included in the document root's directory.
        let rules = format!("Include \"{}\"", f.path("root/rewrite.conf").display());
        let doc = t
            .find(&format!(
                "<Directory \"{}\">",
                f.path("root/htdocs").display()
            ))
            .unwrap();
        let at = t.find(&rules).unwrap();
        assert!(
            doc < at && at < doc + t[doc..].find("</Directory>").unwrap(),
            "{t}"
        );
        assert!(l.contains(&"RewriteOptions InheritDownBefore"), "{t}");
    }

    #[test]
    fn envvars_and_rewrite_files_are_written_and_kept() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        setup::prepare_directories(&c).unwrap();
        setup::write_server_root(&c).unwrap();
        let root = f.path("root");
        assert_eq!(fs::read_to_string(root.join("envvars")).unwrap(), "");
        assert_eq!(fs::read_to_string(root.join("rewrite.conf")).unwrap(), "");
        // The user's edits survive another setup.
        fs::write(root.join("envvars"), "export X=1\n").unwrap();
        fs::write(root.join("rewrite.conf"), "RewriteRule ^a$ b\n").unwrap();
        setup::write_server_root(&c).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("envvars")).unwrap(),
            "export X=1\n"
        );
        assert_eq!(
            fs::read_to_string(root.join("rewrite.conf")).unwrap(),
            "RewriteRule ^a$ b\n"
        );
        // --envvars-script: envvars sources it.
        let script = f.path("my env.sh");
        fs::write(&script, "export Y=2\n").unwrap();
        let c = f
            .config(&["app.wsgi", "--envvars-script", script.to_str().unwrap()])
            .unwrap();
        setup::write_server_root(&c).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("envvars")).unwrap(),
            format!(". '{}'\n", script.display())
        );
        let s = setup::summary(&c);
        assert!(
            s.contains(&format!("Environ Variables  : {}", script.display())),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "Rewrite Rules      : {}/rewrite.conf",
                root.display()
            )),
            "{s}"
        );
    }

    #[test]
    fn apachectl_exports_mod_wsgi_variables_and_sources_envvars() {
        let f = Fixture::new();
        let (f_root, f_mods) = (f.path("root"), f.path("modules"));
        let c = f.config(&["app.wsgi", "--port", "8123"]).unwrap();
        let s = render::apachectl(&c).unwrap();
        for line in [
            format!("MOD_WSGI_MODULES_DIRECTORY='{}'", f_mods.display()),
            format!("MOD_WSGI_SERVER_ROOT='{}'", f_root.display()),
            "MOD_WSGI_LISTENER_HOST='localhost'".into(),
            "MOD_WSGI_HTTP_PORT='8123'".into(),
            "MOD_WSGI_HTTPS_PORT=''".into(),
            "MOD_WSGI_USER=\"$(id -un)\"".into(),
            format!("MOD_WSGI_WORKING_DIRECTORY='{}'", f.path("app").display()),
            "export MOD_WSGI_HTTP_PORT MOD_WSGI_HTTPS_PORT MOD_WSGI_USER MOD_WSGI_GROUP".into(),
            "if test -f \"$SERVER_ROOT/envvars\"; then".into(),
            ". \"$SERVER_ROOT/envvars\"".into(),
            "-*)".into(),
        ] {
            assert!(lines(&s).contains(&line.as_str()), "{line} in\n{s}");
        }
        // The locale first, so that envvars can change it.
        assert!(s.find("LC_ALL=").unwrap() < s.find(". \"$SERVER_ROOT/envvars\"").unwrap());
    }
}
