# Radicale 3 (CalDAV/CardDAV server, PyPI "radicale"), served unchanged
# through its documented WSGI entry point `radicale.application`, which reads
# its configuration file from RADICALE_CONFIG (the WSGI environ, then
# os.environ).
#
# rwsgi-express has no --setenv yet, so the configuration is the file
# radicale.conf next to this script: the tests copy this script into a
# per-server directory and write radicale.conf there (from radicale.conf.in,
# with a storage folder writable by the Apache user).
import os

os.environ.setdefault(
    "RADICALE_CONFIG", os.path.join(os.path.dirname(os.path.abspath(__file__)), "radicale.conf"))

from radicale import application  # noqa: E402,F401
