"""The application of tests/test_prometheus.py and tests/test_status_page.py:
answers with known sizes and statuses, sleeps, reads bodies, raises, runs a
full garbage collection, or kills its own (daemon) process."""

import gc
import os
import signal
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    qs = environ.get("QUERY_STRING", "")
    if path == "/hello":
        body = b"hello world\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        body = b"status %d\n" % code
        start_response("%d Whatever" % code, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data)))])
        return [data]
    if path == "/sleep":
        time.sleep(float(qs or "1"))
        body = b"slept\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/fail":
        raise RuntimeError("deliberate failure for the metrics tests")
    if path == "/gc":
        gc.collect()
        body = b"collected\n"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/kill":
        os.kill(os.getpid(), signal.SIGKILL)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "0")])
    return [b""]
