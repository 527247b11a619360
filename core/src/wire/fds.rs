//! Descriptor passing for [`Frame::File`](super::Frame::File) over the
//! UNIX stream socket between a daemon process and an Apache child: the one
//! place where the protocol carries more than bytes.
//!
//! Sending: [`send_with_fd`] writes encoded frames that end with a File
//! frame in one `sendmsg`, the descriptor attached as SCM_RIGHTS; the
//! kernel delivers it to the `recvmsg` that reads the first of those bytes.
//! When the descriptor cannot be attached (ETOOMANYREFS: too many
//! descriptors in flight, no memory) nothing was sent:
//! [`SendFdError::NotPassed`], and the caller sends the bytes instead.
//!
//! Receiving: [`FdReader`] is the byte source under the receiver's frame
//! reader. Each read is a `recvmsg` with MSG_CMSG_CLOEXEC (no received
//! descriptor is inherited by a program Apache or the application starts)
//! and a control buffer with room for a few descriptors, so none is lost
//! unseen: a message with more than [`MAX_FDS_PER_MESSAGE`] descriptors
//! has all of them closed, more than [`MAX_PENDING`] unclaimed messages
//! are closed as they come, and a truncated control buffer (the receiver
//! out of descriptors: the kernel drops them, MSG_CTRUNC) is remembered as
//! such. The reader notes the stream byte each descriptor came with; a
//! File frame claims the last one that came at or before its first byte
//! ([`FdReader::take_fd`]: the `sendmsg` may have started with frames of
//! the response before it, and a read may end anywhere), and the frame
//! reader closes the ones no File frame claimed when a response ends
//! ([`FdReader::discard_through`]). Descriptors are `OwnedFd`s: one not
//! taken is closed when dropped.
//!
//! [`check_region`] and [`read_at`] are what the two ends do with a
//! received or a refused descriptor.

use nix::errno::Errno;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::collections::VecDeque;
use std::ffi::c_int;
use std::io::{self, IoSlice, Read, Write};
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use thiserror::Error;

/// Descriptors one message may carry: a File frame's one.
pub const MAX_FDS_PER_MESSAGE: usize = 1;

/// Messages with descriptors kept until a frame claims them; later ones are
/// closed at once (a correct peer has at most one in flight: a File frame
/// ends its response, and the next response needs the next request).
pub const MAX_PENDING: usize = 4;

/// Descriptors the control buffer of one `recvmsg` has room for: more than
/// a message may carry, so an excess is seen (and closed) rather than
/// truncated.
const CMSG_ROOM: usize = 4;

/// Why [`send_with_fd`] failed.
#[derive(Debug, Error)]
pub enum SendFdError {
    /// The descriptor could not be attached (ETOOMANYREFS, ENOMEM, ...);
    /// nothing was sent and the connection is intact: send the bytes
    /// another way.
    #[error("the descriptor could not be passed: {0}")]
    NotPassed(io::Error),
    /// Writing failed (peer gone, timeout): the connection is unusable.
    #[error("{0}")]
    Io(io::Error),
}

/// Writes `bytes` (encoded frames ending with a File frame, not empty) to
/// `stream` with `fd` attached as SCM_RIGHTS ancillary data, so the peer
/// receives a copy of the descriptor with the first byte. Blocks up to the
/// socket's send timeout. After `Ok`, the caller may close its `fd`: the
/// kernel holds the open file until the peer receives (or drops) it.
///
/// Errors: [`SendFdError::NotPassed`] when nothing was sent because the
/// descriptor could not be attached, else [`SendFdError::Io`].
pub fn send_with_fd(
    stream: &UnixStream,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
) -> Result<(), SendFdError> {
    assert!(!bytes.is_empty(), "a descriptor travels with bytes");
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(bytes)];
    let sent = loop {
        match sendmsg::<()>(
            stream.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(Errno::EINTR) => continue,
            Err(
                e @ (Errno::ETOOMANYREFS
                | Errno::ENOMEM
                | Errno::ENOBUFS
                | Errno::EMFILE
                | Errno::ENFILE
                | Errno::EINVAL
                | Errno::EBADF
                | Errno::EPERM),
            ) => return Err(SendFdError::NotPassed(e.into())),
            Err(e) => return Err(SendFdError::Io(e.into())),
        }
    };
    // The descriptor went with the first byte; should the socket have taken
    // only part, the rest follows as plain bytes.
    let mut s = stream;
    s.write_all(&bytes[sent..]).map_err(SendFdError::Io)
}

/// Why no descriptor is there for a File frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MissingFd {
    /// None came with the frame's first byte (a peer that broke the
    /// protocol).
    #[error("no descriptor came with the frame")]
    None,
    /// The kernel dropped it: the control data was truncated (MSG_CTRUNC),
    /// as when this process is at its descriptor limit (EMFILE).
    #[error("the descriptor was dropped on receipt (control data truncated: out of descriptors?)")]
    Truncated,
    /// The message carried more than [`MAX_FDS_PER_MESSAGE`]: all closed.
    #[error("the message carried more than one descriptor; all were closed")]
    TooMany,
}

/// Descriptors received with the stream bytes `start..end`.
struct Received {
    start: u64,
    end: u64,
    fd: Result<OwnedFd, MissingFd>,
}

/// The receiving side's byte source: a UNIX stream whose reads keep the
/// descriptors that come with them (see the module docs), or, made with
/// [`FdReader::new`], plain reads (descriptors a peer sends are then closed
/// by the kernel).
pub struct FdReader {
    stream: UnixStream,
    receive: bool,
    /// Stream bytes read so far.
    pos: u64,
    pending: VecDeque<Received>,
}

impl FdReader {
    /// Plain reads: this end accepts no descriptors.
    pub fn new(stream: UnixStream) -> FdReader {
        FdReader {
            stream,
            receive: false,
            pos: 0,
            pending: VecDeque::new(),
        }
    }

    /// Reads with `recvmsg`, keeping descriptors for [`take_fd`](Self::take_fd).
    pub fn receiving(stream: UnixStream) -> FdReader {
        FdReader {
            receive: true,
            ..FdReader::new(stream)
        }
    }

    /// The stream.
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Stream bytes read so far (the offset of the next byte read).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Messages with descriptors not yet claimed or closed.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The descriptor for the File frame whose first byte is stream byte
    /// `at`: the last one not yet claimed or closed that came with a byte
    /// at or before it, now the caller's. Earlier ones are closed. Errors:
    /// why there is none.
    pub fn take_fd(&mut self, at: u64) -> Result<OwnedFd, MissingFd> {
        let n = self.pending.iter().take_while(|r| r.start <= at).count();
        if n == 0 {
            return Err(MissingFd::None);
        }
        self.pending.drain(..n - 1);
        self.pending.pop_front().expect("n > 0").fd
    }

    /// Closes the descriptors that came only with stream bytes before `end`
    /// (the bytes of a response that ended, whose File frame, if any, has
    /// claimed its own).
    pub fn discard_through(&mut self, end: u64) {
        while self.pending.front().is_some_and(|r| r.end <= end) {
            self.pending.pop_front();
        }
    }

    fn keep(&mut self, start: u64, mut fds: Vec<OwnedFd>, truncated: bool) {
        if (fds.is_empty() && !truncated) || self.pos == start {
            return;
        }
        if self.pending.len() >= MAX_PENDING {
            return; // closed as `fds` drops
        }
        let fd = if truncated {
            Err(MissingFd::Truncated)
        } else if fds.len() > MAX_FDS_PER_MESSAGE {
            Err(MissingFd::TooMany)
        } else {
            Ok(fds.pop().expect("one descriptor"))
        };
        self.pending.push_back(Received {
            start,
            end: self.pos,
            fd,
        });
    }
}

impl Read for FdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.pos;
        if !self.receive {
            let n = (&self.stream).read(buf)?;
            self.pos += n as u64;
            return Ok(n);
        }
        let (n, fds, truncated) = recv_with_fds(&self.stream, buf)?;
        self.pos += n as u64;
        self.keep(start, fds, truncated);
        Ok(n)
    }
}

/// One `recvmsg` into `buf` with room for [`CMSG_ROOM`] descriptors and
/// MSG_CMSG_CLOEXEC (EINTR retried). Returns the bytes read, every
/// descriptor received (owned: closed when dropped) and whether the control
/// data was truncated (MSG_CTRUNC: descriptors dropped by the kernel).
fn recv_with_fds(stream: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>, bool)> {
    // nix's RecvMsg::cmsgs() refuses a truncated control buffer, which
    // would leak the descriptors the kernel did install: libc, parsed here.
    // u64 storage aligns the cmsghdrs.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE((CMSG_ROOM * size_of::<c_int>()) as u32) } as usize;
    assert!(space <= std::mem::size_of_val(&control));
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no buffers).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: msg points at iov (buf, writable for its length) and at
        // control (`space` bytes), both live across the call.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fds = Vec::new();
    // SAFETY: the kernel wrote msg_controllen bytes of cmsghdrs into
    // control; CMSG_FIRSTHDR/CMSG_NXTHDR stay within them, and the count of
    // descriptors read is bounded by both cmsg_len and the buffer's end.
    // Each descriptor is new in this process and owned by nothing else.
    unsafe {
        let end = (control.as_ptr() as *const u8).add((msg.msg_controllen as usize).min(space));
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                let room = (end as usize).saturating_sub(data as usize);
                for i in 0..len.min(room) / size_of::<c_int>() {
                    let fd = std::ptr::read_unaligned((data as *const c_int).add(i));
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n, fds, msg.msg_flags & libc::MSG_CTRUNC != 0))
}

/// Whether `fd` can be sent as `length` bytes from `offset`: a regular
/// file, open for reading, at least `offset + length` bytes long.
/// Errors: what is not so, in words.
pub fn check_region(fd: BorrowedFd<'_>, offset: u64, length: u64) -> Result<(), String> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let st = nix::sys::stat::fstat(fd).map_err(|e| format!("fstat: {e}"))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(format!("not a regular file (mode {:o})", st.st_mode));
    }
    let flags =
        OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?);
    if flags.contains(OFlag::O_PATH) || (flags & OFlag::O_ACCMODE) == OFlag::O_WRONLY {
        return Err("not open for reading".into());
    }
    let size = st.st_size.max(0) as u64;
    match offset.checked_add(length) {
        Some(end) if end <= size => Ok(()),
        _ => Err(format!(
            "the region {offset}+{length} ends beyond the file's {size} bytes"
        )),
    }
}

/// Reads up to `buf.len()` bytes of `fd` at `offset` (pread: the file's
/// position is not used or moved; EINTR retried). Returns the bytes read,
/// 0 at the end of the file.
pub fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let offset = i64::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        match nix::sys::uio::pread(fd, buf, offset) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests;
