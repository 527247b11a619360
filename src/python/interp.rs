//! Application groups as interpreters, as mod_wsgi: `%{GLOBAL}` (`''`) is
//! the main interpreter, any other group name a sub-interpreter
//! (`Py_NewInterpreter`) of this process, created on first use (or at
//! start for a `WSGIImportScript` naming it) and kept for the process's
//! life. Each gets the same set-up as the main one (the `mod_wsgi` module,
//! with its own `application_group`, rwsgi's types, `sys.stdout`/`stderr`
//! to the error log, `WSGIPythonPath`, the `WSGIRestrict*` options) and its
//! own script cache. Python 3.11 sub-interpreters share the GIL.
//!
//! Also here: the thread states of each OS thread, one per interpreter it
//! has run Python in, created on first use and kept for the thread's life.

use super::{allow_threads, log_exception, GilGuard, InitOptions, Runtime};
use crate::apache::{self, Level, LogTarget};
use crate::ffi;
use pyo3_ffi::*;
use std::cell::Cell;
use std::ptr;
use std::sync::{Mutex, OnceLock};

type States = Vec<(*mut PyInterpreterState, *mut PyThreadState)>;

thread_local! {
    // This thread's thread states, by interpreter: a leaked vector behind a
    // const-initialised Cell, so no thread-local destructor is registered
    // (the module image must stay unloadable-safe, see PITFALLS.md).
    static STATES: Cell<*mut States> = const { Cell::new(ptr::null_mut()) };
}

/// This thread's thread state for `interp`, created on first use.
///
/// # Safety
/// `interp` must be a live interpreter.
pub(super) unsafe fn thread_state(interp: *mut PyInterpreterState) -> *mut PyThreadState {
    let states = states();
    if let Some(&(_, ts)) = states.iter().find(|(i, _)| *i == interp) {
        return ts;
    }
    let ts = PyThreadState_New(interp);
    states.push((interp, ts));
    ts
}

/// Makes `ts` (made by Python for this thread: the main thread state, or a
/// new sub-interpreter's) this thread's state for its interpreter.
///
/// # Safety
/// `ts` must be a live thread state of this thread.
pub(super) unsafe fn adopt_thread_state(ts: *mut PyThreadState) {
    states().push((PyThreadState_GetInterpreter(ts), ts));
}

unsafe fn states() -> &'static mut States {
    let mut p = STATES.get();
    if p.is_null() {
        p = Box::into_raw(Box::default());
        STATES.set(p);
    }
    // SAFETY: thread-local, so only this thread ever touches it.
    &mut *p
}

/// A sub-interpreter's runtime, for the process's life.
struct Sub(Runtime);
// SAFETY: its Python objects are only used with the GIL held; its raw
// pointers (interpreter, types) live for the process.
unsafe impl Send for Sub {}
unsafe impl Sync for Sub {}

/// The sub-interpreters created so far.
static SUBS: Mutex<Vec<&'static Sub>> = Mutex::new(Vec::new());
/// Held (taken with the GIL released) while one is created.
static CREATING: Mutex<()> = Mutex::new(());
/// How the main interpreter was set up, for the sub-interpreters.
static OPTIONS: OnceLock<InitOptions> = OnceLock::new();

/// The application group a `WSGIImportScript` or preloaded script is
/// imported into, from its `application-group=`: `%{GLOBAL}` (or none)
/// is the main interpreter (`''`); `None` for a name known only per
/// request (`%{RESOURCE}`, `%{SERVER}`, `%{ENV:...}`), which cannot be
/// imported at start.
pub fn import_group(spec: Option<&str>) -> Option<String> {
    match spec {
        None | Some("") | Some("%{GLOBAL}") => Some(String::new()),
        Some(s) if s.starts_with("%{") => None,
        Some(s) => Some(s.to_string()),
    }
}

fn find(group: &str) -> Option<&'static Runtime> {
    let subs = SUBS.lock().unwrap_or_else(|e| e.into_inner());
    subs.iter()
        .find(|s| s.0.application_group == group)
        .map(|s| &s.0)
}

/// The sub-interpreters' runtimes.
pub(super) fn subs() -> Vec<&'static Runtime> {
    let subs = SUBS.lock().unwrap_or_else(|e| e.into_inner());
    subs.iter().map(|s| &s.0).collect()
}

/// The runtime of the interpreter this thread runs in now. GIL held.
pub(super) fn current() -> Option<&'static Runtime> {
    let main = super::runtime().ok()?;
    // SAFETY: GIL held by the callers.
    let interp = unsafe { PyInterpreterState_Get() };
    if interp == main.interp {
        return Some(main);
    }
    let subs = SUBS.lock().unwrap_or_else(|e| e.into_inner());
    subs.iter().find(|s| s.0.interp == interp).map(|s| &s.0)
}

/// Called once the main interpreter is set up (GIL released): remembers
/// its options and creates the sub-interpreters that `WSGIImportScript`s
/// name, importing their scripts.
pub(super) fn start(opts: &InitOptions) {
    let _ = OPTIONS.set(opts.clone());
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in &opts.import_scripts {
        if !g.is_empty() && !groups.contains(&g.as_str()) {
            groups.push(g);
        }
    }
    for g in groups {
        if let Err(e) = runtime_for(g) {
            // SAFETY: the main server, set before any child or daemon starts.
            apache::log_s(unsafe { ffi::ap_server_conf }, Level::Error, 0, &e);
        }
    }
}

/// The runtime of application group `group` (expanded; `''` is the main
/// interpreter), creating its sub-interpreter on first use. Call without
/// the GIL, or with it held (a sub-request). Errors (RWSGI0004, with the
/// traceback): the sub-interpreter could not be set up; the next request
/// tries again.
pub fn runtime_for(group: &str) -> Result<&'static Runtime, String> {
    let main = super::runtime().map_err(str::to_string)?;
    if group.is_empty() {
        return Ok(main);
    }
    if let Some(rt) = find(group) {
        return Ok(rt);
    }
    let gil = GilGuard::acquire(main);
    let _lock = allow_threads(&gil, || CREATING.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(rt) = find(group) {
        return Ok(rt);
    }
    let opts = OPTIONS
        .get()
        .ok_or("the main interpreter is not set up yet")?;
    // SAFETY: GIL held (main interpreter); the new interpreter's state is
    // current only inside create, which switches back.
    unsafe { create(opts, group) }
}

unsafe fn create(opts: &InitOptions, group: &str) -> Result<&'static Runtime, String> {
    let saved = PyThreadState_Swap(ptr::null_mut());
    let ts = Py_NewInterpreter();
    if ts.is_null() {
        PyThreadState_Swap(saved);
        return Err(format!(
            "RWSGI0004: cannot create the sub-interpreter of application group {group:?}: Py_NewInterpreter() failed"
        ));
    }
    let sub: &'static Sub = match super::setup_interpreter(opts, group) {
        Ok(rt) => Box::leak(Box::new(Sub(rt))),
        Err(e) => {
            let detail = super::take_exception_text(None).unwrap_or_default();
            Py_EndInterpreter(ts);
            PyThreadState_Swap(saved);
            return Err(format!(
                "RWSGI0004: setting up the sub-interpreter of application group {group:?} failed: {e}\n{detail}"
            ));
        }
    };
    let rt = &sub.0;
    adopt_thread_state(ts);
    if let Err(e) = super::options::apply_after_setup() {
        log_exception(LogTarget::None, &format!("RWSGI0072: {e}"));
    }
    apache::log_s(
        ffi::ap_server_conf,
        Level::Info,
        0,
        &format!(
            "RWSGI0099: created the {} for application group {group:?}",
            super::scripts::interp_context(rt)
        ),
    );
    // Before it is visible: requests for the group wait on CREATING.
    super::import_scripts(opts, rt);
    SUBS.lock().unwrap_or_else(|e| e.into_inner()).push(sub);
    crate::observe::process::sub_interpreter_created();
    PyThreadState_Swap(saved);
    Ok(rt)
}
