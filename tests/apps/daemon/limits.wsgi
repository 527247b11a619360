# Endpoints for the daemon-mode size tests (tests/test_daemon_limits.py):
# a 1 GiB upload read from wsgi.input in blocks, a 1 GiB download yielded in
# blocks. Neither ever holds more than one block.
import hashlib
import json
import os
import random
import time
import urllib.parse

# The download's bytes: PATTERN repeated (PATTERN's length is no multiple
# of the block size, so blocks differ). The test builds the same pattern.
PATTERN_SIZE = 1024 * 1024 + 17


def pattern(seed):
    return random.Random(seed).randbytes(PATTERN_SIZE)


def vm(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def upload(environ, start_response, q):
    chunk = int(q.get("chunk", "65536"))
    # A slow application: it stops reading for `pause` seconds once `after`
    # bytes are in (the client goes on sending meanwhile).
    pause = float(q.get("pause", "0"))
    after = int(q.get("after", "0"))
    stream = environ["wsgi.input"]
    sha = hashlib.sha256()
    size = 0
    reads = 0
    while True:
        data = stream.read(chunk)
        if not data:
            break
        reads += 1
        size += len(data)
        sha.update(data)
        if pause and size >= after:
            time.sleep(pause)
            pause = 0
    body = json.dumps({
        "pid": os.getpid(),
        "size": size,
        "reads": reads,
        "sha256": sha.hexdigest(),
        "content_length": environ.get("CONTENT_LENGTH"),
        "transfer_encoding": environ.get("HTTP_TRANSFER_ENCODING"),
        "vm_hwm": vm("VmHWM"),
        "vm_rss": vm("VmRSS"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def download(environ, start_response, q):
    size = int(q["size"])
    block = int(q.get("block", "65536"))
    pat = pattern(int(q.get("seed", "1")))
    doubled = pat + pat[:block]      # any block-sized window of the cycle

    def blocks():
        sent = 0
        while sent < size:
            n = min(block, size - sent)
            start = sent % len(pat)
            yield doubled[start:start + n]
            sent += n

    headers = [("Content-Type", "application/octet-stream"), ("X-Pid", str(os.getpid()))]
    if q.get("length") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return blocks()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/upload":
        return upload(environ, start_response, q)
    if path == "/download":
        return download(environ, start_response, q)
    body = json.dumps({"pid": os.getpid(), "uid": os.getuid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
