# Endpoints for the daemon-mode file tests (tests/test_daemon_files.py):
# wsgi.file_wrapper on a real file (its descriptor goes to the Apache child,
# which sends it with sendfile) and on a BytesIO (sent as bytes).
#
# The file is data/<name> next to this script (the test writes it). Every
# response names the daemon process that served it (X-Pid), so the test can
# read that process's /proc/<pid>/io around the request.
import io
import json
import os
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    headers = [("Content-Type", "application/octet-stream"),
               ("X-Pid", str(os.getpid()))]
    if path == "/pid":
        body = json.dumps({"pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    name = os.path.join(HERE, "data", os.path.basename(q.get("name", "big.bin")))
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    if path == "/bytesio":
        # ?size=N: the file's first N bytes, in memory: no descriptor.
        with open(name, "rb") as f:
            data = f.read(int(q.get("size", "1048576")))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 65536)
    # /file?[seek=N | read=N][&length=N][&raw=1]
    # seek: the file object positioned at N (f.seek); read: N bytes read
    # through Python's buffered reader first, so tell() (N) differs from the
    # descriptor's own position (a whole buffer further).
    f = open(name, "rb", buffering=0 if q.get("raw") == "1" else -1)
    if "seek" in q:
        f.seek(int(q["seek"]))
    elif "read" in q:
        f.read(int(q["read"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)
