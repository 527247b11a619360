"""Application groups as sub-interpreters, in both modes, as mod_wsgi:
`%{GLOBAL}` is the main interpreter, any other group its own interpreter
in each process (separate `sys`, modules and globals), named in
`mod_wsgi.application_group`; `%{RESOURCE}` (the default) names one per
mount point; a `WSGIImportScript` naming a group imports into that group's
interpreter at start; exceptions and output of a sub-interpreter reach the
error log with their traceback; a changed script is reloaded there too."""

import os
import re

import pytest

from conftest import wait_until

APP = '''\
import json
import os
import sys

import mod_wsgi

# Per interpreter: each has its own sys module.
sys.__dict__.setdefault("rwsgi_loads", []).append(__name__)
COUNT = [0]
VERSION = "v1"


def application(environ, start_response):
    COUNT[0] += 1
    if environ.get("QUERY_STRING") == "fail":
        print("printed from", mod_wsgi.application_group)
        raise ValueError("raised in group " + mod_wsgi.application_group)
    body = json.dumps({
        "module_group": mod_wsgi.application_group,
        "environ_group": environ["mod_wsgi.application_group"],
        "loads": len(sys.rwsgi_loads),
        "count": COUNT[0],
        "imported": getattr(sys, "rwsgi_imported", None),
        "pid": os.getpid(),
        "version": VERSION,
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

DISPATCH = '''\
import mod_wsgi


def application_group(environ):
    # The group this dispatch script itself runs in names the request's.
    return "chosen-by-" + (mod_wsgi.application_group or "main")
'''

IMPORT = '''\
import sys
import mod_wsgi
sys.rwsgi_imported = mod_wsgi.application_group
'''


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def sub_server(request, servers, ws):
    mode = request.param
    d = ws.new_dir(f"subinterp-{mode}")
    app = d / "app.wsgi"
    app.write_text(APP)
    (d / "import.py").write_text(IMPORT)
    (d / "dispatch.py").write_text(DISPATCH)
    for f in d.iterdir():
        f.chmod(0o644)
    # Embedded: one prefork child, so every request meets the same
    # interpreters.
    mpm = "prefork" if mode == "embedded" else "event"
    srv = servers.create(f"subinterp-{mode}", app, mpm, mode=mode)
    group = f"localhost:{srv.port}" if mode == "daemon" else "%{GLOBAL}"
    mounts = {"/main": "%{GLOBAL}", "/alpha": "alpha", "/beta": "beta",
              "/alpha2": "alpha", "/res": "%{RESOURCE}", "/disp": "%{GLOBAL}"}
    lines = [f'<Directory "{d}">', "    Require all granted", "</Directory>",
             f'WSGIImportScript "{d / "import.py"}" process-group={group} application-group=alpha']
    for mount, app_group in mounts.items():
        lines.append(f'WSGIScriptAlias {mount} "{app}" process-group={group} '
                     f"application-group={app_group}")
    lines += ["<Location /disp>",
              f'    WSGIDispatchScript "{d / "dispatch.py"}" application-group=disp',
              "</Location>"]
    include = d / "mounts.conf"
    include.write_text("\n".join(lines) + "\n")
    include.chmod(0o644)
    srv.args = ["--mount-point", "/other", "--log-level", "info", "--processes", "1",
                "--include-file", str(include)]
    if mode == "embedded":
        srv.args += ["--max-clients", "1"]
    srv.setup()
    srv.start()
    srv.dir = d
    yield srv
    srv.stop()


def get(srv, path):
    r = srv.get(path, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text, srv.error_log_tail())
    return r.json()


def test_groups_are_separate_interpreters(sub_server):
    srv = sub_server
    main = get(srv, "/main")
    alpha = get(srv, "/alpha")
    beta = get(srv, "/beta")
    assert (main["module_group"], alpha["module_group"], beta["module_group"]) == ("", "alpha", "beta")
    assert (main["environ_group"], alpha["environ_group"], beta["environ_group"]) == ("", "alpha", "beta")
    # Each interpreter loaded the script once into its own sys: one load
    # each (the main interpreter also has the launcher's /other mount's).
    assert alpha["loads"] == 1 and beta["loads"] == 1, (alpha, beta)
    # Their globals are their own.
    again = get(srv, "/alpha")
    assert again["count"] == alpha["count"] + 1
    assert get(srv, "/beta")["count"] == beta["count"] + 1
    assert get(srv, "/main")["count"] == main["count"] + 1
    text = srv.wait_for_log(0, "RWSGI0099")
    where = ("of daemon process 'localhost:%d'" % srv.port
             if srv.mode == "daemon" else "in embedded mode")
    assert f"RWSGI0099: created the sub-interpreter 'beta' {where}" in text, text
    assert f"into sub-interpreter 'beta' {where}." in text, text


def test_one_group_two_mounts_share_the_interpreter(sub_server):
    srv = sub_server
    a = get(srv, "/alpha")
    b = get(srv, "/alpha2")
    assert b["module_group"] == "alpha"
    # Same interpreter, same script file: the same module and its globals.
    assert b["count"] == a["count"] + 1, (a, b)
    assert b["loads"] == a["loads"] == 1


def test_resource_group_is_named_by_the_mount(sub_server):
    srv = sub_server
    j = get(srv, "/res")
    assert re.fullmatch(r"[^|]+:%d\|/res" % srv.port, j["module_group"]), j
    assert j["environ_group"] == j["module_group"]


def test_import_script_runs_in_its_group(sub_server):
    srv = sub_server
    assert get(srv, "/alpha")["imported"] == "alpha"
    assert get(srv, "/beta")["imported"] is None
    assert get(srv, "/main")["imported"] is None
    text = srv.error_log()
    assert f"WSGI script '{srv.dir / 'import.py'}' into sub-interpreter 'alpha'" in text, text


def test_exception_in_sub_interpreter_is_logged_with_traceback(sub_server):
    srv = sub_server
    mark = srv.log_mark()
    r = srv.get("/beta?fail", timeout=30)
    assert r.status_code == 500
    text = srv.wait_for_log(mark, "ValueError: raised in group beta", "printed from beta")
    assert "ValueError: raised in group beta" in text, text
    assert "Traceback (most recent call last):" in text, text
    assert "printed from beta" in text, text
    # The interpreter serves on.
    assert get(srv, "/beta")["module_group"] == "beta"


def test_changed_script_reloads_in_the_sub_interpreter(sub_server):
    srv = sub_server
    app = srv.dir / "app.wsgi"
    before = get(srv, "/beta")
    app.write_text(APP.replace('VERSION = "v1"', 'VERSION = "v2"'))
    st = app.stat()
    os.utime(app, (st.st_atime + 2, st.st_mtime + 2))
    try:
        after = get(srv, "/beta")
        assert after["version"] == "v2" and after["module_group"] == "beta", after
        if srv.mode == "daemon":
            assert after["pid"] != before["pid"]
            assert wait_until(lambda: not os.path.exists(f"/proc/{before['pid']}"), 15)
        else:
            assert after["pid"] == before["pid"]
        # The other groups see the new file too.
        assert get(srv, "/alpha")["version"] == "v2"
    finally:
        app.write_text(APP)
        st = app.stat()
        os.utime(app, (st.st_atime + 4, st.st_mtime + 4))


def test_dispatch_script_runs_in_its_own_group(sub_server):
    srv = sub_server
    j = get(srv, "/disp")
    assert j["module_group"] == "chosen-by-disp", j
    assert j["environ_group"] == "chosen-by-disp", j
