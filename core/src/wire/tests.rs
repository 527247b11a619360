//! Unit tests of the frame codec: round trips, truncations, garbage,
//! limits, and pseudo-random inputs that must never panic.

use super::*;

fn head(script: &[u8]) -> Request<'_> {
    Request {
        id: 7,
        request_start_us: 1_700_000_000_000_000,
        queue_start_us: 1_700_000_000_000_100,
        script_mtime_us: -5,
        body_length: Some(5),
        flags: FLAG_HEAD,
        script,
        environ: Vec::new(),
    }
}

fn all_frames() -> Vec<u8> {
    let mut e = Encoder::new();
    let mut w = e.request(&head(b"/srv/app.wsgi"));
    w.item(b"REQUEST_METHOD", b"GET");
    w.item(b"HTTP_X_LATIN", b"caf\xe9");
    w.item(b"EMPTY", b"");
    w.finish();
    e.read(65536);
    e.body(b"hello");
    e.body_end();
    e.body_error(b"client went away");
    e.response(
        201,
        b"201 Created",
        [(&b"Content-Type"[..], &b"text/plain"[..]), (b"X-A", b"1")].into_iter(),
    );
    e.data(b"part one", false);
    e.data(b"", true);
    e.end_response();
    e.failed(FailReason::Application, b"RuntimeError: boom");
    e.hello(4242);
    e.file(1 << 40, 12345);
    e.file_refused();
    e.buf
}

fn decode_all(mut buf: &[u8]) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (f, n) = decode(buf, &Limits::default()).unwrap().unwrap();
        out.push(f);
        buf = &buf[n..];
    }
    out
}

#[test]
fn round_trip() {
    let buf = all_frames();
    let frames = decode_all(&buf);
    assert_eq!(frames.len(), 13);
    assert_eq!(frames[10], Frame::Hello { pid: 4242 });
    assert_eq!(
        frames[11],
        Frame::File {
            offset: 1 << 40,
            length: 12345
        }
    );
    assert_eq!(frames[12], Frame::FileRefused);
    assert_eq!(
        frames[0],
        Frame::Request(Request {
            id: 7,
            request_start_us: 1_700_000_000_000_000,
            queue_start_us: 1_700_000_000_000_100,
            script_mtime_us: -5,
            body_length: Some(5),
            flags: FLAG_HEAD,
            script: b"/srv/app.wsgi",
            environ: vec![
                (&b"REQUEST_METHOD"[..], &b"GET"[..]),
                (b"HTTP_X_LATIN", b"caf\xe9"),
                (b"EMPTY", b""),
            ],
        })
    );
    assert_eq!(frames[1], Frame::Read(65536));
    assert_eq!(frames[2], Frame::Body(b"hello"));
    assert_eq!(frames[3], Frame::BodyEnd);
    assert_eq!(frames[4], Frame::BodyError(b"client went away"));
    assert_eq!(
        frames[5],
        Frame::Response(Response {
            status: 201,
            status_line: b"201 Created",
            headers: vec![(&b"Content-Type"[..], &b"text/plain"[..]), (b"X-A", b"1")],
        })
    );
    assert_eq!(
        frames[6],
        Frame::Data {
            data: b"part one",
            flush: false
        }
    );
    assert_eq!(
        frames[7],
        Frame::Data {
            data: b"",
            flush: true
        }
    );
    assert_eq!(frames[8], Frame::End);
    assert_eq!(
        frames[9],
        Frame::Failed {
            reason: FailReason::Application,
            message: b"RuntimeError: boom"
        }
    );
}

#[test]
fn chunked_body_length() {
    let mut e = Encoder::new();
    let h = Request {
        body_length: None,
        flags: 0,
        ..head(b"s")
    };
    e.request(&h).finish();
    match decode(&e.buf, &Limits::default()).unwrap().unwrap().0 {
        Frame::Request(r) => assert_eq!((r.body_length, r.flags), (None, 0)),
        f => panic!("{f:?}"),
    }
}

#[test]
fn every_prefix_is_incomplete_not_an_error() {
    let buf = all_frames();
    let (_, first) = decode(&buf, &Limits::default()).unwrap().unwrap();
    for cut in 0..first {
        assert_eq!(
            decode(&buf[..cut], &Limits::default()),
            Ok(None),
            "cut at {cut}"
        );
    }
}

#[test]
fn oversized_lengths_are_refused_from_the_header() {
    let limits = Limits {
        max_head: 100,
        max_data: 10,
    };
    // Only the header: the length alone decides, no payload is needed.
    let head = [kind::REQUEST, 0, 0, 0, 101];
    assert_eq!(
        decode(&head, &limits),
        Err(WireError::TooLong {
            kind: kind::REQUEST,
            len: 101,
            limit: 100
        })
    );
    let data = [kind::DATA, 0xff, 0xff, 0xff, 0xff];
    assert!(matches!(
        decode(&data, &limits),
        Err(WireError::TooLong { .. })
    ));
    assert!(matches!(
        decode(&[kind::END, 0, 0, 0, 1, 0], &limits),
        Err(WireError::TooLong { .. })
    ));
}

#[test]
fn garbage_is_refused() {
    let l = Limits::default();
    assert_eq!(
        decode(&[0x7f, 0, 0, 0, 0], &l),
        Err(WireError::UnknownType(0x7f))
    );
    // A pair count far beyond the payload cannot reserve memory.
    let mut e = Encoder::new();
    e.request(&head(b"s")).finish();
    let n = e.buf.len();
    e.buf[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        decode(&e.buf, &l),
        Err(WireError::Malformed(_, _))
    ));
    // Wrong version.
    let mut e = Encoder::new();
    e.request(&head(b"s")).finish();
    e.buf[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(decode(&e.buf, &l), Err(WireError::Version(9)));
    // Trailing bytes inside a payload.
    assert_eq!(
        decode(&[kind::READ, 0, 0, 0, 4, 0, 0, 0, 0], &l),
        Err(WireError::Malformed(kind::READ, "read of 0 bytes"))
    );
    let mut e = Encoder::new();
    e.response(200, b"200 OK", std::iter::empty::<(&[u8], &[u8])>());
    e.buf.push(0);
    let n = (e.buf.len() - HEADER_LEN) as u32;
    e.buf[1..5].copy_from_slice(&n.to_be_bytes());
    assert_eq!(
        decode(&e.buf, &l),
        Err(WireError::Malformed(kind::RESPONSE, "trailing bytes"))
    );
    assert!(decode(&[kind::DATA, 0, 0, 0, 1, 2], &l).is_err());
    assert!(decode(&[kind::FAILED, 0, 0, 0, 1, 99], &l).is_err());
    assert!(decode(&[kind::BODY, 0, 0, 0, 0], &l).is_err());
}

#[test]
fn file_frames_truncated_or_garbage_are_refused() {
    let l = Limits::default();
    let mut e = Encoder::new();
    e.file(7, 9);
    assert_eq!(e.buf.len(), FILE_FRAME_LEN);
    assert_eq!(
        decode(&e.buf, &l),
        Ok(Some((
            Frame::File {
                offset: 7,
                length: 9
            },
            FILE_FRAME_LEN
        )))
    );
    // Every prefix is incomplete, never an error or a frame.
    for cut in 0..FILE_FRAME_LEN {
        assert_eq!(decode(&e.buf[..cut], &l), Ok(None), "cut at {cut}");
    }
    // A payload of other than 16 bytes: truncated fields, or over the limit
    // (refused from the header alone).
    let mut short = e.buf[..FILE_FRAME_LEN - 1].to_vec();
    short[1..5].copy_from_slice(&15u32.to_be_bytes());
    assert_eq!(
        decode(&short, &l),
        Err(WireError::Malformed(kind::FILE, "truncated field"))
    );
    assert_eq!(
        decode(&[kind::FILE, 0, 0, 0, 17], &l),
        Err(WireError::TooLong {
            kind: kind::FILE,
            len: 17,
            limit: 16
        })
    );
    // An empty region, a region past 2^64.
    let mut e = Encoder::new();
    e.file(5, 0);
    assert_eq!(
        decode(&e.buf, &l),
        Err(WireError::Malformed(kind::FILE, "file region of 0 bytes"))
    );
    let mut e = Encoder::new();
    e.file(u64::MAX, 1);
    assert!(matches!(
        decode(&e.buf, &l),
        Err(WireError::Malformed(kind::FILE, _))
    ));
    let mut e = Encoder::new();
    e.file(u64::MAX - 1, 1);
    assert!(decode(&e.buf, &l).unwrap().is_some());
    // FileRefused: no payload at all.
    assert_eq!(
        decode(&[kind::FILE_REFUSED, 0, 0, 0, 0], &l),
        Ok(Some((Frame::FileRefused, 5)))
    );
    assert!(matches!(
        decode(&[kind::FILE_REFUSED, 0, 0, 0, 1, 1], &l),
        Err(WireError::TooLong { .. })
    ));
    assert_eq!(decode(&[kind::FILE_REFUSED, 0, 0], &l), Ok(None));
}

#[test]
fn random_bytes_never_panic() {
    // xorshift: deterministic pseudo-random inputs, including mutations
    // of valid frames.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid = all_frames();
    let l = Limits {
        max_head: 4096,
        max_data: 4096,
    };
    for _ in 0..20_000 {
        let mut buf = if next() % 2 == 0 {
            valid.clone()
        } else {
            (0..(next() % 64)).map(|_| next() as u8).collect()
        };
        for _ in 0..(next() % 4) {
            if !buf.is_empty() {
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
        }
        let mut rest = &buf[..];
        while let Ok(Some((_, n))) = decode(rest, &l) {
            assert!(n >= HEADER_LEN && n <= rest.len());
            rest = &rest[n..];
        }
    }
}

#[test]
fn body_header_then_the_bytes_is_a_body_frame() {
    let data = vec![7u8; 65536];
    let mut whole = Encoder::new();
    whole.body(&data);
    let mut split = Encoder::new();
    split.body_header(data.len());
    split.buf.extend_from_slice(&data);
    assert_eq!(whole.buf, split.buf);
}
