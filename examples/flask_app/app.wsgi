# WSGI script for the Flask example: rwsgi (like mod_wsgi) loads this file
# and calls `application`. The directory is added to sys.path so `hello`
# imports without any --python-path option.
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from hello import app as application  # noqa: E402,F401
