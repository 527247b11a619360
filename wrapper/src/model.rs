//! The server model: command line options plus host facts, validated, with
//! every default resolved. Rendering ([`crate::render`]) and writing
//! ([`crate::setup`]) only read it.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::access::RunAs;
use crate::build_info::BuildInfo;
use crate::cli::{ApplicationType, Mpm, ServerArgs};
use crate::compat::{self, Define, Environment};
use crate::daemon_opts::{self, Daemon};
use crate::https::{self, Https};
use crate::module;
use crate::vhost::{self, VirtualHosts};

/// Facts about the machine and process that the model depends on, gathered
/// once by [`HostFacts::current`] so tests can substitute their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Effective uid: 0 means Apache's children must be given `--user`/`--group`.
    pub euid: u32,
    /// Effective gid (Apache's `Group` when not run as root).
    pub egid: u32,
    /// Real uid, part of the default server root name (as in mod_wsgi-express).
    pub uid: u32,
    /// Current directory, against which relative paths are resolved.
    pub cwd: PathBuf,
    /// `$VIRTUAL_ENV`, the first default of `--python-home`.
    pub virtual_env: Option<PathBuf>,
    /// `$RWSGI_MODULE`, the module path override.
    pub module_override: Option<PathBuf>,
    /// Directory of the running executable, searched for the module.
    pub exe_dir: Option<PathBuf>,
    /// The current locale: first non-empty of `$LC_ALL`, `$LC_CTYPE`, `$LANG`.
    pub locale_env: Option<String>,
    /// bash (`/bin/bash`, else `/usr/bin/bash`): apachectl's shell, whose
    /// `exec -a` names the Apache processes (`--process-name`).
    pub bash: Option<PathBuf>,
}

impl HostFacts {
    /// Reads the facts of the running process. Errors only if the current
    /// directory cannot be determined.
    pub fn current() -> Result<Self> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Ok(HostFacts {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            uid: nix::unistd::getuid().as_raw(),
            cwd: std::env::current_dir().context("cannot determine the current directory")?,
            virtual_env: non_empty("VIRTUAL_ENV").map(PathBuf::from),
            module_override: non_empty("RWSGI_MODULE").map(PathBuf::from),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
            locale_env: ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .find_map(|n| non_empty(n))
                .map(|v| v.to_string_lossy().into_owned()),
            bash: ["/bin/bash", "/usr/bin/bash"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
        })
    }
}

/// The WSGI application being served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Application {
    /// A WSGI script file (absolute path).
    Script {
        /// The script file.
        path: PathBuf,
    },
    /// A Python module, loaded through a generated `handler.wsgi`.
    Module {
        /// Dotted module name, e.g. `pkg.wsgi`.
        name: String,
        /// Attribute of the module that is the WSGI callable.
        callable: String,
        /// The generated script, `<server root>/handler.wsgi`.
        handler: PathBuf,
    },
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

/// An Apache module the configuration loads from the modules directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApacheModule {
    /// Module identifier, e.g. `mime_module`.
    pub id: String,
    /// Absolute path of the `.so`.
    pub path: PathBuf,
}

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

/// Default of `--max-clients`: `processes * threads`, but at least 10 (the
/// floor mod_wsgi-express also applies).
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

/// Everything needed to write a server root and run Apache on it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Directory holding httpd.conf, apachectl, logs, pid file.
    pub server_root: PathBuf,
    /// `<server root>/httpd.conf`.
    pub httpd_conf: PathBuf,
    /// `<server root>/apachectl`.
    pub apachectl: PathBuf,
    /// `--pid-file`, default `<server root>/httpd.pid`.
    pub pid_file: PathBuf,
    /// `--httpd-executable`.
    pub httpd_executable: PathBuf,
    /// `--modules-directory`.
    pub modules_directory: PathBuf,
    /// MPM then [`REQUIRED_MODULES`] (then mod_reqtimeout if used), in load order.
    pub apache_modules: Vec<ApacheModule>,
    /// The mod_rwsgi shared object (see [`module::find_module`]).
    pub module_path: PathBuf,
    /// `WSGIPythonHome`.
    pub python_home: PathBuf,
    /// Directories of the Python installation the children must be able to
    /// read: the home, its `lib/pythonX.Y`, and for a virtualenv the base
    /// installation's `lib/pythonX.Y`.
    pub python_dirs: Vec<PathBuf>,
    /// `WSGIPythonPath`: working directory then `--python-path`s, `:`-joined.
    pub python_path: String,
    /// `--host`, `None` for all interfaces.
    pub host: Option<String>,
    /// `--port`.
    pub port: u16,
    /// Argument of `Listen`: `port`, `host:port` or `[v6]:port`.
    pub listen: String,
    /// `ServerName`: `--server-name`, else `localhost`.
    pub server_name: String,
    /// With `--server-name`: the name-based `<VirtualHost>`s ([`crate::vhost`]).
    pub vhosts: Option<VirtualHosts>,
    /// With `--https-port`: the HTTPS listener ([`crate::https`]).
    pub https: Option<Https>,
    /// `--http2`: mod_http2 with `Protocols h2 h2c http/1.1`.
    pub http2: bool,
    /// `--setenv`, `--passenv`, envvars and rewrite rules ([`crate::compat`]).
    pub env: Environment,
    /// The `Define`s at the top of httpd.conf ([`compat::defines`]).
    pub defines: Vec<Define>,
    /// URL to print for the user.
    pub url: String,
    /// `--mount-point`, without a trailing slash (except `/`).
    pub mount_point: String,
    /// The application.
    pub app: Application,
    /// What `WSGIScriptAlias` points at: the script, or the generated handler.
    pub script: PathBuf,
    /// Directory of [`Self::script`] (granted in a `<Directory>`).
    pub script_dir: PathBuf,
    /// File name of [`Self::script`] (granted in a `<Files>`).
    pub script_name: String,
    /// `callable-object=` of `WSGIScriptAlias` (`application` for modules,
    /// whose handler re-exports the callable under that name).
    pub callable_object: String,
    /// `application-group=` of `WSGIScriptAlias`.
    pub application_group: String,
    /// Daemon mode (the default; `None` with `--embedded-mode`): the
    /// `WSGIDaemonProcess` group the application runs in, named
    /// `localhost:PORT` as mod_wsgi-express names it (or `--process-group`),
    /// with `--processes` processes of `--threads` threads and the options
    /// of [`crate::daemon_opts`].
    pub daemon: Option<Daemon>,
    /// `--ignore-activity` URL paths (each a `<Location>` with
    /// `WSGIIgnoreActivity On`).
    pub ignore_activity: Vec<String>,
    /// `WSGISocketPrefix` (`--socket-prefix DIR`: `DIR/wsgi`).
    pub socket_prefix: Option<PathBuf>,
    /// argv\[0\] of Apache (`--process-name`), given with bash's `exec -a`
    /// by apachectl and by `start-server`; `None` when bash is missing.
    pub process_name: Option<String>,
    /// apachectl's interpreter: bash when found, else `/bin/sh`.
    pub shell: PathBuf,
    /// `--working-directory`.
    pub working_directory: PathBuf,
    /// `--python-path`s, absolute.
    pub python_paths: Vec<PathBuf>,
    /// `--url-alias`es, in order.
    pub url_aliases: Vec<UrlAlias>,
    /// `DocumentRoot`.
    pub document_root: PathBuf,
    /// `--directory-index`.
    pub directory_index: Option<String>,
    /// `--processes`.
    pub processes: u32,
    /// `--threads`.
    pub threads: u32,
    /// Effective `--max-clients`.
    pub max_clients: u32,
    /// The MPM loaded.
    pub mpm: Mpm,
    /// Its directives.
    pub sizing: MpmSizing,
    /// `--chunked-request`.
    pub chunked_request: bool,
    /// `--disable-reloading`.
    pub disable_reloading: bool,
    /// `--map-head-to-get`, normalised to `On`/`Off`/`Auto`.
    pub map_head_to_get: Option<String>,
    /// `--include-file`s, absolute.
    pub include_files: Vec<PathBuf>,
    /// `LogLevel`.
    pub log_level: String,
    /// `--log-to-terminal` (after `--log-directory` overrides it).
    pub log_to_terminal: bool,
    /// `ErrorLog` target: a file or `/dev/stderr`.
    pub error_log: PathBuf,
    /// `CustomLog` target when `--access-log`: a file or `/dev/stdout`.
    pub access_log: Option<PathBuf>,
    /// LogFormat nickname used by `CustomLog`: common, combined or custom.
    pub access_log_nickname: String,
    /// The custom LogFormat string, `"` escaped, when the nickname is custom.
    pub access_log_format: Option<String>,
    /// User/group of Apache's children when running as root.
    pub run_as: Option<RunAs>,
    /// `User` and `Group` of httpd.conf: [`Self::run_as`]'s names, else
    /// (not root, where Apache keeps the current user) `#euid`/`#egid`,
    /// written as mod_wsgi-express always writes them, so that Apache (and
    /// the module) know the user its children run as.
    pub apache_user: (String, String),
    /// `Timeout`.
    pub socket_timeout: u32,
    /// `KeepAliveTimeout`; 0 means `KeepAlive Off`.
    pub keep_alive_timeout: u32,
    /// `ListenBacklog`.
    pub server_backlog: u32,
    /// `LimitRequestBody`.
    pub limit_request_body: u64,
    /// `RequestReadTimeout` argument, if any.
    pub request_read_timeout: Option<String>,
    /// LANG/LC_ALL exported by apachectl and `start-server`.
    pub locale: String,
    /// `TypesConfig`.
    pub mime_types: PathBuf,
    /// Non-fatal remarks for the user (printed on stderr).
    pub warnings: Vec<String>,
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

impl ServerConfig {
    /// Validates `a` and resolves every default.
    ///
    /// Inputs: the parsed options, the host facts and the build facts.
    /// Output: the model; it reads the filesystem (existence checks) but
    /// writes nothing. Errors (all with the offending value): APP and
    /// `--entry-point` both or neither given, port outside 1–65535,
    /// processes/threads of 0, mount point or alias URL not starting with `/`,
    /// script/alias/include/python-path missing, python home not a directory
    /// or of another Python version, unknown log level, missing Apache
    /// modules or MPM, module not found, running as root without
    /// `--user`/`--group` (or with user root), values that cannot be quoted in
    /// httpd.conf, python path entries containing `:`, daemon options the
    /// module would refuse ([`daemon_opts::build`]), an `--ignore-activity`
    /// that is not a URL path, a `--socket-prefix` that is not a directory,
    /// `--process-name` without bash.
    pub fn build(a: &ServerArgs, host: &HostFacts, build: &BuildInfo) -> Result<ServerConfig> {
        let mut warnings = Vec::new();
        let cwd = &host.cwd;

        // Entry point.
        let entry = match (&a.app, &a.entry_point) {
            (Some(_), Some(_)) => {
                bail!("give the application either as APP or with --entry-point, not both")
            }
            (Some(e), None) | (None, Some(e)) => e.clone(),
            (None, None) => bail!(
                "no WSGI application given: pass the WSGI script file (or, with \
                 --application-type module, the module name) as APP or with --entry-point"
            ),
        };

        // Listener.
        if !(1..=65535).contains(&a.port) {
            bail!("--port {} is out of range (1-65535)", a.port);
        }
        let port = a.port as u16;
        if let Some(h) = &a.host {
            if h.is_empty() || h.contains(char::is_whitespace) {
                bail!("--host {h:?} is not an IP address or host name");
            }
            conf_safe_str("--host", h)?;
        }
        let host_name = a.host.clone();
        let listen = listen_arg(host_name.as_deref(), port);
        let vhosts = vhost::build(&a.vhost)?;
        let server_name = a
            .vhost
            .server_name
            .clone()
            .unwrap_or_else(|| "localhost".to_string());
        let https = https::build(
            &a.https,
            a.vhost.server_name.as_deref(),
            host_name.as_deref(),
            port,
            cwd,
        )?;

        // Server root.
        let server_root = match &a.server_root {
            Some(r) => absolute(cwd, r),
            None => default_server_root(host_name.as_deref(), port, host.uid),
        };
        conf_safe("server root", &server_root)?;

        // Concurrency.
        if a.processes == 0 {
            bail!("--processes must be at least 1");
        }
        if a.threads == 0 {
            bail!("--threads must be at least 1");
        }
        let minimum = a.processes.saturating_mul(a.threads);
        let max_clients = match a.max_clients {
            None => default_max_clients(a.processes, a.threads),
            Some(0) => bail!("--max-clients must be at least 1"),
            Some(m) if m < minimum => {
                warnings.push(format!(
                    "--max-clients {m} is less than processes*threads; using {minimum}"
                ));
                minimum
            }
            Some(m) => m,
        };

        // Mount point.
        if !a.mount_point.starts_with('/') {
            bail!("--mount-point {:?} must start with '/'", a.mount_point);
        }
        if a.mount_point.contains(char::is_whitespace) {
            bail!(
                "--mount-point {:?} must not contain white space",
                a.mount_point
            );
        }
        conf_safe_str("--mount-point", &a.mount_point)?;
        let mount_point = if a.mount_point.len() > 1 {
            a.mount_point.trim_end_matches('/').to_string()
        } else {
            a.mount_point.clone()
        };
        let mount_point = if mount_point.is_empty() {
            "/".to_string()
        } else {
            mount_point
        };

        // Callable and group.
        if !is_identifier(&a.callable_object) {
            bail!(
                "--callable-object {:?} is not a Python identifier",
                a.callable_object
            );
        }
        if a.application_group.is_empty() || a.application_group.contains(char::is_whitespace) {
            bail!(
                "--application-group {:?} must be a non-empty name without white space",
                a.application_group
            );
        }
        conf_safe_str("--application-group", &a.application_group)?;

        // Application.
        let (app, script, default_workdir) = match a.application_type {
            ApplicationType::Script => {
                let path = absolute(cwd, Path::new(&entry));
                if !path.is_file() {
                    bail!(
                        "WSGI script file {} does not exist (or is not a file)",
                        path.display()
                    );
                }
                conf_safe("WSGI script", &path)?;
                let dir = path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("/"));
                (Application::Script { path: path.clone() }, path, dir)
            }
            ApplicationType::Module => {
                if !is_module_name(&entry) {
                    bail!(
                        "{entry:?} is not a dotted Python module name (--application-type module)"
                    );
                }
                let handler = server_root.join("handler.wsgi");
                (
                    Application::Module {
                        name: entry.clone(),
                        callable: a.callable_object.clone(),
                        handler: handler.clone(),
                    },
                    handler,
                    cwd.clone(),
                )
            }
        };
        let callable_object = match app {
            Application::Script { .. } => a.callable_object.clone(),
            Application::Module { .. } => "application".to_string(),
        };
        let script_dir = script
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let script_name = script
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if script_name.contains(['*', '?', '[']) {
            bail!("the WSGI script name {script_name:?} must not contain '*', '?' or '['");
        }

        // Python path.
        let working_directory = match &a.working_directory {
            Some(w) => absolute(cwd, w),
            None => default_workdir,
        };
        if !working_directory.is_dir() {
            bail!(
                "working directory {} is not a directory",
                working_directory.display()
            );
        }
        let mut python_paths = Vec::new();
        for p in &a.python_path {
            let p = absolute(cwd, p);
            if !p.exists() {
                bail!("--python-path {} does not exist", p.display());
            }
            python_paths.push(p);
        }
        let mut path_entries = Vec::new();
        for p in std::iter::once(&working_directory).chain(&python_paths) {
            conf_safe("Python path entry", p)?;
            let s = p.to_string_lossy().into_owned();
            if s.contains(':') {
                bail!("Python path entry {s} contains ':', which separates WSGIPythonPath entries");
            }
            if !path_entries.contains(&s) {
                path_entries.push(s);
            }
        }
        let python_path = path_entries.join(":");

        // Python home.
        let python_home = a
            .python_home
            .clone()
            .or_else(|| host.virtual_env.clone())
            .or_else(|| build.python_home.clone())
            .map(|h| absolute(cwd, &h))
            .ok_or_else(|| {
                anyhow!("no Python home known (the launcher was built without Python): pass --python-home")
            })?;
        conf_safe("Python home", &python_home)?;
        let python_dirs = python_dirs(&python_home, build.python_version.as_deref())?;

        // Static files.
        if a.url_alias.len() % 2 != 0 {
            bail!("--url-alias takes two values: URL-PATH and FILE-PATH|DIRECTORY-PATH");
        }
        let mut url_aliases = Vec::new();
        for pair in a.url_alias.chunks(2) {
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
        let document_root = match &a.document_root {
            Some(d) => absolute(cwd, d),
            None => server_root.join("htdocs"),
        };
        conf_safe("document root", &document_root)?;
        if let Some(index) = &a.directory_index {
            if index.is_empty() || index.contains(char::is_whitespace) {
                bail!("--directory-index {index:?} must be a file name");
            }
            conf_safe_str("--directory-index", index)?;
        }

        // Includes.
        let mut include_files = Vec::new();
        for f in &a.include_file {
            let f = absolute(cwd, f);
            if !f.is_file() {
                bail!("--include-file {} does not exist", f.display());
            }
            conf_safe("--include-file", &f)?;
            include_files.push(f);
        }

        // Logs.
        let log_level = a.log_level.to_ascii_lowercase();
        if !LOG_LEVELS.contains(&log_level.as_str()) {
            bail!(
                "--log-level {:?} is not one of {}",
                a.log_level,
                LOG_LEVELS.join(", ")
            );
        }
        let (log_dir, log_to_terminal) = match &a.log_directory {
            Some(d) => (absolute(cwd, d), false),
            None => (server_root.clone(), a.log_to_terminal),
        };
        for name in [&a.error_log_name, &a.access_log_name] {
            if name.is_empty() || name.contains('/') {
                bail!("log file name {name:?} must be a plain file name");
            }
        }
        let error_log = if log_to_terminal {
            PathBuf::from("/dev/stderr")
        } else {
            log_dir.join(&a.error_log_name)
        };
        conf_safe("error log", &error_log)?;
        let access_log = a.access_log.then(|| {
            if log_to_terminal {
                PathBuf::from("/dev/stdout")
            } else {
                log_dir.join(&a.access_log_name)
            }
        });
        if let Some(l) = &access_log {
            conf_safe("access log", l)?;
        }
        let (access_log_nickname, access_log_format) = match a.access_log_format.as_deref() {
            None | Some("common") => ("common".to_string(), None),
            Some("combined") => ("combined".to_string(), None),
            Some(f) => {
                if f.chars().any(char::is_control) {
                    bail!("--access-log-format must not contain control characters");
                }
                (
                    "custom".to_string(),
                    Some(f.replace('\\', "\\\\").replace('"', "\\\"")),
                )
            }
        };
        let pid_file = match &a.pid_file {
            Some(p) => absolute(cwd, p),
            None => server_root.join("httpd.pid"),
        };
        conf_safe("pid file", &pid_file)?;

        // Apache side.
        let httpd_executable = absolute(cwd, &a.httpd_executable);
        if !httpd_executable.is_file() {
            bail!(
                "Apache executable {} does not exist (use --httpd-executable)",
                httpd_executable.display()
            );
        }
        let modules_directory = absolute(cwd, &a.modules_directory);
        conf_safe("modules directory", &modules_directory)?;
        let mpm = choose_mpm(&a.server_mpm, &modules_directory)?;
        let mut apache_modules = vec![ApacheModule {
            id: format!("mpm_{}_module", mpm.name()),
            path: modules_directory.join(format!("mod_mpm_{}.so", mpm.name())),
        }];
        let request_read_timeout = request_read_timeout(a);
        let mut wanted: Vec<(&str, &str)> = REQUIRED_MODULES.to_vec();
        if request_read_timeout.is_some() {
            wanted.push(("reqtimeout_module", "mod_reqtimeout.so"));
        }
        if https.is_some() {
            wanted.push(("ssl_module", "mod_ssl.so"));
        }
        if a.https.http2 {
            if mpm == Mpm::Prefork {
                warnings.push(
                    "--http2: mod_http2 does not serve HTTP/2 under the prefork MPM (HTTP/1.1 only)"
                        .to_string(),
                );
            }
            wanted.push(("http2_module", "mod_http2.so"));
        }
        let mut missing = Vec::new();
        for (id, file) in wanted {
            let path = modules_directory.join(file);
            if !path.is_file() {
                missing.push(file);
            }
            apache_modules.push(ApacheModule {
                id: id.to_string(),
                path,
            });
        }
        if !missing.is_empty() {
            bail!(
                "Apache modules missing from {}: {} (use --modules-directory)",
                modules_directory.display(),
                missing.join(", ")
            );
        }
        let sizing = mpm_sizing(mpm, a.processes, a.threads, max_clients);
        let mime_types = absolute(cwd, &a.mime_types);
        if !mime_types.is_file() {
            bail!(
                "MIME types file {} does not exist (use --mime-types)",
                mime_types.display()
            );
        }
        conf_safe("MIME types file", &mime_types)?;
        let module_path = module::find_module(
            host.module_override.as_deref(),
            host.exe_dir.as_deref(),
            &modules_directory,
        )?;
        conf_safe("module", &module_path)?;

        // Users.
        let run_as = if host.euid == 0 {
            let (Some(user), Some(group)) = (&a.user, &a.group) else {
                bail!(
                    "running as root: --user and --group are required (Apache's children, \
                     and so the application, run as that user and group; e.g. --user nobody --group nogroup)"
                );
            };
            let r = RunAs::resolve(user, group)?;
            if r.uid == 0 {
                bail!("--user {user} is root: Apache refuses to run its children as root");
            }
            conf_safe_str("--user", user)?;
            conf_safe_str("--group", group)?;
            Some(r)
        } else {
            if a.user.is_some() || a.group.is_some() {
                warnings.push(
                    "--user/--group are ignored when not running as root (Apache's children keep the current user)"
                        .to_string(),
                );
            }
            None
        };

        let apache_user = match &run_as {
            Some(r) => (r.user.clone(), r.group.clone()),
            None => (format!("#{}", host.euid), format!("#{}", host.egid)),
        };

        let locale = match &a.locale {
            Some(l) => l.clone(),
            None => default_locale(host.locale_env.as_deref()),
        };
        if locale.is_empty() || locale.contains(|c: char| c.is_whitespace() || c == '\'') {
            bail!("--locale {locale:?} is not a locale name");
        }

        let map_head_to_get = match a.map_head_to_get.as_deref() {
            Some(v) => {
                Some(crate::cli::on_off_auto(v).map_err(|e| anyhow!("--map-head-to-get: {e}"))?)
            }
            None => None,
        };

        // Daemon mode.
        let daemon = daemon_opts::build(a, port, &server_root, cwd, &mut warnings)?;
        let sizing = match daemon {
            Some(_) => daemon_opts::worker_fractions(sizing, mpm, &a.daemon),
            None => sizing,
        };
        let ignore_activity = daemon_opts::ignore_activity(&a.daemon.ignore_activity)?;
        let socket_prefix = daemon_opts::socket_prefix(a.daemon.socket_prefix.as_deref(), cwd)?;
        let process_name = match (&a.process_name, &host.bash) {
            (Some(n), _) if n.is_empty() || n.chars().any(char::is_control) => {
                bail!("--process-name {n:?} must be a non-empty name without control characters")
            }
            (Some(_), None) => {
                bail!("--process-name needs bash (apachectl names Apache with its exec -a)")
            }
            (Some(n), Some(_)) => Some(n.clone()),
            (None, Some(_)) => Some(format!(
                "{} (rwsgi-express)",
                httpd_executable
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )),
            (None, None) => None,
        };
        let shell = host
            .bash
            .clone()
            .unwrap_or_else(|| PathBuf::from("/bin/sh"));

        let url_host = match host_name.as_deref() {
            _ if a.vhost.server_name.is_some() => server_name.clone(),
            None | Some("0.0.0.0") | Some("::") | Some("[::]") => server_name.clone(),
            Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            Some(h) => h.to_string(),
        };
        let url = if port == 80 {
            format!("http://{url_host}{mount_point}")
        } else {
            format!("http://{url_host}:{port}{mount_point}")
        };
        let url = if url.ends_with('/') {
            url
        } else {
            format!("{url}/")
        };

        let env = compat::build(&a.env, &server_root, cwd)?;
        let mpms_present: Vec<Mpm> = [Mpm::Event, Mpm::Worker, Mpm::Prefork]
            .into_iter()
            .filter(|m| {
                (a.server_mpm.is_empty() || a.server_mpm.contains(m))
                    && modules_directory
                        .join(format!("mod_mpm_{}.so", m.name()))
                        .is_file()
            })
            .collect();

        let mut config = ServerConfig {
            httpd_conf: server_root.join("httpd.conf"),
            apachectl: server_root.join("apachectl"),
            server_root,
            pid_file,
            httpd_executable,
            modules_directory,
            apache_modules,
            module_path,
            python_home,
            python_dirs,
            python_path,
            host: host_name,
            port,
            listen,
            server_name,
            vhosts,
            https,
            http2: a.https.http2,
            env,
            defines: Vec::new(),
            url,
            mount_point,
            app,
            script,
            script_dir,
            script_name,
            callable_object,
            application_group: a.application_group.clone(),
            daemon,
            ignore_activity,
            socket_prefix,
            process_name,
            shell,
            working_directory,
            python_paths,
            url_aliases,
            document_root,
            directory_index: a.directory_index.clone(),
            processes: a.processes,
            threads: a.threads,
            max_clients,
            mpm,
            sizing,
            chunked_request: a.chunked_request,
            disable_reloading: a.disable_reloading,
            map_head_to_get,
            include_files,
            log_level,
            log_to_terminal,
            error_log,
            access_log,
            access_log_nickname,
            access_log_format,
            run_as,
            apache_user,
            socket_timeout: a.socket_timeout,
            keep_alive_timeout: a.keep_alive_timeout,
            server_backlog: a.server_backlog,
            limit_request_body: a.limit_request_body,
            request_read_timeout,
            locale,
            mime_types,
            warnings,
        };
        config.defines = compat::defines(&config, &mpms_present);
        Ok(config)
    }

    /// The paths Apache's children must be able to read, in the order they
    /// are reported: Python installation directories, the application (the
    /// script, or the working directory for a module), the working directory,
    /// each `--python-path`, each `--url-alias` path, the document root and
    /// the server root (which holds `handler.wsgi`). Duplicates removed.
    pub fn paths_children_read(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        let mut push = |p: &Path| {
            if !out.iter().any(|q| q == p) {
                out.push(p.to_path_buf());
            }
        };
        self.python_dirs.iter().for_each(|p| push(p));
        match &self.app {
            Application::Script { path } => push(path),
            Application::Module { .. } => push(&self.working_directory),
        }
        push(&self.working_directory);
        self.python_paths.iter().for_each(|p| push(p));
        self.url_aliases.iter().for_each(|u| push(&u.path));
        push(&self.document_root);
        push(&self.server_root);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;
    use std::fs;

    /// A fake installation: a modules dir with the needed .so files, a
    /// Python home with lib/python3.11, a module file and an app script.
    pub(crate) struct Fixture {
        pub dir: tempfile::TempDir,
    }

    impl Fixture {
        pub(crate) fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let mods = root.join("modules");
            fs::create_dir_all(&mods).unwrap();
            for f in [
                "mod_mpm_event.so",
                "mod_mpm_worker.so",
                "mod_mpm_prefork.so",
                "mod_authz_core.so",
                "mod_authz_host.so",
                "mod_mime.so",
                "mod_alias.so",
                "mod_dir.so",
                "mod_reqtimeout.so",
                "mod_access_compat.so",
                "mod_authn_core.so",
                "mod_rewrite.so",
                "mod_env.so",
                "mod_headers.so",
                "mod_filter.so",
                "mod_ssl.so",
                "mod_http2.so",
                "mod_rwsgi.so",
            ] {
                fs::write(mods.join(f), b"").unwrap();
            }
            fs::create_dir_all(root.join("py/lib/python3.11")).unwrap();
            fs::create_dir_all(root.join("app")).unwrap();
            fs::write(root.join("app/app.wsgi"), b"def application(e, s): pass\n").unwrap();
            fs::write(root.join("mime.types"), b"text/plain txt\n").unwrap();
            fs::write(root.join("httpd"), b"").unwrap();
            Fixture { dir }
        }

        pub(crate) fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        pub(crate) fn host(&self, euid: u32) -> HostFacts {
            HostFacts {
                euid,
                egid: euid,
                uid: euid,
                cwd: self.path("app"),
                virtual_env: None,
                module_override: None,
                exe_dir: None,
                locale_env: Some("C".into()),
                bash: Some(PathBuf::from("/bin/bash")),
            }
        }

        pub(crate) fn build_info(&self) -> BuildInfo {
            BuildInfo {
                python_home: Some(self.path("py")),
                python_version: Some("3.11".into()),
            }
        }

        /// Parses `setup-server` with the fixture's paths plus `extra`.
        pub(crate) fn args(&self, extra: &[&str]) -> ServerArgs {
            let mods = self.path("modules");
            let mime = self.path("mime.types");
            let httpd = self.path("httpd");
            let root = self.path("root");
            let mut argv: Vec<String> = vec![
                "rwsgi-express".into(),
                "setup-server".into(),
                "--modules-directory".into(),
                mods.to_string_lossy().into(),
                "--mime-types".into(),
                mime.to_string_lossy().into(),
                "--httpd-executable".into(),
                httpd.to_string_lossy().into(),
                "--server-root".into(),
                root.to_string_lossy().into(),
            ];
            argv.extend(extra.iter().map(|s| s.to_string()));
            match Cli::try_parse_from(argv).unwrap().command {
                Command::SetupServer(a) => a,
                _ => unreachable!(),
            }
        }

        pub(crate) fn config(&self, extra: &[&str]) -> Result<ServerConfig> {
            ServerConfig::build(&self.args(extra), &self.host(1000), &self.build_info())
        }
    }

    #[test]
    fn sizing_event_defaults() {
        let s = mpm_sizing(Mpm::Event, 1, 5, default_max_clients(1, 5));
        assert_eq!(
            s,
            MpmSizing {
                start_servers: 1,
                server_limit: 2,
                threads_per_child: 5,
                thread_limit: 5,
                max_request_workers: 10,
                min_spare: 1,
                max_spare: 10,
            }
        );
    }

    #[test]
    fn sizing_rounds_up_to_whole_children() {
        let s = mpm_sizing(Mpm::Worker, 2, 3, 10);
        assert_eq!((s.server_limit, s.max_request_workers), (4, 12));
        assert_eq!(s.start_servers, 2);
        // MaxSpareThreads never below what Apache enforces.
        let s = mpm_sizing(Mpm::Event, 1, 20, 20);
        assert_eq!(s.max_spare, 22);
        assert!(s.max_spare >= s.start_servers * s.threads_per_child);
    }

    #[test]
    fn sizing_prefork() {
        let s = mpm_sizing(Mpm::Prefork, 3, 5, 15);
        assert_eq!(
            (s.start_servers, s.server_limit, s.max_request_workers),
            (3, 15, 15)
        );
        assert_eq!((s.min_spare, s.max_spare), (1, 15));
    }

    #[test]
    fn max_clients_default_floor() {
        assert_eq!(default_max_clients(1, 5), 10);
        assert_eq!(default_max_clients(4, 5), 20);
    }

    #[test]
    fn default_server_root_like_mod_wsgi_express() {
        assert_eq!(
            default_server_root(None, 8000, 0),
            PathBuf::from("/tmp/rwsgi-localhost:8000:0")
        );
        assert_eq!(
            default_server_root(Some("127.0.0.1"), 8080, 1000),
            PathBuf::from("/tmp/rwsgi-127.0.0.1:8080:1000")
        );
    }

    #[test]
    fn server_root_default_used_when_not_given() {
        let f = Fixture::new();
        let mut a = f.args(&["app.wsgi", "--host", "127.0.0.1", "--port", "8123"]);
        a.server_root = None;
        let c = ServerConfig::build(&a, &f.host(1000), &f.build_info()).unwrap();
        assert_eq!(
            c.server_root,
            PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000")
        );
        assert_eq!(
            c.pid_file,
            PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000/httpd.pid")
        );
        assert_eq!(
            c.document_root,
            PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000/htdocs")
        );
    }

    #[test]
    fn listen_forms() {
        assert_eq!(listen_arg(None, 8000), "8000");
        assert_eq!(listen_arg(Some("127.0.0.1"), 8000), "127.0.0.1:8000");
        assert_eq!(listen_arg(Some("::1"), 8000), "[::1]:8000");
    }

    #[test]
    fn builds_script_config_with_defaults() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        assert_eq!(c.script, f.path("app/app.wsgi"));
        assert_eq!(c.working_directory, f.path("app"));
        assert_eq!(c.python_path, f.path("app").to_string_lossy());
        assert_eq!(c.python_home, f.path("py"));
        assert_eq!(
            c.python_dirs,
            vec![f.path("py"), f.path("py/lib/python3.11")]
        );
        assert_eq!(c.mpm, Mpm::Event);
        assert_eq!(c.listen, "8000");
        assert_eq!(c.max_clients, 10);
        assert_eq!(c.module_path, f.path("modules/mod_rwsgi.so"));
        assert_eq!(c.error_log, f.path("root/error_log"));
        assert_eq!(c.access_log, None);
        assert_eq!(c.locale, "C.UTF-8");
        assert_eq!(c.url, "http://localhost:8000/");
        assert_eq!(c.callable_object, "application");
        assert!(c.run_as.is_none());
        assert_eq!(
            c.request_read_timeout.as_deref(),
            Some("header=15-30,MinRate=500 body=15,MinRate=500")
        );
    }

    #[test]
    fn entry_point_option_and_conflict() {
        let f = Fixture::new();
        let c = f.config(&["--entry-point", "app.wsgi"]).unwrap();
        assert_eq!(c.script, f.path("app/app.wsgi"));
        let e = f
            .config(&["app.wsgi", "--entry-point", "app.wsgi"])
            .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = f.config(&[]).unwrap_err();
        assert!(e.to_string().contains("no WSGI application given"), "{e}");
    }

    #[test]
    fn validation_errors() {
        let f = Fixture::new();
        let cases: &[(&[&str], &str)] = &[
            (&["app.wsgi", "--port", "0"], "out of range"),
            (&["app.wsgi", "--port", "70000"], "out of range"),
            (&["app.wsgi", "--mount-point", "app"], "must start with '/'"),
            (
                &["app.wsgi", "--processes", "0"],
                "--processes must be at least 1",
            ),
            (
                &["app.wsgi", "--threads", "0"],
                "--threads must be at least 1",
            ),
            (&["missing.wsgi"], "does not exist"),
            (
                &["app.wsgi", "--python-home", "/nonexistent/py"],
                "is not a directory",
            ),
            (&["app.wsgi", "--log-level", "loud"], "--log-level"),
            (
                &["app.wsgi", "--callable-object", "not-ident"],
                "not a Python identifier",
            ),
            (
                &["app.wsgi", "--url-alias", "static", "."],
                "must start with '/'",
            ),
            (
                &["app.wsgi", "--include-file", "nope.conf"],
                "does not exist",
            ),
        ];
        for (args, needle) in cases {
            let e = f.config(args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn python_home_of_other_version_is_refused() {
        let f = Fixture::new();
        fs::create_dir_all(f.path("py39/lib/python3.9")).unwrap();
        let home = f.path("py39");
        let e = f
            .config(&["app.wsgi", "--python-home", home.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no lib/python3.11"), "{e}");
    }

    #[test]
    fn virtualenv_is_default_home_and_base_is_checked() {
        let f = Fixture::new();
        fs::create_dir_all(f.path("venv/lib/python3.11/site-packages")).unwrap();
        let base_bin = f.path("py/bin");
        fs::write(
            f.path("venv/pyvenv.cfg"),
            format!("home = {}\nversion = 3.11.2\n", base_bin.display()),
        )
        .unwrap();
        let mut host = f.host(1000);
        host.virtual_env = Some(f.path("venv"));
        let c = ServerConfig::build(&f.args(&["app.wsgi"]), &host, &f.build_info()).unwrap();
        assert_eq!(c.python_home, f.path("venv"));
        assert_eq!(
            c.python_dirs,
            vec![
                f.path("venv"),
                f.path("venv/lib/python3.11"),
                f.path("py/lib/python3.11")
            ]
        );
    }

    #[test]
    fn module_application_uses_handler() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "--application-type",
                "module",
                "pkg.wsgi",
                "--callable-object",
                "app",
            ])
            .unwrap();
        assert_eq!(
            c.app,
            Application::Module {
                name: "pkg.wsgi".into(),
                callable: "app".into(),
                handler: f.path("root/handler.wsgi"),
            }
        );
        assert_eq!(c.script, f.path("root/handler.wsgi"));
        assert_eq!(c.callable_object, "application");
        assert_eq!(c.working_directory, f.path("app"));
        let e = f
            .config(&["--application-type", "module", "pkg/x.py"])
            .unwrap_err();
        assert!(e.to_string().contains("dotted Python module name"));
    }

    #[test]
    fn root_requires_user_and_group() {
        let f = Fixture::new();
        let e = ServerConfig::build(&f.args(&["app.wsgi"]), &f.host(0), &f.build_info())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--user and --group are required"), "{e}");
        let c = ServerConfig::build(
            &f.args(&["app.wsgi", "--user", "nobody", "--group", "nogroup"]),
            &f.host(0),
            &f.build_info(),
        )
        .unwrap();
        let r = c.run_as.unwrap();
        assert_eq!((r.user.as_str(), r.group.as_str()), ("nobody", "nogroup"));
        let e = ServerConfig::build(
            &f.args(&["app.wsgi", "--user", "root", "--group", "root"]),
            &f.host(0),
            &f.build_info(),
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("refuses to run its children as root"));
    }

    #[test]
    fn non_root_warns_about_user() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi", "--user", "nobody"]).unwrap();
        assert!(c.run_as.is_none());
        assert!(c.warnings[0].contains("--user/--group are ignored"));
    }

    #[test]
    fn mpm_preferences() {
        let f = Fixture::new();
        assert_eq!(
            f.config(&["app.wsgi", "--server-mpm", "prefork"])
                .unwrap()
                .mpm,
            Mpm::Prefork
        );
        assert_eq!(
            f.config(&[
                "app.wsgi",
                "--server-mpm",
                "prefork",
                "--server-mpm",
                "worker"
            ])
            .unwrap()
            .mpm,
            Mpm::Worker
        );
        fs::remove_file(f.path("modules/mod_mpm_event.so")).unwrap();
        assert_eq!(f.config(&["app.wsgi"]).unwrap().mpm, Mpm::Worker);
        let e = f
            .config(&["app.wsgi", "--server-mpm", "event"])
            .unwrap_err();
        assert!(e.to_string().contains("mod_mpm_event.so"));
    }

    #[test]
    fn missing_apache_module_is_reported() {
        let f = Fixture::new();
        fs::remove_file(f.path("modules/mod_mime.so")).unwrap();
        let e = f.config(&["app.wsgi"]).unwrap_err().to_string();
        assert!(e.contains("mod_mime.so"), "{e}");
    }

    #[test]
    fn logs_to_terminal_and_log_directory_override() {
        let f = Fixture::new();
        let c = f
            .config(&["app.wsgi", "--log-to-terminal", "--access-log"])
            .unwrap();
        assert_eq!(c.error_log, PathBuf::from("/dev/stderr"));
        assert_eq!(c.access_log, Some(PathBuf::from("/dev/stdout")));
        let logs = f.path("logs");
        let c = f
            .config(&[
                "app.wsgi",
                "--log-to-terminal",
                "--log-directory",
                logs.to_str().unwrap(),
            ])
            .unwrap();
        assert!(!c.log_to_terminal);
        assert_eq!(c.error_log, f.path("logs/error_log"));
    }

    #[test]
    fn python_path_with_colon_is_refused() {
        let f = Fixture::new();
        fs::create_dir_all(f.path("a:b")).unwrap();
        let e = f
            .config(&["app.wsgi", "--python-path", f.path("a:b").to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("contains ':'"), "{e}");
    }

    #[test]
    fn quote_unsafe_values_are_refused() {
        assert!(conf_safe_str("x", "/a\"b").is_err());
        assert!(conf_safe_str("x", "/a${HOME}").is_err());
        assert!(conf_safe_str("x", "/a\nb").is_err());
        assert!(conf_safe_str("x", "/tmp/rwsgi-localhost:8000:0").is_ok());
    }

    #[test]
    fn helpers() {
        assert!(is_module_name("pkg.sub.wsgi"));
        assert!(!is_module_name("pkg..wsgi"));
        assert!(!is_module_name("1pkg"));
        assert_eq!(
            absolute(Path::new("/w"), Path::new("./a/./b")),
            PathBuf::from("/w/a/b")
        );
        assert_eq!(default_locale(Some("en_GB.UTF-8")), "en_GB.UTF-8");
        assert_eq!(default_locale(Some("POSIX")), "C.UTF-8");
        assert_eq!(default_locale(None), "C.UTF-8");
    }

    #[test]
    fn paths_children_read_order() {
        let f = Fixture::new();
        let static_dir = f.path("app");
        let c = f
            .config(&[
                "app.wsgi",
                "--url-alias",
                "/static",
                static_dir.to_str().unwrap(),
            ])
            .unwrap();
        assert_eq!(
            c.paths_children_read(),
            vec![
                f.path("py"),
                f.path("py/lib/python3.11"),
                f.path("app/app.wsgi"),
                f.path("app"),
                f.path("root/htdocs"),
                f.path("root"),
            ]
        );
    }
}
