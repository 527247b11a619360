# Records each import (pid) next to this file: a daemon process imports it
# at start, before any request (WSGIScriptAlias with process-group= and
# application-group=, as rwsgi-express writes it).
import os

with open(os.path.join(os.path.dirname(__file__), "imports.txt"), "a") as f:
    f.write("%d\n" % os.getpid())


def application(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
