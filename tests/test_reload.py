"""WSGIScriptReloading against a real Apache, in both modes: what counts as
a change (the file's modification time against the module's `__mtime__`,
a missing `__mtime__`, the module's own `reload_required(resource)`
callback), what a raising callback does (logged, no reload), and what a
change does: embedded mode re-imports the script in place; a daemon
process restarts and the request that saw the change is answered by the
process replacing it (with its body intact), as mod_wsgi does. The log
lines name the script and the interpreter."""

import os
import pwd
import re

import pytest

from conftest import APACHE_USER, wait_until

FIXTURE = '''\
import json
import os
import sys
import time

import mod_wsgi

VERSION = "v1"
LOAD_ID = "%d-%d" % (os.getpid(), time.time_ns())
FLAG = {flag!r}
{extra}

def application(environ, start_response):
{pre}    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = json.dumps({{
        "version": VERSION,
        "load_id": LOAD_ID,
        "pid": os.getpid(),
        "process_group": mod_wsgi.process_group,
        "application_group": mod_wsgi.application_group,
        "body": environ["wsgi.input"].read(length).decode() if length else "",
    }}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

ONE_SHOT = '''
def reload_required(resource):
    # One reload per flag file: a callback that kept saying True would
    # restart a daemon process on every request.
    if resource == __file__ and os.path.exists(FLAG):
        os.unlink(FLAG)
        return True
    return False
'''

NEVER = '''
def reload_required(resource):
    return False
'''

RAISING = '''
def reload_required(resource):
    raise RuntimeError("reload_required of the raising fixture fails")
'''

STRIP_MTIME = "    sys.modules[__name__].__dict__.pop('__mtime__', None)\n"

# name -> (module-level code, code at the start of each request)
SCRIPTS = {
    "plain": ("", ""),
    "oneshot": (ONE_SHOT, ""),
    "never": (NEVER, ""),
    "raising": (RAISING, ""),
    "nomtime": ("", STRIP_MTIME),
}


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def reload_server(request, servers, ws):
    mode = request.param
    d = ws.new_dir(f"reload-{mode}")
    # The application (user nobody) removes the flag files it finds.
    d.chmod(0o777)
    srv = servers.create(f"reload-{mode}", ws.apps / "core" / "app.wsgi", "event", mode=mode)
    group = f"localhost:{srv.port}" if mode == "daemon" else "%{GLOBAL}"
    lines = [f'<Directory "{d}">', "    Require all granted", "</Directory>"]
    for name, (extra, pre) in SCRIPTS.items():
        path = d / f"{name}.wsgi"
        path.write_text(FIXTURE.format(flag=str(d / f"{name}.flag"), extra=extra, pre=pre))
        path.chmod(0o644)
        lines.append(f'WSGIScriptAlias /{name} "{path}" process-group={group} '
                     "application-group=%{GLOBAL}")
    include = d / "mounts.conf"
    include.write_text("\n".join(lines) + "\n")
    include.chmod(0o644)
    srv.args = ["--mount-point", "/main", "--log-level", "info",
                "--include-file", str(include)]
    srv.setup()
    srv.start()
    srv.dir = d
    yield srv
    srv.stop()


def fetch(srv, name, **kw):
    if "data" in kw:
        r = srv.post(f"/{name}", timeout=30, **kw)
    else:
        r = srv.get(f"/{name}", timeout=30, **kw)
    assert r.status_code == 200, (r.status_code, r.text, srv.error_log_tail())
    return r.json()


def bump(path, version):
    """Rewrites VERSION in `path` and moves its mtime on by 2 s."""
    path.write_text(re.sub(r'VERSION = "v\d+"', f'VERSION = "{version}"', path.read_text()))
    st = path.stat()
    os.utime(path, (st.st_atime + 2, st.st_mtime + 2))


def loads(srv, name, n=6):
    """{pid: {load ids}} over `n` requests."""
    seen = {}
    for _ in range(n):
        j = fetch(srv, name)
        seen.setdefault(j["pid"], set()).add(j["load_id"])
    return seen


def test_initial_load_is_logged_with_the_interpreter(reload_server):
    srv = reload_server
    j = fetch(srv, "plain")
    where = ("of daemon process 'localhost:%d'" % srv.port
             if srv.mode == "daemon" else "in embedded mode")
    text = srv.wait_for_log(0, f"Loading WSGI script '{srv.dir / 'plain.wsgi'}' into main interpreter {where}.")
    assert f"Loading WSGI script '{srv.dir / 'plain.wsgi'}' into main interpreter {where}." in text, text
    assert j["process_group"] == ("localhost:%d" % srv.port if srv.mode == "daemon" else "")
    assert j["application_group"] == ""


def test_unchanged_script_is_not_reloaded(reload_server):
    for name in ("plain", "never"):
        seen = loads(reload_server, name)
        assert all(len(ids) == 1 for ids in seen.values()), (name, seen)


def test_changed_script_is_answered_by_the_new_version(reload_server):
    srv = reload_server
    path = srv.dir / "plain.wsgi"
    before = fetch(srv, "plain")
    mark = srv.log_mark()
    bump(path, "v2")
    # The very request that sees the change gets the new code.
    after = fetch(srv, "plain", data="sent-once")
    assert after["version"] == "v2", after
    assert after["body"] == "sent-once", after
    if srv.mode == "daemon":
        # A new daemon process, as mod_wsgi: the old one restarted.
        assert after["pid"] != before["pid"], (before, after)
        assert after["process_group"] == "localhost:%d" % srv.port
        assert after["application_group"] == ""
        text = srv.wait_for_log(mark, "RWSGI0097")
        assert "RWSGI0097" in text and str(path) in text, text
        assert wait_until(lambda: not os.path.exists(f"/proc/{before['pid']}"), 15), before
    else:
        text = srv.wait_for_log(mark, "RWSGI0096")
        assert f"Reloading WSGI script '{path}' into main interpreter in embedded mode." in text, text
    # And it stays loaded.
    assert all(fetch(srv, "plain")["version"] == "v2" for _ in range(4))
    bump(path, "v1")


def test_reload_required_true_reloads_once(reload_server):
    srv = reload_server
    flag = srv.dir / "oneshot.flag"
    seen = loads(srv, "oneshot")
    flag.write_text("")
    nobody = pwd.getpwnam(APACHE_USER)
    os.chown(flag, nobody.pw_uid, nobody.pw_gid)
    reloaded = None
    for _ in range(20):
        j = fetch(srv, "oneshot")
        if not flag.exists():
            reloaded = j
            break
        seen.setdefault(j["pid"], set()).add(j["load_id"])
    assert reloaded is not None, "the callback never consumed the flag file"
    # The request whose callback said True ran on a freshly loaded module.
    old_ids = set().union(*seen.values())
    assert reloaded["load_id"] not in old_ids, (reloaded, seen)
    if srv.mode == "daemon":
        assert reloaded["pid"] not in seen, (reloaded, seen)
    # The trigger is spent: no further reload.
    again = loads(srv, "oneshot")
    assert reloaded["load_id"] in set().union(*again.values()), (reloaded, again)
    assert all(len(ids) == 1 for ids in again.values()), again


def test_raising_reload_required_is_logged_and_keeps_the_module(reload_server):
    srv = reload_server
    mark = srv.log_mark()
    seen = loads(srv, "raising")
    assert all(len(ids) == 1 for ids in seen.values()), seen
    text = srv.wait_for_log(mark, "RWSGI0098", "RuntimeError: reload_required of the raising fixture fails")
    assert "RWSGI0098" in text, text
    assert "RuntimeError: reload_required of the raising fixture fails" in text, text


def test_missing_mtime_forces_a_reload(reload_server):
    srv = reload_server
    first = fetch(srv, "nomtime")
    # That request removed __mtime__: the next one on the same interpreter
    # gets a fresh module (daemon mode: a fresh process).
    for _ in range(10):
        j = fetch(srv, "nomtime")
        if srv.mode == "daemon" or j["pid"] == first["pid"]:
            break
    if srv.mode == "daemon":
        assert j["pid"] != first["pid"], (first, j)
    else:
        assert j["pid"] == first["pid"], (first, j)
    assert j["load_id"] != first["load_id"], (first, j)


def test_other_scripts_keep_serving_across_a_daemon_restart(reload_server):
    srv = reload_server
    if srv.mode != "daemon":
        pytest.skip("a daemon process restart only")
    path = srv.dir / "plain.wsgi"
    bump(path, "v3")
    assert fetch(srv, "plain")["version"] == "v3"
    # The group's next process serves every script, preloaded or not.
    assert fetch(srv, "never")["process_group"] == "localhost:%d" % srv.port
    r = srv.get("/main/", timeout=30)
    assert r.status_code == 200, (r.status_code, srv.error_log_tail())
    assert fetch(srv, "raising")["version"] == "v1"
    bump(path, "v1")


def test_change_restarts_every_daemon_process_of_the_group(servers, ws):
    """Two daemon processes: each restarts when it meets the change, and
    every request after the change, whichever process it reaches, gets the
    new version (none fails while they are replaced one after the other)."""
    d = ws.new_dir("reload-two")
    path = d / "plain.wsgi"
    path.write_text(FIXTURE.format(flag=str(d / "x.flag"), extra="", pre=""))
    path.chmod(0o644)
    with servers.running("reload-two", path, "event",
                         ["--processes", "2", "--threads", "2"], mode="daemon") as srv:
        before = {srv.get("/", timeout=30).json()["pid"] for _ in range(10)}
        bump(path, "v2")
        after = []
        for i in range(30):
            r = srv.post("/", data=f"body-{i}", timeout=30)
            assert r.status_code == 200, (r.status_code, r.text, srv.error_log_tail())
            after.append(r.json())
        assert all(j["version"] == "v2" for j in after), after
        assert all(j["body"] == f"body-{i}" for i, j in enumerate(after)), after
        assert not before & {j["pid"] for j in after}, (before, after)
