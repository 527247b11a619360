#!/usr/bin/env python3
"""Side-by-side benchmark: rwsgi vs mod_wsgi 6.1.1 vs bare Apache, gunicorn, granian.

Run it through bench/run.sh, which installs the peers into the benchmark
virtualenv and runs this file with that virtualenv's Python:

    bash bench/run.sh            # full run (about 30 minutes on 2 cores)
    bash bench/run.sh --smoke    # 1-second runs, one round, tiny callgrind

See docs/performance.md for what is measured and how to read the output.
Nothing here asserts a timing: goals are printed with their measured ratios.
Uses only the standard library (plus the servers and wrk it runs). The
parts live next to this file: benchlib.py (servers, wrk, /proc helpers),
callgrind.py (instructions per request) and report.py (tables, goals,
docs/performance.md); soak.py is the daemon-mode soak test.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import sys
from pathlib import Path

from benchlib import (DOC, PROCESSES, RESULTS, THREADS, THREADS_C64, VENV, WORKLOADS, WORKLOADS_BY_KEY,
                      ApacheServer, ExpressApache, HandWrittenApache, PythonServer, POST_LUA, REPORT_LUA,
                      binaries, check_route, enter_netns, log, memory_by_role, netns_loopback, pid_alive,
                      prepare_work, processes_of, tcp_passive_opens, wait_http, warn, wrk)
from callgrind import Config as CallgrindConfig, run_callgrind
from report import build_tables, goals, keepalive_notes, machine_info, ms, versions, write_doc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true",
                    help="1-second runs without warm-up, one round, small callgrind (2 valgrind sessions at "
                    "a time); prints the tables, saves nothing")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 10, smoke 1)")
    ap.add_argument("--warmup", type=float, help="seconds of warm-up before each run (default 2, smoke 0)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 2, smoke 1)")
    ap.add_argument("--servers", help="comma-separated subset of: rwsgi-express, mod_wsgi-express, "
                    "rwsgi-express-metrics, rwsgi-express-daemon, mod_wsgi-express-daemon, apache-static, rwsgi-alone, "
                    "mod_wsgi-alone, "
                    "gunicorn, granian")
    ap.add_argument("--workloads", help="comma-separated subset of: " + ",".join(WORKLOADS_BY_KEY))
    ap.add_argument("--callgrind-n", help="N1,N2 for callgrind (default 200,2200; smoke 20,220)")
    ap.add_argument("--callgrind-repeats", type=int, help="callgrind repetitions (default 2, smoke 1)")
    ap.add_argument("--callgrind-jobs", type=int, help="valgrind sessions at a time (default 1, smoke 2)")
    ap.add_argument("--callgrind", help="comma-separated subset of the callgrind configurations: "
                    "static, rwsgi, mod_wsgi (embedded), rwsgi-daemon, mod_wsgi-daemon (default: all)")
    ap.add_argument("--no-callgrind", action="store_true", help="skip the callgrind measurement")
    ap.add_argument("--no-netns", action="store_true", help="stay in the host network namespace")
    ap.add_argument("--base-port", type=int, default=18400, help="first of the ports used (default 18400)")
    ap.add_argument("--no-save", action="store_true", help="do not write bench/results/ nor docs/performance.md")
    ap.add_argument("--keep-work", action="store_true", help="keep the temporary work directory")
    ap.add_argument("--doc-from", metavar="RESULTS_JSON",
                    help="only rewrite docs/performance.md (and print the tables) from a saved results file")
    args = ap.parse_args()

    if args.doc_from:
        data = json.loads(Path(args.doc_from).read_text())
        table = build_tables(data)
        goal_lines, _ = goals(data)
        log(table + "\n\nGoals:\n" + "\n".join("  " + line for line in goal_lines))
        write_doc(data, table, goal_lines, Path(args.doc_from).stem)
        log(f"wrote {DOC}")
        return 0

    enter_netns(args.no_netns)
    in_netns = netns_loopback()

    duration = args.duration or (1 if args.smoke else 10)
    warmup = args.warmup if args.warmup is not None else (0 if args.smoke else 2)
    rounds = args.rounds or (1 if args.smoke else 2)
    n1, n2 = (20, 220) if args.smoke else (200, 2200)
    cg_repeats = args.callgrind_repeats or (1 if args.smoke else 2)
    cg_jobs = args.callgrind_jobs or (2 if args.smoke else 1)
    if args.callgrind_n:
        n1, n2 = (int(x) for x in args.callgrind_n.split(","))
    save = not (args.smoke or args.no_save)

    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    work = Path(f"/tmp/rwsgi-bench-{stamp}-{os.getpid()}")
    work.mkdir(mode=0o755)
    os.chmod(work, 0o755)
    apps, docroot = prepare_work(work)
    express, rw_module, mw_express, mw_module = binaries(work)
    app = apps / "app.py"
    report_lua = work / "report.lua"
    report_lua.write_text(REPORT_LUA)
    post_lua = work / "post.lua"
    post_lua.write_text(POST_LUA)

    log(f"work directory: {work}")
    log(f"network namespace: {'private (unshare --net)' if in_netns else 'host'}")

    port = iter(range(args.base_port, args.base_port + 100))
    all_servers = []
    for threads, suffix in ((THREADS, ""), (THREADS_C64, "-c64")):
        # "-c64" instances serve only hello64 (see THREADS_C64); the others all the rest.
        flags = ["--processes", str(PROCESSES), "--threads", str(threads), "--server-mpm", "event"]
        group = [
            ExpressApache("rwsgi-express" + suffix, "rwsgi-express --embedded-mode", next(port),
                          work / ("rwsgi-express" + suffix), str(express), app,
                          flags + ["--embedded-mode", "--python-home", str(VENV)]),
            ExpressApache("mod_wsgi-express" + suffix, "mod_wsgi-express --embedded-mode", next(port),
                          work / ("mod_wsgi-express" + suffix), str(mw_express), app,
                          flags + ["--embedded-mode"]),
            HandWrittenApache("apache-static" + suffix, "bare Apache, static files", next(port),
                              work / ("apache-static" + suffix), docroot, threads=threads),
            HandWrittenApache("rwsgi-alone" + suffix, "mod_rwsgi, minimal httpd.conf", next(port),
                              work / ("rwsgi-alone" + suffix), docroot, str(rw_module), str(app), str(VENV),
                              threads=threads),
            HandWrittenApache("mod_wsgi-alone" + suffix, "mod_wsgi 6.1.1, minimal httpd.conf", next(port),
                              work / ("mod_wsgi-alone" + suffix), docroot, mw_module, str(app), str(VENV),
                              threads=threads),
        ]
        for srv in group:
            if suffix:
                srv.only = {"hello64"}
            else:
                srv.skip = {"hello64"}
        all_servers += group
    # One instance each for every workload: mod_wsgi-express sizes the Apache
    # in front of its daemon processes itself; gunicorn and granian hold
    # idle keep-alive connections without a thread each.
    flags = ["--processes", str(PROCESSES), "--threads", str(THREADS), "--server-mpm", "event"]
    all_servers.append(ExpressApache(
        "mod_wsgi-express-daemon", "mod_wsgi-express (daemon mode)", next(port),
        work / "mod_wsgi-express-daemon", str(mw_express), app, flags))
    all_servers.append(ExpressApache(
        "rwsgi-express-daemon", "rwsgi-express (daemon mode, its default)", next(port),
        work / "rwsgi-express-daemon", str(express), app, flags + ["--python-home", str(VENV)]))
    # The metrics endpoint and status page on (issue goal: hello c16 at >= 0.97x
    # of the same server without them); hello c16 only.
    metrics = ExpressApache(
        "rwsgi-express-metrics", "rwsgi-express --embedded-mode --metrics-url --status-url", next(port),
        work / "rwsgi-express-metrics", str(express), app,
        flags + ["--embedded-mode", "--python-home", str(VENV), "--metrics-url", "/metrics",
                 "--status-url", "/rwsgi-status"])
    metrics.only = {"hello16"}
    all_servers.append(metrics)
    gport, grport = next(port), next(port)
    all_servers.append(PythonServer(
        "gunicorn", "gunicorn gthread", gport, work / "gunicorn",
        [str(VENV / "bin" / "gunicorn"), "--workers", str(PROCESSES), "--threads", str(THREADS),
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{gport}", "--chdir", str(apps),
         "--keep-alive", "5", "--log-level", "warning", "app:application"]))
    all_servers.append(PythonServer(
        "granian", "granian wsgi", grport, work / "granian",
        [str(VENV / "bin" / "granian"), "--interface", "wsgi", "--http", "1", "--host", "127.0.0.1",
         "--port", str(grport), "--workers", str(PROCESSES), "--blocking-threads", str(THREADS),
         "--working-dir", str(apps), "--log-level", "warning", "app:application"]))
    order = ["rwsgi-express", "rwsgi-express-metrics", "mod_wsgi-express", "rwsgi-express-daemon",
             "mod_wsgi-express-daemon", "apache-static",
             "rwsgi-alone", "mod_wsgi-alone", "gunicorn", "granian"]
    all_servers.sort(key=lambda srv: order.index(srv.key.replace("-c64", "")))

    workloads = WORKLOADS
    if args.workloads:
        workloads = [WORKLOADS_BY_KEY[k] for k in args.workloads.split(",")]
    servers = all_servers
    cg_configs = [CallgrindConfig("static"), CallgrindConfig("rwsgi", str(rw_module)),
                  CallgrindConfig("mod_wsgi", mw_module),
                  CallgrindConfig("rwsgi-daemon", str(rw_module), daemon=True),
                  CallgrindConfig("mod_wsgi-daemon", mw_module, daemon=True)]
    if args.callgrind:
        want = args.callgrind.split(",")
        unknown = set(want) - {c.key for c in cg_configs}
        if unknown:
            ap.error(f"unknown callgrind configurations {sorted(unknown)}; known: {[c.key for c in cg_configs]}")
        cg_configs = [c for c in cg_configs if c.key in want]
    if args.servers:
        want = args.servers.split(",")
        unknown = set(want) - {srv.key.replace("-c64", "") for srv in all_servers}
        if unknown:
            ap.error(f"unknown servers {sorted(unknown)}; known: {order}")
        servers = [srv for srv in all_servers if srv.key.replace("-c64", "") in want]
    # Start only what some selected workload needs.
    servers = [srv for srv in servers if any(srv.path_for(wl) for wl in workloads)]
    if any(srv.key.startswith("rwsgi-express") for srv in servers) and not express.exists():
        sys.exit(f"{express} is missing: build it with scripts/build.sh (or leave out rwsgi-express with --servers)")

    data = {
        "started": started.isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": machine_info(),
        "versions": versions(rw_module, express),
        "network_namespace": "private" if in_netns else "host",
        "config": {"duration": duration, "warmup": warmup, "rounds": rounds, "processes": PROCESSES,
                   "threads": THREADS, "threads_c64": THREADS_C64, "callgrind_n": [n1, n2],
                   "callgrind_repeats": cg_repeats, "callgrind_jobs": cg_jobs, "wrk_threads": 2},
        "subset": ", ".join(x for x in (args.servers and f"servers {args.servers}",
                                        args.workloads and f"workloads {args.workloads}") if x) or None,
        "servers": [{"key": s.key, "title": s.title, "port": s.port} for s in servers],
        "cmdlines": {s.key: s.cmdline for s in servers if hasattr(s, "cmdline")},
        "workloads": [w.key for w in workloads],
        "runs": [],
        "problems": [],
    }
    problems = data["problems"]

    fatal = []

    def problem(msg, is_fatal=True):
        warn(msg)
        problems.append(msg)
        if is_fatal:
            fatal.append(msg)

    started_servers = []
    try:
        # ---- start everything, check every route once ----
        for s in servers:
            log(f"starting {s.key} on port {s.port} ...")
            try:
                s.start()
                started_servers.append(s)
                wait_http(s.port, "/hello.txt" if s.kind == "static" else "/hello", 120, proc=s.proc)
            except Exception as e:  # noqa: BLE001
                s.failed = f"start failed: {e}"
                problem(f"{s.key}: {s.failed}\n{s.error_log_tail()}")
                continue
            for wl in workloads:
                path = s.path_for(wl)
                if path is None:
                    continue
                err = check_route(s.port, wl, path)
                if err:
                    problem(f"{s.key}: {wl.method} {path} is wrong: {err}")
                    s.route_errors = getattr(s, "route_errors", set()) | {wl.key}
            procs = processes_of(s.root_pid())
            roles = memory_by_role(procs)
            log(f"  up: {len(procs)} processes, RSS {sum(p['rss_kb'] for p in procs) / 1024:.1f} MiB, "
                f"PSS {sum(p['pss_kb'] for p in procs) / 1024:.1f} MiB (idle); "
                + ", ".join(f"{role} {roles[role][0] / 1024:.1f} MiB ({roles[role][1]})"
                            for role in ("parent", "child", "daemon") if role in roles))
            if "daemon" in s.key and "daemon" not in roles:
                problem(f"{s.key}: no daemon process among {[(p['pid'], p['title']) for p in procs]}")

        # ---- measured runs: for each workload, rounds of every server ----
        total = sum(1 for wl in workloads for s in servers if s.path_for(wl)) * rounds
        done = 0
        for wl in workloads:
            for rnd in range(1, rounds + 1):
                for s in servers:
                    path = s.path_for(wl)
                    if path is None:
                        continue
                    done += 1
                    rec = {"workload": wl.key, "server": s.key, "round": rnd, "path": path,
                           "method": wl.method, "conns": wl.conns}
                    if s.failed:
                        rec["error"] = s.failed
                        data["runs"].append(rec)
                        continue
                    lua = post_lua if wl.method == "POST" else report_lua
                    try:
                        if warmup > 0:
                            wrk(s.port, path, wl.conns, warmup, lua)
                        opens0 = tcp_passive_opens()
                        w = wrk(s.port, path, wl.conns, duration, lua)
                        opens = tcp_passive_opens() - opens0
                    except Exception as e:  # noqa: BLE001
                        rec["error"] = str(e)
                        problem(f"{s.key} {wl.key} round {rnd}: {e}")
                        data["runs"].append(rec)
                        continue
                    procs = processes_of(s.root_pid())
                    rss, pss, nprocs = (sum(p["rss_kb"] for p in procs), sum(p["pss_kb"] for p in procs),
                                        len(procs))
                    rec.update({
                        "rps": w["rps"], "requests": w["requests"], "duration_s": w["duration_us"] / 1e6,
                        "p50_us": w["p50_us"], "p90_us": w["p90_us"], "p99_us": w["p99_us"],
                        "lat_mean_us": w["lat_mean_us"], "lat_max_us": w["lat_max_us"],
                        "non2xx": max(w["status"], w["non2xx_line"]),
                        "socket_errors": w["socket_errors"],
                        "errors": {k: w[k] for k in ("connect", "read", "write", "timeout", "status")},
                        "bytes": w["bytes"],
                        "conns_opened": opens if in_netns else None,
                        "rss_kb": rss, "pss_kb": pss, "nprocs": nprocs, "rss_by_role": memory_by_role(procs),
                    })
                    # wrk opens `conns` connections, plus one when it starts to
                    # check the address (the Lua script's wrk.resolve); any more
                    # means the server closed kept-alive connections.
                    rec["keepalive_broken"] = bool(in_netns and opens > wl.conns + 1)
                    if not in_netns:
                        rec["conns_opened"] = None
                    data["runs"].append(rec)
                    flag = ""
                    if rec["non2xx"] or rec["socket_errors"]:
                        flag = "   <<< ERRORS"
                        # A 4xx/5xx under load is a bug; socket errors are the
                        # server closing connections (flagged, not fatal).
                        sock = ", ".join(f"{k} {w[k]}" for k in ("connect", "read", "write", "timeout") if w[k])
                        problem(f"{s.key} {wl.key} round {rnd}: {rec['non2xx']} non-2xx responses, "
                                f"socket errors: {sock or 'none'}; {opens} connections accepted for "
                                f"{wl.conns} wrk connections", is_fatal=bool(rec["non2xx"]))
                    elif rec["keepalive_broken"]:
                        flag = "   <<< KEEP-ALIVE BROKEN"
                        problem(f"{s.key} {wl.key} round {rnd}: {opens} connections accepted for "
                                f"{wl.conns} wrk connections ({w['requests']} requests): the server "
                                f"closed kept-alive connections", is_fatal=False)
                    log(f"[{done}/{total}] {wl.key:<8} {s.key:<24} round {rnd}: {w['rps']:>9,.0f} req/s  "
                        f"p50 {ms(w['p50_us'])} ms  p99 {ms(w['p99_us'])} ms  conns {opens}  "
                        f"RSS {rss / 1024:.1f} MiB{flag}")
                    if not pid_alive(s.root_pid() or -1):
                        s.failed = "server died"
                        problem(f"{s.key}: server is gone after {wl.key} round {rnd}\n{s.error_log_tail()}")
    finally:
        for s in started_servers:
            log(f"stopping {s.key} ...")
            s.stop_and_wait()

    for s in servers:
        if isinstance(s, ApacheServer) and not s.failed:
            # AH10159 ("within MinSpareThreads of MaxRequestWorkers") is logged
            # at error level but only says that the configuration is tight;
            # mod_wsgi logs two lines (WSGI0174 "OSError exception raised" and
            # "failed to write response data") for every response cut off
            # when wrk closes its connections at the end of a run.
            benign = re.compile(r"AH10159|failed to write response data|"
                                r"OSError exception raised processing WSGI script")
            lines = [l for l in s.error_log_tail(100000).splitlines()
                     if re.search(r":(error|crit|alert|emerg)\]", l)]
            errs = [l for l in lines if not benign.search(l)]
            data.setdefault("error_log_benign_lines", {})[s.key] = len(lines) - len(errs)
            if errs:
                problem(f"{s.key}: error_log has {len(errs)} error lines, e.g.: {errs[-1]}", is_fatal=False)

    # ---- callgrind ----
    if not args.no_callgrind and cg_configs:
        log("callgrind (instructions per request, apache2 -X; daemon mode: plus its daemon process) ...")
        try:
            data["callgrind"] = run_callgrind(work, docroot, str(app), cg_configs, n1, n2, cg_repeats,
                                              args.base_port + 100, cg_jobs)
        except Exception as e:  # noqa: BLE001
            problem(f"callgrind failed: {e}")

    table = build_tables(data)
    goal_lines, parsed = goals(data)
    data["goals"] = parsed
    log("")
    log(table)
    log("")
    log("Goals (median req/s over rounds; ratios of each round in brackets):")
    for line in goal_lines:
        log("  " + line)
    notes = keepalive_notes(data)
    for n in notes:
        log("")
        log("!!! " + n)
    if problems:
        log("")
        log(f"!!! {len(problems)} PROBLEM(S) — the figures above may be meaningless where flagged:")
        for p in problems:
            log("!!!   " + p.splitlines()[0])

    text = table + "\n\nGoals:\n" + "\n".join("  " + l for l in goal_lines) + "\n"
    if problems:
        text += "\nProblems:\n" + "\n".join("  " + p for p in problems) + "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    for r in data["runs"]:
        r.pop("raw", None)
    if save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stem = stamp
        (RESULTS / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n")
        (RESULTS / f"{stem}.txt").write_text(text)
        write_doc(data, table, goal_lines, stem)
        log(f"\nsaved bench/results/{stem}.json, bench/results/{stem}.txt and docs/performance.md")
    elif args.keep_work:
        (work / "results.json").write_text(json.dumps(data, indent=1) + "\n")
        (work / "results.txt").write_text(text)
        log(f"\nresults in {work}/results.json and results.txt (not saved to bench/results)")
    if args.keep_work:
        log(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    # Exit status: slow figures never fail; a server that does not start,
    # a wrong answer, non-2xx responses, socket errors or a failed
    # measurement do (the smoke run exists to catch those).
    if fatal:
        log(f"exit status 1: {len(fatal)} error(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
