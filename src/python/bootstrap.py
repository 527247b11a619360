# Python half of rwsgi's interpreter set-up, run once per interpreter by
# src/python/mod.rs after the built-in `mod_wsgi` module is registered.
# Only start-up and error paths live here; the request path is in Rust.
import hashlib
import io
import os
import sys
import traceback
import types

import mod_wsgi


class LogSink(io.RawIOBase):
    """Raw binary stream whose bytes become lines in Apache's error log,
    against the request the writing thread is serving (if any)."""

    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, b):
        data = bytes(b)
        mod_wsgi._log_write(data)
        return len(data)


def make_log_stream(name):
    """A text stream (io.TextIOWrapper, with .buffer) to the error log.
    Writes go straight to the sink, which logs complete lines and keeps a
    partial line per thread until its newline or the end of the request."""
    return io.TextIOWrapper(
        LogSink(name),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


def module_name(path):
    """mod_wsgi's module name for a script file: _mod_wsgi_<md5 of the path>."""
    return "_mod_wsgi_" + hashlib.md5(path.encode("utf-8", "surrogateescape")).hexdigest()


def load_script(path):
    """Executes the WSGI script file `path` as a new module (registered in
    sys.modules under module_name(path)) and returns it. Exceptions propagate,
    and the half-made module is removed again."""
    name = module_name(path)
    with open(path, "rb") as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = path
    old = sys.modules.get(name)
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        if old is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = old
        raise
    return module


def format_exception(exc_type, value, tb):
    """The traceback text of an exception, as traceback.print_exception."""
    return "".join(traceback.format_exception(exc_type, value, tb))


def flush_stdio():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def shutdown():
    """Process exit: run atexit callbacks and flush output."""
    import atexit
    try:
        atexit._run_exitfuncs()
    finally:
        flush_stdio()


def add_python_path(paths):
    import site
    for p in paths:
        site.addsitedir(p)


# wsgi.errors (mod_wsgi.Log, one per request) is a text stream.
io.TextIOBase.register(mod_wsgi.Log)

class RequestTimeout(BaseException):
    """Raised in a request's thread when it ran longer than request-timeout
    and the group has interrupt-timeout (mod_wsgi WSGIDaemonProcess
    interrupt-timeout). A BaseException, so `except Exception` in the
    application does not swallow it."""


RequestTimeout.__module__ = "mod_wsgi"
mod_wsgi.RequestTimeout = RequestTimeout

# In a daemon process, os._exit(n) must read as an exit with status n, not
# as signal n (the Apache parent is told only the number).
_os_exit = os._exit


def _exit(status):
    try:
        mod_wsgi._mark_exit(status)
    finally:
        _os_exit(status)


os._exit = _exit

sys.argv = ["mod_wsgi"]
sys.stdout = make_log_stream("<stdout>")
sys.stderr = make_log_stream("<stderr>")


class Restricted:
    """Stands in for sys.stdin/sys.stdout under WSGIRestrictStdin /
    WSGIRestrictStdout On: any attribute raises OSError, as mod_wsgi's."""

    __slots__ = ("_name",)

    def __init__(self, name):
        object.__setattr__(self, "_name", name)

    def __getattribute__(self, attr):
        raise OSError("%s access restricted by mod_wsgi" % object.__getattribute__(self, "_name"))

    def __setattr__(self, attr, value):
        raise OSError("%s access restricted by mod_wsgi" % object.__getattribute__(self, "_name"))


Restricted.__module__ = "mod_wsgi"
mod_wsgi.Restricted = Restricted


def restrict(stdin, stdout, signals):
    """WSGIRestrictStdin, WSGIRestrictStdout, WSGIRestrictSignal."""
    if stdin:
        sys.stdin = Restricted("sys.stdin")
    if stdout:
        sys.stdout = Restricted("sys.stdout")
    if signals:
        import signal

        real = signal.signal
        pid = os.getpid()

        def restricted_signal(signalnum, handler):
            # A process the application forked may set its own handlers.
            if os.getpid() != pid:
                return real(signalnum, handler)
            stack = "".join(traceback.format_stack()[:-1])
            sys.stderr.write(
                "RWSGI0071: signal.signal(%r, ...) ignored: WSGIRestrictSignal is On "
                "(Apache and rwsgi use the signals of this process); called from:\n%s"
                % (signalnum, stack)
            )
            return handler

        restricted_signal.__wrapped__ = real
        signal.signal = restricted_signal
