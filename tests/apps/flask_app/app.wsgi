# WSGI script for the Flask test app; its directory is put on sys.path by the
# launcher (--python-path).
from flasktestapp import app as application
