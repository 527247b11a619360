# Script-reloading test app: the test rewrites VERSION and bumps the mtime.
import os
import time
from wsgiref.validate import validator

VERSION = "version-1"
LOADED_AT = time.time()


def _application(environ, start_response):
    body = ("%s %d %f" % (VERSION, os.getpid(), LOADED_AT)).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(_application)
