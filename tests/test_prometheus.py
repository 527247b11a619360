"""The server-wide metrics endpoint (rwsgi-express --metrics-url, the
WSGIMetricsEndpoint directive; docs/metrics.md) against real Apache in
embedded and daemon mode: two daemon processes or several Apache children
answer, and the counts must be those of the requests the test sent, summed
over every process. The documents are parsed with prometheus_client's
parsers (the Prometheus text format and the strict OpenMetrics one)."""

import shutil
import threading

import pytest
import requests
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from conftest import wait_until

MODES = ["embedded", "daemon"]
EMBEDDED = "%{GLOBAL}"


def app_dir(ws):
    d = ws.new_dir("observe")
    shutil.copy(ws.apps / "observe" / "app.wsgi", d / "app.wsgi")
    (d / "app.wsgi").chmod(0o644)
    return d


@pytest.fixture(scope="module", params=MODES)
def srv(request, servers, ws):
    args = ["--metrics-url", "/metrics", "--processes", "2", "--threads", "4",
            "--log-level", "info"]
    s = servers.start("prom", app_dir(ws) / "app.wsgi", "event", args, mode=request.param)
    yield s
    s.stop()


class Scrape:
    """One scrape: samples by (name, labels)."""

    def __init__(self, srv, openmetrics=False):
        headers = {"Accept": "application/openmetrics-text; version=1.0.0"} if openmetrics else {}
        r = requests.get(srv.url("/metrics"), headers=headers, timeout=30)
        assert r.status_code == 200, (r.status_code, srv.error_log_tail())
        self.response = r
        parse = parse_openmetrics if openmetrics else parse_prometheus
        self.families = {f.name: f for f in parse(r.text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def get(self, name, **labels):
        return self.samples.get((name, frozenset(labels.items())), 0)

    def daemon_group(self):
        groups = [dict(k[1])["process_group"] for k in self.samples if k[0] == "rwsgi_daemon_processes"]
        assert len(groups) == 1, groups
        return groups[0]


def group_of(srv, scrape):
    return EMBEDDED if srv.mode == "embedded" else scrape.daemon_group()


def requests_total(scrape, group, method, status_class):
    return scrape.get("rwsgi_requests_total", process_group=group, application_group=EMBEDDED,
                      method=method, status_class=status_class)


def test_requests_bytes_and_histograms_count_what_was_sent(srv):
    before = Scrape(srv)
    g = group_of(srv, before)
    sent = {("GET", "2xx"): 0, ("POST", "2xx"): 0, ("GET", "4xx"): 0, ("GET", "5xx"): 0,
            ("HEAD", "2xx"): 0, ("PUT", "2xx"): 0}
    body_in = body_out = 0
    # New connections each time: the requests spread over the processes.
    for _ in range(5):
        assert requests.get(srv.url("/hello"), timeout=30).content == b"hello world\n"
        sent["GET", "2xx"] += 1
        body_out += 12
    for _ in range(3):
        r = requests.post(srv.url("/echo"), data=b"x" * 1000, timeout=30)
        assert r.status_code == 200 and len(r.content) == 1000
        sent["POST", "2xx"] += 1
        body_in += 1000
        body_out += 1000
    for _ in range(2):
        assert requests.get(srv.url("/status/404"), timeout=30).status_code == 404
        sent["GET", "4xx"] += 1
        body_out += len(b"status 404\n")
    assert requests.get(srv.url("/fail"), timeout=30).status_code == 500
    sent["GET", "5xx"] += 1
    assert requests.head(srv.url("/hello"), timeout=30).status_code == 200
    sent["HEAD", "2xx"] += 1
    assert requests.put(srv.url("/echo"), data=b"0123456789", timeout=30).status_code == 200
    sent["PUT", "2xx"] += 1
    body_in += 10
    body_out += 10
    after = Scrape(srv)

    for (method, cls), n in sent.items():
        delta = requests_total(after, g, method, cls) - requests_total(before, g, method, cls)
        assert delta == n, (method, cls, delta, n)
    total = sum(sent.values())
    for h in ("rwsgi_request_duration_seconds", "rwsgi_time_to_first_byte_seconds",
              "rwsgi_request_queue_wait_seconds"):
        delta = (after.get(h + "_count", process_group=g) - before.get(h + "_count", process_group=g))
        assert delta == total, (h, delta, total)
        assert after.get(h + "_bucket", process_group=g, le="+Inf") == after.get(h + "_count", process_group=g)
    assert (after.get("rwsgi_request_bytes_total", process_group=g)
            - before.get("rwsgi_request_bytes_total", process_group=g)) == body_in
    assert (after.get("rwsgi_response_bytes_total", process_group=g)
            - before.get("rwsgi_response_bytes_total", process_group=g)) == body_out
    # The metrics requests themselves are not WSGI requests: not counted.
    again = Scrape(srv)
    assert requests_total(again, g, "GET", "2xx") == requests_total(after, g, "GET", "2xx")


def test_a_running_request_is_in_flight_on_a_busy_thread(srv):
    before = Scrape(srv)
    g = group_of(srv, before)
    done = {}

    def slow():
        done["r"] = requests.get(srv.url("/sleep?2"), timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    try:
        seen = {}

        def busy():
            s = Scrape(srv)
            seen["s"] = s
            return (s.get("rwsgi_requests_in_flight", process_group=g) == 1
                    and s.get("rwsgi_threads", process_group=g, state="busy") == 1)

        assert wait_until(busy, timeout=10), seen["s"].response.text
        s = seen["s"]
        total = s.get("rwsgi_threads", process_group=g, state="busy") + s.get(
            "rwsgi_threads", process_group=g, state="idle")
        # Daemon mode: 2 processes of 4 threads; embedded: Apache's threads.
        if srv.mode == "daemon":
            assert total == 8
        else:
            assert total >= 1
    finally:
        t.join()
    assert done["r"].status_code == 200
    after = Scrape(srv)
    assert after.get("rwsgi_requests_in_flight", process_group=g) == 0
    assert after.get("rwsgi_threads", process_group=g, state="busy") == 0
    # It slept 2 s: counted above the 1 s bucket, not in it.
    d = "rwsgi_request_duration_seconds_bucket"
    assert after.get(d, process_group=g, le="1.0") == before.get(d, process_group=g, le="1.0")
    assert after.get(d, process_group=g, le="+Inf") == before.get(d, process_group=g, le="+Inf") + 1


def test_python_garbage_collections(srv):
    before = Scrape(srv)
    g = group_of(srv, before)
    n = before.get("rwsgi_python_gc_collections_total", process_group=g, generation="2")
    session = requests.Session()
    assert session.get(srv.url("/gc"), timeout=30).status_code == 200

    # gc.collect() is one full (generation 2) collection; others may run
    # too. A process reads its figures after a request, at most once a
    # second: more requests bring them in.
    def counted():
        session.get(srv.url("/hello"), timeout=30)
        return Scrape(srv).get("rwsgi_python_gc_collections_total", process_group=g,
                               generation="2") >= n + 1

    assert wait_until(counted, timeout=20, interval=0.3)


def test_openmetrics_when_asked(srv):
    requests.get(srv.url("/hello"), timeout=30)
    s = Scrape(srv, openmetrics=True)
    assert s.response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    assert s.response.text.endswith("# EOF\n")
    assert s.families["rwsgi_requests"].type == "counter"
    assert s.families["rwsgi_request_duration_seconds"].type == "histogram"
    g = group_of(srv, s)
    assert requests_total(s, g, "GET", "2xx") >= 1
    plain = Scrape(srv)
    assert plain.response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert plain.families["rwsgi_requests"].type == "counter"


def test_daemon_processes_resources_and_restart_causes(srv):
    if srv.mode != "daemon":
        pytest.skip("daemon processes exist in daemon mode only")
    g = Scrape(srv).daemon_group()
    assert wait_until(lambda: Scrape(srv).get("rwsgi_daemon_processes", process_group=g) == 2,
                      timeout=30)
    s = Scrape(srv)
    for p in ("0", "1"):
        assert s.get("rwsgi_daemon_process_resident_memory_bytes", process_group=g, process=p) > 1 << 20
        assert ("rwsgi_daemon_process_cpu_seconds_total",
                frozenset({"process_group": g, "process": p}.items())) in s.samples
    killed = s.get("rwsgi_daemon_restarts_total", process_group=g, cause="SIGKILL")
    # The application kills its own process: the Apache parent restarts it.
    assert requests.get(srv.url("/kill"), timeout=30).status_code == 502

    def restarted():
        a = Scrape(srv)
        return (a.get("rwsgi_daemon_restarts_total", process_group=g, cause="SIGKILL") == killed + 1
                and a.get("rwsgi_daemon_processes", process_group=g) == 2)

    assert wait_until(restarted, timeout=20), Scrape(srv).response.text


def test_clients_outside_the_allow_list_get_403(servers, ws):
    # Only an address other than 127.0.0.1 may read: the test's client may not.
    args = ["--metrics-url", "/metrics", "--status-url", "/rwsgi-status",
            "--metrics-allow", "192.0.2.1/32", "--metrics-allow", "2001:db8::/32"]
    with servers.running("prom-deny", app_dir(ws) / "app.wsgi", "event", args) as s:
        for path in ("/metrics", "/rwsgi-status", "/rwsgi-status.json"):
            r = requests.get(s.url(path), timeout=30)
            assert r.status_code == 403, (path, r.status_code)
            assert "rwsgi_requests_total" not in r.text
        assert requests.get(s.url("/hello"), timeout=30).status_code == 200


def test_counters_survive_a_graceful_restart(srv):
    requests.get(srv.url("/hello"), timeout=30)
    before = Scrape(srv)
    g = group_of(srv, before)
    n = requests_total(before, g, "GET", "2xx")
    assert n >= 1
    proc = srv.apachectl("graceful")
    assert proc.returncode == 0, proc.out
    assert srv.restart_ready()
    # The new generation's children (and daemons) count on from there.
    assert requests.get(srv.url("/hello"), timeout=30).status_code == 200
    after = Scrape(srv)
    g = group_of(srv, after)
    assert requests_total(after, g, "GET", "2xx") >= n + 1
    if srv.mode == "daemon":
        assert wait_until(lambda: Scrape(srv).get("rwsgi_daemon_processes", process_group=g) == 2,
                          timeout=30)


def test_directive_form_and_bad_values(servers, ws):
    d = app_dir(ws)
    good = d / "metrics.conf"
    good.write_text("WSGIMetricsEndpoint /server-metrics\nWSGIMetricsAllow 127.0.0.0/8\n")
    good.chmod(0o644)
    with servers.running("prom-directive", d / "app.wsgi", "event", ["--include-file", good]) as s:
        assert requests.get(s.url("/hello"), timeout=30).status_code == 200
        r = requests.get(s.url("/server-metrics"), timeout=30)
        assert r.status_code == 200, s.error_log_tail()
        fam = {f.name: f for f in parse_prometheus(r.text)}
        assert any(x.value == 1 and x.labels["method"] == "GET"
                   for x in fam["rwsgi_requests"].samples)
        # Only the URL itself: others are the application's.
        assert requests.get(s.url("/server-metrics/x"), timeout=30).status_code == 404
    for text, needle in (("WSGIMetricsAllow 10.0.0.0/33\n", "WSGIMetricsAllow: RWSGI0130"),
                         ("WSGIMetricsEndpoint metrics\n", "WSGIMetricsEndpoint: RWSGI0130"),
                         ("WSGIStatusPage /s\nWSGIMetricsEndpoint /s\n", "is already the WSGIStatusPage")):
        bad = d / "bad.conf"
        bad.write_text(text)
        bad.chmod(0o644)
        srv = servers.create("prom-bad", d / "app.wsgi", args=["--include-file", bad])
        srv.setup()
        proc = srv.apachectl("configtest")
        assert proc.returncode != 0 and needle in proc.out, proc.out
    # The launcher checks its options the same way, before writing httpd.conf.
    srv = servers.create("prom-bad-option", d / "app.wsgi", args=["--metrics-url", "metrics"])
    with pytest.raises(Exception) as e:
        srv.setup()
    assert "--metrics-url" in str(e.value)


def test_application_group_label_and_sub_interpreters(servers, ws):
    args = ["--metrics-url", "/metrics", "--application-group", "observed", "--processes", "1"]
    with servers.running("prom-subinterp", app_dir(ws) / "app.wsgi", "event", args,
                         mode="daemon") as s:
        for _ in range(3):
            assert requests.get(s.url("/hello"), timeout=30).status_code == 200
        m = Scrape(s)
        g = m.daemon_group()
        assert m.get("rwsgi_requests_total", process_group=g, application_group="observed",
                     method="GET", status_class="2xx") == 3
        # The application's interpreter is a sub-interpreter of the one daemon process.
        assert m.get("rwsgi_python_sub_interpreters", process_group=g) == 1
