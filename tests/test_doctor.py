"""`rwsgi-express doctor`: each broken set-up is named by the check that
finds it (wrong Python, unreadable virtualenv, missing callable, import
error, hung import, port in use, bad certificate), a healthy set-up gives
exit status 0 and only OK lines, and `start-server` refuses to start on a
failed check with the same line (and starts real Apache when all pass).

Real processes throughout: virtualenvs made by real interpreters, the
import run as nobody by the venv's Python, sockets bound by the test,
certificates made by the openssl CLI."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    APACHE_GROUP, APACHE_USER, _apache_env, express_path, free_port, pid_alive, port_open,
    python_home, run, wait_until,
)
from test_express_https import openssl

MODULE_PYTHON = Path("/usr/bin/python3.11")

APP = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"doctor ok"]
'''

NO_CALLABLE = '''\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wrong name"]
'''

IMPORT_ERROR = '''\
import no_such_module_rwsgi_doctor

application = None
'''

HANGS = '''\
import time
time.sleep(3600)
'''


def write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def apps(binaries, ws):
    d = ws.new_dir("doctor-apps")
    write(d / "app.wsgi", APP)
    write(d / "no_callable.wsgi", NO_CALLABLE)
    write(d / "import_error.wsgi", IMPORT_ERROR)
    write(d / "hangs.wsgi", HANGS)
    pkg = d / "doctorpkg"
    pkg.mkdir()
    pkg.chmod(0o755)
    write(pkg / "__init__.py", "")
    write(pkg / "wsgi.py", NO_CALLABLE)
    return d


def base_args(ws, home=None, port=None):
    return ["--host", "127.0.0.1", "--port", str(port or free_port()),
            "--server-root", ws.new_dir("doctor-root") / "root",
            "--user", APACHE_USER, "--group", APACHE_GROUP,
            "--python-home", home or python_home()]


class Report:
    """The doctor's output: one line per check, `STATUS CHECK MESSAGE`."""

    def __init__(self, proc):
        self.proc = proc
        self.code = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.lines = [line for line in self.out.splitlines() if line.strip()]

    def of(self, check):
        found = [line for line in self.lines if line.split()[1:2] == [check]]
        assert found, f"no {check} line:\n{self.out}"
        return found

    def status(self, check):
        return self.of(check)[0].split()[0]

    def line(self, check):
        return self.of(check)[0]


def doctor(app, *args):
    proc = subprocess.run([str(express_path()), "doctor", str(app), *map(str, args)],
                          env=_apache_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)
    return Report(proc)


def make_venv(python, where):
    proc = run([python, "-m", "venv", "--without-pip", where], timeout=120)
    assert proc.returncode == 0, proc.out
    return where


def interpreter_facts(python):
    """(sys.executable, real sys.base_prefix, 'X.Y') of an interpreter."""
    proc = run([python, "-c", "import os, sys; print(sys.executable); "
                "print(os.path.realpath(sys.base_prefix)); print('%d.%d' % sys.version_info[:2])"])
    assert proc.returncode == 0, proc.out
    exe, prefix, version = proc.stdout.decode().split("\n")[:3]
    return exe, prefix, version


def path_python3():
    """python3 as found on PATH without the test venv's bin directory (on
    this machine: pyenv's, under /root)."""
    venv_bin = str(Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    found = shutil.which("python3", path=path)
    return Path(found) if found else None


def other_minor_python():
    """A Python 3 of another minor version than the module's, if installed."""
    candidates = [shutil.which(f"python3.{n}") for n in range(6, 15) if n != 11]
    candidates += sorted(str(p) for p in Path("/root/.pyenv/versions").glob("3.*/bin/python3"))
    for c in filter(None, candidates):
        try:
            _, _, version = interpreter_facts(c)
        except (AssertionError, OSError):
            continue
        if version != "3.11" and tuple(map(int, version.split("."))) >= (3, 6):
            return Path(c)
    return None


# ------------------------------------------------------------------ healthy


def test_healthy_setup_is_all_ok(apps, ws):
    r = doctor(apps / "app.wsgi", *base_args(ws))
    assert r.code == 0, r.out
    assert all(line.startswith("OK ") for line in r.lines), r.out
    for check in ("python", "options", "python-access", "app-access", "app", "port",
                  "sockets", "mpm", "https"):
        assert r.status(check) == "OK", r.out
    assert "is a virtualenv of the Python at /usr" in r.line("python"), r.out
    assert "as user 'nobody'" in r.line("app"), r.out


# ------------------------------------------------------------ wrong Pythons


def test_venv_of_another_build_of_the_same_version(apps, ws):
    python = path_python3()
    if python is None:
        pytest.skip("no python3 on PATH")
    exe, prefix, version = interpreter_facts(python)
    if prefix == "/usr":
        pytest.skip(f"python3 on PATH ({exe}) is the module's Python: no other build to test with")
    venv = make_venv(exe, ws.new_dir("doctor-pathpy") / "venv")
    r = doctor(apps / "app.wsgi", *base_args(ws, home=venv))
    assert r.code == 2, r.out
    line = r.line("python")
    assert line.startswith("FAIL") and "RWSGI0150" in line, r.out
    # Both Pythons named: the home's base and the module's.
    assert f"Python {version}" in line and prefix in line, r.out
    assert "libpython3.11.so.1.0 of the Python 3.11 at /usr" in line, r.out
    if version == "3.11":
        assert "the same version but another build" in line, r.out
    assert f"/usr/bin/python3.11 -m venv {venv}" in line, r.out
    if prefix.startswith("/root/"):
        # pyenv's Python under /root: nobody cannot read it either.
        access = r.line("python-access")
        assert access.startswith("FAIL") and "RWSGI0151" in access, r.out
        assert "permission denied on /root" in access, r.out
    assert r.status("app") == "WARN", r.out


def test_venv_of_another_minor_version(apps, ws):
    python = other_minor_python()
    if python is None:
        pytest.skip("no Python 3 of another minor version than 3.11 is installed")
    exe, prefix, version = interpreter_facts(python)
    venv = make_venv(exe, ws.new_dir("doctor-minor") / "venv")
    r = doctor(apps / "app.wsgi", *base_args(ws, home=venv))
    assert r.code == 2, r.out
    line = r.line("python")
    assert line.startswith("FAIL") and "RWSGI0150" in line, r.out
    assert f"Python {version}" in line and "another version: the module only runs Python 3.11" in line, r.out
    # The launcher refuses such a home too; doctor says so on its own line.
    assert r.status("options") == "FAIL" and "lib/python3.11" in r.line("options"), r.out


def test_unreadable_venv(apps, ws):
    private = ws.new_dir("doctor-private")
    private.chmod(0o700)
    venv = make_venv(MODULE_PYTHON, private / "venv")
    r = doctor(apps / "app.wsgi", *base_args(ws, home=venv))
    assert r.code == 2, r.out
    assert r.status("python") == "OK", r.out
    line = r.line("python-access")
    assert line.startswith("FAIL") and "RWSGI0151" in line, r.out
    assert f"user 'nobody' cannot read {venv} (permission denied on {private})" in line, r.out
    # The import as nobody cannot even start that venv's Python.
    assert r.status("app") == "FAIL" and "as user 'nobody'" in r.line("app"), r.out


# -------------------------------------------------------------- application


def test_missing_callable(apps, ws):
    r = doctor(apps / "no_callable.wsgi", *base_args(ws))
    assert r.code == 2, r.out
    line = r.line("app")
    assert line.startswith("FAIL") and "RWSGI0152" in line, r.out
    assert "has no `application` (its callables: app)" in line, r.out
    assert "--callable-object app" in line, r.out
    ok = doctor(apps / "no_callable.wsgi", "--callable-object", "app", *base_args(ws))
    assert ok.code == 0 and ok.status("app") == "OK", ok.out


def test_module_application_missing_callable(apps, ws):
    r = doctor("doctorpkg.wsgi", "--application-type", "module", "--working-directory", apps,
               *base_args(ws))
    assert r.code == 2, r.out
    assert "the module doctorpkg.wsgi has no `application`" in r.line("app"), r.out
    ok = doctor("doctorpkg.wsgi", "--application-type", "module", "--working-directory", apps,
                "--callable-object", "app", *base_args(ws))
    assert ok.status("app") == "OK", ok.out


def test_import_error_is_named(apps, ws):
    r = doctor(apps / "import_error.wsgi", *base_args(ws))
    assert r.code == 2, r.out
    line = r.line("app")
    assert "ModuleNotFoundError: No module named 'no_such_module_rwsgi_doctor'" in line, r.out
    assert f"(at {apps / 'import_error.wsgi'}:1)" in line, r.out


def test_hung_import_times_out(apps, ws):
    r = doctor(apps / "hangs.wsgi", "--import-timeout", "1", *base_args(ws))
    assert r.code == 2, r.out
    assert "did not finish within 1 s" in r.line("app"), r.out
    # The probe (run as nobody) was killed, not left behind.
    leftover = run(["pgrep", "-u", APACHE_USER, "-f", "rwsgi-doctor"])
    assert leftover.stdout.strip() == b"", leftover.out


# ------------------------------------------------------------------- ports


def test_port_in_use(apps, ws):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        r = doctor(apps / "app.wsgi", *base_args(ws, port=port))
    assert r.code == 2, r.out
    line = r.line("port")
    assert line.startswith("FAIL") and "RWSGI0153" in line, r.out
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in line, r.out
    # ... and by whom: this test process holds the socket.
    assert f"pid {os.getpid()} (" in line, r.out


# ------------------------------------------------------------- certificates


@pytest.fixture(scope="module")
def pki(ws):
    """site.crt with its key site.key, and other.key that does not match."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    d = ws.new_dir("doctor-pki")
    openssl("req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
            "-keyout", d / "site.key", "-out", d / "site.crt", "-subj", "/CN=localhost")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", d / "other.key")
    write(d / "garbage.crt", "not a certificate\n")
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def https_args(pki, cert, key, port=None):
    return ["--server-name", "localhost", "--https-port", str(port or free_port()),
            "--ssl-certificate-file", pki / cert, "--ssl-certificate-key-file", pki / key]


def test_certificate_checks(apps, ws, pki):
    good = doctor(apps / "app.wsgi", *base_args(ws), *https_args(pki, "site.crt", "site.key"))
    assert good.code == 0, good.out
    for check in ("mod_ssl", "certificate", "https-port"):
        assert good.status(check) == "OK", good.out
    assert "parse and match" in good.line("certificate"), good.out

    bad = doctor(apps / "app.wsgi", *base_args(ws), *https_args(pki, "site.crt", "other.key"))
    assert bad.code == 2, bad.out
    line = bad.line("certificate")
    assert line.startswith("FAIL") and "RWSGI0157" in line, bad.out
    assert f"the key {pki / 'other.key'} does not belong to the certificate {pki / 'site.crt'}" in line

    garbage = doctor(apps / "app.wsgi", *base_args(ws), *https_args(pki, "garbage.crt", "site.key"))
    assert garbage.code == 2, garbage.out
    assert f"RWSGI0156: {pki / 'garbage.crt'} is not a PEM certificate" in garbage.line("certificate")


def test_start_server_refuses_a_failed_check(apps, ws, pki):
    """start-server runs the fast checks: with a key that does not match it
    refuses with doctor's line and Apache never starts; with the right key
    real Apache starts and serves HTTPS."""
    https_port = free_port()
    args = base_args(ws)
    port = int(args[args.index("--port") + 1])
    bad = run([express_path(), "start-server", apps / "app.wsgi", *args,
               *https_args(pki, "site.crt", "other.key", https_port)])
    assert bad.returncode == 1, bad.out
    assert "refusing to start the server: 1 check(s) failed" in bad.out, bad.out
    expected = doctor(apps / "app.wsgi", *args,
                      *https_args(pki, "site.crt", "other.key", https_port)).line("certificate")
    assert expected in bad.out, bad.out
    assert not port_open(port) and not port_open(https_port)
    root = Path(args[args.index("--server-root") + 1])
    assert not (root / "httpd.conf").exists(), "the server root was written although a check failed"

    proc = subprocess.Popen([str(express_path()), "start-server", str(apps / "app.wsgi"),
                             *map(str, args), *map(str, https_args(pki, "site.crt", "site.key", https_port))],
                            env=_apache_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert wait_until(lambda: port_open(https_port) or proc.poll() is not None, 30), "Apache did not start"
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
        ctx = ssl.create_default_context(cafile=str(pki / "site.crt"))
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", https_port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"doctor ok"), data
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        assert wait_until(lambda: not pid_alive(proc.pid), 10)
