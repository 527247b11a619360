//! The model's rules: MPM sizing, request read timeouts, paths and
//! values as httpd.conf can hold them, defaults of the server root, the
//! listener, the locale and the Python home, the MPM choice.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::cli::{Mpm, ServerArgs};
use crate::model::HostFacts;

/// Process/thread directives of the chosen MPM.
///
/// For event/worker every field is used; for prefork `threads_per_child` and
/// `thread_limit` are 1 and the spare counts are servers, not threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MpmSizing {
    /// `StartServers`: the `--processes` children started up front.
    pub start_servers: u32,
    /// `ServerLimit`: most children that may exist.
    pub server_limit: u32,
    /// `ThreadsPerChild` (event/worker).
    pub threads_per_child: u32,
    /// `ThreadLimit` (event/worker), equal to `threads_per_child`.
    pub thread_limit: u32,
    /// `MaxRequestWorkers`: simultaneous requests.
    pub max_request_workers: u32,
    /// `MinSpareThreads` (event/worker) or `MinSpareServers` (prefork).
    pub min_spare: u32,
    /// `MaxSpareThreads` (event/worker) or `MaxSpareServers` (prefork).
    pub max_spare: u32,
}

impl MpmSizing {
    /// Children serving at once: `MaxRequestWorkers / ThreadsPerChild`
    /// (`ServerLimit` may be higher, with room for children finishing
    /// their requests after a graceful restart).
    pub fn active_children(&self) -> u32 {
        self.max_request_workers / self.threads_per_child.max(1)
    }

    /// Debug mode's sizing: one child (Apache's one process) of one thread.
    pub fn one() -> MpmSizing {
        MpmSizing {
            start_servers: 1,
            server_limit: 1,
            threads_per_child: 1,
            thread_limit: 1,
            max_request_workers: 1,
            min_spare: 1,
            max_spare: 1,
        }
    }
}

/// Default of `--max-clients` in daemon mode, as mod_wsgi-express's:
/// `10 + max(10, 1.5 * processes * threads)`. Apache's children only relay
/// there, and more of them than daemon threads hold queued requests without
/// the event MPM closing idle kept-alive connections for want of a worker.
pub fn daemon_max_clients(processes: u32, threads: u32) -> u32 {
    let n = u64::from(processes.saturating_mul(threads));
    u32::try_from(10 + (n * 3 / 2).max(10)).unwrap_or(u32::MAX)
}

/// Threads of each relaying Apache child in daemon mode, as
/// mod_wsgi-express: `max_clients / (max_clients / 20 + 1)`, or 10 for up
/// to 20 clients.
pub fn daemon_child_threads(max_clients: u32) -> u32 {
    if max_clients > 20 {
        max_clients / (max_clients / 20 + 1)
    } else {
        10
    }
}

/// Default of `--max-clients` in embedded mode: `processes * threads`, but
/// at least 10 (the floor mod_wsgi-express also applies).
pub fn default_max_clients(processes: u32, threads: u32) -> u32 {
    processes.saturating_mul(threads).max(10)
}

/// MPM directives for `processes` children of `threads` threads with room for
/// `max_clients` simultaneous requests (callers pass at least
/// `processes * threads`).
///
/// Event/worker: `StartServers = processes`, `ThreadsPerChild = ThreadLimit =
/// threads`, `ServerLimit = ceil(max_clients / threads)`, `MaxRequestWorkers =
/// ServerLimit * threads` (Apache rounds it to a multiple of ThreadsPerChild
/// anyway). `MinSpareThreads = 1` so Apache starts another child only when
/// every thread is busy, and `MaxSpareThreads = MaxRequestWorkers` (at least
/// `MinSpareThreads + ThreadsPerChild + 1`, the minimum Apache enforces) so
/// that idle children, each holding a loaded Python application, are never
/// reaped: the `processes` children live as long as Apache.
///
/// Prefork: each child serves one request, so `ServerLimit =
/// MaxRequestWorkers = max_clients` and `StartServers = processes`; the same
/// reasoning gives `MinSpareServers = 1`, `MaxSpareServers = max_clients`.
pub fn mpm_sizing(mpm: Mpm, processes: u32, threads: u32, max_clients: u32) -> MpmSizing {
    match mpm {
        Mpm::Event | Mpm::Worker => {
            let server_limit = max_clients.div_ceil(threads).max(processes);
            let max_request_workers = server_limit * threads;
            let min_spare = 1;
            MpmSizing {
                start_servers: processes,
                server_limit,
                threads_per_child: threads,
                thread_limit: threads,
                max_request_workers,
                min_spare,
                max_spare: max_request_workers.max(min_spare + threads + 1),
            }
        }
        Mpm::Prefork => {
            let limit = max_clients.max(processes);
            MpmSizing {
                start_servers: processes,
                server_limit: limit,
                threads_per_child: 1,
                thread_limit: 1,
                max_request_workers: limit,
                min_spare: 1,
                max_spare: limit,
            }
        }
    }
}

/// `RequestReadTimeout` argument from the mod_wsgi-express header/body
/// options, e.g. `header=15-30,MinRate=500 body=15,MinRate=500`; `None` when
/// both timeouts are 0 (the directive, and mod_reqtimeout, are then left out).
pub fn request_read_timeout(a: &ServerArgs) -> Option<String> {
    let part = |name: &str, timeout: u32, max: u32, rate: u32| {
        if timeout == 0 {
            return None;
        }
        let mut s = format!("{name}={timeout}");
        if max > 0 {
            s.push_str(&format!("-{max}"));
        }
        if rate > 0 {
            s.push_str(&format!(",MinRate={rate}"));
        }
        Some(s)
    };
    let parts: Vec<String> = [
        part(
            "header",
            a.header_timeout,
            a.header_max_timeout,
            a.header_min_rate,
        ),
        part("body", a.body_timeout, a.body_max_timeout, a.body_min_rate),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `p` made absolute against `cwd`, with `.` components removed (`..` is
/// kept, as `std::path::absolute` does).
pub fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// Checks that `p` can be written into httpd.conf inside double quotes:
/// UTF-8, no `"`, no control characters, no `${` (Apache would expand it).
pub fn conf_safe(what: &str, p: &Path) -> Result<()> {
    let s = p
        .to_str()
        .ok_or_else(|| anyhow!("{what} {} is not valid UTF-8", p.display()))?;
    conf_safe_str(what, s)
}

/// [`conf_safe`] for a string value.
pub fn conf_safe_str(what: &str, s: &str) -> Result<()> {
    if s.contains('"') || s.chars().any(char::is_control) || s.contains("${") {
        bail!("{what} {s:?} cannot be written into httpd.conf (it contains '\"', '${{' or a control character)");
    }
    Ok(())
}

/// A Python identifier (ASCII letters, digits, `_`; not starting with a digit).
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A dotted module name such as `pkg.sub.wsgi`.
pub fn is_module_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_identifier)
}

/// Default `--server-root`: `/tmp/rwsgi-<host or localhost>:<port>:<uid>`,
/// like mod_wsgi-express's `/tmp/mod_wsgi-localhost:8000:0`.
pub fn default_server_root(host: Option<&str>, port: u16, uid: u32) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/rwsgi-{}:{port}:{uid}",
        host.unwrap_or("localhost")
    ))
}

/// The `Listen` argument: `port` without a host, `host:port`, `[v6]:port`.
pub fn listen_arg(host: Option<&str>, port: u16) -> String {
    match host {
        None => port.to_string(),
        Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{port}"),
        Some(h) => format!("{h}:{port}"),
    }
}

/// Default locale: the current one unless unset, `C` or `POSIX`, in which
/// case `C.UTF-8` (mod_wsgi-express prefers `en_US.UTF-8` then `C.UTF-8`;
/// `C.UTF-8` is always present in Debian's glibc).
pub fn default_locale(env: Option<&str>) -> String {
    match env {
        Some(l) if !l.is_empty() && l != "C" && l != "POSIX" => l.to_string(),
        _ => "C.UTF-8".to_string(),
    }
}

/// The Python home and the directories the children must read in it.
///
/// Input: the chosen home and the `X.Y` the module was built for (if known).
/// Output: `[home, home/lib/pythonX.Y]`, plus the base installation's
/// `lib/pythonX.Y` when `home/pyvenv.cfg` names one (`home = <bin dir>`).
/// Errors: home not a directory; `lib/pythonX.Y` missing (a home of another
/// Python version would not work with the module).
pub fn python_dirs(home: &Path, version: Option<&str>) -> Result<Vec<PathBuf>> {
    if !home.is_dir() {
        bail!("Python home {} is not a directory", home.display());
    }
    let mut dirs = vec![home.to_path_buf()];
    let Some(version) = version else {
        return Ok(dirs);
    };
    let lib = home.join("lib").join(format!("python{version}"));
    if !lib.is_dir() {
        bail!(
            "Python home {} has no lib/python{version}: the module is built for Python {version} \
             (pass --python-home with a virtualenv or prefix of that version)",
            home.display()
        );
    }
    dirs.push(lib);
    if let Ok(cfg) = std::fs::read_to_string(home.join("pyvenv.cfg")) {
        let base_bin = cfg.lines().find_map(|line| {
            let (k, v) = line.split_once('=')?;
            (k.trim() == "home").then(|| PathBuf::from(v.trim()))
        });
        if let Some(base) = base_bin.as_deref().and_then(Path::parent) {
            let base_lib = base.join("lib").join(format!("python{version}"));
            if base_lib.is_dir() && !dirs.contains(&base_lib) {
                dirs.push(base_lib);
            }
        }
    }
    Ok(dirs)
}

/// Picks the MPM: the first of event, worker, prefork that is among the
/// preferences (all when none are given) and whose `mod_mpm_<name>.so`
/// exists in `modules_dir` — mod_wsgi-express's precedence rule.
pub fn choose_mpm(preferences: &[Mpm], modules_dir: &Path) -> Result<Mpm> {
    let wanted: Vec<Mpm> = if preferences.is_empty() {
        vec![Mpm::Event, Mpm::Worker, Mpm::Prefork]
    } else {
        let mut p = preferences.to_vec();
        p.sort();
        p.dedup();
        p
    };
    wanted
        .iter()
        .copied()
        .find(|m| {
            modules_dir
                .join(format!("mod_mpm_{}.so", m.name()))
                .is_file()
        })
        .ok_or_else(|| {
            let names: Vec<String> = wanted
                .iter()
                .map(|m| format!("mod_mpm_{}.so", m.name()))
                .collect();
            anyhow!(
                "no MPM module found in {}: looked for {}",
                modules_dir.display(),
                names.join(", ")
            )
        })
}

/// One `--url-alias URL PATH`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlAlias {
    /// URL path, starting with `/`.
    pub url: String,
    /// Absolute file or directory path.
    pub path: PathBuf,
    /// Whether `path` is a directory (granted with `<Directory>`) or a file
    /// (granted with `<Files>` inside its parent `<Directory>`).
    pub is_dir: bool,
    /// Parent directory of `path` (used for file grants).
    pub parent: PathBuf,
    /// File name of `path` (used for file grants).
    pub file_name: String,
}

/// The `--url-alias URL PATH` pairs (`pairs` as clap gives them: URL,
/// path, URL, path, ...), paths made absolute against `cwd`. Errors: an odd
/// count, a URL not starting with `/` or with white space, a path that
/// does not exist, a file name with glob characters, values httpd.conf
/// cannot hold.
pub fn url_aliases(pairs: &[String], cwd: &Path) -> Result<Vec<UrlAlias>> {
    if pairs.len() % 2 != 0 {
        bail!("--url-alias takes two values: URL-PATH and FILE-PATH|DIRECTORY-PATH");
    }
    let mut url_aliases = Vec::new();
    for pair in pairs.chunks(2) {
        let (url, path) = (&pair[0], absolute(cwd, Path::new(&pair[1])));
        if !url.starts_with('/') || url.contains(char::is_whitespace) {
            bail!("--url-alias URL {url:?} must start with '/' and contain no white space");
        }
        conf_safe_str("--url-alias URL", url)?;
        conf_safe("--url-alias path", &path)?;
        if !path.exists() {
            bail!("--url-alias path {} does not exist", path.display());
        }
        let is_dir = path.is_dir();
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_dir && file_name.contains(['*', '?', '[']) {
            bail!("--url-alias file name {file_name:?} must not contain '*', '?' or '['");
        }
        url_aliases.push(UrlAlias {
            url: url.clone(),
            parent: path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
            path,
            is_dir,
            file_name,
        });
    }
    Ok(url_aliases)
}

/// apachectl's shell: `--shell-executable` (made absolute against `cwd`;
/// it must be a file, and a path without white space or control
/// characters, as it is the script's `#!` line), else bash when the host
/// has it (mod_wsgi-express's default), else `/bin/sh`.
pub fn shell_executable(given: Option<&Path>, host: &HostFacts, cwd: &Path) -> Result<PathBuf> {
    let Some(p) = given else {
        return Ok(host
            .bash
            .clone()
            .unwrap_or_else(|| PathBuf::from("/bin/sh")));
    };
    let p = absolute(cwd, p);
    if !p.is_file() {
        bail!(
            "--shell-executable {} does not exist (or is not a file)",
            p.display()
        );
    }
    let s = p.to_string_lossy();
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--shell-executable {s:?} cannot be the #! line of apachectl (white space)");
    }
    Ok(p)
}

/// The server-level rewrite that gives the document root mod_wsgi-express's
/// meaning: a request under the mount point for a file of the document root
/// (or, with `--directory-index`, a directory) is served from it, and the
/// application answers everything else.
///
/// mod_wsgi-express mounts the application as the document root's fallback
/// (`RewriteCond %{REQUEST_FILENAME} !-f` ... `RewriteRule .* -
/// [H=wsgi-handler]` in `<Directory DOCROOT/MOUNT>`); rwsgi-express keeps
/// `WSGIScriptAlias` and maps the existing files to the document root
/// before it (mod_rewrite's server-level rules run first in
/// `translate_name`), so the application sees mod_wsgi's `SCRIPT_NAME` and
/// `PATH_INFO` for its mount point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaticRule {
    /// The `RewriteRule` pattern: the mount point and what is below it.
    pub pattern: String,
    /// The document root, as written before `%{REQUEST_URI}`.
    pub document_root: String,
    /// `--directory-index`: directories are served from it too.
    pub directories: bool,
    /// `--server-status`: `/server-status` is left to mod_status.
    pub skip_server_status: bool,
}

/// `s` with the characters special in a PCRE pattern escaped.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The [`StaticRule`] for a mount point (`/` or a path without a trailing
/// slash) and a document root.
pub fn document_root_rule(
    mount_point: &str,
    document_root: &Path,
    directories: bool,
    skip_server_status: bool,
) -> Option<StaticRule> {
    let pattern = if mount_point == "/" {
        "^/".to_string()
    } else {
        format!("^{}(/|$)", regex_escape(mount_point))
    };
    Some(StaticRule {
        pattern,
        document_root: document_root
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string(),
        directories,
        skip_server_status,
    })
}

/// The valid `LogLevel` values of Apache 2.4.
pub const LOG_LEVELS: &[&str] = &[
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug", "trace1", "trace2",
    "trace3", "trace4", "trace5", "trace6", "trace7", "trace8",
];

/// Apache modules (besides the MPM and mod_wsgi) the configuration loads, by
/// identifier and file name: those mod_wsgi-express always loads, so that
/// include files written for it find `SetEnv`, `Header`, `RewriteRule`,
/// `Order`/`Allow`, ... Compiled into Debian's apache2 and therefore never
/// loaded: core, so, watchdog, http, log_config, logio, version, unixd.
/// mod_reqtimeout, mod_ssl and mod_http2 are added when used.
pub const REQUIRED_MODULES: &[(&str, &str)] = &[
    ("access_compat_module", "mod_access_compat.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_host_module", "mod_authz_host.so"),
    ("mime_module", "mod_mime.so"),
    ("rewrite_module", "mod_rewrite.so"),
    ("alias_module", "mod_alias.so"),
    ("dir_module", "mod_dir.so"),
    ("env_module", "mod_env.so"),
    ("headers_module", "mod_headers.so"),
    ("filter_module", "mod_filter.so"),
];
