"""Instructions per hello request under callgrind, for bench.py.

Every measurement runs `valgrind --tool=callgrind apache2 -X` (one Apache
process serving the requests itself) on the hand-written httpd.conf of
benchlib.apache_conf(), sends N sequential GETs on one keep-alive
connection and stops Apache. Ir per request = (Ir(N2) - Ir(N1)) / (N2 - N1),
so start-up, the first requests and shut-down cancel out.

Embedded mode (and bare Apache) is that one process. In daemon mode the
-X process forks the daemon process (WSGIDaemonProcess ... processes=1),
which valgrind follows (--trace-children=yes also covers any exec); each
process writes its own callgrind.<pid>.out, and the figure is the sum over
them: the Apache child's share (relaying) plus the daemon's (the
application), shown separately.
"""

import concurrent.futures
import http.client
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

from benchlib import (GROUP, HTTPD, USER, VENV, apache_conf, expected_body, kill_tree, log, pid_alive,
                      process_tree, uids_of, wait_http, warn)

# The daemon process group of the daemon-mode measurement: one process (so
# one interpreter's figures), 15 threads as everywhere else, and time
# enough to write its profile after SIGTERM (valgrind is slow).
DAEMON_OPTIONS = "processes=1 threads=15 shutdown-timeout=60"


class Config:
    def __init__(self, key, module=None, daemon=False):
        self.key = key
        self.module = module
        self.daemon = daemon
        self.path = "/hello" if module else "/hello.txt"


def callgrind_total(out_file):
    total = 0
    for line in Path(out_file).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = max(total, int(line.split()[1]))
    return total


def callgrind_one(d, conf, port, path, n, daemon):
    """Runs `valgrind --tool=callgrind apache2 -X` on conf (in directory d),
    sends n sequential GETs on one keep-alive connection, stops Apache.
    Returns {"apache": Ir of the -X process, "daemon": Ir summed over the
    other processes, "uid": (ruid, euid) of the -X process, "daemon_pids",
    "daemon_uids"}."""
    out_dir = d / "out"
    out_dir.mkdir(mode=0o755)
    # Callgrind creates the -X process's output file (mode 0600) when it
    # starts, as root, and writes it at exit, when Apache runs as nobody:
    # it is made writable before the stop. A forked daemon creates its own
    # at exit, as nobody: the directory belongs to nobody.
    os.chown(out_dir, *uid_gid())
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/callgrind.%p.out",
           "--dump-instr=no", "--vgdb=no", "--trace-children=yes",
           HTTPD, "-X", "-f", str(conf), "-d", str(d)]
    vlog = open(d / "valgrind.log", "wb")
    proc = subprocess.Popen(cmd, stdout=vlog, stderr=subprocess.STDOUT, start_new_session=True)
    seen = set()
    try:
        wait_http(port, path, 600, proc=proc)
        uid = uids_of(proc.pid)
        daemons = [p for p in process_tree(proc.pid) if p != proc.pid]
        seen.update(daemons)
        if daemon and not daemons:
            raise RuntimeError(f"no daemon process under the -X process {proc.pid} ({d}/error_log)")
        daemon_uids = [uids_of(p) for p in daemons]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(n):
            conn.request("GET", path)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or expected_body(path)(body):
                raise RuntimeError(f"callgrind run: {path} answered {r.status} {body[:80]!r}")
        conn.close()
        seen.update(process_tree(proc.pid))
        for f in out_dir.iterdir():
            os.chmod(f, 0o666)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
        # The daemons end after the -X process (SIGTERM, then they write).
        deadline = time.time() + 120
        while time.time() < deadline and any(pid_alive(p) for p in seen):
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            kill_tree(process_tree(proc.pid))
            proc.wait()
        left = [p for p in seen if pid_alive(p)]
        if left:
            kill_tree(left)
        vlog.close()
    res = {"apache": 0, "daemon": 0, "uid": uid, "daemon_pids": sorted(seen - {proc.pid}),
           "daemon_uids": daemon_uids}
    files = sorted(out_dir.glob("callgrind.*.out"))
    for f in files:
        pid = int(f.name.split(".")[1])
        ir = callgrind_total(f)
        if ir == 0:
            raise RuntimeError(f"callgrind wrote no figures for pid {pid} ({f}; see {d}/valgrind.log)")
        res["apache" if pid == proc.pid else "daemon"] += ir
    if not res["apache"]:
        raise RuntimeError(f"callgrind wrote no output for the -X process ({d}/valgrind.log)")
    if daemon and not res["daemon"]:
        raise RuntimeError(f"callgrind wrote no output for the daemon process ({d}/valgrind.log)")
    return res


def uid_gid():
    import grp
    import pwd
    return pwd.getpwnam(USER).pw_uid, grp.getgrnam(GROUP).gr_gid


def run_callgrind(work, docroot, app, configs, n1, n2, repeats, base_port, jobs=1):
    """Measures every Config `repeats` times with N1 and N2 requests; jobs > 1
    runs that many valgrind sessions at once (the smoke run: the counts
    barely move, the wall time halves). Returns {key: result}."""
    tasks = []
    for cfg in configs:
        for rep in range(repeats):
            for which, n in (("n1", n1), ("n2", n2)):
                tasks.append((cfg, rep, which, n, base_port + len(tasks)))

    def one(task):
        cfg, rep, which, n, port = task
        d = work / f"callgrind-{cfg.key}" / f"{rep}.{which}"
        d.mkdir(parents=True)
        for p in (d, d.parent):
            os.chmod(p, 0o755)
        conf = d / "httpd.conf"
        conf.write_text(apache_conf(d, port, docroot, cfg.module, app, VENV if cfg.module else None,
                                    daemon=DAEMON_OPTIONS if cfg.daemon else None))
        t0 = time.time()
        r = callgrind_one(d, conf, port, cfg.path, n, cfg.daemon)
        r["seconds"] = time.time() - t0
        return r

    log(f"  {len(tasks)} valgrind sessions ({len(configs)} configurations x {repeats} repeat(s) x "
        f"N={n1},{n2}), {jobs} at a time ...")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        outs = list(ex.map(one, tasks))
    by = {(t[0].key, t[1], t[2]): o for t, o in zip(tasks, outs)}
    results = {}
    for cfg in configs:
        samples = []
        for rep in range(repeats):
            a, b = by[(cfg.key, rep, "n1")], by[(cfg.key, rep, "n2")]
            s = {
                "ir_n1": a["apache"] + a["daemon"], "ir_n2": b["apache"] + b["daemon"],
                "apache_per_request": (b["apache"] - a["apache"]) / (n2 - n1),
                "daemon_per_request": (b["daemon"] - a["daemon"]) / (n2 - n1),
            }
            s["per_request"] = s["apache_per_request"] + s["daemon_per_request"]
            samples.append(s)
            split = (f" (Apache -X {s['apache_per_request']:,.0f} + daemon {s['daemon_per_request']:,.0f})"
                     if cfg.daemon else "")
            log(f"  callgrind {cfg.key} (repeat {rep + 1}/{repeats}): Ir(N={n1})={s['ir_n1']:,}  "
                f"Ir(N={n2})={s['ir_n2']:,}  -> {s['per_request']:,.0f} per request{split}"
                f"  (uid {b['uid'][0]}/{b['uid'][1]}, {a['seconds'] + b['seconds']:.0f}s)")
            if b["uid"][1] == 0:
                warn(f"callgrind {cfg.key}: Apache -X still runs as root (euid 0)")
            if any(u[1] == 0 for u in b["daemon_uids"]):
                warn(f"callgrind {cfg.key}: a daemon process runs as root (euid 0)")
            if cfg.daemon and s["daemon_per_request"] < 1000:
                raise RuntimeError(f"callgrind {cfg.key}: the daemon process took "
                                   f"{s['daemon_per_request']:,.0f} Ir per request: it did not serve them")
        results[cfg.key] = {
            "path": cfg.path,
            "daemon": cfg.daemon,
            "uid": list(by[(cfg.key, 0, "n2")]["uid"]),
            "samples": samples,
            "per_request": statistics.median(s["per_request"] for s in samples),
            "apache_per_request": statistics.median(s["apache_per_request"] for s in samples),
            "daemon_per_request": statistics.median(s["daemon_per_request"] for s in samples),
        }
    if "static" in results:
        static = results["static"]["per_request"]
        for key, r in results.items():
            if not r["daemon"]:
                r["module_per_request"] = r["per_request"] - static
    return results
