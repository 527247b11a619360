//! What the server serves besides the application, and how: the options
//! `--allow-override`, `--directory-listing`, `--error-document`,
//! `--error-override`, `--compress-responses`, `--enable-sendfile`,
//! `--with-cgi`, `--add-handler` and `--server-status` (a clap group flattened into
//! [`crate::cli::ServerArgs`]) and the Apache modules they need.
//!
//! As mod_wsgi-express 6.1.1 writes them: `AllowOverride` of the document
//! root and of the `--url-alias` directories (with `AccessFileName
//! .htaccess`); `Options +Indexes` (mod_autoindex) and `Options +ExecCGI`
//! (mod_cgid, else mod_cgi) in the document root, with `AddHandler
//! cgi-script .cgi`; `ErrorDocument STATUS URL-PATH`; `WSGIErrorOverride
//! On`; mod_deflate's `AddOutputFilterByType DEFLATE` for the common text
//! types; `EnableSendfile On` with `WSGIEnableSendfile On`; mod_status at
//! `/server-status`, for local clients only, with `ExtendedStatus On`;
//! for `--add-handler`, `AddHandler wsgi-resource EXTENSION` and a
//! `WSGIHandlerScript wsgi-resource <server root>/resource.wsgi` that
//! passes each request to the `handle_request` (else `application`) of the
//! script given for the requested file's extension; for `--enable-docs`,
//! the documentation at `/__wsgi__/docs` (mod_wsgi-express serves its
//! bundled HTML there; rwsgi-express serves its own, see
//! [`crate::bundled_docs`]); for the hidden `--with-php5`, mod_php 5 under
//! the prefork MPM.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;

use crate::model::{absolute, conf_safe, conf_safe_str};

/// The content options (field comments are the `--help` texts).
#[allow(rustdoc::invalid_html_tags)]
#[derive(Debug, Clone, Default, Args)]
pub struct ContentArgs {
    /// Directive types .htaccess files may override in the document root and --url-alias directories (AllowOverride; repeatable, e.g. FileInfo, Indexes, All) [default: None, .htaccess files are ignored].
    #[arg(long = "allow-override", value_name = "DIRECTIVE-TYPE")]
    pub allow_override: Vec<String>,

    /// List the files of document root directories that have no index file (Options +Indexes, mod_autoindex).
    #[arg(long)]
    pub directory_listing: bool,

    /// Serve URL-PATH (or a message) for the HTTP errors Apache generates with STATUS (ErrorDocument; repeatable).
    #[arg(long = "error-document", num_args = 2, value_names = ["STATUS", "URL-PATH"])]
    pub error_document: Vec<String>,

    /// Let Apache's error documents replace the application's error responses too (WSGIErrorOverride On).
    #[arg(long)]
    pub error_override: bool,

    /// Compress text responses (plain text, HTML, XML, CSS, JavaScript, JSON) for clients that accept it (mod_deflate).
    #[arg(long)]
    pub compress_responses: bool,

    /// Use sendfile() for static files and wsgi.file_wrapper responses (EnableSendfile On, WSGIEnableSendfile On); only where the kernel and file system support it.
    #[arg(long)]
    pub enable_sendfile: bool,

    /// Run executable *.cgi files of the document root as CGI scripts (mod_cgid, else mod_cgi).
    #[arg(long)]
    pub with_cgi: bool,

    /// A WSGI script answering the requests for document root files with the extension (its handle_request, else its application; SCRIPT_FILENAME is the file; repeatable).
    #[arg(long = "add-handler", num_args = 2, value_names = ["EXTENSION", "SCRIPT-PATH"])]
    pub add_handler: Vec<String>,

    /// Serve Apache's status page (mod_status, ExtendedStatus On) at /server-status, to local clients only.
    #[arg(long)]
    pub server_status: bool,

    /// Serve rwsgi's documentation (README and docs/, as bundled with rwsgi-express) at the /__wsgi__/docs sub URL.
    #[arg(long)]
    pub enable_docs: bool,

    /// Load PHP 5 (libphp5.so from the modules directory, prefork MPM) for the document root's .php files (hidden, as in mod_wsgi-express).
    #[arg(long, hide = true)]
    pub with_php5: bool,
}

/// One `--error-document`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDocument {
    /// HTTP status, 400–599.
    pub status: u16,
    /// A local URL path, a full URL or a message (Apache tells them apart).
    pub document: String,
}

/// One `--add-handler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionHandler {
    /// The extension with its leading `.`, e.g. `.md`.
    pub extension: String,
    /// The WSGI script, absolute.
    pub script: PathBuf,
}

/// The content settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Content {
    /// Argument of `AllowOverride` for the document root and alias
    /// directories: `None`, or the `--allow-override`s joined by spaces.
    pub allow_override: String,
    /// `--directory-listing`.
    pub directory_listing: bool,
    /// `--error-document`s, in order.
    pub error_documents: Vec<ErrorDocument>,
    /// `--error-override`.
    pub error_override: bool,
    /// `--compress-responses`.
    pub compress_responses: bool,
    /// `--enable-sendfile`.
    pub enable_sendfile: bool,
    /// `--with-cgi`: the CGI module used, `cgid` when the modules directory
    /// has it (as mod_wsgi-express chooses), else `cgi`.
    pub cgi: Option<String>,
    /// `--server-status`.
    pub server_status: bool,
    /// `--add-handler`s, in order.
    pub handlers: Vec<ExtensionHandler>,
    /// With `--add-handler`: `<server root>/resource.wsgi`, the
    /// `WSGIHandlerScript` that dispatches to them by extension.
    pub resource_script: Option<PathBuf>,
    /// `--enable-docs`: `<server root>/docs`, where [`crate::setup`] writes
    /// the bundled documentation ([`crate::bundled_docs`]), served at
    /// `/__wsgi__/docs`.
    pub docs_directory: Option<PathBuf>,
    /// `--with-php5`: mod_php 5 is loaded (`php5_module` from
    /// `libphp5.so`, which must exist) with `AddHandler
    /// application/x-httpd-php .php`, under the prefork MPM.
    pub php5: bool,
}

/// The types mod_wsgi-express compresses with `--compress-responses`.
pub const COMPRESSED_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/xml",
    "text/css",
    "text/javascript",
    "application/xhtml+xml",
    "application/javascript",
    "application/json",
];

/// `AllowOverride` keywords of Apache 2.4 (compared case-insensitively, as
/// Apache does); `Options=...` and `Nonfatal=...` are accepted as well.
const OVERRIDES: &[&str] = &[
    "All",
    "None",
    "AuthConfig",
    "FileInfo",
    "Indexes",
    "Limit",
    "Options",
];

fn override_type(value: &str) -> Result<String> {
    if let Some(k) = OVERRIDES.iter().find(|k| k.eq_ignore_ascii_case(value)) {
        return Ok(k.to_string());
    }
    let (key, list) = value.split_once('=').unwrap_or((value, ""));
    let ok_list = !list.is_empty()
        && list
            .split(',')
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok_list && (key.eq_ignore_ascii_case("Options") || key.eq_ignore_ascii_case("Nonfatal")) {
        return Ok(value.to_string());
    }
    bail!(
        "--allow-override {value:?} is not a directive type: expected one of {} (or Options=..., Nonfatal=...)",
        OVERRIDES.join(", ")
    )
}

/// The `--add-handler` pairs (`pairs` as clap gives them), scripts made
/// absolute against `cwd`. Errors: an extension that is empty or has white
/// space, quotes or `/`, a script that is not a file or whose path
/// httpd.conf cannot hold.
fn handlers(pairs: &[String], cwd: &Path) -> Result<Vec<ExtensionHandler>> {
    if pairs.len() % 2 != 0 {
        bail!("--add-handler takes two values: EXTENSION and SCRIPT-PATH");
    }
    let mut out = Vec::new();
    for pair in pairs.chunks(2) {
        let ext = pair[0].trim_start_matches('.');
        if ext.is_empty() || ext.contains(|c: char| c.is_whitespace() || "'\"/\\".contains(c)) {
            bail!(
                "--add-handler extension {:?} is not a file extension such as .md",
                pair[0]
            );
        }
        let script = absolute(cwd, Path::new(&pair[1]));
        if !script.is_file() {
            bail!(
                "--add-handler script {} does not exist (or is not a file)",
                script.display()
            );
        }
        conf_safe("--add-handler script", &script)?;
        out.push(ExtensionHandler {
            extension: format!(".{ext}"),
            script,
        });
    }
    Ok(out)
}

/// Validates the options; `modules_directory` decides between mod_cgid
/// and mod_cgi, `server_root` holds the generated `resource.wsgi`, relative
/// paths are against `cwd`. Errors (naming the option and the value): an
/// unknown `--allow-override` type, an `--error-document` status that is
/// not a number from 400 to 599 or a document httpd.conf cannot hold, the
/// refusals of [`handlers`].
pub fn build(
    a: &ContentArgs,
    modules_directory: &Path,
    server_root: &Path,
    cwd: &Path,
) -> Result<Content> {
    let allow_override = if a.allow_override.is_empty() {
        "None".to_string()
    } else {
        let types = a
            .allow_override
            .iter()
            .map(|v| override_type(v))
            .collect::<Result<Vec<_>>>()?;
        types.join(" ")
    };
    if a.error_document.len() % 2 != 0 {
        bail!("--error-document takes two values: STATUS and URL-PATH");
    }
    let mut error_documents = Vec::new();
    for pair in a.error_document.chunks(2) {
        let status = pair[0]
            .parse::<u16>()
            .ok()
            .filter(|s| (400..=599).contains(s))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--error-document status {:?} is not an HTTP error status (400-599)",
                    pair[0]
                )
            })?;
        let document = &pair[1];
        if document.is_empty() {
            bail!("--error-document {status}: the URL-PATH is empty");
        }
        conf_safe_str("--error-document URL-PATH", document)?;
        error_documents.push(ErrorDocument {
            status,
            document: document.clone(),
        });
    }
    let cgi = a.with_cgi.then(|| {
        if modules_directory.join("mod_cgid.so").is_file() {
            "cgid".to_string()
        } else {
            "cgi".to_string()
        }
    });
    if a.with_php5 && !modules_directory.join("libphp5.so").is_file() {
        bail!(
            "--with-php5: PHP 5's Apache module {} does not exist (install mod_php 5 there, \
             or use --modules-directory)",
            modules_directory.join("libphp5.so").display()
        );
    }
    let handlers = handlers(&a.add_handler, cwd)?;
    let resource_script = (!handlers.is_empty()).then(|| server_root.join("resource.wsgi"));
    Ok(Content {
        handlers,
        resource_script,
        allow_override,
        directory_listing: a.directory_listing,
        error_documents,
        error_override: a.error_override,
        compress_responses: a.compress_responses,
        enable_sendfile: a.enable_sendfile,
        cgi,
        server_status: a.server_status,
        docs_directory: a.enable_docs.then(|| server_root.join("docs")),
        php5: a.with_php5,
    })
}

impl Content {
    /// The Apache modules these settings need, as (identifier, file name).
    pub fn modules(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.directory_listing {
            out.push(("autoindex_module", "mod_autoindex.so"));
        }
        if self.compress_responses {
            out.push(("deflate_module", "mod_deflate.so"));
        }
        if self.server_status {
            out.push(("status_module", "mod_status.so"));
        }
        match self.cgi.as_deref() {
            Some("cgid") => out.push(("cgid_module", "mod_cgid.so")),
            Some(_) => out.push(("cgi_module", "mod_cgi.so")),
            None => {}
        }
        if self.php5 {
            out.push(("php5_module", "libphp5.so"));
        }
        out
    }
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
    fn defaults_write_nothing_extra() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        assert_eq!(c.content.allow_override, "None");
        assert_eq!(c.content.cgi, None);
        let t = render::httpd_conf(&c).unwrap();
        for absent in [
            "DEFLATE",
            "ErrorDocument",
            "WSGIErrorOverride",
            "EnableSendfile",
            "Options +",
            "cgi-script",
            "server-status",
            "ExtendedStatus",
            "autoindex",
        ] {
            assert!(!t.contains(absent), "{absent} in\n{t}");
        }
        assert!(has_line(&t, "AccessFileName .htaccess"));
    }

    #[test]
    fn every_content_option_reaches_httpd_conf() {
        let f = Fixture::new();
        let static_dir = f.path("app");
        let c = f
            .config(&[
                "app.wsgi",
                "--allow-override",
                "fileinfo",
                "--allow-override",
                "Options=Indexes,MultiViews",
                "--directory-listing",
                "--error-document",
                "404",
                "/missing.html",
                "--error-document",
                "500",
                "https://example.org/oops",
                "--error-override",
                "--compress-responses",
                "--enable-sendfile",
                "--with-cgi",
                "--server-status",
                "--url-alias",
                "/static",
                static_dir.to_str().unwrap(),
            ])
            .unwrap();
        assert_eq!(
            c.content.allow_override,
            "FileInfo Options=Indexes,MultiViews"
        );
        assert_eq!(c.content.cgi.as_deref(), Some("cgid"));
        let t = render::httpd_conf(&c).unwrap();
        let m = f.path("modules");
        let mut want = vec![
            "AllowOverride FileInfo Options=Indexes,MultiViews".to_string(),
            "Options +Indexes".into(),
            "Options +ExecCGI".into(),
            "AddHandler cgi-script .cgi".into(),
            "ErrorDocument 404 \"/missing.html\"".into(),
            "ErrorDocument 500 \"https://example.org/oops\"".into(),
            "WSGIErrorOverride On".into(),
            "EnableSendfile On".into(),
            "WSGIEnableSendfile On".into(),
            "ExtendedStatus On".into(),
            "<Location /server-status>".into(),
            "SetHandler server-status".into(),
            "Require host localhost".into(),
        ];
        for (id, file) in [
            ("autoindex_module", "mod_autoindex.so"),
            ("deflate_module", "mod_deflate.so"),
            ("status_module", "mod_status.so"),
            ("cgid_module", "mod_cgid.so"),
        ] {
            want.push(format!("LoadModule {id} \"{}/{file}\"", m.display()));
        }
        for ty in COMPRESSED_TYPES {
            want.push(format!("AddOutputFilterByType DEFLATE {ty}"));
        }
        for line in &want {
            assert!(has_line(&t, line), "missing {line:?} in\n{t}");
        }
        // The document root and the alias directory both get the overrides.
        assert_eq!(
            t.matches("AllowOverride FileInfo Options=Indexes,MultiViews")
                .count(),
            2,
            "{t}"
        );
        // The module's directives stay inside the markers.
        let s = render::strip_wsgi(&t);
        assert!(!s.contains("WSGIErrorOverride") && !s.contains("WSGIEnableSendfile"));
        assert!(s.contains("EnableSendfile On"));
        for flag in [
            "MOD_WSGI_DIRECTORY_LISTING",
            "MOD_WSGI_COMPRESS_RESPONSES",
            "MOD_WSGI_ERROR_OVERRIDE",
            "MOD_WSGI_ENABLE_SENDFILE",
            "MOD_WSGI_SERVER_STATUS",
            "MOD_WSGI_SERVER_METRICS",
            "MOD_WSGI_CGID_SCRIPT",
        ] {
            assert!(has_line(&t, &format!("Define {flag}")), "{flag}");
        }
        assert!(crate::setup::summary(&c)
            .contains("Server Status      : http://localhost:8000/server-status"));
    }

    #[test]
    fn add_handler_writes_a_handler_script_per_extension() {
        let f = Fixture::new();
        let md = f.path("app/md.wsgi");
        std::fs::write(&md, "def handle_request(e, s): pass\n").unwrap();
        let c = f
            .config(&[
                "app.wsgi",
                "--add-handler",
                "md",
                "md.wsgi",
                "--add-handler",
                ".txt",
                md.to_str().unwrap(),
            ])
            .unwrap();
        let exts: Vec<&str> = c
            .content
            .handlers
            .iter()
            .map(|h| h.extension.as_str())
            .collect();
        assert_eq!(exts, [".md", ".txt"]);
        let resource = f.path("root/resource.wsgi");
        assert_eq!(
            c.content.resource_script.as_deref(),
            Some(resource.as_path())
        );
        let t = render::httpd_conf(&c).unwrap();
        for line in [
            format!(
                "WSGIHandlerScript wsgi-resource \"{}\" process-group=localhost:8000 application-group=%{{GLOBAL}}",
                resource.display()
            ),
            "AddHandler wsgi-resource .md".into(),
            "AddHandler wsgi-resource .txt".into(),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        assert!(!render::strip_wsgi(&t).contains("WSGIHandlerScript"));
        let py = render::resource_wsgi(&c).unwrap().unwrap();
        assert!(
            py.contains(&format!("    \".md\": \"{}\",", md.display())),
            "{py}"
        );
        assert!(c.paths_children_read().contains(&md));
        // Embedded mode: in Apache's children.
        let c = f
            .config(&[
                "app.wsgi",
                "--embedded-mode",
                "--add-handler",
                ".md",
                "md.wsgi",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            t.contains("process-group=%{GLOBAL} application-group=%{GLOBAL}"),
            "{t}"
        );
        assert_eq!(
            render::resource_wsgi(&f.config(&["app.wsgi"]).unwrap()).unwrap(),
            None
        );
        for (args, needle) in [
            (
                &["--add-handler", ".m d", "md.wsgi"][..],
                "is not a file extension",
            ),
            (&["--add-handler", ".md", "nope.wsgi"], "does not exist"),
        ] {
            let e = f
                .config(&[&["app.wsgi"][..], args].concat())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn cgi_without_cgid_uses_mod_cgi() {
        let f = Fixture::new();
        std::fs::remove_file(f.path("modules/mod_cgid.so")).unwrap();
        let c = f.config(&["app.wsgi", "--with-cgi"]).unwrap();
        assert_eq!(c.content.cgi.as_deref(), Some("cgi"));
        let t = render::httpd_conf(&c).unwrap();
        assert!(t.contains("LoadModule cgi_module "), "{t}");
        assert!(has_line(&t, "Define MOD_WSGI_CGI_SCRIPT"));
    }

    #[test]
    fn bad_values_are_refused_before_apache_starts() {
        let f = Fixture::new();
        for (args, needle) in [
            (
                &["--allow-override", "Everything"][..],
                "--allow-override \"Everything\" is not a directive type",
            ),
            (
                &["--error-document", "200", "/x.html"],
                "--error-document status \"200\" is not an HTTP error status",
            ),
            (
                &["--error-document", "abc", "/x.html"],
                "--error-document status \"abc\"",
            ),
            (
                &["--error-document", "404", "say \"no\""],
                "cannot be written into httpd.conf",
            ),
        ] {
            let e = f
                .config(&[&["app.wsgi"][..], args].concat())
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{args:?}: {e}");
        }
    }

    #[test]
    fn missing_modules_are_named() {
        let f = Fixture::new();
        std::fs::remove_file(f.path("modules/mod_deflate.so")).unwrap();
        let e = f
            .config(&["app.wsgi", "--compress-responses"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("mod_deflate.so"), "{e}");
    }

    #[test]
    fn docs_php5_server_metrics_and_the_document_root_rule() {
        let f = Fixture::new();
        let c = f
            .config(&[
                "app.wsgi",
                "--enable-docs",
                "--server-metrics",
                "--mount-point",
                "/a.b",
            ])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        let root = f.path("root");
        for line in [
            format!("Alias /__wsgi__/docs \"{}/docs\"", root.display()),
            "DirectoryIndex index.html".to_string(),
            "ExtendedStatus On".to_string(),
            format!(
                "LoadModule status_module \"{}\"",
                f.path("modules/mod_status.so").display()
            ),
            format!(
                "RewriteCond \"{}/htdocs%{{REQUEST_URI}}\" -f",
                root.display()
            ),
            format!(
                "RewriteRule \"^/a\\.b(/|$)\" \"{}/htdocs%{{REQUEST_URI}}\" [L]",
                root.display()
            ),
        ] {
            assert!(has_line(&t, &line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("-d\n"), "{t}");
        // --directory-index: directories too; the mount point / matches all.
        let c = f
            .config(&["app.wsgi", "--directory-index", "index.html"])
            .unwrap();
        let t = render::httpd_conf(&c).unwrap();
        assert!(t.contains("%{REQUEST_URI}\" -f [OR]\n"), "{t}");
        assert!(t.contains("RewriteRule \"^/\" "), "{t}");
        // --with-php5: prefork and the module, which must exist.
        let e = f
            .config(&["app.wsgi", "--with-php5"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--with-php5: PHP 5's Apache module "), "{e}");
        std::fs::write(f.path("modules/libphp5.so"), b"").unwrap();
        let c = f.config(&["app.wsgi", "--with-php5"]).unwrap();
        assert_eq!(c.mpm, crate::cli::Mpm::Prefork);
        let t = render::httpd_conf(&c).unwrap();
        assert!(
            has_line(&t, "AddHandler application/x-httpd-php .php"),
            "{t}"
        );
        assert!(t.contains("LoadModule php5_module "), "{t}");
    }
}
