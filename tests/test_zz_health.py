"""Runs after the core tests of each MPM: whatever they did, no Apache child
crashed, no response iterable was left unclosed, and the servers still serve."""

import pytest

CRASH_SIGNS = ("Segmentation fault", "exit signal", "panicked at", "Fatal Python error",
               "core dumped")


@pytest.mark.parametrize("which", ["core_server", "alt_server"])
def test_servers_healthy(request, mpm, wsgi_mode, which):
    srv = request.getfixturevalue(which)
    r = srv.get("/app/env" if which == "alt_server" else "/env")
    assert r.status_code == 200
    log = srv.error_log()
    for bad in CRASH_SIGNS:
        assert bad not in log, f"{bad!r} in {srv.error_log_path}:\n{log[-6000:]}"
    # wsgiref.validate complains on stderr when an iterable is never closed.
    assert "Iterator garbage collected without being closed" not in log
    assert "Iterator read after closed" not in log
