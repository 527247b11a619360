"""WSGITelemetryService, WSGISlowRequests and WSGITelemetryOptions against
real Apache, embedded and in a daemon process group: the test binds a UNIX
datagram socket, and every process serving requests sends it, each
interval, a datagram in mod_wsgi 6's format (24-byte header 'WSGI', version
1, kind, pid, seq, stamp; then id/type/value fields) with its request
count, and one per slow request (completed over the threshold, or still
running over it). configtest refuses bad arguments naming the directive."""
import os
import socket
import struct
import threading
import time

import pytest

T_U64, T_F64, T_BYTES, T_I32_ARRAY = 1, 2, 4, 5
KIND_REQUEST, KIND_SLOW = 2, 4


def decode(data):
    """(header dict, {field id: value}) of one datagram."""
    magic, version, kind, flags, pid, seq, stamp = struct.unpack_from("<4sBBHIIQ", data)
    assert magic == b"WSGI" and version == 1 and flags == 0
    fields, pos = {}, 24
    while pos < len(data):
        fid, typ = struct.unpack_from("<HB", data, pos)
        pos += 3
        if typ == T_U64:
            (v,), pos = struct.unpack_from("<Q", data, pos), pos + 8
        elif typ == T_F64:
            (v,), pos = struct.unpack_from("<d", data, pos), pos + 8
        elif typ == T_BYTES:
            (n,) = struct.unpack_from("<H", data, pos)
            v, pos = data[pos + 2:pos + 2 + n].decode(), pos + 2 + n
        elif typ == T_I32_ARRAY:
            (n,) = struct.unpack_from("<H", data, pos)
            v = list(struct.unpack_from(f"<{n}i", data, pos + 2))
            pos += 2 + 4 * n
        else:
            raise AssertionError(f"unknown type {typ} of field {fid}")
        fields[fid] = v
    assert pos == len(data)
    return {"kind": kind, "pid": pid, "seq": seq, "stamp": stamp}, fields


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
        return sum(f[20] for h, f in list(listener.got) if h["kind"] == KIND_REQUEST)

    deadline = time.monotonic() + 10
    while counted() < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counted() >= 5, [(h["pid"], h["kind"], f.get(20)) for h, f in listener.got]
    hits = [(h, f) for h, f in list(listener.got) if h["kind"] == KIND_REQUEST and f[20] > 0]
    h, f = hits[0]
    assert f[11] == 0.5 and f[12] == 0.4  # telemetry_interval, slow threshold
    # process_group: the daemon group's name; absent (empty) in embedded mode.
    assert f.get(2, "") == ("tgrp" if srv.param == "daemon" else "")
    assert f[1] == socket.gethostname()
    assert f[40] > 0 and f[41] >= f[40]  # memory_rss, memory_max_rss
    assert f[50] == 3  # request_threads_maximum
    assert 0.3 < f[10] < 2.0  # sample_period
    assert len(f[90]) == 3 and sum(f[90]) == f[20]  # per-slot request counts
    assert f[83] >= 1  # output writes
    # The same process numbers its datagrams 1, 2, 3...
    seqs = [hh["seq"] for hh, _ in listener.got if hh["pid"] == h["pid"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    if srv.param == "daemon":
        assert 61 in f and 62 in f  # queue_time, daemon_time
        cmdline = open(f"/proc/{h['pid']}/cmdline", "rb").read()
        assert b"(wsgi:tgrp)" in cmdline


def test_slow_request_reported_active_then_completed(telemetry):
    srv, listener = telemetry
    mark = len(listener.got)
    t0 = time.time()
    r = srv.get("/slow")
    assert r.status_code == 200
    done = listener.wait_for(lambda h, f: h["kind"] == KIND_SLOW and f[100] == 1
                             and f[101] >= (t0 - 1) * 1e6)
    assert done, listener.got[mark:]
    _, f = done[0]
    assert 0.7e6 <= f[102] < 5e6, f  # duration_us
    assert f[103] >= 1 and f[112] > 0  # thread id, output bytes
    # Fast requests are not slow.
    srv.get("/fast")
    time.sleep(1.2)
    slow_after = [f for h, f in listener.got[mark:] if h["kind"] == KIND_SLOW and f[100] == 1]
    assert all(f[102] >= 0.4e6 for f in slow_after)


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
