//! mod_wsgi 6's interpreter-model directives: `WSGIDestroyInterpreter`
//! (whether a process's interpreters are cleaned up at exit),
//! `WSGIPerInterpreterGIL` and `WSGIFreeThreading` (GIL modes the Python
//! this module is built for may not have: `On` then fails configtest with
//! the reason) and `WSGIVerboseDebugging` (deprecated in mod_wsgi 6:
//! accepted, with a warning naming what replaces it), and the
//! `<WSGIInterpreterOptions [process-group=] [application-group=]>`
//! container of per-interpreter settings (`WSGIPythonPath`,
//! `WSGISwitchInterval`, `WSGIPerInterpreterGIL`, `WSGIFreeThreading`),
//! applied when a matching interpreter is set up. All `server config`.

use crate::apache::{self, Level};
use crate::config::{handler, main_server_only, srv, RSRC};
use crate::config_more::server_flag;
use crate::ffi;
use rwsgi_core::directives::DirectiveError;
use rwsgi_core::interp_options::InterpreterOptions;
use std::ffi::CStr;
use std::sync::Mutex;

/// The `<WSGIInterpreterOptions>` containers of this configuration pass, in
/// order (set in the Apache parent, inherited by children and daemons).
static CONTAINERS: Mutex<Vec<InterpreterOptions>> = Mutex::new(Vec::new());

/// Forgets the previous configuration pass (pre_config).
pub fn reset() {
    CONTAINERS.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// What the containers matching the interpreter of application group
/// `application_group` (`""`: main) in process group `process_group`
/// (`""`: embedded mode) add: python path directories (in order) and the
/// switch interval (the last container's that sets one), seconds.
pub fn for_interpreter(process_group: &str, application_group: &str) -> (Vec<String>, Option<f64>) {
    let all = CONTAINERS.lock().unwrap_or_else(|e| e.into_inner());
    let mut path = Vec::new();
    let mut interval = None;
    for c in all
        .iter()
        .filter(|c| c.matches(process_group, application_group))
    {
        path.extend(c.python_path.iter().cloned());
        interval = c.switch_interval.or(interval);
    }
    (path, interval)
}

/// The (major, minor) version of the Python this module is linked with,
/// and whether it is a free-threaded build (PEP 703), from
/// `Py_GetVersion()`, which needs no initialised interpreter.
fn linked_python() -> ((u32, u32), bool) {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string and may
    // be called before Py_Initialize.
    let v = unsafe { CStr::from_ptr(pyo3_ffi::Py_GetVersion()) }.to_string_lossy();
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    ((major, minor), v.contains("free-threading"))
}

/// The version text for error messages: `3.11`.
fn version_text((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}

handler!(cmd_destroy_interpreter, |cmd, cfg, w| {
    srv(cmd).more.destroy_interpreter = Some(server_flag(cmd, "WSGIDestroyInterpreter", w)?);
    Ok(())
});

/// `WSGIPerInterpreterGIL On`: refused, with why (this Python or rwsgi).
fn check_per_interpreter_gil(on: bool) -> Result<(), DirectiveError> {
    let d = "WSGIPerInterpreterGIL";
    if on {
        let (version, _) = linked_python();
        if version < (3, 12) {
            return Err(DirectiveError {
                directive: d,
                message: format!(
                    "On needs Python 3.12 or later (a GIL per sub-interpreter, PEP 684); this module is built for Python {}. Remove the directive or set it Off",
                    version_text(version)
                ),
            });
        }
        return Err(DirectiveError {
            directive: d,
            message:
                "On is not available in rwsgi yet: sub-interpreters share the main GIL; set it Off"
                    .into(),
        });
    }
    Ok(())
}

handler!(cmd_per_interpreter_gil, |cmd, cfg, w| {
    check_per_interpreter_gil(server_flag(cmd, "WSGIPerInterpreterGIL", w)?)
});

/// `WSGIFreeThreading On`: refused unless this Python is free-threaded.
fn check_free_threading(on: bool) -> Result<(), DirectiveError> {
    let d = "WSGIFreeThreading";
    if on {
        let (version, free) = linked_python();
        if !free {
            return Err(DirectiveError {
                directive: d,
                message: format!(
                    "On needs a free-threaded Python (3.13t or later, built with --disable-gil, PEP 703); this module is built for Python {}, which has a GIL. Remove the directive or set it Off",
                    version_text(version)
                ),
            });
        }
    }
    Ok(())
}

handler!(cmd_free_threading, |cmd, cfg, w| {
    check_free_threading(server_flag(cmd, "WSGIFreeThreading", w)?)
});

handler!(cmd_interpreter_options, |cmd, cfg, w| {
    let d = "<WSGIInterpreterOptions>";
    main_server_only(cmd, d)?;
    let args = if w.is_null() {
        String::new()
    } else {
        CStr::from_ptr(w).to_string_lossy().into_owned()
    };
    let mut o = InterpreterOptions::parse_selectors(&args)?;
    // The body: Apache built it as this section's children; they are read
    // here, not run as directives of their own.
    let mut child = (*(*cmd).directive).first_child;
    while !child.is_null() {
        let name = CStr::from_ptr((*child).directive)
            .to_string_lossy()
            .into_owned();
        let args = if (*child).args.is_null() {
            String::new()
        } else {
            CStr::from_ptr((*child).args).to_string_lossy().into_owned()
        };
        let at = |e: DirectiveError| DirectiveError {
            directive: d,
            message: format!(
                "{} (line {}): {}",
                e.directive,
                (*child).line_num,
                e.message
            ),
        };
        o.set(&name, &args).map_err(at)?;
        child = (*child).next;
    }
    check_per_interpreter_gil(o.per_interpreter_gil == Some(true))?;
    check_free_threading(o.free_threading == Some(true))?;
    CONTAINERS.lock().unwrap_or_else(|e| e.into_inner()).push(o);
    Ok(())
});

handler!(cmd_verbose_debugging, |cmd, cfg, w| {
    let d = "WSGIVerboseDebugging";
    // Off (what mod_wsgi-express writes) asks for nothing: no warning.
    if server_flag(cmd, d, w)? {
        apache::log_s(
            (*cmd).server,
            Level::Warn,
            0,
            "RWSGI0059: WSGIVerboseDebugging is deprecated (as in mod_wsgi 6) and has no effect; use 'LogLevel info wsgi:debug' for rwsgi's own debug lines",
        );
    }
    Ok(())
});

use crate::config::command;
const TAKE1: ffi::cmd_how = ffi::cmd_how_TAKE1;

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 5;

/// This file's directives, for config.rs's command table.
pub const COMMANDS: [ffi::command_rec; COUNT] = [
    command(c"WSGIDestroyInterpreter", cmd_destroy_interpreter, TAKE1, RSRC,
        c"On (default): atexit callbacks run when a process exits; Off skips them (mod_wsgi.subscribe_shutdown callbacks still run)"),
    command(c"WSGIPerInterpreterGIL", cmd_per_interpreter_gil, TAKE1, RSRC,
        c"Off (default): sub-interpreters share the GIL; On needs Python 3.12+"),
    command(c"WSGIFreeThreading", cmd_free_threading, TAKE1, RSRC,
        c"Off (default); On needs a free-threaded Python (3.13t+)"),
    command(c"WSGIVerboseDebugging", cmd_verbose_debugging, TAKE1, RSRC,
        c"Deprecated in mod_wsgi 6, no effect (use LogLevel wsgi:debug)"),
    command(c"<WSGIInterpreterOptions", cmd_interpreter_options, ffi::cmd_how_RAW_ARGS, RSRC,
        c"Per-interpreter settings (WSGIPythonPath, WSGISwitchInterval, ...) for interpreters matching process-group= and application-group="),
];
