"""Django integration: with ``"rwsgi.server"`` in ``INSTALLED_APPS``,
``python manage.py runmodwsgi [rwsgi-express start-server options]`` serves
the project through Apache and mod_rwsgi, as ``mod_wsgi.server``'s command
of the same name does (``management/commands/runmodwsgi.py``)."""
