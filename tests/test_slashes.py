"""Repeated slashes with `MergeSlashes Off`, in both modes, as mod_wsgi:
a `WSGIScriptAlias` URL path matches runs of `/` in the request (as
mod_alias matches), `SCRIPT_NAME` and `PATH_INFO` come with each run made
one `/`, and `REQUEST_URI` keeps what the client sent."""

import json

import pytest

from conftest import dechunk, split_response


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def slash_server(request, servers, ws):
    mode = request.param
    d = ws.new_dir(f"slashes-{mode}")
    script = ws.apps / "core" / "app.wsgi"
    srv = servers.create(f"slashes-{mode}", script, "event", mode=mode)
    group = f"localhost:{srv.port}" if mode == "daemon" else "%{GLOBAL}"
    include = d / "slashes.conf"
    include.write_text(
        "MergeSlashes Off\n"
        f'WSGIScriptAlias //slashy "{script}" process-group={group} application-group=%{{GLOBAL}}\n')
    include.chmod(0o644)
    srv.args = ["--mount-point", "/app", "--include-file", str(include)]
    srv.setup()
    srv.start()
    yield srv
    srv.stop()


def environ(srv, path):
    """The environ the application saw for `path`, sent as is."""
    raw = srv.raw(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    status, headers, _, body = split_response(raw)
    assert " 200 " in status, (path, status, body[:300], srv.error_log_tail())
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return json.loads(body)


@pytest.mark.parametrize("path, script_name, path_info", [
    ("/app/a//b", "/app", "/a/b"),
    ("/app//a/b", "/app", "/a/b"),
    ("/app/a///b///c", "/app", "/a/b/c"),
    ("/app/a//", "/app", "/a/"),
    ("/app//", "/app", "/"),
    # The mount point matches runs of slashes too; SCRIPT_NAME gets one.
    ("//app/x", "/app", "/x"),
    ("//slashy", "/slashy", ""),
    ("//slashy/q//r", "/slashy", "/q/r"),
    ("/slashy/q", "/slashy", "/q"),
    ("///slashy", "/slashy", ""),
])
def test_repeated_slashes(slash_server, path, script_name, path_info):
    env = environ(slash_server, path)
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (script_name, path_info), env
    assert env["REQUEST_URI"] == path


def test_prefix_still_ends_at_a_segment(slash_server):
    # /slashyx is not under //slashy: the main mount does not take it
    # either, so Apache answers 404.
    raw = slash_server.raw(b"GET /slashyx HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert " 404 " in split_response(raw)[0], raw[:200]
