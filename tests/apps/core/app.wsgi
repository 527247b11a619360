# The core test application of the rwsgi integration suite.
#
# One WSGI script with many endpoints, chosen by the first segment of
# PATH_INFO (so it works at any mount point); anything unknown returns the
# environ as JSON. Endpoints that are valid WSGI applications are wrapped in
# wsgiref.validate.validator; the ones that deliberately break the rules (the
# error tests) are not, nor are the file_wrapper ones (the validator would
# hide the wrapper object from the server).

import hashlib
import io
import json
import os
import random
import sys
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

HERE = os.path.dirname(os.path.abspath(__file__))
MARKERS = os.path.join(HERE, "markers")
BLOB = os.path.join(HERE, "data", "blob.bin")

LOADED_AT = time.time()


def qualname(t):
    return "%s.%s" % (t.__module__, t.__qualname__)


def unwrap_input(environ):
    inp = environ["wsgi.input"]
    if type(inp).__module__ == "wsgiref.validate":
        inp = inp.input
    return inp


def unwrap_errors(environ):
    err = environ["wsgi.errors"]
    if type(err).__module__ == "wsgiref.validate":
        err = err.errors
    return err


def query(environ):
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                          keep_blank_values=True).items()}


def jsonable(v):
    if v is None or isinstance(v, (str, bool, int, float)):
        return v
    if isinstance(v, tuple):
        return {"type": "tuple", "value": [jsonable(x) for x in v]}
    return {"type": qualname(type(v)), "repr": repr(v)}


def json_response(start_response, obj, status="200 OK", extra_headers=()):
    body = json.dumps(obj, sort_keys=True).encode("ascii")
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))] + list(extra_headers))
    return [body]


def marker(token, what):
    """Writes markers/<token>.<what> (the test polls for it)."""
    if not token:
        return
    path = os.path.join(MARKERS, "%s.%s" % (token, what))
    with open(path, "w") as f:
        f.write("%d %f\n" % (os.getpid(), time.time()))


def vm_status():
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, rest = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


# ---------------------------------------------------------------- environ

def env_app(environ, start_response):
    raw_in = unwrap_input(environ)
    raw_err = unwrap_errors(environ)
    out = {}
    for k, v in environ.items():
        out[k] = jsonable(v)
    out["wsgi.input"] = jsonable(raw_in)
    out["wsgi.errors"] = jsonable(raw_err)
    extra = {
        "input_type": qualname(type(raw_in)),
        "errors_type": qualname(type(raw_err)),
        "errors_is_textio": isinstance(raw_err, io.TextIOBase),
        "errors_has_buffer": hasattr(raw_err, "buffer"),
        "non_str_cgi_keys": sorted(k for k, v in environ.items()
                                   if "." not in k and type(v) is not str),
        "os_environ_keys": sorted(os.environ),
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "loaded_at": LOADED_AT,
        "python": sys.version,
        "sys_prefix": sys.prefix,
    }
    fw = environ.get("wsgi.file_wrapper")
    if fw is not None:
        try:
            extra["file_wrapper_type"] = qualname(type(fw(io.BytesIO(b"x"))))
        except Exception as e:  # reported, the test decides
            extra["file_wrapper_type"] = "error: %r" % (e,)
    try:
        import mod_wsgi
        extra["mod_wsgi_module"] = {
            "version": jsonable(getattr(mod_wsgi, "version", None)),
            "process_group": jsonable(getattr(mod_wsgi, "process_group", None)),
            "application_group": jsonable(getattr(mod_wsgi, "application_group", None)),
        }
    except Exception as e:
        extra["mod_wsgi_module"] = "import failed: %r" % (e,)
    out["_extra"] = extra
    return json_response(start_response, out)


# ------------------------------------------------------------------ input

def input_app(environ, start_response):
    """?mode=read|readn|readline|readline-n|readlines|iter|mixed [&n=N]
    Returns the pieces each call gave (latin-1) and a checksum."""
    q = query(environ)
    mode = q.get("mode", "read")
    n = int(q.get("n", "0") or 0)
    raw = unwrap_input(environ)
    pieces = []
    if mode == "read":
        pieces.append(raw.read())
        pieces.append(raw.read())          # at EOF: b''
    elif mode == "readn":
        while True:
            b = raw.read(n)
            pieces.append(b)
            if not b:
                break
    elif mode == "readline":
        while True:
            b = raw.readline()
            pieces.append(b)
            if not b:
                break
    elif mode == "readline-n":
        while True:
            b = raw.readline(n)
            pieces.append(b)
            if not b:
                break
    elif mode == "readlines":
        pieces = raw.readlines()
    elif mode == "iter":
        pieces = [line for line in raw]
    elif mode == "read-neg":
        pieces = [raw.read(-1), raw.read(-1)]
    elif mode == "readlines-hint":
        pieces = raw.readlines(n) + [raw.read()]
    elif mode == "mixed":
        pieces = [raw.read(10), raw.readline(), raw.readline(5), raw.read(100),
                  raw.read(), raw.read(1), raw.readline()]
    else:
        raise ValueError("unknown mode %r" % mode)
    data = b"".join(pieces)
    return json_response(start_response, {
        "types": sorted({type(p).__name__ for p in pieces}),
        "pieces": [p.decode("latin-1") for p in pieces] if q.get("pieces") else None,
        "lengths": [len(p) for p in pieces],
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH"),
    })


def upload_app(environ, start_response):
    """Reads wsgi.input in fixed chunks until EOF, hashing as it goes."""
    q = query(environ)
    chunk = int(q.get("chunk", "65536"))
    before = vm_status()
    h = hashlib.sha256()
    size = 0
    inp = environ["wsgi.input"]
    while True:
        b = inp.read(chunk)
        if not b:
            break
        size += len(b)
        h.update(b)
    after = vm_status()
    return json_response(start_response, {
        "size": size,
        "sha256": h.hexdigest(),
        "pid": os.getpid(),
        "vm_before": before,
        "vm_after": after,
        "content_length": environ.get("CONTENT_LENGTH"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
    })


# -------------------------------------------------------------- responses

def stream_app(environ, start_response):
    """?size=N&chunk=M&seed=S: N pseudo-random bytes in M-byte items."""
    q = query(environ)
    size = int(q.get("size", str(8 * 1024 * 1024)))
    chunk = int(q.get("chunk", "4096"))
    seed = int(q.get("seed", "1"))
    data = random.Random(seed).randbytes(size)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Sha256", hashlib.sha256(data).hexdigest()),
                              ("X-Size", str(size))])

    def gen():
        for i in range(0, size, chunk):
            yield data[i:i + chunk]
    return gen()


def bigstream_app(environ, start_response):
    """?size=N: N bytes produced lazily in 64 KiB items (never all in memory)."""
    q = query(environ)
    size = int(q["size"])
    block = random.Random(17).randbytes(65536)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        sent = 0
        while sent < size:
            item = block[:min(len(block), size - sent)]
            sent += len(item)
            yield item
    return gen()


def write_app(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"part1-")
    write(b"")
    write(b"part2-")
    return [b"part3"]


def content_length_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"01234", b"56789"]


def empty_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Empty", "yes")])
    return []


def status_app(environ, start_response):
    """?s=STATUS&body=TEXT[&hv=VALUE[&hv2=VALUE2]]: the status, two Set-Cookie
    headers and, with hv, an X-Custom header (with hv2, a second one; all
    native latin-1 strings)."""
    q = query(environ)
    status = q.get("s", "200 OK")
    body = q.get("body", "status body").encode("utf-8")
    headers = [("Content-Type", "text/plain"), ("X-From-App", "yes"),
               ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")]
    if "hv" in q:
        headers.append(("X-Custom", q["hv"]))
    if "hv2" in q:
        headers.append(("X-Custom", q["hv2"]))
    start_response(status, headers)
    return [body]


def head_app(environ, start_response):
    body = b"this body must not be sent for HEAD\n" * 10
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Head-Test", "yes"),
                              ("X-Method", environ["REQUEST_METHOD"])])
    return [body]


HEAD_CL_BODY = b"0123456789abcdef" * 233 + b"end\n"


def head_cl_app(environ, start_response):
    """?kind=list|gen: a body with Content-Length that is left out for HEAD,
    as Flask/Werkzeug do (the GET's Content-Length, no body)."""
    kind = query(environ).get("kind", "list")
    method = environ["REQUEST_METHOD"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HEAD_CL_BODY))),
                              ("X-Method", method)])
    if kind == "gen":
        def gen():
            if method != "HEAD":
                yield HEAD_CL_BODY
        return gen()
    return [] if method == "HEAD" else [HEAD_CL_BODY]


def errors_app(environ, start_response):
    q = query(environ)
    token = q.get("token", "none")
    err = environ["wsgi.errors"]
    err.write("wsgi-errors-text-%s\n" % token)
    err.flush()
    raw = unwrap_errors(environ)
    raw.buffer.write(("wsgi-errors-bytes-%s\n" % token).encode("ascii"))
    raw.buffer.flush()
    print("wsgi-errors-print-%s" % token, file=raw)
    raw.flush()
    # The binary stream under it takes any bytes-like object.
    raw.buffer.write(bytearray(("wsgi-errors-bytearray-%s\n" % token).encode("ascii")))
    raw.buffer.write(memoryview(("wsgi-errors-memoryview-%s\n" % token).encode("ascii")))
    raw.buffer.writelines([("wsgi-errors-wl-%s\n" % token).encode("ascii"),
                           memoryview(("wsgi-errors-wlmv-%s\n" % token).encode("ascii"))])
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Errors-Type", qualname(type(raw))),
                              ("X-Errors-Buffer-Type", qualname(type(raw.buffer)))])
    return [b"logged"]


def sleep_app(environ, start_response):
    q = query(environ)
    t0 = time.time()
    time.sleep(float(q.get("t", "1")))
    return json_response(start_response, {"pid": os.getpid(),
                                          "thread": threading.get_ident(),
                                          "start": t0, "end": time.time()})


# --------------------------------------------------------------- close()

class BadCloseIterable:
    """A complete response whose close() raises."""

    def __init__(self, token):
        self.token = token

    def __iter__(self):
        yield b"complete body"

    def close(self):
        raise RuntimeError("close-raised-%s" % self.token)


class ClosingIterable:
    """Yields `items`; raises after them when `fail`; endless when `endless`.
    close() writes a marker file."""

    def __init__(self, token, items, fail=False, endless=False, delay=0.0):
        self.token = token
        self.items = items
        self.fail = fail
        self.endless = endless
        self.delay = delay
        marker(token, "created")

    def __iter__(self):
        for item in self.items:
            yield item
        if self.fail:
            raise RuntimeError("close-test-failure-%s" % self.token)
        if self.endless:
            deadline = time.time() + 90       # bounded: stops by itself
            block = b"x" * 65536
            marker(self.token, "streaming")
            while time.time() < deadline:
                yield block
                if self.delay:
                    time.sleep(self.delay)
            marker(self.token, "exhausted")

    def close(self):
        marker(self.token, "closed")


def close_app(environ, start_response):
    """?kind=ok|fail-late|fail-early|disconnect&token=T"""
    q = query(environ)
    kind = q.get("kind", "ok")
    token = q["token"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    if kind == "ok":
        return ClosingIterable(token, [b"hello ", b"world"])
    if kind == "fail-late":
        return ClosingIterable(token, [b"first chunk"], fail=True)
    if kind == "fail-early":
        return ClosingIterable(token, [], fail=True)
    if kind == "disconnect":
        return ClosingIterable(token, [b"start"], endless=True, delay=0.005)
    if kind == "close-raises":
        return BadCloseIterable(token)
    raise ValueError(kind)


# ------------------------------------------------------------------ files

class MarkerBytesIO(io.BytesIO):
    def __init__(self, data, token):
        super().__init__(data)
        self.token = token

    def close(self):
        marker(self.token, "closed")
        super().close()


class MarkerFile(io.FileIO):
    """A real file (it has a fileno) whose close() leaves a marker."""

    def __init__(self, path, token):
        super().__init__(path, "rb")
        self.token = token

    def close(self):
        if not self.closed:
            marker(self.token, "closed")
        super().close()


def filewrapper_app(environ, start_response):
    """?mode=full|offset|bytesio|length|closing-bytesio|closing-file
    [&skip=N] [&length=N] [&token=T]
    Not wrapped in the validator: the server must see its own wrapper."""
    q = query(environ)
    mode = q.get("mode", "full")
    headers = [("Content-Type", "application/octet-stream")]
    if mode in ("bytesio", "closing-bytesio"):
        with open(BLOB, "rb") as f:
            data = f.read()
        start_response("200 OK", headers)
        if mode == "closing-bytesio":
            return environ["wsgi.file_wrapper"](MarkerBytesIO(data, q["token"]), 32768)
        return environ["wsgi.file_wrapper"](io.BytesIO(data), 32768)
    if mode == "closing-file":
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](MarkerFile(BLOB, q["token"]), 65536)
    f = open(BLOB, "rb")
    if mode == "offset":
        f.read(int(q["skip"]))
    elif mode == "length":
        headers.append(("Content-Length", q["length"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 65536)


# ----------------------------------------------------------------- errors
# None of these go through the validator: they break the rules on purpose.

def error_app(environ, start_response):
    q = query(environ)
    kind = q.get("kind", "raise")
    token = q.get("token", "")

    if kind == "raise":
        raise RuntimeError("app-exception-%s" % token)

    if kind == "status":
        value = {
            "noreason": "200",
            "abc": "abc",
            "int": 200,
            "bytes": b"200 OK",
            "crlf": "200 OK\r\nX-Injected: yes",
            "code100": "100 Continue",
        }[q["v"]]
        start_response(value, [("Content-Type", "text/plain")])
        return [b"should not be sent"]

    if kind == "header":
        header = {
            "nonstr-value": ("X-Number", 5),
            "nonstr-name": (b"X-Bytes", "v"),
            "crlf": ("X-Test", "a\r\nX-Injected: yes"),
            "lf": ("X-Test", "a\nX-Injected: yes"),
            "nonlatin": ("X-Euro", "price \u20ac"),
            "control": ("X-Ctl", "a\x01b"),
            "badname": ("X Bad:Name", "v"),
            "list": ["X-List", "v"],
            "triple": ("X-Triple", "v", "w"),
        }[q["v"]]
        start_response("200 OK", [("Content-Type", "text/plain"), header])
        return [b"should not be sent"]

    if kind == "return-none":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return None

    if kind == "no-start-response":
        return [b"body without start_response"]

    if kind == "headers-not-list":
        start_response("200 OK", (("Content-Type", "text/plain"),))
        return [b"should not be sent"]

    if kind == "hop":
        start_response("200 OK", [("Content-Type", "text/plain"), (q["name"], q.get("value", "x"))])
        return [b"should not be sent"]

    if kind == "nonbytes":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str, not bytes"]

    if kind == "nonbytes-late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first chunk of bytes\n"
            yield "then a str"
        return gen()

    if kind == "after-start":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"first-chunk-" + token.encode() + b"\n"
            raise RuntimeError("late-exception-%s" % token)
        return gen()

    if kind == "after-start-cl":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1000")])

        def gen():
            yield b"0123456789"
            raise RuntimeError("late-exception-cl-%s" % token)
        return gen()

    if kind == "excinfo-before":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
        try:
            raise ValueError("handled-%s" % token)
        except ValueError:
            start_response("502 Second Wins", [("Content-Type", "text/plain"),
                                               ("X-Second", "yes")], sys.exc_info())
        return [b"second response body"]

    if kind == "second-start-response":
        # No exc_info, nothing sent yet: mod_wsgi lets the second call win.
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
        start_response("409 Conflict", [("Content-Type", "text/plain"), ("X-Second", "yes")])
        return [b"second call wins"]

    if kind == "second-start-response-after-sent":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"sent;"
            try:
                start_response("500 Late", [("Content-Type", "text/plain")])
            except RuntimeError as e:
                yield ("refused:%s" % ("called more than once without exc_info" in str(e))).encode()
        return gen()

    if kind == "excinfo-after-empty":
        # Only empty bytestrings went out: the headers are not sent yet
        # (PEP 3333), so a new status is still possible.
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b""
            try:
                raise ValueError("after-empty-%s" % token)
            except ValueError:
                start_response("503 Replaced", [("Content-Type", "text/plain")],
                               sys.exc_info())
            yield b"replaced body"
        return gen()

    if kind == "excinfo-after":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"part1;"
            try:
                raise ValueError("orig-%s" % token)
            except ValueError:
                try:
                    start_response("500 Too Late", [("Content-Type", "text/plain")],
                                   sys.exc_info())
                except ValueError as e:
                    yield ("reraised:%s;" % e).encode()
                    return
                except BaseException as e:
                    yield ("raised-other:%s:%s;" % (type(e).__name__, e)).encode()
                    return
                yield b"not-reraised;"
        return gen()

    raise ValueError("unknown error kind %r" % kind)


# ---------------------------------------------------------------- routing

ROUTES = {
    "env": validator(env_app),
    "input": validator(input_app),
    "upload": validator(upload_app),
    "stream": validator(stream_app),
    "bigstream": validator(bigstream_app),
    "write": validator(write_app),
    "content-length": validator(content_length_app),
    "empty": validator(empty_app),
    "status": validator(status_app),
    "head": validator(head_app),
    "head-cl": validator(head_cl_app),
    "errors": validator(errors_app),
    "sleep": validator(sleep_app),
    "close": validator(close_app),
    "filewrapper": filewrapper_app,
    "error": error_app,
}


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    first = path.lstrip("/").split("/", 1)[0]
    handler = ROUTES.get(first, ROUTES["env"])
    return handler(environ, start_response)
