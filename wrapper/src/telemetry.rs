//! mod_wsgi-express 6.1's telemetry options: `--telemetry-service TARGET`,
//! `--telemetry-interval SECONDS`, `--slow-requests SECONDS` and
//! `--telemetry-options ARGS` become the module's `WSGITelemetryService
//! TARGET interval=SECONDS`, `WSGISlowRequests SECONDS` and one
//! `WSGITelemetryOptions ARGS` per occurrence, as mod_wsgi-express writes
//! them; `--enable-telemetry` runs the `mod_wsgi-telemetry` ingester (its
//! `mod_wsgi.telemetry.server.main`) as the managed service `telemetry`,
//! listening on `<server root>/telemetry/telemetry.sock` (mod_wsgi-express:
//! `<server root>/telemetry.sock`; a directory of its own lets the service's
//! user create it when the server root is root's) with its web UI on
//! `127.0.0.1:--telemetry-ui-port`, and points `WSGITelemetryService` at it.
//!
//! [`build`] validates with mod_wsgi-express's rules and messages, and
//! with the module's own parsers (`rwsgi_core::telemetry`), so that a value
//! the module would refuse at configtest is refused here, naming the option.
//! Whether the ingester package is importable is checked by
//! [`crate::setup`] with the Python in use (see [`Telemetry::ingester`]).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use clap::Args;
use serde::Serialize;

/// The telemetry options (field comments are the `--help` texts).
#[derive(Debug, Clone, Args)]
pub struct TelemetryArgs {
    /// Target metrics service to push telemetry to (WSGITelemetryService): "unix:/path/to/socket", a local datagram socket [default: none].
    #[arg(long, value_name = "TARGET")]
    pub telemetry_service: Option<String>,

    /// Run the mod_wsgi-telemetry ingester and web UI as the managed service 'telemetry' (needs the mod_wsgi-telemetry package in the Python home) and report to it; not with --telemetry-service.
    #[arg(long)]
    pub enable_telemetry: bool,

    /// HTTP port of the telemetry web UI (on 127.0.0.1) with --enable-telemetry.
    #[arg(long, default_value_t = 8888, value_name = "NUMBER")]
    pub telemetry_ui_port: u16,

    /// Interval in seconds between the reports of each process (interval= of WSGITelemetryService, at least 0.5).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub telemetry_interval: f64,

    /// Report requests running or taking longer than SECONDS (WSGISlowRequests); needs a telemetry target [default: off].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub slow_requests: Option<f64>,

    /// A WSGITelemetryOptions directive's arguments, e.g. "+CaptureUserAgent" (repeatable: one directive each).
    #[arg(
        long = "telemetry-options",
        value_name = "ARGS",
        allow_hyphen_values = true
    )]
    pub telemetry_options: Vec<String>,
}

/// The ingester service of `--enable-telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingester {
    /// `<server root>/telemetry`, the socket's directory: created by
    /// [`crate::setup`] and, as root, given to `--user`, who runs the service
    /// and must be able to create the socket.
    pub directory: PathBuf,
    /// `<server root>/telemetry/telemetry.sock`, where it listens.
    pub socket: PathBuf,
    /// `<server root>/telemetry-service.py`, the service script.
    pub script: PathBuf,
    /// `--telemetry-ui-port`.
    pub ui_port: u16,
}

/// The telemetry directives to write.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Telemetry {
    /// The `WSGITelemetryService` target (`unix:/path`), if any.
    pub service: Option<String>,
    /// Its `interval=`, written as mod_wsgi-express writes the float (`1.0`).
    pub interval: String,
    /// `WSGISlowRequests` seconds, if given.
    pub slow_requests: Option<String>,
    /// One `WSGITelemetryOptions` line per `--telemetry-options`.
    pub options: Vec<String>,
    /// `--enable-telemetry`: the ingester service. Its package
    /// (`mod_wsgi.telemetry.server`) must be importable by the Python home's
    /// interpreter, which [`crate::setup`] checks.
    pub ingester: Option<Ingester>,
}

/// A float as Python's `str()` writes it for these values (`1.0`, `0.5`,
/// `2.25`): Rust's shortest representation, with `.0` added to integers.
pub fn python_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

/// Validates the options and resolves the directives.
///
/// Inputs: the options, the server root (where `--enable-telemetry`'s socket
/// and script go) and the names of the `--service-script` services.
/// Errors, with mod_wsgi-express's wording where it has one:
/// `--enable-telemetry` with `--telemetry-service`, or with a service named
/// `telemetry`; a target that is not `unix:/path` (or whose path is too
/// long for a UNIX socket); a `--telemetry-interval` under 0.5 or not a
/// number; a negative `--slow-requests`, or one without a telemetry
/// target; a `--telemetry-options` value the module refuses (unknown flag,
/// mixed `+`/`-` and absolute forms).
pub fn build(a: &TelemetryArgs, server_root: &Path, services: &[String]) -> Result<Telemetry> {
    if a.enable_telemetry && a.telemetry_service.is_some() {
        bail!(
            "--enable-telemetry and --telemetry-service are mutually exclusive: \
             --enable-telemetry generates an ingester service and points the WSGI \
             processes at it, so an explicit telemetry target would conflict."
        );
    }
    if a.enable_telemetry && services.iter().any(|s| s == "telemetry") {
        bail!(
            "--enable-telemetry generates a service named 'telemetry'; rename the \
             conflicting --service-script entry or drop --enable-telemetry."
        );
    }
    let ingester = a.enable_telemetry.then(|| Ingester {
        directory: server_root.join("telemetry"),
        socket: server_root.join("telemetry").join("telemetry.sock"),
        script: server_root.join("telemetry-service.py"),
        ui_port: a.telemetry_ui_port,
    });
    let service = match (&a.telemetry_service, &ingester) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(i)) => Some(format!("unix:{}", i.socket.display())),
        (None, None) => None,
    };
    let interval = python_float(a.telemetry_interval);
    if let Some(target) = &service {
        if !target.starts_with("unix:") {
            bail!(
                "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' \
                 targets are no longer supported)"
            );
        }
        if target.contains(|c: char| c.is_whitespace() || c == '"' || c.is_control()) {
            bail!("--telemetry-service {target:?} must not contain white space or quotes");
        }
        rwsgi_core::telemetry::parse_telemetry_service(
            target,
            Some(&format!("interval={interval}")),
        )
        .map_err(|e| anyhow!("--telemetry-service/--telemetry-interval: {}", e.message))?;
    }
    let slow_requests = match a.slow_requests {
        None => None,
        Some(s) if s < 0.0 || !s.is_finite() => {
            bail!("--slow-requests threshold must be non-negative")
        }
        Some(_) if service.is_none() => bail!("--slow-requests requires --telemetry-service"),
        Some(s) => Some(python_float(s)),
    };
    let mut flags = 0;
    for o in &a.telemetry_options {
        let words = rwsgi_core::directives::split_words("WSGITelemetryOptions", o)
            .map_err(|e| anyhow!("--telemetry-options {o:?}: {}", e.message))?;
        if o.contains(|c: char| c == '"' || c.is_control()) {
            bail!("--telemetry-options {o:?} must not contain quotes");
        }
        flags = rwsgi_core::telemetry::apply_telemetry_options(flags, &words)
            .map_err(|e| anyhow!("--telemetry-options {o:?}: {}", e.message))?;
    }
    Ok(Telemetry {
        service,
        interval,
        slow_requests,
        options: a.telemetry_options.clone(),
        ingester,
    })
}

/// The `--enable-telemetry` service script, as mod_wsgi-express writes it:
/// `mod_wsgi.telemetry.server.main` listening on the socket, its UI on
/// `127.0.0.1:PORT`, log level INFO.
pub fn ingester_script(i: &Ingester) -> String {
    format!(
        "# Generated by rwsgi-express --enable-telemetry: runs the mod_wsgi-telemetry\n\
         # ingester and web UI in the managed service 'telemetry' (a daemon process\n\
         # group without request threads). The WSGI processes report to the UNIX\n\
         # socket below (WSGITelemetryService in httpd.conf).\n\
         \n\
         import os\n\
         import sys\n\
         \n\
         import mod_wsgi\n\
         \n\
         # The module's mod_wsgi is built in, not the package mod_wsgi-telemetry\n\
         # installs into: let its subpackages be found on sys.path.\n\
         if not hasattr(mod_wsgi, \"__path__\"):\n\
         \x20   mod_wsgi.__path__ = [d for d in (os.path.join(p, \"mod_wsgi\") for p in sys.path)\n\
         \x20                        if os.path.isdir(d)]\n\
         \n\
         import asyncio\n\
         \n\
         # rwsgi runs a service script in a thread of its own, where asyncio cannot\n\
         # install signal handlers (the ingester then falls back to signal.signal,\n\
         # which WSGIRestrictSignal ignores: the process's signals are Apache's).\n\
         class _Loop(asyncio.SelectorEventLoop):\n\
         \x20   def add_signal_handler(self, sig, callback, *args):\n\
         \x20       raise NotImplementedError\n\
         \n\
         \n\
         class _Policy(asyncio.DefaultEventLoopPolicy):\n\
         \x20   _loop_factory = _Loop\n\
         \n\
         \n\
         asyncio.set_event_loop_policy(_Policy())\n\
         \n\
         from mod_wsgi.telemetry.server import main\n\
         \n\
         main([\n    \"--listen\", {},\n    \"--http-host\", \"127.0.0.1\",\n    \
         \"--http-port\", \"{}\",\n    \"--log-level\", \"INFO\",\n])\n",
        crate::render::python_literal(&format!("unix:{}", i.socket.display())),
        i.ui_port
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> TelemetryArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            t: TelemetryArgs,
        }
        let mut v = vec!["t"];
        v.extend_from_slice(extra);
        T::try_parse_from(v).unwrap().t
    }

    fn build_ok(extra: &[&str]) -> Telemetry {
        build(&args(extra), Path::new("/srv/root"), &[]).unwrap()
    }

    fn build_err(extra: &[&str]) -> String {
        build(&args(extra), Path::new("/srv/root"), &[])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_mod_wsgi_express_ones() {
        let t = build_ok(&[]);
        assert_eq!(
            t,
            Telemetry {
                interval: "1.0".into(),
                ..Default::default()
            }
        );
        assert_eq!(args(&[]).telemetry_ui_port, 8888);
    }

    #[test]
    fn service_interval_slow_and_options() {
        let t = build_ok(&[
            "--telemetry-service",
            "unix:/tmp/t.sock",
            "--telemetry-interval",
            "2.5",
            "--slow-requests",
            "3",
            "--telemetry-options",
            "+CaptureUserAgent",
            "--telemetry-options",
            "None",
        ]);
        assert_eq!(t.service.as_deref(), Some("unix:/tmp/t.sock"));
        assert_eq!(t.interval, "2.5");
        assert_eq!(t.slow_requests.as_deref(), Some("3.0"));
        assert_eq!(t.options, vec!["+CaptureUserAgent", "None"]);
    }

    #[test]
    fn refusals() {
        assert!(build_err(&["--telemetry-service", "udp:1.2.3.4:9"])
            .starts_with("--telemetry-service must be 'unix:/path'"));
        assert!(build_err(&["--slow-requests", "1"])
            .contains("--slow-requests requires --telemetry-service"));
        assert!(
            build_err(&["--telemetry-service", "unix:/t", "--slow-requests", "-1"])
                .contains("non-negative")
        );
        assert!(build_err(&[
            "--telemetry-service",
            "unix:/t",
            "--telemetry-interval",
            "0.1"
        ])
        .contains("at least 0.5"));
        assert!(build_err(&["--telemetry-options", "+Bogus"]).contains("unknown flag 'Bogus'"));
        assert!(
            build_err(&["--telemetry-options", "+CaptureUserAgent CaptureUserAgent"])
                .starts_with("--telemetry-options")
        );
        assert!(
            build_err(&["--enable-telemetry", "--telemetry-service", "unix:/t"])
                .contains("mutually exclusive")
        );
        let e = build(
            &args(&["--enable-telemetry"]),
            Path::new("/r"),
            &["telemetry".into()],
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("service named 'telemetry'"));
    }

    #[test]
    fn enable_telemetry_reports_to_its_ingester() {
        let t = build_ok(&["--enable-telemetry", "--telemetry-ui-port", "9999"]);
        assert_eq!(
            t.service.as_deref(),
            Some("unix:/srv/root/telemetry/telemetry.sock")
        );
        let i = t.ingester.unwrap();
        assert_eq!(i.script, Path::new("/srv/root/telemetry-service.py"));
        let s = ingester_script(&i);
        assert!(
            s.contains("from mod_wsgi.telemetry.server import main"),
            "{s}"
        );
        assert!(
            s.contains("\"--listen\", \"unix:/srv/root/telemetry/telemetry.sock\""),
            "{s}"
        );
        assert!(s.contains("\"--http-port\", \"9999\""), "{s}");
    }

    #[test]
    fn floats_as_python_writes_them() {
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.5), "0.5");
        assert_eq!(python_float(10.0), "10.0");
    }

    #[test]
    fn directives_in_httpd_conf() {
        let f = crate::model::tests::Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--telemetry-service",
                "unix:/tmp/t.sock",
                "--slow-requests",
                "0.5",
                "--telemetry-options",
                "+CaptureUserAgent",
                "--free-threading",
            ])
            .unwrap();
        let t = crate::render::httpd_conf(&c).unwrap();
        for line in [
            "WSGITelemetryService unix:/tmp/t.sock interval=1.0",
            "WSGISlowRequests 0.5",
            "WSGITelemetryOptions +CaptureUserAgent",
            "WSGIFreeThreading On",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
        assert!(!crate::render::strip_wsgi(&t).contains("WSGITelemetry"));
        let c = f.config(&["app.wsgi", "--enable-telemetry"]).unwrap();
        assert_eq!(c.services.last().unwrap().group, "service:telemetry");
        assert_eq!(
            c.python_requirements,
            vec![(
                "mod_wsgi.telemetry.server".to_string(),
                "--enable-telemetry".to_string(),
                "mod_wsgi-telemetry".to_string()
            )]
        );
    }
}
