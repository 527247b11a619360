"""``manage.py runmodwsgi``: serve this Django project with Apache and
mod_rwsgi, the work-alike of mod_wsgi's command of the same name
(``mod_wsgi/express/management/commands/runmodwsgi.py``).

What it does, as mod_wsgi's does:

- The application is ``settings.WSGI_APPLICATION`` (``package.module.name``),
  served as a module: ``--application-type module`` with the module and
  ``--callable-object name``. ``DJANGO_SETTINGS_MODULE`` (set by
  ``manage.py`` or ``--settings``) is in the environment Apache and the
  application inherit.
- ``--working-directory`` (which is also put on the Python path) defaults to
  ``settings.BASE_DIR``, else to the directory above the package of the
  settings module.
- Unless WhiteNoise's middleware is in ``MIDDLEWARE``, ``STATIC_URL`` is
  served from ``STATIC_ROOT`` by Apache (``--url-alias``, before any
  ``--url-alias`` given on the command line) when ``STATIC_URL`` is a path
  and ``STATIC_ROOT`` is set.
- Every other argument is an option of ``rwsgi-express start-server``
  (``rwsgi-express start-server --help``), passed through as given, e.g.
  ``manage.py runmodwsgi --port 8080 --user www-data --group www-data``.
  Django's own options (``--settings``, ``--pythonpath``, ``--verbosity``,
  ``--traceback``, ``--no-color``, ``--force-color``, ``--skip-checks``)
  must be spelt in full; ``--pythonpath`` is also given to the launcher as
  ``--python-path``.

Then the process becomes the launcher (``execve``), which becomes Apache in
the foreground (``--setup-only`` only writes the server root). The Python
home is the environment running ``manage.py`` (:mod:`rwsgi.express`).
"""

import os
import sys

from django.core.management.base import BaseCommand, CommandError

from rwsgi import express

WHITENOISE_MIDDLEWARE = "whitenoise.middleware.WhiteNoiseMiddleware"


def has_option(args, name):
    """Whether the command line ``args`` (list of str) gives the long
    option ``name`` (``--name VALUE`` or ``--name=VALUE``)."""
    return any(a == name or a.startswith(name + "=") for a in args)


def wsgi_application(settings):
    """``(module, callable)`` from ``settings.WSGI_APPLICATION``, e.g.
    ``("mysite.wsgi", "application")``. Raises ``CommandError``
    (RWSGI0124) when it is unset or not a dotted ``module.name``."""
    value = getattr(settings, "WSGI_APPLICATION", None)
    if not isinstance(value, str) or "." not in value.strip(".") or not value.strip():
        raise CommandError(
            f"RWSGI0124: settings.WSGI_APPLICATION is {value!r}: runmodwsgi needs the dotted "
            "path of the project's WSGI application, e.g. 'mysite.wsgi.application'"
        )
    module, _, name = value.rpartition(".")
    return module, name


def working_directory(settings, settings_module):
    """The default ``--working-directory``: ``settings.BASE_DIR`` when it is
    set, else the directory above the top-level package of
    ``settings_module`` (the dotted name of the settings module, which must
    be imported)."""
    base_dir = getattr(settings, "BASE_DIR", None)
    if base_dir:
        return str(base_dir)
    root = sys.modules[settings_module.split(".")[0]]
    return os.path.dirname(os.path.dirname(os.path.abspath(root.__file__)))


def static_alias(settings):
    """``[URL-PATH, DIRECTORY]`` for Apache to serve ``STATIC_ROOT`` at
    ``STATIC_URL`` (without its trailing slash; ``/`` stays ``/``), or
    ``[]`` when WhiteNoise serves static files, ``STATIC_URL`` is not a
    path on this server (empty, or a full URL) or ``STATIC_ROOT`` is
    unset."""
    middleware = getattr(settings, "MIDDLEWARE", None)
    if middleware is None:
        middleware = getattr(settings, "MIDDLEWARE_CLASSES", [])
    if WHITENOISE_MIDDLEWARE in middleware:
        return []
    static_url = str(getattr(settings, "STATIC_URL", None) or "")
    static_root = str(getattr(settings, "STATIC_ROOT", None) or "")
    if not static_url.startswith("/") or not static_root:
        return []
    return [static_url.rstrip("/") or "/", static_root]


def launcher_args(settings, settings_module, express_args, pythonpath=None):
    """The ``rwsgi-express`` command line (list of str, without the
    program name) that serves the project: ``start-server`` with the
    application, the working directory, the static files alias and
    ``--python-path pythonpath`` (when given) in front of ``express_args``
    (the user's launcher options), and the WSGI module last."""
    module, callable_object = wsgi_application(settings)
    args = [
        "start-server",
        "--application-type",
        "module",
        "--callable-object",
        callable_object,
    ]
    if not has_option(express_args, "--working-directory"):
        args += ["--working-directory", working_directory(settings, settings_module)]
    alias = static_alias(settings)
    if alias:
        args += ["--url-alias", *alias]
    if pythonpath:
        args += ["--python-path", str(pythonpath)]
    args += express_args
    args.append(module)
    return args


class Command(BaseCommand):
    """``runmodwsgi``: see the module documentation."""

    help = (
        "Serves this project with Apache and mod_rwsgi (rwsgi-express start-server). "
        "Options not listed here are rwsgi-express start-server options, passed "
        "through: see `rwsgi-express start-server --help`."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        """Django's parser for its own options; every argument it does not
        know is kept, in order, for the launcher (``express_args``), both
        from the command line and from ``call_command("runmodwsgi",
        "--port", "8080")``. Abbreviated options are off, so a launcher
        option is never taken for a prefix of one of Django's."""
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.allow_abbrev = False
        parse_known_args = parser.parse_known_args

        def parse_args(args=None, namespace=None):
            options, rest = parse_known_args(args, namespace)
            options.express_args = rest
            return options

        parser.parse_args = parse_args
        return parser

    def handle(self, *args, **options):
        from django.conf import settings

        settings_module = os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE
        express_args = list(options.get("express_args") or [])
        argv = launcher_args(settings, settings_module, express_args, options.get("pythonpath"))
        express.exec_launcher(argv)
