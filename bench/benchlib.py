"""Shared parts of the benchmark (bench.py) and the soak test (soak.py):
paths and constants, the workloads, /proc helpers, the servers under test,
wrk, the private network namespace and the work directory.

Uses only the standard library.
"""

import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
APPS_SRC = BENCH / "apps"
RESULTS = BENCH / "results"
DOC = REPO / "docs" / "performance.md"

VENV = Path(os.environ.get("RWSGI_BENCH_VENV", "/var/tmp/rwsgi-bench-venv"))
HTTPD = os.environ.get("RWSGI_BENCH_HTTPD", "/usr/sbin/apache2")
MODULES_DIR = "/usr/lib/apache2/modules"
USER, GROUP = "nobody", "nogroup"
# Every server gets 2 processes x 15 threads where it has them. Apache's
# event MPM closes kept-alive connections of a child whose workers are all
# busy, so 15 threads per child cannot hold 64 keep-alive connections (wrk
# then reports read errors and reconnects): the 64-connection runs use
# separate Apache instances with 64 threads per child (THREADS_C64), the
# only knob mod_wsgi-express's embedded mode has (it ignores --max-clients).
PROCESSES, THREADS, THREADS_C64 = 2, 15, 64

HELLO = b"Hello world!"
BODY_64K = bytes(range(256)) * 256
POST_SIZE = 65536
FILE_1M_SIZE = 1 << 20
FLASK_ITEMS = 20  # the Flask view's list (bench/apps/flask_app.py)

NETNS_MARK = "RWSGI_BENCH_IN_NETNS"


def log(msg=""):
    print(msg, flush=True)


def warn(msg):
    print(f"!!! {msg}", flush=True)


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------

class Workload:
    def __init__(self, key, title, conns, wsgi_path, static_path=None, method="GET", flask=False):
        self.key = key
        self.title = title
        self.conns = conns
        self.wsgi_path = wsgi_path
        self.static_path = static_path  # what bare Apache serves instead, if anything
        self.method = method
        self.flask = flask


WORKLOADS = [
    Workload("hello16", "hello world (12 B), 16 conns", 16, "/hello", "/hello.txt"),
    Workload("hello64", "hello world (12 B), 64 conns", 64, "/hello", "/hello.txt"),
    Workload("r64k", "64 KiB response, 16 conns", 16, "/64k", "/64k.bin"),
    Workload("post64k", "64 KiB POST echo, 16 conns", 16, "/echo", None, method="POST"),
    Workload("file1m", "1 MiB file (wsgi.file_wrapper), 16 conns", 16, "/file", "/1m.bin"),
    Workload("flask", "Flask JSON view (20 items), 16 conns", 16, "/flask/json", None, flask=True),
]
WORKLOADS_BY_KEY = {w.key: w for w in WORKLOADS}


def expected_body(path):
    """Checks a response body of `path`; returns an error string or None."""
    return {
        "/hello": lambda b: None if b == HELLO else f"body {b[:40]!r}",
        "/hello.txt": lambda b: None if b == HELLO else f"body {b[:40]!r}",
        "/64k": lambda b: None if b == BODY_64K else f"64k body differs (len {len(b)})",
        "/64k.bin": lambda b: None if b == BODY_64K else f"64k body differs (len {len(b)})",
        "/echo": lambda b: None if b == str(POST_SIZE).encode() else f"echo said {b[:40]!r}",
        "/file": lambda b: None if b == file_1m_bytes() else f"1 MiB body differs (len {len(b)})",
        "/1m.bin": lambda b: None if b == file_1m_bytes() else f"1 MiB body differs (len {len(b)})",
        "/flask/json": check_flask_json,
    }[path]


def check_flask_json(body):
    try:
        d = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:60]!r}"
    if d.get("message") != "Hello, World!" or len(d.get("items", ())) != FLASK_ITEMS:
        return f"json {body[:60]!r} (wanted the message and {FLASK_ITEMS} items)"
    return None


def file_1m_bytes():
    # Deterministic, incompressible-looking content.
    out = bytearray()
    x = 0x12345678
    while len(out) < FILE_1M_SIZE:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out += struct.pack("<I", x)
    return bytes(out[:FILE_1M_SIZE])


# --------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------

def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def process_tree(root):
    if root is None or not pid_alive(root):
        return []
    kids = children_map()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def memory_of(pids):
    """(sum of VmRSS kB, sum of Pss kB, number of processes) over pids."""
    rss = pss = n = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
            if not m:
                continue
            rss += int(m.group(1))
            n += 1
            with open(f"/proc/{p}/smaps_rollup") as f:
                m = re.search(r"^Pss:\s+(\d+) kB", f.read(), re.M)
            if m:
                pss += int(m.group(1))
        except OSError:
            pass
    return rss, pss, n


def cmdline_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def role_of(pid, root):
    """'parent' (the server's root process), 'daemon' (a WSGI daemon
    process: rwsgi and mod_wsgi-express title theirs "(wsgi:...)"; rwsgi's
    standby process of a group, "(wsgi-standby:...)", counts as one too),
    or 'child' (an Apache child, a gunicorn/granian worker)."""
    if pid == root:
        return "parent"
    return "daemon" if cmdline_of(pid).startswith(("(wsgi:", "(wsgi-standby:")) else "child"


def processes_of(root):
    """[{pid, role, title, rss_kb, pss_kb}] over root's process tree."""
    out = []
    for p in process_tree(root):
        rss, pss, n = memory_of([p])
        if n:
            out.append({"pid": p, "role": role_of(p, root), "title": cmdline_of(p)[:60],
                        "rss_kb": rss, "pss_kb": pss})
    return out


def memory_by_role(procs):
    """{role: [rss kB summed, processes]} from processes_of()."""
    out = {}
    for p in procs:
        r = out.setdefault(p["role"], [0, 0])
        r[0] += p["rss_kb"]
        r[1] += 1
    return out


def uids_of(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^Uid:\s+(\d+)\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), int(m.group(2))


def tcp_passive_opens():
    """Connections accepted so far in this network namespace."""
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("PassiveOpens")])


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def wait_http(port, path, timeout, proc=None, expect=None):
    """Polls until GET path answers; returns None or raises RuntimeError."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} while starting")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            conn.close()
            if expect is None or r.status == expect:
                return
            last = f"status {r.status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port}{path} after {timeout}s ({last})")


def kill_tree(pids):
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------

def apache_conf(root, port, docroot, module=None, app=None, python_home=None, threads=THREADS,
                daemon=None):
    """The minimal hand-written httpd.conf shared by bare Apache and 'the
    module alone': event MPM, 2 children x 15 threads, keep-alive unlimited.
    daemon: None (embedded), or the WSGIDaemonProcess options (after the
    name) of one process group 'bench' that serves the application, the
    children running no Python (WSGIRestrictEmbedded On), as
    mod_wsgi-express and rwsgi-express configure daemon mode."""
    lines = [
        f'ServerRoot "{root}"',
        f'PidFile "{root}/httpd.pid"',
        f'DefaultRuntimeDir "{root}"',
        "ServerName localhost",
        f"User {USER}",
        f"Group {GROUP}",
        f"Listen 127.0.0.1:{port}",
        f'LoadModule mpm_event_module "{MODULES_DIR}/mod_mpm_event.so"',
        f'LoadModule authz_core_module "{MODULES_DIR}/mod_authz_core.so"',
        f'LoadModule mime_module "{MODULES_DIR}/mod_mime.so"',
        "TypesConfig /etc/mime.types",
        f'ErrorLog "{root}/error_log"',
        "LogLevel warn",
        "KeepAlive On",
        "KeepAliveTimeout 5",
        "MaxKeepAliveRequests 0",
        f"StartServers {PROCESSES}",
        f"ServerLimit {PROCESSES}",
        f"ThreadLimit {threads}",
        f"ThreadsPerChild {threads}",
        f"MinSpareThreads {threads}",
        f"MaxSpareThreads {PROCESSES * threads}",
        f"MaxRequestWorkers {PROCESSES * threads}",
        "MaxConnectionsPerChild 0",
        "<Directory />",
        "    AllowOverride None",
        "    Require all denied",
        "</Directory>",
        f'DocumentRoot "{docroot}"',
        f'<Directory "{docroot}">',
        "    Require all granted",
        "</Directory>",
    ]
    if module:
        lines += [
            f'LoadModule wsgi_module "{module}"',
            f'WSGIPythonHome "{python_home}"',
            f'WSGIScriptAlias / "{app}"',
            "WSGIApplicationGroup %{GLOBAL}",
            f'<Directory "{os.path.dirname(app)}">',
            "    Require all granted",
            "</Directory>",
        ]
        if daemon is not None:
            lines += [
                "WSGIRestrictEmbedded On",
                f"WSGIDaemonProcess bench {daemon}",
                "WSGIProcessGroup bench",
            ]
            if "mod_rwsgi" not in os.path.basename(module):
                # mod_wsgi's default socket prefix is under logs/, which
                # this server root does not have.
                lines.append(f'WSGISocketPrefix "{root}/wsgi"')
    return "\n".join(lines) + "\n"


class Server:
    """One server under test. Subclasses set cmd-specific start/stop."""

    kind = "wsgi"  # or "static"

    def __init__(self, key, title, port, root):
        self.key = key
        self.title = title
        self.port = port
        self.root = Path(root)
        self.proc = None
        self.failed = None
        self.only = None  # None: every workload; else a set of workload keys
        self.skip = set()
        self.label = key  # the name shown in tables (the same for -c64 instances)

    def path_for(self, wl):
        if (self.only is not None and wl.key not in self.only) or wl.key in self.skip:
            return None
        if self.kind == "static":
            return wl.static_path
        return wl.wsgi_path

    def root_pid(self):
        raise NotImplementedError

    def pids(self):
        return process_tree(self.root_pid())

    def stop(self):
        raise NotImplementedError

    def stop_and_wait(self):
        pids = self.pids()
        try:
            self.stop()
        except Exception as e:  # noqa: BLE001
            warn(f"{self.key}: stop failed: {e}")
        deadline = time.time() + 30
        while time.time() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if pid_alive(p)]
        if left:
            warn(f"{self.key}: killing leftover processes {left}")
            kill_tree(left)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class ApacheServer(Server):
    def pidfile(self):
        return self.root / "httpd.pid"

    def root_pid(self):
        try:
            return int(self.pidfile().read_text().strip())
        except (OSError, ValueError):
            return None

    def error_log_tail(self, n=15):
        try:
            return "\n".join((self.root / "error_log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no error_log)"


class HandWrittenApache(ApacheServer):
    """Bare Apache (static files) or the module alone, from apache_conf()."""

    def __init__(self, key, title, port, root, docroot, module=None, app=None, python_home=None,
                 threads=THREADS):
        super().__init__(key, title, port, root)
        self.kind = "wsgi" if module else "static"
        self.conf = self.root / "httpd.conf"
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        self.conf.write_text(apache_conf(self.root, port, docroot, module, app, python_home, threads))
        self.cmdline = f"{os.path.basename(HTTPD)} -f {self.conf} -k start"

    def start(self):
        run([HTTPD, "-f", str(self.conf), "-d", str(self.root), "-k", "start"])

    def stop(self):
        run([HTTPD, "-f", str(self.conf), "-d", str(self.root), "-k", "stop"], check=False)


class ExpressApache(ApacheServer):
    """rwsgi-express or mod_wsgi-express: setup-server, then apachectl."""

    def __init__(self, key, title, port, root, launcher, app, args):
        super().__init__(key, title, port, root)
        self.launcher = launcher
        self.args = [
            "setup-server", str(app), "--port", str(port), "--host", "127.0.0.1",
            "--server-root", str(self.root), "--user", USER, "--group", GROUP,
        ] + list(args)
        self.cmdline = " ".join([os.path.basename(launcher)] + self.args)

    def setup(self):
        r = run([self.launcher] + self.args, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{self.cmdline} failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def start(self):
        self.setup()
        r = run([str(self.root / "apachectl"), "start"], capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"apachectl start failed ({r.returncode}):\n{r.stdout}{r.stderr}")

    def stop(self):
        run([str(self.root / "apachectl"), "stop"], check=False, capture_output=True)


class PythonServer(Server):
    """gunicorn / granian, run as nobody through setpriv."""

    def __init__(self, key, title, port, root, cmd):
        super().__init__(key, title, port, root)
        self.cmd = cmd
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o777)
        self.cmdline = " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))

    def start(self):
        env = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": str(self.root), "LANG": "C.UTF-8"}
        self.logf = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={USER}", f"--regid={GROUP}", "--clear-groups", "--"] + self.cmd,
            cwd=self.root, env=env, stdout=self.logf, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def root_pid(self):
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def error_log_tail(self, n=15):
        try:
            return "\n".join((self.root / "server.log").read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------

REPORT_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"lat_mean_us":%.1f,"lat_max_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""

POST_LUA = f"""
wrk.method = "POST"
wrk.body = string.rep("x", {POST_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
""" + REPORT_LUA


def wrk(port, path, conns, seconds, lua, threads=2):
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "--latency", "-s", str(lua), f"http://127.0.0.1:{port}{path}"]
    r = run(cmd, capture_output=True, text=True, check=False)
    m = re.search(r"^WRKJSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stdout[-600:]}{r.stderr[-600:]}")
    d = json.loads(m.group(1))
    # Cross-check wrk's own summary lines.
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", r.stdout)
    d["non2xx_line"] = int(non2xx.group(1)) if non2xx else 0
    d["rps"] = d["requests"] / (d["duration_us"] / 1e6) if d["duration_us"] else 0.0
    d["socket_errors"] = d["connect"] + d["read"] + d["write"] + d["timeout"]
    d["raw"] = r.stdout
    return d


def check_route(port, wl, path):
    """One request of the workload, checked for status 200 and content."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        if wl.method == "POST":
            conn.request("POST", path, body=b"x" * POST_SIZE,
                         headers={"Content-Type": "application/octet-stream"})
        else:
            conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            return f"status {r.status}: {body[:200]!r}"
        return expected_body(path)(body)
    except (OSError, http.client.HTTPException, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Network namespace
# --------------------------------------------------------------------------

def loopback_up():
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))
    finally:
        s.close()


def enter_netns(no_netns):
    """Re-runs this script in a private network namespace (its own loopback),
    so ports never clash with other servers on the machine and the kernel's
    TCP counters count exactly the benchmark's connections."""
    if os.environ.get(NETNS_MARK) or no_netns:
        return
    if not shutil.which("unshare"):
        warn("unshare not found: running in the host network namespace")
        return
    env = dict(os.environ, **{NETNS_MARK: "1"})
    try:
        r = subprocess.run(["unshare", "--net", "--", sys.executable] + sys.argv, env=env)
    except KeyboardInterrupt:
        sys.exit(130)
    if r.returncode == 97:  # could not bring the namespace up: fall back
        warn("private network namespace unusable: running in the host network namespace")
        return
    sys.exit(r.returncode)




def netns_loopback():
    """In the private namespace enter_netns() made: brings up its loopback
    (exit status 97 tells the parent to fall back). True when private."""
    if not os.environ.get(NETNS_MARK):
        return False
    try:
        loopback_up()
    except OSError as e:
        warn(f"cannot bring up loopback in the new network namespace: {e}")
        sys.exit(97)
    return True


# --------------------------------------------------------------------------
# Work directory and binaries
# --------------------------------------------------------------------------

def prepare_work(work):
    """Fills the (new, world-readable) work directory: apps/ (bench/apps and
    the generated data/1m.bin) and htdocs/ (what bare Apache serves).
    Returns (apps, docroot)."""
    apps = work / "apps"
    shutil.copytree(APPS_SRC, apps, ignore=shutil.ignore_patterns("__pycache__"))
    (apps / "data").mkdir()
    (apps / "data" / "1m.bin").write_bytes(file_1m_bytes())
    docroot = work / "htdocs"
    docroot.mkdir()
    (docroot / "hello.txt").write_bytes(HELLO)
    (docroot / "64k.bin").write_bytes(BODY_64K)
    (docroot / "1m.bin").write_bytes(file_1m_bytes())
    for p in [apps, apps / "data", docroot] + list(apps.rglob("*")) + list(docroot.iterdir()):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return apps, docroot


def binary_stamp(path):
    """'built <mtime>, sha256 <first 12>' of a file: the target/ binaries are
    rebuilt by whoever works in the tree, and git describe does not say
    which build a run used."""
    import datetime
    import hashlib
    try:
        data = Path(path).read_bytes()
        t = datetime.datetime.fromtimestamp(os.stat(path).st_mtime).isoformat(sep=" ", timespec="seconds")
    except OSError as e:
        return f"unreadable ({e})"
    return f"built {t}, sha256 {hashlib.sha256(data).hexdigest()[:12]}"


def binaries(work=None):
    """(rwsgi-express, mod_rwsgi.so, mod_wsgi-express, mod_wsgi's module).
    With work, rwsgi-express and mod_rwsgi.so are first copied to work/bin
    (rwsgi-express takes the mod_rwsgi.so next to it) and the copies are
    returned: a rebuild in target/ during a run (others work in this tree)
    then cannot mix two builds in one set of figures."""
    express = REPO / "target" / "release" / "rwsgi-express"
    rw_module = REPO / "target" / "release" / "mod_rwsgi.so"
    if not rw_module.exists():
        rw_module = REPO / "target" / "release" / "libmod_rwsgi.so"
    if work is not None and express.exists() and rw_module.exists():
        bindir = work / "bin"
        bindir.mkdir(mode=0o755, exist_ok=True)
        os.chmod(bindir, 0o755)
        shutil.copy2(express, bindir / "rwsgi-express")
        shutil.copy2(rw_module, bindir / "mod_rwsgi.so")
        for f in ("rwsgi-express", "mod_rwsgi.so"):
            os.chmod(bindir / f, 0o755)
        express, rw_module = bindir / "rwsgi-express", bindir / "mod_rwsgi.so"
    mw_express = VENV / "bin" / "mod_wsgi-express"
    r = run([str(mw_express), "module-config"], capture_output=True, text=True)
    mw_module = re.search(r'^LoadModule wsgi_module "?([^"\n]+)"?', r.stdout, re.M).group(1)
    return express, rw_module, mw_express, mw_module
