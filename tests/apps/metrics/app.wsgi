# Test app for mod_wsgi's metrics and events API (tests/test_metrics_api.py).
# Records every event it is sent and answers JSON about it.
import json
import os
import threading

import mod_wsgi

HERE = os.path.dirname(__file__)
EVENTS = []
LOCK = threading.Lock()

try:
    mod_wsgi.request_data()
    IMPORT_TIME_REQUEST_DATA = "no error"
except RuntimeError as e:
    IMPORT_TIME_REQUEST_DATA = "RuntimeError: %s" % e

RECORDING_BEFORE_START = mod_wsgi.request_metrics()


def plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return repr(value)


@mod_wsgi.subscribe_events
def record(name, **event):
    entry = {"name": name, "keys": sorted(event)}
    for key in ("request_id", "thread_id", "status", "request_start", "queue_start",
                "daemon_start", "application_start", "application_finish",
                "application_time", "input_reads", "input_length", "output_writes",
                "output_length", "response_status", "cpu_time", "gil_wait_count",
                "server_pid"):
        if key in event:
            entry[key] = plain(event[key])
    if name == "request_started":
        event["request_data"]["subscriber_thread"] = threading.get_ident()
        entry["path"] = event["request_environ"].get("PATH_INFO")
        if entry["path"] == "/wrapped":
            inner = event["application_object"]

            def wrapper(environ, start_response):
                environ["wrapped.by"] = "subscriber"
                return inner(environ, start_response)

            return {"application_object": wrapper, "marker": "merged"}
    if name == "request_exception":
        exc_type, exc_value, tb = event["exception_info"]
        entry["exception"] = "%s: %s" % (exc_type.__name__, exc_value)
        entry["has_traceback"] = tb is not None
    if name == "request_finished":
        entry["request_data"] = plain(dict(event["request_data"]))
    with LOCK:
        EVENTS.append(entry)


MERGED = []


@mod_wsgi.subscribe_events
def second(name, **event):
    # Runs after record(): sees what record() returned merged in.
    if name == "request_started" and "marker" in event:
        MERGED.append(event["marker"])


@mod_wsgi.subscribe_shutdown
def stopping(name, **event):
    with open(os.path.join(HERE, "stopping-%d.txt" % os.getpid()), "w") as f:
        f.write("%s %s" % (name, event.get("shutdown_reason")))


mod_wsgi.start_recording_metrics()


def answer(start_response, value, status="200 OK"):
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    if path == "/post":
        data = environ["wsgi.input"].read()
        return answer(start_response, {"length": len(data)})
    if path == "/stream":
        start_response("201 Created", [("Content-Type", "text/plain")])
        return (b"x" * 10 for _ in range(3))
    if path == "/raise":
        raise RuntimeError("raised on purpose")
    if path == "/wrapped":
        return answer(start_response, {"wrapped": environ.get("wrapped.by")})
    if path == "/events":
        with LOCK:
            events = EVENTS[int(environ.get("QUERY_STRING") or 0):]
        return answer(start_response, events)
    if path == "/request-data":
        data = mod_wsgi.request_data()
        data["application"] = "set"
        same = data is mod_wsgi.request_data()
        return answer(start_response, {"data": plain(dict(data)), "same": same,
                                       "import_time": IMPORT_TIME_REQUEST_DATA})
    if path == "/active":
        rid = environ["mod_wsgi.request_id"]
        active = mod_wsgi.active_requests
        return answer(start_response, {"mine": rid in active, "ids": sorted(active),
                                       "entry_keys": sorted(active.get(rid, {}))})
    if path == "/process":
        return answer(start_response, plain(mod_wsgi.process_metrics()))
    if path == "/interval":
        return answer(start_response, plain(mod_wsgi.request_metrics()))
    if path == "/server":
        m = mod_wsgi.server_metrics()
        if m is None:
            return answer(start_response, None)
        return answer(start_response, {
            "keys": sorted(m),
            "pids": [p["pid"] for p in m["processes"] if p["pid"]],
            "worker_keys": sorted(m["processes"][0]["workers"][0]),
            "statuses": "".join(w["status"] for p in m["processes"] for w in p["workers"]),
            "access": sum(w["access_count"] for p in m["processes"] for w in p["workers"]),
        })
    if path == "/ssi":
        # mod_include runs /inner as a sub-request on this thread while this
        # request is in flight (the first block is flushed through INCLUDES).
        mod_wsgi.request_data()["outer"] = "set before"
        start_response("200 OK", [("Content-Type", "text/html")])

        def body():
            yield b'<!--#include virtual="/inner" -->'
            mod_wsgi.request_data()["outer_after"] = "set after"
            yield b";end"
            raise RuntimeError("outer raised after the sub-request")
        return body()
    if path == "/inner":
        mod_wsgi.request_data()["inner"] = "inner only"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"inner"]
    if path == "/info":
        return answer(start_response, {"pid": os.getpid(),
                                       "recording_before_start": RECORDING_BEFORE_START,
                                       "callbacks": len(mod_wsgi.event_callbacks),
                                       "shutdown_callbacks": len(mod_wsgi.shutdown_callbacks),
                                       "merged": MERGED})
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"unknown"]
