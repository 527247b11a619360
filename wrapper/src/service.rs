//! mod_wsgi-express's managed services: `--service-script SERVICE
//! SCRIPT-PATH` (repeatable) runs the script in a daemon process group of
//! its own, `service:SERVICE`, with no request threads (`threads=0`: the
//! module runs its `WSGIImportScript` in a thread of its own, so it may run
//! for the life of the process); `--service-user`/`--service-group SERVICE
//! NAME` set that group's user and group (default: `--user`/`--group`, as
//! Apache's children); `--service-log-file SERVICE FILE-NAME` sends its
//! log lines to FILE-NAME in the log directory (a `<VirtualHost>` of the
//! listener with that `ErrorLog` around the group, as mod_wsgi-express
//! writes it; rotated with `--rotate-logs`).
//!
//! [`build`] validates and resolves (pure, unit-tested); the template
//! writes the groups.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

/// The options on the command line (pairs flattened, in order).
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceArgs {
    /// Run SCRIPT-PATH as the managed service SERVICE: a daemon process group service:SERVICE with no request threads, the script imported in it at start (it may loop for the life of the process). Repeatable.
    #[arg(long = "service-script", num_args = 2, value_names = ["SERVICE", "SCRIPT-PATH"])]
    pub service_script: Vec<String>,

    /// The user the service SERVICE runs as [default: --user]. Repeatable.
    #[arg(long = "service-user", num_args = 2, value_names = ["SERVICE", "USERNAME"])]
    pub service_user: Vec<String>,

    /// The group the service SERVICE runs as [default: --group]. Repeatable.
    #[arg(long = "service-group", num_args = 2, value_names = ["SERVICE", "GROUP"])]
    pub service_group: Vec<String>,

    /// Log file (a name in the log directory) for the service SERVICE's log lines [default: the error log]. Repeatable.
    #[arg(long = "service-log-file", num_args = 2, value_names = ["SERVICE", "FILE-NAME"])]
    pub service_log_file: Vec<String>,
}

/// One service, as the template writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// `service:NAME`, the process group.
    pub group: String,
    /// The script, absolute.
    pub script: PathBuf,
    /// `user=` (None: Apache's `User`).
    pub user: Option<String>,
    /// `group=` (None: Apache's `Group`).
    pub unix_group: Option<String>,
    /// The `ErrorLog` argument of its `<VirtualHost>`: a file in the log
    /// directory, or its rotatelogs pipe; None: the server's error log.
    pub error_log: Option<String>,
}

fn pairs<'a>(option: &str, values: &'a [String]) -> Result<Vec<(&'a str, &'a str)>> {
    if values.len() % 2 != 0 {
        bail!("{option} takes two values");
    }
    Ok(values
        .chunks(2)
        .map(|c| (c[0].as_str(), c[1].as_str()))
        .collect())
}

/// A word safe in `WSGIDaemonProcess`/`user=` (no white space, quotes,
/// `=`, `%` or control characters).
fn plain_word(option: &str, what: &str, s: &str) -> Result<()> {
    if s.is_empty()
        || s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '"' | '\'' | '=' | '%' | '\\' | '$' | '<' | '>')
        })
    {
        bail!("{option}: {what} {s:?} must be a plain word (no white space, quotes, '=', '%', '$', '<' or '>')");
    }
    Ok(())
}

/// Validates the options: each service name once in --service-script,
/// names plain words, scripts existing files (relative to `cwd`),
/// --service-user/--service-group/--service-log-file naming a service
/// given by --service-script, log file names plain file names. `log_dir`
/// is the log directory; `rotate` makes a log file name its rotatelogs
/// pipe. `conf_safe` checks paths as the rest of the model does.
pub fn build(
    a: &ServiceArgs,
    cwd: &Path,
    log_dir: &Path,
    rotate: Option<&dyn Fn(&Path) -> String>,
    conf_safe: impl Fn(&str, &Path) -> Result<()>,
) -> Result<Vec<Service>> {
    let mut out: Vec<Service> = Vec::new();
    for (name, script) in pairs("--service-script", &a.service_script)? {
        plain_word("--service-script", "service name", name)?;
        if out.iter().any(|s| s.group == format!("service:{name}")) {
            bail!("--service-script: service {name:?} is given twice");
        }
        let p = Path::new(script);
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        if !p.is_file() {
            bail!("--service-script {name}: {} does not exist", p.display());
        }
        conf_safe("--service-script", &p)?;
        out.push(Service {
            group: format!("service:{name}"),
            script: p,
            user: None,
            unix_group: None,
            error_log: None,
        });
    }
    let find = |out: &mut Vec<Service>, option: &str, name: &str| -> Result<usize> {
        out.iter()
            .position(|s| s.group == format!("service:{name}"))
            .ok_or_else(|| {
                anyhow::anyhow!("{option} {name}: no --service-script names service {name:?}")
            })
    };
    for (name, user) in pairs("--service-user", &a.service_user)? {
        plain_word("--service-user", "user", user)?;
        let i = find(&mut out, "--service-user", name)?;
        out[i].user = Some(user.to_string());
    }
    for (name, group) in pairs("--service-group", &a.service_group)? {
        plain_word("--service-group", "group", group)?;
        let i = find(&mut out, "--service-group", name)?;
        out[i].unix_group = Some(group.to_string());
    }
    for (name, file) in pairs("--service-log-file", &a.service_log_file)? {
        if file.is_empty() || file.contains('/') || file == "." || file == ".." {
            bail!("--service-log-file {name}: {file:?} must be a plain file name (it is made in the log directory)");
        }
        let i = find(&mut out, "--service-log-file", name)?;
        let path = log_dir.join(file);
        conf_safe("--service-log-file", &path)?;
        out[i].error_log = Some(match rotate {
            Some(pipe) => pipe(&path),
            None => path.display().to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ok(_: &str, _: &Path) -> Result<()> {
        Ok(())
    }

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("tasks.py");
        std::fs::write(&script, "import time\n").unwrap();
        (d, script)
    }

    #[test]
    fn builds_each_service() {
        let (d, script) = setup();
        let a = ServiceArgs {
            service_script: args(&["tasks", "tasks.py", "other", script.to_str().unwrap()]),
            service_user: args(&["tasks", "www-data"]),
            service_group: args(&["other", "nogroup"]),
            service_log_file: args(&["tasks", "tasks.log"]),
        };
        let s = build(&a, d.path(), Path::new("/var/log/x"), None, ok).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].group, "service:tasks");
        assert_eq!(s[0].script, script);
        assert_eq!(s[0].user.as_deref(), Some("www-data"));
        assert_eq!(s[0].unix_group, None);
        assert_eq!(s[0].error_log.as_deref(), Some("/var/log/x/tasks.log"));
        assert_eq!(s[1].unix_group.as_deref(), Some("nogroup"));
        assert_eq!(s[1].error_log, None);
        let pipe = |p: &Path| format!("|rotatelogs {}.%Y 5M", p.display());
        let a = ServiceArgs {
            service_script: args(&["tasks", "tasks.py"]),
            service_log_file: args(&["tasks", "t.log"]),
            ..Default::default()
        };
        let s = build(&a, d.path(), Path::new("/l"), Some(&pipe), ok).unwrap();
        assert_eq!(
            s[0].error_log.as_deref(),
            Some("|rotatelogs /l/t.log.%Y 5M")
        );
    }

    #[test]
    fn refuses_bad_input() {
        let (d, _) = setup();
        for (a, needle) in [
            (
                ServiceArgs {
                    service_script: args(&["tasks", "nope.py"]),
                    ..Default::default()
                },
                "does not exist",
            ),
            (
                ServiceArgs {
                    service_script: args(&["t a", "tasks.py"]),
                    ..Default::default()
                },
                "must be a plain word",
            ),
            (
                ServiceArgs {
                    service_script: args(&["t", "tasks.py", "t", "tasks.py"]),
                    ..Default::default()
                },
                "given twice",
            ),
            (
                ServiceArgs {
                    service_user: args(&["t", "u"]),
                    ..Default::default()
                },
                "no --service-script names service \"t\"",
            ),
            (
                ServiceArgs {
                    service_script: args(&["t", "tasks.py"]),
                    service_log_file: args(&["t", "../x.log"]),
                    ..Default::default()
                },
                "must be a plain file name",
            ),
        ] {
            let e = build(&a, d.path(), Path::new("/l"), None, ok)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
