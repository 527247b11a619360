//! The daemon side of one request: its Request frame becomes a
//! `wsgi::Request` whose body is pulled from the Apache child with Read
//! frames ([`DaemonReader`]) and whose response goes back as frames
//! ([`DaemonWriter`]); the WSGI core is the one embedded mode uses.
//!
//! A file region (`wsgi.file_wrapper` on a real file) goes as a File frame
//! with the file's descriptor attached (SCM_RIGHTS), which ends the
//! response: the Apache child sends it with a file bucket, so the file's
//! bytes never cross the socket. When the descriptor cannot be passed (too
//! many in flight), or the child could not take it and says so later
//! (`lend`), the region goes as Data frames read here.

use super::lend::{self, Lent, Stop};
use super::{Conn, FrameError, Group, BLOCK};
use crate::apache::{ClientTag, LogTarget};
use crate::ffi;
use crate::python::{self, GilGuard, Runtime};
use crate::wsgi::environ::{format_decimal, Source};
use crate::wsgi::transport::{BodyReader, Finish, Gone, Header, ResponseWriter};
use crate::wsgi::{self, Outcome};
use rwsgi_core::wire::fds::SendFdError;
use rwsgi_core::wire::{self, Encoder, FailReason, Frame};
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// A connection shared by a request's body reader and response writer.
pub type SharedConn = Arc<Mutex<ConnState>>;

/// A connection and whether it is still usable.
pub struct ConnState {
    /// The connection.
    pub conn: Conn,
    /// Set when a read or write failed: the connection is closed after the
    /// request.
    pub broken: bool,
    /// The request's body was pushed with it (`FLAG_BODY_PUSHED`) and its
    /// last frame (BodyEnd, BodyError) is not read yet.
    pub pushed_open: bool,
    /// Bytes of a pushed Body frame not yet given to the application, and
    /// how many of them were.
    pub pending: Vec<u8>,
    pub pending_at: usize,
    /// A copy of the descriptor of the File frame that ended the last
    /// response, until the child shows it took its own (`lend`).
    pub lent: Option<Lent>,
}

impl ConnState {
    /// A connection just accepted.
    pub fn new(conn: Conn) -> ConnState {
        ConnState {
            conn,
            broken: false,
            pushed_open: false,
            pending: Vec::new(),
            pending_at: 0,
            lent: None,
        }
    }
}

/// Reads and drops the rest of a pushed request body (up to and including
/// its BodyEnd or BodyError). Returns whether the connection is usable.
fn skip_pushed_body(conn: &mut Conn) -> bool {
    loop {
        match conn.read_frame() {
            Ok(Frame::Body(_)) => continue,
            Ok(Frame::BodyEnd) | Ok(Frame::BodyError(_)) => return true,
            _ => return false,
        }
    }
}

fn lock(c: &SharedConn) -> MutexGuard<'_, ConnState> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a daemon process knows while it serves requests.
pub struct Context {
    /// Its interpreter.
    pub rt: &'static Runtime,
    /// Its process group.
    pub group: Arc<Group>,
    /// The main server, for log lines.
    pub server: *const ffi::server_rec,
    /// How many times this daemon slot was restarted before this process.
    pub restarts: u64,
    /// When a request that counts as activity last started or ended
    /// (inactivity-timeout; `WSGIIgnoreActivity` requests do not count).
    pub last_activity: Arc<Mutex<std::time::Instant>>,
}

impl Context {
    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
    }
}

// SAFETY: the server_rec lives for the process; the runtime is GIL-guarded.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn last_value<'a>(pairs: &[(&'a [u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
}

/// What [`serve_one`] did.
pub struct Served {
    /// Whether a request was served (else a refused file region was sent).
    pub request: bool,
    /// Whether the connection can serve another request.
    pub keep: bool,
}

/// Serves what is next on `shared`: a request (its Request frame), or the
/// region of the last response's file when the child refused its
/// descriptor (FileRefused).
pub fn serve_one(shared: &SharedConn, cx: &Context) -> Served {
    let no_request = |keep| Served {
        request: false,
        keep,
    };
    let bytes = {
        let mut st = lock(shared);
        match st.conn.read_frame_bytes() {
            // Decoded once, by serve_request, which keeps the bytes. The
            // child took the last File frame's descriptor, if one was sent.
            Ok(wire::kind::REQUEST) => {
                st.lent = None;
                st.conn.take_frame()
            }
            Ok(wire::kind::FILE_REFUSED) => {
                let keep = answer_refusal(&mut st, cx.server, &cx.group.config.name);
                return no_request(keep);
            }
            Ok(_) => {
                let other = match st.conn.last_frame() {
                    Ok(f) => format!("{f:?}"),
                    Err(e) => format!("malformed ({e})"),
                };
                let msg = format!("RWSGI0041: daemon process of group {:?} got a {other} frame where a request must start; connection closed", cx.group.config.name);
                LogTarget::Client(cx.server, ClientTag::new(b"-"))
                    .log(crate::apache::Level::Error, &msg);
                return no_request(false);
            }
            Err(FrameError::Closed) => return no_request(false),
            Err(e) => {
                LogTarget::Client(cx.server, ClientTag::new(b"-")).log(
                    crate::apache::Level::Error,
                    &format!(
                        "RWSGI0041: daemon process of group {:?} could not read a request from an Apache child: {e}; connection closed",
                        cx.group.config.name
                    ),
                );
                return no_request(false);
            }
        }
    };
    let mut more = serve_request(shared, cx, &bytes);
    let mut st = lock(shared);
    // A pushed body the application did not read to its end is skipped, so
    // the next frame on the connection is the next request's.
    if st.pushed_open {
        st.pushed_open = false;
        if !st.broken && !skip_pushed_body(&mut st.conn) {
            st.broken = true;
            more = false;
        }
    }
    st.pending.clear();
    st.pending_at = 0;
    st.conn.give_back_frame(bytes);
    st.conn.trim();
    Served {
        request: true,
        keep: more,
    }
}

/// Answers the FileRefused frame just read on `st` (see `lend`). Returns
/// whether the connection is usable.
fn answer_refusal(st: &mut ConnState, server: *const ffi::server_rec, group: &str) -> bool {
    let lent = st.lent.take();
    lend::answer_refusal(
        &mut st.conn,
        lent,
        group,
        &LogTarget::Client(server, ClientTag::new(b"-")),
    )
}

/// Serves the request whose Request frame is `bytes`. Returns whether the
/// connection can serve another request.
fn serve_request(shared: &SharedConn, cx: &Context, bytes: &[u8]) -> bool {
    let limits = super::limits(&cx.group.config);
    let mut req = match wire::decode(bytes, &limits) {
        Ok(Some((Frame::Request(req), _))) => req,
        other => {
            let why = match other {
                Err(e) => e.to_string(),
                _ => "not a whole Request frame".to_string(),
            };
            LogTarget::Client(cx.server, ClientTag::new(b"-")).log(
                crate::apache::Level::Error,
                &format!(
                    "RWSGI0041: daemon process of group {:?} could not read a request from an Apache child: {why}; connection closed",
                    cx.group.config.name
                ),
            );
            return false;
        }
    };
    let remote = {
        let addr = last_value(&req.environ, b"REMOTE_ADDR").unwrap_or(b"-");
        let port = last_value(&req.environ, b"REMOTE_PORT").unwrap_or(b"");
        let mut tag = addr.to_vec();
        if !port.is_empty() {
            tag.push(b':');
            tag.extend_from_slice(port);
        }
        ClientTag::new(&tag)
    };
    lock(shared).pushed_open = req.flags & wire::FLAG_BODY_PUSHED != 0;
    let log = LogTarget::Client(cx.server, remote);
    let counts = req.flags & wire::FLAG_IGNORE_ACTIVITY == 0;
    if counts {
        cx.touch();
    }
    // mod_wsgi WSGIDaemonProcess queue-timeout: a request that waited too
    // long for a thread is not run (its client has likely given up); the
    // Apache child answers 503 naming the wait.
    let queue_timeout = cx.group.config.queue_timeout;
    let waited_us = now_us().saturating_sub(req.queue_start_us);
    if !queue_timeout.is_zero() && waited_us > queue_timeout.as_micros() as u64 {
        let msg = format!("waited {:.1} s", waited_us as f64 / 1e6);
        return fail(shared, FailReason::QueueTimeout, msg.as_bytes());
    }
    let Ok(script) = std::str::from_utf8(req.script) else {
        log.log(
            crate::apache::Level::Error,
            "RWSGI0007: WSGI script file name is not valid UTF-8",
        );
        return fail(shared, FailReason::Protocol, b"script name is not UTF-8");
    };
    let callable = last_value(&req.environ, b"mod_wsgi.callable_object")
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("application");
    let reloading = last_value(&req.environ, b"mod_wsgi.script_reloading") != Some(b"0");
    let (mut b1, mut b2, mut b3) = ([0u8; 24], [0u8; 24], [0u8; 24]);
    let mut pairs = std::mem::take(&mut req.environ);
    pairs.reserve(3);
    pairs.push((
        b"mod_wsgi.queue_start",
        format_decimal(&mut b1, req.queue_start_us),
    ));
    pairs.push((b"mod_wsgi.daemon_start", format_decimal(&mut b2, now_us())));
    pairs.push((
        b"mod_wsgi.daemon_restarts",
        format_decimal(&mut b3, cx.restarts),
    ));
    let request = wsgi::Request {
        script,
        script_mtime_us: req.script_mtime_us,
        script_reloading: reloading,
        on_change: python::OnChange::Restart,
        callable_object: callable,
        log,
        head_only: req.flags & wire::FLAG_HEAD != 0,
        environ: Source::Pairs(&pairs),
        body: (
            Box::new(DaemonReader {
                conn: Arc::clone(shared),
                eof: false,
            }),
            req.body_length,
        ),
        output: Box::new(DaemonWriter {
            conn: Arc::clone(shared),
            enc: super::ThreadEncoder::take(),
            last_data: None,
            aborted: false,
            file: None,
            log,
        }),
    };
    // The request's application group is its interpreter.
    let group = last_value(&pairs, b"mod_wsgi.application_group")
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let rt = match python::runtime_for(&group) {
        Ok(rt) => rt,
        Err(e) => {
            log.log(
                crate::apache::Level::Error,
                &format!("{e}; {script:?} was not run"),
            );
            return fail(
                shared,
                FailReason::Application,
                b"the sub-interpreter of the application group could not be set up; the daemon process logged why",
            );
        }
    };
    let busy = crate::observe::request::busy(
        req.queue_start_us,
        last_value(&pairs, b"REQUEST_METHOD").unwrap_or(b""),
        last_value(&pairs, b"REQUEST_URI").unwrap_or(b""),
        last_value(&pairs, b"REMOTE_ADDR").unwrap_or(b""),
    );
    let gil = GilGuard::acquire(rt);
    let outer = python::replace_log_target(log);
    // SAFETY: GIL held.
    let (outcome, end) = unsafe { wsgi::run(&gil, rt, request) };
    drop(busy);
    crate::observe::process::sample_gc(&gil, rt);
    python::flush_application_output();
    python::replace_log_target(outer);
    drop(gil);
    end.finish(log, script);
    if counts {
        cx.touch();
    }
    match outcome {
        Outcome::Failed => fail(
            shared,
            FailReason::Application,
            b"the application failed before its response started; the daemon process logged why",
        ),
        Outcome::TimedOut => fail(
            shared,
            FailReason::Timeout,
            b"mod_wsgi.RequestTimeout ended it before its response started; its thread recovered",
        ),
        Outcome::Sent => !lock(shared).broken,
        Outcome::Restart => {
            // As mod_wsgi: the process restarts (SIGINT: a zero-downtime
            // replacement, see process.rs) and the Apache child sends the
            // request again, to the process that replaces this one.
            let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::Signal::SIGINT);
            fail(
                shared,
                FailReason::Shutdown,
                b"the WSGI script changed; the daemon process restarts",
            )
        }
    }
}

/// Answers the request with a Failed frame. Returns whether the connection
/// is still usable.
fn fail(shared: &SharedConn, reason: FailReason, message: &[u8]) -> bool {
    let mut e = Encoder::new();
    e.failed(reason, message);
    let mut st = lock(shared);
    if st.conn.write_all(&e.buf).is_err() {
        st.broken = true;
    }
    !st.broken
}

/// Answers a request that arrived while the daemon is shutting down with
/// Failed (shutdown): it was not run, and the Apache child sends it to
/// another daemon process. A refused file region is sent (`lend`).
pub fn refuse_for_shutdown(st: &mut ConnState, server: *const ffi::server_rec, group: &str) {
    let pushed = match st.conn.read_frame() {
        Ok(Frame::Request(req)) => Some(req.flags & wire::FLAG_BODY_PUSHED != 0),
        Ok(Frame::FileRefused) => {
            answer_refusal(st, server, group);
            None
        }
        _ => None,
    };
    if pushed.is_some() {
        st.lent = None;
    }
    let conn = &mut st.conn;
    if let Some(pushed) = pushed {
        if pushed && !skip_pushed_body(conn) {
            return;
        }
        let mut e = Encoder::new();
        e.failed(FailReason::Shutdown, b"daemon process is shutting down");
        let _ = conn.write_all(&e.buf);
    }
}

/// Answers the request next on `st` with Failed (busy): not run, the
/// Apache child sends it on a new connection. A refused file region is
/// sent instead (`lend`: no thread needed). Returns whether the connection
/// is still usable.
pub fn refuse_busy(st: &mut ConnState, server: *const ffi::server_rec, group: &str) -> bool {
    let pushed = match st.conn.read_frame() {
        Ok(Frame::Request(req)) => Some(req.flags & wire::FLAG_BODY_PUSHED != 0),
        Ok(Frame::FileRefused) => return answer_refusal(st, server, group),
        _ => None,
    };
    if pushed.is_some() {
        st.lent = None;
    }
    let conn = &mut st.conn;
    match pushed {
        Some(pushed) => {
            if pushed && !skip_pushed_body(conn) {
                return false;
            }
            let mut e = Encoder::new();
            e.failed(
                FailReason::Busy,
                b"every thread of this daemon process is busy",
            );
            conn.write_all(&e.buf).is_ok()
        }
        _ => false,
    }
}

/// `wsgi.input` of a daemon request: asks the Apache child for body with
/// Read frames, as the application reads.
struct DaemonReader {
    conn: SharedConn,
    eof: bool,
}

impl BodyReader for DaemonReader {
    fn read(&mut self, dst: &mut [u8]) -> Result<usize, String> {
        if self.eof {
            return Ok(0);
        }
        let mut st = lock(&self.conn);
        if st.broken {
            return Err("the connection to the Apache child is broken".into());
        }
        if st.pending_at < st.pending.len() {
            let n = dst.len().min(st.pending.len() - st.pending_at);
            let at = st.pending_at;
            dst[..n].copy_from_slice(&st.pending[at..at + n]);
            st.pending_at += n;
            return Ok(n);
        }
        if st.pushed_open {
            // The body came with the request: its frames are next.
            let st = &mut *st;
            return match st.conn.read_frame() {
                Ok(Frame::Body(data)) => {
                    let n = dst.len().min(data.len());
                    dst[..n].copy_from_slice(&data[..n]);
                    st.pending.clear();
                    st.pending.extend_from_slice(&data[n..]);
                    st.pending_at = 0;
                    Ok(n)
                }
                Ok(Frame::BodyEnd) => {
                    st.pushed_open = false;
                    self.eof = true;
                    Ok(0)
                }
                Ok(Frame::BodyError(why)) => {
                    st.pushed_open = false;
                    Err(String::from_utf8_lossy(why).into_owned())
                }
                Ok(other) => {
                    st.broken = true;
                    Err(format!("unexpected {other:?} frame from the Apache child"))
                }
                Err(e) => {
                    st.broken = true;
                    Err(format!("reading from the Apache child failed: {e}"))
                }
            };
        }
        let want = dst.len().min(BLOCK) as u32;
        let mut e = Encoder::new();
        e.read(want);
        if let Err(err) = st.conn.write_all(&e.buf) {
            st.broken = true;
            return Err(format!("the Apache child closed the connection: {err}"));
        }
        let (result, broken) = match st.conn.read_frame() {
            Ok(Frame::Body(data)) if data.len() <= dst.len() => {
                dst[..data.len()].copy_from_slice(data);
                (Ok(data.len()), false)
            }
            Ok(Frame::BodyEnd) => {
                self.eof = true;
                (Ok(0), false)
            }
            Ok(Frame::BodyError(why)) => (Err(String::from_utf8_lossy(why).into_owned()), false),
            Ok(other) => (
                Err(format!("unexpected {other:?} frame from the Apache child")),
                true,
            ),
            Err(e) => (
                Err(format!("reading from the Apache child failed: {e}")),
                true,
            ),
        };
        if broken {
            st.broken = true;
        }
        result
    }
}

/// The response of a daemon request, encoded as frames and written to the
/// Apache child at each send (the bytes are copied into the frames, so a
/// set-aside batch needs nothing more; file regions are sent by descriptor).
struct DaemonWriter {
    conn: SharedConn,
    enc: super::ThreadEncoder,
    /// Where the last Data frame starts, so a flush can mark it.
    last_data: Option<usize>,
    aborted: bool,
    /// The File frame that ends this batch, if there is one.
    file: Option<PendingFile>,
    log: LogTarget,
}

/// A file region ending a batch: its File frame, the last bytes of the
/// batch, the application's descriptor (open until the batch is sent: the
/// `ResponseWriter::file` contract) and the region, in bytes.
struct PendingFile {
    at: usize,
    fd: i32,
    offset: u64,
    len: u64,
}

impl DaemonWriter {
    fn end(&mut self, finish: Finish) {
        match finish {
            Finish::Flush => match self.last_data {
                Some(at) => self.enc.buf[at + wire::HEADER_LEN] = 1,
                None => self.enc.data(b"", true),
            },
            // A File frame ends the response itself.
            Finish::Eos | Finish::FlushEos => {
                if !self.aborted && self.file.is_none() {
                    self.enc.end_response();
                }
            }
        }
        self.last_data = None;
    }

    fn write(&mut self) -> Result<(), Gone> {
        let file = self.file.take();
        let conn = Arc::clone(&self.conn);
        let mut st = lock(&conn);
        let rv = if st.broken {
            Err(Stop::Broken)
        } else {
            match &file {
                None => st.conn.write_all(&self.enc.buf).map_err(|_| Stop::Broken),
                Some(f) => self.write_with_file(&mut st, f),
            }
        };
        self.enc.buf.clear();
        match rv {
            Ok(()) => Ok(()),
            Err(Stop::Broken) => {
                st.broken = true;
                Err(Gone)
            }
            Err(Stop::Cut) => Err(Gone),
        }
    }

    /// Writes the batch, which ends with the File frame of `f`: one
    /// `sendmsg` with the descriptor attached, nothing awaited; a copy of
    /// the descriptor stays with the connection in case the child refuses
    /// it (`lend`). When the descriptor cannot be passed (or copied), the
    /// region goes as Data frames, then End.
    fn write_with_file(&mut self, st: &mut ConnState, f: &PendingFile) -> Result<(), Stop> {
        // SAFETY: the application keeps the descriptor open until this
        // returns (ResponseWriter::file).
        let fd = unsafe { BorrowedFd::borrow_raw(f.fd) };
        let refused = match Lent::new(fd, f.offset, f.len) {
            Ok(lent) => match st.conn.send_with_fd(&self.enc.buf, fd) {
                Ok(()) => {
                    st.lent = Some(lent);
                    return Ok(());
                }
                Err(SendFdError::NotPassed(e)) => format!("passing the descriptor failed: {e}"),
                Err(SendFdError::Io(_)) => return Err(Stop::Broken),
            },
            Err(why) => why,
        };
        self.log.log(
            crate::apache::Level::Info,
            &format!(
                "RWSGI0060: a file region of {} bytes goes to the Apache child as bytes: {refused}",
                f.len
            ),
        );
        st.conn
            .write_all(&self.enc.buf[..f.at])
            .map_err(|_| Stop::Broken)?;
        let rv = lend::send_region_and_end(&mut st.conn, fd, f.offset, f.len, &self.log);
        if matches!(rv, Err(Stop::Cut)) {
            self.aborted = true;
        }
        rv
    }
}

fn latin1(text: &str) -> std::borrow::Cow<'_, [u8]> {
    if text.is_ascii() {
        // The usual case: the same bytes, nothing to copy.
        std::borrow::Cow::Borrowed(text.as_bytes())
    } else {
        std::borrow::Cow::Owned(text.chars().map(|c| c as u32 as u8).collect())
    }
}

impl ResponseWriter for DaemonWriter {
    fn head(&mut self, (code, line): &(u16, String), headers: &[Header]) {
        self.enc.response(
            *code,
            &latin1(line),
            headers.iter().map(|(k, v, _)| (k.as_bytes(), latin1(v))),
        );
    }

    unsafe fn data(&mut self, data: &[u8]) {
        for block in data.chunks(BLOCK) {
            self.last_data = Some(self.enc.buf.len());
            self.enc.data(block, false);
        }
    }

    fn file(&mut self, fd: i32, offset: u64, len: u64) -> bool {
        // The WSGI core ends the response right after (send_file): the
        // File frame is the batch's last, and a response has one.
        if self.file.is_some() {
            return false;
        }
        if len > 0 {
            self.file = Some(PendingFile {
                at: self.enc.buf.len(),
                fd,
                offset,
                len,
            });
            self.enc.file(offset, len);
            self.last_data = None;
        }
        true
    }

    fn send(&mut self, finish: Finish) -> Result<(), Gone> {
        self.end(finish);
        self.write()
    }

    fn set_aside(&mut self, finish: Finish) -> bool {
        // A file region must go before its descriptor may close.
        if self.file.is_some() {
            return false;
        }
        self.end(finish);
        true
    }

    fn send_deferred(&mut self) -> Result<(), Gone> {
        self.write()
    }

    fn abort(&mut self) {
        self.aborted = true;
        self.enc.failed(
            FailReason::Application,
            b"the application failed after its response started",
        );
    }

    fn close_connection(&mut self) {
        // The Apache child compares what it relayed with Content-Length
        // and closes the client connection itself.
    }
}
