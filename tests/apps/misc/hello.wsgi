# The smallest valid app: used by launcher tests.
from wsgiref.validate import validator


def _application(environ, start_response):
    body = b"hello from rwsgi"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


application = validator(_application)
