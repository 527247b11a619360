"""The WSGI environ the module builds (PEP 3333 + mod_wsgi's extras)."""

import json

import pytest

from conftest import CANARY_NAME, CANARY_VALUE, dechunk, python_home, split_response


def expected_group(srv):
    """mod_wsgi.process_group: '' embedded, rwsgi-express's daemon group
    (named localhost:PORT, as mod_wsgi-express names it) in daemon mode."""
    return "" if srv.mode == "embedded" else f"localhost:{srv.port}"


def get_env(srv, path="/env", **kw):
    r = srv.get(path, **kw)
    assert r.status_code == 200, f"{r.status_code} {r.text[:2000]}\n{srv.error_log_tail()}"
    return r.json()


def test_cgi_variables(core_server, core_script):
    env = get_env(core_server, "/env/x?a=1&b=%20x",
                  headers={"X-Foo": "bar", "X_Foo": "underscore-value",
                           "X-Multi-Word-Header": "mw"})
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/env/x"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert env["REQUEST_URI"] == "/env/x?a=1&b=%20x"
    assert env["SERVER_PORT"] == str(core_server.port)
    assert env["SERVER_NAME"] in ("127.0.0.1", "localhost")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_SOFTWARE"].startswith("Apache")
    assert env["SERVER_ADDR"] == "127.0.0.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"].isdigit() and env["REMOTE_PORT"] != env["SERVER_PORT"]
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["REQUEST_SCHEME"] == "http"
    assert isinstance(env["DOCUMENT_ROOT"], str) and env["DOCUMENT_ROOT"]
    assert env["SCRIPT_FILENAME"] == str(core_script)
    assert env["HTTP_HOST"] == f"127.0.0.1:{core_server.port}"
    assert env["HTTP_X_FOO"] == "bar"
    assert env["HTTP_X_MULTI_WORD_HEADER"] == "mw"
    # A header whose name has an underscore is dropped, not merged/renamed.
    leaked = {k: v for k, v in env.items() if v == "underscore-value"}
    assert leaked == {}, f"X_Foo header leaked into environ: {leaked}"


def test_cgi_values_are_str(core_server):
    env = get_env(core_server, "/env?x=1", headers={"X-Check": "1"})
    assert env["_extra"]["non_str_cgi_keys"] == []
    for key, value in env.items():
        if "." not in key and not key.startswith("_"):
            assert isinstance(value, str), f"{key}={value!r} is not a str"


def test_query_string_absent_is_empty(core_server):
    env = get_env(core_server, "/env")
    assert env["QUERY_STRING"] == ""
    assert env["REQUEST_URI"] == "/env"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "POST"])
def test_request_method(core_server, method):
    r = core_server.request(method, "/env", data=b"xyz")
    assert r.status_code == 200, r.text
    env = r.json()
    assert env["REQUEST_METHOD"] == method
    assert env["CONTENT_LENGTH"] == "3"


def test_content_type_and_length(core_server):
    env = core_server.post("/env", data=b"abcde",
                           headers={"Content-Type": "text/x-test; charset=latin-1"}).json()
    assert env["CONTENT_TYPE"] == "text/x-test; charset=latin-1"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env


def test_no_content_length_without_body(core_server):
    env = get_env(core_server, "/env")
    assert env.get("CONTENT_LENGTH", "") in ("", "0")
    assert "HTTP_CONTENT_LENGTH" not in env


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer eyJhbGciOi.abc.def"])
def test_authorization_passed_by_express(core_server, value):
    """rwsgi-express writes WSGIPassAuthorization On, as mod_wsgi-express
    does: apps doing their own auth (Basic, Bearer, DAV) see the header.
    Proxy-Authorization is for the proxy and never reaches the app."""
    env = get_env(core_server, "/env", headers={"Authorization": value,
                                                "Proxy-Authorization": "Basic eHg6eXk="})
    assert env.get("HTTP_AUTHORIZATION") == value
    assert "HTTP_PROXY_AUTHORIZATION" not in env
    assert not any(v == "Basic eHg6eXk=" for v in env.values())


def test_authorization_hidden_with_pass_authorization_off(alt_server):
    headers = {"Authorization": "Basic dXNlcjpwYXNz"}
    env = get_env(alt_server, "/app/noauth/env", headers=headers)
    assert "HTTP_AUTHORIZATION" not in env
    assert not any(v == "Basic dXNlcjpwYXNz" for v in env.values())
    env = get_env(alt_server, "/app/env", headers=headers)
    assert env.get("HTTP_AUTHORIZATION") == "Basic dXNlcjpwYXNz"


def test_httpoxy_proxy_header_dropped(core_server):
    env = get_env(core_server, "/env", headers={"Proxy": "http://evil.example:1"})
    assert "HTTP_PROXY" not in env


def test_wsgi_keys(core_server, mpm):
    env = get_env(core_server, "/env")
    assert env["wsgi.version"] == {"type": "tuple", "value": [1, 0]}
    assert env["wsgi.url_scheme"] == "http"
    if core_server.mode == "daemon":
        # rwsgi-express's group: processes=1 threads=5, processes given
        # explicitly (mod_wsgi then reports multiprocess, as it does).
        assert env["wsgi.multithread"] is True
        assert env["wsgi.multiprocess"] is True
    else:
        assert env["wsgi.multithread"] is (mpm != "prefork")
        assert isinstance(env["wsgi.multiprocess"], bool)
        if mpm == "prefork":
            assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    extra = env["_extra"]
    assert extra["input_type"] == "mod_wsgi.Input"
    # A text stream (an io.TextIOWrapper, as mod_wsgi's) with a binary .buffer.
    assert extra["errors_is_textio"] is True, extra["errors_type"]
    assert extra["errors_has_buffer"] is True
    assert extra["file_wrapper_type"] == "mod_wsgi.FileWrapper"


def test_mod_wsgi_keys(core_server):
    env = get_env(core_server, "/env/some/path")
    assert env["mod_wsgi.process_group"] == expected_group(core_server)
    assert env["mod_wsgi.application_group"] == ""
    version = env["mod_wsgi.version"]
    assert version["type"] == "tuple" and version["value"]
    assert all(isinstance(x, int) for x in version["value"])
    assert isinstance(env["mod_wsgi.request_id"], str) and env["mod_wsgi.request_id"]
    assert env["mod_wsgi.script_name"] == env["SCRIPT_NAME"] == ""
    assert env["mod_wsgi.path_info"] == env["PATH_INFO"] == "/env/some/path"
    assert env["mod_wsgi.callable_object"] == "application"


def test_request_counters(core_server):
    """mod_wsgi.total_requests, mod_wsgi.thread_id, mod_wsgi.thread_requests:
    ints counting the current request (as mod_wsgi)."""
    seen = []
    for _ in range(3):
        env = get_env(core_server, "/env")
        total, tid, treq = (env["mod_wsgi.total_requests"], env["mod_wsgi.thread_id"],
                            env["mod_wsgi.thread_requests"])
        assert all(type(v) is int for v in (total, tid, treq)), (total, tid, treq)
        assert tid >= 1 and 1 <= treq <= total, (total, tid, treq)
        seen.append((env["_extra"]["pid"], tid, treq, total))
    # The same thread of the same process counts on.
    for a in seen:
        for b in seen:
            if a[:2] == b[:2] and a is not b:
                assert a[2] != b[2] and (a[2] < b[2]) == (a[3] < b[3]), seen


def test_request_id_differs_per_request(core_server):
    ids = {get_env(core_server, "/env")["mod_wsgi.request_id"] for _ in range(3)}
    assert len(ids) == 3


def test_import_mod_wsgi(core_server):
    info = get_env(core_server, "/env")["_extra"]["mod_wsgi_module"]
    assert isinstance(info, dict), info
    assert info["version"]["type"] == "tuple"
    assert info["version"] == get_env(core_server, "/env")["mod_wsgi.version"]
    assert info["process_group"] == expected_group(core_server)
    assert info["application_group"] == ""


def test_process_environment_not_copied(core_server):
    env = get_env(core_server, "/env")
    for name in ("PATH", "HOME", "LANG", CANARY_NAME):
        assert name not in env, f"{name} from Apache's os.environ leaked into the WSGI environ"
    assert CANARY_VALUE not in json.dumps(env)


def test_served_python_is_the_test_venv(core_server):
    extra = get_env(core_server, "/env")["_extra"]
    assert extra["python"].startswith("3.11.")
    assert extra["sys_prefix"] == str(python_home())


# ---------------------------------------------------------- mount point


def test_mount_point_split(alt_server, core_script):
    env = get_env(alt_server, "/app/x/y?q=1")
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/x/y"
    assert env["QUERY_STRING"] == "q=1"
    assert env["REQUEST_URI"] == "/app/x/y?q=1"
    assert env["SCRIPT_FILENAME"] == str(core_script)
    assert env["mod_wsgi.script_name"] == "/app"
    assert env["mod_wsgi.path_info"] == "/x/y"


def test_mount_point_exact(alt_server):
    env = get_env(alt_server, "/app")
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == ""


def test_mount_point_trailing_slash(alt_server):
    env = get_env(alt_server, "/app/")
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == "/"


def test_outside_mount_point_not_served_by_app(alt_server):
    r = alt_server.get("/other/env")
    assert r.status_code == 404


# ------------------------------------------------- encoded / non-ASCII


def test_percent_encoded_utf8_path(core_server):
    env = get_env(core_server, "/caf%C3%A9")
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9"       # utf-8 bytes seen as latin-1
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/caf\u00e9"
    assert env["REQUEST_URI"] == "/caf%C3%A9"


def test_percent_encoded_space_and_query(core_server):
    env = get_env(core_server, "/a%20b/c?x=%C3%A9&y=a+b")
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=%C3%A9&y=a+b"
    assert env["REQUEST_URI"] == "/a%20b/c?x=%C3%A9&y=a+b"


def test_percent_encoded_under_mount_point(alt_server):
    env = get_env(alt_server, "/app/caf%C3%A9/%E2%82%AC?q=%C3%A9")
    assert env["SCRIPT_NAME"] == "/app"
    assert env["PATH_INFO"] == b"/caf\xc3\xa9/\xe2\x82\xac".decode("latin-1")
    assert env["QUERY_STRING"] == "q=%C3%A9"


def test_latin1_header_value(core_server):
    # A raw request with a byte > 0x7F in a header value: it arrives as the
    # latin-1 character of that byte.
    data = core_server.raw(b"GET /env HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Latin: caf\xe9\r\n"
                           b"Connection: close\r\n\r\n")
    status, headers, _, body = split_response(data)
    assert " 200 " in status, data[:500]
    if headers.get("transfer-encoding") == "chunked":
        body, _ = dechunk(body)
    env = json.loads(body)
    assert env["HTTP_X_LATIN"] == "caf\u00e9"


def test_wsgi_errors_goes_to_error_log(core_server, token):
    mark = core_server.log_mark()
    r = core_server.get(f"/errors?token={token}")
    assert r.status_code == 200
    # As mod_wsgi: an io.TextIOWrapper over the binary mod_wsgi.Log.
    assert r.headers["X-Errors-Type"] == "_io.TextIOWrapper", r.headers
    assert r.headers["X-Errors-Buffer-Type"] == "mod_wsgi.Log", r.headers
    needles = [f"wsgi-errors-{what}-{token}"
               for what in ("text", "bytes", "print", "bytearray", "memoryview", "wl", "wlmv")]
    text = core_server.wait_for_log(mark, *needles)
    for n in needles:
        assert n in text, f"{n} not in the error log:\n{text}"


def test_environ_does_not_carry_over_between_requests(core_server):
    """Values and variables of one request never show in the next (daemon
    processes build each environ from the previous one's template)."""
    for _ in range(3):
        env = get_env(core_server, "/env/a?x=1", headers={"X-Once": "first", "X-Keep": "1"})
        assert env["HTTP_X_ONCE"] == "first" and env["QUERY_STRING"] == "x=1"
        env = get_env(core_server, "/env/b", headers={"X-Keep": "2"})
        assert "HTTP_X_ONCE" not in env, env
        assert env["HTTP_X_KEEP"] == "2" and env["QUERY_STRING"] == ""
        assert env["PATH_INFO"] == "/env/b"
        long = "v" * 1000
        env = get_env(core_server, "/env/c", headers={"X-Long": long})
        assert env["HTTP_X_LONG"] == long
        env = get_env(core_server, "/env/c")
        assert "HTTP_X_LONG" not in env
