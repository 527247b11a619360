# Trac 1.6 (https://trac.edgewall.org/, PyPI "Trac"), served unchanged through
# trac.web.main.dispatch_request, as Trac's own mod_wsgi guide does
# (TracModWSGI: set TRAC_ENV, application = dispatch_request).
#
# rwsgi-express has no --setenv yet, so the Trac environment is the directory
# trac-env next to this script: the tests copy this script into a per-server
# directory and create the environment there with `trac-admin initenv`,
# owned by the Apache user.
import os

os.environ.setdefault(
    "TRAC_ENV", os.path.join(os.path.dirname(os.path.abspath(__file__)), "trac-env"))

from trac.web.main import dispatch_request as application  # noqa: E402,F401
