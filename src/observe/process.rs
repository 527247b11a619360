//! This process's place in the segment: its slot (an Apache child's, claimed
//! at child_init; a daemon process's, by its supervisor slot) and its
//! process group, the restarts the Apache parent counts, and the Python
//! figures (garbage collections read after requests, sub-interpreters).

use super::shm::{self, ProcSlot, MAX_CHILDREN, MAX_DAEMONS};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering::*};

/// This process's slot (null: none, e.g. the Apache parent).
static MY_SLOT: AtomicPtr<ProcSlot> = AtomicPtr::new(std::ptr::null_mut());
/// This process's group index (0: embedded, Apache's children).
static MY_GROUP: AtomicUsize = AtomicUsize::new(0);

/// This process's slot, if it has one.
#[inline]
pub fn my_slot() -> Option<&'static ProcSlot> {
    // SAFETY: points into the segment, which is never unmapped.
    unsafe { MY_SLOT.load(Relaxed).as_ref() }
}

/// This process's group index.
#[inline]
pub fn my_group() -> usize {
    MY_GROUP.load(Relaxed)
}

fn fill(slot: &ProcSlot, group: usize, index: usize, threads: u32) {
    slot.group.store(group as u32, Relaxed);
    slot.index.store(index as u32, Relaxed);
    // SAFETY: getuid cannot fail.
    slot.uid.store(unsafe { libc::getuid() }, Relaxed);
    slot.start_us
        .store(crate::wsgi::metrics::wall_us(), Relaxed);
    slot.requests.store(0, Relaxed);
    slot.busy.store(0, Relaxed);
    slot.threads.store(threads, Relaxed);
    slot.exit_cause.store(0, Relaxed);
    slot.sub_interpreters.store(0, Relaxed);
    for t in &slot.thread {
        t.start_us.store(0, Relaxed);
    }
    slot.pid.store(crate::apache::pid() as i32, Release);
    MY_SLOT.store(slot as *const ProcSlot as *mut ProcSlot, Relaxed);
    MY_GROUP.store(group, Relaxed);
}

unsafe extern "C" fn release_child_slot(_: *mut std::ffi::c_void) -> crate::ffi::apr_status_t {
    if let Some(slot) = my_slot() {
        slot.busy.store(0, Relaxed);
        slot.pid.store(0, Release);
    }
    crate::ffi::APR_SUCCESS as crate::ffi::apr_status_t
}

/// Apache child, child_init: claims a free child slot (or one whose process
/// is gone) with `threads` request threads (the MPM's threads per child),
/// released when `pool` (the child's) is cleared.
///
/// # Safety
/// `pool` must be the child's pool.
pub unsafe fn child_init(pool: *mut crate::ffi::apr_pool_t, threads: u32) {
    let Some(seg) = shm::get() else { return };
    let me = crate::apache::pid() as i32;
    let Some(group) = seg.group_index("") else {
        return;
    };
    for (i, slot) in seg.children.iter().enumerate().take(MAX_CHILDREN) {
        let pid = slot.pid.load(Acquire);
        if (pid == 0 || !shm::alive(pid))
            && slot.pid.compare_exchange(pid, me, AcqRel, Acquire).is_ok()
        {
            fill(slot, group, i, threads);
            crate::ffi::apr_pool_cleanup_register(
                pool,
                std::ptr::null(),
                Some(release_child_slot),
                Some(crate::ffi::apr_pool_cleanup_null),
            );
            return;
        }
    }
}

/// A daemon process of group `name`, number `index`, in supervisor slot
/// `slot`, with `threads` request threads: takes its slot of the current
/// generation's bank.
pub fn daemon_started(slot: usize, name: &str, index: usize, threads: u32) {
    let Some(seg) = shm::get() else { return };
    let Some(group) = seg.group_index(name) else {
        return;
    };
    if slot < MAX_DAEMONS {
        fill(&seg.daemon_bank()[slot], group, index, threads);
    } else {
        MY_GROUP.store(group, Relaxed);
    }
}

/// A daemon process records why it is about to exit (an index of
/// `labels::RESTART_CAUSES`), read by the Apache parent when it dies.
pub fn set_exit_cause(cause: usize) {
    if let Some(slot) = my_slot() {
        slot.exit_cause.store(cause as u32 + 1, Release);
    }
}

/// Apache parent, a daemon process of supervisor slot `slot` died (`signal`:
/// the signal that killed it, if one did) and is being restarted: counts the
/// restart under its cause (what the process recorded, else `exit` or the
/// signal).
pub fn daemon_restarted(slot: usize, signal: Option<i32>) {
    let Some(seg) = shm::get() else { return };
    if slot >= MAX_DAEMONS {
        return;
    }
    let s = &seg.daemon_bank()[slot];
    let group = s.group.load(Relaxed) as usize % shm::MAX_GROUPS;
    let recorded = s.exit_cause.swap(0, AcqRel);
    let code = match (recorded, signal) {
        (c, _) if c > 0 => {
            seg.restarts[group][(c as usize - 1) % seg.restarts[group].len()].fetch_add(1, Relaxed);
            c
        }
        (_, Some(sig)) => {
            seg.signal_restarts[group][sig.clamp(0, shm::SIGNALS as i32 - 1) as usize]
                .fetch_add(1, Relaxed);
            100 + sig as u32
        }
        _ => {
            seg.restarts[group][0].fetch_add(1, Relaxed);
            1
        }
    };
    s.last_exit.store(code, Relaxed);
    s.restarts.fetch_add(1, Relaxed);
    s.busy.store(0, Relaxed);
    s.pid.store(0, Release);
}

/// Apache parent, post_config of a real start: the segment, the embedded
/// group and the configured daemon groups (`names`) registered.
pub fn parent_start(names: &[String]) -> Result<(), String> {
    let seg = shm::create()?;
    seg.group_index("");
    let mut mask = 0u64;
    for n in names {
        if let Some(i) = seg.group_index(n) {
            mask |= 1 << i;
        }
    }
    seg.daemon_groups.store(mask, Relaxed);
    // The new generation's bank starts empty (a bank two generations old).
    for s in seg.daemon_bank().iter() {
        s.pid.store(0, Relaxed);
        s.restarts.store(0, Relaxed);
        s.last_exit.store(0, Relaxed);
    }
    Ok(())
}

/// When this process last read its interpreters' garbage collections, us.
static GC_SAMPLED_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Per interpreter (its runtime's address): the collections read last.
static GC_SEEN: std::sync::Mutex<Vec<(usize, [u64; 3])>> = std::sync::Mutex::new(Vec::new());

/// A request thread, GIL held for interpreter `rt` after running the
/// application: at most once a second per process, reads the interpreter's
/// garbage collections (`gc.get_stats()`) and adds the new ones to this
/// process's group (a monotonic counter, kept across process restarts).
/// Otherwise one clock read.
pub fn sample_gc(gil: &crate::python::Gil, rt: &crate::python::Runtime) {
    let Some(seg) = shm::get() else { return };
    let now = crate::wsgi::metrics::wall_us();
    let last = GC_SAMPLED_US.load(Relaxed);
    if now.saturating_sub(last) < 1_000_000
        || GC_SAMPLED_US
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_err()
    {
        return;
    }
    let Some(now_counts) = crate::python::gc_stats::collections(gil) else {
        return;
    };
    let key = rt as *const crate::python::Runtime as usize;
    let mut seen = GC_SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let before = match seen.iter_mut().find(|(k, _)| *k == key) {
        Some((_, c)) => std::mem::replace(c, now_counts),
        None => {
            seen.push((key, now_counts));
            [0; 3]
        }
    };
    let st = &seg.shard()[my_group() % shm::MAX_GROUPS];
    for (g, (n, b)) in now_counts.iter().zip(before).enumerate() {
        st.gc[g].fetch_add(n.saturating_sub(b), Relaxed);
    }
}

/// A sub-interpreter was created in this process.
pub fn sub_interpreter_created() {
    if let Some(slot) = my_slot() {
        slot.sub_interpreters.fetch_add(1, Relaxed);
    }
}
