//! The embedded CPython: the libpython check, interpreter start-up in each
//! Apache child, per-thread thread states and the GIL, the built-in `mod_wsgi`
//! module, logging streams, and the cache of loaded WSGI scripts.
//!
//! Python is initialised in `child_init`, never in the Apache parent: the
//! parent unloads and reloads the module on every restart, and a fork after
//! Python has started threads is unsafe (PITFALLS.md). Each Apache thread keeps
//! one `PyThreadState` for its whole life (created on its first request).

pub mod auth;
pub mod child_script;
pub mod dispatch;
pub mod gc_stats;
mod interp;
mod log;
pub mod object;
pub mod options;
mod scripts;

pub use interp::{import_group, runtime_for};
pub use log::{
    flush_application_output, log_application_output, log_exception, log_exception_at, log_lines,
    replace_log_target, take_complete_lines, take_exception_text,
};
pub use scripts::{
    file_mtime_us, load_failing_since, script_module, OnChange, ScriptError, ScriptUse,
};

use crate::apache::{self, Level, LogTarget};
use crate::config::ServerConfig;
use crate::ffi;
use object::{Owned, PyPtr};
use pyo3_ffi::*;
use std::cell::Cell;
use std::ffi::{c_void, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

/// Python version the module was built for (`sys.version`'s first word).
pub const BUILD_PY_VERSION: &str = env!("RWSGI_BUILD_PY_VERSION");
/// Real path of the libpython the module was linked against.
pub const BUILD_LIBPYTHON: &str = env!("RWSGI_BUILD_LIBPYTHON");
/// `sys.executable` of the build Python.
pub const BUILD_PY_EXECUTABLE: &str = env!("RWSGI_BUILD_PY_EXECUTABLE");

/// mod_wsgi API version reported as `mod_wsgi.version` (the mod_wsgi release
/// whose Python-visible interface rwsgi follows).
pub const MOD_WSGI_VERSION: (i64, i64, i64) = (5, 0, 0);

/// This Python's version, e.g. `3.11.2` (the first word of
/// `Py_GetVersion()`, i.e. of `sys.version`).
pub fn version_string() -> String {
    // SAFETY: Py_GetVersion returns a static NUL-terminated string and may
    // be called at any time.
    let v = unsafe { CStr::from_ptr(Py_GetVersion()) }.to_string_lossy();
    v.split_whitespace().next().unwrap_or("").to_string()
}

/// Checks that the libpython mapped into this process is the one the module
/// was built for, by path (dladdr of `Py_GetVersion`) and by version.
///
/// Output: `Err(message)` naming what was expected and what was found. Two
/// Pythons sharing a soname (pyenv's and Debian's `libpython3.11.so.1.0`) make
/// this the most common broken installation (mod_wsgi's most reported problem).
pub fn check_libpython() -> Result<(), String> {
    // SAFETY: dladdr only reads the loader's tables; Py_GetVersion returns a
    // static string and is safe before Py_Initialize.
    let (found_path, found_version) = unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        let sym = Py_GetVersion as *const c_void;
        let path = if libc::dladdr(sym, &mut info) != 0 && !info.dli_fname.is_null() {
            CStr::from_ptr(info.dli_fname)
                .to_string_lossy()
                .into_owned()
        } else {
            "<unknown>".to_string()
        };
        let version = CStr::from_ptr(Py_GetVersion())
            .to_string_lossy()
            .into_owned();
        (path, version)
    };
    let real = std::fs::canonicalize(&found_path)
        .map(|p| p.display().to_string())
        .unwrap_or(found_path.clone());
    let found_short = found_version.split_whitespace().next().unwrap_or("");
    if real != BUILD_LIBPYTHON || found_short != BUILD_PY_VERSION {
        return Err(format!(
            "RWSGI0002: mod_rwsgi was built for Python {BUILD_PY_VERSION} with libpython {BUILD_LIBPYTHON}, \
             but the libpython loaded into Apache is {real} (Python {found_short}). Another Python with the same \
             soname was found first (LD_LIBRARY_PATH, LD_PRELOAD, rpath or ld.so.conf): rebuild mod_rwsgi with \
             RWSGI_PYTHON set to the Python you want, or make that libpython the one the loader finds."
        ));
    }
    Ok(())
}

// ---- per-thread state -------------------------------------------------------

thread_local! {
    // Const-initialised Cells of raw pointers: no destructor is registered, so
    // the thread-local storage never pins or outlives the module image.
    // Whether this thread holds the GIL through a GilGuard (and is not
    // inside allow_threads): a nested acquire (a sub-request reaching
    // handle_request again on this thread) then takes nothing.
    static GIL_HELD: Cell<bool> = const { Cell::new(false) };
}

/// Proof that this thread holds the GIL (a token; it does not release it).
pub struct Gil {
    _not_send: std::marker::PhantomData<*mut ()>,
}

impl Gil {
    /// The token for code called by Python (type methods, callbacks), where
    /// the calling thread necessarily holds the GIL.
    pub fn assume_held() -> Gil {
        Gil {
            _not_send: std::marker::PhantomData,
        }
    }
}

/// Holds the GIL for a request: takes it on creation with this thread's
/// persistent thread state of the runtime's interpreter, releases it
/// (`PyEval_SaveThread`) on drop. When this thread already holds the GIL (a
/// sub-request run from inside a request on the same thread), the guard is
/// nested: it takes nothing, and switches to the runtime's interpreter
/// (`PyThreadState_Swap`) and back when that is another one.
pub struct GilGuard {
    gil: Gil,
    nested: bool,
    /// The thread state to switch back to on drop (nested, other interpreter).
    swapped_from: *mut PyThreadState,
}

impl GilGuard {
    /// Takes the GIL with this thread's thread state for `rt`'s interpreter,
    /// creating the state on the thread's first use; a no-op guard if this
    /// thread holds it already in that interpreter.
    pub fn acquire(rt: &Runtime) -> GilGuard {
        let nested = GIL_HELD.get();
        let mut swapped_from = ptr::null_mut();
        // SAFETY: rt.interp is a live interpreter; the thread state is
        // created once per OS thread and interpreter and only used from it;
        // without GIL_HELD this thread does not hold the GIL, with it it does.
        unsafe {
            let ts = interp::thread_state(rt.interp);
            if !nested {
                let t0 = crate::wsgi::metrics::gil_timer();
                PyEval_RestoreThread(ts);
                crate::wsgi::metrics::gil_acquired_for_request(t0);
                GIL_HELD.set(true);
            } else if PyThreadState_GetInterpreter(PyThreadState_Get()) != rt.interp {
                swapped_from = PyThreadState_Swap(ts);
            }
        }
        GilGuard {
            gil: Gil::assume_held(),
            nested,
            swapped_from,
        }
    }
}

impl std::ops::Deref for GilGuard {
    type Target = Gil;
    fn deref(&self) -> &Gil {
        &self.gil
    }
}

impl Drop for GilGuard {
    fn drop(&mut self) {
        if !self.swapped_from.is_null() {
            // SAFETY: the GIL is held; the saved state is this thread's.
            unsafe {
                PyThreadState_Swap(self.swapped_from);
            }
        }
        if self.nested {
            return;
        }
        GIL_HELD.set(false);
        // SAFETY: the GIL is held by this thread (taken in `acquire`).
        unsafe {
            PyEval_SaveThread();
        }
    }
}

/// Runs `f` with the GIL released (for blocking Apache or socket calls); the
/// GIL is taken back afterwards, also if `f` panics. `f` must not touch
/// Python objects. A request handled inside `f` on this thread (a
/// sub-request) takes the GIL normally.
pub fn allow_threads<T>(_gil: &Gil, f: impl FnOnce() -> T) -> T {
    struct Restore(*mut PyThreadState, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let t0 = crate::wsgi::metrics::gil_timer();
            // SAFETY: restores the state saved below, on the same thread.
            unsafe { PyEval_RestoreThread(self.0) }
            crate::wsgi::metrics::gil_acquired(t0);
            GIL_HELD.set(self.1);
        }
    }
    let held = GIL_HELD.replace(false);
    // SAFETY: the caller holds the GIL (witnessed by `_gil`).
    let _restore = Restore(unsafe { PyEval_SaveThread() }, held);
    f()
}

// ---- the runtime ------------------------------------------------------------

/// Interned environ keys and constant values, made once per interpreter.
pub struct Keys {
    /// One per `rwsgi_core::environ::CgiKey`, indexed by `key as usize`.
    pub cgi: Vec<PyPtr>,
    /// Interned `str` for `wsgi_input` (environ key, value or method name).
    pub wsgi_input: PyPtr,
    /// Interned `str` for `wsgi_errors` (environ key, value or method name).
    pub wsgi_errors: PyPtr,
    /// Interned `str` for `wsgi_url_scheme` (environ key, value or method name).
    pub wsgi_url_scheme: PyPtr,
    /// Interned `str` for `mod_wsgi_application_group` (environ key, value or method name).
    pub mod_wsgi_application_group: PyPtr,
    /// Interned `str` for `mod_wsgi_callable_object` (environ key, value or method name).
    pub mod_wsgi_callable_object: PyPtr,
    /// Interned `str` for `mod_wsgi_script_reloading` (environ key, value or method name).
    pub mod_wsgi_script_reloading: PyPtr,
    /// Interned `str` for `mod_wsgi_request_id` (environ key, value or method name).
    pub mod_wsgi_request_id: PyPtr,
    /// Interned `str` for `mod_wsgi_request_start` (environ key, value or method name).
    pub mod_wsgi_request_start: PyPtr,
    /// Interned `str` for `mod_wsgi_script_name` (environ key, value or method name).
    pub mod_wsgi_script_name: PyPtr,
    /// Interned `str` for `mod_wsgi_path_info` (environ key, value or method name).
    pub mod_wsgi_path_info: PyPtr,
    /// Interned `str` for `mod_wsgi.total_requests` (environ key).
    pub mod_wsgi_total_requests: PyPtr,
    /// Interned `str` for `mod_wsgi.thread_id` (environ key).
    pub mod_wsgi_thread_id: PyPtr,
    /// Interned `str` for `mod_wsgi.thread_requests` (environ key).
    pub mod_wsgi_thread_requests: PyPtr,
    /// Interned `str` for `http` (environ key, value or method name).
    pub http: PyPtr,
    /// Interned `str` for `https` (environ key, value or method name).
    pub https: PyPtr,
    /// Interned `str` for `one` (environ key, value or method name).
    pub one: PyPtr,
    /// Interned `str` for `zero` (environ key, value or method name).
    pub zero: PyPtr,
    /// Interned `str` for `empty` (environ key, value or method name).
    pub empty: PyPtr,
    /// Interned `str` for `close` (environ key, value or method name).
    pub close: PyPtr,
    /// Interned `str` for `fileno` (environ key, value or method name).
    pub fileno: PyPtr,
    /// Interned `str` for `tell` (environ key, value or method name).
    pub tell: PyPtr,
    /// Interned `__mtime__` (a script module's load stamp).
    pub mtime_attr: PyPtr,
    /// Interned `reload_required` (a script module's reload callback).
    pub reload_required: PyPtr,
}

/// Everything the request path needs from the interpreter of this process.
pub struct Runtime {
    /// The (main) interpreter requests run in.
    pub interp: *mut PyInterpreterState,
    /// Its application group (`''`: the main interpreter).
    pub application_group: String,
    /// The daemon process group of this process (`''`: embedded mode).
    pub process_group: String,
    /// Interned strings.
    pub keys: Keys,
    /// Environ items that are the same for every request (copied per request).
    pub base_environ: PyPtr,
    /// bootstrap.load_script(path) -> module.
    pub load_script: PyPtr,
    /// bootstrap.format_exception(type, value, tb) -> str.
    pub format_exception: PyPtr,
    /// bootstrap.shutdown(): atexit callbacks and flushing at child exit.
    pub shutdown: PyPtr,
    /// The bootstrap's `_process_signal(signum)` (process_signal events).
    pub process_signal: PyPtr,
    /// `mod_wsgi.Input`.
    pub input_type: *mut PyTypeObject,
    /// `mod_wsgi.Adapter` (start_response).
    pub adapter_type: *mut PyTypeObject,
    /// `mod_wsgi.FileWrapper`.
    pub file_wrapper_type: *mut PyTypeObject,
    /// `mod_wsgi.Log` (wsgi.errors).
    pub log_type: *mut PyTypeObject,
    /// Interned names of WSGI callables seen so far (GIL-protected).
    pub callable_names: crate::wsgi::environ::GilCell<Vec<(String, Owned)>>,
    /// Environ values reused across requests (GIL-protected).
    pub environ_cache: crate::wsgi::environ::GilCell<crate::wsgi::environ::EnvironCache>,
}

struct RuntimeCell(Runtime);
// SAFETY: the runtime's Python objects are only used with the GIL held, and
// its raw pointers (interpreter, types, main server) live for the process.
unsafe impl Send for RuntimeCell {}
unsafe impl Sync for RuntimeCell {}

static RUNTIME: OnceLock<RuntimeCell> = OnceLock::new();
static INIT_ERROR: OnceLock<String> = OnceLock::new();

/// The runtime of this process, once `init_embedded` succeeded.
pub fn runtime() -> Result<&'static Runtime, &'static str> {
    match RUNTIME.get() {
        Some(rt) => Ok(&rt.0),
        None => Err(INIT_ERROR
            .get()
            .map(String::as_str)
            .unwrap_or("the Python interpreter is not initialised in this process")),
    }
}

fn interned(s: &str) -> PyPtr {
    // SAFETY: GIL held during init; the interned string is kept forever.
    unsafe { object::interned_str(s) }
}

/// The Python program name and home to configure for `WSGIPythonHome`:
/// a virtualenv (has `pyvenv.cfg`) is selected through its `bin/python`
/// (Python's getpath then reads pyvenv.cfg, as for `venv/bin/python`), a
/// plain prefix through `home`. Without WSGIPythonHome, the build Python.
fn program_and_home(home: Option<&str>) -> (String, Option<String>) {
    match home {
        Some(h) if std::path::Path::new(h).join("pyvenv.cfg").is_file() => {
            let exe = ["bin/python3", "bin/python"]
                .iter()
                .map(|b| format!("{}/{b}", h.trim_end_matches('/')))
                .find(|p| std::path::Path::new(p).exists())
                .unwrap_or_else(|| format!("{}/bin/python", h.trim_end_matches('/')));
            (exe, None)
        }
        Some(h) => (
            format!("{}/bin/python3", h.trim_end_matches('/')),
            Some(h.to_string()),
        ),
        None => (BUILD_PY_EXECUTABLE.to_string(), None),
    }
}

/// Starts Python in this Apache child (embedded mode): configures home and
/// program name from `WSGIPythonHome`, disables Python's signal handlers,
/// registers `mod_wsgi`, redirects `sys.stdout`/`sys.stderr` to the error
/// log, applies `WSGIPythonPath` (with `site.addsitedir`), imports the
/// `WSGIImportScript` scripts, then releases the GIL.
///
/// Errors are logged (RWSGI0003/0004) and remembered: requests then fail with
/// a 500 that names the start-up error.
pub fn init_embedded(s: *mut ffi::server_rec, cfg: &ServerConfig) {
    let opts = InitOptions {
        python_home: cfg.python_home.clone(),
        python_path: cfg.python_path.clone(),
        home: None,
        import_scripts: crate::config::import_scripts(cfg)
            .iter()
            .filter(|i| {
                rwsgi_core::directives::is_embedded_group(
                    i.options.process_group.as_deref().unwrap_or(""),
                )
            })
            .filter_map(|i| {
                import_group(i.options.application_group.as_deref()).map(|g| (g, i.path.clone()))
            })
            .collect(),
        info: crate::wsgi::module::ProcessInfo::embedded(),
    };
    if let Err(e) = init_inner(&opts) {
        apache::log_s(s, Level::Crit, 0, &e);
        let _ = INIT_ERROR.set(e);
    }
}

/// How to start Python in a process.
#[derive(Clone)]
pub struct InitOptions {
    /// `WSGIPythonHome` (embedded) or the group's `python-home`.
    pub python_home: Option<String>,
    /// `WSGIPythonPath` (plus the group's `python-path` in a daemon).
    pub python_path: Vec<String>,
    /// The daemon group's `home=` (absolute directory): also the process's
    /// working directory; put first on `sys.path` of every interpreter, as
    /// mod_wsgi does. `None` in embedded mode.
    pub home: Option<String>,
    /// Scripts to import at start (`WSGIImportScript` of this process
    /// group), each with its application group (`''`: the main
    /// interpreter; another creates that sub-interpreter at start).
    pub import_scripts: Vec<(String, String)>,
    /// What the process is, for `mod_wsgi` and the environ.
    pub info: crate::wsgi::module::ProcessInfo,
}

/// Starts Python in a daemon process (after the fork and after privileges
/// were dropped), as [`init_embedded`] does in an Apache child. Errors are
/// returned (the daemon logs them and exits).
pub fn init_daemon(opts: &InitOptions) -> Result<(), String> {
    init_inner(opts)
}

fn init_inner(cfg: &InitOptions) -> Result<(), String> {
    let (program, home) = program_and_home(cfg.python_home.as_deref());
    for path in std::iter::once(&program).chain(home.iter()) {
        check_readable(path)?;
    }
    // SAFETY: single-threaded child start-up (child_init runs before the MPM
    // starts worker threads); Python is not yet initialised in this process.
    unsafe {
        if Py_IsInitialized() != 0 {
            return Err("RWSGI0003: Python was already initialised in this process".into());
        }
        let mut config: PyConfig = std::mem::zeroed();
        PyConfig_InitPythonConfig(&mut config);
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let pc: *mut PyConfig = &mut config;
        let set = move |field: *mut *mut libc::wchar_t, value: &str| {
            let c = CString::new(value).map_err(|_| format!("NUL in {value:?}"))?;
            let st = PyConfig_SetBytesString(pc, field, c.as_ptr());
            if PyStatus_Exception(st) != 0 {
                return Err(status_message(&st));
            }
            Ok(())
        };
        set(ptr::addr_of_mut!((*pc).program_name), &program)?;
        if let Some(h) = &home {
            set(ptr::addr_of_mut!((*pc).home), h)?;
        }
        options::apply_to_config(pc)?;
        let st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&mut config);
        if PyStatus_Exception(st) != 0 {
            return Err(format!(
                "RWSGI0003: Python failed to start (program {program:?}, home {:?}): {}",
                home.as_deref().unwrap_or("<default>"),
                status_message(&st)
            ));
        }
        interp::adopt_thread_state(PyThreadState_Get());
        let result = setup_interpreter(cfg, "");
        match result {
            Ok(rt) => {
                let _ = RUNTIME.set(RuntimeCell(rt));
                if let Err(e) = options::apply_after_setup() {
                    log_exception(LogTarget::None, &format!("RWSGI0072: {e}"));
                }
                if let Ok(rt) = runtime() {
                    import_scripts(cfg, rt);
                }
                PyEval_SaveThread();
                interp::start(cfg);
                Ok(())
            }
            Err(e) => {
                let detail = take_exception_text(None).unwrap_or_default();
                PyEval_SaveThread();
                Err(format!(
                    "RWSGI0004: setting up the Python interpreter failed: {e}\n{detail}"
                ))
            }
        }
    }
}

/// Fails with RWSGI0017 when `path` cannot be reached by the user this
/// child runs as (Apache's `User`), naming the first inaccessible directory.
fn check_readable(path: &str) -> Result<(), String> {
    let c = CString::new(path).map_err(|_| format!("NUL in {path:?}"))?;
    // SAFETY: access() only reads the path.
    if unsafe { libc::access(c.as_ptr(), libc::F_OK) } == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() != std::io::ErrorKind::PermissionDenied {
        return Err(format!(
            "RWSGI0017: Python installation path {path:?} is not usable: {err}"
        ));
    }
    let mut blocked = path.to_string();
    let mut prefix = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        prefix.push('/');
        prefix.push_str(part);
        let c = CString::new(prefix.as_str()).expect("no NUL");
        // SAFETY: as above.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } != 0 {
            blocked = prefix.clone();
            break;
        }
    }
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    Err(format!(
        "RWSGI0017: Python installation path {path:?} is not readable by uid {uid}, the user Apache's children \
         run as (permission denied at {blocked:?}); use a Python installed where that user can read it \
         (WSGIPythonHome) and build mod_rwsgi for it (RWSGI_PYTHON)"
    ))
}

unsafe fn status_message(st: &PyStatus) -> String {
    let func = apache::opt_str(st.func).unwrap_or("");
    let msg = apache::opt_str(st.err_msg).unwrap_or("unknown error");
    if func.is_empty() {
        msg.to_string()
    } else {
        format!("{func}: {msg}")
    }
}

/// Runs the bootstrap code in the current interpreter, that of application
/// group `group`, and builds its [`Runtime`]. GIL held.
unsafe fn setup_interpreter(cfg: &InitOptions, group: &str) -> Result<Runtime, String> {
    let module = crate::wsgi::module::create_mod_wsgi_module(&cfg.info, group)?;
    let sys_modules = PySys_GetObject(c"modules".as_ptr());
    if sys_modules.is_null()
        || PyDict_SetItemString(sys_modules, c"mod_wsgi".as_ptr(), module.as_ptr()) < 0
    {
        return Err("cannot register the mod_wsgi module".into());
    }
    // Before the bootstrap code, which registers mod_wsgi.Log as a text stream.
    let types = crate::wsgi::module::create_types(module.as_ptr())?;
    let boot = PyModule_New(c"_rwsgi_bootstrap".as_ptr());
    let boot = Owned::new(boot).ok_or("cannot create the bootstrap module")?;
    let globals = PyModule_GetDict(boot.as_ptr());
    PyDict_SetItemString(globals, c"__builtins__".as_ptr(), PyEval_GetBuiltins());
    let src = CString::new(include_str!("bootstrap.py")).expect("no NUL in bootstrap");
    let code = Owned::new(Py_CompileString(
        src.as_ptr(),
        c"<rwsgi bootstrap>".as_ptr(),
        Py_file_input,
    ))
    .ok_or("bootstrap code does not compile")?;
    Owned::new(PyEval_EvalCode(code.as_ptr(), globals, globals)).ok_or("bootstrap code failed")?;
    PyDict_SetItemString(sys_modules, c"_rwsgi_bootstrap".as_ptr(), boot.as_ptr());
    let get = |name: &CStr| -> Result<PyPtr, String> {
        let f = PyDict_GetItemString(globals, name.as_ptr());
        if f.is_null() {
            Err(format!("bootstrap lacks {name:?}"))
        } else {
            Ok(PyPtr::from_borrowed(f))
        }
    };
    // WSGIPythonPath / python-path, then the <WSGIInterpreterOptions>
    // matching this interpreter: bootstrap.py's add_python_path.
    let add_paths = |paths: &[String], what: &str| -> Result<(), String> {
        if paths.is_empty() {
            return Ok(());
        }
        let list = Owned::new(PyList_New(0)).ok_or("list")?;
        for p in paths {
            PyList_Append(list.as_ptr(), object::str_from(p).as_ptr());
        }
        let add = get(c"add_python_path")?;
        Owned::new(PyObject_CallOneArg(add.as_ptr(), list.as_ptr()))
            .map(drop)
            .ok_or_else(|| format!("{what}: site.addsitedir failed"))
    };
    add_paths(&cfg.python_path, "WSGIPythonPath")?;
    let (extra_path, interval) =
        crate::config_interp::for_interpreter(&cfg.info.process_group, group);
    add_paths(&extra_path, "<WSGIInterpreterOptions> WSGIPythonPath")?;
    if let Some(home) = &cfg.home {
        let put = get(c"put_home_first")?;
        Owned::new(PyObject_CallOneArg(
            put.as_ptr(),
            object::str_from(home).as_ptr(),
        ))
        .ok_or("home=: putting the daemon's home first on sys.path failed")?;
    }
    if let Some(seconds) = interval {
        // Process-wide in CPython 3.11: the last interpreter set up wins.
        let sys = Owned::new(PyImport_ImportModule(c"sys".as_ptr())).ok_or("no sys module")?;
        let arg = Owned::new(PyFloat_FromDouble(seconds)).ok_or("PyFloat_FromDouble failed")?;
        Owned::new(PyObject_CallMethodOneArg(
            sys.as_ptr(),
            object::str_from("setswitchinterval").as_ptr(),
            arg.as_ptr(),
        ))
        .ok_or("<WSGIInterpreterOptions> WSGISwitchInterval: sys.setswitchinterval failed")?;
    }
    let keys = make_keys();
    let base_environ = crate::wsgi::environ::make_base_environ(&keys, &types, &cfg.info)?;
    Ok(Runtime {
        interp: PyInterpreterState_Get(),
        application_group: group.to_string(),
        process_group: cfg.info.process_group.clone(),
        keys,
        base_environ,
        load_script: get(c"load_script")?,
        format_exception: get(c"format_exception")?,
        shutdown: get(c"shutdown")?,
        process_signal: get(c"_process_signal")?,
        input_type: types.input,
        adapter_type: types.adapter,
        file_wrapper_type: types.file_wrapper,
        log_type: types.log,
        environ_cache: crate::wsgi::environ::GilCell::new(Default::default()),
        callable_names: crate::wsgi::environ::GilCell::new(Vec::new()),
    })
}

fn make_keys() -> Keys {
    use rwsgi_core::environ::CgiKey;
    Keys {
        cgi: CgiKey::ALL.iter().map(|k| interned(k.as_str())).collect(),
        wsgi_input: interned("wsgi.input"),
        wsgi_errors: interned("wsgi.errors"),
        wsgi_url_scheme: interned("wsgi.url_scheme"),
        mod_wsgi_application_group: interned("mod_wsgi.application_group"),
        mod_wsgi_callable_object: interned("mod_wsgi.callable_object"),
        mod_wsgi_script_reloading: interned("mod_wsgi.script_reloading"),
        mod_wsgi_request_id: interned("mod_wsgi.request_id"),
        mod_wsgi_request_start: interned("mod_wsgi.request_start"),
        mod_wsgi_script_name: interned("mod_wsgi.script_name"),
        mod_wsgi_path_info: interned("mod_wsgi.path_info"),
        mod_wsgi_total_requests: interned("mod_wsgi.total_requests"),
        mod_wsgi_thread_id: interned("mod_wsgi.thread_id"),
        mod_wsgi_thread_requests: interned("mod_wsgi.thread_requests"),
        http: interned("http"),
        https: interned("https"),
        one: interned("1"),
        zero: interned("0"),
        empty: interned(""),
        close: interned("close"),
        fileno: interned("fileno"),
        tell: interned("tell"),
        mtime_attr: interned("__mtime__"),
        reload_required: interned("reload_required"),
    }
}

/// Imports the `WSGIImportScript` scripts at process start. GIL held.
unsafe fn import_scripts(cfg: &InitOptions, rt: &Runtime) {
    for (_, path) in cfg
        .import_scripts
        .iter()
        .filter(|(g, _)| *g == rt.application_group)
    {
        if let Err(e) = scripts::load_script_locked(rt, path, None, LogTarget::None, false) {
            log_exception(
                LogTarget::None,
                &format!("RWSGI0012: WSGIImportScript {path:?} failed: {e}"),
            );
        }
    }
}

/// mod_wsgi 6's `process_signal` event (daemon processes): `signum` (a
/// SIGHUP, or a SIGUSR2 not from the Apache parent) published to the
/// `mod_wsgi.subscribe_signals` and `subscribe_events` subscribers of every
/// interpreter of the process. A subscriber's exception is logged
/// (RWSGI0086).
pub fn publish_process_signal(signum: i32) {
    let Ok(main) = runtime() else { return };
    for rt in interp::subs().into_iter().chain(std::iter::once(main)) {
        let _gil = GilGuard::acquire(rt);
        // SAFETY: GIL held in rt's interpreter.
        unsafe {
            let arg = Owned::new(PyLong_FromLong(signum as std::ffi::c_long));
            let r = arg.and_then(|a| {
                Owned::new(PyObject_CallOneArg(rt.process_signal.as_ptr(), a.as_ptr()))
            });
            if r.is_none() {
                log_exception(
                    LogTarget::None,
                    "RWSGI0086: publishing the process_signal event failed",
                );
            }
        }
    }
}

/// mod_wsgi's managed services (`WSGIDaemonProcess threads=0`): runs each
/// `(application group, path)` of `scripts` in this thread, in that group's
/// interpreter (made if needed), one after the other; a script may run for
/// the life of the process (a loop that sleeps, a scheduler). Called in a
/// thread of its own once the service daemon is set up, so the process
/// still answers stop and restart signals meanwhile. A script that raises
/// is logged (RWSGI0012 with its traceback); the next one still runs.
pub fn run_service_scripts(scripts: &[(String, String)]) {
    for (group, path) in scripts {
        let rt = match runtime_for(group) {
            Ok(rt) => rt,
            Err(e) => {
                apache::log_s(
                    std::ptr::null(),
                    Level::Error,
                    0,
                    &format!("RWSGI0012: service script {path:?}: {e}"),
                );
                continue;
            }
        };
        let _gil = GilGuard::acquire(rt);
        // SAFETY: GIL held in rt's interpreter. A service process has no
        // request threads, so no other script loads meanwhile (the LOADING
        // lock is not taken: a service script may never return).
        unsafe {
            if let Err(e) = scripts::load_script_locked(rt, path, None, LogTarget::None, false) {
                log_exception(
                    LogTarget::None,
                    &format!("RWSGI0012: service script {path:?} (WSGIImportScript of a threads=0 group) failed: {e}"),
                );
            }
        }
    }
}

/// Runs atexit callbacks and flushes output at child exit, then logs the
/// partial lines application threads still hold. Python is not finalised
/// (application threads could block `Py_FinalizeEx`).
pub fn shutdown() {
    let Ok(main) = runtime() else { return };
    for rt in interp::subs().into_iter().chain(std::iter::once(main)) {
        run_exit_callbacks(rt);
    }
    log::flush_all_application_output();
}

/// bootstrap.shutdown() in the interpreter of `rt`.
fn run_exit_callbacks(rt: &Runtime) {
    let gil = GilGuard::acquire(rt);
    // SAFETY: GIL held.
    unsafe {
        // WSGIDestroyInterpreter Off: no atexit callbacks (mod_wsgi skips
        // the interpreter's finalisation, which runs them).
        let run_atexit = if options::destroy_interpreter() {
            Py_True()
        } else {
            Py_False()
        };
        let r = PyObject_CallOneArg(rt.shutdown.as_ptr(), run_atexit);
        if r.is_null() {
            log_exception(
                LogTarget::None,
                "RWSGI0013: exception in atexit callbacks at process exit",
            );
        } else {
            Py_DECREF(r);
        }
    }
    drop(gil);
}

/// `sys.setswitchinterval(seconds)` (mod_wsgi WSGIDaemonProcess
/// switch-interval). Errors: Python's exception text.
pub fn set_switch_interval(rt: &Runtime, seconds: f64) -> Result<(), String> {
    let _gil = GilGuard::acquire(rt);
    // SAFETY: GIL held; the argument is a float object we own.
    unsafe {
        let arg = Owned::new(PyFloat_FromDouble(seconds)).ok_or("PyFloat_FromDouble failed")?;
        let sys = Owned::new(PyImport_ImportModule(c"sys".as_ptr())).ok_or("no sys module")?;
        let r = PyObject_CallMethodOneArg(
            sys.as_ptr(),
            object::str_from("setswitchinterval").as_ptr(),
            arg.as_ptr(),
        );
        if r.is_null() {
            return Err(take_exception_text(None).unwrap_or_default());
        }
        Py_DECREF(r);
    }
    Ok(())
}

/// Raises `exc_name` (an attribute of the `mod_wsgi` module, an exception
/// class) asynchronously in the Python thread `ident` (`threading.get_ident()`,
/// which is `pthread_self()` on Linux), as mod_wsgi's interrupt-timeout does
/// with `PyThreadState_SetAsyncExc`, in whichever interpreter (`rt`'s, or
/// a sub-interpreter) the thread runs Python. Returns whether a thread was
/// found.
pub fn interrupt_thread(rt: &Runtime, ident: u64, exc_name: &str) -> bool {
    std::iter::once(rt)
        .chain(interp::subs())
        .any(|rt| interrupt_in(rt, ident, exc_name))
}

fn interrupt_in(rt: &Runtime, ident: u64, exc_name: &str) -> bool {
    let _gil = GilGuard::acquire(rt);
    // SAFETY: GIL held.
    unsafe {
        let m = PyImport_ImportModule(c"mod_wsgi".as_ptr());
        let Some(m) = Owned::new(m) else {
            PyErr_Clear();
            return false;
        };
        let Ok(name) = CString::new(exc_name) else {
            return false;
        };
        let Some(exc) = Owned::new(PyObject_GetAttrString(m.as_ptr(), name.as_ptr())) else {
            PyErr_Clear();
            return false;
        };
        PyThreadState_SetAsyncExc(ident as _, exc.as_ptr()) == 1
    }
}
