//! Daemon mode (mod_wsgi's `WSGIDaemonProcess`): process groups forked and
//! supervised by the Apache parent ([`supervisor`]), each daemon process
//! running the application with a pool of threads behind one listening
//! UNIX socket per group ([`process`], [`serve`]), and Apache's children
//! relaying requests to them over pooled connections ([`relay`]), speaking
//! the wire protocol of `rwsgi_core::wire` (docs/daemon-protocol.md).

pub mod identity;
pub mod lend;
pub mod pool;
pub mod process;
pub mod relay;
pub mod retire;
pub mod serve;
pub mod shared;
pub mod supervisor;
pub mod watchdog;

use rwsgi_core::daemon_config::DaemonProcess;
use rwsgi_core::wire::fds::{self, FdReader, MissingFd, SendFdError};
use rwsgi_core::wire::{self, Frame, Limits, WireError};
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

thread_local! {
    /// This thread's spare encoding buffer (see [`ThreadEncoder`]).
    static SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// An [`Encoder`](wire::Encoder) over this thread's spare buffer, handed
/// back when dropped, so encoding a request head (Apache child) or a
/// response (daemon) allocates nothing once the buffer has grown. A buffer
/// grown past 16 KiB (a pushed body, a large response) is freed instead of kept, so
/// idle threads hold little memory.
pub struct ThreadEncoder(pub wire::Encoder);

impl ThreadEncoder {
    /// The spare buffer, empty (a new one if another encoder has it).
    pub fn take() -> ThreadEncoder {
        let mut buf = SPARE.with(|c| c.take());
        buf.clear();
        ThreadEncoder(wire::Encoder { buf })
    }
}

impl Drop for ThreadEncoder {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0.buf);
        if buf.capacity() <= 16 * 1024 {
            SPARE.with(|c| {
                let other = c.take();
                c.set(if other.capacity() > buf.capacity() {
                    other
                } else {
                    buf
                });
            });
        }
    }
}

impl std::ops::Deref for ThreadEncoder {
    type Target = wire::Encoder;
    fn deref(&self) -> &wire::Encoder {
        &self.0
    }
}

impl std::ops::DerefMut for ThreadEncoder {
    fn deref_mut(&mut self) -> &mut wire::Encoder {
        &mut self.0
    }
}

/// One configured process group of this server generation.
#[derive(Debug)]
pub struct Group {
    /// The `WSGIDaemonProcess` settings.
    pub config: DaemonProcess,
    /// The group's listening socket.
    pub socket_path: PathBuf,
    /// The previous configuration generation's name for the same socket,
    /// kept as a hard link after a graceful restart that changed the name
    /// (`WSGISocketRotation`): Apache children of that generation still
    /// connect by it while they finish. Removed at the next restart or stop.
    pub former_path: Option<PathBuf>,
    /// Its descriptor (in the Apache parent and the group's daemons).
    pub listen_fd: i32,
    /// Timeout of reads and writes between an Apache child and a daemon
    /// (`socket-timeout`, else Apache's `Timeout`).
    pub socket_timeout: Duration,
    /// uid Apache's children run as: the only peer (besides root) a daemon
    /// accepts connections from.
    pub child_uid: u32,
}

/// The process groups of the running configuration (set by the Apache
/// parent in post_config; inherited by Apache's children and daemons).
static GROUPS: RwLock<Vec<Arc<Group>>> = RwLock::new(Vec::new());

/// The group named `name`, if configured.
pub fn group(name: &str) -> Option<Arc<Group>> {
    GROUPS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|g| g.config.name == name)
        .cloned()
}

/// All groups of the running configuration.
pub fn groups() -> Vec<Arc<Group>> {
    GROUPS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn set_groups(groups: Vec<Arc<Group>>) {
    *GROUPS.write().unwrap_or_else(|e| e.into_inner()) = groups;
}

/// Limits both sides decode frames with: `header-buffer-size` bounds the
/// request and response heads (at least 1 MiB here, as environs with big
/// cookies need it), data blocks at most 1 MiB.
pub fn limits(group: &DaemonProcess) -> Limits {
    Limits {
        max_head: group.header_buffer_size.max(1 << 20),
        max_data: 1 << 20,
    }
}

/// Largest body block asked for or sent at once, in bytes.
pub const BLOCK: usize = 64 * 1024;

/// Capacity of a connection's read buffer, bytes: a frame header and a
/// small frame arrive in one read; a larger payload is read straight into
/// the frame buffer (std's `BufReader` bypasses its buffer then), so a
/// 64 KiB block costs one more `recv` at most, and each pooled connection
/// holds 16 KiB rather than 64.
const READ_BUFFER: usize = 16 * 1024 + 64;

/// Largest frame buffer a connection keeps between requests, bytes.
const KEPT_FRAME: usize = 16 * 1024;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The peer closed the connection before a frame started.
    Closed,
    /// Reading failed (timeout: `WouldBlock`/`TimedOut`), or the peer closed
    /// the connection inside a frame.
    Io(io::Error),
    /// The bytes are not a valid frame.
    Wire(WireError),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => write!(f, "connection closed"),
            FrameError::Io(e) if is_timeout(e) => write!(f, "timed out"),
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Wire(e) => write!(f, "protocol error: {e}"),
        }
    }
}

/// Whether an I/O error is a socket timeout (SO_RCVTIMEO/SO_SNDTIMEO).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One end of a connection: frames read through a buffer, written whole.
/// The Apache child's end also receives the descriptor of each File frame
/// (`wire::fds`).
pub struct Conn {
    reader: BufReader<FdReader>,
    frame: Vec<u8>,
    limits: Limits,
    /// The descriptor of the File frame last read, until taken.
    file_fd: Option<Result<OwnedFd, MissingFd>>,
}

impl Conn {
    /// Wraps a connected stream of a daemon process: it accepts no
    /// descriptors (any sent to it are closed by the kernel).
    pub fn new(stream: UnixStream, limits: Limits) -> Conn {
        Conn::with_reader(FdReader::new(stream), limits)
    }

    /// Wraps a connected stream of an Apache child, which receives the
    /// descriptors of File frames (MSG_CMSG_CLOEXEC, at most one a message;
    /// any other is closed).
    pub fn receiving_fds(stream: UnixStream, limits: Limits) -> Conn {
        Conn::with_reader(FdReader::receiving(stream), limits)
    }

    fn with_reader(reader: FdReader, limits: Limits) -> Conn {
        Conn {
            reader: BufReader::with_capacity(READ_BUFFER, reader),
            frame: Vec::new(),
            limits,
            file_fd: None,
        }
    }

    /// The stream.
    pub fn stream(&self) -> &UnixStream {
        self.reader.get_ref().stream()
    }

    /// Stream offset of the next byte a frame read consumes.
    fn consumed(&self) -> u64 {
        self.reader.get_ref().position() - self.reader.buffer().len() as u64
    }

    /// Whether bytes of a next frame are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Reads the next frame (blocking, up to the socket's timeout). The
    /// frame borrows this connection's buffer until the next read.
    pub fn read_frame(&mut self) -> Result<Frame<'_>, FrameError> {
        self.read_frame_bytes()?;
        self.last_frame()
    }

    /// Reads the next frame's bytes into this connection's buffer (blocking,
    /// up to the socket's timeout) without decoding its payload. Output: its
    /// kind ([`wire::kind`]); the header was checked against the limits
    /// before anything was allocated. [`Conn::last_frame`] decodes it,
    /// [`Conn::take_frame`] moves it out.
    pub fn read_frame_bytes(&mut self) -> Result<u8, FrameError> {
        self.file_fd = None;
        let start = self.consumed();
        let mut head = [0u8; wire::HEADER_LEN];
        let mut got = 0;
        while got < head.len() {
            match self.reader.read(&mut head[got..]) {
                Ok(0) if got == 0 => return Err(FrameError::Closed),
                Ok(0) => {
                    return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
        // The header alone decides the type and checks the length against
        // the limits, before anything is allocated.
        if let Err(e) = wire::decode(&head, &self.limits) {
            return Err(FrameError::Wire(e));
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        self.frame.clear();
        self.frame.extend_from_slice(&head);
        self.frame.resize(wire::HEADER_LEN + len, 0);
        self.reader
            .read_exact(&mut self.frame[wire::HEADER_LEN..])
            .map_err(FrameError::Io)?;
        // A File frame's descriptor came with its first byte or with the
        // frames of the response before it (one sendmsg); what no File
        // frame claimed is closed when the response ends (File ends it too).
        let fds = self.reader.get_mut();
        if head[0] == wire::kind::FILE {
            self.file_fd = Some(fds.take_fd(start));
        }
        if matches!(
            head[0],
            wire::kind::FILE | wire::kind::END | wire::kind::FAILED | wire::kind::HELLO
        ) {
            fds.discard_through(start + self.frame.len() as u64);
        }
        Ok(head[0])
    }

    /// Decodes the frame last read by [`Conn::read_frame_bytes`].
    pub fn last_frame(&self) -> Result<Frame<'_>, FrameError> {
        match wire::decode(&self.frame, &self.limits) {
            Ok(Some((frame, _))) => Ok(frame),
            Ok(None) => unreachable!("a whole frame was read"),
            Err(e) => Err(FrameError::Wire(e)),
        }
    }

    /// Moves the bytes of the frame last read out (no copy), for a caller
    /// that keeps them while reading further frames; hand the buffer back
    /// with [`Conn::give_back_frame`] so its capacity is reused.
    pub fn take_frame(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.frame)
    }

    /// Returns a buffer from [`Conn::take_frame`]: kept for the next frame
    /// if it is larger than the one in use.
    pub fn give_back_frame(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > self.frame.capacity() {
            buf.clear();
            self.frame = buf;
        }
    }

    /// Frees the frame buffer if a large frame (a 64 KiB Data or Body
    /// block, a large head) grew it past [`KEPT_FRAME`] bytes: called when
    /// a request ends, so an idle pooled connection (one per Apache thread
    /// and group, one per connection in a daemon) holds little memory.
    pub fn trim(&mut self) {
        if self.frame.capacity() > KEPT_FRAME {
            self.frame = Vec::new();
        }
    }

    /// The descriptor of the File frame just read (the caller's now), or
    /// why there is none. Errors also when the last frame was no File.
    pub fn take_file_fd(&mut self) -> Result<OwnedFd, MissingFd> {
        self.file_fd.take().unwrap_or(Err(MissingFd::None))
    }

    /// Writes encoded frames.
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut s = self.stream();
        s.write_all(bytes)
    }

    /// Writes the concatenation of `parts` (encoded frames, possibly split
    /// between a frame's header and its payload) with as few `sendmsg`
    /// calls as the socket takes (MSG_NOSIGNAL: a closed peer is EPIPE,
    /// never SIGPIPE); blocks up to the send timeout.
    pub fn write_all_vectored(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        use nix::sys::socket::{sendmsg, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut slices: Vec<io::IoSlice<'_>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| io::IoSlice::new(p))
            .collect();
        let mut rest = &mut slices[..];
        let fd = self.stream().as_raw_fd();
        while !rest.is_empty() {
            match sendmsg::<()>(fd, rest, &[], MsgFlags::MSG_NOSIGNAL, None) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Writes encoded frames ending with a File frame, `fd` attached
    /// (SCM_RIGHTS).
    /// Errors: [`SendFdError::NotPassed`] when nothing was sent (send the
    /// region another way), else the connection is unusable.
    pub fn send_with_fd(&mut self, frame: &[u8], fd: BorrowedFd<'_>) -> Result<(), SendFdError> {
        fds::send_with_fd(self.stream(), frame, fd)
    }
}
