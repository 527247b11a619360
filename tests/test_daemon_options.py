"""WSGIDaemonProcess options that recycle, limit or set up a daemon process
(mod_wsgi's names and meanings), on the module's directive itself: each
test writes the option onto the WSGIDaemonProcess line rwsgi-express
generated and checks what the daemon then does."""

import threading
import time
import uuid

import pytest
import requests

from conftest import wait_until
from test_daemon import daemon_pids, start_with_daemon_options


def pid(srv):
    r = srv.get("/", headers={"Connection": "close"})
    assert r.status_code == 200, srv.error_log_tail()
    return r.json()["pid"]


def test_identity_options_reach_python(servers, ws):
    eggs = ws.new_dir("eggs")
    srv = start_with_daemon_options(
        servers, ws, "identity",
        ["lang=C.UTF-8", "locale=C.UTF-8", f"python-eggs={eggs}", "switch-interval=0.02",
         "cpu-priority=5", "stack-size=1048576", "receive-buffer-size=65536",
         "send-buffer-size=65536"],
        ["--processes", "1", "--threads", "2"])
    try:
        info = srv.get("/").json()
        assert info["env"] == {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                               "PYTHON_EGG_CACHE": str(eggs)}, info
        assert info["switch_interval"] == 0.02, info
        assert info["priority"] == 5, info
        # None of these is "accepted but not in effect" any more.
        assert "RWSGI0049" not in srv.error_log(), srv.error_log_tail()
    finally:
        srv.stop()


def test_inactivity_timeout_replaces_an_idle_daemon(servers, ws):
    srv = start_with_daemon_options(servers, ws, "inactive", ["inactivity-timeout=2"],
                                    ["--processes", "1"])
    try:
        first = pid(srv)
        assert wait_until(lambda: daemon_pids(srv) and first not in daemon_pids(srv), 10)
        assert "RWSGI0053" in srv.error_log() and "inactivity-timeout (2 s)" in srv.error_log()
        assert pid(srv) != first
    finally:
        srv.stop()


def test_restart_interval_replaces_without_failures(servers, ws):
    srv = start_with_daemon_options(servers, ws, "interval", ["restart-interval=2"],
                                    ["--processes", "2", "--threads", "2"])
    try:
        seen, failures = set(), []
        deadline = time.monotonic() + 7
        while time.monotonic() < deadline:
            try:
                r = srv.get("/", timeout=30, headers={"Connection": "close"})
                if r.status_code != 200:
                    failures.append(r.status_code)
                else:
                    seen.add(r.json()["pid"])
            except requests.RequestException as e:
                failures.append(repr(e))
            time.sleep(0.02)
        assert failures == [], (failures, srv.error_log_tail())
        assert len(seen) > 2, seen
        assert "restart-interval (2 s)" in srv.error_log()
    finally:
        srv.stop()


def test_startup_timeout_replaces_a_daemon_whose_script_keeps_failing(servers, ws):
    srv = start_with_daemon_options(servers, ws, "startup", ["startup-timeout=2"],
                                    ["--processes", "1"],
                                    script=ws.apps / "daemon" / "broken.wsgi")
    try:
        first = daemon_pids(srv)
        assert srv.get("/").status_code == 500
        mark = srv.log_mark()
        log = srv.wait_for_log(mark, "RWSGI0052", timeout=10)
        assert "startup-timeout (2 s)" in log and "broken.wsgi" in log, log
        assert "cannot be imported" in srv.error_log()     # the traceback is there
        assert wait_until(lambda: daemon_pids(srv) and daemon_pids(srv) != first, 10)
    finally:
        srv.stop()


def test_interrupt_timeout_ends_the_request_and_keeps_the_daemon(servers, ws):
    d = ws.new_dir("interrupt")
    d.chmod(0o1777)
    mark_file = d / f"{uuid.uuid4().hex}.txt"
    srv = start_with_daemon_options(
        servers, ws, "interrupt", ["request-timeout=2", "interrupt-timeout=3"],
        ["--processes", "1", "--threads", "1"])
    try:
        first = pid(srv)
        mark = srv.log_mark()
        t0 = time.monotonic()
        r = srv.get(f"/interruptible?t=30&mark={mark_file}", timeout=30)
        assert r.status_code == 504, r.text
        assert time.monotonic() - t0 < 6
        # As mod_wsgi: the 504 comes once the exception unwound the request,
        # so the application's handler has run by then.
        assert mark_file.exists()
        assert mark_file.read_text() == "mod_wsgi.RequestTimeout"
        log = srv.wait_for_log(mark, "ended within interrupt-timeout", "RWSGI0090")
        assert "ended within interrupt-timeout" in log, log
        assert "RWSGI0091: Injected RequestTimeout into thread" in log, log
        assert "RWSGI0090: Request interrupted by RequestTimeout; thread recovered." in log, log
        # Not an application error: no traceback for it.
        assert "Traceback" not in log, log
        assert pid(srv) == first          # interrupted, not replaced
    finally:
        srv.stop()


def test_deadlock_timeout_names_the_held_gil_and_replaces(servers, ws):
    srv = start_with_daemon_options(servers, ws, "deadlock", ["deadlock-timeout=2"],
                                    ["--processes", "1", "--threads", "2"])
    try:
        first = pid(srv)
        mark = srv.log_mark()
        r = srv.get("/gil-sleep?t=8", timeout=30)
        assert r.status_code == 502, r.text
        log = srv.wait_for_log(mark, "RWSGI0054", "RWSGI0032")
        assert "deadlock-timeout (2 s)" in log and "gil-sleep" not in log.split("RWSGI0054")[0]
        assert "in application" in log                 # the held thread's stack
        assert wait_until(lambda: srv.get("/").status_code == 200, 10)
        assert pid(srv) != first
    finally:
        srv.stop()


def test_cpu_time_limit_recycles_gracefully(servers, ws):
    srv = start_with_daemon_options(servers, ws, "cpu", ["cpu-time-limit=2"],
                                    ["--processes", "1", "--threads", "2"])
    try:
        first = pid(srv)
        r = srv.get("/cpu?t=2.5", timeout=30)
        assert r.status_code == 200, srv.error_log_tail()   # drained, not killed
        assert wait_until(lambda: "cpu-time-limit (2 s" in srv.error_log(), 10)
        assert wait_until(lambda: srv.get("/").status_code == 200
                          and pid(srv) != first, 10)
    finally:
        srv.stop()


def test_memory_limit_gives_memory_error_not_a_dead_daemon(servers, ws):
    srv = start_with_daemon_options(servers, ws, "memory",
                                    [f"memory-limit={1024 << 20}"],
                                    ["--processes", "1", "--threads", "2"])
    try:
        first = pid(srv)
        assert srv.get("/alloc?mb=16").status_code == 200
        r = srv.get("/alloc?mb=2048")
        assert r.status_code == 507 and r.text == "MemoryError", r.text
        assert pid(srv) == first
    finally:
        srv.stop()


def test_socket_user_owns_the_socket(servers, ws):
    import os
    import pwd
    srv = start_with_daemon_options(servers, ws, "sockuser", ["socket-user=daemon"],
                                    ["--processes", "1"])
    try:
        run_dir = srv.root / "rwsgi"
        socks = [p for p in run_dir.iterdir() if p.name.endswith(".sock")] if run_dir.exists() else []
        if not socks:
            socks = [p for p in srv.root.rglob("*.sock")]
        assert socks, list(srv.root.iterdir())
        assert os.stat(socks[0]).st_uid == pwd.getpwnam("daemon").pw_uid
        assert oct(os.stat(socks[0]).st_mode & 0o777) == "0o600"
    finally:
        srv.stop()


ENV_MODULE = ["<IfModule !env_module>",
              "LoadModule env_module /usr/lib/apache2/modules/mod_env.so",
              "</IfModule>"]


def test_process_group_from_the_environment_and_restrict_process(servers, ws):
    """WSGIProcessGroup %{ENV:var} picks the group per location;
    WSGIRestrictProcess refuses a group it does not list with 403."""
    app = ws.apps / "daemon" / "app.wsgi"
    extra = ENV_MODULE + [
        "WSGIDaemonProcess other processes=1 threads=2 display-name=%{GROUP}",
        f'WSGIScriptAlias /env "{app}"',
        f'WSGIScriptAlias /restricted "{app}"',
        '<Location "/env">', "SetEnv GRP other", "WSGIProcessGroup %{ENV:GRP}", "</Location>",
        '<Location "/restricted">', "SetEnv GRP other", "WSGIProcessGroup %{ENV:GRP}",
        "WSGIRestrictProcess localhost:{port}", "</Location>",
    ]
    srv = start_with_daemon_options(servers, ws, "envgroup", [], ["--processes", "1"],
                                    extra=extra)
    try:
        assert srv.get("/").json()["group"] == f"localhost:{srv.port}"
        r = srv.get("/env")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.json()["group"] == "other"
        mark = srv.log_mark()
        assert srv.get("/restricted").status_code == 403
        log = srv.wait_for_log(mark, "RWSGI0056")
        assert '"other"' in log and "WSGIRestrictProcess" in log, log
    finally:
        srv.stop()


def test_socket_prefix_and_rotation(servers, ws):
    """WSGISocketPrefix puts the sockets under the given prefix; with
    WSGISocketRotation Off a graceful restart keeps the socket's name,
    with the default On it changes, the old name kept as a second link to
    the same socket (the old generation's Apache children still connect by
    it); a stop removes both."""
    import os
    run = ws.new_dir("sockets")
    os.chown(run, __import__("pwd").getpwnam("nobody").pw_uid, -1)
    run.chmod(0o700)
    names = {}
    for rotation in ("On", "Off"):
        srv = start_with_daemon_options(
            servers, ws, f"prefix{rotation}", [], ["--processes", "1"],
            extra=[f"WSGISocketPrefix {run}/wsgi", f"WSGISocketRotation {rotation}"])
        try:
            assert srv.get("/").status_code == 200
            before = sorted(p.name for p in run.iterdir() if p.name.startswith("wsgi."))
            assert len(before) == 1, before
            assert oct(os.stat(run / before[0]).st_mode & 0o777) == "0o600"
            proc = srv.apachectl("graceful")
            assert proc.returncode == 0, proc.out
            assert wait_until(lambda: srv.get("/").status_code == 200, 15)
            after = sorted(p.name for p in run.iterdir() if p.name.startswith("wsgi."))
            names[rotation] = (before, after)
            if rotation == "On":
                assert before[0] in after and len(after) == 2, after
                a, b = (os.stat(run / n) for n in after)
                assert (a.st_ino, a.st_nlink) == (b.st_ino, 2), after
        finally:
            srv.stop()
        assert not [p for p in run.iterdir() if p.name.startswith("wsgi.")], list(run.iterdir())
    assert set(names["On"][0]) < set(names["On"][1]), names
    assert names["Off"][0] == names["Off"][1], names


def test_world_writable_socket_prefix_is_refused(servers, ws):
    d = ws.new_dir("open")
    d.chmod(0o777)
    srv = servers.create("openprefix", ws.apps / "daemon" / "app.wsgi", "event",
                         ["--log-level", "info"], mode="daemon")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + f"\nWSGISocketPrefix {d}/wsgi\n")
    proc = srv.apachectl("start")
    try:
        assert wait_until(lambda: "world-writable" in srv.error_log(), 10), srv.error_log_tail()
        assert "WSGISocketPrefix" in srv.error_log()
    finally:
        srv.stop()


def load(srv, seconds, clients=4):
    """`clients` threads requesting for `seconds`: (pids seen, failures,
    slowest request in seconds)."""
    pids, failures, slowest = set(), [], [0.0]

    def client():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                r = requests.get(srv.url("/"), timeout=30, headers={"Connection": "close"})
                if r.status_code != 200:
                    failures.append(r.status_code)
                else:
                    pids.add(r.json()["pid"])
            except requests.RequestException as e:
                failures.append(repr(e))
            slowest[0] = max(slowest[0], time.monotonic() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    return threads, pids, failures, slowest


def test_replacement_waits_for_no_import(servers, ws):
    """maximum-requests with an application that takes 3 s to import: the
    standby imports it while the old daemon keeps serving, so no request
    waits for the import and none fails."""
    srv = start_with_daemon_options(servers, ws, "zerodown", ["maximum-requests=30"],
                                    ["--processes", "1", "--threads", "4"],
                                    script=ws.apps / "daemon" / "slow_import.wsgi")
    try:
        pid(srv)            # the first import is done
        threads, pids, failures, slowest = load(srv, 10)
        for t in threads:
            t.join()
        assert failures == [], (failures, srv.error_log_tail())
        assert len(pids) >= 2, pids
        assert slowest[0] < 2.0, f"a request waited {slowest[0]:.1f} s (the import takes 3 s)"
    finally:
        srv.stop()


def test_graceful_restart_waits_for_no_import(servers, ws):
    """apachectl graceful with an 8 s import: the old daemons serve on the
    same socket until the new ones have imported the application, then
    retire; no request fails or waits for the import. (Apache's own
    graceful restart can hold a connection for about 2 s, so the import is
    long enough to tell the two apart.)"""
    srv = start_with_daemon_options(servers, ws, "zerograce", [],
                                    ["--processes", "2", "--threads", "3"],
                                    script=ws.apps / "daemon" / "slower_import.wsgi")
    try:
        for _ in range(4):  # the first imports are done
            pid(srv)
        old = set(daemon_pids(srv))
        threads, pids, failures, slowest = load(srv, 22)
        time.sleep(1)
        assert srv.apachectl("graceful").returncode == 0
        time.sleep(10)
        assert srv.apachectl("graceful").returncode == 0
        for t in threads:
            t.join()
        assert failures == [], (failures, srv.error_log_tail())
        assert slowest[0] < 4.0, f"a request waited {slowest[0]:.1f} s (the import takes 8 s)"
        assert wait_until(lambda: not (set(daemon_pids(srv)) & old), 25), (old, daemon_pids(srv))
        assert "previous configuration, replaced" in srv.error_log()
    finally:
        srv.stop()


def test_script_user_refuses_a_script_owned_by_another(servers, ws):
    import os
    import pwd
    owner = pwd.getpwuid(os.stat(ws.apps / "daemon" / "app.wsgi").st_uid).pw_name
    for user, status in ((owner, 200), ("daemon", 403)):
        srv = start_with_daemon_options(servers, ws, f"scriptuser-{user}",
                                        [f"script-user={user}"], ["--processes", "1"])
        try:
            mark = srv.log_mark()
            assert srv.get("/").status_code == status, srv.error_log_tail()
            if status == 403:
                log = srv.wait_for_log(mark, "RWSGI0057")
                assert "script-user" in log and "daemon" in log, log
        finally:
            srv.stop()


def test_ignored_activity_does_not_keep_a_daemon_alive(servers, ws):
    """inactivity-timeout counts only requests outside WSGIIgnoreActivity
    On locations: a health check every half second does not keep the
    daemon from being replaced."""
    srv = start_with_daemon_options(
        servers, ws, "ignore", ["inactivity-timeout=3"], ["--processes", "1"],
        extra=['<Location "/health">', "WSGIIgnoreActivity On", "</Location>"])
    try:
        first = pid(srv)
        assert srv.get("/").json()["connects"] == "1"
        seen = set()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(seen) < 2:
            r = srv.get("/health", headers={"Connection": "close"})
            assert r.status_code == 200, srv.error_log_tail()
            seen.add(r.json()["pid"])
            time.sleep(0.5)
        assert len(seen) == 2 and first in seen, seen
        assert "inactivity-timeout (3 s)" in srv.error_log()
    finally:
        srv.stop()


SERVICE_SCRIPT = '''
import os, time
MARK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mark.txt")
n = 0
while True:  # a service runs for the life of its process
    n += 1
    with open(MARK + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {n}\\n")
    os.replace(MARK + ".tmp", MARK)
    time.sleep(0.2)
'''


def test_service_process_group_runs_its_script_and_takes_no_requests(servers, ws):
    """threads=0 (mod_wsgi's managed services): the group's WSGIImportScript
    runs in its daemon process for the life of the process, even one that
    never returns; the process is replaced at a graceful restart and gone
    after a stop; a request delegated to it is a 500 naming the group."""
    import os
    import pwd
    d = ws.new_dir("service")
    os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    script = d / "service.py"
    script.write_text(SERVICE_SCRIPT)
    mark = d / "mark.txt"

    def tick():
        try:
            pid, n = mark.read_text().split()
            return int(pid), int(n)
        except (OSError, ValueError):
            return None

    srv = start_with_daemon_options(
        servers, ws, "service", [], ["--processes", "1"],
        extra=[f"WSGIDaemonProcess svc user=nobody group=nogroup threads=0",
               f"WSGIImportScript {script} process-group=svc application-group=%{{GLOBAL}}",
               f"WSGIScriptAlias /to-service {ws.apps / 'daemon' / 'app.wsgi'} process-group=svc"])
    try:
        assert srv.get("/").status_code == 200, srv.error_log_tail()
        assert wait_until(lambda: tick() is not None, 15), srv.error_log_tail()
        first = tick()
        assert wait_until(lambda: (tick() or (0, 0))[1] > first[1] + 2, 10), "the service stopped"
        assert "RWSGI0044" in srv.error_log() and "service process" in srv.error_log()
        mark_at = srv.log_mark()
        assert srv.get("/to-service/").status_code == 500
        log = srv.wait_for_log(mark_at, "RWSGI0058")
        assert '"svc"' in log and "threads=0" in log, log
        # A graceful restart hands the service on to a new process.
        proc = srv.apachectl("graceful")
        assert proc.returncode == 0, proc.out
        assert wait_until(lambda: (tick() or (0, 0))[0] not in (0, first[0]), 20), (
            tick(), srv.error_log_tail())
        service_pid = tick()[0]
        assert srv.get("/").status_code == 200
    finally:
        srv.stop()
    assert wait_until(lambda: not os.path.exists(f"/proc/{service_pid}"), 10), "service left running"


PRINT_APP = '''
import sys
def application(environ, start_response):
    print("vhost-daemon-line", environ["mod_wsgi.process_group"], file=sys.stderr, flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


def test_daemon_logs_to_the_error_log_of_its_virtual_host(servers, ws):
    """As mod_wsgi: a WSGIDaemonProcess defined in a <VirtualHost> with its
    own ErrorLog has its daemons' output (here the application's stderr)
    there, not in the main server's error log."""
    from conftest import free_port
    d = ws.new_dir("vhostlog")
    (d / "print.wsgi").write_text(PRINT_APP)
    log = d / "vhost_error_log"
    port = free_port()
    srv = start_with_daemon_options(
        servers, ws, "vhostlog", [], ["--processes", "1"],
        extra=[f"Listen 127.0.0.1:{port}",
               f"<VirtualHost 127.0.0.1:{port}>",
               "    ServerName vhostlog.test",
               f"    ErrorLog {log}",
               "    WSGIDaemonProcess vhostgroup user=nobody group=nogroup threads=2",
               f"    WSGIScriptAlias /p {d / 'print.wsgi'} process-group=vhostgroup application-group=%{{GLOBAL}}",
               f"    <Directory {d}>",
               "        Require all granted",
               "    </Directory>",
               "</VirtualHost>"])
    try:
        r = requests.get(f"http://127.0.0.1:{port}/p", timeout=10)
        assert r.status_code == 200, srv.error_log_tail()
        assert wait_until(lambda: log.exists() and "vhost-daemon-line vhostgroup" in log.read_text(), 10), (
            log.read_text() if log.exists() else "no vhost log", srv.error_log_tail())
        assert "vhost-daemon-line" not in srv.error_log()
    finally:
        srv.stop()


SIGNAL_APP = '''
import os, mod_wsgi
DIR = os.path.dirname(os.path.abspath(__file__))
def on_signal(name, signum, **event):
    with open(os.path.join(DIR, "signals"), "a") as f:
        f.write(f"{name} {signum}\\n")
mod_wsgi.subscribe_signals(on_signal)
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''


def test_subscribe_signals_gets_sighup_and_sigusr2(servers, ws):
    """mod_wsgi 6: in a daemon process, SIGHUP and a SIGUSR2 (not the Apache
    parent's) reach mod_wsgi.subscribe_signals subscribers as process_signal
    events, and the process keeps serving."""
    import os
    import pwd
    import signal
    d = ws.new_dir("signals")
    os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    (d / "app.wsgi").write_text(SIGNAL_APP)
    srv = start_with_daemon_options(servers, ws, "signals", [], ["--processes", "1"],
                                    script=d / "app.wsgi")
    try:
        pid = int(srv.get("/").text)
        os.kill(pid, signal.SIGUSR2)
        os.kill(pid, signal.SIGHUP)
        got = d / "signals"
        want = {f"process_signal {int(signal.SIGUSR2)}", f"process_signal {int(signal.SIGHUP)}"}
        assert wait_until(lambda: got.exists() and set(got.read_text().split("\n")) >= want, 10), (
            got.read_text() if got.exists() else "none", srv.error_log_tail())
        time.sleep(0.5)
        assert int(srv.get("/").text) == pid, "the daemon process was replaced"
    finally:
        srv.stop()


def test_subscribe_signals_outside_daemon_mode_warns(servers, ws):
    d = ws.new_dir("signals-embedded")
    (d / "app.wsgi").write_text(SIGNAL_APP)
    with servers.running("signalsemb", d / "app.wsgi", "event", ["--log-level", "info"],
                         mode="embedded") as srv:
        assert srv.get("/").status_code == 200
        assert wait_until(lambda: "RWSGI0089" in srv.error_log(), 10), srv.error_log_tail()
        assert "outside daemon mode" in srv.error_log()


def test_long_socket_path_falls_back_to_a_hashed_name(servers, ws):
    """A socket directory deep enough that PID.GEN.GROUP.sock would pass the
    107 bytes of a UNIX socket path: the group's name gives way to a short
    hash, and the group serves."""
    import os
    import pwd
    import re
    deep = ws.new_dir("deep")
    # Long enough that wsgi.PID.GEN.localhost_PORT.sock does not fit, short
    # enough that the hashed name does.
    deep = deep / ("a" * (107 - len(str(deep)) - 1 - len("/wsgi.1234567.0.0123abcd.sock")))
    deep.mkdir()
    os.chown(deep, pwd.getpwnam("nobody").pw_uid, -1)
    deep.chmod(0o700)
    srv = start_with_daemon_options(servers, ws, "deepsock", [], ["--processes", "1"],
                                    extra=[f"WSGISocketPrefix {deep}/wsgi"])
    try:
        assert srv.get("/").status_code == 200, srv.error_log_tail()
        names = [p.name for p in deep.iterdir()]
        assert any(re.fullmatch(r"wsgi\.\d+\.\d+\.[0-9a-f]{8}\.sock", n) for n in names), names
        assert all(len(str(deep / n)) <= 107 for n in names), names
    finally:
        srv.stop()


@pytest.mark.parametrize("eviction", [2, 0])
def test_eviction_timeout_bounds_the_drain_at_graceful(servers, ws, eviction):
    """At `apachectl graceful` the new daemon retires its predecessor once it
    has imported the application; the old one drains within
    eviction-timeout (mod_wsgi WSGIDaemonProcess eviction-timeout), else
    within graceful-timeout (30 s here, longer than the 12 s request)."""
    options = ["graceful-timeout=30"] + ([f"eviction-timeout={eviction}"] if eviction else [])
    srv = start_with_daemon_options(servers, ws, f"evict{eviction}", options,
                                    ["--processes", "1", "--threads", "2"])
    try:
        old = pid(srv)
        done = {}
        mark = ws.new_dir(f"evict{eviction}-mark") / "pid"
        mark.parent.chmod(0o777)

        def long_request():
            try:
                done["status"] = srv.get(f"/sleep?t=12&mark={mark}", timeout=40).status_code
            except requests.RequestException as e:
                done["status"] = repr(e)
            done["at"] = time.monotonic()

        t = threading.Thread(target=long_request)
        t.start()
        # The request is in the (only) daemon.
        assert wait_until(mark.exists, 10), srv.error_log_tail()
        assert int(mark.read_text()) == old
        proc = srv.apachectl("graceful")
        assert proc.returncode == 0, proc.out
        t0 = time.monotonic()
        assert wait_until(lambda: any(p != old for p in daemon_pids(srv)), 15), \
            srv.error_log_tail()
        gone = wait_until(lambda: old not in daemon_pids(srv), 7)
        if eviction:
            # Gone about eviction-timeout after the new daemon took over,
            # long before the request would have ended.
            assert gone, srv.error_log_tail()
            assert time.monotonic() - t0 < 9
        else:
            # Still draining the request (graceful-timeout 30 s).
            assert not gone, srv.error_log_tail()
        t.join(40)
        if not eviction:
            assert done["status"] == 200, done
        # eviction-timeout is in effect: no "accepted but not in effect".
        assert "RWSGI0049" not in srv.error_log(), srv.error_log_tail()
    finally:
        srv.stop()
