//! `rwsgi-express doctor`: checks a set-up before anything starts, one line
//! per check with `OK`, `WARN` or `FAIL` and, for the last two, the fix.
//!
//! The checks ([`docs/doctor.md`](../../docs/doctor.md) lists them with
//! their error ids, RWSGI0150–RWSGI0158):
//!
//! - `python`: the Python home is a prefix or virtualenv of the Python whose
//!   libpython the module links ([`python`]);
//! - `python-access`, `app-access`: `--user` can read the Python
//!   installation and the application ([`access`]);
//! - `app`: the application imports and has its callable, in a subprocess
//!   run as `--user` by the home's Python, with a timeout ([`app`]);
//! - `port`, `https-port`: the ports are free and bindable on `--host`
//!   ([`network`]);
//! - `sockets`: the daemon socket directory is usable ([`server`]);
//! - `mpm`: the MPM and thread settings fit the processes, threads and
//!   clients asked for ([`server`]);
//! - `https`: mod_ssl is present and the certificate and key exist, parse
//!   and match ([`tls`]);
//! - `options`: the options are accepted by the launcher
//!   ([`crate::model::ServerConfig::build`]).
//!
//! `start-server` and `setup-server` run the fast subset ([`preflight`]:
//! no import, no subprocess as another user; a few milliseconds) and refuse
//! to go on when one fails.

use std::fmt;
use std::path::PathBuf;

use clap::Args;

use crate::build_info::BuildInfo;
use crate::cli::ServerArgs;
use crate::model::{HostFacts, ServerConfig};

pub mod access;
pub mod app;
pub mod network;
pub mod python;
pub mod server;
pub mod tls;

/// Options of `doctor`: those of `setup-server`/`start-server`, plus the
/// import timeout (field comments are the `--help` texts).
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The options of setup-server/start-server, checked as they would be used.
    #[command(flatten)]
    pub server: ServerArgs,

    /// Seconds the application's import (run as --user) may take before the check fails.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub import_timeout: u32,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Nothing to fix.
    Ok,
    /// Works, but probably not as intended.
    Warn,
    /// Would not work: Apache would not start, or the application would fail.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        })
    }
}

/// The result of one check: which, how it went, what was found and, for a
/// warning or failure, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Short name of the check (`python`, `port`, ...).
    pub check: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found; for `Warn`/`Fail` it starts with the RWSGI error id.
    pub message: String,
    /// What to do about it (`Warn`/`Fail` only).
    pub fix: Option<String>,
}

impl Finding {
    /// An `OK` finding.
    pub fn ok(check: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            check,
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    /// A `WARN` finding: `message` should start with its RWSGI id.
    pub fn warn(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// A `FAIL` finding: `message` should start with its RWSGI id.
    pub fn fail(
        check: &'static str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Finding {
    /// One line: `FAIL  port          RWSGI0153: ... -- fix: ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<5} {:<13} {}", self.status, self.check, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, " -- fix: {fix}")?;
        }
        Ok(())
    }
}

/// The exit status of `doctor` for `findings`: 0 when all are OK, 1 when
/// the worst is a warning, 2 when one failed.
pub fn exit_status(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.status).max() {
        None | Some(Status::Ok) => 0,
        Some(Status::Warn) => 1,
        Some(Status::Fail) => 2,
    }
}

/// The name of the user Apache's children run as: `--user` when run as
/// root, else the name of `euid` (`#uid` when it has none).
pub fn children_user(c: &ServerConfig, euid: u32) -> String {
    match &c.run_as {
        Some(r) => r.user.clone(),
        None => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid))
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| format!("#{euid}")),
    }
}

/// A finding for a check that could not run because an earlier one failed.
fn not_checked(check: &'static str, because: &str) -> Finding {
    Finding::warn(
        check,
        format!("RWSGI0158: not checked: {because}"),
        "fix the failure named, then run doctor again",
    )
}

/// The Python home the configuration would use: `--python-home`, else
/// `$VIRTUAL_ENV`, else the prefix of the Python the launcher was built for
/// (the model's rule), made absolute against the current directory.
pub fn chosen_python_home(a: &ServerArgs, host: &HostFacts, build: &BuildInfo) -> Option<PathBuf> {
    a.python_home
        .clone()
        .or_else(|| host.virtual_env.clone())
        .or_else(|| build.python_home.clone())
        .map(|h| crate::model::absolute(&host.cwd, &h))
}

/// Every check of `doctor`, in the order printed.
///
/// Inputs: the options, the host and build facts. The checks that need the
/// validated model (access, import, sockets, MPM) are reported as not
/// checked when the options are refused; the others run on the options
/// alone, so a wrong Python home is named even when the model refuses it.
pub fn run_all(d: &DoctorArgs, host: &HostFacts, build: &BuildInfo) -> Vec<Finding> {
    let a = &d.server;
    let mut out = Vec::new();
    let config = ServerConfig::build(a, host, build);
    let module = crate::module::find_module(
        host.module_override.as_deref(),
        host.exe_dir.as_deref(),
        &crate::model::absolute(&host.cwd, &a.modules_directory),
    );
    let python = python::check(
        module.as_deref().ok(),
        chosen_python_home(a, host, build).as_deref(),
        build,
    );
    let python_ok = python.status != Status::Fail;
    out.push(python);
    match &config {
        Ok(c) => {
            out.push(Finding::ok("options", "the options are accepted"));
            for w in &c.warnings {
                out.push(Finding::warn(
                    "options",
                    format!("RWSGI0158: {w}"),
                    "change the option named",
                ));
            }
            out.extend(access::check(c));
            if python_ok {
                out.push(app::check(
                    c,
                    std::time::Duration::from_secs(d.import_timeout.into()),
                ));
            } else {
                out.push(not_checked(
                    "app",
                    "the Python home does not match the module's Python (see the python line)",
                ));
            }
        }
        Err(e) => {
            out.push(Finding::fail(
                "options",
                format!("RWSGI0158: the launcher refuses the options: {e:#}"),
                "correct the option named (setup-server and start-server refuse it too)",
            ));
            for check in ["python-access", "app-access", "app"] {
                out.push(not_checked(
                    check,
                    "the options are refused (see the options line)",
                ));
            }
        }
    }
    out.extend(network::check(a, host));
    match &config {
        Ok(c) => {
            out.push(server::sockets(c, host));
            out.push(server::mpm(c));
        }
        Err(_) => {
            for check in ["sockets", "mpm"] {
                out.push(not_checked(
                    check,
                    "the options are refused (see the options line)",
                ));
            }
        }
    }
    out.extend(tls::check(a, host));
    out
}

/// The fast subset run by `setup-server` and `start-server` on a model that
/// was built: the Python match, the daemon socket directory, the MPM
/// settings, mod_ssl and the certificate, and (`ports`, for `start-server`)
/// the ports. No application import and no subprocess as another user: it
/// takes milliseconds (one `ldd`, and `openssl` calls when HTTPS is used).
pub fn preflight(
    a: &ServerArgs,
    c: &ServerConfig,
    host: &HostFacts,
    build: &BuildInfo,
    ports: bool,
) -> Vec<Finding> {
    let mut out = vec![python::check(
        Some(&c.module_path),
        Some(&c.python_home),
        build,
    )];
    if ports {
        out.extend(network::check(a, host));
    }
    out.push(server::sockets(c, host));
    out.push(server::mpm(c));
    out.extend(tls::check(a, host));
    out
}

/// `setup-server`/`start-server`'s use of [`preflight`]: prints the
/// warnings to stderr and returns an error made of the failures' lines
/// when one failed. When the model cannot be built nothing is checked
/// here (the launcher then reports the options' error itself).
pub fn refuse_on_failure(a: &ServerArgs, start: bool) -> anyhow::Result<()> {
    let host = HostFacts::current()?;
    let build = BuildInfo::embedded();
    let Ok(c) = ServerConfig::build(a, &host, &build) else {
        return Ok(());
    };
    let findings = preflight(a, &c, &host, &build, start && !a.setup_only);
    let mut failures = Vec::new();
    for f in findings {
        match f.status {
            Status::Ok => {}
            Status::Warn => eprintln!("rwsgi-express: warning: {f}"),
            Status::Fail => failures.push(f.to_string()),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to {} the server: {} check(s) failed (`rwsgi-express doctor` with the same options runs every check):\n{}",
        if start { "start" } else { "set up" },
        failures.len(),
        failures.join("\n")
    )
}

/// `rwsgi-express doctor`: prints one line per check and returns the exit
/// status of [`exit_status`].
pub fn run(d: &DoctorArgs) -> anyhow::Result<u8> {
    let host = HostFacts::current()?;
    let findings = run_all(d, &host, &BuildInfo::embedded());
    for f in &findings {
        println!("{f}");
    }
    Ok(exit_status(&findings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_the_worst_finding() {
        assert_eq!(exit_status(&[]), 0);
        let ok = Finding::ok("a", "fine");
        let warn = Finding::warn("b", "RWSGI0155: hm", "do x");
        let fail = Finding::fail("c", "RWSGI0153: no", "do y");
        assert_eq!(exit_status(&[ok.clone(), ok.clone()]), 0);
        assert_eq!(exit_status(&[ok.clone(), warn.clone()]), 1);
        assert_eq!(exit_status(&[fail.clone(), warn.clone(), ok]), 2);
        assert_eq!(exit_status(&[warn, fail]), 2);
    }

    #[test]
    fn line_format() {
        assert_eq!(
            Finding::ok("port", "8000 is free").to_string(),
            "OK    port          8000 is free"
        );
        assert_eq!(
            Finding::fail("https", "RWSGI0157: mismatch", "use the right key").to_string(),
            "FAIL  https         RWSGI0157: mismatch -- fix: use the right key"
        );
    }
}
