//! The server-wide observability of rwsgi (`WSGIMetricsEndpoint`,
//! `WSGIStatusPage`, `rwsgi-express --metrics-url/--status-url`): the pure
//! part, testable without Apache.
//!
//! - [`labels`]: the bounded label values (HTTP methods, status classes)
//!   and the fixed histogram buckets, in seconds.
//! - [`exposition`]: Prometheus text format 0.0.4 and OpenMetrics 1.0
//!   encoding, and the choice between them from an `Accept` header.
//! - [`snapshot`]: what the module read from its shared memory, and its
//!   rendering as metrics (docs/metrics.md).
//! - [`status_json`]: the same snapshot as the status page's JSON
//!   (docs/status.md).
//! - [`cidr`]: the client allow-list (`WSGIMetricsAllow`, `--metrics-allow`).

pub mod cidr;
pub mod exposition;
pub mod labels;
pub mod snapshot;
pub mod status_json;

/// The status page itself: one self-contained HTML document (inline CSS
/// and JavaScript, nothing fetched but its JSON beside it).
pub const STATUS_PAGE_HTML: &str = include_str!("status_page.html");
