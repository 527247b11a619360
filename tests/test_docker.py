"""docker/Dockerfile: the image is built (both stages) and run like a user
would (`docker run -v DIR:/app -p ...`): the application in /app/wsgi.py is
served on the container's port 80 (published on 127.0.0.1 only), no
process in the container but Apache's parent runs as root (Apache's
children and the daemon running the application are www-data), the log
reaches `docker logs`, the HEALTHCHECK turns healthy, and `docker stop`'s
SIGTERM stops Apache before Docker's SIGKILL.

This machine has a Docker engine but no registry, so the two images the
Dockerfile starts from are made locally when missing, under the official
tags and labelled org.rwsgi.local-base (kept between runs, for speed):
debian:bookworm-slim by `debootstrap --variant=minbase` + `docker import`,
and rust:<RUST_VERSION>-bookworm by docker/test-base/rust.Dockerfile from
it and this machine's Rust toolchain. Containers here cannot verify
crates.io's certificate (a TLS-intercepting proxy), so the build context
(the repository's files, assembled in a temporary directory) gets the
crates from `cargo vendor` in docker/vendor, which the Dockerfile uses when
present. The test image and the build stage it leaves are removed at the
end; the stages that install Debian packages stay tagged
rwsgi-test-cache:runtime-deps and rwsgi-test-cache:build-deps (the layer
cache of the next run).

Skipped, with the reason printed, when `docker info` fails.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from conftest import REPO, free_port, wait_until

pytestmark = pytest.mark.timeout(2400)

DOCKERFILE = REPO / "docker" / "Dockerfile"
BASE_IMAGE = "debian:bookworm-slim"
LOCAL_LABEL = "org.rwsgi.local-base"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Stages of docker/Dockerfile kept between runs as rwsgi-test-cache:<stage>.
CACHE_REPO = "rwsgi-test-cache"
CACHED_STAGES = ("runtime-deps", "build-deps")

APP = '''\
import json
import os
import sys


def application(environ, start_response):
    print("rwsgi-docker-test: request for " + environ["PATH_INFO"], file=sys.stderr)
    body = json.dumps({"pid": os.getpid(), "uid": os.getuid(), "euid": os.geteuid(),
                       "path": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''

# Run inside the container: every process's pid, real/effective uid and
# command line (/proc/PID/status and cmdline: readable without ptrace rights,
# which the container's root lacks for other users' processes).
PROCESS_LIST = '''\
import json, os
out = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = open(f"/proc/{pid}/status").read()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode().strip()
    except OSError:
        continue
    uids = [int(x) for x in status.split("Uid:")[1].split()[:2]]
    out.append({"pid": int(pid), "uid": uids[0], "euid": uids[1], "cmd": cmd})
print(json.dumps(out))
'''


def docker(*args, check=True, timeout=600, input=None):
    """Runs `docker ARGS`; returns stdout+stderr text (asserts success if `check`)."""
    proc = subprocess.run(["docker", *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, input=input)
    out = proc.stdout.decode(errors="replace")
    if check:
        assert proc.returncode == 0, f"docker {' '.join(map(str, args))} failed:\n{out[-6000:]}"
    return out


def docker_unavailable():
    """None when `docker info` works, else the reason."""
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        proc = subprocess.run(["docker", "info"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"docker info failed: {e}"
    if proc.returncode != 0:
        return "docker info failed: " + proc.stdout.decode(errors="replace").strip()[-300:]
    return None


REASON = docker_unavailable()
if REASON:
    print(f"test_docker.py: skipped: {REASON}")
    pytestmark = [pytestmark, pytest.mark.skip(reason=REASON)]


def rust_tool(name):
    """Path of a Rust tool: on PATH, else in ~/.cargo/bin (rustup's place)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path.home() / ".cargo" / "bin"))
    if found is None:
        pytest.skip(f"{name} not found (on PATH or in ~/.cargo/bin)")
    return found


def image_exists(tag):
    return subprocess.run(["docker", "image", "inspect", tag], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def rust_image_tag():
    """rust:<RUST_VERSION default of docker/Dockerfile>-bookworm."""
    m = re.search(r"^ARG RUST_VERSION=(\S+)$", DOCKERFILE.read_text(), re.M)
    assert m, "docker/Dockerfile has no ARG RUST_VERSION=..."
    return f"rust:{m.group(1)}-bookworm"


def make_base_image(tmp):
    """debian:bookworm-slim from debootstrap --variant=minbase."""
    if shutil.which("debootstrap") is None:
        pytest.skip(f"{BASE_IMAGE} is not in the Docker engine and debootstrap is missing "
                    "(scripts/install-deps.sh installs it)")
    root = tmp / "rootfs"
    proc = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")[-4000:]
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    imp = subprocess.run(["docker", "import", "-c", 'CMD ["bash"]',
                          "-c", f"LABEL {LOCAL_LABEL}=debootstrap", "-", BASE_IMAGE],
                         stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    tar.stdout.close()
    assert tar.wait() == 0 and imp.returncode == 0, imp.stdout.decode(errors="replace")
    shutil.rmtree(root, ignore_errors=True)


def make_rust_image(tmp, tag):
    """rust:<v>-bookworm: the official image's layout with this machine's toolchain."""
    sysroot = Path(subprocess.run([rust_tool("rustc"), "--print", "sysroot"], stdout=subprocess.PIPE,
                                  check=True).stdout.decode().strip())
    version = subprocess.run([rust_tool("rustc"), "--version"], stdout=subprocess.PIPE,
                             check=True).stdout.decode().split()[1]
    rustup = rust_tool("rustup")
    ctx = tmp / "rust-context"
    name = f"{version}-x86_64-unknown-linux-gnu"
    toolchain = ctx / "rustup" / "toolchains" / name
    toolchain.mkdir(parents=True)
    for part in ("bin", "lib", "libexec", "etc"):       # not share/ (documentation)
        if (sysroot / part).exists():
            shutil.copytree(sysroot / part, toolchain / part, symlinks=True)
    (ctx / "rustup" / "settings.toml").write_text(
        f'version = "12"\ndefault_toolchain = "{name}"\nprofile = "minimal"\n'
        'auto_self_update = "disable"\n')
    bindir = ctx / "cargo" / "bin"
    bindir.mkdir(parents=True)
    shutil.copy2(os.path.realpath(rustup), bindir / "rustup")
    for proxy in ("cargo", "rustc", "rustdoc", "cargo-clippy", "clippy-driver", "cargo-fmt", "rustfmt"):
        (bindir / proxy).symlink_to("rustup")
    shutil.copy2(REPO / "docker" / "test-base" / "rust.Dockerfile", ctx / "Dockerfile")
    docker("build", "--force-rm", "-q", "-t", tag, ctx, timeout=1800)
    shutil.rmtree(ctx, ignore_errors=True)


def build_context(tmp):
    """The repository's files (tracked and new, not ignored) plus docker/vendor."""
    ctx = tmp / "context"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, stdout=subprocess.PIPE, check=True).stdout.split(b"\0")
    for rel in filter(None, (f.decode() for f in files)):
        src = REPO / rel
        if src.is_file():
            (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, ctx / rel)
    proc = subprocess.run([rust_tool("cargo"), "vendor", "--locked", "-q", str(ctx / "docker" / "vendor")],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")
    return ctx


@pytest.fixture(scope="module")
def image():
    """Tag of the image built from docker/Dockerfile (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="rwsgi-docker-", dir="/var/tmp"))
    tag = f"rwsgi-test:{uuid.uuid4().hex[:12]}"
    try:
        if not image_exists(BASE_IMAGE):
            make_base_image(tmp)
        rust_tag = rust_image_tag()
        if not image_exists(rust_tag):
            make_rust_image(tmp, rust_tag)
        ctx = build_context(tmp)
        # The two package-installing stages, tagged so that removing the
        # test image keeps them as the layer cache of the next run.
        for stage in CACHED_STAGES:
            docker("build", "--force-rm", "-q", "--target", stage, "-t", f"{CACHE_REPO}:{stage}",
                   "-f", "docker/Dockerfile", ctx, timeout=1800)
        out = docker("build", "--force-rm", "--label", "org.rwsgi.test=1", "-f", "docker/Dockerfile",
                     "-t", tag, ctx, timeout=2400)
        print(out[-1500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    yield tag
    docker("rmi", "-f", tag, check=False)
    # The build stage the legacy builder leaves behind (an untagged image).
    for image_id in docker("images", "-q", "--filter", "dangling=true",
                           "--filter", "label=org.rwsgi.stage=build").split():
        docker("rmi", "-f", image_id, check=False)


def test_image_serves_app_as_www_data_and_stops_on_sigterm(image, ws):
    app = ws.new_dir("docker-app")
    (app / "wsgi.py").write_text(APP)
    (app / "wsgi.py").chmod(0o644)
    port = free_port()
    name = f"rwsgi-test-{uuid.uuid4().hex[:12]}"
    docker("run", "-d", "--name", name, "-v", f"{app}:/app:ro", "-p", f"127.0.0.1:{port}:80",
           "--health-interval", "2s", image)
    try:
        r = wait_until(lambda: _get(port, "/hello"), timeout=60)
        assert r is not None and r.status_code == 200, docker("logs", name, check=False)
        answer = r.json()
        assert answer["path"] == "/hello"
        www = json.loads(docker("exec", name, "python3", "-c",
                                "import pwd, json; print(json.dumps(pwd.getpwnam('www-data').pw_uid))"))
        assert (answer["uid"], answer["euid"]) == (www, www), answer

        procs = json.loads(docker("exec", name, "python3", "-c", PROCESS_LIST))
        by_pid = {p["pid"]: p for p in procs}
        # PID 1 is Apache's parent (rwsgi-express exec'd apachectl, which exec'd httpd).
        assert "apache2" in by_pid[1]["cmd"] and by_pid[1]["uid"] == 0, procs
        assert by_pid[answer["pid"]]["uid"] == www, procs
        daemons = [p for p in procs if p["cmd"].startswith("(wsgi:")]
        # The daemon process (rwsgi-express's default daemon mode) answered.
        assert daemons and answer["pid"] in [p["pid"] for p in daemons], procs
        for p in procs:
            if p["pid"] == 1 or "import json, os" in p["cmd"]:
                continue                 # the root parent; this very listing
            assert (p["uid"], p["euid"]) == (www, www), p

        assert wait_until(lambda: docker("inspect", "-f", "{{.State.Health.Status}}", name).strip()
                          == "healthy", timeout=60), docker("inspect", name)
        assert "rwsgi-docker-test: request for /hello" in docker("logs", name)

        docker("stop", "-t", "10", name, timeout=120)
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name))
        # 137 would be Docker's SIGKILL after the 10 s: Apache ended on SIGTERM.
        assert state["ExitCode"] == 0 and not state["OOMKilled"], state
        assert "caught SIGTERM, shutting down" in docker("logs", name)
    finally:
        docker("rm", "-f", name, check=False)


def _get(port, path):
    try:
        return requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
    except requests.RequestException:
        return None


DERIVED_APP = '''\
import sys

import derived_marker


def application(environ, start_response):
    body = (sys.prefix + " " + derived_marker.GREETING).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def test_derived_image_uses_its_virtualenv(image, ws):
    """docs/install.md's derived image: a virtualenv at /venv named by
    VIRTUAL_ENV is the application's Python home (a module placed in its
    site-packages stands in for `pip install -r requirements.txt`, which
    needs PyPI)."""
    ctx = ws.new_dir("docker-derived")
    (ctx / "wsgi.py").write_text(DERIVED_APP)
    (ctx / "wsgi.py").chmod(0o644)
    (ctx / "Dockerfile").write_text(f"""\
FROM {image}
RUN python3 -m venv --without-pip /venv \\
    && echo 'GREETING = "from the venv"' > /venv/lib/python3.11/site-packages/derived_marker.py
ENV VIRTUAL_ENV=/venv
COPY wsgi.py /app/wsgi.py
""")
    tag = f"{image}-derived"
    name = f"rwsgi-test-{uuid.uuid4().hex[:12]}"
    docker("build", "--force-rm", "-q", "-t", tag, ctx)
    try:
        port = free_port()
        docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", tag)
        r = wait_until(lambda: _get(port, "/"), timeout=60)
        assert r is not None and r.status_code == 200, docker("logs", name, check=False)
        assert r.text == "/venv from the venv"
        docker("stop", "-t", "10", name, timeout=120)
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", "-f", tag, check=False)
