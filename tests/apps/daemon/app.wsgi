# Endpoints for the daemon-mode tests (tests/test_daemon.py).
import ctypes
import json
import os
import time
import urllib.parse


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/ignore-body":
        # Answers without reading the request body.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ignored"]
    if path == "/read-chunks":
        # Reads the body q["n"] bytes at a time: its length and sha256.
        import hashlib
        h, total, n = hashlib.sha256(), 0, int(q.get("n", "7"))
        while True:
            block = environ["wsgi.input"].read(n)
            if not block:
                break
            h.update(block)
            total += len(block)
        out = f"{total} {h.hexdigest()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [out]
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
    elif path == "/cpu":
        # Burns CPU for t seconds of process CPU time.
        end = time.process_time() + float(q.get("t", "1"))
        while time.process_time() < end:
            pass
    elif path == "/gil-sleep":
        # libc's sleep through PyDLL: the GIL stays held.
        ctypes.PyDLL(None).sleep(int(q.get("t", "1")))
    elif path == "/alloc":
        try:
            block = bytearray(int(q.get("mb", "1")) << 20)
            del block
        except MemoryError:
            start_response("507 Insufficient Storage", [("Content-Type", "text/plain")])
            return [b"MemoryError"]
    elif path == "/interruptible":
        # Short sleeps: an exception raised from another thread is seen
        # between bytecodes, not inside one long blocking call.
        try:
            end = time.monotonic() + float(q.get("t", "30"))
            while time.monotonic() < end:
                time.sleep(0.05)
        except BaseException as e:
            with open(q["mark"], "w") as f:
                f.write(type(e).__module__ + "." + type(e).__name__)
            raise
    body = json.dumps({
        "pid": os.getpid(),
        "uid": os.getuid(),
        "cwd": os.getcwd(),
        "group": environ.get("mod_wsgi.process_group"),
        "multithread": environ["wsgi.multithread"],
        "env": {k: os.environ.get(k) for k in ("LANG", "LC_ALL", "PYTHON_EGG_CACHE")},
        "priority": os.getpriority(os.PRIO_PROCESS, 0),
        "switch_interval": __import__("sys").getswitchinterval(),
        "connects": environ.get("mod_wsgi.daemon_connects"),
        "x_headers": {k: v for k, v in environ.items() if k.startswith("HTTP_X_")},
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
