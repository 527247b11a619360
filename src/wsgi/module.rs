//! The built-in `mod_wsgi` Python module and the Python types rwsgi defines:
//! `mod_wsgi.Input` (wsgi.input), `mod_wsgi.Adapter` (start_response),
//! `mod_wsgi.FileWrapper` (wsgi.file_wrapper) and `mod_wsgi.Log`
//! (wsgi.errors), created with `PyType_FromSpec`.

use crate::ffi;
use crate::python::object::{self, Owned};
use crate::python::MOD_WSGI_VERSION;
use pyo3_ffi::*;
use std::ffi::{c_int, c_void};
use std::ptr;

/// The type objects of one interpreter.
pub struct Types {
    /// `mod_wsgi.Input` (wsgi.input).
    pub input: *mut PyTypeObject,
    /// `mod_wsgi.Adapter` (start_response).
    pub adapter: *mut PyTypeObject,
    /// `mod_wsgi.FileWrapper` (wsgi.file_wrapper).
    pub file_wrapper: *mut PyTypeObject,
    /// `mod_wsgi.Log` (wsgi.errors).
    pub log: *mut PyTypeObject,
}

unsafe extern "C" fn log_write(_m: *mut PyObject, arg: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi._log_write", ptr::null_mut(), || unsafe {
        if PyBytes_Check(arg) == 0 {
            return object::raise(PyExc_TypeError, "_log_write() expects bytes");
        }
        crate::python::log_application_output(object::bytes_ref(arg));
        Py_NewRef(Py_None())
    })
}

unsafe extern "C" fn mark_exit(_m: *mut PyObject, arg: *mut PyObject) -> *mut PyObject {
    crate::apache::guard("mod_wsgi._mark_exit", ptr::null_mut(), || unsafe {
        let n = PyLong_AsLong(arg);
        if n == -1 && !PyErr_Occurred().is_null() {
            return ptr::null_mut();
        }
        crate::daemon::shared::mark_current_exit(n as i32);
        Py_NewRef(Py_None())
    })
}

static mut MODULE_METHODS: [PyMethodDef; 3] = [
    PyMethodDef {
        ml_name: c"_mark_exit".as_ptr(),
        ml_meth: PyMethodDefPointer {
            PyCFunction: mark_exit,
        },
        ml_flags: METH_O,
        ml_doc: c"Record the status of an os._exit() in a daemon process (internal).".as_ptr(),
    },
    PyMethodDef {
        ml_name: c"_log_write".as_ptr(),
        ml_meth: PyMethodDefPointer {
            PyCFunction: log_write,
        },
        ml_flags: METH_O,
        ml_doc: c"Write bytes to Apache's error log (internal).".as_ptr(),
    },
    PyMethodDef::zeroed(),
];

static mut MODULE_DEF: PyModuleDef = PyModuleDef {
    m_base: PyModuleDef_HEAD_INIT,
    m_name: c"mod_wsgi".as_ptr(),
    m_doc: c"mod_wsgi-compatible interface of rwsgi (Apache module in Rust).".as_ptr(),
    m_size: -1,
    m_methods: ptr::null_mut(),
    m_slots: ptr::null_mut(),
    m_traverse: None,
    m_clear: None,
    m_free: None,
};

/// Threads per Apache child (`AP_MPMQ_MAX_THREADS`, at least 1).
pub fn mpm_threads() -> u32 {
    mpm_query(ffi::AP_MPMQ_MAX_THREADS).max(1) as u32
}

fn mpm_query(what: u32) -> i64 {
    let mut v: c_int = 0;
    // SAFETY: ap_mpm_query writes one int; valid in a child process.
    unsafe {
        if ffi::ap_mpm_query(what as c_int, &mut v) != 0 {
            return 0;
        }
    }
    v as i64
}

/// What a process running Python is, as `mod_wsgi` and the environ report
/// it: embedded (an Apache child; the MPM's sizes) or a daemon process of a
/// group (its `processes`/`threads`).
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// `mod_wsgi.process_group` ('' = embedded).
    pub process_group: String,
    /// `wsgi.multithread`.
    pub multithread: bool,
    /// `wsgi.multiprocess`.
    pub multiprocess: bool,
    /// `mod_wsgi.maximum_processes`.
    pub maximum_processes: i64,
    /// `mod_wsgi.threads_per_process`.
    pub threads_per_process: i64,
}

impl ProcessInfo {
    /// An Apache child in embedded mode, from the MPM.
    pub fn embedded() -> ProcessInfo {
        let threads = mpm_query(ffi::AP_MPMQ_MAX_THREADS).max(1);
        ProcessInfo {
            process_group: String::new(),
            multithread: mpm_query(ffi::AP_MPMQ_IS_THREADED) != ffi::AP_MPMQ_NOT_SUPPORTED as i64
                && threads > 1,
            multiprocess: mpm_query(ffi::AP_MPMQ_MAX_DAEMONS) > 1,
            maximum_processes: mpm_query(ffi::AP_MPMQ_MAX_DAEMONS).max(1),
            threads_per_process: threads,
        }
    }
}

/// The `mod_wsgi` package on `sys.path`, if there is one (mod_wsgi's pip
/// package, which has `mod_wsgi.express` and `mod_wsgi.server`): as mod_wsgi
/// does, the module's attributes are added to it, so the handler script of
/// a `mod_wsgi-express setup-server` root (`from mod_wsgi.express.runtime
/// import ...`) runs. `None` when there is none (then the module is made
/// from scratch), or when importing it failed: that is logged (warning,
/// with the exception) and the module is made from scratch. GIL held.
unsafe fn external_package() -> Option<Owned> {
    if let Some(m) = Owned::new(PyImport_ImportModule(c"mod_wsgi".as_ptr())) {
        if PyModule_Check(m.as_ptr()) != 0 {
            return Some(m);
        }
        let modules = PySys_GetObject(c"modules".as_ptr());
        if !modules.is_null() && PyDict_DelItemString(modules, c"mod_wsgi".as_ptr()) < 0 {
            PyErr_Clear();
        }
        return None;
    }
    if PyErr_ExceptionMatches(PyExc_ModuleNotFoundError) != 0 {
        let (mut t, mut v, mut tb) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
        PyErr_Fetch(&mut t, &mut v, &mut tb);
        PyErr_NormalizeException(&mut t, &mut v, &mut tb);
        let missing = Owned::new(v)
            .and_then(|v| Owned::new(PyObject_GetAttrString(v.as_ptr(), c"name".as_ptr())))
            .and_then(|n| object::to_string(n.as_ptr()));
        let _ = (Owned::new(t), Owned::new(tb));
        PyErr_Clear();
        if missing.as_deref() == Some("mod_wsgi") {
            return None;
        }
        crate::apache::LogTarget::None.log(
            crate::apache::Level::Warn,
            &format!(
                "RWSGI0063: the mod_wsgi package on sys.path could not be imported (it needs module {:?}); rwsgi's mod_wsgi module is made without it",
                missing.unwrap_or_default()
            ),
        );
        return None;
    }
    crate::python::log_exception_at(
        crate::apache::LogTarget::None,
        crate::apache::Level::Warn,
        "RWSGI0063: the mod_wsgi package on sys.path could not be imported; rwsgi's mod_wsgi module is made without it",
    );
    None
}

/// Creates the `mod_wsgi` module: `version` (tuple), `process_group` (''
/// in embedded mode), `application_group` (`group`: '' in the main
/// interpreter), `maximum_processes`, `threads_per_process`,
/// `rwsgi_version`, as `info` says. GIL held.
pub unsafe fn create_mod_wsgi_module(info: &ProcessInfo, group: &str) -> Result<Owned, String> {
    let methods = ptr::addr_of_mut!(MODULE_METHODS) as *mut PyMethodDef;
    let m = match external_package() {
        Some(m) => {
            if PyModule_AddFunctions(m.as_ptr(), methods) < 0 {
                PyErr_Clear();
                return Err("cannot add functions to the mod_wsgi package".into());
            }
            m
        }
        None => {
            let def = ptr::addr_of_mut!(MODULE_DEF);
            (*def).m_methods = methods;
            Owned::new(PyModule_Create(def)).ok_or("cannot create module mod_wsgi")?
        }
    };
    let (a, b, c) = MOD_WSGI_VERSION;
    let version = Owned::from_owned(PyTuple_New(3));
    PyTuple_SetItem(version.as_ptr(), 0, PyLong_FromLongLong(a));
    PyTuple_SetItem(version.as_ptr(), 1, PyLong_FromLongLong(b));
    PyTuple_SetItem(version.as_ptr(), 2, PyLong_FromLongLong(c));
    let add = |name: &std::ffi::CStr, value: Owned| {
        PyModule_AddObject(m.as_ptr(), name.as_ptr(), value.into_ptr());
    };
    add(c"version", version);
    add(
        c"rwsgi_version",
        object::str_from(env!("CARGO_PKG_VERSION")),
    );
    add(c"process_group", object::str_from(&info.process_group));
    add(c"application_group", object::str_from(group));
    super::metrics::init_process(info.threads_per_process, !info.process_group.is_empty());
    super::metrics_api::add_functions(m.as_ptr())?;
    add(
        c"maximum_processes",
        Owned::from_owned(PyLong_FromLongLong(info.maximum_processes)),
    );
    add(
        c"threads_per_process",
        Owned::from_owned(PyLong_FromLongLong(info.threads_per_process)),
    );
    Ok(m)
}

fn slot(slot: c_int, pfunc: *mut c_void) -> PyType_Slot {
    PyType_Slot { slot, pfunc }
}

unsafe fn make_type(
    module: *mut PyObject,
    name: &'static std::ffi::CStr,
    basicsize: usize,
    flags: std::ffi::c_ulong,
    slots: &mut Vec<PyType_Slot>,
) -> Result<*mut PyTypeObject, String> {
    slots.push(slot(0, ptr::null_mut()));
    let mut spec = PyType_Spec {
        name: name.as_ptr(),
        basicsize: basicsize as c_int,
        itemsize: 0,
        flags: flags as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    };
    let t = PyType_FromSpec(&mut spec);
    if t.is_null() {
        return Err(format!("cannot create type {name:?}"));
    }
    let short = name.to_str().unwrap_or("").rsplit('.').next().unwrap_or("");
    let short = std::ffi::CString::new(short).expect("no NUL");
    Py_INCREF(t);
    PyModule_AddObject(module, short.as_ptr(), t);
    Ok(t as *mut PyTypeObject)
}

/// Creates the four types and adds them to module `mod_wsgi`. GIL held.
pub unsafe fn create_types(module: *mut PyObject) -> Result<Types, String> {
    use super::{adapter, errors, file_wrapper, input};
    let no_new = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION;
    let input = make_type(
        module,
        c"mod_wsgi.Input",
        std::mem::size_of::<input::InputObject>(),
        no_new,
        &mut input::slots(),
    )?;
    let adapter = make_type(
        module,
        c"mod_wsgi.Adapter",
        std::mem::size_of::<adapter::AdapterObject>(),
        no_new,
        &mut adapter::slots(),
    )?;
    let file_wrapper = make_type(
        module,
        c"mod_wsgi.FileWrapper",
        std::mem::size_of::<file_wrapper::FileWrapperObject>(),
        Py_TPFLAGS_DEFAULT,
        &mut file_wrapper::slots(),
    )?;
    let log = make_type(
        module,
        c"mod_wsgi.Log",
        std::mem::size_of::<errors::LogObject>(),
        no_new,
        &mut errors::slots(),
    )?;
    Ok(Types {
        input,
        adapter,
        file_wrapper,
        log,
    })
}

/// Builds a `PyType_Slot` (for the type modules' `slots()` functions).
pub fn type_slot(id: c_int, pfunc: *mut c_void) -> PyType_Slot {
    slot(id, pfunc)
}

/// Frees an instance of a heap type and drops the instance's reference to
/// its type (required for heap types). GIL held.
pub unsafe fn free_instance(obj: *mut PyObject) {
    let tp = Py_TYPE(obj);
    if let Some(free) = (*tp).tp_free {
        free(obj as *mut c_void);
    }
    Py_DECREF(tp as *mut PyObject);
}
