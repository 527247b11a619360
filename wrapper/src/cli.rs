//! Command line of rwsgi-express (clap derive).
//!
//! Option names and defaults follow `mod_wsgi-express` wherever it has the
//! option; the differences are listed in `docs/express.md`. Options of
//! mod_wsgi-express 4 that 6.1 no longer has (`--with-newrelic`, ...) are not
//! declared here: [`crate::unsupported`] refuses them with an explanation
//! before clap parses the arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::build_info;
use crate::compat::EnvArgs;
use crate::content::ContentArgs;
use crate::daemon_opts::DaemonArgs;
use crate::https::HttpsArgs;
use crate::logs::LogArgs;
use crate::proxy::ProxyArgs;
use crate::python_opts::PythonArgs;
use crate::vhost::VhostArgs;

/// The whole command line: one subcommand.
#[derive(Debug, Parser)]
#[command(
    name = "rwsgi-express",
    version,
    about = "Run a WSGI application under Apache httpd with mod_rwsgi (mod_wsgi-express compatible)"
)]
pub struct Cli {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, named as in mod_wsgi-express.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a server root (httpd.conf, apachectl, logs) without starting Apache.
    SetupServer(ServerArgs),
    /// Write a server root, then exec Apache in the foreground.
    StartServer(ServerArgs),
    /// Print the LoadModule/WSGIPythonHome lines for a system Apache.
    ModuleConfig(ModuleArgs),
    /// Copy the module into Apache's modules directory and print the lines to load it.
    InstallModule(ModuleArgs),
    /// Check a set-up (the options of start-server) before starting it: one OK/WARN/FAIL line per check; exit status 0, 1 (warnings) or 2 (failures).
    Doctor(crate::doctor::DoctorArgs),
}

/// `--application-type`: how the entry point is interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplicationType {
    /// A WSGI script file path (mod_wsgi style), the default.
    Script,
    /// A dotted Python module name, imported with importlib.
    Module,
    /// A Paste Deploy configuration (.ini) file, loaded with paste.deploy.loadapp.
    Paste,
    /// A directory of static files served as the document root, no WSGI application [default entry point: the current directory].
    Static,
}

/// `--server-mpm`: the Apache multi-processing module to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mpm {
    /// mod_mpm_event (threaded, async keep-alive); first choice.
    Event,
    /// mod_mpm_worker (threaded).
    Worker,
    /// mod_mpm_prefork (one request per child process).
    Prefork,
}

impl Mpm {
    /// The MPM's name as used in `mod_mpm_<name>.so` / `mpm_<name>_module`.
    pub fn name(self) -> &'static str {
        match self {
            Mpm::Event => "event",
            Mpm::Worker => "worker",
            Mpm::Prefork => "prefork",
        }
    }
}

/// Parses `--map-head-to-get` case-insensitively into `On`, `Off` or `Auto`.
pub fn on_off_auto(value: &str) -> Result<String, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" => Ok("On".into()),
        "off" => Ok("Off".into()),
        "auto" => Ok("Auto".into()),
        _ => Err("expected On, Off or Auto".into()),
    }
}

/// Options of `setup-server` and `start-server`.
///
/// The field comments are the `--help` texts, so they use `<placeholder>`
/// notation rather than rustdoc markup.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// WSGI script file (or, with --application-type module, a dotted module name; paste, a Paste Deploy .ini file; static, the directory to serve).
    #[arg(value_name = "APP")]
    pub app: Option<String>,

    /// The entry point, as an option: same meaning as APP (giving both is an error).
    #[arg(long, value_name = "FILE-PATH|MODULE|DIRECTORY-PATH")]
    pub entry_point: Option<String>,

    /// How the entry point is interpreted.
    #[arg(long, value_enum, default_value = "script", value_name = "TYPE")]
    pub application_type: ApplicationType,

    /// Name of the WSGI callable in the script or module.
    #[arg(long, default_value = "application", value_name = "NAME")]
    pub callable_object: String,

    /// WSGI application group (Python sub-interpreter); %{GLOBAL} is the main interpreter.
    #[arg(long, default_value = "%{GLOBAL}", value_name = "NAME")]
    pub application_group: String,

    /// IP address to listen on [default: all interfaces].
    #[arg(long, value_name = "IP-ADDRESS")]
    pub host: Option<String>,

    /// Port to listen on.
    #[arg(long, default_value_t = 8000, value_name = "NUMBER")]
    pub port: u32,

    /// Directory for the generated files and logs [default: /tmp/rwsgi-<host or localhost>:<port>:<uid>].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub server_root: Option<PathBuf>,

    /// The name-based virtual host options (--server-name, ...).
    #[command(flatten)]
    pub vhost: VhostArgs,

    /// The HTTPS and HTTP/2 options.
    #[command(flatten)]
    pub https: HttpsArgs,

    /// The access and authentication script options.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,

    /// The managed service options (--service-script ...).
    #[command(flatten)]
    pub service: crate::service::ServiceArgs,

    /// URL path at which the application is mounted.
    #[arg(long, default_value = "/", value_name = "URL-PATH")]
    pub mount_point: String,

    /// Serve a static file or directory at a sub URL (repeatable).
    #[arg(long = "url-alias", num_args = 2, value_names = ["URL-PATH", "FILE-PATH|DIRECTORY-PATH"])]
    pub url_alias: Vec<String>,

    /// Document root for static files [default: <server-root>/htdocs].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub document_root: Option<PathBuf>,

    /// DirectoryIndex resource of the document root.
    #[arg(long, value_name = "FILE-NAME")]
    pub directory_index: Option<String>,

    /// Directory added first to the Python path [default: the script's directory; the current directory for --application-type module, paste and static].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub working_directory: Option<PathBuf>,

    /// Extra directory for the Python module search path (repeatable).
    #[arg(long = "python-path", value_name = "DIRECTORY-PATH")]
    pub python_path: Vec<PathBuf>,

    /// Python home: a virtualenv or an installation prefix [default: $VIRTUAL_ENV, else the prefix of the Python the module was built for].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub python_home: Option<PathBuf>,

    /// Number of daemon processes running the application (with --embedded-mode: Apache child processes).
    #[arg(long, default_value_t = 1, value_name = "NUMBER")]
    pub processes: u32,

    /// Number of request threads in each daemon process (with --embedded-mode: each Apache child).
    #[arg(long, default_value_t = 5, value_name = "NUMBER")]
    pub threads: u32,

    /// Maximum simultaneous requests (MaxRequestWorkers) [default: processes*threads, at least 10].
    #[arg(long, value_name = "NUMBER")]
    pub max_clients: Option<u32>,

    /// Preferred MPM (repeatable; the first available of event, worker, prefork among those given).
    #[arg(long = "server-mpm", value_enum, value_name = "NAME")]
    pub server_mpm: Vec<Mpm>,

    /// Run the application inside the Apache child processes instead of daemon processes (the default is daemon mode, as mod_wsgi-express).
    #[arg(long)]
    pub embedded_mode: bool,

    /// The daemon-mode options.
    #[command(flatten)]
    pub daemon: DaemonArgs,

    /// Accept requests with chunked transfer encoding (WSGIChunkedRequest On).
    #[arg(long)]
    pub chunked_request: bool,

    /// Let mod_wsgi.server_metrics() return Apache's scoreboard (WSGIServerMetrics On; server-metrics=On in daemon mode).
    #[arg(long)]
    pub server_metrics: bool,

    /// Do not reload the WSGI script file when it changes (WSGIScriptReloading Off), nor start --reload-on-changes' monitor.
    #[arg(long)]
    pub disable_reloading: bool,

    /// Map HEAD requests to GET: Off, On or Auto [default: the module's default, Auto].
    #[arg(long, value_name = "OFF|ON|AUTO", value_parser = on_off_auto)]
    pub map_head_to_get: Option<String>,

    /// Extra Apache configuration file, included at the end, before the application's WSGIScriptAlias (repeatable).
    #[arg(long = "include-file", value_name = "FILE-PATH")]
    pub include_file: Vec<PathBuf>,

    /// The environment and rewrite options (--setenv, --passenv, ...).
    #[command(flatten)]
    pub env: EnvArgs,

    /// The content options (--allow-override, --compress-responses, --server-status, ...).
    #[command(flatten)]
    pub content: ContentArgs,

    /// The proxy options (--proxy-mount-point, --trust-proxy, ...).
    #[command(flatten)]
    pub proxy: ProxyArgs,

    /// The Python interpreter options (--switch-interval, --python-warnings, --free-threading).
    #[command(flatten)]
    pub python: PythonArgs,

    /// The metrics endpoint and status page (--metrics-url, --status-url, --metrics-allow).
    #[command(flatten)]
    pub observe: crate::observe::ObserveArgs,

    /// The telemetry options (--telemetry-service, --slow-requests, --enable-telemetry, ...).
    #[command(flatten)]
    pub telemetry: crate::telemetry::TelemetryArgs,

    /// The debug mode options (--debug-mode, --enable-debugger, --enable-profiler, ...).
    #[command(flatten)]
    pub debug: crate::debug::DebugArgs,

    /// The log rotation, startup log and error log format options.
    #[command(flatten)]
    pub logs: LogArgs,

    /// Apache LogLevel.
    #[arg(long, default_value = "warn", value_name = "NAME")]
    pub log_level: String,

    /// Directory for error_log/access_log [default: the server root]; overrides --log-to-terminal.
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub log_directory: Option<PathBuf>,

    /// Send the error log to stderr and the access log to stdout.
    #[arg(long)]
    pub log_to_terminal: bool,

    /// Enable the access log.
    #[arg(long)]
    pub access_log: bool,

    /// Access log format: common, combined or a LogFormat string [default: common].
    #[arg(long, value_name = "FORMAT")]
    pub access_log_format: Option<String>,

    /// File name of the error log in the log directory.
    #[arg(long, default_value = "error_log", value_name = "FILE-NAME")]
    pub error_log_name: String,

    /// File name of the access log in the log directory.
    #[arg(long, default_value = "access_log", value_name = "FILE-NAME")]
    pub access_log_name: String,

    /// Pid file of the Apache parent [default: <server-root>/httpd.pid].
    #[arg(long, value_name = "FILE-PATH")]
    pub pid_file: Option<PathBuf>,

    /// Seconds before a read or write on a socket times out (Timeout; in daemon mode also socket-timeout=).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub socket_timeout: u32,

    /// Seconds a keep-alive connection waits for the next request; 0 disables keep-alive.
    #[arg(long, default_value_t = 2, value_name = "SECONDS")]
    pub keep_alive_timeout: u32,

    /// Largest request body in bytes (LimitRequestBody); 0 means unlimited.
    #[arg(long, default_value_t = 10485760, value_name = "NUMBER")]
    pub limit_request_body: u64,

    /// Listen backlog of the server socket (ListenBacklog).
    #[arg(long, default_value_t = 500, value_name = "NUMBER")]
    pub server_backlog: u32,

    /// Seconds to receive the request headers (RequestReadTimeout header=); 0 disables.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub header_timeout: u32,

    /// Hard limit in seconds for receiving the headers; 0 means none.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub header_max_timeout: u32,

    /// Bytes per second that extend the header timeout by a second; 0 disables.
    #[arg(long, default_value_t = 500, value_name = "BYTES")]
    pub header_min_rate: u32,

    /// Seconds to receive the request body (RequestReadTimeout body=); 0 disables.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub body_timeout: u32,

    /// Hard limit in seconds for receiving the body; 0 means none.
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub body_max_timeout: u32,

    /// Bytes per second that extend the body timeout by a second; 0 disables.
    #[arg(long, default_value_t = 500, value_name = "BYTES")]
    pub body_min_rate: u32,

    /// Locale (LANG and LC_ALL) of Apache and the application [default: the current locale; C.UTF-8 if that is C/POSIX or unset].
    #[arg(long, alias = "lang", value_name = "NAME")]
    pub locale: Option<String>,

    /// When run as root: the user Apache's children (and so the application) run as. Required as root.
    #[arg(long, value_name = "USERNAME")]
    pub user: Option<String>,

    /// When run as root: the group Apache's children run as. Required as root.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Only write the server root; do not start Apache (start-server then behaves as setup-server).
    #[arg(long)]
    pub setup_only: bool,

    /// Shell of the generated apachectl script [default: bash if found, else /bin/sh].
    #[arg(long, value_name = "FILE-PATH")]
    pub shell_executable: Option<PathBuf>,

    /// Apache executable.
    #[arg(long, default_value = build_info::DEFAULT_HTTPD, value_name = "FILE-PATH")]
    pub httpd_executable: PathBuf,

    /// Name ps shows for the Apache processes started by start-server and apachectl (bash's exec -a) [default: the httpd executable's file name followed by " (rwsgi-express)"].
    #[arg(long, value_name = "NAME")]
    pub process_name: Option<String>,

    /// Apache modules directory.
    #[arg(long, default_value = build_info::DEFAULT_MODULES_DIR, value_name = "DIRECTORY-PATH")]
    pub modules_directory: PathBuf,

    /// MIME types file (TypesConfig).
    #[arg(long, default_value = build_info::DEFAULT_MIME_TYPES, value_name = "FILE-PATH")]
    pub mime_types: PathBuf,
}

/// Options of `module-config` and `install-module` (field comments are the
/// `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Args)]
pub struct ModuleArgs {
    /// Apache modules directory (install destination and last place searched for the module).
    #[arg(long, default_value = build_info::DEFAULT_MODULES_DIR, value_name = "DIRECTORY-PATH")]
    pub modules_directory: PathBuf,

    /// Python home printed in WSGIPythonHome [default: $VIRTUAL_ENV, else the prefix of the Python the module was built for].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub python_home: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> ServerArgs {
        let mut full = vec!["rwsgi-express", "setup-server"];
        full.extend_from_slice(args);
        match Cli::try_parse_from(full).unwrap().command {
            Command::SetupServer(a) => a,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_mod_wsgi_express() {
        let a = parse(&["app.wsgi"]);
        assert_eq!(a.app.as_deref(), Some("app.wsgi"));
        assert_eq!(a.port, 8000);
        assert_eq!(a.host, None);
        assert_eq!(a.processes, 1);
        assert_eq!(a.threads, 5);
        assert_eq!(a.max_clients, None);
        assert_eq!(a.callable_object, "application");
        assert_eq!(a.application_group, "%{GLOBAL}");
        assert_eq!(a.mount_point, "/");
        assert_eq!(a.log_level, "warn");
        assert_eq!(a.vhost.server_name, None);
        assert_eq!(a.https.https_port, None);
        assert!(!a.https.ssl_environment && !a.https.http2 && !a.vhost.allow_localhost);
        assert!(a.env.setenv.is_empty() && a.env.passenv.is_empty());
        assert_eq!(a.socket_timeout, 60);
        assert_eq!(a.keep_alive_timeout, 2);
        assert_eq!(a.limit_request_body, 10_485_760);
        assert_eq!(a.application_type, ApplicationType::Script);
        assert!(a.server_mpm.is_empty());
        assert!(!a.access_log && !a.log_to_terminal && !a.chunked_request && !a.setup_only);
        assert_eq!(a.httpd_executable, PathBuf::from(build_info::DEFAULT_HTTPD));
    }

    #[test]
    fn url_alias_takes_two_values_and_repeats() {
        let a = parse(&[
            "--url-alias",
            "/static",
            "/srv/s",
            "--url-alias",
            "/f",
            "/srv/f.txt",
        ]);
        assert_eq!(a.url_alias, vec!["/static", "/srv/s", "/f", "/srv/f.txt"]);
    }

    #[test]
    fn lang_is_an_alias_of_locale() {
        let a = parse(&["--lang", "en_US.UTF-8"]);
        assert_eq!(a.locale.as_deref(), Some("en_US.UTF-8"));
    }

    #[test]
    fn map_head_to_get_is_normalised() {
        assert_eq!(
            parse(&["--map-head-to-get", "off"])
                .map_head_to_get
                .as_deref(),
            Some("Off")
        );
        assert!(
            Cli::try_parse_from(["rwsgi-express", "setup-server", "--map-head-to-get", "x"])
                .is_err()
        );
    }

    #[test]
    fn server_mpm_repeats() {
        let a = parse(&["--server-mpm", "prefork", "--server-mpm", "worker"]);
        assert_eq!(a.server_mpm, vec![Mpm::Prefork, Mpm::Worker]);
    }
}
