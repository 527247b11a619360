"""Child processes an application starts from a daemon process: the
daemon takes its own signals (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2,
SIGXCPU) in its main thread with every thread blocking them, and a child
inherits the blocked mask of the thread that forks it. As under
mod_wsgi's daemon mode (which blocks nothing), a subprocess must start
with no signal blocked (Popen.terminate() ends it), a child made with
os.fork() too, and a SIGTERM that reaches the daemon while a request is
starting children still drains the process (exit status 0), it neither
kills it nor is lost."""

import concurrent.futures
import os
import signal
import time

import pytest
import requests

from conftest import wait_until
from test_daemon import daemon_pids

APP = '''\
import json
import os
import signal
import subprocess
import time


def terminate_popen():
    p = subprocess.Popen(["/bin/sleep", "30"])
    p.terminate()
    try:
        return p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        return "ignored SIGTERM"


def terminate_fork():
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + 5
    while time.time() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "ignored SIGTERM"


def application(environ, start_response):
    if environ["PATH_INFO"] == "/spawn":
        n = 0
        for _ in range(int(environ["QUERY_STRING"] or 200)):
            subprocess.run(["/bin/true"], check=True)
            n += 1
        out = {"spawned": n}
    else:
        blocked = subprocess.run(["/bin/grep", "SigBlk", "/proc/self/status"],
                                 capture_output=True, text=True).stdout.split()[1]
        out = {"popen": terminate_popen(), "fork": terminate_fork(), "child_blocked": blocked,
               "pid": os.getpid()}
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


@pytest.fixture
def children_server(servers, ws):
    d = ws.new_dir("children")
    script = d / "app.wsgi"
    script.write_text(APP)
    script.chmod(0o644)
    with servers.running("children", script, mode="daemon",
                         args=["--processes", "1", "--threads", "3", "--log-level", "info"]) as srv:
        yield srv


def test_children_start_with_no_signal_blocked(children_server):
    r = children_server.get("/")
    assert r.status_code == 200, children_server.error_log_tail()
    got = r.json()
    assert got["child_blocked"] == "0000000000000000", got
    assert got["popen"] == -15 and got["fork"] == -15, got
    # The daemon itself still takes its signals as before.
    assert got["pid"] in daemon_pids(children_server)


def test_sigterm_while_starting_children_drains_the_daemon(children_server):
    """Each subprocess.run unblocks the daemon's signals in its thread for
    a moment: a SIGTERM delivered there is passed on to the main thread,
    so the daemon drains (the request in progress completes) and exits
    with status 0, and a fresh one serves."""
    srv = children_server
    for _ in range(3):
        [victim] = daemon_pids(srv)
        mark = srv.log_mark()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            spawning = pool.submit(requests.get, f"http://127.0.0.1:{srv.port}/spawn?300",
                                   timeout=60)
            time.sleep(0.5)
            os.kill(victim, signal.SIGTERM)
            r = spawning.result(timeout=60)
        assert r.status_code == 200 and r.json() == {"spawned": 300}, srv.error_log_tail()
        log = srv.wait_for_log(mark, f"daemon process {victim} of group", "exited with status 0")
        assert f"daemon process {victim} of group" in log and "exited with status 0" in log, log
        assert "killed by signal" not in log, log
        assert wait_until(lambda: daemon_pids(srv) not in ([], [victim]), 10)
    assert srv.get("/").json()["popen"] == -15
