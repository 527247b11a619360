"""rwsgi-express's --document-root with mod_wsgi-express's meaning, against
a real Apache: under the application's mount point, a file of the document
root is served from it and the application answers every other URL (with
mod_wsgi's SCRIPT_NAME/PATH_INFO for its mount point); with
--directory-index, directories too; under a virtual host (--server-name)
as well. --enable-docs serves rwsgi's documentation at /__wsgi__/docs; the
hidden --with-php5 is refused when PHP 5's module is absent."""

from conftest import APACHE_GROUP, APACHE_USER, express_path, python_home, run

APP = '''\
import json


def application(environ, start_response):
    body = json.dumps({"script_name": environ["SCRIPT_NAME"],
                       "path_info": environ["PATH_INFO"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''


def write(path, text, mode=0o644):
    path.write_text(text)
    path.chmod(mode)
    return path


def make_docroot(ws):
    doc = ws.new_dir("static-docroot")
    (doc / "app").mkdir(mode=0o755)
    (doc / "app" / "sub").mkdir(mode=0o755)
    write(doc / "app" / "style.css", "body {}\n")
    write(doc / "app" / "sub" / "index.html", "<p>sub index</p>\n")
    write(doc / "top.txt", "top\n")
    return doc


def test_document_root_files_under_the_mount_point(servers, ws):
    app = write(ws.new_dir("static-app") / "app.wsgi", APP)
    doc = make_docroot(ws)
    with servers.running("static", app, mode="daemon", args=[
            "--mount-point", "/app", "--document-root", doc,
            "--server-name", "localhost", "--allow-localhost"]) as srv:
        r = srv.get("/app/style.css")
        assert r.status_code == 200 and r.text == "body {}\n", srv.error_log_tail()
        assert r.headers["Content-Type"].startswith("text/css")
        # Not a file: the application, with its mount point as SCRIPT_NAME.
        assert srv.get("/app/missing.css").json() == {
            "script_name": "/app", "path_info": "/missing.css"}
        assert srv.get("/app").json() == {"script_name": "/app", "path_info": ""}
        # A directory is the application's without --directory-index.
        assert srv.get("/app/sub/").json() == {"script_name": "/app", "path_info": "/sub/"}
        # Outside the mount point the document root serves as before.
        assert srv.get("/top.txt").text == "top\n"


def test_directories_with_directory_index_at_root_mount(servers, ws):
    app = write(ws.new_dir("static-app") / "app.wsgi", APP)
    doc = make_docroot(ws)
    with servers.running("static-index", app, mode="embedded", args=[
            "--document-root", doc, "--directory-index", "index.html",
            "--enable-docs"]) as srv:
        assert srv.get("/top.txt").text == "top\n"
        assert srv.get("/app/sub/").text == "<p>sub index</p>\n"
        assert srv.get("/elsewhere").json() == {"script_name": "", "path_info": "/elsewhere"}
        # --enable-docs: rwsgi's documentation.
        r = srv.get("/__wsgi__/docs/")
        assert r.status_code == 200 and 'href="express.md"' in r.text, r.text[:500]
        r = srv.get("/__wsgi__/docs/express.md")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        assert "--enable-docs" in r.text


def test_with_php5_needs_the_module(ws):
    app = write(ws.new_dir("static-app") / "app.wsgi", APP)
    p = run([express_path(), "setup-server", app, "--server-root", ws.servers / "php5",
             "--python-home", python_home(), "--user", APACHE_USER, "--group", APACHE_GROUP,
             "--with-php5"])
    assert p.returncode == 1
    assert "--with-php5: PHP 5's Apache module /usr/lib/apache2/modules/libphp5.so does not " \
           "exist" in p.out, p.out
