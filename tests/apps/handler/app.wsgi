"""The site's own application (WSGIScriptAlias /): handler-script requests
must never reach it."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"main-app"]
