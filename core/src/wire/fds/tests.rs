//! Descriptor passing over real socket pairs: the descriptor arrives with
//! its File frame (CLOEXEC, the same open file), and every descriptor that
//! is not claimed (stray, excess, beyond the pending bound, or sent to a
//! plain reader) is closed: no descriptor of the test's files stays open.

use super::*;
use crate::wire::{decode, Encoder, Frame, Limits};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

/// A file of `len` bytes with a name of its own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(len: usize) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "rwsgi-fds-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, data).unwrap();
        TempFile(path)
    }
    fn open(&self) -> File {
        File::open(&self.0).unwrap()
    }
    /// Descriptors of this process open on the file.
    fn open_count(&self) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| *target == self.0)
            .count()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn file_frame(offset: u64, length: u64) -> Vec<u8> {
    let mut e = Encoder::new();
    e.file(offset, length);
    assert_eq!(e.buf.len(), crate::wire::FILE_FRAME_LEN);
    e.buf
}

fn data_frame(len: usize) -> Vec<u8> {
    let mut e = Encoder::new();
    e.data(&vec![b'd'; len], false);
    e.buf
}

/// Sends `fds` with `bytes` in one sendmsg, however many.
fn send_fds(s: &UnixStream, bytes: &[u8], fds: &[c_int]) {
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let n = sendmsg::<()>(
        s.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    assert_eq!(n, bytes.len());
}

/// Reads everything the peer sent (until it closes) in reads of `chunk`
/// bytes, decoding frames: each File frame's descriptor (or why there is
/// none), the unclaimed ones discarded at End, as a frame reader does.
fn read_frames(
    r: &mut FdReader,
    chunk: usize,
) -> Vec<(Frame<'static>, Option<Result<OwnedFd, MissingFd>>)> {
    let mut bytes = Vec::new();
    let mut out = Vec::new();
    let mut consumed = 0usize;
    let mut buf = vec![0u8; chunk];
    loop {
        let n = r.read(&mut buf).unwrap();
        bytes.extend_from_slice(&buf[..n]);
        while let Some((frame, len)) = decode(&bytes[consumed..], &Limits::default()).unwrap() {
            let at = consumed as u64;
            let fd = matches!(frame, Frame::File { .. }).then(|| r.take_fd(at));
            let owned = match frame {
                Frame::File { offset, length } => Frame::File { offset, length },
                Frame::Data { flush, .. } => Frame::Data { data: b"", flush },
                Frame::End => Frame::End,
                other => panic!("unexpected {other:?}"),
            };
            let end = owned == Frame::End;
            out.push((owned, fd));
            consumed += len;
            if end {
                r.discard_through(consumed as u64);
            }
        }
        if n == 0 {
            return out;
        }
    }
}

fn same_file(a: &OwnedFd, b: &File) -> bool {
    let (x, y) = (
        nix::sys::stat::fstat(a.as_fd()).unwrap(),
        b.metadata().unwrap(),
    );
    x.st_ino == y.ino() && x.st_dev == y.dev()
}

#[test]
fn descriptor_arrives_with_its_file_frame_cloexec() {
    let tmp = TempFile::new(10_000);
    for chunk in [1, 7, 21, 64 * 1024] {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tmp.open();
        let mut w = &a;
        w.write_all(&data_frame(1000)).unwrap();
        send_with_fd(&a, &file_frame(100, 9000), file.as_fd()).unwrap();
        w.write_all(&data_frame(5)).unwrap();
        send_with_fd(&a, &file_frame(0, 1), file.as_fd()).unwrap();
        let mut e = Encoder::new();
        e.end_response();
        w.write_all(&e.buf).unwrap();
        drop(a);
        let mut r = FdReader::receiving(b);
        let frames = read_frames(&mut r, chunk);
        assert_eq!(frames.len(), 5, "chunk {chunk}");
        assert_eq!(
            frames[1].0,
            Frame::File {
                offset: 100,
                length: 9000
            }
        );
        assert_eq!(
            frames[3].0,
            Frame::File {
                offset: 0,
                length: 1
            }
        );
        for i in [1, 3] {
            let fd = frames[i].1.as_ref().unwrap().as_ref().unwrap();
            assert!(same_file(fd, &file), "chunk {chunk}");
            let flags = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert!(flags & libc::FD_CLOEXEC != 0, "received without CLOEXEC");
        }
        assert_eq!(r.pending(), 0);
        drop(frames);
        drop(file);
        assert_eq!(tmp.open_count(), 0, "chunk {chunk}");
    }
}

#[test]
fn descriptor_sent_with_the_frames_before_its_file_frame() {
    // The daemon's one sendmsg: the response's first frames, then the File
    // frame, the descriptor on the first byte. Whatever the reads' sizes
    // (one may end before the File frame starts), the File frame claims it.
    let tmp = TempFile::new(10_000);
    for chunk in [1, 7, 1000, 1004, 1005, 1006, 64 * 1024] {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tmp.open();
        let mut bytes = data_frame(1000);
        bytes.extend_from_slice(&file_frame(10, 9990));
        send_with_fd(&a, &bytes, file.as_fd()).unwrap();
        let mut e = Encoder::new();
        e.end_response();
        (&a).write_all(&e.buf).unwrap();
        drop(a);
        let mut r = FdReader::receiving(b);
        let frames = read_frames(&mut r, chunk);
        assert_eq!(frames.len(), 3, "chunk {chunk}");
        let fd = frames[1].1.as_ref().unwrap().as_ref().unwrap();
        assert!(same_file(fd, &file), "chunk {chunk}");
        assert_eq!(r.pending(), 0);
        drop(frames);
        drop(file);
        assert_eq!(tmp.open_count(), 0, "chunk {chunk}");
    }
}

#[test]
fn stray_and_excess_descriptors_are_closed() {
    let tmp = TempFile::new(100);
    let (a, b) = UnixStream::pair().unwrap();
    {
        let f1 = tmp.open();
        let f2 = tmp.open();
        let f3 = tmp.open();
        // With a Data frame: a stray.
        send_fds(&a, &data_frame(10), &[f1.as_raw_fd()]);
        // Three with one File frame: more than a message may carry.
        send_fds(
            &a,
            &file_frame(0, 10),
            &[f1.as_raw_fd(), f2.as_raw_fd(), f3.as_raw_fd()],
        );
        // Ten: more than the control buffer has room for (truncated).
        let ten: Vec<c_int> = (0..10).map(|_| f2.as_raw_fd()).collect();
        send_fds(&a, &file_frame(0, 10), &ten);
        // A File frame without any.
        (&a).write_all(&file_frame(0, 10)).unwrap();
    }
    drop(a);
    let mut r = FdReader::receiving(b);
    let frames = read_frames(&mut r, 64 * 1024);
    let why: Vec<_> = frames
        .iter()
        .filter_map(|(_, fd)| fd.as_ref().map(|fd| *fd.as_ref().unwrap_err()))
        .collect();
    assert_eq!(
        why,
        [MissingFd::TooMany, MissingFd::Truncated, MissingFd::None]
    );
    drop(frames);
    assert_eq!(r.pending(), 0);
    assert_eq!(tmp.open_count(), 0);
}

#[test]
fn unclaimed_descriptors_beyond_the_bound_are_closed_on_arrival() {
    let tmp = TempFile::new(100);
    let (a, b) = UnixStream::pair().unwrap();
    let f = tmp.open();
    for _ in 0..(MAX_PENDING + 3) {
        send_fds(&a, b"x", &[f.as_raw_fd()]);
    }
    drop(f);
    drop(a);
    let mut r = FdReader::receiving(b);
    let mut buf = [0u8; 1];
    while r.read(&mut buf).unwrap() > 0 {}
    assert_eq!(r.pending(), MAX_PENDING);
    assert_eq!(tmp.open_count(), MAX_PENDING);
    r.discard_through(r.position());
    assert_eq!(tmp.open_count(), 0);
}

#[test]
fn a_plain_reader_accepts_none() {
    let tmp = TempFile::new(100);
    let (a, b) = UnixStream::pair().unwrap();
    let f = tmp.open();
    send_with_fd(&a, &file_frame(0, 10), f.as_fd()).unwrap();
    drop(f);
    drop(a);
    let mut r = FdReader::new(b);
    let mut buf = [0u8; 64];
    let mut got = 0;
    loop {
        match r.read(&mut buf[got..]).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, crate::wire::FILE_FRAME_LEN);
    assert_eq!(r.take_fd(0).unwrap_err(), MissingFd::None);
    assert_eq!(tmp.open_count(), 0);
}

#[test]
fn regions_are_checked() {
    let tmp = TempFile::new(1000);
    let f = tmp.open();
    assert_eq!(check_region(f.as_fd(), 0, 1000), Ok(()));
    assert_eq!(check_region(f.as_fd(), 999, 1), Ok(()));
    assert!(check_region(f.as_fd(), 1, 1000)
        .unwrap_err()
        .contains("ends beyond"));
    assert!(check_region(f.as_fd(), u64::MAX, 2).is_err());
    let dir = File::open(std::env::temp_dir()).unwrap();
    assert!(check_region(dir.as_fd(), 0, 1)
        .unwrap_err()
        .contains("not a regular file"));
    let (p, _w) = nix::unistd::pipe().unwrap();
    assert!(check_region(p.as_fd(), 0, 1).is_err());
    let wo = std::fs::OpenOptions::new()
        .write(true)
        .open(&tmp.0)
        .unwrap();
    assert!(check_region(wo.as_fd(), 0, 1)
        .unwrap_err()
        .contains("reading"));
}

#[test]
fn read_at_reads_from_the_offset_without_moving_the_position() {
    let tmp = TempFile::new(1000);
    let mut f = tmp.open();
    let mut buf = [0u8; 10];
    assert_eq!(read_at(f.as_fd(), &mut buf, 500).unwrap(), 10);
    assert_eq!(buf[0], (500 * 7 % 251) as u8);
    assert_eq!(read_at(f.as_fd(), &mut buf, 995).unwrap(), 5);
    assert_eq!(read_at(f.as_fd(), &mut buf, 1000).unwrap(), 0);
    let mut first = [0u8; 1];
    f.read_exact(&mut first).unwrap();
    assert_eq!(first[0], 0);
}
