"""The switch README promises: a server root made by mod_wsgi-express
setup-server (mod_wsgi 6.1.1 from PyPI, scripts/test-env.sh installs it),
with only its LoadModule line changed to mod_rwsgi.so, runs under rwsgi.

Its httpd.conf writes options as mod_wsgi's parser takes them
(process-group='localhost:PORT', python-path='', locale='en_US.UTF-8'
whether the system has that locale or not) and routes every URL without a
file under its document root to handler.wsgi with WSGIHandlerScript and
`RewriteRule .* - [H=wsgi-handler]`; handler.wsgi does
`from mod_wsgi.express.runtime import ApplicationHandler`, so the module
must be the pip package mod_wsgi with rwsgi's attributes added, as mod_wsgi
makes it."""

import contextlib
import os
import re
import signal
import time

import pytest
import requests

from conftest import (REFERENCE, child_pids, free_port, make_world_readable, module_path,
                      pid_alive, port_open, python_home, run, wait_until)

MW_EXPRESS = python_home() / "bin" / "mod_wsgi-express"

pytestmark = [
    pytest.mark.skipif(bool(REFERENCE), reason="swaps in mod_rwsgi.so itself"),
    pytest.mark.skipif(not MW_EXPRESS.exists(),
                       reason="mod_wsgi-express is not in the test venv (scripts/test-env.sh installs it)"),
]

APP = '''\
import os

import mod_wsgi


def application(environ, start_response):
    body = "|".join([
        environ.get("mod_wsgi.process_group", "?"),
        str(environ["wsgi.multithread"]),
        str(os.getpid()),
        str(hasattr(mod_wsgi, "__path__")),
        mod_wsgi.process_group,
        environ["PATH_INFO"],
    ]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def title_of(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()


@contextlib.contextmanager
def started(root, port):
    """Starts the server root with its apachectl; yields the parent's pid;
    stops it and waits for every process it had (SIGKILL after 20 s)."""
    proc = run([root / "apachectl", "start"])
    assert proc.returncode == 0, proc.out
    pid_file = root / "httpd.pid"
    up = wait_until(lambda: pid_file.exists() and port_open(port), timeout=20)
    parent = int(pid_file.read_text()) if pid_file.exists() else None
    try:
        assert up, (root / "error_log").read_text() if (root / "error_log").exists() else proc.out
        yield parent
    finally:
        everyone = ([parent] + child_pids(parent)) if parent else []
        run([root / "apachectl", "stop"])
        if not wait_until(lambda: not any(pid_alive(p) for p in everyone), timeout=20):
            for p in everyone:
                if pid_alive(p):
                    os.kill(p, signal.SIGKILL)


def with_rwsgi(root):
    """mod_wsgi-express's httpd.conf with its LoadModule line (the only
    change) naming mod_rwsgi.so."""
    conf = root / "httpd.conf"
    text, n = re.subn(r"^LoadModule wsgi_module .*$",
                      f"LoadModule wsgi_module '{module_path()}'", conf.read_text(), flags=re.M)
    assert n == 1, "no LoadModule wsgi_module line in mod_wsgi-express's httpd.conf"
    conf.write_text(text)
    return conf


@pytest.fixture(params=["daemon", "embedded"])
def mw_root(request, ws):
    """A started server root of mod_wsgi-express setup-server, LoadModule
    changed to mod_rwsgi.so. Yields (port, root, parent pid)."""
    mode = request.param
    base = ws.new_dir(f"mwroot-{mode}")
    app = base / "app.py"
    app.write_text(APP)
    app.chmod(0o644)
    root = base / "root"
    port = free_port()
    args = [MW_EXPRESS, "setup-server", app, "--port", port, "--server-root", root,
            "--host", "127.0.0.1", "--processes", "2", "--threads", "4",
            "--user", "nobody", "--group", "nogroup"]
    if mode == "embedded":
        args.append("--embedded-mode")
    made = run(args)
    assert made.returncode == 0, made.out
    with_rwsgi(root)
    (root / "htdocs" / "static.txt").write_text("static file\n")
    os.chmod(root / "htdocs" / "static.txt", 0o644)
    with started(root, port) as parent:
        yield mode, port, root, parent


def test_mod_wsgi_express_root_with_rwsgi_swapped_in(mw_root):
    mode, port, root, parent = mw_root
    # mod_wsgi-express names the group HOST:PORT.
    group = re.search(r"^WSGIDaemonProcess '([^']+)'", (root / "httpd.conf").read_text(), re.M)[1]
    assert group == f"127.0.0.1:{port}"
    url = f"http://127.0.0.1:{port}"
    r = requests.get(url + "/some/path", timeout=15)
    assert r.status_code == 200, (root / "error_log").read_text()
    process_group, multithread, pid, has_path, module_group, path = r.text.split("|")
    # The handler script's ApplicationHandler mounted the app at /.
    assert path == "/some/path"
    # `import mod_wsgi` is the pip package (a package: mod_wsgi.express
    # imported), with rwsgi's attributes.
    assert has_path == "True"
    assert multithread == "True"
    if mode == "daemon":
        assert process_group == module_group == group
        assert int(pid) != parent and int(pid) in child_pids(parent)
        daemons = [p for p in child_pids(parent) if f"(wsgi:{group}" in title_of(p)]
        assert len(daemons) >= 2, [title_of(p) for p in child_pids(parent)]
        nobody = uid_of(int(pid))
        assert nobody and all(u == nobody[0] != 0 for u in nobody)
    else:
        assert process_group == module_group == ""
    # A file under the document root is Apache's (RewriteCond !-f).
    s = requests.get(url + "/static.txt", timeout=15)
    assert (s.status_code, s.text) == (200, "static file\n")
    # Requests keep being served (no daemon dying behind the first answer).
    pids = {requests.get(url + f"/n/{i}", timeout=15).text.split("|")[2] for i in range(20)}
    assert pids
    log = (root / "error_log").read_text()
    errors = [line for line in log.splitlines() if "[wsgi:error]" in line or "[wsgi:crit]" in line]
    assert not errors, "\n".join(errors)


def test_back_off_wait_ends_at_stop(ws):
    """A daemon that keeps dying at start waits before its next try (1, 2,
    4, 8, 10 s); `apachectl stop` during that wait ends it at once."""
    base = ws.new_dir("mwroot-backoff")
    app = base / "app.py"
    app.write_text("import nonexistent_module_for_the_back_off_test\n")
    app.chmod(0o644)
    root = base / "root"
    port = free_port()
    made = run([MW_EXPRESS, "setup-server", app, "--port", port, "--server-root", root,
                "--host", "127.0.0.1", "--user", "nobody", "--group", "nogroup",
                "--shutdown-timeout", "20"])
    assert made.returncode == 0, made.out
    conf = with_rwsgi(root)
    # The daemon must die at start: a home it cannot enter.
    conf.write_text(conf.read_text().replace(" home='", " home='/nonexistent-rwsgi-home"))
    log = root / "error_log"
    with started(root, port) as parent:
        # The back-off has grown to 8 s (after waits of 1, 2 and 4 s).
        assert wait_until(lambda: "starting a new one in 8 s" in log.read_text(), timeout=30), \
            log.read_text()
        time.sleep(0.5)
        everyone = [parent] + child_pids(parent)
        t0 = time.monotonic()
        run([root / "apachectl", "stop"])
        gone = wait_until(lambda: not any(pid_alive(p) for p in everyone), timeout=20)
        took = time.monotonic() - t0
    assert gone
    # Not the rest of the 8 s wait (signals are blocked while a daemon
    # waits), which a daemon used to take before it saw the stop.
    assert took < 5, f"stop took {took:.1f} s"


BROKEN_PACKAGE_APP = '''\
import mod_wsgi


def application(environ, start_response):
    body = ("%s|%s" % (mod_wsgi.process_group, hasattr(mod_wsgi, "__path__"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_broken_mod_wsgi_package_is_a_warning(servers, ws, mode):
    """A mod_wsgi package on sys.path whose import raises: RWSGI0063 and the
    traceback are logged at warning level (the module is made without the
    package, and the application serves)."""
    base = ws.new_dir(f"broken-mod-wsgi-{mode}")
    # A Python home of its own (the test venv has mod_wsgi 6.1.1), with the
    # broken package in its site-packages.
    venv = base / "venv"
    made = run(["/usr/bin/python3.11", "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.out
    pkg = venv / "lib" / "python3.11" / "site-packages" / "mod_wsgi"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise RuntimeError('broken mod_wsgi package for the test')\n")
    app = base / "app.py"
    app.write_text(BROKEN_PACKAGE_APP)
    make_world_readable(base)
    srv = servers.create(f"bmw-{mode}", app, mode=mode)
    cmd = srv.setup_command()
    cmd[cmd.index("--python-home") + 1] = str(venv)
    made = run(cmd)
    assert made.returncode == 0, made.out
    srv.start()
    try:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        group, has_path = r.text.split("|")
        assert has_path == "False", srv.error_log_tail()
        assert (group != "") == (mode == "daemon")
        log = srv.wait_for_log(0, "RWSGI0063", "broken mod_wsgi package for the test")
        lines = [line for line in log.splitlines()
                 if "RWSGI0063" in line or "broken mod_wsgi package for the test" in line]
        assert lines, log
        assert all("[wsgi:warn]" in line for line in lines), "\n".join(lines)
    finally:
        srv.stop()
