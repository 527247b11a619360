# TEST ONLY (tests/test_docker.py): a stand-in for the official
# rust:<version>-bookworm image on a machine that has a Docker engine but no
# registry. The same layout as the official image (RUSTUP_HOME=/usr/local/rustup,
# CARGO_HOME=/usr/local/cargo, its bin on PATH, a C compiler and linker), made
# from a local debian:bookworm-slim (debootstrap) and this machine's
# installed Rust toolchain, which the test puts in the build context:
#   rustup/   settings.toml and toolchains/<name>/{bin,lib,libexec,etc}
#   cargo/    bin/rustup and its proxies (cargo, rustc, ...)
# docker/Dockerfile is built against it exactly as against the real image.
FROM debian:bookworm-slim
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gcc libc6-dev binutils ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN rustc --version && cargo --version
LABEL org.rwsgi.local-base="rust toolchain copied from the test machine"
