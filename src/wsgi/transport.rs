//! What the WSGI core needs from the side that carries a request, so one
//! implementation of PEP 3333 serves both modes: embedded mode implements it
//! over Apache's `request_rec`, input filters and output brigades
//! (`crate::apache::request`), daemon mode over the connection from the
//! Apache child (`crate::daemon`).
//!
//! The core calls these with its own locking: a [`BodyReader`] is used by
//! one thread at a time, without the GIL; a [`ResponseWriter`] is used
//! under the request's output lock, `send`/`send_deferred` without the GIL.

use rwsgi_core::validate::HeaderKind;

/// A validated response header: name, value, and what it means.
pub type Header = (String, String, HeaderKind);

/// How a batch of response output ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// More data may follow; everything so far must reach the client (PEP
    /// 3333: each yielded block is sent before the next is asked for).
    Flush,
    /// The response is complete.
    Eos,
    /// Everything must be written before `send` returns, and the response is
    /// complete: used for file regions, whose descriptor the application may
    /// close as soon as we return.
    FlushEos,
}

/// The output side went away (client disconnected, a filter failed, the
/// Apache child closed the connection): stop producing output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// Source of a request body (`wsgi.input`).
pub trait BodyReader: Send {
    /// Reads request body into `dst` (not empty): blocks until at least one
    /// byte, the end of the body (`Ok(0)`) or an error, which describes what
    /// happened (client disconnected, timed out, malformed chunking).
    /// Called without the GIL.
    fn read(&mut self, dst: &mut [u8]) -> Result<usize, String>;
}

/// Destination of a response.
pub trait ResponseWriter: Send {
    /// Takes the validated status (code, line) and headers; called once,
    /// before any body.
    fn head(&mut self, status: &(u16, String), headers: &[Header]);

    /// Adds body bytes without copying them.
    ///
    /// # Safety
    /// `data` must stay valid and unchanged until the next `send` or
    /// `set_aside`.
    unsafe fn data(&mut self, data: &[u8]);

    /// Adds `len` bytes of open file `fd` from `offset`, to be sent without
    /// passing through memory; false when this transport cannot (the caller
    /// then reads the file itself). The descriptor must stay open until the
    /// next `send`, which must use [`Finish::FlushEos`].
    fn file(&mut self, fd: i32, offset: u64, len: u64) -> bool;

    /// Ends the batch as `finish` says and sends it. Called without the GIL.
    fn send(&mut self, finish: Finish) -> Result<(), Gone>;

    /// Ends the batch as `finish` says and copies what it borrowed, so the
    /// application's objects may go; [`send_deferred`](Self::send_deferred)
    /// sends it later, once the request no longer holds the GIL. False when
    /// that is not possible (call `send`).
    fn set_aside(&mut self, finish: Finish) -> bool;

    /// Sends the batch kept by `set_aside`. Called without the GIL.
    fn send_deferred(&mut self) -> Result<(), Gone>;

    /// Marks a response that started and cannot be completed (an exception
    /// mid-stream). As mod_wsgi does, the client gets what was sent as the
    /// response (chunked: with its final chunk) and the connection is closed
    /// after it; the error log says why it is short. Takes effect with the
    /// next `send`.
    fn abort(&mut self);

    /// Asks for the client connection to be closed after this response
    /// (the body is shorter than its declared Content-Length).
    fn close_connection(&mut self);
}
