//! The connections of a daemon process and its request threads, as
//! leader/followers: idle threads wait in `epoll_wait` on the group's
//! listening socket and the idle pooled connections (all one-shot), and the
//! thread an event wakes serves that request itself. No thread hands a
//! connection to another, so a request costs no wake-up beyond the one
//! epoll does. There are `threads + 1` threads: at most `threads` serve
//! requests (mod_wsgi WSGIDaemonProcess threads); the one left waiting
//! answers a request that arrives while all are busy with "busy", so the
//! Apache child sends it to a daemon process with a free thread, and the
//! listening socket is armed only while a thread is free.
//!
//! At most [`POLLERS`] idle threads wait in `epoll_wait` at a time; the
//! other idle threads are parked, the most recently idle first to be
//! woken. With every idle thread in `epoll_wait`, each request woke one
//! while a thread just done with its request often took the request first
//! (the woken one went back to sleep: a wasted wake-up, and a thread moved
//! between CPUs). Measured with 2 processes x 15 threads, hello world at
//! 16 connections on 2 CPUs: 1.6 sleeps per request in the daemons before,
//! 0.7 after, and about 7% more requests per second.

use super::identity::resolve_user;
use super::process::{recycle, Recycle};
use super::serve::{self, ConnState, Context, SharedConn};
use super::{Conn, Group};
use crate::apache::{self, Level};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn log(msg: &str) {
    apache::log_s(std::ptr::null(), Level::Error, 0, msg);
}

/// The connections of a daemon process and the threads serving them.
pub struct Pool {
    epoll: Epoll,
    /// The group's listening socket; closed when draining starts.
    listener: Mutex<Option<UnixListener>>,
    socket_timeout: Duration,
    child_uid: u32,
    group: String,
    /// Connections, idle (registered with epoll) or being served.
    conns: Mutex<HashMap<RawFd, SharedConn>>,
    /// Threads serving a request, or reserved for one (a connection being
    /// accepted): at most `threads`.
    busy: AtomicUsize,
    /// Request threads (`threads`); one more thread waits to refuse.
    threads: usize,
    /// Whether the listening socket is armed in epoll (one-shot: it is
    /// armed again only while a thread is free).
    listener_armed: AtomicBool,
    stopping: AtomicBool,
    limits: rwsgi_core::wire::Limits,
    /// Per worker: when its request started, and its connection.
    pub active: Mutex<Vec<Option<(Instant, SharedConn)>>>,
    /// Requests served (for maximum-requests).
    done: std::sync::atomic::AtomicU64,
    /// Per worker: its thread's `pthread_self()` (Python's thread ident).
    idents: Vec<std::sync::atomic::AtomicU64>,
    /// When the last request started or ended (inactivity-timeout).
    pub(super) last_activity: Arc<Mutex<Instant>>,
    /// uid besides Apache's children (and root) allowed to connect:
    /// `socket-user`.
    socket_uid: Option<u32>,
    receive_buffer: Option<u32>,
    send_buffer: Option<u32>,
    /// How long a handover may take before the process drains anyway.
    pub(super) startup_wait: Duration,
    maximum_requests: u64,
    /// Why the process ends itself, a [`Recycle`] value.
    pub recycle: std::sync::atomic::AtomicU8,
    /// When the pool was made, and when (ms after it) copies of passed
    /// descriptors are next looked at (`lend`: closed after the hold time).
    born: Instant,
    next_lent_sweep_ms: std::sync::atomic::AtomicU64,
    /// Idle threads: pollers and parked ones.
    idle: Mutex<Idle>,
}

/// epoll data of the listening socket (connections use their descriptor).
const LISTENER: u64 = u64::MAX;

/// How many idle threads wait in `epoll_wait` at most; the others park.
const POLLERS: usize = 2;

/// The idle threads of a pool: how many wait in `epoll_wait`, and the
/// parked others.
#[derive(Default)]
struct Idle {
    /// Threads in (or entering) `epoll_wait`: at most [`POLLERS`].
    pollers: usize,
    /// Parked threads, the most recently parked last (woken first: its
    /// stack and caches are the warmest).
    parked: Vec<std::thread::Thread>,
}

impl Pool {
    pub(super) fn new(group: &Group) -> Pool {
        // SAFETY: the listening descriptor belongs to this process now.
        let listener = unsafe { UnixListener::from_raw_fd(group.listen_fd) };
        let _ = listener.set_nonblocking(true);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).expect("epoll_create");
        epoll
            .add(
                &listener,
                EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, LISTENER),
            )
            .expect("epoll_ctl");
        Pool {
            epoll,
            listener: Mutex::new(Some(listener)),
            socket_timeout: group.socket_timeout,
            child_uid: group.child_uid,
            group: group.config.name.clone(),
            conns: Mutex::new(HashMap::new()),
            busy: AtomicUsize::new(0),
            threads: group.config.threads.max(1) as usize,
            listener_armed: AtomicBool::new(true),
            stopping: AtomicBool::new(false),
            limits: super::limits(&group.config),
            active: Mutex::new(vec![None; Pool::thread_count(group).max(1)]),
            done: std::sync::atomic::AtomicU64::new(0),
            idents: (0..Pool::thread_count(group).max(1))
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            last_activity: Arc::new(Mutex::new(Instant::now())),
            socket_uid: group
                .config
                .socket_user
                .as_ref()
                .and_then(|p| resolve_user(p).ok())
                .map(|u| u.uid.as_raw()),
            receive_buffer: group.config.receive_buffer_size,
            startup_wait: group.config.startup_timeout.max(Duration::from_secs(30)),
            send_buffer: group.config.send_buffer_size,
            maximum_requests: group.config.maximum_requests as u64,
            recycle: std::sync::atomic::AtomicU8::new(Recycle::NONE),
            born: Instant::now(),
            next_lent_sweep_ms: std::sync::atomic::AtomicU64::new(0),
            idle: Mutex::new(Idle::default()),
        }
    }

    /// Closes the copies of passed descriptors (`lend`) kept longer than
    /// [`super::lend::HOLD`] on connections not being served: an idle pooled
    /// connection must not keep a served file open. Looks at most once a
    /// second; otherwise one atomic load.
    fn sweep_lent(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        let next = self.next_lent_sweep_ms.load(Ordering::Relaxed);
        if now < next
            || self
                .next_lent_sweep_ms
                .compare_exchange(next, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        for c in self.all_conns() {
            if let Ok(mut st) = c.try_lock() {
                if st.lent.as_ref().is_some_and(|l| l.expired()) {
                    st.lent = None;
                }
            }
        }
    }

    /// Every connection, idle or being served, at this moment.
    fn all_conns(&self) -> Vec<SharedConn> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn arm(&self, fd: RawFd) {
        // SAFETY: fd is an open connection held in `conns`.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLONESHOT;
        let _ = self
            .epoll
            .modify(bfd, &mut EpollEvent::new(flags, fd as u64));
    }

    /// The Python thread ident of `worker`'s thread (0 before it ran).
    pub fn thread_ident(&self, worker: usize) -> u64 {
        self.idents
            .get(worker)
            .map(|a| a.load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// How long no request has run, or `None` while one runs or waits.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.busy.load(Ordering::SeqCst) > 0 {
            return None;
        }
        Some(
            self.last_activity
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .elapsed(),
        )
    }

    /// How many threads a daemon process of `group` runs: its request
    /// threads plus the one that refuses while they are all busy; none for
    /// a service process group (`threads=0`, mod_wsgi's managed services:
    /// the process only runs its `WSGIImportScript`).
    pub(super) fn thread_count(group: &Group) -> usize {
        match group.config.threads {
            0 => 0,
            n => n as usize + 1,
        }
    }

    /// Reserves a thread for one request: false if all `threads` are busy.
    fn reserve(&self) -> bool {
        let old = self.busy.fetch_add(1, Ordering::SeqCst);
        if old >= self.threads {
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Arms the listening socket again if it is not and a thread is free.
    fn arm_listener_if_free(&self) {
        if self.busy.load(Ordering::SeqCst) < self.threads
            && self
                .listener_armed
                .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            self.arm_listener();
        }
    }

    fn arm_listener(&self) {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = listener.as_ref() {
            let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT;
            let _ = self.epoll.modify(l, &mut EpollEvent::new(flags, LISTENER));
        }
    }

    /// A request on a kept-alive connection while every thread is busy:
    /// answered "busy" (not run), so the Apache child sends it on a new
    /// connection, which a daemon process with a free thread accepts.
    fn refuse_busy(&self, fd: RawFd) {
        let conn = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fd)
            .cloned();
        let Some(conn) = conn else { return };
        let ok = {
            let mut st = conn.lock().unwrap_or_else(|e| e.into_inner());
            serve::refuse_busy(&mut st, std::ptr::null(), &self.group)
        };
        if ok {
            self.arm(fd);
        } else {
            self.close(fd);
        }
    }

    fn close(&self, fd: RawFd) {
        let removed = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fd);
        if let Some(c) = removed {
            // SAFETY: fd is this connection's descriptor, still open.
            let _ = self.epoll.delete(unsafe { BorrowedFd::borrow_raw(fd) });
            drop(c);
        }
    }

    /// Thread number `worker`: waits for an event (a connection to accept
    /// or a request on a pooled connection) and serves it, until the
    /// process stops.
    pub(super) fn work(&self, worker: usize, cx: &Context) {
        // SAFETY: pthread_self has no preconditions.
        let ident = unsafe { libc::pthread_self() } as u64;
        self.idents[worker].store(ident, Ordering::Relaxed);
        // One event at a time: a second one would wait on this thread while
        // another is idle.
        let mut events = [EpollEvent::empty(); 1];
        while !self.stopping.load(Ordering::Relaxed) {
            if !self.poll_or_queue() {
                self.park();
                continue;
            }
            let waited = self.epoll.wait(&mut events, EpollTimeout::from(200u16));
            self.leave_poller(matches!(waited, Ok(n) if n > 0));
            let n = match waited {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            if n == 0 {
                self.sweep_lent();
                continue;
            }
            let ev = events[0];
            if ev.data() == LISTENER {
                self.listener_armed.store(false, Ordering::SeqCst);
                if !self.reserve() {
                    // Armed again when a request ends.
                    continue;
                }
                let accepted = self.accept_one();
                // Another free thread may take the next one in the backlog.
                self.arm_listener_if_free();
                match accepted {
                    Some(fd) => self.serve(fd, worker, cx),
                    None => self.release(),
                }
            } else {
                let fd = ev.data() as RawFd;
                if !self.reserve() {
                    self.refuse_busy(fd);
                    continue;
                }
                self.serve(fd, worker, cx);
            }
        }
    }

    /// Counts this thread as one waiting in `epoll_wait`, if fewer than
    /// [`POLLERS`] do (returns true), else queues it among the parked ones
    /// (returns false: it should [`park`](Self::park)). One critical
    /// section, so a thread [`leave_poller`](Self::leave_poller) wakes
    /// cannot be one that is about to park but not yet queued.
    fn poll_or_queue(&self) -> bool {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.pollers < POLLERS {
            idle.pollers += 1;
            return true;
        }
        idle.parked.push(std::thread::current());
        false
    }

    /// This thread left `epoll_wait`, with an event to handle or not. When
    /// it took an event and no other thread waits in `epoll_wait` now, the
    /// most recently parked thread is woken to wait there, so the next
    /// request finds a thread waiting (never one only parked).
    fn leave_poller(&self, took_event: bool) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.pollers -= 1;
        if took_event && idle.pollers == 0 {
            if let Some(t) = idle.parked.pop() {
                t.unpark();
            }
        }
    }

    /// Parks this idle thread, queued by [`poll_or_queue`](Self::poll_or_queue),
    /// until it is woken to poll, or for up to 200 ms (then it looks at the
    /// stop flag and the lent descriptors).
    fn park(&self) {
        std::thread::park_timeout(Duration::from_millis(200));
        // Woken by a timeout (or spuriously): no longer queued.
        let id = std::thread::current().id();
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .parked
            .retain(|t| t.id() != id);
        self.sweep_lent();
    }

    /// Ends a reservation; the listening socket is armed again if it was
    /// waiting for a free thread.
    fn release(&self) {
        self.busy.fetch_sub(1, Ordering::SeqCst);
        self.arm_listener_if_free();
    }

    /// Accepts one connection (checking the peer's uid) and greets it.
    /// Returns its descriptor, stored in `conns` but not in epoll, or `None`
    /// if none was waiting or it was refused.
    fn accept_one(&self) -> Option<RawFd> {
        let listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        let listener = listener.as_ref()?;
        loop {
            let (stream, _) = listener.accept().ok()?;
            let peer = getsockopt(&stream, sockopt::PeerCredentials);
            let uid = peer.as_ref().map(|c| c.uid()).unwrap_or(u32::MAX);
            if uid != self.child_uid && uid != 0 && Some(uid) != self.socket_uid {
                let pid = peer.map(|c| c.pid()).unwrap_or(0);
                log(&format!(
                    "RWSGI0045: daemon process {} of group {:?} refused a connection from uid {uid} (pid {pid}): only Apache's children (uid {}) may connect",
                    std::process::id(),
                    self.group,
                    self.child_uid
                ));
                continue;
            }
            let _ = stream.set_nonblocking(false);
            // mod_wsgi receive-buffer-size / send-buffer-size.
            if let Some(n) = self.receive_buffer {
                let _ = setsockopt(&stream, sockopt::RcvBuf, &(n as usize));
            }
            if let Some(n) = self.send_buffer {
                let _ = setsockopt(&stream, sockopt::SndBuf, &(n as usize));
            }
            let t = Some(self.socket_timeout).filter(|t| !t.is_zero());
            let _ = stream.set_read_timeout(t);
            let _ = stream.set_write_timeout(t);
            let mut hello = rwsgi_core::wire::Encoder::new();
            hello.hello(std::process::id());
            if std::io::Write::write_all(&mut &stream, &hello.buf).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let conn = Arc::new(Mutex::new(ConnState::new(Conn::new(stream, self.limits))));
            self.conns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(fd, conn);
            // SAFETY: fd is the stream just stored in `conns`. Registered
            // disarmed: `serve` arms it once its request is answered.
            let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = self
                .epoll
                .add(bfd, EpollEvent::new(EpollFlags::EPOLLONESHOT, fd as u64));
            return Some(fd);
        }
    }

    /// Serves the requests on connection `fd` (this thread holds a
    /// reservation, which it releases): the next one, then any already
    /// buffered; then the connection goes back to epoll, or is closed.
    fn serve(&self, fd: RawFd, worker: usize, cx: &Context) {
        let Some(conn) = self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&fd)
            .cloned()
        else {
            self.release();
            return;
        };
        let mut keep = true;
        // Serve what is buffered without going back to epoll.
        loop {
            if self.stopping.load(Ordering::Relaxed) {
                serve::refuse_for_shutdown(
                    &mut conn.lock().unwrap_or_else(|e| e.into_inner()),
                    cx.server,
                    &self.group,
                );
                keep = false;
                break;
            }
            self.active.lock().unwrap_or_else(|e| e.into_inner())[worker] =
                Some((Instant::now(), Arc::clone(&conn)));
            let served = serve::serve_one(&conn, cx);
            self.active.lock().unwrap_or_else(|e| e.into_inner())[worker] = None;
            let done = if served.request {
                self.done.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                0
            };
            if self.maximum_requests > 0 && done == self.maximum_requests {
                apache::log_s(
                    cx.server,
                    Level::Info,
                    0,
                    &format!(
                        "RWSGI0050: daemon process {} of group {:?} served maximum-requests ({done}); replacing it",
                        std::process::id(),
                        self.group
                    ),
                );
                recycle(self, Recycle::MAX_REQUESTS);
            }
            if !served.keep {
                keep = false;
                break;
            }
            if !conn
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .conn
                .has_buffered()
            {
                break;
            }
        }
        drop(conn);
        self.sweep_lent();
        // Free before the connection can raise its next event, so that
        // event finds this thread free, not "busy".
        self.busy.fetch_sub(1, Ordering::SeqCst);
        if keep {
            self.arm(fd);
        } else {
            self.close(fd);
        }
        self.arm_listener_if_free();
    }

    /// Stops taking requests, answers those waiting on idle connections
    /// with "shutting down" (the Apache child retries them elsewhere), and
    /// waits up to `timeout` for the requests running.
    pub(super) fn shutdown(&self, timeout: Duration) {
        self.stopping.store(true, Ordering::SeqCst);
        // Our copy of the listening socket goes at once: connections still
        // queued on it are refused when the last copy closes, and the Apache
        // child retries them on the next daemons.
        if let Some(listener) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = self.epoll.delete(&listener);
        }
        let deadline = Instant::now() + timeout.max(Duration::from_millis(100));
        while self.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for c in self.all_conns() {
            if let Ok(mut st) = c.try_lock() {
                let fd = st.conn.stream().as_raw_fd();
                let mut pfd = [libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd.
                if unsafe { libc::poll(pfd.as_mut_ptr(), 1, 0) } > 0 {
                    let _ = setsockopt(
                        st.conn.stream(),
                        sockopt::ReceiveTimeout,
                        &nix::sys::time::TimeVal::new(1, 0),
                    );
                    serve::refuse_for_shutdown(&mut st, std::ptr::null(), &self.group);
                }
                let _ = st.conn.stream().shutdown(std::net::Shutdown::Both);
            }
        }
    }
}
