"""wsgi.input: the read methods, large streamed uploads with bounded memory,
chunked request bodies."""

import hashlib
import io
import json
import random
import socket

import pytest

from conftest import child_pids, dechunk, proc_status, read_one_response, split_response

MiB = 1024 * 1024


def make_body():
    """Text lines of many lengths, binary bytes, a long line, no final newline."""
    rnd = random.Random(7)
    parts = []
    for i in range(300):
        parts.append(b"line %d " % i + b"x" * rnd.randrange(0, 200) + b"\n")
    parts.append(b"\n\n")                           # empty lines
    parts.append(bytes(range(256)).replace(b"\n", b"") + b"\n")   # binary
    parts.append(b"L" * 150_000 + b"\n")            # longer than any buffer
    parts.append(b"tail without newline")
    return b"".join(parts)


BODY = make_body()


def expected_pieces(mode, n=0, body=BODY):
    f = io.BytesIO(body)
    if mode == "read":
        return [f.read(), f.read()]
    out = []
    if mode == "readn":
        while True:
            b = f.read(n)
            out.append(b)
            if not b:
                return out
    if mode == "readline":
        while True:
            b = f.readline()
            out.append(b)
            if not b:
                return out
    if mode == "readline-n":
        while True:
            b = f.readline(n)
            out.append(b)
            if not b:
                return out
    if mode == "readlines":
        return f.readlines()
    if mode == "read-neg":
        return [f.read(-1), f.read(-1)]
    if mode == "readlines-hint":
        return f.readlines(n) + [f.read()]
    if mode == "iter":
        return list(f)
    if mode == "mixed":
        return [f.read(10), f.readline(), f.readline(5), f.read(100), f.read(), f.read(1),
                f.readline()]
    raise ValueError(mode)


def post_input(srv, mode, n=0, body=BODY, pieces=True):
    qs = f"/input?mode={mode}&n={n}" + ("&pieces=1" if pieces else "")
    r = srv.post(qs, data=body, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, f"{r.status_code} {r.text[:2000]}\n{srv.error_log_tail()}"
    return r.json()


@pytest.mark.parametrize("mode,n", [
    ("read", 0),
    ("readn", 1),
    ("readn", 1000),
    ("readn", 65536),
    ("readn", 1_000_000),
    ("readline", 0),
    ("readline-n", 7),
    ("readline-n", 8192),
    ("readlines", 0),
    ("readlines-hint", 1000),
    ("read-neg", 0),
    ("iter", 0),
    ("mixed", 0),
])
def test_read_methods(core_server, mode, n):
    # Single-byte reads of the whole body would be slow: use a prefix.
    body = BODY[:20_000] if n == 1 else BODY
    expected = expected_pieces(mode, n, body)
    res = post_input(core_server, mode, n, body=body, pieces=(n != 1))
    assert res["content_length"] == str(len(body))
    assert res["types"] == ["bytes"]
    assert res["size"] == len(body)
    assert res["sha256"] == hashlib.sha256(body).hexdigest()
    assert res["lengths"] == [len(p) for p in expected]
    if res["pieces"] is not None:
        got = [p.encode("latin-1") for p in res["pieces"]]
        assert got == expected


def test_read_empty_body(core_server):
    r = core_server.get("/input?mode=read&pieces=1")
    assert r.status_code == 200
    assert r.json()["pieces"] == ["", ""]


def test_read_empty_post(core_server):
    res = post_input(core_server, "readline", body=b"")
    assert res["pieces"] == [""]
    assert res["content_length"] in ("0", None, "")


class GeneratedBody:
    """A file-like request body of `size` pseudo-random bytes produced on the
    fly (never held in memory), hashed as it is sent."""

    def __init__(self, size, seed=99):
        self.size = size
        self.sent = 0
        self.sha = hashlib.sha256()
        self.block = random.Random(seed).randbytes(MiB + 17)

    def __len__(self):
        return self.size

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.size - self.sent
        n = min(n, self.size - self.sent, 256 * 1024)
        if n <= 0:
            return b""
        start = self.sent % len(self.block)
        chunk = self.block[start:start + n]
        self.sent += len(chunk)
        self.sha.update(chunk)
        return chunk


def children_rss(srv):
    return {pid: proc_status(pid) for pid in child_pids(srv.pid())}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_large_upload_streamed_with_bounded_memory(core_server):
    size = 256 * MiB
    # Warm up every child (imports done, interpreter initialised).
    for _ in range(4):
        assert core_server.get("/env").status_code == 200
    before = children_rss(core_server)
    assert before, "no Apache child processes found"
    baseline = max(s.get("VmRSS", 0) for s in before.values())

    body = GeneratedBody(size)
    r = core_server.post("/upload?chunk=65536", data=body,
                         headers={"Content-Type": "application/octet-stream"}, timeout=240)
    assert r.status_code == 200, f"{r.status_code} {r.text[:500]}\n{core_server.error_log_tail()}"
    res = r.json()
    assert body.sent == size
    assert res["size"] == size
    assert res["sha256"] == body.sha.hexdigest()
    assert res["content_length"] == str(size)

    pid = res["pid"]
    after = proc_status(pid)
    assert after, f"handling child {pid} vanished"
    # Peak resident size of the child that handled the upload, compared with
    # what it (or the largest child) had before: must not hold the body.
    start_rss = before.get(pid, {}).get("VmRSS", baseline)
    growth = after["VmHWM"] - start_rss
    print(f"upload: child {pid} RSS before {start_rss / MiB:.1f} MiB, "
          f"VmHWM after {after['VmHWM'] / MiB:.1f} MiB, in-app {res['vm_before']} -> {res['vm_after']}")
    assert growth < 64 * MiB, (
        f"child {pid} peak RSS grew by {growth / MiB:.1f} MiB during a "
        f"{size // MiB} MiB upload (before {start_rss / MiB:.1f} MiB, "
        f"VmHWM after {after['VmHWM'] / MiB:.1f} MiB)")
    # And no other child ballooned either.
    for other, st in children_rss(core_server).items():
        base = before.get(other, {}).get("VmRSS", baseline)
        assert st.get("VmHWM", 0) - base < 64 * MiB, (other, st, base)


def chunked_gen(data, sizes=(1, 10, 1000, 65536, 7)):
    pos = 0
    i = 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        yield data[pos:pos + n]
        pos += n
        i += 1


def test_chunked_request_body(alt_server):
    data = random.Random(5).randbytes(3 * MiB + 5)
    r = alt_server.post("/app/upload?chunk=10000", data=chunked_gen(data),
                        headers={"Content-Type": "application/octet-stream"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 200, f"{r.status_code} {r.text[:500]}\n{alt_server.error_log_tail()}"
    res = r.json()
    assert res["size"] == len(data)
    assert res["sha256"] == hashlib.sha256(data).hexdigest()
    assert res["content_length"] in (None, "")


def test_chunked_request_read_methods(alt_server):
    r = alt_server.post("/app/input?mode=readline&pieces=1", data=chunked_gen(BODY),
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text[:500]
    got = [p.encode("latin-1") for p in r.json()["pieces"]]
    assert got == expected_pieces("readline")


def test_chunked_request_raw(alt_server):
    """Hand-made chunked body with a chunk extension and a trailer."""
    req = (b"POST /app/upload?chunk=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")
    status, headers, _, body = split_response(alt_server.raw(req))
    assert " 200 " in status
    if headers.get("transfer-encoding") == "chunked":
        body, _ = dechunk(body)
    res = json.loads(body)
    assert res["size"] == 11
    assert res["sha256"] == hashlib.sha256(b"hello world").hexdigest()


def test_chunked_request_refused_without_option(core_server):
    mark = core_server.log_mark()
    r = core_server.post("/upload", data=chunked_gen(b"some chunked data" * 10),
                         headers={"Content-Type": "application/octet-stream"})
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert r.status_code == 411, f"{r.status_code} {r.text[:500]}\n{core_server.log_since(mark)}"


def test_body_over_limit_request_body_refused(alt_server):
    # The launcher's default --limit-request-body is 10 MiB (LimitRequestBody).
    data = b"z" * (10 * MiB + 1)
    r = alt_server.post("/app/upload", data=data,
                        headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413


def test_reads_stop_at_end_of_body_on_keepalive_connection(core_server):
    """read() / read(n) past Content-Length must not eat the next pipelined
    request on the same connection."""
    body1 = b"first body\nwith two lines"
    req = (b"POST /input?mode=readn&n=1000000&pieces=1 HTTP/1.1\r\nHost: x\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body1) + body1 +
           b"POST /input?mode=read&pieces=1 HTTP/1.1\r\nHost: x\r\n"
           b"Content-Length: 6\r\n\r\nsecond" +
           b"GET /env?third=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        s.sendall(req)
        st1, _, b1, rest = read_one_response(s)
        st2, _, b2, rest = read_one_response(s, rest)
        st3, _, b3, rest = read_one_response(s, rest)
    assert " 200 " in st1 and " 200 " in st2 and " 200 " in st3
    assert json.loads(b1)["pieces"] == [body1.decode(), ""]
    assert json.loads(b2)["pieces"] == ["second", ""]
    assert json.loads(b3)["QUERY_STRING"] == "third=1"


def test_expect_100_continue(core_server):
    """A client that waits for '100 Continue' gets it once the app reads."""
    body = random.Random(3).randbytes(200_000)
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        interim = b""
        while b"\r\n\r\n" not in interim:
            data = s.recv(4096)
            assert data, "connection closed before the interim response"
            interim += data
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n"), interim[:200]
        head, _, rest = interim.partition(b"\r\n\r\n")
        s.sendall(body)
        status, headers, payload, _ = read_one_response(s, rest)
    assert " 200 " in status
    res = json.loads(payload)
    assert res["size"] == len(body)
    assert res["sha256"] == hashlib.sha256(body).hexdigest()


def test_client_gives_up_mid_upload(core_server):
    """The client sends part of a declared body and disconnects: the app's
    read fails, and the server goes on serving."""
    mark = core_server.log_mark()
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"x" * 1000)
    # The app's read raises OSError (as with mod_wsgi): the truncated body is
    # not passed off as complete. Logged, and nobody receives the 500.
    text = core_server.wait_for_log(mark, "upload_app", "OSError", timeout=10)
    assert "upload_app" in text and "OSError" in text, text
    for _ in range(3):
        r = core_server.get("/env")
        assert r.status_code == 200
    for bad in ("Segmentation fault", "panicked at", "Fatal Python error"):
        assert bad not in text, text
