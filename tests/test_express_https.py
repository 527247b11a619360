"""rwsgi-express's HTTPS, virtual host and environment options against a
real Apache: HTTPS requests through mod_ssl with a self-signed certificate
made here with the openssl CLI (wsgi.url_scheme, SERVER_PORT, mod_ssl's
HTTPS=on and SSL_* with --ssl-environment), --ssl-certificate's base name,
--https-only's redirect and --hsts-policy, --http2 (h2 by ALPN), client
certificates under --ssl-verify-client, name-based virtual hosts
(--server-name, --server-alias, --allow-localhost), and what include files
written for mod_wsgi-express rely on (Defines, ${MOD_WSGI_SERVER_ROOT},
SetEnv/Header modules, their WSGIScriptAlias taking precedence), --setenv,
--passenv with --envvars-script, --limit-request-body."""

import http.client
import json
import shutil
import socket
import ssl
import subprocess

import pytest
import requests

from conftest import APACHE_GROUP, APACHE_USER, express_path, free_port, python_home, run

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

APP = '''\
import json
import os


def application(environ, start_response):
    if environ["PATH_INFO"] == "/upload":
        body = environ["wsgi.input"].read()
        out = {"length": len(body)}
    else:
        out = {k: v for k, v in environ.items() if isinstance(v, str)}
        out["os.environ.FROM_ENVVARS"] = os.environ.get("FROM_ENVVARS")
        out["os.environ.MOD_WSGI_SERVER_ROOT"] = os.environ.get("MOD_WSGI_SERVER_ROOT")
    data = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
'''

INCLUDED_APP = '''\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the include file"]
'''


def write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)
    return path


def openssl(*args):
    proc = subprocess.run(["openssl", *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace")


@pytest.fixture(scope="module")
def pki(ws):
    """A self-signed server certificate for localhost (site.crt/site.key),
    a CA (ca.crt) and a client certificate it signed (client.crt/key)."""
    d = ws.new_dir("pki")
    openssl("req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
            "-keyout", d / "site.key", "-out", d / "site.crt", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,DNS:app.test,IP:127.0.0.1")
    openssl("req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "2",
            "-keyout", d / "ca.key", "-out", d / "ca.crt", "-subj", "/CN=rwsgi test CA")
    openssl("req", "-nodes", "-newkey", "rsa:2048", "-keyout", d / "client.key",
            "-out", d / "client.csr", "-subj", "/CN=test-client")
    openssl("x509", "-req", "-in", d / "client.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
            "-CAcreateserial", "-days", "2", "-out", d / "client.crt")
    for f in d.iterdir():
        f.chmod(0o644)
    return d


@pytest.fixture(scope="module")
def app(ws):
    d = ws.new_dir("https-app")
    write(d / "included.wsgi", INCLUDED_APP)
    return write(d / "app.wsgi", APP)


def https_args(pki, port, *extra):
    return ["--server-name", "localhost", "--https-port", str(port),
            "--ssl-certificate-file", pki / "site.crt",
            "--ssl-certificate-key-file", pki / "site.key", *extra]


def tls_connection(port, ctx, host="localhost"):
    """An HTTP connection over TLS to 127.0.0.1:port, with SNI `host`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                                server_hostname=host)
    return conn


def https_get(port, path, pki, host="localhost"):
    """GET over HTTPS with Host and SNI `host`, the server certificate
    checked against site.crt. Returns (status, headers, body)."""
    ctx = ssl.create_default_context(cafile=str(pki / "site.crt"))
    conn = tls_connection(port, ctx, host)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_https_request_with_ssl_environment(servers, ws, app, pki):
    https_port = free_port()
    include = write(ws.new_dir("https-inc") / "https.conf",
                    'Header set X-Https "%{HTTPS}e"\n')
    with servers.running("https", app, mode="daemon", args=https_args(
            pki, https_port, "--ssl-environment", "--include-file", include)) as srv:
        assert f"Server URL (HTTPS) : https://localhost:{https_port}/" in srv.setup_output
        status, headers, body = https_get(https_port, "/env", pki)
        assert status == 200, srv.error_log_tail()
        env = json.loads(body)
        assert env["wsgi.url_scheme"] == "https"
        assert env["SERVER_PORT"] == str(https_port)
        assert env["SSL_PROTOCOL"].startswith("TLSv1"), env
        assert env["SSL_CIPHER"], env
        # mod_ssl set HTTPS=on for the request (mod_wsgi keeps it out of
        # the environ itself: wsgi.url_scheme says it).
        assert headers.get("x-https") == "on", headers
        assert "HTTPS" not in env, env
        # The plain HTTP listener: no TLS, no SSL_* variables.
        r = requests.get(srv.url("/env"), headers={"Host": f"localhost:{srv.port}"}, timeout=30)
        assert r.status_code == 200, srv.error_log_tail()
        env = r.json()
        assert env["wsgi.url_scheme"] == "http"
        assert env["SERVER_PORT"] == str(srv.port)
        assert not any(k.startswith("SSL_") for k in env), env
        assert r.headers.get("X-Https") in (None, "", "(null)")


def test_https_without_ssl_environment_has_no_ssl_variables(servers, app, pki):
    https_port = free_port()
    with servers.running("https-noenv", app, mode="embedded",
                         args=https_args(pki, https_port)) as srv:
        status, _, body = https_get(https_port, "/env", pki)
        assert status == 200, srv.error_log_tail()
        env = json.loads(body)
        assert env["wsgi.url_scheme"] == "https"
        assert "SSL_PROTOCOL" not in env and "SSL_CIPHER" not in env, env


def test_https_only_hsts_certificate_base_name_and_http2(servers, ws, app, pki):
    https_port = free_port()
    with servers.running("https-only", app, mode="daemon", args=[
            "--server-name", "localhost", "--https-port", str(https_port),
            "--ssl-certificate", pki / "site", "--https-only",
            "--hsts-policy", "max-age=600", "--http2"]) as srv:
        r = requests.get(srv.url("/some/path?q=1"), headers={"Host": "localhost"},
                         allow_redirects=False, timeout=30)
        assert r.status_code == 302, srv.error_log_tail()
        assert r.headers["Location"] == f"https://localhost:{https_port}/some/path?q=1"
        status, headers, body = https_get(https_port, "/some/path?q=1", pki)
        assert status == 200, srv.error_log_tail()
        assert headers.get("strict-transport-security") == "max-age=600"
        assert json.loads(body)["QUERY_STRING"] == "q=1"
        # --http2: mod_http2 offers h2 by ALPN on the HTTPS port.
        ctx = ssl.create_default_context(cafile=str(pki / "site.crt"))
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == "h2"
        conf = (srv.root / "httpd.conf").read_text()
        assert "Protocols h2 h2c http/1.1" in conf


def test_client_certificate_under_verify_client(servers, app, pki):
    https_port = free_port()
    with servers.running("https-verify", app, mode="daemon", args=https_args(
            pki, https_port, "--ssl-environment", "--ssl-ca-certificate-file", pki / "ca.crt",
            "--ssl-verify-client", "/secure")) as srv:
        status, _, _ = https_get(https_port, "/open", pki)
        assert status == 200, srv.error_log_tail()

        def secure(with_cert):
            ctx = ssl.create_default_context(cafile=str(pki / "site.crt"))
            ctx.post_handshake_auth = True      # TLS 1.3: renegotiation per location
            if with_cert:
                ctx.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
            conn = tls_connection(https_port, ctx)
            try:
                conn.request("GET", "/secure/env", headers={"Host": f"localhost:{https_port}"})
                r = conn.getresponse()
                return r.status, r.read()
            except (ssl.SSLError, ConnectionError) as e:
                return None, repr(e)
            finally:
                conn.close()

        status, body = secure(with_cert=True)
        assert status == 200, (body, srv.error_log_tail())
        env = json.loads(body)
        assert env["SSL_CLIENT_S_DN_CN"] == "test-client", env
        assert env["SSL_CLIENT_VERIFY"] == "SUCCESS", env
        status, body = secure(with_cert=False)
        assert status != 200, body


def test_virtual_hosts_by_server_name_and_alias(servers, app):
    with servers.running("vhost", app, mode="daemon", args=[
            "--server-name", "app.test", "--server-alias", "alias.test",
            "--server-alias", "*.wild.test"]) as srv:
        for host in ("app.test", "alias.test", "x.wild.test", f"app.test:{srv.port}"):
            r = requests.get(srv.url("/env"), headers={"Host": host}, timeout=30)
            assert r.status_code == 200, (host, srv.error_log_tail())
            assert r.json()["SERVER_NAME"] == host.split(":")[0]
        for host in ("other.test", "localhost", "127.0.0.1"):
            r = requests.get(srv.url("/env"), headers={"Host": host}, timeout=30)
            assert r.status_code == 403, host
        assert f"Server URL         : http://app.test:{srv.port}/" in srv.setup_output


def test_allow_localhost(servers, app):
    with servers.running("vhost-local", app, args=[
            "--server-name", "app.test", "--allow-localhost"]) as srv:
        # From 127.0.0.1 (localhost), another host name is served too.
        r = requests.get(srv.url("/env"), headers={"Host": "other.test"}, timeout=30)
        assert r.status_code == 200, srv.error_log_tail()


def test_include_file_setenv_passenv_envvars(servers, ws, app):
    d = ws.new_dir("express-env")
    included = app.parent / "included.wsgi"
    include = write(d / "site.conf", f"""\
SetEnv FROM_INCLUDE yes
SetEnv ROOT_FROM_DEFINE ${{MOD_WSGI_SERVER_ROOT}}
<IfDefine MOD_WSGI_VIRTUAL_HOST>
SetEnv VIRTUAL_HOST_DEFINED yes
</IfDefine>
<IfDefine !MOD_WSGI_WITH_HTTPS>
SetEnv NO_HTTPS yes
</IfDefine>
<IfModule !headers_module>
LoadModule headers_module ${{MOD_WSGI_MODULES_DIRECTORY}}/mod_headers.so
</IfModule>
Header set X-From-Include present
# process-group: the port from apachectl's MOD_WSGI_HTTP_PORT.
<Directory "{included.parent}">
    Require all granted
</Directory>
WSGIScriptAlias /included "{included}" application-group=%{{GLOBAL}} process-group=localhost:${{MOD_WSGI_HTTP_PORT}}
""")
    envvars = write(d / "vars.sh", "FROM_ENVVARS='from the envvars script'\nexport FROM_ENVVARS\n")
    with servers.running("express-env", app, mode="daemon", args=[
            "--server-name", "localhost", "--include-file", include,
            "--setenv", "GREETING", "hello world", "--setenv", "EMPTY", "",
            "--passenv", "FROM_ENVVARS", "--envvars-script", envvars]) as srv:
        assert (srv.root / "envvars").read_text() == f". '{envvars}'\n"
        r = requests.get(srv.url("/env"), headers={"Host": "localhost"}, timeout=30)
        assert r.status_code == 200, srv.error_log_tail()
        env = r.json()
        assert env["GREETING"] == "hello world"
        assert env["EMPTY"] == ""
        assert env["FROM_INCLUDE"] == "yes"
        assert env["ROOT_FROM_DEFINE"] == str(srv.root)
        assert env["VIRTUAL_HOST_DEFINED"] == "yes"
        assert env["NO_HTTPS"] == "yes"
        assert env["FROM_ENVVARS"] == "from the envvars script"
        # apachectl's exports and the envvars script reach the daemon.
        assert env["os.environ.FROM_ENVVARS"] == "from the envvars script"
        assert env["os.environ.MOD_WSGI_SERVER_ROOT"] == str(srv.root)
        assert r.headers.get("X-From-Include") == "present"
        # The include file's mount wins over the application at /.
        r = requests.get(srv.url("/included"), headers={"Host": "localhost"}, timeout=30)
        assert r.status_code == 200, srv.error_log_tail()
        assert r.text == "from the include file"


def test_limit_request_body(servers, app):
    with servers.running("limit-body", app, args=["--limit-request-body", "1000"]) as srv:
        r = srv.post("/upload", data=b"x" * 1000)
        assert r.status_code == 200, srv.error_log_tail()
        assert r.json() == {"length": 1000}
        assert srv.post("/upload", data=b"x" * 1001).status_code == 413
        assert "LimitRequestBody 1000" in (srv.root / "httpd.conf").read_text()


@pytest.mark.parametrize("args,needle", [
    (["--https-port", "8443", "--ssl-certificate", "/nonexistent/site"], "--server-name"),
    (["--server-name", "localhost", "--https-port", "8443"], "needs a certificate"),
    (["--ssl-environment"], "--ssl-environment needs --https-port"),
    (["--server-alias", "x.test"], "--server-alias needs --server-name"),
])
def test_refused_combinations(binaries, ws, app, args, needle):
    root = ws.new_dir("https-refused")
    proc = run([express_path(), "setup-server", app, "--port", str(free_port()),
                "--server-root", root / "srv", "--user", APACHE_USER,
                "--group", APACHE_GROUP, "--python-home", python_home(), *args])
    assert proc.returncode == 1, proc.out
    assert needle in proc.out, proc.out
