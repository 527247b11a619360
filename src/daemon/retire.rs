//! Zero-downtime replacement across a graceful restart (the Apache parent's
//! side). When Apache restarts, a group's daemon processes are not stopped:
//! they keep serving on the group's listening socket, which the parent
//! keeps open and hands to the next configuration generation (the same
//! descriptor, under the new name too if the socket's name changes, the old
//! name kept for the old generation's Apache children). The new generation's
//! daemons start on that socket; each one, once it has imported the
//! application and accepts requests, retires its predecessor (`SIGUSR1`:
//! stop accepting, finish within eviction-timeout, exit). So no request is
//! refused and none waits for an import. A group that is gone from the new
//! configuration has its daemons evicted at once.
//!
//! The retired processes are still the Apache parent's children: each is
//! registered with `apr_proc_other_child` in the new generation, so its
//! exit is reaped and logged, and a stop terminates it.

use crate::apache::{self, Level};
use crate::ffi;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::ffi::{c_int, c_void};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A group of the previous generation whose daemons still serve.
pub struct Retiring {
    /// The group's name.
    pub name: String,
    /// The listening socket (still open in the parent and those daemons).
    pub listen_fd: i32,
    /// Where it is bound.
    pub path: PathBuf,
    /// An older name of the same socket still linked (`Group::former_path`).
    pub former: Option<PathBuf>,
    /// The daemons, by process number, then any others still alive
    /// (earlier retirees, the standby).
    pub pids: Vec<i32>,
}

/// Handed from a generation's restart cleanup to the next post_config.
static RETIRING: Mutex<Vec<Retiring>> = Mutex::new(Vec::new());

/// Per group: the pids its daemons retire once ready (set in the parent
/// before the forks, so inherited by the new daemons).
static RETIREES: Mutex<Vec<(String, Vec<i32>)>> = Mutex::new(Vec::new());

/// A retired process registered with the current generation.
struct Adopted {
    proc_: *mut ffi::apr_proc_t,
    group: String,
    registered: bool,
    server: *mut ffi::server_rec,
}

// SAFETY: only the Apache parent's main thread touches these.
unsafe impl Send for Adopted {}

/// Boxed: APR holds a pointer to each entry, which must not move when the
/// vector grows.
#[allow(clippy::vec_box)]
static ADOPTED: Mutex<Vec<Box<Adopted>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// At a restart: leaves `r`'s daemons serving for the next generation.
pub fn hand_on(mut r: Retiring) {
    r.pids.extend(alive_adopted(&r.name));
    lock(&RETIRING).push(r);
}

/// In post_config: the previous generation's group `name`, if it is still
/// serving.
pub fn take(name: &str) -> Option<Retiring> {
    let mut all = lock(&RETIRING);
    let i = all.iter().position(|r| r.name == name)?;
    Some(all.swap_remove(i))
}

/// In post_config, before the forks: the daemons of group `name` retire
/// `pids` (by process number) once ready.
pub fn set_retirees(name: &str, pids: Vec<i32>) {
    lock(&RETIREES).push((name.to_string(), pids));
}

/// Forgets the previous generation's retirees (start of post_config).
pub fn clear_retirees() {
    lock(&RETIREES).clear();
    lock(&ADOPTED).clear();
}

/// In daemon number `index` of `processes` of group `name`, now ready:
/// retires its predecessor (the last one also retires those beyond the
/// new group's size). Only processes that are still the Apache parent's
/// children are signalled, so a reused pid is never hit.
pub fn retire_predecessors(name: &str, index: usize, processes: usize) {
    let all = lock(&RETIREES);
    let Some((_, pids)) = all.iter().find(|(n, _)| n == name) else {
        return;
    };
    let mine: Vec<i32> = if index + 1 == processes {
        pids.iter().skip(index).copied().collect()
    } else {
        pids.get(index).copied().into_iter().collect()
    };
    let parent = nix::unistd::getppid().as_raw();
    for pid in mine {
        if pid > 0 && parent_of(pid) == Some(parent) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGUSR1);
        }
    }
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid ...: comm may hold spaces; take what follows ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Registers `pids` (of group `name`, previous generation) with Apache in
/// this generation's pool `pconf`, so their exits are reaped and logged.
///
/// # Safety
/// Apache parent, post_config.
pub unsafe fn adopt(
    pconf: *mut ffi::apr_pool_t,
    s: *mut ffi::server_rec,
    name: &str,
    pids: &[i32],
) {
    for &pid in pids.iter().filter(|&&p| p > 0) {
        let size = std::mem::size_of::<ffi::apr_proc_t>();
        let proc_ = ffi::apr_palloc(pconf, size) as *mut ffi::apr_proc_t;
        std::ptr::write_bytes(proc_ as *mut u8, 0, size);
        (*proc_).pid = pid;
        let mut a = Box::new(Adopted {
            proc_,
            group: name.to_string(),
            registered: true,
            server: s,
        });
        let data = &mut *a as *mut Adopted as *mut c_void;
        ffi::apr_proc_other_child_register(
            proc_,
            Some(on_adopted_event),
            data,
            std::ptr::null_mut(),
            pconf,
        );
        lock(&ADOPTED).push(a);
    }
}

unsafe extern "C" fn on_adopted_event(reason: c_int, data: *mut c_void, status: c_int) {
    apache::guard("retired daemon process event", (), || unsafe {
        let a = &mut *(data as *mut Adopted);
        if matches!(
            reason as u32,
            ffi::APR_OC_REASON_DEATH | ffi::APR_OC_REASON_LOST
        ) {
            ffi::apr_proc_other_child_unregister(data);
            a.registered = false;
            apache::log_s(
                a.server,
                Level::Info,
                0,
                &format!(
                    "RWSGI0040: daemon process {} of group {:?} (previous configuration, replaced) exited (status {status})",
                    (*a.proc_).pid,
                    a.group
                ),
            );
        }
    })
}

/// Pids of group `name`'s adopted processes still alive; unregisters them
/// (the pool they are registered in is going).
fn alive_adopted(name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for a in lock(&ADOPTED).iter_mut().filter(|a| a.group == name) {
        if a.registered {
            // SAFETY: registered with this data pointer in a live pool.
            unsafe {
                ffi::apr_proc_other_child_unregister(&mut **a as *mut Adopted as *mut c_void);
                a.registered = false;
                out.push((*a.proc_).pid);
            }
        }
    }
    out
}

/// At a stop (or for groups the new configuration dropped): the retiring
/// daemons not yet gone get SIGTERM, `wait` to finish, then SIGKILL.
/// Returns when they are gone.
pub fn terminate(pids: Vec<i32>, wait: Duration) {
    let mut pids: Vec<Pid> = pids
        .into_iter()
        .filter(|&p| p > 0)
        .map(Pid::from_raw)
        .filter(|&p| kill(p, Signal::SIGTERM).is_ok())
        .collect();
    let deadline = Instant::now() + wait + Duration::from_secs(1);
    while !pids.is_empty() && Instant::now() < deadline {
        pids.retain(|&p| {
            matches!(
                nix::sys::wait::waitpid(p, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
                Ok(nix::sys::wait::WaitStatus::StillAlive)
            )
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        let _ = kill(p, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(p, None);
    }
}

/// At a stop: every adopted process of this generation, alive, unregistered.
pub fn all_adopted() -> Vec<i32> {
    let names: Vec<String> = lock(&ADOPTED).iter().map(|a| a.group.clone()).collect();
    let mut out = Vec::new();
    for n in names {
        out.extend(alive_adopted(&n));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// In post_config: the previous generation's groups that this one does not
/// have: their daemons are evicted (SIGUSR1), the sockets closed and
/// removed, the processes adopted for reaping.
///
/// # Safety
/// Apache parent, post_config.
pub unsafe fn evict_leftovers(pconf: *mut ffi::apr_pool_t, s: *mut ffi::server_rec) {
    let left: Vec<Retiring> = std::mem::take(&mut *lock(&RETIRING));
    for r in left {
        libc::close(r.listen_fd);
        let _ = std::fs::remove_file(&r.path);
        if let Some(f) = &r.former {
            let _ = std::fs::remove_file(f);
        }
        for &pid in &r.pids {
            let _ = kill(Pid::from_raw(pid), Signal::SIGUSR1);
        }
        adopt(pconf, s, &r.name, &r.pids);
    }
}
