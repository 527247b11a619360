//! The Apache parent's side of daemon mode: at post_config (before any
//! thread exists, never in the first configuration pass or configtest) it
//! binds one listening UNIX socket per process group in a private
//! directory, forks the groups' daemon processes and registers them with
//! Apache (`apr_proc_other_child_register`), so their deaths are reported
//! by the MPM's maintenance loop: each is logged as what it was (exit
//! status, or signal by name with a hint) and the process restarted, with a
//! back-off when it keeps dying at start. When the configuration pool is
//! cleared (graceful restart, restart, stop) the daemons get SIGTERM, up to
//! `shutdown-timeout` to drain, then SIGKILL; the socket is removed.
//!
//! A small shared memory area (made before the forks) lets a daemon mark
//! its own exits, so the parent can tell `exit(9)` from SIGKILL (the MPM
//! passes only the number), and records recent deaths for Apache's
//! children, whose 502 then says how the daemon died.

use super::shared::{self, record_death, role, Death, Role};
use super::{process, retire, set_groups, Group};
use crate::apache::{self, Level};
use crate::config::ServerConfig;
use crate::ffi;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set once Apache announced a restart or stop: dead daemons are not
/// replaced any more (the next generation starts its own).
static STOPPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Configuration generations started (for WSGISocketRotation).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// One daemon process of a group: which one, and its history.
pub struct SlotInfo {
    group: Arc<Group>,
    index: usize,
    slot: usize,
    proc_: *mut ffi::apr_proc_t,
    started: Instant,
    restarts: u64,
    quick_deaths: u32,
    /// The first slot of this group.
    first: usize,
    /// Whether the process is registered with apr_proc_other_child (APR
    /// crashes when asked to unregister what it does not hold).
    registered: bool,
    pconf: *mut ffi::apr_pool_t,
    server: *mut ffi::server_rec,
    cfg: *const ServerConfig,
}

impl SlotInfo {
    /// Marks that this daemon process exits on purpose with `code`.
    pub fn mark_exit(&self, code: i32) {
        shared::mark_exit(self.slot, code);
    }

    /// In the forked daemon process: makes its exits identifiable
    /// ([`mark_current_exit`]), including `exit()` by native code.
    pub fn adopt(&self) {
        shared::adopt_slot(self.slot);
    }

    /// How many times this slot's process was restarted before.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// This slot's index in the shared memory area.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The process number within the group (0-based; the standby's is
    /// `processes`).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The slots of this group (its processes and its standby).
    pub fn group_slots(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.group.config.processes as usize + 1
    }

    /// In the daemon: records its pid for the processes that hand over.
    pub fn record_pid(&self) {
        shared::record_pid(self.slot);
    }

    fn pid(&self) -> i32 {
        // SAFETY: proc_ lives in pconf with the slot.
        unsafe { (*self.proc_).pid }
    }
}

/// Slots of the current generation (the parent's bookkeeping).
struct Slots(Vec<*mut SlotInfo>);

fn log(s: *const ffi::server_rec, level: Level, msg: &str) {
    apache::log_s(s, level, 0, msg);
}

/// Whether this is the configuration pass that really starts the server
/// (not the first pass Apache makes to check the configuration).
pub fn is_real_start() -> bool {
    // SAFETY: ap_state_query only reads Apache's state.
    unsafe {
        ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int)
            != ffi::AP_SQ_MS_CREATE_PRE_CONFIG as c_int
    }
}

fn bind_socket(path: &std::path::Path, backlog: u32, uid: u32, gid: u32) -> Result<i32, String> {
    let _ = std::fs::remove_file(path);
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| format!("socket(): {e}"))?;
    let addr = UnixAddr::new(path).map_err(|e| format!("socket path {path:?}: {e}"))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| format!("bind({path:?}): {e}"))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("chown({path:?}): {e}"))?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| format!("chmod({path:?}): {e}"))?;
    let backlog = socket::Backlog::new(backlog.clamp(1, 65535) as i32)
        .map_err(|e| format!("listen backlog: {e}"))?;
    socket::listen(&fd, backlog).map_err(|e| format!("listen({path:?}): {e}"))?;
    Ok(fd.into_raw_fd())
}

/// Sets up this generation's process groups: sockets, shared memory,
/// daemons. Errors name the group, the path and the system error.
///
/// # Safety
/// Call from post_config in the Apache parent (no other thread exists).
pub unsafe fn start(
    pconf: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
    cfg: &'static ServerConfig,
    daemons: Vec<rwsgi_core::daemon_config::DaemonProcess>,
) -> Result<(), String> {
    set_groups(Vec::new());
    STOPPING.store(false, Ordering::SeqCst);
    retire::clear_retirees();
    if daemons.is_empty() {
        retire::evict_leftovers(pconf, s);
        return Ok(());
    }
    // Apache's children run as `User`; started by another user without a
    // `User` line (mod_unixd leaves -1), they run as that user.
    let child_uid = match ffi::ap_unixd_config.user_id {
        u32::MAX => nix::unistd::geteuid().as_raw(),
        uid => uid,
    };
    let child_gid = match ffi::ap_unixd_config.group_id {
        u32::MAX => nix::unistd::getegid().as_raw(),
        gid => gid,
    };
    // WSGISocketPrefix: the administrator's directory, checked but left as
    // it is; else a private directory under Apache's runtime directory.
    let (dir, base) = match &cfg.socket_prefix {
        Some(prefix) => {
            let p = std::path::Path::new(prefix);
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .display()
                .to_string();
            let meta = std::fs::metadata(&dir)
                .map_err(|e| format!("WSGISocketPrefix {prefix:?}: directory {dir:?}: {e}"))?;
            if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o002 != 0 {
                return Err(format!(
                    "WSGISocketPrefix {prefix:?}: directory {dir:?} is world-writable, so another user could replace the daemon sockets; use a directory only root and Apache's user can write"
                ));
            }
            let base = p
                .file_name()
                .map(|f| format!("{}.", f.to_string_lossy()))
                .unwrap_or_default();
            (dir, base)
        }
        None => {
            let dir = apache::opt_str(ffi::ap_runtime_dir_relative(pconf, c"rwsgi".as_ptr()))
                .ok_or("the runtime directory is not valid UTF-8")?
                .to_string();
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create socket directory {dir:?}: {e}"))?;
            // Only Apache's child user may enter; with a socket-user, others
            // may pass through (not list) to reach their own 0600 socket.
            let mode = if daemons.iter().any(|d| d.socket_user.is_some()) {
                0o711
            } else {
                0o700
            };
            std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(|e| format!("chmod {dir:?}: {e}"))?;
            std::os::unix::fs::chown(&dir, Some(child_uid), Some(child_gid))
                .map_err(|e| format!("chown {dir:?}: {e}"))?;
            (dir, String::new())
        }
    };
    // WSGISocketRotation On (default): a new name per generation.
    let generation = GENERATION.fetch_add(1, Ordering::SeqCst);
    let rotation = if cfg.socket_rotation != Some(false) {
        format!(".{generation}")
    } else {
        String::new()
    };
    let apache_timeout = Duration::from_micros((*s).timeout.max(0) as u64);
    let mut groups = Vec::new();
    for d in daemons {
        let safe: String = d
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut path = std::path::PathBuf::from(format!(
            "{dir}/{base}{}{rotation}.{safe}.sock",
            std::process::id()
        ));
        // A UNIX socket path has at most 107 bytes (sun_path): a long
        // directory (a deep server root) or group name gives way to a
        // short hash of the name (the group stays known by its name
        // everywhere else).
        if path.as_os_str().len() > 107 {
            let hash = d.name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
            path = std::path::PathBuf::from(format!(
                "{dir}/{base}{}{rotation}.{:08x}.sock",
                std::process::id(),
                hash as u32
            ));
        }
        // socket-user (mod_wsgi): the socket's owner, when Apache's children
        // run as another user than `User` (mod_ruid2, ITK ...).
        let owner = match &d.socket_user {
            Some(p) => process::resolve_user(p)
                .map(|u| u.uid.as_raw())
                .map_err(|e| format!("WSGIDaemonProcess {:?}: socket-user: {e}", d.name))?,
            None => child_uid,
        };
        // After a graceful restart the group's socket is the previous
        // generation's, whose daemons serve on it until the new ones are
        // ready (zero downtime; see `retire`).
        let mut former_path = None;
        let fd = match retire::take(&d.name) {
            Some(prior) => {
                // A new name (WSGISocketRotation) is a second hard link to
                // the same socket: the old generation's Apache children,
                // still finishing, connect by the old one, which stays
                // until the next restart. Renaming it made their new
                // connections fail (ENOENT, then 503).
                if let Some(f) = &prior.former {
                    if *f != path && *f != prior.path {
                        let _ = std::fs::remove_file(f);
                    }
                }
                let moved = prior.path == path || {
                    let _ = std::fs::remove_file(&path);
                    std::fs::hard_link(&prior.path, &path).is_ok()
                };
                if moved && prior.path != path {
                    former_path = Some(prior.path.clone());
                }
                if moved
                    && socket::listen(
                        &std::os::fd::BorrowedFd::borrow_raw(prior.listen_fd),
                        socket::Backlog::new(d.listen_backlog.clamp(1, 65535) as i32)
                            .unwrap_or(socket::Backlog::MAXCONN),
                    )
                    .is_ok()
                {
                    let _ = std::os::unix::fs::chown(&path, Some(owner), Some(child_gid));
                    retire::set_retirees(&d.name, prior.pids.clone());
                    retire::adopt(pconf, s, &d.name, &prior.pids);
                    prior.listen_fd
                } else {
                    libc::close(prior.listen_fd);
                    let _ = std::fs::remove_file(&prior.path);
                    former_path = None;
                    for &pid in &prior.pids {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGUSR1,
                        );
                    }
                    retire::adopt(pconf, s, &d.name, &prior.pids);
                    bind_socket(&path, d.listen_backlog, owner, child_gid)
                        .map_err(|e| format!("WSGIDaemonProcess {:?}: {e}", d.name))?
                }
            }
            None => bind_socket(&path, d.listen_backlog, owner, child_gid)
                .map_err(|e| format!("WSGIDaemonProcess {:?}: {e}", d.name))?,
        };
        groups.push(Arc::new(Group {
            socket_timeout: d.socket_timeout_or(apache_timeout),
            config: d,
            socket_path: path,
            former_path,
            listen_fd: fd,
            child_uid,
        }));
    }
    set_groups(groups.clone());
    retire::evict_leftovers(pconf, s);
    shared::map()?;
    let mut slots = Vec::new();
    for g in &groups {
        // The group's processes, then its standby (the last slot).
        let first = slots.len();
        for index in 0..=g.config.processes as usize {
            if slots.len() == shared::MAX_SLOTS {
                return Err(format!(
                    "more than {} daemon processes configured",
                    shared::MAX_SLOTS
                ));
            }
            let size = std::mem::size_of::<ffi::apr_proc_t>();
            let proc_ = ffi::apr_palloc(pconf, size) as *mut ffi::apr_proc_t;
            std::ptr::write_bytes(proc_ as *mut u8, 0, size);
            let slot = Box::into_raw(Box::new(SlotInfo {
                group: Arc::clone(g),
                index,
                slot: slots.len(),
                proc_,
                started: Instant::now(),
                restarts: 0,
                quick_deaths: 0,
                first,
                registered: false,
                pconf,
                // Its daemons log to the error log of the server (main
                // or virtual host) that defined the group.
                server: crate::config::daemon_server(&g.config.name).unwrap_or(s),
                cfg,
            }));
            let role = if index == g.config.processes as usize {
                Role::Standby
            } else {
                Role::Serving
            };
            shared::set_role(slots.len(), role);
            slots.push(slot);
            spawn(slot, Duration::ZERO);
        }
    }
    let slots = apache::pool_box(pconf, Slots(slots));
    // A pre-cleanup runs before any other cleanup of pconf, so every
    // registration with apr_proc_other_child is still in place.
    ffi::apr_pool_pre_cleanup_register(pconf, slots as *const c_void, Some(stop_all));
    Ok(())
}

/// Forks the daemon process of `slot`, which starts after `delay`.
unsafe fn spawn(slot: *mut SlotInfo, delay: Duration) {
    let st = &mut *slot;
    st.mark_exit(-1);
    shared::clear_slot(st.slot);
    // The child starts with the signals it waits for blocked (inherited
    // mask), so one sent right after the fork (a restart's SIGUSR2, a
    // handover's) is kept for it rather than killing it.
    let old_mask =
        process::daemon_signals().thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK);
    let rv = ffi::apr_proc_fork(st.proc_, st.pconf);
    if rv == ffi::APR_INCHILD as ffi::apr_status_t {
        process::run(st, Arc::clone(&st.group), st.server, &*st.cfg, delay);
    }
    if let Ok(m) = old_mask {
        let _ = m.thread_set_mask();
    }
    if rv != ffi::APR_INPARENT as ffi::apr_status_t {
        log(
            st.server,
            Level::Crit,
            &format!(
                "RWSGI0047: cannot fork daemon process {} of group {:?}: {}",
                st.index,
                st.group.config.name,
                std::io::Error::last_os_error()
            ),
        );
        return;
    }
    st.started = Instant::now() + delay;
    st.registered = true;
    ffi::apr_proc_other_child_register(
        st.proc_,
        Some(on_child_event),
        slot as *mut c_void,
        std::ptr::null_mut(),
        st.pconf,
    );
}

/// Apache's report about a daemon process: on death, log how and restart.
unsafe extern "C" fn on_child_event(reason: c_int, data: *mut c_void, status: c_int) {
    apache::guard("daemon process event", (), || unsafe {
        let slot = data as *mut SlotInfo;
        let st = &mut *slot;
        match reason as u32 {
            ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST => {
                ffi::apr_proc_other_child_unregister(data);
                st.registered = false;
                let pid = st.pid();
                let marked = shared::exit_mark(st.slot).unwrap_or(-1);
                let death = if marked >= 0 || status > 64 || status == 0 {
                    Death::Exit(if marked >= 0 { marked } else { status })
                } else {
                    Death::Signal(status)
                };
                record_death(pid, death);
                let lived = st.started.elapsed();
                // A daemon that ended itself on purpose (maximum-requests, a
                // drain) is no failure, however short it lived.
                let failed = !(marked == 0 && death == Death::Exit(0));
                st.quick_deaths = if failed && lived < Duration::from_secs(5) {
                    st.quick_deaths + 1
                } else {
                    0
                };
                // 0, 1, 2, 4, 8, 10 s: no fork storm when the app cannot start.
                let delay = match st.quick_deaths {
                    0 | 1 => Duration::ZERO,
                    n => Duration::from_secs((1u64 << (n - 2).min(4)).min(10)),
                };
                let stopping = STOPPING.load(Ordering::SeqCst);
                log(
                    st.server,
                    if death == Death::Exit(0) || stopping {
                        Level::Info
                    } else {
                        Level::Error
                    },
                    &format!(
                        "RWSGI0040: daemon process {pid} of group {:?} {} after {:.1} s{}{}",
                        st.group.config.name,
                        death.describe(),
                        lived.as_secs_f64(),
                        death.hint(),
                        if stopping {
                            "; Apache is restarting or stopping".to_string()
                        } else if delay.is_zero() {
                            "; starting a new one".to_string()
                        } else {
                            format!(
                                "; starting a new one in {} s (it keeps dying at start)",
                                delay.as_secs()
                            )
                        }
                    ),
                );
                if !STOPPING.load(Ordering::SeqCst) {
                    let signal = match death {
                        Death::Signal(n) => Some(n),
                        Death::Exit(_) => None,
                    };
                    crate::observe::process::daemon_restarted(st.slot, signal);
                    st.restarts += 1;
                    spawn(slot, delay);
                }
            }
            ffi::APR_OC_REASON_RESTART => {
                // Apache restarts or stops: the configuration pool's cleanup
                // stops this generation's daemons; none is replaced now.
                STOPPING.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
    })
}

/// A restart: the daemons keep serving on their sockets for the next
/// generation, which retires them once its own are ready; the standbys
/// (no Python, nothing to drain) go now.
unsafe fn hand_on(slots: &Slots) {
    for g in super::groups() {
        let mut serving = Vec::new();
        let mut standbys = Vec::new();
        for &slot in &slots.0 {
            let st = &*slot;
            if !Arc::ptr_eq(&st.group, &g) || st.pid() <= 0 {
                continue;
            }
            match role(st.slot) {
                Role::Serving => serving.push((st.index, st.pid())),
                Role::Retiring => serving.push((usize::MAX, st.pid())),
                Role::Standby => standbys.push(st.pid()),
            }
        }
        serving.sort_unstable();
        for &pid in &standbys {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        // Told that their generation ended: if no successor retires them
        // (it could not start, or runs as another user), they go anyway.
        for &(_, pid) in &serving {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGUSR2,
            );
        }
        retire::hand_on(retire::Retiring {
            name: g.config.name.clone(),
            listen_fd: g.listen_fd,
            path: g.socket_path.clone(),
            former: g.former_path.clone(),
            pids: serving
                .into_iter()
                .map(|(_, p)| p)
                .chain(standbys)
                .collect(),
        });
    }
}

/// A stop: sockets closed and removed first, then every daemon (and
/// retired ones of an earlier generation) gets SIGTERM, up to its
/// shutdown-timeout, then SIGKILL.
unsafe fn stop(slots: &Slots) {
    // First the sockets go, so no new connection queues up for daemons
    // that are stopping.
    for g in super::groups() {
        libc::close(g.listen_fd);
        let _ = std::fs::remove_file(&g.socket_path);
        if let Some(f) = &g.former_path {
            let _ = std::fs::remove_file(f);
        }
    }
    let mut wait = Duration::ZERO;
    let mut pids = retire::all_adopted();
    for &slot in &slots.0 {
        let st = &*slot;
        if st.pid() > 0 {
            pids.push(st.pid());
        }
        wait = wait.max(st.group.config.shutdown_timeout);
    }
    retire::terminate(pids, wait);
}

/// pconf cleanup: at a stop, stops this generation's daemons (SIGTERM, up
/// to their shutdown-timeout, SIGKILL) and removes the sockets; at a
/// restart, hands daemons and sockets on to the next generation.
unsafe extern "C" fn stop_all(data: *mut c_void) -> ffi::apr_status_t {
    apache::guard("stop daemon processes", (), || unsafe {
        let slots = &*(data as *const Slots);
        STOPPING.store(true, Ordering::SeqCst);
        let stopping =
            ffi::ap_state_query(ffi::AP_SQ_MAIN_STATE as c_int) == ffi::AP_SQ_MS_EXITING as c_int;
        for &slot in &slots.0 {
            let st = &mut *slot;
            if st.registered {
                ffi::apr_proc_other_child_unregister(slot as *mut c_void);
                st.registered = false;
            }
        }
        if !stopping {
            hand_on(slots);
        } else {
            stop(slots);
        }
        set_groups(Vec::new());
        for &slot in &slots.0 {
            drop(Box::from_raw(slot));
        }
    });
    ffi::APR_SUCCESS as ffi::apr_status_t
}
