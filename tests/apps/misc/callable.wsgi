# Served with --callable-object myapp: there is no `application` here.
from wsgiref.validate import validator


def _myapp(environ, start_response):
    body = ("callable=%s" % environ.get("mod_wsgi.callable_object")).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


myapp = validator(_myapp)
