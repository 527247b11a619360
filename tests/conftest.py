"""Fixtures of the rwsgi integration suite.

Every test here talks real HTTP to a real Apache httpd (Debian's apache2)
that loads the real module (target/release/libmod_rwsgi.so), configured by
the real launcher (target/release/rwsgi-express setup-server).

Servers run as root-started Apache whose children are ``nobody:nogroup``, so
the test applications are copied to a world-readable directory under /tmp and
the served Python is the test virtualenv (scripts/test-env.sh), which lives in
a world-readable place too.

Environment knobs:
  RWSGI_EXPRESS     launcher binary (default target/release/rwsgi-express)
  RWSGI_MODULE      module (default target/release/libmod_rwsgi.so)
  RWSGI_TEST_VENV   Python home of the served apps (default: the venv that
                    runs pytest, else /var/tmp/rwsgi-test-venv)
  RWSGI_TEST_MPMS   comma-separated MPMs for the core suite (default
                    event,worker,prefork)
  RWSGI_TEST_MODES  comma-separated modes for the core suite (default
                    embedded,daemon)
  RWSGI_TEST_FORCE_MPM  run every server under this MPM, whatever the test
                    asks (scripts/test.sh reruns the feature tests under
                    prefork)
  RWSGI_KEEP_TMP=1  keep the temporary directory (apps, server roots, logs)
  RWSGI_TEST_REFERENCE=mod_wsgi
                    check the tests themselves against the reference
                    implementation: run with RWSGI_MODULE pointing at
                    mod_wsgi.so (Debian's libapache2-mod-wsgi-py3); error-log
                    lines are then looked up by mod_wsgi's wording instead of
                    the RWSGI error id. rwsgi-only rules still fail there.
"""

import contextlib
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
APPS_SRC = REPO / "tests" / "apps"

BUILD_HINT = (
    "build them first with:\n"
    "    RWSGI_PYTHON=/usr/bin/python3.11 PYO3_PYTHON=/usr/bin/python3.11 "
    "cargo build --release\n"
    "and create the test environment with scripts/test-env.sh"
)

MPMS = [m.strip() for m in os.environ.get("RWSGI_TEST_MPMS", "event,worker,prefork").split(",") if m.strip()]
# Operating modes the core suite runs in: embedded (the application in
# Apache's children, --embedded-mode) and daemon (rwsgi-express's default:
# a WSGIDaemonProcess group that Apache's children relay to).
MODES = [m.strip() for m in os.environ.get("RWSGI_TEST_MODES", "embedded,daemon").split(",") if m.strip()]

# A variable put into Apache's process environment: it must never show up in
# the WSGI environ (the module does not copy os.environ into it).
CANARY_NAME = "RWSGI_TEST_CANARY"
CANARY_VALUE = "canary-must-not-leak"

REFERENCE = os.environ.get("RWSGI_TEST_REFERENCE", "")
# What every error-log line about a failed request carries.
ERROR_ID = "mod_wsgi" if REFERENCE == "mod_wsgi" else "RWSGI"

APACHE_USER = "nobody"
APACHE_GROUP = "nogroup"

# Data file served by the file_wrapper tests (generated, deterministic).
BLOB_SIZE = 1536 * 1024 + 123


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def express_path():
    return Path(os.environ.get("RWSGI_EXPRESS") or REPO / "target" / "release" / "rwsgi-express")


def module_path():
    return Path(os.environ.get("RWSGI_MODULE") or REPO / "target" / "release" / "libmod_rwsgi.so")


def python_home():
    env = os.environ.get("RWSGI_TEST_VENV")
    if env:
        return Path(env)
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix)
    return Path("/var/tmp/rwsgi-test-venv")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid):
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # Field 3 (after the parenthesised command name) is the state.
    state = data.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def child_pids(ppid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
        except OSError:
            continue
        fields = data.rsplit(")", 1)[1].split()
        if int(fields[1]) == ppid and fields[0] not in ("Z", "X"):
            pids.append(int(entry))
    return sorted(pids)


def proc_status(pid):
    """VmRSS / VmHWM etc. of a process in bytes (empty dict if gone)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return out


def wait_until(predicate, timeout=10.0, interval=0.1):
    """Polls `predicate` until it returns a true value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def make_world_readable(path):
    """chmod a+rX recursively (dirs 755, files 644/755)."""
    path = Path(path)
    for root, dirs, files in os.walk(path):
        os.chmod(root, 0o755)
        for name in files:
            p = Path(root) / name
            mode = p.stat().st_mode
            p.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


def raw_http(port, request, timeout=15.0, host="127.0.0.1"):
    """Sends raw request bytes, returns every byte received until EOF."""
    chunks = []
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request)
        while True:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def split_response(raw):
    """(status_line, headers dict (lower-case names, last wins), header block, body)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return lines[0].decode("latin-1"), headers, head, body


def dechunk_end(body):
    """Decodes a chunked body. Returns (data, end): `end` is the offset just
    after the terminating zero-size chunk and its (empty or trailer) block,
    None while the body is incomplete."""
    data = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return bytes(data), None
        try:
            size = int(body[pos:eol].split(b";")[0], 16)
        except ValueError:
            return bytes(data), None
        if size == 0:
            # Trailer fields (usually none), then an empty line.
            if body[eol + 2:eol + 4] == b"\r\n":
                return bytes(data), eol + 4
            end = body.find(b"\r\n\r\n", eol + 2)
            return bytes(data), (end + 4 if end >= 0 else None)
        start = eol + 2
        chunk = body[start:start + size]
        data += chunk
        if len(chunk) < size or body[start + size:start + size + 2] != b"\r\n":
            return bytes(data), None
        pos = start + size + 2


def dechunk(body):
    """Decodes a chunked body. Returns (data, complete): complete says the
    terminating zero-size chunk (and the blank line after it) arrived."""
    data, end = dechunk_end(body)
    return data, end is not None


def read_response_head(sock, buf=b""):
    """Reads a response's header block. Returns (status line, headers,
    bytes received after the header block)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, "connection closed before the headers"
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    status, headers, _, _ = split_response(head + b"\r\n\r\n")
    return status, headers, rest


def read_one_response(sock, buf=b""):
    """Reads exactly one response with Content-Length or chunked body."""
    status, headers, rest = read_response_head(sock, buf)
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            data = sock.recv(65536)
            assert data, "connection closed in the body"
            rest += data
        return status, headers, rest[:n], rest[n:]
    assert headers.get("transfer-encoding") == "chunked", headers
    while True:
        body, end = dechunk_end(rest)
        if end is not None:
            return status, headers, body, rest[end:]
        data = sock.recv(65536)
        assert data, "connection closed in the chunked body"
        rest += data


# --------------------------------------------------------------------------
# Workspace and servers
# --------------------------------------------------------------------------

class Workspace:
    """A world-readable temporary directory holding the test apps and the
    server roots (the repository itself may not be readable by nobody)."""

    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="rwsgi-tests-", dir="/tmp"))
        os.chmod(self.path, 0o755)
        self.apps = self.path / "apps"
        self.servers = self.path / "servers"
        self.scratch = self.path / "scratch"
        shutil.copytree(APPS_SRC, self.apps,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self.servers.mkdir()
        self.scratch.mkdir()
        make_world_readable(self.path)
        core = self.apps / "core"
        (core / "data").mkdir(exist_ok=True)
        self.blob = core / "data" / "blob.bin"
        self.blob.write_bytes(random.Random(4242).randbytes(BLOB_SIZE))
        self.blob.chmod(0o644)
        (core / "data").chmod(0o755)
        # Marker files written by the apps (as nobody).
        self.markers = core / "markers"
        self.markers.mkdir(exist_ok=True)
        self.markers.chmod(0o1777)

    def new_dir(self, prefix):
        d = Path(tempfile.mkdtemp(prefix=prefix + "-", dir=self.scratch))
        d.chmod(0o755)
        return d

    def cleanup(self):
        if os.environ.get("RWSGI_KEEP_TMP") == "1":
            print(f"\nrwsgi tests: kept {self.path}")
            return
        shutil.rmtree(self.path, ignore_errors=True)


def _apache_env(extra=None):
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
        env.pop(name, None)
    env[CANARY_NAME] = CANARY_VALUE
    if extra:
        env.update(extra)
    return env


def run(cmd, env=None, timeout=60, input=None):
    """Runs a command, returns CompletedProcess with .out = stdout+stderr text."""
    proc = subprocess.run([str(c) for c in cmd], env=env if env is not None else _apache_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, input=input)
    proc.out = (proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace"))
    return proc


class Server:
    """One Apache instance configured by `rwsgi-express setup-server`."""

    def __init__(self, ws, name, script, mpm="event", args=(), user=True, mode="embedded"):
        self.ws = ws
        self.name = name
        self.script = Path(script)
        # RWSGI_TEST_FORCE_MPM: run tests written for one MPM under another
        # (scripts/test.sh runs the feature tests again under prefork).
        mpm = os.environ.get("RWSGI_TEST_FORCE_MPM") or mpm
        self.mpm = mpm
        self.mode = mode
        self.args = [str(a) for a in args]
        self.host = "127.0.0.1"
        self.port = free_port()
        self.root = ws.servers / f"{name}-{mpm}-{mode}-{uuid.uuid4().hex[:6]}"
        self.user = user
        self.started = False
        self.setup_output = ""
        self.last_pid = None

    # -- configuration and control ---------------------------------------

    def setup_command(self):
        cmd = [express_path(), "setup-server", self.script,
               "--host", self.host, "--port", str(self.port),
               "--server-root", self.root,
               "--python-home", python_home()]
        if self.user:
            cmd += ["--user", APACHE_USER, "--group", APACHE_GROUP]
        if self.mpm:
            cmd += ["--server-mpm", self.mpm]
        if self.mode == "embedded" and "--embedded-mode" not in self.args:
            cmd += ["--embedded-mode"]
        return [str(c) for c in cmd] + self.args

    def setup(self, check=True):
        proc = run(self.setup_command())
        self.setup_output = proc.out
        if check and proc.returncode != 0:
            raise AssertionError(
                f"rwsgi-express setup-server failed (exit {proc.returncode}):\n"
                f"$ {' '.join(self.setup_command())}\n{proc.out}")
        return proc

    @property
    def apachectl_path(self):
        return self.root / "apachectl"

    def apachectl(self, *args, env=None, timeout=60):
        return run([self.apachectl_path, *args], env=_apache_env(env), timeout=timeout)

    @property
    def pid_file(self):
        return self.root / "httpd.pid"

    @property
    def error_log_path(self):
        return self.root / "error_log"

    def pid(self):
        try:
            text = self.pid_file.read_text().strip()
            return int(text) if text else None
        except (FileNotFoundError, ValueError):
            return None

    def children(self):
        pid = self.pid()
        return child_pids(pid) if pid else []

    def start(self, timeout=20.0):
        if not self.apachectl_path.exists():
            self.setup()
        proc = self.apachectl("start")
        if proc.returncode != 0:
            raise AssertionError(
                f"apachectl start failed (exit {proc.returncode}) for {self.name}:\n{proc.out}\n"
                f"--- error_log ---\n{self.error_log_tail()}")
        self.started = True
        self.wait_ready(timeout, context=proc.out)
        self.last_pid = self.pid()
        return self

    def wait_ready(self, timeout=20.0, context=""):
        def ready():
            pid = self.pid()
            return pid is not None and pid_alive(pid) and port_open(self.port)
        if not wait_until(ready, timeout, 0.1):
            raise AssertionError(
                f"server {self.name} ({self.mpm}) did not come up on port {self.port} "
                f"within {timeout}s (pid file {'exists' if self.pid_file.exists() else 'missing'})\n"
                f"{context}\n--- error_log ---\n{self.error_log_tail()}")

    def stop(self, timeout=15.0):
        if not self.started:
            return
        pid = self.pid() or self.last_pid
        procs = ([pid] if pid else []) + (child_pids(pid) if pid else [])
        # Also every process started from this server root (a restart may
        # have left the pid file missing or stale for a moment).
        procs += [p for p in self.processes_of_root() if p not in procs]
        try:
            self.apachectl("stop", timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if not wait_until(lambda: not any(pid_alive(p) for p in procs), timeout, 0.1):
            for p in procs:
                if pid_alive(p):
                    try:
                        os.kill(p, 9)
                    except ProcessLookupError:
                        pass
            wait_until(lambda: not any(pid_alive(p) for p in procs), 5, 0.1)
        self.started = False

    def processes_of_root(self):
        """Pids whose command line names this server's root (Apache's
        parent and children; daemons are children of the parent)."""
        root = str(self.root)
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if root in cmd:
                found.append(int(entry))
                found.extend(child_pids(int(entry)))
        return sorted(set(found))

    def restart_ready(self, timeout=20.0):
        """After restart/graceful: wait until an HTTP request succeeds."""
        def ok():
            try:
                return requests.get(self.url("/"), timeout=5).status_code < 500
            except requests.RequestException:
                return False
        return wait_until(ok, timeout, 0.2)

    # -- HTTP -------------------------------------------------------------

    def url(self, path="/"):
        if not path.startswith("/"):
            path = "/" + path
        return f"http://{self.host}:{self.port}{path}"

    def request(self, method, path="/", **kw):
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url(path), **kw)

    def get(self, path="/", **kw):
        return self.request("GET", path, **kw)

    def post(self, path="/", **kw):
        return self.request("POST", path, **kw)

    def raw(self, request, timeout=15.0):
        return raw_http(self.port, request, timeout)

    # -- logs -------------------------------------------------------------

    def error_log(self):
        try:
            return self.error_log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def error_log_tail(self, n=6000):
        return self.error_log()[-n:]

    def log_mark(self):
        try:
            return self.error_log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark):
        try:
            with open(self.error_log_path, "rb") as f:
                f.seek(mark)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, mark, *needles, timeout=10.0):
        """Waits until the log text written after `mark` contains every needle;
        returns that text (possibly without them after the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(mark)
            if all(n in text for n in needles) or time.monotonic() >= deadline:
                return text
            time.sleep(0.1)

    def __repr__(self):
        return f"<Server {self.name} {self.mpm} :{self.port} {self.root}>"


class Servers:
    """Creates servers and guarantees they are all stopped at the end."""

    def __init__(self, ws):
        self.ws = ws
        self.all = []

    def create(self, name, script, mpm="event", args=(), user=True, mode="embedded"):
        srv = Server(self.ws, name, script, mpm=mpm, args=args, user=user, mode=mode)
        self.all.append(srv)
        return srv

    def start(self, name, script, mpm="event", args=(), user=True, mode="embedded"):
        srv = self.create(name, script, mpm, args, user, mode)
        try:
            srv.setup()
            srv.start()
        except BaseException:
            srv.stop()
            raise
        return srv

    @contextlib.contextmanager
    def running(self, name, script, mpm="event", args=(), mode="embedded"):
        srv = self.start(name, script, mpm, args, mode=mode)
        try:
            yield srv
        finally:
            srv.stop()

    def stop_all(self):
        for srv in self.all:
            try:
                srv.stop()
            except Exception as e:  # keep stopping the others
                print(f"failed to stop {srv}: {e}", file=sys.stderr)


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def binaries():
    express, module = express_path(), module_path()
    missing = [str(p) for p in (express, module) if not p.exists()]
    if missing:
        pytest.fail("rwsgi binaries missing: " + ", ".join(missing) + "\n" + BUILD_HINT,
                    pytrace=False)
    home = python_home()
    if not (home / "pyvenv.cfg").exists() and not (home / "bin" / "python3.11").exists():
        pytest.fail(f"test virtualenv {home} not found: run scripts/test-env.sh", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the integration tests start Apache and must run as root", pytrace=False)
    return express, module


@pytest.fixture(scope="session")
def ws():
    workspace = Workspace()
    yield workspace
    workspace.cleanup()


@pytest.fixture(scope="session")
def servers(binaries, ws):
    mgr = Servers(ws)
    yield mgr
    mgr.stop_all()


@pytest.fixture(scope="session", params=MPMS)
def mpm(request):
    return request.param


@pytest.fixture(scope="session", params=MODES)
def wsgi_mode(request):
    """The operating mode of the core servers: embedded or daemon."""
    return request.param


@pytest.fixture(scope="session")
def core_script(ws):
    return ws.apps / "core" / "app.wsgi"


@pytest.fixture(scope="session")
def core_server(servers, ws, mpm, wsgi_mode, core_script):
    """The core test app mounted at '/', no chunked requests, no body size
    limit, in each mode."""
    srv = servers.start("core", core_script, mpm,
                        ["--log-level", "info", "--limit-request-body", "0"], mode=wsgi_mode)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def alt_server(servers, ws, mpm, wsgi_mode, core_script):
    """The core test app mounted at /app, with chunked requests allowed,
    WSGIPassAuthorization On (include file) and the default 10 MiB
    --limit-request-body."""
    srv = servers.start("alt", core_script, mpm, [
        "--mount-point", "/app", "--chunked-request", "--log-level", "info",
        "--include-file", ws.apps / "core" / "passauth.conf"], mode=wsgi_mode)
    yield srv
    srv.stop()


def new_token():
    return uuid.uuid4().hex[:12]


@pytest.fixture
def token():
    return new_token()
