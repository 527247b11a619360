"""mod_wsgi 6's metrics and events API (mod_wsgi.subscribe_events,
request_metrics, process_metrics, server_metrics, request_data,
active_requests), against real Apache in embedded and daemon mode. Every
request of a test goes over one kept-alive connection, so one process (the
Apache child, or the single daemon process) serves them all."""

import shutil
import time

import pytest
import requests

from conftest import wait_until
from test_daemon import start_with_daemon_options

MODES = ["embedded", "daemon"]

FINISHED_KEYS = {
    "request_id", "thread_id", "request_data", "server_pid", "request_start",
    "queue_start", "daemon_start", "application_start", "application_finish",
    "application_time", "input_reads", "input_length", "input_time", "output_writes",
    "output_length", "output_time", "status", "cpu_user_time", "cpu_system_time",
    "cpu_time", "gil_wait_time", "gil_wait_count",
}
STARTED_KEYS = {
    "request_id", "thread_id", "request_data", "request_environ", "application_object",
    "server_pid", "request_start", "queue_start", "daemon_start", "application_start",
    "daemon_connects", "daemon_restarts",
}


def app_copy(ws):
    """The metrics app in a directory its processes (user nobody) may write."""
    d = ws.new_dir("metrics")
    shutil.copy(ws.apps / "metrics" / "app.wsgi", d / "app.wsgi")
    (d / "app.wsgi").chmod(0o644)
    d.chmod(0o1777)
    return d


@pytest.fixture(scope="module", params=MODES)
def metrics_server(request, servers, ws):
    d = app_copy(ws)
    args = ["--log-level", "info", "--processes", "1", "--threads", "4"]
    srv = servers.start("metrics", d / "app.wsgi", "event", args, mode=request.param)
    srv.app_dir = d
    yield srv
    srv.stop()


class Client:
    def __init__(self, srv):
        self.srv = srv
        self.session = requests.Session()

    def get(self, path, **kw):
        r = self.session.get(self.srv.url(path), timeout=30, **kw)
        return r

    def json(self, path, **kw):
        r = self.get(path, **kw)
        assert r.status_code == 200, (path, r.status_code, self.srv.error_log_tail())
        return r.json()

    def events_since(self, mark):
        return self.json(f"/events?{mark}")

    def event_count(self):
        return len(self.json("/events?0"))


def finished_of(events, path):
    """The request_finished events of the requests to `path`."""
    return [evs[-1] for evs in requests_of(events).values()
            if evs[0].get("path") == path and evs[-1]["name"] == "request_finished"]


def requests_of(events):
    """Groups events by request id, in order, keeping event order."""
    by_id = {}
    for e in events:
        if e.get("request_id") is not None:
            by_id.setdefault(e["request_id"], []).append(e)
    return by_id


def test_events_arrive_in_order_with_request_ids_and_payloads(metrics_server):
    c = Client(metrics_server)
    mark = c.event_count()
    pid = c.json("/info")["pid"]
    for _ in range(3):
        assert c.get("/hello").text == "hello"
    events = c.events_since(mark)
    hellos = [evs for evs in requests_of(events).values()
              if evs[0]["name"] == "request_started" and evs[0].get("path") == "/hello"]
    assert len(hellos) == 3, events
    ids = set()
    for evs in hellos:
        assert [e["name"] for e in evs] == ["request_started", "response_started",
                                            "request_finished"], evs
        started, response, finished = evs
        ids.add(started["request_id"])
        assert set(started["keys"]) == STARTED_KEYS, started
        assert response["response_status"] == "200 OK"
        assert set(finished["keys"]) >= FINISHED_KEYS, finished
        assert finished["status"] == 200
        assert finished["output_length"] == 5 and finished["output_writes"] >= 1
        assert finished["input_length"] == 0
        assert finished["thread_id"] == started["thread_id"] >= 1
        assert started["request_start"] <= started["application_start"] \
            <= finished["application_finish"] <= time.time() + 1
        assert finished["application_time"] == pytest.approx(
            finished["application_finish"] - finished["application_start"], abs=1e-5)
        assert finished["gil_wait_count"] >= 1
        # The subscriber's write at request_started is there at the end.
        assert "subscriber_thread" in finished["request_data"]
        if metrics_server.mode == "daemon":
            assert started["request_start"] <= started["queue_start"] \
                <= started["daemon_start"] <= started["application_start"], started
            assert started["server_pid"] != pid
        else:
            assert started["queue_start"] == 0 and started["daemon_start"] == 0
            assert started["server_pid"] == pid
    assert len(ids) == 3


def test_exception_event_and_status_zero(metrics_server):
    c = Client(metrics_server)
    mark = c.event_count()
    assert c.get("/raise").status_code == 500
    events = c.events_since(mark)
    (evs,) = [v for v in requests_of(events).values() if v[0].get("path") == "/raise"]
    assert [e["name"] for e in evs] == ["request_started", "request_exception",
                                        "request_finished"], evs
    assert evs[1]["exception"] == "RuntimeError: raised on purpose"
    assert evs[1]["has_traceback"] is True
    assert evs[2]["status"] == 0


def test_streamed_response_and_body_are_counted(metrics_server):
    c = Client(metrics_server)
    mark = c.event_count()
    body = b"z" * 3000
    r = c.session.post(metrics_server.url("/post"), data=body, timeout=30)
    assert r.json() == {"length": 3000}
    r = c.get("/stream")
    assert r.status_code == 201 and r.text == "x" * 30
    events = c.events_since(mark)
    (post,), (stream,) = finished_of(events, "/post"), finished_of(events, "/stream")
    assert post["input_length"] == 3000 and post["input_reads"] >= 1
    assert stream["status"] == 201
    assert stream["output_length"] == 30 and stream["output_writes"] == 3


def test_application_object_replacement_and_dict_merge(metrics_server):
    c = Client(metrics_server)
    assert c.json("/wrapped") == {"wrapped": "subscriber"}
    assert "merged" in c.json("/info")["merged"]


def test_process_metrics_count_requests(metrics_server):
    c = Client(metrics_server)
    before = c.json("/process")
    for _ in range(5):
        c.get("/hello")
    after = c.json("/process")
    # The five requests and the first /process request itself.
    assert after["request_count"] - before["request_count"] == 6
    assert after["pid"] == before["pid"] == c.json("/info")["pid"]
    assert after["active_requests"] == 1  # this one
    assert after["request_busy_time"] >= before["request_busy_time"]
    assert 1 <= after["request_threads"] == len(after["threads"])
    assert sum(t["request_count"] for t in after["threads"]) >= after["request_count"]
    assert [t["thread_id"] for t in after["threads"]] == list(
        range(1, len(after["threads"]) + 1))
    assert after["memory_rss"] > 1_000_000 and after["memory_max_rss"] >= after["memory_rss"]
    assert after["cpu_time"] == pytest.approx(after["cpu_user_time"] + after["cpu_system_time"])


def test_request_metrics_drain_an_interval(metrics_server):
    c = Client(metrics_server)
    c.json("/interval")  # starts a fresh interval
    body = b"q" * 1000
    for _ in range(4):
        assert c.session.post(metrics_server.url("/post"), data=body, timeout=30).ok
    c.get("/nothing-here")  # 404
    m = c.json("/interval")
    # The first /interval request ended after its drain: it is in this one.
    assert m["request_count"] == 6, m
    assert m["input_bytes"] == 4000 and m["input_reads"] >= 4
    assert (m["status_2xx"], m["status_4xx"], m["status_5xx"]) == (5, 1, 0)
    assert m["output_writes"] >= 6 and m["output_bytes"] > 0
    assert m["sample_period"] == pytest.approx(m["stop_time"] - m["start_time"], abs=1e-5)
    assert m["request_throughput"] == pytest.approx(m["request_count"] / m["sample_period"])
    assert m["request_threads_maximum"] == 4 if metrics_server.mode == "daemon" else True
    assert len(m["request_threads_completed"]) == m["request_threads_maximum"]
    assert sum(m["request_threads_completed"]) == 6
    assert sum(m["application_time_buckets"]) == 6
    assert len(m["gil_wait_time_buckets"]) == 65
    assert 0 <= m["capacity_utilization"] <= 1
    assert m["gil_wait_count"] >= 6
    if metrics_server.mode == "daemon":
        assert m["queue_time"] is not None and m["daemon_time_min_us"] is not None
    else:
        assert m["queue_time"] is None and m["daemon_time_max_us"] is None
    # Drained: an immediate second call covers only the call in between.
    again = c.json("/interval")
    assert again["request_count"] == 1


def test_request_data_and_active_requests(metrics_server):
    c = Client(metrics_server)
    r = c.json("/request-data")
    assert r["same"] is True
    assert r["data"]["application"] == "set" and "subscriber_thread" in r["data"]
    assert r["import_time"].startswith("RuntimeError")
    a = c.json("/active")
    assert a["mine"] is True and a["ids"], a
    assert set(a["entry_keys"]) == STARTED_KEYS
    # Finished requests leave it: only the current request remains.
    assert len(c.json("/active")["ids"]) == 1


def test_server_metrics_is_none_without_the_setting(metrics_server):
    c = Client(metrics_server)
    assert c.json("/server") is None
    assert c.json("/info")["recording_before_start"] is None


@pytest.mark.parametrize("mode", MODES)
def test_process_stopping_reaches_subscribe_shutdown(servers, ws, mode):
    d = app_copy(ws)
    srv = servers.start("stopping", d / "app.wsgi", "event",
                        ["--processes", "1", "--threads", "2"], mode=mode)
    try:
        pid = Client(srv).json("/info")["pid"]
    finally:
        srv.stop()
    marker = d / f"stopping-{pid}.txt"
    assert wait_until(marker.exists, 10), srv.error_log_tail()
    reason = "shutdown_signal" if mode == "daemon" else ""
    assert marker.read_text() == f"process_stopping {reason}"


def test_server_metrics_reads_the_scoreboard_with_wsgiservermetrics(servers, ws):
    d = app_copy(ws)
    conf = d / "metrics.conf"
    conf.write_text("WSGIServerMetrics On\n")
    conf.chmod(0o644)
    srv = servers.start("scoreboard", d / "app.wsgi", "event",
                        ["--include-file", conf], mode="embedded")
    try:
        c = Client(srv)
        for _ in range(3):
            c.get("/hello")
        pid = c.json("/info")["pid"]
        m = c.json("/server")
        assert m is not None, srv.error_log_tail()
        assert {"server_limit", "thread_limit", "running_generation", "restart_time",
                "current_time", "running_time", "processes"} <= set(m["keys"])
        assert set(m["worker_keys"]) == {"thread_num", "generation", "status", "access_count",
                                         "bytes_served", "start_time", "stop_time",
                                         "last_used", "client", "request", "vhost"}
        assert pid in m["pids"] and set(m["pids"]) <= set(srv.children()), m["pids"]
        assert "W" in m["statuses"]  # the worker answering this request
    finally:
        srv.stop()


def test_server_metrics_in_daemon_mode_reads_the_scoreboard_copy(servers, ws):
    """Daemon processes are forked before Apache makes its scoreboard: with
    server-metrics=On they read the copy Apache's children keep (at most
    about a second old)."""
    d = app_copy(ws)
    srv = start_with_daemon_options(servers, ws, "scoreboard-daemon", ["server-metrics=On"],
                                    ["--processes", "1", "--threads", "2"],
                                    script=d / "app.wsgi")
    try:
        c = Client(srv)
        daemon_pid = c.json("/info")["pid"]
        assert wait_until(lambda: c.json("/server") is not None, 10), srv.error_log_tail()
        m = c.json("/server")
        assert set(m["worker_keys"]) == {"thread_num", "generation", "status", "access_count",
                                         "bytes_served", "start_time", "stop_time",
                                         "last_used", "client", "request", "vhost"}
        children = set(srv.children())
        assert m["pids"] and set(m["pids"]) <= children, (m["pids"], children)
        assert daemon_pid not in m["pids"]
        assert set(m["statuses"]) <= set(".S_RWKLDCGI"), m["statuses"]
        assert "_" in m["statuses"] or "W" in m["statuses"], m["statuses"]
    finally:
        srv.stop()


def test_server_metrics_stays_off_for_a_daemon_group_without_the_option(servers, ws):
    d = app_copy(ws)
    srv = start_with_daemon_options(servers, ws, "scoreboard-off", [],
                                    ["--processes", "1", "--threads", "2"],
                                    script=d / "app.wsgi")
    try:
        c = Client(srv)
        time.sleep(1.5)
        assert c.json("/server") is None
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", MODES)
def test_subscribers_see_the_events_of_their_own_interpreter(servers, ws, mode):
    """Subscriptions are per interpreter: the app mounted in application
    group 'alpha' (a sub-interpreter) and the one in %{GLOBAL} each see only
    their own requests' events, while the process counters are shared."""
    d = app_copy(ws)
    app = d / "app.wsgi"
    mpm = "prefork" if mode == "embedded" else "event"
    srv = servers.create(f"metrics-sub-{mode}", app, mpm, mode=mode)
    group = f"localhost:{srv.port}" if mode == "daemon" else "%{GLOBAL}"
    include = d / "alpha.conf"
    include.write_text(f'<Directory "{d}">\n    Require all granted\n</Directory>\n'
                       f'WSGIScriptAlias /alpha "{app}" process-group={group} '
                       f"application-group=alpha\n")
    include.chmod(0o644)
    srv.args = ["--processes", "1", "--include-file", str(include)]
    if mode == "embedded":
        srv.args += ["--max-clients", "1"]
    srv.setup()
    srv.start()
    try:
        c = Client(srv)
        main_mark, alpha_mark = c.event_count(), len(c.json("/alpha/events?0"))
        assert c.get("/hello").text == "hello"
        for _ in range(2):
            assert c.get("/alpha/hello").text == "hello"
        main_events = requests_of(c.events_since(main_mark))
        alpha_events = requests_of(c.json(f"/alpha/events?{alpha_mark}"))
        main_paths = [evs[0].get("path") for evs in main_events.values()]
        alpha_paths = [evs[0].get("path") for evs in alpha_events.values()]
        assert main_paths.count("/hello") == 1 and "/alpha" not in str(main_paths)
        assert alpha_paths.count("/hello") == 2, alpha_paths
        assert not set(main_events) & set(alpha_events)
        # One process, one set of counters for both interpreters.
        before = c.json("/process")["request_count"]
        c.get("/alpha/hello")
        assert c.json("/alpha/process")["request_count"] == before + 2
    finally:
        srv.stop()


@pytest.mark.parametrize("mode", MODES)
def test_express_server_metrics_option(servers, ws, mode):
    """rwsgi-express --server-metrics, as mod_wsgi-express: WSGIServerMetrics
    On, and server-metrics=On on the daemon group."""
    d = app_copy(ws)
    srv = servers.start("express-metrics", d / "app.wsgi", "event",
                        ["--server-metrics", "--processes", "1"], mode=mode)
    try:
        conf = (srv.root / "httpd.conf").read_text()
        assert "WSGIServerMetrics On" in conf
        assert ("server-metrics=On" in conf) == (mode == "daemon")
        c = Client(srv)
        assert wait_until(lambda: c.json("/server") is not None, 10), srv.error_log_tail()
        assert set(c.json("/server")["pids"]) <= set(srv.children())
    finally:
        srv.stop()


def test_a_sub_request_keeps_the_outer_requests_data(servers, ws):
    """Embedded mode: mod_include runs a WSGI URL as a sub-request on the
    thread of the request in flight; each keeps its own request_data and
    events, nested in order."""
    d = app_copy(ws)
    conf = d / "ssi.conf"
    conf.write_text("<IfModule !include_module>\n"
                    "    LoadModule include_module /usr/lib/apache2/modules/mod_include.so\n"
                    "</IfModule>\n"
                    "<Location /ssi>\n    Options +Includes\n    SetOutputFilter INCLUDES\n"
                    "</Location>\n")
    conf.chmod(0o644)
    # One prefork child: every connection meets the same process.
    srv = servers.start("metrics-ssi", d / "app.wsgi", "prefork",
                        ["--include-file", conf, "--max-clients", "1"], mode="embedded")
    def get(path):
        return requests.get(srv.url(path), timeout=30, headers={"Connection": "close"})

    try:
        mark = len(get("/events?0").json())
        try:
            get("/ssi")  # cut after ";end" by the exception
        except requests.RequestException:
            pass
        events = get(f"/events?{mark}").json()
        by_path = {evs[0]["path"]: evs[0]["request_id"]
                   for evs in requests_of(events).values() if evs[0].get("path")}
        ids = {by_path["/ssi"]: "outer", by_path["/inner"]: "inner"}
        order = [(ids[e["request_id"]], e["name"]) for e in events if e["request_id"] in ids]
        assert order == [("outer", "request_started"), ("outer", "response_started"),
                         ("inner", "request_started"), ("inner", "response_started"),
                         ("inner", "request_finished"), ("outer", "request_exception"),
                         ("outer", "request_finished")], order
        (exc,) = [e for e in events if e["name"] == "request_exception"]
        assert exc["exception"] == "RuntimeError: outer raised after the sub-request"
        finished = {e["request_id"]: e for e in events if e["name"] == "request_finished"}
        outer = finished[by_path["/ssi"]]["request_data"]
        inner = finished[by_path["/inner"]]["request_data"]
        assert outer["outer"] == "set before" and outer["outer_after"] == "set after", outer
        assert "inner" not in outer and inner["inner"] == "inner only" and "outer" not in inner
    finally:
        srv.stop()


SIDECAR = '''\
# A service (threads=0) polling the scoreboard, as mod_wsgi's sidecar does.
import json
import os
import time

import mod_wsgi

OUT = os.path.join(os.path.dirname(__file__), "scoreboard.json")
while True:
    m = mod_wsgi.server_metrics()
    if m is not None:
        tmp = OUT + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(),
                       "pids": [p["pid"] for p in m["processes"] if p["pid"]],
                       "statuses": "".join(w["status"] for p in m["processes"]
                                           for w in p["workers"])}, f)
        os.replace(tmp, OUT)
    time.sleep(0.5)
'''


def test_a_service_group_with_server_metrics_reads_the_scoreboard(servers, ws):
    """A threads=0 group with server-metrics=On (mod_wsgi's server-metrics
    sidecar) reads Apache's scoreboard from its service script."""
    import json
    d = app_copy(ws)
    script = d / "sidecar.py"
    script.write_text(SIDECAR)
    script.chmod(0o644)
    srv = start_with_daemon_options(
        servers, ws, "sidecar", [], ["--processes", "1"], script=d / "app.wsgi",
        extra=["WSGIDaemonProcess sidecar threads=0 server-metrics=On",
               f"WSGIImportScript {script} process-group=sidecar application-group=%{{GLOBAL}}"])
    out = d / "scoreboard.json"
    try:
        assert Client(srv).get("/hello").text == "hello"
        assert wait_until(out.exists, 10), srv.error_log_tail()
        snap = json.loads(out.read_text())
        assert snap["pids"] and set(snap["pids"]) <= set(srv.children()), snap
        assert snap["pid"] not in snap["pids"]
        assert set(snap["statuses"]) <= set(".S_RWKLDCGI"), snap
        # The application's own group has no server-metrics=: None there.
        assert Client(srv).json("/server") is None
    finally:
        srv.stop()
