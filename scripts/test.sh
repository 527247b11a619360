#!/usr/bin/env bash
# README command 2: the whole test suite. Installs what is missing, builds,
# runs the Rust unit tests (pure logic: directives, environ, validation,
# launcher config), then the integration suite: real Apache httpd with the
# real module, driving real WSGI, Flask and Django apps over HTTP, after
# the benchmark's 2-second smoke mode (it asserts no timing; it checks that
# every server in the benchmark starts and answers correctly).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export RWSGI_PYTHON="${RWSGI_PYTHON:-/usr/bin/python3.11}"
export PYO3_PYTHON="${PYO3_PYTHON:-$RWSGI_PYTHON}"
cargo test --release -p rwsgi-core -p rwsgi-express
venv="$(bash scripts/test-env.sh | tail -n 1)"
if [ "$(id -u)" -eq 0 ] && [ -z "${RWSGI_SKIP_BENCH_SMOKE:-}" ]; then
    bash bench/run.sh --smoke
fi
# Last, so its summary line closes the output.
"$venv/bin/python" -m pytest tests -v -p no:cacheprovider "$@"
