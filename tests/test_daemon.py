"""Daemon mode's own behaviour (the core suite runs in both modes already):
daemon processes dying mid-request are reported as what happened and
replaced, identities and sockets are as configured, root is refused."""

import os
import stat
import threading
import time
import uuid

import pytest
import requests

from conftest import APACHE_USER, child_pids, wait_until


@pytest.fixture(scope="module")
def daemon_server(servers, ws):
    srv = servers.start("daemon", ws.apps / "daemon" / "app.wsgi", "event",
                        ["--processes", "2", "--threads", "3", "--log-level", "info"],
                        mode="daemon")
    yield srv
    srv.stop()


def daemon_pids(srv):
    """Pids of the server's daemon processes (children titled (wsgi:...))."""
    out = []
    for pid in child_pids(srv.pid()):
        try:
            comm = open(f"/proc/{pid}/comm").read().strip()
        except OSError:
            continue
        if comm.startswith("(wsgi:"):
            out.append(pid)
    return out


def uid_of(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return int(line.split()[1])


def test_runs_in_daemon_processes_as_the_user(daemon_server):
    r = daemon_server.get("/")
    assert r.status_code == 200, daemon_server.error_log_tail()
    info = r.json()
    pids = daemon_pids(daemon_server)
    assert len(pids) == 2, pids
    assert info["pid"] in pids
    assert info["group"] == f"localhost:{daemon_server.port}"
    assert info["multithread"] is True
    nobody = __import__("pwd").getpwnam(APACHE_USER).pw_uid
    assert info["uid"] == nobody
    assert all(uid_of(p) == nobody for p in pids)
    # ps shows the group, as mod_wsgi's display-name=%{GROUP}.
    cmdline = open(f"/proc/{pids[0]}/cmdline", "rb").read()
    assert cmdline.startswith(f"(wsgi:localhost:{daemon_server.port})".encode()), cmdline
    assert cmdline.rstrip(b"\0").count(b"\0") == 0, cmdline     # nothing of Apache's left


def test_daemons_do_not_hold_apaches_listening_socket(daemon_server):
    port_hex = f"{daemon_server.port:04X}"
    inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(":" + port_hex) and fields[3] == "0A":
            inodes.add(fields[9])
    assert inodes
    for pid in daemon_pids(daemon_server):
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert not any(f"socket:[{i}]" in links for i in inodes), (pid, links)


def test_socket_private_to_apaches_user(daemon_server):
    d = daemon_server.root / "rwsgi"
    st = d.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    nobody = __import__("pwd").getpwnam(APACHE_USER).pw_uid
    assert st.st_uid == nobody
    socks = list(d.glob("*.sock"))
    assert len(socks) == 1, socks
    s = socks[0].stat()
    assert stat.S_ISSOCK(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o600 and s.st_uid == nobody


def slow_request(srv, out, path):
    try:
        r = requests.get(srv.url(path), timeout=30)
        out["status"] = r.status_code
    except requests.RequestException as e:
        out["error"] = repr(e)


def test_daemon_killed_mid_request_is_a_502_naming_sigkill(daemon_server, ws):
    mark = daemon_server.log_mark()
    marker = ws.markers / f"serving-{uuid.uuid4().hex}"
    out = {}
    t = threading.Thread(target=slow_request, args=(daemon_server, out, f"/sleep?t=10&mark={marker}"))
    t.start()
    assert wait_until(lambda: marker.exists() and marker.read_text().strip(), 10)
    victim = int(marker.read_text())
    os.kill(victim, 9)
    t.join()
    assert out.get("status") == 502, out
    log = daemon_server.wait_for_log(mark, "RWSGI0040", "RWSGI0032")
    assert "RWSGI0032" in log and f"daemon process {victim} " in log and "SIGKILL" in log, log
    assert f"RWSGI0040: daemon process {victim} of group" in log and "SIGKILL" in log, log
    # Served again within 2 s, by a fresh process.
    assert wait_until(lambda: len(daemon_pids(daemon_server)) == 2, 2.0)
    assert daemon_server.get("/").status_code == 200
    assert victim not in daemon_pids(daemon_server)


def test_segfault_is_named_as_a_crash(daemon_server):
    mark = daemon_server.log_mark()
    r = daemon_server.get("/segv", timeout=30)
    assert r.status_code == 502
    log = daemon_server.wait_for_log(mark, "RWSGI0032", "SIGSEGV")
    assert "SIGSEGV" in log and "crash in native code" in log, log
    assert "Truncated or oversized" not in log
    assert wait_until(lambda: daemon_server.get("/").status_code == 200, 5)


def test_exit_is_named_with_its_status(daemon_server):
    mark = daemon_server.log_mark()
    r = daemon_server.get("/exit?code=7", timeout=30)
    assert r.status_code == 502
    log = daemon_server.wait_for_log(mark, "RWSGI0040", "exited with status 7")
    assert "exited with status 7" in log, log


def test_environ_has_exactly_each_requests_headers(daemon_server):
    """The daemon builds each environ from a template of the last values
    (names found by their position in the last request): headers that
    change order, value or presence from one request to the next still give
    each environ exactly its own."""
    import random
    rnd = random.Random(7)
    names = ["X-Alpha", "X-Beta", "X-Gamma", "X-Delta"]
    with requests.Session() as s:
        for i in range(60):
            chosen = rnd.sample(names, rnd.randint(0, len(names)))
            headers = {n: rnd.choice(["one", "two", f"v{i}"]) for n in chosen}
            r = s.get(daemon_server.url("/"), headers=headers)
            assert r.status_code == 200, daemon_server.error_log_tail()
            want = {"HTTP_" + n.upper().replace("-", "_"): v for n, v in headers.items()}
            assert r.json()["x_headers"] == want, (i, headers)


def test_pushed_bodies_read_in_pieces_or_not_at_all(daemon_server):
    """A body up to 64 KiB goes to the daemon with the request (no Read
    round trip): read in small pieces it arrives whole; not read at all it
    is skipped, and the connection serves the next requests correctly."""
    import hashlib
    import random
    rnd = random.Random(3)
    with requests.Session() as s:
        for i in range(40):
            size = rnd.choice([1, 999, 4096, 65535, 65536, 65537, 200000])
            body = rnd.randbytes(size)
            if i % 2:
                r = s.post(daemon_server.url("/ignore-body"), data=body)
                assert (r.status_code, r.text) == (200, "ignored"), daemon_server.error_log_tail()
            else:
                r = s.post(daemon_server.url(f"/read-chunks?n={rnd.choice([1, 7, 1000, 70000])}"), data=body)
                assert r.status_code == 200, daemon_server.error_log_tail()
                assert r.text == f"{size} {hashlib.sha256(body).hexdigest()}", (size, r.text)
            r = s.get(daemon_server.url("/"))
            assert r.status_code == 200 and r.json()["pid"], daemon_server.error_log_tail()


def test_graceful_restart_replaces_daemons(daemon_server):
    before = set(daemon_pids(daemon_server))
    proc = daemon_server.apachectl("graceful")
    assert proc.returncode == 0, proc.out
    assert wait_until(lambda: set(daemon_pids(daemon_server)).isdisjoint(before)
                      and len(daemon_pids(daemon_server)) == 2, 15)
    assert daemon_server.restart_ready()
    assert daemon_server.get("/").status_code == 200


def test_root_is_refused_at_configtest(servers, ws):
    include = ws.new_dir("rootgroup") / "root.conf"
    include.write_text("WSGIDaemonProcess asroot user=root threads=1\n")
    include.chmod(0o644)
    srv = servers.create("asroot", ws.apps / "daemon" / "app.wsgi",
                         args=["--include-file", include], mode="daemon")
    srv.setup()
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0, proc.out
    assert "asroot" in proc.out and "user" in proc.out and "root" in proc.out, proc.out


def test_request_timeout_answers_504_dumps_stacks_and_replaces(servers, ws):
    with servers.running("reqtimeout", ws.apps / "daemon" / "app.wsgi", "event",
                         ["--processes", "1", "--threads", "3", "--request-timeout", "3",
                          "--log-level", "info"], mode="daemon") as srv:
        first = srv.get("/").json()["pid"]
        mark = srv.log_mark()
        t0 = time.monotonic()
        r = srv.get("/sleep?t=30", timeout=30)
        took = time.monotonic() - t0
        assert r.status_code == 504, r.text
        assert took < 6, f"504 after {took:.1f} s with request-timeout 3"
        log = srv.wait_for_log(mark, "RWSGI0036", "app.wsgi")
        assert "longer than request-timeout (3 s)" in log, log
        # The hung thread's Python stack, as faulthandler prints it.
        assert 'line' in log and "in application" in log, log
        # A fresh daemon takes over (the old one serves until it is ready).
        assert wait_until(lambda: srv.get("/").json()["pid"] != first, 10)


def test_maximum_requests_recycles_without_failures(servers, ws):
    """One connection per request: Apache stopping a spare child it no
    longer needs closes that child's kept-alive connections, a race with a
    client reusing one that is Apache's own, not the daemons'."""
    with servers.running("maxreq", ws.apps / "daemon" / "app.wsgi", "event",
                         ["--processes", "2", "--threads", "3", "--maximum-requests", "20",
                          "--log-level", "info"], mode="daemon") as srv:
        pids, failures = set(), []

        def client():
            with requests.Session() as s:
                for _ in range(150):
                    try:
                        r = s.get(srv.url("/"), timeout=30, headers={"Connection": "close"})
                    except requests.RequestException as e:
                        failures.append(repr(e))
                        continue
                    if r.status_code != 200:
                        failures.append(r.status_code)
                    else:
                        pids.add(r.json()["pid"])

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == [], (failures, srv.error_log_tail())
        # 600 requests, 20 per process; a process serves on until its
        # replacement has started, so fewer than 30 take part.
        assert len(pids) > 2, pids
        assert "RWSGI0050" in srv.error_log()


def test_script_preloaded_at_daemon_start(servers, ws):
    d = ws.new_dir("preload")
    d.chmod(0o1777)
    script = d / "preload.wsgi"
    script.write_bytes((ws.apps / "daemon" / "preload.wsgi").read_bytes())
    script.chmod(0o644)
    imports = d / "imports.txt"
    with servers.running("preload", script, "event", ["--processes", "2"], mode="daemon") as srv:
        # Imported by both daemons before any request reached them.
        assert wait_until(lambda: imports.exists() and len(imports.read_text().split()) == 2, 10), (
            imports.read_text() if imports.exists() else "no import yet")
        pids = set(imports.read_text().split())
        served = {srv.get("/").text for _ in range(6)}
        assert served <= pids
        assert len(imports.read_text().split()) == 2    # no import per request


def test_graceful_restarts_under_load_lose_no_request(servers, ws):
    """Three graceful restarts in a row while 4 clients keep sending: every
    request is answered 200 (by an old daemon, or a new one once it is up:
    a request waits for it instead of being refused). One connection per
    request: a kept-alive connection that Apache's old child closes while
    the client reuses it is Apache's own race, not the daemons'."""
    with servers.running("gracefulload", ws.apps / "daemon" / "app.wsgi", "event",
                         ["--processes", "2", "--threads", "3"], mode="daemon") as srv:
        stop = threading.Event()
        failures, count = [], [0]

        def client():
            with requests.Session() as s:
                while not stop.is_set():
                    try:
                        r = s.get(srv.url("/"), timeout=30, headers={"Connection": "close"})
                        if r.status_code != 200:
                            failures.append(r.status_code)
                        count[0] += 1
                    except requests.RequestException as e:
                        failures.append(repr(e))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                time.sleep(1.0)
                proc = srv.apachectl("graceful")
                assert proc.returncode == 0, proc.out
            time.sleep(2.0)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert count[0] > 50
        assert failures == [], (failures[:10], srv.error_log_tail())


def test_daemons_end_with_a_killed_parent(servers, ws):
    """The Apache parent killed with SIGKILL (no cleanup runs): its daemon
    processes do not live on as orphans holding the group's socket."""
    srv = servers.start("orphans", ws.apps / "daemon" / "app.wsgi", "event",
                        ["--processes", "2"], mode="daemon")
    started = child_pids(srv.pid())    # Apache's children and the daemons
    try:
        assert srv.get("/").status_code == 200
        daemons = daemon_pids(srv)
        assert len(daemons) == 2
        os.kill(srv.pid(), 9)
        assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}") and
                                          open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
                                          for p in daemons), 10), daemons
    finally:
        srv.stop()
        # Apache's own children outlive a SIGKILLed parent until they notice;
        # stop them by pid, as everything a test starts.
        for p in started:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass


def start_with_daemon_options(servers, ws, name, options, args=(), script=None, extra=()):
    """A daemon-mode server whose WSGIDaemonProcess line carries `options`
    (the module's directive, whatever rwsgi-express passes), replacing
    those of the same name, and `extra` lines before its WSGIScriptAlias
    ("{port}" is the server's port)."""
    srv = servers.create(name, script or ws.apps / "daemon" / "app.wsgi", "event",
                         ["--log-level", "info", *args], mode="daemon")
    srv.setup()
    conf = srv.root / "httpd.conf"
    lines = conf.read_text().splitlines()
    hits = [i for i, l in enumerate(lines) if l.startswith("WSGIDaemonProcess ")]
    assert len(hits) == 1, hits
    names = {o.split("=", 1)[0] for o in options}
    kept = [w for w in lines[hits[0]].split(" ") if w.split("=", 1)[0] not in names]
    lines[hits[0]] = " ".join(kept + list(options))
    at = next((i for i, l in enumerate(lines) if l.startswith("WSGIScriptAlias ")), len(lines))
    lines[at:at] = [line.replace("{port}", str(srv.port)) for line in extra]
    conf.write_text("\n".join(lines) + "\n")
    try:
        srv.start()
    except BaseException:
        srv.stop()
        raise
    return srv


def test_busy_daemon_leaves_requests_to_an_idle_one(servers, ws):
    """A daemon process takes a connection only with a free thread, and a
    kept-alive connection to a busy one is sent elsewhere: the next request
    is not held behind a long one while the other daemon is idle."""
    srv = start_with_daemon_options(servers, ws, "busy", [],
                                    ["--processes", "2", "--threads", "1"])
    try:
        close = {"Connection": "close"}
        for _ in range(8):      # Apache's threads keep connections to both daemons
            assert srv.get("/", headers=close).status_code == 200
        out = {}
        t = threading.Thread(target=lambda: out.update(
            r=requests.get(srv.url("/sleep?t=8"), timeout=30).json()))
        t.start()
        time.sleep(1)
        for _ in range(8):
            t0 = time.monotonic()
            r = srv.get("/", timeout=30, headers=close)
            assert r.status_code == 200, srv.error_log_tail()
            assert time.monotonic() - t0 < 4, "held behind the sleeping request"
        t.join()
        assert out["r"]["pid"] != r.json()["pid"]
    finally:
        srv.stop()


def test_last_free_thread_serves_while_the_others_are_busy(servers, ws):
    """Idle request threads beyond two are parked (pool.rs): with five of a
    daemon's six threads in long requests, the sixth is woken and serves
    every further request while they run, none waiting for one to end."""
    srv = start_with_daemon_options(servers, ws, "parked", [],
                                    ["--processes", "1", "--threads", "6"])
    try:
        close = {"Connection": "close"}
        pid = srv.get("/").json()["pid"]
        slow = []
        for _ in range(5):
            out = {}
            t = threading.Thread(target=lambda out=out: out.update(
                r=requests.get(srv.url("/sleep?t=6"), timeout=60, headers=close)))
            t.start()
            slow.append((t, out))
        time.sleep(1.5)
        for i in range(12):
            r = srv.get(f"/?i={i}", timeout=30, headers=close)
            assert r.status_code == 200, srv.error_log_tail()
            assert r.json()["pid"] == pid
            running = sum(t.is_alive() for t, _ in slow)
            assert running == 5, f"request {i} was answered after {5 - running} long one(s) ended"
        for t, out in slow:
            t.join()
            assert out["r"].status_code == 200
        assert srv.get("/").json()["pid"] == pid
    finally:
        srv.stop()


def test_queue_timeout_answers_503_naming_the_wait(servers, ws):
    srv = start_with_daemon_options(servers, ws, "queue", ["queue-timeout=2"],
                                    ["--processes", "1", "--threads", "1"])
    try:
        assert srv.get("/").status_code == 200
        t = threading.Thread(target=lambda: requests.get(srv.url("/sleep?t=6"), timeout=30))
        t.start()
        time.sleep(0.5)
        mark = srv.log_mark()
        t0 = time.monotonic()
        r = srv.get("/", timeout=30)
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert took < 5.5, f"503 after {took:.1f} s with queue-timeout 2"
        log = srv.wait_for_log(mark, "RWSGI0051")
        assert "queue-timeout (2" in log and "was not run" in log, log
        t.join()
        assert srv.get("/").status_code == 200
    finally:
        srv.stop()
