//! The cache of loaded WSGI scripts, one per interpreter (application
//! group), and `WSGIScriptReloading`: when a script counts as changed, and
//! what a change does (re-import in place in embedded mode; in a daemon
//! process, the process restarts and the request goes to its successor).
//!
//! As mod_wsgi: a loaded script module carries `__mtime__` (the file's
//! modification time in microseconds, as Apache's `r->finfo.mtime`). With
//! reloading on, the module is stale when `__mtime__` is missing, not an
//! integer, or differs from the request's; else, when the module defines
//! `reload_required(resource)` (for a request's own script, never the
//! dispatch script), when that returns true. A `reload_required` that
//! raises is logged (RWSGI0098) and does not count as a change: a
//! callback failing on every call would otherwise restart a daemon per
//! request.

use super::object::{self, Owned, PyPtr};
use super::{allow_threads, log_exception, Gil, Runtime};
use crate::apache::{Level, LogTarget};
use crate::ffi;
use pyo3_ffi::*;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Loaded script modules, by application group, then by file path.
type Cache = HashMap<String, HashMap<String, PyPtr>>;

/// The cache. PyPtr is only dereferenced with the GIL held.
struct Scripts(Option<Cache>);
// SAFETY: the module pointers are only used with the GIL held.
unsafe impl Send for Scripts {}

static SCRIPTS: Mutex<Scripts> = Mutex::new(Scripts(None));
/// Scripts found changed in this daemon process (application group,
/// path): it is restarting, and requests for them wait for its successor.
static RESTART_FOR: Mutex<Option<HashSet<(String, String)>>> = Mutex::new(None);
/// Since when loading WSGI scripts fails (first failure), and which script
/// failed; cleared by a successful load.
static LOAD_FAILING: Mutex<Option<(std::time::Instant, String)>> = Mutex::new(None);
/// Held while a script is executed, so two threads never load one at once.
static LOADING: Mutex<()> = Mutex::new(());

/// Since when WSGI scripts have failed to load without a success since
/// (mod_wsgi WSGIDaemonProcess startup-timeout starts at the first failure),
/// and the script that failed first; `None` when the last load succeeded or
/// none was tried.
pub fn load_failing_since() -> Option<(std::time::Instant, String)> {
    LOAD_FAILING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// What a changed script does to the process that finds it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Re-import it in place (embedded mode, the dispatch script).
    Reload,
    /// Do not run it here: the process must restart (daemon mode, as
    /// mod_wsgi: the request is answered by the process that replaces it).
    Restart,
}

/// How to get a script's module for a request.
pub struct ScriptUse<'a> {
    /// The script file.
    pub path: &'a str,
    /// Its modification time (microseconds; Apache's `r->finfo.mtime`).
    pub mtime: i64,
    /// `WSGIScriptReloading`: check whether it changed.
    pub reload: bool,
    /// Call the module's `reload_required(resource)` with this (the
    /// request's script file); `None` for the dispatch script.
    pub resource: Option<&'a str>,
    /// What a change does.
    pub on_change: OnChange,
    /// Where the lines about loading go.
    pub log: LogTarget,
}

/// Why no module came back.
#[derive(Debug)]
pub enum ScriptError {
    /// The script changed and the process restarts ([`OnChange::Restart`]):
    /// the request was not run.
    Restart,
    /// The script could not be loaded: the Python exception is left set,
    /// the text describes what failed.
    Load(String),
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScriptError::Restart => f.write_str("the script changed; the process restarts"),
            ScriptError::Load(e) => f.write_str(e),
        }
    }
}

fn cached(rt: &Runtime, path: &str) -> Option<Owned> {
    let guard = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    let m = guard.0.as_ref()?.get(&rt.application_group)?.get(path)?;
    // SAFETY: GIL held by the callers.
    Some(unsafe { Owned::from_borrowed(m.as_ptr()) })
}

/// The module object of the WSGI script `u.path` in the interpreter of
/// `rt`, loading it on first use and handling a change as `u` says (see the
/// module documentation).
///
/// Loading runs under a process-wide lock taken with the GIL released, so two
/// threads never execute the same script concurrently. GIL held on entry and
/// exit.
pub unsafe fn script_module(
    gil: &Gil,
    rt: &Runtime,
    u: &ScriptUse<'_>,
) -> Result<Owned, ScriptError> {
    if u.on_change == OnChange::Restart && restarting_for(rt, u.path) {
        return Err(ScriptError::Restart);
    }
    let seen = match cached(rt, u.path) {
        Some(m) if !u.reload || !stale(rt, &m, u) => return Ok(m),
        Some(m) => {
            if u.on_change == OnChange::Restart {
                restart_for(rt, u);
                return Err(ScriptError::Restart);
            }
            Some(m)
        }
        None => None,
    };
    let _lock = allow_threads(gil, || LOADING.lock().unwrap_or_else(|e| e.into_inner()));
    let now = cached(rt, u.path);
    match (&seen, now) {
        // Loaded by another thread meanwhile (or reloaded since we looked).
        (None, Some(m)) => return Ok(m),
        (Some(old), Some(m)) if old.as_ptr() != m.as_ptr() => return Ok(m),
        _ => {}
    }
    load_script_locked(rt, u.path, Some(u.mtime), u.log, seen.is_some()).map_err(ScriptError::Load)
}

/// Whether this daemon process found `path` changed and is restarting.
fn restarting_for(rt: &Runtime, path: &str) -> bool {
    let set = RESTART_FOR.lock().unwrap_or_else(|e| e.into_inner());
    set.as_ref()
        .is_some_and(|s| s.contains(&(rt.application_group.clone(), path.to_string())))
}

/// Records that `u.path` changed in this daemon process (logged once).
fn restart_for(rt: &Runtime, u: &ScriptUse<'_>) {
    let mut set = RESTART_FOR.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = set
        .get_or_insert_with(HashSet::new)
        .insert((rt.application_group.clone(), u.path.to_string()));
    drop(set);
    if fresh {
        u.log.log(
            Level::Info,
            &format!(
                "RWSGI0097: forcing a restart of daemon process {} of group {:?}: WSGI script '{}' changed ({}); its requests go to the process replacing it",
                std::process::id(),
                rt.process_group,
                u.path,
                interp_context(rt)
            ),
        );
    }
}

/// Whether the loaded `module` must be reloaded for `u` (reloading on).
unsafe fn stale(rt: &Runtime, module: &Owned, u: &ScriptUse<'_>) -> bool {
    let dict = PyModule_GetDict(module.as_ptr());
    if dict.is_null() {
        PyErr_Clear();
        return true;
    }
    // Interned keys: PyDict_GetItemString would make a str each request.
    let stamp = PyDict_GetItem(dict, rt.keys.mtime_attr.as_ptr());
    if stamp.is_null() || PyLong_Check(stamp) == 0 {
        return true;
    }
    let mtime = PyLong_AsLongLong(stamp);
    if !PyErr_Occurred().is_null() {
        PyErr_Clear();
        return true;
    }
    if mtime != u.mtime {
        return true;
    }
    let Some(resource) = u.resource else {
        return false;
    };
    let callback = PyDict_GetItem(dict, rt.keys.reload_required.as_ptr());
    if callback.is_null() {
        return false;
    }
    let callback = Owned::from_borrowed(callback);
    let arg = object::str_from(resource);
    let result = Owned::new(PyObject_CallOneArg(callback.as_ptr(), arg.as_ptr()));
    let verdict = match &result {
        Some(r) => PyObject_IsTrue(r.as_ptr()),
        None => -1,
    };
    if verdict < 0 {
        log_exception(
            u.log,
            &format!(
                "RWSGI0098: reload_required() of WSGI script '{}' raised ({}); the loaded version stays",
                u.path,
                interp_context(rt)
            ),
        );
        return false;
    }
    verdict == 1
}

/// "main interpreter of daemon process 'G'", "sub-interpreter 'A' in
/// embedded mode" and so on, as mod_wsgi names an interpreter in its logs.
pub fn interp_context(rt: &Runtime) -> String {
    let interp = if rt.application_group.is_empty() {
        "main interpreter".to_string()
    } else {
        format!("sub-interpreter '{}'", rt.application_group)
    };
    if rt.process_group.is_empty() {
        format!("{interp} in embedded mode")
    } else {
        format!("{interp} of daemon process '{}'", rt.process_group)
    }
}

/// Executes script `path` as a fresh module in the interpreter of `rt`
/// (LOADING held, GIL held), stamps its `__mtime__` (`mtime`, else the
/// file's now) and caches it. `again`: it replaces a loaded version (the
/// log line says reloading). Errors: the Python exception is left set.
pub(super) unsafe fn load_script_locked(
    rt: &Runtime,
    path: &str,
    mtime: Option<i64>,
    log: LogTarget,
    again: bool,
) -> Result<Owned, String> {
    let mtime = mtime.unwrap_or_else(|| file_mtime_us(path));
    // An info line without a server is below Apache's default level: a
    // load at process start goes to the main server.
    let line = format!(
        "{} WSGI script '{path}' into {}.",
        if again {
            "RWSGI0096: Reloading"
        } else {
            "RWSGI0095: Loading"
        },
        interp_context(rt)
    );
    match log {
        LogTarget::None => crate::apache::log_s(ffi::ap_server_conf, Level::Info, 0, &line),
        other => other.log(Level::Info, &line),
    }
    let p = object::str_from(path);
    let Some(module) = Owned::new(PyObject_CallOneArg(rt.load_script.as_ptr(), p.as_ptr())) else {
        let mut failing = LOAD_FAILING.lock().unwrap_or_else(|e| e.into_inner());
        failing.get_or_insert_with(|| (std::time::Instant::now(), path.to_string()));
        return Err(format!("failed to exec Python script file {path:?}"));
    };
    *LOAD_FAILING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let stamp = Owned::from_owned(PyLong_FromLongLong(mtime));
    if PyObject_SetAttrString(module.as_ptr(), c"__mtime__".as_ptr(), stamp.as_ptr()) < 0 {
        PyErr_Clear();
    }
    let mut guard = SCRIPTS.lock().unwrap_or_else(|e| e.into_inner());
    let old = guard
        .0
        .get_or_insert_with(HashMap::new)
        .entry(rt.application_group.clone())
        .or_default()
        .insert(path.to_string(), PyPtr::from_borrowed(module.as_ptr()));
    drop(guard);
    drop(old); // decref of the previous version, outside the lock
    Ok(module)
}

/// The modification time of `path` in microseconds since the epoch (0
/// when it cannot be read): the WSGI script cache's version stamp.
pub fn file_mtime_us(path: &str) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
