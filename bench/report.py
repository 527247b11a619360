"""Tables, goals and docs/performance.md for bench.py (from the results
dictionary bench.py saves as bench/results/<timestamp>.json)."""

import json
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

from benchlib import DOC, HTTPD, REPO, RESULTS, VENV, binary_stamp
from callgrind import DAEMON_OPTIONS

def fmt_int(x):
    return f"{x:,.0f}"


def ms(us):
    return f"{us / 1000:.2f}"


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def build_tables(data):
    servers = data["servers"]
    runs = data["runs"]
    lines = []
    lines.append("Summary (median over rounds; req/s of each round in brackets; RSS: median of the end-of-run sums):")
    hdr = f"{'workload':<9} {'server':<24} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'RSS MiB':>8}  rounds"
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for wl in data["workloads"]:
        for s in servers:
            rs = [r for r in runs if r["workload"] == wl and r["server"] == s["key"] and not r.get("error")]
            if not rs:
                continue
            flag = "  <<< flagged" if any(r["non2xx"] or r["socket_errors"] or r.get("keepalive_broken")
                                         for r in rs) else ""
            lines.append(
                f"{wl:<9} {s['key']:<24} {fmt_int(median(r['rps'] for r in rs)):>9} "
                f"{ms(median(r['p50_us'] for r in rs)):>7} {ms(median(r['p99_us'] for r in rs)):>7} "
                f"{median(r['rss_kb'] for r in rs) / 1024:>8.1f}  "
                f"[{', '.join(fmt_int(r['rps']) for r in rs)}]{flag}")
    lines += daemon_rss_table(data)
    cg = data.get("callgrind")
    if cg:
        lines.append("")
        n1, n2 = data["config"]["callgrind_n"]
        embedded = {k: r for k, r in cg.items() if not r.get("daemon")}
        daemon = {k: r for k, r in cg.items() if r.get("daemon")}
        if embedded:
            lines.append(f"Instructions per hello request (callgrind, apache2 -X, (Ir(N={n2}) - Ir(N={n1})) / {n2 - n1}):")
        for key, r in embedded.items():
            # The module's share needs the static configuration's figure,
            # absent when --callgrind names only some configurations.
            share = (f"  the module's share (minus the static file's): {fmt_int(r['module_per_request']):>9}"
                     if "module_per_request" in r else "")
            lines.append(f"  {key:<10} {fmt_int(r['per_request']):>9} Ir/request;{share}"
                         f"  (samples: {', '.join(fmt_int(s['per_request']) for s in r['samples'])})")
        if daemon:
            lines.append(f"Instructions per hello request in daemon mode (callgrind, apache2 -X and its daemon "
                         f"process, both traced, summed; (Ir(N={n2}) - Ir(N={n1})) / {n2 - n1}):")
        for key, r in daemon.items():
            lines.append(f"  {key:<16} {fmt_int(r['per_request']):>9} Ir/request = Apache child "
                         f"{fmt_int(r['apache_per_request']):>7} + daemon {fmt_int(r['daemon_per_request']):>7}"
                         f"  (samples: {', '.join(fmt_int(s['per_request']) for s in r['samples'])})")
    lines.append("")
    lines.append("Every measured run, in the order run (RSS/PSS summed over the server's processes at the end of the run;")
    lines.append("conns = connections the server accepted during the run, wrk's connections + 1 when keep-alive works):")
    hdr = (f"{'workload':<9} {'server':<24} {'rnd':>3} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
           f"{'non2xx':>6} {'sockerr':>7} {'conns':>6} {'RSS MiB':>8} {'PSS MiB':>8} {'procs':>5}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in runs:
        if r.get("error"):
            lines.append(f"{r['workload']:<9} {r['server']:<24} {r['round']:>3} ERROR: {r['error']}")
            continue
        flag = ""
        if r["non2xx"] or r["socket_errors"]:
            flag = "  <<< ERRORS"
        elif r.get("keepalive_broken"):
            flag = "  <<< KEEP-ALIVE BROKEN"
        lines.append(
            f"{r['workload']:<9} {r['server']:<24} {r['round']:>3} {fmt_int(r['rps']):>9} "
            f"{ms(r['p50_us']):>7} {ms(r['p99_us']):>7} {r['non2xx']:>6} {r['socket_errors']:>7} "
            f"{r['conns_opened'] if r['conns_opened'] is not None else '?':>6} "
            f"{r['rss_kb'] / 1024:>8.1f} {r['pss_kb'] / 1024:>8.1f} {r['nprocs']:>5}{flag}")
    return "\n".join(lines)


def daemon_rss_table(data):
    """RSS of the daemon-mode servers split into Apache's parent, its
    children and the daemon processes (the RSS column sums all three)."""
    runs = [r for r in data["runs"] if not r.get("error") and r.get("rss_by_role", {}).get("daemon")]
    if not runs:
        return []
    lines = ["", "RSS of the daemon-mode servers, MiB (median over the runs of the end-of-run values; "
                 "processes in brackets):"]
    hdr = f"  {'server':<24} {'Apache parent':>14} {'Apache children':>16} {'daemons':>12} {'total':>8} {'peak':>8}"
    lines.append(hdr)
    for s in data["servers"]:
        rs = [r for r in runs if r["server"] == s["key"]]
        if not rs:
            continue

        def part(role):
            kb = median(r["rss_by_role"].get(role, [0, 0])[0] for r in rs)
            n = median(r["rss_by_role"].get(role, [0, 0])[1] for r in rs)
            return f"{kb / 1024:.1f} ({n:.0f})"
        lines.append(f"  {s['key']:<24} {part('parent'):>14} {part('child'):>16} {part('daemon'):>12} "
                     f"{median(r['rss_kb'] for r in rs) / 1024:>8.1f} {max(r['rss_kb'] for r in rs) / 1024:>8.1f}")
    return lines


def ratio_line(label, num, den, goal, higher_is_better=True, extra=""):
    if num is None or den is None or den == 0:
        return f"{label} = n/a (goal {'>=' if higher_is_better else '<='} {goal:.2f}){extra}", None
    v = num / den
    met = v >= goal if higher_is_better else v <= goal
    return (f"{label} = {v:.2f} (goal {'>=' if higher_is_better else '<='} {goal:.2f}) "
            f"{'met' if met else 'NOT MET'}{extra}", {"label": label, "ratio": v, "goal": goal,
                                                      "higher_is_better": higher_is_better, "met": met})


def goals(data):
    runs = [r for r in data["runs"] if not r.get("error")]

    def rps(server, wl):
        return median(r["rps"] for r in runs if r["server"] == server and r["workload"] == wl)

    def per_round(a, b, wl):
        out = []
        for rnd in sorted({r["round"] for r in runs}):
            x = [r["rps"] for r in runs if r["server"] == a and r["workload"] == wl and r["round"] == rnd]
            y = [r["rps"] for r in runs if r["server"] == b and r["workload"] == wl and r["round"] == rnd]
            if x and y and y[0]:
                out.append(x[0] / y[0])
        return f"  (per round: {', '.join(f'{v:.2f}' for v in out)})" if out else ""

    def peak_rss(server):
        xs = [r["rss_kb"] for r in runs if r["server"] == server]
        return max(xs) if xs else None

    lines, parsed = [], []

    def add(label, a, b, wl, goal):
        line, p = ratio_line(label, rps(a, wl), rps(b, wl), goal, True, per_round(a, b, wl))
        lines.append(line)
        if p:
            parsed.append(p)

    add("express embedded hello c16: rwsgi/mod_wsgi", "rwsgi-express", "mod_wsgi-express", "hello16", 1.40)
    add("express embedded hello c64: rwsgi/mod_wsgi", "rwsgi-express-c64", "mod_wsgi-express-c64", "hello64", 1.40)
    add("metrics endpoint and status page on/off, embedded hello c16", "rwsgi-express-metrics", "rwsgi-express",
        "hello16", 0.97)
    add("module alone hello c16: rwsgi/apache-static", "rwsgi-alone", "apache-static", "hello16", 0.90)
    add("module alone hello c64: rwsgi/apache-static", "rwsgi-alone-c64", "apache-static-c64", "hello64", 0.90)
    add("module alone hello c16: rwsgi/mod_wsgi", "rwsgi-alone", "mod_wsgi-alone", "hello16", 1.10)
    add("module alone hello c64: rwsgi/mod_wsgi", "rwsgi-alone-c64", "mod_wsgi-alone-c64", "hello64", 1.10)
    cg = data.get("callgrind") or {}
    if all("module_per_request" in cg.get(k, {}) for k in ("rwsgi", "mod_wsgi")):
        a, b = cg["rwsgi"]["module_per_request"], cg["mod_wsgi"]["module_per_request"]
        line, p = ratio_line("instructions per hello request attributable to the module: rwsgi/mod_wsgi",
                             a, b, 0.60, False, f"  ({fmt_int(a)} vs {fmt_int(b)} Ir)")
        lines.append(line)
        if p:
            parsed.append(p)
    else:
        lines.append("instructions per hello request attributable to the module: rwsgi/mod_wsgi = not measured (goal <= 0.60)")
    add("module alone 64 KiB response: rwsgi/apache-static-64k", "rwsgi-alone", "apache-static", "r64k", 0.90)
    add("module alone 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-alone", "mod_wsgi-alone", "post64k", 1.20)
    add("express embedded 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-express", "mod_wsgi-express", "post64k", 1.20)
    # Daemon mode (issue goals): >= 2.0x mod_wsgi-express daemon; >= 0.70x rwsgi embedded.
    add("express daemon hello c16: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "hello16", 2.00)
    add("express daemon hello c64: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "hello64", 2.00)
    add("rwsgi daemon/embedded hello c16", "rwsgi-express-daemon", "rwsgi-express", "hello16", 0.70)
    add("rwsgi daemon/embedded hello c64", "rwsgi-express-daemon", "rwsgi-express-c64", "hello64", 0.70)
    add("express daemon 64 KiB response: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "r64k", 2.00)
    add("express daemon 64 KiB POST echo: rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon", "post64k", 2.00)
    add("express daemon Flask JSON (20 items): rwsgi/mod_wsgi", "rwsgi-express-daemon", "mod_wsgi-express-daemon",
        "flask", 1.50)
    if "rwsgi-daemon" in cg and "mod_wsgi-daemon" in cg:
        a, b = cg["rwsgi-daemon"], cg["mod_wsgi-daemon"]
        # No goal was set for this one: the line shows the ratio only.
        lines.append(f"instructions per hello request, daemon mode (Apache child + daemon): rwsgi/mod_wsgi = "
                     f"{a['per_request'] / b['per_request']:.2f} (no goal; for information)  "
                     f"({fmt_int(a['per_request'])} = {fmt_int(a['apache_per_request'])} + "
                     f"{fmt_int(a['daemon_per_request'])} vs {fmt_int(b['per_request'])} = "
                     f"{fmt_int(b['apache_per_request'])} + {fmt_int(b['daemon_per_request'])} Ir)")
    add("module alone 1 MiB wsgi.file_wrapper: rwsgi/apache-static-1m", "rwsgi-alone", "apache-static", "file1m", 0.90)
    add("express daemon 1 MiB wsgi.file_wrapper: rwsgi/apache-static-1m", "rwsgi-express-daemon", "apache-static",
        "file1m", 0.80)
    for a, b, label in (("rwsgi-express", "mod_wsgi-express", "express embedded"),
                        ("rwsgi-alone", "mod_wsgi-alone", "module alone"),
                        ("rwsgi-express-daemon", "mod_wsgi-express-daemon", "express daemon, Apache + daemons")):
        ra, rb = peak_rss(a), peak_rss(b)
        line, p = ratio_line(f"RSS {label} (peak of end-of-run sums): rwsgi/mod_wsgi", ra, rb, 1.00, False,
                             f"  ({ra / 1024:.1f} vs {rb / 1024:.1f} MiB)" if ra and rb else "")
        lines.append(line)
        if p:
            parsed.append(p)
    return lines, parsed


def keepalive_notes(data):
    """Explains servers that reconnected: Apache closes a connection after
    MaxKeepAliveRequests requests (100 unless the configuration says)."""
    notes = []
    for s in data["servers"]:
        rs = [r for r in data["runs"] if r["server"] == s["key"] and not r.get("error")
              and r.get("conns_opened") and r["conns_opened"] > r["conns"] + 1]
        if len(rs) < 2:
            continue
        per_conn = [r["requests"] / (r["conns_opened"] - 1) for r in rs]
        if all(80 <= x <= 110 for x in per_conn):
            notes.append(
                f"{s['key']} closed its connections after about {median(per_conn):.0f} requests each "
                f"in {len(rs)} runs: that is Apache's default MaxKeepAliveRequests 100, which "
                f"its httpd.conf does not override (mod_wsgi-express writes "
                f"MaxKeepAliveRequests 0 for the event MPM); wrk reconnects, so its figures "
                f"include a TCP handshake every ~100 requests.")
    return notes


def machine_info():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": (Path("/etc/debian_version").read_text().strip() if Path("/etc/debian_version").exists() else "?"),
    }


def versions(rw_module, express):
    """Versions of everything; rw_module and express: the rwsgi build used."""
    def out(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    v = {
        "apache": out([HTTPD, "-v"]).split(":", 1)[-1].strip(),
        "wrk": out(["wrk", "--version"]).split(" Copyright")[0],
        "valgrind": out(["valgrind", "--version"]),
        "python": out([str(VENV / "bin" / "python"), "--version"]),
    }
    for pkg in ("mod_wsgi", "gunicorn", "granian", "flask"):
        v[pkg] = out([str(VENV / "bin" / "python"), "-c",
                      f"import importlib.metadata as m; print(m.version('{pkg}'))"])
    try:
        v["rwsgi_git"] = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        v["rwsgi_git"] = "?"
    v["rwsgi_module"] = binary_stamp(rw_module)
    v["rwsgi_express"] = binary_stamp(express)
    return v


def write_doc(data, table, goal_lines, stem):
    m = data["machine"]
    v = data["versions"]
    c = data["config"]
    probs = data.get("problems") or []
    problems_md = ("\n".join(f"- {p.splitlines()[0]}" for p in probs) if probs
                   else "None: every run had 0 non-2xx responses, 0 socket errors and working keep-alive.")
    notes = keepalive_notes(data)
    if notes:
        problems_md += "\n\n" + "\n\n".join(f"**{n}**" for n in notes)
    cmdlines = {k: re.sub(r"/tmp/rwsgi-bench-[0-9-]+", "$WORK", v) for k, v in data["cmdlines"].items()}
    subset_note = ""
    if data.get("subset"):
        subset_note = (f"\n- a partial run: only {data['subset']} (`bench/bench.py --servers/--workloads`); "
                       f"the other rows and goals are not measured here")
    doc = f"""# Performance

Side-by-side benchmark of rwsgi against mod_wsgi 6.1.1 (embedded and daemon
mode), bare Apache serving static files (the ceiling), gunicorn and granian.
Generated by `bench/bench.py` from the run saved as
`bench/results/{stem}.json` / `.txt`; re-running the full benchmark rewrites
this file.

## Command

```sh
bash bench/run.sh            # full run, writes bench/results/<timestamp>.* and this file
bash bench/run.sh --smoke    # CI smoke: 1-second runs, one round, tiny callgrind; writes nothing here
python3 bench/soak.py        # soak test of daemon mode (not in CI), see "Soak test" below
```

`bench/run.sh` creates the benchmark virtualenv `{VENV}` on
`/usr/bin/python3.11` (world-readable, Apache's children run as `nobody`) and
installs mod-wsgi 6.1.1 (compiled against the local apxs), gunicorn, granian
and Flask into it with `pip install --no-cache-dir`; it installs `wrk`
(and valgrind) from Debian's packages when missing, builds the module with
`scripts/build.sh` when `target/release/mod_rwsgi.so` or
`target/release/rwsgi-express` is missing, then runs `bench/bench.py` (see
`bench/bench.py --help` for run length, rounds, server and workload
selection).

## Machine of this run

- {m['nproc']} CPUs: {m['cpu']}; {m['memory_gib']} GiB; kernel {m['kernel']}; Debian {m['os']}
- {v['apache']}, event MPM; {v['python']} (Debian's, in the benchmark venv)
- mod_wsgi {v['mod_wsgi']}, gunicorn {v['gunicorn']}, granian {v['granian']}, Flask {v['flask']}, {v['wrk']}, {v['valgrind']}
- rwsgi at `{v['rwsgi_git']}`, run started {data['started']}{binaries_md(v)}
- {c['rounds']} round(s) of {c['duration']} s per configuration after a {c['warmup']} s warm-up each, interleaved (A B C ... A B C ...)
- the machine is shared and noisy (2 cores, other builds and test suites were running): compare
  ratios within a round, and trust the instruction counts over the timings{subset_note}

## Results

```
{table}
```
{daemon_section(data, goal_lines)}
## Goals

Ratios of the medians over the rounds (each round's own ratio in
brackets); `met`/`NOT MET` compares with the goal as stated, never adjusted.

```
{chr(10).join(goal_lines)}
```

## Problems flagged in this run

{problems_md}
{run_notes(stem)}
## What runs

All servers run on 127.0.0.1 inside a private network namespace (`unshare
--net`) so the kernel's TCP counters count exactly the benchmark's
connections (`conns` = connections accepted during the measured run: with
working keep-alive it equals the wrk connection count), as user `nobody`,
serving the same files (`bench/apps/app.py`, `bench/apps/flask_app.py`,
copied with generated data files to a world-readable directory):

| server | how it is started |
| --- | --- |
| `rwsgi-express` | `{cmdlines.get('rwsgi-express', 'rwsgi-express setup-server ...')}` then `apachectl start` |
| `mod_wsgi-express` | `{cmdlines.get('mod_wsgi-express', 'mod_wsgi-express setup-server ...')}` then `apachectl start` |
| `mod_wsgi-express-daemon` | `{cmdlines.get('mod_wsgi-express-daemon', 'mod_wsgi-express setup-server ...')}` (daemon mode, mod_wsgi-express's default) |
| `rwsgi-express-daemon` | `{cmdlines.get('rwsgi-express-daemon', 'rwsgi-express setup-server ...')}` (daemon mode, rwsgi-express's default) |
| `apache-static` | hand-written minimal httpd.conf (below), no WSGI module; serves `hello.txt` (12 B), `64k.bin`, `1m.bin` |
| `rwsgi-alone` | the same httpd.conf plus `LoadModule wsgi_module target/release/mod_rwsgi.so`, `WSGIPythonHome`, `WSGIScriptAlias / app.py`, `WSGIApplicationGroup %{{GLOBAL}}` |
| `mod_wsgi-alone` | the same with mod_wsgi 6.1.1's module (path from `mod_wsgi-express module-config`) |
| `gunicorn` | `{cmdlines.get('gunicorn', 'gunicorn ...')}` |
| `granian` | `{cmdlines.get('granian', 'granian ...')}` |

The hand-written httpd.conf: event MPM, `StartServers 2`, `ServerLimit 2`,
`ThreadsPerChild 15`, `MaxRequestWorkers 30`, `MinSpareThreads 15`,
`MaxSpareThreads 30`, `KeepAlive On`, `MaxKeepAliveRequests 0`, mod_authz_core
and mod_mime only, no access log (see `apache_conf()` in `bench/benchlib.py`).

**64 connections.** Apache's event MPM closes the kept-alive connections of a
child whose worker threads are all busy, so 2 × 15 threads cannot hold 64
keep-alive connections: wrk then reports read errors and reconnects
thousands of times and the figures mean nothing. mod_wsgi-express ignores
`--max-clients` in embedded mode (MaxRequestWorkers is always processes ×
threads), so the one knob both launchers share is `--threads`: the hello c64
row runs on separate instances (`*-c64`) started with `--processes 2
--threads {c.get('threads_c64', 64)}` (hand-written: `ThreadsPerChild {c.get('threads_c64', 64)}`), enough for a
child to hold every connection whatever way the connections are spread over
the two children. mod_wsgi-express in daemon mode, gunicorn and granian
keep idle connections without a thread each and use their single 2 × 15
instance for every workload (mod_wsgi-express sizes the Apache in front of
its daemons itself, from `--max-clients`, whose default grows with
processes × threads). rwsgi-express in daemon mode has one 2 × 15 instance
too, as `--processes 2 --threads 15` is the comparison. Both size the Apache
in front of the daemons alike (`--max-clients` 55, `MaxRequestWorkers 72`),
but mod_wsgi-express in children of 18 relaying threads, one started and
the others added as threads run out: while the first child holds more of
the 64 kept-alive connections than it has threads, the event MPM closes
some (read errors, flagged). rwsgi-express starts two children of 36 (see
docs/express.md, MPM sizing). Even at 16 connections a child of 15 threads
can briefly hold 16 connections, which shows as a rare read error.

`conns` counts wrk's connections plus one (wrk opens a connection to check
the address before it starts); more than that means the server closed
kept-alive connections (flagged `<<< KEEP-ALIVE BROKEN`).

Workloads (wrk, 2 threads, `--latency`, a Lua `done()` hook prints the
figures as JSON; POST through a Lua script): hello world (12 bytes) at 16 and
64 connections; a 64 KiB response; a 64 KiB POST read from `wsgi.input` and
answered with its length; 1 MiB through `wsgi.file_wrapper`; a Flask JSON
view answering a message and a list of 20 small objects — all but hello at
16 connections. Bare Apache serves the 12-byte,
64 KiB and 1 MiB files statically as the ceilings. Every route is checked
once (status 200, exact body) before the runs; `non2xx` counts 4xx/5xx
during a run and `sockerr` wrk's connect/read/write/timeout errors — both
must be 0 and are flagged `<<< ERRORS` otherwise.

RSS is VmRSS summed over the server's whole process tree (Apache's root
parent, its children and, for daemon mode, the daemon processes, which the
Apache parent forks — rwsgi's and mod_wsgi-express's are titled
`(wsgi:...)` in ps, and rwsgi's standby process of a group (forked ahead,
no Python until it replaces a daemon) `(wsgi-standby:...)`, counted with
the daemons; gunicorn's and granian's master and workers), read from
/proc at the end of each run; the daemon-mode servers' figures are also
shown split into parent, children and daemons. PSS (from smaps_rollup) is
shown as well because summed RSS counts shared pages once per process.

Instructions per request: `valgrind --tool=callgrind /usr/sbin/apache2 -X`
(one process; Apache still drops to `nobody`, the uid is checked and shown)
with the hand-written configuration, N1 = {c['callgrind_n'][0]} and N2 = {c['callgrind_n'][1]}
sequential keep-alive GETs in two separate runs; Ir/request = (Ir(N2) −
Ir(N1)) / (N2 − N1), so start-up, warm-up and shut-down cancel out. The
module's share is that minus the same figure for the static 12-byte file.

Daemon mode (`rwsgi-daemon`, `mod_wsgi-daemon`): the same hand-written
configuration plus `WSGIRestrictEmbedded On`, `WSGIDaemonProcess bench
{DAEMON_OPTIONS}` and `WSGIProcessGroup bench` (plus `WSGISocketPrefix`
for mod_wsgi), under `valgrind --tool=callgrind --trace-children=yes
apache2 -X`: the -X process forks the daemon process and valgrind follows
it, each writing its own output file. (mod_wsgi-express's own
configuration cannot be used: under `-X` it switches to embedded mode.)
The figure is the sum over both processes, shown as the Apache child's part
(parsing the request, relaying it and the response) plus the daemon's (the
application); both run as `nobody`.
{soak_section(data)}"""
    DOC.write_text(doc)




def daemon_section(data, goal_lines):
    """'Daemon mode' at a glance: its goal lines, RSS split and instruction
    counts, taken from the tables above."""
    cg = data.get("callgrind") or {}
    dgoals = [g for g in goal_lines if "daemon" in g]
    rss = daemon_rss_table(data)[2:]
    if not dgoals and not rss:
        return ""
    text = """
## Daemon mode

rwsgi-express in daemon mode (its default) against mod_wsgi-express in daemon
mode (its default), both `--processes 2 --threads 15 --server-mpm event`;
`rwsgi daemon/embedded` compares with rwsgi-express `--embedded-mode`. The
lines are those of the tables above and of Goals below.

```
""" + "\n".join(dgoals)
    if rss:
        text += "\n\nRSS, MiB (Apache parent + children + daemons; processes in brackets):\n" + "\n".join(
            daemon_rss_table(data)[2:])
    lines = [f"  {k:<16} {fmt_int(r['per_request']):>9} Ir/request = Apache child "
             f"{fmt_int(r['apache_per_request']):>7} + daemon {fmt_int(r['daemon_per_request']):>7}"
             for k, r in cg.items() if r.get("daemon")]
    if lines:
        text += "\n\nInstructions per hello request (callgrind):\n" + "\n".join(lines)
    return text + "\n```\n"


def run_notes(stem):
    """bench/results/<stem>.notes.md, when someone wrote one: what the
    figures of that run mean, kept next to them (this file is generated)."""
    f = RESULTS / f"{stem}.notes.md"
    if not f.exists():
        return ""
    return f"""
## Notes on this run

(from `bench/results/{f.name}`, written by hand after the run)

{f.read_text().strip()}
"""


def binaries_md(v):
    if "rwsgi_module" not in v:
        return ""
    return (f"; `target/release/mod_rwsgi.so` {v['rwsgi_module']}, `rwsgi-express` {v['rwsgi_express']} "
            f"(copied at the start, so that every figure is of that build; `-dirty`: the working tree "
            f"had uncommitted changes, others' work in progress)")


def soak_section(data):
    """The "Soak test" section: how to run it and the newest saved soak
    result (bench/results/soak-*.txt), if any."""
    # The newest saved run of each server and request count.
    newest = {}
    for txt in sorted(RESULTS.glob("soak-*.txt")):
        try:
            j = json.loads(txt.with_suffix(".json").read_text())
            key = (j.get("server", "rwsgi-express"), j["args"]["requests"])
        except (OSError, ValueError, KeyError):
            key = (txt.name, 0)
        newest[key] = txt
    saved = sorted(newest.values())
    text = """
## Soak test

`bench/soak.py` (not run in CI; needs root and the benchmark venv, which
`bash bench/run.sh --help` creates) starts rwsgi-express in daemon mode with
the benchmark's flags (`--processes 2 --threads 15 --server-mpm event`) and
sends `--requests` requests (default 1,000,000) over 16 keep-alive
connections, a fixed mix of hello, 64 KiB POST echo and `/raise` (an
exception in the application: a deliberate 500), in chunks of
`--checkpoint` requests (default 100,000). Every response is checked
(status and exact body). It reports every failure other than the deliberate
500s (the goal is 0) and the RSS of every Apache process and daemon after the
first chunk against after the last request (the goal: each within 5 MiB).
`--save` keeps the result as `bench/results/soak-<timestamp>.json` / `.txt`,
of which the newest of each server and request count is shown here
(`--server mod_wsgi-express` runs the same test on the peer).

A failure "kept-alive connection closed before any response byte" is a
request sent on a kept-alive connection that Apache closed without
answering. Apache's event MPM closes the kept-alive connections of a child
whose worker threads are all busy (see "64 connections" above), and
rwsgi-express in daemon mode gives Apache `--processes` × `--threads`
workers (2 children × 15 threads here, for 16 connections), where
mod_wsgi-express's daemon mode gives it 1.5 × processes × threads (18
threads per child, up to 4 children): in the runs of 2026-12-01 rwsgi-express
had such failures in all but one run at 16 connections (2 to 43 in a run of
200,000 or 1,000,000 requests) and none at 12 (`--connections 12`, 200,000
requests), mod_wsgi-express none at 16. Every other kind of failure is
counted the same way.
"""
    for f in saved:
        text += f"""
`bench/results/{f.name}`:

```
{f.read_text().rstrip()}
```
"""
    return text
