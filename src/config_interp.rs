//! mod_wsgi 6's interpreter-model directives: `WSGIDestroyInterpreter`
//! (whether a process's interpreters are cleaned up at exit),
//! `WSGIPerInterpreterGIL` and `WSGIFreeThreading` (GIL modes the Python
//! this module is built for may not have: `On` then fails configtest with
//! the reason) and `WSGIVerboseDebugging` (deprecated in mod_wsgi 6:
//! accepted, with a warning naming what replaces it). All `server config`.

use crate::apache::{self, Level};
use crate::config::{arg_str, global_only, handler, srv, RSRC};
use crate::ffi;
use rwsgi_core::directives::{parse_on_off, DirectiveError};
use std::ffi::CStr;

unsafe fn main_server_flag(
    cmd: *mut ffi::cmd_parms,
    d: &'static str,
    w: *const std::ffi::c_char,
) -> Result<bool, DirectiveError> {
    if let Some(e) = global_only(cmd) {
        return Err(DirectiveError {
            directive: d,
            message: CStr::from_ptr(e).to_string_lossy().into(),
        });
    }
    parse_on_off(d, arg_str(d, w)?)
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
    srv(cmd).more.destroy_interpreter = Some(main_server_flag(cmd, "WSGIDestroyInterpreter", w)?);
    Ok(())
});

handler!(cmd_per_interpreter_gil, |cmd, cfg, w| {
    let d = "WSGIPerInterpreterGIL";
    if main_server_flag(cmd, d, w)? {
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
});

handler!(cmd_free_threading, |cmd, cfg, w| {
    let d = "WSGIFreeThreading";
    if main_server_flag(cmd, d, w)? {
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
});

handler!(cmd_verbose_debugging, |cmd, cfg, w| {
    let d = "WSGIVerboseDebugging";
    main_server_flag(cmd, d, w)?;
    apache::log_s(
        (*cmd).server,
        Level::Warn,
        0,
        "RWSGI0059: WSGIVerboseDebugging is deprecated (as in mod_wsgi 6) and has no effect; use 'LogLevel info wsgi:debug' for rwsgi's own debug lines",
    );
    Ok(())
});

use crate::config::command;
const TAKE1: ffi::cmd_how = ffi::cmd_how_TAKE1;

/// How many entries [`COMMANDS`] has.
pub const COUNT: usize = 4;

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
];
