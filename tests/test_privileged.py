"""Privileged ports: `rwsgi-express start-server app.py --host 127.0.0.1
--port 80 --https-port 443 --user www-data --group www-data`, run as root,
binds 127.0.0.1:80 and 127.0.0.1:443 (a self-signed certificate made here
with the openssl CLI) and keeps root only in Apache's parent, which runs no
application code: every Apache child and every daemon process has www-data's
uid and gid in all four slots of /proc/PID/status (real, effective, saved,
filesystem), no capabilities, and the application's own os.setuid(0) and
os.seteuid(0) fail with PermissionError, which it reports. In daemon mode
(the default) and in embedded mode.

Root only; skipped when 127.0.0.1:80 or :443 cannot be bound (in use).
"""

import errno
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess

import pytest
import requests

from conftest import _apache_env, child_pids, express_path, pid_alive, wait_until

USER, GROUP = "www-data", "www-data"

APP = '''\
import json
import os


def try_root(call):
    try:
        call(0)
    except PermissionError as e:
        return "PermissionError: " + e.strerror
    return "became root"


def application(environ, start_response):
    body = json.dumps({
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "uids": os.getresuid(),
        "gids": os.getresgid(),
        "groups": os.getgroups(),
        "setuid": try_root(os.setuid),
        "seteuid": try_root(os.seteuid),
        "scheme": environ["wsgi.url_scheme"],
        "port": environ["SERVER_PORT"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def port_free(port):
    """True if 127.0.0.1:port can be bound now (nothing else listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="binding ports 80 and 443 needs root"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


def status_fields(pid):
    """Uid/Gid (4 ints each) and CapPrm/CapEff (hex) of /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Uid", "Gid"):
                out[key] = tuple(int(x) for x in rest.split())
            elif key in ("CapPrm", "CapEff"):
                out[key] = int(rest.strip(), 16)
    return out


@pytest.fixture(scope="module")
def cert(ws):
    d = ws.new_dir("priv-pki")
    proc = subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
                           "-keyout", str(d / "site.key"), "-out", str(d / "site.crt"),
                           "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def https_json(cafile):
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", 443), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET /tls HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:500]
    return json.loads(body)


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_privileged_ports_keep_root_only_in_apache_parent(binaries, ws, cert, mode):
    for port in (80, 443):
        if not port_free(port):
            pytest.skip(f"127.0.0.1:{port} is in use")
    www = pwd.getpwnam(USER)
    www_gid = grp.getgrnam(GROUP).gr_gid
    app_dir = ws.new_dir(f"priv-{mode}")
    script = app_dir / "app.py"
    script.write_text(APP)
    script.chmod(0o644)
    root = app_dir / "server"
    cmd = [str(express_path()), "start-server", str(script), "--host", "127.0.0.1",
           "--port", "80", "--https-port", "443", "--server-name", "localhost",
           "--ssl-certificate-file", str(cert / "site.crt"),
           "--ssl-certificate-key-file", str(cert / "site.key"),
           "--user", USER, "--group", GROUP, "--server-root", str(root)]
    if mode == "embedded":
        cmd.append("--embedded-mode")
    log = open(app_dir / "start-server.out", "w+b")
    proc = subprocess.Popen(cmd, env=_apache_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        def ready():
            try:
                return requests.get("http://127.0.0.1:80/plain", headers={"Host": "localhost"},
                                    timeout=10)
            except requests.RequestException:
                return None if proc.poll() is None else "exited"
        r = wait_until(ready, timeout=60)
        log.seek(0)
        assert r is not None and r != "exited", log.read().decode(errors="replace")
        assert r.status_code == 200, ((root / "error_log").read_text(errors="replace")[-3000:])
        answers = [r.json(), https_json(cert / "site.crt")]
        assert (answers[0]["scheme"], answers[0]["port"]) == ("http", "80")
        assert (answers[1]["scheme"], answers[1]["port"]) == ("https", "443")

        # start-server exec'd apachectl, which exec'd httpd: proc.pid is the parent.
        parent = proc.pid
        assert status_fields(parent)["Uid"][0] == 0
        children = child_pids(parent)
        assert children, "no Apache children"
        for pid in children:
            fields = status_fields(pid)
            assert fields["Uid"] == (www.pw_uid,) * 4, (pid, fields)
            assert fields["Gid"] == (www_gid,) * 4, (pid, fields)
            assert fields["CapPrm"] == 0 and fields["CapEff"] == 0, (pid, fields)
        for answer in answers:
            # The code ran in one of the parent's children (daemon or Apache child), never in it.
            assert answer["ppid"] == parent and answer["pid"] in children, (answer, children)
            assert tuple(answer["uids"]) == (www.pw_uid,) * 3, answer
            assert tuple(answer["gids"]) == (www_gid,) * 3, answer
            assert 0 not in answer["groups"], answer
            assert answer["setuid"] == "PermissionError: Operation not permitted", answer
            assert answer["seteuid"] == "PermissionError: Operation not permitted", answer
        if mode == "daemon":
            daemons = [p for p in children if _cmdline(p).startswith("(wsgi:")]
            assert daemons and answers[0]["pid"] in daemons, [(p, _cmdline(p)) for p in children]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    assert wait_until(lambda: port_free(80) and port_free(443), timeout=30)
    assert not pid_alive(proc.pid)


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
