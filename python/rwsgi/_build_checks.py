"""Checks ``setup.py`` runs before cargo, so that a missing system package
is reported in pip's output as one line naming the Debian package, instead
of as a build-script panic deep in cargo's output. Used at build time only
(the module is shipped in the package so that it is in the sdist).

Each check raises :class:`PrerequisiteError` with an RWSGI id
(docs/errors.md): RWSGI0120 apxs, RWSGI0121 the Python development files,
RWSGI0122 libclang.
"""

import glob
import os
import subprocess


class PrerequisiteError(Exception):
    """Something the build needs is missing; the message says what, where
    it was looked for, and which package provides it."""


def check_apxs(apxs):
    """Checks that ``apxs`` (a command name or path, from ``$APXS`` or
    ``apxs``) runs and that ``apxs -q INCLUDEDIR`` names a directory
    holding ``httpd.h``. Returns that directory. Raises
    :class:`PrerequisiteError` (RWSGI0120) otherwise."""
    hint = (
        "it comes with Apache's development files (Debian: apt-get install apache2-dev), "
        "or set APXS to the apxs of the Apache to build for"
    )
    try:
        out = subprocess.run(
            [apxs, "-q", "INCLUDEDIR"], capture_output=True, text=True, check=False
        )
    except OSError as e:
        raise PrerequisiteError(f"RWSGI0120: cannot run apxs ({apxs}): {e.strerror}; {hint}") from e
    includedir = out.stdout.strip()
    if out.returncode != 0 or not includedir:
        raise PrerequisiteError(
            f"RWSGI0120: `{apxs} -q INCLUDEDIR` failed (exit status {out.returncode}: "
            f"{out.stderr.strip() or 'no output'}); {hint}"
        )
    if not os.path.isfile(os.path.join(includedir, "httpd.h")):
        raise PrerequisiteError(
            f"RWSGI0120: {includedir} (`{apxs} -q INCLUDEDIR`) has no httpd.h; {hint}"
        )
    return includedir


def check_libpython(config_vars, version):
    """Checks that the Python described by ``config_vars`` (its
    ``sysconfig.get_config_vars()``) was built with ``--enable-shared`` and
    that the library the module links with (``LIBDIR/LDLIBRARY``, e.g.
    ``/usr/lib/x86_64-linux-gnu/libpython3.11.so``) exists. ``version`` is
    its ``"X.Y"``, for the package name. Returns the library's path.
    Raises :class:`PrerequisiteError` (RWSGI0121) otherwise."""
    package = f"python{version}-dev"
    if str(config_vars.get("Py_ENABLE_SHARED") or 0) != "1":
        raise PrerequisiteError(
            f"RWSGI0121: this Python {version} was not built with --enable-shared: mod_rwsgi "
            "embeds Python in Apache and needs libpython as a shared library "
            f"(Debian's /usr/bin/python{version} has it; pyenv: "
            "PYTHON_CONFIGURE_OPTS=--enable-shared)"
        )
    libdir = config_vars.get("LIBDIR") or ""
    ldlibrary = config_vars.get("LDLIBRARY") or ""
    library = os.path.join(libdir, ldlibrary)
    if not libdir or not ldlibrary or not os.path.exists(library):
        raise PrerequisiteError(
            f"RWSGI0121: {library or 'LIBDIR/LDLIBRARY'} does not exist: the module links with "
            f"libpython, which comes with Python's development files "
            f"(Debian: apt-get install {package})"
        )
    return library


#: Where clang-sys (bindgen's loader of libclang) looks on Linux, after
#: ``$LIBCLANG_PATH`` and ``llvm-config --libdir``.
LIBCLANG_DIRS = (
    "/usr/local/lib*",
    "/usr/local/llvm*/lib*",
    "/usr/lib*",
    "/usr/lib*/*",
    "/usr/lib*/*/*",
    "/usr/lib/llvm*/lib*",
)

LIBCLANG_FILES = ("libclang.so", "libclang.so.*", "libclang-*.so", "libclang-*.so.*")


def find_libclang(environ, dirs=LIBCLANG_DIRS):
    """The first libclang shared library found where clang-sys looks:
    ``environ["LIBCLANG_PATH"]`` (a directory or a file), the output of
    ``llvm-config --libdir``, then the glob patterns ``dirs``. Returns its
    path, or ``None``."""
    candidates = []
    given = environ.get("LIBCLANG_PATH")
    if given:
        if os.path.isfile(given):
            return given
        candidates.append(given)
    try:
        out = subprocess.run(
            [environ.get("LLVM_CONFIG_PATH") or "llvm-config", "--libdir"],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(out.stdout.strip())
    except OSError:
        pass
    for pattern in dirs:
        candidates.extend(sorted(glob.glob(pattern)))
    for d in candidates:
        for name in LIBCLANG_FILES:
            found = sorted(glob.glob(os.path.join(glob.escape(d), name)))
            if found:
                return found[0]
    return None


def check_libclang(environ, dirs=LIBCLANG_DIRS):
    """Raises :class:`PrerequisiteError` (RWSGI0122) when
    :func:`find_libclang` finds nothing; returns the library found."""
    found = find_libclang(environ, dirs)
    if found is None:
        raise PrerequisiteError(
            "RWSGI0122: libclang not found (looked in $LIBCLANG_PATH, `llvm-config --libdir` and "
            f"{', '.join(dirs)}): the build reads Apache's headers with bindgen, which needs it "
            "(Debian: apt-get install libclang-dev), or set LIBCLANG_PATH"
        )
    return found
