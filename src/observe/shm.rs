//! The shared memory segment behind the metrics endpoint and the status
//! page: one anonymous `MAP_SHARED` mapping made by the Apache parent at
//! its first real post_config, before any Apache child or daemon process
//! is forked, so every process of the server inherits it. The module stays
//! mapped across restarts (`-z nodelete`), and so does the segment: a
//! graceful restart keeps the counters; Apache children and daemon
//! processes of the old and the new generation write the same segment.
//!
//! Everything in it is an atomic (counters only go up with relaxed adds,
//! never a lock per request): shards of request counters and histograms
//! per process group and application group (a process writes the shard of
//! its pid), the name tables (claimed with a compare-and-swap), one slot per
//! Apache child and per daemon process (pid, threads, the request each
//! thread serves, under a sequence lock), restart counters and a ring of
//! recent errors. Nothing here allocates on the request path.

use rwsgi_core::observe::labels::{BUCKETS, METHODS, RESTART_CAUSES, STATUS_CLASSES};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

/// Process groups known (the first is embedded mode's, `""`).
pub const MAX_GROUPS: usize = 16;
/// Application groups counted by name; the last entry counts the rest.
pub const MAX_APP_GROUPS: usize = 32;
/// Bytes of a group name kept.
pub const NAME_BYTES: usize = 64;
/// Counter shards (a process writes shard `pid % SHARDS`).
pub const SHARDS: usize = 8;
/// Apache child slots.
pub const MAX_CHILDREN: usize = 256;
/// Daemon process slots per generation bank (two banks: a graceful
/// restart's old daemons keep theirs while the new ones start).
pub const MAX_DAEMONS: usize = 256;
/// Threads per process whose current request is shown.
pub const MAX_THREADS: usize = 64;
/// Signals counted by number as restart causes.
pub const SIGNALS: usize = 65;
/// Errors kept.
pub const ERRORS: usize = 20;

/// A text field of `N` 8-byte words, written by one writer under a
/// sequence lock, read by anyone.
#[repr(C)]
pub struct Text<const N: usize> {
    len: AtomicU32,
    words: [AtomicU64; N],
}

impl<const N: usize> Text<N> {
    /// Stores `b` (cut to `8 * N` bytes).
    pub fn set(&self, b: &[u8]) {
        let b = &b[..b.len().min(8 * N)];
        for (i, chunk) in b.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.words[i].store(u64::from_le_bytes(w), Relaxed);
        }
        self.len.store(b.len() as u32, Relaxed);
    }

    /// The stored bytes, as lossy UTF-8 text.
    pub fn get(&self) -> String {
        let n = (self.len.load(Relaxed) as usize).min(8 * N);
        let mut out = Vec::with_capacity(n);
        for w in &self.words[..n.div_ceil(8)] {
            out.extend_from_slice(&w.load(Relaxed).to_le_bytes());
        }
        out.truncate(n);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// An entry of a name table: 0 free, 1 being written, 2 ready.
#[repr(C)]
pub struct Name {
    state: AtomicU32,
    text: Text<{ NAME_BYTES / 8 }>,
}

/// A histogram: counts per bucket (not cumulative) and the sum, us.
#[repr(C)]
pub struct Histogram {
    /// Per bucket of `labels::BUCKET_BOUNDS`, then `+Inf`.
    pub counts: [AtomicU64; BUCKETS],
    /// Sum of observations, microseconds.
    pub sum_us: AtomicU64,
}

impl Histogram {
    /// Records one duration of `us` microseconds.
    #[inline]
    pub fn observe(&self, us: u64) {
        self.counts[rwsgi_core::observe::labels::bucket_index(us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

/// The counters of one process group in one shard.
#[repr(C)]
pub struct GroupStats {
    /// Per application group, method and status class.
    pub requests: [[[AtomicU64; STATUS_CLASSES.len()]; METHODS.len()]; MAX_APP_GROUPS],
    pub request_bytes: AtomicU64,
    pub response_bytes: AtomicU64,
    pub duration: Histogram,
    pub queue_wait: Histogram,
    pub first_byte: Histogram,
    pub in_flight: AtomicI64,
    pub gc: [AtomicU64; 3],
}

/// The request a thread serves now (seq odd while it is written, 0 idle).
#[repr(C)]
pub struct ThreadSlot {
    pub seq: AtomicU64,
    pub start_us: AtomicU64,
    pub method: Text<2>,
    pub path: Text<25>,
    pub client: Text<6>,
}

/// One process: an Apache child or a daemon process.
#[repr(C)]
pub struct ProcSlot {
    /// Its pid (0: free).
    pub pid: AtomicI32,
    pub group: AtomicU32,
    pub index: AtomicU32,
    pub uid: AtomicU32,
    pub start_us: AtomicU64,
    pub requests: AtomicU64,
    pub busy: AtomicI64,
    pub threads: AtomicU32,
    pub restarts: AtomicU64,
    /// Why the previous process of this slot ended: 1 + cause index, or
    /// 100 + signal number; 0 none.
    pub last_exit: AtomicU32,
    /// What the process says it will exit for (1 + cause index; 0 none).
    pub exit_cause: AtomicU32,
    pub sub_interpreters: AtomicU64,
    pub thread: [ThreadSlot; MAX_THREADS],
}

/// An error-log line.
#[repr(C)]
pub struct ErrorSlot {
    pub seq: AtomicU64,
    pub time_us: AtomicU64,
    pub pid: AtomicI32,
    pub message: Text<40>,
}

/// The segment.
#[repr(C)]
pub struct Segment {
    pub since_us: AtomicU64,
    pub server_pid: AtomicI32,
    /// Configuration generations started (the daemon bank is its parity).
    pub generation: AtomicU64,
    pub groups: [Name; MAX_GROUPS],
    /// Which groups are daemon groups of the current configuration
    /// (bit per group index).
    pub daemon_groups: AtomicU64,
    pub apps: [Name; MAX_APP_GROUPS],
    pub shards: [[GroupStats; MAX_GROUPS]; SHARDS],
    pub restarts: [[AtomicU64; RESTART_CAUSES.len()]; MAX_GROUPS],
    pub signal_restarts: [[AtomicU64; SIGNALS]; MAX_GROUPS],
    pub children: [ProcSlot; MAX_CHILDREN],
    pub daemons: [[ProcSlot; MAX_DAEMONS]; 2],
    pub next_error: AtomicU64,
    pub errors: [ErrorSlot; ERRORS],
}

static SEGMENT: AtomicPtr<Segment> = AtomicPtr::new(std::ptr::null_mut());

/// The segment, once the Apache parent made it.
#[inline]
pub fn get() -> Option<&'static Segment> {
    // SAFETY: set once to a mapping that is never unmapped (the module is
    // never unloaded: -z nodelete), zero-initialised (valid atomics).
    unsafe { SEGMENT.load(Acquire).as_ref() }
}

/// Apache parent, post_config of a real start: maps the segment (once for
/// the life of the parent; later generations keep it) and counts the
/// generation. Errors: the mapping failed (text with the system error).
pub fn create() -> Result<&'static Segment, String> {
    if let Some(s) = get() {
        s.generation.fetch_add(1, Relaxed);
        return Ok(s);
    }
    let size = std::mem::size_of::<Segment>();
    // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel;
    // all-zero bytes are valid for every field (atomics).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!(
            "cannot map {size} bytes of shared memory for the metrics: {}",
            std::io::Error::last_os_error()
        ));
    }
    SEGMENT.store(p as *mut Segment, Release);
    let s = get().expect("just set");
    s.since_us.store(crate::wsgi::metrics::wall_us(), Relaxed);
    s.server_pid.store(std::process::id() as i32, Relaxed);
    Ok(s)
}

fn claim(table: &[Name], name: &str) -> Option<usize> {
    let b = &name.as_bytes()[..name.len().min(NAME_BYTES)];
    for (i, n) in table.iter().enumerate() {
        loop {
            match n.state.load(Acquire) {
                2 => {
                    if n.text.get().as_bytes() == b {
                        return Some(i);
                    }
                    break;
                }
                0 => {
                    if n.state.compare_exchange(0, 1, AcqRel, Acquire).is_ok() {
                        n.text.set(b);
                        n.state.store(2, Release);
                        return Some(i);
                    }
                }
                _ => std::hint::spin_loop(),
            }
        }
    }
    None
}

impl Segment {
    /// The index of process group `name` (`""`: embedded), claiming an entry
    /// for a new name; `None` when the table is full.
    pub fn group_index(&self, name: &str) -> Option<usize> {
        claim(&self.groups, name)
    }

    /// The index of application group `name`; past the table's end, its
    /// last entry (counted as `(other)`).
    pub fn app_index(&self, name: &str) -> usize {
        claim(&self.apps[..MAX_APP_GROUPS - 1], name).unwrap_or(MAX_APP_GROUPS - 1)
    }

    /// Names of the claimed entries of a table, by index.
    pub fn names(table: &[Name]) -> Vec<Option<String>> {
        table
            .iter()
            .map(|n| (n.state.load(Acquire) == 2).then(|| n.text.get()))
            .collect()
    }

    /// The shard this process writes.
    #[inline]
    pub fn shard(&self) -> &[GroupStats; MAX_GROUPS] {
        &self.shards[crate::apache::pid() as usize % SHARDS]
    }

    /// The daemon bank of the current generation.
    pub fn daemon_bank(&self) -> &[ProcSlot; MAX_DAEMONS] {
        &self.daemons[(self.generation.load(Relaxed) % 2) as usize]
    }

    /// Records an error-log line (the ring keeps the last [`ERRORS`]).
    pub fn note_error(&self, msg: &str) {
        let n = self.next_error.fetch_add(1, AcqRel);
        let e = &self.errors[(n % ERRORS as u64) as usize];
        let seq = e.seq.fetch_add(1, AcqRel);
        if seq % 2 == 1 {
            // Another writer is on this entry (a wrap-around race): skip.
            e.seq.fetch_sub(1, AcqRel);
            return;
        }
        e.time_us.store(crate::wsgi::metrics::wall_us(), Relaxed);
        e.pid.store(crate::apache::pid() as i32, Relaxed);
        e.message.set(msg.as_bytes());
        e.seq.fetch_add(1, Release);
    }
}

/// Whether process `pid` exists (possibly under another user).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let rv = unsafe { libc::kill(pid, 0) };
    rv == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
