//! Proxying: `--proxy-mount-point` (and its hidden alias
//! `--proxy-url-alias`), `--proxy-virtual-host`, `--proxy-timeout`, and the
//! module's trusted-proxy settings `--trust-proxy-header` and
//! `--trust-proxy` (a clap group flattened into [`crate::cli::ServerArgs`]).
//!
//! As mod_wsgi-express 6.1.1 writes them (mod_proxy and mod_proxy_http):
//!
//! - a mount point is a `ProxyPass`/`ProxyPassReverse` pair (`upgrade=websocket`)
//!   and a `<Location>` that sends the backend `X-Forwarded-Port`,
//!   `X-Forwarded-Scheme` (for HTTPS) and `X-Forwarded-Prefix` (the mount
//!   point without a trailing `/`). A mount point given without a trailing
//!   `/` is proxied as `MOUNT/` to `URL/` (the URL's own trailing `/`
//!   dropped first) and the bare `MOUNT` redirects (302) to `MOUNT/`;
//!   one given with it is passed as given;
//! - a virtual host is a `<VirtualHost *:PORT>` with `ServerName HOSTNAME`
//!   proxying everything to the URL; without `--server-name` an empty
//!   `<VirtualHost _default_:PORT>` comes first, so other host names are
//!   still served by the main server;
//! - `ProxyTimeout` when `--proxy-timeout` is given and something is
//!   proxied;
//! - `WSGITrustedProxyHeaders` / `WSGITrustedProxies` (module directives).

use std::net::IpAddr;

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::model::conf_safe_str;

/// The proxy options (field comments are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct ProxyArgs {
    /// Proxy every request under URL-PATH to URL (a whole site or sub site, mod_proxy_http; repeatable).
    #[arg(long = "proxy-mount-point", alias = "proxy-url-alias", num_args = 2, value_names = ["URL-PATH", "URL"])]
    pub proxy_mount_point: Vec<String>,

    /// Proxy every request for the host name HOSTNAME to URL (a <VirtualHost>; repeatable).
    #[arg(long = "proxy-virtual-host", num_args = 2, value_names = ["HOSTNAME", "URL"])]
    pub proxy_virtual_host: Vec<String>,

    /// Seconds to wait for a proxied backend (ProxyTimeout) [default: --socket-timeout]; raise it for idle WebSocket clients.
    #[arg(long, value_name = "SECONDS")]
    pub proxy_timeout: Option<u32>,

    /// A header set by a trusted front end proxy describing the client's request, e.g. X-Forwarded-For, X-Forwarded-Proto (WSGITrustedProxyHeaders; repeatable).
    #[arg(long = "trust-proxy-header", value_name = "HEADER-NAME")]
    pub trust_proxy_header: Vec<String>,

    /// IP address or subnet of a trusted front end proxy (WSGITrustedProxies; repeatable) [default: any client, for the trusted headers].
    #[arg(long = "trust-proxy", value_name = "IP-ADDRESS/SUBNET")]
    pub trust_proxy: Vec<String>,
}

/// One proxied mount point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyMount {
    /// First argument of `ProxyPass` (ends with `/`).
    pub path: String,
    /// Second argument of `ProxyPass`.
    pub url: String,
    /// `X-Forwarded-Prefix`: the mount point without a trailing `/`.
    pub prefix: String,
    /// The mount point was given without a trailing `/`: requests for it
    /// exactly are redirected to `path`.
    pub redirect_bare: bool,
}

/// One proxied virtual host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyHost {
    /// `ServerName` of the virtual host.
    pub host: String,
    /// Where everything is proxied to.
    pub url: String,
}

/// The proxy settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Proxying {
    /// `--proxy-mount-point`s, in order.
    pub mounts: Vec<ProxyMount>,
    /// `--proxy-virtual-host`s, in order.
    pub hosts: Vec<ProxyHost>,
    /// `ProxyTimeout`, only when something is proxied.
    pub timeout: Option<u32>,
    /// `--trust-proxy-header`s.
    pub trusted_headers: Vec<String>,
    /// `--trust-proxy`s.
    pub trusted_proxies: Vec<String>,
}

impl Proxying {
    /// Whether mod_proxy is needed (something is proxied).
    pub fn any(&self) -> bool {
        !self.mounts.is_empty() || !self.hosts.is_empty()
    }

    /// The Apache modules needed, as (identifier, file name).
    pub fn modules(&self) -> Vec<(&'static str, &'static str)> {
        if self.any() {
            vec![
                ("proxy_module", "mod_proxy.so"),
                ("proxy_http_module", "mod_proxy_http.so"),
            ]
        } else {
            Vec::new()
        }
    }
}

/// A URL mod_proxy can proxy to: `http(s)://` or `ws(s)://` with a host,
/// or a `unix:/path|http://host/` socket URL; no white space.
fn check_url(option: &str, url: &str) -> Result<()> {
    let after_scheme = ["http://", "https://", "ws://", "wss://"]
        .iter()
        .find_map(|s| url.strip_prefix(s));
    let ok = match after_scheme {
        Some(rest) => !rest.is_empty() && !rest.starts_with('/'),
        None => url.starts_with("unix:/") && url.contains('|'),
    };
    if !ok || url.contains(char::is_whitespace) {
        bail!("{option} URL {url:?} is not an http://, https://, ws://, wss:// or unix:/PATH|http://HOST/ URL");
    }
    conf_safe_str(option, url)
}

/// An IP address or a network `ADDRESS/BITS`.
fn is_ip_or_subnet(s: &str) -> bool {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.map_or(true, |b| b.parse::<u8>().is_ok_and(|n| n <= max))
}

/// Validates the options; `socket_timeout` is not used (Apache's
/// `ProxyTimeout` falls back to `Timeout` itself). Errors (naming the
/// option and the value): odd value counts, a mount point not starting with
/// `/`, a URL mod_proxy cannot use, a host name with white space, a header
/// name that is not an HTTP token, a `--trust-proxy` that is not an IP
/// address or subnet, a `--proxy-timeout` of 0.
pub fn build(a: &ProxyArgs) -> Result<Proxying> {
    if a.proxy_mount_point.len() % 2 != 0 || a.proxy_virtual_host.len() % 2 != 0 {
        bail!("--proxy-mount-point and --proxy-virtual-host take two values each");
    }
    let mut mounts = Vec::new();
    for pair in a.proxy_mount_point.chunks(2) {
        let (mount, url) = (&pair[0], &pair[1]);
        if !mount.starts_with('/') || mount.contains(char::is_whitespace) {
            bail!("--proxy-mount-point URL-PATH {mount:?} must start with '/' and contain no white space");
        }
        conf_safe_str("--proxy-mount-point", mount)?;
        check_url("--proxy-mount-point", url)?;
        let prefix = mount.trim_end_matches('/').to_string();
        mounts.push(if mount.ends_with('/') {
            ProxyMount {
                path: mount.clone(),
                url: url.clone(),
                prefix,
                redirect_bare: false,
            }
        } else {
            ProxyMount {
                path: format!("{mount}/"),
                url: format!("{}/", url.trim_end_matches('/')),
                prefix,
                redirect_bare: true,
            }
        });
    }
    let mut hosts = Vec::new();
    for pair in a.proxy_virtual_host.chunks(2) {
        let (host, url) = (&pair[0], &pair[1]);
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '\'') {
            bail!("--proxy-virtual-host HOSTNAME {host:?} is not a host name");
        }
        conf_safe_str("--proxy-virtual-host", host)?;
        check_url("--proxy-virtual-host", url)?;
        hosts.push(ProxyHost {
            host: host.clone(),
            url: url.clone(),
        });
    }
    if a.proxy_timeout == Some(0) {
        bail!("--proxy-timeout 0 is not a timeout: give the seconds, at least 1");
    }
    for h in &a.trust_proxy_header {
        let token = !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !token {
            bail!("--trust-proxy-header {h:?} is not an HTTP header name (e.g. X-Forwarded-For)");
        }
    }
    for p in &a.trust_proxy {
        if !is_ip_or_subnet(p) {
            bail!("--trust-proxy {p:?} is not an IP address or subnet (e.g. 10.0.0.1, 10.0.0.0/8, ::1)");
        }
    }
    let any = !mounts.is_empty() || !hosts.is_empty();
    Ok(Proxying {
        mounts,
        hosts,
        timeout: a.proxy_timeout.filter(|_| any),
        trusted_headers: a.trust_proxy_header.clone(),
        trusted_proxies: a.trust_proxy.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use crate::render;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    #[test]
    fn mount_points_and_virtual_hosts() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--port",
                "8123",
                "--proxy-mount-point",
                "/api",
                "http://127.0.0.1:9999/x/",
                "--proxy-url-alias",
                "/b/",
                "http://127.0.0.1:9998",
                "--proxy-virtual-host",
                "other.test",
                "http://127.0.0.1:9997/",
                "--proxy-timeout",
                "30",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        let m = f.path("modules");
        for line in [
            format!("LoadModule proxy_module \"{}/mod_proxy.so\"", m.display()),
            format!(
                "LoadModule proxy_http_module \"{}/mod_proxy_http.so\"",
                m.display()
            ),
            "ProxyTimeout 30".into(),
            // Without a trailing slash: MOUNT/ to URL/, the bare MOUNT redirected.
            "ProxyPass \"/api/\" \"http://127.0.0.1:9999/x/\" upgrade=websocket".into(),
            "ProxyPassReverse \"/api/\" \"http://127.0.0.1:9999/x/\"".into(),
            "<Location \"/api/\">".into(),
            "RequestHeader set X-Forwarded-Prefix /api".into(),
            "<LocationMatch \"^/api$\">".into(),
            "RewriteRule .* http://%{HTTP_HOST}%{REQUEST_URI}/ [R=302,L]".into(),
            // With it: as given.
            "ProxyPass \"/b/\" \"http://127.0.0.1:9998\" upgrade=websocket".into(),
            "RequestHeader set X-Forwarded-Prefix /b".into(),
            "RequestHeader set X-Forwarded-Port %{SERVER_PORT}e".into(),
            "RequestHeader set X-Forwarded-Scheme %{URL_SCHEME}e env=URL_SCHEME".into(),
            // The virtual host, after an empty default one.
            "<VirtualHost _default_:8123>".into(),
            "<VirtualHost *:8123>".into(),
            "ServerName other.test".into(),
            "ProxyPass / \"http://127.0.0.1:9997/\" upgrade=websocket".into(),
            "RequestHeader set X-Forwarded-Port 8123".into(),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        assert_eq!(t.matches("<LocationMatch").count(), 1, "{t}");
        assert!(
            t.find("<VirtualHost _default_:8123>").unwrap()
                < t.find("ServerName other.test").unwrap()
        );
        // Before the application's mount, so proxied URLs never reach it.
        assert!(t.find("ProxyPass \"/api/\"").unwrap() < t.find("WSGIScriptAlias").unwrap());
        assert!(has_line(&t, "Define MOD_WSGI_WITH_PROXY"));
    }

    #[test]
    fn the_whole_site_can_be_proxied() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--proxy-mount-point",
                "/",
                "http://127.0.0.1:9/",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(has_line(
            &t,
            "ProxyPass \"/\" \"http://127.0.0.1:9/\" upgrade=websocket"
        ));
        // No empty X-Forwarded-Prefix (Apache would refuse the line).
        assert!(!t.contains("X-Forwarded-Prefix"), "{t}");
        assert!(!t.contains("<LocationMatch"), "{t}");
    }

    #[test]
    fn nothing_proxied_means_no_proxy_modules() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi", "--proxy-timeout", "30"]).unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            !t.contains("proxy_module") && !t.contains("ProxyTimeout"),
            "{t}"
        );
        assert!(!t.contains("<VirtualHost"), "{t}");
    }

    #[test]
    fn proxy_vhosts_with_server_name_keep_its_default_host() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--server-name",
                "site.test",
                "--proxy-virtual-host",
                "other.test",
                "http://127.0.0.1:9997/",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert_eq!(t.matches("<VirtualHost _default_:8000>").count(), 1, "{t}");
        assert!(t.find("ServerName _wsgi_").unwrap() < t.find("ServerName other.test").unwrap());
    }

    #[test]
    fn trusted_proxies_are_module_directives() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--trust-proxy-header",
                "X-Forwarded-For",
                "--trust-proxy-header",
                "X-Forwarded-Proto",
                "--trust-proxy",
                "10.0.0.0/8",
                "--trust-proxy",
                "::1",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        for line in [
            "WSGITrustedProxyHeaders X-Forwarded-For X-Forwarded-Proto",
            "WSGITrustedProxies 10.0.0.0/8 ::1",
            "Define MOD_WSGI_WITH_PROXY_HEADERS",
            "Define MOD_WSGI_WITH_TRUSTED_PROXIES",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        assert!(!render::strip_wsgi(&t).contains("WSGITrusted"));
    }

    #[test]
    fn bad_values_are_refused() {
        let f = Fixture::new();
        for (args, needle) in [
            (
                &["--proxy-mount-point", "api", "http://h/"][..],
                "must start with '/'",
            ),
            (
                &["--proxy-mount-point", "/api", "ftp://h/"],
                "is not an http://",
            ),
            (
                &["--proxy-mount-point", "/api", "http://"],
                "is not an http://",
            ),
            (
                &["--proxy-virtual-host", "a b", "http://h/"],
                "is not a host name",
            ),
            (&["--proxy-timeout", "0"], "--proxy-timeout 0"),
            (&["--trust-proxy-header", "X:Y"], "not an HTTP header name"),
            (
                &["--trust-proxy", "10.0.0.0/33"],
                "not an IP address or subnet",
            ),
            (
                &["--trust-proxy", "proxy.local"],
                "not an IP address or subnet",
            ),
        ] {
            let e = f
                .config(&[&["app.wsgi"][..], args].concat())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        assert!(is_ip_or_subnet("127.0.0.1") && is_ip_or_subnet("fd00::/8"));
    }
}
