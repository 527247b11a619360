"""A WSGIHandlerScript: answers the requests of its Apache handler with a
description of the requested file (SCRIPT_FILENAME) and the environ."""
import os


def _describe(environ, label):
    target = environ["SCRIPT_FILENAME"]
    with open(target, "rb") as f:
        content = f.read().decode().strip()
    fields = {
        "label": label,
        "file": target,
        "content": content,
        "request_handler": environ.get("mod_wsgi.request_handler", ""),
        "handler_script": environ.get("mod_wsgi.handler_script", ""),
        "process_group": environ.get("mod_wsgi.process_group", ""),
        "application_group": environ.get("mod_wsgi.application_group", ""),
        "callable": environ.get("mod_wsgi.callable_object", ""),
        "path_info": environ.get("PATH_INFO", ""),
        "authorization": environ.get("HTTP_AUTHORIZATION", "-"),
        "pid": str(os.getpid()),
    }
    return ";".join(f"{k}={v}" for k, v in fields.items()).encode()


def handle_request(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [_describe(environ, "handle_request")]


def other(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [_describe(environ, "other")]
