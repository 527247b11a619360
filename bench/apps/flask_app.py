"""A small Flask application: one JSON view, mounted under /flask by app.py."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/flask/json")
def json_view():
    return jsonify(message="Hello, World!", framework="flask", items=[1, 2, 3])
