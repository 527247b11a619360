//! The Apache child's side of a daemon-mode request: the environ is
//! assembled here, where `request_rec` is, sent to a daemon process of the
//! group over a pooled connection (one per Apache thread and group, kept
//! for the next request), and the daemon's frames are relayed: body read
//! from the client only as the application asks for it, the response
//! passed down Apache's output filters as it comes. A File frame's
//! descriptor becomes a file bucket, as `wsgi.file_wrapper` in embedded
//! mode: the file's bytes never cross the daemon socket.
//!
//! Every failure is answered and logged as what it is: 503 when no daemon
//! can be reached (socket path, errno, group), 502 when the daemon died
//! (pid, and the signal or exit status the Apache parent saw), 504 when it
//! did not answer within `socket-timeout`.

use super::{is_timeout, Conn, FrameError, Group, BLOCK};
use crate::apache::request::{
    application_group, body_length, gather_facts, ApacheReader, ApacheWriter,
};
use crate::apache::{Level, LogTarget};
use crate::config::RequestSettings;
use crate::ffi;
use crate::wsgi::environ::for_each_pair;
use crate::wsgi::transport::{BodyReader, Finish, Header, ResponseWriter};
use rwsgi_core::validate::{validate_header, validate_status, HeaderKind};
use rwsgi_core::wire::{self, fds, Encoder, FailReason, Frame};
use std::cell::RefCell;
use std::ffi::c_int;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const OK: c_int = ffi::OK as c_int;

/// A pooled connection to a daemon process.
struct Pooled {
    group: String,
    conn: Conn,
    pid: i32,
}

thread_local! {
    // Connections kept by this Apache thread for its next requests (the
    // module is linked -z nodelete, so the destructor's code stays mapped).
    static POOL: RefCell<Vec<Pooled>> = const { RefCell::new(Vec::new()) };
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// A connection to `group`: a pooled one, else a new one (retrying while
/// the daemons start, up to `connect-timeout`). The flag says it is fresh.
fn connection(group: &Group) -> Result<(Pooled, bool), String> {
    let pooled = POOL.with(|p| {
        let mut p = p.borrow_mut();
        let i = p.iter().position(|c| c.group == group.config.name)?;
        Some(p.swap_remove(i))
    });
    // Not polled first: a pooled connection the daemon has closed fails
    // the write of the request head (EPIPE: a UNIX socket whose peer is
    // gone), before anything is sent, and the request goes on a new one.
    if let Some(c) = pooled {
        return Ok((c, false));
    }
    connect(group).map(|c| (c, true))
}

/// Keeps `c` for this thread's next request to its group: one connection
/// per Apache thread and group, so a surplus one is closed.
fn keep_pooled(mut c: Pooled) {
    c.conn.trim();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if !p.iter().any(|o| o.group == c.group) {
            p.push(c);
        }
    });
}

fn connect(group: &Group) -> Result<Pooled, String> {
    let deadline = Instant::now() + group.config.connect_timeout.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(5);
    let mut last_error;
    loop {
        match UnixStream::connect(&group.socket_path) {
            Ok(stream) => {
                // A daemon process accepts only when it has a free thread,
                // so until then the connection waits in the socket's
                // backlog: that is the request's queue, bounded by
                // queue-timeout (else socket-timeout). The daemon that
                // accepts says who it is at once; one that is stopping may
                // close instead: try again.
                let t = Some(group.socket_timeout).filter(|t| !t.is_zero());
                let queue = Some(group.config.queue_timeout)
                    .filter(|q| !q.is_zero())
                    .or(t)
                    .unwrap_or(Duration::from_secs(60));
                let _ = stream.set_read_timeout(Some(queue));
                let _ = stream.set_write_timeout(t);
                let mut conn = Conn::receiving_fds(stream, super::limits(&group.config));
                match conn.read_frame() {
                    Ok(Frame::Hello { pid }) => {
                        let _ = conn.stream().set_read_timeout(t);
                        return Ok(Pooled {
                            group: group.config.name.clone(),
                            conn,
                            pid: pid as i32,
                        });
                    }
                    Ok(other) => {
                        return Err(format!("the daemon sent {other:?} instead of its hello"))
                    }
                    Err(FrameError::Io(e)) if is_timeout(&e) => {
                        return Err(format!(
                            "RWSGI0051: no daemon process of group {:?} had a free thread within {} ({:.1} s); the request waited in the backlog of {:?}",
                            group.config.name,
                            if group.config.queue_timeout.is_zero() { "socket-timeout" } else { "queue-timeout" },
                            queue.as_secs_f64(),
                            group.socket_path
                        ))
                    }
                    Err(e) => {
                        last_error = format!(
                            "connected to {:?} but no daemon process answered: {e}",
                            group.socket_path
                        )
                    }
                }
            }
            // The daemons are (re)starting or their backlog is full: wait.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNREFUSED | libc::ENOENT | libc::EAGAIN)
                ) =>
            {
                last_error = format!(
                    "cannot connect to {:?}: {e} (errno {})",
                    group.socket_path,
                    e.raw_os_error().unwrap_or(0)
                );
            }
            Err(e) => {
                return Err(format!(
                    "cannot connect to {:?}: {e} (errno {})",
                    group.socket_path,
                    e.raw_os_error().unwrap_or(0)
                ))
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{last_error}; gave up after connect-timeout ({:.1} s)",
                group.config.connect_timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Serves request `r` by relaying it to the daemon processes of
/// `settings.process_group`. Returns the handler status.
///
/// # Safety
/// `r` must be the live request of the calling handler, after
/// `ap_setup_client_block`.
pub unsafe fn handle_request(
    r: *mut ffi::request_rec,
    settings: &RequestSettings,
    script: &str,
) -> c_int {
    let log = LogTarget::Request(r);
    let name = &settings.process_group;
    let Some(group) = super::group(name) else {
        log.log(
            Level::Error,
            &format!("RWSGI0046: cannot run {script:?}: no WSGIDaemonProcess named {name:?} is configured (WSGIProcessGroup or process-group=)"),
        );
        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
    };
    if group.config.threads == 0 {
        // mod_wsgi: threads=0 makes a service process group (it runs its
        // WSGIImportScript and takes no requests).
        log.log(
            Level::Error,
            &format!("RWSGI0058: cannot run {script:?}: process group {name:?} has threads=0 (a service process group, which takes no requests); delegate the application to a group with request threads"),
        );
        return ffi::HTTP_INTERNAL_SERVER_ERROR as c_int;
    }
    // A small body (Content-Length up to PUSHED_BODY_MAX) is read now and
    // sent with the request, saving the daemon a Read round trip; it is
    // kept for a retry on another connection. Reading it failing is told
    // to the application when it reads (BodyError), as with pulled bodies.
    let length = body_length(r);
    let pushed = match length {
        Some(n) if n > 0 && n <= wire::PUSHED_BODY_MAX => Some(read_whole_body(r, n as usize)),
        _ => None,
    };
    let app_group = application_group(r, settings);
    let facts = gather_facts(r, settings, &app_group);
    let mut enc = super::ThreadEncoder::take();
    let enc = &mut enc.0;
    let head = wire::Request {
        id: 0,
        request_start_us: (*r).request_time.max(0) as u64,
        queue_start_us: now_us(),
        script_mtime_us: crate::apache::handler_script::script_of(r, settings, script).1,
        body_length: length,
        flags: if (*r).header_only != 0 {
            wire::FLAG_HEAD
        } else {
            0
        } | if settings.ignore_activity {
            wire::FLAG_IGNORE_ACTIVITY
        } else {
            0
        } | if pushed.is_some() {
            wire::FLAG_BODY_PUSHED
        } else {
            0
        },
        script: script.as_bytes(),
        environ: Vec::new(),
    };
    // mod_wsgi.daemon_connects: the connections this request took to reach
    // a daemon (1 unless one failed or refused it), so the head is encoded
    // again when it is sent on another.
    let encode = |enc: &mut Encoder, connects: u32| -> usize {
        enc.buf.clear();
        let mut w = enc.request(&head);
        for_each_pair(&facts, &mut |k, v| w.item(k, v));
        w.item(b"mod_wsgi.daemon_connects", connects.to_string().as_bytes());
        let size = w.finish();
        // The pushed body (one block: PUSHED_BODY_MAX <= BLOCK) is not
        // copied in: its frame header ends the head's bytes, and the body
        // and `tail` follow in the same vectored write.
        if let Some((body, _)) = &pushed {
            if !body.is_empty() {
                enc.body_header(body.len());
            }
        }
        size
    };
    const _: () = assert!(wire::PUSHED_BODY_MAX as usize <= BLOCK);
    let mut tail = Encoder::new();
    let body: &[u8] = match &pushed {
        Some((body, error)) => {
            match error {
                None => tail.body_end(),
                Some(why) => tail.body_error(why.as_bytes()),
            }
            body
        }
        None => &[],
    };
    let size = encode(enc, 1);
    let limits = super::limits(&group.config);
    if size > limits.max_head as usize {
        log.log(
            Level::Error,
            &format!("RWSGI0034: request to {script:?} refused: its environ takes {size} bytes, more than the {} bytes a daemon accepts (header-buffer-size)", limits.max_head),
        );
        return ffi::HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE as c_int;
    }
    // A request is retried on a new connection only when the daemon did
    // not run it: the pooled connection failed before it was sent, or the
    // daemon answered "shutting down".
    // Daemons being replaced (maximum-requests, restarts) answer "shutting
    // down": keep trying, with a short pause, for up to connect-timeout, as
    // when connecting, so the request waits for a daemon instead of being
    // refused.
    let deadline = Instant::now() + group.config.connect_timeout.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(2);
    let mut force_new = false;
    let mut connects = 0u32;
    while Instant::now() < deadline {
        connects += 1;
        if connects > 1 {
            encode(enc, connects);
        }
        let got = if std::mem::take(&mut force_new) {
            connect(&group).map(|c| (c, true))
        } else {
            connection(&group)
        };
        let (mut pooled, fresh) = match got {
            Ok(c) => c,
            Err(e) => {
                log.log(
                    Level::Error,
                    &if e.starts_with("RWSGI") {
                        format!("{e}; {script:?} was not run")
                    } else {
                        format!("RWSGI0030: cannot reach the daemon processes of group {name:?} for {script:?}: {e}")
                    },
                );
                return ffi::HTTP_SERVICE_UNAVAILABLE as c_int;
            }
        };
        if let Err(e) = pooled.conn.write_all_vectored(&[&enc.buf, body, &tail.buf]) {
            if fresh {
                log.log(
                    Level::Error,
                    &format!("RWSGI0030: cannot send the request for {script:?} to daemon process {} of group {name:?}: {e}", pooled.pid),
                );
                return ffi::HTTP_SERVICE_UNAVAILABLE as c_int;
            }
            continue;
        }
        match relay(r, &group, &mut pooled, script) {
            Relayed::Done { keep } => {
                if keep {
                    keep_pooled(pooled);
                }
                return OK;
            }
            Relayed::Busy => {
                // That daemon's threads are all busy: this connection goes
                // (the new one, accepted by a daemon with a free thread,
                // takes its place in the pool).
                drop(pooled);
                force_new = true;
                continue;
            }
            Relayed::Retry => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
                continue;
            }
            Relayed::Status(s) => return s,
        }
    }
    log.log(
        Level::Error,
        &format!(
            "RWSGI0030: the daemon processes of group {name:?} kept shutting down for connect-timeout ({:.1} s) while {script:?} was sent to them",
            group.config.connect_timeout.as_secs_f64()
        ),
    );
    ffi::HTTP_SERVICE_UNAVAILABLE as c_int
}

/// How relaying one request ended.
enum Relayed {
    /// Answered (or cut off, or the client went away); `keep`: the
    /// connection can serve the next request.
    Done { keep: bool },
    /// The daemon did not run it (shutting down): send it elsewhere.
    Retry,
    /// The daemon did not run it (all its threads busy): send it on a new
    /// connection, accepted by a daemon process with a free thread.
    Busy,
    /// Nothing was sent: Apache answers with this status.
    Status(c_int),
}

/// Relays the frames of one request until its end.
unsafe fn relay(
    r: *mut ffi::request_rec,
    group: &Arc<Group>,
    pooled: &mut Pooled,
    script: &str,
) -> Relayed {
    let log = LogTarget::Request(r);
    let name = &group.config.name;
    let mut writer = ApacheWriter::new(r);
    let mut reader = ApacheReader(r);
    let mut started = false;
    let mut declared: Option<u64> = None;
    let mut relayed: u64 = 0;
    let mut unflushed: u64 = 0;
    let mut block = Vec::new();
    // mod_wsgi response-socket-timeout: the timeout of writes to the client
    // while this response is relayed (else socket-timeout, else Timeout).
    let _client_timeout = ClientTimeout::set(r, group);
    loop {
        let frame = match pooled.conn.read_frame() {
            Ok(f) => f,
            Err(e) => return daemon_failed(r, group, pooled.pid, script, &e, started),
        };
        match frame {
            Frame::Read(n) => {
                block.resize((n as usize).min(BLOCK), 0);
                let mut enc = Encoder::new();
                match reader.read(&mut block) {
                    Ok(0) => enc.body_end(),
                    Ok(k) => enc.body(&block[..k]),
                    Err(why) => enc.body_error(why.as_bytes()),
                }
                if let Err(failed) = send(r, group, pooled, script, started, &enc.buf) {
                    return failed;
                }
            }
            Frame::Response(head) => match checked_head(&head) {
                Ok((status, headers)) => {
                    declared = headers.iter().rev().find_map(|(_, _, k)| match k {
                        HeaderKind::ContentLength(n) => Some(*n),
                        _ => None,
                    });
                    writer.head(&status, &headers);
                    started = true;
                }
                Err(e) => {
                    log.log(
                            Level::Error,
                            &format!("RWSGI0035: daemon process {} of group {name:?} sent an invalid response head for {script:?}: {e}", pooled.pid),
                        );
                    return Relayed::Status(ffi::HTTP_BAD_GATEWAY as c_int);
                }
            },
            Frame::Data { data, flush } => {
                if !started {
                    continue;
                }
                writer.data(data);
                relayed += data.len() as u64;
                unflushed += data.len() as u64;
                // mod_wsgi response-buffer-size: a flush at least every so
                // many bytes; response-flush-delay: unmarked data is flushed
                // when no more arrives from the daemon within the delay.
                let flush = flush
                    || unflushed >= group.config.response_buffer_size as u64
                    || (!pooled.conn.has_buffered()
                        && !readable_within(&pooled.conn, group.config.response_flush_delay));
                if flush {
                    unflushed = 0;
                }
                let sent = if flush {
                    writer.send(Finish::Flush)
                } else {
                    writer.pass_plain()
                };
                if sent.is_err() {
                    // Closing the connection tells the daemon: its next
                    // write fails and the application stops.
                    log.log(
                        Level::Info,
                        &format!("RWSGI0026: client closed the connection while {script:?} was sending its response; output stopped"),
                    );
                    return Relayed::Done { keep: false };
                }
            }
            Frame::File { offset, length } => {
                // It ends the response. Only a refusal is answered: then the
                // daemon sends the region as Data frames, and End.
                let usable = match pooled.conn.take_file_fd() {
                    Ok(fd) if started => fds::check_region(fd.as_fd(), offset, length).map(|()| fd),
                    Ok(_) => Err("the response has not started".to_string()),
                    Err(why) => Err(why.to_string()),
                };
                match usable {
                    Ok(fd) => {
                        writer.file_owned(fd, offset, length);
                        relayed += length;
                        return finish(r, &mut writer, declared, relayed);
                    }
                    Err(why) => {
                        log.log(
                            Level::Info,
                            &format!("RWSGI0060: the descriptor of a file region of {length} bytes from daemon process {} of group {name:?} was not taken ({why}); the daemon sends the bytes instead", pooled.pid),
                        );
                        let mut enc = Encoder::new();
                        enc.file_refused();
                        if let Err(failed) = send(r, group, pooled, script, started, &enc.buf) {
                            return failed;
                        }
                    }
                }
            }
            Frame::End => {
                if !started {
                    return Relayed::Status(ffi::HTTP_BAD_GATEWAY as c_int);
                }
                return finish(r, &mut writer, declared, relayed);
            }
            Frame::Failed { reason, message } => {
                if reason == FailReason::Shutdown && !started {
                    return Relayed::Retry;
                }
                if reason == FailReason::Busy && !started {
                    return Relayed::Busy;
                }
                if reason == FailReason::QueueTimeout && !started {
                    log.log(
                        Level::Error,
                        &format!(
                            "RWSGI0051: {script:?} {} for a thread of group {name:?} (daemon process {}), longer than queue-timeout ({} s); it was not run: 503",
                            String::from_utf8_lossy(message),
                            pooled.pid,
                            group.config.queue_timeout.as_secs()
                        ),
                    );
                    return Relayed::Status(ffi::HTTP_SERVICE_UNAVAILABLE as c_int);
                }
                if reason == FailReason::Timeout {
                    log.log(
                        Level::Error,
                        &format!(
                            "RWSGI0036: {script:?} in daemon process {} of group {name:?} ended with a request timeout (request-timeout {} s): {}",
                            pooled.pid,
                            group.config.request_timeout.as_secs(),
                            String::from_utf8_lossy(message)
                        ),
                    );
                    if !started {
                        return Relayed::Status(ffi::HTTP_GATEWAY_TIME_OUT as c_int);
                    }
                    cut(&mut writer);
                    return Relayed::Done { keep: false };
                }
                log.log(
                    Level::Info,
                    &format!(
                        "RWSGI0031: daemon process {} of group {name:?} failed {script:?}: {} (its log line says why)",
                        pooled.pid,
                        String::from_utf8_lossy(message)
                    ),
                );
                if !started {
                    return Relayed::Status(ffi::HTTP_INTERNAL_SERVER_ERROR as c_int);
                }
                // As mod_wsgi: the client keeps what was sent as a complete
                // response, on a connection that is then closed.
                writer.close_connection();
                let _ = writer.send(Finish::Eos);
                return Relayed::Done { keep: true };
            }
            other => {
                log.log(
                    Level::Error,
                    &format!("RWSGI0035: daemon process {} of group {name:?} sent an unexpected {other:?} frame for {script:?}", pooled.pid),
                );
                if started {
                    cut(&mut writer);
                    return Relayed::Done { keep: false };
                }
                return Relayed::Status(ffi::HTTP_BAD_GATEWAY as c_int);
            }
        }
    }
}

/// Writes `bytes` (frames for the daemon) on the connection; a failed
/// write is the daemon failing mid-request ([`daemon_failed`]).
unsafe fn send(
    r: *mut ffi::request_rec,
    group: &Arc<Group>,
    pooled: &mut Pooled,
    script: &str,
    started: bool,
    bytes: &[u8],
) -> Result<(), Relayed> {
    pooled
        .conn
        .write_all(bytes)
        .map_err(|e| daemon_failed(r, group, pooled.pid, script, &FrameError::Io(e), started))
}

/// Ends a response the daemon completed (End, or a File frame taken):
/// what is left goes down with EOS, so a file bucket is written with the
/// rest of the response (event MPM: write completion, not this thread);
/// a body shorter than its Content-Length closes the client connection
/// after it.
unsafe fn finish(
    r: *mut ffi::request_rec,
    writer: &mut ApacheWriter,
    declared: Option<u64>,
    relayed: u64,
) -> Relayed {
    if declared.is_some_and(|cl| relayed < cl) && (*r).header_only == 0 {
        writer.close_connection();
    }
    let _ = writer.send(Finish::Eos);
    Relayed::Done { keep: true }
}

/// Whether the daemon connection has data to read within `wait`.
fn readable_within(conn: &Conn, wait: Duration) -> bool {
    let mut pfd = [libc::pollfd {
        fd: conn.stream().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(pfd.as_mut_ptr(), 1, ms) > 0 }
}

/// The client connection's socket timeout, set for one relayed response
/// and restored when dropped.
struct ClientTimeout {
    sock: *mut ffi::apr_socket_t,
    old: ffi::apr_interval_time_t,
}

impl ClientTimeout {
    /// Sets the response-socket-timeout of `group` on `r`'s connection, if
    /// it has one that differs from Apache's `Timeout`.
    unsafe fn set(r: *mut ffi::request_rec, group: &Group) -> Option<ClientTimeout> {
        let t = group.config.response_socket_timeout?;
        let sock = ffi::ap_get_conn_socket((*r).connection);
        if sock.is_null() {
            return None;
        }
        let mut old: ffi::apr_interval_time_t = 0;
        ffi::apr_socket_timeout_get(sock, &mut old);
        ffi::apr_socket_timeout_set(sock, t.as_micros() as ffi::apr_interval_time_t);
        Some(ClientTimeout { sock, old })
    }
}

impl Drop for ClientTimeout {
    fn drop(&mut self) {
        // SAFETY: the connection outlives the request being relayed.
        unsafe {
            ffi::apr_socket_timeout_set(self.sock, self.old);
        }
    }
}

/// Ends a response that started and cannot complete: the client sees it
/// cut off (no final chunk, connection closed).
fn cut(writer: &mut ApacheWriter) {
    writer.cut_off();
    let _ = writer.send(Finish::Eos);
}

/// The daemon's status and headers, checked again here (the daemon runs as
/// another user: nothing it sends reaches the client unchecked).
fn checked_head(head: &wire::Response<'_>) -> Result<((u16, String), Vec<Header>), String> {
    let latin1 = |b: &[u8]| -> String { b.iter().map(|&c| c as char).collect() };
    let line = latin1(head.status_line);
    let code = validate_status(&line).map_err(|e| e.to_string())?;
    if code != head.status {
        return Err(format!(
            "status {} does not match status line {line:?}",
            head.status
        ));
    }
    let mut headers = Vec::with_capacity(head.headers.len());
    for (k, v) in &head.headers {
        let (k, v) = (latin1(k), latin1(v));
        let kind = validate_header(&k, &v).map_err(|e| e.to_string())?;
        headers.push((k, v, kind));
    }
    Ok(((code, line), headers))
}

/// The connection to the daemon failed mid-request: say what happened to
/// the daemon (timed out, or died and how) and answer 504/502, or cut the
/// response if it had started.
unsafe fn daemon_failed(
    r: *mut ffi::request_rec,
    group: &Group,
    pid: i32,
    script: &str,
    err: &FrameError,
    started: bool,
) -> Relayed {
    let log = LogTarget::Request(r);
    let name = &group.config.name;
    let (status, what) = match err {
        FrameError::Io(e) if is_timeout(e) => (
            ffi::HTTP_GATEWAY_TIME_OUT,
            format!(
                "RWSGI0033: daemon process {pid} of group {name:?} did not answer {script:?} within socket-timeout ({} s)",
                group.socket_timeout.as_secs()
            ),
        ),
        FrameError::Wire(e) => (
            ffi::HTTP_BAD_GATEWAY,
            format!("RWSGI0035: daemon process {pid} of group {name:?} broke the protocol while serving {script:?}: {e}"),
        ),
        _ => {
            // The Apache parent learns how the daemon died when the MPM
            // reaps it (within about a second).
            let deadline = Instant::now() + Duration::from_millis(1500);
            let mut death = super::shared::death_of(pid);
            while death.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                death = super::shared::death_of(pid);
            }
            let how = match death {
                Some(d) => format!("{}{}", d.describe(), d.hint()),
                None if nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err() => {
                    "has exited".to_string()
                }
                None => format!("closed the connection ({err})"),
            };
            (
                ffi::HTTP_BAD_GATEWAY,
                format!("RWSGI0032: daemon process {pid} of group {name:?} {how} while serving {script:?}"),
            )
        }
    };
    log.log(Level::Error, &what);
    if started {
        cut(&mut ApacheWriter::new(r));
        return Relayed::Done { keep: false };
    }
    Relayed::Status(status as c_int)
}

/// Reads a request body of `length` bytes (Content-Length) from the client:
/// the bytes, and why reading stopped short, if it did.
///
/// # Safety
/// `r` must be live, after `ap_setup_client_block`.
unsafe fn read_whole_body(r: *mut ffi::request_rec, length: usize) -> (Vec<u8>, Option<String>) {
    let mut body = vec![0u8; length];
    let mut got = 0;
    let mut reader = ApacheReader(r);
    while got < length {
        match reader.read(&mut body[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(why) => {
                body.truncate(got);
                return (body, Some(why));
            }
        }
    }
    body.truncate(got);
    (body, None)
}
