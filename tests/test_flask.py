"""A real Flask application behind the module (mounted at /flask)."""

import hashlib
import random

import pytest
import requests


@pytest.fixture(scope="module")
def flask_server(servers, ws, mpm):
    app_dir = ws.apps / "flask_app"
    srv = servers.start("flask", app_dir / "app.wsgi", mpm,
                        ["--mount-point", "/flask", "--python-path", app_dir])
    yield srv
    srv.stop()


def test_index(flask_server):
    r = flask_server.get("/flask/")
    assert r.status_code == 200, flask_server.error_log_tail()
    assert "rwsgi flask test app" in r.text
    assert r.headers["Content-Type"].startswith("text/html")


def test_form_post_round_trip(flask_server):
    r = flask_server.get("/flask/form")
    assert r.status_code == 200
    assert "<form" in r.text
    data = {"name": "Zoë & co", "item": ["a", "b=c", "d&e"],
            "text": "line1\r\nline2 ünïcode €"}
    r = flask_server.post("/flask/form", data=data)
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Zoë & co", "items": ["a", "b=c", "d&e"],
                        "text": "line1\r\nline2 ünïcode €"}


def test_multipart_upload(flask_server):
    payload = random.Random(11).randbytes(5 * 1024 * 1024 + 3)
    r = flask_server.post("/flask/upload",
                          files={"file": ("blob.bin", payload, "application/octet-stream")},
                          data={"note": "hello"})
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"filename": "blob.bin", "size": len(payload),
                        "sha256": hashlib.sha256(payload).hexdigest(), "note": "hello"}


def test_session_login(flask_server):
    with requests.Session() as s:
        r = s.get(flask_server.url("/flask/whoami"), timeout=30)
        assert r.json() == {"user": None}
        r = s.post(flask_server.url("/flask/login"), data={"user": "alice"}, timeout=30)
        # The 302 was followed to /flask/whoami, which sees the session.
        assert r.status_code == 200
        assert [h.status_code for h in r.history] == [302]
        assert r.url == flask_server.url("/flask/whoami")
        assert r.json() == {"user": "alice"}
        assert "session" in s.cookies
        r = s.get(flask_server.url("/flask/whoami"), timeout=30)
        assert r.json() == {"user": "alice"}
        s.post(flask_server.url("/flask/logout"), timeout=30)
        assert s.get(flask_server.url("/flask/whoami"), timeout=30).json() == {"user": None}
    # Another client has no session.
    assert flask_server.get("/flask/whoami").json() == {"user": None}


def test_redirect(flask_server):
    r = flask_server.get("/flask/old", allow_redirects=False)
    assert r.status_code == 302
    assert r.headers["Location"].endswith("/flask/target?x=1")
    r = flask_server.get("/flask/old")
    assert r.status_code == 200
    assert r.json() == {"reached": True, "x": "1", "script_root": "/flask"}
    assert r.url == flask_server.url("/flask/target?x=1")


def test_json_endpoints(flask_server):
    payload = {"a": [1, 2, 3], "b": {"c": "é"}, "n": None}
    r = flask_server.post("/flask/api/echo", json=payload)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"received": payload, "method": "POST",
                        "content_type": "application/json"}
    r = flask_server.get("/flask/api/info?x=1&y=two")
    assert r.json() == {"path": "/api/info", "args": {"x": "1", "y": "two"},
                        "remote_addr": "127.0.0.1",
                        "url_root": flask_server.url("/flask/")}


def test_flask_404(flask_server):
    r = flask_server.get("/flask/no-such-page")
    assert r.status_code == 404
    assert "Not Found" in r.text
