//! The logs of the generated server: where the error, access and startup
//! logs go, their formats and their rotation. The options `--startup-log`,
//! `--startup-log-name`, `--error-log-format`, `--rotate-logs`,
//! `--max-log-size` and `--rotatelogs-executable` are a clap group
//! ([`LogArgs`]) flattened into [`crate::cli::ServerArgs`]; the older log
//! options (`--log-level`, `--log-directory`, `--log-to-terminal`,
//! `--access-log`, `--access-log-format`, `--error-log-name`,
//! `--access-log-name`) are fields of `ServerArgs` itself.
//!
//! As mod_wsgi-express 6.1.1: with `--rotate-logs` the error and access
//! logs are piped to `rotatelogs` (`ErrorLog "|rotatelogs
//! <log>.%Y-%m-%d-%H_%M_%S <max-log-size>M"`, likewise `CustomLog`), so
//! each file is named after the time it was started and a new one begins
//! when it reaches the size; `--log-to-terminal` turns rotation off; the
//! startup log is httpd's `-E FILE` (the messages Apache writes before the
//! error log is open), given by apachectl.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::build_info;
use crate::cli::ServerArgs;
use crate::model::{absolute, conf_safe, LOG_LEVELS};
use crate::render::shell_quote;

/// The log options added to mod_wsgi-express's set (field comments are the
/// `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Write Apache's startup log (httpd -E: what Apache reports before its error log is open) to --startup-log-name in the log directory (with --log-to-terminal: stderr).
    #[arg(long)]
    pub startup_log: bool,

    /// File name of the startup log in the log directory.
    #[arg(long, default_value = "startup_log", value_name = "FILE-NAME")]
    pub startup_log_name: String,

    /// Format of the error log records (ErrorLogFormat) [default: Apache's].
    #[arg(long, value_name = "FORMAT")]
    pub error_log_format: Option<String>,

    /// Rotate the error and access logs with rotatelogs: a new file, named <log>.<start time>, each time one reaches --max-log-size (ignored with --log-to-terminal).
    #[arg(long)]
    pub rotate_logs: bool,

    /// Size in MB at which a rotated log file is closed and a new one started.
    #[arg(long, default_value_t = 5, value_name = "MB")]
    pub max_log_size: u32,

    /// The rotatelogs program [default: rotatelogs in apxs's SBINDIR, else in its BINDIR, else looked up in PATH].
    #[arg(long, value_name = "FILE-PATH")]
    pub rotatelogs_executable: Option<PathBuf>,
}

/// `--rotate-logs`: the program and the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The rotatelogs program: an absolute path, or a name looked up in
    /// `PATH` by the shell Apache starts piped logs with.
    pub executable: String,
    /// `--max-log-size`, in MB.
    pub max_log_size: u32,
}

impl Rotation {
    /// The piped-log target for `log` (the `ErrorLog`/`CustomLog`
    /// argument, without the surrounding quotes): `|<rotatelogs>
    /// <log>.%Y-%m-%d-%H_%M_%S <size>M`, the program and the path
    /// shell-quoted (Apache runs piped logs through `/bin/sh -c`).
    pub fn pipe(&self, log: &Path) -> String {
        format!(
            "|{} {} {}M",
            shell_quote(&self.executable),
            shell_quote(&format!("{}.%Y-%m-%d-%H_%M_%S", log.display())),
            self.max_log_size
        )
    }
}

/// The logs, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Logs {
    /// `LogLevel`, lower case.
    pub log_level: String,
    /// `--log-to-terminal` (after `--log-directory` overrides it).
    pub log_to_terminal: bool,
    /// The error log: a file in the log directory or `/dev/stderr`.
    pub error_log: PathBuf,
    /// With `--access-log`: a file in the log directory or `/dev/stdout`.
    pub access_log: Option<PathBuf>,
    /// Argument of `ErrorLog`: [`Self::error_log`], or its rotatelogs pipe.
    pub error_log_target: String,
    /// Argument of `CustomLog`, likewise.
    pub access_log_target: Option<String>,
    /// LogFormat nickname used by `CustomLog`: common, combined or custom.
    pub access_log_nickname: String,
    /// The custom LogFormat string, `\` and `"` escaped, when the nickname
    /// is custom.
    pub access_log_format: Option<String>,
    /// `--error-log-format`, `\` and `"` escaped (`ErrorLogFormat "..."`).
    pub error_log_format: Option<String>,
    /// `--rotate-logs` (not with `--log-to-terminal`).
    pub rotation: Option<Rotation>,
    /// `--startup-log`: the file given to httpd's `-E` by apachectl.
    pub startup_log: Option<PathBuf>,
    /// The log directory: `--log-directory`, else the server root (even
    /// with `--log-to-terminal`: `--service-log-file`s go there).
    pub log_directory: PathBuf,
}

/// A string for a double-quoted httpd.conf argument: `\` and `"`
/// backslash-escaped (Apache's `ap_getword_conf` undoes both). Errors on
/// control characters, naming `what`.
fn conf_escaped(what: &str, s: &str) -> Result<String> {
    if s.chars().any(char::is_control) {
        bail!("{what} must not contain control characters");
    }
    Ok(s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The default rotatelogs: the first of `dirs` holding a `rotatelogs`
/// file, else the bare name (found through `PATH`).
pub fn default_rotatelogs(dirs: &[&str]) -> String {
    dirs.iter()
        .map(|d| Path::new(d).join("rotatelogs"))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rotatelogs".to_string())
}

/// Resolves the log options of `a` for `server_root`, relative paths
/// against `cwd`; `warnings` gets a note when `--rotate-logs` is dropped
/// for `--log-to-terminal`.
///
/// Errors (naming the option and the value): an unknown `--log-level`, a
/// log file name that is not a plain file name, a `--max-log-size` of 0,
/// a `--rotatelogs-executable` path that is not a file, formats with
/// control characters, paths that cannot be written into httpd.conf.
pub fn build(
    a: &ServerArgs,
    server_root: &Path,
    cwd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Logs> {
    let l = &a.logs;
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
        None => (server_root.to_path_buf(), a.log_to_terminal),
    };
    for (option, name) in [
        ("--error-log-name", &a.error_log_name),
        ("--access-log-name", &a.access_log_name),
        ("--startup-log-name", &l.startup_log_name),
    ] {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            bail!("{option} {name:?} must be a plain file name");
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
    if let Some(p) = &access_log {
        conf_safe("access log", p)?;
    }
    let (access_log_nickname, access_log_format) = match a.access_log_format.as_deref() {
        None | Some("common") => ("common".to_string(), None),
        Some("combined") => ("combined".to_string(), None),
        Some(f) => (
            "custom".to_string(),
            Some(conf_escaped("--access-log-format", f)?),
        ),
    };
    let error_log_format = match &l.error_log_format {
        Some(f) => Some(conf_escaped("--error-log-format", f)?),
        None => None,
    };
    if l.max_log_size == 0 {
        bail!("--max-log-size 0 is not a size: give the size in MB, at least 1");
    }
    let executable = match &l.rotatelogs_executable {
        None => default_rotatelogs(&build_info::ROTATELOGS_DIRS),
        // A bare name is looked up in PATH, as mod_wsgi-express's default.
        Some(p) if !p.to_string_lossy().contains('/') => p.to_string_lossy().into_owned(),
        Some(p) => {
            let p = absolute(cwd, p);
            if !p.is_file() {
                bail!(
                    "--rotatelogs-executable {} does not exist (or is not a file)",
                    p.display()
                );
            }
            p.to_string_lossy().into_owned()
        }
    };
    let rotation = match (l.rotate_logs, log_to_terminal) {
        (true, true) => {
            warnings.push(
                "--rotate-logs has no effect with --log-to-terminal (as in mod_wsgi-express)"
                    .to_string(),
            );
            None
        }
        (true, false) => Some(Rotation {
            executable,
            max_log_size: l.max_log_size,
        }),
        (false, _) => None,
    };
    let target = |p: &Path| match &rotation {
        Some(r) => r.pipe(p),
        None => p.to_string_lossy().into_owned(),
    };
    let error_log_target = target(&error_log);
    let access_log_target = access_log.as_deref().map(target);
    for t in std::iter::once(&error_log_target).chain(&access_log_target) {
        crate::model::conf_safe_str("log target", t)?;
    }
    let startup_log = l.startup_log.then(|| {
        if log_to_terminal {
            PathBuf::from("/dev/stderr")
        } else {
            log_dir.join(&l.startup_log_name)
        }
    });
    if let Some(p) = &startup_log {
        if p.to_str().is_none() || p.to_string_lossy().chars().any(char::is_control) {
            bail!(
                "startup log {} cannot be written into apachectl",
                p.display()
            );
        }
    }
    Ok(Logs {
        log_directory: log_dir.clone(),
        log_level,
        log_to_terminal,
        error_log,
        access_log,
        error_log_target,
        access_log_target,
        access_log_nickname,
        access_log_format,
        error_log_format,
        rotation,
        startup_log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use crate::{render, setup};

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    #[test]
    fn defaults_are_mod_wsgi_express_s() {
        let f = Fixture::new();
        let a = f.args(&["app.wsgi"]);
        assert!(!a.logs.startup_log && !a.logs.rotate_logs);
        assert_eq!(a.logs.startup_log_name, "startup_log");
        assert_eq!(a.logs.max_log_size, 5);
        assert_eq!(a.logs.error_log_format, None);
        let c = f.config(&["app.wsgi"]).unwrap();
        assert_eq!(c.logs.rotation, None);
        assert_eq!(c.logs.startup_log, None);
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            !t.contains("ErrorLogFormat") && !t.contains("rotatelogs"),
            "{t}"
        );
        assert!(!render::apachectl(&c).unwrap().contains(" -E "));
    }

    #[test]
    fn rotated_logs_are_piped_to_rotatelogs() {
        let f = Fixture::new();
        let rl = f.path("rotatelogs");
        std::fs::write(&rl, "").unwrap();
        let c = f
            .config(&[
                "app.wsgi",
                "--access-log",
                "--rotate-logs",
                "--max-log-size",
                "7",
                "--rotatelogs-executable",
                rl.to_str().unwrap(),
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        let root = f.path("root");
        for line in [
            format!(
                "ErrorLog \"|'{}' '{}/error_log.%Y-%m-%d-%H_%M_%S' 7M\"",
                rl.display(),
                root.display()
            ),
            format!(
                "CustomLog \"|'{}' '{}/access_log.%Y-%m-%d-%H_%M_%S' 7M\" common",
                rl.display(),
                root.display()
            ),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        assert!(t.lines().any(|l| l == "Define MOD_WSGI_ROTATE_LOGS"), "{t}");
        // The rotated files are named by rotatelogs: no empty error_log.
        setup::prepare_directories(&c).unwrap();
        setup::write_server_root(&c).unwrap();
        assert!(!root.join("error_log").exists() && !root.join("access_log").exists());
    }

    #[test]
    fn rotatelogs_default_and_names() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("rotatelogs"), "").unwrap();
        let dirs = [a.to_str().unwrap(), b.to_str().unwrap()];
        assert_eq!(
            default_rotatelogs(&dirs),
            b.join("rotatelogs").to_string_lossy()
        );
        assert_eq!(default_rotatelogs(&dirs[..1]), "rotatelogs");
        // A bare name is kept for PATH; a path must exist.
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--rotate-logs",
                "--rotatelogs-executable",
                "rotatelogs",
            ])
            .unwrap();
        assert_eq!(c.logs.rotation.unwrap().executable, "rotatelogs");
        let e = f
            .config(&[
                "app.wsgi",
                "--rotate-logs",
                "--rotatelogs-executable",
                "/nonexistent/rotatelogs",
            ])
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("--rotatelogs-executable /nonexistent/rotatelogs does not exist"),
            "{e}"
        );
        let e = f
            .config(&["app.wsgi", "--rotate-logs", "--max-log-size", "0"])
            .unwrap_err();
        assert!(e.to_string().contains("--max-log-size 0"), "{e}");
    }

    #[test]
    fn terminal_logs_are_not_rotated() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--log-to-terminal",
                "--rotate-logs",
                "--startup-log",
            ])
            .unwrap();
        assert_eq!(c.logs.rotation, None);
        assert!(c.warnings.iter().any(|w| w.contains("--rotate-logs")));
        assert_eq!(c.logs.startup_log, Some(PathBuf::from("/dev/stderr")));
        assert!(has_line(
            &render::httpd_conf(&c).unwrap(),
            "ErrorLog \"/dev/stderr\""
        ));
    }

    #[test]
    fn error_log_format_and_startup_log() {
        let f = Fixture::new();
        let logs = f.path("logs");
        let c = f
            .config(&[
                "app.wsgi",
                "--error-log-format",
                "[%t] \"%M\" \\n",
                "--startup-log",
                "--startup-log-name",
                "boot.log",
                "--log-directory",
                logs.to_str().unwrap(),
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            has_line(&t, "ErrorLogFormat \"[%t] \\\"%M\\\" \\\\n\""),
            "{t}"
        );
        assert!(t.lines().any(|l| l == "Define MOD_WSGI_ERROR_LOG_FORMAT"));
        let s = render::apachectl(&c).unwrap();
        let e = format!(" -E '{}/boot.log'", logs.display());
        assert!(
            s.contains(&format!(
                "\"$HTTPD\" -f \"$HTTPD_CONF\" -d \"$SERVER_ROOT\"{e} -k \"$1\""
            )),
            "{s}"
        );
        assert!(
            s.contains(&format!("-d \"$SERVER_ROOT\"{e} -DFOREGROUND")),
            "{s}"
        );
        assert!(setup::summary(&c)
            .contains(&format!("Startup Log File   : {}/boot.log", logs.display())));
        for (opt, value, needle) in [
            ("--startup-log-name", "a/b", "must be a plain file name"),
            ("--error-log-format", "a\nb", "control characters"),
        ] {
            let e = f.config(&["app.wsgi", opt, value]).unwrap_err();
            assert!(e.to_string().contains(needle), "{opt}: {e}");
        }
    }
}
