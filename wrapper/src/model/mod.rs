//! The server model: command line options plus host facts, validated, with
//! every default resolved. Rendering ([`crate::render`]) and writing
//! ([`crate::setup`]) only read it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::access::RunAs;
use crate::build_info::BuildInfo;
use crate::cli::{Mpm, ServerArgs};
use crate::compat::{self, Define, Environment};
use crate::content::{self, Content};
use crate::daemon_opts::{self, Daemon};
use crate::debug::{self, Debug};
use crate::https::{self, Https};
use crate::logs::{self, Logs};
use crate::module;
use crate::proxy::{self, Proxying};
use crate::python_opts::{self, PythonSettings};
use crate::telemetry::Telemetry;
use crate::vhost::{self, VirtualHosts};

mod app;
mod host;
mod paths;
mod rules;
mod tools;

pub use host::HostFacts;
pub use rules::*;

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
    /// A Paste Deploy configuration file, loaded through a generated
    /// `handler.wsgi` (`paste.deploy.loadapp("config:" + config)`).
    Paste {
        /// The `.ini` file (absolute path).
        config: PathBuf,
        /// The generated script, `<server root>/handler.wsgi`.
        handler: PathBuf,
    },
    /// No WSGI application: Apache serves a directory as the document root.
    Static {
        /// The directory served (the `DocumentRoot`).
        directory: PathBuf,
    },
}

impl Application {
    /// The generated `handler.wsgi` of a module or paste application.
    pub fn handler(&self) -> Option<&Path> {
        match self {
            Application::Module { handler, .. } | Application::Paste { handler, .. } => {
                Some(handler)
            }
            Application::Script { .. } | Application::Static { .. } => None,
        }
    }

    /// Whether there is a WSGI application (not `--application-type static`).
    pub fn is_wsgi(&self) -> bool {
        !matches!(self, Application::Static { .. })
    }
}

/// An Apache module the configuration loads from the modules directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApacheModule {
    /// Module identifier, e.g. `mime_module`.
    pub id: String,
    /// Absolute path of the `.so`.
    pub path: PathBuf,
}
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
    /// `--host-access-script`, `--auth-user-script`, ... (auth.rs).
    pub auth: crate::auth::Auth,
    /// `--service-script`s (service.rs).
    pub services: Vec<crate::service::Service>,
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
    /// What `WSGIScriptAlias` points at: the script, or the generated
    /// handler (static: the directory served; no `WSGIScriptAlias` is written).
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
    /// by apachectl and by `start-server`; `None` when the shell is not bash.
    pub process_name: Option<String>,
    /// apachectl's interpreter: `--shell-executable`, else bash when found, else `/bin/sh`.
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
    /// `--server-metrics`.
    pub server_metrics: bool,
    /// `--disable-reloading`.
    pub disable_reloading: bool,
    /// `--map-head-to-get`, normalised to `On`/`Off`/`Auto`.
    pub map_head_to_get: Option<String>,
    /// `--include-file`s, absolute.
    pub include_files: Vec<PathBuf>,
    /// The logs ([`crate::logs`]).
    pub logs: Logs,
    /// What is served besides the application ([`crate::content`]).
    pub content: Content,
    /// Proxied mount points and hosts, trusted proxies ([`crate::proxy`]).
    pub proxy: Proxying,
    /// `--switch-interval`, `--python-warnings`, `--free-threading`
    /// ([`crate::python_opts`]).
    pub python: PythonSettings,
    /// `--metrics-url`, `--status-url`, `--metrics-allow` ([`crate::observe`]).
    pub observe: crate::observe::ObserveSettings,
    /// The telemetry directives ([`crate::telemetry`]).
    pub telemetry: Telemetry,
    /// Debug mode ([`crate::debug`]); `None` unless on. When on, the
    /// application runs embedded in one Apache process with one thread,
    /// loaded by the generated handler ([`Self::script`] is it).
    pub debug: Option<Debug>,
    /// The Python packages the Python home must provide, as (module to
    /// import, the option that needs it, the package to install), checked
    /// by [`crate::setup`] with the home's interpreter.
    pub python_requirements: Vec<(String, String, String)>,
    /// The `-D` arguments apachectl passes to httpd (`ONE_PROCESS` in
    /// debug mode, as mod_wsgi-express passes it).
    pub httpd_defines: Vec<String>,
    /// Server-level `RewriteRule` serving the document root's files under
    /// the mount point ([`document_root_rule`]).
    pub static_rule: Option<StaticRule>,
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
    /// `--process-name` without bash as the shell, a bad `--shell-executable`,
    /// and the refusals of [`vhost::build`], [`logs::build`], [`content::build`],
    /// [`proxy::build`], [`python_opts::build`],
    /// [`https::build`] and [`compat::build`].
    pub fn build(a: &ServerArgs, host: &HostFacts, build: &BuildInfo) -> Result<ServerConfig> {
        let mut warnings = Vec::new();
        let cwd = &host.cwd;

        // Entry point.
        let entry = app::entry_point(a)?;

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
        let auth = crate::auth::build(&a.auth, cwd, conf_safe)?;
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
            None if !a.embedded_mode => daemon_max_clients(a.processes, a.threads),
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
        let app::Resolved {
            app,
            script,
            default_workdir,
            callable_object,
        } = app::resolve(a, entry.as_deref(), cwd, &server_root, &mount_point)?;
        let script_dir = script
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        let script_name = script
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if app.is_wsgi() && script_name.contains(['*', '?', '[']) {
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
        let url_aliases = url_aliases(&a.url_alias, cwd)?;
        let document_root = match (&app, &a.document_root) {
            (Application::Static { directory }, _) => directory.clone(),
            (_, Some(d)) => absolute(cwd, d),
            (_, None) => server_root.join("htdocs"),
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
        let logs = logs::build(a, &server_root, cwd, &mut warnings)?;
        let pipe = logs.rotation.clone().map(|r| move |p: &Path| r.pipe(p));
        let services = crate::service::build(
            &a.service,
            cwd,
            &logs.log_directory,
            pipe.as_ref().map(|f| f as &dyn Fn(&Path) -> String),
            conf_safe,
        )?;
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
        let debug = debug::build(
            &a.debug,
            &a.callable_object,
            &server_root,
            cwd,
            host.path_env.as_deref(),
        )?;
        let mpm = tools::choose_mpm(a, debug.is_some(), &modules_directory)?;
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
        let content = content::build(&a.content, &modules_directory, &server_root, cwd)?;
        let proxy = proxy::build(&a.proxy)?;
        wanted.extend(content.modules());
        if a.server_metrics && !content.server_status {
            // As mod_wsgi-express: --server-metrics loads mod_status too,
            // with ExtendedStatus On, for the scoreboard's request details.
            wanted.push(("status_module", "mod_status.so"));
        }
        wanted.extend(proxy.modules());
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
        // Daemon mode: Apache's children only relay, sized as
        // mod_wsgi-express sizes them (about 20 threads a child).
        let child_threads = if a.embedded_mode {
            a.threads
        } else {
            daemon_child_threads(max_clients)
        };
        let sizing = if debug.is_some() {
            MpmSizing::one()
        } else {
            mpm_sizing(mpm, a.processes, child_threads, max_clients)
        };
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
        let python = python_opts::build(&a.python)?;
        let observe = crate::observe::build(&a.observe)?;
        let mut daemon = daemon_opts::build(a, port, &server_root, cwd, &mut warnings)?;
        if debug.is_some() {
            // Debug mode: embedded in the one Apache process.
            daemon = None;
        }
        if let (Some(d), Some(s)) = (daemon.as_mut(), &python.switch_interval) {
            d.options.push(format!("switch-interval={s}"));
        }
        let sizing = match daemon {
            Some(_) => daemon_opts::worker_fractions(sizing, mpm, &a.daemon),
            None => sizing,
        };
        app::refuse_tools(&app, debug.is_some(), daemon.as_ref())?;
        let tools::Tools {
            telemetry,
            services,
            mut python_requirements,
            httpd_defines,
        } = tools::build(a, &server_root, services, debug.as_ref())?;
        python_requirements.extend(app::python_requirement(&app));
        // Debug mode: the generated handler loads and wraps the application.
        let (script, script_dir, script_name, callable_object) = match &debug {
            Some(d) => (
                d.handler.clone(),
                server_root.clone(),
                "handler.wsgi".to_string(),
                "application".to_string(),
            ),
            None => (script, script_dir, script_name, callable_object),
        };
        let disable_reloading = a.disable_reloading || debug.is_some();
        // Static: Apache serves the document root itself, nothing to fall back to.
        let static_rule = document_root_rule(
            &mount_point,
            &document_root,
            a.directory_index.is_some(),
            a.content.server_status,
        )
        .filter(|_| app.is_wsgi());
        let ignore_activity = daemon_opts::ignore_activity(&a.daemon.ignore_activity)?;
        let socket_prefix = daemon_opts::socket_prefix(a.daemon.socket_prefix.as_deref(), cwd)?;
        let shell = shell_executable(a.shell_executable.as_deref(), host, cwd)?;
        let bash = (shell.file_name() == Some("bash".as_ref())).then_some(&shell);
        let process_name = match (&a.process_name, bash) {
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
            auth,
            services,
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
            server_metrics: a.server_metrics,
            disable_reloading,
            map_head_to_get,
            include_files,
            logs,
            content,
            proxy,
            python,
            observe,
            telemetry,
            debug,
            python_requirements,
            httpd_defines,
            static_rule,
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
}

#[cfg(test)]
pub(crate) mod tests;
