//! What the module read from its shared memory at one moment (summed over
//! every Apache child and daemon process), and its rendering as metrics
//! ([`Snapshot::metrics`], the families of docs/metrics.md).

use super::exposition::{Encoder, Format, Kind};
use super::labels::{self, BUCKETS, BUCKET_BOUNDS, METHODS, STATUS_CLASSES};

/// A histogram of durations: counts per bucket (not cumulative, see
/// [`labels::bucket_index`]) and the sum of the observations, microseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket, the last one `+Inf`.
    pub counts: [u64; BUCKETS],
    /// Sum of the observed durations, microseconds.
    pub sum_us: u64,
}

impl Histogram {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Requests of one label set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestCount {
    /// Application group (`""`: the main interpreter; `(other)`: one past
    /// the bounded table).
    pub application_group: String,
    /// Index in [`METHODS`].
    pub method: usize,
    /// Index in [`STATUS_CLASSES`].
    pub status_class: usize,
    /// Requests completed.
    pub count: u64,
}

/// A request a thread is serving now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadRequest {
    /// The thread's number in its process (0-based, in first-use order).
    pub thread: u32,
    /// Request method.
    pub method: String,
    /// Request path and query (cut to 200 bytes).
    pub path: String,
    /// Client address.
    pub client: String,
    /// When it started, microseconds since the epoch.
    pub start_us: u64,
}

/// One process of a group: an Apache child (embedded mode) or a daemon
/// process.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Process {
    /// Process number in its group (daemon processes; Apache children: the
    /// slot number).
    pub index: u32,
    /// Process id.
    pub pid: i32,
    /// User id it runs as.
    pub uid: u32,
    /// When it started, microseconds since the epoch.
    pub start_us: u64,
    /// Requests it completed.
    pub requests: u64,
    /// Resident set size, bytes (0 when unknown).
    pub rss_bytes: u64,
    /// CPU time (user + system), seconds.
    pub cpu_seconds: f64,
    /// Request threads, and how many serve a request now.
    pub threads: u32,
    /// Threads serving a request now.
    pub busy: u32,
    /// Times the process in this slot was restarted.
    pub restarts: u64,
    /// Why the previous process in this slot ended (a restart cause), if one did.
    pub last_exit: Option<String>,
    /// Python sub-interpreters it created.
    pub sub_interpreters: u64,
    /// The requests its threads are serving.
    pub current: Vec<ThreadRequest>,
}

/// A process group: `""` for embedded mode (Apache's children), else a
/// `WSGIDaemonProcess` group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Its name (`""`: embedded).
    pub name: String,
    /// Whether it is a daemon process group.
    pub daemon: bool,
    /// Completed requests per label set (only non-zero ones).
    pub requests: Vec<RequestCount>,
    /// Request body bytes read.
    pub request_bytes: u64,
    /// Response body bytes sent.
    pub response_bytes: u64,
    /// From the request's start (Apache read its request line) to its end.
    pub duration: Histogram,
    /// From the request's start until a thread began running it.
    pub queue_wait: Histogram,
    /// From the request's start until the first response bytes were passed on.
    pub first_byte: Histogram,
    /// Requests in progress.
    pub in_flight: i64,
    /// Python garbage collections per generation (0, 1, 2).
    pub gc_collections: [u64; 3],
    /// Restarts per cause (a [`labels::RESTART_CAUSES`] name or a signal name).
    pub restarts: Vec<(String, u64)>,
    /// Its live processes.
    pub processes: Vec<Process>,
}

impl Group {
    /// Requests completed, all label sets.
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|r| r.count).sum()
    }

    /// Threads serving a request, and all request threads, of its live processes.
    pub fn threads(&self) -> (u64, u64) {
        self.processes.iter().fold((0, 0), |(b, t), p| {
            (b + p.busy as u64, t + p.threads.max(p.busy) as u64)
        })
    }
}

/// A recent error-log line with an RWSGI id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorEntry {
    /// When it was logged, microseconds since the epoch.
    pub time_us: u64,
    /// The process that logged it.
    pub pid: i32,
    /// Its id (`RWSGI0012`).
    pub id: String,
    /// The message (cut to 300 bytes).
    pub message: String,
}

/// The whole server at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// When it was taken, microseconds since the epoch.
    pub now_us: u64,
    /// When the counters started (the Apache parent's first start).
    pub since_us: u64,
    /// The Apache parent's pid.
    pub server_pid: i32,
    /// Process groups, embedded first.
    pub groups: Vec<Group>,
    /// The last errors, oldest first (at most 20).
    pub errors: Vec<ErrorEntry>,
}

/// A histogram family of every group: name, help, the group's histogram.
type HistogramFamily = (&'static str, &'static str, fn(&Group) -> &Histogram);
/// A counter family of every group: name, help, the group's value.
type CounterFamily = (&'static str, &'static str, fn(&Group) -> u64);

fn seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

impl Snapshot {
    /// The metrics document in `format` (families and labels of docs/metrics.md).
    pub fn metrics(&self, format: Format) -> String {
        let mut e = Encoder::new(format);
        let g = |g: &Group| labels::group_label(&g.name).to_string();

        e.family(
            "rwsgi_requests_total",
            Kind::Counter,
            "WSGI requests completed, by process group, application group, method and status class.",
        );
        for grp in &self.groups {
            let pg = g(grp);
            for r in &grp.requests {
                e.sample(
                    "rwsgi_requests_total",
                    &[
                        ("process_group", &pg),
                        (
                            "application_group",
                            labels::group_label(&r.application_group),
                        ),
                        ("method", METHODS[r.method.min(METHODS.len() - 1)]),
                        ("status_class", STATUS_CLASSES[r.status_class.min(4)]),
                    ],
                    r.count as f64,
                );
            }
        }
        let histograms: [HistogramFamily; 3] = [
            (
                "rwsgi_request_duration_seconds",
                "Time from the request's start (Apache read its request line) to the end of its response.",
                |g| &g.duration,
            ),
            (
                "rwsgi_request_queue_wait_seconds",
                "Time from the request's start until a thread began running the application (daemon mode: until a daemon thread took it).",
                |g| &g.queue_wait,
            ),
            (
                "rwsgi_time_to_first_byte_seconds",
                "Time from the request's start until the first bytes of its response were passed to Apache's output filters.",
                |g| &g.first_byte,
            ),
        ];
        for (name, help, get) in histograms {
            e.family(name, Kind::Histogram, help);
            for grp in &self.groups {
                let h = get(grp);
                e.histogram(
                    name,
                    &[("process_group", &g(grp))],
                    &BUCKET_BOUNDS,
                    &h.counts,
                    seconds(h.sum_us),
                );
            }
        }
        let counters: [CounterFamily; 2] = [
            (
                "rwsgi_request_bytes_total",
                "Request body bytes read by the application.",
                |g| g.request_bytes,
            ),
            (
                "rwsgi_response_bytes_total",
                "Response body bytes sent.",
                |g| g.response_bytes,
            ),
        ];
        for (name, help, get) in counters {
            e.family(name, Kind::Counter, help);
            for grp in &self.groups {
                e.sample(name, &[("process_group", &g(grp))], get(grp) as f64);
            }
        }
        e.family(
            "rwsgi_requests_in_flight",
            Kind::Gauge,
            "Requests in progress.",
        );
        for grp in &self.groups {
            e.sample(
                "rwsgi_requests_in_flight",
                &[("process_group", &g(grp))],
                grp.in_flight.max(0) as f64,
            );
        }
        e.family(
            "rwsgi_threads",
            Kind::Gauge,
            "Request threads of the group's live processes, busy (serving a request) or idle.",
        );
        for grp in &self.groups {
            let (busy, total) = grp.threads();
            let pg = g(grp);
            e.sample(
                "rwsgi_threads",
                &[("process_group", &pg), ("state", "busy")],
                busy as f64,
            );
            e.sample(
                "rwsgi_threads",
                &[("process_group", &pg), ("state", "idle")],
                (total - busy) as f64,
            );
        }
        let daemons: Vec<&Group> = self.groups.iter().filter(|g| g.daemon).collect();
        e.family(
            "rwsgi_daemon_processes",
            Kind::Gauge,
            "Daemon processes alive.",
        );
        for grp in &daemons {
            e.sample(
                "rwsgi_daemon_processes",
                &[("process_group", &g(grp))],
                grp.processes.len() as f64,
            );
        }
        e.family(
            "rwsgi_daemon_restarts_total",
            Kind::Counter,
            "Daemon processes restarted, by cause: exit, a signal's name, maximum-requests, request-timeout, inactivity, restart-interval, startup-timeout, cpu-time-limit, reload.",
        );
        for grp in &daemons {
            for (cause, n) in &grp.restarts {
                e.sample(
                    "rwsgi_daemon_restarts_total",
                    &[("process_group", &g(grp)), ("cause", cause)],
                    *n as f64,
                );
            }
        }
        e.family(
            "rwsgi_daemon_process_resident_memory_bytes",
            Kind::Gauge,
            "Resident set size of each daemon process.",
        );
        for grp in &daemons {
            for p in &grp.processes {
                let idx = p.index.to_string();
                e.sample(
                    "rwsgi_daemon_process_resident_memory_bytes",
                    &[("process_group", &g(grp)), ("process", &idx)],
                    p.rss_bytes as f64,
                );
            }
        }
        e.family(
            "rwsgi_daemon_process_cpu_seconds_total",
            Kind::Counter,
            "CPU time (user and system) of each daemon process; starts again from 0 when the process is replaced.",
        );
        for grp in &daemons {
            for p in &grp.processes {
                let idx = p.index.to_string();
                e.sample(
                    "rwsgi_daemon_process_cpu_seconds_total",
                    &[("process_group", &g(grp)), ("process", &idx)],
                    p.cpu_seconds,
                );
            }
        }
        e.family(
            "rwsgi_python_gc_collections_total",
            Kind::Counter,
            "Python garbage collections, by generation, in all interpreters of the group's processes.",
        );
        for grp in &self.groups {
            for (gen, n) in grp.gc_collections.iter().enumerate() {
                let gen = gen.to_string();
                e.sample(
                    "rwsgi_python_gc_collections_total",
                    &[("process_group", &g(grp)), ("generation", &gen)],
                    *n as f64,
                );
            }
        }
        e.family(
            "rwsgi_python_sub_interpreters",
            Kind::Gauge,
            "Python sub-interpreters (application groups other than the main interpreter) in the group's live processes.",
        );
        for grp in &self.groups {
            let n: u64 = grp.processes.iter().map(|p| p.sub_interpreters).sum();
            e.sample(
                "rwsgi_python_sub_interpreters",
                &[("process_group", &g(grp))],
                n as f64,
            );
        }
        e.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        let mut dur = Histogram::default();
        dur.counts[0] = 2;
        dur.counts[9] = 1;
        dur.sum_us = 1_500_000;
        Snapshot {
            now_us: 10,
            since_us: 1,
            server_pid: 1,
            groups: vec![
                Group {
                    name: String::new(),
                    requests: vec![RequestCount {
                        application_group: String::new(),
                        method: 0,
                        status_class: 1,
                        count: 3,
                    }],
                    duration: dur,
                    processes: vec![Process {
                        threads: 25,
                        busy: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Group {
                    name: "app".into(),
                    daemon: true,
                    restarts: vec![("SIGKILL".into(), 2), ("maximum-requests".into(), 1)],
                    processes: vec![Process {
                        index: 0,
                        threads: 5,
                        rss_bytes: 4096,
                        cpu_seconds: 0.5,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
            errors: vec![],
        }
    }

    #[test]
    fn metrics_text() {
        let text = sample().metrics(Format::Prometheus);
        for line in [
            "rwsgi_requests_total{process_group=\"%{GLOBAL}\",application_group=\"%{GLOBAL}\",method=\"GET\",status_class=\"2xx\"} 3",
            "rwsgi_request_duration_seconds_bucket{process_group=\"%{GLOBAL}\",le=\"0.001\"} 2",
            "rwsgi_request_duration_seconds_bucket{process_group=\"%{GLOBAL}\",le=\"1.0\"} 3",
            "rwsgi_request_duration_seconds_bucket{process_group=\"%{GLOBAL}\",le=\"+Inf\"} 3",
            "rwsgi_request_duration_seconds_sum{process_group=\"%{GLOBAL}\"} 1.5",
            "rwsgi_request_duration_seconds_count{process_group=\"%{GLOBAL}\"} 3",
            "rwsgi_threads{process_group=\"%{GLOBAL}\",state=\"busy\"} 1",
            "rwsgi_threads{process_group=\"%{GLOBAL}\",state=\"idle\"} 24",
            "rwsgi_daemon_processes{process_group=\"app\"} 1",
            "rwsgi_daemon_restarts_total{process_group=\"app\",cause=\"SIGKILL\"} 2",
            "rwsgi_daemon_process_resident_memory_bytes{process_group=\"app\",process=\"0\"} 4096",
            "rwsgi_daemon_process_cpu_seconds_total{process_group=\"app\",process=\"0\"} 0.5",
            "# TYPE rwsgi_requests_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        // Embedded mode has no daemon families' samples.
        assert!(!text.contains("rwsgi_daemon_processes{process_group=\"%{GLOBAL}\"}"));
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn metrics_openmetrics() {
        let text = sample().metrics(Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("# TYPE rwsgi_requests counter\n"));
        assert!(text.contains("# TYPE rwsgi_daemon_restarts counter\n"));
        assert!(text.contains("# TYPE rwsgi_request_duration_seconds histogram\n"));
        assert!(text.contains("\nrwsgi_requests_total{"));
    }
}
