# Endpoints for the daemon-mode tests (tests/test_daemon.py).
import ctypes
import json
import os
import time
import urllib.parse


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/sleep":
        if "mark" in q:
            # Tells the test which daemon process serves this request.
            with open(q["mark"], "w") as f:
                f.write(str(os.getpid()))
        time.sleep(float(q.get("t", "1")))
    elif path == "/segv":
        ctypes.string_at(0)
    elif path == "/exit":
        os._exit(int(q.get("code", "7")))
    body = json.dumps({
        "pid": os.getpid(),
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "group": environ.get("mod_wsgi.process_group"),
        "multithread": environ["wsgi.multithread"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
