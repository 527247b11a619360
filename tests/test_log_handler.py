"""mod_wsgi.LogHandler: a logging handler writing to Apache's error log, in
embedded and daemon mode (lines of a request carry its client)."""

import pytest

from conftest import wait_until

APP = '''
import logging, mod_wsgi
log = logging.getLogger("rwsgi.test")
log.setLevel(logging.INFO)
handler = mod_wsgi.LogHandler()
handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
log.addHandler(handler)
log.propagate = False
def application(environ, start_response):
    log.warning("from the handler %s", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [type(handler).__module__.encode() + b" " + str(isinstance(handler, logging.Handler)).encode()]
'''


@pytest.mark.parametrize("mode", ["embedded", "daemon"])
def test_log_handler_writes_to_the_error_log(servers, ws, mode):
    d = ws.new_dir("loghandler")
    (d / "app.wsgi").write_text(APP)
    with servers.running(f"loghandler-{mode}", d / "app.wsgi", "event", ["--log-level", "info"],
                         mode=mode) as srv:
        r = srv.get("/some/path")
        assert (r.status_code, r.text) == (200, "mod_wsgi True"), srv.error_log_tail()
        assert wait_until(lambda: "WARNING rwsgi.test: from the handler /some/path" in srv.error_log(), 10), (
            srv.error_log_tail())
        line = next(l for l in srv.error_log().splitlines() if "from the handler" in l)
        assert "[client 127.0.0.1" in line, line
