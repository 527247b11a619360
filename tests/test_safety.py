"""Safety under output filters, application threads and misuse: each test
here reproduces a defect found in review (a GIL self-deadlock under
mod_include, the GIL held while mod_ratelimit sleeps, segfaults from a bad
exc_info and from write() in another thread, a negative Content-Length, a
per-thread log leak, a shared wsgi.errors) and checks it stays fixed.

One process runs the application (event MPM, --processes 1: an Apache
child in embedded mode, a daemon process in daemon mode) so that requests
meet the same interpreter, threads and memory. Every test runs in both
modes."""

import socket
import threading
import time

import pytest
import requests

from conftest import ERROR_ID, MODES, new_token, read_one_response, split_response

CRASH_SIGNS = ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error",
               "core dumped")
MiB = 1024 * 1024


@pytest.fixture(scope="module", params=MODES)
def safety_server(request, servers, ws):
    srv = servers.start("safety", ws.apps / "safety" / "app.wsgi", "event", [
        "--processes", "1", "--threads", "8", "--log-level", "info",
        "--include-file", ws.apps / "safety" / "filters.conf"], mode=request.param)
    yield srv
    srv.stop()


def assert_no_crash(srv):
    log = srv.error_log()
    for bad in CRASH_SIGNS:
        assert bad not in log, f"{bad!r} in {srv.error_log_path}:\n{log[-4000:]}"
    r = srv.get("/hello", timeout=10)
    assert r.status_code == 200 and r.text == "hello"


def test_ssi_include_of_wsgi_url(safety_server):
    """mod_include runs the included WSGI URL as a sub-request on the same
    thread while the including response goes down the filter chain."""
    token = new_token()
    r = safety_server.get(f"/ssi?token={token}", timeout=10)
    assert r.status_code == 200, safety_server.error_log_tail()
    assert r.text == f"<html><body>before;included-{token};after</body></html>"
    assert_no_crash(safety_server)


def test_rate_limited_response_does_not_stall_other_requests(safety_server):
    """A response held back by mod_ratelimit (about 6 s) must not keep the
    GIL: a request to another URL of the same child answers at once."""
    slow = {}

    def fetch_slow():
        t0 = time.monotonic()
        r = requests.get(safety_server.url("/slow?size=12000"), timeout=60)
        slow["status"], slow["len"] = r.status_code, len(r.content)
        slow["seconds"] = time.monotonic() - t0

    t = threading.Thread(target=fetch_slow)
    t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    r = safety_server.get("/hello", timeout=30)
    fast = time.monotonic() - t0
    still_slow = t.is_alive()
    t.join()
    assert r.status_code == 200 and r.text == "hello"
    assert slow == {"status": 200, "len": 12000, "seconds": slow["seconds"]}
    assert still_slow and slow["seconds"] > 2, slow    # the filter really held it back
    assert fast < 1.0, f"a trivial request waited {fast:.2f}s behind a rate-limited response"


def test_exc_info_without_an_exception(safety_server):
    """start_response(..., sys.exc_info()) after output started, with no
    exception being handled, raises TypeError (was: a segfault)."""
    r = safety_server.get("/excinfo-none", timeout=10)
    assert r.status_code == 200
    assert r.text == ("started;none:TypeError:True;tuple:TypeError:True;"
                      "mismatch:TypeError:True;")
    time.sleep(0.3)
    assert_no_crash(safety_server)


@pytest.mark.parametrize("value", ["18446744073709551615", "9223372036854775808"])
def test_content_length_beyond_apr_off_t(safety_server, value):
    mark = safety_server.log_mark()
    data = safety_server.raw(
        f"GET /huge-cl?v={value} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status, headers, head, body = split_response(data)
    assert status.startswith("HTTP/1.1 500"), data[:300]
    assert b"Content-Length: -" not in head
    assert b"never sent" not in data
    text = safety_server.wait_for_log(mark, ERROR_ID, value, "apr_off_t")
    assert value in text and "apr_off_t" in text and "start_response(" in text, text


def test_thread_per_request_logging_does_not_leak(safety_server):
    """3,000 requests each starting a thread that writes a 6 KB line and a
    last line without newline to sys.stderr: the child's RSS stays flat and
    every partial line is logged when its thread ends."""
    base = new_token()
    mark = safety_server.log_mark()
    rss = []
    with requests.Session() as s:
        for i in range(3000):
            r = s.get(safety_server.url(f"/thread-log?token={base}-{i}"), timeout=30)
            assert r.status_code == 200
            if i in (299, 2999):
                rss.append(int(r.text))
    growth = rss[1] - rss[0]
    assert growth < 4 * MiB, f"child grew by {growth / MiB:.1f} MiB over 2,700 requests"
    text = safety_server.wait_for_log(mark, f"partial-line-{base}-2999")
    for i in (0, 1, 1500, 2999):
        assert f"partial-line-{base}-{i}" in text, f"partial line {i} not logged"
    assert text.count(f"partial-line-{base}-") == 3000


def test_closed_wsgi_errors_does_not_affect_later_requests(safety_server):
    base = new_token()
    mark = safety_server.log_mark()
    with requests.Session() as s:
        # More requests than threads: some thread serves two of them.
        for i in range(24):
            r = s.get(safety_server.url(f"/errors-close?token={base}-{i}"), timeout=10)
            assert r.status_code == 200, safety_server.log_since(mark)
            assert r.text == "closed:True"
    text = safety_server.wait_for_log(mark, f"errors-line-{base}-23")
    for i in range(24):
        assert f"errors-line-{base}-{i}" in text
    assert "closed file" not in text


def test_stashed_wsgi_errors_expires_with_its_request(safety_server):
    """A wsgi.errors kept past its request raises instead of writing under
    a later request's context."""
    token = new_token()
    mark = safety_server.log_mark()
    assert safety_server.get(f"/errors-stash?step=keep&token={token}").text == "kept"
    r = safety_server.get(f"/errors-stash?step=use&token={token}")
    assert r.status_code == 200
    assert r.text == "RuntimeError:True"
    text = safety_server.wait_for_log(mark, f"own-write-{token}")
    assert f"own-write-{token}" in text
    assert f"stashed-write-{token}" not in text


def test_write_from_thread_while_request_thread_yields(safety_server):
    """write() in an application thread and the request thread's iteration
    are serialised: every line arrives whole."""
    n = 3000
    for _ in range(3):
        r = safety_server.get(f"/thread-write?n={n}", timeout=60)
        assert r.status_code == 200
        lines = r.content.split(b"\n")
        assert lines[-1] == b""
        lines = lines[:-1]
        assert sorted(set(lines)) == [b"M" * 1000, b"T" * 1000]
        assert lines.count(b"T" * 1000) == n and lines.count(b"M" * 1000) == n
    assert_no_crash(safety_server)


def test_write_from_thread_after_request_end(safety_server):
    """An application thread writing 64 KB blocks while its request returns:
    the request's last pass waits for the block in progress, later writes
    raise RuntimeError, the response stays well-formed."""
    for _ in range(20):
        token = new_token()
        r = safety_server.get(f"/thread-write-late?token={token}", timeout=30)
        assert r.status_code == 200
        assert r.content.endswith(b"request-done\n")
        assert set(r.content[:-len(b"request-done\n")].split(b"\n")) <= {b"late", b""}
        result = safety_server.get(f"/result?token={token}", timeout=20).text
        assert result == "RuntimeError:True", result
    assert_no_crash(safety_server)


def test_read_from_thread_after_request_end(safety_server):
    """A thread blocked in wsgi.input.read() when its request ends: the
    request waits for that read (bounded by Apache's Timeout), which then
    completes or fails; the request is never used after it is gone."""
    token = new_token()
    total = 100000
    with socket.create_connection(("127.0.0.1", safety_server.port), timeout=15) as s:
        s.sendall(f"POST /thread-read-late?token={token} HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Length: {total}\r\n\r\n".encode() + b"a" * 10)
        # The handler's Python part returns while the reader is blocked.
        time.sleep(1.0)
        s.sendall(b"b" * (total - 10))
        status, headers, body, _ = read_one_response(s)
        assert " 200 " in status and body == b"request-done"
    result = safety_server.get(f"/result?token={token}", timeout=20).text
    assert result in (f"read:{total}", "OSError:True"), result
    assert_no_crash(safety_server)


def test_safety_server_healthy(safety_server):
    assert_no_crash(safety_server)
