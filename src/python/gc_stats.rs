//! Garbage collections of the current interpreter (`gc.get_stats()`), for
//! the server's metrics (`rwsgi_python_gc_collections_total`).

use super::object::Owned;
use super::Gil;
use pyo3_ffi::*;

/// Collections so far per generation (0, 1, 2) of the interpreter whose
/// GIL `_gil` proves held; `None` (the exception cleared) when `gc` cannot
/// be imported or its statistics read.
pub fn collections(_gil: &Gil) -> Option<[u64; 3]> {
    // SAFETY: the GIL is held (the token); every new reference is owned.
    unsafe {
        let r = (|| {
            let gc = Owned::new(PyImport_ImportModule(c"gc".as_ptr()))?;
            let stats = Owned::new(PyObject_CallMethod(
                gc.as_ptr(),
                c"get_stats".as_ptr(),
                std::ptr::null(),
            ))?;
            if PyList_Check(stats.as_ptr()) == 0 {
                return None;
            }
            let mut out = [0u64; 3];
            for (i, slot) in out.iter_mut().enumerate() {
                if i as Py_ssize_t >= PyList_Size(stats.as_ptr()) {
                    break;
                }
                // Borrowed references.
                let d = PyList_GetItem(stats.as_ptr(), i as Py_ssize_t);
                let n = PyDict_GetItemString(d, c"collections".as_ptr());
                if n.is_null() {
                    return None;
                }
                *slot = PyLong_AsUnsignedLongLong(n);
            }
            Some(out)
        })();
        if r.is_none() {
            PyErr_Clear();
        }
        r
    }
}
