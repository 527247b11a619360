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


def _make_log_handler_class():
    import logging

    class LogHandler(logging.Handler):
        """mod_wsgi.LogHandler: a logging handler writing each record, as
        formatted, as lines of Apache's error log (those of the request
        being served carry its client, as wsgi.errors lines do)."""

        def emit(self, record):
            try:
                text = self.format(record)
                mod_wsgi._log_write((text.rstrip("\n") + "\n").encode("utf-8", "backslashreplace"))
            except Exception:
                self.handleError(record)

    LogHandler.__module__ = "mod_wsgi"
    return LogHandler


def _mod_wsgi_getattr(name):
    # mod_wsgi.LogHandler is made on first use: importing logging at every
    # interpreter's start would cost every process.
    if name == "LogHandler":
        cls = _make_log_handler_class()
        mod_wsgi.LogHandler = cls
        return cls
    raise AttributeError(f"module 'mod_wsgi' has no attribute {name!r}")


mod_wsgi.__getattr__ = _mod_wsgi_getattr


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


def shutdown(run_atexit=True):
    """Process exit: publish process_stopping (and the subscribe_shutdown
    callbacks), run atexit callbacks unless WSGIDestroyInterpreter is Off
    (run_atexit false), and flush output."""
    import atexit
    try:
        _process_stopping()
        if run_atexit:
            atexit._run_exitfuncs()
    finally:
        flush_stdio()


# ---- mod_wsgi 6 events (the Rust side calls the _request_* hooks only once
# a subscriber exists or metrics recording was started) ----------------------

# _thread._local is threading.local without importing threading (whose
# objects would make every full garbage collection of the process longer).
from _thread import _local

mod_wsgi.event_callbacks = []
mod_wsgi.shutdown_callbacks = []
mod_wsgi.signal_callbacks = []
mod_wsgi.active_requests = {}
_current = _local()


def subscribe_events(callback):
    """Registers callback(name, **event) for every event; returns it (so it
    can be a decorator)."""
    mod_wsgi.event_callbacks.append(callback)
    mod_wsgi._enable_events()
    return callback


def subscribe_shutdown(callback):
    """Registers callback(name, **event) for process_stopping only."""
    mod_wsgi.shutdown_callbacks.append(callback)
    mod_wsgi._enable_events()
    return callback


def subscribe_signals(callback):
    """Registers callback(name, **event) for process_signal only: a SIGHUP
    or SIGUSR2 sent to the daemon process (signum=). Daemon mode only, as
    mod_wsgi: elsewhere the callback is never called (a warning says so)."""
    if not mod_wsgi.process_group:
        sys.stderr.write(
            "RWSGI0089: mod_wsgi.subscribe_signals() called outside daemon mode; "
            "the callback will not be invoked (signals reach subscribers only in "
            "daemon processes)\n"
        )
    mod_wsgi.signal_callbacks.append(callback)
    return callback


subscribe_events.__module__ = subscribe_shutdown.__module__ = "mod_wsgi"
subscribe_signals.__module__ = "mod_wsgi"
mod_wsgi.subscribe_events = subscribe_events
mod_wsgi.subscribe_shutdown = subscribe_shutdown
mod_wsgi.subscribe_signals = subscribe_signals


def _children_get_a_clean_signal_mask():
    """Daemon mode: the process's own signals (SIGTERM, SIGINT, SIGHUP,
    SIGUSR1, SIGUSR2, SIGXCPU) are blocked in every thread and taken by its
    main thread, and a child process inherits the blocked mask of the
    thread that forks it: a subprocess the application starts would ignore
    Popen.terminate() and Ctrl-C. subprocess starts its children with the
    signals unblocked in the calling thread (one arriving meanwhile is
    passed on to the main thread by the module's handler), and a child
    made with os.fork() gets them back unblocked with their default
    actions, as under mod_wsgi, whose daemons block no signal."""
    import signal
    import subprocess

    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if not blocked:
        return
    real_signal = signal.signal
    execute_child = subprocess.Popen._execute_child

    def _execute_child(self, *args, **kwargs):
        old = signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)
        try:
            return execute_child(self, *args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)

    _execute_child.__wrapped__ = execute_child
    subprocess.Popen._execute_child = _execute_child

    def after_fork_in_child():
        for signum in blocked:
            try:
                real_signal(signum, signal.SIG_DFL)
            except (ValueError, OSError):
                pass  # not the main interpreter: the module's handler stays
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)

    os.register_at_fork(after_in_child=after_fork_in_child)


if mod_wsgi.process_group:
    _children_get_a_clean_signal_mask()


def _dispatch(callbacks, name, event):
    """Calls each subscriber in registration order; a dict it returns is
    merged into the event for the next ones. A subscriber's exception is
    logged and does not stop the others."""
    for callback in list(callbacks):
        try:
            result = callback(name, **event)
        except Exception:
            sys.stderr.write(
                "RWSGI0086: exception in mod_wsgi event subscriber %r for event %r:\n%s"
                % (callback, name, traceback.format_exc())
            )
        else:
            if isinstance(result, dict):
                event.update(result)
    return event


def _request_started(request_id, thread_id, request_data, environ, application,
                     request_start, queue_start, daemon_start, application_start):
    # A sub-request inside a request on this thread (embedded mode) puts
    # the outer request back at its end.
    outer = getattr(_current, "outer", [])
    outer.append((getattr(_current, "request_id", None), getattr(_current, "request_data", None)))
    _current.outer = outer
    _current.request_id = request_id
    _current.request_data = request_data
    event = {
        "request_id": request_id,
        "thread_id": thread_id,
        "daemon_connects": 1 if queue_start else 0,
        "daemon_restarts": int(environ.get("mod_wsgi.daemon_restarts") or 0),
        "server_pid": int(environ.get("mod_wsgi.server_pid") or os.getpid()),
        "request_start": request_start,
        "queue_start": queue_start,
        "daemon_start": daemon_start,
        "application_object": application,
        "request_environ": environ,
        "application_start": application_start,
        "request_data": request_data,
    }
    if request_id is not None:
        mod_wsgi.active_requests[request_id] = dict(event)
    if mod_wsgi.event_callbacks:
        _dispatch(mod_wsgi.event_callbacks, "request_started", event)
    return event.get("application_object", application)


def _response_started(status, headers, exc_info):
    if mod_wsgi.event_callbacks:
        _dispatch(mod_wsgi.event_callbacks, "response_started", {
            "request_id": getattr(_current, "request_id", None),
            "response_status": status,
            "response_headers": headers,
            "exception_info": exc_info,
            "request_data": getattr(_current, "request_data", None),
        })


def _request_exception(exc_info):
    if mod_wsgi.event_callbacks:
        event = {"request_id": getattr(_current, "request_id", None),
                 "exception_info": exc_info}
        data = getattr(_current, "request_data", None)
        if data is not None:
            event["request_data"] = data
        _dispatch(mod_wsgi.event_callbacks, "request_exception", event)


_FINISHED_KEYS = (
    "request_id", "thread_id", "request_data", "request_start", "queue_start",
    "daemon_start", "application_start", "application_finish", "application_time",
    "input_reads", "input_length", "input_time", "output_writes", "output_length",
    "output_time", "status", "cpu_user_time", "cpu_system_time", "cpu_time",
    "gil_wait_time", "gil_wait_count",
)


def _request_finished(*values):
    event = dict(zip(_FINISHED_KEYS, values))
    request_id = event["request_id"]
    started = mod_wsgi.active_requests.pop(request_id, None)
    event["server_pid"] = started["server_pid"] if started else os.getpid()
    outer = getattr(_current, "outer", None)
    _current.request_id, _current.request_data = outer.pop() if outer else (None, None)
    if mod_wsgi.event_callbacks:
        _dispatch(mod_wsgi.event_callbacks, "request_finished", event)


def _process_stopping():
    if not (mod_wsgi.event_callbacks or mod_wsgi.shutdown_callbacks):
        return
    reason = mod_wsgi._shutdown_reason()
    _dispatch(mod_wsgi.event_callbacks, "process_stopping", {"shutdown_reason": reason})
    _dispatch(mod_wsgi.shutdown_callbacks, "process_stopping", {"shutdown_reason": reason})


def _process_signal(signum):
    """A signal for the application (daemon mode): process_signal to the
    event and signal subscribers."""
    _dispatch(mod_wsgi.event_callbacks, "process_signal", {"signum": signum})
    _dispatch(mod_wsgi.signal_callbacks, "process_signal", {"signum": signum})


def add_python_path(paths):
    """WSGIPythonPath / python-path: each directory through
    site.addsitedir (its .pth files are read), then what that added moved,
    in order, to the start of sys.path, ahead of the standard library and
    site-packages, as mod_wsgi does."""
    import site
    old = list(sys.path)
    for p in paths:
        site.addsitedir(p)
    known = set(old)
    added = [p for p in sys.path if p not in known]
    sys.path[:] = added + [p for p in sys.path if p in known]


def put_home_first(home):
    """WSGIDaemonProcess home=: the directory first on sys.path, as
    mod_wsgi does in daemon mode (like the script's directory for the
    python command), unless it is first already."""
    if not sys.path or sys.path[0] != home:
        sys.path.insert(0, home)


# wsgi.errors (mod_wsgi.Log, one per request) is a text stream.
io.TextIOBase.register(mod_wsgi.Log)

class RequestTimeout(SystemExit):
    """Raised in a request's thread when it ran longer than request-timeout
    and the group has interrupt-timeout (mod_wsgi WSGIDaemonProcess
    interrupt-timeout). A SystemExit, as in mod_wsgi, so `except Exception`
    in the application does not swallow it; the request is answered 504."""


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
