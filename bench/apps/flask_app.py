"""A small Flask application: one JSON view, mounted under /flask by app.py.

/flask/json answers a message and a list of 20 items (each a small object),
built per request as a view serializing some records would.
"""

from flask import Flask, jsonify

app = Flask(__name__)

ITEMS = 20


@app.route("/flask/json")
def json_view():
    items = [{"id": i, "name": f"item {i}", "price": i * 1.25, "tags": ["bench", "json"], "done": i % 2 == 0}
             for i in range(ITEMS)]
    return jsonify(message="Hello, World!", framework="flask", items=items)
