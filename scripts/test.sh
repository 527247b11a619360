#!/usr/bin/env bash
# README command 2: the whole test suite. Installs what is missing, builds,
# runs the Rust unit tests (pure logic: directives, environ, validation,
# launcher config), then the integration suite: real Apache httpd with the
# real module, driving real WSGI, Flask and Django apps over HTTP, after
# the benchmark's 2-second smoke mode (it asserts no timing; it checks that
# every server in the benchmark starts and answers correctly), and mod_wsgi's
# integration suite (scripts/conformance.sh) when ../shared/conformance exists.
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
# mod_wsgi's own integration suite, when its copy is beside the clone: the
# score is printed; below tests/conformance-floor.txt fails the run (after
# the tests below have run too).
conformance=0
if [ -d ../shared/conformance ]; then
    bash scripts/conformance.sh || conformance=$?
fi
# The mod_wsgi feature tests written for the event MPM, again under
# prefork (the core suite runs under all three MPMs by itself). The metrics
# and telemetry tests count per process and stay on event.
prefork=0
if [ $# -eq 0 ]; then
    RWSGI_TEST_FORCE_MPM=prefork "$venv/bin/python" -m pytest -q -p no:cacheprovider \
        tests/test_auth_scripts.py tests/test_wsgi_details.py tests/test_reload.py \
        tests/test_subinterp.py tests/test_slashes.py tests/test_handler_script.py \
        tests/test_interp_directives.py tests/test_log_handler.py || prefork=$?
fi
# Last, so its summary line closes the output.
status=0
"$venv/bin/python" -m pytest tests -v -p no:cacheprovider "$@" || status=$?
if [ "$prefork" -ne 0 ]; then
    echo "test.sh: the feature tests failed under the prefork MPM (see above)" >&2
    exit 1
fi
if [ "$conformance" -ne 0 ]; then
    echo "test.sh: the conformance suite failed (see its score above)" >&2
    exit 1
fi
exit "$status"
