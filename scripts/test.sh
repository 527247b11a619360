#!/usr/bin/env bash
# README command 2: the whole test suite. Installs what is missing, builds,
# runs the Rust unit tests (pure logic: directives, environ, validation,
# launcher config), then the integration suite: real Apache httpd with the
# real module, driving real WSGI, Flask and Django apps over HTTP.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export RWSGI_PYTHON="${RWSGI_PYTHON:-/usr/bin/python3.11}"
export PYO3_PYTHON="${PYO3_PYTHON:-$RWSGI_PYTHON}"
cargo test --release -p rwsgi-core -p rwsgi-express
venv="$(bash scripts/test-env.sh | tail -n 1)"
"$venv/bin/python" -m pytest tests -v -p no:cacheprovider "$@"
