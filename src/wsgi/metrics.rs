//! The request accounting behind mod_wsgi 6's metrics and events API
//! (`mod_wsgi.process_metrics()`, `request_metrics()`, the request events):
//! process-wide counters, the per-thread slots (`thread_id`, 1-based, in the
//! order threads served their first request) and the per-interval
//! accumulators. No Python here; `metrics_api` turns this into dicts.
//!
//! Cost: with no event subscriber and recording off (the default), a request
//! costs one thread-local lookup, three relaxed atomic adds and one atomic
//! load per phase hook. Clocks, CPU times and GIL waits are only read once
//! `mod_wsgi.start_recording_metrics()` was called or an event subscriber
//! exists ([`detailed`]).

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

const RECORDING: u8 = 1;
const SUBSCRIBED: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(0);

/// Requests completed by this process.
static TOTAL: AtomicU64 = AtomicU64::new(0);
/// Requests in flight in this process.
static ACTIVE: AtomicI64 = AtomicI64::new(0);
/// Busy time of completed requests since recording started, microseconds.
static BUSY_US: AtomicU64 = AtomicU64::new(0);
/// `request_threads_maximum`: threads per process (MPM or `threads=`).
static MAX_THREADS: AtomicU64 = AtomicU64::new(1);
/// When this process started, microseconds since the epoch.
static PROCESS_START_US: AtomicU64 = AtomicU64::new(0);
/// Why the process stops (`process_stopping`'s `shutdown_reason`).
static SHUTDOWN_REASON: Mutex<&'static str> = Mutex::new("");

/// Whether per-request detail (clocks, CPU, GIL waits, event payloads) is
/// gathered: recording was started or an event subscriber exists.
#[inline]
pub fn detailed() -> bool {
    MODE.load(Relaxed) != 0
}

/// Whether `mod_wsgi.start_recording_metrics()` was called.
#[inline]
pub fn recording() -> bool {
    MODE.load(Relaxed) & RECORDING != 0
}

/// Whether an event subscriber exists (the request hooks publish events).
#[inline]
pub fn subscribed() -> bool {
    MODE.load(Relaxed) & SUBSCRIBED != 0
}

/// Notes that an event subscriber exists in this process.
pub fn set_subscribed() {
    MODE.fetch_or(SUBSCRIBED, Relaxed);
}

/// Starts per-request recording (idempotent): the first call seeds the
/// interval that the first `request_metrics()` reports.
pub fn start_recording() {
    let mut iv = interval();
    if MODE.fetch_or(RECORDING, Relaxed) & RECORDING == 0 {
        iv.reset(wall_us());
    }
}

/// Whether this process is a daemon process (set by [`init_process`]).
static IN_DAEMON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records the process's configuration: threads per process (the per-slot
/// lists' length), whether it is a daemon process, and the start time.
/// Called when each interpreter's `mod_wsgi` module is made.
pub fn init_process(max_threads: i64, daemon: bool) {
    MAX_THREADS.store(max_threads.max(1) as u64, Relaxed);
    IN_DAEMON.store(daemon, Relaxed);
    // Each sub-interpreter's module calls this too: the first one counts.
    let _ = PROCESS_START_US.compare_exchange(0, wall_us(), Relaxed, Relaxed);
}

/// Whether this process is a daemon process (daemon-only phases apply).
pub fn in_daemon() -> bool {
    IN_DAEMON.load(Relaxed)
}

/// Sets `process_stopping`'s `shutdown_reason` (mod_wsgi's names:
/// "shutdown_signal", "maximum_requests", ...).
pub fn set_shutdown_reason(reason: &'static str) {
    *SHUTDOWN_REASON.lock().unwrap_or_else(|e| e.into_inner()) = reason;
}

/// `process_stopping`'s `shutdown_reason` ('' when none was set: embedded).
pub fn shutdown_reason() -> &'static str {
    *SHUTDOWN_REASON.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wall clock, microseconds since the Unix epoch.
pub fn wall_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Monotonic clock in microseconds (never 0).
fn mono_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000 + 1
}

/// (user, system) CPU time in microseconds of this thread or process.
pub fn cpu_us(thread: bool) -> (u64, u64) {
    // SAFETY: getrusage writes one rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if thread {
        libc::RUSAGE_THREAD
    } else {
        libc::RUSAGE_SELF
    };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0, 0);
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

// ---- threads ------------------------------------------------------------------

/// One request thread of this process.
pub struct ThreadInfo {
    /// `thread_id`: 1-based, in the order threads served a first request.
    pub id: u32,
    /// Requests this thread started.
    pub requests: AtomicU64,
    /// Start (wall, us) of the request it is serving while recording; 0
    /// when idle.
    busy_since_us: AtomicU64,
}

impl ThreadInfo {
    /// Start (wall, us) of the request this thread is serving while
    /// recording; 0 when idle.
    pub fn busy_since(&self) -> u64 {
        self.busy_since_us.load(Relaxed)
    }
}

static THREADS: Mutex<Vec<&'static ThreadInfo>> = Mutex::new(Vec::new());

/// The request threads so far, in `thread_id` order.
pub fn threads() -> Vec<&'static ThreadInfo> {
    THREADS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

struct Local {
    info: Cell<*const ThreadInfo>,
    /// GIL waits of this thread: total microseconds and count.
    gil_us: Cell<u64>,
    gil_n: Cell<u64>,
    /// The wait (us + 1) of the GIL acquisition that began the request this
    /// thread is about to serve, 0 when none is pending.
    pending: Cell<u64>,
    /// The request's `request_data` dict (a `PyObject*`, owned), or null.
    request_data: Cell<*mut std::ffi::c_void>,
    /// Whether this thread is inside a request.
    in_request: Cell<bool>,
}

thread_local! {
    // Const-initialised Cells without destructors (see python::TSTATE).
    static LOCAL: Local = const {
        Local {
            info: Cell::new(std::ptr::null()),
            gil_us: Cell::new(0),
            gil_n: Cell::new(0),
            pending: Cell::new(0),
            request_data: Cell::new(std::ptr::null_mut()),
            in_request: Cell::new(false),
        }
    };
}

fn register_thread() -> &'static ThreadInfo {
    let mut all = THREADS.lock().unwrap_or_else(|e| e.into_inner());
    let info: &'static ThreadInfo = Box::leak(Box::new(ThreadInfo {
        id: all.len() as u32 + 1,
        requests: AtomicU64::new(0),
        busy_since_us: AtomicU64::new(0),
    }));
    all.push(info);
    info
}

/// Starts timing a GIL acquisition: 0 (not timed) unless [`detailed`].
#[inline]
pub fn gil_timer() -> u64 {
    if detailed() {
        mono_us()
    } else {
        0
    }
}

/// Records a GIL acquisition that started at `t0` (from [`gil_timer`]).
#[inline]
pub fn gil_acquired(t0: u64) {
    if t0 != 0 {
        let waited = mono_us().saturating_sub(t0);
        let _ = LOCAL.try_with(|l| {
            l.gil_us.set(l.gil_us.get() + waited);
            l.gil_n.set(l.gil_n.get() + 1);
        });
    }
}

/// Records the GIL acquisition that begins a request (started at `t0`, from
/// [`gil_timer`]): counted in the request that [`Tracker::begin`] starts
/// next on this thread.
#[inline]
pub fn gil_acquired_for_request(t0: u64) {
    if t0 != 0 {
        let waited = mono_us().saturating_sub(t0);
        let _ = LOCAL.try_with(|l| {
            l.gil_us.set(l.gil_us.get() + waited);
            l.gil_n.set(l.gil_n.get() + 1);
            l.pending.set(waited + 1);
        });
    }
}

/// The request data dict of the request this thread serves: `Err(())` when
/// it serves none, `Ok(null)` when none was made yet.
pub fn request_data_slot() -> Result<*mut std::ffi::c_void, ()> {
    LOCAL
        .try_with(|l| {
            if l.in_request.get() {
                Ok(l.request_data.get())
            } else {
                Err(())
            }
        })
        .unwrap_or(Err(()))
}

/// Sets this thread's request data dict (an owned `PyObject*`; the request's
/// end releases it). Only inside a request.
pub fn set_request_data(p: *mut std::ffi::c_void) {
    let _ = LOCAL.try_with(|l| l.request_data.set(p));
}

// ---- per-request I/O -------------------------------------------------------------

/// Operations, bytes and time (us) of one request's input or output.
#[derive(Debug, Default, Clone, Copy)]
pub struct Io {
    /// Read or write operations.
    pub ops: u64,
    /// Bytes.
    pub bytes: u64,
    /// Time spent in them, microseconds (0 unless [`detailed`]).
    pub time_us: u64,
}

/// Starts timing an I/O operation: 0 (not timed) unless [`detailed`].
#[inline]
pub fn io_timer() -> u64 {
    gil_timer()
}

impl Io {
    /// Counts one operation of `bytes` bytes that started at `t0` (from
    /// [`io_timer`]).
    #[inline]
    pub fn add(&mut self, bytes: u64, t0: u64) {
        self.ops += 1;
        self.bytes += bytes;
        if t0 != 0 {
            self.time_us += mono_us().saturating_sub(t0);
        }
    }
}

// ---- one request -------------------------------------------------------------------

/// The instants of a request before the application runs, microseconds since
/// the epoch (0 when unknown or not applicable).
#[derive(Debug, Default, Clone, Copy)]
pub struct Times {
    /// Apache received the request.
    pub request_start: u64,
    /// The Apache child wrote it to the daemon (daemon mode).
    pub queue_start: u64,
    /// The daemon process picked it up (daemon mode).
    pub daemon_start: u64,
}

/// One request's accounting, from [`Tracker::begin`] to [`Tracker::end`].
pub struct Tracker {
    thread: &'static ThreadInfo,
    detailed: bool,
    /// Instants before the application (wall, us).
    pub times: Times,
    /// When the application was called (wall, us; 0 unless detailed).
    pub application_start: u64,
    cpu0: (u64, u64),
    gil0: (u64, u64),
    /// The thread's request state when this request began (a sub-request
    /// inside another request): restored at its end.
    outer: (bool, *mut std::ffi::c_void),
}

/// What [`Tracker::end`] measured (the `request_finished` payload).
#[derive(Debug, Default, Clone, Copy)]
pub struct Finished {
    /// `thread_id`.
    pub thread_id: u32,
    /// Instants before the application.
    pub times: Times,
    /// `application_start`, `application_finish` (wall, us).
    pub application_start: u64,
    /// When the application's part ended (wall, us).
    pub application_finish: u64,
    /// Request body reads.
    pub input: Io,
    /// Response writes.
    pub output: Io,
    /// HTTP status (0: start_response never called).
    pub status: u16,
    /// Thread CPU time (user, system) during the request, us.
    pub cpu: (u64, u64),
    /// GIL waits during the request (us, count).
    pub gil: (u64, u64),
}

impl Tracker {
    /// Starts the accounting of a request on this thread. `times` is only
    /// called when detail is gathered. The GIL acquisition that began the
    /// request ([`gil_acquired_for_request`]) counts as its first GIL wait.
    pub fn begin(times: impl FnOnce() -> Times) -> Tracker {
        let (thread, gil0, outer) = LOCAL
            .try_with(|l| {
                let mut p = l.info.get();
                if p.is_null() {
                    p = register_thread();
                    l.info.set(p);
                }
                // A sub-request run inside a request on this thread (embedded
                // mode) keeps the outer request's data for its end.
                let outer = (
                    l.in_request.replace(true),
                    l.request_data.replace(std::ptr::null_mut()),
                );
                let mut gil0 = (l.gil_us.get(), l.gil_n.get());
                let pending = l.pending.replace(0);
                if pending != 0 {
                    gil0 = (gil0.0 - (pending - 1), gil0.1 - 1);
                }
                // SAFETY: leaked, lives for the process.
                (unsafe { &*p }, gil0, outer)
            })
            .unwrap_or_else(|_| (register_thread(), (0, 0), (false, std::ptr::null_mut())));
        ACTIVE.fetch_add(1, Relaxed);
        thread.requests.fetch_add(1, Relaxed);
        let detailed = detailed();
        let mut t = Tracker {
            thread,
            detailed,
            times: Times::default(),
            application_start: 0,
            cpu0: (0, 0),
            gil0,
            outer,
        };
        if detailed {
            t.times = times();
            t.application_start = wall_us();
            t.cpu0 = cpu_us(true);
            if recording() {
                thread.busy_since_us.store(t.application_start, Relaxed);
            }
        }
        t
    }

    /// Whether detail is gathered for this request.
    pub fn detailed(&self) -> bool {
        self.detailed
    }

    /// `thread_id` of the request's thread.
    pub fn thread_id(&self) -> u32 {
        self.thread.id
    }

    /// Requests the request's thread started, this one included
    /// (`mod_wsgi.thread_requests`).
    pub fn thread_requests(&self) -> u64 {
        self.thread.requests.load(Relaxed)
    }

    /// Ends the accounting: counts the request and, when detail is
    /// gathered, returns its measurements (also folded into the interval
    /// when recording), with the request's `request_data` dict (an owned
    /// `PyObject*` or null) for the caller to release.
    pub fn end(
        self,
        input: Io,
        output: Io,
        status: u16,
    ) -> (Option<Finished>, *mut std::ffi::c_void) {
        let (data, gil_now) = LOCAL
            .try_with(|l| {
                l.in_request.set(self.outer.0);
                (
                    l.request_data.replace(self.outer.1),
                    (l.gil_us.get(), l.gil_n.get()),
                )
            })
            .unwrap_or((std::ptr::null_mut(), self.gil0));
        TOTAL.fetch_add(1, Relaxed);
        ACTIVE.fetch_sub(1, Relaxed);
        if !self.detailed {
            return (None, data);
        }
        let cpu1 = cpu_us(true);
        let f = Finished {
            thread_id: self.thread.id,
            times: self.times,
            application_start: self.application_start,
            application_finish: wall_us(),
            input,
            output,
            status,
            cpu: (
                cpu1.0.saturating_sub(self.cpu0.0),
                cpu1.1.saturating_sub(self.cpu0.1),
            ),
            gil: (
                gil_now.0.saturating_sub(self.gil0.0),
                gil_now.1.saturating_sub(self.gil0.1),
            ),
        };
        if recording() {
            self.thread.busy_since_us.store(0, Relaxed);
            interval().fold(&f);
            super::telemetry::request_finished(&f);
        }
        (Some(f), data)
    }
}

// ---- the interval -------------------------------------------------------------------

pub use rwsgi_core::metrics::{bucket, BUCKETS};

/// Accumulated observations of one phase.
#[derive(Clone)]
pub struct Phase {
    /// Observations.
    pub n: u64,
    /// Sum, microseconds.
    pub total_us: u64,
    /// Smallest, microseconds.
    pub min_us: u64,
    /// Largest, microseconds.
    pub max_us: u64,
    /// Histogram ([`bucket`]).
    pub buckets: [u64; BUCKETS],
}

impl Default for Phase {
    fn default() -> Phase {
        Phase {
            n: 0,
            total_us: 0,
            min_us: u64::MAX,
            max_us: 0,
            buckets: [0; BUCKETS],
        }
    }
}

impl Phase {
    fn add(&mut self, us: u64) {
        self.n += 1;
        self.total_us += us;
        self.min_us = self.min_us.min(us);
        self.max_us = self.max_us.max(us);
        self.buckets[bucket(us)] += 1;
    }
}

/// The phases, in [`PHASE_NAMES`] order.
pub const PHASE_NAMES: [&str; 8] = [
    "server_time",
    "queue_time",
    "daemon_time",
    "application_time",
    "request_time",
    "input_read_time",
    "output_write_time",
    "gil_wait_time",
];

/// Per worker slot accumulators of an interval.
#[derive(Clone, Copy, Default)]
pub struct Slot {
    /// Busy time in the interval, us.
    pub busy_us: u64,
    /// CPU time of requests completed in the interval, us.
    pub cpu_us: u64,
    /// Requests completed.
    pub completed: u64,
    /// Longest request completed, us.
    pub max_duration_us: u64,
    /// Elapsed time of the request in flight at the drain, us.
    pub current_us: u64,
}

/// What `request_metrics()` reports for one interval.
#[derive(Clone, Default)]
pub struct Interval {
    /// Window start (wall, us).
    pub start_us: u64,
    /// Window end (wall, us), set by [`drain`].
    pub stop_us: u64,
    /// Process CPU at the window start, (user, system) us.
    cpu0: (u64, u64),
    /// Process CPU used in the window, (user, system) us.
    pub cpu: (u64, u64),
    /// Completed requests.
    pub count: u64,
    /// Phases ([`PHASE_NAMES`]).
    pub phases: Vec<Phase>,
    /// GIL re-acquisitions.
    pub gil_count: u64,
    /// Request body bytes and reads; response bytes and writes.
    pub input: (u64, u64),
    /// Response bytes and writes.
    pub output: (u64, u64),
    /// Responses by class 1xx..5xx (no status counts as 5xx).
    pub status: [u64; 5],
    /// Per worker slot (length `request_threads_maximum`).
    pub slots: Vec<Slot>,
    /// Threads started so far.
    pub threads_started: u64,
}

static INTERVAL: Mutex<Option<Interval>> = Mutex::new(None);

struct IntervalGuard(std::sync::MutexGuard<'static, Option<Interval>>);

fn interval() -> IntervalGuard {
    IntervalGuard(INTERVAL.lock().unwrap_or_else(|e| e.into_inner()))
}

impl IntervalGuard {
    fn get(&mut self) -> &mut Interval {
        self.0.get_or_insert_with(Interval::default)
    }

    fn reset(&mut self, now: u64) {
        let slots = MAX_THREADS.load(Relaxed) as usize;
        *self.0 = Some(Interval {
            start_us: now,
            cpu0: cpu_us(false),
            phases: vec![Phase::default(); PHASE_NAMES.len()],
            slots: vec![Slot::default(); slots],
            ..Interval::default()
        });
    }

    fn fold(&mut self, f: &Finished) {
        let iv = self.get();
        if iv.phases.is_empty() {
            return;
        }
        let t = &f.times;
        let app0 = f.application_start;
        let span = |a: u64, b: u64| b.saturating_sub(a);
        if t.queue_start != 0 {
            iv.phases[0].add(span(t.request_start, t.queue_start));
            iv.phases[1].add(span(t.queue_start, t.daemon_start));
            iv.phases[2].add(span(t.daemon_start, app0));
        } else if t.request_start != 0 {
            iv.phases[0].add(span(t.request_start, app0));
        }
        let duration = span(app0, f.application_finish);
        iv.phases[3].add(duration);
        iv.phases[4].add(span(
            if t.request_start != 0 {
                t.request_start
            } else {
                app0
            },
            f.application_finish,
        ));
        iv.phases[5].add(f.input.time_us);
        iv.phases[6].add(f.output.time_us);
        iv.phases[7].add(f.gil.0);
        iv.gil_count += f.gil.1;
        iv.count += 1;
        iv.input.0 += f.input.bytes;
        iv.input.1 += f.input.ops;
        iv.output.0 += f.output.bytes;
        iv.output.1 += f.output.ops;
        let class = match f.status {
            100..=199 => 0,
            200..=299 => 1,
            300..=399 => 2,
            400..=499 => 3,
            _ => 4,
        };
        iv.status[class] += 1;
        let busy = span(app0.max(iv.start_us), f.application_finish);
        BUSY_US.fetch_add(duration, Relaxed);
        if let Some(s) = iv.slots.get_mut(f.thread_id as usize - 1) {
            s.busy_us += busy;
            s.cpu_us += f.cpu.0 + f.cpu.1;
            s.completed += 1;
            s.max_duration_us = s.max_duration_us.max(duration);
        }
    }
}

/// Ends the current interval and starts the next: returns the ended one
/// (with the in-flight requests' busy time up to now), or `None` when
/// recording is off.
pub fn drain() -> Option<Interval> {
    if !recording() {
        return None;
    }
    let now = wall_us();
    let mut g = interval();
    let mut iv = g.get().clone();
    for t in threads() {
        let since = t.busy_since_us.load(Relaxed);
        if since == 0 {
            continue;
        }
        if let Some(s) = iv.slots.get_mut(t.id as usize - 1) {
            s.busy_us += now.saturating_sub(since.max(iv.start_us));
            s.current_us = now.saturating_sub(since);
        }
    }
    iv.stop_us = now;
    let cpu = cpu_us(false);
    iv.cpu = (
        cpu.0.saturating_sub(iv.cpu0.0),
        cpu.1.saturating_sub(iv.cpu0.1),
    );
    iv.threads_started = threads().len() as u64;
    g.reset(now);
    Some(iv)
}

/// Process-lifetime counters (`process_metrics()`).
pub struct ProcessCounters {
    /// Process start (wall, us).
    pub start_us: u64,
    /// Completed requests.
    pub request_count: u64,
    /// Requests in flight.
    pub active: i64,
    /// Busy time since recording started, us (completed plus in flight).
    pub busy_us: u64,
}

/// The process-lifetime counters now.
pub fn process_counters() -> ProcessCounters {
    let now = wall_us();
    let in_flight: u64 = threads()
        .iter()
        .map(|t| t.busy_since_us.load(Relaxed))
        .filter(|&s| s != 0)
        .map(|s| now.saturating_sub(s))
        .sum();
    ProcessCounters {
        start_us: PROCESS_START_US.load(Relaxed),
        request_count: TOTAL.load(Relaxed),
        active: ACTIVE.load(Relaxed),
        busy_us: BUSY_US.load(Relaxed) + in_flight,
    }
}

/// `request_threads_maximum`.
pub fn max_threads() -> u64 {
    MAX_THREADS.load(Relaxed)
}
