//! Server-wide interpreter options of mod_wsgi, applied to every Python this
//! module starts (Apache children and daemon processes):
//! `WSGIDontWriteBytecode`, `WSGIPythonOptimize`, `WSGIPythonHashSeed`,
//! `WSGIPythonWarnings` (PyConfig fields, before Python starts),
//! `WSGISwitchInterval`, `WSGIRestrictStdin`, `WSGIRestrictStdout` and
//! `WSGIRestrictSignal` (after the interpreter is set up, before any script
//! is imported). `WSGIPythonEggs` is `PYTHON_EGG_CACHE` in Apache's
//! environment, which every process inherits (a daemon group's
//! `python-eggs=` overrides it).

use super::object::Owned;
use crate::config_more::ServerMore;
use pyo3_ffi::*;
use rwsgi_core::options::HashSeed;
use std::ffi::CString;
use std::sync::Mutex;

/// The options of the configuration the processes were forked from.
#[derive(Debug, Clone, Default)]
pub struct Interpreter {
    dont_write_bytecode: bool,
    optimize: Option<i32>,
    hash_seed: Option<HashSeed>,
    warnings: Vec<String>,
    switch_interval: Option<f64>,
    restrict_stdin: bool,
    restrict_stdout: bool,
    restrict_signal: bool,
    /// `WSGIDestroyInterpreter`: atexit callbacks run at process exit.
    destroy_interpreter: bool,
}

static CURRENT: Mutex<Option<Interpreter>> = Mutex::new(None);
/// Whether `PYTHON_EGG_CACHE` is ours (set from WSGIPythonEggs).
static EGGS_SET: Mutex<bool> = Mutex::new(false);

/// Records the options of the main server's configuration (post_config,
/// in the Apache parent, before any child or daemon is forked).
pub fn configure(m: &ServerMore) {
    let i = Interpreter {
        dont_write_bytecode: m.dont_write_bytecode.unwrap_or(false),
        optimize: m.python_optimize,
        hash_seed: m.python_hash_seed,
        warnings: m.python_warnings.clone(),
        switch_interval: m.switch_interval,
        restrict_stdin: m.restrict_stdin.unwrap_or(false),
        restrict_stdout: m.restrict_stdout.unwrap_or(false),
        restrict_signal: m.restrict_signal.unwrap_or(true),
        destroy_interpreter: m.destroy_interpreter.unwrap_or(true),
    };
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some(i);
    let mut ours = EGGS_SET.lock().unwrap_or_else(|e| e.into_inner());
    match &m.python_eggs {
        Some(dir) => {
            std::env::set_var("PYTHON_EGG_CACHE", dir);
            *ours = true;
        }
        None if *ours => {
            // A restart without the directive: forget the old value.
            std::env::remove_var("PYTHON_EGG_CACHE");
            *ours = false;
        }
        None => {}
    }
}

/// `WSGIDestroyInterpreter` (default On): whether a process exiting runs
/// its interpreters' atexit callbacks.
pub fn destroy_interpreter() -> bool {
    current().destroy_interpreter
}

fn current() -> Interpreter {
    CURRENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| {
            // Defaults (restrict_signal On) when post_config has not run.
            Interpreter {
                restrict_signal: true,
                destroy_interpreter: true,
                ..Default::default()
            }
        })
}

/// Sets the PyConfig fields of the options, before `Py_InitializeFromConfig`.
///
/// # Safety
/// `config` must be an initialised PyConfig (`PyConfig_InitPythonConfig`).
pub(super) unsafe fn apply_to_config(config: *mut PyConfig) -> Result<(), String> {
    let o = current();
    if o.dont_write_bytecode {
        (*config).write_bytecode = 0;
    }
    if let Some(level) = o.optimize {
        (*config).optimization_level = level;
    }
    match o.hash_seed {
        Some(HashSeed::Fixed(n)) => {
            (*config).use_hash_seed = 1;
            (*config).hash_seed = n as _;
        }
        Some(HashSeed::Random) => (*config).use_hash_seed = 0,
        None => {}
    }
    for w in &o.warnings {
        let c = CString::new(w.as_str()).map_err(|_| format!("NUL in {w:?}"))?;
        let wide = Py_DecodeLocale(c.as_ptr(), std::ptr::null_mut());
        if wide.is_null() {
            return Err(format!("WSGIPythonWarnings {w:?} cannot be decoded"));
        }
        let st = PyWideStringList_Append(std::ptr::addr_of_mut!((*config).warnoptions), wide);
        PyMem_RawFree(wide as *mut _);
        if PyStatus_Exception(st) != 0 {
            return Err(format!("WSGIPythonWarnings {w:?} was refused by Python"));
        }
    }
    Ok(())
}

/// Applies the options Python offers only at run time: the switch interval
/// and the restrictions of `sys.stdin`, `sys.stdout` and `signal.signal`
/// (bootstrap.py's `restrict`). GIL held, interpreter set up.
///
/// # Safety
/// The GIL must be held.
pub(super) unsafe fn apply_after_setup() -> Result<(), String> {
    let o = current();
    let boot = Owned::new(PyImport_ImportModule(c"_rwsgi_bootstrap".as_ptr()))
        .ok_or("no bootstrap module")?;
    let restrict = Owned::new(PyObject_GetAttrString(boot.as_ptr(), c"restrict".as_ptr()))
        .ok_or("bootstrap lacks restrict")?;
    let args = Owned::new(Py_BuildValue(
        c"(iii)".as_ptr(),
        o.restrict_stdin as i32,
        o.restrict_stdout as i32,
        o.restrict_signal as i32,
    ))
    .ok_or("arguments")?;
    Owned::new(PyObject_Call(
        restrict.as_ptr(),
        args.as_ptr(),
        std::ptr::null_mut(),
    ))
    .ok_or("restricting sys.stdin/sys.stdout/signal.signal failed")?;
    if let Some(s) = o.switch_interval {
        let sys = Owned::new(PyImport_ImportModule(c"sys".as_ptr())).ok_or("no sys module")?;
        let arg = Owned::new(PyFloat_FromDouble(s)).ok_or("float")?;
        let name = super::object::str_from("setswitchinterval");
        Owned::new(PyObject_CallMethodOneArg(
            sys.as_ptr(),
            name.as_ptr(),
            arg.as_ptr(),
        ))
        .ok_or_else(|| format!("WSGISwitchInterval: sys.setswitchinterval({s}) failed"))?;
    }
    Ok(())
}
