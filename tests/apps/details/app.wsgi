"""Test app for tests/test_wsgi_details.py: start_response's argument
checks as mod_wsgi makes them, a response cut short by an error,
mod_wsgi.RequestTimeout raised by the application, SystemExit, and
wsgi.errors' binary stream."""

import sys
from urllib.parse import parse_qs

import mod_wsgi

KEPT = {}

STATUSES = {
    "letters": "abc Nope",
    "long-code": "4040 Not Found",
    "glued": "404Missing",
    "newline": "200 Fine\nSet-Cookie: s=1",
    "tab": "200 Fi\tne",
    "not-latin1": "200 Caf\u0113",
}

HEADERS = {
    "empty-name": ("", "v"),
    "spaced-name": ("My Header", "v"),
    "control-name": ("My\x01Header", "v"),
    "cr-value": ("X-Token", "abc\rdef"),
    "lf-value": ("X-Token", "abc\ndef"),
    "int-name": (7, "v"),
    "int-value": ("X-Seven", 7),
    "not-latin1-value": ("X-Price", "10 \u20ac"),
    "str-item": "X-Token: v",
    "four-tuple": ("a", "b", "c", "d"),
}

HEADER_LISTS = {
    "str": "X-Token: v",
    "tuple": (("X-Token", "v"),),
    "dict": {"X-Token": "v"},
}


def caught(start_response, exc):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("%s|%s" % (type(exc).__name__, exc)).encode("utf-8")]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    token = q.get("token", "")

    if path == "/status":
        try:
            start_response(STATUSES[q["v"]], [("Content-Type", "text/plain")])
        except (ValueError, TypeError, UnicodeEncodeError) as e:
            return caught(start_response, e)
        return [b"accepted"]

    if path == "/header":
        try:
            start_response("200 OK", [("Content-Type", "text/plain"), HEADERS[q["v"]]])
        except (ValueError, TypeError, UnicodeEncodeError) as e:
            return caught(start_response, e)
        return [b"accepted"]

    if path == "/header-list":
        try:
            start_response("200 OK", HEADER_LISTS[q["v"]])
        except TypeError as e:
            return caught(start_response, e)
        return [b"accepted"]

    if path == "/uncaught-status":
        start_response("20x Odd-%s" % token, [("Content-Type", "text/plain")])
        return [b"should not be sent"]

    if path == "/uncaught-header":
        start_response("200 OK", [("X Spaced", "v-%s" % token)])
        return [b"should not be sent"]

    if path == "/exc-info-list":
        try:
            start_response("200 OK", [("Content-Type", "text/plain")], [1, 2, 3])
        except RuntimeError as e:
            return caught(start_response, e)
        return [b"accepted"]

    if path == "/again-after-write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written;")
        try:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
        except RuntimeError as e:
            return [("%s|%s" % (type(e).__name__, e)).encode()]
        return [b"accepted"]

    if path == "/list-bad-midway":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"one;", b"two;", "three-%s" % token, b"four"]

    if path == "/list-bad-after-empty":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"", 7]

    if path == "/request-timeout":
        raise mod_wsgi.RequestTimeout("raised-by-app-%s" % token)

    if path == "/request-timeout-late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"before;"
            raise mod_wsgi.RequestTimeout("late-%s" % token)
        return gen()

    if path == "/request-timeout-class":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr((issubclass(mod_wsgi.RequestTimeout, SystemExit),
                      mod_wsgi.RequestTimeout.__module__)).encode()]

    if path == "/system-exit":
        raise SystemExit("stop-%s" % token)

    if path == "/errors-buffer":
        buf = environ["wsgi.errors"].buffer
        buf.write(bytearray(b"ba-%s\n" % token.encode()))
        buf.write(memoryview(b"mv-%s\n" % token.encode()))
        n = buf.write(memoryview(b"xxpart-%s\nyy" % token.encode())[2:-2])
        buf.writelines([b"wl1-%s\n" % token.encode(), bytearray(b"wl2-%s\n" % token.encode()),
                        memoryview(b"wl3-%s\n" % token.encode())])
        buf.flush()
        environ["wsgi.errors"].writelines(["tl1-%s\n" % token, "tl2-%s\n" % token])
        print("out-%s" % token)
        print("err-%s" % token, file=sys.stderr)
        try:
            buf.write(12)
            refused = "no"
        except TypeError:
            refused = "TypeError"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%d;%s" % (n, refused)).encode()]

    if path == "/errors-type":
        err = environ["wsgi.errors"]
        buf = err.buffer
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr((type(err).__module__ + "." + type(err).__name__,
                      type(buf).__module__ + "." + type(buf).__name__,
                      err.line_buffering, err.encoding)).encode()]

    if path == "/errors-keep":
        # Kept past the request, then dropped by a later one: writing to it
        # raises (it expired with its request); collecting it is silent.
        if "kept" in KEPT:
            old = KEPT.pop("kept")
            try:
                old.write("late-%s\n" % token)
                outcome = "written"
            except RuntimeError as e:
                outcome = "RuntimeError:%s" % ("expired" in str(e))
            del old
        else:
            KEPT["kept"] = environ["wsgi.errors"]
            outcome = "kept"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [outcome.encode()]

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"unknown"]
