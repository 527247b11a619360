"""rwsgi-express: generated configuration, configtest, errors it reports,
foreground mode, options; <IfModule> blocks; script reloading; libpython
mismatch detection."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import (
    APACHE_GROUP, APACHE_USER, _apache_env, child_pids, express_path, free_port,
    pid_alive, port_open, python_home, run, wait_until,
)

EXPECTED_LIBPYTHON = "/usr/lib/x86_64-linux-gnu/libpython3.11.so"
PYENV_LIBPYTHON = Path("/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0")


@pytest.fixture
def hello(ws):
    return ws.apps / "misc" / "hello.wsgi"


def write_conf(ws, name, text):
    d = ws.new_dir("conf")
    path = d / name
    path.write_text(text)
    path.chmod(0o644)
    return path


# ------------------------------------------------------------- configtest


def test_configtest_syntax_ok(servers, hello):
    srv = servers.create("configtest", hello)
    srv.setup()
    conf = srv.root / "httpd.conf"
    assert conf.exists()
    assert (srv.root / "apachectl").exists()
    text = conf.read_text()
    assert "WSGIScriptAlias" in text
    assert str(hello) in text
    proc = srv.apachectl("configtest")
    assert proc.returncode == 0, proc.out
    assert "Syntax OK" in proc.out


@pytest.mark.parametrize("directive,line", [
    ("WSGIScriptReloading Maybe", "WSGIScriptReloading"),
    ("WSGIScriptAlias /x", "WSGIScriptAlias"),
    ("WSGIChunkedRequest", "WSGIChunkedRequest"),
])
def test_configtest_reports_bad_directive(servers, ws, hello, directive, line):
    include = write_conf(ws, "bad.conf", f"# a comment\n\n{directive}\n")
    srv = servers.create("badconf", hello, args=["--include-file", include])
    setup = srv.setup(check=False)
    if setup.returncode != 0:
        # A launcher that validates includes itself must still say where.
        out = setup.out
    else:
        proc = srv.apachectl("configtest")
        assert proc.returncode != 0, proc.out
        assert "Syntax OK" not in proc.out
        out = proc.out
    assert line in out, out
    assert str(include) in out, out
    assert re.search(r"\bline 3\b", out), out


def test_unknown_directive_is_reported(servers, ws, hello):
    include = write_conf(ws, "unknown.conf", "WSGINoSuchDirective On\n")
    srv = servers.create("unknownconf", hello, args=["--include-file", include])
    srv.setup()
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0
    assert "WSGINoSuchDirective" in proc.out


# ---------------------------------------------------------- launcher CLI


def test_root_without_user_refused(servers, hello):
    assert os.geteuid() == 0
    srv = servers.create("nouser", hello, user=False)
    setup = srv.setup(check=False)
    if setup.returncode == 0:
        proc = srv.apachectl("start")
        srv.started = True               # make sure it is stopped if it did start
        try:
            out = setup.out + proc.out
            assert proc.returncode != 0 or not wait_until(lambda: port_open(srv.port), 5), (
                "Apache started as root without --user")
        finally:
            srv.stop()
    else:
        out = setup.out
    assert "--user" in out, out
    assert "root" in out.lower(), out


def test_module_config(binaries):
    proc = run([express_path(), "module-config"])
    assert proc.returncode == 0, proc.out
    m = re.search(r"^\s*LoadModule\s+wsgi_module\s+\"?([^\s\"]+)\"?\s*$", proc.stdout.decode(), re.M)
    assert m, proc.out
    assert Path(m.group(1)).exists(), f"module path {m.group(1)} does not exist"


@pytest.mark.parametrize("option", [["--with-php5"], ["--with-newrelic"],
                                    ["--newrelic-config-file", "/tmp/newrelic.ini"]])
def test_unsupported_option_refused(binaries, ws, hello, option):
    root = ws.new_dir("unsupported")
    proc = run([express_path(), "setup-server", hello, "--port", str(free_port()),
                "--server-root", root / "srv", "--user", APACHE_USER,
                "--group", APACHE_GROUP, "--python-home", python_home(), *option])
    assert proc.returncode != 0, proc.out
    assert option[0] in proc.out, proc.out


def test_help_lists_commands(binaries):
    proc = run([express_path(), "--help"])
    assert proc.returncode == 0, proc.out
    for cmd in ("setup-server", "start-server", "module-config"):
        assert cmd in proc.out


def test_start_server_foreground(binaries, ws, hello):
    root = ws.new_dir("foreground") / "root"
    port = free_port()
    log = open(ws.new_dir("fglog") / "out.txt", "wb")
    proc = subprocess.Popen(
        [str(express_path()), "start-server", str(hello), "--host", "127.0.0.1",
         "--port", str(port), "--server-root", str(root), "--user", APACHE_USER,
         "--group", APACHE_GROUP, "--python-home", str(python_home())],
        stdout=log, stderr=subprocess.STDOUT, env=_apache_env())
    kids = []
    try:
        assert wait_until(lambda: port_open(port) or proc.poll() is not None, 20)
        assert proc.poll() is None, Path(log.name).read_text()
        r = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert r.status_code == 200
        assert r.text == "hello from rwsgi"
        kids = child_pids(proc.pid)
        assert kids, "foreground Apache has no children"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            for p in [proc.pid] + kids:
                if pid_alive(p):
                    os.kill(p, signal.SIGKILL)
            proc.wait(5)
        wait_until(lambda: not any(pid_alive(k) for k in kids), 10)
        log.close()
    assert not port_open(port)


def test_callable_object_option(servers, ws):
    with servers.running("callable", ws.apps / "misc" / "callable.wsgi",
                         args=["--callable-object", "myapp"]) as srv:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "callable=myapp"


def test_include_ifmodule_blocks_and_url_alias(servers, ws, hello):
    static = ws.apps / "misc" / "static"
    with servers.running("ifmodule", hello, args=[
            "--include-file", ws.apps / "misc" / "ifmodule.conf",
            "--url-alias", "/static", static]) as srv:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "hello from rwsgi"
        assert r.headers.get("X-IfModule-Source") == "mod_wsgi.c"
        assert r.headers.get("X-IfModule-Name") == "wsgi_module"
        assert "X-IfModule-Negated" not in r.headers
        assert "X-IfModule-Negated-Source" not in r.headers
        r = srv.get("/static/hello.txt")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "static file served by Apache\n"
        assert r.headers.get("X-IfModule-Name") == "wsgi_module"


# -------------------------------------------------------- script reloading


def test_script_reloading(servers, ws):
    d = ws.new_dir("reload")
    script = d / "reload.wsgi"
    source = (ws.apps / "misc" / "reload.wsgi").read_text()
    script.write_text(source)
    script.chmod(0o644)
    with servers.running("reload", script) as srv:
        first = [srv.get("/").text for _ in range(6)]
        assert all(t.startswith("version-1 ") for t in first), first
        # Same process, same module: not re-imported without a change.
        by_pid = {}
        for t in first:
            _, pid, loaded = t.split()
            by_pid.setdefault(pid, set()).add(loaded)
        assert all(len(v) == 1 for v in by_pid.values()), by_pid

        script.write_text(source.replace('VERSION = "version-1"', 'VERSION = "version-2"'))
        st = script.stat()
        os.utime(script, (st.st_atime + 5, st.st_mtime + 5))
        after = [srv.get("/").text for _ in range(10)]
        assert all(t.startswith("version-2 ") for t in after), after


# ------------------------------------------------------ libpython mismatch


@pytest.mark.skipif(not PYENV_LIBPYTHON.exists(),
                    reason=f"{PYENV_LIBPYTHON} not present: no foreign libpython to preload")
def test_libpython_mismatch_detected(servers, hello):
    srv = servers.create("mismatch", hello)
    srv.setup()
    ok = srv.apachectl("configtest")
    assert ok.returncode == 0, ok.out
    proc = srv.apachectl("configtest", env={"LD_PRELOAD": str(PYENV_LIBPYTHON)})
    assert proc.returncode != 0, f"configtest passed with a foreign libpython preloaded:\n{proc.out}"
    assert EXPECTED_LIBPYTHON in proc.out, proc.out
    assert str(PYENV_LIBPYTHON) in proc.out or "/root/.pyenv/versions/3.11.7" in proc.out, proc.out


def test_script_alias_options_in_include(servers, ws, hello):
    """Extra WSGIScriptAlias mounts from an include file, with
    pass-authorization=On on one and Off on the other (the launcher's
    server-level WSGIPassAuthorization On is the default for both)."""
    core = ws.apps / "core"
    include = write_conf(ws, "aliases.conf", f"""
<Directory "{core}">
    Require all granted
</Directory>
WSGIScriptAlias /pa "{core / 'app.wsgi'}" pass-authorization=On application-group=%{{GLOBAL}}
WSGIScriptAlias /noauth "{core / 'app.wsgi'}" pass-authorization=Off application-group=%{{GLOBAL}}
""")
    auth = {"Authorization": "Bearer abc.def"}
    with servers.running("aliases", hello, args=["--mount-point", "/main",
                                                 "--include-file", include]) as srv:
        r = srv.get("/main")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "hello from rwsgi"
        r = srv.get("/pa/env/x", headers=auth)
        assert r.status_code == 200, srv.error_log_tail()
        env = r.json()
        assert env["SCRIPT_NAME"] == "/pa"
        assert env["PATH_INFO"] == "/env/x"
        assert env["HTTP_AUTHORIZATION"] == "Bearer abc.def"
        assert env["mod_wsgi.application_group"] == ""
        env = srv.get("/noauth/env", headers=auth).json()
        assert env["SCRIPT_NAME"] == "/noauth"
        assert "HTTP_AUTHORIZATION" not in env


def test_embedded_mode_flag_accepted(servers, hello):
    srv = servers.create("embedded", hello, args=["--embedded-mode", "--processes", "2",
                                                   "--threads", "3"])
    srv.setup()
    proc = srv.apachectl("configtest")
    assert proc.returncode == 0, proc.out


def test_access_log(servers, hello):
    with servers.running("accesslog", hello, args=["--access-log"]) as srv:
        assert srv.get("/some/path?x=1").status_code == 200
        log = srv.root / "access_log"
        assert wait_until(lambda: log.exists() and "GET /some/path?x=1 HTTP/1.1" in log.read_text(), 5), (
            log.read_text() if log.exists() else f"{log} missing")
