#!/usr/bin/env bash
# Installs the Debian packages rwsgi needs to build and test, if missing:
# Apache httpd and its headers/apxs, libclang (bindgen), Debian's Python 3.11
# with headers, libpython and venv, curl/wrk for trying it out, gdb (rwsgi-express
# --enable-gdb), and Chromium with its WebDriver for the status page's browser test.
set -euo pipefail
pkgs=(apache2 apache2-dev libclang-dev clang python3.11 python3.11-dev libpython3.11-dev python3.11-venv curl gdb)
# tests/test_docker.py makes its debian:bookworm-slim base image with debootstrap.
command -v docker >/dev/null 2>&1 && pkgs+=(debootstrap)
# tests/test_status_page.py: the status page in headless Chromium.
pkgs+=(chromium chromium-driver)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian starts a system Apache on port 80 when apache2 is installed; rwsgi's
# launcher runs its own instances and does not need it.
if command -v cargo >/dev/null 2>&1; then :; elif [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
command -v cargo >/dev/null || { echo "install-deps: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
