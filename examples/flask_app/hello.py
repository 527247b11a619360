"""A small Flask application served by rwsgi: a page, a JSON view and a form.

Serve it with (as a normal user; as root add --user and --group):

    rwsgi-express start-server examples/flask_app/app.wsgi --port 8000

then open http://localhost:8000/.
"""

import platform
import time

from flask import Flask, jsonify, render_template_string, request

app = Flask(__name__)

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>rwsgi Flask example</title></head>
<body>
  <h1>Hello from Flask on rwsgi</h1>
  <p>Served by <code>{{ server }}</code>, Python {{ python }}.</p>
  <ul>
    <li><a href="{{ url_for('info') }}">JSON view</a></li>
    <li><a href="{{ url_for('greet') }}">A form</a></li>
  </ul>
</body>
</html>
"""

FORM = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Greeting form</title></head>
<body>
  {% if name %}<p id="greeting">Hello, {{ name }}!</p>{% endif %}
  <form method="post" action="{{ url_for('greet') }}">
    <label>Your name <input name="name" value="{{ name or '' }}"></label>
    <button type="submit">Greet me</button>
  </form>
  <p><a href="{{ url_for('index') }}">Back</a></p>
</body>
</html>
"""


@app.get("/")
def index():
    return render_template_string(PAGE, server=request.environ.get("SERVER_SOFTWARE", "?"),
                                  python=platform.python_version())


@app.get("/api/info")
def info():
    env = request.environ
    return jsonify(
        time=time.time(),
        python=platform.python_version(),
        script_name=env.get("SCRIPT_NAME"),
        path_info=env.get("PATH_INFO"),
        multithread=env.get("wsgi.multithread"),
        multiprocess=env.get("wsgi.multiprocess"),
        mod_wsgi_version=".".join(map(str, env.get("mod_wsgi.version", ()))),
    )


@app.route("/greet", methods=["GET", "POST"])
def greet():
    name = request.form.get("name", "").strip() if request.method == "POST" else None
    return render_template_string(FORM, name=name)
