"""A real Django project behind the module: CSRF-protected forms and uploads."""

import hashlib
import random
import re

import pytest
import requests


@pytest.fixture(scope="module")
def django_server(servers, ws, mpm):
    site = ws.apps / "django_site"
    srv = servers.start("django", site / "testsite" / "wsgi.py", mpm,
                        ["--python-path", site])
    yield srv
    srv.stop()


TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def get_form(session, srv, path="/form/"):
    r = session.get(srv.url(path), timeout=30)
    assert r.status_code == 200, f"{r.status_code} {r.text[:1000]}\n{srv.error_log_tail()}"
    m = TOKEN_RE.search(r.text)
    assert m, r.text
    assert "csrftoken" in session.cookies
    return m.group(1)


def test_index(django_server):
    r = django_server.get("/")
    assert r.status_code == 200, django_server.error_log_tail()
    assert "rwsgi django test site" in r.text


def test_info(django_server):
    r = django_server.get("/info/")
    assert r.json() == {"path": "/info/", "path_info": "/info/", "script_name": "",
                        "host": f"127.0.0.1:{django_server.port}", "method": "GET"}


def test_append_slash_redirect(django_server):
    r = django_server.get("/info", allow_redirects=False)
    assert r.status_code == 301
    assert r.headers["Location"].endswith("/info/")


def test_csrf_form_post_with_token(django_server):
    with requests.Session() as s:
        token = get_form(s, django_server)
        r = s.post(django_server.url("/form/"),
                   data={"csrfmiddlewaretoken": token, "name": "Zoë"}, timeout=30)
        assert r.status_code == 200, r.text[:1000]
        assert r.json() == {"name": "Zoë", "ok": True}


def test_csrf_post_without_token_forbidden(django_server):
    # No cookie, no token.
    r = django_server.post("/form/", data={"name": "mallory"})
    assert r.status_code == 403
    # Cookie but no token in the form.
    with requests.Session() as s:
        get_form(s, django_server)
        r = s.post(django_server.url("/form/"), data={"name": "mallory"}, timeout=30)
        assert r.status_code == 403
        # Wrong token.
        r = s.post(django_server.url("/form/"),
                   data={"name": "mallory", "csrfmiddlewaretoken": "x" * 64}, timeout=30)
        assert r.status_code == 403


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 7])
def test_file_upload(django_server, size):
    payload = random.Random(size).randbytes(size)
    with requests.Session() as s:
        token = get_form(s, django_server, "/upload/")
        r = s.post(django_server.url("/upload/"),
                   data={"csrfmiddlewaretoken": token},
                   files={"file": ("upload.bin", payload, "application/octet-stream")},
                   timeout=60)
    assert r.status_code == 200, r.text[:1000]
    res = r.json()
    assert res["name"] == "upload.bin"
    assert res["size"] == size
    assert res["sha256"] == hashlib.sha256(payload).hexdigest()
    # Large uploads are spooled to a temporary file by Django.
    expected = "TemporaryUploadedFile" if size > 1024 * 1024 else "InMemoryUploadedFile"
    assert res["handler"] == expected


def test_django_404(django_server):
    r = django_server.get("/no/such/page/")
    assert r.status_code == 404
