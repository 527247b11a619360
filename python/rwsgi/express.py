"""The ``rwsgi-express`` command installed by pip.

The package holds two files built by cargo (``setup.py``): the launcher
``rwsgi/rwsgi-express`` (crate ``wrapper/``) and the Apache module
``rwsgi/mod_rwsgi.so`` (the root crate). The launcher looks for the module
in its own directory first, so it finds the packaged one without
``RWSGI_MODULE`` (``wrapper/src/module.rs``).

The command replaces itself with the launcher (``execve``), passing its
arguments through unchanged, with ``VIRTUAL_ENV`` set to the environment
this package is installed in (``sys.prefix``) when that is a virtualenv:
the launcher's ``--python-home`` defaults to ``$VIRTUAL_ENV``, so the
served application uses this virtualenv whether or not it is activated, as
``mod_wsgi-express`` uses ``sys.prefix``. Outside a virtualenv
``VIRTUAL_ENV`` is removed, and the launcher's default is the prefix of the
Python the module was built for, which is then ``sys.prefix`` too.
"""

import os
import sys
from pathlib import Path

#: Directory of this package, where ``setup.py`` puts the built files.
PACKAGE_DIR = Path(__file__).resolve().parent

#: File name of the launcher executable inside the package.
LAUNCHER_FILE = "rwsgi-express"

#: File name of the Apache module inside the package.
MODULE_FILE = "mod_rwsgi.so"


class NotBuiltError(RuntimeError):
    """A file cargo builds is missing from the package (RWSGI0123): the
    package was imported from the source tree, or its installation is
    incomplete. The message names the file and how to install."""


def _packaged(name):
    path = PACKAGE_DIR / name
    if not path.is_file():
        raise NotBuiltError(
            f"RWSGI0123: {path} does not exist: this rwsgi package was not built "
            "(imported from a source tree?) or its installation is incomplete; "
            "install it with `pip install --no-cache-dir rwsgi` or "
            "`pip install --no-cache-dir .` from a clone (docs/install.md)"
        )
    return str(path)


def launcher_path():
    """Absolute path of the packaged ``rwsgi-express`` executable.

    Raises :class:`NotBuiltError` (RWSGI0123) when it is missing."""
    return _packaged(LAUNCHER_FILE)


def module_path():
    """Absolute path of the packaged ``mod_rwsgi.so``, the file
    ``rwsgi-express module-config`` names in ``LoadModule``.

    Raises :class:`NotBuiltError` (RWSGI0123) when it is missing."""
    return _packaged(MODULE_FILE)


def python_home():
    """The Python home of applications served through this package:
    ``sys.prefix`` (the virtualenv when installed in one)."""
    return sys.prefix


def launcher_environ(environ):
    """The environment to run the launcher with: a copy of ``environ``
    (a mapping of str to str) with ``VIRTUAL_ENV`` set to ``sys.prefix``
    inside a virtualenv (``sys.prefix != sys.base_prefix``), and removed
    outside one. Returns a new dict; ``environ`` is not changed."""
    env = dict(environ)
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    else:
        env.pop("VIRTUAL_ENV", None)
    return env


def exec_launcher(args):
    """Replaces this process with ``rwsgi-express ARGS`` (``args``: a list
    of str, the launcher's command line without the program name), in the
    environment of :func:`launcher_environ`. Does not return. Exits with
    status 1 and a message on stderr when the launcher is missing
    (RWSGI0123) or cannot be executed."""
    try:
        launcher = launcher_path()
    except NotBuiltError as e:
        sys.exit(f"rwsgi-express: {e}")
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(launcher, [LAUNCHER_FILE, *args], launcher_environ(os.environ))
    except OSError as e:
        sys.exit(f"rwsgi-express: cannot execute {launcher}: {e}")


def main():
    """Entry point of the ``rwsgi-express`` console script and of
    ``python -m rwsgi``: runs the launcher with ``sys.argv[1:]``."""
    exec_launcher(sys.argv[1:])
