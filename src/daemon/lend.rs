//! The daemon's side of a file region sent by descriptor
//! (`wsgi.file_wrapper` on a real file, docs/daemon-protocol.md "File
//! frames"): the response ends with one `sendmsg` carrying the File frame
//! and the descriptor, and nothing waits for an answer. The Apache child
//! answers only when it cannot take the descriptor (it was out of
//! descriptors: the kernel dropped it), with FileRefused; the daemon then
//! sends the region as Data frames and End from a copy of the descriptor
//! it kept (a [`Lent`] file), as the next thing on the connection.
//!
//! The copy is closed when the child's next request arrives on the
//! connection (it took the descriptor), when the connection closes, or
//! after [`HOLD`], so an idle pooled connection does not keep a served file
//! open for long. The child refuses as soon as it reads the File frame, so
//! a refusal comes well within that; one that comes later cuts the response
//! (RWSGI0061).

use super::{Conn, BLOCK};
use crate::apache::{Level, LogTarget};
use rwsgi_core::wire::fds as wire_fds;
use rwsgi_core::wire::{Encoder, FailReason};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// How long a copy is kept at most, when the connection is not reused.
pub const HOLD: Duration = Duration::from_secs(5);

/// A copy of the descriptor of the File frame that ended the last response
/// on a connection, kept until the Apache child shows it took its own.
pub struct Lent {
    fd: OwnedFd,
    offset: u64,
    len: u64,
    since: Instant,
}

impl Lent {
    /// Duplicates `fd` (F_DUPFD_CLOEXEC) for the region `offset`..`offset +
    /// len` (bytes). Errors: the duplicate could not be made (this process
    /// is out of descriptors), in words.
    pub fn new(fd: BorrowedFd<'_>, offset: u64, len: u64) -> Result<Lent, String> {
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| format!("keeping a copy of its descriptor failed: {e}"))?;
        Ok(Lent {
            fd,
            offset,
            len,
            since: Instant::now(),
        })
    }

    /// Whether the copy has been kept longer than [`HOLD`].
    pub fn expired(&self) -> bool {
        self.since.elapsed() > HOLD
    }
}

/// How sending a region as bytes stopped early.
pub enum Stop {
    /// The connection failed: it is closed after the request.
    Broken,
    /// The response was cut (the file is shorter than its region): the
    /// Apache child was told with Failed; the connection stays usable.
    Cut,
}

/// Sends the rest of a response whose file region does not go by
/// descriptor: `len` bytes of `fd` from `offset` as Data frames of at most
/// 64 KiB (pread: the file's position is not used), then End. A file
/// shorter than the region (it shrank) or one that cannot be read cuts the
/// response: logged as RWSGI0061, and the child gets Failed instead of End,
/// as a file bucket's short read ends a response in embedded mode.
pub fn send_region_and_end(
    conn: &mut Conn,
    fd: BorrowedFd<'_>,
    offset: u64,
    len: u64,
    log: &LogTarget,
) -> Result<(), Stop> {
    let mut block = vec![0u8; BLOCK.min(len as usize)];
    let mut enc = Encoder::new();
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(block.len() as u64) as usize;
        let n = match wire_fds::read_at(fd, &mut block[..want], offset + done) {
            Ok(n) if n > 0 => n,
            outcome => {
                let why = match outcome {
                    Err(e) => format!("reading it failed: {e}"),
                    Ok(_) => "the file is shorter than that now".to_string(),
                };
                log.log(
                    Level::Error,
                    &format!("RWSGI0061: a file region of {len} bytes from offset {offset} could not be sent after {done} bytes: {why}; the response is cut"),
                );
                enc.buf.clear();
                enc.failed(
                    FailReason::Application,
                    b"the file being sent could not be read to its end",
                );
                conn.write_all(&enc.buf).map_err(|_| Stop::Broken)?;
                return Err(Stop::Cut);
            }
        };
        enc.buf.clear();
        enc.data(&block[..n], false);
        conn.write_all(&enc.buf).map_err(|_| Stop::Broken)?;
        done += n as u64;
    }
    enc.buf.clear();
    enc.end_response();
    conn.write_all(&enc.buf).map_err(|_| Stop::Broken)
}

/// Answers a FileRefused frame just read on `conn`: the rest of the last
/// response is the region of `lent` (taken: the copy is closed after) as
/// Data frames and End. Without a copy (none was lent, or it was kept past
/// its hold time) the response is cut with Failed and the reason logged
/// (RWSGI0061). Returns whether the connection is usable.
pub fn answer_refusal(conn: &mut Conn, lent: Option<Lent>, group: &str, log: &LogTarget) -> bool {
    match lent {
        Some(l) => match send_region_and_end(conn, l.fd.as_fd(), l.offset, l.len, log) {
            Ok(()) | Err(Stop::Cut) => true,
            Err(Stop::Broken) => false,
        },
        None => {
            log.log(
                Level::Error,
                &format!("RWSGI0061: an Apache child refused the descriptor of a file region from daemon process {} of group {group:?}, which no longer has a copy of it (kept for {} s at most); the response is cut", std::process::id(), HOLD.as_secs()),
            );
            let mut enc = Encoder::new();
            enc.failed(
                FailReason::Application,
                b"the daemon no longer had the file whose descriptor was refused",
            );
            conn.write_all(&enc.buf).is_ok()
        }
    }
}
