//! A daemon process of a process group, from the fork in the Apache parent
//! to its exit: shed what it inherited from Apache (listening sockets,
//! signal handlers), take the group's identity (user, groups, umask,
//! working directory, process title), start Python, then serve: one poller
//! thread watches the group's listening socket and the idle pooled
//! connections (epoll), and `threads` workers each serve one request at a
//! time from the connections that became readable. An idle connection
//! holds no thread. SIGTERM (Apache stopping or restarting) drains: no new
//! request starts, those running get up to `shutdown-timeout`.

use super::serve::{self, ConnState, Context, SharedConn};
use super::supervisor::{self, Role};
use super::{Conn, Group};
use crate::apache::{self, Level};
use crate::ffi;
use crate::python;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use nix::unistd::{Gid, Uid};
use rwsgi_core::daemon_config::Principal;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How a daemon process ends: the exit status the Apache parent reads back
/// (see `supervisor`), so it can tell an exit from a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// Drained after SIGTERM, or recycled.
    Normal = 0,
    /// Could not take the group's identity or start Python.
    Startup = 3,
    /// The GIL could not be taken for deadlock-timeout.
    Deadlock = 4,
}

fn log(msg: &str) {
    apache::log_s(std::ptr::null(), Level::Error, 0, msg);
}

/// The signals a daemon process waits for (blocked in every thread, taken
/// by the main thread's `sigwait`): SIGTERM/SIGHUP (stop), SIGINT
/// (restart, as mod_wsgi), SIGUSR1 (retired: drain), SIGUSR2 (standby:
/// start; serving: the Apache parent restarted), SIGXCPU (cpu-time-limit).
pub fn daemon_signals() -> SigSet {
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGXCPU,
    ] {
        mask.add(sig);
    }
    mask
}

/// Ends the daemon process: marks the exit as ours for the Apache parent
/// and leaves without running any of Apache's exit code.
pub fn exit(slot: &super::supervisor::SlotInfo, code: ExitCode) -> ! {
    slot.mark_exit(code as i32);
    // SAFETY: _exit ends the process at once.
    unsafe { libc::_exit(code as i32) }
}

/// Runs the daemon process `slot` of `group` in the freshly forked child.
/// Never returns.
///
/// # Safety
/// Call in the child right after the fork from the Apache parent, where no
/// other thread exists.
pub unsafe fn run(
    slot: &super::supervisor::SlotInfo,
    group: Arc<Group>,
    server: *mut ffi::server_rec,
    cfg: &crate::config::ServerConfig,
    delay: Duration,
) -> ! {
    slot.adopt();
    // Apache's signal handlers (restart, graceful) are the parent's: here
    // the signals must reach our own wait below.
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGWINCH,
    ] {
        let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
    }
    let _ = nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn);
    let mask = daemon_signals();
    let _ = mask.thread_block();
    // Out of Apache's process group: the prefork MPM signals the whole
    // group at a restart (SIGHUP, SIGUSR1), which are not for daemons.
    let _ = nix::unistd::setpgid(nix::unistd::Pid::from_raw(0), nix::unistd::Pid::from_raw(0));
    slot.record_pid();
    let _ = HANDOVER.set((slot.slot(), slot.group_slots()));
    // Apache's listening sockets and the other groups' sockets are not ours.
    ffi::ap_close_listeners();
    for other in super::groups() {
        if other.listen_fd != group.listen_fd {
            libc::close(other.listen_fd);
        }
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let name = group.config.name.clone();
    set_title(&group.config.display_title());
    let parent = nix::unistd::getppid();
    if let Err(e) = take_identity(&group) {
        log(&format!(
            "RWSGI0042: daemon process of group {name:?} (pid {}) cannot start: {e}",
            std::process::id()
        ));
        exit(slot, ExitCode::Startup);
    }
    // If the Apache parent dies (crash, SIGKILL), drain and go rather than
    // live on as an orphan holding the group's socket. Set after the user
    // change, which clears it.
    libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGTERM as libc::c_ulong,
        0,
        0,
        0,
    );
    if nix::unistd::getppid() != parent {
        exit(slot, ExitCode::Normal);
    }
    // A standby waits here, without Python, until a daemon of its group
    // hands over to it (SIGUSR2); any other signal ends it.
    let activated = matches!(
        supervisor::role(slot.slot()),
        Role::Standby | Role::Retiring
    );
    if activated {
        supervisor::set_role(slot.slot(), Role::Standby);
        set_title(&format!("(wsgi-standby:{name})"));
        if mask.wait() != Ok(Signal::SIGUSR2) {
            exit(slot, ExitCode::Normal);
        }
        set_title(&group.config.display_title());
    }
    let mut python_path = cfg.python_path.clone();
    python_path.extend(group.config.python_path.iter().cloned());
    let opts = python::InitOptions {
        python_home: group
            .config
            .python_home
            .clone()
            .or_else(|| cfg.python_home.clone()),
        python_path,
        import_scripts: preload(cfg, &name),
        info: crate::wsgi::module::ProcessInfo {
            process_group: name.clone(),
            multithread: group.config.threads > 1,
            multiprocess: group.config.processes > 1 || group.config.processes_given,
            maximum_processes: group.config.processes as i64,
            threads_per_process: group.config.threads.max(1) as i64,
        },
    };
    if let Err(e) = python::init_daemon(&opts) {
        log(&format!(
            "RWSGI0043: daemon process of group {name:?} (pid {}) cannot start Python: {e}",
            std::process::id()
        ));
        exit(slot, ExitCode::Startup);
    }
    let Ok(rt) = python::runtime() else {
        exit(slot, ExitCode::Startup)
    };
    if let Some(interval) = group.config.switch_interval {
        if let Err(e) = python::set_switch_interval(rt, interval.as_secs_f64()) {
            log(&format!(
                "RWSGI0043: daemon process of group {name:?}: sys.setswitchinterval({}) failed: {e}",
                interval.as_secs_f64()
            ));
        }
    }
    apache::log_s(
        server,
        Level::Info,
        0,
        &format!(
            "RWSGI0044: daemon process {} of group {name:?} started ({} threads)",
            std::process::id(),
            group.config.threads
        ),
    );
    let pool = Arc::new(Pool::new(&group));
    let cx = Arc::new(Context {
        rt,
        group: Arc::clone(&group),
        server,
        restarts: slot.restarts(),
        last_activity: Arc::clone(&pool.last_activity),
    });
    for worker in 0..group.config.threads.max(1) as usize {
        let (pool, cx) = (Arc::clone(&pool), Arc::clone(&cx));
        let mut builder = std::thread::Builder::new().name(format!("wsgi-{worker}"));
        if let Some(size) = group.config.stack_size {
            // mod_wsgi WSGIDaemonProcess stack-size: of each request thread.
            builder = builder.stack_size(size as usize);
        }
        if let Err(e) = builder.spawn(move || pool.work(worker, &cx)) {
            log(&format!(
                "RWSGI0043: daemon process of group {name:?} cannot start request thread {worker}: {e}"
            ));
            exit(slot, ExitCode::Startup);
        }
    }
    {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.poll());
    }
    {
        let (pool, cx) = (Arc::clone(&pool), Arc::clone(&cx));
        std::thread::spawn(move || super::watchdog::watch(&pool, &cx));
    }
    // Ready: it accepts requests with the application imported, so the
    // process it replaces may go (zero-downtime replacement).
    if activated {
        if let Some(old) = supervisor::handover_from(slot.slot()) {
            let pid = supervisor::slot_pid(old);
            supervisor::swap_roles(slot.slot(), old);
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR1);
            }
        }
    } else if slot.restarts() == 0 {
        super::retire::retire_predecessors(&name, slot.index(), group.config.processes as usize);
    }
    let evicted = loop {
        match mask.wait() {
            Ok(Signal::SIGXCPU) => {
                apache::log_s(
                    server,
                    Level::Info,
                    0,
                    &format!(
                        "RWSGI0053: daemon process {} of group {name:?} used cpu-time-limit ({} s of CPU); replacing it",
                        std::process::id(),
                        group.config.cpu_time_limit.as_secs()
                    ),
                );
                recycle(&pool, Recycle::CPU_TIME);
            }
            // mod_wsgi: SIGINT asks a daemon to restart (the reloader of
            // rwsgi-express --reload-on-changes sends it).
            Ok(Signal::SIGINT) => recycle(&pool, Recycle::RELOAD),
            // The Apache parent restarted: the next generation's daemons
            // retire this one once ready; if none does, it goes anyway.
            Ok(Signal::SIGUSR2) => {
                let wait = group.config.startup_timeout.max(Duration::from_secs(60));
                std::thread::spawn(move || {
                    std::thread::sleep(wait);
                    let _ = nix::sys::signal::kill(nix::unistd::getpid(), Signal::SIGUSR1);
                });
            }
            // Retired by its successor, or evicted.
            Ok(Signal::SIGUSR1) => break true,
            _ => break false,
        }
    };
    // Replaced on the process's own initiative: it drains within
    // graceful-timeout; evicted at a restart, within eviction-timeout
    // (else graceful-timeout); a stop or a request-timeout, within
    // shutdown-timeout.
    let c = &group.config;
    let drain = match pool.recycle.load(Ordering::SeqCst) {
        Recycle::REQUEST_TIMEOUT => c.shutdown_timeout,
        Recycle::NONE if evicted && !c.eviction_timeout.is_zero() => c.eviction_timeout,
        Recycle::NONE if !evicted => c.shutdown_timeout,
        _ => c.graceful_timeout,
    };
    pool.shutdown(drain);
    python::shutdown();
    exit(slot, ExitCode::Normal)
}

/// Why a daemon process ends itself ([`Pool::recycle`]).
pub struct Recycle;

impl Recycle {
    /// Not on its own initiative (SIGTERM from the Apache parent).
    pub const NONE: u8 = 0;
    /// It served `maximum-requests` requests.
    pub const MAX_REQUESTS: u8 = 1;
    /// A request ran longer than `request-timeout`.
    pub const REQUEST_TIMEOUT: u8 = 2;
    /// No request for `inactivity-timeout`.
    pub const INACTIVITY: u8 = 3;
    /// It ran for `restart-interval`.
    pub const RESTART_INTERVAL: u8 = 4;
    /// Its WSGI script kept failing to load for `startup-timeout`.
    pub const STARTUP: u8 = 5;
    /// It used `cpu-time-limit` seconds of CPU (SIGXCPU).
    pub const CPU_TIME: u8 = 6;
    /// It was asked to restart (SIGINT, as mod_wsgi).
    pub const RELOAD: u8 = 7;
}

/// This process's slot and its group's slots, for the handover.
static HANDOVER: std::sync::OnceLock<(usize, std::ops::Range<usize>)> = std::sync::OnceLock::new();

/// Ends this daemon process gracefully for `why` (a [`Recycle`] value): the
/// main thread's signal wait returns and drains; the Apache parent starts
/// a replacement when it exits.
pub fn recycle(pool: &Pool, why: u8) {
    if pool
        .recycle
        .compare_exchange(Recycle::NONE, why, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        // Zero-downtime: the group's standby starts and imports the
        // application, then retires this process (SIGUSR1), which serves
        // until then. Without a standby, or if it does not come in time,
        // the process drains now and the parent starts a new one.
        let me = nix::unistd::getpid();
        let Some((mine, slots)) = HANDOVER.get().cloned() else {
            let _ = nix::sys::signal::kill(me, Signal::SIGTERM);
            return;
        };
        let wait = pool.startup_wait;
        // The standby may be busy replacing another daemon of the group, or
        // still starting: keep serving and try again until `wait` is over.
        std::thread::spawn(move || {
            let deadline = Instant::now() + wait;
            while Instant::now() < deadline {
                if let Some((standby, pid)) = supervisor::claim_standby(slots.clone(), mine) {
                    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR2)
                        .is_ok()
                    {
                        // Retired by SIGUSR1 once the standby is ready.
                        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                        break;
                    }
                    supervisor::release_standby(standby);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // Process-directed, so the main thread's wait takes it (every
            // thread has SIGTERM blocked).
            let _ = nix::sys::signal::kill(me, Signal::SIGTERM);
        });
    }
}

/// Scripts a daemon of group `name` imports at start, before it takes
/// requests: its `WSGIImportScript`s, and (as mod_wsgi) the script of every
/// `WSGIScriptAlias` naming both `process-group=` this group and an
/// `application-group=`, so no request waits for the import.
fn preload(cfg: &crate::config::ServerConfig, name: &str) -> Vec<String> {
    use rwsgi_core::directives::AliasPattern;
    let mut out: Vec<String> = cfg
        .import_scripts
        .iter()
        .filter(|i| i.options.process_group.as_deref() == Some(name))
        .map(|i| i.path.clone())
        .collect();
    for alias in &cfg.aliases {
        let o = &alias.options;
        if o.process_group.as_deref() == Some(name)
            && o.application_group.is_some()
            && matches!(alias.pattern, AliasPattern::Prefix(_))
            && std::path::Path::new(&alias.target).is_file()
            && !out.contains(&alias.target)
        {
            out.push(alias.target.clone());
        }
    }
    out
}

/// Sets the process title shown by ps: the comm name (15 bytes) and, in
/// place, the command line Apache was started with.
unsafe fn set_title(title: &str) {
    if let Ok(c) = std::ffi::CString::new(title) {
        libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0);
    }
    let process = (*ffi::ap_server_conf).process;
    if process.is_null() || (*process).argc < 1 {
        return;
    }
    let argv = (*process).argv as *const *mut libc::c_char;
    let first = *argv;
    // The whole argument block (Apache's process->argv may leave out
    // arguments it consumed, such as `-k start`): its size is that of
    // /proc/self/cmdline, NUL-terminated strings from argv[0] on.
    let room = match std::fs::read("/proc/self/cmdline") {
        Ok(block) if !block.is_empty() => block.len() - 1,
        _ => {
            let last = *argv.add((*process).argc as usize - 1);
            last.add(libc::strlen(last)).offset_from(first) as usize
        }
    };
    // The argument strings must be one contiguous block to be rewritten.
    if room == 0 || room > 64 * 1024 {
        return;
    }
    let n = title.len().min(room);
    std::ptr::copy_nonoverlapping(title.as_ptr(), first as *mut u8, n);
    std::ptr::write_bytes(first.add(n), 0, room + 1 - n);
}

pub fn resolve_user(p: &Principal) -> Result<nix::unistd::User, String> {
    let found = match p {
        Principal::Name(n) => nix::unistd::User::from_name(n),
        Principal::Id(id) => nix::unistd::User::from_uid(Uid::from_raw(*id)),
    };
    found
        .map_err(|e| format!("looking up user {p:?}: {e}"))?
        .ok_or_else(|| format!("user {p:?} does not exist"))
}

fn resolve_group(p: &Principal) -> Result<Gid, String> {
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
unsafe fn take_identity(group: &Group) -> Result<(), String> {
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
            if libc::setlocale(libc::LC_ALL, l.as_ptr()).is_null() {
                return Err(format!(
                    "locale={locale:?} is not available (setlocale failed)"
                ));
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
fn set_limits(c: &rwsgi_core::daemon_config::DaemonProcess) -> Result<(), String> {
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

/// The connections of a daemon process and the threads serving them.
pub struct Pool {
    epoll: Epoll,
    /// The group's listening socket; closed when draining starts.
    listener: Mutex<Option<UnixListener>>,
    socket_timeout: Duration,
    child_uid: u32,
    group: String,
    /// Connections, idle (registered with epoll) or being served.
    conns: Mutex<HashMap<RawFd, SharedConn>>,
    ready: Mutex<VecDeque<RawFd>>,
    ready_cv: Condvar,
    /// Workers serving a request (changed under the `ready` lock).
    busy: AtomicUsize,
    /// Worker threads.
    threads: usize,
    /// Connections accepted whose first request no worker took yet: each
    /// holds a thread (they are accepted only when one is free), so the
    /// connection waiting in the backlog is the request's queue.
    fresh: Mutex<std::collections::HashSet<RawFd>>,
    /// Whether the listening socket is armed in epoll (one-shot: it is
    /// armed again only while a thread is free).
    listener_armed: AtomicBool,
    stopping: AtomicBool,
    limits: rwsgi_core::wire::Limits,
    /// Per worker: when its request started, and its connection.
    pub active: Mutex<Vec<Option<(Instant, SharedConn)>>>,
    /// Requests served (for maximum-requests).
    done: std::sync::atomic::AtomicU64,
    /// Per worker: its thread's `pthread_self()` (Python's thread ident).
    idents: Vec<std::sync::atomic::AtomicU64>,
    /// When the last request started or ended (inactivity-timeout).
    last_activity: Arc<Mutex<Instant>>,
    /// uid besides Apache's children (and root) allowed to connect:
    /// `socket-user`.
    socket_uid: Option<u32>,
    receive_buffer: Option<u32>,
    send_buffer: Option<u32>,
    /// How long a handover may take before the process drains anyway.
    startup_wait: Duration,
    maximum_requests: u64,
    /// Why the process ends itself, a [`Recycle`] value.
    pub recycle: std::sync::atomic::AtomicU8,
}

/// epoll data of the listening socket (connections use their descriptor).
const LISTENER: u64 = u64::MAX;

impl Pool {
    fn new(group: &Group) -> Pool {
        // SAFETY: the listening descriptor belongs to this process now.
        let listener = unsafe { UnixListener::from_raw_fd(group.listen_fd) };
        let _ = listener.set_nonblocking(true);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll_create");
        epoll
            .add(
                &listener,
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER),
            )
            .expect("epoll_ctl");
        Pool {
            epoll,
            listener: Mutex::new(Some(listener)),
            socket_timeout: group.socket_timeout,
            child_uid: group.child_uid,
            group: group.config.name.clone(),
            conns: Mutex::new(HashMap::new()),
            ready: Mutex::new(VecDeque::new()),
            ready_cv: Condvar::new(),
            busy: AtomicUsize::new(0),
            threads: group.config.threads.max(1) as usize,
            fresh: Mutex::new(std::collections::HashSet::new()),
            listener_armed: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            limits: super::limits(&group.config),
            active: Mutex::new(vec![None; group.config.threads.max(1) as usize]),
            done: std::sync::atomic::AtomicU64::new(0),
            idents: (0..group.config.threads.max(1))
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            last_activity: Arc::new(Mutex::new(Instant::now())),
            socket_uid: group
                .config
                .socket_user
                .as_ref()
                .and_then(|p| resolve_user(p).ok())
                .map(|u| u.uid.as_raw()),
            receive_buffer: group.config.receive_buffer_size,
            startup_wait: group.config.startup_timeout.max(Duration::from_secs(30)),
            send_buffer: group.config.send_buffer_size,
            maximum_requests: group.config.maximum_requests as u64,
            recycle: std::sync::atomic::AtomicU8::new(Recycle::NONE),
        }
    }

    fn arm(&self, fd: RawFd) {
        // SAFETY: fd is an open connection held in `conns`.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
        let _ = self
            .epoll
            .modify(bfd, &mut EpollEvent::new(flags, fd as u64));
    }

    /// The Python thread ident of `worker`'s thread (0 before it ran).
    pub fn thread_ident(&self, worker: usize) -> u64 {
        self.idents
            .get(worker)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// How long no request has run, or `None` while one runs or waits.
    pub fn idle_for(&self) -> Option<Duration> {
        let q = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        if self.busy.load(Ordering::SeqCst) > 0 || !q.is_empty() {
            return None;
        }
        drop(q);
        Some(
            self.last_activity
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed(),
        )
    }

    /// Threads free for one more request, given the queue (locked).
    fn free_threads(&self, ready: &VecDeque<RawFd>) -> usize {
        // A fresh connection queued counts once: it is still reserved.
        let fresh = self.fresh.lock().unwrap_or_else(|e| e.into_inner());
        let queued = ready.iter().filter(|fd| !fresh.contains(fd)).count();
        self.threads
            .saturating_sub(self.busy.load(Ordering::SeqCst) + queued + fresh.len())
    }

    /// Arms the listening socket again if it is not and a thread is free.
    fn arm_listener_if_free(&self) {
        let free = {
            let q = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            self.free_threads(&q)
        };
        if free > 0
            && self
                .listener_armed
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.arm_listener();
        }
    }

    fn arm_listener(&self) {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = listener.as_ref() {
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT;
            let _ = self.epoll.modify(l, &mut EpollEvent::new(flags, LISTENER));
        }
    }

    /// A request on a kept-alive connection while every thread is busy:
    /// answered "busy" (not run), so the Apache child sends it on a new
    /// connection, which a daemon process with a free thread accepts.
    fn refuse_busy(&self, fd: RawFd) {
        let conn = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fd)
            .cloned();
        let Some(conn) = conn else { return };
        let ok = {
            let mut st = conn.lock().unwrap_or_else(|e| e.into_inner());
            serve::refuse_busy(&mut st.conn)
        };
        if ok {
            self.arm(fd);
        } else {
            self.close(fd);
        }
    }

    fn close(&self, fd: RawFd) {
        let removed = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fd);
        if let Some(c) = removed {
            // SAFETY: fd is this connection's descriptor, still open.
            let _ = self.epoll.delete(unsafe { BorrowedFd::borrow_raw(fd) });
            drop(c);
        }
    }

    /// The poller thread: accepts connections (checking the peer's uid)
    /// while a thread is free, and hands readable ones to the workers.
    fn poll(&self) {
        let mut events = [EpollEvent::empty(); 64];
        while !self.stopping.load(Ordering::Relaxed) {
            let n = match self.epoll.wait(&mut events, EpollTimeout::from(200u16)) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            for ev in &events[..n] {
                if ev.data() == LISTENER {
                    self.listener_armed.store(false, Ordering::SeqCst);
                    if self.accept_all() {
                        self.arm_listener_if_free();
                    }
                } else {
                    let fd = ev.data() as RawFd;
                    let mut q = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                    let fresh = self
                        .fresh
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(&fd);
                    if !fresh && self.free_threads(&q) == 0 {
                        drop(q);
                        self.refuse_busy(fd);
                        continue;
                    }
                    q.push_back(fd);
                    drop(q);
                    self.ready_cv.notify_one();
                }
            }
        }
    }

    /// Accepts while a thread is free. Returns whether it stopped because
    /// none was left to accept (rather than for want of a thread).
    fn accept_all(&self) -> bool {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        let Some(listener) = listener.as_ref() else {
            return false;
        };
        loop {
            let free = {
                let q = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                self.free_threads(&q)
            };
            if free == 0 {
                return false;
            }
            let Ok((stream, _)) = listener.accept() else {
                return true;
            };
            let peer = getsockopt(&stream, sockopt::PeerCredentials);
            let uid = peer.as_ref().map(|c| c.uid()).unwrap_or(u32::MAX);
            if uid != self.child_uid && uid != 0 && Some(uid) != self.socket_uid {
                let pid = peer.map(|c| c.pid()).unwrap_or(0);
                log(&format!(
                    "RWSGI0045: daemon process {} of group {:?} refused a connection from uid {uid} (pid {pid}): only Apache's children (uid {}) may connect",
                    std::process::id(),
                    self.group,
                    self.child_uid
                ));
                continue;
            }
            let _ = stream.set_nonblocking(false);
            // mod_wsgi receive-buffer-size / send-buffer-size.
            if let Some(n) = self.receive_buffer {
                let _ = setsockopt(&stream, sockopt::RcvBuf, &(n as usize));
            }
            if let Some(n) = self.send_buffer {
                let _ = setsockopt(&stream, sockopt::SndBuf, &(n as usize));
            }
            let t = Some(self.socket_timeout).filter(|t| !t.is_zero());
            let _ = stream.set_read_timeout(t);
            let _ = stream.set_write_timeout(t);
            let mut hello = rwsgi_core::wire::Encoder::new();
            hello.hello(std::process::id());
            if std::io::Write::write_all(&mut &stream, &hello.buf).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
            let conn = Arc::new(Mutex::new(ConnState {
                conn: Conn::new(stream, self.limits),
                broken: false,
            }));
            self.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(fd, conn);
            self.fresh
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(fd);
            // SAFETY: fd is the stream just stored in `conns`.
            let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = self.epoll.add(bfd, EpollEvent::new(flags, fd as u64));
        }
    }

    /// A worker thread (number `worker`): serves requests from readable
    /// connections.
    fn work(&self, worker: usize, cx: &Context) {
        // SAFETY: pthread_self has no preconditions.
        let ident = unsafe { libc::pthread_self() } as u64;
        self.idents[worker].store(ident, Ordering::Relaxed);
        loop {
            let fd = {
                let mut q = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(fd) = q.pop_front() {
                        self.busy.fetch_add(1, Ordering::SeqCst);
                        self.fresh
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&fd);
                        break fd;
                    }
                    if self.stopping.load(Ordering::Relaxed) {
                        return;
                    }
                    q = self
                        .ready_cv
                        .wait_timeout(q, Duration::from_millis(200))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            let Some(conn) = self
                .conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&fd)
                .cloned()
            else {
                self.busy.fetch_sub(1, Ordering::SeqCst);
                self.arm_listener_if_free();
                continue;
            };
            let mut keep = true;
            // Serve what is buffered without going back to epoll.
            loop {
                if self.stopping.load(Ordering::Relaxed) {
                    serve::refuse_for_shutdown(
                        &mut conn.lock().unwrap_or_else(|e| e.into_inner()).conn,
                    );
                    keep = false;
                    break;
                }
                self.active.lock().unwrap_or_else(|e| e.into_inner())[worker] =
                    Some((Instant::now(), Arc::clone(&conn)));
                let served = serve::serve_one(&conn, cx);
                self.active.lock().unwrap_or_else(|e| e.into_inner())[worker] = None;
                let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
                if self.maximum_requests > 0 && done == self.maximum_requests {
                    apache::log_s(
                        cx.server,
                        Level::Info,
                        0,
                        &format!(
                            "RWSGI0050: daemon process {} of group {:?} served maximum-requests ({done}); replacing it",
                            std::process::id(),
                            self.group
                        ),
                    );
                    recycle(self, Recycle::MAX_REQUESTS);
                }
                if !served {
                    keep = false;
                    break;
                }
                if !conn
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .conn
                    .has_buffered()
                {
                    break;
                }
            }
            self.busy.fetch_sub(1, Ordering::SeqCst);
            if keep {
                self.arm(fd);
            } else {
                self.close(fd);
            }
            self.arm_listener_if_free();
        }
    }

    /// Stops taking requests, answers those waiting on idle connections
    /// with "shutting down" (the Apache child retries them elsewhere), and
    /// waits up to `timeout` for the requests running.
    fn shutdown(&self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        // Our copy of the listening socket goes at once: connections still
        // queued on it are refused when the last copy closes, and the Apache
        // child retries them on the next daemons.
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = self.epoll.delete(&listener);
        }
        let deadline = Instant::now() + timeout.max(Duration::from_millis(100));
        while self.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let idle: Vec<SharedConn> = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for c in idle {
            if let Ok(mut st) = c.try_lock() {
                let fd = st.conn.stream().as_raw_fd();
                let mut pfd = [libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(pfd.as_mut_ptr(), 1, 0) } > 0 {
                    let _ = setsockopt(
                        st.conn.stream(),
                        sockopt::ReceiveTimeout,
                        &nix::sys::time::TimeVal::new(1, 0),
                    );
                    serve::refuse_for_shutdown(&mut st.conn);
                }
                let _ = st.conn.stream().shutdown(std::net::Shutdown::Both);
            }
        }
    }
}
