"""rwsgi-express's --application-type paste and static against a real
Apache, as mod_wsgi-express 6.1.1 has them.

paste: the entry point is a Paste Deploy .ini file; the generated
handler.wsgi in the server root loads it with
paste.deploy.loadapp('config:' + path) and is what WSGIScriptAlias points
at; it serves in daemon and embedded mode, and a change to the .ini
reloads the application (its reload_required, as mod_wsgi-express's
handler has). static: the entry point (or, without one, the current
directory) is Apache's document root and there is no WSGI application: a
file is served, a missing one is Apache's 404. A missing .ini, a static
entry point that is no directory, a Python home without PasteDeploy and
--mount-point with static are refused by setup-server, start-server and
doctor with the same message; doctor loads the paste application as
nobody."""

import contextlib
import os
import signal
import subprocess
import time

import pytest
import requests

from conftest import (
    APACHE_GROUP, APACHE_USER, _apache_env, express_path, free_port, pid_alive, port_open,
    python_home, run, wait_until,
)

MODULE_PYTHON = "/usr/bin/python3.11"

PASTE_MODULE = '''\
import json
import os
import sys


def app_factory(global_config, **local_conf):
    greeting = local_conf["greeting"]

    def application(environ, start_response):
        body = json.dumps({
            "greeting": greeting,
            "here": global_config.get("here"),
            "file": global_config.get("__file__"),
            "path_info": environ["PATH_INFO"],
            "process_group": environ.get("mod_wsgi.process_group"),
            "pid": os.getpid(),
            "sys_path": sys.path,
        }).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return application
'''

PASTE_INI = '''\
[app:main]
paste.app_factory = pasteapp:app_factory
greeting = {greeting}
'''

BROKEN_MODULE = '''\
import no_such_module_rwsgi_paste


def app_factory(global_config, **local_conf):
    raise AssertionError("not reached")
'''


def write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)
    return path


def paste_site(ws, greeting="hello from paste", module=PASTE_MODULE):
    """A directory readable by nobody with pasteapp.py and site.ini."""
    d = ws.new_dir("paste-site")
    write(d / "pasteapp.py", module)
    ini = write(d / "site.ini", PASTE_INI.format(greeting=greeting))
    return d, ini


def static_site(ws):
    d = ws.new_dir("static-site")
    (d / "css").mkdir(mode=0o755)
    write(d / "hello.txt", "hello static\n")
    write(d / "css" / "site.css", "body { color: red }\n")
    return d


def setup_server(*args, cwd=None):
    cmd = [str(express_path()), "setup-server", *map(str, args)]
    proc = subprocess.run(cmd, env=_apache_env(), cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)
    proc.out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    return proc


def common_args(ws, name):
    return ["--server-root", ws.new_dir(name) / "root", "--host", "127.0.0.1",
            "--port", str(free_port()), "--python-home", python_home(),
            "--user", APACHE_USER, "--group", APACHE_GROUP]


def doctor(*args):
    proc = subprocess.run([str(express_path()), "doctor", *map(str, args)], env=_apache_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    out = proc.stdout.decode("utf-8", "replace")
    lines = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            lines.setdefault(parts[1], line)
    return proc.returncode, lines, out


# ------------------------------------------------------------------- paste


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_paste_ini_application_serves(servers, ws, mode):
    d, ini = paste_site(ws)
    with servers.running(f"paste-{mode}", ini, mode=mode, args=[
            "--application-type", "paste", "--working-directory", d]) as srv:
        r = srv.get("/some/where")
        assert r.status_code == 200, srv.error_log_tail()
        got = r.json()
        assert got["greeting"] == "hello from paste"
        # Paste Deploy's own defaults: the .ini's directory and path.
        assert got["here"] == str(d) and got["file"] == str(ini), got
        assert got["path_info"] == "/some/where"
        if mode == "daemon":
            assert got["process_group"] == f"localhost:{srv.port}", got
        else:
            assert not got["process_group"], got
        assert str(d) in got["sys_path"], got
        handler = (srv.root / "handler.wsgi").read_text()
        assert f'loadapp("config:" + "{ini}")' in handler, handler
        conf = (srv.root / "httpd.conf").read_text()
        assert f'WSGIScriptAlias / "{srv.root}/handler.wsgi"' in conf, conf

        # As mod_wsgi-express's handler: a changed .ini reloads the
        # application (the daemon process restarts; embedded, a re-import).
        mark = srv.log_mark()
        write(ini, PASTE_INI.format(greeting="hello again"))
        later = time.time() + 5
        os.utime(ini, (later, later))

        def greeting():
            try:
                return srv.get("/").json()["greeting"] == "hello again"
            except (requests.RequestException, ValueError):
                return False
        assert wait_until(greeting, 20, 0.3), srv.log_since(mark)


def test_paste_doctor_loads_the_application(binaries, ws):
    d, ini = paste_site(ws)
    code, lines, out = doctor(ini, "--application-type", "paste", "--working-directory", d,
                              *common_args(ws, "paste-doctor"))
    assert code == 0, out
    assert lines["app"].startswith("OK"), out
    assert f"the Paste Deploy configuration {ini} loads" in lines["app"], out
    assert "as user 'nobody'" in lines["app"], out

    d, ini = paste_site(ws, module=BROKEN_MODULE)
    code, lines, out = doctor(ini, "--application-type", "paste", "--working-directory", d,
                              *common_args(ws, "paste-doctor"))
    assert code == 2, out
    assert lines["app"].startswith("FAIL") and "RWSGI0152" in lines["app"], out
    assert "ModuleNotFoundError: No module named 'no_such_module_rwsgi_paste'" in lines["app"], out


def test_paste_needs_pastedeploy_in_the_python_home(binaries, ws):
    d, ini = paste_site(ws)
    venv = ws.new_dir("paste-venv") / "venv"
    made = run([MODULE_PYTHON, "-m", "venv", "--without-pip", venv], timeout=120)
    assert made.returncode == 0, made.out
    args = common_args(ws, "paste-nopaste")
    args[args.index("--python-home") + 1] = venv
    p = setup_server(ini, "--application-type", "paste", "--working-directory", d, *args)
    assert p.returncode == 1, p.out
    assert "--application-type paste requires the PasteDeploy package: install it with " \
           "'pip install PasteDeploy'" in p.out, p.out


# ------------------------------------------------------------------ static


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_static_directory_is_the_document_root(servers, ws, mode):
    d = static_site(ws)
    with servers.running(f"static-{mode}", d, mode=mode,
                         args=["--application-type", "static"]) as srv:
        r = srv.get("/hello.txt")
        assert r.status_code == 200 and r.text == "hello static\n", srv.error_log_tail()
        assert r.headers["Content-Type"].startswith("text/plain")
        r = srv.get("/css/site.css")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/css")
        # No application answers the rest: Apache's 404.
        r = srv.get("/missing.txt")
        assert r.status_code == 404, r.text
        assert srv.get("/css/nope.css").status_code == 404
        conf = (srv.root / "httpd.conf").read_text()
        assert f'DocumentRoot "{d}"' in conf, conf
        assert "WSGIScriptAlias" not in conf and "Define MOD_WSGI_STATIC_ONLY" in conf, conf
        assert not (srv.root / "handler.wsgi").exists()


MD_HANDLER = '''\
import os


def application(environ, start_response):
    with open(environ["SCRIPT_FILENAME"], "rb") as f:
        body = b"rendered: " + f.read()
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid())),
                              ("X-Process-Group", environ.get("mod_wsgi.process_group", ""))])
    return [body]
'''


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_static_with_add_handler_runs_the_handler(servers, ws, mode):
    """--application-type static with --add-handler: the document root's
    files with the extension go to the handler script (in the daemon
    group in daemon mode, as mod_wsgi-express's resource.wsgi), the
    others are Apache's static files; there is still no application."""
    d = static_site(ws)
    write(d / "page.md", "# title\n")
    md = write(ws.new_dir("static-handler-scripts") / "md.wsgi", MD_HANDLER)
    with servers.running(f"st-h-{mode}", d, mode=mode,
                         args=["--application-type", "static", "--add-handler", ".md", md]) as srv:
        r = srv.get("/page.md")
        assert r.status_code == 200 and r.text == "rendered: # title\n", srv.error_log_tail()
        if mode == "daemon":
            assert r.headers["X-Process-Group"].startswith("localhost:"), r.headers
            title = open(f"/proc/{r.headers['X-Pid']}/cmdline", "rb").read()
            assert title.startswith(b"(wsgi:localhost:"), title
        else:
            assert r.headers["X-Process-Group"] == ""
        r = srv.get("/hello.txt")
        assert r.status_code == 200 and r.text == "hello static\n"
        assert srv.get("/missing.txt").status_code == 404
        conf = (srv.root / "httpd.conf").read_text()
        assert "WSGIScriptAlias" not in conf and "AddHandler wsgi-resource .md" in conf, conf
        assert ":error]" not in srv.error_log(), srv.error_log_tail()


@contextlib.contextmanager
def start_server(cwd, *args):
    """rwsgi-express start-server ARGS in the foreground, from cwd; yields
    the port once it answers, stops it (SIGTERM) and waits for it."""
    port = int(args[list(args).index("--port") + 1])
    proc = subprocess.Popen([str(express_path()), "start-server", *map(str, args)], cwd=cwd,
                            env=_apache_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert wait_until(lambda: port_open(port) or proc.poll() is not None, 30)
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        yield port
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert wait_until(lambda: not pid_alive(proc.pid), 10)


def test_static_start_server_serves_the_current_directory(binaries, ws):
    """start-server --application-type static without an entry point
    serves the current directory, as mod_wsgi-express does."""
    d = static_site(ws)
    with start_server(d, "--application-type", "static", *common_args(ws, "static-start")) as port:
        r = requests.get(f"http://127.0.0.1:{port}/hello.txt", timeout=30)
        assert r.status_code == 200 and r.text == "hello static\n"
        assert requests.get(f"http://127.0.0.1:{port}/gone.txt", timeout=30).status_code == 404


def test_paste_start_server_with_a_relative_ini(binaries, ws):
    """start-server --application-type paste site.ini, run from the .ini's
    directory (the way mod_wsgi-express is usually started): the relative
    path is resolved against the current directory, the application is
    served from the daemon group in the foreground."""
    d, ini = paste_site(ws)
    with start_server(d, "site.ini", "--application-type", "paste",
                      *common_args(ws, "paste-start")) as port:
        def served():
            try:
                return requests.get(f"http://127.0.0.1:{port}/x", timeout=30).json()
            except (requests.RequestException, ValueError):
                return None
        assert wait_until(served, 30, 0.3)
        got = served()
        assert got["greeting"] == "hello from paste" and got["file"] == str(ini), got
        assert got["process_group"] == f"localhost:{port}", got
        assert str(d) in got["sys_path"], got


def test_static_doctor_has_no_application_to_import(binaries, ws):
    d = static_site(ws)
    code, lines, out = doctor(d, "--application-type", "static", *common_args(ws, "static-doctor"))
    assert code == 0, out
    assert lines["app"].startswith("OK") and "no WSGI application" in lines["app"], out


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("case", ["missing-ini", "ini-is-directory", "static-file",
                                  "static-missing", "static-mount-point"])
def test_refused_entry_points(binaries, ws, case):
    d = ws.new_dir("app-types-errors")
    some_file = write(d / "file.txt", "not a directory\n")
    entry, extra, needle = {
        "missing-ini": (d / "missing.ini", ["--application-type", "paste"],
                        f"Paste Deploy configuration file {d / 'missing.ini'} does not exist"),
        "ini-is-directory": (d, ["--application-type", "paste"],
                             f"Paste Deploy configuration file {d} does not exist (or is not a file)"),
        "static-file": (some_file, ["--application-type", "static"],
                        f"--application-type static: {some_file} is not a directory"),
        "static-missing": (d / "nowhere", ["--application-type", "static"],
                           f"--application-type static: {d / 'nowhere'} is not a directory"),
        "static-mount-point": (d, ["--application-type", "static", "--mount-point", "/site"],
                               "--mount-point /site has no effect with --application-type static"),
    }[case]
    args = common_args(ws, "app-types-errors")
    p = setup_server(entry, *extra, *args)
    assert p.returncode == 1, p.out
    assert needle in p.out, p.out
    root = args[args.index("--server-root") + 1]
    assert not (root / "httpd.conf").exists()
    p = run([express_path(), "start-server", entry, *extra, *args])
    assert p.returncode == 1 and needle in p.out, p.out
    code, lines, out = doctor(entry, *extra, *args)
    assert code == 2 and lines["options"].startswith("FAIL"), out
    assert needle in lines["options"], out
