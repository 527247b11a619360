"""Flask application used by tests/test_flask.py."""

import hashlib

from flask import Flask, jsonify, redirect, request, session, url_for

app = Flask(__name__)
app.secret_key = "rwsgi-test-secret-key-not-for-production"
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024


@app.get("/")
def index():
    return "<h1>rwsgi flask test app</h1>"


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        return jsonify(name=request.form.get("name"), items=request.form.getlist("item"),
                       text=request.form.get("text"))
    return ('<form method="post"><input name="name"><input name="item">'
            '<textarea name="text"></textarea></form>')


@app.post("/upload")
def upload():
    f = request.files["file"]
    data = f.read()
    return jsonify(filename=f.filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest(),
                   note=request.form.get("note"))


@app.post("/login")
def login():
    session["user"] = request.form["user"]
    return redirect(url_for("whoami"))


@app.get("/whoami")
def whoami():
    return jsonify(user=session.get("user"))


@app.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("whoami"))


@app.get("/old")
def old():
    return redirect(url_for("target", x="1"))


@app.get("/target")
def target():
    return jsonify(reached=True, x=request.args.get("x"), script_root=request.script_root)


@app.route("/api/echo", methods=["POST"])
def api_echo():
    payload = request.get_json()
    return jsonify(received=payload, method=request.method,
                   content_type=request.content_type)


@app.get("/api/info")
def api_info():
    return jsonify(path=request.path, args=request.args.to_dict(),
                   remote_addr=request.remote_addr, url_root=request.url_root)
