"""Access and authentication script of test_auth_scripts.py (the functions
mod_wsgi's WSGIAccessScript, WSGIAuthUserScript and WSGIAuthGroupScript
call). Each call logs one AUTHLOG line with the process id and what the
environ showed, so the tests can see where and how it ran."""
import hashlib
import os
import sys

PASSWORDS = {"alice": "wonder", "bob": "builder", "Carol": "singer"}
GROUPS = {"alice": ["staff", "admins"], "bob": ["staff"]}


def _log(environ, what):
    print("AUTHLOG %s pid=%d process_group=%r app_group=%r path_info=%r "
          "authorization=%s errors_ok=%s" % (
              what, os.getpid(), environ.get("mod_wsgi.process_group"),
              environ.get("mod_wsgi.application_group"),
              environ.get("PATH_INFO"), "HTTP_AUTHORIZATION" in environ,
              hasattr(environ.get("wsgi.errors"), "write")),
          file=environ["wsgi.errors"])


def check_password(environ, user, password):
    _log(environ, "check_password user=%s" % user)
    if user == "boom":
        raise RuntimeError("AUTH-SCRIPT-FAILURE-7731")
    if user == "weird":
        return 42
    if user == "carol":
        # A returned string is the user name from now on (REMOTE_USER).
        return "Carol" if password == PASSWORDS["Carol"] else False
    expected = PASSWORDS.get(user)
    if expected is None:
        return None
    return password == expected


def get_realm_hash(environ, user, realm):
    _log(environ, "get_realm_hash user=%s realm=%s" % (user, realm))
    if user == "boom":
        raise RuntimeError("DIGEST-SCRIPT-FAILURE-4419")
    password = PASSWORDS.get(user)
    if password is None:
        return None
    return hashlib.md5(("%s:%s:%s" % (user, realm, password)).encode()).hexdigest()


def groups_for_user(environ, user):
    _log(environ, "groups_for_user user=%s" % user)
    if user == "Carol":
        raise ValueError("GROUP-SCRIPT-FAILURE-5150")
    return GROUPS.get(user, [])


def allow_access(environ, host):
    _log(environ, "allow_access host=%s" % host)
    path = environ.get("PATH_INFO", "")
    if path.endswith("/deny"):
        return False
    if path.endswith("/none"):
        return None
    if path.endswith("/raise"):
        raise KeyError("ACCESS-SCRIPT-FAILURE-2207")
    return host == "127.0.0.1"
