"""WSGIHandlerScript against real Apache, embedded and in a daemon process
group: files given a named handler (AddHandler, SetHandler) are answered by
the handler script's handle_request (or callable-object=), with
SCRIPT_FILENAME the requested file; a <Directory>'s definition of a handler
name overrides the server's; a missing handler script is a 404 naming it
(RWSGI0100); configtest refuses bad arguments naming the directive."""
import pytest

CONF = """\
Alias /files {d}/files
<Directory {d}/files>
    Require all granted
    AddHandler xyz-handler .xyz
    AddHandler abc-handler .abc
</Directory>
WSGIHandlerScript xyz-handler {d}/handler.wsgi {pg}
<Directory {d}/files/sub>
    WSGIHandlerScript xyz-handler {d}/handler.wsgi callable-object=other {pg}
</Directory>
WSGIHandlerScript abc-handler "{d}/handler.wsgi" application-group=abc-group pass-authorization=On {pg}
WSGIHandlerScript missing-handler {d}/nowhere.wsgi {pg}
<Location /files/plain.txt>
    SetHandler xyz-handler
</Location>
<Location /files/any.loc>
    SetHandler missing-handler
</Location>
"""


@pytest.fixture(scope="module", params=["embedded", "daemon"])
def handler_server(request, servers, ws):
    d = ws.apps / "handler"
    pg = "process-group=hgrp" if request.param == "daemon" else ""
    conf = d / f"handler-{request.param}.conf"
    conf.write_text(CONF.format(d=d, pg=pg))
    conf.chmod(0o644)
    args = ["--include-file", conf, "--processes", "1", "--threads", "2"]
    if request.param == "daemon":
        args += ["--process-group", "hgrp"]
    srv = servers.start(f"handler-{request.param}", d / "app.wsgi", args=args,
                        mode=request.param)
    srv.param = request.param
    yield srv
    srv.stop()


def fields(resp):
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return dict(item.split("=", 1) for item in resp.text.split(";"))


def test_added_handler_runs_handle_request_on_the_file(handler_server, ws):
    d = ws.apps / "handler"
    f = fields(handler_server.get("/files/hello.xyz"))
    assert f["label"] == "handle_request"
    assert f["file"] == str(d / "files" / "hello.xyz")
    assert f["content"] == "hello xyz"
    assert f["request_handler"] == "xyz-handler"
    assert f["handler_script"] == str(d / "handler.wsgi")
    assert f["callable"] == "handle_request"
    want_group = "hgrp" if handler_server.param == "daemon" else ""
    assert f["process_group"] == want_group
    assert f["authorization"] == "-"


def test_runs_in_the_process_of_its_mode(handler_server):
    f = fields(handler_server.get("/files/hello.xyz"))
    cmdline = open(f"/proc/{f['pid']}/cmdline", "rb").read()
    if handler_server.param == "daemon":
        # A daemon process of group hgrp names itself (wsgi:hgrp).
        assert b"(wsgi:hgrp)" in cmdline, cmdline
    else:
        assert b"(wsgi:" not in cmdline, cmdline
        assert int(f["pid"]) in {int(p) for p in handler_server.children()}


def test_directory_definition_overrides_the_servers(handler_server, ws):
    f = fields(handler_server.get("/files/sub/deep.xyz"))
    assert f["label"] == "other" and f["callable"] == "other"
    assert f["content"] == "in sub"


def test_options_application_group_and_pass_authorization(handler_server):
    f = fields(handler_server.get("/files/page.abc",
                                  headers={"Authorization": "Bearer tok123"}))
    assert f["content"] == "abc file"
    assert f["application_group"] == "abc-group"
    assert f["authorization"] == "Bearer tok123"
    assert f["request_handler"] == "abc-handler"


def test_set_handler_in_a_location(handler_server):
    f = fields(handler_server.get("/files/plain.txt"))
    assert f["content"] == "plain text" and f["request_handler"] == "xyz-handler"


def test_other_urls_still_reach_the_site_app(handler_server):
    r = handler_server.get("/somewhere")
    assert r.status_code == 200 and r.text == "main-app"


def test_missing_handler_script_is_404_naming_it(handler_server, ws):
    mark = handler_server.log_mark()
    r = handler_server.get("/files/any.loc")
    assert r.status_code == 404
    log = handler_server.wait_for_log(mark, "RWSGI0100")
    assert "RWSGI0100" in log and "nowhere.wsgi" in log and "missing-handler" in log, log


@pytest.mark.parametrize("line, needle", [
    ("WSGIHandlerScript", "WSGIHandlerScript: name for handler script not supplied"),
    ("WSGIHandlerScript h", "WSGIHandlerScript: location of handler script not supplied"),
    ("WSGIHandlerScript h /x.wsgi bogus=1", 'WSGIHandlerScript: unknown option "bogus"'),
    ("WSGIHandlerScript h /x.wsgi pass-authorization=Maybe",
     "WSGIHandlerScript: pass-authorization expects On or Off"),
    ("WSGIHandlerScript h /x.wsgi process-group=", 'WSGIHandlerScript: option "process-group" needs a value'),
])
def test_configtest_refuses_bad_arguments(servers, ws, line, needle):
    srv = servers.create("badhandler", ws.apps / "handler" / "app.wsgi", "event", mode="embedded")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + line + "\n")
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0, proc.out
    assert needle in proc.out and "httpd.conf" in proc.out, proc.out
