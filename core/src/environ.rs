//! The CGI variables of the WSGI environ (PEP 3333 §environ Variables, RFC 3875
//! §4.1), built the way Apache's `ap_add_common_vars`/`ap_add_cgi_vars` and
//! mod_wsgi build them, from a neutral [`RequestFacts`].
//!
//! Values are raw bytes; the module turns them into Python `str` by latin-1
//! decoding, as PEP 3333 requires for native strings. Keys of fixed variables
//! are [`CgiKey`]s, so the module can keep one interned Python string per key.

use crate::proxy::Rewrite;

/// Fixed (non-header) CGI variable names, in the order they are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum CgiKey {
    ContentType,
    ContentLength,
    ServerSignature,
    ServerSoftware,
    ServerName,
    ServerAddr,
    ServerPort,
    RemoteHost,
    RemoteAddr,
    RemotePort,
    DocumentRoot,
    RequestScheme,
    ContextPrefix,
    ContextDocumentRoot,
    ServerAdmin,
    ScriptFilename,
    RemoteUser,
    AuthType,
    Https,
    GatewayInterface,
    ServerProtocol,
    RequestMethod,
    QueryString,
    RequestUri,
    ScriptName,
    PathInfo,
    HttpAuthorization,
}

impl CgiKey {
    /// Every key, indexed by `key as usize`.
    pub const ALL: [CgiKey; 27] = [
        CgiKey::ContentType,
        CgiKey::ContentLength,
        CgiKey::ServerSignature,
        CgiKey::ServerSoftware,
        CgiKey::ServerName,
        CgiKey::ServerAddr,
        CgiKey::ServerPort,
        CgiKey::RemoteHost,
        CgiKey::RemoteAddr,
        CgiKey::RemotePort,
        CgiKey::DocumentRoot,
        CgiKey::RequestScheme,
        CgiKey::ContextPrefix,
        CgiKey::ContextDocumentRoot,
        CgiKey::ServerAdmin,
        CgiKey::ScriptFilename,
        CgiKey::RemoteUser,
        CgiKey::AuthType,
        CgiKey::Https,
        CgiKey::GatewayInterface,
        CgiKey::ServerProtocol,
        CgiKey::RequestMethod,
        CgiKey::QueryString,
        CgiKey::RequestUri,
        CgiKey::ScriptName,
        CgiKey::PathInfo,
        CgiKey::HttpAuthorization,
    ];

    /// The keys [`build_cgi_environ`] sets on every request, whatever the
    /// request (the others depend on headers, authentication or TLS).
    pub const ALWAYS_SET: &'static [CgiKey] = &[
        CgiKey::ServerSignature,
        CgiKey::ServerName,
        CgiKey::ServerAddr,
        CgiKey::ServerPort,
        CgiKey::RemoteAddr,
        CgiKey::RemotePort,
        CgiKey::DocumentRoot,
        CgiKey::RequestScheme,
        CgiKey::ContextPrefix,
        CgiKey::ContextDocumentRoot,
        CgiKey::ServerAdmin,
        CgiKey::ScriptFilename,
        CgiKey::GatewayInterface,
        CgiKey::ServerProtocol,
        CgiKey::RequestMethod,
        CgiKey::QueryString,
        CgiKey::RequestUri,
        CgiKey::ScriptName,
        CgiKey::PathInfo,
    ];

    /// The environ key, e.g. `"REQUEST_METHOD"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgiKey::ContentType => "CONTENT_TYPE",
            CgiKey::ContentLength => "CONTENT_LENGTH",
            CgiKey::ServerSignature => "SERVER_SIGNATURE",
            CgiKey::ServerSoftware => "SERVER_SOFTWARE",
            CgiKey::ServerName => "SERVER_NAME",
            CgiKey::ServerAddr => "SERVER_ADDR",
            CgiKey::ServerPort => "SERVER_PORT",
            CgiKey::RemoteHost => "REMOTE_HOST",
            CgiKey::RemoteAddr => "REMOTE_ADDR",
            CgiKey::RemotePort => "REMOTE_PORT",
            CgiKey::DocumentRoot => "DOCUMENT_ROOT",
            CgiKey::RequestScheme => "REQUEST_SCHEME",
            CgiKey::ContextPrefix => "CONTEXT_PREFIX",
            CgiKey::ContextDocumentRoot => "CONTEXT_DOCUMENT_ROOT",
            CgiKey::ServerAdmin => "SERVER_ADMIN",
            CgiKey::ScriptFilename => "SCRIPT_FILENAME",
            CgiKey::RemoteUser => "REMOTE_USER",
            CgiKey::AuthType => "AUTH_TYPE",
            CgiKey::Https => "HTTPS",
            CgiKey::GatewayInterface => "GATEWAY_INTERFACE",
            CgiKey::ServerProtocol => "SERVER_PROTOCOL",
            CgiKey::RequestMethod => "REQUEST_METHOD",
            CgiKey::QueryString => "QUERY_STRING",
            CgiKey::RequestUri => "REQUEST_URI",
            CgiKey::ScriptName => "SCRIPT_NAME",
            CgiKey::PathInfo => "PATH_INFO",
            CgiKey::HttpAuthorization => "HTTP_AUTHORIZATION",
        }
    }
}

/// What the environ is built from: one request as Apache sees it. All byte
/// strings are exactly as Apache holds them (`request_rec` fields).
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    /// `r->method`, e.g. `b"GET"`.
    pub method: &'a [u8],
    /// `r->protocol`, e.g. `b"HTTP/1.1"`.
    pub protocol: &'a [u8],
    /// `r->unparsed_uri`: the request target as sent, with its query string.
    pub unparsed_uri: &'a [u8],
    /// `r->args`: the query string without `?`, if any.
    pub query: Option<&'a [u8]>,
    /// Decoded URI prefix the application is mounted at (`''` for `/`).
    pub script_name: &'a [u8],
    /// Decoded remainder of the URI after `script_name`.
    pub path_info: &'a [u8],
    /// `ap_get_server_name(r)`.
    pub server_name: &'a [u8],
    /// `ap_get_server_port(r)`.
    pub server_port: u16,
    /// `c->local_ip`.
    pub server_addr: &'a [u8],
    /// `ap_get_server_banner()`; `None` when the caller sets
    /// `SERVER_SOFTWARE` itself (it is the same for every request).
    pub server_software: Option<&'a [u8]>,
    /// `ap_psignature("", r)` (empty with `ServerSignature Off`).
    pub server_signature: &'a [u8],
    /// `r->server->server_admin`.
    pub server_admin: &'a [u8],
    /// `r->useragent_ip`.
    pub remote_addr: &'a [u8],
    /// Port of the client end of the connection.
    pub remote_port: u16,
    /// Resolved client host name, only when `HostnameLookups` gave one.
    pub remote_host: Option<&'a [u8]>,
    /// `r->user` after authentication.
    pub remote_user: Option<&'a [u8]>,
    /// `r->ap_auth_type`.
    pub auth_type: Option<&'a [u8]>,
    /// `ap_document_root(r)`.
    pub document_root: &'a [u8],
    /// `ap_context_prefix(r)`.
    pub context_prefix: &'a [u8],
    /// `ap_context_document_root(r)`.
    pub context_document_root: &'a [u8],
    /// `r->filename`: the script file.
    pub script_filename: &'a [u8],
    /// `ap_http_scheme(r)`: `b"http"` or `b"https"`.
    pub scheme: &'a [u8],
    /// Request headers (`r->headers_in`) in order.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// WSGIPassAuthorization: expose `Authorization` as `HTTP_AUTHORIZATION`.
    pub pass_authorization: bool,
    /// What trusted proxy headers change (`WSGITrustedProxyHeaders`).
    pub proxy: Option<&'a Rewrite>,
}

impl RequestFacts<'_> {
    /// Whether the request counts as HTTPS (`wsgi.url_scheme`, `HTTPS`):
    /// a trusted proxy's scheme header, else Apache's scheme.
    pub fn is_https(&self) -> bool {
        self.proxy
            .and_then(|p| p.https)
            .unwrap_or_else(|| self.scheme.eq_ignore_ascii_case(b"https"))
    }
}

/// Receives the variables [`build_cgi_environ`] produces.
pub trait EnvironSink {
    /// A fixed CGI variable.
    fn fixed(&mut self, key: CgiKey, value: &[u8]);
    /// A request header to expose as `HTTP_*`: `name` is the raw header name
    /// (already checked with [`is_env_header_name`]); its environ key is
    /// [`header_env_name`]`(name)`, which a sink may cache per name.
    fn header(&mut self, name: &[u8], value: &[u8]);
}

/// Whether a request header name can be exposed as `HTTP_*` (Apache 2.4's
/// `http2env` rule): non-empty, only ASCII letters, digits and `-`.
pub fn is_env_header_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
}

/// The `HTTP_*` environ key for a request header name, as Apache 2.4's
/// `http2env`: letters upper-cased, `-` turned into `_`; a name with any other
/// character (including `_`) gives `None` and the header is dropped, so that
/// `X_Foo` cannot masquerade as `X-Foo`.
pub fn header_env_name(name: &[u8]) -> Option<String> {
    let mut key = vec![0u8; 5 + name.len()];
    let n = header_env_name_into(name, &mut key)?.len();
    key.truncate(n);
    // Only ASCII letters, digits and '_' were written.
    String::from_utf8(key).ok()
}

/// [`header_env_name`] written into `buf` (no allocation): the key's bytes,
/// or `None` when the header is dropped or `buf` is shorter than
/// `5 + name.len()` bytes.
pub fn header_env_name_into<'b>(name: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let len = 5 + name.len();
    if name.is_empty() || buf.len() < len {
        return None;
    }
    buf[..5].copy_from_slice(b"HTTP_");
    for (out, &c) in buf[5..len].iter_mut().zip(name) {
        *out = match c {
            b'a'..=b'z' => c.to_ascii_uppercase(),
            b'A'..=b'Z' | b'0'..=b'9' => c,
            b'-' => b'_',
            _ => return None,
        };
    }
    Some(&buf[..len])
}

fn push_port(sink: &mut dyn EnvironSink, key: CgiKey, port: u16) {
    let mut buf = [0u8; 5];
    let mut n = port;
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    sink.fixed(key, &buf[i..]);
}

/// Emits the CGI variables of one request into `sink`, following
/// `ap_add_common_vars` and `ap_add_cgi_vars` of Apache 2.4 and mod_wsgi:
/// `HTTP_*` for headers (`Content-Type`/`Content-Length` as `CONTENT_TYPE`/
/// `CONTENT_LENGTH`; `Authorization` only with `pass_authorization`;
/// `Proxy-Authorization` and `Proxy` never), then server, client and
/// request variables. The process environment is never included.
pub fn build_cgi_environ(facts: &RequestFacts<'_>, sink: &mut dyn EnvironSink) {
    let mut host_seen = false;
    for &(name, value) in &facts.headers {
        let mut value = value;
        if let Some(p) = facts.proxy {
            // Trusted proxy headers: spoofable look-alikes removed, Host and
            // X-Forwarded-For as the proxy rules rewrote them.
            let Some(env) = header_env_name(name) else {
                continue;
            };
            if p.removes(&env) {
                continue;
            }
            let replaced = match env.as_str() {
                "HTTP_HOST" => {
                    host_seen = true;
                    p.host.as_deref()
                }
                "HTTP_X_FORWARDED_FOR" => p.forwarded_for.as_deref(),
                _ => None,
            };
            value = replaced.unwrap_or(value);
        }
        if name.eq_ignore_ascii_case(b"content-type") {
            sink.fixed(CgiKey::ContentType, value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            sink.fixed(CgiKey::ContentLength, value);
        } else if name.eq_ignore_ascii_case(b"authorization") {
            if facts.pass_authorization {
                sink.fixed(CgiKey::HttpAuthorization, value);
            }
        } else if name.eq_ignore_ascii_case(b"proxy-authorization")
            || name.eq_ignore_ascii_case(b"proxy")
        {
            // Never passed: credentials for a proxy, and "httpoxy".
        } else if is_env_header_name(name) {
            sink.header(name, value);
        }
    }
    static UNCHANGED: Rewrite = Rewrite {
        remote_addr: None,
        forwarded_for: None,
        host: None,
        server_name: None,
        server_port: None,
        script_name: None,
        https: None,
        removed: Vec::new(),
    };
    let proxy = facts.proxy.unwrap_or(&UNCHANGED);
    if let (Some(host), false) = (&proxy.host, host_seen) {
        sink.header(b"Host", host);
    }
    sink.fixed(CgiKey::ServerSignature, facts.server_signature);
    if let Some(software) = facts.server_software {
        sink.fixed(CgiKey::ServerSoftware, software);
    }
    sink.fixed(
        CgiKey::ServerName,
        proxy.server_name.as_deref().unwrap_or(facts.server_name),
    );
    sink.fixed(CgiKey::ServerAddr, facts.server_addr);
    match &proxy.server_port {
        Some(port) => sink.fixed(CgiKey::ServerPort, port),
        None => push_port(sink, CgiKey::ServerPort, facts.server_port),
    }
    if let Some(host) = facts.remote_host {
        sink.fixed(CgiKey::RemoteHost, host);
    }
    sink.fixed(
        CgiKey::RemoteAddr,
        proxy.remote_addr.as_deref().unwrap_or(facts.remote_addr),
    );
    push_port(sink, CgiKey::RemotePort, facts.remote_port);
    sink.fixed(CgiKey::DocumentRoot, facts.document_root);
    sink.fixed(CgiKey::RequestScheme, facts.scheme);
    sink.fixed(CgiKey::ContextPrefix, facts.context_prefix);
    sink.fixed(CgiKey::ContextDocumentRoot, facts.context_document_root);
    sink.fixed(CgiKey::ServerAdmin, facts.server_admin);
    sink.fixed(CgiKey::ScriptFilename, facts.script_filename);
    if let Some(user) = facts.remote_user {
        sink.fixed(CgiKey::RemoteUser, user);
    }
    if let Some(auth) = facts.auth_type {
        sink.fixed(CgiKey::AuthType, auth);
    }
    if facts.is_https() {
        sink.fixed(CgiKey::Https, b"on");
    }
    sink.fixed(CgiKey::GatewayInterface, b"CGI/1.1");
    sink.fixed(CgiKey::ServerProtocol, facts.protocol);
    sink.fixed(CgiKey::RequestMethod, facts.method);
    sink.fixed(CgiKey::QueryString, facts.query.unwrap_or(b""));
    sink.fixed(CgiKey::RequestUri, facts.unparsed_uri);
    sink.fixed(
        CgiKey::ScriptName,
        proxy.script_name.as_deref().unwrap_or(facts.script_name),
    );
    sink.fixed(CgiKey::PathInfo, facts.path_info);
}

/// Splits the decoded request path `uri` into `(SCRIPT_NAME, PATH_INFO)` given
/// the `path_info` Apache's directory walk left over (as `ap_find_path_info`):
/// SCRIPT_NAME is `uri` without the trailing `path_info`, with a trailing `/`
/// removed (mod_wsgi: a script mounted at `/` has SCRIPT_NAME `''`). When `uri`
/// does not end with `path_info` (URI had repeated slashes that the walk
/// collapsed), the longest prefix of `uri` whose slash-collapsed form matches is
/// used.
pub fn split_script_name<'a>(uri: &'a [u8], path_info: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    let script = if uri.ends_with(path_info) {
        &uri[..uri.len() - path_info.len()]
    } else {
        // Count the path segments in path_info and strip as many from uri.
        let segments = path_info.iter().filter(|&&b| b == b'/').count();
        let mut end = uri.len();
        let mut seen = 0;
        while end > 0 && seen < segments {
            end -= 1;
            if uri[end] == b'/' && (end == 0 || uri[end - 1] != b'/') {
                seen += 1;
            }
        }
        while end > 0 && uri[end - 1] == b'/' {
            end -= 1;
        }
        &uri[..end]
    };
    let script = script.strip_suffix(b"/").unwrap_or(script);
    (script, path_info)
}

/// `path` with every run of `/` made one `/`, as mod_wsgi gives
/// `SCRIPT_NAME` (a mount point such as `//app` reached with
/// `MergeSlashes Off`). Borrowed when there is nothing to collapse.
pub fn collapse_slashes(path: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !path.windows(2).any(|w| w == b"//") {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if !(b == b'/' && out.last() == Some(&b'/')) {
            out.push(b);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(String, Vec<u8>)>);
    impl EnvironSink for Collect {
        fn fixed(&mut self, key: CgiKey, value: &[u8]) {
            self.0.push((key.as_str().into(), value.to_vec()));
        }
        fn header(&mut self, name: &[u8], value: &[u8]) {
            let key = header_env_name(name).expect("core passes only valid names");
            self.0.push((key, value.to_vec()));
        }
    }
    impl Collect {
        fn get(&self, k: &str) -> Option<&[u8]> {
            self.0
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_slice())
        }
    }

    fn facts() -> RequestFacts<'static> {
        RequestFacts {
            method: b"POST",
            protocol: b"HTTP/1.1",
            unparsed_uri: b"/app/x%20y?a=1",
            query: Some(b"a=1"),
            script_name: b"/app",
            path_info: b"/x y",
            server_name: b"localhost",
            server_port: 8000,
            server_addr: b"127.0.0.1",
            server_software: Some(b"Apache"),
            remote_addr: b"127.0.0.1",
            remote_port: 54321,
            scheme: b"http",
            script_filename: b"/srv/app.wsgi",
            headers: vec![
                (b"Host", b"localhost:8000"),
                (b"Content-Type", b"text/plain"),
                (b"content-length", b"5"),
                (b"X-Forwarded-For", b"1.2.3.4"),
                (b"X_Forwarded_For", b"6.6.6.6"),
                (b"Authorization", b"Basic Zm9vOmJhcg=="),
                (b"Proxy-Authorization", b"Basic eA=="),
                (b"Proxy", b"http://evil"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn cgi_variables() {
        let mut c = Collect::default();
        build_cgi_environ(&facts(), &mut c);
        assert_eq!(c.get("REQUEST_METHOD"), Some(&b"POST"[..]));
        assert_eq!(c.get("SCRIPT_NAME"), Some(&b"/app"[..]));
        assert_eq!(c.get("PATH_INFO"), Some(&b"/x y"[..]));
        assert_eq!(c.get("QUERY_STRING"), Some(&b"a=1"[..]));
        assert_eq!(c.get("REQUEST_URI"), Some(&b"/app/x%20y?a=1"[..]));
        assert_eq!(c.get("SERVER_PORT"), Some(&b"8000"[..]));
        assert_eq!(c.get("REMOTE_PORT"), Some(&b"54321"[..]));
        assert_eq!(c.get("GATEWAY_INTERFACE"), Some(&b"CGI/1.1"[..]));
        assert_eq!(c.get("CONTENT_TYPE"), Some(&b"text/plain"[..]));
        assert_eq!(c.get("CONTENT_LENGTH"), Some(&b"5"[..]));
        assert_eq!(c.get("HTTP_HOST"), Some(&b"localhost:8000"[..]));
        assert_eq!(c.get("HTTP_X_FORWARDED_FOR"), Some(&b"1.2.3.4"[..]));
        assert_eq!(c.get("HTTP_CONTENT_TYPE"), None);
        assert_eq!(c.get("HTTP_AUTHORIZATION"), None);
        assert_eq!(c.get("HTTP_PROXY_AUTHORIZATION"), None);
        assert_eq!(c.get("HTTP_PROXY"), None);
        assert_eq!(c.get("HTTPS"), None);
        assert_eq!(c.get("REMOTE_USER"), None);
        assert_eq!(c.get("PATH"), None);
    }

    #[test]
    fn pass_authorization_and_https() {
        let mut f = facts();
        f.pass_authorization = true;
        f.scheme = b"https";
        let mut c = Collect::default();
        build_cgi_environ(&f, &mut c);
        assert_eq!(
            c.get("HTTP_AUTHORIZATION"),
            Some(&b"Basic Zm9vOmJhcg=="[..])
        );
        assert_eq!(c.get("HTTPS"), Some(&b"on"[..]));
        assert_eq!(c.get("QUERY_STRING"), Some(&b"a=1"[..]));
    }

    #[test]
    fn trusted_proxy_rewrite() {
        let rw = Rewrite {
            remote_addr: Some(b"203.0.113.5".to_vec()),
            forwarded_for: Some(b"203.0.113.5".to_vec()),
            host: Some(b"proxy.example.com".to_vec()),
            server_name: Some(b"front".to_vec()),
            server_port: Some(b"8443".to_vec()),
            script_name: Some(b"/mounted".to_vec()),
            https: Some(true),
            removed: vec!["HTTP_X_REAL_IP"],
        };
        let mut f = facts();
        f.headers.push((b"X-Real-IP", b"6.6.6.6"));
        f.proxy = Some(&rw);
        assert!(f.is_https());
        let mut c = Collect::default();
        build_cgi_environ(&f, &mut c);
        assert_eq!(c.get("REMOTE_ADDR"), Some(&b"203.0.113.5"[..]));
        assert_eq!(c.get("HTTP_X_FORWARDED_FOR"), Some(&b"203.0.113.5"[..]));
        assert_eq!(c.get("HTTP_HOST"), Some(&b"proxy.example.com"[..]));
        assert_eq!(c.get("SERVER_NAME"), Some(&b"front"[..]));
        assert_eq!(c.get("SERVER_PORT"), Some(&b"8443"[..]));
        assert_eq!(c.get("SCRIPT_NAME"), Some(&b"/mounted"[..]));
        assert_eq!(c.get("HTTPS"), Some(&b"on"[..]));
        assert_eq!(c.get("REQUEST_SCHEME"), Some(&b"http"[..]), "Apache's own");
        assert_eq!(c.get("HTTP_X_REAL_IP"), None);
        // No Host header at all: the proxy's host is still HTTP_HOST.
        f.headers.retain(|(n, _)| *n != b"Host");
        let mut c = Collect::default();
        build_cgi_environ(&f, &mut c);
        assert_eq!(c.get("HTTP_HOST"), Some(&b"proxy.example.com"[..]));
        // A proxy that said http over TLS.
        let rw = Rewrite {
            https: Some(false),
            ..Default::default()
        };
        f.scheme = b"https";
        f.proxy = Some(&rw);
        let mut c = Collect::default();
        build_cgi_environ(&f, &mut c);
        assert!(!f.is_https());
        assert_eq!(c.get("HTTPS"), None);
    }

    #[test]
    fn missing_query_is_empty() {
        let mut f = facts();
        f.query = None;
        let mut c = Collect::default();
        build_cgi_environ(&f, &mut c);
        assert_eq!(c.get("QUERY_STRING"), Some(&b""[..]));
    }

    #[test]
    fn header_names() {
        assert_eq!(
            header_env_name(b"User-Agent").as_deref(),
            Some("HTTP_USER_AGENT")
        );
        assert_eq!(header_env_name(b"x-a1").as_deref(), Some("HTTP_X_A1"));
        assert_eq!(header_env_name(b"X_Foo"), None);
        assert_eq!(header_env_name(b"X.Foo"), None);
        assert_eq!(header_env_name(b""), None);
        let mut buf = [0u8; 16];
        assert_eq!(
            header_env_name_into(b"x-Ab-9", &mut buf),
            Some(&b"HTTP_X_AB_9"[..])
        );
        assert_eq!(header_env_name_into(b"X_Foo", &mut buf), None);
        // Too long for the buffer: None, and header_env_name still has it.
        assert_eq!(header_env_name_into(b"X-Twelve-Chars", &mut buf), None);
        assert_eq!(
            header_env_name(b"X-Twelve-Chars").as_deref(),
            Some("HTTP_X_TWELVE_CHARS")
        );
        assert!(is_env_header_name(b"X-Forwarded-For"));
        assert!(!is_env_header_name(b"X_Forwarded_For"));
        assert!(!is_env_header_name(b""));
    }

    #[test]
    fn always_set_keys_are_always_set() {
        let mut c = Collect::default();
        build_cgi_environ(&RequestFacts::default(), &mut c);
        for k in CgiKey::ALWAYS_SET {
            assert!(c.get(k.as_str()).is_some(), "{} not set", k.as_str());
        }
    }

    #[test]
    fn keys_table_is_consistent() {
        for (i, k) in CgiKey::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
    }

    #[test]
    fn slash_runs_collapse() {
        assert_eq!(&*collapse_slashes(b"//slashy"), b"/slashy");
        assert_eq!(&*collapse_slashes(b"/a///b//"), b"/a/b/");
        assert_eq!(&*collapse_slashes(b""), b"");
        assert!(matches!(
            collapse_slashes(b"/a/b"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn script_name_split() {
        assert_eq!(
            split_script_name(b"/app/x/y", b"/x/y"),
            (&b"/app"[..], &b"/x/y"[..])
        );
        assert_eq!(split_script_name(b"/app", b""), (&b"/app"[..], &b""[..]));
        assert_eq!(split_script_name(b"/", b"/"), (&b""[..], &b"/"[..]));
        assert_eq!(
            split_script_name(b"/foo", b"/foo"),
            (&b""[..], &b"/foo"[..])
        );
        assert_eq!(split_script_name(b"/app/", b""), (&b"/app"[..], &b""[..]));
        assert_eq!(
            split_script_name(b"/app//x", b"/x"),
            (&b"/app"[..], &b"/x"[..])
        );
        assert_eq!(
            split_script_name(b"//app//x//y", b"/x/y"),
            (&b"//app"[..], &b"/x/y"[..])
        );
    }
}
