"""setuptools script of the ``rwsgi`` Python package (docs/install.md).

``pip install .`` (or of the sdist) builds, with setuptools-rust and cargo,
the launcher ``rwsgi-express`` (crate ``wrapper/``) and the Apache module
``mod_rwsgi.so`` (the root crate) for the Python running pip and the
Apache whose ``apxs`` is found (``$APXS``, else ``apxs`` on PATH), and puts
both in the ``rwsgi`` package (``python/rwsgi/``), next to each other, where
the launcher finds the module.

Build environment given to cargo:

- ``RWSGI_PYTHON`` and ``PYO3_PYTHON`` (read by ``build.rs``, pyo3-ffi and
  ``wrapper/build.rs``): the interpreter running pip, ``sys.executable``
  with symbolic links resolved. A virtualenv's ``bin/python`` is a link to
  the interpreter it was made from; the module links that interpreter's
  libpython, and the virtualenv itself is chosen when the module runs
  (``WSGIPythonHome``, which ``rwsgi-express`` and ``module-config`` set to
  the virtualenv). Values set in pip's environment are replaced.
- Everything else is pip's environment: ``APXS``, ``CARGO_TARGET_DIR``
  (e.g. the ``target/`` of an existing ``scripts/build.sh`` build, which
  cargo then reuses), ``LIBCLANG_PATH``.

One cargo command builds both artifacts: ``cargo build --release
--workspace`` (the launcher's extension, with ``--workspace``), the same
command and environment as ``scripts/build.sh``, so that an existing build
is reused as it is. Building the module through its own setuptools-rust
extension would run ``cargo rustc`` on the root package alone, whose
dependency features differ from the workspace's (``syn``'s, through the
launcher's derive macros), which rebuilds the module and its dependencies.
The module is then copied from cargo's output directory.
"""

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup
from setuptools.errors import SetupError
from setuptools_rust import Binding, RustExtension
from setuptools_rust.build import build_rust

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent
PACKAGE = "rwsgi"
PACKAGE_SOURCE = ROOT / "python" / PACKAGE

#: The cdylib cargo builds (root crate ``mod_rwsgi``), and its name in the package.
CARGO_MODULE_FILE = "libmod_rwsgi.so"
MODULE_FILE = "mod_rwsgi.so"


def load_build_checks():
    """``python/rwsgi/_build_checks.py``, loaded by path (the package
    itself is not importable before it is built)."""
    spec = importlib.util.spec_from_file_location(
        "rwsgi_build_checks", PACKAGE_SOURCE / "_build_checks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cargo_version():
    """``[workspace.package] version`` of Cargo.toml: the package version."""
    with open(ROOT / "Cargo.toml", "rb") as f:
        return tomllib.load(f)["workspace"]["package"]["version"]


def build_python():
    """The interpreter the module is built for: ``sys.executable`` with
    symbolic links resolved (see the module documentation)."""
    return os.path.realpath(sys.executable)


def cargo_env():
    """pip's environment with ``RWSGI_PYTHON`` and ``PYO3_PYTHON`` set to
    :func:`build_python`."""
    python = build_python()
    return {**os.environ, "RWSGI_PYTHON": python, "PYO3_PYTHON": python}


class BuildRust(build_rust):
    """setuptools-rust's ``build_rust``, plus: the prerequisite checks
    before cargo runs (RWSGI0120-0122, shown by pip as ``error: ...``) and
    the copy of the module next to the launcher after it."""

    def run(self):
        checks = load_build_checks()
        version = "%d.%d" % sys.version_info[:2]
        try:
            checks.check_apxs(os.environ.get("APXS") or "apxs")
            checks.check_libpython(sysconfig.get_config_vars(), version)
            checks.check_libclang(os.environ)
        except checks.PrerequisiteError as e:
            raise SetupError(str(e)) from None
        super().run()

    def run_for_extension(self, ext):
        super().run_for_extension(ext)
        self.install_module(ext)

    def install_module(self, ext):
        """Copies cargo's ``libmod_rwsgi.so`` (built by the same ``cargo
        build --workspace`` as the launcher) into the package as
        ``mod_rwsgi.so``, through a temporary file and a rename (an Apache
        that has the old file mapped is not disturbed), mode 0755."""
        target_dir = Path(ext.metadata(quiet=True)["target_directory"])
        if isinstance(self.target, str):
            target_dir = target_dir / self.target
        profile = "debug" if self._is_debug_build(ext) else "release"
        built = target_dir / profile / CARGO_MODULE_FILE
        if not built.is_file():
            raise SetupError(f"cargo did not produce {built}")
        build_ext = self.get_finalized_command("build_ext")
        build_ext.inplace = self.inplace
        dest = Path(build_ext.get_ext_fullpath(f"{PACKAGE}.mod_rwsgi")).with_name(MODULE_FILE)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + "~")
        shutil.copyfile(built, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)


setup(
    version=cargo_version(),
    rust_extensions=[
        RustExtension(
            {"rwsgi-express": f"{PACKAGE}.rwsgi-express"},
            path="wrapper/Cargo.toml",
            binding=Binding.Exec,
            args=["--workspace"],
            rust_version=">=1.80",
            debug=False,
            env=cargo_env(),
        )
    ],
    cmdclass={"build_rust": BuildRust},
)
