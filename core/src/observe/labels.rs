//! Bounded label values of rwsgi's metrics and the fixed buckets of its
//! duration histograms (docs/metrics.md).

/// HTTP methods counted by name (RFC 9110 §9 and PATCH, RFC 5789); any
/// other method is counted as `OTHER`, so the label set stays bounded.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "OTHER",
];

/// The index in [`METHODS`] of request method `m` (case-sensitive, as
/// RFC 9110 §9.1 makes method names); unknown methods give `OTHER`'s.
pub fn method_index(m: &[u8]) -> usize {
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|k| k.as_bytes() == m)
        .unwrap_or(METHODS.len() - 1)
}

/// Status classes (RFC 9110 §15): `1xx` .. `5xx`.
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The index in [`STATUS_CLASSES`] of HTTP status `code`; a code outside
/// 100..=599 (never sent by Apache) counts as `5xx`.
pub fn status_class_index(code: i64) -> usize {
    match code {
        100..=599 => (code / 100 - 1) as usize,
        _ => 4,
    }
}

/// Upper bounds of the duration histograms' buckets, seconds (the last
/// bucket, `+Inf`, is implied): 1 ms to 60 s.
pub const BUCKET_BOUNDS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Buckets of a histogram: one per bound, then `+Inf`.
pub const BUCKETS: usize = BUCKET_BOUNDS.len() + 1;

/// The bucket of a duration of `us` microseconds: the first whose bound is
/// at least the duration (Prometheus' `le`, less than or equal), else the
/// last (`+Inf`).
pub fn bucket_index(us: u64) -> usize {
    const BOUNDS_US: [u64; 15] = [
        1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
    ];
    BOUNDS_US
        .iter()
        .position(|&b| us <= b)
        .unwrap_or(BUCKETS - 1)
}

/// The causes a daemon process restart is counted under
/// (`rwsgi_daemon_restarts_total{cause}`), besides a signal's name: the
/// index is what the daemon process records before it exits (1 + index;
/// the numbering of `Recycle` in the module). A process that ran out of
/// `memory-limit` (RLIMIT_DATA) gets no distinct exit from the kernel: it
/// is counted as `exit` or under the signal that ended it.
pub const RESTART_CAUSES: [&str; 8] = [
    "exit",
    "maximum-requests",
    "request-timeout",
    "inactivity",
    "restart-interval",
    "startup-timeout",
    "cpu-time-limit",
    "reload",
];

/// The label value of process group `name`: `%{GLOBAL}` (mod_wsgi's name
/// for embedded mode) for the empty name.
pub fn group_label(name: &str) -> &str {
    if name.is_empty() {
        "%{GLOBAL}"
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded() {
        assert_eq!(METHODS[method_index(b"GET")], "GET");
        assert_eq!(METHODS[method_index(b"PATCH")], "PATCH");
        assert_eq!(METHODS[method_index(b"PROPFIND")], "OTHER");
        assert_eq!(METHODS[method_index(b"get")], "OTHER");
        assert_eq!(METHODS[method_index(b"")], "OTHER");
    }

    #[test]
    fn status_classes() {
        assert_eq!(STATUS_CLASSES[status_class_index(100)], "1xx");
        assert_eq!(STATUS_CLASSES[status_class_index(204)], "2xx");
        assert_eq!(STATUS_CLASSES[status_class_index(399)], "3xx");
        assert_eq!(STATUS_CLASSES[status_class_index(404)], "4xx");
        assert_eq!(STATUS_CLASSES[status_class_index(503)], "5xx");
        assert_eq!(STATUS_CLASSES[status_class_index(0)], "5xx");
        assert_eq!(STATUS_CLASSES[status_class_index(700)], "5xx");
    }

    #[test]
    fn buckets_are_le() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(1_000), 0);
        assert_eq!(bucket_index(1_001), 1);
        assert_eq!(bucket_index(999_999), 9);
        assert_eq!(bucket_index(1_000_000), 9);
        assert_eq!(bucket_index(60_000_000), 14);
        assert_eq!(bucket_index(60_000_001), 15);
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn embedded_group_label() {
        assert_eq!(group_label(""), "%{GLOBAL}");
        assert_eq!(group_label("app"), "app");
    }
}
