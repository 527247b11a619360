"""rwsgi as a Python package: the mod_wsgi-compatible Apache module
``mod_rwsgi.so`` and its launcher ``rwsgi-express``, built for the Python
that installed them (``pip install``: docs/install.md).

What is here:

- :mod:`rwsgi.express`: where the packaged launcher and module are, and
  :func:`rwsgi.express.main`, the ``rwsgi-express`` command (also
  ``python -m rwsgi``).
- :mod:`rwsgi.server`: a Django application providing
  ``manage.py runmodwsgi``, as ``mod_wsgi.server`` does.
"""

from rwsgi.express import launcher_path, module_path, python_home

__all__ = ["launcher_path", "module_path", "python_home"]
