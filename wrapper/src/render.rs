//! Rendering the server root's files from a [`ServerConfig`] with the
//! minijinja templates in `apache/` (embedded at compile time).
//!
//! Three filters are available to the templates: `q` writes a value inside
//! double quotes for httpd.conf (values were checked by
//! [`crate::model::conf_safe`]; the filter refuses a `"` again as a
//! safeguard), `sq` writes a value single-quoted for `/bin/sh` and `py`
//! writes a value as a Python string literal.

use anyhow::{Context, Result};
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::model::{Application, ServerConfig};

/// Template of `httpd.conf`.
pub const HTTPD_CONF_TEMPLATE: &str = include_str!("../../apache/httpd.conf.j2");
/// Template of the `<VirtualHost>` blocks, included by httpd.conf's.
pub const VHOSTS_TEMPLATE: &str = include_str!("../../apache/vhosts.conf.j2");
/// Template of the status page, error documents, CGI and proxy blocks,
/// included by httpd.conf's.
pub const EXTRAS_TEMPLATE: &str = include_str!("../../apache/extras.conf.j2");
/// Template of `apachectl`.
pub const APACHECTL_TEMPLATE: &str = include_str!("../../apache/apachectl.sh.j2");
/// Template of `handler.wsgi` (module applications).
pub const HANDLER_TEMPLATE: &str = include_str!("../../apache/handler.wsgi.j2");
/// Template of `handler.wsgi` (paste applications).
pub const PASTE_HANDLER_TEMPLATE: &str = include_str!("../../apache/paste.wsgi.j2");
/// Template of `handler.wsgi` in debug mode (`--debug-mode`).
pub const DEBUG_HANDLER_TEMPLATE: &str = include_str!("../../apache/debug.wsgi.j2");
/// Template of `resource.wsgi` (`--add-handler`).
pub const RESOURCE_TEMPLATE: &str = include_str!("../../apache/resource.wsgi.j2");
/// Template of `reloader.py` (`--reload-on-changes`).
pub const RELOADER_TEMPLATE: &str = include_str!("../../apache/reloader.py.j2");

/// Markers around the lines that need mod_rwsgi (`LoadModule wsgi_module`,
/// the `WSGI*` directives); [`strip_wsgi`] removes what they enclose.
pub const WSGI_BEGIN: &str = "# BEGIN rwsgi";
/// See [`WSGI_BEGIN`].
pub const WSGI_END: &str = "# END rwsgi";

fn quote(value: String) -> Result<String, Error> {
    if value.contains('"') || value.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("{value:?} cannot be quoted in httpd.conf"),
        ));
    }
    Ok(format!("\"{value}\""))
}

/// `value` as a double-quoted Python string literal: `\\` and `"` escaped,
/// control characters as `\U` escapes.
pub fn python_literal(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\U{:08x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as a single-quoted `/bin/sh` word (`'` written as `'\''`).
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("q", quote);
    env.add_filter("sq", |v: String| shell_quote(&v));
    env.add_filter("py", |v: String| python_literal(&v));
    env.add_template("httpd.conf", HTTPD_CONF_TEMPLATE)
        .expect("httpd.conf template parses");
    env.add_template("vhosts.conf", VHOSTS_TEMPLATE)
        .expect("vhosts.conf template parses");
    env.add_template("extras.conf", EXTRAS_TEMPLATE)
        .expect("extras.conf template parses");
    env.add_template("apachectl", APACHECTL_TEMPLATE)
        .expect("apachectl template parses");
    env.add_template("handler.wsgi", HANDLER_TEMPLATE)
        .expect("handler.wsgi template parses");
    env.add_template("paste.wsgi", PASTE_HANDLER_TEMPLATE)
        .expect("paste.wsgi template parses");
    env.add_template("debug.wsgi", DEBUG_HANDLER_TEMPLATE)
        .expect("debug.wsgi template parses");
    env.add_template("resource.wsgi", RESOURCE_TEMPLATE)
        .expect("resource.wsgi template parses");
    env.add_template("reloader.py", RELOADER_TEMPLATE)
        .expect("reloader.py template parses");
    env
}

fn render(name: &str, ctx: Value) -> Result<String> {
    environment()
        .get_template(name)
        .expect("template is registered")
        .render(ctx)
        .with_context(|| format!("rendering {name}"))
}

fn config_context(config: &ServerConfig) -> Value {
    minijinja::context! {
        version => env!("CARGO_PKG_VERSION"),
        compressed_types => crate::content::COMPRESSED_TYPES,
        ..Value::from_serialize(config)
    }
}

/// The complete `httpd.conf` for `config`: a standalone configuration for
/// the Apache executable (no `${APACHE_*}` variables, no Debian includes).
/// Errors only if a value cannot be quoted (the model prevents that).
pub fn httpd_conf(config: &ServerConfig) -> Result<String> {
    render("httpd.conf", config_context(config))
}

/// The `apachectl` shell script: `start`, `stop`, `restart`, `graceful`,
/// `graceful-stop` (via `-k`), `configtest` (`-t`), `start-foreground`
/// (exec with `-DFOREGROUND`); anything else prints the usage and exits 1.
/// Exports `LANG`/`LC_ALL` set to the configured locale.
pub fn apachectl(config: &ServerConfig) -> Result<String> {
    render("apachectl", config_context(config))
}

/// `handler.wsgi` for a module or paste application (`None` for a script
/// or a static site, and in debug mode, where [`debug_handler`] is the
/// handler). A module's:
/// `application = getattr(importlib.import_module("<module>"), "<callable>")`;
/// a paste application's: `application = loadapp("config:" + "<ini>")`
/// (`paste.deploy.loadapp`, as mod_wsgi-express's handler loads it), with a
/// `reload_required` that is true once the `.ini` file's modification time
/// changed, as mod_wsgi-express's handler has.
pub fn handler_wsgi(config: &ServerConfig) -> Result<Option<String>> {
    if config.debug.is_some() {
        return Ok(None);
    }
    let version = env!("CARGO_PKG_VERSION");
    match &config.app {
        Application::Script { .. } | Application::Static { .. } => Ok(None),
        Application::Module { name, callable, .. } => render(
            "handler.wsgi",
            minijinja::context! { version, name, callable },
        )
        .map(Some),
        Application::Paste { config, .. } => render(
            "paste.wsgi",
            minijinja::context! { version, config => config.to_string_lossy() },
        )
        .map(Some),
    }
}

/// `handler.wsgi` in debug mode (`None` otherwise): loads the application
/// (script or module) and wraps it with the debug tools of
/// [`crate::debug::Debug`], as mod_wsgi-express's handler does.
pub fn debug_handler(config: &ServerConfig) -> Result<Option<String>> {
    let Some(debug) = &config.debug else {
        return Ok(None);
    };
    render(
        "debug.wsgi",
        minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            debug => Value::from_serialize(debug),
            app => Value::from_serialize(&config.app),
        },
    )
    .map(Some)
}

/// `resource.wsgi` for `--add-handler` (`None` without it): a
/// `handle_request` that runs the script given for the requested file's
/// extension (its `handle_request`, else its `application`).
pub fn resource_wsgi(config: &ServerConfig) -> Result<Option<String>> {
    if config.content.resource_script.is_none() {
        return Ok(None);
    }
    let handlers: Vec<_> = config
        .content
        .handlers
        .iter()
        .map(|h| minijinja::context! { extension => h.extension, script => h.script.to_string_lossy() })
        .collect();
    render(
        "resource.wsgi",
        minijinja::context! { version => env!("CARGO_PKG_VERSION"), handlers },
    )
    .map(Some)
}

/// `reloader.py` for `--reload-on-changes` in daemon mode (`None`
/// otherwise): a monitor thread that sends SIGINT to its daemon process when
/// the script (for a paste application: its `.ini` file) or a file of a
/// module in `sys.modules` changes.
pub fn reloader_py(config: &ServerConfig) -> Result<Option<String>> {
    let Some(daemon) = config.daemon.as_ref().filter(|d| d.reloader.is_some()) else {
        return Ok(None);
    };
    render(
        "reloader.py",
        minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            group => daemon.group,
            script => match &config.app {
                Application::Paste { config, .. } => config.to_string_lossy(),
                _ => config.script.to_string_lossy(),
            },
        },
    )
    .map(Some)
}

/// `conf` without the lines between [`WSGI_BEGIN`] and [`WSGI_END`] markers
/// (markers included): a configuration Apache can check (`-t`) and run
/// without the module, used to test everything else.
pub fn strip_wsgi(conf: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in conf.lines() {
        if line.starts_with(WSGI_BEGIN) {
            skipping = true;
        } else if line.starts_with(WSGI_END) {
            skipping = false;
        } else if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::Fixture;
    use crate::model::ServerConfig;

    fn conf(f: &Fixture, extra: &[&str]) -> (ServerConfig, String) {
        let c = f.config(extra).unwrap();
        let text = httpd_conf(&c).unwrap();
        (c, text)
    }

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    /// Whether a line of `text` is a `WSGI*` directive.
    pub(crate) fn has_wsgi_directive(text: &str) -> bool {
        text.lines().any(|l| l.trim_start().starts_with("WSGI"))
    }

    #[test]
    fn default_config_content() {
        let f = Fixture::new();
        let (_, t) = conf(&f, &["app.wsgi"]);
        let root = f.path("root");
        let m = f.path("modules");
        for line in [
            format!("ServerRoot \"{}\"", root.display()),
            format!("PidFile \"{}/httpd.pid\"", root.display()),
            format!("DefaultRuntimeDir \"{}\"", root.display()),
            "ServerName localhost".into(),
            "Listen 8000".into(),
            format!("LoadModule mpm_event_module \"{}/mod_mpm_event.so\"", m.display()),
            format!("LoadModule authz_core_module \"{}/mod_authz_core.so\"", m.display()),
            format!("LoadModule mime_module \"{}/mod_mime.so\"", m.display()),
            format!("LoadModule reqtimeout_module \"{}/mod_reqtimeout.so\"", m.display()),
            format!("TypesConfig \"{}\"", f.path("mime.types").display()),
            "Timeout 60".into(),
            "KeepAlive On".into(),
            "KeepAliveTimeout 2".into(),
            "MaxKeepAliveRequests 0".into(),
            "RequestReadTimeout header=15-30,MinRate=500 body=15,MinRate=500".into(),
            "LimitRequestBody 10485760".into(),
            format!("ErrorLog \"{}/error_log\"", root.display()),
            "LogLevel warn".into(),
            // Daemon mode: both relaying children up front, and kept.
            "StartServers 2".into(),
            "ServerLimit 4".into(),
            "ThreadsPerChild 10".into(),
            "ThreadLimit 10".into(),
            "MaxRequestWorkers 20".into(),
            "MinSpareThreads 10".into(),
            "MaxSpareThreads 30".into(),
            "MaxConnectionsPerChild 0".into(),
            "Require all denied".into(),
            format!("DocumentRoot \"{}/htdocs\"", root.display()),
            format!("LoadModule wsgi_module \"{}/mod_rwsgi.so\"", m.display()),
            format!("WSGIPythonHome \"{}\"", f.path("py").display()),
            format!("WSGIPythonPath \"{}\"", f.path("app").display()),
            // Daemon mode by default, as mod_wsgi-express.
            "WSGIRestrictEmbedded On".into(),
            "WSGIPassAuthorization On".into(),
            format!(
                "WSGIDaemonProcess localhost:8000 processes=1 threads=5 display-name=%{{GROUP}} \
                 home=\"{}\" listen-backlog=100 queue-timeout=45 socket-timeout=60 \
                 connect-timeout=15 request-timeout=60 startup-timeout=15 deadlock-timeout=60 \
                 graceful-timeout=15 shutdown-timeout=5 response-flush-delay=5",
                f.path("app").display()
            ),
            format!("<Directory \"{}\">", f.path("app").display()),
            "<Files \"app.wsgi\">".into(),
            format!(
                "WSGIScriptAlias / \"{}\" application-group=%{{GLOBAL}} callable-object=application process-group=localhost:8000",
                f.path("app/app.wsgi").display()
            ),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        // Not root: the current user, by id, as mod_wsgi-express names it.
        assert!(
            has_line(&t, "User \"#1000\"") && has_line(&t, "Group \"#1000\""),
            "{t}"
        );
        for absent in [
            "CustomLog",
            "WSGIChunkedRequest",
            "Include",
            "${",
            "WSGISocketPrefix",
            "WSGIImportScript",
            "WSGIScriptReloading",
            "<Location",
        ] {
            assert!(
                !t.contains(&format!("\n{absent} ")),
                "unexpected {absent} in\n{t}"
            );
        }
        assert!(!t.contains("${"));
        // Compiled-in modules are never loaded.
        for builtin in [
            "log_config_module",
            "unixd_module",
            "version_module",
            "so_module",
        ] {
            assert!(!t.contains(builtin), "{builtin}");
        }
    }

    #[test]
    fn embedded_mode_has_no_daemon_group() {
        let f = Fixture::new();
        let (_, t) = conf(&f, &["app.wsgi", "--embedded-mode"]);
        assert!(has_line(&t, "WSGIRestrictEmbedded Off"), "{t}");
        assert!(
            !t.contains("WSGIDaemonProcess") && !t.contains("process-group="),
            "{t}"
        );
    }

    #[test]
    fn options_reach_the_config() {
        let f = Fixture::new();
        let inc = f.path("extra.conf");
        std::fs::write(&inc, "# extra\n").unwrap();
        let lib = f.path("py/lib");
        let static_dir = f.path("app");
        let file = f.path("mime.types");
        let (_, t) = conf(
            &f,
            &[
                "app.wsgi",
                "--embedded-mode",
                "--host",
                "127.0.0.1",
                "--port",
                "8123",
                "--processes",
                "3",
                "--threads",
                "4",
                "--mount-point",
                "/app/",
                "--chunked-request",
                "--access-log",
                "--log-level",
                "info",
                "--python-path",
                lib.to_str().unwrap(),
                "--url-alias",
                "/static",
                static_dir.to_str().unwrap(),
                "--url-alias",
                "/types",
                file.to_str().unwrap(),
                "--include-file",
                inc.to_str().unwrap(),
                "--keep-alive-timeout",
                "0",
                "--callable-object",
                "app",
            ],
        );
        let root = f.path("root");
        for line in [
            "Listen 127.0.0.1:8123".to_string(),
            "StartServers 3".into(),
            "ThreadsPerChild 4".into(),
            "ServerLimit 3".into(),
            "MaxRequestWorkers 12".into(),
            "KeepAlive Off".into(),
            "LogLevel info".into(),
            "WSGIChunkedRequest On".into(),
            format!("CustomLog \"{}/access_log\" common", root.display()),
            format!(
                "WSGIPythonPath \"{}:{}\"",
                f.path("app").display(),
                lib.display()
            ),
            format!("Alias /static \"{}\"", static_dir.display()),
            format!("Alias /types \"{}\"", file.display()),
            "<Files \"mime.types\">".into(),
            format!(
                "WSGIScriptAlias /app \"{}\" application-group=%{{GLOBAL}} callable-object=app",
                f.path("app/app.wsgi").display()
            ),
            format!("Include \"{}\"", inc.display()),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        // Order: aliases, the include files, then the application's
        // WSGIScriptAlias (an include's mounts match first).
        let alias = t.find("Alias /static").unwrap();
        let script_alias = t.find("WSGIScriptAlias").unwrap();
        let include = t.find(&format!("Include \"{}\"", inc.display())).unwrap();
        assert!(alias < include && include < script_alias);
    }

    #[test]
    fn prefork_and_root_user() {
        let f = Fixture::new();
        let a = f.args(&[
            "app.wsgi",
            "--server-mpm",
            "prefork",
            "--processes",
            "2",
            "--user",
            "nobody",
            "--group",
            "nogroup",
        ]);
        let c = ServerConfig::build(&a, &f.host(0), &f.build_info()).unwrap();
        let t = httpd_conf(&c).unwrap();
        for line in [
            "User \"nobody\"",
            "Group \"nogroup\"",
            "StartServers 1",
            "MinSpareServers 1",
            "MaxSpareServers 2",
            "ServerLimit 25",
            "MaxRequestWorkers 25",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        assert!(t.contains("mod_mpm_prefork.so"));
        assert!(!t.contains("ThreadsPerChild"));
    }

    #[test]
    fn module_application_handler() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "--embedded-mode",
                "--application-type",
                "module",
                "pkg.wsgi",
                "--callable-object",
                "app",
            ])
            .unwrap();
        let h = handler_wsgi(&c).unwrap().unwrap();
        assert!(
            h.contains("application = getattr(importlib.import_module(\"pkg.wsgi\"), \"app\")"),
            "{h}"
        );
        let t = httpd_conf(&c).unwrap();
        assert!(has_line(
            &t,
            &format!(
                "WSGIScriptAlias / \"{}\" application-group=%{{GLOBAL}} callable-object=application",
                f.path("root/handler.wsgi").display()
            )
        ), "{t}");
        assert!(has_line(&t, "<Files \"handler.wsgi\">"));
        assert_eq!(
            handler_wsgi(&f.config(&["app.wsgi"]).unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn apachectl_script() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        let s = apachectl(&c).unwrap();
        assert!(s.starts_with("#!/bin/bash\n"), "{s}");
        assert!(s.contains("PROCESS_NAME='httpd (rwsgi-express)'"), "{s}");
        assert!(s.contains(
            "exec -a \"$PROCESS_NAME\" \"$HTTPD\" -f \"$HTTPD_CONF\" -d \"$SERVER_ROOT\" -k \"$1\""
        ));
        assert!(s.contains(&format!("HTTPD='{}'", f.path("httpd").display())));
        assert!(s.contains(&format!(
            "HTTPD_CONF='{}/httpd.conf'",
            f.path("root").display()
        )));
        assert!(s.contains("LC_ALL='C.UTF-8'"));
        assert!(s.contains("start|stop|restart|graceful|graceful-stop)"));
        assert!(s.contains("-t\n"));
        assert!(s.contains("-DFOREGROUND"));
        assert!(s.contains("exit 1"));
    }

    #[test]
    fn apachectl_without_bash_keeps_the_name() {
        let f = Fixture::new();
        let mut host = f.host(1000);
        host.bash = None;
        let c = ServerConfig::build(&f.args(&["app.wsgi"]), &host, &f.build_info()).unwrap();
        let s = apachectl(&c).unwrap();
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(!s.contains("PROCESS_NAME") && !s.contains("exec -a"), "{s}");
        let a = f.args(&["app.wsgi", "--process-name", "site"]);
        let e = ServerConfig::build(&a, &host, &f.build_info()).unwrap_err();
        assert!(e.to_string().contains("--process-name needs bash"), "{e}");
        let c = f
            .config(&["app.wsgi", "--process-name", "it's httpd"])
            .unwrap();
        let s = apachectl(&c).unwrap();
        assert!(s.contains("PROCESS_NAME='it'\\''s httpd'"), "{s}");
    }

    #[test]
    fn daemon_options_reach_the_config() {
        let f = Fixture::new();
        let eggs = f.path("eggs");
        let prefix = f.path("app");
        let (c, t) = conf(
            &f,
            &[
                "app.wsgi",
                "--process-group",
                "site",
                "--interrupt-timeout",
                "5",
                "--queue-timeout",
                "30",
                "--socket-timeout",
                "20",
                "--startup-timeout",
                "0",
                "--deadlock-timeout",
                "90",
                "--eviction-timeout",
                "3",
                "--inactivity-timeout",
                "600",
                "--restart-interval",
                "86400",
                "--cpu-time-limit",
                "120",
                "--daemon-backlog",
                "64",
                "--header-buffer-size",
                "65536",
                "--response-buffer-size",
                "1048576",
                "--response-socket-timeout",
                "8",
                "--send-buffer-size",
                "8192",
                "--receive-buffer-size",
                "16384",
                "--python-eggs",
                eggs.to_str().unwrap(),
                "--socket-prefix",
                prefix.to_str().unwrap(),
                "--ignore-activity",
                "/health",
                "--ignore-activity",
                "/ping",
                "--maximum-requests",
                "1000",
            ],
        );
        let line = format!(
            "WSGIDaemonProcess site processes=1 threads=5 display-name=%{{GROUP}} home=\"{}\" \
             maximum-requests=1000 python-eggs=\"{}\" listen-backlog=64 queue-timeout=30 \
             socket-timeout=20 connect-timeout=15 request-timeout=60 interrupt-timeout=5 \
             inactivity-timeout=600 startup-timeout=0 deadlock-timeout=90 \
             graceful-timeout=15 eviction-timeout=3 restart-interval=86400 \
             cpu-time-limit=120 shutdown-timeout=5 send-buffer-size=8192 \
             receive-buffer-size=16384 header-buffer-size=65536 \
             response-buffer-size=1048576 response-socket-timeout=8 response-flush-delay=5",
            f.path("app").display(),
            eggs.display()
        );
        for want in [
            line,
            "Timeout 20".to_string(),
            format!("WSGISocketPrefix \"{}/wsgi\"", prefix.display()),
            format!(
                "WSGIScriptAlias / \"{}\" application-group=%{{GLOBAL}} callable-object=application process-group=site",
                f.path("app/app.wsgi").display()
            ),
            "<Location \"/health\">".into(),
            "<Location \"/ping\">".into(),
            "WSGIIgnoreActivity On".into(),
        ] {
            assert!(has_line(&t, &want), "missing {want:?} in\n{t}");
        }
        assert_eq!(t.matches("WSGIIgnoreActivity On").count(), 2);
        // The module's directives stay inside the markers.
        let s = strip_wsgi(&t);
        assert!(!has_wsgi_directive(&s) && !s.contains("<Location"), "{s}");
        assert_eq!(c.daemon.unwrap().group, "site");
    }

    #[test]
    fn reload_on_changes_imports_the_monitor() {
        let f = Fixture::new();
        let (c, t) = conf(
            &f,
            &[
                "app.wsgi",
                "--reload-on-changes",
                "--application-group",
                "site",
            ],
        );
        let reloader = f.path("root/reloader.py");
        let import = format!(
            "WSGIImportScript \"{}\" process-group=localhost:8000 application-group=site",
            reloader.display()
        );
        assert!(has_line(&t, &import), "missing {import:?} in\n{t}");
        assert!(t.find("WSGIDaemonProcess").unwrap() < t.find("WSGIImportScript").unwrap());
        let py = reloader_py(&c).unwrap().unwrap();
        assert!(
            py.contains(&format!(
                "SCRIPT = \"{}\"",
                f.path("app/app.wsgi").display()
            )),
            "{py}"
        );
        assert!(py.contains("os.kill(os.getpid(), signal.SIGINT)"), "{py}");
        assert!(py.contains("INTERVAL = 1.0"), "{py}");
        // Not without the option, not with --disable-reloading or embedded mode.
        for extra in [
            &["app.wsgi"][..],
            &["app.wsgi", "--reload-on-changes", "--disable-reloading"],
            &["app.wsgi", "--reload-on-changes", "--embedded-mode"],
        ] {
            let (c, t) = conf(&f, extra);
            assert!(!t.contains("WSGIImportScript"), "{extra:?}");
            assert_eq!(reloader_py(&c).unwrap(), None, "{extra:?}");
        }
    }

    #[test]
    fn spare_workers_in_daemon_mode_only() {
        let f = Fixture::new();
        let fractions = [
            "app.wsgi",
            "--max-clients",
            "40",
            "--initial-workers",
            "0.5",
            "--minimum-spare-workers",
            "0.25",
            "--maximum-spare-workers",
            "0.75",
        ];
        let (_, t) = conf(&f, &fractions);
        // What mod_wsgi-express 6.1.1 generates for the same options.
        for line in [
            "StartServers 2",
            "ServerLimit 4",
            "ThreadsPerChild 13",
            "MinSpareThreads 13",
            "MaxSpareThreads 39",
            "MaxRequestWorkers 52",
        ] {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        let (c, t) = conf(&f, &[&fractions[..], &["--embedded-mode"]].concat());
        assert!(
            has_line(&t, "StartServers 1") && has_line(&t, "MinSpareThreads 1"),
            "{t}"
        );
        assert!(
            c.warnings[0].contains("only apply to daemon mode"),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn python_literal_escapes() {
        assert_eq!(python_literal("/a/b.wsgi"), "\"/a/b.wsgi\"");
        assert_eq!(
            python_literal("a\\b\"c\u{7f}"),
            "\"a\\\\b\\\"c\\U0000007f\""
        );
    }

    #[test]
    fn strip_wsgi_removes_module_lines_only() {
        let f = Fixture::new();
        let (_, t) = conf(&f, &["app.wsgi", "--chunked-request"]);
        let s = strip_wsgi(&t);
        assert!(!has_wsgi_directive(&s), "{s}");
        assert!(!s.contains("wsgi_module"));
        assert!(s.contains("ThreadsPerChild 10"));
        assert!(s.contains("<Files \"app.wsgi\">"));
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a b"), "'/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn quote_filter_refuses_quotes() {
        assert!(quote("a\"b".into()).is_err());
        assert_eq!(quote("/x".into()).unwrap(), "\"/x\"");
    }
}
