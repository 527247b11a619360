//! End-to-end tests of the `rwsgi-express` binary.
//!
//! The Apache tests need the httpd executable the launcher was built for
//! (`/usr/sbin/apache2` on Debian) and are skipped when it is missing. They
//! do not need mod_rwsgi: a stand-in module file is used and Apache is given
//! the generated configuration without the `# BEGIN rwsgi` … `# END rwsgi`
//! blocks, which checks (and runs) everything else the launcher generates.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rwsgi_express::build_info::{BuildInfo, DEFAULT_HTTPD};
use rwsgi_express::render::strip_wsgi;

const EXE: &str = env!("CARGO_BIN_EXE_rwsgi-express");

/// A world-readable scratch area with an app, a Python home and a stand-in
/// module.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch { dir };
        std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let version = BuildInfo::embedded()
            .python_version
            .unwrap_or_else(|| "3.11".into());
        std::fs::create_dir_all(s.path(&format!("py/lib/python{version}"))).unwrap();
        std::fs::create_dir_all(s.path("app")).unwrap();
        std::fs::write(s.path("app/app.wsgi"), "def application(e, s): pass\n").unwrap();
        std::fs::write(s.path("mod_rwsgi.so"), b"").unwrap();
        s
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A command for the launcher with the module, python home, server root
    /// and (as root) user set.
    fn command(&self, sub: &str) -> Command {
        let mut cmd = Command::new(EXE);
        cmd.env("RWSGI_MODULE", self.path("mod_rwsgi.so"))
            .env_remove("VIRTUAL_ENV")
            .current_dir(self.path("app"))
            .arg(sub)
            .arg("--python-home")
            .arg(self.path("py"))
            .arg("--server-root")
            .arg(self.path("root"));
        if nix::unistd::geteuid().is_root() {
            cmd.args(["--user", "nobody", "--group", "nogroup"]);
        }
        cmd
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run rwsgi-express")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn have_apache() -> bool {
    Path::new(DEFAULT_HTTPD).is_file()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from 127.0.0.1:`port`, retrying until `deadline`; returns the
/// raw response.
fn http_get(port: u16, path: &str, deadline: Instant) -> Option<String> {
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut out = String::new();
                if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                    return Some(out);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn refused_option_exits_1_with_reason() {
    let o = run(Command::new(EXE).args(["start-server", "app.wsgi", "--with-newrelic"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).trim().starts_with(
            "rwsgi-express: --with-newrelic is not supported (mod_wsgi-express 6.1 has no New Relic options either; "
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn invalid_value_exits_1() {
    let s = Scratch::new();
    let o = run(s.command("setup-server").args(["app.wsgi", "--port", "0"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--port 0 is out of range"),
        "{}",
        stderr(&o)
    );
    let o = run(s
        .command("setup-server")
        .args(["app.wsgi", "--entry-point", "app.wsgi"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not both"));
}

#[test]
fn setup_server_writes_the_server_root() {
    let s = Scratch::new();
    let o = run(s
        .command("setup-server")
        .args(["app.wsgi", "--port", "18999", "--access-log"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Server URL         : http://localhost:18999/"),
        "{out}"
    );
    assert!(out.contains("apachectl start"), "{out}");
    let root = s.path("root");
    for f in [
        "httpd.conf",
        "apachectl",
        "error_log",
        "access_log",
        "htdocs",
    ] {
        assert!(root.join(f).exists(), "{f} missing");
    }
    let conf = std::fs::read_to_string(root.join("httpd.conf")).unwrap();
    assert!(conf.contains("Listen 18999\n"));
    assert!(conf.contains(&format!(
        "LoadModule wsgi_module \"{}\"",
        s.path("mod_rwsgi.so").display()
    )));
    // apachectl refuses unknown commands.
    let o = run(&mut Command::new(root.join("apachectl")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("usage:"));
}

#[test]
fn module_config_and_install_module() {
    let s = Scratch::new();
    let o = run(Command::new(EXE)
        .env("RWSGI_MODULE", s.path("mod_rwsgi.so"))
        .args(["module-config", "--python-home"])
        .arg(s.path("py")));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"{}\"\n",
            s.path("mod_rwsgi.so").display(),
            s.path("py").display()
        )
    );
    let mods = s.path("modules");
    std::fs::create_dir(&mods).unwrap();
    let o = run(Command::new(EXE)
        .env("RWSGI_MODULE", s.path("mod_rwsgi.so"))
        .args(["install-module", "--python-home"])
        .arg(s.path("py"))
        .arg("--modules-directory")
        .arg(&mods));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(mods.join("mod_rwsgi.so").is_file());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with(&format!(
        "LoadModule wsgi_module \"{}\"",
        mods.join("mod_rwsgi.so").display()
    )));
    // Without RWSGI_MODULE and with nothing installed, the places tried are listed.
    let empty = s.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(Command::new(EXE)
        .env_remove("RWSGI_MODULE")
        .args(["module-config", "--python-home"])
        .arg(s.path("py"))
        .arg("--modules-directory")
        .arg(&empty));
    if o.status.success() {
        // A module next to the test binary (built by the root package) was found.
        return;
    }
    assert!(
        stderr(&o).contains(&empty.join("mod_rwsgi.so").display().to_string()),
        "{}",
        stderr(&o)
    );
}

/// `apache2 -t` accepts the generated configuration (minus the module) for
/// every MPM and application type.
#[test]
fn apache_accepts_generated_config() {
    if !have_apache() {
        eprintln!("skipped: {DEFAULT_HTTPD} not installed");
        return;
    }
    let variants: &[&[&str]] = &[
        &["app.wsgi"],
        &[
            "app.wsgi",
            "--server-mpm",
            "worker",
            "--processes",
            "2",
            "--threads",
            "3",
        ],
        &[
            "app.wsgi",
            "--server-mpm",
            "prefork",
            "--processes",
            "2",
            "--access-log",
        ],
        &[
            "--application-type",
            "module",
            "pkg.app",
            "--mount-point",
            "/sub",
            "--chunked-request",
        ],
        &[
            "app.wsgi",
            "--host",
            "127.0.0.1",
            "--url-alias",
            "/static",
            ".",
            "--url-alias",
            "/robots.txt",
            "app.wsgi",
            "--keep-alive-timeout",
            "0",
            "--directory-index",
            "index.html",
            "--access-log-format",
            "%h %>s \"%r\"",
            "--access-log",
        ],
        // Daemon options; the spare-worker fractions reach the MPM.
        &[
            "app.wsgi",
            "--max-clients",
            "40",
            "--initial-workers",
            "0.5",
            "--minimum-spare-workers",
            "0.25",
            "--maximum-spare-workers",
            "0.75",
            "--queue-timeout",
            "30",
            "--process-group",
            "site",
            "--reload-on-changes",
            "--ignore-activity",
            "/health",
        ],
        &[
            "app.wsgi",
            "--server-mpm",
            "prefork",
            "--initial-workers",
            "0.1",
            "--maximum-spare-workers",
            "0.2",
        ],
    ];
    for extra in variants {
        let s = Scratch::new();
        let o = run(s.command("setup-server").args(*extra));
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let root = s.path("root");
        let conf = std::fs::read_to_string(root.join("httpd.conf")).unwrap();
        let test_conf = root.join("httpd-nowsgi.conf");
        std::fs::write(&test_conf, strip_wsgi(&conf)).unwrap();
        let o = run(Command::new(DEFAULT_HTTPD)
            .arg("-t")
            .arg("-f")
            .arg(&test_conf)
            .arg("-d")
            .arg(&root));
        assert!(
            o.status.success(),
            "{extra:?}: apache2 -t failed: {}\n{conf}",
            stderr(&o)
        );
    }
}

/// Writes a stand-in httpd that runs Apache on the configuration without the
/// module (the configuration is the argument after `-f`, i.e. `$2`).
fn nowsgi_httpd(s: &Scratch) -> PathBuf {
    let wrapper = s.path("httpd-nowsgi");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nsed '/^# BEGIN rwsgi/,/^# END rwsgi/d' \"$2\" > \"$2.nowsgi\"\nconf=\"$2.nowsgi\"\nshift 2\nexec {DEFAULT_HTTPD} -f \"$conf\" \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

fn wait_for(deadline: Instant, mut cond: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// The generated apachectl starts a daemonized Apache that serves the
/// document root and stops it again.
#[test]
fn apachectl_start_serves_and_stop_stops() {
    if !have_apache() {
        eprintln!("skipped: {DEFAULT_HTTPD} not installed");
        return;
    }
    let s = Scratch::new();
    let port = free_port();
    let o = run(s
        .command("setup-server")
        .args([
            "app.wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--server-mpm",
            "prefork",
        ])
        .arg("--httpd-executable")
        .arg(nowsgi_httpd(&s)));
    assert!(o.status.success(), "{}", stderr(&o));
    let root = s.path("root");
    std::fs::write(root.join("htdocs/index.html"), "index page\n").unwrap();
    let ctl = root.join("apachectl");
    let o = run(Command::new(&ctl).arg("start"));
    assert!(o.status.success(), "apachectl start: {}", stderr(&o));
    let deadline = Instant::now() + Duration::from_secs(15);
    let response = http_get(port, "/", deadline);
    let o = run(Command::new(&ctl).arg("stop"));
    let stopped = wait_for(Instant::now() + Duration::from_secs(15), || {
        !root.join("httpd.pid").exists()
    });
    let log = std::fs::read_to_string(root.join("error_log")).unwrap_or_default();
    assert!(o.status.success(), "apachectl stop: {}", stderr(&o));
    let response = response.unwrap_or_else(|| panic!("no response; error_log:\n{log}"));
    assert!(
        response.starts_with("HTTP/1.1 200") && response.contains("index page"),
        "{response}"
    );
    assert!(stopped, "Apache still running after apachectl stop:\n{log}");
}

/// start-server execs Apache in the foreground: the launcher's pid serves
/// requests, leads its own process group (stdin is not a terminal), and
/// SIGTERM stops it cleanly.
fn foreground_server_stops_on_sigterm(mpm: &str) {
    if !have_apache() {
        eprintln!("skipped: {DEFAULT_HTTPD} not installed");
        return;
    }
    let s = Scratch::new();
    let wrapper = nowsgi_httpd(&s);
    let port = free_port();
    let mut child = s
        .command("start-server")
        .args(["app.wsgi", "--host", "127.0.0.1", "--server-mpm", mpm])
        .args(["--port", &port.to_string()])
        .arg("--httpd-executable")
        .arg(&wrapper)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let root = s.path("root");
    let deadline = Instant::now() + Duration::from_secs(15);
    wait_for(deadline, || root.join("htdocs").is_dir());
    std::fs::write(root.join("htdocs/hello.txt"), "hello from htdocs\n").unwrap();
    let response = http_get(port, "/hello.txt", deadline);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let cmdline =
        std::fs::read_to_string(format!("/proc/{}/cmdline", child.id())).unwrap_or_default();
    // Apache's prefork MPM signals its whole process group on shutdown: it
    // must not be ours.
    let pgid = nix::unistd::getpgid(Some(pid)).ok();
    if pgid != Some(pid) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("Apache (pid {pid}) is in process group {pgid:?}, not its own");
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let stop_deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > stop_deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = std::fs::read_to_string(root.join("error_log")).unwrap_or_default();
    let response = response.unwrap_or_else(|| panic!("no response from Apache; error_log:\n{log}"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("hello from htdocs"), "{response}");
    assert!(
        cmdline.contains("-DFOREGROUND"),
        "launcher pid was not Apache: {cmdline:?}"
    );
    let status = status.expect("Apache did not stop within 15s of SIGTERM");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("caught SIGTERM, shutting down"), "{log}");
    assert!(!root.join("httpd.pid").exists(), "pid file left behind");
}

#[test]
fn start_server_event_in_foreground_stops_on_sigterm() {
    foreground_server_stops_on_sigterm("event");
}

#[test]
fn start_server_prefork_in_foreground_stops_on_sigterm() {
    foreground_server_stops_on_sigterm("prefork");
}
