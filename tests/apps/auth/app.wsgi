"""The application behind the access and authentication scripts of
test_auth_scripts.py: reports who Apache authenticated and where it ran."""
import os


def application(environ, start_response):
    body = "user=%s;auth_type=%s;pid=%d;group=%s;authorization=%s;end" % (
        environ.get("REMOTE_USER", "-"),
        environ.get("AUTH_TYPE", "-"),
        os.getpid(),
        environ.get("mod_wsgi.process_group", "?"),
        "HTTP_AUTHORIZATION" in environ,
    )
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]
