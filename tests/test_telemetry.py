"""WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions against
real Apache, embedded and in a daemon process group: the test binds a UNIX
datagram socket, and every process serving requests sends it, each
interval, a datagram in mod_wsgi 6's format (24-byte header 'WSGI', version
1, kind, pid, seq, stamp in seconds; then id/type/value fields; decoded here
by mod_wsgi-telemetry's own wire.decode) with its request
count, and one per slow request (completed over the threshold, or still
running over it). configtest refuses bad arguments naming the directive."""
import os
import socket
import threading
import time

import pytest
# The consumer's own decoder: mod_wsgi-telemetry (in the test venv) reads
# what rwsgi sends exactly as it reads mod_wsgi's datagrams.
from mod_wsgi.telemetry import wire

KIND_REQUEST, KIND_SLOW = wire.KIND_REQUEST, wire.KIND_SLOW_REQUEST


def decode(data):
    """(header dict, {field name: value}) of one datagram, decoded by
    mod_wsgi-telemetry's wire.decode (byte strings as str)."""
    sample = wire.decode(data)
    assert sample.version == 1
    unknown = [k for k in sample.fields if k.startswith("id")]
    assert not unknown, f"field ids mod_wsgi-telemetry does not know: {unknown}"
    fields = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in sample.fields.items()}
    return {"kind": sample.kind, "pid": sample.pid, "seq": sample.seq, "stamp": sample.stamp}, fields


class Listener:
    """A bound UNIX datagram socket collecting what arrives."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o777)
        self.sock.settimeout(0.2)
        self.got = []
        self.stop = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop:
            try:
                self.got.append(decode(self.sock.recv(65536)))
            except socket.timeout:
                continue

    def wait_for(self, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hits = [g for g in list(self.got) if pred(*g)]
            if hits:
                return hits
            time.sleep(0.1)
        return []

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def telemetry(request, servers, ws):
    d = ws.new_dir("telemetry")
    d.chmod(0o777)
    listener = Listener(d / "t.sock")
    conf = d / "telemetry.conf"
    conf.write_text(
        f"WSGITelemetryService unix:{d / 't.sock'} interval=0.5\n"
        "WSGISlowRequests 0.4\n"
        "WSGITelemetryOptions +CaptureUserAgent\n")
    conf.chmod(0o644)
    args = ["--include-file", conf, "--processes", "1", "--threads", "3",
            "--log-level", "info"]
    if request.param == "daemon":
        args += ["--process-group", "tgrp"]
    srv = servers.start(f"telemetry-{request.param}", ws.apps / "telemetry" / "app.wsgi",
                        args=args, mode=request.param)
    srv.param = request.param
    yield srv, listener
    srv.stop()
    listener.close()


def test_periodic_datagram_counts_requests(telemetry):
    srv, listener = telemetry
    for i in range(5):
        r = srv.get(f"/n{i}")
        assert r.status_code == 200 and r.text == f"telemetry-app /n{i}"
    def counted():
        return sum(f["request_count"] for h, f in list(listener.got) if h["kind"] == KIND_REQUEST)

    deadline = time.monotonic() + 10
    while counted() < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counted() >= 5, [(h["pid"], h["kind"], f.get("request_count")) for h, f in listener.got]
    hits = [(h, f) for h, f in list(listener.got) if h["kind"] == KIND_REQUEST and f["request_count"] > 0]
    h, f = hits[0]
    assert f["telemetry_interval"] == 0.5 and f["slow_requests_threshold"] == 0.4
    assert abs(h["stamp"] - time.time()) < 60  # seconds since the epoch
    # process_group: the daemon group's name; absent (empty) in embedded mode.
    assert f.get("process_group", "") == ("tgrp" if srv.param == "daemon" else "")
    assert f["hostname"] == socket.gethostname()
    assert f["python_version"].startswith("3.")
    assert f["process_parent_pid"] == srv.pid()
    assert f["memory_rss"] > 0 and f["memory_max_rss"] >= f["memory_rss"]
    assert f["request_threads_maximum"] == 3
    assert 0.3 < f["sample_period"] < 2.0
    done = f["request_threads_completed"]
    assert len(done) == 3 and sum(done) == f["request_count"]  # per-thread request counts
    assert len(f["request_threads_busy_time"]) == 3 and all(0 <= t < 5 for t in f["request_threads_busy_time"])
    assert f["output_writes_total"] >= 1
    # The same process numbers its datagrams 1, 2, 3...
    seqs = [hh["seq"] for hh, _ in listener.got if hh["pid"] == h["pid"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    if srv.param == "daemon":
        assert "queue_time" in f and "daemon_time" in f
        cmdline = open(f"/proc/{h['pid']}/cmdline", "rb").read()
        assert b"(wsgi:tgrp)" in cmdline


def test_slow_request_reported_active_then_completed(telemetry):
    srv, listener = telemetry
    mark = len(listener.got)
    t0 = time.time()
    r = srv.get("/slow")
    assert r.status_code == 200
    done = listener.wait_for(lambda h, f: h["kind"] == KIND_SLOW and f["slow_record_state"] == 1
                             and f["slow_start_stamp"] >= t0 - 1)
    assert done, listener.got[mark:]
    _, f = done[0]
    assert 0.7 <= f["slow_duration"] < 5, f  # seconds
    assert f["slow_thread_id"] >= 1 and f["slow_output_bytes"] > 0
    # Fast requests are not slow.
    srv.get("/fast")
    time.sleep(1.2)
    slow_after = [f for h, f in listener.got[mark:] if h["kind"] == KIND_SLOW and f["slow_record_state"] == 1]
    assert all(f["slow_duration"] >= 0.4 for f in slow_after)


def test_reporter_start_is_logged(telemetry):
    srv, _ = telemetry
    log = srv.wait_for_log(0, "RWSGI0102")
    assert "RWSGI0102" in log and "interval 0.500 s" in log and "CaptureUserAgent" in log, log


@pytest.mark.parametrize("line, needle", [
    ("WSGITelemetryService udp:127.0.0.1:9", "WSGITelemetryService: target must be 'unix:/path'"),
    ("WSGITelemetryService unix:/tmp/x.sock interval=0.1", "interval must be at least 0.5 seconds"),
    ("WSGITelemetryService unix:/tmp/x.sock every=2", "second argument must be 'interval=N'"),
    ("WSGISlowRequests -1", "WSGISlowRequests: threshold must be non-negative"),
    ("WSGISlowRequests soon", "WSGISlowRequests: threshold \"soon\" is not a number"),
    ("WSGITelemetryOptions +CaptureUserAgent None", "WSGITelemetryOptions: cannot mix +/- form"),
    ("WSGITelemetryOptions Bogus", "WSGITelemetryOptions: unknown flag 'Bogus'"),
    ("WSGITelemetryOptions +All", "WSGITelemetryOptions: 'All' may not have a +/- prefix"),
    ("<VirtualHost 127.0.0.1:1>\nWSGISlowRequests 1\n</VirtualHost>", "WSGISlowRequests"),
])
def test_configtest_refuses_bad_arguments(servers, ws, line, needle):
    srv = servers.create("badtelemetry", ws.apps / "telemetry" / "app.wsgi", "event", mode="embedded")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + line + "\n")
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0, proc.out
    assert needle in proc.out and "httpd.conf" in proc.out, proc.out
