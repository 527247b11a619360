"""Application errors and start_response validation: what the client gets,
what the error log says, and that the server keeps serving."""

import socket

import pytest
import requests

from conftest import ERROR_ID, dechunk, split_response


def logged_lines(text, *needles):
    return [line for line in text.splitlines() if all(n in line for n in needles)]


def check_error_logged(srv, mark, script, *needles, traceback=False):
    """The log written since `mark` has a line with the error id (RWSGI)
    naming the script, and contains every needle (each needle may be a tuple
    of alternatives)."""
    plain = [n for n in needles if isinstance(n, str)]
    text = srv.wait_for_log(mark, ERROR_ID, str(script), *plain)
    assert logged_lines(text, ERROR_ID, str(script)), (
        f"no error-log line with {ERROR_ID!r} and the script path {script}:\n{text}")
    for needle in needles:
        alternatives = needle if isinstance(needle, tuple) else (needle,)
        assert any(a in text for a in alternatives), (
            f"error log does not mention {alternatives}:\n{text}")
    if traceback:
        assert "Traceback (most recent call last)" in text, text
    return text


def assert_still_serving(srv):
    r = srv.get("/env")
    assert r.status_code == 200, srv.error_log_tail()


def raw_get(srv, path):
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    return srv.raw(req)


# ------------------------------------------------------------ exceptions


def test_exception_in_app(core_server, core_script, token):
    mark = core_server.log_mark()
    r = core_server.get(f"/error?kind=raise&token={token}")
    assert r.status_code == 500
    assert f"app-exception-{token}" not in r.text      # no traceback to the client
    check_error_logged(core_server, mark, core_script, f"app-exception-{token}",
                       "RuntimeError", traceback=True)
    assert_still_serving(core_server)


def keepalive_get(srv, path, wait=8.0):
    """GET on a keep-alive connection. Returns (every byte received, whether
    the server closed the connection within `wait` seconds)."""
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    chunks = []
    with socket.create_connection(("127.0.0.1", srv.port), timeout=wait) as s:
        s.sendall(req)
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    return b"".join(chunks), True
                chunks.append(data)
        except ConnectionResetError:
            return b"".join(chunks), True
        except socket.timeout:
            return b"".join(chunks), False


def test_exception_after_response_started(core_server, core_script, token):
    """As mod_wsgi: what was sent before the exception is the response (a
    complete chunked body, so clients such as curl do not fail), the
    connection is closed after it, and the log names the exception class."""
    mark = core_server.log_mark()
    data, closed = keepalive_get(core_server, f"/error?kind=after-start&token={token}")
    status, headers, _, body = split_response(data)
    assert " 200 " in status, data[:300]
    assert headers.get("transfer-encoding") == "chunked", headers
    decoded, complete = dechunk(body)
    assert complete, data
    assert decoded == f"first-chunk-{token}\n".encode()
    assert closed, "the connection of a response cut short by an exception was kept alive"
    text = check_error_logged(core_server, mark, core_script, f"late-exception-{token}",
                              "RuntimeError exception raised processing WSGI script",
                              traceback=True)
    assert str(core_script) in text
    assert_still_serving(core_server)


def test_exception_after_response_started_requests(core_server, token):
    r = core_server.get(f"/error?kind=after-start&token={token}")
    assert r.status_code == 200
    assert r.content == f"first-chunk-{token}\n".encode()
    assert_still_serving(core_server)


def test_exception_after_start_with_content_length(core_server, token):
    data = raw_get(core_server, f"/error?kind=after-start-cl&token={token}")
    if data:
        status, headers, _, body = split_response(data)
        assert " 200 " in status
        assert headers.get("content-length") == "1000"
        assert len(body) < 1000
    assert_still_serving(core_server)


# ------------------------------------------------------------ bad status


@pytest.mark.parametrize("kind,needles", [
    ("noreason", [('"200"', "'200'")]),
    ("abc", [('"abc"', "'abc'")]),
    ("int", ["int"]),
    ("bytes", ["bytes"]),
    ("crlf", ["X-Injected"]),
    ("code100", ["100 Continue"]),
])
def test_bad_status(core_server, core_script, kind, needles):
    mark = core_server.log_mark()
    data = raw_get(core_server, f"/error?kind=status&v={kind}")
    status, headers, head, body = split_response(data)
    assert status.startswith("HTTP/1.1 500"), data[:500]
    assert b"X-Injected" not in head
    assert b"should not be sent" not in data
    # Raised inside start_response: the traceback shows the app's call.
    check_error_logged(core_server, mark, core_script, "start_response(", *needles,
                       traceback=True)
    assert_still_serving(core_server)


# ------------------------------------------------------------ bad headers


@pytest.mark.parametrize("kind,needles", [
    ("nonstr-value", ["X-Number"]),
    ("nonstr-name", ["X-Bytes"]),
    ("crlf", ["X-Test"]),
    ("lf", ["X-Test"]),
    ("nonlatin", ["X-Euro"]),
    ("control", ["X-Ctl"]),
    ("badname", ["X Bad:Name"]),
    ("list", [("X-List", "list")]),
    ("triple", [("X-Triple", "length")]),
])
def test_bad_header(core_server, core_script, kind, needles):
    mark = core_server.log_mark()
    data = raw_get(core_server, f"/error?kind=header&v={kind}")
    status, headers, head, body = split_response(data)
    assert status.startswith("HTTP/1.1 500"), data[:500]
    # Header injection: the smuggled header must not reach the client.
    assert b"X-Injected" not in head
    assert "x-injected" not in headers
    assert b"should not be sent" not in data
    check_error_logged(core_server, mark, core_script, "start_response(", *needles,
                       traceback=True)
    assert_still_serving(core_server)


def test_headers_must_be_a_list(core_server, core_script):
    mark = core_server.log_mark()
    r = core_server.get("/error?kind=headers-not-list")
    assert r.status_code == 500
    check_error_logged(core_server, mark, core_script)


@pytest.mark.parametrize("name", [
    "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "TE", "Trailer",
    "Proxy-Authenticate", "Proxy-Authorization", "connection",
])
def test_hop_by_hop_header_refused(core_server, core_script, name):
    mark = core_server.log_mark()
    data = raw_get(core_server, f"/error?kind=hop&name={name}&value=x")
    status, headers, head, body = split_response(data)
    assert status.startswith("HTTP/1.1 500"), data[:500]
    assert b"should not be sent" not in data
    check_error_logged(core_server, mark, core_script, name)


def test_application_returns_none(core_server, core_script):
    mark = core_server.log_mark()
    r = core_server.get("/error?kind=return-none")
    assert r.status_code == 500
    check_error_logged(core_server, mark, core_script, "None")
    assert_still_serving(core_server)


def test_start_response_never_called(core_server, core_script):
    mark = core_server.log_mark()
    r = core_server.get("/error?kind=no-start-response")
    assert r.status_code == 500
    assert "body without start_response" not in r.text
    check_error_logged(core_server, mark, core_script, ("start_response", "not been started"))
    assert_still_serving(core_server)


# ------------------------------------------------------ non-bytes items


def test_non_bytes_item(core_server, core_script):
    mark = core_server.log_mark()
    r = core_server.get("/error?kind=nonbytes")
    assert r.status_code == 500
    assert "a str, not bytes" not in r.text
    check_error_logged(core_server, mark, core_script, "str")
    assert_still_serving(core_server)


def test_non_bytes_item_after_response_started(core_server, core_script):
    mark = core_server.log_mark()
    data, closed = keepalive_get(core_server, "/error?kind=nonbytes-late")
    status, headers, _, body = split_response(data)
    assert " 200 " in status, data[:300]
    decoded, complete = dechunk(body)
    assert complete and decoded == b"first chunk of bytes\n", data
    assert closed
    assert b"then a str" not in data
    check_error_logged(core_server, mark, core_script, "str")
    assert_still_serving(core_server)


# ------------------------------------------------------------ exc_info


def test_exc_info_before_headers_sent(core_server, token):
    r = core_server.get(f"/error?kind=excinfo-before&token={token}")
    assert r.status_code == 502
    assert r.reason == "Second Wins"
    assert r.text == "second response body"
    assert r.headers.get("X-Second") == "yes"
    assert "X-First" not in r.headers


def test_second_start_response_before_sending_wins(core_server, token):
    """mod_wsgi compatibility: without exc_info, a second call made before
    anything was sent replaces the first."""
    r = core_server.get(f"/error?kind=second-start-response&token={token}")
    assert r.status_code == 409
    assert r.text == "second call wins"
    assert r.headers.get("X-Second") == "yes"
    assert "X-First" not in r.headers


def test_second_start_response_after_sending_raises(core_server, token):
    r = core_server.get(f"/error?kind=second-start-response-after-sent&token={token}")
    assert r.status_code == 200
    assert r.text == "sent;refused:True"


def test_exc_info_after_only_empty_items(core_server, token):
    r = core_server.get(f"/error?kind=excinfo-after-empty&token={token}")
    assert r.status_code == 503
    assert r.reason == "Replaced"
    assert r.text == "replaced body"


def test_exc_info_after_headers_sent_reraises(core_server, token):
    r = core_server.get(f"/error?kind=excinfo-after&token={token}")
    assert r.status_code == 200
    assert r.text == f"part1;reraised:orig-{token};"


def test_no_child_crashed(core_server):
    """After all of the above, no Apache child died of a signal."""
    log = core_server.error_log()
    for bad in ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error"):
        assert bad not in log, f"{bad!r} in error_log:\n{log[-6000:]}"
    assert "Iterator garbage collected without being closed" not in log
    assert_still_serving(core_server)
