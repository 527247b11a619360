# WSGIDispatchScript of tests/test_directives_more.py: the request path
# (PATH_INFO under /dispatch/) says what to choose.


def _what(environ):
    path = environ.get("PATH_INFO", "")
    if path.startswith("/dispatch/"):
        return path[len("/dispatch/"):].split("/")[0]
    return ""


def process_group(environ):
    what = _what(environ)
    if what == "second":
        return "second"
    if what == "bytes":
        return b"second"
    if what == "global":
        return "%{GLOBAL}"
    if what == "env":
        return "%{ENV:DISPATCH_GROUP}"
    if what == "raise":
        raise RuntimeError("dispatch failed on purpose")
    if what == "badtype":
        return 42
    return None


def application_group(environ):
    if _what(environ) == "appgroup":
        return "custom-group"
    return None


def callable_object(environ):
    what = _what(environ)
    if what == "other":
        return "other"
    if what == "environ":
        # The dispatch script's own environ, as mod_wsgi gives it.
        ok = (environ.get("mod_wsgi.process_group") == ""
              and environ.get("mod_wsgi.application_group") == "dispatch-group"
              and "mod_wsgi.callable_object" not in environ
              and environ.get("REQUEST_METHOD") == "GET"
              and environ.get("PATH_INFO") == "/dispatch/environ"
              and hasattr(environ.get("wsgi.errors"), "write"))
        return "dispatch_env_ok" if ok else "no_such_callable"
    return None
