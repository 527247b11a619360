//! Writing a server root and starting Apache on it (`setup-server`,
//! `start-server`).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::access;
use crate::build_info::BuildInfo;
use crate::cli::ServerArgs;
use crate::model::{Application, HostFacts, ServerConfig};
use crate::render;

/// Creates `dir` (not its parents) with mode 0755 if it does not exist, so a
/// restrictive umask cannot hide it from Apache's children. Errors if it
/// exists and is not a directory, or cannot be created.
fn ensure_dir(dir: &Path, what: &str) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        bail!("{what} {} exists and is not a directory", dir.display());
    }
    fs::create_dir(dir).with_context(|| format!("cannot create {what} {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    Ok(())
}

/// Creates the directories the configuration refers to: the server root,
/// the document root and the log directory (each non-recursively, like
/// mod_wsgi-express, mode 0755).
pub fn prepare_directories(c: &ServerConfig) -> Result<()> {
    ensure_dir(&c.server_root, "server root")?;
    ensure_dir(&c.document_root, "document root")?;
    if !c.log_to_terminal {
        if let Some(dir) = c.error_log.parent() {
            ensure_dir(dir, "log directory")?;
        }
    }
    Ok(())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

fn touch(path: &Path) -> Result<()> {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(|_| ())
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Writes the server root's files: `handler.wsgi` (module applications),
/// `httpd.conf` (0644), `apachectl` (0755), and creates `error_log` (and
/// `access_log` with `--access-log`) unless logging to the terminal.
/// Directories must exist ([`prepare_directories`]).
pub fn write_server_root(c: &ServerConfig) -> Result<()> {
    if let (Some(text), Application::Module { handler, .. }) = (render::handler_wsgi(c)?, &c.app) {
        write_file(handler, &text, 0o644)?;
    }
    write_file(&c.httpd_conf, &render::httpd_conf(c)?, 0o644)?;
    write_file(&c.apachectl, &render::apachectl(c)?, 0o755)?;
    if !c.log_to_terminal {
        touch(&c.error_log)?;
        if let Some(access_log) = &c.access_log {
            touch(access_log)?;
        }
    }
    Ok(())
}

/// The report printed after setup, in mod_wsgi-express's "Label : value"
/// style: URL, server root, files, application, processes/threads, and how
/// to control the server.
pub fn summary(c: &ServerConfig) -> String {
    let app = match &c.app {
        Application::Script { path } => format!("script {}", path.display()),
        Application::Module { name, callable, .. } => format!("module {name}:{callable}"),
    };
    let mut lines = vec![
        format!("Server URL         : {}", c.url),
        format!("Server Root        : {}", c.server_root.display()),
        format!("Server Conf        : {}", c.httpd_conf.display()),
        format!("Error Log File     : {}", c.error_log.display()),
    ];
    if let Some(access_log) = &c.access_log {
        lines.push(format!("Access Log File    : {}", access_log.display()));
    }
    lines.extend([
        format!("Application        : {app} at {}", c.mount_point),
        format!("Python Home        : {}", c.python_home.display()),
        match &c.daemon_group {
            Some(g) => format!(
                "Operating Mode     : daemon (process group {g}; Apache's {} MPM relays){}",
                c.mpm.name(),
                c.daemon_options
                    .iter()
                    .map(|o| format!("\nDaemon Option      : {o}"))
                    .collect::<String>()
            ),
            None => format!("Operating Mode     : embedded ({} MPM)", c.mpm.name()),
        },
        format!(
            "Processes/Threads  : {} x {} (up to {} simultaneous requests)",
            c.processes,
            if c.mpm.name() == "prefork" {
                1
            } else {
                c.threads
            },
            c.sizing.max_request_workers
        ),
    ]);
    if let Some(r) = &c.run_as {
        lines.push(format!(
            "Run As             : user {} group {}",
            r.user, r.group
        ));
    }
    lines.push(format!("Control Script     : {}", c.apachectl.display()));
    lines.join("\n") + "\n"
}

/// The Apache command `start-server` execs: `<httpd> -f <root>/httpd.conf
/// -d <root> -DFOREGROUND`, with `LANG`/`LC_ALL` set to the locale.
pub fn httpd_command(c: &ServerConfig) -> Command {
    let mut cmd = Command::new(&c.httpd_executable);
    cmd.arg("-f")
        .arg(&c.httpd_conf)
        .arg("-d")
        .arg(&c.server_root)
        .arg("-DFOREGROUND")
        .env("LANG", &c.locale)
        .env("LC_ALL", &c.locale);
    cmd
}

/// Whether `start-server` should move itself (and so Apache) into a process
/// group of its own before the exec.
///
/// Apache's prefork MPM stops its children with `killpg(getpgrp(),
/// SIGTERM)`, so in the foreground it signals its whole process group. When
/// the launcher was started by a program that did not give it a group of its
/// own (a process manager, a script, a test harness), that group is the
/// caller's, which Apache would then kill on shutdown. Inputs: our pid, our
/// process group and the foreground process group of the terminal on stdin
/// (`None` without a terminal). Output: true when we are not a group leader
/// and not in the terminal's foreground group (moving out of it would keep
/// Ctrl-C from reaching Apache; there the whole group is interrupted anyway).
pub fn needs_own_process_group(pid: i32, pgrp: i32, terminal_foreground: Option<i32>) -> bool {
    pgrp != pid && terminal_foreground != Some(pgrp)
}

fn own_process_group() {
    use nix::unistd::{getpgrp, getpid, setpgid, tcgetpgrp, Pid};
    let foreground = tcgetpgrp(std::io::stdin()).ok().map(Pid::as_raw);
    if needs_own_process_group(getpid().as_raw(), getpgrp().as_raw(), foreground) {
        // Failure (e.g. we lead a session) leaves things as they were.
        let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    }
}

/// `setup-server` (`start == false` or `--setup-only`) and `start-server`.
///
/// Builds the model, prints its warnings, creates the directories, checks
/// (as root) that Apache's children can read what they need, writes the
/// files and prints the summary. `start-server` then replaces this process
/// with Apache in the foreground, so SIGINT/SIGTERM sent to the launcher's
/// pid reach Apache, which stops cleanly (see [`needs_own_process_group`]
/// for the process group it runs in); it only returns on failure.
pub fn run_server(args: &ServerArgs, start: bool) -> Result<()> {
    let host = HostFacts::current()?;
    let config = ServerConfig::build(args, &host, &BuildInfo::embedded())?;
    for w in &config.warnings {
        eprintln!("rwsgi-express: warning: {w}");
    }
    prepare_directories(&config)?;
    if let Some(run_as) = &config.run_as {
        access::check_readable_as(run_as, &config.paths_children_read())?;
    }
    write_server_root(&config)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{}", summary(&config))?;
    if !start || args.setup_only {
        let ctl = config.apachectl.display();
        writeln!(out, "\nStart Apache with `{ctl} start` (or `{ctl} start-foreground`), stop it with `{ctl} stop`.")?;
        return Ok(());
    }
    out.flush()?;
    drop(out);
    own_process_group();
    let err = httpd_command(&config).exec();
    Err(err).with_context(|| format!("cannot execute {}", config.httpd_executable.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;

    #[test]
    fn writes_server_root_layout() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi", "--access-log"]).unwrap();
        prepare_directories(&c).unwrap();
        write_server_root(&c).unwrap();
        let root = f.path("root");
        for name in [
            "httpd.conf",
            "apachectl",
            "error_log",
            "access_log",
            "htdocs",
        ] {
            assert!(root.join(name).exists(), "{name}");
        }
        assert!(!root.join("handler.wsgi").exists());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.join("apachectl")), 0o755);
        assert_eq!(mode(&root.join("httpd.conf")), 0o644);
        assert_eq!(mode(&root), 0o755);
        assert!(fs::read_to_string(root.join("httpd.conf"))
            .unwrap()
            .contains("ThreadsPerChild 5"));
        // Setting up again over an existing root works (and keeps logs).
        fs::write(root.join("error_log"), "old\n").unwrap();
        write_server_root(&c).unwrap();
        assert_eq!(fs::read_to_string(root.join("error_log")).unwrap(), "old\n");
    }

    #[test]
    fn module_handler_is_written() {
        let f = Fixture::new();
        let c = f
            .config(&["--application-type", "module", "pkg.wsgi"])
            .unwrap();
        prepare_directories(&c).unwrap();
        write_server_root(&c).unwrap();
        let h = fs::read_to_string(f.path("root/handler.wsgi")).unwrap();
        assert!(h.contains("import_module(\"pkg.wsgi\"), \"application\")"));
    }

    #[test]
    fn process_group_decision() {
        // Already a group leader (started by an interactive shell).
        assert!(!needs_own_process_group(100, 100, Some(100)));
        assert!(!needs_own_process_group(100, 100, None));
        // In the terminal's foreground group: keep Ctrl-C working.
        assert!(!needs_own_process_group(100, 50, Some(50)));
        // Started by a manager without a terminal, or in a background group.
        assert!(needs_own_process_group(100, 50, None));
        assert!(needs_own_process_group(100, 50, Some(70)));
    }

    #[test]
    fn command_and_summary() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi", "--port", "8123"]).unwrap();
        let cmd = httpd_command(&c);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let root = f.path("root").display().to_string();
        assert_eq!(
            args,
            vec![
                "-f".to_string(),
                format!("{root}/httpd.conf"),
                "-d".into(),
                root.clone(),
                "-DFOREGROUND".into()
            ]
        );
        let s = summary(&c);
        assert!(
            s.contains("Server URL         : http://localhost:8123/"),
            "{s}"
        );
        assert!(
            s.contains(&format!("Control Script     : {root}/apachectl")),
            "{s}"
        );
    }
}
