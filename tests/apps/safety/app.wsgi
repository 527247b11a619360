# Endpoints for the safety tests (tests/test_safety.py): output filters that
# block or run sub-requests, exc_info misuse, huge Content-Length, threads
# that log, write() and read wsgi.input, wsgi.errors kept or closed.
import json
import sys
import threading
import time
import urllib.parse


def query(environ):
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))


def text(start_response, body, status="200 OK", ctype="text/plain"):
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(data)))])
    return [data]


def vm_rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# Results of background threads, by token (read back by /result).
RESULTS = {}
STASHED = {}


def ssi(environ, start_response):
    # mod_include (SetOutputFilter INCLUDES) runs /inc as a sub-request.
    body = ('<html><body>before;<!--#include virtual="/inc?token=%s" -->;after</body></html>'
            % query(environ).get("token", ""))
    start_response("200 OK", [("Content-Type", "text/html")])
    return [body.encode()]


def inc(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [("included-%s" % query(environ).get("token", "")).encode()]


def slow(environ, start_response):
    # Under SetOutputFilter RATE_LIMIT: a small response that takes seconds
    # to go out.
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"s" * int(query(environ).get("size", "12000"))]


def excinfo_none(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"started;"
        for bad in ("none", "tuple", "mismatch"):
            info = {
                "none": sys.exc_info(),      # (None, None, None): nothing handled
                "tuple": (1, 2, 3),
                "mismatch": (KeyError, ValueError("v"), None),
            }[bad]
            try:
                start_response("500 Late", [("Content-Type", "text/plain")], info)
            except TypeError as e:
                yield ("%s:TypeError:%s;" % (bad, "exc_info" in str(e))).encode()
            except BaseException as e:
                yield ("%s:%s;" % (bad, type(e).__name__)).encode()
    return gen()


def huge_cl(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", query(environ).get("v", "18446744073709551615"))])

    def gen():
        yield b"never sent"
    return gen()


def thread_log(environ, start_response):
    # A thread per request writing one 6 KB line and then a last line
    # without a newline to sys.stderr.
    token = query(environ).get("token", "")

    def work():
        sys.stderr.write("x" * 6000 + "\n")
        sys.stderr.write("partial-line-%s" % token)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    return text(start_response, "%d" % vm_rss())


def errors_close(environ, start_response):
    err = environ["wsgi.errors"]
    token = query(environ).get("token", "")
    err.write("errors-line-%s\n" % token)
    err.close()
    return text(start_response, "closed:%s" % err.closed)


def errors_stash(environ, start_response):
    q = query(environ)
    token = q.get("token", "")
    if q.get("step") == "keep":
        STASHED[token] = environ["wsgi.errors"]
        return text(start_response, "kept")
    try:
        STASHED.pop(token).write("stashed-write-%s\n" % token)
        outcome = "written"
    except RuntimeError as e:
        outcome = "RuntimeError:%s" % ("expired" in str(e))
    environ["wsgi.errors"].write("own-write-%s\n" % token)
    return text(start_response, outcome)


def thread_write(environ, start_response):
    # write() from an application thread while the request thread yields.
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    n = int(query(environ).get("n", "200"))

    def writer():
        for _ in range(n):
            write(b"T" * 1000 + b"\n")
    t = threading.Thread(target=writer)
    t.start()

    def gen():
        for _ in range(n):
            yield b"M" * 1000 + b"\n"
        t.join()
    return gen()


def thread_write_late(environ, start_response):
    # The thread keeps calling write() after the request has ended.
    token = query(environ).get("token", "")
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    started = threading.Event()

    def writer():
        started.set()
        outcome = "no-error"
        try:
            for _ in range(2000):
                write(b"late\n" * 13000)
        except RuntimeError as e:
            outcome = "RuntimeError:%s" % ("finished" in str(e))
        except OSError as e:
            outcome = "OSError:%s" % e
        RESULTS[token] = outcome
    threading.Thread(target=writer).start()
    started.wait()
    return [b"request-done\n"]


def thread_read_late(environ, start_response):
    # A thread blocked in wsgi.input.read() when the request ends.
    token = query(environ).get("token", "")
    inp = environ["wsgi.input"]
    started = threading.Event()

    def reader():
        started.set()
        try:
            data = inp.read()
            RESULTS[token] = "read:%d" % len(data)
        except OSError as e:
            RESULTS[token] = "OSError:%s" % ("finished" in str(e))
        except BaseException as e:
            RESULTS[token] = "%s:%s" % (type(e).__name__, e)
    threading.Thread(target=reader).start()
    started.wait()
    time.sleep(0.2)
    return text(start_response, "request-done")


def result(environ, start_response):
    token = query(environ).get("token", "")
    deadline = time.monotonic() + 10
    while token not in RESULTS and time.monotonic() < deadline:
        time.sleep(0.05)
    return text(start_response, RESULTS.get(token, "no-result"))


def hello(environ, start_response):
    return text(start_response, "hello")


ROUTES = {
    "ssi": ssi, "inc": inc, "slow": slow, "excinfo-none": excinfo_none,
    "huge-cl": huge_cl, "thread-log": thread_log, "errors-close": errors_close,
    "errors-stash": errors_stash, "thread-write": thread_write,
    "thread-write-late": thread_write_late, "thread-read-late": thread_read_late,
    "result": result,
}


def application(environ, start_response):
    first = environ.get("PATH_INFO", "").lstrip("/").split("/", 1)[0]
    return ROUTES.get(first, hello)(environ, start_response)
