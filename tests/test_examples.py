"""The example application under examples/ works as its README says."""

import shutil

import pytest

from conftest import REPO, make_world_readable


@pytest.fixture(scope="module")
def example_server(servers, ws):
    # Copy: the repository may not be readable by Apache's user.
    dest = ws.new_dir("examples") / "flask_app"
    shutil.copytree(REPO / "examples" / "flask_app", dest,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    make_world_readable(dest)
    srv = servers.start("example-flask", dest / "app.wsgi")
    yield srv
    srv.stop()


def test_page(example_server):
    r = example_server.get("/")
    assert r.status_code == 200, example_server.error_log_tail()
    assert "Hello from Flask on rwsgi" in r.text
    assert 'href="/api/info"' in r.text


def test_json_view(example_server):
    r = example_server.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    assert info["path_info"] == "/api/info"
    assert info["script_name"] == ""
    assert info["mod_wsgi_version"]


def test_form(example_server):
    r = example_server.get("/greet")
    assert r.status_code == 200
    assert "<form" in r.text and 'id="greeting"' not in r.text
    r = example_server.post("/greet", data={"name": "<b>Ada</b>"})
    assert r.status_code == 200
    assert "Hello, &lt;b&gt;Ada&lt;/b&gt;!" in r.text
