//! `mod_wsgi.total_requests`: the requests started in this process (the
//! thread counters of the environ come from the metrics accounting).

use std::sync::atomic::{AtomicU64, Ordering};

/// Requests started in this process so far.
static TOTAL_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Counts a request starting: the process's requests so far, this one
/// included (`mod_wsgi.total_requests`).
pub fn count_request() -> u64 {
    TOTAL_REQUESTS.fetch_add(1, Ordering::Relaxed) + 1
}
