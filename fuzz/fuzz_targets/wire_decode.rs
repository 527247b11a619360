//! Fuzzes the daemon wire decoder (rwsgi_core::wire::decode): any byte
//! string, decoded frame after frame with small limits, must give frames,
//! "incomplete" or an error, never a panic or an allocation beyond the
//! limits. A decoded frame re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwsgi_core::wire::{decode, Encoder, Frame, Limits};

fn reencode(frame: &Frame<'_>) -> Vec<u8> {
    let mut e = Encoder::new();
    match frame {
        Frame::Request(r) => {
            let mut w = e.request(r);
            for (k, v) in &r.environ {
                w.item(k, v);
            }
            w.finish();
        }
        Frame::Body(b) => e.body(b),
        Frame::BodyEnd => e.body_end(),
        Frame::BodyError(m) => e.body_error(m),
        Frame::Read(n) => e.read(*n),
        Frame::Response(r) => e.response(r.status, r.status_line, r.headers.iter().copied()),
        Frame::Data { data, flush } => e.data(data, *flush),
        Frame::End => e.end_response(),
        Frame::Hello { pid } => e.hello(*pid),
        Frame::Failed { reason, message } => e.failed(*reason, message),
        Frame::File { offset, length } => e.file(*offset, *length),
        Frame::FileRefused => e.file_refused(),
    }
    e.buf
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head: 64 * 1024, max_data: 64 * 1024 };
    let mut rest = data;
    while let Ok(Some((frame, n))) = decode(rest, &limits) {
        assert_eq!(reencode(&frame), &rest[..n]);
        rest = &rest[n..];
    }
});
