#!/usr/bin/env bash
# Creates (idempotently) the virtualenv used by the rwsgi integration tests.
#
# The venv doubles as the Python home of the applications served by Apache, so
# it must live somewhere the unprivileged Apache user (nobody) can read, and it
# must be built from the same interpreter the module links against
# (Debian's /usr/bin/python3.11).
#
# Usage:  VENV=$(scripts/test-env.sh | tail -n1)
#         "$VENV/bin/python" -m pytest tests -v
set -euo pipefail

VENV="${RWSGI_TEST_VENV:-/var/tmp/rwsgi-test-venv}"
PYTHON="${RWSGI_PYTHON:-/usr/bin/python3.11}"

if [ ! -x "$PYTHON" ]; then
    echo "test-env.sh: $PYTHON not found (install python3.11 and python3.11-venv)" >&2
    exit 1
fi

# Packages the suite and the served test apps need.
PACKAGES=(
    "pytest>=8,<9"
    "pytest-timeout>=2,<3"
    "requests>=2.31,<3"
    "flask>=3,<4"
    "django>=5,<6"
    # Third-party WSGI applications served by tests/test_thirdparty.py.
    "httpbin>=0.10,<0.11"
    "radicale>=3,<4"
    "Trac>=1.6,<1.7"
    # tests/test_prometheus.py parses the metrics; test_status_page.py drives Chromium.
    "prometheus-client>=0.19,<1"
    "selenium>=4.15,<5"
    # rwsgi-express --application-type paste (tests/test_express_app_types.py).
    "PasteDeploy==3.1.0"
    # rwsgi-express --enable-coverage (tests/test_express_debug.py).
    "coverage>=7,<8"
    # rwsgi-express --enable-telemetry's ingester (tests/test_express_telemetry.py).
    "mod_wsgi-telemetry>=1.1,<2"
    # mod_wsgi-express setup-server makes the server root that
    # tests/test_mod_wsgi_root.py serves with mod_rwsgi.so swapped in
    # (compiled against Apache's headers: apache2-dev).
    "mod_wsgi==6.1.1"
)

marker="$VENV/.rwsgi-test-env"
want="$(printf '%s\n' "$PYTHON" "${PACKAGES[@]}")"

if [ -x "$VENV/bin/python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
    :  # already set up
else
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" >&2; then
            echo "test-env.sh: cannot create $VENV (Debian: apt-get install python3.11-venv)" >&2
            rm -rf "$VENV"
            exit 1
        fi
    fi
    "$VENV/bin/python" -m pip install --no-cache-dir -q --disable-pip-version-check \
        "${PACKAGES[@]}" >&2
    printf '%s\n' "$want" > "$marker"
fi

# Apache's children run as nobody: every level up to the venv must be
# traversable and its files readable.
chmod -R a+rX "$VENV"
d="$(dirname "$VENV")"
while [ "$d" != "/" ]; do
    if ! [ "$(stat -c %A "$d" | cut -c10)" = "x" ] && ! [ "$(stat -c %A "$d" | cut -c10)" = "t" ]; then
        echo "test-env.sh: warning: $d is not traversable by other users;" \
             "Apache's children (nobody) will not be able to use $VENV" >&2
    fi
    d="$(dirname "$d")"
done

echo "$VENV"
