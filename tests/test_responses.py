"""Response bodies: streaming, write(), wsgi.file_wrapper, Content-Length,
HEAD, custom statuses, keep-alive, close() of the iterable."""

import hashlib
import json
import random
import socket
import time

import pytest
import requests

from conftest import (
    child_pids, dechunk, proc_status, read_one_response, read_response_head, split_response,
    wait_until,
)

MiB = 1024 * 1024


def test_streamed_8mib_response(core_server):
    size = 8 * MiB
    r = core_server.get(f"/stream?size={size}&chunk=4096&seed=3", stream=True)
    assert r.status_code == 200
    h = hashlib.sha256()
    n = 0
    for chunk in r.iter_content(65536):
        h.update(chunk)
        n += len(chunk)
    assert n == size == int(r.headers["X-Size"])
    assert h.hexdigest() == r.headers["X-Sha256"]
    assert h.hexdigest() == hashlib.sha256(random.Random(3).randbytes(size)).hexdigest()


@pytest.mark.timeout(180)
def test_large_streamed_response_memory_bounded(core_server):
    """A 256 MiB response to a client that pauses: the server must hold the
    generator back instead of buffering its output."""
    size = 256 * MiB
    for _ in range(4):
        core_server.get("/env")
    before = {pid: proc_status(pid) for pid in child_pids(core_server.pid())}
    baseline = max(s.get("VmRSS", 0) for s in before.values())
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=60) as s:
        s.sendall(f"GET /bigstream?size={size} HTTP/1.1\r\nHost: x\r\n"
                  f"Connection: close\r\n\r\n".encode())
        got = b""
        while len(got) < MiB:
            data = s.recv(65536)
            assert data
            got += data
        time.sleep(2)          # a slow client: the app must wait for it
        status, headers, _, body = split_response(got)
        assert " 200 " in status
        assert headers.get("transfer-encoding") == "chunked"
        peak = {pid: proc_status(pid).get("VmHWM", 0) for pid in child_pids(core_server.pid())}
        total = len(got)
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            total += len(data)
    assert total > size
    for pid, hwm in peak.items():
        start = before.get(pid, {}).get("VmRSS", baseline)
        assert hwm - start < 64 * MiB, (
            f"child {pid} grew by {(hwm - start) / MiB:.1f} MiB while a client paused "
            f"during a {size // MiB} MiB streamed response")
    assert core_server.get("/env").status_code == 200


def test_streamed_odd_chunk_sizes(core_server):
    r = core_server.get("/stream?size=1000001&chunk=777&seed=9")
    assert r.status_code == 200
    assert len(r.content) == 1000001
    assert hashlib.sha256(r.content).hexdigest() == r.headers["X-Sha256"]


def test_write_callable(core_server):
    r = core_server.get("/write")
    assert r.status_code == 200
    assert r.content == b"part1-part2-part3"


def test_content_length_is_honoured(core_server):
    # The app declares 5 bytes and yields 10: exactly 5 go out.
    req = (b"GET /content-length HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Connection: close\r\n\r\n")
    status, headers, _, body = split_response(core_server.raw(req))
    assert " 200 " in status
    assert headers.get("content-length") == "5"
    assert body == b"01234"
    # And through requests, for good measure.
    r = core_server.get("/content-length")
    assert r.content == b"01234"


def test_content_length_keepalive_not_desynchronised(core_server):
    """After a response cut to its Content-Length, a request on the same
    connection gets its own, correct response (no stray bytes)."""
    with requests.Session() as s:
        r1 = s.get(core_server.url("/content-length"), timeout=30)
        assert r1.content == b"01234"
        r2 = s.get(core_server.url("/write"), timeout=30)
        assert r2.status_code == 200
        assert r2.content == b"part1-part2-part3"


def test_empty_body(core_server):
    r = core_server.get("/empty")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["X-Empty"] == "yes"


def test_head_request(core_server):
    r = core_server.request("HEAD", "/head")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["X-Head-Test"] == "yes"
    assert r.headers["X-Method"] == "HEAD"
    # Raw: nothing after the header block, and the connection stays usable.
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        s.sendall(b"HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200")
    assert b"must not be sent" not in data
    assert rest.startswith(b"HTTP/1.1 200"), rest[:200]
    status, headers, _, body = split_response(rest)
    if headers.get("transfer-encoding") == "chunked":
        body, complete = dechunk(body)
        assert complete
    assert body == b"part1-part2-part3"


@pytest.mark.parametrize("kind", ["list", "gen"])
def test_head_with_content_length_keeps_connection(core_server, kind):
    """HEAD answered with the GET's Content-Length and no body (as Flask
    does) is correct: the kept-alive connection serves the next request."""
    mark = core_server.log_mark()
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        s.sendall(f"HEAD /head-cl?kind={kind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, rest = read_response_head(s)
        assert " 200 " in status
        assert headers["x-method"] == "HEAD"
        assert headers["content-length"] == "3732"
        assert "close" not in headers.get("connection", "").lower()
        assert rest == b""
        s.sendall(f"GET /head-cl?kind={kind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, headers, body, rest = read_one_response(s)
        assert " 200 " in status
        assert headers["x-method"] == "GET"
        assert body == b"0123456789abcdef" * 233 + b"end\n"
    log = core_server.log_since(mark)
    assert "RWSGI0025" not in log and "Content-Length" not in log, log


def test_head_mapped_to_get_keeps_connection(servers, ws):
    """WSGIMapHEADToGET On: the application sees GET and produces the whole
    body, Apache sends none of it, and the connection stays usable."""
    with servers.running("maphead", ws.apps / "core" / "app.wsgi",
                         args=["--map-head-to-get", "On"]) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=15) as s:
            s.sendall(b"HEAD /head-cl HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, rest = read_response_head(s)
            assert " 200 " in status
            assert headers["x-method"] == "GET"
            assert headers["content-length"] == "3732"
            s.sendall(b"GET /head-cl?kind=gen HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body, rest2 = read_one_response(s, rest)
            assert rest == b"" and rest2 == b""
            assert body == b"0123456789abcdef" * 233 + b"end\n"


@pytest.mark.parametrize("name", ["untyped.py", "untyped.wsgi", "untyped"])
def test_untyped_response_has_no_content_type(servers, ws, name):
    """The script file's MIME type (text/x-python for .py) never becomes the
    response's: an untyped response goes out without Content-Type."""
    d = ws.new_dir("untyped")
    script = d / name
    script.write_bytes((ws.apps / "misc" / "untyped.wsgi").read_bytes())
    script.chmod(0o644)
    with servers.running("untyped", script) as srv:
        data = srv.raw(b"GET /status/418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, headers, _, body = split_response(data)
        assert status.startswith("HTTP/1.1 418"), status
        assert headers.get("x-untyped") == "yes"
        assert "content-type" not in headers, headers
        assert "content-encoding" not in headers and "content-language" not in headers
        if headers.get("transfer-encoding") == "chunked":
            body, _ = dechunk(body)
        assert body == b"short and stout\n"


def test_custom_status(core_server):
    r = core_server.get("/status", params={"s": "299 Custom", "body": "custom body"})
    assert r.status_code == 299
    assert r.reason == "Custom"
    assert r.text == "custom body"
    assert r.headers["X-From-App"] == "yes"


def test_latin1_status_reason_and_header_value(core_server):
    data = core_server.raw(b"GET /status?s=200+Tr%C3%A8s+bien&hv=caf%C3%A9 HTTP/1.1\r\n"
                           b"Host: x\r\nConnection: close\r\n\r\n")
    status, headers, head, body = split_response(data)
    # The native strings go out as their latin-1 bytes.
    assert head.startswith(b"HTTP/1.1 200 Tr\xe8s bien\r\n"), head[:200]
    assert b"\r\nX-Custom: caf\xe9\r\n" in head


def test_repeated_headers_kept(core_server):
    data = core_server.raw(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    _, _, head, _ = split_response(data)
    lines = head.split(b"\r\n")
    assert b"Set-Cookie: a=1; Path=/" in lines
    assert b"Set-Cookie: b=2; Path=/" in lines


def test_repeated_custom_header(core_server):
    """A header name given twice: embedded mode sends both lines (mod_wsgi's
    apr_table_add); daemon mode one comma-joined line, as mod_wsgi's daemon
    mode (Apache's CGI header parsing merges them, RFC 9110 section 5.3).
    Set-Cookie is never merged."""
    data = core_server.raw(b"GET /status?hv=first-value&hv2=second-value HTTP/1.1\r\n"
                           b"Host: x\r\nConnection: close\r\n\r\n")
    _, _, head, _ = split_response(data)
    lines = head.split(b"\r\n")
    custom = [ln for ln in lines if ln.lower().startswith(b"x-custom:")]
    if core_server.mode == "daemon":
        assert custom == [b"X-Custom: first-value, second-value"], head
    else:
        assert custom == [b"X-Custom: first-value", b"X-Custom: second-value"], head
    assert b"Set-Cookie: a=1; Path=/" in lines and b"Set-Cookie: b=2; Path=/" in lines, head


def test_header_value_leading_whitespace(core_server):
    """A value given with leading whitespace (Django's Set-Cookie values
    start with a space: SimpleCookie's output(header="")): daemon mode skips
    it, as Apache's CGI header parsing does for mod_wsgi's daemon mode;
    embedded mode sends the value as given, as mod_wsgi's embedded mode."""
    data = core_server.raw(b"GET /status?hv=%20%20spaced%20value HTTP/1.1\r\n"
                           b"Host: x\r\nConnection: close\r\n\r\n")
    _, _, head, _ = split_response(data)
    custom = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"x-custom:")]
    if core_server.mode == "daemon":
        assert custom == [b"X-Custom: spaced value"], head
    else:
        assert custom == [b"X-Custom:   spaced value"], head


def test_app_404_passed_through(core_server):
    r = core_server.get("/status", params={"s": "404 Not Found", "body": "app-404-body"})
    assert r.status_code == 404
    assert r.text == "app-404-body"
    assert r.headers["X-From-App"] == "yes"


def test_app_503_passed_through(core_server):
    r = core_server.get("/status", params={"s": "503 Busy Now", "body": "app-503-body"})
    assert r.status_code == 503
    assert r.reason == "Busy Now"
    assert r.text == "app-503-body"


def test_redirect_status_passed_through(core_server):
    r = core_server.get("/status", params={"s": "302 Found", "body": "moved"},
                        allow_redirects=False)
    assert r.status_code == 302


# ------------------------------------------------------------ file_wrapper


def test_file_wrapper_full(core_server, ws):
    r = core_server.get("/filewrapper?mode=full")
    assert r.status_code == 200
    assert r.content == ws.blob.read_bytes()


def test_file_wrapper_from_offset(core_server, ws):
    skip = 100_003
    r = core_server.get(f"/filewrapper?mode=offset&skip={skip}")
    assert r.status_code == 200
    data = ws.blob.read_bytes()
    assert len(r.content) == len(data) - skip
    assert r.content == data[skip:]


def test_file_wrapper_with_content_length(core_server, ws):
    r = core_server.get("/filewrapper?mode=length&length=1000")
    assert r.status_code == 200
    assert r.content == ws.blob.read_bytes()[:1000]


def test_file_wrapper_bytesio_fallback(core_server, ws):
    r = core_server.get("/filewrapper?mode=bytesio")
    assert r.status_code == 200
    assert r.content == ws.blob.read_bytes()


def test_file_wrapper_closes_file_like(core_server, ws, token):
    r = core_server.get(f"/filewrapper?mode=closing-bytesio&token={token}")
    assert r.status_code == 200
    assert r.content == ws.blob.read_bytes()
    assert wait_marker(ws, token, "closed"), "file_wrapper did not close the file-like object"


def test_file_wrapper_closes_real_file(core_server, ws, token):
    r = core_server.get(f"/filewrapper?mode=closing-file&token={token}")
    assert r.status_code == 200
    assert r.content == ws.blob.read_bytes()
    assert wait_marker(ws, token, "closed"), "file_wrapper did not close the file"


# --------------------------------------------------------------- keep-alive


def test_keepalive_session(core_server):
    """All requests of a session share one connection, also past Apache's
    default of 100 requests per connection (rwsgi-express sets
    MaxKeepAliveRequests 0)."""
    with requests.Session() as s:
        ports = set()
        for i in range(150):
            r = s.get(core_server.url(f"/env?i={i}"), timeout=30)
            assert r.status_code == 200
            ports.add(r.json()["REMOTE_PORT"])
        assert len(ports) == 1, f"the connection was closed and reopened: {len(ports)} connections"


def test_keepalive_raw_socket(core_server):
    with socket.create_connection(("127.0.0.1", core_server.port), timeout=15) as s:
        local_port = s.getsockname()[1]
        for i in range(3):
            s.sendall(f"GET /env?n={i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            status, headers, body, extra = read_one_response(s)
            assert " 200 " in status
            assert extra == b""
            env = json.loads(body)
            assert env["REMOTE_PORT"] == str(local_port)
            assert env["QUERY_STRING"] == f"n={i}"


# ------------------------------------------------------------ close()


def wait_marker(ws, token, what, timeout=10.0):
    path = ws.markers / f"{token}.{what}"
    return wait_until(path.exists, timeout, 0.05)


def test_close_called_after_success(core_server, ws, token):
    r = core_server.get(f"/close?kind=ok&token={token}")
    assert r.status_code == 200
    assert r.content == b"hello world"
    assert wait_marker(ws, token, "closed"), "close() was not called after a normal response"


def test_close_called_after_exception_before_output(core_server, ws, token):
    r = core_server.get(f"/close?kind=fail-early&token={token}")
    assert r.status_code == 500
    assert wait_marker(ws, token, "closed"), "close() not called after an exception in iteration"


def test_close_called_after_exception_mid_stream(core_server, ws, token):
    req = (f"GET /close?kind=fail-late&token={token} HTTP/1.1\r\nHost: x\r\n"
           f"Connection: close\r\n\r\n").encode()
    data = core_server.raw(req)
    assert wait_marker(ws, token, "closed"), "close() not called after an exception mid-stream"
    status, headers, _, body = split_response(data)
    assert " 200 " in status
    if headers.get("transfer-encoding") == "chunked":
        # As mod_wsgi: what was sent ends as a complete response.
        _, complete = dechunk(body)
        assert complete, data


def test_close_called_after_client_disconnect(core_server, ws, token):
    s = socket.create_connection(("127.0.0.1", core_server.port), timeout=15)
    try:
        s.sendall(f"GET /close?kind=disconnect&token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = 0
        while got < 300_000:
            data = s.recv(65536)
            assert data, "server closed the endless stream early"
            got += len(data)
    finally:
        s.close()
    assert wait_marker(ws, token, "streaming", 1)
    t0 = time.monotonic()
    closed = wait_marker(ws, token, "closed", 15)
    assert closed, ("close() of the response iterable was not called within 15 s "
                    "after the client disconnected")
    assert not (ws.markers / f"{token}.exhausted").exists()
    assert time.monotonic() - t0 < 15


def test_exception_in_close_is_logged(core_server, token):
    mark = core_server.log_mark()
    r = core_server.get(f"/close?kind=close-raises&token={token}")
    assert r.status_code == 200
    text = core_server.wait_for_log(mark, f"close-raised-{token}")
    assert f"close-raised-{token}" in text, text
    assert core_server.get("/env").status_code == 200
