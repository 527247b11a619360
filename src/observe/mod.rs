//! The whole server's metrics (`WSGIMetricsEndpoint`, Prometheus text
//! format 0.0.4 or OpenMetrics) and status page (`WSGIStatusPage`), kept
//! in one shared memory segment that every Apache child and daemon process
//! writes ([`shm`]) and that whichever Apache child answers reads
//! ([`collect`], [`handler`]). Names, labels and the JSON are documented in
//! docs/metrics.md and docs/status.md; the encoding is
//! `rwsgi_core::observe`.

pub mod collect;
pub mod handler;
pub mod process;
pub mod request;
pub mod shm;

/// Notes an error-log line for the status page's last errors: lines at
/// error level or worse that start with an RWSGI id.
pub fn note_log_line(level: crate::apache::Level, msg: &str) {
    // A daemon process's lines carry the client first: "[client A] RWSGI...".
    let msg = match msg.strip_prefix("[client ") {
        Some(rest) => rest.split_once("] ").map_or(msg, |(_, m)| m),
        None => msg,
    };
    if (level as i32) > crate::ffi::APLOG_ERR as i32 || !msg.starts_with("RWSGI") {
        return;
    }
    if let Some(seg) = shm::get() {
        seg.note_error(msg);
    }
}
