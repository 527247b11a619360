//! `WSGIDispatchScript` in the Apache child: before a request is run (in
//! this process or relayed to a daemon), the script chooses its process
//! group, application group and callable object. It runs in this child,
//! in the interpreter of its own `application-group=` (default the main
//! one), as mod_wsgi runs it, so it works in daemon mode too (Python is
//! started in the children for it even with `WSGIRestrictEmbedded On`).

use super::request::{application_group, expand_application_group_of, gather_facts};
use super::{Level, LogTarget};
use crate::config::RequestSettings;
use crate::ffi;
use crate::python::child_script::ChildScript;
use crate::python::dispatch;
use crate::wsgi::environ::for_each_pair;
use std::ffi::c_int;

/// The settings of `r` after its dispatch script, if it has one:
/// `Ok(None)` without a script, `Ok(Some(new))` with one, `Err(status)`
/// (500, logged) when the script failed.
///
/// # Safety
/// `r` must be the live request of the calling handler.
pub unsafe fn dispatch(
    r: *mut ffi::request_rec,
    settings: &RequestSettings,
) -> Result<Option<RequestSettings>, c_int> {
    let Some(spec) = settings.more.dispatch_script.as_deref() else {
        return Ok(None);
    };
    let log = LogTarget::Request(r);
    // It runs in the interpreter of its own application-group, as mod_wsgi.
    let own_group = expand_application_group_of(r, &spec.application_group);
    let rt = match crate::python::runtime() {
        Ok(_) => match crate::python::runtime_for(&own_group) {
            Ok(rt) => rt,
            Err(e) => {
                log.log(
                    Level::Error,
                    &format!(
                        "RWSGI0070: cannot run WSGIDispatchScript {:?}: {e}",
                        spec.path
                    ),
                );
                return Err(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int);
            }
        },
        Err(e) => {
            log.log(
                Level::Error,
                &format!("RWSGI0070: cannot run WSGIDispatchScript {:?}: Python is not available in this process: {e}", spec.path),
            );
            return Err(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int);
        }
    };
    let app_group = application_group(r, settings);
    let facts = gather_facts(r, settings, &app_group);
    let mut environ = Vec::with_capacity(48);
    for_each_pair(&facts, &mut |k, v| environ.push((k.to_vec(), v.to_vec())));
    let call = ChildScript {
        directive: "WSGIDispatchScript",
        script: &spec.path,
        reload: settings.script_reloading,
        environ: &environ,
        application_group: &own_group,
        request_rec: if settings.more.pass_apache_request {
            r as *mut std::ffi::c_void
        } else {
            std::ptr::null_mut()
        },
        log,
    };
    let choice = dispatch::run(rt, &call).map_err(|_| ffi::HTTP_INTERNAL_SERVER_ERROR as c_int)?;
    let mut chosen = settings.clone();
    if let Some(g) = choice.process_group {
        chosen.process_group = if rwsgi_core::directives::is_embedded_group(&g) {
            String::new()
        } else {
            g
        };
    }
    if let Some(a) = choice.application_group {
        chosen.application_group = a;
    }
    if let Some(c) = choice.callable_object {
        chosen.callable_object = c;
    }
    Ok(Some(chosen))
}
