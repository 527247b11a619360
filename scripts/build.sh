#!/usr/bin/env bash
# Builds mod_rwsgi.so and rwsgi-express in release mode.
# RWSGI_PYTHON selects the Python whose libpython the module links; the
# default here is Debian's /usr/bin/python3.11, which Apache's unprivileged
# user can read (pyenv or other Pythons under /root cannot be).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export RWSGI_PYTHON="${RWSGI_PYTHON:-/usr/bin/python3.11}"
export PYO3_PYTHON="${PYO3_PYTHON:-$RWSGI_PYTHON}"
cargo build --release --workspace
ln -sf libmod_rwsgi.so target/release/mod_rwsgi.so
echo "build: target/release/mod_rwsgi.so and target/release/rwsgi-express (Python: $RWSGI_PYTHON)"
