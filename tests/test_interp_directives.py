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
