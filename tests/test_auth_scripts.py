"""mod_wsgi's access and authentication scripts against real Apache:
WSGIAuthUserScript behind `AuthBasicProvider wsgi` and `AuthDigestProvider
wsgi`, WSGIAuthGroupScript behind `Require wsgi-group`, WSGIAccessScript as
an access checker. The scripts run in Apache's child (embedded) also when
the application runs in a daemon process (rwsgi-express then sets
WSGIRestrictEmbedded On, and Python must still start in the children).
A failing script gives a 500 with its traceback in the error log."""
import re

import pytest
import requests
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

CONF = """\
<IfModule !auth_basic_module>
    LoadModule auth_basic_module ${{MOD_WSGI_MODULES_DIRECTORY}}/mod_auth_basic.so
</IfModule>
<IfModule !auth_digest_module>
    LoadModule auth_digest_module ${{MOD_WSGI_MODULES_DIRECTORY}}/mod_auth_digest.so
</IfModule>
<IfModule !authz_user_module>
    LoadModule authz_user_module ${{MOD_WSGI_MODULES_DIRECTORY}}/mod_authz_user.so
</IfModule>
<Location /basic>
    AuthType Basic
    AuthName "Basic Realm"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {script}
    Require valid-user
</Location>
<Location /digest>
    AuthType Digest
    AuthName "Digest Realm"
    AuthDigestProvider wsgi
    WSGIAuthUserScript {script}
    Require valid-user
</Location>
<Location /admins>
    AuthType Basic
    AuthName "Admins"
    AuthBasicProvider wsgi
    WSGIAuthUserScript {script} application-group=auth-scripts
    WSGIAuthGroupScript {script}
    Require wsgi-group admins wheel
</Location>
<Location /access>
    WSGIAccessScript {script}
</Location>
"""


def line_with(text, needle):
    """The first log line of `text` containing `needle` ('' if none)."""
    return next((ln for ln in text.splitlines() if needle in ln), "")


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def auth_server(request, servers, ws):
    d = ws.apps / "auth"
    conf = d / f"auth-{request.param}.conf"
    conf.write_text(CONF.format(script=d / "auth.wsgi"))
    conf.chmod(0o644)
    srv = servers.start(f"auth-{request.param}", d / "app.wsgi",
                        args=["--include-file", conf, "--processes", "1",
                              "--threads", "4", "--log-level", "info"],
                        mode=request.param)
    yield srv
    srv.stop()


def body_fields(resp):
    return dict(item.split("=", 1) for item in resp.text.split(";") if "=" in item)


def test_basic_good_password_reaches_app(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/basic/page", auth=HTTPBasicAuth("alice", "wonder"))
    assert r.status_code == 200, r.text
    f = body_fields(r)
    assert (f["user"], f["auth_type"]) == ("alice", "Basic")
    line = line_with(auth_server.wait_for_log(mark, "AUTHLOG check_password user=alice"),
                     "AUTHLOG check_password user=alice")
    # The script ran in Apache's child: the embedded interpreter of a child
    # whatever the application's mode; never with the credentials.
    assert "process_group=''" in line and "app_group=''" in line, line
    assert "authorization=False" in line and "errors_ok=True" in line, line
    assert "path_info='/basic/page'" in line, line
    script_pid = int(re.search(r"pid=(\d+)", line).group(1))
    if auth_server.mode == "daemon":
        assert f["group"] != "", f
        assert int(f["pid"]) != script_pid, "the check ran in the daemon process"
        assert script_pid in auth_server.children(), (script_pid, auth_server.children())
    else:
        assert f["group"] == ""
        assert int(f["pid"]) == script_pid


def test_basic_wrong_password_and_unknown_user(auth_server):
    r = auth_server.get("/basic/", auth=HTTPBasicAuth("alice", "nope"))
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Basic Realm"'
    r = auth_server.get("/basic/", auth=HTTPBasicAuth("mallory", "x"))
    assert r.status_code == 401
    assert auth_server.get("/basic/").status_code == 401


def test_basic_returned_string_is_the_user_name(auth_server):
    r = auth_server.get("/basic/", auth=HTTPBasicAuth("carol", "singer"))
    assert r.status_code == 200, r.text
    assert body_fields(r)["user"] == "Carol"
    assert auth_server.get("/basic/", auth=HTTPBasicAuth("carol", "x")).status_code == 401


def test_basic_script_raising_is_500_with_traceback(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/basic/", auth=HTTPBasicAuth("boom", "x"))
    assert r.status_code == 500
    log = auth_server.wait_for_log(mark, "AUTH-SCRIPT-FAILURE-7731")
    assert "RWSGI0080: check_password() of WSGIAuthUserScript" in log, log
    assert "Traceback (most recent call last)" in log, log
    assert "RuntimeError: AUTH-SCRIPT-FAILURE-7731" in log, log
    # The child survived: the next request is served.
    assert auth_server.get("/basic/", auth=HTTPBasicAuth("bob", "builder")).status_code == 200


def test_basic_wrong_return_type_is_500(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/basic/", auth=HTTPBasicAuth("weird", "x"))
    assert r.status_code == 500
    log = auth_server.wait_for_log(mark, "it returned a int")
    assert "RWSGI0080" in log and "True, False, None or the user name" in log, log


def test_digest_good_and_bad(auth_server):
    r = auth_server.get("/digest/x", auth=HTTPDigestAuth("bob", "builder"))
    assert r.status_code == 200, r.text
    f = body_fields(r)
    assert (f["user"], f["auth_type"]) == ("bob", "Digest")
    assert auth_server.get("/digest/x", auth=HTTPDigestAuth("bob", "wrong")).status_code == 401
    assert auth_server.get("/digest/x", auth=HTTPDigestAuth("nobody", "x")).status_code == 401
    r = auth_server.get("/digest/x")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith('Digest realm="Digest Realm"')


def test_digest_script_raising_is_500(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/digest/x", auth=HTTPDigestAuth("boom", "x"))
    assert r.status_code == 500
    log = auth_server.wait_for_log(mark, "DIGEST-SCRIPT-FAILURE-4419")
    assert "RWSGI0080: get_realm_hash() of WSGIAuthUserScript" in log, log
    assert "Traceback (most recent call last)" in log, log


def test_group_allowed_and_denied(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/admins/", auth=HTTPBasicAuth("alice", "wonder"))
    assert r.status_code == 200, r.text
    assert body_fields(r)["user"] == "alice"
    # The application-group= option is the script's own group.
    auth_server.wait_for_log(mark, "AUTHLOG check_password user=alice")
    log = auth_server.log_since(mark)
    assert "app_group='auth-scripts'" in log, log
    assert "AUTHLOG groups_for_user user=alice" in log, log
    # Authenticated but not in a required group: 401 (Apache's default).
    mark = auth_server.log_mark()
    r = auth_server.get("/admins/", auth=HTTPBasicAuth("bob", "builder"))
    assert r.status_code == 401
    log = auth_server.wait_for_log(mark, "RWSGI0084")
    assert "user \"bob\"" in log and "not a member of the required groups" in log, log
    # Wrong password: rejected before the group check.
    assert auth_server.get("/admins/", auth=HTTPBasicAuth("alice", "x")).status_code == 401


def test_group_script_raising_is_500(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/admins/", auth=HTTPBasicAuth("carol", "singer"))
    assert r.status_code == 500
    log = auth_server.wait_for_log(mark, "GROUP-SCRIPT-FAILURE-5150")
    assert "RWSGI0080: groups_for_user() of WSGIAuthGroupScript" in log, log
    assert "ValueError: GROUP-SCRIPT-FAILURE-5150" in log, log


def test_access_allowed_denied_declined(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/access/ok", headers={"Authorization": "Basic eDp5"})
    assert r.status_code == 200, r.text
    assert body_fields(r)["user"] == "-"
    line = line_with(auth_server.wait_for_log(mark, "AUTHLOG allow_access host=127.0.0.1"),
                     "AUTHLOG allow_access host=127.0.0.1")
    assert "path_info='/access/ok'" in line and "authorization=False" in line, line
    mark = auth_server.log_mark()
    assert auth_server.get("/access/deny").status_code == 403
    auth_server.wait_for_log(mark, "RWSGI0084: client denied by WSGIAccessScript")
    # None: no opinion, the rest of Apache's access control decides.
    assert auth_server.get("/access/none").status_code == 200


def test_access_script_raising_is_500(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/access/raise")
    assert r.status_code == 500
    log = auth_server.wait_for_log(mark, "ACCESS-SCRIPT-FAILURE-2207")
    assert "RWSGI0080: allow_access() of WSGIAccessScript" in log, log
    assert "Traceback (most recent call last)" in log, log
    assert auth_server.get("/access/ok").status_code == 200


def test_outside_the_locations_no_script_runs(auth_server):
    mark = auth_server.log_mark()
    r = auth_server.get("/open")
    assert r.status_code == 200
    assert body_fields(r)["user"] == "-"
    assert "AUTHLOG" not in auth_server.log_since(mark)


def test_provider_without_script_is_500(servers, ws):
    d = ws.apps / "auth"
    conf = d / "noscript.conf"
    conf.write_text(
        "<IfModule !auth_basic_module>\n"
        "    LoadModule auth_basic_module ${MOD_WSGI_MODULES_DIRECTORY}/mod_auth_basic.so\n"
        "</IfModule>\n"
        "<IfModule !authz_user_module>\n"
        "    LoadModule authz_user_module ${MOD_WSGI_MODULES_DIRECTORY}/mod_authz_user.so\n"
        "</IfModule>\n"
        "<Location /basic>\n"
        "    AuthType Basic\n    AuthName x\n    AuthBasicProvider wsgi\n"
        "    Require valid-user\n</Location>\n")
    conf.chmod(0o644)
    with servers.running("auth-noscript", d / "app.wsgi",
                         args=["--include-file", conf]) as srv:
        mark = srv.log_mark()
        r = srv.get("/basic/", auth=HTTPBasicAuth("alice", "wonder"))
        assert r.status_code == 500
        log = srv.wait_for_log(mark, "RWSGI0082")
        assert "no WSGIAuthUserScript applies" in log, log


def test_bad_option_fails_configtest(servers, ws):
    d = ws.apps / "auth"
    conf = d / "badopt.conf"
    conf.write_text(f"<Location /x>\n    WSGIAccessScript {d / 'auth.wsgi'} process-group=x\n</Location>\n")
    conf.chmod(0o644)
    srv = servers.create("auth-badopt", d / "app.wsgi", args=["--include-file", conf])
    srv.setup()
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0
    assert "WSGIAccessScript: process-group= is not an option" in proc.out, proc.out


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_express_auth_options(servers, ws, mode):
    """rwsgi-express --auth-user-script/--auth-group-script/--auth-group and
    --host-access-script, as mod_wsgi-express: the whole site behind them."""
    d = ws.apps / "auth"
    script = d / "auth.wsgi"
    with servers.running(f"ax-{mode[0]}", d / "app.wsgi", mode=mode,
                         args=["--auth-user-script", script, "--auth-group-script", script,
                               "--auth-group", "admins", "--host-access-script", script]) as srv:
        r = srv.get("/page", auth=HTTPBasicAuth("alice", "wonder"))
        assert r.status_code == 200, srv.error_log_tail()
        assert body_fields(r)["user"] == "alice"
        assert r.request.headers["Authorization"].startswith("Basic ")
        # bob is authenticated but not in admins; no credentials: 401.
        assert srv.get("/page", auth=HTTPBasicAuth("bob", "builder")).status_code == 401
        r = srv.get("/page")
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith('Basic realm="'), r.headers
        # The access script runs first: 403 whoever asks.
        assert srv.get("/x/deny", auth=HTTPBasicAuth("alice", "wonder")).status_code == 403


def test_express_digest_and_bad_options(servers, ws):
    d = ws.apps / "auth"
    script = d / "auth.wsgi"
    with servers.running("ax-dg", d / "app.wsgi", mode="daemon",
                         args=["--auth-user-script", script, "--auth-type", "Digest"]) as srv:
        r = srv.get("/page", auth=HTTPDigestAuth("bob", "builder"))
        assert r.status_code == 200, srv.error_log_tail()
        assert body_fields(r)["auth_type"] == "Digest"
        assert srv.get("/page", auth=HTTPDigestAuth("bob", "nope")).status_code == 401
    srv = servers.create("ax-bad", d / "app.wsgi",
                         args=["--auth-group-script", script])
    proc = srv.setup(check=False)
    assert proc.returncode != 0 and "needs --auth-user-script" in proc.out, proc.out
    srv = servers.create("ax-bad2", d / "app.wsgi",
                         args=["--auth-user-script", script, "--auth-type", "Bearer"])
    proc = srv.setup(check=False)
    assert proc.returncode != 0 and "Basic or Digest" in proc.out, proc.out
