"""wsgi.file_wrapper in daemon mode: a real file's descriptor goes to the
Apache child over the daemon socket (SCM_RIGHTS, with the File frame of
docs/daemon-protocol.md) and the child sends it with a file bucket, so the
file's bytes never cross the socket. Content-Length truncation and the
file's position (tell()) are honoured as in embedded mode; a BytesIO (no
descriptor) and an Apache child that cannot take one more descriptor
(EMFILE) get the bytes instead.

Measured, not assumed, with /proc/<pid>/io. The kernel counts read(2),
pread(2) and sendfile(2) in `rchar`, and write(2) in `wchar`, but not
send(2)/sendmsg(2), with which both ends write the socket (std's UnixStream
uses send with MSG_NOSIGNAL): so the daemon's `wchar` stays near 0 either
way, and the proof is that the serving daemon did not read the file
(`rchar` grows by a few KiB: the bytes it could send were never in it;
before descriptor passing it grew by the whole file, Python reading it)
while the client received all of it, and that, with EnableSendfile On, the
Apache children read the whole file themselves (sendfile counts in their
`rchar`; what they receive from the daemon socket with recvmsg does not)."""

import hashlib
import http.client
import os
import random
import subprocess
import sys
import threading
import time

import pytest
import requests

from conftest import APACHE_GROUP, APACHE_USER, MPMS, child_pids, wait_until
from test_daemon import daemon_pids

MiB = 1024 * 1024
SIZE = 64 * MiB
# Most a daemon may write while serving a file by descriptor: the response
# head and a few frames, never the file.
FEW_KIB = 64 * 1024


@pytest.fixture(scope="module")
def big_file(ws):
    """The 64 MiB file the app serves, readable by nobody, and its bytes."""
    data = random.Random(6464).randbytes(SIZE)
    d = ws.apps / "daemon" / "data"
    d.mkdir(exist_ok=True)
    d.chmod(0o755)
    path = d / "big.bin"
    path.write_bytes(data)
    path.chmod(0o644)
    return path, data


# Every MPM with sendfile(2); the event MPM also with Apache's default
# (EnableSendfile Off: the file bucket is memory-mapped and written).
SERVERS = [(mpm, "sendfile") for mpm in MPMS] + [("event", "mmap")]


@pytest.fixture(scope="module", params=SERVERS, ids=["-".join(p) for p in SERVERS])
def files_server(request, servers, ws, big_file):
    mpm, how = request.param
    args = ["--processes", "1", "--threads", "4", "--log-level", "info"]
    if how == "sendfile":
        args += ["--include-file", ws.apps / "daemon" / "sendfile.conf"]
    srv = servers.start("daemonfiles", ws.apps / "daemon" / "files.wsgi", mpm, args,
                        mode="daemon")
    srv.sendfile = how == "sendfile"
    yield srv
    srv.stop()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def io_of(pid):
    """/proc/<pid>/io as a dict of ints (rchar, wchar, read_bytes, ...)."""
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def the_daemon(srv):
    # Asked first: once it answers, the daemon has its title (right after
    # a start, the process may still be titled as the Apache parent).
    r = srv.get("/pid")
    assert r.status_code == 200, srv.error_log_tail()
    assert wait_until(lambda: len(daemon_pids(srv)) == 1, 5), daemon_pids(srv)
    pids = daemon_pids(srv)
    assert r.json()["pid"] == pids[0]
    return pids[0]


def fetch(srv, path):
    """GET streamed: (response, size, sha256, seconds)."""
    t0 = time.monotonic()
    h = hashlib.sha256()
    n = 0
    with requests.get(srv.url(path), stream=True, timeout=60) as r:
        for block in r.iter_content(MiB):
            h.update(block)
            n += len(block)
    return r, n, h.hexdigest(), time.monotonic() - t0


def apache_children(srv):
    daemons = set(daemon_pids(srv))
    return [p for p in child_pids(srv.pid()) if p not in daemons]


def children_rchar(srv):
    total = 0
    for pid in apache_children(srv):
        try:
            total += io_of(pid)["rchar"]
        except OSError:  # a child that just exited
            pass
    return total


class Measured:
    """fetch() of `path`, and how the serving daemon's wchar and rchar and
    the Apache children's rchar grew meanwhile, in bytes."""

    def __init__(self, srv, path):
        pid = the_daemon(srv)
        before, children = io_of(pid), children_rchar(srv)
        self.r, self.n, self.digest, self.secs = fetch(srv, path)
        after = io_of(pid)
        self.children_rchar = children_rchar(srv) - children
        assert self.r.headers.get("X-Pid") == str(pid)
        self.wchar = after["wchar"] - before["wchar"]
        self.rchar = after["rchar"] - before["rchar"]

    def __str__(self):
        return (f"{self.n} B in {self.secs:.3f} s; daemon wchar +{self.wchar} B, "
                f"rchar +{self.rchar} B; Apache children rchar +{self.children_rchar} B")

    def check_by_descriptor(self, srv):
        """The daemon did not read the file's bytes (so they did not cross
        the socket); with sendfile, the Apache children read them."""
        assert self.wchar < FEW_KIB, self
        assert self.rchar < FEW_KIB, self
        if srv.sendfile:
            assert self.children_rchar >= self.n, self


def holders(srv, path):
    """Pids of the server's processes (Apache children, daemons) with `path` open."""
    target = str(path)
    out = []
    for pid in child_pids(srv.pid()):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    out.append(pid)
                    break
            except OSError:
                continue
    return out


def test_64mib_file_is_passed_as_a_descriptor(files_server, big_file):
    _, data = big_file
    m = Measured(files_server, "/file")
    print(f"\n[{files_server.mpm}, sendfile {files_server.sendfile}] 64 MiB file: {m}")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.n == SIZE and m.digest == sha(data)
    m.check_by_descriptor(files_server)
    if not files_server.sendfile:
        # Apache's EnableSendfile Off (its default) holds for these file
        # buckets as for a static file: memory-mapped, so the children's
        # page faults, not read(2) or sendfile(2), bring the bytes in.
        assert m.children_rchar < m.n // 2, m


def test_content_length_smaller_than_the_file_truncates(files_server, big_file):
    _, data = big_file
    length = 10 * MiB + 12345
    m = Measured(files_server, f"/file?length={length}")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.r.headers["Content-Length"] == str(length)
    assert m.n == length and m.digest == sha(data[:length])
    m.check_by_descriptor(files_server)


@pytest.mark.parametrize("how", ["seek", "read"])
def test_file_positioned_by_the_application_is_sent_from_there(files_server, big_file, how):
    # seek: the descriptor is at N too; read: Python's buffer has read
    # further, tell() says N: tell() is what counts (as in embedded mode).
    _, data = big_file
    skip = 3 * MiB + 777
    m = Measured(files_server, f"/file?{how}={skip}")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.n == SIZE - skip and m.digest == sha(data[skip:])
    if how == "seek":
        m.check_by_descriptor(files_server)
    else:
        # The application itself read a buffer of the file first.
        assert m.wchar < FEW_KIB and m.rchar < 2 * FEW_KIB + skip, m


def test_offset_and_content_length_give_that_range(files_server, big_file):
    _, data = big_file
    skip, length = 5 * MiB + 1, 7 * MiB + 3
    m = Measured(files_server, f"/file?seek={skip}&length={length}&raw=1")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.n == length and m.digest == sha(data[skip:skip + length])
    m.check_by_descriptor(files_server)


def test_file_at_its_end_sends_an_empty_body(files_server, big_file):
    m = Measured(files_server, f"/file?seek={SIZE}")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.n == 0


def test_bytesio_in_file_wrapper_goes_as_bytes(files_server, big_file):
    _, data = big_file
    size = 3 * MiB + 5
    m = Measured(files_server, f"/bytesio?size={size}")
    assert m.r.status_code == 200, files_server.error_log_tail()
    assert m.n == size and m.digest == sha(data[:size])
    # No descriptor: the daemon read the bytes (the app, into the BytesIO),
    # and the Apache children did not read the file.
    assert m.rchar >= size, m
    assert m.children_rchar < size, m


def test_head_of_a_file(files_server, big_file):
    r = files_server.request("HEAD", "/file?length=1000")
    assert r.status_code == 200
    assert r.headers["Content-Length"] == "1000" and r.content == b""
    # The connection stays usable.
    m = Measured(files_server, "/file?length=5000")
    assert m.n == 5000 and m.digest == sha(big_file[1][:5000])


def test_parallel_files_each_get_their_own_range(files_server, big_file):
    _, data = big_file
    jobs = [(i * 4 * MiB + i, 2 * MiB + 3 * i) for i in range(8)]
    results = {}

    def one(skip, length):
        r, n, digest, _ = fetch(files_server, f"/file?seek={skip}&length={length}")
        results[(skip, length)] = (r.status_code, n, digest)

    threads = [threading.Thread(target=one, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for skip, length in jobs:
        assert results[(skip, length)] == (200, length, sha(data[skip:skip + length])), \
            files_server.error_log_tail()


def test_no_process_keeps_the_file_open(files_server, big_file):
    path, _ = big_file
    for i in range(10):
        r, n, _, _ = fetch(files_server, f"/file?length={MiB + i}")
        assert n == MiB + i
    # A client that goes away mid-file: the Apache child's copy of the
    # descriptor closes with the request.
    with requests.get(files_server.url("/file"), stream=True, timeout=60) as r:
        next(r.iter_content(MiB))
    assert wait_until(lambda: not holders(files_server, path), 10), holders(files_server, path)
    # Served as before.
    r, n, digest, _ = fetch(files_server, "/file?length=4096")
    assert (r.status_code, n) == (200, 4096)


def serving_child(srv, sock):
    """The Apache child holding the server end of client socket `sock`."""
    client_port = sock.getsockname()[1]
    inode = None
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{srv.port:04X}") and fields[2].endswith(f":{client_port:04X}"):
            inode = fields[9]
    assert inode, client_port
    daemons = set(daemon_pids(srv))
    for pid in child_pids(srv.pid()):
        if pid in daemons:
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
        except OSError:
            continue
    raise AssertionError(f"no Apache child holds socket inode {inode}")


def set_nofile(pid, soft, hard):
    """Sets RLIMIT_NOFILE of Apache child `pid`. prlimit(2) on another
    process needs CAP_SYS_RESOURCE, which a container's root may lack, or
    the same real uid and gid: a helper running as Apache's user does it."""
    code = ("import resource, sys; "
            "resource.prlimit(int(sys.argv[1]), resource.RLIMIT_NOFILE, "
            "(int(sys.argv[2]), int(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", code, str(pid), str(soft), str(hard)],
                   user=APACHE_USER, group=APACHE_GROUP, extra_groups=[], check=True,
                   cwd="/", timeout=30)


def nofile(pid):
    """(soft, hard) RLIMIT_NOFILE of `pid`, from /proc/<pid>/limits."""
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no open-files limit for {pid}")


def get_on(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r, body


def test_apache_child_out_of_descriptors_gets_the_bytes(files_server, big_file):
    """An Apache child at its descriptor limit cannot receive the file's
    descriptor (the kernel drops it: MSG_CTRUNC): it says so to the daemon,
    which sends the bytes instead, and nothing alarming is logged."""
    if files_server.mpm == "event":
        pytest.skip("the event MPM may serve a kept-alive connection's next request on "
                    "another thread, which has no pooled daemon connection (and cannot "
                    "open one at the limit)")
    _, data = big_file
    length = 8 * MiB + 9
    daemon = the_daemon(files_server)
    conn = http.client.HTTPConnection("127.0.0.1", files_server.port, timeout=60)
    try:
        # The daemon connection is pooled by the thread serving this client.
        r, _ = get_on(conn, "/pid")
        assert r.status == 200
        child = serving_child(files_server, conn.sock)
        limits = nofile(child)
        used = {int(fd) for fd in os.listdir(f"/proc/{child}/fd")}
        lowest_free = min(set(range(len(used) + 1)) - used)
        mark = files_server.log_mark()
        before = io_of(daemon)
        set_nofile(child, lowest_free, limits[1])
        try:
            r, body = get_on(conn, f"/file?length={length}")
        finally:
            set_nofile(child, *limits)
        grown = io_of(daemon)["rchar"] - before["rchar"]
        print(f"\n[{files_server.mpm}] Apache child {child} at its descriptor limit "
              f"({lowest_free}): {length} B sent as bytes, daemon rchar +{grown} B")
        assert r.status == 200, files_server.error_log_tail()
        assert len(body) == length and sha(body) == sha(data[:length])
        # The daemon read the region (pread) to send it as bytes.
        assert grown >= length, grown
        log = files_server.wait_for_log(mark, "RWSGI0060", "not taken")
        assert "dropped on receipt" in log, log
        assert ":error]" not in log and ":warn]" not in log and ":crit]" not in log, log
        # With descriptors to spare again, the same connection passes one.
        before = io_of(daemon)
        r, body = get_on(conn, f"/file?length={length}")
        assert len(body) == length and sha(body) == sha(data[:length])
        assert io_of(daemon)["rchar"] - before["rchar"] < FEW_KIB
    finally:
        conn.close()
