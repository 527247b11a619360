//! Python interpreter options: `--switch-interval`, `--python-warnings`,
//! `--orphan-interpreter`, `--free-threading` and the hidden `--verbose-debugging` (a clap group
//! flattened into [`crate::cli::ServerArgs`]).
//!
//! As mod_wsgi-express 6.1.1 writes them: `WSGISwitchInterval SECONDS`
//! (embedded mode and every interpreter the module starts) plus
//! `switch-interval=SECONDS` on the `WSGIDaemonProcess`, and one
//! `WSGIPythonWarnings 'SPEC'` per `--python-warnings`, in order;
//! `WSGIDestroyInterpreter Off` for `--orphan-interpreter` (the module's
//! default is On, which mod_wsgi-express writes otherwise);
//! `WSGIVerboseDebugging On` for `--verbose-debugging`;
//! `WSGIFreeThreading On` for `--free-threading`. The
//! values are checked as the module checks them, so a bad one fails before
//! Apache starts.

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

/// The interpreter options (field comments are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct PythonArgs {
    /// Python's thread switch interval in seconds (sys.setswitchinterval; WSGISwitchInterval and the daemon's switch-interval=) [default: Python's, 0.005].
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub switch_interval: Option<f64>,

    /// An entry of the Python warnings filter, as python -W takes it: action[:message[:category[:module[:lineno]]]] (WSGIPythonWarnings; repeatable), e.g. error or ignore::DeprecationWarning.
    #[arg(long = "python-warnings", value_name = "SPEC")]
    pub python_warnings: Vec<String>,

    /// Do not destroy the Python interpreters when a process exits: their atexit callbacks are skipped (WSGIDestroyInterpreter Off; mod_wsgi.subscribe_shutdown callbacks still run).
    #[arg(long)]
    pub orphan_interpreter: bool,

    /// Run Python without the GIL (WSGIFreeThreading On); needs a free-threaded Python build (PEP 703, --disable-gil) in the Python home.
    #[arg(long)]
    pub free_threading: bool,

    /// WSGIVerboseDebugging On (deprecated in mod_wsgi 6, no effect but a warning; hidden, as in mod_wsgi-express).
    #[arg(long, hide = true)]
    pub verbose_debugging: bool,
}

/// The interpreter settings, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PythonSettings {
    /// `--switch-interval`, as written into httpd.conf.
    pub switch_interval: Option<String>,
    /// `--python-warnings`, in order.
    pub warnings: Vec<String>,
    /// `--orphan-interpreter`.
    pub orphan_interpreter: bool,
    /// `--verbose-debugging`.
    pub verbose_debugging: bool,
    /// `--free-threading`: `WSGIFreeThreading On`. [`crate::setup`] checks
    /// first, as mod_wsgi-express does, that the Python in use is a
    /// free-threaded build (`sysconfig` `Py_GIL_DISABLED`).
    pub free_threading: bool,
}

/// Python's `-W` actions (a prefix of one is accepted, as Python does).
const ACTIONS: &[&str] = &["default", "error", "ignore", "always", "module", "once"];

/// Validates the options. Errors (naming the option and the value): a
/// switch interval that is not a positive number of seconds (at most 10^6),
/// a warnings spec with more than five fields, an unknown action, a line
/// number that is not a number, or a quote/control character.
pub fn build(a: &PythonArgs) -> Result<PythonSettings> {
    let switch_interval = match a.switch_interval {
        Some(s) if !(s > 0.0 && s.is_finite() && s <= 1e6) => {
            bail!("--switch-interval {s} must be a positive number of seconds, e.g. 0.005")
        }
        Some(s) => Some(s.to_string()),
        None => None,
    };
    for spec in &a.python_warnings {
        let fields: Vec<&str> = spec.split(':').collect();
        let action = fields[0].trim().to_ascii_lowercase();
        let bad = if spec.is_empty() || fields.len() > 5 {
            Some("expected action[:message[:category[:module[:lineno]]]] as for python -W")
        } else if !action.is_empty() && !ACTIONS.iter().any(|a| a.starts_with(&action)) {
            Some("the action must be one of default, error, ignore, always, module, once")
        } else if fields
            .get(4)
            .is_some_and(|l| !l.trim().is_empty() && l.trim().parse::<u32>().is_err())
        {
            Some("the line number must be a number")
        } else if spec.contains(['\'', '"']) || spec.chars().any(char::is_control) {
            Some("quotes and control characters cannot be written into httpd.conf")
        } else {
            None
        };
        if let Some(why) = bad {
            bail!("--python-warnings {spec:?}: {why}");
        }
    }
    Ok(PythonSettings {
        switch_interval,
        warnings: a.python_warnings.clone(),
        orphan_interpreter: a.orphan_interpreter,
        verbose_debugging: a.verbose_debugging,
        free_threading: a.free_threading,
    })
}

#[cfg(test)]
mod tests {
    use crate::model::tests::Fixture;
    use crate::render;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    #[test]
    fn switch_interval_and_warnings_reach_httpd_conf() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--switch-interval",
                "0.01",
                "--python-warnings",
                "error",
                "--python-warnings",
                "ignore::DeprecationWarning",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        for line in [
            "WSGISwitchInterval 0.01",
            "WSGIPythonWarnings 'error'",
            "WSGIPythonWarnings 'ignore::DeprecationWarning'",
            "Define MOD_WSGI_SWITCH_INTERVAL",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        let daemon = t
            .lines()
            .find(|l| l.starts_with("WSGIDaemonProcess"))
            .unwrap();
        assert!(daemon.ends_with(" switch-interval=0.01"), "{daemon}");
        assert!(!render::strip_wsgi(&t).contains("WSGISwitchInterval"));
        // Not given: nothing written.
        let t = render::httpd_conf(&f.config(&["app.wsgi"]).unwrap()).unwrap();
        assert!(!t.contains("switch-interval") && !t.contains("WSGIPythonWarnings"));
    }

    #[test]
    fn orphan_interpreter_and_verbose_debugging() {
        let f = Fixture::new();
        let t = render::httpd_conf(&f.config(&["app.wsgi"]).unwrap()).unwrap();
        assert!(!t.contains("WSGIDestroyInterpreter") && !t.contains("WSGIVerboseDebugging"));
        assert!(!t.contains("ORPHAN_INTERPRETER"));
        let c = f
            .config(&["app.wsgi", "--orphan-interpreter", "--verbose-debugging"])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        for line in [
            "WSGIDestroyInterpreter Off",
            "WSGIVerboseDebugging On",
            "Define ORPHAN_INTERPRETER",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        assert!(!render::strip_wsgi(&t).contains("WSGIDestroyInterpreter"));
    }

    #[test]
    fn bad_values_are_refused() {
        let f = Fixture::new();
        for (args, needle) in [
            (
                &["--switch-interval", "0"][..],
                "--switch-interval 0 must be",
            ),
            (&["--switch-interval", "-1"], "must be a positive number"),
            (
                &["--python-warnings", "explode"],
                "the action must be one of",
            ),
            (&["--python-warnings", "a:b:c:d:e:f"], "expected action"),
            (&["--python-warnings", "error::W:m:x"], "line number"),
            (&["--python-warnings", "error:it's"], "quotes"),
        ] {
            let e = f
                .config(&[&["app.wsgi"][..], args].concat())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }
}
