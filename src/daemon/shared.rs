//! The memory area the Apache parent shares with its daemon processes and
//! children (an anonymous shared mapping made at post_config, before the
//! forks): per daemon slot, the exit status a daemon marked before exiting
//! (so the parent can tell `exit(9)` from SIGKILL: the MPM passes only the
//! number), the slot's role and pid for zero-downtime handover between a
//! serving daemon and its standby; and a ring of recent deaths, so that an
//! Apache child's 502 says how the daemon died. All fields are atomics: no
//! lock is shared between processes.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Recent daemon deaths remembered for Apache's children.
const DEATHS: usize = 64;
/// Daemon slots a configuration may have (sum of all groups' processes).
pub const MAX_SLOTS: usize = 1024;

/// How a daemon process ended, as the parent saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// It exited with this status.
    Exit(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl Death {
    /// `exited with status 3` / `was killed by signal 9 (SIGKILL)`.
    pub fn describe(self) -> String {
        match self {
            Death::Exit(code) => format!("exited with status {code}"),
            Death::Signal(n) => {
                let name = nix::sys::signal::Signal::try_from(n)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {n}"));
                format!("was killed by signal {n} ({name})")
            }
        }
    }

    /// What the cause usually is, for the end of a log line ("" if nothing
    /// helps).
    pub fn hint(self) -> &'static str {
        match self {
            Death::Signal(libc::SIGKILL) => {
                " (the kernel's OOM killer, a memory-limit or an administrator may have sent it)"
            }
            Death::Signal(
                libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGABRT,
            ) => " (a crash in native code: a C extension or the interpreter)",
            _ => "",
        }
    }
}

/// The shared memory area.
#[repr(C)]
struct Shared {
    /// Per slot: the exit status a daemon marked before exiting, or -1.
    exits: [AtomicI32; MAX_SLOTS],
    /// Ring of recent deaths: pid, then kind (1 exit, 2 signal) << 32 | code.
    death_pid: [AtomicI32; DEATHS],
    death_how: [AtomicU64; DEATHS],
    next_death: AtomicUsize,
    /// Per slot: what the process started in it is ([`Role`]), set by the
    /// processes themselves when they hand a slot over.
    role: [std::sync::atomic::AtomicU8; MAX_SLOTS],
    /// Per slot: the pid of the process in it (written by that process).
    pid: [AtomicI32; MAX_SLOTS],
    /// Per standby slot: 1 + the slot of the daemon that activated it.
    handover: [AtomicUsize; MAX_SLOTS],
}

/// What a daemon slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// A daemon process serving requests.
    Serving = 0,
    /// A forked process that waits, without Python, to replace a serving
    /// one (zero-downtime replacement).
    Standby = 1,
    /// A daemon that was replaced and is draining: its slot gets a standby
    /// when it exits.
    Retiring = 2,
}

static SHARED: std::sync::atomic::AtomicPtr<Shared> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn shared() -> Option<&'static Shared> {
    // SAFETY: set once per configuration generation to a mapping that stays
    // for the process's life.
    unsafe { SHARED.load(Ordering::Acquire).as_ref() }
}

/// How daemon process `pid` died, if the parent has seen it die.
pub fn death_of(pid: i32) -> Option<Death> {
    let sh = shared()?;
    (0..DEATHS).find_map(|i| {
        (sh.death_pid[i].load(Ordering::Acquire) == pid).then(|| {
            let how = sh.death_how[i].load(Ordering::Acquire);
            let code = (how & 0xffff_ffff) as i32;
            if how >> 32 == 1 {
                Death::Exit(code)
            } else {
                Death::Signal(code)
            }
        })
    })
}

/// Records that daemon process `pid` died as `death` (the parent, when the
/// MPM reports it), for [`death_of`] in Apache's children.
pub fn record_death(pid: i32, death: Death) {
    let Some(sh) = shared() else { return };
    let i = sh.next_death.fetch_add(1, Ordering::AcqRel) % DEATHS;
    let how = match death {
        Death::Exit(c) => (1u64 << 32) | c as u32 as u64,
        Death::Signal(n) => (2u64 << 32) | n as u32 as u64,
    };
    sh.death_pid[i].store(0, Ordering::Release);
    sh.death_how[i].store(how, Ordering::Release);
    sh.death_pid[i].store(pid, Ordering::Release);
}

/// In a daemon process: its slot, for [`mark_current_exit`].
static CURRENT_SLOT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Marks that this daemon process is exiting with `status` (called by its
/// exit paths: ours, `exit()` through `on_exit`, Python's `os._exit`), so
/// the Apache parent reports an exit, not a signal of the same number. Does
/// nothing outside a daemon process.
pub fn mark_current_exit(status: i32) {
    let slot = CURRENT_SLOT.load(Ordering::Acquire);
    if let (Some(sh), true) = (shared(), slot < MAX_SLOTS) {
        sh.exits[slot].store(status & 0xff, Ordering::Release);
    }
}

extern "C" {
    /// glibc's on_exit(3): like atexit, but the handler gets the status.
    fn on_exit(f: unsafe extern "C" fn(c_int, *mut c_void), arg: *mut c_void) -> c_int;
}

unsafe extern "C" fn on_exit_mark(status: c_int, _arg: *mut c_void) {
    mark_current_exit(status);
}

/// The role of `slot` (for the process starting in it).
pub fn role(slot: usize) -> Role {
    match shared().map(|sh| sh.role[slot].load(Ordering::Acquire)) {
        Some(1) => Role::Standby,
        Some(2) => Role::Retiring,
        _ => Role::Serving,
    }
}

/// In a daemon: the pid in slot `slot` (0 if none recorded).
pub fn slot_pid(slot: usize) -> i32 {
    shared().map_or(0, |sh| sh.pid[slot].load(Ordering::Acquire))
}

/// In a standby being activated: the slot of the daemon it replaces.
pub fn handover_from(slot: usize) -> Option<usize> {
    let v = shared()?.handover[slot].load(Ordering::Acquire);
    v.checked_sub(1)
}

/// Sets the role of `slot` (a standby marks itself ready to be claimed).
pub fn set_role(slot: usize, role: Role) {
    if let Some(sh) = shared() {
        sh.role[slot].store(role as u8, Ordering::Release);
    }
}

/// In a serving daemon of slot `mine`: claims a waiting standby among
/// `slots` (its group's) for its replacement, returning the standby's
/// slot and pid. `None` when there is none (another daemon claimed it, or
/// it is still starting).
pub fn claim_standby(slots: std::ops::Range<usize>, mine: usize) -> Option<(usize, i32)> {
    let sh = shared()?;
    slots.into_iter().find_map(|s| {
        let pid = sh.pid[s].load(Ordering::Acquire);
        (role(s) == Role::Standby
            && pid > 0
            && sh.handover[s]
                .compare_exchange(0, mine + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok())
        .then_some((s, pid))
    })
}

/// Gives up a claim made with [`claim_standby`] (the standby never came).
pub fn release_standby(standby: usize) {
    if let Some(sh) = shared() {
        sh.handover[standby].store(0, Ordering::Release);
    }
}

/// A standby that took over from `old`: it serves in its slot now, and the
/// old daemon's slot gets the next standby when that process exits.
pub fn swap_roles(standby: usize, old: usize) {
    if let Some(sh) = shared() {
        sh.role[standby].store(Role::Serving as u8, Ordering::Release);
        sh.role[old].store(Role::Retiring as u8, Ordering::Release);
        sh.handover[standby].store(0, Ordering::Release);
    }
}

/// Maps this generation's area (anonymous, shared with every process forked
/// after it: the daemons and Apache's children). Errors: mmap's, as text.
///
/// # Safety
/// Call from post_config in the Apache parent, before the forks (no other
/// thread exists). The mapping of an earlier generation stays (its daemons
/// may still use it).
pub unsafe fn map() -> Result<(), String> {
    let size = std::mem::size_of::<Shared>();
    let mem = libc::mmap(
        std::ptr::null_mut(),
        size,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_SHARED | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if mem == libc::MAP_FAILED {
        return Err(format!(
            "mmap of {size} bytes: {}",
            std::io::Error::last_os_error()
        ));
    }
    SHARED.store(mem as *mut Shared, Ordering::Release);
    Ok(())
}

/// Marks that the process of `slot` exits on purpose with `code` (-1:
/// clears the mark before a fork).
pub fn mark_exit(slot: usize, code: i32) {
    if let Some(sh) = shared() {
        sh.exits[slot].store(code, Ordering::Release);
    }
}

/// The exit status the process of `slot` marked, or -1 if none; `None`
/// without the area.
pub fn exit_mark(slot: usize) -> Option<i32> {
    shared().map(|sh| sh.exits[slot].load(Ordering::Acquire))
}

/// In a forked daemon process: makes `slot` its own, so its exits
/// (ours, `exit()` by native code, `os._exit`) are marked
/// ([`mark_current_exit`]).
pub fn adopt_slot(slot: usize) {
    CURRENT_SLOT.store(slot, Ordering::Release);
    // SAFETY: registers a plain function with glibc's on_exit.
    unsafe {
        on_exit(on_exit_mark, std::ptr::null_mut());
    }
}

/// In a daemon: records its pid in `slot` for the processes that hand over.
pub fn record_pid(slot: usize) {
    if let Some(sh) = shared() {
        sh.pid[slot].store(std::process::id() as i32, Ordering::Release);
    }
}

/// Before a fork into `slot`: no pid yet, and a standby's or retiring
/// slot's handover claim is cleared.
pub fn clear_slot(slot: usize) {
    if let Some(sh) = shared() {
        sh.pid[slot].store(0, Ordering::Release);
        if role(slot) != Role::Serving {
            sh.handover[slot].store(0, Ordering::Release);
        }
    }
}
