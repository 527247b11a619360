//! The daemon-mode options of rwsgi-express: their command line (a clap
//! group flattened into [`crate::cli::ServerArgs`]), their validation, and
//! what they become in httpd.conf — the `WSGIDaemonProcess` options, the
//! process group's name, the `--reload-on-changes` monitor, and the Apache
//! children's spare-worker tuning.
//!
//! Names, metavars and defaults are mod_wsgi-express 6.1.1's. It writes
//! every option into `WSGIDaemonProcess`, `0`s included; rwsgi-express
//! writes an option whose mod_wsgi-express default is not 0 always (so a
//! `0` given on the command line still reaches the module, where for some
//! of them it differs from the module's own default) and the others only
//! when they are not 0 (for those, `0` is the module's default: leaving
//! them out has the same effect).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::cli::{Mpm, ServerArgs};
use crate::model::{absolute, conf_safe, conf_safe_str, MpmSizing};

/// Largest value mod_wsgi (and the module) reads into a C `int`.
const INT_MAX: u32 = i32::MAX as u32;

/// Parses a `--*-workers` fraction: a number from 0 to 1.
pub fn fraction(value: &str) -> Result<f64, String> {
    let f: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("expected a number from 0 to 1, got {value:?}"))?;
    if !(0.0..=1.0).contains(&f) {
        return Err(format!("needs to be within the range 0 to 1, got {value}"));
    }
    Ok(f)
}

/// Options of `setup-server`/`start-server` for daemon mode (field comments
/// are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Args)]
pub struct DaemonArgs {
    /// Daemon mode: name of the WSGIDaemonProcess group (and process-group= of WSGIScriptAlias); ps shows (wsgi:NAME) [default: localhost:PORT].
    #[arg(long, value_name = "NAME")]
    pub process_group: Option<String>,

    /// Daemon mode: seconds a request may run before its daemon process dumps its stacks, answers 504 and is replaced (0: no limit).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub request_timeout: u32,

    /// Daemon mode: when non-zero, a timed-out request first gets mod_wsgi.RequestTimeout raised in its thread and this long to unwind (interrupt-timeout=).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub interrupt_timeout: u32,

    /// Daemon mode: requests a daemon process serves before it is replaced (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub maximum_requests: u32,

    /// Daemon mode: seconds a daemon process may take to load the application before it is restarted (startup-timeout=).
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub startup_timeout: u32,

    /// Daemon mode: seconds a stopping daemon process lets its requests finish before it is killed.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub shutdown_timeout: u32,

    /// Daemon mode: seconds between restarts of each daemon process (restart-interval=; 0: never).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub restart_interval: u32,

    /// Daemon mode: CPU seconds a daemon process may use before it is restarted (cpu-time-limit=; 0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub cpu_time_limit: u32,

    /// Daemon mode: seconds a daemon process being replaced (maximum-requests, restart-interval, cpu-time-limit) lets its requests finish.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub graceful_timeout: u32,

    /// Daemon mode: the same grace on a graceful restart signal (eviction-timeout=; 0: --graceful-timeout).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub eviction_timeout: u32,

    /// Daemon mode: seconds the Python GIL may stay held before the daemon process is restarted (deadlock-timeout=).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub deadlock_timeout: u32,

    /// Daemon mode: seconds without requests after which a daemon process is restarted (inactivity-timeout=; 0: never).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub inactivity_timeout: u32,

    /// URL path whose requests do not count as activity for --inactivity-timeout (WSGIIgnoreActivity On in a <Location>; repeatable).
    #[arg(long = "ignore-activity", value_name = "URL-PATH")]
    pub ignore_activity: Vec<String>,

    /// Daemon mode: seconds an Apache child keeps trying to connect to the daemon processes.
    #[arg(long, default_value_t = 15, value_name = "SECONDS")]
    pub connect_timeout: u32,

    /// Daemon mode: seconds a request may wait for a daemon thread, from when Apache accepted it, before it gets 503 (queue-timeout=).
    #[arg(long, default_value_t = 45, value_name = "SECONDS")]
    pub queue_timeout: u32,

    /// Daemon mode: listen backlog of the daemon processes' socket (listen-backlog=).
    #[arg(long, default_value_t = 100, value_name = "NUMBER")]
    pub daemon_backlog: u32,

    /// Daemon mode: send buffer size of the socket to the daemon processes (send-buffer-size=; 0: the system's).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub send_buffer_size: u32,

    /// Daemon mode: receive buffer size of the socket to the daemon processes (receive-buffer-size=; 0: the system's).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub receive_buffer_size: u32,

    /// Daemon mode: buffer for the response headers from the daemon processes (header-buffer-size=; 0: 32768).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub header_buffer_size: u32,

    /// Daemon mode: response bytes passed on without a flush (response-buffer-size=; 0: 8388608).
    #[arg(long, default_value_t = 0, value_name = "NUMBER")]
    pub response_buffer_size: u32,

    /// Daemon mode: seconds a write of the response to the client may take (response-socket-timeout=; 0: --socket-timeout).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub response_socket_timeout: u32,

    /// Daemon mode: milliseconds to wait for more response data from a daemon process before flushing what it has to the client (response-flush-delay=; 0: flush at once).
    #[arg(long, default_value_t = 5, value_name = "MILLISECONDS")]
    pub response_flush_delay: u32,

    /// Daemon mode: restart a daemon process when the script or a Python file it imported changes (a monitor thread polls once a second).
    #[arg(long)]
    pub reload_on_changes: bool,

    /// Directory for the daemon processes' sockets (WSGISocketPrefix <dir>/wsgi) [default: the module's, in the server root].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub socket_prefix: Option<PathBuf>,

    /// Daemon mode: directory for unpacking Python eggs (python-eggs=; created) [default: none].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub python_eggs: Option<PathBuf>,

    /// Daemon mode: Apache children started up front, as a fraction (0 to 1) of --max-clients (StartServers) [default: event/worker: two children holding every thread; prefork, or when one of the other two is given: 0.2 (prefork 0.05)].
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub initial_workers: Option<f64>,

    /// Daemon mode: spare Apache workers kept, as a fraction of --max-clients (MinSpareThreads/MinSpareServers) [default: event/worker: one child's threads; prefork, or when one of the other two is given: --initial-workers' fraction].
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub minimum_spare_workers: Option<f64>,

    /// Daemon mode: most idle Apache workers kept, as a fraction of --max-clients (MaxSpareThreads/MaxSpareServers) [default: event/worker: all of them; prefork, or when one of the other two is given: 0.6 (prefork 0.1)].
    #[arg(long, value_name = "NUMBER", value_parser = fraction)]
    pub maximum_spare_workers: Option<f64>,
}

/// The daemon process group of a daemon-mode configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Daemon {
    /// The group name: `--process-group`, else `localhost:PORT`.
    pub group: String,
    /// `WSGIDaemonProcess` options after `processes=`, `threads=` and
    /// `display-name=`, in mod_wsgi-express's order, e.g. `queue-timeout=45`.
    pub options: Vec<String>,
    /// `--reload-on-changes`: the generated monitor, `<server root>/reloader.py`,
    /// imported in each daemon process by `WSGIImportScript`.
    pub reloader: Option<PathBuf>,
    /// `--python-eggs`, absolute (created by setup).
    pub python_eggs: Option<PathBuf>,
    /// `--request-timeout` (for the summary).
    pub request_timeout: u32,
    /// `--interrupt-timeout` (for the summary).
    pub interrupt_timeout: u32,
    /// `--startup-timeout` (for the summary).
    pub startup_timeout: u32,
    /// `--daemon-backlog` (for the summary).
    pub backlog: u32,
    /// `--queue-timeout` (for the summary).
    pub queue_timeout: u32,
}

/// Checks that a name can be written unquoted into httpd.conf as a
/// directive argument and an option value: non-empty, no white space, no
/// quote, no `=`, no control character, no `${`.
fn plain_word(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '\'' || c == '=') {
        bail!("{what} {s:?} must be a non-empty name without white space, quotes or '='");
    }
    conf_safe_str(what, s)
}

/// The `WSGIDaemonProcess` options of `d` (see the module documentation
/// for which are written when), with `socket_timeout` (`--socket-timeout`)
/// as `socket-timeout=`. Errors: a value above 2147483647 (mod_wsgi reads
/// them as C ints), a buffer size below the module's minimum.
pub fn daemon_options(
    d: &DaemonArgs,
    socket_timeout: u32,
    python_eggs: Option<&Path>,
) -> Result<Vec<String>> {
    // (option, value, written even when 0); each is the launcher's
    // --<option> except listen-backlog (--daemon-backlog).
    let numbers: [(&str, u32, bool); 21] = [
        ("listen-backlog", d.daemon_backlog, true),
        ("queue-timeout", d.queue_timeout, true),
        ("socket-timeout", socket_timeout, true),
        ("connect-timeout", d.connect_timeout, true),
        ("request-timeout", d.request_timeout, true),
        ("interrupt-timeout", d.interrupt_timeout, false),
        ("inactivity-timeout", d.inactivity_timeout, false),
        ("startup-timeout", d.startup_timeout, true),
        ("deadlock-timeout", d.deadlock_timeout, true),
        ("graceful-timeout", d.graceful_timeout, true),
        ("eviction-timeout", d.eviction_timeout, false),
        ("restart-interval", d.restart_interval, false),
        ("cpu-time-limit", d.cpu_time_limit, false),
        ("shutdown-timeout", d.shutdown_timeout, true),
        ("send-buffer-size", d.send_buffer_size, false),
        ("receive-buffer-size", d.receive_buffer_size, false),
        ("header-buffer-size", d.header_buffer_size, false),
        ("response-buffer-size", d.response_buffer_size, false),
        ("response-socket-timeout", d.response_socket_timeout, false),
        ("response-flush-delay", d.response_flush_delay, true),
        ("maximum-requests", d.maximum_requests, false),
    ];
    let minimum = |option: &str| match option {
        "send-buffer-size" | "receive-buffer-size" => 512,
        "header-buffer-size" => 8192,
        "response-buffer-size" => 65536,
        _ => 0,
    };
    for (option, value, _) in &numbers {
        let flag = match *option {
            "listen-backlog" => "daemon-backlog",
            o => o,
        };
        if *value > INT_MAX {
            bail!("--{flag} {value} is too large (at most {INT_MAX})");
        }
        let min = minimum(option);
        if *value != 0 && *value < min {
            bail!("--{flag} {value} is too small: 0 (the default) or at least {min} bytes");
        }
    }
    let written = |&(option, value, always): &(&str, u32, bool)| {
        (always || value != 0).then(|| format!("{option}={value}"))
    };
    // mod_wsgi-express's order: maximum-requests, python-eggs, the rest.
    let mut out: Vec<String> = numbers[20..].iter().filter_map(written).collect();
    if let Some(dir) = python_eggs {
        out.push(format!("python-eggs=\"{}\"", dir.display()));
    }
    out.extend(numbers[..20].iter().filter_map(written));
    Ok(out)
}

/// The daemon group of `a` (its [`DaemonArgs`], `--embedded-mode`,
/// `--socket-timeout`, `--disable-reloading`) on `port`: validates the options and resolves
/// the paths. `None` with `--embedded-mode`, where the daemon options do
/// not apply (`warnings` then gets a note for those that change something
/// mod_wsgi-express ignores there too).
///
/// Errors: an invalid `--process-group`, a value the module would refuse
/// (see [`daemon_options`]), a `--python-eggs` that cannot be written into
/// httpd.conf.
pub fn build(
    a: &ServerArgs,
    port: u16,
    server_root: &Path,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<Daemon>> {
    let d = &a.daemon;
    if a.embedded_mode {
        let ignored: Vec<&str> = [
            (d.process_group.is_some(), "--process-group"),
            (d.reload_on_changes, "--reload-on-changes"),
            (d.python_eggs.is_some(), "--python-eggs"),
            (d.initial_workers.is_some(), "--initial-workers"),
            (d.minimum_spare_workers.is_some(), "--minimum-spare-workers"),
            (d.maximum_spare_workers.is_some(), "--maximum-spare-workers"),
        ]
        .iter()
        .filter(|(given, _)| *given)
        .map(|(_, name)| *name)
        .collect();
        if !ignored.is_empty() {
            warnings.push(format!(
                "{} only apply to daemon mode: ignored with --embedded-mode",
                ignored.join(", ")
            ));
        }
        return Ok(None);
    }
    let group = match &d.process_group {
        Some(g) => {
            plain_word("--process-group", g)?;
            g.clone()
        }
        None => format!("localhost:{port}"),
    };
    let python_eggs = match &d.python_eggs {
        Some(p) => {
            let p = absolute(cwd, p);
            conf_safe("--python-eggs", &p)?;
            Some(p)
        }
        None => None,
    };
    let mut options = daemon_options(d, a.socket_timeout, python_eggs.as_deref())?;
    if a.server_metrics {
        options.push("server-metrics=On".to_string());
    }
    let reloader = if d.reload_on_changes && a.disable_reloading {
        warnings.push(
            "--reload-on-changes has no effect with --disable-reloading (as in mod_wsgi-express)"
                .to_string(),
        );
        None
    } else {
        d.reload_on_changes.then(|| server_root.join("reloader.py"))
    };
    Ok(Some(Daemon {
        group,
        options,
        reloader,
        python_eggs,
        request_timeout: d.request_timeout,
        interrupt_timeout: d.interrupt_timeout,
        startup_timeout: d.startup_timeout,
        backlog: d.daemon_backlog,
        queue_timeout: d.queue_timeout,
    }))
}

/// Checks the `--ignore-activity` URL paths (start with `/`, no white
/// space, writable into httpd.conf) and returns them.
pub fn ignore_activity(urls: &[String]) -> Result<Vec<String>> {
    for url in urls {
        if !url.starts_with('/') || url.contains(char::is_whitespace) {
            bail!("--ignore-activity {url:?} must be a URL path starting with '/', without white space");
        }
        conf_safe_str("--ignore-activity", url)?;
    }
    Ok(urls.to_vec())
}

/// `WSGISocketPrefix` for `--socket-prefix DIR`: `DIR/wsgi`, as
/// mod_wsgi-express writes it. Errors: DIR is not an existing directory or
/// cannot be written into httpd.conf.
pub fn socket_prefix(dir: Option<&Path>, cwd: &Path) -> Result<Option<PathBuf>> {
    let Some(dir) = dir else { return Ok(None) };
    let dir = absolute(cwd, dir);
    if !dir.is_dir() {
        bail!("--socket-prefix {} is not a directory", dir.display());
    }
    let prefix = dir.join("wsgi");
    conf_safe("--socket-prefix", &prefix)?;
    Ok(Some(prefix))
}

/// The Apache children's spare-worker directives with mod_wsgi-express's
/// `--initial-workers`, `--minimum-spare-workers`, `--maximum-spare-workers`
/// (daemon mode: mod_wsgi-express's defaults for those not given; with none
/// given, event/worker get `two_relaying_children` instead).
///
/// The fractions are of `--max-clients`, counted in whole children for
/// event/worker: with `n = ServerLimit` children of `t = ThreadsPerChild`
/// threads, `StartServers = max(1, ⌊initial·n⌋)`, `MinSpareThreads =
/// max(t, ⌊min·n⌋·t)`, `MaxSpareThreads = max(t, ⌊max·n⌋·t)` (defaults
/// 0.2, the initial fraction, 0.6); for prefork, of `MaxRequestWorkers = m`:
/// `StartServers = max(1, ⌊initial·m⌋)`, `MinSpareServers = max(1,
/// ⌊min·m⌋)`, `MaxSpareServers = max(1, ⌊max·m⌋)` (defaults 0.05, the
/// initial fraction, 0.1). The maximum is then raised to what Apache would
/// raise it to (`MinSpareThreads + ThreadsPerChild`, `MinSpareServers + 1`)
/// so the file shows the values in effect.
pub fn worker_fractions(s: MpmSizing, mpm: Mpm, d: &DaemonArgs) -> MpmSizing {
    let given = d.initial_workers.is_some()
        || d.minimum_spare_workers.is_some()
        || d.maximum_spare_workers.is_some();
    if !given && mpm != Mpm::Prefork {
        return two_relaying_children(s, mpm);
    }
    let (initial_default, max_default) = match mpm {
        Mpm::Prefork => (0.05, 0.1),
        Mpm::Event | Mpm::Worker => (0.2, 0.6),
    };
    let initial = d.initial_workers.unwrap_or(initial_default);
    let min = d.minimum_spare_workers.unwrap_or(initial);
    let max = d.maximum_spare_workers.unwrap_or(max_default);
    let part = |f: f64, of: u32| (f * of as f64).floor() as u32;
    match mpm {
        Mpm::Prefork => {
            let m = s.max_request_workers;
            let min_spare = part(min, m).max(1);
            MpmSizing {
                start_servers: part(initial, m).max(1),
                min_spare,
                max_spare: part(max, m).max(1).max(min_spare + 1),
                ..s
            }
        }
        Mpm::Event | Mpm::Worker => {
            let (n, t) = (s.server_limit, s.threads_per_child);
            let min_spare = (part(min, n) * t).max(t);
            MpmSizing {
                start_servers: part(initial, n).max(1),
                min_spare,
                max_spare: (part(max, n) * t).max(t).max(min_spare + t),
                ..s
            }
        }
    }
}

/// Daemon mode under event/worker without `--initial-workers`,
/// `--minimum-spare-workers` or `--maximum-spare-workers`: the
/// `MaxRequestWorkers` relaying threads in two children (two, so that a
/// child that exits leaves another serving), both started with Apache and
/// kept (`StartServers 2`, `MinSpareThreads = ThreadsPerChild`,
/// `MaxSpareThreads = MaxRequestWorkers + ThreadsPerChild`; a higher
/// `MinSpareThreads` makes Apache log AH10159), and under event twice the
/// scoreboard slots (`ServerLimit 4`) for children still finishing their
/// requests after a graceful restart.
///
/// mod_wsgi-express starts one child of about 20 threads and adds others as
/// threads run out; while it does, the full child holds more kept-alive
/// connections than it has threads, and the event MPM closes them for want
/// of a worker (measured at 64 clients on 2 x 15: about 600 to 1,000 closed
/// connections in 4 s, none with two children of 36 threads). Four children
/// of 18 threads all started closed about 20 and cost 10 MiB more RSS.
fn two_relaying_children(s: MpmSizing, mpm: Mpm) -> MpmSizing {
    let threads = s.max_request_workers.div_ceil(2).max(1);
    MpmSizing {
        start_servers: 2,
        server_limit: if mpm == Mpm::Event { 4 } else { 2 },
        threads_per_child: threads,
        thread_limit: threads,
        max_request_workers: 2 * threads,
        min_spare: threads,
        max_spare: 3 * threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mpm_sizing;
    use crate::model::tests::Fixture;

    fn args(extra: &[&str]) -> DaemonArgs {
        let f = Fixture::new();
        let mut all = vec!["app.wsgi"];
        all.extend_from_slice(extra);
        f.args(&all).daemon
    }

    #[test]
    fn defaults_are_mod_wsgi_express_s() {
        let d = args(&[]);
        assert_eq!(d.process_group, None);
        assert_eq!(
            (d.request_timeout, d.interrupt_timeout, d.startup_timeout),
            (60, 0, 15)
        );
        assert_eq!(
            (d.queue_timeout, d.deadlock_timeout, d.daemon_backlog),
            (45, 60, 100)
        );
        assert_eq!(
            (d.connect_timeout, d.graceful_timeout, d.shutdown_timeout),
            (15, 15, 5)
        );
        assert_eq!(
            (
                d.eviction_timeout,
                d.inactivity_timeout,
                d.restart_interval,
                d.cpu_time_limit
            ),
            (0, 0, 0, 0)
        );
        assert_eq!(
            (
                d.send_buffer_size,
                d.receive_buffer_size,
                d.header_buffer_size,
                d.response_buffer_size,
                d.response_socket_timeout
            ),
            (0, 0, 0, 0, 0)
        );
        assert!(!d.reload_on_changes && d.ignore_activity.is_empty());
        assert!(d.socket_prefix.is_none() && d.python_eggs.is_none());
        assert!(d.initial_workers.is_none());
    }

    #[test]
    fn default_options_in_mod_wsgi_express_order() {
        let o = daemon_options(&args(&[]), 60, None).unwrap();
        assert_eq!(
            o.join(" "),
            "listen-backlog=100 queue-timeout=45 socket-timeout=60 connect-timeout=15 \
             request-timeout=60 startup-timeout=15 deadlock-timeout=60 graceful-timeout=15 \
             shutdown-timeout=5 response-flush-delay=5"
        );
    }

    #[test]
    fn every_option_reaches_its_name() {
        let d = args(&[
            "--maximum-requests",
            "100",
            "--interrupt-timeout",
            "3",
            "--inactivity-timeout",
            "30",
            "--eviction-timeout",
            "7",
            "--restart-interval",
            "3600",
            "--cpu-time-limit",
            "20",
            "--send-buffer-size",
            "1024",
            "--receive-buffer-size",
            "2048",
            "--header-buffer-size",
            "65536",
            "--response-buffer-size",
            "131072",
            "--response-socket-timeout",
            "9",
            "--response-flush-delay",
            "0",
            "--daemon-backlog",
            "50",
            "--queue-timeout",
            "0",
            "--startup-timeout",
            "0",
            "--deadlock-timeout",
            "0",
        ]);
        let o = daemon_options(&d, 30, Some(Path::new("/srv/eggs"))).unwrap();
        assert_eq!(
            o,
            [
                "maximum-requests=100",
                "python-eggs=\"/srv/eggs\"",
                "listen-backlog=50",
                "queue-timeout=0",
                "socket-timeout=30",
                "connect-timeout=15",
                "request-timeout=60",
                "interrupt-timeout=3",
                "inactivity-timeout=30",
                "startup-timeout=0",
                "deadlock-timeout=0",
                "graceful-timeout=15",
                "eviction-timeout=7",
                "restart-interval=3600",
                "cpu-time-limit=20",
                "shutdown-timeout=5",
                "send-buffer-size=1024",
                "receive-buffer-size=2048",
                "header-buffer-size=65536",
                "response-buffer-size=131072",
                "response-socket-timeout=9",
                "response-flush-delay=0",
            ]
        );
    }

    #[test]
    fn values_the_module_refuses_are_errors() {
        for (extra, needle) in [
            (
                ["--send-buffer-size", "100"],
                "--send-buffer-size 100 is too small",
            ),
            (["--header-buffer-size", "4096"], "at least 8192 bytes"),
            (["--response-buffer-size", "1000"], "at least 65536 bytes"),
            (["--queue-timeout", "3000000000"], "is too large"),
        ] {
            let e = daemon_options(&args(&extra), 60, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
    }

    #[test]
    fn group_name_reloader_and_embedded_mode() {
        let f = Fixture::new();
        let (root, cwd) = (Path::new("/r"), Path::new("/w"));
        let mut w = Vec::new();
        let build_with = |extra: &[&str], w: &mut Vec<String>| {
            let mut all = vec!["app.wsgi"];
            all.extend_from_slice(extra);
            build(&f.args(&all), 8000, root, cwd, w)
        };
        let d = build_with(&[], &mut w).unwrap().unwrap();
        assert_eq!(
            (d.group.as_str(), d.reloader.as_ref()),
            ("localhost:8000", None)
        );
        let given = [
            "--process-group",
            "site",
            "--reload-on-changes",
            "--python-eggs",
            "eggs",
        ];
        let d = build_with(&given, &mut w).unwrap().unwrap();
        assert_eq!(d.group, "site");
        assert_eq!(d.reloader.as_deref(), Some(Path::new("/r/reloader.py")));
        assert_eq!(d.python_eggs.as_deref(), Some(Path::new("/w/eggs")));
        assert!(
            d.options.contains(&"python-eggs=\"/w/eggs\"".to_string()),
            "{:?}",
            d.options
        );
        assert!(w.is_empty(), "{w:?}");
        // --disable-reloading wins, as in mod_wsgi-express.
        let d = build_with(&[&given[..], &["--disable-reloading"]].concat(), &mut w)
            .unwrap()
            .unwrap();
        assert_eq!(d.reloader, None);
        assert!(w[0].contains("no effect with --disable-reloading"), "{w:?}");
        w.clear();
        let d = build_with(&[&given[..], &["--embedded-mode"]].concat(), &mut w).unwrap();
        assert_eq!(d, None);
        assert!(
            w[0].starts_with("--process-group, --reload-on-changes, --python-eggs only apply"),
            "{w:?}"
        );
        for bad in ["my group", "a=b", "it's", ""] {
            assert!(
                build_with(&["--process-group", bad], &mut w).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ignore_activity_and_socket_prefix() {
        let urls = vec!["/health".to_string(), "/ping/".to_string()];
        assert_eq!(ignore_activity(&urls).unwrap(), urls);
        assert!(ignore_activity(&["health".into()]).is_err());
        assert!(ignore_activity(&["/a b".into()]).is_err());
        let f = Fixture::new();
        let p = socket_prefix(Some(Path::new("app")), &f.path("")).unwrap();
        assert_eq!(p, Some(f.path("app/wsgi")));
        assert_eq!(socket_prefix(None, Path::new("/")).unwrap(), None);
        let e = socket_prefix(Some(Path::new("/nonexistent")), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn fractions_are_checked() {
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert!(fraction("1.5").is_err());
        assert!(fraction("-0.1").is_err());
        assert!(fraction("x").is_err());
    }

    #[test]
    fn worker_fractions_as_mod_wsgi_express() {
        let base = mpm_sizing(Mpm::Event, 1, 5, 40);
        // None given: two children holding every thread, both up front
        // and kept, twice the slots.
        let s = worker_fractions(base, Mpm::Event, &args(&[]));
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (2, 20, 60));
        assert_eq!(
            (s.server_limit, s.threads_per_child, s.thread_limit),
            (4, 20, 20)
        );
        assert_eq!(s.max_request_workers, 40);
        let s = worker_fractions(mpm_sizing(Mpm::Worker, 2, 18, 55), Mpm::Worker, &args(&[]));
        assert_eq!(
            (s.start_servers, s.server_limit, s.threads_per_child),
            (2, 2, 36)
        );
        assert_eq!(s.max_request_workers, 72);
        // One given: mod_wsgi-express's defaults for the others (0.2, 0.6).
        let s = worker_fractions(base, Mpm::Event, &args(&["--maximum-spare-workers", "0.6"]));
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (1, 5, 20));
        // 8 children of 5 threads: 0.5 -> 4 children, spares in whole children.
        let s = worker_fractions(base, Mpm::Event, &args(&["--initial-workers", "0.5"]));
        assert_eq!((s.server_limit, s.threads_per_child), (8, 5));
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (4, 20, 25));
        let s = worker_fractions(
            base,
            Mpm::Worker,
            &args(&[
                "--minimum-spare-workers",
                "0.25",
                "--maximum-spare-workers",
                "1",
            ]),
        );
        // initial 0.2 of 8 = 1; min 2 children = 10 threads; max 8 children.
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (1, 10, 40));
        // 0: one child, one child's threads spare; max 0.6 of 8 = 4 children.
        let s = worker_fractions(base, Mpm::Event, &args(&["--initial-workers", "0"]));
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (1, 5, 20));
        let base = mpm_sizing(Mpm::Prefork, 1, 5, 40);
        let s = worker_fractions(
            base,
            Mpm::Prefork,
            &args(&["--maximum-spare-workers", "0.5"]),
        );
        // initial 0.05 of 40 = 2, min = initial, max 20.
        assert_eq!((s.start_servers, s.min_spare, s.max_spare), (2, 2, 20));
        assert_eq!(s.max_request_workers, 40);
    }
}
