//! Scripts that run in Apache's child for one request, around the WSGI
//! application rather than as it: `WSGIDispatchScript` (which process and
//! application group, which callable) and the access and authentication
//! scripts (`WSGIAccessScript`, `WSGIAuthUserScript`,
//! `WSGIAuthGroupScript`), as mod_wsgi runs them. One [`ChildScript`]
//! describes the call; [`ChildScript::run`] loads the script (cached and
//! reloaded as WSGI scripts are), builds its environ, and hands both to the
//! caller's body with the GIL held and the script's output logged against
//! the request.

use super::object::{self, Owned};
use super::{GilGuard, Runtime};
use crate::apache::LogTarget;
use pyo3_ffi::*;
use std::ffi::c_void;

/// One call of a script run in Apache's child.
pub struct ChildScript<'a> {
    /// The directive that named the script (for messages), e.g.
    /// `WSGIDispatchScript`.
    pub directive: &'static str,
    /// The script file.
    pub script: &'a str,
    /// Re-import it when its modification time changed (WSGIScriptReloading).
    pub reload: bool,
    /// The environ items (latin-1 bytes, later names win).
    pub environ: &'a [(Vec<u8>, Vec<u8>)],
    /// The expanded application group (`mod_wsgi.application_group`).
    pub application_group: &'a str,
    /// `apache.request_rec` (WSGIPassApacheRequest), or null.
    pub request_rec: *mut c_void,
    /// Where errors and the script's output go.
    pub log: LogTarget,
}

/// The loaded script and the environ for one call, for the body of
/// [`ChildScript::run`] (which runs with the GIL held).
pub struct Loaded<'a> {
    /// The call.
    pub call: &'a ChildScript<'a>,
    /// The script's module.
    pub module: Owned,
    /// Its environ dict (see [`child_script_environ`]).
    pub environ: Owned,
    id: &'static str,
}

impl Loaded<'_> {
    /// Logs `what` with the Python exception now set (its traceback), under
    /// this call's RWSGI id, and returns it.
    pub fn fail(&self, what: String) -> String {
        // SAFETY: a Loaded exists only for the body of ChildScript::run,
        // which holds the GIL (the body gets it by reference, for any
        // lifetime, so it cannot keep it).
        unsafe { super::log_exception(self.call.log, &format!("{}: {what}", self.id)) };
        what
    }
}

impl ChildScript<'_> {
    /// Loads the script and builds its environ, then runs `body` with the
    /// GIL held and `sys.stdout`/`sys.stderr` logged against the request.
    /// `id` (e.g. `RWSGI0080`) prefixes the lines logged for a script that
    /// cannot be loaded or an environ that cannot be built. Output: what
    /// `body` returns, or the description of the failure (already logged
    /// with its traceback).
    pub fn run<T>(
        &self,
        rt: &Runtime,
        id: &'static str,
        body: impl FnOnce(&Loaded<'_>) -> Result<T, String>,
    ) -> Result<T, String> {
        let gil = GilGuard::acquire(rt);
        let outer = super::replace_log_target(self.log);
        // SAFETY: GIL held for the whole call.
        let result = unsafe { self.load(&gil, rt, id) }.and_then(|l| body(&l));
        super::flush_application_output();
        super::replace_log_target(outer);
        result
    }

    /// # Safety
    /// GIL held (`gil`).
    unsafe fn load(
        &self,
        gil: &super::Gil,
        rt: &Runtime,
        id: &'static str,
    ) -> Result<Loaded<'_>, String> {
        let fail = |what: String| -> String {
            super::log_exception(self.log, &format!("{id}: {what}"));
            what
        };
        let using = super::ScriptUse {
            path: self.script,
            mtime: super::file_mtime_us(self.script),
            reload: self.reload,
            resource: None,
            on_change: super::OnChange::Reload,
            log: self.log,
        };
        let module = super::script_module(gil, rt, &using).map_err(|e| {
            fail(format!(
                "{} {:?} cannot be loaded: {e}",
                self.directive, self.script
            ))
        })?;
        let environ = child_script_environ(self.environ, self.application_group, self.request_rec)
            .ok_or_else(|| fail("cannot build the environ".into()))?;
        Ok(Loaded {
            call: self,
            module,
            environ,
            id,
        })
    }
}

/// The environ dict of a script run in Apache's child (dispatch, access and
/// authentication scripts): `environ` items (latin-1 str, later names
/// win), `mod_wsgi.process_group` '' and `mod_wsgi.application_group`
/// (the script's own), no `mod_wsgi.callable_object`, `wsgi.errors`
/// (`sys.stderr`, logged against the request) and `apache.request_rec`
/// when `request_rec` is not null. `None` (exception set) on failure.
///
/// # Safety
/// GIL held.
pub unsafe fn child_script_environ(
    environ: &[(Vec<u8>, Vec<u8>)],
    application_group: &str,
    request_rec: *mut c_void,
) -> Option<Owned> {
    let env = Owned::new(PyDict_New())?;
    let d = env.as_ptr();
    for (k, v) in environ {
        let key = object::latin1(k);
        PyDict_SetItem(d, key.as_ptr(), object::latin1(v).as_ptr());
    }
    PyDict_SetItemString(
        d,
        c"mod_wsgi.process_group".as_ptr(),
        object::str_from("").as_ptr(),
    );
    PyDict_SetItemString(
        d,
        c"mod_wsgi.application_group".as_ptr(),
        object::str_from(application_group).as_ptr(),
    );
    if PyDict_DelItemString(d, c"mod_wsgi.callable_object".as_ptr()) < 0 {
        PyErr_Clear();
    }
    let sys = Owned::new(PyImport_ImportModule(c"sys".as_ptr()))?;
    if let Some(stderr) = Owned::new(PyObject_GetAttrString(sys.as_ptr(), c"stderr".as_ptr())) {
        PyDict_SetItemString(d, c"wsgi.errors".as_ptr(), stderr.as_ptr());
    } else {
        PyErr_Clear();
    }
    if !request_rec.is_null() {
        if let Some(cap) = Owned::new(PyCapsule_New(request_rec, std::ptr::null(), None)) {
            PyDict_SetItemString(d, c"apache.request_rec".as_ptr(), cap.as_ptr());
        }
    }
    Some(env)
}
