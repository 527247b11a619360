"""rwsgi-express's debug mode (mod_wsgi-express's --debug-mode and its
tools) against a real Apache started with `start-server` in the
foreground, as a developer runs it: one process serving with one thread,
the application embedded in it (mod_wsgi.process_group ''), os.environ
telling the application (MOD_WSGI_DEBUG_MODE, ...); --enable-recorder
writing each request and response to files, --enable-profiler a .pstats
profile and --enable-coverage an HTML report when the server stops;
--enable-debugger's pdb post-mortem prompt reading the terminal (the
server's stdin here) and writing to the error log (--log-to-terminal:
stderr); --enable-gdb running Apache under gdb. And the refusals
mod_wsgi-express makes (--debugger-startup without --enable-debugger), or
that would otherwise only show in the error log (--enable-coverage without
the coverage package)."""

import json
import os
import pstats
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
import requests

from conftest import (APACHE_GROUP, APACHE_USER, child_pids, express_path, free_port,
                      pid_alive, port_open, python_home, run, wait_until)

APP = '''\
import json
import os


def application(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        marker = "debugger-local"
        raise RuntimeError("boom")
    body = json.dumps({
        "pid": os.getpid(),
        "process_group": environ["mod_wsgi.process_group"],
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "environ": {k: v for k, v in os.environ.items() if k.startswith("MOD_WSGI_")},
        "input": environ["wsgi.input"].read().decode(),
        "path_info": environ["PATH_INFO"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Debug", "yes")])
    return [body]
'''


@pytest.fixture(scope="module")
def app(ws):
    d = ws.new_dir("debug-app")
    p = d / "app.wsgi"
    p.write_text(APP)
    p.chmod(0o644)
    return p


class Foreground:
    """`rwsgi-express start-server` running in the foreground (its own
    process group), stopped by SIGTERM to Apache's pid."""

    def __init__(self, ws, app, args, stdin=subprocess.DEVNULL, home=None):
        self.port = free_port()
        self.root = ws.servers / f"debug-{self.port}"
        cmd = [str(express_path()), "start-server", str(app), "--host", "127.0.0.1",
               "--port", str(self.port), "--server-root", str(self.root),
               "--python-home", str(home or python_home()),
               "--user", APACHE_USER, "--group", APACHE_GROUP, *map(str, args)]
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.err = []
        self.out = []
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _drain(stream, sink):
        for line in iter(stream.readline, b""):
            sink.append(line.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.err)

    def wait_ready(self):
        ok = wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, 30)
        assert ok and self.proc.poll() is None, (
            f"exit {self.proc.poll()}\n{''.join(self.out)}\n{self.stderr()}\n{self.error_log()}")

    def error_log(self):
        try:
            return (self.root / "error_log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def get(self, path, **kw):
        kw.setdefault("timeout", 30)
        return requests.get(f"http://127.0.0.1:{self.port}{path}", **kw)

    def httpd_pid(self):
        return int((self.root / "httpd.pid").read_text())

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.httpd_pid(), signal.SIGTERM)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def foreground(ws):
    started = []

    def start(app, args, **kw):
        srv = Foreground(ws, app, args, **kw)
        started.append(srv)
        srv.wait_ready()
        return srv

    yield start
    for srv in started:
        srv.stop()


def test_debug_mode_recorder_and_profiler(foreground, app):
    srv = foreground(app, ["--debug-mode", "--enable-recorder", "--enable-profiler"])
    summary = "".join(srv.out)
    assert "Operating Mode     : debug" in summary, summary
    assert f"Profiler Output    : {srv.root}/pstats" in summary, summary
    assert f"Recorder Output    : {srv.root}/archive" in summary, summary
    r = srv.get("/hello")
    assert r.status_code == 200, srv.error_log()
    info = r.json()
    # One process, one thread, the application embedded in it.
    assert info["process_group"] == "" and not info["multithread"], info
    pid = srv.httpd_pid()
    assert info["pid"] == pid and child_pids(pid) == [], (info, child_pids(pid))
    assert open(f"/proc/{pid}/status").read().count("Threads:") == 1
    assert info["environ"]["MOD_WSGI_DEBUG_MODE"] == "true"
    assert info["environ"]["MOD_WSGI_PROFILER_ENABLED"] == "true"
    assert info["environ"]["MOD_WSGI_RECORDER_ENABLED"] == "true"
    assert "-DONE_PROCESS" in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
    # The recorder: environ, body, status/headers and response of each request.
    r = requests.post(f"http://127.0.0.1:{srv.port}/posted", data=b"recorded body", timeout=30)
    assert r.status_code == 200 and r.json()["input"] == "recorded body"
    archive = srv.root / "archive"
    keys = sorted({p.name.rsplit(".", 1)[0] for p in archive.iterdir()})
    assert len(keys) == 2, keys
    assert all(k.endswith(f"-{pid}-{n}") for k, n in zip(keys, (1, 2))), keys
    last = archive / keys[-1]
    assert Path(f"{last}.icontent").read_bytes() == b"recorded body"
    assert "'PATH_INFO': '/posted'" in Path(f"{last}.iheaders").read_text()
    assert "('200 OK'," in Path(f"{last}.oheaders").read_text()
    assert "X-Debug" in Path(f"{last}.oheaders").read_text()
    assert json.loads(Path(f"{last}.ocontent").read_text())["path_info"] == "/posted"
    for kind in ("oaexcept", "orexcept", "ofexcept"):
        assert Path(f"{last}.{kind}").read_text() == ""
    # The profile is dumped when the server stops.
    srv.stop()
    profiles = list((srv.root / "pstats").glob(f"*-{pid}.pstats"))
    assert len(profiles) == 1, (list((srv.root / "pstats").iterdir()), srv.error_log())
    stats = pstats.Stats(str(profiles[0]))
    assert any(func[2] == "application" and func[0] == str(app) for func in stats.stats), \
        list(stats.stats)[:20]


def test_coverage_report_at_exit(foreground, app):
    srv = foreground(app, ["--enable-coverage"])
    assert srv.get("/covered").status_code == 200, srv.error_log()
    srv.stop()
    index = srv.root / "htmlcov" / "index.html"
    assert index.is_file(), (srv.error_log(), srv.stderr())
    text = index.read_text()
    assert "app.wsgi" in text, text[:3000]
    # The request's lines are measured too (Apache's thread ran them): the
    # JSON body is built on lines 10-18; only the /boom branch is missed.
    page = next((srv.root / "htmlcov").glob("*app_wsgi.html"))
    assert "2 missing" in page.read_text() or ">2<" in page.read_text(), page.read_text()[:3000]


def test_debugger_post_mortem_reads_the_terminal(foreground, app):
    srv = foreground(app, ["--enable-debugger", "--log-to-terminal"], stdin=subprocess.PIPE)
    result = {}

    def request():
        result["r"] = srv.get("/boom", timeout=60)

    t = threading.Thread(target=request)
    t.start()
    # pdb stops in the frame that raised: its locals are there.
    assert wait_until(lambda: "RuntimeError" in srv.stderr() or not t.is_alive(), 20)
    srv.proc.stdin.write(b"p marker\nc\n")
    srv.proc.stdin.flush()
    t.join(30)
    assert not t.is_alive()
    assert result["r"].status_code == 500
    assert wait_until(lambda: "'debugger-local'" in srv.stderr(), 10), srv.stderr()[-3000:]


def test_gdb_runs_apache(foreground, app):
    if shutil.which("gdb") is None:
        pytest.skip("gdb is not installed (scripts/install-deps.sh installs it)")
    srv = foreground(app, ["--enable-gdb"])
    assert srv.get("/under-gdb").status_code == 200, srv.error_log()
    pid = srv.httpd_pid()
    ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    assert os.path.basename(os.readlink(f"/proc/{ppid}/exe")) == "gdb"
    assert (srv.root / "gdb.cmds").read_text().startswith("run -f ")
    os.kill(pid, signal.SIGTERM)
    # gdb sees Apache exit and, with no terminal on stdin, quits.
    srv.proc.wait(30)
    assert not pid_alive(pid)


def test_debug_refusals(ws, app):
    root = ws.servers / f"debug-refused-{free_port()}"
    base = [express_path(), "setup-server", app, "--server-root", root,
            "--user", APACHE_USER, "--group", APACHE_GROUP]
    p = run(base + ["--python-home", python_home(), "--debugger-startup"])
    assert p.returncode == 1
    assert "--debugger-startup requires --enable-debugger" in p.out
    # Debian's Python 3.11 has no coverage package.
    if run(["/usr/bin/python3.11", "-c", "import coverage"]).returncode == 0:
        pytest.skip("/usr/bin/python3.11 has the coverage package")
    p = run(base + ["--python-home", "/usr", "--enable-coverage"])
    assert p.returncode == 1
    assert "--enable-coverage requires the coverage package: install it with " \
           "'pip install coverage'" in p.out, p.out
