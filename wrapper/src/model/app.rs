//! The application of [`super::ServerConfig::build`]: the entry point
//! (`APP` or `--entry-point`) read as `--application-type` says, as
//! mod_wsgi-express 6.1.1 reads it.
//!
//! - `script`: a WSGI script file, mounted as it is; the working directory
//!   defaults to its directory (mod_wsgi-express: the current directory).
//! - `module`: a dotted module name, loaded by a generated
//!   `<server root>/handler.wsgi`; working directory: the current one.
//! - `paste`: a Paste Deploy `.ini` file, loaded by a generated
//!   `handler.wsgi` with `paste.deploy.loadapp("config:" + path)` (as
//!   mod_wsgi-express's `ApplicationHandler` loads it, without configuring
//!   logging from the file); working directory: the current one.
//! - `static`: a directory Apache serves as the document root (without an
//!   entry point: `--document-root`, else the current directory); there is
//!   no WSGI application (no `WSGIScriptAlias`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{absolute, conf_safe, is_module_name, Application};
use crate::cli::{ApplicationType, ServerArgs};
use crate::daemon_opts::Daemon;

/// The application, resolved.
pub(super) struct Resolved {
    /// The application.
    pub app: Application,
    /// What `WSGIScriptAlias` points at: the script or the generated
    /// handler (static: the directory served, which nothing mounts).
    pub script: PathBuf,
    /// The default of `--working-directory`.
    pub default_workdir: PathBuf,
    /// `callable-object=` of `WSGIScriptAlias`.
    pub callable_object: String,
}

/// The entry point: `APP` or `--entry-point` (not both); `None` when
/// neither is given, which only `--application-type static` accepts.
pub(super) fn entry_point(a: &ServerArgs) -> Result<Option<String>> {
    match (&a.app, &a.entry_point) {
        (Some(_), Some(_)) => {
            bail!("give the application either as APP or with --entry-point, not both")
        }
        (Some(e), None) | (None, Some(e)) => Ok(Some(e.clone())),
        (None, None) if a.application_type == ApplicationType::Static => Ok(None),
        (None, None) => bail!(
            "no WSGI application given: pass the WSGI script file (or, with \
             --application-type module, the module name; paste, the Paste Deploy .ini file) \
             as APP or with --entry-point"
        ),
    }
}

/// Resolves `entry` (see [`entry_point`]) as `a.application_type` says;
/// relative paths are taken from `cwd`, the generated handler goes into
/// `server_root`, `mount_point` is the normalised `--mount-point`.
///
/// Errors: a script or `.ini` that is not a file, a module name that is
/// not dotted identifiers, a static entry point that is not a directory or
/// given with `--document-root` too, `--mount-point` or `--callable-object`
/// with a type they do nothing for, an `.ini` path with a `#` (which
/// Paste Deploy's `config:` URI reads as the start of a section name).
pub(super) fn resolve(
    a: &ServerArgs,
    entry: Option<&str>,
    cwd: &Path,
    server_root: &Path,
    mount_point: &str,
) -> Result<Resolved> {
    let handler = server_root.join("handler.wsgi");
    let kind = a.application_type;
    if matches!(kind, ApplicationType::Paste | ApplicationType::Static)
        && a.callable_object != "application"
    {
        bail!(
            "--callable-object has no effect with --application-type {}: {}",
            if kind == ApplicationType::Paste {
                "paste"
            } else {
                "static"
            },
            if kind == ApplicationType::Paste {
                "the application is what Paste Deploy's loadapp makes of the .ini file"
            } else {
                "there is no WSGI application"
            }
        );
    }
    let given = entry;
    let entry = entry.unwrap_or_default();
    Ok(match kind {
        ApplicationType::Script => {
            let path = absolute(cwd, Path::new(entry));
            if !path.is_file() {
                bail!(
                    "WSGI script file {} does not exist (or is not a file)",
                    path.display()
                );
            }
            conf_safe("WSGI script", &path)?;
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            Resolved {
                app: Application::Script { path: path.clone() },
                script: path,
                default_workdir: dir,
                callable_object: a.callable_object.clone(),
            }
        }
        ApplicationType::Module => {
            if !is_module_name(entry) {
                bail!("{entry:?} is not a dotted Python module name (--application-type module)");
            }
            Resolved {
                app: Application::Module {
                    name: entry.to_string(),
                    callable: a.callable_object.clone(),
                    handler: handler.clone(),
                },
                script: handler,
                default_workdir: cwd.to_path_buf(),
                callable_object: "application".to_string(),
            }
        }
        ApplicationType::Paste => {
            let config = absolute(cwd, Path::new(entry));
            if !config.is_file() {
                bail!(
                    "Paste Deploy configuration file {} does not exist (or is not a file) \
                     (--application-type paste takes the .ini file)",
                    config.display()
                );
            }
            if config.to_string_lossy().contains('#') {
                bail!(
                    "Paste Deploy configuration file {}: its path contains '#', which the \
                     config: URI of paste.deploy.loadapp takes as the start of a section name",
                    config.display()
                );
            }
            Resolved {
                app: Application::Paste {
                    config,
                    handler: handler.clone(),
                },
                script: handler,
                default_workdir: cwd.to_path_buf(),
                callable_object: "application".to_string(),
            }
        }
        ApplicationType::Static => {
            if mount_point != "/" {
                bail!(
                    "--mount-point {mount_point} has no effect with --application-type static \
                     (the directory is served at /; --url-alias URL-PATH DIRECTORY-PATH serves a \
                     directory under a URL)"
                );
            }
            let directory = match (given, &a.document_root) {
                (None, Some(d)) => absolute(cwd, d),
                (None, None) => cwd.to_path_buf(),
                (Some(_), Some(_)) => bail!(
                    "--application-type static: give the directory to serve either as APP \
                     (or --entry-point) or with --document-root, not both"
                ),
                (Some(e), None) => {
                    let dir = absolute(cwd, Path::new(e));
                    if !dir.is_dir() {
                        bail!(
                            "--application-type static: {} is not a directory (the entry point \
                             is the directory of files to serve)",
                            dir.display()
                        );
                    }
                    dir
                }
            };
            Resolved {
                app: Application::Static {
                    directory: directory.clone(),
                },
                script: directory,
                default_workdir: cwd.to_path_buf(),
                callable_object: "application".to_string(),
            }
        }
    })
}

/// Refuses, for `--application-type static`, the options that need a WSGI
/// application: debug mode (`debug`) and `--reload-on-changes` (the
/// daemon's reloader), which mod_wsgi-express silently does nothing for.
pub(super) fn refuse_tools(app: &Application, debug: bool, daemon: Option<&Daemon>) -> Result<()> {
    if app.is_wsgi() {
        return Ok(());
    }
    if debug {
        bail!(
            "--debug-mode (and the --enable-* debug options, which turn it on) need a WSGI \
             application: --application-type static has none"
        );
    }
    if daemon.is_some_and(|d| d.reloader.is_some()) {
        bail!(
            "--reload-on-changes has nothing to reload with --application-type static \
             (there is no WSGI application)"
        );
    }
    Ok(())
}

/// The package the Python home must provide for `app`, as (module to
/// import, the option that needs it, the package to install): PasteDeploy
/// for a paste application.
pub(super) fn python_requirement(app: &Application) -> Option<(String, String, String)> {
    matches!(app, Application::Paste { .. }).then(|| {
        (
            "paste.deploy".to_string(),
            "--application-type paste".to_string(),
            "PasteDeploy".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::tests::Fixture;
    use super::super::ServerConfig;
    use super::*;
    use crate::render;

    fn has_line(text: &str, line: &str) -> bool {
        text.lines().any(|l| l.trim() == line)
    }

    fn error(f: &Fixture, args: &[&str]) -> String {
        format!("{:#}", f.config(args).unwrap_err())
    }

    /// A fixture with `app/site.ini` and a static directory `site/`.
    fn fixture() -> Fixture {
        let f = Fixture::new();
        fs::write(
            f.path("app/site.ini"),
            "[app:main]\npaste.app_factory = pasteapp:app_factory\n",
        )
        .unwrap();
        fs::create_dir_all(f.path("site/css")).unwrap();
        fs::write(f.path("site/index.html"), "<p>hi</p>\n").unwrap();
        f
    }

    #[test]
    fn paste_application_uses_a_generated_handler() {
        let f = fixture();
        let c = f
            .config(&["--application-type", "paste", "site.ini"])
            .unwrap();
        let handler = f.path("root/handler.wsgi");
        assert_eq!(
            c.app,
            Application::Paste {
                config: f.path("app/site.ini"),
                handler: handler.clone(),
            }
        );
        assert_eq!(c.app.handler(), Some(handler.as_path()));
        assert_eq!(c.script, handler);
        assert_eq!(c.callable_object, "application");
        // As mod_wsgi-express: the working directory is the current one.
        assert_eq!(c.working_directory, f.path("app"));
        assert_eq!(c.python_path, f.path("app").to_string_lossy());
        assert!(c.python_requirements.contains(&(
            "paste.deploy".to_string(),
            "--application-type paste".to_string(),
            "PasteDeploy".to_string()
        )));
        assert!(c.paths_children_read().contains(&f.path("app/site.ini")));
        assert!(
            crate::setup::summary(&c)
                .contains(&format!("paste {}", f.path("app/site.ini").display())),
            "{}",
            crate::setup::summary(&c)
        );

        let h = render::handler_wsgi(&c).unwrap().unwrap();
        let ini = f.path("app/site.ini");
        assert!(h.contains("from paste.deploy import loadapp"), "{h}");
        assert!(
            h.contains(&format!(
                "application = loadapp(\"config:\" + \"{}\")",
                ini.display()
            )),
            "{h}"
        );
        assert!(
            h.contains(&format!("CONFIG = \"{}\"", ini.display())),
            "{h}"
        );
        assert!(h.contains("def reload_required(resource):"), "{h}");

        // Daemon mode (the default): mounted in the daemon group.
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            has_line(
                &t,
                &format!(
                    "WSGIScriptAlias / \"{}\" application-group=%{{GLOBAL}} callable-object=application process-group=localhost:8000",
                    handler.display()
                )
            ),
            "{t}"
        );
        assert!(has_line(&t, "WSGIRestrictEmbedded On"), "{t}");
        assert!(has_line(
            &t,
            &format!("<Directory \"{}\">", f.path("root").display())
        ));
        assert!(has_line(&t, "<Files \"handler.wsgi\">"), "{t}");
        assert!(!t.contains("MOD_WSGI_STATIC_ONLY"));

        // Embedded mode: the same handler, in Apache's children.
        let c = f
            .config(&["--application-type", "paste", "site.ini", "--embedded-mode"])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            has_line(
                &t,
                &format!(
                    "WSGIScriptAlias / \"{}\" application-group=%{{GLOBAL}} callable-object=application",
                    handler.display()
                )
            ),
            "{t}"
        );
        assert!(has_line(&t, "WSGIRestrictEmbedded Off"), "{t}");
        assert!(!t.contains("WSGIDaemonProcess"), "{t}");
    }

    #[test]
    fn paste_handler_is_written_and_watched() {
        let f = fixture();
        let ini = f.path("app/site.ini");
        let c = f
            .config(&["--application-type", "paste", "site.ini"])
            .unwrap();
        crate::setup::prepare_directories(&c).unwrap();
        crate::setup::write_server_root(&c).unwrap();
        let h = fs::read_to_string(f.path("root/handler.wsgi")).unwrap();
        assert!(h.contains("loadapp(\"config:\""), "{h}");
        // --reload-on-changes watches the .ini, not the generated handler.
        let c = f
            .config(&[
                "--application-type",
                "paste",
                "site.ini",
                "--reload-on-changes",
            ])
            .unwrap();
        let py = render::reloader_py(&c).unwrap().unwrap();
        assert!(
            py.contains(&format!("SCRIPT = \"{}\"", ini.display())),
            "{py}"
        );
        // Debug mode: its handler loads the .ini itself.
        let c = f
            .config(&["--application-type", "paste", "site.ini", "--debug-mode"])
            .unwrap();
        assert_eq!(render::handler_wsgi(&c).unwrap(), None);
        let d = render::debug_handler(&c).unwrap().unwrap();
        assert!(
            d.contains(&format!(
                "return loadapp(\"config:\" + \"{}\")",
                ini.display()
            )),
            "{d}"
        );
    }

    #[test]
    fn paste_refusals() {
        let f = fixture();
        let e = error(&f, &["--application-type", "paste", "missing.ini"]);
        assert!(
            e.contains(&format!(
                "Paste Deploy configuration file {} does not exist (or is not a file)",
                f.path("app/missing.ini").display()
            )),
            "{e}"
        );
        let e = error(
            &f,
            &[
                "--application-type",
                "paste",
                f.path("site").to_str().unwrap(),
            ],
        );
        assert!(e.contains("does not exist (or is not a file)"), "{e}");
        fs::write(f.path("app/a#b.ini"), "").unwrap();
        let e = error(&f, &["--application-type", "paste", "a#b.ini"]);
        assert!(e.contains("its path contains '#'"), "{e}");
        let e = error(
            &f,
            &[
                "--application-type",
                "paste",
                "site.ini",
                "--callable-object",
                "app",
            ],
        );
        assert!(
            e.contains("--callable-object has no effect with --application-type paste"),
            "{e}"
        );
        let e = error(&f, &["--application-type", "paste"]);
        assert!(e.contains("no WSGI application given"), "{e}");
        assert!(e.contains("paste, the Paste Deploy .ini file"), "{e}");
    }

    #[test]
    fn static_directory_is_the_document_root() {
        let f = fixture();
        let site = f.path("site");
        let site_arg = site.to_str().unwrap();
        let c = f
            .config(&["--application-type", "static", site_arg])
            .unwrap();
        assert_eq!(
            c.app,
            Application::Static {
                directory: site.clone()
            }
        );
        assert!(!c.app.is_wsgi() && c.app.handler().is_none());
        assert_eq!(c.document_root, site);
        assert_eq!(c.static_rule, None);
        assert!(c.python_requirements.is_empty());
        assert!(c.paths_children_read().contains(&site));
        assert_eq!(render::handler_wsgi(&c).unwrap(), None);
        assert!(crate::setup::summary(&c).contains(&format!("static {}", site.display())));

        let t = render::httpd_conf(&c).unwrap();
        assert!(
            has_line(&t, &format!("DocumentRoot \"{}\"", site.display())),
            "{t}"
        );
        assert!(
            has_line(&t, &format!("<Directory \"{}\">", site.display())),
            "{t}"
        );
        assert!(has_line(&t, "Define MOD_WSGI_STATIC_ONLY"), "{t}");
        assert!(!t.contains("WSGIScriptAlias"), "{t}");
        assert!(!t.contains("RewriteRule \"^/\""), "{t}");
        assert!(!t.contains("<Files"), "{t}");
        // As mod_wsgi-express: the daemon group is still defined (the
        // module is loaded for --add-handler, the metrics, ...).
        assert!(t.contains("\nWSGIDaemonProcess localhost:8000 "), "{t}");
        let stripped = render::strip_wsgi(&t);
        assert!(!stripped.lines().any(|l| l.trim_start().starts_with("WSGI")));

        let c = f
            .config(&["--application-type", "static", site_arg, "--embedded-mode"])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(has_line(&t, "WSGIRestrictEmbedded Off") && !t.contains("WSGIScriptAlias"));

        // Written: no handler.wsgi.
        crate::setup::prepare_directories(&c).unwrap();
        crate::setup::write_server_root(&c).unwrap();
        assert!(!f.path("root/handler.wsgi").exists());
        assert!(!f.path("root/htdocs").exists());
    }

    #[test]
    fn static_without_an_entry_point() {
        let f = fixture();
        // The current directory, as mod_wsgi-express.
        let c = f.config(&["--application-type", "static"]).unwrap();
        assert_eq!(c.document_root, f.path("app"));
        assert_eq!(
            c.app,
            Application::Static {
                directory: f.path("app")
            }
        );
        // Or --document-root (created if missing, as any document root).
        let c = f
            .config(&[
                "--application-type",
                "static",
                "--document-root",
                f.path("new").to_str().unwrap(),
            ])
            .unwrap();
        assert_eq!(c.document_root, f.path("new"));
        crate::setup::prepare_directories(&c).unwrap();
        assert!(f.path("new").is_dir());
    }

    #[test]
    fn static_refusals() {
        let f = fixture();
        let site = f.path("site");
        let site_arg = site.to_str().unwrap();
        let file = f.path("app/app.wsgi");
        let e = error(&f, &["--application-type", "static", "app.wsgi"]);
        assert!(
            e.contains(&format!(
                "--application-type static: {} is not a directory",
                file.display()
            )),
            "{e}"
        );
        let e = error(&f, &["--application-type", "static", "../nowhere"]);
        assert!(e.contains("is not a directory"), "{e}");
        for (args, needle) in [
            (
                &[site_arg, "--document-root", site_arg][..],
                "either as APP (or --entry-point) or with --document-root, not both",
            ),
            (
                &[site_arg, "--mount-point", "/files/"],
                "--mount-point /files has no effect with --application-type static",
            ),
            (
                &[site_arg, "--callable-object", "app"],
                "--callable-object has no effect with --application-type static",
            ),
            (&[site_arg, "--debug-mode"], "need a WSGI application"),
            (&[site_arg, "--enable-profiler"], "need a WSGI application"),
            (
                &[site_arg, "--reload-on-changes"],
                "--reload-on-changes has nothing to reload",
            ),
        ] {
            let mut all = vec!["--application-type", "static"];
            all.extend_from_slice(args);
            let e = error(&f, &all);
            assert!(e.contains(needle), "{args:?}: {e}");
        }
        // Embedded mode ignores --reload-on-changes anyway (a warning).
        let c = f
            .config(&[
                "--application-type",
                "static",
                site_arg,
                "--reload-on-changes",
                "--embedded-mode",
            ])
            .unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("--reload-on-changes")));
    }

    #[test]
    fn application_type_values() {
        let f = fixture();
        for (value, want) in [
            ("script", ApplicationType::Script),
            ("module", ApplicationType::Module),
            ("paste", ApplicationType::Paste),
            ("static", ApplicationType::Static),
        ] {
            assert_eq!(
                f.args(&["--application-type", value]).application_type,
                want
            );
        }
        let c: Result<ServerConfig> =
            f.config(&["--entry-point", "site.ini", "--application-type", "paste"]);
        assert!(matches!(c.unwrap().app, Application::Paste { .. }));
    }
}
