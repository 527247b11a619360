//! The telemetry reporter of `WSGITelemetryService` (config_telemetry.rs):
//! one thread per process serving requests (Apache child or daemon
//! process) that every interval sends this process's metrics as one
//! datagram to the UNIX datagram socket, in mod_wsgi 6's wire format
//! (`rwsgi_core::telemetry`, docs/telemetry.md), followed by one datagram
//! per slow request (`WSGISlowRequests`): those that completed over the
//! threshold since the last tick, then those still running over it.
//! Sending never blocks: with no listener the datagram is dropped, as
//! mod_wsgi's fire-and-forget reporter.

use super::metrics::{self, Finished};
use crate::apache::{self, Level};
use crate::ffi;
use rwsgi_core::telemetry::{field as f, Datagram, KIND_REQUEST, KIND_SLOW_REQUEST};
use std::collections::VecDeque;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Completed slow requests waiting for the next tick (bounded).
static SLOW_DONE: Mutex<VecDeque<Slow>> = Mutex::new(VecDeque::new());
const SLOW_DONE_MAX: usize = 256;
static SEQ: AtomicU32 = AtomicU32::new(0);

/// One slow request as sent (times in microseconds).
#[derive(Debug, Clone, Copy)]
struct Slow {
    completed: bool,
    start_us: u64,
    duration_us: u64,
    thread_id: u32,
    input: (u64, u64),
    output: (u64, u64),
    cpu: (u64, u64),
}

/// Called at the end of each recorded request: keeps it for the next tick
/// when it took at least `WSGISlowRequests` (from Apache receiving it to
/// the end of the application's response).
pub fn request_finished(fin: &Finished) {
    let threshold = crate::config_telemetry::slow_us();
    if threshold == 0 {
        return;
    }
    let start = if fin.times.request_start != 0 {
        fin.times.request_start
    } else {
        fin.application_start
    };
    let duration_us = fin.application_finish.saturating_sub(start);
    if duration_us < threshold {
        return;
    }
    let mut q = SLOW_DONE.lock().unwrap_or_else(|e| e.into_inner());
    if q.len() >= SLOW_DONE_MAX {
        q.pop_front();
    }
    q.push_back(Slow {
        completed: true,
        start_us: start,
        duration_us,
        thread_id: fin.thread_id,
        input: (fin.input.bytes, fin.input.ops),
        output: (fin.output.bytes, fin.output.ops),
        cpu: fin.cpu,
    });
}

/// Starts the reporter in this process if `WSGITelemetryService` is set:
/// turns on metrics recording and spawns the reporter thread.
/// `process_group` is '' in Apache's children (embedded mode); `server`
/// (the process's server, which lives as long as the process) is where
/// the reporter logs.
pub fn start(process_group: &str, server: *const ffi::server_rec) {
    let cfg = crate::config_telemetry::telemetry();
    let Some((path, interval)) = cfg.service else {
        return;
    };
    let socket = match UnixDatagram::unbound() {
        Ok(s) => s,
        Err(e) => {
            apache::log_s(
                server,
                Level::Warn,
                0,
                &format!("RWSGI0101: telemetry reporter cannot create a socket for unix:{path}: {e}; metrics will not be sent"),
            );
            return;
        }
    };
    let _ = socket.set_nonblocking(true);
    metrics::start_recording();
    // The first drain only starts the window, as mod_wsgi's seeding. It is
    // done here, before the reporter thread exists, so that requests served
    // before that thread first runs (a loaded machine) are in its first
    // datagram rather than dropped with the seed.
    let _ = metrics::drain();
    let reporter = Reporter {
        socket,
        path,
        interval,
        slow_us: cfg.slow_us,
        server: server as usize,
        options: cfg.options,
        group: process_group.to_string(),
        hostname: hostname(),
        python_version: crate::python::version_string(),
        parent_pid: nix::unistd::getppid().as_raw() as u32,
    };
    let spawned = std::thread::Builder::new()
        .name("wsgi-telemetry".into())
        .spawn(move || reporter.run());
    if let Err(e) = spawned {
        apache::log_s(
            server,
            Level::Warn,
            0,
            &format!("RWSGI0101: cannot start the telemetry reporter thread: {e}; metrics will not be sent"),
        );
    }
}

struct Reporter {
    socket: UnixDatagram,
    path: String,
    interval: f64,
    slow_us: u64,
    /// The `server_rec` to log to (an address: it outlives the thread).
    server: usize,
    options: u32,
    group: String,
    hostname: String,
    /// `sys.version`'s first word (mod_wsgi's python_version field).
    python_version: String,
    /// The Apache parent (mod_wsgi's process_parent_pid).
    parent_pid: u32,
}

impl Reporter {
    fn run(self) {
        apache::log_s(
            self.server as *const ffi::server_rec,
            Level::Info,
            0,
            &format!(
                "RWSGI0102: telemetry reporter of process {} started; target 'unix:{}', interval {:.3} s, slow requests {}, options {}",
                std::process::id(),
                self.path,
                self.interval,
                match self.slow_us {
                    0 => "off".to_string(),
                    us => format!("over {:.3} s", us as f64 / 1e6),
                },
                if self.options & rwsgi_core::telemetry::CAPTURE_USER_AGENT != 0 {
                    "CaptureUserAgent"
                } else {
                    "None"
                }
            ),
        );
        loop {
            std::thread::sleep(Duration::from_secs_f64(self.interval.max(0.1)));
            self.tick();
        }
    }

    fn send(&self, d: &Datagram) {
        // Fire and forget: no listener, or a full queue, drops it.
        let _ = self.socket.send_to(d.bytes(), &self.path);
    }

    fn header(kind: u8, now: u64) -> Datagram {
        let seq = SEQ.fetch_add(1, Relaxed).wrapping_add(1);
        Datagram::new(kind, std::process::id(), seq, now)
    }

    fn tick(&self) {
        let Some(iv) = metrics::drain() else { return };
        let now = iv.stop_us;
        let period_us = iv.stop_us.saturating_sub(iv.start_us).max(1) as f64;
        let period = period_us / 1e6;
        let max_threads = metrics::max_threads().max(1);
        let mut d = Self::header(KIND_REQUEST, now);
        d.put_bytes(f::PYTHON_VERSION, self.python_version.as_bytes());
        d.put_bytes(f::HOSTNAME, self.hostname.as_bytes());
        d.put_bytes(f::PROCESS_GROUP, self.group.as_bytes());
        d.put_u64(f::PROCESS_PARENT_PID, self.parent_pid as u64);
        d.put_f64(f::SAMPLE_PERIOD, period);
        d.put_f64(f::TELEMETRY_INTERVAL, self.interval);
        d.put_f64(f::SLOW_REQUESTS_THRESHOLD, self.slow_us as f64 / 1e6);
        d.put_u64(f::REQUEST_COUNT, iv.count);
        d.put_f64(f::REQUEST_THROUGHPUT, iv.count as f64 / period);
        let busy: u64 = iv.slots.iter().map(|s| s.busy_us).sum();
        d.put_f64(
            f::CAPACITY_UTILIZATION,
            busy as f64 / (period_us * max_threads as f64),
        );
        d.put_f64(f::CPU_USER_UTILIZATION, iv.cpu.0 as f64 / period_us);
        d.put_f64(f::CPU_SYSTEM_UTILIZATION, iv.cpu.1 as f64 / period_us);
        d.put_f64(f::CPU_UTILIZATION, (iv.cpu.0 + iv.cpu.1) as f64 / period_us);
        let (rss, max_rss) = super::metrics_api::memory();
        d.put_u64(f::MEMORY_RSS, rss.max(0) as u64);
        d.put_u64(f::MEMORY_MAX_RSS, max_rss.max(0) as u64);
        d.put_u64(f::REQUEST_THREADS_MAXIMUM, max_threads);
        d.put_u64(f::REQUEST_THREADS_STARTED, iv.threads_started);
        d.put_u64(
            f::REQUEST_THREADS_ACTIVE,
            metrics::process_counters().active.max(0) as u64,
        );
        let mean = |i: usize| {
            let p = &iv.phases[i];
            if p.n == 0 {
                0.0
            } else {
                p.total_us as f64 / p.n as f64 / 1e6
            }
        };
        if !iv.phases.is_empty() {
            d.put_f64(f::SERVER_TIME, mean(0));
            if metrics::in_daemon() {
                d.put_f64(f::QUEUE_TIME, mean(1));
                d.put_f64(f::DAEMON_TIME, mean(2));
            }
            d.put_f64(f::APPLICATION_TIME, mean(3));
        }
        d.put_u64(f::INPUT_BYTES_TOTAL, iv.input.0);
        d.put_u64(f::INPUT_READS_TOTAL, iv.input.1);
        d.put_u64(f::OUTPUT_BYTES_TOTAL, iv.output.0);
        d.put_u64(f::OUTPUT_WRITES_TOTAL, iv.output.1);
        if !iv.slots.is_empty() {
            let completed: Vec<i64> = iv.slots.iter().map(|s| s.completed as i64).collect();
            d.put_i32_array(f::THREADS_COMPLETED, &completed);
            // mod_wsgi's per-thread times: f64 seconds.
            let secs = |g: &dyn Fn(&metrics::Slot) -> u64| -> Vec<f64> {
                iv.slots.iter().map(|s| g(s) as f64 / 1e6).collect()
            };
            d.put_f64_array(f::THREADS_BUSY_TIME, &secs(&|s| s.busy_us));
            d.put_f64_array(f::THREADS_CPU_TIME, &secs(&|s| s.cpu_us));
            d.put_f64_array(f::THREADS_CURRENT_ELAPSED, &secs(&|s| s.current_us));
            d.put_f64_array(f::THREADS_MAX_DURATION, &secs(&|s| s.max_duration_us));
        }
        self.send(&d);
        if self.slow_us == 0 {
            return;
        }
        let done: Vec<Slow> = SLOW_DONE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        let wall = metrics::wall_us();
        let active = metrics::threads().into_iter().filter_map(|t| {
            let since = t.busy_since();
            let elapsed = wall.saturating_sub(since);
            (since != 0 && elapsed >= self.slow_us).then_some(Slow {
                completed: false,
                start_us: since,
                duration_us: elapsed,
                thread_id: t.id,
                input: (0, 0),
                output: (0, 0),
                cpu: (0, 0),
            })
        });
        for s in done.into_iter().chain(active) {
            let mut d = Self::header(KIND_SLOW_REQUEST, wall);
            d.put_u64(f::SLOW_STATE, s.completed as u64);
            d.put_f64(f::SLOW_START_STAMP, s.start_us as f64 / 1e6);
            d.put_f64(f::SLOW_DURATION, s.duration_us as f64 / 1e6);
            d.put_u64(f::SLOW_THREAD_ID, s.thread_id as u64);
            d.put_u64(f::SLOW_INPUT_BYTES, s.input.0);
            d.put_u64(f::SLOW_INPUT_READS, s.input.1);
            d.put_u64(f::SLOW_OUTPUT_BYTES, s.output.0);
            d.put_u64(f::SLOW_OUTPUT_WRITES, s.output.1);
            d.put_f64(f::SLOW_CPU_USER_TIME, s.cpu.0 as f64 / 1e6);
            d.put_f64(f::SLOW_CPU_SYSTEM_TIME, s.cpu.1 as f64 / 1e6);
            self.send(&d);
        }
    }
}

/// This machine's host name ('' if unknown).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes.
    if unsafe { libc::gethostname(buf.as_mut_ptr() as *mut libc::c_char, buf.len()) } != 0 {
        return String::new();
    }
    let n = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
