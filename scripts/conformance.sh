#!/usr/bin/env bash
# mod_wsgi's own integration suite against rwsgi-express (run by
# scripts/test.sh when ../shared/conformance exists beside the clone).
#
# usage: scripts/conformance.sh [tests/wsgi/NAME ...]
#
# Copies the built launcher and module to a world-readable directory (the
# suite runs as the user 'suitetest', who may not be able to enter the
# clone; a copy also keeps a rebuild from changing them mid-run), runs
# ../shared/conformance/run-modwsgi-suite.sh on the copy, keeps its whole
# output in target/conformance.log, prints the failed checks and the score
# line ('N passed, M failed'), and exits 1 if fewer than the floor recorded
# in tests/conformance-floor.txt passed. Needs root (the runner creates and
# uses 'suitetest'), curl, lsof and openssl (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runner="$repo/../shared/conformance/run-modwsgi-suite.sh"
floor_file="$repo/tests/conformance-floor.txt"
[ -f "$runner" ] || { echo "conformance: $runner not found"; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
    echo "conformance: skipped (the suite runner must run as root)"
    exit 0
fi
missing=()
for tool in curl lsof openssl; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "conformance: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
floor=$(tr -d ' \n' < "$floor_file")
case "$floor" in ''|*[!0-9]*) echo "conformance: $floor_file must hold a number"; exit 1 ;; esac

bin=$(mktemp -d /tmp/rwsgi-conformance-XXXXXX)
trap 'rm -rf "$bin"' EXIT
chmod 755 "$bin"
install -m 755 target/release/rwsgi-express "$bin/rwsgi-express"
install -m 755 target/release/libmod_rwsgi.so "$bin/mod_rwsgi.so"
log="$repo/target/conformance.log"
start=$(date +%s)
bash "$runner" "$bin/rwsgi-express" "$@" > "$log" 2>&1 || true
elapsed=$(( $(date +%s) - start ))
score=$(tail -n 1 "$log")
passed=${score%% passed*}
case "$passed" in ''|*[!0-9]*) passed=0 ;; esac
# The failed checks, and a configuration or start-up error with its reason.
awk '/^  FAIL/ { print; next } /^ERROR|Syntax error|^AH[0-9]+/ { print; getline; print }' "$log" | head -n 400
echo "conformance: mod_wsgi's integration suite (of 359): $score in ${elapsed}s (floor $floor, log $log)"
if [ "$passed" -lt "$floor" ]; then
    echo "conformance: $passed passed is below the floor of $floor in tests/conformance-floor.txt"
    exit 1
fi
