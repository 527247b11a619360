//! Per-request accounting: in the Apache child that handles a WSGI request
//! (embedded or relayed to a daemon) the request counters, byte counters
//! and the duration and first-byte histograms; in the process that runs
//! the application (an embedded Apache child or a daemon process) the
//! queue wait, busy threads and the request each thread serves.
//!
//! Cost: a thread-local, two clock reads and about twenty relaxed atomic
//! operations on the process's own shard and slot per request; no lock, no
//! allocation (label indices are cached per thread).

use super::process::{my_group, my_slot};
use super::shm::{self, ThreadSlot, MAX_GROUPS, MAX_THREADS};
use rwsgi_core::observe::labels::{method_index, status_class_index};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering::*};

/// What the handler knows about the request in progress on this thread.
#[derive(Clone, Copy)]
struct Current {
    /// When Apache read the request line, us since the epoch.
    start_us: u64,
    /// Group and application group indices, once known.
    group: usize,
    app: usize,
    labelled: bool,
    /// When the first response bytes were passed on (0: not yet).
    first_byte_us: u64,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
    /// The last (group name, index) and (application group, index) looked up.
    static CACHE: RefCell<(String, usize, String, usize)> = const { RefCell::new((String::new(), 0, String::new(), 0)) };
    /// This thread's number in its process (u32::MAX: not assigned yet).
    static THREAD: Cell<u32> = const { Cell::new(u32::MAX) };
}

/// Threads of this process that served a request, in first-use order.
static THREADS: AtomicU32 = AtomicU32::new(0);

fn now_us() -> u64 {
    crate::wsgi::metrics::wall_us()
}

/// The request a thread of this process serves: written under the
/// slot's sequence lock, cleared when [`Busy`] drops.
fn thread_slot() -> Option<&'static ThreadSlot> {
    let slot = my_slot()?;
    let n = THREAD.with(|t| {
        if t.get() == u32::MAX {
            t.set(THREADS.fetch_add(1, Relaxed));
        }
        t.get()
    }) as usize;
    (n < MAX_THREADS).then(|| &slot.thread[n])
}

/// A thread of this process serving a request (its slot's busy count and
/// the thread's current request); ended when dropped.
pub struct Busy {
    thread: Option<&'static ThreadSlot>,
}

/// Marks this thread busy with a request of `method` for `path` from
/// `client`, which started (Apache read it) at `start_us`; records the
/// queue wait (until now) for this process's group.
pub fn busy(start_us: u64, method: &[u8], path: &[u8], client: &[u8]) -> Busy {
    let Some(seg) = shm::get() else {
        return Busy { thread: None };
    };
    let now = now_us();
    seg.shard()[my_group() % MAX_GROUPS]
        .queue_wait
        .observe(now.saturating_sub(start_us));
    let Some(slot) = my_slot() else {
        return Busy { thread: None };
    };
    slot.busy.fetch_add(1, Relaxed);
    let thread = thread_slot();
    if let Some(t) = thread {
        let odd = (t.seq.load(Relaxed) & !1) + 1;
        t.seq.store(odd, Release);
        t.start_us.store(start_us, Relaxed);
        t.method.set(method);
        t.path.set(path);
        t.client.set(client);
        t.seq.store(odd + 1, Release);
    }
    Busy { thread }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let Some(slot) = my_slot() else { return };
        if shm::get().is_none() {
            return;
        }
        slot.busy.fetch_sub(1, Relaxed);
        slot.requests.fetch_add(1, Relaxed);
        if let Some(t) = self.thread {
            t.start_us.store(0, Release);
        }
    }
}

/// The request a sub-request interrupted on this thread (an SSI include of
/// a WSGI URL), put back by [`end`].
pub struct Outer(Option<Current>);

/// The Apache child's handler starts a request that Apache read at
/// `start_us` (`r->request_time`). Returns what [`end`] needs back.
pub fn begin(start_us: u64) -> Outer {
    if shm::get().is_none() {
        return Outer(None);
    }
    Outer(CURRENT.with(|c| {
        c.replace(Some(Current {
            start_us,
            group: 0,
            app: 0,
            labelled: false,
            first_byte_us: 0,
        }))
    }))
}

/// The request's process group (`""`: embedded) and application group are
/// known: it counts as in flight for the group from now on.
pub fn labels(group: &str, application_group: &str) {
    let Some(seg) = shm::get() else { return };
    let (g, a) = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != group || c.1 == usize::MAX {
            c.1 = seg.group_index(group).unwrap_or(usize::MAX);
            c.0.clear();
            c.0.push_str(group);
        }
        if c.2 != application_group || c.3 == usize::MAX {
            c.3 = seg.app_index(application_group);
            c.2.clear();
            c.2.push_str(application_group);
        }
        (c.1, c.3)
    });
    if g >= MAX_GROUPS {
        return;
    }
    CURRENT.with(|c| {
        if let Some(mut cur) = c.get() {
            if !cur.labelled {
                seg.shard()[g].in_flight.fetch_add(1, Relaxed);
            }
            cur.group = g;
            cur.app = a;
            cur.labelled = true;
            c.set(Some(cur));
        }
    });
}

/// The first response bytes of this thread's request go to Apache's output
/// filters (the first pass of a brigade).
#[inline]
pub fn first_byte() {
    if shm::get().is_none() {
        return;
    }
    CURRENT.with(|c| {
        if let Some(mut cur) = c.get() {
            if cur.first_byte_us == 0 {
                cur.first_byte_us = now_us();
                c.set(Some(cur));
            }
        }
    });
}

/// The handler is done with the request: `status` (the final HTTP status),
/// `method`, the body bytes read and sent; `outer` is what [`begin`] returned.
pub fn end(outer: Outer, status: i64, method: &[u8], read: u64, sent: u64) {
    if shm::get().is_none() {
        return;
    }
    let Some(cur) = CURRENT.with(|c| c.replace(outer.0)) else {
        return;
    };
    let Some(seg) = shm::get() else { return };
    if !cur.labelled {
        return;
    }
    let now = now_us();
    let st = &seg.shard()[cur.group];
    st.in_flight.fetch_sub(1, Relaxed);
    st.requests[cur.app][method_index(method)][status_class_index(status)].fetch_add(1, Relaxed);
    st.request_bytes.fetch_add(read, Relaxed);
    st.response_bytes.fetch_add(sent, Relaxed);
    st.duration.observe(now.saturating_sub(cur.start_us));
    let fb = if cur.first_byte_us == 0 {
        now
    } else {
        cur.first_byte_us
    };
    st.first_byte.observe(fb.saturating_sub(cur.start_us));
}
