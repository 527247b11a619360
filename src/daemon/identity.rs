//! The identity a daemon process takes before Python starts (mod_wsgi
//! WSGIDaemonProcess user, group, supplementary-groups, umask, home, lang,
//! locale, python-eggs, chroot, cpu-priority, memory-limit,
//! virtual-memory-limit, cpu-time-limit), and the checks made of it
//! (never root; script-user / script-group).

use super::Group;
use crate::ffi;
use nix::unistd::{Gid, Uid};
use rwsgi_core::daemon_config::Principal;

pub fn resolve_user(p: &Principal) -> Result<nix::unistd::User, String> {
    let found = match p {
        Principal::Name(n) => nix::unistd::User::from_name(n),
        Principal::Id(id) => nix::unistd::User::from_uid(Uid::from_raw(*id)),
    };
    found
        .map_err(|e| format!("looking up user {p:?}: {e}"))?
        .ok_or_else(|| format!("user {p:?} does not exist"))
}

pub fn resolve_group(p: &Principal) -> Result<Gid, String> {
    match p {
        Principal::Id(id) => Ok(Gid::from_raw(*id)),
        Principal::Name(n) => nix::unistd::Group::from_name(n)
            .map_err(|e| format!("looking up group {n:?}: {e}"))?
            .map(|g| g.gid)
            .ok_or_else(|| format!("group {n:?} does not exist")),
    }
}

/// mod_wsgi WSGIDaemonProcess script-user / script-group: the WSGI script
/// `script` must be owned by that user (or group). Errors (a 403 for the
/// caller) say who owns it and who must.
pub fn check_script_owner(
    group: &rwsgi_core::daemon_config::DaemonProcess,
    script: &str,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if group.script_user.is_none() && group.script_group.is_none() {
        return Ok(());
    }
    let meta = std::fs::metadata(script).map_err(|e| format!("cannot stat it: {e}"))?;
    if let Some(p) = &group.script_user {
        let want = resolve_user(p)?.uid.as_raw();
        if meta.uid() != want {
            return Err(format!(
                "it is owned by uid {}, and script-user={p:?} (uid {want}) of group {:?} requires that owner",
                meta.uid(),
                group.name
            ));
        }
    }
    if let Some(p) = &group.script_group {
        let want = resolve_group(p)?.as_raw();
        if meta.gid() != want {
            return Err(format!(
                "its group is gid {}, and script-group={p:?} (gid {want}) of group {:?} requires that group",
                meta.gid(),
                group.name
            ));
        }
    }
    Ok(())
}

/// The user a group's daemons run as: `user=`, else Apache's `User`
/// (when Apache runs as root; otherwise the user Apache runs as).
pub fn daemon_user(
    group: &rwsgi_core::daemon_config::DaemonProcess,
) -> Result<nix::unistd::User, String> {
    match &group.user {
        Some(p) => resolve_user(p),
        None if Uid::effective().is_root() => {
            // SAFETY: mod_unixd's configuration is set once the
            // configuration is read.
            resolve_user(&Principal::Id(unsafe { ffi::ap_unixd_config.user_id }))
        }
        None => resolve_user(&Principal::Id(Uid::effective().as_raw())),
    }
}

/// Fails when a group's daemons would run application code as root.
pub fn check_not_root(group: &rwsgi_core::daemon_config::DaemonProcess) -> Result<(), String> {
    let user = daemon_user(group)
        .map_err(|e| format!("RWSGI0042: WSGIDaemonProcess {:?}: {e}", group.name))?;
    if user.uid.is_root() {
        return Err(format!(
            "RWSGI0042: WSGIDaemonProcess {:?} would run the application as root: set user= on it (or Apache's User) to an unprivileged user",
            group.name
        ));
    }
    Ok(())
}

/// Takes the group's identity: groups, user (never root), umask, working
/// directory.
pub unsafe fn take_identity(group: &Group) -> Result<(), String> {
    let user = daemon_user(&group.config)?;
    let gid = match &group.config.group {
        Some(g) => resolve_group(g)?,
        None if group.config.user.is_some() => user.gid,
        None => Gid::from_raw(ffi::ap_unixd_config.group_id),
    };
    if user.uid.is_root() {
        return Err(format!(
            "it would run as root; set user= on WSGIDaemonProcess {:?} (or Apache's User) to an unprivileged user",
            group.config.name
        ));
    }
    let c = &group.config;
    if c.cpu_priority != 0 {
        // mod_wsgi cpu-priority; a negative one needs root, so before the
        // user changes.
        if libc::setpriority(libc::PRIO_PROCESS, 0, c.cpu_priority) != 0 {
            return Err(format!(
                "setpriority({}): {}",
                c.cpu_priority,
                std::io::Error::last_os_error()
            ));
        }
    }
    set_limits(c)?;
    if let Some(dir) = &c.chroot {
        if !Uid::effective().is_root() {
            return Err(format!("chroot={dir:?} needs Apache to start as root"));
        }
        nix::unistd::chroot(dir.as_str()).map_err(|e| format!("chroot({dir:?}): {e}"))?;
        std::env::set_current_dir("/").map_err(|e| format!("chdir(/) in {dir:?}: {e}"))?;
    }
    if Uid::effective().is_root() {
        let mut gids = vec![gid];
        for g in &group.config.supplementary_groups {
            gids.push(resolve_group(g)?);
        }
        nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups: {e}"))?;
        nix::unistd::setgid(gid).map_err(|e| format!("setgid({gid}): {e}"))?;
        nix::unistd::setuid(user.uid).map_err(|e| format!("setuid({}): {e}", user.uid))?;
    } else if Uid::effective() != user.uid {
        return Err(format!(
            "user {} requested but Apache does not run as root",
            user.name
        ));
    }
    if let Some(mask) = group.config.umask {
        libc::umask(mask as libc::mode_t);
    }
    let home = group
        .config
        .home
        .clone()
        .unwrap_or_else(|| user.dir.display().to_string());
    if std::env::set_current_dir(&home).is_err() {
        // mod_wsgi falls back to / when the user's home is not usable.
        if group.config.home.is_some() {
            return Err(format!("cannot change to home directory {home:?}"));
        }
        let _ = std::env::set_current_dir("/");
    }
    // mod_wsgi lang= / locale=: before Python starts, which reads them.
    if let Some(lang) = &c.lang {
        std::env::set_var("LANG", lang);
    }
    if let Some(locale) = &c.locale {
        std::env::set_var("LC_ALL", locale);
        if let Ok(l) = std::ffi::CString::new(locale.as_str()) {
            // As mod_wsgi: a warning, not a refusal (mod_wsgi-express writes
            // locale='en_US.UTF-8' whether the system has it or not).
            if libc::setlocale(libc::LC_ALL, l.as_ptr()).is_null() {
                crate::apache::log_s(
                    std::ptr::null(),
                    crate::apache::Level::Warn,
                    0,
                    &format!(
                        "RWSGI0062: daemon process {} of group {:?}: locale={locale:?} is not available on this system (setlocale failed); Python keeps the C locale (in UTF-8 mode). Install that locale, or use locale=C.UTF-8",
                        std::process::id(),
                        c.name
                    ),
                );
            }
        }
    }
    if let Some(eggs) = &c.python_eggs {
        std::env::set_var("PYTHON_EGG_CACHE", eggs);
    }
    std::env::set_var("HOME", &user.dir);
    std::env::set_var("USER", &user.name);
    std::env::set_var("LOGNAME", &user.name);
    Ok(())
}

/// The resource limits of mod_wsgi's WSGIDaemonProcess: memory-limit
/// (`RLIMIT_DATA`, bytes), virtual-memory-limit (`RLIMIT_AS`, bytes),
/// cpu-time-limit (`RLIMIT_CPU` soft limit, seconds: SIGXCPU then, which
/// recycles the process). Hard limits stay as they are.
pub fn set_limits(c: &rwsgi_core::daemon_config::DaemonProcess) -> Result<(), String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let set = |res: Resource, what: &str, soft: u64| -> Result<(), String> {
        if soft == 0 {
            return Ok(());
        }
        let (_, hard) = getrlimit(res).map_err(|e| format!("getrlimit for {what}: {e}"))?;
        setrlimit(res, soft.min(hard), hard).map_err(|e| format!("{what}={soft}: {e}"))
    };
    set(Resource::RLIMIT_DATA, "memory-limit", c.memory_limit)?;
    set(
        Resource::RLIMIT_AS,
        "virtual-memory-limit",
        c.virtual_memory_limit,
    )?;
    // At least a second: a sub-second limit is not "no limit".
    let cpu = match c.cpu_time_limit.as_secs() {
        0 if !c.cpu_time_limit.is_zero() => 1,
        n => n,
    };
    set(Resource::RLIMIT_CPU, "cpu-time-limit", cpu)
}
