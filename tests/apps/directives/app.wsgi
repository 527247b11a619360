# Endpoints for tests/test_directives_more.py (WSGIDispatchScript, the
# restrictions, the interpreter options, trusted proxy headers,
# WSGIPassApacheRequest, WSGIErrorOverride, WSGIEnableSendfile).
import json
import os
import signal
import sys
import urllib.parse


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _type(o):
    return type(o).__module__ + "." + type(o).__name__


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if path.endswith("/env"):
        key = q["key"]
        return _json(start_response, {"present": key in environ,
                                      "value": str(environ[key]) if key in environ else None})
    if path.endswith("/status"):
        code = int(q.get("code", "404"))
        body = b"the application's own body"
        start_response("%d Whatever" % code, [("Content-Type", "text/plain"),
                                              ("Content-Length", str(len(body)))])
        return [body]
    if path.endswith("/stdin"):
        try:
            sys.stdin.read
            return _json(start_response, {"restricted": False, "type": _type(sys.stdin)})
        except OSError as e:
            return _json(start_response, {"restricted": True, "error": str(e),
                                          "type": _type(sys.stdin)})
    if path.endswith("/signal"):
        def handler(signum, frame):
            pass
        try:
            returned = signal.signal(signal.SIGUSR2, handler)
        except ValueError as e:     # the real one, outside the main thread
            return _json(start_response, {"error": str(e)})
        installed = signal.getsignal(signal.SIGUSR2) is handler
        if installed:       # the real one (prefork: requests run in the main thread)
            signal.signal(signal.SIGUSR2, returned)
        return _json(start_response, {"returned_handler": returned is handler,
                                      "installed": installed})
    if path.endswith("/file"):
        f = open(os.path.join(os.path.dirname(__file__), "app.wsgi"), "rb")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](f, 4096)
    info = {
        "pid": os.getpid(),
        "process_group": environ["mod_wsgi.process_group"],
        "application_group": environ["mod_wsgi.application_group"],
        "callable_object": environ["mod_wsgi.callable_object"],
        "callable": "application",
        "stdin": _type(sys.stdin),
        "stdout": _type(sys.stdout),
        "stderr": _type(sys.stderr),
        "optimize": sys.flags.optimize,
        "dont_write_bytecode": sys.dont_write_bytecode,
        "hash_abc": hash("abc"),
        "warnoptions": list(sys.warnoptions),
        "switch_interval": sys.getswitchinterval(),
        "eggs": os.environ.get("PYTHON_EGG_CACHE"),
        "enable_sendfile": environ.get("mod_wsgi.enable_sendfile"),
        "request_rec": _type(environ["apache.request_rec"]) if "apache.request_rec" in environ else None,
    }
    return _json(start_response, info)


def other(environ, start_response):
    """The callable a dispatch script's callable_object() can choose."""
    return _json(start_response, {"callable": "other",
                                  "process_group": environ["mod_wsgi.process_group"],
                                  "application_group": environ["mod_wsgi.application_group"],
                                  "callable_object": environ["mod_wsgi.callable_object"]})


def dispatch_env_ok(environ, start_response):
    return _json(start_response, {"callable": "dispatch_env_ok"})
