#!/usr/bin/env bash
# README command 1: install what is missing, build rwsgi, and serve the
# example Flask application (examples/flask_app) with rwsgi-express on
# http://localhost:${PORT:-8000}/ until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
venv="${RWSGI_EXAMPLE_VENV:-/var/tmp/rwsgi-example-venv}"
if [ ! -x "$venv/bin/python" ]; then
    /usr/bin/python3.11 -m venv "$venv"
fi
"$venv/bin/pip" install --no-cache-dir -q flask
chmod -R a+rX "$venv"
user_args=()
if [ "$(id -u)" -eq 0 ]; then
    # Apache binds the port as root; its children run as this user.
    user_args=(--user "${RWSGI_USER:-nobody}" --group "${RWSGI_GROUP:-nogroup}")
fi
echo "quickstart: serving examples/flask_app on http://localhost:${PORT:-8000}/ (Ctrl-C stops)"
exec target/release/rwsgi-express start-server examples/flask_app/app.wsgi \
    --port "${PORT:-8000}" --python-home "$venv" --log-to-terminal "${user_args[@]}"
