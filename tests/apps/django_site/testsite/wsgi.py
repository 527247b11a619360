"""WSGI entry point of the Django test site (served directly as the script;
the directory above this package is put on sys.path by --python-path)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsite.settings")

application = get_wsgi_application()
