"""The Debian package libapache2-mod-rwsgi, built by cargo-deb
(packaging/debian/build-deb.sh), installed with dpkg on this machine and
serving a site through the SYSTEM Apache (Debian's /etc/apache2 layout,
apache2ctl): `a2enmod wsgi`, a site in sites-available with WSGIScriptAlias
and a WSGIDaemonProcess running as www-data, enabled with a2ensite. The
system Apache listens only on 127.0.0.1:<free high port>.

Root only. Skipped when the system Apache is already running, or when a
package this one conflicts with (or this one) is installed: the test never
changes what it did not make. Everything it touches under /etc/apache2,
/var/lib/apache2 and /var/log/apache2 is snapshotted first and restored at
the end (the check that the machine is as it was is part of the test); the
package is purged, the apache2 package stays installed.
"""

import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import REPO, child_pids, free_port, pid_alive, wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg -i and the system Apache need root"),
    pytest.mark.skipif(shutil.which("dpkg") is None or shutil.which("apache2ctl") is None,
                       reason="needs dpkg and Debian's apache2 package"),
    pytest.mark.timeout(1800),
]

PACKAGE = "libapache2-mod-rwsgi"
CONFLICTING = (PACKAGE, "libapache2-mod-wsgi-py3", "libapache2-mod-wsgi")
SITE = "rwsgi-deb-test"
# The trees the package, a2enmod/a2ensite and the system Apache write to.
# apache2ctl makes the run and lock directories: removed again if new.
STATE_ROOTS = (Path("/etc/apache2"), Path("/var/lib/apache2"), Path("/var/log/apache2"),
               Path("/var/run/apache2"), Path("/var/lock/apache2"))
PID_FILE = Path("/var/run/apache2/apache2.pid")

APP = '''\
import json
import os

import mod_wsgi


def application(environ, start_response):
    body = json.dumps({
        "pid": os.getpid(),
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "process_group": mod_wsgi.process_group,
        "script_name": environ["SCRIPT_NAME"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def sh(*cmd, check=True, timeout=300, env=None):
    """Runs a command; returns its combined output (asserts success if `check`)."""
    proc = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, env=env)
    out = proc.stdout.decode(errors="replace")
    if check:
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{out}"
    return out


def installed(package):
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return proc.returncode == 0 and b"install ok installed" in proc.stdout


def system_apache_pid():
    """The pid in the system Apache's pid file if that process lives, else None."""
    try:
        pid = int(PID_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


class Snapshot:
    """Every file, symlink and directory below `roots`: type, mode, owner,
    link target or content. `restore()` puts the trees back exactly
    (removes what was added, rewrites what changed); `diff()` lists what
    differs now."""

    def __init__(self, roots):
        self.roots = [r for r in roots if r.exists()]
        self.absent_roots = [r for r in roots if not r.exists()]
        self.entries = {}
        for root in self.roots:
            self.entries.update(self._scan(root))

    @staticmethod
    def _entry(path):
        st = os.lstat(path)
        owner = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(path), owner)
        if stat.S_ISDIR(st.st_mode):
            return ("dir", None, owner)
        return ("file", Path(path).read_bytes(), owner)

    def _scan(self, root):
        out = {str(root): self._entry(root)}
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                out[p] = self._entry(p)
        return out

    def current(self):
        now = {}
        for root in self.roots + [r for r in self.absent_roots if r.exists()]:
            now.update(self._scan(root))
        return now

    def diff(self):
        now = self.current()
        return sorted(p for p in set(now) | set(self.entries) if now.get(p) != self.entries.get(p))

    def restore(self):
        now = self.current()
        # Added paths, deepest first.
        for p in sorted(set(now) - set(self.entries), key=len, reverse=True):
            if now[p][0] == "dir":
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
        for p in sorted(self.entries, key=len):
            kind, data, (uid, gid, mode) = self.entries[p]
            if now.get(p) == self.entries[p]:
                continue
            if os.path.lexists(p) and (kind != "dir" or not os.path.isdir(p) or os.path.islink(p)):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
            if kind == "dir":
                os.makedirs(p, exist_ok=True)
            elif kind == "link":
                os.symlink(data, p)
            else:
                Path(p).write_bytes(data)
            os.lchown(p, uid, gid)
            if kind != "link":
                os.chmod(p, mode)


def uids_of(pid):
    """(real, effective, saved, filesystem) uids of `pid` from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return tuple(int(x) for x in line.split()[1:5])
    raise AssertionError(f"no Uid line for {pid}")


@pytest.fixture(scope="module")
def deb(binaries):
    """Path of the .deb that packaging/debian/build-deb.sh makes from target/release."""
    out = sh("bash", REPO / "packaging" / "debian" / "build-deb.sh", "--no-build", timeout=1500)
    path = Path(out.strip().splitlines()[-1])
    assert path.name.startswith(f"{PACKAGE}_") and path.name.endswith("_amd64.deb"), out
    return path


def test_deb_metadata(deb):
    control = sh("dpkg-deb", "-f", deb)
    fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line and not line.startswith(" "))
    assert fields["Package"] == PACKAGE
    api = [p.strip() for p in sh("dpkg-query", "-W", "-f=${Provides}", "apache2-bin").split(",")
           if p.strip().startswith("apache2-api-") and p.strip()[len("apache2-api-"):].isdigit()]
    depends = [d.strip() for d in fields["Depends"].split(",")]
    assert api and api[0] in depends, (api, depends)
    assert any(d.startswith("libpython3.11") for d in depends), depends
    for field in ("Conflicts", "Replaces", "Provides"):
        assert "libapache2-mod-wsgi-py3" in [x.strip() for x in fields[field].split(",")], fields
    files = sh("dpkg-deb", "-c", deb)
    for path in ("./usr/lib/apache2/modules/mod_rwsgi.so", "./usr/bin/rwsgi-express",
                 "./etc/apache2/mods-available/wsgi.load", "./etc/apache2/mods-available/wsgi.conf"):
        assert path in files, files
    assert "/etc/apache2/mods-available/wsgi.load" in sh("dpkg-deb", "-I", deb, "conffiles")


def test_dpkg_install_system_apache_site_and_purge(deb, ws):
    if system_apache_pid() is not None:
        pytest.skip("the system Apache is running: not touching it")
    present = [p for p in CONFLICTING if installed(p)]
    if present:
        pytest.skip(f"already installed: {', '.join(present)} (the test removes only what it installs)")
    www = pwd.getpwnam("www-data")
    app_dir = ws.new_dir("deb-site")
    script = app_dir / "app.wsgi"
    script.write_text(APP)
    script.chmod(0o644)
    port = free_port()
    snapshot = Snapshot(STATE_ROOTS)
    started = False
    try:
        out = sh("dpkg", "-i", deb)
        assert "a2enmod wsgi" in out, out    # postinst's hint
        assert Path("/usr/lib/apache2/modules/mod_rwsgi.so").is_file()
        # rwsgi-express works from /usr/bin: it finds the installed module.
        env = {k: v for k, v in os.environ.items() if k not in ("RWSGI_MODULE", "VIRTUAL_ENV")}
        cfg = sh("/usr/bin/rwsgi-express", "module-config", env=env)
        assert 'LoadModule wsgi_module "/usr/lib/apache2/modules/mod_rwsgi.so"' in cfg, cfg

        sh("a2enmod", "wsgi")
        # Only 127.0.0.1:<port>: no Listen 80 / 443, no default site.
        Path("/etc/apache2/ports.conf").write_text(f"Listen 127.0.0.1:{port}\n")
        sh("a2dissite", "000-default")
        Path(f"/etc/apache2/sites-available/{SITE}.conf").write_text(f"""\
<VirtualHost 127.0.0.1:{port}>
    ServerName localhost
    WSGIDaemonProcess {SITE} user=www-data group=www-data processes=1 threads=2 display-name=%{{GROUP}}
    WSGIProcessGroup {SITE}
    WSGIApplicationGroup %{{GLOBAL}}
    WSGIScriptAlias /app "{script}"
    <Directory "{app_dir}">
        Require all granted
    </Directory>
</VirtualHost>
""")
        sh("a2ensite", SITE)
        sh("apache2ctl", "configtest")
        # apache2ctl itself starts httpd (on a systemd machine it would
        # otherwise hand over to `systemctl start apache2`).
        sh("apache2ctl", "start", env={**os.environ, "APACHE_STARTED_BY_SYSTEMD": "1"})
        started = True
        parent = wait_until(system_apache_pid, timeout=30)
        assert parent, "the system Apache wrote no pid file"

        r = wait_until(lambda: _get(port), timeout=30)
        assert r is not None and r.status_code == 200, (r and r.text, _error_log())
        body = r.json()
        assert body["process_group"] == SITE and body["script_name"] == "/app", body
        # The daemon (not an Apache child) answered, as www-data throughout.
        assert body["pid"] in child_pids(parent), (body, child_pids(parent))
        assert (body["uid"], body["euid"]) == (www.pw_uid, www.pw_uid), body
        assert uids_of(body["pid"]) == (www.pw_uid,) * 4
        for pid in child_pids(parent):
            assert uids_of(pid) == (www.pw_uid,) * 4, pid
        assert uids_of(parent)[0] == 0
    finally:
        if started:
            parent = system_apache_pid()
            sh("apache2ctl", "stop", check=False)
            if parent:
                assert wait_until(lambda: not pid_alive(parent), timeout=30), "system Apache did not stop"
        sh("a2dissite", SITE, check=False)
        if installed(PACKAGE):
            out = sh("dpkg", "--purge", PACKAGE, check=False)
        else:
            out = ""
        removed_cleanly = not installed(PACKAGE)
        # The maintainer scripts disabled the module on removal.
        dangling = os.path.lexists("/etc/apache2/mods-enabled/wsgi.load")
        snapshot.restore()
        left = snapshot.diff()
    assert removed_cleanly, out
    assert not dangling, "dpkg --purge left mods-enabled/wsgi.load"
    assert not Path("/usr/lib/apache2/modules/mod_rwsgi.so").exists()
    assert installed("apache2")
    assert left == [], f"not restored: {left}"


def _get(port):
    try:
        r = requests.get(f"http://127.0.0.1:{port}/app", timeout=10)
    except requests.RequestException:
        return None
    return r if r.status_code != 503 else None


def _error_log():
    try:
        return Path("/var/log/apache2/error.log").read_text()[-4000:]
    except OSError as e:
        return repr(e)
