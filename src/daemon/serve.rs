//! The daemon side of one request: its Request frame becomes a
//! `wsgi::Request` whose body is pulled from the Apache child with Read
//! frames ([`DaemonReader`]) and whose response goes back as frames
//! ([`DaemonWriter`]); the WSGI core is the one embedded mode uses.

use super::{Conn, FrameError, Group, BLOCK};
use crate::apache::{ClientTag, LogTarget};
use crate::ffi;
use crate::python::{self, GilGuard, Runtime};
use crate::wsgi::transport::{BodyReader, Finish, Gone, Header, ResponseWriter};
use crate::wsgi::{self, environ::Source, Outcome};
use rwsgi_core::wire::{self, Encoder, FailReason, Frame};
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

/// Serves the request whose Request frame is next on `shared`. Returns
/// whether the connection can serve another request.
pub fn serve_one(shared: &SharedConn, cx: &Context) -> bool {
    let bytes = {
        let mut st = lock(shared);
        match st.conn.read_frame() {
            Ok(Frame::Request(_)) => st.conn.frame_bytes().to_vec(),
            Ok(other) => {
                let msg = format!("RWSGI0041: daemon process of group {:?} got a {other:?} frame where a request must start; connection closed", cx.group.config.name);
                LogTarget::Client(cx.server, ClientTag::new(b"-"))
                    .log(crate::apache::Level::Error, &msg);
                return false;
            }
            Err(FrameError::Closed) => return false,
            Err(e) => {
                LogTarget::Client(cx.server, ClientTag::new(b"-")).log(
                    crate::apache::Level::Error,
                    &format!(
                        "RWSGI0041: daemon process of group {:?} could not read a request from an Apache child: {e}; connection closed",
                        cx.group.config.name
                    ),
                );
                return false;
            }
        }
    };
    let limits = super::limits(&cx.group.config);
    let Ok(Some((Frame::Request(req), _))) = wire::decode(&bytes, &limits) else {
        unreachable!("decoded once already")
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
    let log = LogTarget::Client(cx.server, remote);
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
        .unwrap_or("application")
        .to_string();
    let reloading = last_value(&req.environ, b"mod_wsgi.script_reloading") != Some(b"0");
    let queue_start = req.queue_start_us.to_string();
    let daemon_start = now_us().to_string();
    let restarts = cx.restarts.to_string();
    let mut pairs = req.environ.clone();
    pairs.push((b"mod_wsgi.queue_start", queue_start.as_bytes()));
    pairs.push((b"mod_wsgi.daemon_start", daemon_start.as_bytes()));
    pairs.push((b"mod_wsgi.daemon_restarts", restarts.as_bytes()));
    let request = wsgi::Request {
        script,
        script_mtime_us: req.script_mtime_us,
        script_reloading: reloading,
        callable_object: &callable,
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
            enc: Encoder::new(),
            last_data: None,
            aborted: false,
        }),
    };
    let gil = GilGuard::acquire(cx.rt);
    let outer = python::replace_log_target(log);
    // SAFETY: GIL held.
    let (outcome, end) = unsafe { wsgi::run(&gil, cx.rt, request) };
    python::flush_application_output();
    python::replace_log_target(outer);
    drop(gil);
    end.finish(log, script);
    match outcome {
        Outcome::Failed => fail(
            shared,
            FailReason::Application,
            b"the application failed before its response started; the daemon process logged why",
        ),
        Outcome::Sent => !lock(shared).broken,
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
/// another daemon process.
pub fn refuse_for_shutdown(conn: &mut Conn) {
    if matches!(conn.read_frame(), Ok(Frame::Request(_))) {
        let mut e = Encoder::new();
        e.failed(FailReason::Shutdown, b"daemon process is shutting down");
        let _ = conn.write_all(&e.buf);
    }
}

/// Answers the request next on `conn` with Failed (busy): not run, the
/// Apache child sends it on a new connection. Returns whether the
/// connection is still usable.
pub fn refuse_busy(conn: &mut Conn) -> bool {
    match conn.read_frame() {
        Ok(Frame::Request(_)) => {
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
/// set-aside batch needs nothing more).
struct DaemonWriter {
    conn: SharedConn,
    enc: Encoder,
    /// Where the last Data frame starts, so a flush can mark it.
    last_data: Option<usize>,
    aborted: bool,
}

impl DaemonWriter {
    fn end(&mut self, finish: Finish) {
        match finish {
            Finish::Flush => match self.last_data {
                Some(at) => self.enc.buf[at + wire::HEADER_LEN] = 1,
                None => self.enc.data(b"", true),
            },
            Finish::Eos | Finish::FlushEos => {
                if !self.aborted {
                    self.enc.end_response();
                }
            }
        }
        self.last_data = None;
    }

    fn write(&mut self) -> Result<(), Gone> {
        let mut st = lock(&self.conn);
        let rv = if st.broken {
            Err(Gone)
        } else {
            st.conn.write_all(&self.enc.buf).map_err(|_| Gone)
        };
        if rv.is_err() {
            st.broken = true;
        }
        self.enc.buf.clear();
        rv
    }
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

impl ResponseWriter for DaemonWriter {
    fn head(&mut self, (code, line): &(u16, String), headers: &[Header]) {
        let owned: Vec<(Vec<u8>, Vec<u8>)> = headers
            .iter()
            .map(|(k, v, _)| (k.as_bytes().to_vec(), latin1(v)))
            .collect();
        self.enc.response(
            *code,
            &latin1(line),
            owned.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
        );
    }

    unsafe fn data(&mut self, data: &[u8]) {
        for block in data.chunks(BLOCK) {
            self.last_data = Some(self.enc.buf.len());
            self.enc.data(block, false);
        }
    }

    fn file(&mut self, _fd: i32, _offset: u64, _len: u64) -> bool {
        false
    }

    fn send(&mut self, finish: Finish) -> Result<(), Gone> {
        self.end(finish);
        self.write()
    }

    fn set_aside(&mut self, finish: Finish) -> bool {
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
