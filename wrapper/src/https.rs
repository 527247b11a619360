//! HTTPS (mod_ssl) and HTTP/2 (mod_http2) options of rwsgi-express: their
//! command line (a clap group flattened into [`crate::cli::ServerArgs`]),
//! their validation, and the model the templates render into the HTTPS
//! virtual hosts.
//!
//! Names, metavars and defaults are mod_wsgi-express 6.1.1's, and so is the
//! generated configuration: a `Listen` for `--https-port`, a catch-all
//! `<VirtualHost _default_:PORT>` that refuses other host names and a
//! `<VirtualHost *:PORT>` for `--server-name`, both with `SSLEngine On` and
//! the certificate (see [`crate::vhost`]). Where mod_wsgi-express silently
//! leaves HTTPS out (no `--server-name`, no certificate) or ignores an
//! option (`--hsts-policy` without `--https-only`, `--ssl-verify-client`
//! without a CA), rwsgi-express refuses the combination with a message.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::model::{absolute, conf_safe, conf_safe_str, listen_arg};

/// The HTTPS and HTTP/2 options (field comments are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct HttpsArgs {
    /// Port for HTTPS requests (a second listener, served through mod_ssl); needs --server-name and a certificate [default: none].
    #[arg(long, alias = "ssl-port", value_name = "NUMBER")]
    pub https_port: Option<u32>,

    /// The SSL certificate file (PEM) of the HTTPS listener (SSLCertificateFile).
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_file: Option<PathBuf>,

    /// The private key file of the certificate (SSLCertificateKeyFile).
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_key_file: Option<PathBuf>,

    /// Common part of the certificate and key file names: <FILE-PATH>.crt and <FILE-PATH>.key.
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate: Option<PathBuf>,

    /// CA certificates for client authentication (SSLCACertificateFile); clients must then present a certificate for the whole site, or only under --ssl-verify-client URLs.
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_ca_certificate_file: Option<PathBuf>,

    /// A sub URL for which client certificates are required (repeatable; needs --ssl-ca-certificate-file) [default: the whole site].
    #[arg(long = "ssl-verify-client", value_name = "URL-PATH")]
    pub ssl_verify_client: Vec<String>,

    /// Certificates of the CAs forming the server certificate's chain (SSLCertificateChainFile).
    #[arg(long, value_name = "FILE-PATH")]
    pub ssl_certificate_chain_file: Option<PathBuf>,

    /// Pass mod_ssl's standard variables (SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_*, ...) in the WSGI environ (SSLOptions +StdEnvVars).
    #[arg(long)]
    pub ssl_environment: bool,

    /// Redirect requests on the HTTP port to the HTTPS port.
    #[arg(long)]
    pub https_only: bool,

    /// Strict-Transport-Security header sent on HTTPS responses with --https-only, e.g. "max-age=31536000" [default: none].
    #[arg(long, value_name = "PARAMS")]
    pub hsts_policy: Option<String>,

    /// Enable HTTP/2 (mod_http2; Protocols h2 h2c http/1.1). Not with the prefork MPM.
    #[arg(long)]
    pub http2: bool,
}

/// The HTTPS listener, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Https {
    /// `--https-port`.
    pub port: u16,
    /// Its `Listen` argument (`port`, `host:port`, `[v6]:port`).
    pub listen: String,
    /// `SSLCertificateFile`.
    pub certificate_file: PathBuf,
    /// `SSLCertificateKeyFile`.
    pub certificate_key_file: PathBuf,
    /// `SSLCACertificateFile` (with `SSLVerifyClient none` in the virtual
    /// hosts and `require` in the [`Self::verify_client`] locations).
    pub ca_certificate_file: Option<PathBuf>,
    /// `SSLCertificateChainFile`.
    pub certificate_chain_file: Option<PathBuf>,
    /// `<Location>`s requiring a client certificate, longest first as
    /// mod_wsgi-express sorts them (`/` when a CA is given without
    /// `--ssl-verify-client`); empty without a CA.
    pub verify_client: Vec<String>,
    /// `--ssl-environment`: `SSLOptions +StdEnvVars`.
    pub environment: bool,
    /// `--https-only`: the HTTP virtual host redirects to HTTPS.
    pub only: bool,
    /// `--hsts-policy` (only with `--https-only`).
    pub hsts_policy: Option<String>,
    /// The URL printed in the summary, `https://NAME:PORT/`.
    pub url: String,
}

fn file(cwd: &Path, what: &str, p: &Path) -> Result<PathBuf> {
    let p = absolute(cwd, p);
    if !p.is_file() {
        bail!("{what} {} does not exist (or is not a file)", p.display());
    }
    conf_safe(what, &p)?;
    Ok(p)
}

/// Validates the HTTPS options and resolves them.
///
/// Inputs: the options, `--server-name` (HTTPS is served by its virtual
/// hosts), `--host` and `--port`, the current directory. Output: `None`
/// without `--https-port`. Errors: certificate, CA or chain options,
/// `--ssl-environment` or `--https-only` without `--https-port`;
/// `--https-port` out of range, equal to `--port`, without `--server-name`
/// or without a certificate and key; `--ssl-certificate` together with
/// `--ssl-certificate-file`/`--ssl-certificate-key-file`; a missing file;
/// `--ssl-verify-client` without `--ssl-ca-certificate-file` or not a URL
/// path; `--hsts-policy` without `--https-only` or not writable in
/// httpd.conf.
pub fn build(
    a: &HttpsArgs,
    server_name: Option<&str>,
    host: Option<&str>,
    port: u16,
    cwd: &Path,
) -> Result<Option<Https>> {
    let (cert, key) = match (
        &a.ssl_certificate,
        &a.ssl_certificate_file,
        &a.ssl_certificate_key_file,
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => bail!(
            "give either --ssl-certificate (the common part of the .crt and .key names) or \
             --ssl-certificate-file and --ssl-certificate-key-file, not both"
        ),
        (Some(base), None, None) => {
            let base = base.to_string_lossy();
            (
                Some(PathBuf::from(format!("{base}.crt"))),
                Some(PathBuf::from(format!("{base}.key"))),
            )
        }
        (None, c, k) => (c.clone(), k.clone()),
    };
    let Some(https_port) = a.https_port else {
        if cert.is_some()
            || key.is_some()
            || a.ssl_ca_certificate_file.is_some()
            || a.ssl_certificate_chain_file.is_some()
        {
            bail!("--https-port must be specified when SSL certificate files are given");
        }
        for (given, name) in [
            (a.ssl_environment, "--ssl-environment"),
            (a.https_only, "--https-only"),
            (!a.ssl_verify_client.is_empty(), "--ssl-verify-client"),
            (a.hsts_policy.is_some(), "--hsts-policy"),
        ] {
            if given {
                bail!("{name} needs --https-port (and a certificate)");
            }
        }
        return Ok(None);
    };
    if !(1..=65535).contains(&https_port) {
        bail!("--https-port {https_port} is out of range (1-65535)");
    }
    let https_port = https_port as u16;
    if https_port == port {
        bail!("--https-port {https_port} is the same as --port");
    }
    let Some(server_name) = server_name else {
        bail!(
            "--https-port needs --server-name: HTTPS is served by the server name's virtual \
             hosts (mod_wsgi-express leaves HTTPS out without it)"
        );
    };
    let (Some(cert), Some(key)) = (cert, key) else {
        bail!(
            "--https-port needs a certificate: --ssl-certificate-file and \
             --ssl-certificate-key-file, or --ssl-certificate"
        );
    };
    let certificate_file = file(cwd, "SSL certificate file", &cert)?;
    let certificate_key_file = file(cwd, "SSL certificate key file", &key)?;
    let ca_certificate_file = a
        .ssl_ca_certificate_file
        .as_deref()
        .map(|p| file(cwd, "--ssl-ca-certificate-file", p))
        .transpose()?;
    let certificate_chain_file = a
        .ssl_certificate_chain_file
        .as_deref()
        .map(|p| file(cwd, "--ssl-certificate-chain-file", p))
        .transpose()?;
    for url in &a.ssl_verify_client {
        if !url.starts_with('/') || url.contains(char::is_whitespace) {
            bail!("--ssl-verify-client {url:?} must be a URL path: start with '/', no white space");
        }
        conf_safe_str("--ssl-verify-client", url)?;
    }
    let verify_client = match (&ca_certificate_file, a.ssl_verify_client.is_empty()) {
        (None, false) => bail!("--ssl-verify-client needs --ssl-ca-certificate-file"),
        (None, true) => Vec::new(),
        (Some(_), true) => vec!["/".to_string()],
        (Some(_), false) => {
            let mut urls = a.ssl_verify_client.clone();
            urls.sort();
            urls.dedup();
            urls.reverse();
            urls
        }
    };
    if let Some(policy) = &a.hsts_policy {
        if !a.https_only {
            bail!("--hsts-policy applies to --https-only sites: give --https-only too");
        }
        if policy.trim().is_empty() {
            bail!("--hsts-policy must not be empty");
        }
        conf_safe_str("--hsts-policy", policy)?;
    }
    let url = if https_port == 443 {
        format!("https://{server_name}/")
    } else {
        format!("https://{server_name}:{https_port}/")
    };
    Ok(Some(Https {
        port: https_port,
        listen: listen_arg(host, https_port),
        certificate_file,
        certificate_key_file,
        ca_certificate_file,
        certificate_chain_file,
        verify_client,
        environment: a.ssl_environment,
        only: a.https_only,
        hsts_policy: a.hsts_policy.clone(),
        url,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use std::fs;

    fn dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in ["site.crt", "site.key", "ca.pem", "chain.pem"] {
            fs::write(d.path().join(f), "x").unwrap();
        }
        d
    }

    fn args(port: Option<u32>) -> HttpsArgs {
        HttpsArgs {
            https_port: port,
            ssl_certificate_file: Some("site.crt".into()),
            ssl_certificate_key_file: Some("site.key".into()),
            ..HttpsArgs::default()
        }
    }

    #[test]
    fn resolves_paths_listen_and_url() {
        let d = dir();
        let h = build(
            &args(Some(8443)),
            Some("example.com"),
            Some("127.0.0.1"),
            8000,
            d.path(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.certificate_file, d.path().join("site.crt"));
        assert_eq!(h.certificate_key_file, d.path().join("site.key"));
        assert_eq!(h.listen, "127.0.0.1:8443");
        assert_eq!(h.url, "https://example.com:8443/");
        assert!(h.verify_client.is_empty() && !h.environment && !h.only);
        let h = build(&args(Some(443)), Some("example.com"), None, 80, d.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.listen.as_str(), h.url.as_str()),
            ("443", "https://example.com/")
        );
    }

    #[test]
    fn certificate_base_name() {
        let d = dir();
        let a = HttpsArgs {
            https_port: Some(8443),
            ssl_certificate: Some("site".into()),
            ..HttpsArgs::default()
        };
        let h = build(&a, Some("x"), None, 8000, d.path()).unwrap().unwrap();
        assert_eq!(h.certificate_file, d.path().join("site.crt"));
        assert_eq!(h.certificate_key_file, d.path().join("site.key"));
        let a = HttpsArgs {
            ssl_certificate_file: Some("site.crt".into()),
            ..a
        };
        let e = build(&a, Some("x"), None, 8000, d.path()).unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn verify_client_locations() {
        let d = dir();
        let mut a = args(Some(8443));
        a.ssl_ca_certificate_file = Some("ca.pem".into());
        let h = build(&a, Some("x"), None, 8000, d.path()).unwrap().unwrap();
        assert_eq!(h.verify_client, vec!["/"]);
        a.ssl_verify_client = vec!["/a".into(), "/a/b".into(), "/z".into()];
        let h = build(&a, Some("x"), None, 8000, d.path()).unwrap().unwrap();
        assert_eq!(h.verify_client, vec!["/z", "/a/b", "/a"]);
        assert_eq!(h.ca_certificate_file, Some(d.path().join("ca.pem")));
    }

    #[test]
    fn no_https_port_means_none_unless_other_options() {
        let d = dir();
        assert_eq!(
            build(&HttpsArgs::default(), None, None, 8000, d.path()).unwrap(),
            None
        );
        let e = build(&args(None), None, None, 8000, d.path()).unwrap_err();
        assert!(
            e.to_string().contains("--https-port must be specified"),
            "{e}"
        );
        let a = HttpsArgs {
            ssl_environment: true,
            ..HttpsArgs::default()
        };
        let e = build(&a, None, None, 8000, d.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("--ssl-environment needs --https-port"),
            "{e}"
        );
    }

    #[test]
    fn refused_combinations() {
        let d = dir();
        let base = args(Some(8443));
        let cases: Vec<(HttpsArgs, Option<&str>, &str)> = vec![
            (base.clone(), None, "needs --server-name"),
            (args(Some(8000)), Some("x"), "same as --port"),
            (args(Some(70000)), Some("x"), "out of range"),
            (
                HttpsArgs {
                    ssl_certificate_key_file: None,
                    ..base.clone()
                },
                Some("x"),
                "needs a certificate",
            ),
            (
                HttpsArgs {
                    ssl_certificate_file: Some("missing.crt".into()),
                    ..base.clone()
                },
                Some("x"),
                "does not exist",
            ),
            (
                HttpsArgs {
                    ssl_verify_client: vec!["/x".into()],
                    ..base.clone()
                },
                Some("x"),
                "needs --ssl-ca-certificate-file",
            ),
            (
                HttpsArgs {
                    hsts_policy: Some("max-age=1".into()),
                    ..base.clone()
                },
                Some("x"),
                "give --https-only too",
            ),
            (
                HttpsArgs {
                    hsts_policy: Some("max-age=\"1\"".into()),
                    https_only: true,
                    ..base.clone()
                },
                Some("x"),
                "cannot be written",
            ),
        ];
        for (a, name, needle) in cases {
            let e = build(&a, name, None, 8000, d.path())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
    }

    /// A fixture with a certificate, key, CA and chain file, and the
    /// options giving them to an HTTPS listener on 8443 for example.com.
    fn https_fixture() -> (Fixture, Vec<String>) {
        let f = Fixture::new();
        for name in ["site.crt", "site.key", "ca.pem", "chain.pem"] {
            fs::write(f.path(name), "x").unwrap();
        }
        let base = f.path("site").to_string_lossy().into_owned();
        let args = [
            "app.wsgi",
            "--server-name",
            "example.com",
            "--https-port",
            "8443",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["--ssl-certificate".to_string(), base])
        .collect();
        (f, args)
    }

    fn render(
        f: &Fixture,
        args: &[String],
        extra: &[&str],
    ) -> (crate::model::ServerConfig, String) {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        let c = f.config(&all).unwrap();
        let t = crate::render::httpd_conf(&c).unwrap();
        (c, t)
    }

    fn lines(t: &str) -> Vec<&str> {
        t.lines().map(str::trim).collect()
    }

    fn has_block(t: &str, want: &[&str]) -> bool {
        lines(t).windows(want.len()).any(|w| w == want)
    }

    #[test]
    fn generated_https_virtual_hosts() {
        let (f, args) = https_fixture();
        let (c, t) = render(&f, &args, &["--ssl-environment"]);
        let crt = format!("SSLCertificateFile \"{}\"", f.path("site.crt").display());
        let key = format!("SSLCertificateKeyFile \"{}\"", f.path("site.key").display());
        let ssl = ["SSLEngine On", crt.as_str(), key.as_str()];
        let mut default_host = vec![
            "Listen 8443",
            "<VirtualHost _default_:8443>",
            "ServerName _wsgi_",
            "# Requests naming another host than --server-name (or an alias).",
            "<Location />",
            "Require all denied",
            "</Location>",
            "# The server's rewrite rules (the document root's files under the mount point).",
            "RewriteEngine On",
            "RewriteOptions Inherit",
        ];
        default_host.extend(ssl);
        default_host.push("</VirtualHost>");
        assert!(has_block(&t, &default_host), "{t}");
        let mut named = vec![
            "<VirtualHost *:8443>",
            "ServerName example.com",
            "# The server's rewrite rules (the document root's files under the mount point).",
            "RewriteEngine On",
            "RewriteOptions Inherit",
        ];
        named.extend(ssl);
        named.extend([
            "# --ssl-environment: HTTPS=on and SSL_* in the WSGI environ.",
            "SSLOptions +StdEnvVars",
            "</VirtualHost>",
        ]);
        assert!(has_block(&t, &named), "{t}");
        let ssl_module = format!(
            "LoadModule ssl_module \"{}\"",
            f.path("modules/mod_ssl.so").display()
        );
        for line in [
            ssl_module.as_str(),
            "Define MOD_WSGI_WITH_HTTPS",
            "Define MOD_WSGI_SSL_ENVIRONMENT",
        ] {
            assert!(lines(&t).contains(&line), "{line} in\n{t}");
        }
        for absent in [
            "SSLVerifyClient",
            "SSLCertificateChainFile",
            "Strict-Transport",
            "RewriteCond %{HTTPS}",
        ] {
            assert!(
                !lines(&t).iter().any(|l| l.starts_with(absent)),
                "{absent} in\n{t}"
            );
        }
        assert_eq!(c.https.unwrap().url, "https://example.com:8443/");
        let s = crate::setup::summary(
            &f.config(&args.iter().map(String::as_str).collect::<Vec<_>>())
                .unwrap(),
        );
        assert!(
            s.starts_with(
                "Server URL         : http://example.com:8000/\n\
                 Server URL (HTTPS) : https://example.com:8443/\n"
            ),
            "{s}"
        );
    }

    #[test]
    fn client_verification_chain_and_https_only() {
        let (f, args) = https_fixture();
        let ca = f.path("ca.pem").to_string_lossy().into_owned();
        let chain = f.path("chain.pem").to_string_lossy().into_owned();
        let (_, t) = render(
            &f,
            &args,
            &[
                "--ssl-ca-certificate-file",
                &ca,
                "--ssl-verify-client",
                "/secure",
                "--ssl-certificate-chain-file",
                &chain,
                "--https-only",
                "--hsts-policy",
                "max-age=31536000; includeSubDomains",
            ],
        );
        let ca_line = format!("SSLCACertificateFile \"{ca}\"");
        assert!(
            has_block(&t, &[ca_line.as_str(), "SSLVerifyClient none"]),
            "{t}"
        );
        assert_eq!(t.matches("SSLVerifyClient none").count(), 2, "{t}");
        assert!(
            lines(&t).contains(&format!("SSLCertificateChainFile \"{chain}\"").as_str()),
            "{t}"
        );
        assert!(
            has_block(
                &t,
                &[
                    "<Location \"/secure\">",
                    "SSLVerifyClient require",
                    "SSLVerifyDepth 1",
                    "</Location>",
                ]
            ),
            "{t}"
        );
        // --https-only: the HTTP virtual host redirects, HTTPS sends HSTS.
        assert!(
            has_block(
                &t,
                &[
                    "<VirtualHost *:8000>",
                    "ServerName example.com",
                    "# The server's rewrite rules (the document root's files under the mount point).",
                    "RewriteEngine On",
                    "RewriteOptions Inherit",
                    "# --https-only",
                    "RewriteEngine On",
                    "RewriteCond %{HTTPS} off",
                    "RewriteRule (.*) https://example.com:8443%{REQUEST_URI}",
                    "</VirtualHost>",
                ]
            ),
            "{t}"
        );
        assert!(
            lines(&t).contains(
                &"Header set Strict-Transport-Security \"max-age=31536000; includeSubDomains\""
            ),
            "{t}"
        );
        for d in [
            "MOD_WSGI_VERIFY_CLIENT",
            "MOD_WSGI_CERTIFICATE_CHAIN",
            "MOD_WSGI_HTTPS_ONLY",
            "MOD_WSGI_HSTS_POLICY",
        ] {
            assert!(lines(&t).contains(&format!("Define {d}").as_str()), "{d}");
        }
        // A CA alone requires client certificates for the whole site.
        let (_, t) = render(&f, &args, &["--ssl-ca-certificate-file", &ca]);
        assert!(lines(&t).contains(&"<Location \"/\">"), "{t}");
    }

    #[test]
    fn http2_protocols() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi", "--http2"]).unwrap();
        let t = crate::render::httpd_conf(&c).unwrap();
        let module = format!(
            "LoadModule http2_module \"{}\"",
            f.path("modules/mod_http2.so").display()
        );
        for line in [
            module.as_str(),
            "Protocols h2 h2c http/1.1",
            "Define MOD_WSGI_WITH_HTTP2",
        ] {
            assert!(lines(&t).contains(&line), "{line} in\n{t}");
        }
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let c = f
            .config(&["app.wsgi", "--http2", "--server-mpm", "prefork"])
            .unwrap();
        assert!(c.warnings[0].contains("prefork"), "{:?}", c.warnings);
        let t = crate::render::httpd_conf(&f.config(&["app.wsgi"]).unwrap()).unwrap();
        assert!(!t.contains("Protocols") && !t.contains("mod_http2") && !t.contains("mod_ssl"));
    }
}
