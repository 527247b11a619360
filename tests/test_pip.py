"""The pip route (docs/install.md): `pip install` of the working tree into a
fresh virtualenv made from Debian's /usr/bin/python3.11 builds mod_rwsgi.so
and rwsgi-express for that Python and the local apxs, and then, with nothing
else set up:

- `rwsgi-express start-server app.py` and `python -m rwsgi start-server
  app.py` serve a Flask application through the packaged module, with the
  virtualenv as the Python home;
- `rwsgi-express module-config` (and `python -m rwsgi module-config`) print
  the LoadModule / WSGIPythonHome lines of the virtualenv;
- `manage.py runmodwsgi` serves a Django project made by `django-admin
  startproject` (the settings module, WSGI_APPLICATION, STATIC_ROOT at
  STATIC_URL);
- a build without apxs fails with RWSGI0120 naming apache2-dev in pip's
  output.

The build reuses the repository's cargo target directory (CARGO_TARGET_DIR),
so after `scripts/build.sh` cargo finds everything fresh and the install
takes the time of pip's isolated build environment (printed). Flask and
Django come from PyPI (`pip --no-cache-dir`).

Pure logic (the build prerequisite checks, runmodwsgi's command line) is
tested here too, on the package's sources.
"""

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import types
from pathlib import Path

import pytest
import requests

from conftest import APACHE_GROUP, APACHE_USER, REPO, free_port, make_world_readable, port_open, wait_until

BASE_PYTHON = Path("/usr/bin/python3.11")
CARGO_HOME_BIN = Path.home() / ".cargo" / "bin"
PY_VERSION = "python3.11"
with open(REPO / "pyproject.toml", "rb") as _f:
    # What pip puts in the isolated build environment (markers apply).
    BUILD_REQUIRES = tuple(tomllib.load(_f)["build-system"]["requires"])

# The install (cargo finding a fresh build; longer after source changes) is
# part of the first test's set-up.
pytestmark = pytest.mark.timeout(900)

sys.path.insert(0, str(REPO / "python"))
from rwsgi import _build_checks  # noqa: E402


def build_env(extra=None):
    """The environment pip and the installed commands run with: cargo on
    PATH, the repository's target directory, and none of the variables that
    would choose another Python (setup.py sets RWSGI_PYTHON/PYO3_PYTHON
    itself; VIRTUAL_ENV must not be what gives the Python home)."""
    env = dict(os.environ)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "RWSGI_PYTHON", "PYO3_PYTHON",
                 "RWSGI_MODULE", "RWSGI_EXPRESS"):
        env.pop(name, None)
    if CARGO_HOME_BIN.is_dir():
        env["PATH"] = f"{CARGO_HOME_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["CARGO_TARGET_DIR"] = str(REPO / "target")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if extra:
        env.update(extra)
    return env


def run(cmd, env=None, timeout=600, cwd=None):
    proc = subprocess.run([str(c) for c in cmd], env=env or build_env(), cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, text=True)
    return proc


class PipVenv:
    """A fresh virtualenv with rwsgi installed by pip from the working tree."""

    def __init__(self, root):
        self.root = root
        self.path = root / "venv"
        self.python = self.path / "bin" / "python"
        self.express = self.path / "bin" / "rwsgi-express"
        self.site = self.path / "lib" / PY_VERSION / "site-packages"
        self.package = self.site / "rwsgi"

    def pip(self, *args, env=None):
        return run([self.python, "-m", "pip", *args], env=env)


@pytest.fixture(scope="module")
def venv():
    if os.geteuid() != 0:
        pytest.skip("the pip tests start Apache as root (children as nobody)")
    if not BASE_PYTHON.is_file():
        pytest.skip(f"{BASE_PYTHON} not found (Debian: apt-get install python3.11-venv)")
    if shutil.which("cargo", path=build_env()["PATH"]) is None:
        pytest.skip("cargo not found on PATH or in ~/.cargo/bin")
    root = Path(tempfile.mkdtemp(prefix="rwsgi-pip-", dir="/tmp"))
    root.chmod(0o755)
    v = PipVenv(root)
    try:
        made = run([BASE_PYTHON, "-m", "venv", v.path], timeout=120)
        assert made.returncode == 0, made.stdout
        started = time.monotonic()
        installed = v.pip("install", "--no-cache-dir", "-v", REPO)
        took = time.monotonic() - started
        assert installed.returncode == 0, installed.stdout[-6000:]
        compiled = [line.strip() for line in installed.stdout.splitlines()
                    if line.strip().startswith("Compiling ")]
        print(f"\ntest_pip: pip install of the working tree took {took:.1f} s; "
              f"cargo compiled {len(compiled)} crate(s){': ' if compiled else ''}"
              f"{', '.join(compiled)}")
        # The applications' packages, and the build tools for the tests
        # that build without isolation (the sdist; the missing apxs).
        deps = v.pip("install", "--no-cache-dir", "-q", "flask>=3,<4", "django>=5,<6",
                     "build", *BUILD_REQUIRES)
        assert deps.returncode == 0, deps.stdout[-4000:]
        make_world_readable(root)
        yield v
    finally:
        if os.environ.get("RWSGI_KEEP_TMP") == "1":
            print(f"\ntest_pip: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


class Foreground:
    """A server started in the foreground (start-server, runmodwsgi): the
    process it starts becomes Apache's parent, stopped by its pid."""

    def __init__(self, cmd, port, server_root, cwd, env=None):
        self.port = port
        self.server_root = server_root
        self.log = open(server_root.parent / f"{server_root.name}.out", "w+")
        self.proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env or build_env(),
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self):
        ready = wait_until(lambda: port_open(self.port) or self.proc.poll() is not None, 30)
        assert ready and self.proc.poll() is None, self.output()

    def get(self, path):
        return requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=30)

    def output(self):
        self.log.seek(0)
        text = self.log.read()
        error_log = self.server_root / "error_log"
        if error_log.is_file():
            text += "\n--- error_log ---\n" + error_log.read_text(errors="replace")[-6000:]
        return text

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), 10)
        self.log.close()


@pytest.fixture
def foreground():
    """The servers a test started (start_foreground), stopped afterwards."""
    started = []
    yield started
    for srv in started:
        srv.stop()


def start_foreground(started, cmd, server_root, cwd):
    """Starts `cmd --port PORT` (PORT free) in the foreground; returns the
    Foreground once it listens."""
    port = free_port()
    srv = Foreground([*cmd, "--port", str(port)], port, server_root, cwd)
    started.append(srv)
    srv.wait_ready()
    return srv


FLASK_APP = '''\
import sys

import flask
import mod_wsgi

application = flask.Flask(__name__)


@application.route("/")
def index():
    return {"prefix": sys.prefix, "flask": flask.__file__,
            "process_group": mod_wsgi.process_group}
'''


def module_config_lines(v):
    return (f'LoadModule wsgi_module "{v.package / "mod_rwsgi.so"}"\n'
            f'WSGIPythonHome "{v.path}"\n')


def test_packaged_files(venv):
    for name in ("mod_rwsgi.so", "rwsgi-express"):
        f = venv.package / name
        assert f.is_file() and os.access(f, os.X_OK), f
    assert venv.express.is_file()


@pytest.mark.parametrize("how", ["rwsgi-express", "python -m rwsgi"])
def test_module_config(venv, how):
    cmd = [venv.express] if how == "rwsgi-express" else [venv.python, "-m", "rwsgi"]
    # The virtualenv wins over an activated other one, as for mod_wsgi-express.
    out = run([*cmd, "module-config"], env=build_env({"VIRTUAL_ENV": sys.prefix}))
    assert out.returncode == 0, out.stdout
    assert out.stdout == module_config_lines(venv)


def test_python_m_rwsgi_is_the_launcher(venv):
    a = run([venv.express, "start-server", "--help"])
    b = run([venv.python, "-m", "rwsgi", "start-server", "--help"])
    assert a.returncode == b.returncode == 0, a.stdout + b.stdout
    assert a.stdout == b.stdout
    assert "--url-alias" in a.stdout
    bad = run([venv.python, "-m", "rwsgi", "start-server", "--no-such-option"])
    assert bad.returncode == 2 and "--no-such-option" in bad.stdout


@pytest.mark.parametrize("how", ["rwsgi-express", "python -m rwsgi"])
def test_flask_start_server(venv, foreground, how):
    app_dir = Path(tempfile.mkdtemp(prefix="flask-", dir=venv.root))
    (app_dir / "app.py").write_text(FLASK_APP)
    make_world_readable(app_dir)
    cmd = [venv.express] if how == "rwsgi-express" else [venv.python, "-m", "rwsgi"]
    server_root = app_dir / "server"
    srv = start_foreground(foreground, [*cmd, "start-server", "app.py",
                                        "--user", APACHE_USER, "--group", APACHE_GROUP,
                                        "--server-root", server_root], server_root, app_dir)
    r = srv.get("/")
    assert r.status_code == 200, srv.output()
    info = r.json()
    assert info["prefix"] == str(venv.path)
    assert info["process_group"] == "localhost:%d" % srv.port
    assert info["flask"] == str(venv.site / "flask" / "__init__.py")
    conf = (server_root / "httpd.conf").read_text()
    assert f'LoadModule wsgi_module "{venv.package / "mod_rwsgi.so"}"' in conf, conf[:3000]


SETTINGS_EXTRA = '''
# Added by tests/test_pip.py.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STATIC_ROOT = BASE_DIR / "collected-static"
INSTALLED_APPS += ["rwsgi.server"]
'''

SETTINGS_ALT = '''\
from .settings import *  # noqa: F401,F403

STATIC_URL = "/assets/"
'''

URLS_EXTRA = '''
# Added by tests/test_pip.py.
import sys

from django.conf import settings
from django.http import JsonResponse


def info(request):
    return JsonResponse({"settings": settings.SETTINGS_MODULE, "prefix": sys.prefix,
                         "static_url": settings.STATIC_URL})


urlpatterns += [path("info/", info)]
'''


@pytest.fixture(scope="module")
def django_project(venv):
    """A project made by `django-admin startproject pipsite`, with
    rwsgi.server installed, STATIC_ROOT set and filled by collectstatic
    (Django's admin files), an /info/ view, and settings_alt (another
    STATIC_URL)."""
    base = venv.root / "django"
    base.mkdir()
    made = run([venv.path / "bin" / "django-admin", "startproject", "pipsite", base])
    assert made.returncode == 0, made.stdout
    pkg = base / "pipsite"
    with open(pkg / "settings.py", "a") as f:
        f.write(SETTINGS_EXTRA)
    (pkg / "settings_alt.py").write_text(SETTINGS_ALT)
    with open(pkg / "urls.py", "a") as f:
        f.write(URLS_EXTRA)
    collected = run([venv.python, "manage.py", "collectstatic", "--noinput"], cwd=base)
    assert collected.returncode == 0, collected.stdout
    make_world_readable(base)
    return base


@pytest.mark.parametrize("settings_module,static_url", [
    (None, "/static/"),
    ("pipsite.settings_alt", "/assets/"),
])
def test_runmodwsgi(venv, django_project, foreground, settings_module, static_url):
    server_root = django_project / f"server-{settings_module or 'default'}"
    cmd = [venv.python, "manage.py", "runmodwsgi"]
    if settings_module:
        cmd.append(f"--settings={settings_module}")
    cmd += ["--user", APACHE_USER, "--group", APACHE_GROUP, "--server-root", server_root]
    srv = start_foreground(foreground, cmd, server_root, django_project)
    r = srv.get("/info/")
    assert r.status_code == 200, srv.output()
    assert r.json() == {"settings": settings_module or "pipsite.settings",
                        "prefix": str(venv.path), "static_url": static_url}
    static = django_project / "collected-static" / "admin" / "css" / "base.css"
    r = srv.get(f"{static_url}admin/css/base.css")
    assert r.status_code == 200, srv.output()
    assert r.content == static.read_bytes()
    # Served by Apache from STATIC_ROOT, not by Django (which has no static view).
    assert "text/css" in r.headers["Content-Type"]
    r = srv.get("/no-such-page/")
    assert r.status_code == 404


def test_runmodwsgi_setup_only_passes_options_through(venv, django_project):
    server_root = django_project / "server-setup-only"
    out = run([venv.python, "manage.py", "runmodwsgi", "--setup-only", "--port", "8123",
               "--user", APACHE_USER, "--group", APACHE_GROUP, "--server-root", server_root,
               "--url-alias", "/media", str(django_project)], cwd=django_project)
    assert out.returncode == 0, out.stdout
    conf = (server_root / "httpd.conf").read_text()
    assert "Listen 8123" in conf or ":8123" in conf, conf[:3000]
    # The static files alias first, then the one given on the command line.
    static = conf.index(f'Alias /static "{django_project / "collected-static"}"')
    media = conf.index(f'Alias /media "{django_project}"')
    assert static < media


def test_build_without_apxs_names_apache2_dev(venv):
    out = venv.pip("install", "--no-cache-dir", "--no-build-isolation", REPO,
                   env=build_env({"APXS": "/nonexistent/apxs"}))
    assert out.returncode != 0
    assert "RWSGI0120" in out.stdout and "apache2-dev" in out.stdout, out.stdout[-4000:]
    # The installed package is untouched.
    assert (venv.package / "mod_rwsgi.so").is_file()


# ---------------------------------------------------------------------------
# Pure logic on the package's sources (no build).
# ---------------------------------------------------------------------------

def test_check_apxs():
    with pytest.raises(_build_checks.PrerequisiteError, match="RWSGI0120.*apache2-dev"):
        _build_checks.check_apxs("/nonexistent/apxs")
    with pytest.raises(_build_checks.PrerequisiteError, match="RWSGI0120.*exit status"):
        _build_checks.check_apxs("false")
    if shutil.which("apxs"):
        assert (Path(_build_checks.check_apxs("apxs")) / "httpd.h").is_file()


def test_check_libpython(tmp_path):
    cfg = {"Py_ENABLE_SHARED": 1, "LIBDIR": str(tmp_path), "LDLIBRARY": "libpython3.11.so"}
    with pytest.raises(_build_checks.PrerequisiteError,
                       match=r"RWSGI0121: .*libpython3\.11\.so does not exist.*python3\.11-dev"):
        _build_checks.check_libpython(cfg, "3.11")
    (tmp_path / "libpython3.11.so").write_bytes(b"")
    assert _build_checks.check_libpython(cfg, "3.11") == str(tmp_path / "libpython3.11.so")
    with pytest.raises(_build_checks.PrerequisiteError, match="RWSGI0121: .*--enable-shared"):
        _build_checks.check_libpython(dict(cfg, Py_ENABLE_SHARED=0), "3.11")
    if BASE_PYTHON.is_file() and sys.executable.startswith("/usr/"):
        assert _build_checks.check_libpython(sysconfig.get_config_vars(), "3.11")


def test_check_libclang(tmp_path):
    env = {"LLVM_CONFIG_PATH": "/nonexistent/llvm-config"}
    with pytest.raises(_build_checks.PrerequisiteError, match="RWSGI0122.*libclang-dev"):
        _build_checks.check_libclang(env, dirs=(str(tmp_path / "*"),))
    (tmp_path / "llvm").mkdir()
    lib = tmp_path / "llvm" / "libclang-14.so.1"
    lib.write_bytes(b"")
    assert _build_checks.check_libclang(env, dirs=(str(tmp_path / "*"),)) == str(lib)
    assert _build_checks.check_libclang(dict(env, LIBCLANG_PATH=str(lib)), dirs=()) == str(lib)


@pytest.fixture
def runmodwsgi():
    pytest.importorskip("django")
    from rwsgi.server.management.commands import runmodwsgi as mod
    return mod


def settings(**kw):
    values = {"WSGI_APPLICATION": "site.wsgi.application", "BASE_DIR": "/srv/site",
              "MIDDLEWARE": [], "STATIC_URL": "/static/", "STATIC_ROOT": "/srv/static"}
    values.update(kw)
    return types.SimpleNamespace(**values)


def test_runmodwsgi_command_line(runmodwsgi):
    args = runmodwsgi.launcher_args(settings(), "site.settings", ["--port", "8080"])
    assert args == ["start-server", "--application-type", "module", "--callable-object",
                    "application", "--working-directory", "/srv/site",
                    "--url-alias", "/static", "/srv/static", "--port", "8080", "site.wsgi"]
    # The user's --working-directory wins; --pythonpath is passed on.
    args = runmodwsgi.launcher_args(settings(), "site.settings",
                                    ["--working-directory=/x"], pythonpath="/p")
    assert "/srv/site" not in args and args[-2:] == ["--working-directory=/x", "site.wsgi"]
    assert args[args.index("--python-path") + 1] == "/p"


def test_runmodwsgi_static_alias(runmodwsgi):
    assert runmodwsgi.static_alias(settings(STATIC_URL="/")) == ["/", "/srv/static"]
    assert runmodwsgi.static_alias(settings(STATIC_ROOT=None)) == []
    assert runmodwsgi.static_alias(settings(STATIC_URL="https://cdn.example/s/")) == []
    whitenoise = settings(MIDDLEWARE=[runmodwsgi.WHITENOISE_MIDDLEWARE])
    assert runmodwsgi.static_alias(whitenoise) == []


def test_runmodwsgi_working_directory_without_base_dir(runmodwsgi):
    s = settings()
    del s.BASE_DIR
    # The directory above the settings module's top-level package.
    assert Path(runmodwsgi.working_directory(s, "rwsgi.server")) == REPO / "python"


def test_runmodwsgi_needs_wsgi_application(runmodwsgi):
    from django.core.management.base import CommandError
    for bad in (None, "", "nodots"):
        with pytest.raises(CommandError, match="RWSGI0124"):
            runmodwsgi.wsgi_application(settings(WSGI_APPLICATION=bad))
    assert runmodwsgi.wsgi_application(settings()) == ("site.wsgi", "application")


def test_launcher_environ():
    from rwsgi import express
    env = express.launcher_environ({"VIRTUAL_ENV": "/elsewhere", "A": "1"})
    assert env["A"] == "1"
    if sys.prefix != sys.base_prefix:
        assert env["VIRTUAL_ENV"] == sys.prefix
    else:
        assert "VIRTUAL_ENV" not in env


def test_not_built_error():
    from rwsgi import express
    if (express.PACKAGE_DIR / express.LAUNCHER_FILE).exists():
        pytest.skip("the source tree has a built launcher")
    with pytest.raises(express.NotBuiltError, match="RWSGI0123"):
        express.launcher_path()
    out = run([sys.executable, "-m", "rwsgi", "--help"],
              env=build_env({"PYTHONPATH": str(REPO / "python")}))
    assert out.returncode == 1 and "RWSGI0123" in out.stdout


def test_sdist_holds_the_cargo_workspace(venv):
    """`python -m build --sdist` makes an sdist holding every tracked file
    cargo reads (installing that sdist is the same build, in another
    directory; docs/install.md)."""
    out_dir = venv.root / "sdist"
    made = run([venv.python, "-m", "build", "--sdist", "--no-isolation", "--outdir", out_dir,
                REPO])
    assert made.returncode == 0, made.stdout[-4000:]
    [sdist] = list(out_dir.glob("rwsgi-*.tar.gz"))
    import tarfile
    with tarfile.open(sdist) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    # README.md and docs/: rwsgi-express compiles them in (--enable-docs).
    tracked = run(["git", "-C", REPO, "ls-files", "Cargo.toml", "Cargo.lock", "build.rs",
                   "src", "core", "wrapper", "apache", "python", "setup.py", "pyproject.toml",
                   "README.md", "docs"])
    assert tracked.returncode == 0, tracked.stdout
    missing = [f for f in tracked.stdout.split() if f not in names]
    assert not missing, missing
    assert not any(n.startswith(("target/", "tests/")) for n in names)


def test_runmodwsgi_parser_keeps_launcher_options_in_order(runmodwsgi):
    parser = runmodwsgi.Command().create_parser("manage.py", "runmodwsgi")
    options = parser.parse_args(["--port", "8080", "--settings=site.other", "--url-alias",
                                 "/media", "/srv/media", "--verb", "-v", "2", "--setup-only"])
    # Django's options are Django's; everything else, abbreviations of
    # Django's long options included, is the launcher's, in order.
    assert options.settings == "site.other" and options.verbosity == 2
    assert options.express_args == ["--port", "8080", "--url-alias", "/media", "/srv/media",
                                    "--verb", "--setup-only"]
