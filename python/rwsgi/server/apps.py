"""Django application configuration of :mod:`rwsgi.server`."""

from django.apps import AppConfig


class RwsgiServerConfig(AppConfig):
    """The ``rwsgi.server`` application. Its label is ``rwsgi_server`` so
    that it cannot clash with a project application called ``server``."""

    name = "rwsgi.server"
    label = "rwsgi_server"
    verbose_name = "rwsgi (Apache/mod_rwsgi server)"
