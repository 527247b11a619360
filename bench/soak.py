#!/usr/bin/env python3
"""Soak test of rwsgi-express in daemon mode (not run in CI).

    python3 bench/soak.py                       # 1,000,000 requests, checkpoints every 100,000
    python3 bench/soak.py --requests 200000 --checkpoint 20000
    python3 bench/soak.py --save                # also bench/results/soak-<timestamp>.{json,txt}

Needs root (Apache binds as root and runs its children and daemons as
nobody) and the benchmark virtualenv (`bash bench/run.sh --help` creates
it). Starts `rwsgi-express setup-server bench/apps/app.py --processes 2
--threads 15 --server-mpm event` (daemon mode, rwsgi-express's default; the
benchmark's flags) in a private network namespace, then sends the requests
over --connections keep-alive connections (default 16) from --clients
load processes (a non-blocking HTTP/1.1 client each), in a fixed, shuffled
mix of:

  hello   GET /hello         200 "Hello world!"
  echo    POST /echo, 64 KiB 200 "65536"
  raise   GET /raise         the application raises: a deliberate 500

Every response is checked (status and exact body); anything else — another
status, a wrong body, a connection closed or reset before its response, a
timeout — is a failure (the goal is 0). The requests go in chunks of
--checkpoint; after each the load stops and the RSS of every process of the
server (Apache's parent, its children, the daemons) is read from /proc.
The goal: every process's RSS after the last request within --tolerance-mib
(5 MiB) of its RSS after the first chunk, and no process replaced.

`--server mod_wsgi-express` runs the same test on mod_wsgi-express (daemon
mode, the same flags) for comparison.

Exit status 1 when a failure happened or the RSS goal is not met.
"""

import argparse
import datetime
import json
import multiprocessing
import os
import random
import re
import selectors
import shutil
import socket
import sys
import time
from pathlib import Path

from benchlib import (HELLO, POST_SIZE, PROCESSES, RESULTS, THREADS, VENV, ExpressApache, binaries,
                      binary_stamp, enter_netns, log, netns_loopback, pid_alive, prepare_work, processes_of,
                      wait_http, warn)

KINDS = ("hello", "echo", "raise")
EXPECTED = {"hello": (200, HELLO), "echo": (200, str(POST_SIZE).encode()), "raise": (500, None)}
MAX_EXAMPLES = 20


def requests_for(port):
    host = f"Host: 127.0.0.1:{port}\r\n"
    return {
        "hello": f"GET /hello HTTP/1.1\r\n{host}\r\n".encode(),
        "echo": (f"POST /echo HTTP/1.1\r\n{host}Content-Type: application/octet-stream\r\n"
                 f"Content-Length: {POST_SIZE}\r\n\r\n").encode() + b"x" * POST_SIZE,
        "raise": f"GET /raise HTTP/1.1\r\n{host}\r\n".encode(),
    }


def parse_response(buf):
    """(status, body, close) of the complete response at the start of buf;
    None while incomplete; raises ValueError when it cannot be one."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError(f"no end of the response head in {len(buf)} bytes")
        return None
    head = bytes(buf[:end]).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"status line {head[0][:80]!r}")
    status = int(parts[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    close = parts[0] == "HTTP/1.0" or "close" in headers.get("connection", "").lower()
    start = end + 4
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, pos = bytearray(), start
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
            if size == 0:  # then the (empty) trailer and the final CRLF
                tail = buf.find(b"\r\n\r\n", eol)
                if tail < 0:
                    return None
                rest = len(buf) - (tail + 4)
                break
            if len(buf) < eol + 2 + size + 2:
                return None
            body += buf[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
        body = bytes(body)
    elif "content-length" in headers:
        n = int(headers["content-length"])
        if len(buf) < start + n:
            return None
        body = bytes(buf[start:start + n])
        rest = len(buf) - (start + n)
    elif status in (204, 304) or 100 <= status < 200:
        body, rest = b"", len(buf) - start
    else:
        raise ValueError(f"status {status} response without a length")
    if rest:
        raise ValueError(f"{rest} bytes after the response")
    return status, body, close


class Conn:
    __slots__ = ("sock", "kind", "out", "sent", "buf", "t0", "events", "served")

    def __init__(self, sock):
        self.sock = sock
        self.kind = None  # the request in flight, if any
        self.out = None
        self.sent = 0
        self.buf = bytearray()
        self.t0 = 0.0
        self.events = 0
        self.served = 0  # responses read on this connection


def load(port, nconns, quota, pattern, offset, timeout, out_q):
    """One load process: quota requests over nconns connections; puts its
    counts on out_q."""
    reqs = requests_for(port)
    sel = selectors.DefaultSelector()
    st = {"requests": 0, "ok": dict.fromkeys(KINDS, 0), "deliberate_500": 0, "failures": 0,
          "failure_kinds": {}, "examples": [], "reconnects": 0, "lat_sum": 0.0, "lat_max": 0.0,
          "slow_1s": 0}
    started = 0
    conns = set()

    def record_failure(kind, why):
        st["failures"] += 1
        key = f"{kind}: {re.sub(r'[(].*', '', why).split(':')[0].strip()}"
        st["failure_kinds"][key] = st["failure_kinds"].get(key, 0) + 1
        if len(st["examples"]) < MAX_EXAMPLES:
            st["examples"].append(f"{kind}: {why}")

    def close(c):
        if c.events:
            sel.unregister(c.sock)
            c.events = 0
        c.sock.close()
        conns.discard(c)

    def open_conn():
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(s)
        conns.add(c)
        return c

    def want(c, events):
        if events != c.events:
            if c.events:
                sel.modify(c.sock, events, c)
            else:
                sel.register(c.sock, events, c)
            c.events = events

    def next_request(c):
        nonlocal started
        while True:
            if started >= quota:
                if c is not None:
                    close(c)
                return
            if c is None:
                try:
                    c = open_conn()
                except OSError as e:
                    started += 1
                    st["requests"] += 1
                    record_failure(pattern[(offset + started) % len(pattern)], f"connect: {e}")
                    time.sleep(0.05)
                    continue
            c.kind = pattern[(offset + started) % len(pattern)]
            started += 1
            st["requests"] += 1
            c.out = memoryview(reqs[c.kind])
            c.sent = 0
            c.buf.clear()
            c.t0 = time.monotonic()
            send(c)
            return

    def broken(c, why):
        record_failure(c.kind, why)
        close(c)
        st["reconnects"] += 1
        next_request(None)

    def send(c):
        try:
            c.sent += c.sock.send(c.out[c.sent:])
        except BlockingIOError:
            pass
        except OSError as e:
            broken(c, f"send: {e}")
            return
        want(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.sent < len(c.out) else 0))

    def receive(c):
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError as e:
            broken(c, f"recv: {e}")
            return
        if not data:
            if not c.buf and c.served:
                # Apache's event MPM closes kept-alive connections of a child
                # whose workers are all busy: a request sent just then gets
                # no answer (clients retry idempotent requests for this).
                broken(c, f"kept-alive connection closed before any response byte (after {c.served} "
                          f"responses on it; {c.sent} of {len(c.out)} request bytes sent)")
            else:
                broken(c, f"connection closed by the server before the response ended "
                          f"({len(c.buf)} bytes of it, {c.sent} of {len(c.out)} request bytes sent, "
                          f"{c.served} earlier responses on it)")
            return
        c.buf += data
        try:
            r = parse_response(c.buf)
        except ValueError as e:
            broken(c, f"bad response: {e}")
            return
        if r is None:
            return
        status, body, must_close = r
        lat = time.monotonic() - c.t0
        st["lat_sum"] += lat
        st["lat_max"] = max(st["lat_max"], lat)
        st["slow_1s"] += lat >= 1.0
        want_status, want_body = EXPECTED[c.kind]
        if status == want_status and (want_body is None or body == want_body):
            if c.kind == "raise":
                st["deliberate_500"] += 1
            else:
                st["ok"][c.kind] += 1
        else:
            record_failure(c.kind, f"status {status}, body {body[:80]!r}")
        c.kind = None
        c.served += 1
        if must_close:
            close(c)
            st["reconnects"] += 1
            next_request(None)
        else:
            next_request(c)

    t_start = time.monotonic()
    for _ in range(nconns):
        next_request(None)
    last_check = time.monotonic()
    while conns:
        for key, events in sel.select(timeout=1.0):
            c = key.data
            if c not in conns:
                continue
            if events & selectors.EVENT_WRITE and c.sent < len(c.out):
                send(c)
                if c not in conns:
                    continue
            if events & selectors.EVENT_READ:
                receive(c)
        now = time.monotonic()
        if now - last_check >= 1.0:
            last_check = now
            for c in [c for c in conns if c.kind is not None and now - c.t0 > timeout]:
                broken(c, f"timeout: no response after {timeout} s")
    st["seconds"] = time.monotonic() - t_start
    out_q.put(st)


def run_chunk(port, n, conns, clients, pattern, first_index, timeout):
    """n requests from `clients` load processes; returns the merged counts."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = []
    clients = max(1, min(clients, conns))
    for i in range(clients):
        quota = n // clients + (1 if i < n % clients else 0)
        nconns = conns // clients + (1 if i < conns % clients else 0)
        offset = first_index + i * 7919  # a different place in the mix for each process
        p = ctx.Process(target=load, args=(port, nconns, quota, pattern, offset, timeout, q))
        p.start()
        procs.append(p)
    t0 = time.monotonic()
    results = [q.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - t0
    m = {"requests": 0, "ok": dict.fromkeys(KINDS, 0), "deliberate_500": 0, "failures": 0,
         "failure_kinds": {}, "examples": [], "reconnects": 0, "lat_sum": 0.0, "lat_max": 0.0,
         "slow_1s": 0, "seconds": elapsed}
    for r in results:
        for k in ("requests", "deliberate_500", "failures", "reconnects", "lat_sum", "slow_1s"):
            m[k] += r[k]
        m["lat_max"] = max(m["lat_max"], r["lat_max"])
        for k in KINDS:
            m["ok"][k] += r["ok"][k]
        for k, v in r["failure_kinds"].items():
            m["failure_kinds"][k] = m["failure_kinds"].get(k, 0) + v
        m["examples"] += r["examples"][:MAX_EXAMPLES - len(m["examples"])]
    return m


def parse_mix(text):
    weights = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k not in KINDS or not v.isdigit():
            raise argparse.ArgumentTypeError(f"--mix wants kind=weight,... with kinds {KINDS}, got {part!r}")
        weights[k] = int(v)
    pattern = [k for k in KINDS for _ in range(weights.get(k, 0))]
    if not pattern:
        raise argparse.ArgumentTypeError("--mix has no weight")
    random.Random(7).shuffle(pattern)
    return weights, pattern


def check_once(port):
    """One request of each kind, checked; returns a list of errors."""
    import http.client
    errs = []
    for kind in KINDS:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            if kind == "echo":
                conn.request("POST", "/echo", body=b"x" * POST_SIZE,
                             headers={"Content-Type": "application/octet-stream"})
            else:
                conn.request("GET", "/" + ("hello" if kind == "hello" else "raise"))
            r = conn.getresponse()
            body = r.read()
            want_status, want_body = EXPECTED[kind]
            if r.status != want_status or (want_body is not None and body != want_body):
                errs.append(f"{kind}: status {r.status}, body {body[:80]!r}")
        except (OSError, http.client.HTTPException) as e:
            errs.append(f"{kind}: {type(e).__name__}: {e}")
        finally:
            conn.close()
    return errs


def error_log_summary(path, offset):
    """Counts the error_log lines written from offset on: those of the
    deliberate exceptions (their message and traceback) and the others."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return {"lines": 0, "other": [], "other_count": 0}
    markers = ("RWSGI0020: RuntimeError exception raised", "Traceback (most recent call last)",
               "Exception occurred processing WSGI script", "] RuntimeError",
               '  File "', "    raise RuntimeError", "RuntimeError: deliberate error", "^^^^")
    other = [l for l in lines if not any(m in l for m in markers)
             and any(f":{lvl}]" in l for lvl in ("warn", "error", "crit", "alert", "emerg"))]
    return {"lines": len(lines), "other_count": len(other), "other": other[:10]}


def mib(kb):
    return kb / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests in all (default 1,000,000)")
    ap.add_argument("--checkpoint", type=int, default=100_000,
                    help="requests per chunk; RSS is read after each (default 100,000)")
    ap.add_argument("--connections", type=int, default=16, help="keep-alive connections (default 16)")
    ap.add_argument("--clients", type=int, default=2, help="load processes sharing them (default 2)")
    ap.add_argument("--mix", default="hello=8,echo=4,raise=1", type=parse_mix,
                    help="request mix, kind=weight (default hello=8,echo=4,raise=1)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds a response may take (default 60)")
    ap.add_argument("--tolerance-mib", type=float, default=5.0,
                    help="allowed RSS change per process, first checkpoint to the end (default 5)")
    ap.add_argument("--server", choices=("rwsgi-express", "mod_wsgi-express"), default="rwsgi-express",
                    help="what to soak: rwsgi-express (default) or, to compare, mod_wsgi-express, both in "
                    "daemon mode with the same flags")
    ap.add_argument("--port", type=int, default=18500, help="port (default 18500)")
    ap.add_argument("--no-netns", action="store_true", help="stay in the host network namespace")
    ap.add_argument("--save", action="store_true", help="write bench/results/soak-<timestamp>.{json,txt}")
    ap.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")
    args = ap.parse_args()
    weights, pattern = args.mix
    if os.geteuid() != 0:
        sys.exit("soak.py: must run as root (Apache starts as root and drops to nobody)")
    if not (VENV / "bin" / "python").exists():
        sys.exit(f"soak.py: {VENV} is missing: `bash bench/run.sh --help` creates it")

    enter_netns(args.no_netns)
    in_netns = netns_loopback()
    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    work = Path(f"/tmp/rwsgi-soak-{stamp}-{os.getpid()}")
    work.mkdir(mode=0o755)
    os.chmod(work, 0o755)
    apps, _ = prepare_work(work)
    express, rw_module, mw_express, _ = binaries(work)
    flags = ["--processes", str(PROCESSES), "--threads", str(THREADS), "--server-mpm", "event"]
    if args.server == "rwsgi-express":
        launcher, flags = express, flags + ["--python-home", str(VENV)]
    else:
        launcher = mw_express
    srv = ExpressApache(f"{args.server}-daemon", f"{args.server} (daemon mode)", args.port,
                        work / f"{args.server}-daemon", str(launcher), apps / "app.py", flags)
    mix_text = " : ".join(f"{k} {weights.get(k, 0)}" for k in KINDS)
    log(f"soak: {args.requests:,} requests through {srv.cmdline.replace(str(work), '$WORK')}")
    log(f"      {args.connections} connections from {args.clients} load processes, mix {mix_text}, "
        f"checkpoints every {args.checkpoint:,}; network namespace "
        f"{'private' if in_netns else 'host'}; work directory {work}")

    total = {"requests": 0, "ok": dict.fromkeys(KINDS, 0), "deliberate_500": 0, "failures": 0,
             "failure_kinds": {}, "examples": [], "reconnects": 0}
    chunks, snapshots = [], []
    problems = []
    try:
        srv.start()
        wait_http(args.port, "/hello", 120)
        errs = check_once(args.port)
        if errs:
            raise RuntimeError("the routes answer wrongly: " + "; ".join(errs))
        log_offset = (srv.root / "error_log").stat().st_size
        root = srv.root_pid()
        idle = processes_of(root)
        log("processes: " + ", ".join(f"{p['pid']} {p['role']} {mib(p['rss_kb']):.1f} MiB" for p in idle))
        if not any(p["role"] == "daemon" for p in idle):
            raise RuntimeError(f"no daemon process: {[(p['pid'], p['title']) for p in idle]}")
        hdr = (f"{'chunk':>5} {'requests':>10} {'req/s':>7} {'failures':>8} {'500s':>6} {'reconn':>6} "
               f"{'mean ms':>7} {'max ms':>7} {'RSS MiB: ' + ' '.join(p['role'][0] + str(p['pid']) for p in idle)}")
        log(hdr)
        done = 0
        while done < args.requests:
            n = min(args.checkpoint, args.requests - done)
            c = run_chunk(args.port, n, args.connections, args.clients, pattern, done, args.timeout)
            done += n
            time.sleep(0.5)  # let the last responses' cleanup finish before reading /proc
            snap = {"after": done, "processes": processes_of(root)}
            snapshots.append(snap)
            c["after"] = done
            chunks.append(c)
            for k in ("requests", "deliberate_500", "failures", "reconnects"):
                total[k] += c[k]
            for k in KINDS:
                total["ok"][k] += c["ok"][k]
            for k, v in c["failure_kinds"].items():
                total["failure_kinds"][k] = total["failure_kinds"].get(k, 0) + v
            total["examples"] += c["examples"][:MAX_EXAMPLES - len(total["examples"])]
            rss = {p["pid"]: p["rss_kb"] for p in snap["processes"]}
            log(f"{len(chunks):>5} {done:>10,} {c['requests'] / c['seconds']:>7,.0f} {c['failures']:>8} "
                f"{c['deliberate_500']:>6} {c['reconnects']:>6} {1000 * c['lat_sum'] / max(1, c['requests']):>7.2f} "
                f"{1000 * c['lat_max']:>7.0f} "
                + " ".join(f"{mib(rss[p['pid']]):.1f}" if p["pid"] in rss else "gone" for p in idle))
            for e in c["examples"][:3]:
                warn(f"failure: {e}")
            if not pid_alive(root):
                raise RuntimeError("Apache's parent is gone")
        log_summary = error_log_summary(srv.root / "error_log", log_offset)
    except Exception as e:  # noqa: BLE001
        problems.append(f"{type(e).__name__}: {e}")
        warn(f"soak stopped: {e}\n{srv.error_log_tail()}")
        log_summary = None
    finally:
        srv.stop_and_wait()

    # ---- report ----
    lines = []
    lines.append(f"soak test, rwsgi at {git_describe()}, started {started.isoformat(timespec='seconds')}: "
                 f"{total['requests']:,} requests through {args.server} in daemon mode "
                 f"(--processes {PROCESSES} --threads {THREADS} --server-mpm event), "
                 f"{args.connections} keep-alive connections from {args.clients} load processes, "
                 f"mix {mix_text}, RSS read after every {args.checkpoint:,}")
    if args.server == "rwsgi-express":
        lines.append(f"  mod_rwsgi.so {binary_stamp(rw_module)}; rwsgi-express {binary_stamp(express)}")
    if chunks:
        secs = sum(c["seconds"] for c in chunks)
        lines.append(f"  {secs:.0f} s of load, {total['requests'] / secs:,.0f} req/s on average "
                     f"(chunks: {min(c['requests'] / c['seconds'] for c in chunks):,.0f} to "
                     f"{max(c['requests'] / c['seconds'] for c in chunks):,.0f} req/s); the server and the "
                     f"load share the machine's {os.cpu_count()} CPUs, with whatever else runs on it")
    lines.append(f"  answered as expected: hello {total['ok']['hello']:,}, echo {total['ok']['echo']:,}, "
                 f"raise (deliberate 500) {total['deliberate_500']:,}; reconnects {total['reconnects']:,}")
    fail_ok = total["failures"] == 0 and not problems
    lines.append(f"  failures other than the deliberate 500s: {total['failures']:,} (goal 0) "
                 f"{'met' if fail_ok else 'NOT MET'}"
                 + (f"  {total['failure_kinds']}" if total["failure_kinds"] else ""))
    for e in total["examples"][:10]:
        lines.append(f"    e.g. {e}")
    for p in problems:
        lines.append(f"  PROBLEM: {p}")
    if log_summary is not None:
        lines.append(f"  error_log during the load: {log_summary['lines']:,} lines, "
                     f"{log_summary['other_count']} not about the deliberate exceptions"
                     + (f", e.g. {log_summary['other'][0][:200]}" if log_summary["other"] else ""))
    rss_ok = False
    if len(snapshots) >= 2:
        first, last = snapshots[0], snapshots[-1]
        a = {p["pid"]: p for p in first["processes"]}
        b = {p["pid"]: p for p in last["processes"]}
        tol = args.tolerance_mib * 1024
        lines.append(f"  RSS per process, MiB, after {first['after']:,} requests and after the last "
                     f"({last['after']:,}); min..max over all {len(snapshots)} checkpoints:")
        rss_ok = True
        def role_label(p):
            return "standby" if p["title"].startswith("(wsgi-standby:") else p["role"]
        for pid in sorted(set(a) | set(b), key=lambda p: ("parent", "child", "daemon", "standby").index(
                role_label(a.get(p) or b.get(p))) * 10**8 + p):
            pa, pb = a.get(pid), b.get(pid)
            role = role_label(pa or pb)
            series = [q["rss_kb"] for s in snapshots for q in s["processes"] if q["pid"] == pid]
            if pa and pb:
                d = pb["rss_kb"] - pa["rss_kb"]
                ok = abs(d) <= tol
                rss_ok &= ok
                lines.append(f"    {role:<7} {pid:>7}  {mib(pa['rss_kb']):7.1f} -> {mib(pb['rss_kb']):7.1f}  "
                             f"({mib(d):+.1f})  [{mib(min(series)):.1f}..{mib(max(series)):.1f}]"
                             f"{'' if ok else '  <<< beyond ' + str(args.tolerance_mib) + ' MiB'}")
            else:
                rss_ok = False
                lines.append(f"    {role:<7} {pid:>7}  {'gone by the end' if pa else 'new since the first checkpoint'}"
                             f"  <<< a process was replaced")
        lines.append(f"  RSS goal: each process within {args.tolerance_mib:g} MiB between the checkpoints: "
                     f"{'met' if rss_ok else 'NOT MET'}")
    else:
        lines.append("  RSS goal: not measured (fewer than 2 checkpoints)")
    text = "\n".join(lines)
    log("")
    log(text)

    if args.save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        data = {"started": started.isoformat(timespec="seconds"), "server": args.server, "args": {
            k: v for k, v in vars(args).items() if k != "mix"}, "mix": weights, "total": total,
            "chunks": chunks, "snapshots": snapshots, "problems": problems, "error_log": log_summary,
            "cmdline": srv.cmdline.replace(str(work), "$WORK"), "rwsgi_git": git_describe()}
        (RESULTS / f"soak-{stamp}.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / f"soak-{stamp}.txt").write_text(text + "\n")
        log(f"\nsaved bench/results/soak-{stamp}.json and .txt")
    if args.keep_work:
        log(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if fail_ok and rss_ok else 1


def git_describe():
    import subprocess
    from benchlib import REPO
    r = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return r.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
