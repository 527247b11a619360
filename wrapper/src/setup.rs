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
/// the document root, the log directory and the `--python-eggs` directory
/// (each non-recursively, like mod_wsgi-express, mode 0755; the eggs
/// directory owned by `--user` when created as root).
pub fn prepare_directories(c: &ServerConfig) -> Result<()> {
    ensure_dir(&c.server_root, "server root")?;
    ensure_dir(&c.document_root, "document root")?;
    if !c.logs.log_to_terminal {
        if let Some(dir) = c.logs.error_log.parent() {
            ensure_dir(dir, "log directory")?;
        }
    }
    if let Some(debug) = &c.debug {
        // As mod_wsgi-express: created if missing; the application (as
        // --user when run as root) writes its reports there.
        for dir in debug.output_directories() {
            let existed = dir.is_dir();
            ensure_dir(dir, "debug output directory")?;
            if let (false, Some(r)) = (existed, &c.run_as) {
                std::os::unix::fs::chown(dir, Some(r.uid), Some(r.gid))
                    .with_context(|| format!("cannot give {} to --user", dir.display()))?;
            }
        }
    }
    if let Some(docs) = &c.content.docs_directory {
        ensure_dir(docs, "documentation directory")?;
    }
    if let Some(i) = &c.telemetry.ingester {
        let existed = i.directory.is_dir();
        ensure_dir(&i.directory, "telemetry socket directory")?;
        if let (false, Some(r)) = (existed, &c.run_as) {
            std::os::unix::fs::chown(&i.directory, Some(r.uid), Some(r.gid))
                .with_context(|| format!("cannot give {} to --user", i.directory.display()))?;
        }
    }
    if let Some(eggs) = c.daemon.as_ref().and_then(|d| d.python_eggs.as_deref()) {
        // As mod_wsgi-express: created, and given to the application's user
        // when running as root (the daemons unpack eggs into it).
        let existed = eggs.is_dir();
        ensure_dir(eggs, "--python-eggs directory")?;
        if let (false, Some(r)) = (existed, &c.run_as) {
            std::os::unix::fs::chown(eggs, Some(r.uid), Some(r.gid))
                .with_context(|| format!("cannot give {} to --user", eggs.display()))?;
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

/// Writes the server root's files: `handler.wsgi` (module and paste applications; in
/// debug mode the debug handler), `telemetry-service.py`
/// (`--enable-telemetry`), `docs/` (`--enable-docs`),
/// `resource.wsgi` (`--add-handler`),
/// `reloader.py` (`--reload-on-changes`), `httpd.conf` (0644), `apachectl`
/// (0755), `envvars` and `rewrite.conf` (unless they exist; `envvars` is
/// rewritten with `--envvars-script`), and creates `error_log` (and
/// `access_log` with `--access-log`) unless logging to the terminal or
/// rotating the logs.
/// Directories must exist ([`prepare_directories`]).
pub fn write_server_root(c: &ServerConfig) -> Result<()> {
    if let (Some(text), Some(handler)) = (render::handler_wsgi(c)?, c.app.handler()) {
        write_file(handler, &text, 0o644)?;
    }
    if let (Some(text), Some(d)) = (render::debug_handler(c)?, &c.debug) {
        write_file(&d.handler, &text, 0o644)?;
    }
    if let Some(i) = &c.telemetry.ingester {
        write_file(&i.script, &crate::telemetry::ingester_script(i), 0o644)?;
    }
    if let Some(docs) = &c.content.docs_directory {
        for (name, text) in crate::bundled_docs::FILES {
            write_file(&docs.join(name), text, 0o644)?;
        }
        write_file(
            &docs.join("index.html"),
            &crate::bundled_docs::index_html(env!("CARGO_PKG_VERSION")),
            0o644,
        )?;
    }
    if let (Some(text), Some(path)) = (
        render::reloader_py(c)?,
        c.daemon.as_ref().and_then(|d| d.reloader.as_deref()),
    ) {
        write_file(path, &text, 0o644)?;
    }
    if let (Some(text), Some(path)) = (render::resource_wsgi(c)?, &c.content.resource_script) {
        write_file(path, &text, 0o644)?;
    }
    write_file(&c.httpd_conf, &render::httpd_conf(c)?, 0o644)?;
    write_file(&c.apachectl, &render::apachectl(c)?, 0o755)?;
    // As mod_wsgi-express: envvars sources --envvars-script, else it is
    // created empty and then left alone (the user may edit it); the same
    // for the server root's rewrite.conf.
    match &c.env.envvars_script {
        Some(script) => write_file(
            &c.env.envvars,
            &format!(". {}\n", render::shell_quote(&script.to_string_lossy())),
            0o644,
        )?,
        None if !c.env.envvars.exists() => write_file(&c.env.envvars, "", 0o644)?,
        None => {}
    }
    if c.env.rewrite_rules_default && !c.env.rewrite_rules.exists() {
        write_file(&c.env.rewrite_rules, "", 0o644)?;
    }
    // Rotated logs are files rotatelogs names after their start time.
    if !c.logs.log_to_terminal && c.logs.rotation.is_none() {
        touch(&c.logs.error_log)?;
        if let Some(access_log) = &c.logs.access_log {
            touch(access_log)?;
        }
    }
    Ok(())
}

/// The report printed after setup, in mod_wsgi-express's "Label : value"
/// style and with its lines (URL, root, configuration, error log with its
/// level, operating mode, request capacity, in daemon mode the request and
/// startup timeouts and the daemon queue, server capacity and backlog,
/// locale) plus rwsgi-express's own (application, Python home, process
/// group, user, control script).
pub fn summary(c: &ServerConfig) -> String {
    let app = match &c.app {
        Application::Script { path } => format!("script {}", path.display()),
        Application::Module { name, callable, .. } => format!("module {name}:{callable}"),
        Application::Paste { config, .. } => format!("paste {}", config.display()),
        Application::Static { directory } => format!("static {}", directory.display()),
    };
    let mut lines = vec![format!("Server URL         : {}", c.url)];
    if let Some(h) = &c.https {
        lines.push(format!("Server URL (HTTPS) : {}", h.url));
    }
    if c.content.server_status {
        lines.push(format!("Server Status      : {}server-status", c.url));
    }
    lines.extend([
        format!("Server Root        : {}", c.server_root.display()),
        format!("Server Conf        : {}", c.httpd_conf.display()),
        format!(
            "Error Log File     : {} ({})",
            c.logs.error_log.display(),
            c.logs.log_level
        ),
    ]);
    if let Some(access_log) = &c.logs.access_log {
        lines.push(format!("Access Log File    : {}", access_log.display()));
    }
    if let Some(startup_log) = &c.logs.startup_log {
        lines.push(format!("Startup Log File   : {}", startup_log.display()));
    }
    if let Some(d) = &c.debug {
        if let Some(dir) = &d.coverage_directory {
            lines.push(format!(
                "Coverage Output    : {}",
                dir.join("index.html").display()
            ));
        }
        if let Some(dir) = &d.profiler_directory {
            lines.push(format!("Profiler Output    : {}", dir.display()));
        }
        if let Some(dir) = &d.recorder_directory {
            lines.push(format!("Recorder Output    : {}", dir.display()));
        }
    }
    lines.push(format!(
        "Rewrite Rules      : {}",
        c.env.rewrite_rules.display()
    ));
    lines.push(format!(
        "Environ Variables  : {}",
        c.env
            .envvars_script
            .as_ref()
            .unwrap_or(&c.env.envvars)
            .display()
    ));
    lines.push(format!("Control Script     : {}", c.apachectl.display()));
    lines.push(format!("Application        : {app} at {}", c.mount_point));
    lines.push(format!("Python Home        : {}", c.python_home.display()));
    let plural = if c.processes == 1 {
        "process"
    } else {
        "processes"
    };
    let capacity = format!(
        "Request Capacity   : {} ({} {plural} * {} threads)",
        c.processes.saturating_mul(c.threads),
        c.processes,
        c.threads
    );
    match &c.daemon {
        Some(d) => {
            lines.push("Operating Mode     : daemon".to_string());
            lines.push(format!("Process Group      : {}", d.group));
            lines.push(capacity);
            lines.push(format!(
                "Request Timeout    : {} (seconds)",
                d.request_timeout
            ));
            if d.interrupt_timeout > 0 {
                lines.push(format!(
                    "Interrupt Timeout  : {} (seconds)",
                    d.interrupt_timeout
                ));
            }
            if d.startup_timeout > 0 {
                lines.push(format!(
                    "Startup Timeout    : {} (seconds)",
                    d.startup_timeout
                ));
            }
            lines.push(format!("Queue Backlog      : {} (connections)", d.backlog));
            lines.push(format!(
                "Queue Timeout      : {} (seconds)",
                d.queue_timeout
            ));
            if d.reloader.is_some() {
                lines.push(
                    "Reload On Changes  : on (daemon processes restart when a loaded file changes)"
                        .to_string(),
                );
            }
        }
        None if c.debug.is_some() => {
            lines.push("Operating Mode     : debug".to_string());
            lines.push(capacity);
        }
        None => {
            lines.push("Operating Mode     : embedded".to_string());
            lines.push(capacity);
        }
    }
    lines.push(format!(
        "Server Capacity    : {} ({} MPM, {} child process(es) at most)",
        c.sizing.max_request_workers,
        c.mpm.name(),
        c.sizing.active_children()
    ));
    lines.push(format!(
        "Server Backlog     : {} (connections)",
        c.server_backlog
    ));
    lines.push(format!("Locale Setting     : {}", c.locale));
    if let Some(r) = &c.run_as {
        lines.push(format!(
            "Run As             : user {} group {}",
            r.user, r.group
        ));
    }
    lines.join("\n") + "\n"
}

/// The command `start-server` execs: `<root>/apachectl start-foreground`,
/// which exports the `MOD_WSGI_*` variables and the locale, sources
/// `envvars` and execs `<httpd> -f <root>/httpd.conf -d <root>
/// -DFOREGROUND` with argv\[0\] the process name (`--process-name`), all
/// in the same process.
pub fn httpd_command(c: &ServerConfig) -> Command {
    let mut cmd = Command::new(&c.apachectl);
    cmd.arg("start-foreground");
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

/// The interpreter of the Python home: `bin/pythonX.Y`, else `bin/python3`,
/// else `bin/python` (the first that exists), or `None`.
pub fn python_executable(home: &Path, version: Option<&str>) -> Option<std::path::PathBuf> {
    let bin = home.join("bin");
    version
        .map(|v| bin.join(format!("python{v}")))
        .into_iter()
        .chain([bin.join("python3"), bin.join("python")])
        .find(|p| p.is_file())
}

/// Checks, with the Python home's interpreter, what mod_wsgi-express checks
/// (or what would otherwise fail only in Apache's error log): that the
/// packages of [`ServerConfig::python_requirements`] import, and that
/// `--free-threading` has a free-threaded Python. Errors name the option,
/// the package to install and the interpreter asked.
pub fn check_python(c: &ServerConfig) -> Result<()> {
    if c.python_requirements.is_empty() && !c.python.free_threading {
        return Ok(());
    }
    let version = BuildInfo::embedded().python_version;
    let Some(python) = python_executable(&c.python_home, version.as_deref()) else {
        bail!(
            "cannot check the Python home {} (no bin/python3 in it)",
            c.python_home.display()
        );
    };
    let run = |code: &str| -> Result<bool> {
        let status = Command::new(&python)
            .args(["-c", code])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}", python.display()))?;
        Ok(status.success())
    };
    for (module, option, package) in &c.python_requirements {
        if !run(&format!("import {module}"))? {
            bail!(
                "{option} requires the {package} package: install it with \
                 'pip install {package}' (in the Python home {}; {} cannot import {module})",
                c.python_home.display(),
                python.display()
            );
        }
    }
    if c.python.free_threading
        && !run("import sys, sysconfig; sys.exit(0 if sysconfig.get_config_var('Py_GIL_DISABLED') else 1)")?
    {
        bail!(
            "--free-threading requires a Python build with free-threading support (PEP 703): \
             {} is not one (rebuild Python with --disable-gil, 3.13t or later, and rwsgi for it)",
            python.display()
        );
    }
    Ok(())
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
    check_python(&config)?;
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
            .contains("ThreadsPerChild 10"));
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
        assert_eq!(cmd.get_program(), f.path("root/apachectl").as_os_str());
        assert_eq!(args, vec!["start-foreground".to_string()]);
        let s = summary(&c);
        assert!(
            s.contains("Server URL         : http://localhost:8123/"),
            "{s}"
        );
        assert!(
            s.contains(&format!("Control Script     : {root}/apachectl")),
            "{s}"
        );
        // mod_wsgi-express's lines, in its order.
        let wanted = [
            format!("Error Log File     : {root}/error_log (warn)"),
            "Operating Mode     : daemon".into(),
            "Process Group      : localhost:8123".into(),
            "Request Capacity   : 5 (1 process * 5 threads)".into(),
            "Request Timeout    : 60 (seconds)".into(),
            "Startup Timeout    : 15 (seconds)".into(),
            "Queue Backlog      : 100 (connections)".into(),
            "Queue Timeout      : 45 (seconds)".into(),
            "Server Capacity    : 20 (event MPM, 2 child process(es) at most)".into(),
            "Server Backlog     : 500 (connections)".into(),
            "Locale Setting     : C.UTF-8".into(),
        ];
        let mut at = 0;
        for line in &wanted {
            let found = s[at..].find(line.as_str());
            assert!(found.is_some(), "{line:?} missing or out of order in\n{s}");
            at += found.unwrap();
        }
        assert!(
            !s.contains("Interrupt Timeout") && !s.contains("Reload On Changes"),
            "{s}"
        );
        let c = f
            .config(&[
                "app.wsgi",
                "--processes",
                "2",
                "--interrupt-timeout",
                "4",
                "--startup-timeout",
                "0",
                "--reload-on-changes",
            ])
            .unwrap();
        let s = summary(&c);
        assert!(
            s.contains("Request Capacity   : 10 (2 processes * 5 threads)"),
            "{s}"
        );
        assert!(s.contains("Interrupt Timeout  : 4 (seconds)"), "{s}");
        assert!(!s.contains("Startup Timeout"), "{s}");
        assert!(s.contains("Reload On Changes  : on"), "{s}");
        let s = summary(&f.config(&["app.wsgi", "--embedded-mode"]).unwrap());
        assert!(s.contains("Operating Mode     : embedded\nRequest Capacity   : 5 (1 process * 5 threads)\nServer Capacity"), "{s}");
        assert!(
            !s.contains("Queue") && !s.contains("Request Timeout"),
            "{s}"
        );
    }

    fn apachectl_text(c: &ServerConfig) -> String {
        render::apachectl(c).unwrap()
    }

    #[test]
    fn start_server_names_apache() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        assert!(apachectl_text(&c).contains(&format!("HTTPD='{}'", f.path("httpd").display())));
        assert_eq!(c.process_name.as_deref(), Some("httpd (rwsgi-express)"));
        let c = f
            .config(&["app.wsgi", "--process-name", "my-site"])
            .unwrap();
        assert_eq!(c.process_name.as_deref(), Some("my-site"));
    }

    #[test]
    fn python_eggs_directory_and_reloader_are_written() {
        let f = Fixture::new();
        let eggs = f.path("eggs");
        let c = f
            .config(&[
                "app.wsgi",
                "--reload-on-changes",
                "--python-eggs",
                eggs.to_str().unwrap(),
            ])
            .unwrap();
        prepare_directories(&c).unwrap();
        write_server_root(&c).unwrap();
        assert!(eggs.is_dir());
        let py = fs::read_to_string(f.path("root/reloader.py")).unwrap();
        assert!(py.contains("signal.SIGINT"), "{py}");
    }
}
