"""Daemon mode at its limits: 1 GiB through a daemon process in either
direction with the memory of neither the daemon nor the Apache child that
relays it growing (nothing buffered whole), and the group's socket refusing
a user other than Apache's children: by the filesystem (a 0700 directory,
a 0600 socket) and, should those permissions be wrong, by the daemon's own
peer-credential check (RWSGI0045)."""

import functools
import hashlib
import http.client
import json
import os
import pwd
import random
import socket
import stat
import struct
import time

import pytest

from conftest import APACHE_USER, child_pids, proc_status, wait_until
from test_daemon import daemon_pids, uid_of

MiB = 1024 * 1024
GiB = 1024 * MiB
SIZE = GiB
# Growth of a process's peak resident size (VmHWM) during one transfer.
LIMIT = 32 * MiB
# Same as PATTERN_SIZE in apps/daemon/limits.wsgi.
PATTERN_SIZE = MiB + 17
# Seconds the application (upload) or the client (download) stops reading.
PAUSE = 2


@pytest.fixture(scope="module")
def limits_server(servers, ws):
    srv = servers.start("daemonlimits", ws.apps / "daemon" / "limits.wsgi", "event",
                        ["--processes", "2", "--threads", "2", "--limit-request-body", "0",
                         "--chunked-request", "--log-level", "info"], mode="daemon")
    yield srv
    srv.stop()


def apache_children(srv):
    daemons = set(daemon_pids(srv))
    return [p for p in child_pids(srv.pid()) if p not in daemons]


def reset_peaks(pids):
    """Each process's VmRSS now; its VmHWM reset to that (clear_refs 5), so
    the VmHWM read afterwards is the peak reached during what follows."""
    before = {}
    for pid in pids:
        before[pid] = proc_status(pid).get("VmRSS")
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    return before


def peak_growth(before):
    """{pid: (VmRSS before, VmHWM now, growth)} of the processes still alive."""
    out = {}
    for pid, rss in before.items():
        hwm = proc_status(pid).get("VmHWM")
        if rss is not None and hwm is not None:
            out[pid] = (rss, hwm, hwm - rss)
    return out


def describe(growth):
    return ", ".join(f"{pid}: {rss / MiB:.1f} -> peak {hwm / MiB:.1f} MiB (+{g / MiB:.1f})"
                     for pid, (rss, hwm, g) in sorted(growth.items()))


def serving_child(srv, client_port):
    """The Apache child holding the accepted end of the client's connection."""
    inode = None
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{srv.port:04X}") and fields[2].endswith(f":{client_port:04X}"):
            inode = fields[9]
    assert inode, f"no server-side socket for client port {client_port}"
    for pid in apache_children(srv):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no Apache child holds socket inode {inode}")


def warm_up(srv):
    """The server has served requests (script loaded, connections pooled)
    before the peaks are measured."""
    for _ in range(20):
        r = srv.get("/", headers={"Connection": "close"})
        assert r.status_code == 200, srv.error_log_tail()
    assert len(daemon_pids(srv)) == 2


def check_growth(srv, before, served_by, child, what):
    growth = peak_growth(before)
    print(f"\n{what}: daemon {served_by}, Apache child {child}; {describe(growth)}")
    assert served_by in growth, (served_by, growth)
    assert child in growth, (child, growth)
    for pid, (rss, hwm, g) in growth.items():
        assert g < LIMIT, (
            f"{what}: {'daemon' if pid in daemon_pids(srv) else 'Apache child'} {pid} "
            f"peak RSS grew by {g / MiB:.1f} MiB (limit {LIMIT / MiB:g} MiB): {describe(growth)}")


@functools.lru_cache(maxsize=None)
def expected_sha256(size, seed):
    """sha256 of what /download?size=&seed= sends: the pattern repeated."""
    pat = random.Random(seed).randbytes(PATTERN_SIZE)
    h = hashlib.sha256()
    full, rest = divmod(size, len(pat))
    for _ in range(full):
        h.update(pat)
    h.update(pat[:rest])
    return h.hexdigest()


# --------------------------------------------------------------------------
# 1 GiB upload
# --------------------------------------------------------------------------

class Upload:
    """A 1 GiB body generated block by block (never held), hashed as sent;
    once 16 MiB are out it notes the Apache child serving the connection."""

    def __init__(self, srv, conn, size, block=MiB + 7, seed=11):
        self.srv, self.conn, self.size, self.block = srv, conn, size, block
        self.pattern = random.Random(seed).randbytes(2 * block)
        self.sha = hashlib.sha256()
        self.sent = 0
        self.child = None

    def __iter__(self):
        i = 0
        while self.sent < self.size:
            n = min(self.block, self.size - self.sent)
            off = (i * 4099) % self.block
            chunk = self.pattern[off:off + n]
            self.sha.update(chunk)
            self.sent += n
            i += 1
            yield chunk
            if self.child is None and self.sent >= 16 * MiB:
                self.child = serving_child(self.srv, self.conn.sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_1gib_upload_through_a_daemon_memory_bounded(limits_server, framing):
    srv = limits_server
    warm_up(srv)
    before = reset_peaks(daemon_pids(srv) + apache_children(srv))

    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    try:
        conn.connect()
        body = Upload(srv, conn, SIZE)
        headers = {"Content-Type": "application/octet-stream", "Connection": "close"}
        if framing == "content-length":
            headers["Content-Length"] = str(SIZE)
        t0 = time.monotonic()
        # Without a Content-Length, http.client sends an iterable chunked.
        # The application stops reading for 2 s after 16 MiB: nothing reads
        # ahead of it meanwhile.
        conn.request("POST", f"/upload?chunk=65536&pause={PAUSE}&after={16 * MiB}",
                     body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        took = time.monotonic() - t0
    finally:
        conn.close()
    assert resp.status == 200, f"{resp.status} {text[:500]!r}\n{srv.error_log_tail()}"
    res = json.loads(text)
    print(f"\nupload ({framing}): {SIZE // MiB} MiB in {took:.1f} s "
          f"(including the application's {PAUSE} s pause), {res['reads']} reads")
    assert body.sent == SIZE
    assert res["size"] == SIZE
    assert res["sha256"] == body.sha.hexdigest()
    if framing == "content-length":
        assert res["content_length"] == str(SIZE)
    else:
        assert res["transfer_encoding"] == "chunked" and not res["content_length"], res
    assert res["pid"] in daemon_pids(srv)
    check_growth(srv, before, res["pid"], body.child, f"upload ({framing})")


# --------------------------------------------------------------------------
# 1 GiB download
# --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_1gib_download_through_a_daemon_memory_bounded(limits_server, framing):
    srv = limits_server
    seed = 5
    expected = expected_sha256(SIZE, seed)
    warm_up(srv)
    before = reset_peaks(daemon_pids(srv) + apache_children(srv))

    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
    resp = None
    try:
        t0 = time.monotonic()
        length = "1" if framing == "content-length" else "0"
        conn.request("GET", f"/download?size={SIZE}&block=65536&seed={seed}&length={length}",
                     headers={"Connection": "close"})
        # (http.client lets go of a Connection: close socket once the
        # response head is read.)
        client_port = conn.sock.getsockname()[1]
        resp = conn.getresponse()
        assert resp.status == 200, f"{resp.status}\n{srv.error_log_tail()}"
        if framing == "content-length":
            assert resp.getheader("Content-Length") == str(SIZE)
        else:
            assert resp.getheader("Transfer-Encoding") == "chunked", resp.getheaders()
        child = serving_child(srv, client_port)
        served_by = int(resp.getheader("X-Pid"))
        buf = bytearray(MiB)
        view = memoryview(buf)
        sha = hashlib.sha256()
        total = 0
        paused = False
        while True:
            n = resp.readinto(buf)
            if not n:
                break
            sha.update(view[:n])
            total += n
            if not paused and total >= 16 * MiB:
                # A client that stops reading for 2 s: the generator is held
                # back instead of its output piling up in the daemon or the
                # Apache child.
                time.sleep(PAUSE)
                paused = True
        took = time.monotonic() - t0
        # A chunked response that was cut off would not end with its last
        # chunk: http.client raises IncompleteRead instead of returning 0.
    finally:
        # Not left half-read: the daemon thread would wait on it.
        if resp is not None:
            resp.close()
        conn.close()
    print(f"\ndownload ({framing}): {total // MiB} MiB in {took:.1f} s (including the client's {PAUSE} s pause)")
    assert total == SIZE
    assert sha.hexdigest() == expected
    assert served_by in daemon_pids(srv)
    check_growth(srv, before, served_by, child, f"download ({framing})")


# --------------------------------------------------------------------------
# Who may connect to the group's socket
# --------------------------------------------------------------------------

def connect_as(path, uid, gid):
    """Connects to the UNIX socket `path` from a forked process running as
    uid:gid (no supplementary groups) and reads what the daemon sends first
    (a 9-byte Hello frame). Returns (that process's pid, result dict)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            result = {"uid": os.getuid(), "euid": os.geteuid()}
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(str(path))
            except OSError as e:
                result["connect_errno"] = e.errno
            else:
                data, end = b"", "open"
                try:
                    while len(data) < 9:
                        d = s.recv(9 - len(data))
                        if not d:
                            end = "eof"
                            break
                        data += d
                except ConnectionResetError:
                    end = "reset"
                except socket.timeout:
                    end = "timeout"
                result.update(received=data.hex(), end=end)
            s.close()
            os.write(w, json.dumps(result).encode())
        except BaseException as e:     # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps({"error": repr(e)}).encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while True:
        d = os.read(r, 65536)
        if not d:
            break
        chunks.append(d)
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(b"".join(chunks))
    assert "error" not in result, result
    assert result["uid"] == result["euid"] == uid, result
    return pid, result


def hello_pid(result):
    data = bytes.fromhex(result["received"])
    assert len(data) == 9, result
    kind, length, pid = struct.unpack(">BII", data)
    assert (kind, length) == (0x20, 4), result
    return pid


def test_socket_refuses_another_user(limits_server):
    srv = limits_server
    group = f"localhost:{srv.port}"
    d = srv.root / "rwsgi"
    socks = list(d.glob("*.sock"))
    assert len(socks) == 1, socks
    sock = socks[0]
    nobody = pwd.getpwnam(APACHE_USER)
    other = pwd.getpwnam("daemon")          # uid 1: neither root nor Apache's user
    assert other.pw_uid not in (0, nobody.pw_uid)
    daemons = daemon_pids(srv)
    assert len(daemons) == 2 and all(uid_of(p) == nobody.pw_uid for p in daemons)

    mode_dir, mode_sock = stat.S_IMODE(d.stat().st_mode), stat.S_IMODE(sock.stat().st_mode)
    assert (mode_dir, mode_sock) == (0o700, 0o600)
    mark = srv.log_mark()

    # 1. As configured, the filesystem refuses the other user.
    pid, res = connect_as(sock, other.pw_uid, other.pw_gid)
    assert res.get("connect_errno") == 13, res      # EACCES
    # Apache's user and root are let in and greeted with a Hello naming a
    # daemon of the group.
    _, res = connect_as(sock, nobody.pw_uid, nobody.pw_gid)
    assert "connect_errno" not in res and hello_pid(res) in daemons, res
    _, res = connect_as(sock, 0, 0)
    assert "connect_errno" not in res and hello_pid(res) in daemons, res

    # 2. With the permissions made too wide (a misconfigured prefix, say),
    # the daemon's own check on the peer's credentials refuses the other user:
    # the connection is accepted by the kernel, then closed without a Hello,
    # and the daemon logs who it was.
    try:
        os.chmod(d, 0o711)
        os.chmod(sock, 0o666)
        pid, res = connect_as(sock, other.pw_uid, other.pw_gid)
        # And Apache's user still gets in through the same permissions.
        _, ok = connect_as(sock, nobody.pw_uid, nobody.pw_gid)
    finally:
        os.chmod(d, mode_dir)
        os.chmod(sock, mode_sock)
    assert (stat.S_IMODE(d.stat().st_mode), stat.S_IMODE(sock.stat().st_mode)) == (0o700, 0o600)
    assert "connect_errno" not in res, res
    assert res["received"] == "" and res["end"] in ("eof", "reset"), res
    assert "connect_errno" not in ok and hello_pid(ok) in daemons, ok

    log = srv.wait_for_log(mark, f"refused a connection from uid {other.pw_uid} (pid {pid})")
    lines = [line for line in log.splitlines() if "RWSGI0045" in line]
    assert len(lines) == 1, log        # only the refused one, not the EACCES one
    line = lines[0]
    assert f"refused a connection from uid {other.pw_uid} (pid {pid})" in line, line
    assert f'of group "{group}"' in line, line
    assert any(f"RWSGI0045: daemon process {p} of group" in line for p in daemons), (line, daemons)
    assert f"(uid {nobody.pw_uid}) may connect" in line, line

    # The daemons go on serving.
    assert set(daemon_pids(srv)) == set(daemons)
    assert wait_until(lambda: srv.get("/").status_code == 200, 5)
