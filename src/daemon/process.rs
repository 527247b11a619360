//! A daemon process of a process group, from the fork in the Apache parent
//! to its exit: shed what it inherited from Apache (listening sockets,
//! signal handlers), take the group's identity (user, groups, umask,
//! working directory, process title), start Python, then serve: one poller
//! thread watches the group's listening socket and the idle pooled
//! connections (epoll), and `threads` workers each serve one request at a
//! time from the connections that became readable. An idle connection
//! holds no thread. SIGTERM (Apache stopping or restarting) drains: no new
//! request starts, those running get up to `shutdown-timeout`.

use super::identity::take_identity;
pub use super::identity::{check_not_root, check_script_owner, resolve_user};
pub use super::pool::Pool;
use super::serve::Context;
use super::shared::Role;
use super::Group;
use crate::apache::{self, Level};
use crate::ffi;
use crate::python;
use nix::sys::signal::{SigSet, Signal};
use std::sync::atomic::Ordering;
use std::sync::Arc;
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

/// The daemon process's main thread, which takes [`daemon_signals`] with
/// `sigwaitinfo`: where [`forward_signal`] sends them.
static MAIN_TID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The handler of [`daemon_signals`]. They are blocked in every thread, so
/// it runs only in a thread that unblocked them for a moment: the
/// application starting a child process (bootstrap.py
/// `_children_get_a_clean_signal_mask`, so the child does not inherit the
/// blocked signals). It queues the signal, with its sender's pid, to the
/// main thread, where it is taken as if it had come there. Only
/// async-signal-safe calls; errno is kept.
extern "C" fn forward_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: errno is thread-local; `info` is the kernel's siginfo for
        // this delivery; rt_tgsigqueueinfo and tgkill are async-signal-safe
        // system calls.
        unsafe {
            let errno = *libc::__errno_location();
            let pid = libc::getpid();
            let tid = MAIN_TID.load(Ordering::Relaxed);
            let mut copy = *info;
            // A negative si_code is what a process may queue to itself
            // from another thread; si_pid and si_uid stay the sender's.
            copy.si_code = libc::SI_QUEUE;
            let queued = libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                pid,
                tid,
                sig,
                &mut copy as *mut libc::siginfo_t,
            );
            if queued != 0 {
                libc::syscall(libc::SYS_tgkill, pid, tid, sig);
            }
            *libc::__errno_location() = errno;
        }
    });
}

/// Installs [`forward_signal`] for [`daemon_signals`] and records this
/// thread as the one that takes them. Call in the main thread, before any
/// other thread exists.
fn install_signal_forwarding() {
    // SAFETY: gettid has no preconditions.
    MAIN_TID.store(unsafe { libc::gettid() }, Ordering::Relaxed);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::SigAction(forward_signal),
        nix::sys::signal::SaFlags::SA_SIGINFO | nix::sys::signal::SaFlags::SA_RESTART,
        SigSet::all(),
    );
    for sig in daemon_signals().iter() {
        // SAFETY: the handler only makes async-signal-safe calls.
        let _ = unsafe { nix::sys::signal::sigaction(sig, &action) };
    }
}

/// Whether SIGTERM, SIGINT or SIGHUP (blocked in this thread) arrives
/// within `wait`; other signals stay pending for later.
fn stop_signal_within(wait: Duration) -> bool {
    let mut stop = SigSet::empty();
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        stop.add(sig);
    }
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: a valid signal set and timespec; no siginfo wanted.
        let n = unsafe { libc::sigtimedwait(stop.as_ref(), std::ptr::null_mut(), &ts) };
        if n > 0 {
            return true;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
}

/// Waits for one of `mask`'s signals (blocked in every thread): the signal
/// and the pid that sent it (0 when the kernel did, or it is unknown).
fn wait_signal(mask: &SigSet) -> (nix::Result<Signal>, i32) {
    // SAFETY: sigwaitinfo fills `info` for a signal of the valid set.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        loop {
            let n = libc::sigwaitinfo(mask.as_ref(), &mut info);
            if n >= 0 {
                return (Signal::try_from(n), info.si_pid());
            }
            if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                return (Err(nix::errno::Errno::last()), 0);
            }
        }
    }
}

/// Hands signal `sig` to the application (mod_wsgi's `process_signal`
/// event) in a thread of its own, so a slow subscriber does not hold up
/// the process's own signals.
fn publish_signal(sig: Signal) {
    let _ = std::thread::Builder::new()
        .name("wsgi-signal".into())
        .spawn(move || python::publish_process_signal(sig as i32));
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
    apache::set_default_log_server(server);
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
    install_signal_forwarding();
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
    // The back-off of a daemon that keeps dying at start: Apache stopping
    // or restarting meanwhile (SIGTERM, SIGINT, SIGHUP) ends the wait and
    // the process at once, rather than after shutdown-timeout.
    if !delay.is_zero() && stop_signal_within(delay) {
        exit(slot, ExitCode::Normal);
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
        super::shared::role(slot.slot()),
        Role::Standby | Role::Retiring
    );
    if activated {
        super::shared::set_role(slot.slot(), Role::Standby);
        set_title(&format!("(wsgi-standby:{name})"));
        if mask.wait() != Ok(Signal::SIGUSR2) {
            exit(slot, ExitCode::Normal);
        }
        set_title(&group.config.display_title());
    }
    let mut python_path = cfg.python_path.clone();
    python_path.extend(group.config.python_path.iter().cloned());
    crate::wsgi::scoreboard::allow(group.config.server_metrics);
    let opts = python::InitOptions {
        python_home: group
            .config
            .python_home
            .clone()
            .or_else(|| cfg.python_home.clone()),
        python_path,
        home: group.config.home.clone(),
        // A service group (threads=0) runs its scripts in a thread of
        // their own once the process is up: they may never return.
        import_scripts: if group.config.threads == 0 {
            Vec::new()
        } else {
            preload(cfg, &name)
        },
        info: crate::wsgi::module::ProcessInfo {
            process_group: name.clone(),
            multithread: group.config.threads > 1,
            multiprocess: group.config.processes > 1 || group.config.processes_given,
            maximum_processes: group.config.processes as i64,
            threads_per_process: group.config.threads.max(1) as i64,
        },
    };
    // Before Python: the sub-interpreters of preloaded scripts count too.
    crate::observe::process::daemon_started(slot.slot(), &name, slot.index(), group.config.threads);
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
            "RWSGI0044: daemon process {} of group {name:?} started ({})",
            std::process::id(),
            match group.config.threads {
                0 => "a service process: threads=0, no requests".to_string(),
                n => format!("{n} threads"),
            }
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
    // Before the request threads exist, so that every request they serve
    // is in the telemetry's counts.
    if group.config.threads > 0 {
        crate::wsgi::telemetry::start(&name, server);
    }
    for worker in 0..Pool::thread_count(&group) {
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
        let (pool, cx) = (Arc::clone(&pool), Arc::clone(&cx));
        std::thread::spawn(move || super::watchdog::watch(&pool, &cx));
    }
    if group.config.threads == 0 {
        let scripts = preload(cfg, &name);
        let _ = std::thread::Builder::new()
            .name("wsgi-service".into())
            .spawn(move || python::run_service_scripts(&scripts));
    }
    // Ready: it accepts requests with the application imported, so the
    // process it replaces may go (zero-downtime replacement).
    if activated {
        if let Some(old) = super::shared::handover_from(slot.slot()) {
            let pid = super::shared::slot_pid(old);
            super::shared::swap_roles(slot.slot(), old);
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR1);
            }
        }
    } else if slot.restarts() == 0 {
        super::retire::retire_predecessors(&name, slot.index(), group.config.processes as usize);
    }
    let parent = nix::unistd::getppid().as_raw();
    let evicted = loop {
        let (signal, sender) = wait_signal(&mask);
        match signal {
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
            // mod_wsgi 6: SIGHUP, and a SIGUSR2 the Apache parent did not
            // send, are the application's: a process_signal event for
            // mod_wsgi.subscribe_signals subscribers.
            Ok(sig @ Signal::SIGHUP) => publish_signal(sig),
            Ok(sig @ Signal::SIGUSR2) if sender != parent => publish_signal(sig),
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
    crate::wsgi::metrics::set_shutdown_reason(shutdown_reason(
        pool.recycle.load(Ordering::SeqCst),
        evicted,
    ));
    // The restart cause of the server's metrics: Recycle's numbering.
    match pool.recycle.load(Ordering::SeqCst) {
        Recycle::NONE => {}
        why => crate::observe::process::set_exit_cause(why as usize),
    }
    pool.shutdown(drain);
    python::shutdown();
    exit(slot, ExitCode::Normal)
}

/// mod_wsgi's `process_stopping` `shutdown_reason` for a [`Recycle`] value
/// (`evicted`: the process got SIGUSR1, a graceful retirement).
fn shutdown_reason(recycle: u8, evicted: bool) -> &'static str {
    match recycle {
        Recycle::MAX_REQUESTS => "maximum_requests",
        Recycle::REQUEST_TIMEOUT => "request_timeout",
        Recycle::INACTIVITY => "inactivity_timeout",
        Recycle::RESTART_INTERVAL => "restart_interval",
        Recycle::STARTUP => "startup_timeout",
        Recycle::CPU_TIME => "cpu_time_limit",
        Recycle::RELOAD => "script_reload",
        _ if evicted => "graceful_signal",
        _ => "shutdown_signal",
    }
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
                if let Some((standby, pid)) = super::shared::claim_standby(slots.clone(), mine) {
                    if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGUSR2)
                        .is_ok()
                    {
                        // Retired by SIGUSR1 once the standby is ready.
                        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                        break;
                    }
                    super::shared::release_standby(standby);
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
fn preload(cfg: &crate::config::ServerConfig, name: &str) -> Vec<(String, String)> {
    use rwsgi_core::directives::AliasPattern;
    let mut out: Vec<(String, String)> = crate::config::import_scripts(cfg)
        .iter()
        .filter(|i| i.options.process_group.as_deref() == Some(name))
        .filter_map(|i| {
            python::import_group(i.options.application_group.as_deref())
                .map(|g| (g, i.path.clone()))
        })
        .collect();
    for alias in &cfg.aliases {
        let o = &alias.options;
        // A group named per request (%{RESOURCE}, ...) is not known yet.
        let Some(group) = o
            .application_group
            .as_deref()
            .and_then(|g| python::import_group(Some(g)))
        else {
            continue;
        };
        let entry = (group, alias.target.clone());
        if o.process_group.as_deref() == Some(name)
            && matches!(alias.pattern, AliasPattern::Prefix(_))
            && std::path::Path::new(&alias.target).is_file()
            && !out.contains(&entry)
        {
            out.push(entry);
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
