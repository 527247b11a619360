//! Unit tests of the model; [`Fixture`] is shared with the other modules' tests.

use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;
use std::fs;

/// A fake installation: a modules dir with the needed .so files, a
/// Python home with lib/python3.11, a module file and an app script.
pub(crate) struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mods = root.join("modules");
        fs::create_dir_all(&mods).unwrap();
        for f in [
            "mod_mpm_event.so",
            "mod_mpm_worker.so",
            "mod_mpm_prefork.so",
            "mod_authz_core.so",
            "mod_authz_host.so",
            "mod_mime.so",
            "mod_alias.so",
            "mod_dir.so",
            "mod_reqtimeout.so",
            "mod_access_compat.so",
            "mod_authn_core.so",
            "mod_rewrite.so",
            "mod_env.so",
            "mod_headers.so",
            "mod_filter.so",
            "mod_ssl.so",
            "mod_http2.so",
            "mod_autoindex.so",
            "mod_deflate.so",
            "mod_status.so",
            "mod_cgid.so",
            "mod_cgi.so",
            "mod_proxy.so",
            "mod_proxy_http.so",
            "mod_rwsgi.so",
        ] {
            fs::write(mods.join(f), b"").unwrap();
        }
        fs::create_dir_all(root.join("py/lib/python3.11")).unwrap();
        fs::create_dir_all(root.join("app")).unwrap();
        fs::write(root.join("app/app.wsgi"), b"def application(e, s): pass\n").unwrap();
        fs::write(root.join("mime.types"), b"text/plain txt\n").unwrap();
        fs::write(root.join("httpd"), b"").unwrap();
        Fixture { dir }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub(crate) fn host(&self, euid: u32) -> HostFacts {
        HostFacts {
            euid,
            egid: euid,
            uid: euid,
            cwd: self.path("app"),
            virtual_env: None,
            module_override: None,
            exe_dir: None,
            locale_env: Some("C".into()),
            bash: Some(PathBuf::from("/bin/bash")),
            path_env: Some("/usr/bin:/bin".into()),
        }
    }

    pub(crate) fn build_info(&self) -> BuildInfo {
        BuildInfo {
            python_home: Some(self.path("py")),
            python_version: Some("3.11".into()),
        }
    }

    /// Parses `setup-server` with the fixture's paths plus `extra`.
    pub(crate) fn args(&self, extra: &[&str]) -> ServerArgs {
        let mods = self.path("modules");
        let mime = self.path("mime.types");
        let httpd = self.path("httpd");
        let root = self.path("root");
        let mut argv: Vec<String> = vec![
            "rwsgi-express".into(),
            "setup-server".into(),
            "--modules-directory".into(),
            mods.to_string_lossy().into(),
            "--mime-types".into(),
            mime.to_string_lossy().into(),
            "--httpd-executable".into(),
            httpd.to_string_lossy().into(),
            "--server-root".into(),
            root.to_string_lossy().into(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        match Cli::try_parse_from(argv).unwrap().command {
            Command::SetupServer(a) => a,
            _ => unreachable!(),
        }
    }

    pub(crate) fn config(&self, extra: &[&str]) -> Result<ServerConfig> {
        ServerConfig::build(&self.args(extra), &self.host(1000), &self.build_info())
    }
}

#[test]
fn sizing_event_defaults() {
    let s = mpm_sizing(Mpm::Event, 1, 5, default_max_clients(1, 5));
    assert_eq!(
        s,
        MpmSizing {
            start_servers: 1,
            server_limit: 2,
            threads_per_child: 5,
            thread_limit: 5,
            max_request_workers: 10,
            min_spare: 1,
            max_spare: 10,
        }
    );
}

#[test]
fn sizing_rounds_up_to_whole_children() {
    let s = mpm_sizing(Mpm::Worker, 2, 3, 10);
    assert_eq!((s.server_limit, s.max_request_workers), (4, 12));
    assert_eq!(s.start_servers, 2);
    // MaxSpareThreads never below what Apache enforces.
    let s = mpm_sizing(Mpm::Event, 1, 20, 20);
    assert_eq!(s.max_spare, 22);
    assert!(s.max_spare >= s.start_servers * s.threads_per_child);
}

#[test]
fn sizing_prefork() {
    let s = mpm_sizing(Mpm::Prefork, 3, 5, 15);
    assert_eq!(
        (s.start_servers, s.server_limit, s.max_request_workers),
        (3, 15, 15)
    );
    assert_eq!((s.min_spare, s.max_spare), (1, 15));
}

#[test]
fn max_clients_default_floor() {
    assert_eq!(default_max_clients(1, 5), 10);
    assert_eq!(default_max_clients(4, 5), 20);
    assert_eq!(daemon_max_clients(1, 5), 20);
    assert_eq!(daemon_max_clients(2, 15), 55);
    assert_eq!(daemon_child_threads(55), 18); // 4 children: 72 workers
    assert_eq!(daemon_child_threads(20), 10);
}

#[test]
fn default_server_root_like_mod_wsgi_express() {
    assert_eq!(
        default_server_root(None, 8000, 0),
        PathBuf::from("/tmp/rwsgi-localhost:8000:0")
    );
    assert_eq!(
        default_server_root(Some("127.0.0.1"), 8080, 1000),
        PathBuf::from("/tmp/rwsgi-127.0.0.1:8080:1000")
    );
}

#[test]
fn server_root_default_used_when_not_given() {
    let f = Fixture::new();
    let mut a = f.args(&["app.wsgi", "--host", "127.0.0.1", "--port", "8123"]);
    a.server_root = None;
    let c = ServerConfig::build(&a, &f.host(1000), &f.build_info()).unwrap();
    assert_eq!(
        c.server_root,
        PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000")
    );
    assert_eq!(
        c.pid_file,
        PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000/httpd.pid")
    );
    assert_eq!(
        c.document_root,
        PathBuf::from("/tmp/rwsgi-127.0.0.1:8123:1000/htdocs")
    );
}

#[test]
fn listen_forms() {
    assert_eq!(listen_arg(None, 8000), "8000");
    assert_eq!(listen_arg(Some("127.0.0.1"), 8000), "127.0.0.1:8000");
    assert_eq!(listen_arg(Some("::1"), 8000), "[::1]:8000");
}

#[test]
fn builds_script_config_with_defaults() {
    let f = Fixture::new();
    let c = f.config(&["app.wsgi"]).unwrap();
    assert_eq!(c.script, f.path("app/app.wsgi"));
    assert_eq!(c.working_directory, f.path("app"));
    assert_eq!(c.python_path, f.path("app").to_string_lossy());
    assert_eq!(c.python_home, f.path("py"));
    assert_eq!(
        c.python_dirs,
        vec![f.path("py"), f.path("py/lib/python3.11")]
    );
    assert_eq!(c.mpm, Mpm::Event);
    assert_eq!(c.listen, "8000");
    assert_eq!(c.max_clients, 20); // daemon mode: 10 + max(10, 1.5 * 1 * 5)
    assert_eq!(c.module_path, f.path("modules/mod_rwsgi.so"));
    assert_eq!(c.logs.error_log, f.path("root/error_log"));
    assert_eq!(c.logs.access_log, None);
    assert_eq!(c.locale, "C.UTF-8");
    assert_eq!(c.url, "http://localhost:8000/");
    assert_eq!(c.callable_object, "application");
    assert!(c.run_as.is_none());
    assert_eq!(
        c.request_read_timeout.as_deref(),
        Some("header=15-30,MinRate=500 body=15,MinRate=500")
    );
}

#[test]
fn entry_point_option_and_conflict() {
    let f = Fixture::new();
    let c = f.config(&["--entry-point", "app.wsgi"]).unwrap();
    assert_eq!(c.script, f.path("app/app.wsgi"));
    let e = f
        .config(&["app.wsgi", "--entry-point", "app.wsgi"])
        .unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
    let e = f.config(&[]).unwrap_err();
    assert!(e.to_string().contains("no WSGI application given"), "{e}");
}

#[test]
fn validation_errors() {
    let f = Fixture::new();
    let cases: &[(&[&str], &str)] = &[
        (&["app.wsgi", "--port", "0"], "out of range"),
        (&["app.wsgi", "--port", "70000"], "out of range"),
        (&["app.wsgi", "--mount-point", "app"], "must start with '/'"),
        (
            &["app.wsgi", "--processes", "0"],
            "--processes must be at least 1",
        ),
        (
            &["app.wsgi", "--threads", "0"],
            "--threads must be at least 1",
        ),
        (&["missing.wsgi"], "does not exist"),
        (
            &["app.wsgi", "--python-home", "/nonexistent/py"],
            "is not a directory",
        ),
        (&["app.wsgi", "--log-level", "loud"], "--log-level"),
        (
            &["app.wsgi", "--callable-object", "not-ident"],
            "not a Python identifier",
        ),
        (
            &["app.wsgi", "--url-alias", "static", "."],
            "must start with '/'",
        ),
        (
            &["app.wsgi", "--include-file", "nope.conf"],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        let e = f.config(args).unwrap_err().to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn python_home_of_other_version_is_refused() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("py39/lib/python3.9")).unwrap();
    let home = f.path("py39");
    let e = f
        .config(&["app.wsgi", "--python-home", home.to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("has no lib/python3.11"), "{e}");
}

#[test]
fn virtualenv_is_default_home_and_base_is_checked() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("venv/lib/python3.11/site-packages")).unwrap();
    let base_bin = f.path("py/bin");
    fs::write(
        f.path("venv/pyvenv.cfg"),
        format!("home = {}\nversion = 3.11.2\n", base_bin.display()),
    )
    .unwrap();
    let mut host = f.host(1000);
    host.virtual_env = Some(f.path("venv"));
    let c = ServerConfig::build(&f.args(&["app.wsgi"]), &host, &f.build_info()).unwrap();
    assert_eq!(c.python_home, f.path("venv"));
    assert_eq!(
        c.python_dirs,
        vec![
            f.path("venv"),
            f.path("venv/lib/python3.11"),
            f.path("py/lib/python3.11")
        ]
    );
}

#[test]
fn module_application_uses_handler() {
    let f = Fixture::new();
    let c = f
        .config(&[
            "--application-type",
            "module",
            "pkg.wsgi",
            "--callable-object",
            "app",
        ])
        .unwrap();
    assert_eq!(
        c.app,
        Application::Module {
            name: "pkg.wsgi".into(),
            callable: "app".into(),
            handler: f.path("root/handler.wsgi"),
        }
    );
    assert_eq!(c.script, f.path("root/handler.wsgi"));
    assert_eq!(c.callable_object, "application");
    assert_eq!(c.working_directory, f.path("app"));
    let e = f
        .config(&["--application-type", "module", "pkg/x.py"])
        .unwrap_err();
    assert!(e.to_string().contains("dotted Python module name"));
}

#[test]
fn root_requires_user_and_group() {
    let f = Fixture::new();
    let e = ServerConfig::build(&f.args(&["app.wsgi"]), &f.host(0), &f.build_info())
        .unwrap_err()
        .to_string();
    assert!(e.contains("--user and --group are required"), "{e}");
    let c = ServerConfig::build(
        &f.args(&["app.wsgi", "--user", "nobody", "--group", "nogroup"]),
        &f.host(0),
        &f.build_info(),
    )
    .unwrap();
    let r = c.run_as.unwrap();
    assert_eq!((r.user.as_str(), r.group.as_str()), ("nobody", "nogroup"));
    let e = ServerConfig::build(
        &f.args(&["app.wsgi", "--user", "root", "--group", "root"]),
        &f.host(0),
        &f.build_info(),
    )
    .unwrap_err();
    assert!(e
        .to_string()
        .contains("refuses to run its children as root"));
}

#[test]
fn non_root_warns_about_user() {
    let f = Fixture::new();
    let c = f.config(&["app.wsgi", "--user", "nobody"]).unwrap();
    assert!(c.run_as.is_none());
    assert!(c.warnings[0].contains("--user/--group are ignored"));
}

#[test]
fn mpm_preferences() {
    let f = Fixture::new();
    assert_eq!(
        f.config(&["app.wsgi", "--server-mpm", "prefork"])
            .unwrap()
            .mpm,
        Mpm::Prefork
    );
    assert_eq!(
        f.config(&[
            "app.wsgi",
            "--server-mpm",
            "prefork",
            "--server-mpm",
            "worker"
        ])
        .unwrap()
        .mpm,
        Mpm::Worker
    );
    fs::remove_file(f.path("modules/mod_mpm_event.so")).unwrap();
    assert_eq!(f.config(&["app.wsgi"]).unwrap().mpm, Mpm::Worker);
    let e = f
        .config(&["app.wsgi", "--server-mpm", "event"])
        .unwrap_err();
    assert!(e.to_string().contains("mod_mpm_event.so"));
}

#[test]
fn missing_apache_module_is_reported() {
    let f = Fixture::new();
    fs::remove_file(f.path("modules/mod_mime.so")).unwrap();
    let e = f.config(&["app.wsgi"]).unwrap_err().to_string();
    assert!(e.contains("mod_mime.so"), "{e}");
}

#[test]
fn logs_to_terminal_and_log_directory_override() {
    let f = Fixture::new();
    let c = f
        .config(&["app.wsgi", "--log-to-terminal", "--access-log"])
        .unwrap();
    assert_eq!(c.logs.error_log, PathBuf::from("/dev/stderr"));
    assert_eq!(c.logs.access_log, Some(PathBuf::from("/dev/stdout")));
    let logs = f.path("logs");
    let c = f
        .config(&[
            "app.wsgi",
            "--log-to-terminal",
            "--log-directory",
            logs.to_str().unwrap(),
        ])
        .unwrap();
    assert!(!c.logs.log_to_terminal);
    assert_eq!(c.logs.error_log, f.path("logs/error_log"));
}

#[test]
fn python_path_with_colon_is_refused() {
    let f = Fixture::new();
    fs::create_dir_all(f.path("a:b")).unwrap();
    let e = f
        .config(&["app.wsgi", "--python-path", f.path("a:b").to_str().unwrap()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("contains ':'"), "{e}");
}

#[test]
fn quote_unsafe_values_are_refused() {
    assert!(conf_safe_str("x", "/a\"b").is_err());
    assert!(conf_safe_str("x", "/a${HOME}").is_err());
    assert!(conf_safe_str("x", "/a\nb").is_err());
    assert!(conf_safe_str("x", "/tmp/rwsgi-localhost:8000:0").is_ok());
}

#[test]
fn helpers() {
    assert!(is_module_name("pkg.sub.wsgi"));
    assert!(!is_module_name("pkg..wsgi"));
    assert!(!is_module_name("1pkg"));
    assert_eq!(
        absolute(Path::new("/w"), Path::new("./a/./b")),
        PathBuf::from("/w/a/b")
    );
    assert_eq!(default_locale(Some("en_GB.UTF-8")), "en_GB.UTF-8");
    assert_eq!(default_locale(Some("POSIX")), "C.UTF-8");
    assert_eq!(default_locale(None), "C.UTF-8");
}

#[test]
fn paths_children_read_order() {
    let f = Fixture::new();
    let static_dir = f.path("app");
    let c = f
        .config(&[
            "app.wsgi",
            "--url-alias",
            "/static",
            static_dir.to_str().unwrap(),
        ])
        .unwrap();
    assert_eq!(
        c.paths_children_read(),
        vec![
            f.path("py"),
            f.path("py/lib/python3.11"),
            f.path("app/app.wsgi"),
            f.path("app"),
            f.path("root/htdocs"),
            f.path("root"),
        ]
    );
}

#[test]
fn shell_executable_is_apachectl_s_interpreter() {
    let f = Fixture::new();
    let sh = f.path("my-sh");
    fs::write(&sh, "").unwrap();
    let c = f
        .config(&["app.wsgi", "--shell-executable", sh.to_str().unwrap()])
        .unwrap();
    assert_eq!(c.shell, sh);
    // Not bash: no exec -a, so no process name (and asking for one fails).
    assert_eq!(c.process_name, None);
    let s = crate::render::apachectl(&c).unwrap();
    assert!(s.starts_with(&format!("#!{}\n", sh.display())), "{s}");
    let e = f
        .config(&[
            "app.wsgi",
            "--shell-executable",
            sh.to_str().unwrap(),
            "--process-name",
            "x",
        ])
        .unwrap_err();
    assert!(e.to_string().contains("--process-name needs bash"), "{e}");
    let bash = f.path("bin/bash");
    fs::create_dir_all(bash.parent().unwrap()).unwrap();
    fs::write(&bash, "").unwrap();
    let c = f
        .config(&["app.wsgi", "--shell-executable", bash.to_str().unwrap()])
        .unwrap();
    assert_eq!(c.process_name.as_deref(), Some("httpd (rwsgi-express)"));
    let e = f
        .config(&["app.wsgi", "--shell-executable", "/nonexistent/sh"])
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("--shell-executable /nonexistent/sh does not exist"),
        "{e}"
    );
    // Default: the host's bash.
    assert_eq!(
        f.config(&["app.wsgi"]).unwrap().shell,
        PathBuf::from("/bin/bash")
    );
}
