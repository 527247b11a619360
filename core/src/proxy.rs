//! Trusted proxy headers (mod_wsgi's `WSGITrustedProxyHeaders` and
//! `WSGITrustedProxies`): which `X-Forwarded-*` style request headers of a
//! front-end proxy rewrite the CGI variables of a request, and which
//! spoofable look-alikes are removed from the environ.
//!
//! mod_wsgi 6's rules, category by category: a header listed in
//! `WSGITrustedProxyHeaders` is applied only when the peer is trusted (no
//! `WSGITrustedProxies` list, or `REMOTE_ADDR` in it); once any header of a
//! category is listed, every other header of that category (and the listed
//! one too, when the peer is not trusted or the header was not applied) is
//! removed from the environ, so a client cannot slip a synonym past the
//! proxy. Headers of categories nobody listed pass through as ordinary
//! `HTTP_*` variables.

use crate::directives::DirectiveError;
use std::net::{IpAddr, Ipv4Addr};

/// What a trusted proxy header rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// `REMOTE_ADDR` (X-Forwarded-For, X-Client-IP, X-Real-IP).
    Client,
    /// `HTTP_HOST` (X-Forwarded-Host, X-Host).
    Host,
    /// `SERVER_NAME` (X-Forwarded-Server).
    Server,
    /// `SERVER_PORT` (X-Forwarded-Port).
    Port,
    /// `SCRIPT_NAME` and `mod_wsgi.mount_point` (X-Script-Name,
    /// X-Forwarded-Script-Name).
    ScriptName,
    /// `wsgi.url_scheme` (X-Forwarded-Proto, X-Forwarded-Scheme, X-Scheme:
    /// `http`/`https`; X-Forwarded-HTTPS, X-Forwarded-SSL, X-HTTPS:
    /// `On`/`Off`, `true`/`false`, `1`/`0`).
    Scheme,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Apply {
    ForwardedFor,
    ClientIp,
    Host,
    Server,
    Port,
    ScriptName,
    SchemeName,
    SchemeFlag,
}

/// The headers mod_wsgi 6 knows, by environ name.
const REGISTRY: &[(&str, Category, Apply)] = &[
    (
        "HTTP_X_FORWARDED_FOR",
        Category::Client,
        Apply::ForwardedFor,
    ),
    ("HTTP_X_CLIENT_IP", Category::Client, Apply::ClientIp),
    ("HTTP_X_REAL_IP", Category::Client, Apply::ClientIp),
    ("HTTP_X_FORWARDED_HOST", Category::Host, Apply::Host),
    ("HTTP_X_HOST", Category::Host, Apply::Host),
    ("HTTP_X_FORWARDED_SERVER", Category::Server, Apply::Server),
    ("HTTP_X_FORWARDED_PORT", Category::Port, Apply::Port),
    (
        "HTTP_X_SCRIPT_NAME",
        Category::ScriptName,
        Apply::ScriptName,
    ),
    (
        "HTTP_X_FORWARDED_SCRIPT_NAME",
        Category::ScriptName,
        Apply::ScriptName,
    ),
    (
        "HTTP_X_FORWARDED_PROTO",
        Category::Scheme,
        Apply::SchemeName,
    ),
    (
        "HTTP_X_FORWARDED_SCHEME",
        Category::Scheme,
        Apply::SchemeName,
    ),
    ("HTTP_X_SCHEME", Category::Scheme, Apply::SchemeName),
    (
        "HTTP_X_FORWARDED_HTTPS",
        Category::Scheme,
        Apply::SchemeFlag,
    ),
    ("HTTP_X_FORWARDED_SSL", Category::Scheme, Apply::SchemeFlag),
    ("HTTP_X_HTTPS", Category::Scheme, Apply::SchemeFlag),
];

/// The environ name of a header as mod_wsgi spells it in
/// `WSGITrustedProxyHeaders` (`X-Forwarded-For` → `HTTP_X_FORWARDED_FOR`):
/// letters upper-cased, anything not alphanumeric becomes `_`.
pub fn env_name(header: &str) -> String {
    let mut s = String::from("HTTP_");
    for c in header.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_uppercase());
        } else {
            s.push('_');
        }
    }
    s
}

/// The header names mod_wsgi rewrites from (for messages), e.g.
/// `X-Forwarded-For`.
pub fn known_headers() -> Vec<String> {
    REGISTRY
        .iter()
        .map(|(n, _, _)| {
            n.trim_start_matches("HTTP_")
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    match c.next() {
                        Some(f) => f.to_string() + &c.as_str().to_ascii_lowercase(),
                        None => String::new(),
                    }
                })
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// `WSGITrustedProxyHeaders header ...`: the environ names of the headers,
/// in order, and the given names mod_wsgi has no rule for (accepted, as
/// mod_wsgi does, but without effect: the caller warns about them).
pub fn parse_trusted_headers(
    words: &[String],
) -> Result<(Vec<String>, Vec<String>), DirectiveError> {
    if words.is_empty() {
        return Err(DirectiveError {
            directive: "WSGITrustedProxyHeaders",
            message: format!(
                "expected one or more header names, e.g. X-Forwarded-For (known: {})",
                known_headers().join(", ")
            ),
        });
    }
    let mut names = Vec::new();
    let mut unknown = Vec::new();
    for w in words {
        let n = env_name(w);
        if !REGISTRY.iter().any(|(k, _, _)| *k == n) {
            unknown.push(w.clone());
        }
        names.push(n);
    }
    Ok((names, unknown))
}

/// An IP network of `WSGITrustedProxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses what Apache's `apr_ipsubnet_create` accepts: an address, an
    /// address with a prefix length (`10.0.0.0/8`, `fd00::/8`), an IPv4
    /// address with a dotted netmask (`10.0.0.0/255.0.0.0`), or the leading
    /// octets of an IPv4 network (`10.1` = `10.1.0.0/16`).
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let bad = |why: &str| format!("{s:?} is not an IP address or network ({why})");
        let (ip, mask) = match s.split_once('/') {
            Some((ip, mask)) => (ip, Some(mask)),
            None => (s, None),
        };
        let (addr, full) = if let Ok(a) = ip.parse::<IpAddr>() {
            let bits = if a.is_ipv4() { 32 } else { 128 };
            (a, bits)
        } else if !ip.contains(':') && !ip.is_empty() {
            // Leading octets of an IPv4 network.
            let parts: Vec<&str> = ip.split('.').collect();
            if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
                return Err(bad("malformed address"));
            }
            let mut octets = [0u8; 4];
            for (i, p) in parts.iter().enumerate() {
                octets[i] = p.parse().map_err(|_| bad("malformed address"))?;
            }
            (IpAddr::V4(Ipv4Addr::from(octets)), 8 * parts.len() as u8)
        } else {
            return Err(bad("malformed address"));
        };
        let prefix = match mask {
            None => full,
            Some(m) => {
                if let Ok(n) = m.parse::<u8>() {
                    let max = if addr.is_ipv4() { 32 } else { 128 };
                    if n > max || m.starts_with('+') {
                        return Err(bad(&format!("prefix length above {max}")));
                    }
                    n
                } else if let (Ok(mask), true) = (m.parse::<Ipv4Addr>(), addr.is_ipv4()) {
                    let bits = u32::from(mask);
                    if bits.leading_ones() + bits.trailing_zeros() != 32 {
                        return Err(bad("netmask is not contiguous"));
                    }
                    bits.leading_ones() as u8
                } else {
                    return Err(bad("bad prefix length or netmask"));
                }
            }
        };
        if mask.is_some() && full < (if addr.is_ipv4() { 32 } else { 128 }) {
            return Err(bad("a partial address takes no mask"));
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` lies in this network (an IPv4-mapped IPv6 address
    /// counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(net) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(net) & mask == u128::from(a) & mask
            }
            (IpAddr::V6(net), IpAddr::V4(a)) if net.to_ipv4_mapped().is_some() => IpNet {
                addr: IpAddr::V4(net.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
                prefix: self.prefix.saturating_sub(96),
            }
            .contains(IpAddr::V4(a)),
            _ => false,
        }
    }
}

/// `WSGITrustedProxies ip|network ...`.
pub fn parse_trusted_proxies(words: &[String]) -> Result<Vec<IpNet>, DirectiveError> {
    let d = "WSGITrustedProxies";
    if words.is_empty() {
        return Err(DirectiveError {
            directive: d,
            message: "expected one or more IP addresses or networks, e.g. 127.0.0.1 10.0.0.0/8"
                .into(),
        });
    }
    words
        .iter()
        .map(|w| {
            IpNet::parse(w).map_err(|m| DirectiveError {
                directive: d,
                message: m,
            })
        })
        .collect()
}

/// How the environ of one request changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// New `REMOTE_ADDR`.
    pub remote_addr: Option<Vec<u8>>,
    /// New `HTTP_X_FORWARDED_FOR` (the chain from the chosen client on).
    pub forwarded_for: Option<Vec<u8>>,
    /// New `HTTP_HOST`.
    pub host: Option<Vec<u8>>,
    /// New `SERVER_NAME`.
    pub server_name: Option<Vec<u8>>,
    /// New `SERVER_PORT` (as the proxy sent it).
    pub server_port: Option<Vec<u8>>,
    /// New `SCRIPT_NAME`, also `mod_wsgi.mount_point`.
    pub script_name: Option<Vec<u8>>,
    /// Whether the request counts as HTTPS, when a trusted scheme header
    /// decided it (`None`: Apache's own view stands).
    pub https: Option<bool>,
    /// Environ names (`HTTP_*`) removed from the environ.
    pub removed: Vec<&'static str>,
}

impl Rewrite {
    /// Whether the environ of `HTTP_*` name `name` is removed.
    pub fn removes(&self, name: &str) -> bool {
        self.removed.contains(&name)
    }
}

fn is_trusted(proxies: &[IpNet], ip: &str) -> Option<bool> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    Some(proxies.iter().any(|n| n.contains(ip)))
}

/// Non-empty, trimmed items of a comma-separated list (RFC 9110 §5.6.1:
/// empty elements are ignored).
fn list_items(value: &[u8]) -> Vec<&[u8]> {
    value
        .split(|&b| b == b',')
        .map(|s| s.trim_ascii())
        .filter(|s| !s.is_empty())
        .collect()
}

fn forwarded_for(proxies: Option<&[IpNet]>, value: &[u8], out: &mut Rewrite) {
    let items = list_items(value);
    let Some(proxies) = proxies else {
        // No list of trusted proxies: the first entry is the client;
        // X-Forwarded-For itself is left alone.
        if let Some(first) = items.first() {
            out.remote_addr = Some(first.to_vec());
        }
        return;
    };
    if items.is_empty() {
        return;
    }
    // From the right, skip the trusted proxies; the entry before the
    // leftmost trusted one is the client.
    let mut first = None;
    for i in (0..items.len()).rev() {
        match is_trusted(proxies, &String::from_utf8_lossy(items[i])) {
            Some(true) => first = Some(i),
            _ => break,
        }
    }
    let from = match first {
        Some(f) => f.saturating_sub(1),
        None => items.len() - 1,
    };
    out.remote_addr = Some(items[from].to_vec());
    out.forwarded_for = Some(items[from..].join(&b", "[..]));
}

fn flag(value: &[u8]) -> Option<bool> {
    let v = String::from_utf8_lossy(value);
    if ["on", "true", "1"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["off", "false", "0"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
    {
        Some(false)
    } else {
        None
    }
}

/// Applies `WSGITrustedProxyHeaders` (`headers`, environ names in order)
/// and `WSGITrustedProxies` (`proxies`; `None`: every peer is trusted) to a
/// request from `remote_addr` whose request headers are looked up by
/// environ name (`header("HTTP_X_FORWARDED_FOR")`).
pub fn rewrite<'h>(
    headers: &[String],
    proxies: Option<&[IpNet]>,
    remote_addr: &str,
    header: impl Fn(&str) -> Option<&'h [u8]>,
) -> Rewrite {
    let mut out = Rewrite::default();
    if headers.is_empty() {
        return out;
    }
    let trusted_peer = match proxies {
        None => true,
        Some(p) => is_trusted(p, remote_addr) == Some(true),
    };
    // Per category: listed at all, and which header was applied last.
    let mut listed: Vec<Category> = Vec::new();
    let mut kept: Vec<(Category, &'static str)> = Vec::new();
    for name in headers {
        let Some(&(env, category, apply)) = REGISTRY.iter().find(|(n, _, _)| n == name) else {
            continue;
        };
        if !listed.contains(&category) {
            listed.push(category);
        }
        if !trusted_peer {
            continue;
        }
        let Some(value) = header(env) else { continue };
        match apply {
            Apply::ForwardedFor => forwarded_for(proxies, value, &mut out),
            Apply::ClientIp => out.remote_addr = Some(value.to_vec()),
            Apply::Host => out.host = Some(value.to_vec()),
            Apply::Server => out.server_name = Some(value.to_vec()),
            Apply::Port => out.server_port = Some(value.to_vec()),
            Apply::ScriptName => out.script_name = Some(value.to_vec()),
            Apply::SchemeName => {
                let v = String::from_utf8_lossy(value);
                if v.eq_ignore_ascii_case("https") {
                    out.https = Some(true);
                } else if v.eq_ignore_ascii_case("http") {
                    out.https = Some(false);
                }
            }
            Apply::SchemeFlag => {
                if let Some(on) = flag(value) {
                    out.https = Some(on);
                }
            }
        }
        kept.retain(|(c, _)| *c != category);
        kept.push((category, env));
    }
    for &(env, category, _) in REGISTRY {
        if listed.contains(&category) && !kept.contains(&(category, env)) {
            out.removed.push(env);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    type Cfg = (Vec<String>, Option<Vec<IpNet>>);

    fn cfg(headers: &str, proxies: Option<&str>) -> Cfg {
        (
            parse_trusted_headers(&words(headers)).unwrap().0,
            proxies.map(|p| parse_trusted_proxies(&words(p)).unwrap()),
        )
    }

    fn run(c: &Cfg, peer: &str, hdrs: &[(&str, &str)]) -> Rewrite {
        let owned: Vec<(String, Vec<u8>)> = hdrs
            .iter()
            .map(|(k, v)| (env_name(k), v.as_bytes().to_vec()))
            .collect();
        rewrite(&c.0, c.1.as_deref(), peer, |n| {
            owned
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_slice())
        })
    }

    const BASIC: &str = "X-Forwarded-For X-Forwarded-Host X-Forwarded-Proto X-Forwarded-SSL \
                         X-Forwarded-HTTPS X-Script-Name X-Forwarded-Script-Name";
    const TRUSTED: &str = "X-Forwarded-For X-Forwarded-Host X-Forwarded-Proto X-Forwarded-SSL \
                           X-Script-Name X-Forwarded-Script-Name X-Forwarded-Server X-Forwarded-Port";

    #[test]
    fn header_names() {
        assert_eq!(env_name("X-Forwarded-For"), "HTTP_X_FORWARDED_FOR");
        assert_eq!(env_name("x-real-ip"), "HTTP_X_REAL_IP");
        let (names, unknown) = parse_trusted_headers(&words("X-Real-IP X-Bogus")).unwrap();
        assert_eq!(names, ["HTTP_X_REAL_IP", "HTTP_X_BOGUS"]);
        assert_eq!(unknown, ["X-Bogus"]);
        assert!(parse_trusted_headers(&[]).is_err());
        assert!(known_headers().contains(&"X-Forwarded-For".to_string()));
    }

    #[test]
    fn networks() {
        let n = |s| IpNet::parse(s).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(n("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!n("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(n("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(n("10.0.0.0/255.0.0.0").contains(ip("10.1.1.1")));
        assert!(n("10.1").contains(ip("10.1.9.9")));
        assert!(!n("10.1").contains(ip("10.2.0.0")));
        assert!(n("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(n("::1").contains(ip("::1")));
        assert!(n("fd00::/8").contains(ip("fd12::3")));
        assert!(!n("fd00::/8").contains(ip("fe80::1")));
        assert!(n("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
        assert!(!n("::1").contains(ip("127.0.0.1")));
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "1.2.3.4.5",
            "10./8",
            "10.0.0.0/255.0.255.0",
            "::1/129",
            "10.1/16",
            "1.2.3.256",
            "fd00::/+8",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
        let e = parse_trusted_proxies(&words("127.0.0.1 nope")).unwrap_err();
        assert!(
            e.to_string().starts_with("WSGITrustedProxies: \"nope\""),
            "{e}"
        );
        assert!(parse_trusted_proxies(&[]).is_err());
    }

    #[test]
    fn no_trusted_proxies_list() {
        let c = cfg(BASIC, None);
        let r = run(
            &c,
            "127.0.0.1",
            &[("X-Forwarded-For", "203.0.113.5, 10.0.0.1")],
        );
        assert_eq!(r.remote_addr.as_deref(), Some(&b"203.0.113.5"[..]));
        assert_eq!(r.forwarded_for, None, "left intact");
        assert!(!r.removes("HTTP_X_FORWARDED_FOR"));
        assert!(r.removes("HTTP_X_CLIENT_IP") && r.removes("HTTP_X_REAL_IP"));
        for (v, want) in [
            (", 203.0.113.5", "203.0.113.5"),
            (", , 203.0.113.5, 198.51.100.1", "203.0.113.5"),
            ("203.0.113.5,", "203.0.113.5"),
        ] {
            let r = run(&c, "127.0.0.1", &[("X-Forwarded-For", v)]);
            assert_eq!(r.remote_addr.as_deref(), Some(want.as_bytes()), "{v}");
        }
        let r = run(
            &c,
            "127.0.0.1",
            &[("X-Forwarded-Host", "proxy.example.com")],
        );
        assert_eq!(r.host.as_deref(), Some(&b"proxy.example.com"[..]));
        assert!(r.removes("HTTP_X_HOST") && !r.removes("HTTP_X_FORWARDED_HOST"));
        let r = run(&c, "127.0.0.1", &[("X-Script-Name", "/app")]);
        assert_eq!(r.script_name.as_deref(), Some(&b"/app"[..]));
        let r = run(&c, "127.0.0.1", &[]);
        assert_eq!(r.remote_addr, None);
        // Listed but absent: the whole category is removed.
        assert!(r.removes("HTTP_X_FORWARDED_FOR") && r.removes("HTTP_X_FORWARDED_PROTO"));
        assert!(!r.removes("HTTP_X_FORWARDED_SERVER"), "category not listed");
    }

    #[test]
    fn schemes() {
        let c = cfg(BASIC, None);
        for (h, v, want) in [
            ("X-Forwarded-Proto", "https", Some(true)),
            ("X-Forwarded-Proto", "HTTP", Some(false)),
            ("X-Forwarded-Proto", "gopher", None),
            ("X-Forwarded-SSL", "On", Some(true)),
            ("X-Forwarded-SSL", "true", Some(true)),
            ("X-Forwarded-SSL", "1", Some(true)),
            ("X-Forwarded-SSL", "Off", Some(false)),
            ("X-Forwarded-HTTPS", "false", Some(false)),
            ("X-Forwarded-HTTPS", "0", Some(false)),
            ("X-Forwarded-HTTPS", "maybe", None),
        ] {
            assert_eq!(run(&c, "127.0.0.1", &[(h, v)]).https, want, "{h}: {v}");
        }
        // Not listed: X-Scheme has no effect but is removed (same category).
        let r = run(&c, "127.0.0.1", &[("X-Scheme", "https")]);
        assert_eq!(r.https, None);
        assert!(r.removes("HTTP_X_SCHEME"));
    }

    #[test]
    fn trusted_proxy_chain() {
        let c = cfg(TRUSTED, Some("127.0.0.1 ::1"));
        let xff = |v: &str| run(&c, "127.0.0.1", &[("X-Forwarded-For", v)]);
        let r = xff("203.0.113.5, 127.0.0.1");
        assert_eq!(r.remote_addr.as_deref(), Some(&b"203.0.113.5"[..]));
        assert_eq!(
            r.forwarded_for.as_deref(),
            Some(&b"203.0.113.5, 127.0.0.1"[..])
        );
        assert_eq!(
            xff("127.0.0.1, 127.0.0.1").remote_addr.as_deref(),
            Some(&b"127.0.0.1"[..])
        );
        let r = xff("198.51.100.9, 203.0.113.5");
        assert_eq!(r.remote_addr.as_deref(), Some(&b"203.0.113.5"[..]));
        assert_eq!(r.forwarded_for.as_deref(), Some(&b"203.0.113.5"[..]));
        let r = xff("1.1.1.1, 203.0.113.5, 127.0.0.1, ::1");
        assert_eq!(
            r.forwarded_for.as_deref(),
            Some(&b"203.0.113.5, 127.0.0.1, ::1"[..])
        );
        for v in [
            "203.0.113.5, , 127.0.0.1",
            "203.0.113.5,,127.0.0.1",
            "203.0.113.5, 127.0.0.1,",
            ", 203.0.113.5, 127.0.0.1",
            "203.0.113.5,  ,  , 127.0.0.1",
        ] {
            assert_eq!(
                xff(v).remote_addr.as_deref(),
                Some(&b"203.0.113.5"[..]),
                "{v}"
            );
        }
        // A non-address stops the walk.
        assert_eq!(
            xff("1.2.3.4, junk, 127.0.0.1").remote_addr.as_deref(),
            Some(&b"junk"[..])
        );
        let r = run(
            &c,
            "::1",
            &[
                ("X-Forwarded-Server", "o.example.com"),
                ("X-Forwarded-Port", "8443"),
            ],
        );
        assert_eq!(r.server_name.as_deref(), Some(&b"o.example.com"[..]));
        assert_eq!(r.server_port.as_deref(), Some(&b"8443"[..]));
    }

    #[test]
    fn untrusted_peer_gets_nothing_and_loses_the_headers() {
        let c = cfg(TRUSTED, Some("10.99.99.99"));
        let r = run(
            &c,
            "127.0.0.1",
            &[
                ("X-Forwarded-For", "203.0.113.5"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "spoof"),
                ("X-Script-Name", "/spoof"),
            ],
        );
        assert_eq!(r.remote_addr, None);
        assert_eq!(r.https, None);
        assert_eq!(r.host, None);
        assert_eq!(r.script_name, None);
        for n in [
            "HTTP_X_FORWARDED_FOR",
            "HTTP_X_REAL_IP",
            "HTTP_X_FORWARDED_PROTO",
            "HTTP_X_FORWARDED_HOST",
            "HTTP_X_SCRIPT_NAME",
            "HTTP_X_FORWARDED_SERVER",
            "HTTP_X_FORWARDED_PORT",
            "HTTP_X_HTTPS",
        ] {
            assert!(r.removes(n), "{n}");
        }
        // A peer that is not an address is not trusted either.
        assert_eq!(
            run(&c, "", &[("X-Forwarded-For", "1.2.3.4")]).remote_addr,
            None
        );
    }

    #[test]
    fn partial_and_last_wins() {
        let c = cfg("X-Forwarded-For", None);
        let r = run(
            &c,
            "127.0.0.1",
            &[
                ("X-Forwarded-For", "203.0.113.5"),
                ("X-Forwarded-Host", "p"),
            ],
        );
        assert_eq!(r.remote_addr.as_deref(), Some(&b"203.0.113.5"[..]));
        assert_eq!(r.host, None);
        assert!(!r.removes("HTTP_X_FORWARDED_HOST"));
        // Two headers of a category: the last applied wins and is the one kept.
        let c = cfg("X-Forwarded-For X-Real-IP", None);
        let r = run(
            &c,
            "127.0.0.1",
            &[("X-Forwarded-For", "1.1.1.1"), ("X-Real-IP", "2.2.2.2")],
        );
        assert_eq!(r.remote_addr.as_deref(), Some(&b"2.2.2.2"[..]));
        assert!(r.removes("HTTP_X_FORWARDED_FOR") && !r.removes("HTTP_X_REAL_IP"));
        assert_eq!(rewrite(&[], None, "1.2.3.4", |_| None), Rewrite::default());
    }
}
