"""Requests are served in parallel (threads and processes), and the server
survives graceful restarts and restarts under load."""

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import wait_until


@pytest.fixture(scope="module")
def parallel_server(servers, core_script):
    srv = servers.start("parallel", core_script, "event",
                        ["--processes", "2", "--threads", "10"])
    yield srv
    srv.stop()


def test_twenty_concurrent_sleeping_requests(parallel_server):
    # Warm up so interpreter start-up is not part of the measurement.
    for _ in range(4):
        assert parallel_server.get("/env").status_code == 200

    def one(i):
        r = requests.get(parallel_server.url(f"/sleep?t=1&i={i}"), timeout=60,
                         headers={"Connection": "close"})
        return r.status_code, r.json()

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(20)))
    elapsed = time.monotonic() - t0
    assert [s for s, _ in results] == [200] * 20
    # Correctness of concurrency, not a benchmark: serially this takes 20 s.
    assert elapsed < 10, f"20 requests that sleep 1 s took {elapsed:.1f} s in total"
    workers = {(j["pid"], j["thread"]) for _, j in results}
    assert len(workers) > 1


# ------------------------------------------------------- graceful restarts


class Hammer:
    """Threads that send requests (one connection each) until stopped;
    bounded in count and time."""

    def __init__(self, srv, threads=2, max_requests=20000, max_seconds=90):
        self.srv = srv
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.max_requests = max_requests
        self.deadline = time.monotonic() + max_seconds
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]

    def loop(self):
        url = self.srv.url("/stream?size=65536&chunk=8192&seed=5")
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if self.ok + len(self.failures) >= self.max_requests:
                    return
            try:
                r = requests.get(url, timeout=30, headers={"Connection": "close"})
                good = (r.status_code == 200 and len(r.content) == 65536
                        and hashlib.sha256(r.content).hexdigest() == r.headers.get("X-Sha256"))
                with self.lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(f"status {r.status_code}, {len(r.content)} bytes")
            except requests.RequestException as e:
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)


@pytest.fixture(scope="module")
def restart_server(servers, core_script, mpm, wsgi_mode):
    srv = servers.start("restart", core_script, mpm, ["--log-level", "info"], mode=wsgi_mode)
    yield srv
    srv.stop()


def count_generation_lines(log):
    return log.count("resuming normal operations")


def test_graceful_under_load(restart_server):
    srv = restart_server
    pid = srv.pid()
    mark = srv.log_mark()
    assert srv.get("/env").status_code == 200
    long_result = {}

    def long_request():
        # In flight across the first graceful restart: must complete.
        try:
            r = requests.get(srv.url("/sleep?t=3"), timeout=60)
            long_result["status"] = r.status_code
            long_result["pid"] = r.json()["pid"]
        except Exception as e:  # reported by the assertion below
            long_result["error"] = repr(e)

    long_thread = threading.Thread(target=long_request, daemon=True)
    with Hammer(srv) as hammer:
        long_thread.start()
        time.sleep(1.0)
        for k in (1, 2):
            proc = srv.apachectl("graceful")
            assert proc.returncode == 0, proc.out
            # Wait for the new generation to be up, then keep the load on it.
            assert wait_until(lambda: count_generation_lines(srv.log_since(mark)) >= k, 15), (
                f"graceful restart {k} did not complete:\n{srv.log_since(mark)[-5000:]}")
            time.sleep(2.0)
    assert hammer.failures == [], (
        f"{len(hammer.failures)} of {hammer.ok + len(hammer.failures)} requests failed "
        f"during graceful restarts: {hammer.failures[:10]}\n{srv.log_since(mark)[-5000:]}")
    assert hammer.ok >= 20, f"only {hammer.ok} requests completed"
    long_thread.join(30)
    assert long_result.get("status") == 200, long_result
    log = srv.log_since(mark)
    assert count_generation_lines(log) >= 2, log
    assert srv.pid() == pid, "graceful restart replaced the parent process"
    for bad in ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error"):
        assert bad not in log, f"{bad!r} in the error log:\n{log[-5000:]}"
    # Still serving, with the application working.
    for _ in range(5):
        r = srv.get("/env")
        assert r.status_code == 200
        assert r.json()["wsgi.run_once"] is False


def test_restart_leaves_working_server(restart_server):
    srv = restart_server
    mark = srv.log_mark()
    proc = srv.apachectl("restart")
    assert proc.returncode == 0, proc.out
    assert srv.restart_ready(20), f"server not serving after restart:\n{srv.log_since(mark)}"
    for i in range(10):
        r = srv.get(f"/stream?size=100000&seed={i}")
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == r.headers["X-Sha256"]
    log = srv.log_since(mark)
    for bad in ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error"):
        assert bad not in log, f"{bad!r} in the error log:\n{log[-5000:]}"
