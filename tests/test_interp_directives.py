"""mod_wsgi 6's interpreter-model directives against real Apache:
WSGIDestroyInterpreter (atexit callbacks at process exit, or not; the
mod_wsgi.subscribe_shutdown callbacks run either way), WSGIPerInterpreterGIL
and WSGIFreeThreading (On fails configtest on a Python that cannot do it,
naming the directive, the file and line, and why), WSGIVerboseDebugging
(deprecated: accepted with a warning)."""

import os
import pwd

import pytest

from conftest import wait_until

APP = '''
import atexit, os, mod_wsgi
DIR = os.path.dirname(os.path.abspath(__file__))
def _mark(name):
    with open(os.path.join(DIR, name + "." + str(os.getpid())), "w") as f:
        f.write("ran")
atexit.register(_mark, "atexit")
mod_wsgi.subscribe_shutdown(lambda event, **kw: _mark("shutdown"))
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''


def app_dir(ws):
    d = ws.new_dir("interp")
    os.chown(d, pwd.getpwnam("nobody").pw_uid, -1)
    (d / "app.wsgi").write_text(APP)
    return d


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
@pytest.mark.parametrize("destroy", [None, "On", "Off"])
def test_destroy_interpreter(servers, ws, mode, destroy):
    """Default On: a process exiting runs its atexit callbacks; Off skips
    them. subscribe_shutdown callbacks run in both cases."""
    d = app_dir(ws)
    srv = servers.create(f"destroy{destroy}", d / "app.wsgi", "event",
                         ["--log-level", "info"], mode=mode)
    srv.setup()
    if destroy:
        conf = srv.root / "httpd.conf"
        conf.write_text(conf.read_text() + f"WSGIDestroyInterpreter {destroy}\n")
    srv.start()
    try:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        pid = r.text
    finally:
        srv.stop()
    assert wait_until(lambda: (d / f"shutdown.{pid}").exists(), 10), (
        os.listdir(d), srv.error_log_tail())
    assert (d / f"atexit.{pid}").exists() == (destroy != "Off"), os.listdir(d)


@pytest.mark.parametrize("line, needle", [
    ("WSGIPerInterpreterGIL On", "WSGIPerInterpreterGIL: On needs Python 3.12 or later"),
    ("WSGIFreeThreading On", "WSGIFreeThreading: On needs a free-threaded Python"),
    ("WSGIPerInterpreterGIL Maybe", "WSGIPerInterpreterGIL: expected On or Off"),
    ("WSGIFreeThreading 1", "WSGIFreeThreading: expected On or Off"),
    ("WSGIDestroyInterpreter x", "WSGIDestroyInterpreter: expected On or Off"),
    ("WSGIVerboseDebugging x", "WSGIVerboseDebugging: expected On or Off"),
    ("<VirtualHost 127.0.0.1:1>\nWSGIDestroyInterpreter Off\n</VirtualHost>", "WSGIDestroyInterpreter"),
])
def test_configtest_refuses(servers, ws, line, needle):
    srv = servers.create("interpbad", ws.apps / "directives" / "app.wsgi", "event", mode="embedded")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + line + "\n")
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0, proc.out
    assert needle in proc.out, proc.out
    assert "httpd.conf" in proc.out, proc.out


def test_off_values_and_verbose_debugging_are_accepted(servers, ws):
    srv = servers.create("interpok", ws.apps / "directives" / "app.wsgi", "event", mode="embedded")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + "\n".join([
        "WSGIPerInterpreterGIL Off", "WSGIFreeThreading Off",
        "WSGIDestroyInterpreter On", "WSGIVerboseDebugging On"]) + "\n")
    proc = srv.apachectl("configtest")
    assert proc.returncode == 0, proc.out
    assert "RWSGI0059" in proc.out and "deprecated" in proc.out, proc.out
    # Off, as mod_wsgi-express writes it in every httpd.conf: no warning.
    conf.write_text(conf.read_text().replace("WSGIVerboseDebugging On", "WSGIVerboseDebugging Off"))
    proc = srv.apachectl("configtest")
    assert proc.returncode == 0, proc.out
    assert "RWSGI0059" not in proc.out, proc.out


PATH_APP = '''
import sys
def application(environ, start_response):
    import marker_mod
    body = (marker_mod.NAME + " " + str(round(sys.getswitchinterval(), 6))).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_interpreter_options_container(servers, ws, mode):
    """<WSGIInterpreterOptions>: WSGIPythonPath and WSGISwitchInterval of a
    container whose selectors match the application's interpreter apply
    to it; a container for another process group does not."""
    d = ws.new_dir("ioptions")
    (d / "app.wsgi").write_text(PATH_APP)
    for name in ("right", "wrong"):
        lib = d / name
        lib.mkdir()
        lib.chmod(0o755)
        (lib / "marker_mod.py").write_text(f"NAME = {name!r}\n")
    srv = servers.create("ioptions", d / "app.wsgi", "event", ["--log-level", "info"], mode=mode)
    srv.setup()
    conf = srv.root / "httpd.conf"
    text = conf.read_text()
    group = next((l.split()[1] for l in text.splitlines() if l.startswith("WSGIDaemonProcess ")), "")
    sel = f"process-group={group} " if group else ""
    conf.write_text(text + "\n".join([
        "<WSGIInterpreterOptions process-group=no-such-group>",
        f"    WSGIPythonPath {d / 'wrong'}",
        "</WSGIInterpreterOptions>",
        f"<WSGIInterpreterOptions {sel}application-group=%{{GLOBAL}}>",
        f"    WSGIPythonPath {d / 'right'}",
        "    WSGISwitchInterval 0.0125",
        "</WSGIInterpreterOptions>",
        "<WSGIInterpreterOptions>",
        "</WSGIInterpreterOptions>",
    ]) + "\n")
    srv.start()
    try:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "right 0.0125", r.text
    finally:
        srv.stop()


@pytest.mark.parametrize("body, needle", [
    ("process-group=a process-group=b>\n", "process-group given more than once"),
    ("colour=red>\n", 'unknown selector "colour"'),
    (">\n    WSGIScriptAlias / /x.wsgi\n", "WSGIScriptAlias is not allowed inside"),
    (">\n    WSGISwitchInterval 0\n", "WSGISwitchInterval (line"),
    (">\n    WSGIPerInterpreterGIL On\n", "WSGIPerInterpreterGIL: On needs Python 3.12"),
])
def test_interpreter_options_configtest(servers, ws, body, needle):
    srv = servers.create("ioptbad", ws.apps / "directives" / "app.wsgi", "event", mode="embedded")
    srv.setup()
    conf = srv.root / "httpd.conf"
    conf.write_text(conf.read_text() + "<WSGIInterpreterOptions " + body + "</WSGIInterpreterOptions>\n")
    proc = srv.apachectl("configtest")
    assert proc.returncode != 0, proc.out
    assert needle in proc.out, proc.out
