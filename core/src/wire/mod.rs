//! The daemon-mode wire protocol between an Apache child and a daemon
//! process of a process group (docs/daemon-protocol.md): length-prefixed
//! frames over a persistent UNIX stream connection, one request at a time.
//!
//! Every frame is a 5-byte header, a type byte and the payload length as a
//! big-endian `u32`, followed by the payload. [`decode`] parses one frame
//! from the front of a buffer without copying (payload fields borrow from
//! it), reports an incomplete frame as `Ok(None)`, and rejects unknown
//! types, lengths over the [`Limits`] (checked from the header, before any
//! allocation) and malformed payloads with a [`WireError`]: a peer can never
//! make the decoder panic or allocate more than the limits allow.
//!
//! A request: the Apache child sends [`Frame::Request`]; the daemon asks for
//! request body with [`Frame::Read`] as the application reads `wsgi.input`
//! (so an upload is never held whole in memory: the child reads from the
//! client only what is asked for), answered by [`Frame::Body`] or
//! [`Frame::BodyEnd`] (or [`Frame::BodyError`]); the daemon sends
//! [`Frame::Response`], then [`Frame::Data`] blocks, then [`Frame::End`], or
//! [`Frame::Failed`] when the application failed. The connection then serves
//! the next request.
//!
//! A file region (`wsgi.file_wrapper` on a real file) goes as
//! [`Frame::File`], which ends the response: offset and length here, the
//! open descriptor as SCM_RIGHTS ancillary data on the `sendmsg` carrying
//! the frame ([`fds`]). Nothing answers it unless the child cannot take the
//! descriptor: then it sends [`Frame::FileRefused`] and the daemon sends the
//! region's bytes as Data frames, then End.

pub mod fds;

use thiserror::Error;

/// Bytes of a frame header: type (u8) and payload length (u32, big-endian).
pub const HEADER_LEN: usize = 5;

/// [`Request::flags`] bit: the client asked for HEAD (Apache's
/// `r->header_only`; the application may see GET): a body shorter than
/// Content-Length is correct.
pub const FLAG_HEAD: u32 = 1;
/// Request flag: the request does not count as activity for the daemon's
/// inactivity-timeout (`WSGIIgnoreActivity On`).
pub const FLAG_IGNORE_ACTIVITY: u32 = 2;
/// Request flag: the whole request body follows the Request frame, pushed
/// without Read frames: Body frames, then BodyEnd (or BodyError if reading
/// it from the client failed). Only for a Content-Length of at most
/// [`PUSHED_BODY_MAX`] bytes, saving the round trip of a Read; the daemon
/// reads (or skips) those frames before the next request.
pub const FLAG_BODY_PUSHED: u32 = 4;
/// Largest request body the Apache child pushes with the request
/// ([`FLAG_BODY_PUSHED`]), bytes; larger bodies are pulled with Read frames
/// as the application reads, so neither side holds an upload whole.
pub const PUSHED_BODY_MAX: u64 = 64 * 1024;

/// Protocol version carried in every [`Frame::Request`]; a daemon refuses
/// other versions (a module and daemon from different builds). 2: File and
/// FileReply frames. 3: [`FLAG_BODY_PUSHED`]. 4: File ends the response,
/// answered only when refused ([`Frame::FileRefused`]).
pub const VERSION: u16 = 4;

/// Bytes of an encoded [`Frame::File`] (header and payload): the unit sent
/// with the descriptor.
pub const FILE_FRAME_LEN: usize = HEADER_LEN + 16;

/// Largest payloads a decoder accepts, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`Frame::Request`] and [`Frame::Response`] (environ, headers):
    /// mod_wsgi's `header-buffer-size` plays this role.
    pub max_head: u32,
    /// [`Frame::Body`] and [`Frame::Data`] blocks.
    pub max_data: u32,
}

impl Default for Limits {
    /// 1 MiB of environ or headers, 1 MiB data blocks.
    fn default() -> Self {
        Limits {
            max_head: 1 << 20,
            max_data: 1 << 20,
        }
    }
}

/// Why a byte stream is not a valid frame sequence.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    /// A type byte this protocol does not define.
    #[error("unknown frame type 0x{0:02x}")]
    UnknownType(u8),
    /// A payload longer than the limit for its type.
    #[error("frame type 0x{kind:02x} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLong {
        /// The frame type.
        kind: u8,
        /// Its declared payload length in bytes.
        len: u32,
        /// The limit in bytes.
        limit: u32,
    },
    /// A payload whose fields do not add up (truncated or trailing bytes).
    #[error("malformed frame type 0x{0:02x}: {1}")]
    Malformed(u8, &'static str),
    /// A request of another protocol version.
    #[error("protocol version {0} (this build speaks {VERSION})")]
    Version(u16),
}

/// Frame type bytes.
/// Frame kinds: a frame's first byte (docs/daemon-protocol.md).
pub mod kind {
    pub const REQUEST: u8 = 0x01;
    pub const BODY: u8 = 0x02;
    pub const BODY_END: u8 = 0x03;
    pub const BODY_ERROR: u8 = 0x04;
    pub const FILE_REFUSED: u8 = 0x05;
    pub const READ: u8 = 0x10;
    pub const RESPONSE: u8 = 0x11;
    pub const DATA: u8 = 0x12;
    pub const END: u8 = 0x13;
    pub const FAILED: u8 = 0x14;
    pub const FILE: u8 = 0x15;
    pub const HELLO: u8 = 0x20;
}

/// What a [`Frame::Failed`] reports about the application's failure, and so
/// what the Apache child answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FailReason {
    /// An exception or a broken PEP 3333 rule (logged by the daemon): a 500
    /// before the response started, a cut connection after.
    Application = 1,
    /// The WSGI script could not be loaded or has no such callable: 500.
    Load = 2,
    /// The daemon is shutting down and did not run the request: the child
    /// may retry it on another connection.
    Shutdown = 3,
    /// The request frame was refused (bad version, malformed environ): 500.
    Protocol = 4,
    /// The request ran longer than `request-timeout`; the daemon dumped its
    /// threads' stacks and restarts: 504.
    Timeout = 5,
    /// The request waited longer than `queue-timeout` for a daemon thread
    /// and was not run: 503.
    QueueTimeout = 6,
    /// Every thread of this daemon process is busy and the request arrived
    /// on a kept-alive connection: not run; the child sends it on a new
    /// connection, which whichever daemon process of the group has a free
    /// thread accepts.
    Busy = 7,
}

impl FailReason {
    fn from_u8(b: u8) -> Option<FailReason> {
        Some(match b {
            1 => FailReason::Application,
            2 => FailReason::Load,
            3 => FailReason::Shutdown,
            4 => FailReason::Protocol,
            5 => FailReason::Timeout,
            6 => FailReason::QueueTimeout,
            7 => FailReason::Busy,
            _ => return None,
        })
    }
}

/// A list of (name, value) byte-string pairs borrowed from a decoded frame.
pub type Pairs<'a> = Vec<(&'a [u8], &'a [u8])>;

/// A request, as the Apache child sends it (PEP 3333 environ as byte
/// strings: the daemon decodes them as latin-1 like embedded mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `mod_wsgi.request_id` of the Apache child, for log lines.
    pub id: u64,
    /// When the Apache child started the request (`mod_wsgi.request_start`),
    /// microseconds since the Unix epoch.
    pub request_start_us: u64,
    /// When it was queued for the daemon (`mod_wsgi.queue_start`),
    /// microseconds since the Unix epoch.
    pub queue_start_us: u64,
    /// Modification time of the WSGI script (Apache's `r->finfo.mtime`),
    /// microseconds, for `WSGIScriptReloading`.
    pub script_mtime_us: i64,
    /// Request body length in bytes (Content-Length); `None`: chunked.
    pub body_length: Option<u64>,
    /// [`FLAG_HEAD`] and future flags.
    pub flags: u32,
    /// The WSGI script file.
    pub script: &'a [u8],
    /// Environ items (name, value) in order; later names win.
    pub environ: Pairs<'a>,
}

/// A response head, as the daemon sends it once the application's first
/// body block is ready (or it returned): already validated by the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status code.
    pub status: u16,
    /// The status line as the application gave it (`"200 OK"`), latin-1.
    pub status_line: &'a [u8],
    /// Response headers (name, value), latin-1, in order.
    pub headers: Pairs<'a>,
}

/// One decoded frame; byte fields borrow from the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Child → daemon: a request to run.
    Request(Request<'a>),
    /// Child → daemon: request body bytes (at most what [`Frame::Read`]
    /// asked for; never empty).
    Body(&'a [u8]),
    /// Child → daemon: the request body has ended.
    BodyEnd,
    /// Child → daemon: reading the request body from the client failed
    /// (disconnect, timeout, malformed chunking); the message says how.
    BodyError(&'a [u8]),
    /// Daemon → child: send up to this many more body bytes, in bytes.
    Read(u32),
    /// Daemon → child: status and headers.
    Response(Response<'a>),
    /// Daemon → child: a body block; `flush` asks the child to send it to
    /// the client before anything else (PEP 3333: each yielded block).
    Data {
        /// The bytes.
        data: &'a [u8],
        /// Whether the block must reach the client now.
        flush: bool,
    },
    /// Daemon → child: the response is complete.
    End,
    /// Daemon → child: the rest of the response is `length` bytes of a
    /// regular file from `offset`, sent after everything before it; no End
    /// follows. The open file travels as one descriptor (SCM_RIGHTS) on the
    /// `sendmsg` carrying this frame's bytes (and at most the bytes of the
    /// response before it: [`fds`]). The child answers only when it cannot
    /// take the descriptor ([`Frame::FileRefused`]).
    File {
        /// Where the region starts in the file, in bytes.
        offset: u64,
        /// Its length in bytes (> 0; `offset + length` fits a `u64`).
        length: u64,
    },
    /// Child → daemon, right after a [`Frame::File`] it cannot send (the
    /// descriptor did not arrive, e.g. the child was out of descriptors, or
    /// it is not a readable regular file holding the region): the response
    /// goes on with the region's bytes as Data frames, then End, which the
    /// daemon sends from its own copy of the descriptor. Empty payload.
    FileRefused,
    /// Daemon → child, once per connection, first: who accepted it (the
    /// peer credentials of a UNIX socket name whoever created the
    /// listening socket, the Apache parent).
    Hello {
        /// The daemon process's pid.
        pid: u32,
    },
    /// Daemon → child: the request failed; the daemon has logged why.
    Failed {
        /// What the child should answer.
        reason: FailReason,
        /// A one-line summary for the child's log line.
        message: &'a [u8],
    },
}

/// Reads fields from a payload, failing on truncation.
struct Fields<'a> {
    kind: u8,
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Malformed(self.kind, "truncated field"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// A byte string with a u32 length prefix.
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// A u32 count of (name, value) pairs, each a u16-prefixed name and a
    /// u32-prefixed value. The count is checked against the bytes left, so
    /// a huge count cannot reserve memory.
    fn pairs(&mut self) -> Result<Pairs<'a>, WireError> {
        let n = self.u32()? as usize;
        // Every pair takes at least 6 bytes.
        if n > self.buf.len() / 6 {
            return Err(WireError::Malformed(
                self.kind,
                "pair count exceeds the payload",
            ));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let name_len = self.u16()? as usize;
            let name = self.take(name_len)?;
            let value = self.bytes()?;
            out.push((name, value));
        }
        Ok(out)
    }
    fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed(self.kind, "trailing bytes"))
        }
    }
}

/// Decodes the frame at the front of `buf`.
///
/// Output: `Ok(Some((frame, consumed_bytes)))`, `Ok(None)` when `buf` holds
/// only part of a frame (read more and call again), or a [`WireError`]
/// (the connection must be dropped).
pub fn decode<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<(Frame<'a>, usize)>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let kind = buf[0];
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let limit = match kind {
        kind::REQUEST | kind::RESPONSE => limits.max_head,
        kind::BODY | kind::DATA => limits.max_data,
        kind::BODY_END | kind::END | kind::FILE_REFUSED => 0,
        kind::READ | kind::HELLO => 4,
        kind::FILE => 16,
        kind::BODY_ERROR | kind::FAILED => 4096,
        other => return Err(WireError::UnknownType(other)),
    };
    if len > limit {
        return Err(WireError::TooLong { kind, len, limit });
    }
    let total = HEADER_LEN + len as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut f = Fields {
        kind,
        buf: &buf[HEADER_LEN..total],
    };
    let frame = match kind {
        kind::REQUEST => {
            let version = f.u16()?;
            if version != VERSION {
                return Err(WireError::Version(version));
            }
            Frame::Request(Request {
                id: f.u64()?,
                request_start_us: f.u64()?,
                queue_start_us: f.u64()?,
                script_mtime_us: f.u64()? as i64,
                body_length: match f.u64()? {
                    u64::MAX => None,
                    n => Some(n),
                },
                flags: f.u32()?,
                script: f.bytes()?,
                environ: f.pairs()?,
            })
        }
        kind::BODY => {
            if len == 0 {
                return Err(WireError::Malformed(kind, "empty body block"));
            }
            Frame::Body(f.take(len as usize)?)
        }
        kind::BODY_END => Frame::BodyEnd,
        kind::BODY_ERROR => Frame::BodyError(f.take(len as usize)?),
        kind::READ => {
            let n = f.u32()?;
            if n == 0 {
                return Err(WireError::Malformed(kind, "read of 0 bytes"));
            }
            Frame::Read(n)
        }
        kind::RESPONSE => Frame::Response(Response {
            status: f.u16()?,
            status_line: f.bytes()?,
            headers: f.pairs()?,
        }),
        kind::DATA => {
            let flush = match f.u8()? {
                0 => false,
                1 => true,
                _ => return Err(WireError::Malformed(kind, "flush flag is not 0 or 1")),
            };
            Frame::Data {
                data: f.take(len as usize - 1)?,
                flush,
            }
        }
        kind::END => Frame::End,
        kind::FILE => {
            let (offset, length) = (f.u64()?, f.u64()?);
            if length == 0 {
                return Err(WireError::Malformed(kind, "file region of 0 bytes"));
            }
            if offset.checked_add(length).is_none() {
                return Err(WireError::Malformed(kind, "file region ends beyond 2^64"));
            }
            Frame::File { offset, length }
        }
        kind::FILE_REFUSED => Frame::FileRefused,
        kind::HELLO => Frame::Hello { pid: f.u32()? },
        kind::FAILED => {
            let reason = FailReason::from_u8(f.u8()?)
                .ok_or(WireError::Malformed(kind, "unknown failure reason"))?;
            Frame::Failed {
                reason,
                message: f.take(len as usize - 1)?,
            }
        }
        _ => unreachable!("checked above"),
    };
    f.finish()?;
    Ok(Some((frame, total)))
}

/// Appends frames to a byte buffer (the sender writes it out).
#[derive(Debug, Default)]
pub struct Encoder {
    /// The encoded bytes.
    pub buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Encoder {
        Encoder::default()
    }

    fn begin(&mut self, kind: u8) -> usize {
        let at = self.buf.len();
        self.buf.push(kind);
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at - HEADER_LEN) as u32;
        self.buf[at + 1..at + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(b);
    }

    /// Starts a [`Frame::Request`] with the fixed fields of `head` (its
    /// `environ` is ignored); add environ items with [`RequestWriter::item`]
    /// and finish with [`RequestWriter::finish`].
    pub fn request(&mut self, head: &Request<'_>) -> RequestWriter<'_> {
        let at = self.begin(kind::REQUEST);
        for field in [
            &VERSION.to_be_bytes()[..],
            &head.id.to_be_bytes(),
            &head.request_start_us.to_be_bytes(),
            &head.queue_start_us.to_be_bytes(),
            &(head.script_mtime_us as u64).to_be_bytes(),
            &head.body_length.unwrap_or(u64::MAX).to_be_bytes(),
            &head.flags.to_be_bytes(),
        ] {
            self.buf.extend_from_slice(field);
        }
        self.bytes(head.script);
        let count_at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        RequestWriter {
            enc: self,
            at,
            count_at,
            count: 0,
        }
    }

    /// A [`Frame::Body`] block (`data` must not be empty).
    pub fn body(&mut self, data: &[u8]) {
        let at = self.begin(kind::BODY);
        self.buf.extend_from_slice(data);
        self.end(at);
    }

    /// The header of a [`Frame::Body`] whose `len` payload bytes (1 to
    /// [`Limits::max_data`]) the caller writes right after these, from its
    /// own buffer (a vectored write), instead of copying them in here.
    pub fn body_header(&mut self, len: usize) {
        self.buf.push(kind::BODY);
        self.buf.extend_from_slice(&(len as u32).to_be_bytes());
    }

    /// [`Frame::BodyEnd`].
    pub fn body_end(&mut self) {
        let at = self.begin(kind::BODY_END);
        self.end(at);
    }

    /// [`Frame::BodyError`] (the message is cut to 4096 bytes).
    pub fn body_error(&mut self, message: &[u8]) {
        let at = self.begin(kind::BODY_ERROR);
        self.buf
            .extend_from_slice(&message[..message.len().min(4096)]);
        self.end(at);
    }

    /// [`Frame::Read`] of up to `n` bytes (`n > 0`).
    pub fn read(&mut self, n: u32) {
        let at = self.begin(kind::READ);
        self.buf.extend_from_slice(&n.to_be_bytes());
        self.end(at);
    }

    /// [`Frame::Response`].
    pub fn response<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        status: u16,
        status_line: &[u8],
        headers: impl ExactSizeIterator<Item = (N, V)>,
    ) {
        let at = self.begin(kind::RESPONSE);
        self.buf.extend_from_slice(&status.to_be_bytes());
        self.bytes(status_line);
        self.buf
            .extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            self.pair(name.as_ref(), value.as_ref());
        }
        self.end(at);
    }

    /// [`Frame::Data`].
    pub fn data(&mut self, data: &[u8], flush: bool) {
        let at = self.begin(kind::DATA);
        self.buf.push(flush as u8);
        self.buf.extend_from_slice(data);
        self.end(at);
    }

    /// [`Frame::Hello`].
    pub fn hello(&mut self, pid: u32) {
        let at = self.begin(kind::HELLO);
        self.buf.extend_from_slice(&pid.to_be_bytes());
        self.end(at);
    }

    /// [`Frame::File`] of `length` bytes (> 0) from `offset`: exactly
    /// [`FILE_FRAME_LEN`] bytes, which the sender passes with the descriptor
    /// ([`fds::send_with_fd`]).
    pub fn file(&mut self, offset: u64, length: u64) {
        let at = self.begin(kind::FILE);
        self.buf.extend_from_slice(&offset.to_be_bytes());
        self.buf.extend_from_slice(&length.to_be_bytes());
        self.end(at);
    }

    /// [`Frame::FileRefused`].
    pub fn file_refused(&mut self) {
        let at = self.begin(kind::FILE_REFUSED);
        self.end(at);
    }

    /// [`Frame::End`].
    pub fn end_response(&mut self) {
        let at = self.begin(kind::END);
        self.end(at);
    }

    /// [`Frame::Failed`] (the message is cut to 4095 bytes).
    pub fn failed(&mut self, reason: FailReason, message: &[u8]) {
        let at = self.begin(kind::FAILED);
        self.buf.push(reason as u8);
        self.buf
            .extend_from_slice(&message[..message.len().min(4095)]);
        self.end(at);
    }

    fn pair(&mut self, name: &[u8], value: &[u8]) {
        let name = &name[..name.len().min(u16::MAX as usize)];
        self.buf
            .extend_from_slice(&(name.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(name);
        self.bytes(value);
    }
}

/// Adds environ items to a [`Frame::Request`] being encoded.
pub struct RequestWriter<'e> {
    enc: &'e mut Encoder,
    at: usize,
    count_at: usize,
    count: u32,
}

impl RequestWriter<'_> {
    /// Adds one environ item. Names longer than 65535 bytes are cut.
    pub fn item(&mut self, name: &[u8], value: &[u8]) {
        self.enc.pair(name, value);
        self.count += 1;
    }

    /// Completes the frame. Returns its payload length in bytes, which the
    /// sender checks against the peer's [`Limits::max_head`].
    pub fn finish(self) -> usize {
        let at = self.count_at;
        self.enc.buf[at..at + 4].copy_from_slice(&self.count.to_be_bytes());
        self.enc.end(self.at);
        self.enc.buf.len() - self.at - HEADER_LEN
    }
}

#[cfg(test)]
mod tests;
