#!/usr/bin/env python3
"""Side-by-side benchmark: rwsgi vs mod_wsgi 6.1.1 vs bare Apache, gunicorn, granian.

Run it through bench/run.sh, which installs the peers into the benchmark
virtualenv and runs this file with that virtualenv's Python:

    bash bench/run.sh            # full run (about 25 minutes on 2 cores)
    bash bench/run.sh --smoke    # 2-second runs, one round, tiny callgrind

See docs/performance.md for what is measured and how to read the output.
Nothing here asserts a timing: goals are printed with their measured ratios.
Uses only the standard library (plus the servers and wrk it runs).
"""

import argparse
import datetime
import fcntl
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
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
    Workload("flask", "Flask JSON view, 16 conns", 16, "/flask/json", None, flask=True),
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
        "/flask/json": lambda b: None if json.loads(b).get("message") == "Hello, World!" else f"json {b[:60]!r}",
    }[path]


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

def apache_conf(root, port, docroot, module=None, app=None, python_home=None, threads=THREADS):
    """The minimal hand-written httpd.conf shared by bare Apache and 'the
    module alone': event MPM, 2 children x 15 threads, keep-alive unlimited."""
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
# callgrind: instructions per request of `httpd -X`
# --------------------------------------------------------------------------

def callgrind_total(out_file):
    total = 0
    for line in Path(out_file).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
    return total


def callgrind_one(srv_dir, conf, port, path, n, log_prefix):
    """Runs `valgrind --tool=callgrind apache2 -X`, sends n sequential GETs on
    one keep-alive connection, stops Apache; returns (Ir total, uid seen)."""
    out = srv_dir / f"callgrind.{log_prefix}.out"
    # Callgrind opens its output file when it starts (as root) and writes it
    # at exit, when Apache runs as nobody: it must be writable by nobody.
    out.write_bytes(b"")
    os.chmod(out, 0o666)
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
           "--vgdb=no", HTTPD, "-X", "-f", str(conf), "-d", str(srv_dir)]
    vlog = open(srv_dir / f"valgrind.{log_prefix}.log", "wb")
    proc = subprocess.Popen(cmd, stdout=vlog, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(port, path, 600, proc=proc)
        uid = uids_of(proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or expected_body(path)(body):
                raise RuntimeError(f"callgrind run: {path} answered {r.status} {body[:80]!r}")
        conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            kill_tree(process_tree(proc.pid))
            proc.wait()
        vlog.close()
    if not out.exists():
        raise RuntimeError(f"callgrind wrote no output ({srv_dir}/valgrind.{log_prefix}.log)")
    return callgrind_total(out), uid


def run_callgrind(work, docroot, app, module_paths, n1, n2, repeats, port):
    """Ir per request = (Ir(n2) - Ir(n1)) / (n2 - n1): start-up, the first
    requests and shut-down cancel out."""
    configs = [("static", None, "/hello.txt")] + [(k, m, "/hello") for k, m in module_paths]
    results = {}
    for key, module, path in configs:
        d = work / f"callgrind-{key}"
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        conf = d / "httpd.conf"
        conf.write_text(apache_conf(d, port, docroot, module, app, VENV if module else None))
        samples = []
        for rep in range(repeats):
            log(f"  callgrind {key}: N={n1} and N={n2} (repeat {rep + 1}/{repeats}) ...")
            t0 = time.time()
            ir1, uid = callgrind_one(d, conf, port, path, n1, f"{rep}.n1")
            ir2, _ = callgrind_one(d, conf, port, path, n2, f"{rep}.n2")
            per = (ir2 - ir1) / (n2 - n1)
            samples.append({"ir_n1": ir1, "ir_n2": ir2, "per_request": per})
            log(f"    Ir(N={n1})={ir1:,}  Ir(N={n2})={ir2:,}  -> {per:,.0f} per request"
                f"  (uid {uid[0]}/{uid[1]}, {time.time() - t0:.0f}s)")
            if uid[1] == 0:
                warn(f"callgrind {key}: Apache -X still runs as root (euid 0)")
        results[key] = {
            "path": path,
            "uid": list(uid),
            "samples": samples,
            "per_request": statistics.median(s["per_request"] for s in samples),
        }
    static = results["static"]["per_request"]
    for key, r in results.items():
        r["module_per_request"] = r["per_request"] - static
    return results


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


def enter_netns(args):
    """Re-runs this script in a private network namespace (its own loopback),
    so ports never clash with other servers on the machine and the kernel's
    TCP counters count exactly the benchmark's connections."""
    if os.environ.get(NETNS_MARK) or args.no_netns:
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


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------

def fmt_int(x):
    return f"{x:,.0f}"


def ms(us):
    return f"{us / 1000:.2f}"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def build_tables(data):
    servers = data["servers"]
    runs = data["runs"]
    lines = []
    lines.append("Summary (median over rounds; req/s of each round in brackets; RSS: median of the end-of-run sums):")
    hdr = f"{'workload':<9} {'server':<24} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8}  rounds"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for wl in data["workloads"]:
        for s in servers:
            rs = [r for r in runs if r["workload"] == wl and r["server"] == s["key"] and not r.get("error")]
            if not rs:
                continue
            flag = "  <<< flagged" if any(r["non2xx"] or r["socket_errors"] or r.get("keepalive_broken")
                                         for r in rs) else ""
            lines.append(
                f"{wl:<9} {s['key']:<24} {fmt_int(median(r['rps'] for r in rs)):>9} "
                f"{ms(median(r['p50_us'] for r in rs)):>7} {ms(median(r['p99_us'] for r in rs)):>7} "
                f"{median(r['rss_kb'] for r in rs) / 1024:>8.1f}  "
                f"[{', '.join(fmt_int(r['rps']) for r in rs)}]{flag}")
    cg = data.get("callgrind")
    if cg:
        lines.append("")
        n1, n2 = data["config"]["callgrind_n"]
        lines.append(f"Instructions per hello request (callgrind, apache2 -X, (Ir(N={n2}) - Ir(N={n1})) / {n2 - n1}):")
        for key, r in cg.items():
            lines.append(f"  {key:<10} {fmt_int(r['per_request']):>9} Ir/request;"
                         f"  the module's share (minus the static file's): {fmt_int(r['module_per_request']):>9}"
                         f"  (samples: {', '.join(fmt_int(s['per_request']) for s in r['samples'])})")
    lines.append("")
    lines.append("Every measured run, in the order run (RSS/PSS summed over the server's processes at the end of the run;")
    lines.append("conns = connections the server accepted during the run, wrk's connections + 1 when keep-alive works):")
    hdr = (f"{'workload':<9} {'server':<24} {'rnd':>3} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
           f"{'non2xx':>6} {'sockerr':>7} {'conns':>6} {'RSS MiB':>8} {'PSS MiB':>8} {'procs':>5}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in runs:
        if r.get("error"):
            lines.append(f"{r['workload']:<9} {r['server']:<24} {r['round']:>3} ERROR: {r['error']}")
            continue
        flag = ""
        if r["non2xx"] or r["socket_errors"]:
            flag = "  <<< ERRORS"
        elif r.get("keepalive_broken"):
            flag = "  <<< KEEP-ALIVE BROKEN"
        lines.append(
            f"{r['workload']:<9} {r['server']:<24} {r['round']:>3} {fmt_int(r['rps']):>9} "
            f"{ms(r['p50_us']):>7} {ms(r['p99_us']):>7} {r['non2xx']:>6} {r['socket_errors']:>7} "
            f"{r['conns_opened'] if r['conns_opened'] is not None else '?':>6} "
            f"{r['rss_kb'] / 1024:>8.1f} {r['pss_kb'] / 1024:>8.1f} {r['nprocs']:>5}{flag}")
    return "\n".join(lines)


def ratio_line(label, num, den, goal, higher_is_better=True, extra=""):
    if num is None or den is None or den == 0:
        return f"{label} = n/a (goal {'>=' if higher_is_better else '<='} {goal:.2f}){extra}", None
    v = num / den
    met = v >= goal if higher_is_better else v <= goal
    return (f"{label} = {v:.2f} (goal {'>=' if higher_is_better else '<='} {goal:.2f}) "
            f"{'met' if met else 'NOT MET'}{extra}", {"label": label, "ratio": v, "goal": goal,
                                                      "higher_is_better": higher_is_better, "met": met})


def goals(data):
    runs = [r for r in data["runs"] if not r.get("error")]

    def rps(server, wl):
        return median(r["rps"] for r in runs if r["server"] == server and r["workload"] == wl)

    def per_round(a, b, wl):
        out = []
        for rnd in sorted({r["round"] for r in runs}):
            x = [r["rps"] for r in runs if r["server"] == a and r["workload"] == wl and r["round"] == rnd]
            y = [r["rps"] for r in runs if r["server"] == b and r["workload"] == wl and r["round"] == rnd]
            if x and y and y[0]:
                out.append(x[0] / y[0])
        return f"  (per round: {', '.join(f'{v:.2f}' for v in out)})" if out else ""

    def peak_rss(server):
        xs = [r["rss_kb"] for r in runs if r["server"] == server]
        return max(xs) if xs else None

    lines, parsed = [], []

    def add(label, a, b, wl, goal):
        line, p = ratio_line(label, rps(a, wl), rps(b, wl), goal, True, per_round(a, b, wl))
        lines.append(line)
        if p:
            parsed.append(p)

    add("express embedded hello c16: rwsgi/mod_wsgi", "rwsgi-express", "mod_wsgi-express", "hello16", 1.40)
    add("express embedded hello c64: rwsgi/mod_wsgi", "rwsgi-express-c64", "mod_wsgi-express-c64", "hello64", 1.40)
    add("module alone hello c16: rwsgi/apache-static", "rwsgi-alone", "apache-static", "hello16", 0.90)
    add("module alone hello c64: rwsgi/apache-static", "rwsgi-alone-c64", "apache-static-c64", "hello64", 0.90)
    add("module alone hello c16: rwsgi/mod_wsgi", "rwsgi-alone", "mod_wsgi-alone", "hello16", 1.10)
    add("module alone hello c64: rwsgi/mod_wsgi", "rwsgi-alone-c64", "mod_wsgi-alone-c64", "hello64", 1.10)
    cg = data.get("callgrind") or {}
    if "rwsgi" in cg and "mod_wsgi" in cg:
        a, b = cg["rwsgi"]["module_per_request"], cg["mod_wsgi"]["module_per_request"]
        line, p = ratio_line("instructions per hello request attributable to the module: rwsgi/mod_wsgi",
                             a, b, 0.60, False, f"  ({fmt_int(a)} vs {fmt_int(b)} Ir)")
        lines.append(line)
        if p:
            parsed.append(p)
    else:
        lines.append("instructions per hello request attributable to the module: rwsgi/mod_wsgi = not measured (goal <= 0.60)")
    add("module alone 64 KiB response: rwsgi/apache-static-64k", "rwsgi-alone", "apache-static", "r64k", 0.90)
    add("module alone 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-alone", "mod_wsgi-alone", "post64k", 1.20)
    add("express embedded 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-express", "mod_wsgi-express", "post64k", 1.20)
    # Daemon mode (issue goals): >= 2.0x mod_wsgi-express daemon; >= 0.70x rwsgi embedded.
    add("express daemon hello c16: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "hello16", 2.00)
    add("express daemon hello c64: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "hello64", 2.00)
    add("rwsgi daemon/embedded hello c16", "rwsgi-express-daemon", "rwsgi-express", "hello16", 0.70)
    add("express daemon 64 KiB response: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "r64k", 2.00)
    add("express daemon 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "post64k", 2.00)
    add("module alone 1 MiB wsgi.file_wrapper: rwsgi/apache-static-1m", "rwsgi-alone", "apache-static", "file1m", 0.90)
    for a, b, label in (("rwsgi-express", "mod_wsgi-express", "express embedded"),
                        ("rwsgi-alone", "mod_wsgi-alone", "module alone")):
        ra, rb = peak_rss(a), peak_rss(b)
        line, p = ratio_line(f"RSS {label} (peak of end-of-run sums): rwsgi/mod_wsgi", ra, rb, 1.00, False,
                             f"  ({ra / 1024:.1f} vs {rb / 1024:.1f} MiB)" if ra and rb else "")
        lines.append(line)
        if p:
            parsed.append(p)
    return lines, parsed


def keepalive_notes(data):
    """Explains servers that reconnected: Apache closes a connection after
    MaxKeepAliveRequests requests (100 unless the configuration says)."""
    notes = []
    for s in data["servers"]:
        rs = [r for r in data["runs"] if r["server"] == s["key"] and not r.get("error")
              and r.get("conns_opened") and r["conns_opened"] > r["conns"] + 1]
        if len(rs) < 2:
            continue
        per_conn = median(r["requests"] / (r["conns_opened"] - 1) for r in rs)
        if 80 <= per_conn <= 110:
            notes.append(
                f"{s['key']} closed its connections after about {per_conn:.0f} requests each "
                f"in {len(rs)} runs: that is Apache's default MaxKeepAliveRequests 100, which "
                f"its httpd.conf does not override (mod_wsgi-express writes "
                f"MaxKeepAliveRequests 0 for the event MPM); wrk reconnects, so its figures "
                f"include a TCP handshake every ~100 requests.")
    return notes


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": (Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"),
    }


def versions():
    def out(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    v = {
        "apache": out([HTTPD, "-v"]).split(":", 1)[-1].strip(),
        "wrk": out(["wrk", "--version"]).split(" Copyright")[0],
        "valgrind": out(["valgrind", "--version"]),
        "python": out([str(VENV / "bin" / "python"), "--version"]),
    }
    for pkg in ("mod_wsgi", "gunicorn", "granian", "flask"):
        v[pkg] = out([str(VENV / "bin" / "python"), "-c",
                      f"import importlib.metadata as m; print(m.version('{pkg}'))"])
    try:
        v["rwsgi_git"] = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        v["rwsgi_git"] = "?"
    return v


def write_doc(data, table, goal_lines, stem):
    m = data["machine"]
    v = data["versions"]
    c = data["config"]
    probs = data.get("problems") or []
    problems_md = ("\n".join(f"- {p.splitlines()[0]}" for p in probs) if probs
                   else "None: every run had 0 non-2xx responses, 0 socket errors and working keep-alive.")
    notes = keepalive_notes(data)
    if notes:
        problems_md += "\n\n" + "\n\n".join(f"**{n}**" for n in notes)
    cmdlines = {k: re.sub(r"/tmp/rwsgi-bench-[0-9-]+", "$WORK", v) for k, v in data["cmdlines"].items()}
    doc = f"""# Performance

Side-by-side benchmark of rwsgi against mod_wsgi 6.1.1 (embedded and daemon
mode), bare Apache serving static files (the ceiling), gunicorn and granian.
Generated by `bench/bench.py` from the run saved as
`bench/results/{stem}.json` / `.txt`; re-running the full benchmark rewrites
this file.

## Command

```sh
bash bench/run.sh            # full run, writes bench/results/<timestamp>.* and this file
bash bench/run.sh --smoke    # CI smoke: 2-second runs, one round, tiny callgrind; writes nothing here
```

`bench/run.sh` creates the benchmark virtualenv `{VENV}` on
`/usr/bin/python3.11` (world-readable, Apache's children run as `nobody`) and
installs mod-wsgi 6.1.1 (compiled against the local apxs), gunicorn, granian
and Flask into it with `pip install --no-cache-dir`; it installs `wrk`
(and valgrind) from Debian's packages when missing, builds the module with
`scripts/build.sh` when `target/release/mod_rwsgi.so` or
`target/release/rwsgi-express` is missing, then runs `bench/bench.py` (see
`bench/bench.py --help` for run length, rounds, server and workload
selection).

## Machine of this run

- {m['nproc']} CPUs: {m['cpu']}; {m['memory_gib']} GiB; kernel {m['kernel']}; Debian {m['os']}
- {v['apache']}, event MPM; {v['python']} (Debian's, in the benchmark venv)
- mod_wsgi {v['mod_wsgi']}, gunicorn {v['gunicorn']}, granian {v['granian']}, Flask {v['flask']}, {v['wrk']}, {v['valgrind']}
- rwsgi at `{v['rwsgi_git']}`, run started {data['started']}
- {c['rounds']} round(s) of {c['duration']} s per configuration after a {c['warmup']} s warm-up each, interleaved (A B C ... A B C ...)
- the machine is shared and noisy (2 cores, other builds and test suites were running): compare
  ratios within a round, and trust the instruction counts over the timings

## Results

```
{table}
```

## Goals

Ratios of the medians over the rounds (each round's own ratio in
brackets); `met`/`NOT MET` compares with the goal as stated, never adjusted.

```
{chr(10).join(goal_lines)}
```

## Problems flagged in this run

{problems_md}

## What runs

All servers run on 127.0.0.1 inside a private network namespace (`unshare
--net`) so the kernel's TCP counters count exactly the benchmark's
connections (`conns` = connections accepted during the measured run: with
working keep-alive it equals the wrk connection count), as user `nobody`,
serving the same files (`bench/apps/app.py`, `bench/apps/flask_app.py`,
copied with generated data files to a world-readable directory):

| server | how it is started |
| --- | --- |
| `rwsgi-express` | `{cmdlines.get('rwsgi-express', 'rwsgi-express setup-server ...')}` then `apachectl start` |
| `mod_wsgi-express` | `{cmdlines.get('mod_wsgi-express', 'mod_wsgi-express setup-server ...')}` then `apachectl start` |
| `mod_wsgi-express-daemon` | `{cmdlines.get('mod_wsgi-express-daemon', 'mod_wsgi-express setup-server ...')}` (daemon mode, mod_wsgi-express's default) |
| `rwsgi-express-daemon` | `{cmdlines.get('rwsgi-express-daemon', 'rwsgi-express setup-server ...')}` (daemon mode, rwsgi-express's default) |
| `apache-static` | hand-written minimal httpd.conf (below), no WSGI module; serves `hello.txt` (12 B), `64k.bin`, `1m.bin` |
| `rwsgi-alone` | the same httpd.conf plus `LoadModule wsgi_module target/release/mod_rwsgi.so`, `WSGIPythonHome`, `WSGIScriptAlias / app.py`, `WSGIApplicationGroup %{{GLOBAL}}` |
| `mod_wsgi-alone` | the same with mod_wsgi 6.1.1's module (path from `mod_wsgi-express module-config`) |
| `gunicorn` | `{cmdlines.get('gunicorn', 'gunicorn ...')}` |
| `granian` | `{cmdlines.get('granian', 'granian ...')}` |

The hand-written httpd.conf: event MPM, `StartServers 2`, `ServerLimit 2`,
`ThreadsPerChild 15`, `MaxRequestWorkers 30`, `MinSpareThreads 15`,
`MaxSpareThreads 30`, `KeepAlive On`, `MaxKeepAliveRequests 0`, mod_authz_core
and mod_mime only, no access log (see `apache_conf()` in `bench/bench.py`).

**64 connections.** Apache's event MPM closes the kept-alive connections of a
child whose worker threads are all busy, so 2 × 15 threads cannot hold 64
keep-alive connections: wrk then reports read errors and reconnects
thousands of times and the figures mean nothing. mod_wsgi-express ignores
`--max-clients` in embedded mode (MaxRequestWorkers is always processes ×
threads), so the one knob both launchers share is `--threads`: the hello c64
row runs on separate instances (`*-c64`) started with `--processes 2
--threads {c.get('threads_c64', 64)}` (hand-written: `ThreadsPerChild {c.get('threads_c64', 64)}`), enough for a
child to hold every connection whatever way the connections are spread over
the two children. mod_wsgi-express in daemon mode, gunicorn and granian
keep idle connections without a thread each and use their single 2 × 15
instance for every workload. Even at 16 connections a child of 15 threads
can briefly hold 16 connections, which shows as a rare read error.

`conns` counts wrk's connections plus one (wrk opens a connection to check
the address before it starts); more than that means the server closed
kept-alive connections (flagged `<<< KEEP-ALIVE BROKEN`).

Workloads (wrk, 2 threads, `--latency`, a Lua `done()` hook prints the
figures as JSON; POST through a Lua script): hello world (12 bytes) at 16 and
64 connections; a 64 KiB response; a 64 KiB POST read from `wsgi.input` and
answered with its length; 1 MiB through `wsgi.file_wrapper`; a Flask JSON
view — all but hello at 16 connections. Bare Apache serves the 12-byte,
64 KiB and 1 MiB files statically as the ceilings. Every route is checked
once (status 200, exact body) before the runs; `non2xx` counts 4xx/5xx
during a run and `sockerr` wrk's connect/read/write/timeout errors — both
must be 0 and are flagged `<<< ERRORS` otherwise.

RSS is VmRSS summed over the server's whole process tree (Apache's root
parent, its children and, for daemon mode, the daemon processes; gunicorn's
and granian's master and workers), read from /proc at the end of each run;
PSS (from smaps_rollup) is shown as well because summed RSS counts shared
pages once per process.

Instructions per request: `valgrind --tool=callgrind /usr/sbin/apache2 -X`
(one process; Apache still drops to `nobody`, the uid is checked and shown)
with the hand-written configuration, N1 = {c['callgrind_n'][0]} and N2 = {c['callgrind_n'][1]}
sequential keep-alive GETs in two separate runs; Ir/request = (Ir(N2) −
Ir(N1)) / (N2 − N1), so start-up, warm-up and shut-down cancel out. The
module's share is that minus the same figure for the static 12-byte file.
"""
    DOC.write_text(doc)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="2-second runs, one round, small callgrind; prints the tables, saves nothing")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 10, smoke 2)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up before each run (default 2, smoke 1)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 2, smoke 1)")
    ap.add_argument("--servers", help="comma-separated subset of: rwsgi-express, mod_wsgi-express, "
                    "rwsgi-express-daemon, mod_wsgi-express-daemon, apache-static, rwsgi-alone, mod_wsgi-alone, "
                    "gunicorn, granian")
    ap.add_argument("--workloads", help="comma-separated subset of: " + ",".join(WORKLOADS_BY_KEY))
    ap.add_argument("--callgrind-n", help="N1,N2 for callgrind (default 200,2200; smoke 20,220)")
    ap.add_argument("--callgrind-repeats", type=int, help="callgrind repetitions (default 2, smoke 1)")
    ap.add_argument("--no-callgrind", action="store_true", help="skip the callgrind measurement")
    ap.add_argument("--no-netns", action="store_true", help="stay in the host network namespace")
    ap.add_argument("--base-port", type=int, default=18400, help="first of the ports used (default 18400)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/ nor docs/performance.md")
    ap.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")
    ap.add_argument("--doc-from", metavar="RESULTS_JSON",
                    help="only rewrite docs/performance.md (and print the tables) from a saved results file")
    args = ap.parse_args()

    if args.doc_from:
        data = json.loads(Path(args.doc_from).read_text())
        table = build_tables(data)
        goal_lines, _ = goals(data)
        log(table + "\n\nGoals:\n" + "\n".join("  " + line for line in goal_lines))
        write_doc(data, table, goal_lines, Path(args.doc_from).stem)
        log(f"wrote {DOC}")
        return 0

    enter_netns(args)
    in_netns = bool(os.environ.get(NETNS_MARK))
    if in_netns:
        try:
            loopback_up()
        except OSError as e:
            warn(f"cannot bring up loopback in the new network namespace: {e}")
            sys.exit(97)

    duration = args.duration or (2 if args.smoke else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 2)
    rounds = args.rounds or (1 if args.smoke else 2)
    n1, n2 = (20, 220) if args.smoke else (200, 2200)
    cg_repeats = args.callgrind_repeats or (1 if args.smoke else 2)
    if args.callgrind_n:
        n1, n2 = (int(x) for x in args.callgrind_n.split(","))
    save = not (args.smoke or args.no_save)

    express = REPO / "target" / "release" / "rwsgi-express"
    rw_module = REPO / "target" / "release" / "mod_rwsgi.so"
    if not rw_module.exists():
        rw_module = REPO / "target" / "release" / "libmod_rwsgi.so"
    mw_express = VENV / "bin" / "mod_wsgi-express"
    r = run([str(mw_express), "module-config"], capture_output=True, text=True)
    mw_module = re.search(r'^LoadModule wsgi_module "?([^"\n]+)"?', r.stdout, re.M).group(1)

    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    work = Path(f"/tmp/rwsgi-bench-{stamp}-{os.getpid()}")
    work.mkdir(mode=0o755)
    os.chmod(work, 0o755)
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
    app = apps / "app.py"
    report_lua = work / "report.lua"
    report_lua.write_text(REPORT_LUA)
    post_lua = work / "post.lua"
    post_lua.write_text(POST_LUA)

    log(f"work directory: {work}")
    log(f"network namespace: {'private (unshare --net)' if in_netns else 'host'}")

    port = iter(range(args.base_port, args.base_port + 100))
    all_servers = []
    for threads, suffix in ((THREADS, ""), (THREADS_C64, "-c64")):
        # "-c64" instances serve only hello64 (see THREADS_C64); the others all the rest.
        flags = ["--processes", str(PROCESSES), "--threads", str(threads), "--server-mpm", "event"]
        group = [
            ExpressApache("rwsgi-express" + suffix, "rwsgi-express --embedded-mode", next(port),
                          work / ("rwsgi-express" + suffix), str(express), app,
                          flags + ["--embedded-mode", "--python-home", str(VENV)]),
            ExpressApache("mod_wsgi-express" + suffix, "mod_wsgi-express --embedded-mode", next(port),
                          work / ("mod_wsgi-express" + suffix), str(mw_express), app,
                          flags + ["--embedded-mode"]),
            HandWrittenApache("apache-static" + suffix, "bare Apache, static files", next(port),
                              work / ("apache-static" + suffix), docroot, threads=threads),
            HandWrittenApache("rwsgi-alone" + suffix, "mod_rwsgi, minimal httpd.conf", next(port),
                              work / ("rwsgi-alone" + suffix), docroot, str(rw_module), str(app), str(VENV),
                              threads=threads),
            HandWrittenApache("mod_wsgi-alone" + suffix, "mod_wsgi 6.1.1, minimal httpd.conf", next(port),
                              work / ("mod_wsgi-alone" + suffix), docroot, mw_module, str(app), str(VENV),
                              threads=threads),
        ]
        for srv in group:
            if suffix:
                srv.only = {"hello64"}
            else:
                srv.skip = {"hello64"}
        all_servers += group
    # One instance each for every workload: mod_wsgi-express sizes the Apache
    # in front of its daemon processes itself; gunicorn and granian hold
    # idle keep-alive connections without a thread each.
    flags = ["--processes", str(PROCESSES), "--threads", str(THREADS), "--server-mpm", "event"]
    all_servers.append(ExpressApache(
        "mod_wsgi-express-daemon", "mod_wsgi-express (daemon mode)", next(port),
        work / "mod_wsgi-express-daemon", str(mw_express), app, flags))
    all_servers.append(ExpressApache(
        "rwsgi-express-daemon", "rwsgi-express (daemon mode, its default)", next(port),
        work / "rwsgi-express-daemon", str(express), app, flags + ["--python-home", str(VENV)]))
    gport, grport = next(port), next(port)
    all_servers.append(PythonServer(
        "gunicorn", "gunicorn gthread", gport, work / "gunicorn",
        [str(VENV / "bin" / "gunicorn"), "--workers", str(PROCESSES), "--threads", str(THREADS),
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{gport}", "--chdir", str(apps),
         "--keep-alive", "5", "--log-level", "warning", "app:application"]))
    all_servers.append(PythonServer(
        "granian", "granian wsgi", grport, work / "granian",
        [str(VENV / "bin" / "granian"), "--interface", "wsgi", "--http", "1", "--host", "127.0.0.1",
         "--port", str(grport), "--workers", str(PROCESSES), "--blocking-threads", str(THREADS),
         "--working-dir", str(apps), "--log-level", "warning", "app:application"]))
    order = ["rwsgi-express", "mod_wsgi-express", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "apache-static",
             "rwsgi-alone", "mod_wsgi-alone", "gunicorn", "granian"]
    all_servers.sort(key=lambda srv: order.index(srv.key.replace("-c64", "")))

    workloads = WORKLOADS
    if args.workloads:
        workloads = [WORKLOADS_BY_KEY[k] for k in args.workloads.split(",")]
    servers = all_servers
    if args.servers:
        want = args.servers.split(",")
        unknown = set(want) - {srv.key.replace("-c64", "") for srv in all_servers}
        if unknown:
            ap.error(f"unknown servers {sorted(unknown)}; known: {order}")
        servers = [srv for srv in all_servers if srv.key.replace("-c64", "") in want]
    # Start only what some selected workload needs.
    servers = [srv for srv in servers if any(srv.path_for(wl) for wl in workloads)]
    if any(srv.key.startswith("rwsgi-express") for srv in servers) and not express.exists():
        sys.exit(f"{express} is missing: build it with scripts/build.sh (or leave out rwsgi-express with --servers)")

    data = {
        "started": started.isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": machine_info(),
        "versions": versions(),
        "network_namespace": "private" if in_netns else "host",
        "config": {"duration": duration, "warmup": warmup, "rounds": rounds, "processes": PROCESSES,
                   "threads": THREADS, "threads_c64": THREADS_C64, "callgrind_n": [n1, n2],
                   "callgrind_repeats": cg_repeats, "wrk_threads": 2},
        "servers": [{"key": s.key, "title": s.title, "port": s.port} for s in servers],
        "cmdlines": {s.key: s.cmdline for s in servers if hasattr(s, "cmdline")},
        "workloads": [w.key for w in workloads],
        "runs": [],
        "problems": [],
    }
    problems = data["problems"]

    fatal = []

    def problem(msg, is_fatal=True):
        warn(msg)
        problems.append(msg)
        if is_fatal:
            fatal.append(msg)

    started_servers = []
    try:
        # ---- start everything, check every route once ----
        for s in servers:
            log(f"starting {s.key} on port {s.port} ...")
            try:
                s.start()
                started_servers.append(s)
                wait_http(s.port, "/hello.txt" if s.kind == "static" else "/hello", 120, proc=s.proc)
            except Exception as e:  # noqa: BLE001
                s.failed = f"start failed: {e}"
                problem(f"{s.key}: {s.failed}\n{s.error_log_tail()}")
                continue
            for wl in workloads:
                path = s.path_for(wl)
                if path is None:
                    continue
                err = check_route(s.port, wl, path)
                if err:
                    problem(f"{s.key}: {wl.method} {path} is wrong: {err}")
                    s.route_errors = getattr(s, "route_errors", set()) | {wl.key}
            rss, pss, n = memory_of(s.pids())
            log(f"  up: {n} processes, RSS {rss / 1024:.1f} MiB, PSS {pss / 1024:.1f} MiB (idle)")

        # ---- measured runs: for each workload, rounds of every server ----
        total = sum(1 for wl in workloads for s in servers if s.path_for(wl)) * rounds
        done = 0
        for wl in workloads:
            for rnd in range(1, rounds + 1):
                for s in servers:
                    path = s.path_for(wl)
                    if path is None:
                        continue
                    done += 1
                    rec = {"workload": wl.key, "server": s.key, "round": rnd, "path": path,
                           "method": wl.method, "conns": wl.conns}
                    if s.failed:
                        rec["error"] = s.failed
                        data["runs"].append(rec)
                        continue
                    lua = post_lua if wl.method == "POST" else report_lua
                    try:
                        if warmup > 0:
                            wrk(s.port, path, wl.conns, warmup, lua)
                        opens0 = tcp_passive_opens()
                        w = wrk(s.port, path, wl.conns, duration, lua)
                        opens = tcp_passive_opens() - opens0
                    except Exception as e:  # noqa: BLE001
                        rec["error"] = str(e)
                        problem(f"{s.key} {wl.key} round {rnd}: {e}")
                        data["runs"].append(rec)
                        continue
                    rss, pss, nprocs = memory_of(s.pids())
                    rec.update({
                        "rps": w["rps"], "requests": w["requests"], "duration_s": w["duration_us"] / 1e6,
                        "p50_us": w["p50_us"], "p90_us": w["p90_us"], "p99_us": w["p99_us"],
                        "lat_mean_us": w["lat_mean_us"], "lat_max_us": w["lat_max_us"],
                        "non2xx": max(w["status"], w["non2xx_line"]),
                        "socket_errors": w["socket_errors"],
                        "errors": {k: w[k] for k in ("connect", "read", "write", "timeout", "status")},
                        "bytes": w["bytes"],
                        "conns_opened": opens if in_netns else None,
                        "rss_kb": rss, "pss_kb": pss, "nprocs": nprocs,
                    })
                    # wrk opens `conns` connections, plus one when it starts to
                    # check the address (the Lua script's wrk.resolve); any more
                    # means the server closed kept-alive connections.
                    rec["keepalive_broken"] = bool(in_netns and opens > wl.conns + 1)
                    if not in_netns:
                        rec["conns_opened"] = None
                    data["runs"].append(rec)
                    flag = ""
                    if rec["non2xx"] or rec["socket_errors"]:
                        flag = "   <<< ERRORS"
                        # A 4xx/5xx under load is a bug; socket errors are the
                        # server closing connections (flagged, not fatal).
                        sock = ", ".join(f"{k} {w[k]}" for k in ("connect", "read", "write", "timeout") if w[k])
                        problem(f"{s.key} {wl.key} round {rnd}: {rec['non2xx']} non-2xx responses, "
                                f"socket errors: {sock or 'none'}; {opens} connections accepted for "
                                f"{wl.conns} wrk connections", is_fatal=bool(rec["non2xx"]))
                    elif rec["keepalive_broken"]:
                        flag = "   <<< KEEP-ALIVE BROKEN"
                        problem(f"{s.key} {wl.key} round {rnd}: {opens} connections accepted for "
                                f"{wl.conns} wrk connections ({w['requests']} requests): the server "
                                f"closed kept-alive connections", is_fatal=False)
                    log(f"[{done}/{total}] {wl.key:<8} {s.key:<24} round {rnd}: {w['rps']:>9,.0f} req/s  "
                        f"p50 {ms(w['p50_us'])} ms  p99 {ms(w['p99_us'])} ms  conns {opens}  "
                        f"RSS {rss / 1024:.1f} MiB{flag}")
                    if not pid_alive(s.root_pid() or -1):
                        s.failed = "server died"
                        problem(f"{s.key}: server is gone after {wl.key} round {rnd}\n{s.error_log_tail()}")
    finally:
        for s in started_servers:
            log(f"stopping {s.key} ...")
            s.stop_and_wait()

    for s in servers:
        if isinstance(s, ApacheServer) and not s.failed:
            # AH10159 ("within MinSpareThreads of MaxRequestWorkers") is logged
            # at error level but only says that the configuration is tight;
            # mod_wsgi logs two lines (WSGI0174 "OSError exception raised" and
            # "failed to write response data") for every response cut off
            # when wrk closes its connections at the end of a run.
            benign = re.compile(r"AH10159|failed to write response data|"
                                r"OSError exception raised processing WSGI script")
            lines = [l for l in s.error_log_tail(100000).splitlines()
                     if re.search(r":(error|crit|alert|emerg)\]", l)]
            errs = [l for l in lines if not benign.search(l)]
            data.setdefault("error_log_benign_lines", {})[s.key] = len(lines) - len(errs)
            if errs:
                problem(f"{s.key}: error_log has {len(errs)} error lines, e.g.: {errs[-1]}", is_fatal=False)

    # ---- callgrind ----
    if not args.no_callgrind:
        log("callgrind (instructions per request, apache2 -X) ...")
        cg_modules = [("rwsgi", str(rw_module)), ("mod_wsgi", mw_module)]
        try:
            data["callgrind"] = run_callgrind(work, docroot, str(app), cg_modules, n1, n2,
                                              cg_repeats, args.base_port + 99)
        except Exception as e:  # noqa: BLE001
            problem(f"callgrind failed: {e}")

    table = build_tables(data)
    goal_lines, parsed = goals(data)
    data["goals"] = parsed
    log("")
    log(table)
    log("")
    log("Goals (median req/s over rounds; ratios of each round in brackets):")
    for line in goal_lines:
        log("  " + line)
    notes = keepalive_notes(data)
    for n in notes:
        log("")
        log("!!! " + n)
    if problems:
        log("")
        log(f"!!! {len(problems)} PROBLEM(S) — the figures above may be meaningless where flagged:")
        for p in problems:
            log("!!!   " + p.splitlines()[0])

    text = table + "\n\nGoals:\n" + "\n".join("  " + l for l in goal_lines) + "\n"
    if problems:
        text += "\nProblems:\n" + "\n".join("  " + p for p in problems) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    for r in data["runs"]:
        r.pop("raw", None)
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = stamp
        (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / f"{stem}.txt").write_text(text)
        write_doc(data, table, goal_lines, stem)
        log(f"\nsaved bench/results/{stem}.json, bench/results/{stem}.txt and docs/performance.md")
    elif args.keep_work:
        (work / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        (work / "results.txt").write_text(text)
        log(f"\nresults in {work}/results.json and results.txt (not saved to bench/results)")
    if args.keep_work:
        log(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    # Exit status: slow figures never fail; a server that does not start,
    # a wrong answer, non-2xx responses, socket errors or a failed
    # measurement do (the smoke run exists to catch those).
    if fatal:
        log(f"exit status 1: {len(fatal)} error(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
