"""rwsgi-express's log, content, proxy, status and interpreter options
against a real Apache, each shown by what it changes for a real request:
rotated error/access logs named by rotatelogs (a new file once one is over
--max-log-size), --error-log-format, --startup-log; a document root served
next to the application with .htaccess overrides (--allow-override),
directory listings, a CGI script (--with-cgi), --error-document for
Apache's errors and, with --error-override, the application's; gzip from
--compress-responses; --proxy-mount-point (headers, redirect of the bare
mount point, ProxyPassReverse), --proxy-virtual-host and --proxy-timeout
against a backend HTTP server started here, --trust-proxy-header with
--trust-proxy rewriting REMOTE_ADDR; /server-status (--server-status),
--switch-interval and --python-warnings seen by the application,
--orphan-interpreter skipping atexit callbacks, --add-handler scripts answering
document root files by extension,
--shell-executable."""

import gzip
import http.server
import json
import threading
import time

import pytest
import requests

from conftest import free_port, wait_until

APP = '''\
import json
import sys
import warnings


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/text":
        body = ("compress me " * 500).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/fail":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"the application's own error page"]
    if path == "/noise":
        # About 1.2 MB into the error log, in lines of 4000 bytes.
        for i in range(300):
            print("noise %03d " % i + "x" * 4000, file=environ["wsgi.errors"])
        environ["wsgi.errors"].flush()
    out = {k: v for k, v in environ.items() if isinstance(v, str)}
    out["sys.switchinterval"] = sys.getswitchinterval()
    out["sys.warnoptions"] = sys.warnoptions
    try:
        warnings.warn("raised?", UserWarning)
        out["warning"] = "not raised"
    except UserWarning:
        out["warning"] = "raised"
    data = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]
'''


def write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def app(ws):
    return write(ws.new_dir("options-app") / "app.wsgi", APP)


def test_rotated_logs_error_log_format_and_startup_log(servers, app):
    with servers.running("logs", app, mode="daemon", args=[
            "--access-log", "--rotate-logs", "--max-log-size", "1", "--startup-log",
            "--error-log-format", "RWSGITEST [%l] %M", "--log-level", "info"]) as srv:
        assert requests.get(srv.url("/hello"), timeout=30).status_code == 200
        assert (srv.root / "startup_log").exists()
        assert f"Startup Log File   : {srv.root}/startup_log" in srv.setup_output
        # Each log is a file rotatelogs names after its start time.
        assert not (srv.root / "error_log").exists() and not (srv.root / "access_log").exists()

        def files(name):
            return sorted(srv.root.glob(name + ".????-??-??-??_??_??"))

        assert wait_until(lambda: files("access_log") and
                          "GET /hello HTTP/1.1" in files("access_log")[-1].read_text(), 10)
        first = files("error_log")
        assert len(first) == 1, first
        # Over --max-log-size (1 MB): the next write goes to a new file (a
        # second later, so that its name differs).
        assert requests.get(srv.url("/noise"), timeout=30).status_code == 200
        assert wait_until(lambda: first[0].stat().st_size > 1024 * 1024, 10)
        time.sleep(1.2)
        assert requests.get(srv.url("/noise"), timeout=30).status_code == 200
        assert wait_until(lambda: len(files("error_log")) >= 2, 10), files("error_log")
        text = "".join(f.read_text(errors="replace") for f in files("error_log"))
        noise = [line for line in text.splitlines() if "noise 000 " in line]
        assert noise, text[-2000:]
        assert all(line.startswith("RWSGITEST [") for line in noise), noise[0][:200]


def test_document_root_content_options(servers, ws, app):
    doc = ws.new_dir("docroot")
    (doc / "sub").mkdir(mode=0o755)
    write(doc / "sub" / "listed.txt", "listed\n")
    write(doc / "plain.txt", "plain\n")
    write(doc / ".htaccess", "Header set X-Htaccess on\n")
    write(doc / "missing.html", "<p>custom not found</p>\n")
    write(doc / "oops.html", "<p>custom server error</p>\n")
    write(doc / "hello.cgi", "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
          "echo \"cgi says hi as $(id -un)\"\n", mode=0o755)
    with servers.running("content", app, mode="daemon", args=[
            "--mount-point", "/app", "--document-root", doc,
            "--allow-override", "FileInfo", "--directory-listing", "--with-cgi",
            "--error-document", "404", "/missing.html",
            "--error-document", "500", "/oops.html", "--error-override",
            "--compress-responses", "--enable-sendfile"]) as srv:
        r = srv.get("/plain.txt")
        assert r.status_code == 200 and r.text == "plain\n", srv.error_log_tail()
        assert r.headers.get("X-Htaccess") == "on", r.headers
        r = srv.get("/sub/")
        assert r.status_code == 200 and "Index of /sub" in r.text and "listed.txt" in r.text
        r = srv.get("/hello.cgi")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "cgi says hi as nobody\n"
        # Apache's own 404, and the application's 500 (--error-override).
        r = srv.get("/nothing-here")
        assert r.status_code == 404 and r.text == "<p>custom not found</p>\n"
        r = srv.get("/app/fail")
        assert r.status_code == 500 and r.text == "<p>custom server error</p>\n", r.text
        # --compress-responses: gzip for clients that accept it.
        raw = srv.get("/app/text", headers={"Accept-Encoding": "gzip"}, stream=True)
        assert raw.headers.get("Content-Encoding") == "gzip", raw.headers
        body = raw.raw.read()
        assert gzip.decompress(body) == ("compress me " * 500).encode()
        assert len(body) < 1000
        r = srv.get("/app/text", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in r.headers and len(r.content) == 6000
        conf = (srv.root / "httpd.conf").read_text()
        assert "EnableSendfile On" in conf and "WSGIEnableSendfile On" in conf


class Backend(http.server.ThreadingHTTPServer):
    """The proxied site: answers with the path and headers it got, /redirect
    with a redirect to its own URL, /slow after 5 seconds."""
    daemon_threads = True


class BackendHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/inner/target")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.endswith("/slow"):
            time.sleep(5)
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def backend():
    server = Backend(("127.0.0.1", free_port()), BackendHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_proxy_mount_points_virtual_host_and_trusted_proxies(servers, app, backend):
    b = f"http://127.0.0.1:{backend}"
    with servers.running("proxy", app, mode="daemon", args=[
            "--proxy-mount-point", "/api", f"{b}/inner",
            "--proxy-mount-point", "/whole/", f"{b}/",
            "--proxy-virtual-host", "proxied.test", f"{b}/vhost/",
            "--proxy-timeout", "2",
            "--trust-proxy-header", "X-Forwarded-For", "--trust-proxy", "127.0.0.1"]) as srv:
        r = srv.get("/api/x?q=1")
        assert r.status_code == 200, srv.error_log_tail()
        seen = r.json()
        assert seen["path"] == "/inner/x?q=1"
        assert seen["headers"]["X-Forwarded-Prefix"] == "/api"
        assert seen["headers"]["X-Forwarded-Port"] == str(srv.port)
        assert "X-Forwarded-Scheme" not in seen["headers"]
        r = srv.get("/api", allow_redirects=False)
        assert r.status_code == 302 and r.headers["Location"].endswith(f":{srv.port}/api/")
        # ProxyPassReverse: the backend's own URL becomes the mount point's.
        r = srv.get("/api/redirect", allow_redirects=False)
        assert r.status_code == 302
        assert r.headers["Location"] == f"http://127.0.0.1:{srv.port}/api/target"
        r = srv.get("/whole/y")
        assert r.status_code == 200 and r.json()["path"] == "/y"
        assert r.json()["headers"]["X-Forwarded-Prefix"] == "/whole"
        r = srv.get("/z", headers={"Host": "proxied.test"})
        assert r.status_code == 200 and r.json()["path"] == "/vhost/z", r.text
        # --proxy-timeout: the backend answering after 5 s is given up on
        # after 2 (mod_proxy_http answers 502 when the read times out).
        t0 = time.monotonic()
        r = srv.get("/api/slow")
        assert r.status_code in (502, 504) and time.monotonic() - t0 < 4.5, r.status_code
        # Anything else is the application's, from any host name; the
        # trusted proxy's X-Forwarded-For is the client address it sees.
        r = srv.get("/env", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200, srv.error_log_tail()
        env = r.json()
        assert env["PATH_INFO"] == "/env" and env["REMOTE_ADDR"] == "203.0.113.9"
        r = srv.get("/env", headers={"Host": "another.test"})
        assert r.json()["REMOTE_ADDR"] == "127.0.0.1"


def test_server_status_interpreter_options_and_shell(servers, app):
    with servers.running("status", app, mode="daemon", args=[
            "--server-status", "--switch-interval", "0.02",
            "--python-warnings", "error::UserWarning", "--response-flush-delay", "0",
            "--shell-executable", "/bin/sh"]) as srv:
        assert f"Server Status      : http://127.0.0.1:{srv.port}/server-status" in srv.setup_output
        env = srv.get("/env").json()
        assert env["sys.switchinterval"] == pytest.approx(0.02)
        assert "error::UserWarning" in env["sys.warnoptions"]
        assert env["warning"] == "raised"
        r = srv.get("/server-status?auto")
        assert r.status_code == 200, srv.error_log_tail()
        # ExtendedStatus On: the request counters are there.
        assert "Total Accesses:" in r.text and "ServerUptime" in r.text, r.text
        assert srv.get("/server-status").text.count("Apache Server Status") >= 1
        assert srv.apachectl_path.read_text().startswith("#!/bin/sh\n")
        conf = (srv.root / "httpd.conf").read_text()
        assert "response-flush-delay=0" in conf


ATEXIT_APP = '''\
import atexit
import os

DIR = os.path.dirname(os.path.abspath(__file__))
atexit.register(lambda: open(os.path.join(DIR, "atexit.%d" % os.getpid()), "w").close())


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
'''


@pytest.mark.parametrize("orphan", [False, True])
def test_orphan_interpreter_skips_atexit(servers, ws, orphan):
    """--orphan-interpreter (WSGIDestroyInterpreter Off): a daemon process
    exits without running its interpreter's atexit callbacks."""
    d = ws.new_dir("orphan")
    d.chmod(0o777)
    script = write(d / "app.wsgi", ATEXIT_APP)
    args = ["--orphan-interpreter"] if orphan else []
    srv = servers.create(f"orphan-{orphan}", script, mode="daemon", args=args)
    srv.setup()
    srv.start()
    try:
        r = srv.get("/")
        assert r.status_code == 200, srv.error_log_tail()
        pid = int(r.text)
    finally:
        srv.stop()
    marker = d / f"atexit.{pid}"
    if orphan:
        # Give a (wrong) late callback the time to show up.
        time.sleep(1)
        assert not marker.exists()
    else:
        assert wait_until(marker.exists, 10), srv.error_log_tail()


MD_HANDLER = '''\
import os


def handle_request(environ, start_response):
    with open(environ["SCRIPT_FILENAME"], "rb") as f:
        body = b"rendered: " + f.read()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Pid", str(os.getpid()))])
    return [body]
'''

TXT_APP = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"txt application for " + environ["SCRIPT_NAME"].encode()]
'''


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_add_handler_serves_extensions_of_the_document_root(servers, ws, app, mode):
    """--add-handler EXTENSION SCRIPT: document root files with the
    extension are answered by the script (handle_request, else
    application), in the daemon group or in Apache's children."""
    doc = ws.new_dir("handler-doc")
    write(doc / "page.md", "# title\n")
    write(doc / "note.txt", "plain text\n")
    write(doc / "other.html", "<p>static</p>\n")
    scripts = ws.new_dir("handler-scripts")
    md = write(scripts / "md.wsgi", MD_HANDLER)
    txt = write(scripts / "txt.wsgi", TXT_APP)
    with servers.running(f"handler-{mode}", app, mode=mode, args=[
            "--mount-point", "/app", "--document-root", doc,
            "--add-handler", ".md", md, "--add-handler", "txt", txt]) as srv:
        r = srv.get("/page.md")
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "rendered: # title\n"
        if mode == "daemon":
            # Answered in the daemon group, not in an Apache child.
            title = open(f"/proc/{r.headers['X-Pid']}/cmdline", "rb").read()
            assert title.startswith(b"(wsgi:localhost:"), title
        r = srv.get("/note.txt")
        assert r.status_code == 200 and r.text == "txt application for /note.txt", r.text
        r = srv.get("/other.html")
        assert r.status_code == 200 and r.text == "<p>static</p>\n"
        assert srv.get("/app/env").json()["PATH_INFO"] == "/env"
        assert (srv.root / "resource.wsgi").exists()
