//! mod_wsgi's per-request counters in the environ: `mod_wsgi.total_requests`
//! (requests started in this process), `mod_wsgi.thread_id` (this thread's
//! number) and `mod_wsgi.thread_requests` (requests this thread ran), all
//! `int`, counting the current request.

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests started in this process so far (`mod_wsgi.total_requests`).
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Threads that have run a request in this process (for `mod_wsgi.thread_id`).
static THREADS_SEEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's `mod_wsgi.thread_id` (0: not given yet) and the
    /// requests it has run (`mod_wsgi.thread_requests`).
    static THREAD_COUNTS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

/// Counts a request starting on this thread, as mod_wsgi does: the
/// process's requests so far (this one included), this thread's number
/// (1, 2, ... in the order threads first ran a request) and its requests
/// so far (this one included).
pub fn count_request() -> (u64, u64, u64) {
    let total = TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    let (id, n) = THREAD_COUNTS.with(|c| {
        let (mut id, n) = c.get();
        if id == 0 {
            id = THREADS_SEEN.fetch_add(1, Ordering::Relaxed) + 1;
        }
        c.set((id, n + 1));
        (id, n + 1)
    });
    (total, id, n)
}
