//! `WSGIHandlerScript handler-name script-path [options]`: named Apache
//! handlers answered by a WSGI script, as mod_wsgi. A request whose handler
//! (`SetHandler`/`AddHandler`) is `handler-name` runs the script's
//! `handle_request` (or `callable-object=`) with `SCRIPT_FILENAME` the
//! requested file, embedded or in `process-group=`.
//!
//! Allowed in the server, virtual host, `<Directory>`/`<Location>` and
//! `.htaccess` (FileInfo) contexts; a directory's definitions overlay the
//! enclosing ones name by name (mod_wsgi's hash overlay).

use crate::config::{arg_str, dir, handler, RequestSettings};
use crate::config_more::server_path;
use crate::ffi;
use rwsgi_core::handler::{parse_handler_script, DEFAULT_CALLABLE};
use std::sync::Arc;

/// One resolved `WSGIHandlerScript`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerScript {
    /// Absolute path of the script.
    pub path: String,
    /// `process-group=`, `application-group=`, `callable-object=`,
    /// `pass-authorization=` as written (`None`: the directory's setting).
    pub options: rwsgi_core::directives::AliasOptions,
}

/// The handler scripts defined for a directory: (handler name, script),
/// later definitions of a name replacing earlier ones.
#[derive(Debug, Default, Clone)]
pub struct HandlerScripts(pub Vec<(String, Arc<HandlerScript>)>);

impl HandlerScripts {
    /// `add` over `base`, name by name.
    pub fn merge(base: &HandlerScripts, add: &HandlerScripts) -> HandlerScripts {
        let mut merged = base.clone();
        for (name, script) in &add.0 {
            merged.set(name, Arc::clone(script));
        }
        merged
    }

    fn set(&mut self, name: &str, script: Arc<HandlerScript>) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = script,
            None => self.0.push((name.to_string(), script)),
        }
    }

    /// The script of handler `name`, if one is defined.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<HandlerScript>> {
        self.0
            .iter()
            .find(|(n, _)| n.as_bytes() == name)
            .map(|(_, s)| s)
    }
}

/// The settings of a request answered by handler script `h`: its options
/// over the directory's `settings`; the callable defaults to
/// `handle_request`, as mod_wsgi.
pub fn apply(h: &Arc<HandlerScript>, mut settings: RequestSettings) -> RequestSettings {
    let o = &h.options;
    if let Some(g) = &o.process_group {
        settings.process_group = if rwsgi_core::directives::is_embedded_group(g) {
            String::new()
        } else {
            g.clone()
        };
    }
    if let Some(a) = &o.application_group {
        settings.application_group = a.clone();
    }
    settings.callable_object = o
        .callable_object
        .clone()
        .unwrap_or_else(|| DEFAULT_CALLABLE.into());
    if let Some(p) = o.pass_authorization {
        settings.pass_authorization = p;
    }
    settings.handler_script = Some(Arc::clone(h));
    settings
}

handler!(cmd_handler_script, |cmd, cfg, args| {
    let d = "WSGIHandlerScript";
    let spec = parse_handler_script(arg_str(d, args)?)?;
    let path = server_path(cmd, d, &spec.path)?;
    let script = Arc::new(HandlerScript {
        path,
        options: spec.options,
    });
    dir(cfg).handlers.set(&spec.name, script);
    Ok(())
});

// ---- command entries --------------------------------------------------------

use crate::config::{command, DIRS};

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 1;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [command(
    c"WSGIHandlerScript",
    cmd_handler_script,
    ffi::cmd_how_RAW_ARGS,
    DIRS,
    c"Location of WSGI handler script file: WSGIHandlerScript handler-name script-path [process-group=G application-group=A callable-object=C pass-authorization=On|Off]",
)];
