#!/usr/bin/env bash
# Side-by-side benchmark of rwsgi against mod_wsgi 6.1.1, bare Apache,
# gunicorn and granian. See docs/performance.md.
#
#   bash bench/run.sh            full run: bench/results/<timestamp>.{json,txt}
#                                and docs/performance.md (about 30 minutes)
#   bash bench/run.sh --smoke    1-second runs, one round, small callgrind
#                                (2 valgrind sessions at a time); saves
#                                nothing (CI: about 2 minutes)
#   bash bench/run.sh --help     every option of bench/bench.py
#
# The daemon-mode soak test, bench/soak.py, is not run from here (nor in CI):
# after this script has made the virtualenv, `python3 bench/soak.py --help`.
#
# Installs what it needs: the benchmark virtualenv (RWSGI_BENCH_VENV, default
# /var/tmp/rwsgi-bench-venv, on /usr/bin/python3.11 and world-readable since
# Apache's children run as nobody) with mod_wsgi 6.1.1 (compiled against the
# local apxs), gunicorn, granian and Flask; wrk and valgrind from Debian's
# packages; the module and launcher with scripts/build.sh when missing (or
# always with RWSGI_BENCH_BUILD=1). Needs root (Apache binds as root and drops
# to nobody; the benchmark runs in a private network namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

VENV="${RWSGI_BENCH_VENV:-/var/tmp/rwsgi-bench-venv}"
PYTHON=/usr/bin/python3.11
PEERS=(mod-wsgi==6.1.1 gunicorn==27.0.1 granian==2.8.7 flask==3.1.3)

if [ "$(id -u)" != 0 ]; then
    echo "bench/run.sh: must run as root (Apache starts as root and drops to nobody)" >&2
    exit 1
fi

apt_updated=
apt_install() {
    if [ -z "$apt_updated" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

missing=()
for pkg in wrk valgrind apache2 apache2-dev python3.11-dev python3.11-venv util-linux; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/run.sh: installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "bench/run.sh: creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC2016
if ! "$VENV/bin/python" - "${PEERS[@]}" <<'EOF'
import sys, importlib.metadata as m
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    try:
        if m.version(name) != version:
            sys.exit(1)
    except m.PackageNotFoundError:
        sys.exit(1)
EOF
then
    echo "bench/run.sh: installing ${PEERS[*]} into $VENV"
    "$VENV/bin/pip" install --no-cache-dir -q "${PEERS[@]}"
fi

if [ -n "${RWSGI_BENCH_BUILD:-}" ] || [ ! -e target/release/libmod_rwsgi.so ] || [ ! -x target/release/rwsgi-express ]; then
    bash scripts/build.sh
fi

export RWSGI_BENCH_VENV="$VENV"
exec "$VENV/bin/python" bench/bench.py "$@"
