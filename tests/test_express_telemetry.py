"""rwsgi-express's telemetry and metrics options against a real Apache:
--telemetry-service, --telemetry-interval, --slow-requests and
--telemetry-options generate the module's WSGITelemetryService,
WSGISlowRequests and WSGITelemetryOptions as mod_wsgi-express does, so the
daemon process reports to a UNIX datagram socket bound here (its periodic
datagram carries the interval and threshold given; a slow request is
reported); --server-metrics alone loads mod_status with ExtendedStatus, so
mod_wsgi.server_metrics() shows each worker's last request;
--enable-telemetry runs the mod_wsgi-telemetry ingester as a managed service
that hears the daemon process (its web UI counts the datagrams). And the
refusals mod_wsgi-express makes: --enable-telemetry without the
mod_wsgi-telemetry package, --free-threading on a Python with a GIL,
--slow-requests without a target."""

import pytest
import requests

from conftest import (APACHE_GROUP, APACHE_USER, express_path, free_port, python_home, run,
                      wait_until)
from test_telemetry import KIND_REQUEST, KIND_SLOW, Listener

METRICS_APP = '''\
import json
import mod_wsgi


def application(environ, start_response):
    body = json.dumps(mod_wsgi.server_metrics()).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


def test_telemetry_options_reach_the_module(servers, ws):
    d = ws.new_dir("express-telemetry")
    d.chmod(0o777)
    sock = d / "t.sock"
    listener = Listener(sock)
    try:
        with servers.running("express-telemetry", ws.apps / "telemetry" / "app.wsgi",
                             mode="daemon", args=[
                                 "--telemetry-service", f"unix:{sock}",
                                 "--telemetry-interval", "0.5", "--slow-requests", "0.4",
                                 "--telemetry-options", "+CaptureUserAgent"]) as srv:
            conf = (srv.root / "httpd.conf").read_text().splitlines()
            for line in (f"WSGITelemetryService unix:{sock} interval=0.5",
                         "WSGISlowRequests 0.4", "WSGITelemetryOptions +CaptureUserAgent"):
                assert line in conf, line
            assert srv.get("/n").status_code == 200
            hits = listener.wait_for(lambda h, f: h["kind"] == KIND_REQUEST
                                     and f["request_count"] > 0)
            assert hits, listener.got[-3:]
            _, f = hits[0]
            assert f["telemetry_interval"] == 0.5 and f["slow_requests_threshold"] == 0.4
            assert f.get("process_group") in (f"127.0.0.1:{srv.port}", f"localhost:{srv.port}")
            assert srv.get("/slow").status_code == 200
            assert listener.wait_for(lambda h, f: h["kind"] == KIND_SLOW), listener.got[-3:]
    finally:
        listener.close()


def test_enable_telemetry_runs_the_ingester(servers, ws):
    if run([python_home() / "bin" / "python", "-c",
            "import mod_wsgi.telemetry.server"]).returncode != 0:
        pytest.skip("mod_wsgi-telemetry is not in the test venv (scripts/test-env.sh installs it)")
    ui = free_port()
    with servers.running("express-ingester", ws.apps / "telemetry" / "app.wsgi",
                         mode="daemon", args=["--enable-telemetry", "--telemetry-ui-port", ui,
                                              "--telemetry-interval", "0.5"]) as srv:
        sock = srv.root / "telemetry" / "telemetry.sock"
        conf = (srv.root / "httpd.conf").read_text().splitlines()
        assert f"WSGITelemetryService unix:{sock} interval=0.5" in conf
        assert any(line.startswith("WSGIDaemonProcess service:telemetry ") for line in conf)

        def state():
            try:
                return requests.get(f"http://127.0.0.1:{ui}/api/state", timeout=5).json()
            except (requests.RequestException, ValueError):
                return None

        assert wait_until(lambda: state() is not None, 20), srv.error_log_tail()
        for _ in range(3):
            assert srv.get("/n").status_code == 200
        # The ingester (as nobody, in its socket directory) hears the daemon.
        assert wait_until(lambda: state()["total_received"] > 0, 15), (state(),
                                                                        srv.error_log_tail())
        page = requests.get(f"http://127.0.0.1:{ui}/", timeout=5)
        assert page.status_code == 200 and "mod_wsgi telemetry" in page.text


def test_server_metrics_alone_has_extended_status(servers, ws):
    d = ws.new_dir("express-metrics")
    app = d / "app.wsgi"
    app.write_text(METRICS_APP)
    app.chmod(0o644)
    with servers.running("express-metrics", app, mode="embedded",
                         args=["--server-metrics"]) as srv:
        conf = (srv.root / "httpd.conf").read_text().splitlines()
        assert "ExtendedStatus On" in conf and "WSGIServerMetrics On" in conf
        assert any(line.startswith("LoadModule status_module ") for line in conf)
        for _ in range(3):
            r = srv.get("/metrics")
            assert r.status_code == 200, srv.error_log_tail()
        workers = [w for p in r.json()["processes"] for w in p["workers"]]
        # With ExtendedStatus Apache keeps each worker's counts and last request.
        served = [w for w in workers if w["access_count"] > 0]
        assert served, workers[:3]
        assert any(w["request"].startswith("GET /metrics") for w in served), served


@pytest.mark.parametrize("args,message", [
    (["--enable-telemetry"],
     "--enable-telemetry requires the mod_wsgi-telemetry package: install it with "
     "'pip install mod_wsgi-telemetry'"),
    (["--free-threading"],
     "--free-threading requires a Python build with free-threading support (PEP 703)"),
    (["--slow-requests", "2"], "--slow-requests requires --telemetry-service"),
    (["--telemetry-service", "udp:127.0.0.1:9999"],
     "--telemetry-service must be 'unix:/path' (remote 'udp:host:port' targets are no "
     "longer supported)"),
])
def test_refusals(ws, args, message):
    # Debian's Python 3.11 (a Python home without mod_wsgi-telemetry).
    home = "/usr" if args == ["--enable-telemetry"] else python_home()
    if home == "/usr" and run(["/usr/bin/python3.11", "-c",
                               "import mod_wsgi.telemetry.server"]).returncode == 0:
        pytest.skip("/usr/bin/python3.11 has mod_wsgi-telemetry")
    p = run([express_path(), "setup-server", ws.apps / "telemetry" / "app.wsgi",
             "--server-root", ws.servers / "telemetry-refused", "--python-home", home,
             "--user", APACHE_USER, "--group", APACHE_GROUP, *args])
    assert p.returncode == 1, p.out
    assert message in p.out, p.out
