"""Details where rwsgi does what mod_wsgi does, in embedded and daemon mode:
the exceptions start_response raises for bad arguments (type and message),
a response cut short by an error mid-stream (what was sent stays a
complete response, the connection is closed), mod_wsgi.RequestTimeout
raised by the application (504, no traceback), SystemExit, and the binary
stream wsgi.errors.buffer."""

import socket

import pytest

from conftest import dechunk, split_response


@pytest.fixture(scope="module")
def details(servers, ws, wsgi_mode):
    srv = servers.start("details", ws.apps / "details" / "app.wsgi", "event",
                        ["--log-level", "info"], mode=wsgi_mode)
    yield srv
    srv.stop()


@pytest.fixture
def token():
    import uuid
    return uuid.uuid4().hex[:12]


def latin1_error(text):
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as e:
        return f"UnicodeEncodeError|{e}"
    raise AssertionError(f"{text!r} is latin-1")


def keepalive_get(srv, path, wait=8.0):
    """GET on a keep-alive connection: (bytes received, whether the server
    closed the connection within `wait` seconds)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", srv.port), timeout=wait) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
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


# ------------------------------------------------ start_response arguments


@pytest.mark.parametrize("case,expected", [
    ("letters", "ValueError|status code must be a 3 digit integer: b'abc Nope'"),
    ("long-code", "ValueError|status code must be a 3 digit integer: b'4040 Not Found'"),
    ("glued", "ValueError|no space following status code: b'404Missing'"),
    ("newline", "ValueError|control character in status reason phrase: "
                "b'200 Fine\\nSet-Cookie: s=1'"),
    ("tab", "ValueError|control character in status reason phrase: b'200 Fi\\tne'"),
    ("not-latin1", latin1_error("200 Caf\u0113")),
])
def test_bad_status_raises_as_mod_wsgi(details, case, expected):
    r = details.get(f"/status?v={case}")
    assert r.status_code == 200
    assert r.text == expected


@pytest.mark.parametrize("case,expected", [
    ("empty-name", "ValueError|header name is empty"),
    ("spaced-name", "ValueError|space character in header name: b'My Header'"),
    ("control-name", "ValueError|control character in header name: b'My\\x01Header'"),
    ("cr-value", "ValueError|carriage return/line feed character in header value: b'abc\\rdef'"),
    ("lf-value", "ValueError|carriage return/line feed character in header value: b'abc\\ndef'"),
    ("int-name", "TypeError|must be str, not int"),
    ("int-value", "TypeError|must be str, not int"),
    ("not-latin1-value", latin1_error("10 \u20ac")),
    ("str-item", "TypeError|each header must be a 2-tuple, not str"),
    ("four-tuple", "ValueError|each header must be a 2-tuple, got length 4"),
])
def test_bad_header_raises_as_mod_wsgi(details, case, expected):
    r = details.get(f"/header?v={case}")
    assert r.status_code == 200
    assert r.text == expected
    assert "X-Token" not in r.headers


@pytest.mark.parametrize("case", ["str", "tuple", "dict"])
def test_headers_not_a_list_raises_as_mod_wsgi(details, case):
    r = details.get(f"/header-list?v={case}")
    assert r.text == f"TypeError|start_response() argument 2 must be list, not {case}"


def test_uncaught_bad_status_is_a_500_naming_app_value_and_rule(details, token):
    mark = details.log_mark()
    r = details.get(f"/uncaught-status?token={token}")
    assert r.status_code == 500
    assert "should not be sent" not in r.text
    log = details.wait_for_log(mark, f"Odd-{token}", "PEP 3333")
    assert "RWSGI0020: ValueError exception raised processing WSGI script" in log, log
    assert "details/app.wsgi" in log, log
    # The value, mod_wsgi's message, and the rule (the exception's note).
    assert f"status code must be a 3 digit integer: b'20x Odd-{token}'" in log, log
    assert "it must start with a 3-digit code" in log, log


def test_uncaught_bad_header_is_a_500_naming_app_value_and_rule(details, token):
    mark = details.log_mark()
    r = details.get(f"/uncaught-header?token={token}")
    assert r.status_code == 500
    log = details.wait_for_log(mark, f"v-{token}", "PEP 3333")
    assert "space character in header name: b'X Spaced'" in log, log
    assert f"('X Spaced', 'v-{token}')" in log, log
    assert "no spaces or control characters" in log, log


def test_exc_info_not_a_tuple_raises_runtime_error(details):
    r = details.get("/exc-info-list")
    assert r.text == "RuntimeError|start_response() argument 'exc_info' must be a 3-tuple or None"


def test_second_start_response_after_write_raises(details):
    r = details.get("/again-after-write")
    assert r.status_code == 200
    assert r.text == "written;RuntimeError|start_response() called more than once without exc_info"


# -------------------------------------------- responses cut short by errors


def test_list_with_a_bad_item_sends_the_items_before_it(details, token):
    mark = details.log_mark()
    data, closed = keepalive_get(details, f"/list-bad-midway?token={token}")
    status, headers, _, body = split_response(data)
    assert " 200 " in status, data[:300]
    decoded, complete = dechunk(body) if headers.get("transfer-encoding") == "chunked" \
        else (body, True)
    assert complete and decoded == b"one;two;", data
    assert closed, "a response cut short by an error kept its connection"
    log = details.wait_for_log(mark, "RWSGI0022", f"three-{token}")
    assert f"str 'three-{token}'" in log and "details/app.wsgi" in log, log


def test_list_with_a_bad_item_after_empty_ones_is_a_500(details):
    r = details.get("/list-bad-after-empty")
    assert r.status_code == 500


# ----------------------------------------------- RequestTimeout, SystemExit


def test_request_timeout_is_a_system_exit_of_mod_wsgi(details):
    assert details.get("/request-timeout-class").text == "(True, 'mod_wsgi')"


def test_request_timeout_raised_by_the_app_is_a_504_without_traceback(details, token):
    mark = details.log_mark()
    r = details.get(f"/request-timeout?token={token}")
    assert r.status_code == 504
    log = details.wait_for_log(mark, "RWSGI0090")
    assert "RWSGI0090: Request interrupted by RequestTimeout; thread recovered." in log, log
    assert "details/app.wsgi" in log, log
    assert f"raised-by-app-{token}" not in log, log
    assert "Traceback" not in log and "RWSGI0020" not in log, log


def test_request_timeout_after_output_ends_the_response_there(details, token):
    data, closed = keepalive_get(details, f"/request-timeout-late?token={token}")
    status, headers, _, body = split_response(data)
    assert " 200 " in status, data[:300]
    decoded, complete = dechunk(body)
    assert complete and decoded == b"before;", data
    assert closed


def test_system_exit_is_a_500_logged_by_class(details, token):
    mark = details.log_mark()
    r = details.get(f"/system-exit?token={token}")
    assert r.status_code == 500
    log = details.wait_for_log(mark, f"stop-{token}")
    assert "RWSGI0020: SystemExit exception raised by WSGI script" in log, log
    assert f"SystemExit: stop-{token}" in log, log
    # The process (embedded: the Apache child; daemon: the daemon) lives on.
    assert details.get("/request-timeout-class").status_code == 200


# --------------------------------------------------------- wsgi.errors


def test_errors_buffer_takes_any_bytes_like_object(details, token):
    mark = details.log_mark()
    r = details.get(f"/errors-buffer?token={token}")
    assert r.status_code == 200
    n, refused = r.text.split(";")
    assert int(n) == len(f"part-{token}\n")        # memoryview slice: its own length
    assert refused == "TypeError"
    names = ["ba", "mv", "part", "wl1", "wl2", "wl3", "tl1", "tl2", "out", "err"]
    log = details.wait_for_log(mark, *[f"{p}-{token}" for p in names])
    lines = [line for line in log.splitlines() if token in line]
    for p in names:
        matching = [line for line in lines if line.endswith(f"] {p}-{token}")]
        assert len(matching) == 1, (p, log)
        assert "[wsgi:error]" in matching[0]
        # A request's lines carry its client, as mod_wsgi's.
        assert "[client 127.0.0.1:" in matching[0], matching[0]


def test_wsgi_errors_is_a_text_wrapper_over_the_log(details):
    assert details.get("/errors-type").text == \
        "('_io.TextIOWrapper', 'mod_wsgi.Log', True, 'utf-8')"


def test_kept_wsgi_errors_expires_and_is_collected_silently(details, token):
    mark = details.log_mark()
    # One process (daemon) or several (embedded children): keep until a
    # request finds the stream kept by an earlier one.
    outcomes = [details.get(f"/errors-keep?token={token}", headers={"Connection": "close"}).text
                for _ in range(12)]
    assert "RuntimeError:True" in outcomes, outcomes
    assert "written" not in outcomes
    text = details.log_since(mark)
    assert f"late-{token}" not in text, text
    assert "Exception ignored" not in text, text
