"""rwsgi-express's daemon-mode options against a real Apache: the generated
httpd.conf, `apachectl configtest`, the server answering, the process name,
--reload-on-changes restarting the daemon process when the script or a
module it imported changes, --disable-reloading winning over it, and the
WSGISocketPrefix / WSGIIgnoreActivity directives (skipped while the module
does not have them)."""

import os
import pwd
import re
import time

import pytest

from conftest import APACHE_USER, wait_until

APP = '''\
import json
import os
import helper

SCRIPT = "script-1"


def application(environ, start_response):
    body = json.dumps({
        "script": SCRIPT,
        "helper": helper.VALUE,
        "pid": os.getpid(),
        "group": environ.get("mod_wsgi.process_group"),
        "eggs": os.environ.get("PYTHON_EGG_CACHE"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def write(path, text):
    path.write_text(text)
    path.chmod(0o644)


@pytest.fixture
def app(ws):
    """A script importing a helper module, in a directory of its own."""
    d = ws.new_dir("express-daemon")
    write(d / "helper.py", 'VALUE = "helper-1"\n')
    write(d / "app.wsgi", APP)
    return d / "app.wsgi"


def bump(path, old, new):
    """Rewrites `old` to `new` in `path` and moves its mtime on, so the
    change is seen whatever the file system's timestamp granularity."""
    path.write_text(path.read_text().replace(old, new))
    st = path.stat()
    os.utime(path, (st.st_atime + 2, st.st_mtime + 2))


def daemon_line(conf):
    lines = [l for l in conf.splitlines() if l.startswith("WSGIDaemonProcess ")]
    assert len(lines) == 1, conf
    return lines[0]


def unknown_directive(srv, directive):
    """The module refuses `directive` (being added to it): configtest says so."""
    proc = srv.apachectl("configtest")
    return proc.returncode != 0 and f"Invalid command '{directive}'" in proc.out


# ------------------------------------------------------ options and banner


def test_daemon_options_reach_httpd_conf_and_server_answers(servers, ws, app):
    eggs = ws.new_dir("eggs-parent") / "eggs"
    srv = servers.create("daemon-opts", app, mode="daemon", args=[
        "--process-group", "site", "--process-name", "rwsgi-test-httpd",
        "--interrupt-timeout", "5", "--queue-timeout", "30", "--socket-timeout", "50",
        "--startup-timeout", "20", "--deadlock-timeout", "90", "--eviction-timeout", "3",
        "--inactivity-timeout", "3600", "--restart-interval", "86400",
        "--cpu-time-limit", "3600", "--daemon-backlog", "64",
        "--header-buffer-size", "65536", "--response-buffer-size", "1048576",
        "--response-socket-timeout", "40", "--send-buffer-size", "65536",
        "--receive-buffer-size", "65536", "--python-eggs", eggs,
        "--max-clients", "20", "--initial-workers", "0.5",
        "--minimum-spare-workers", "0.5", "--maximum-spare-workers", "1",
    ])
    setup = srv.setup()
    out = setup.out
    for line in ["Operating Mode     : daemon", "Process Group      : site",
                 "Request Capacity   : 5 (1 process * 5 threads)",
                 "Request Timeout    : 60 (seconds)", "Interrupt Timeout  : 5 (seconds)",
                 "Startup Timeout    : 20 (seconds)", "Queue Backlog      : 64 (connections)",
                 "Queue Timeout      : 30 (seconds)", "Server Backlog     : 500 (connections)"]:
        assert line in out, out
    conf = (srv.root / "httpd.conf").read_text()
    line = daemon_line(conf)
    assert line.startswith("WSGIDaemonProcess site processes=1 threads=5 display-name=%{GROUP} home="), line
    for opt in [f'python-eggs="{eggs}"', "listen-backlog=64", "queue-timeout=30",
                "socket-timeout=50", "connect-timeout=15", "request-timeout=60",
                "interrupt-timeout=5", "inactivity-timeout=3600", "startup-timeout=20",
                "deadlock-timeout=90", "graceful-timeout=15", "eviction-timeout=3",
                "restart-interval=86400", "cpu-time-limit=3600", "shutdown-timeout=5",
                "send-buffer-size=65536", "receive-buffer-size=65536",
                "header-buffer-size=65536", "response-buffer-size=1048576",
                "response-socket-timeout=40"]:
        assert f" {opt}" in line, (opt, line)
    assert "maximum-requests" not in line, line
    assert re.search(r"^WSGIScriptAlias / .* process-group=site$", conf, re.M), conf
    # 20 clients = 2 relaying children of 10 threads (as mod_wsgi-express):
    # half of them up front and spare.
    for directive in ["Timeout 50", "StartServers 1", "ThreadsPerChild 10",
                      "MinSpareThreads 10", "MaxSpareThreads 20", "MaxRequestWorkers 20"]:
        assert re.search(rf"^{directive}$", conf, re.M), (directive, conf)
    # The eggs directory is made for the application's user.
    assert eggs.is_dir() and eggs.stat().st_uid == pwd.getpwnam(APACHE_USER).pw_uid
    proc = srv.apachectl("configtest")
    assert proc.returncode == 0, proc.out
    srv.start()
    try:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        info = r.json()
        assert info["group"] == "site"
        assert info["pid"] != srv.pid()
        # apachectl names Apache with --process-name (bash's exec -a).
        argv0 = open(f"/proc/{srv.pid()}/cmdline", "rb").read().split(b"\0")[0]
        assert argv0 == b"rwsgi-test-httpd", argv0
        title = open(f"/proc/{info['pid']}/cmdline", "rb").read()
        assert title.startswith(b"(wsgi:site)"), title
    finally:
        srv.stop()


def test_default_daemon_line_and_process_name(servers, app):
    srv = servers.create("daemon-defaults", app, mode="daemon")
    srv.setup()
    conf = (srv.root / "httpd.conf").read_text()
    assert daemon_line(conf) == (
        f"WSGIDaemonProcess localhost:{srv.port} processes=1 threads=5 display-name=%{{GROUP}} "
        f'home="{app.parent}" '
        "listen-backlog=100 queue-timeout=45 socket-timeout=60 connect-timeout=15 "
        "request-timeout=60 startup-timeout=15 deadlock-timeout=60 graceful-timeout=15 "
        "shutdown-timeout=5 response-flush-delay=5")
    for absent in ("WSGIImportScript", "WSGISocketPrefix", "WSGIIgnoreActivity",
                   "WSGIScriptReloading"):
        assert absent not in conf, absent
    assert (srv.root / "apachectl").read_text().startswith("#!/bin/bash\n")
    srv.start()
    try:
        assert srv.get("/").status_code == 200, srv.error_log_tail()
        argv0 = open(f"/proc/{srv.pid()}/cmdline", "rb").read().split(b"\0")[0]
        assert argv0 == b"apache2 (rwsgi-express)", argv0
    finally:
        srv.stop()


# ------------------------------------------------------ --reload-on-changes


def test_reload_on_changes_restarts_the_daemon(servers, app):
    with servers.running("reload-changes", app, mode="daemon",
                         args=["--reload-on-changes", "--log-level", "info"]) as srv:
        conf = (srv.root / "httpd.conf").read_text()
        assert f'WSGIImportScript "{srv.root}/reloader.py" process-group=localhost:{srv.port} ' \
               "application-group=%{GLOBAL}" in conf, conf
        first = srv.get("/").json()
        assert (first["script"], first["helper"]) == ("script-1", "helper-1")
        mark = srv.log_mark()
        # Let the monitor take its first look before anything changes.
        assert "watching" in srv.wait_for_log(0, "rwsgi-express reloader", "watching")
        time.sleep(1.5)

        # A module the script imported: only the monitor can pick that up.
        bump(app.parent / "helper.py", "helper-1", "helper-2")
        seen = []

        def restarted():
            info = srv.get("/").json()
            seen.append(info)
            return info["helper"] == "helper-2" and info["pid"] != first["pid"]
        assert wait_until(restarted, 10, 0.2), (seen[-3:], srv.error_log_tail())
        log = srv.wait_for_log(mark, "helper.py changed")
        assert f"{app.parent / 'helper.py'} changed: restarting this daemon process" in log, log
        second = seen[-1]

        # The script itself.
        time.sleep(1.5)
        bump(app, "script-1", "script-2")
        seen.clear()

        def restarted_again():
            info = srv.get("/").json()
            seen.append(info)
            return info["script"] == "script-2" and info["pid"] not in (first["pid"], second["pid"])
        assert wait_until(restarted_again, 10, 0.2), (seen[-3:], srv.error_log_tail())
        # Whichever sees it first: the monitor, or the request path
        # (WSGIScriptReloading restarts the daemon when the script changes).
        log = srv.wait_for_log(mark, "app.wsgi")
        assert f"{app} changed" in log or "RWSGI0097" in log and f"'{app}' changed" in log, log


def test_disable_reloading_wins_over_reload_on_changes(servers, app):
    srv = servers.create("no-reload", app, mode="daemon",
                         args=["--reload-on-changes", "--disable-reloading"])
    setup = srv.setup()
    assert "--reload-on-changes has no effect with --disable-reloading" in setup.out, setup.out
    conf = (srv.root / "httpd.conf").read_text()
    assert "WSGIImportScript" not in conf and "WSGIScriptReloading Off" in conf, conf
    srv.start()
    try:
        first = srv.get("/").json()
        bump(app, "script-1", "script-2")
        bump(app.parent / "helper.py", "helper-1", "helper-2")
        time.sleep(2.5)
        assert srv.get("/").json() == first
    finally:
        srv.stop()


# ---------------------------------------- WSGISocketPrefix, WSGIIgnoreActivity


def test_socket_prefix(servers, ws, app):
    sockets = ws.new_dir("sockets")
    srv = servers.create("socket-prefix", app, mode="daemon",
                         args=["--socket-prefix", sockets])
    srv.setup()
    conf = (srv.root / "httpd.conf").read_text()
    assert f'WSGISocketPrefix "{sockets}/wsgi"' in conf, conf
    if unknown_directive(srv, "WSGISocketPrefix"):
        pytest.skip("the module has no WSGISocketPrefix yet")
    assert srv.apachectl("configtest").returncode == 0
    srv.start()
    try:
        assert srv.get("/").status_code == 200, srv.error_log_tail()
        # mod_wsgi names the sockets <prefix>.<...>.sock.
        found = [p.name for p in sockets.rglob("*") if p.is_socket()]
        assert found and all(n.startswith("wsgi") for n in found), (found, srv.error_log_tail())
    finally:
        srv.stop()


def test_ignore_activity(servers, app):
    srv = servers.create("ignore-activity", app, mode="daemon", args=[
        "--ignore-activity", "/health", "--ignore-activity", "/ping"])
    srv.setup()
    conf = (srv.root / "httpd.conf").read_text()
    for url in ("/health", "/ping"):
        assert f'<Location "{url}">\n    WSGIIgnoreActivity On\n</Location>' in conf, conf
    if unknown_directive(srv, "WSGIIgnoreActivity"):
        pytest.skip("the module has no WSGIIgnoreActivity yet")
    assert srv.apachectl("configtest").returncode == 0
    srv.start()
    try:
        assert srv.get("/health").status_code == 200, srv.error_log_tail()
        assert srv.get("/").status_code == 200
    finally:
        srv.stop()


SERVICE = '''
import os, sys, time
MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ticks")
n = 0
while True:
    n += 1
    with open(MARK, "w") as f:
        f.write(f"{os.getpid()} {os.getuid()} {n}")
    print("service-tick", n, file=sys.stderr, flush=True)
    time.sleep(0.2)
'''


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_service_script_runs_a_managed_service(servers, ws, mode):
    """--service-script NAME SCRIPT (mod_wsgi-express's managed services): a
    daemon process group service:NAME with threads=0 runs the script (here
    a loop) as --service-user, logging to --service-log-file; the
    application is served as usual, and a stop ends the service."""
    d = ws.new_dir("svc")
    os.chown(d, pwd.getpwnam(APACHE_USER).pw_uid, -1)
    (d / "tasks.py").write_text(SERVICE)
    with servers.running(f"service-{mode}", ws.apps / "daemon" / "app.wsgi", "event",
                         ["--service-script", "tasks", str(d / "tasks.py"),
                          "--service-user", "tasks", APACHE_USER,
                          "--service-log-file", "tasks", "tasks.log"], mode=mode) as srv:
        conf = (srv.root / "httpd.conf").read_text()
        assert "WSGIDaemonProcess service:tasks display-name=%{GROUP} threads=0" in conf, conf
        assert srv.get("/").status_code == 200, srv.error_log_tail()
        ticks = d / "ticks"
        assert wait_until(lambda: ticks.exists() and int(ticks.read_text().split()[2]) > 2, 15), (
            srv.error_log_tail())
        pid, uid, _ = map(int, ticks.read_text().split())
        assert uid == pwd.getpwnam(APACHE_USER).pw_uid
        assert open(f"/proc/{pid}/comm").read().startswith("(wsgi:service:")
        log = srv.root / "tasks.log"
        assert wait_until(lambda: log.exists() and "service-tick" in log.read_text(), 10)
        assert "service-tick" not in srv.error_log()
    assert wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10), "the service outlived Apache"


PATHS_APP = '''\
import json
import os
import sys

import six  # the working directory's six.py, ahead of site-packages'


def application(environ, start_response):
    data = None
    if os.path.exists("data.txt"):  # relative to the current directory
        with open("data.txt") as f:
            data = f.read()
    body = json.dumps({"cwd": os.getcwd(), "path": sys.path, "six": six.__file__,
                       "data": data}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_working_directory_and_python_path_as_mod_wsgi_express(servers, ws, mode):
    """As mod_wsgi-express 6.1.1 (home= on the daemon group, mod_wsgi's
    sys.path order): in daemon mode the process starts in the working
    directory, so relative paths resolve against it; in both modes the
    working directory, then each --python-path, come first on sys.path,
    ahead of the standard library and site-packages, so a module there
    shadows an installed one."""
    wd = ws.new_dir("paths-wd")
    extra = ws.new_dir("paths-extra")
    write(wd / "six.py", "LOCAL = True\n")
    write(wd / "data.txt", "relative file\n")
    app = wd / "app.wsgi"
    write(app, PATHS_APP)
    for p in (wd, extra):
        os.chmod(p, 0o755)
    with servers.running(f"paths-{mode}", app, mode=mode, args=[
            "--working-directory", wd, "--python-path", extra]) as srv:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        got = r.json()
        if mode == "daemon":
            assert got["cwd"] == str(wd) and got["data"] == "relative file\n", got
            conf = (srv.root / "httpd.conf").read_text()
            assert f'home="{wd}"' in daemon_line(conf), conf
        else:
            # Apache's children do not change directory (as in mod_wsgi's
            # embedded mode).
            assert got["cwd"] != str(wd) and got["data"] is None, got
        assert got["path"][:2] == [str(wd), str(extra)], got["path"]
        assert got["six"] == str(wd / "six.py"), got
        stdlib = next(i for i, p in enumerate(got["path"]) if p.endswith("/python3.11"))
        site = next(i for i, p in enumerate(got["path"]) if p.endswith("site-packages"))
        assert 2 <= stdlib < site, got["path"]
