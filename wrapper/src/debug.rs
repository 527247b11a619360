//! mod_wsgi-express's debug mode: `--debug-mode`, `--enable-debugger`,
//! `--debugger-startup`, `--enable-coverage`/`--coverage-directory`,
//! `--enable-profiler`/`--profiler-directory`,
//! `--enable-recorder`/`--recorder-directory` and
//! `--enable-gdb`/`--gdb-executable` (a clap group flattened into
//! [`crate::cli::ServerArgs`]).
//!
//! As mod_wsgi-express 6.1.1 does it: any `--enable-*` of them turns on
//! debug mode; without debug mode they are ignored. Debug mode runs Apache
//! as one process (`-DONE_PROCESS`, in the foreground even for `apachectl
//! start`) with one worker thread (worker MPM, else prefork), the
//! application embedded in it (no daemon group), `WSGIRestrictStdin Off`
//! so that pdb reads the terminal, script reloading off, and the
//! application loaded by the generated `<server root>/handler.wsgi`
//! (imported at start with `WSGIImportScript`), which sets
//! `MOD_WSGI_DEBUG_MODE` (and `MOD_WSGI_*_ENABLED`) in `os.environ` and
//! wraps the application: pdb post-mortem on an exception
//! (`--enable-debugger`; `--debugger-startup` also stops in pdb when the
//! handler is imported), one `cProfile` profile of the process dumped to
//! `<profiler directory>/<microseconds>-<pid>.pstats` at exit, one
//! `coverage` measurement written as an HTML report to the coverage
//! directory at exit, and the request recorder writing each request's
//! environ, body, response headers, body and exceptions to
//! `<recorder directory>/<microseconds>-<pid>-<n>.{iheaders,icontent,
//! oheaders,ocontent,oaexcept,orexcept,ofexcept}`. `--enable-gdb` makes
//! `apachectl` run Apache under gdb (`gdb -x <root>/gdb.cmds HTTPD`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::model::{absolute, conf_safe};

/// The debug options (field comments are the `--help` texts).
#[derive(Debug, Clone, Args)]
pub struct DebugArgs {
    /// Run Apache as a single process with one thread, in the foreground, the application embedded in it, stdin attached to the terminal for pdb; reloading off.
    #[arg(long)]
    pub debug_mode: bool,

    /// Post-mortem pdb in the terminal for exceptions propagating out of the application (turns on debug mode).
    #[arg(long)]
    pub enable_debugger: bool,

    /// With --enable-debugger: also stop in pdb when the application is loaded at start, to set breakpoints.
    #[arg(long)]
    pub debugger_startup: bool,

    /// Measure code coverage (the coverage package) and write an HTML report when the server stops (turns on debug mode).
    #[arg(long)]
    pub enable_coverage: bool,

    /// Directory of the coverage report [default: <server-root>/htmlcov].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub coverage_directory: Option<PathBuf>,

    /// Profile the process with cProfile and write a .pstats file when the server stops (turns on debug mode).
    #[arg(long)]
    pub enable_profiler: bool,

    /// Directory of the profiler's .pstats files [default: <server-root>/pstats].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub profiler_directory: Option<PathBuf>,

    /// Record each request and its response in files (turns on debug mode).
    #[arg(long)]
    pub enable_recorder: bool,

    /// Directory of the recorder's files [default: <server-root>/archive].
    #[arg(long, value_name = "DIRECTORY-PATH")]
    pub recorder_directory: Option<PathBuf>,

    /// Run Apache under gdb, to debug crashes (turns on debug mode).
    #[arg(long)]
    pub enable_gdb: bool,

    /// The gdb executable (a path, or a name looked up in PATH).
    #[arg(long, default_value = "gdb", value_name = "FILE-PATH")]
    pub gdb_executable: PathBuf,
}

/// Debug mode, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Debug {
    /// `<server root>/handler.wsgi`, which loads and wraps the application.
    pub handler: PathBuf,
    /// `--callable-object`: the application's callable in its script or module.
    pub callable: String,
    /// `--enable-debugger`.
    pub debugger: bool,
    /// `--debugger-startup`.
    pub debugger_startup: bool,
    /// `--enable-coverage`: the report directory.
    pub coverage_directory: Option<PathBuf>,
    /// `--enable-profiler`: the `.pstats` directory.
    pub profiler_directory: Option<PathBuf>,
    /// `--enable-recorder`: the recorder directory.
    pub recorder_directory: Option<PathBuf>,
    /// `--enable-gdb`: the gdb executable, resolved.
    pub gdb: Option<PathBuf>,
    /// `<server root>/gdb.cmds` (written by apachectl with `--enable-gdb`).
    pub gdb_commands: PathBuf,
}

impl Debug {
    /// The directories the application writes (created by
    /// [`crate::setup`], given to `--user` when created as root).
    pub fn output_directories(&self) -> Vec<&Path> {
        [
            &self.coverage_directory,
            &self.profiler_directory,
            &self.recorder_directory,
        ]
        .into_iter()
        .flatten()
        .map(PathBuf::as_path)
        .collect()
    }

    /// The Python packages the handler imports that may be missing, as
    /// (module, option, what to install).
    pub fn python_requirements(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        let mut out = Vec::new();
        if self.coverage_directory.is_some() {
            out.push(("coverage", "--enable-coverage", "coverage"));
        }
        out
    }
}

/// Looks `name` up in `path` (a `PATH` value) unless it contains a `/`.
fn find_program(name: &Path, path: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    if name.as_os_str().to_string_lossy().contains('/') {
        let p = absolute(cwd, name);
        return p.is_file().then_some(p);
    }
    path?
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Validates and resolves the debug options.
///
/// Inputs: the options, `--callable-object`, the server root (default
/// directories), the current directory (relative paths) and `PATH` (to
/// find gdb). Output: `None`
/// unless debug mode is on. Errors: `--debugger-startup` without
/// `--enable-debugger` (mod_wsgi-express's message), a gdb executable that
/// does not exist, a directory httpd.conf cannot name.
pub fn build(
    a: &DebugArgs,
    callable: &str,
    server_root: &Path,
    cwd: &Path,
    path_env: Option<&str>,
) -> Result<Option<Debug>> {
    if a.debugger_startup && !a.enable_debugger {
        bail!("--debugger-startup requires --enable-debugger");
    }
    let on = a.debug_mode
        || a.enable_debugger
        || a.enable_coverage
        || a.enable_profiler
        || a.enable_recorder
        || a.enable_gdb;
    if !on {
        return Ok(None);
    }
    let dir = |enabled: bool, given: &Option<PathBuf>, default: &str| -> Result<Option<PathBuf>> {
        if !enabled {
            return Ok(None);
        }
        let d = match given {
            Some(d) => absolute(cwd, d),
            None => server_root.join(default),
        };
        conf_safe("debug output directory", &d)?;
        Ok(Some(d))
    };
    let gdb = if a.enable_gdb {
        match find_program(&a.gdb_executable, path_env, cwd) {
            Some(p) => Some(p),
            None => bail!(
                "--enable-gdb: gdb executable {} not found{} (use --gdb-executable)",
                a.gdb_executable.display(),
                if a.gdb_executable.to_string_lossy().contains('/') {
                    ""
                } else {
                    " on PATH"
                }
            ),
        }
    } else {
        None
    };
    Ok(Some(Debug {
        handler: server_root.join("handler.wsgi"),
        callable: callable.to_string(),
        debugger: a.enable_debugger,
        debugger_startup: a.debugger_startup,
        coverage_directory: dir(a.enable_coverage, &a.coverage_directory, "htmlcov")?,
        profiler_directory: dir(a.enable_profiler, &a.profiler_directory, "pstats")?,
        recorder_directory: dir(a.enable_recorder, &a.recorder_directory, "archive")?,
        gdb,
        gdb_commands: server_root.join("gdb.cmds"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use crate::render;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    #[test]
    fn off_by_default_and_directory_options_alone_do_nothing() {
        let f = Fixture::new();
        let c = f
            .config(&["app.wsgi", "--profiler-directory", "/tmp/p"])
            .unwrap();
        assert_eq!(c.debug, None);
        assert!(c.daemon.is_some());
    }

    #[test]
    fn debugger_startup_needs_the_debugger() {
        let f = Fixture::new();
        let e = f
            .config(&["app.wsgi", "--debugger-startup"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--debugger-startup requires --enable-debugger");
    }

    #[test]
    fn debug_mode_is_one_embedded_process_with_one_thread() {
        let f = Fixture::new();
        let c = f
            .config(&["app.wsgi", "--enable-profiler", "--enable-recorder"])
            .unwrap();
        let d = c.debug.as_ref().unwrap();
        let root = f.path("root");
        assert_eq!(
            d.profiler_directory.as_deref(),
            Some(root.join("pstats").as_path())
        );
        assert_eq!(
            d.recorder_directory.as_deref(),
            Some(root.join("archive").as_path())
        );
        assert_eq!(d.coverage_directory, None);
        assert!(c.daemon.is_none());
        assert_eq!(c.mpm, crate::cli::Mpm::Worker);
        let t = render::httpd_conf(&c).unwrap();
        for line in [
            "StartServers 1",
            "ServerLimit 1",
            "ThreadLimit 1",
            "ThreadsPerChild 1",
            "MaxRequestWorkers 1",
            "WSGIRestrictEmbedded Off",
            "WSGIRestrictStdin Off",
            "WSGIScriptReloading Off",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        let handler = root.join("handler.wsgi").display().to_string();
        assert!(
            has_line(
                &t,
                &format!(
                    "WSGIImportScript \"{handler}\" process-group=%{{GLOBAL}} application-group=%{{GLOBAL}}"
                )
            ),
            "{t}"
        );
        assert!(
            t.contains(&format!("WSGIScriptAlias / \"{handler}\" ")),
            "{t}"
        );
        assert!(!t.contains("WSGIDaemonProcess"));
        let ctl = render::apachectl(&c).unwrap();
        assert!(ctl.contains("-DONE_PROCESS"), "{ctl}");
        let h = render::debug_handler(&c).unwrap().unwrap();
        assert!(h.contains("cProfile"), "{h}");
        assert!(h.contains("RequestRecorder("), "{h}");
        assert!(!h.contains("coverage("), "{h}");
        let s = crate::setup::summary(&c);
        assert!(s.contains("Operating Mode     : debug"), "{s}");
        assert!(
            s.contains(&format!("Profiler Output    : {}/pstats", root.display())),
            "{s}"
        );
    }

    #[test]
    fn gdb_is_looked_up() {
        let f = Fixture::new();
        let e = f
            .config(&[
                "app.wsgi",
                "--enable-gdb",
                "--gdb-executable",
                "/nonexistent/gdb",
            ])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("gdb executable /nonexistent/gdb not found"),
            "{e}"
        );
        let found = find_program(
            Path::new("httpd"),
            Some(f.path("").to_str().unwrap()),
            &f.path("app"),
        );
        assert_eq!(found, Some(f.path("httpd")));
        let c = f
            .config(&[
                "app.wsgi",
                "--enable-gdb",
                "--gdb-executable",
                f.path("httpd").to_str().unwrap(),
            ])
            .unwrap();
        let ctl = render::apachectl(&c).unwrap();
        assert!(ctl.contains("gdb.cmds"), "{ctl}");
    }
}
