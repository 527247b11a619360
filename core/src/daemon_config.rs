//! `WSGIDaemonProcess name [options]` (mod_wsgi 6): the raw argument string
//! turned into a typed, validated [`DaemonProcess`], independent of Apache.
//!
//! Option names, value syntax, limits and defaults are mod_wsgi 6's
//! (`wsgi_add_daemon_process` in `src/server/wsgi_daemon.c`, the
//! WSGIDaemonProcess reference and the 6.0.0/6.0.2 release notes). Where
//! mod_wsgi is lax, this parser refuses what mod_wsgi would silently
//! misread: non-numeric or partly numeric numbers (`atoi("10s")` is 10),
//! a repeated option (mod_wsgi keeps the last), an empty value, an empty
//! element of `supplementary-groups`. What needs the system (resolving user
//! and group names, "am I root" for `chroot=`, whether directories exist) is
//! left to the module.

use std::collections::HashMap;
use std::time::Duration;

use crate::directives::{parse_on_off, split_python_path, split_words, DirectiveError};

const D: &str = "WSGIDaemonProcess";

/// Every option mod_wsgi 6 accepts, in the order of its documentation.
#[rustfmt::skip]
pub const OPTIONS: &[&str] = &[
    "processes", "threads", "display-name", "home", "user", "group",
    "supplementary-groups", "umask", "lang", "locale", "chroot", "script-user",
    "script-group", "python-home", "python-path", "python-eggs", "switch-interval",
    "restart-interval", "maximum-requests", "inactivity-timeout", "request-timeout",
    "interrupt-timeout", "deadlock-timeout", "startup-timeout", "graceful-timeout",
    "eviction-timeout", "shutdown-timeout", "connect-timeout", "socket-timeout",
    "queue-timeout", "listen-backlog", "socket-user", "cpu-time-limit", "cpu-priority",
    "memory-limit", "virtual-memory-limit", "stack-size", "receive-buffer-size",
    "send-buffer-size", "header-buffer-size", "response-buffer-size",
    "response-socket-timeout", "response-flush-delay", "server-metrics",
];

/// Options mod_wsgi takes with an empty value (`python-path=''`, which
/// mod_wsgi-express writes when no `--python-path` is given): the option is
/// then as if not given. Every other option needs a value.
pub const MAY_BE_EMPTY: &[&str] = &[
    "display-name",
    "supplementary-groups",
    "lang",
    "locale",
    "python-home",
    "python-path",
    "python-eggs",
];

/// Largest value of a C `int`, the type mod_wsgi parses most numbers into.
const INT_MAX: i64 = i32::MAX as i64;
/// Largest value of mod_wsgi's `apr_int64_t` memory limits.
const INT64_MAX: i64 = i64::MAX;
/// mod_wsgi refuses `threads >= WSGI_STACK_LAST - 1` (0xffff - 1).
const MAX_THREADS: i64 = 0xffff - 2;

/// A user or group as mod_wsgi's options name it: a name, or `#id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user or group name, resolved by the module (`getpwnam`/`getgrnam`).
    Name(String),
    /// `#uid` / `#gid`: a numeric id.
    Id(u32),
}

/// One `WSGIDaemonProcess` directive: a daemon process group.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonProcess {
    /// The group name (first argument), selected by `WSGIProcessGroup` and
    /// `process-group=`; any non-empty word without `=` (mod_wsgi accepts any
    /// non-empty word; rwsgi refuses `=`, the sign of a forgotten name).
    pub name: String,
    /// `processes=num` (mod_wsgi WSGIDaemonProcess processes): number of daemon
    /// processes, at least 1; default 1.
    pub processes: u32,
    /// Whether `processes=` was given. mod_wsgi sets `wsgi.multiprocess` True
    /// when it was, even `processes=1`, and False when it was not.
    pub processes_given: bool,
    /// `threads=num` (threads): request threads per process, 0 to 65533;
    /// default 15. 0 is mod_wsgi 6's service mode: no requests, only
    /// `WSGIImportScript` scripts run.
    pub threads: u32,
    /// Whether `threads=` was given.
    pub threads_given: bool,
    /// `display-name=value` (display-name): process title; `%{GROUP}` means
    /// `(wsgi:NAME)`; default none (see [`DaemonProcess::display_title`]).
    pub display_name: Option<String>,
    /// `home=directory` (home): absolute initial working directory; default
    /// the home directory of `user`, else Apache's working directory.
    pub home: Option<String>,
    /// `user=name|#uid` (user): default Apache's `User` (`None`). Never root.
    pub user: Option<Principal>,
    /// `group=name|#gid` (group): primary group; default Apache's `Group` (`None`).
    pub group: Option<Principal>,
    /// `supplementary-groups=g1,g2` (supplementary-groups): extra groups added
    /// to the primary one; default none.
    pub supplementary_groups: Vec<Principal>,
    /// `umask=0nnn` (umask): octal, at most 0777; default `None`: inherited
    /// from the user Apache was started as (typically 0022).
    pub umask: Option<u32>,
    /// `lang=locale` (lang): `LANG` of the processes; default inherited.
    pub lang: Option<String>,
    /// `locale=locale` (locale): `LC_ALL` of the processes; default inherited.
    pub locale: Option<String>,
    /// `chroot=directory` (chroot, deprecated by mod_wsgi): absolute chroot
    /// jail; only possible when Apache starts as root; default none.
    pub chroot: Option<String>,
    /// `script-user=name|#uid` (script-user): required owner of the WSGI
    /// scripts (else 403); exclusive with `script_group`; default none.
    pub script_user: Option<Principal>,
    /// `script-group=name|#gid` (script-group): required group of the WSGI
    /// scripts (else 403); default none.
    pub script_group: Option<Principal>,
    /// `python-home=directory` (python-home): virtualenv or prefix, as
    /// `WSGIPythonHome`; default `WSGIPythonHome`'s value.
    pub python_home: Option<String>,
    /// `python-path=dir[:dir...]` (python-path): added with
    /// `site.addsitedir`, as `WSGIPythonPath`; default none.
    pub python_path: Vec<String>,
    /// `python-eggs=directory` (python-eggs): `PYTHON_EGG_CACHE`; default none.
    pub python_eggs: Option<String>,
    /// `switch-interval=seconds` (switch-interval): positive float for
    /// `sys.setswitchinterval()`; default `None`: Python's own (0.005 s).
    pub switch_interval: Option<Duration>,
    /// `restart-interval=secs` (restart-interval): restart each process after
    /// this long; 0 = never (default).
    pub restart_interval: Duration,
    /// `maximum-requests=nnn` (maximum-requests): restart a process after this
    /// many requests; 0 = never (default).
    pub maximum_requests: u32,
    /// `inactivity-timeout=secs` (inactivity-timeout): restart an idle process
    /// after this long; 0 = never (default).
    pub inactivity_timeout: Duration,
    /// `request-timeout=secs` (request-timeout): seconds one request may run
    /// before recovery starts (each request timed on its own, not mod_wsgi's
    /// mean over the daemon's threads); 0 = none (default).
    pub request_timeout: Duration,
    /// `interrupt-timeout=secs` (interrupt-timeout): when non-zero, a timed-out
    /// request first gets `mod_wsgi.RequestTimeout` raised in its thread and
    /// this long to unwind; 0 = no injection, restart directly (default).
    pub interrupt_timeout: Duration,
    /// `deadlock-timeout=secs` (deadlock-timeout): restart after the GIL was
    /// held this long; default 300 s.
    pub deadlock_timeout: Duration,
    /// `startup-timeout=secs` (startup-timeout): restart if the WSGI script has
    /// not loaded successfully after this long; 0 = none (default).
    pub startup_timeout: Duration,
    /// `graceful-timeout=secs` (graceful-timeout): after maximum-requests,
    /// restart-interval, cpu-time-limit or request-timeout, wait this long for
    /// the process to go idle before restarting it; default 15 s in mod_wsgi 6.
    pub graceful_timeout: Duration,
    /// `eviction-timeout=secs` (eviction-timeout): the same wait after a
    /// graceful restart signal; 0 = use `graceful_timeout` (default).
    pub eviction_timeout: Duration,
    /// `shutdown-timeout=secs` (shutdown-timeout): a process shutting down is
    /// killed after this long; default 5 s.
    pub shutdown_timeout: Duration,
    /// `connect-timeout=secs` (connect-timeout): how long an Apache child tries
    /// to connect to the daemon; default 15 s.
    pub connect_timeout: Duration,
    /// `socket-timeout=secs` (socket-timeout): timeout of each read/write
    /// between Apache child and daemon; `None` (default, or 0) = Apache's
    /// `Timeout` (see [`DaemonProcess::socket_timeout_or`]).
    pub socket_timeout: Option<Duration>,
    /// `queue-timeout=secs` (queue-timeout): a request not accepted by a
    /// daemon thread after this long gets 503 and is not run; 0 = none
    /// (default).
    pub queue_timeout: Duration,
    /// `listen-backlog=nnn` (listen-backlog): listen queue of the daemon
    /// socket; default 100.
    pub listen_backlog: u32,
    /// `socket-user=name|#uid` (socket-user): owner of the daemon's listener
    /// socket; default Apache's `User` (`None`).
    pub socket_user: Option<Principal>,
    /// `cpu-time-limit=secs` (cpu-time-limit): CPU seconds a process may use
    /// before it is restarted; 0 = no limit (default).
    pub cpu_time_limit: Duration,
    /// `cpu-priority=num` (cpu-priority): scheduling priority, -20 to 20; default 0.
    pub cpu_priority: i32,
    /// `memory-limit=bytes` (memory-limit): `RLIMIT_AS`/`RLIMIT_DATA`; 0 = no
    /// limit (default).
    pub memory_limit: u64,
    /// `virtual-memory-limit=bytes` (virtual-memory-limit): `RLIMIT_VMEM`;
    /// 0 = no limit (default).
    pub virtual_memory_limit: u64,
    /// `stack-size=bytes` (stack-size): stack of each request thread, at least
    /// 1; default `None`: the thread library's (8 MB on Linux).
    pub stack_size: Option<u32>,
    /// `receive-buffer-size=bytes` (receive-buffer-size): daemon socket receive
    /// buffer, at least 512; default (or 0) `None`: the system's.
    pub receive_buffer_size: Option<u32>,
    /// `send-buffer-size=bytes` (send-buffer-size): daemon socket send buffer,
    /// at least 512; default (or 0) `None`: the system's.
    pub send_buffer_size: Option<u32>,
    /// `header-buffer-size=bytes` (header-buffer-size): largest response header
    /// line, at least 8192; default (or 0) 32768.
    pub header_buffer_size: u32,
    /// `response-buffer-size=bytes` (response-buffer-size): mod_wsgi 6.0.2's
    /// runaway guard, a flush forced after this many bytes passed on without
    /// one; at least 65536; default (or 0) 8388608.
    pub response_buffer_size: u32,
    /// `response-socket-timeout=secs` (response-socket-timeout): timeout of a
    /// forced write to the client; `None` (default, or 0) = `socket_timeout`,
    /// else Apache's `Timeout` (see [`DaemonProcess::response_socket_timeout_or`]).
    pub response_socket_timeout: Option<Duration>,
    /// `response-flush-delay=msecs` (response-flush-delay, mod_wsgi 6.0.2):
    /// how long to wait for more response data before flushing when the
    /// daemon socket runs dry; 0 = flush at once; default 5 ms.
    pub response_flush_delay: Duration,
    /// `server-metrics=On|Off` (server-metrics): whether
    /// `mod_wsgi.server_metrics()` may read the scoreboard; default Off.
    pub server_metrics: bool,
}

impl DaemonProcess {
    /// A group named `name` with mod_wsgi's defaults for every option.
    #[rustfmt::skip]
    pub fn new(name: &str) -> DaemonProcess {
        let (zero, secs) = (Duration::ZERO, Duration::from_secs);
        DaemonProcess {
            name: name.to_string(),
            processes: 1, processes_given: false, threads: 15, threads_given: false,
            display_name: None, home: None, user: None, group: None,
            supplementary_groups: Vec::new(), umask: None, lang: None, locale: None,
            chroot: None, script_user: None, script_group: None,
            python_home: None, python_path: Vec::new(), python_eggs: None,
            switch_interval: None, restart_interval: zero, maximum_requests: 0,
            inactivity_timeout: zero, request_timeout: zero, interrupt_timeout: zero,
            deadlock_timeout: secs(300), startup_timeout: zero, graceful_timeout: secs(15),
            eviction_timeout: zero, shutdown_timeout: secs(5), connect_timeout: secs(15),
            socket_timeout: None, queue_timeout: zero, listen_backlog: 100, socket_user: None,
            cpu_time_limit: zero, cpu_priority: 0, memory_limit: 0, virtual_memory_limit: 0,
            stack_size: None, receive_buffer_size: None, send_buffer_size: None,
            header_buffer_size: 32768, response_buffer_size: 8_388_608,
            response_socket_timeout: None, response_flush_delay: Duration::from_millis(5),
            server_metrics: false,
        }
    }

    /// The process title: the `display-name` value, `%{GROUP}` (the whole
    /// value, as mod_wsgi compares it) meaning `(wsgi:NAME)`. Without
    /// `display-name` mod_wsgi leaves Apache's `argv[0]`; rwsgi uses
    /// `(wsgi:NAME)` then too, so daemon processes are always recognisable.
    /// (The module may have to truncate it to the space `argv[0]` had.)
    pub fn display_title(&self) -> String {
        match self.display_name.as_deref() {
            None | Some("%{GROUP}") => format!("(wsgi:{})", self.name),
            Some(title) => title.to_string(),
        }
    }

    /// The Apache child ↔ daemon socket timeout, given Apache's `Timeout`.
    pub fn socket_timeout_or(&self, apache_timeout: Duration) -> Duration {
        self.socket_timeout.unwrap_or(apache_timeout)
    }

    /// The client write timeout when forcing a flush: `response-socket-timeout`,
    /// else `socket-timeout`, else Apache's `Timeout`.
    pub fn response_socket_timeout_or(&self, apache_timeout: Duration) -> Duration {
        self.response_socket_timeout
            .unwrap_or(self.socket_timeout_or(apache_timeout))
    }

    /// The wait after a graceful restart signal: `eviction-timeout`, else
    /// `graceful-timeout` (0 = restart at once).
    pub fn effective_eviction_timeout(&self) -> Duration {
        if self.eviction_timeout.is_zero() {
            self.graceful_timeout
        } else {
            self.eviction_timeout
        }
    }
}

fn err(message: impl Into<String>) -> DirectiveError {
    DirectiveError {
        directive: D,
        message: message.into(),
    }
}

/// Where the word at the start of `s` ends, by the rules of [`split_words`]
/// (a word opening with a quote ends at the matching unescaped quote).
fn word_end(s: &str) -> usize {
    let mut chars = s.char_indices().peekable();
    match chars.peek() {
        Some(&(_, q)) if q == '"' || q == '\'' => {
            chars.next();
            while let Some((i, c)) = chars.next() {
                if c == '\\' && chars.peek().map(|&(_, n)| n) == Some(q) {
                    chars.next();
                } else if c == q {
                    return i + 1;
                }
            }
            s.len()
        }
        _ => s.find(char::is_whitespace).unwrap_or(s.len()),
    }
}

/// Takes one word (dequoted by [`split_words`]) from the start of `s`, as
/// Apache's `ap_getword_conf` does; returns it and the rest.
fn take_word(s: &str) -> Result<(String, &str), DirectiveError> {
    let s = s.trim_start();
    let end = word_end(s);
    let word = split_words(D, &s[..end])?.pop().unwrap_or_default();
    Ok((word, &s[end..]))
}

/// Takes one `name=value` option from the start of `s` as mod_wsgi's
/// `wsgi_parse_option` does: the name runs to `=`, the value (which may be
/// quoted: `display-name="my app"`) follows it. A whole quoted word
/// (`"display-name=my app"`) is accepted too.
fn take_option(s: &str) -> Result<(String, String, &str), DirectiveError> {
    let s = s.trim_start();
    let not_an_option = |word: &str| {
        err(format!(
            "unexpected argument {word:?}: options have the form name=value"
        ))
    };
    if s.starts_with(['"', '\'']) {
        let (word, rest) = take_word(s)?;
        let (name, value) = word.split_once('=').ok_or_else(|| not_an_option(&word))?;
        return Ok((name.to_string(), value.to_string(), rest));
    }
    let name_end = s
        .find(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or(s.len());
    if !s[name_end..].starts_with('=') {
        return Err(not_an_option(&s[..name_end]));
    }
    let after = &s[name_end + 1..];
    if after.is_empty() || after.starts_with(char::is_whitespace) {
        return Ok((s[..name_end].to_string(), String::new(), after));
    }
    let (value, rest) = take_word(after)?;
    Ok((s[..name_end].to_string(), value, rest))
}

/// A whole number in `min..=max` (decimal digits, optional `-`); `unit`
/// (`"seconds"`, `"bytes"`, ... or `""`) completes the messages.
fn int(option: &str, value: &str, min: i64, max: i64, unit: &str) -> Result<i64, DirectiveError> {
    let (of, sp) = if unit.is_empty() {
        ("", "")
    } else {
        (" of ", " ")
    };
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        let why = format!("{option} expects a whole number{of}{unit}, got {value:?}");
        return Err(err(why));
    }
    let overflow = if digits == value { i64::MAX } else { i64::MIN };
    match value.parse::<i64>().unwrap_or(overflow) {
        n if n < min => Err(err(format!(
            "{option} must be at least {min}{sp}{unit}, got {value:?}"
        ))),
        n if n > max => Err(err(format!(
            "{option} must be at most {max}{sp}{unit}, got {value:?}"
        ))),
        n => Ok(n),
    }
}

fn secs(option: &str, value: &str) -> Result<Duration, DirectiveError> {
    Ok(Duration::from_secs(
        int(option, value, 0, INT_MAX, "seconds")? as u64,
    ))
}

/// `0` (`None`: `zero` applies) or a size of at least `min` bytes.
fn size(option: &str, value: &str, min: i64, zero: &str) -> Result<Option<u32>, DirectiveError> {
    match int(option, value, 0, INT_MAX, "bytes")? {
        0 => Ok(None),
        n if n < min => Err(err(format!(
            "{option} must be 0 ({zero}) or at least {min} bytes, got {value:?}"
        ))),
        n => Ok(Some(n as u32)),
    }
}

fn principal(option: &str, value: &str) -> Result<Principal, DirectiveError> {
    match value.strip_prefix('#') {
        Some(id) => int(option, id, 0, u32::MAX as i64, "")
            .map(|n| Principal::Id(n as u32))
            .map_err(|_| {
                err(format!(
                    "{option} expects a name or #number (a numeric id), got {value:?}"
                ))
            }),
        None => Ok(Principal::Name(value.to_string())),
    }
}

fn absolute(option: &str, value: &str) -> Result<String, DirectiveError> {
    if value.starts_with('/') {
        Ok(value.to_string())
    } else {
        Err(err(format!(
            "{option} must be an absolute directory path, got {value:?}"
        )))
    }
}

/// An unknown option, with a hint for the usual slips (case, `_` for `-`,
/// a missing or extra letter at the end) and the valid names.
fn unknown(name: &str) -> DirectiveError {
    let norm = name.to_ascii_lowercase().replace('_', "-");
    let hint = OPTIONS
        .iter()
        .find(|o| norm.len() > 3 && (o.starts_with(norm.as_str()) || norm.starts_with(**o)))
        .map(|o| format!("; did you mean {o:?}?"))
        .unwrap_or_default();
    err(format!(
        "unknown option {name:?}{hint} (valid options: {}; each is described in README.md's \"WSGIDaemonProcess options\" table)",
        OPTIONS.join(", ")
    ))
}

/// Parses the arguments of `WSGIDaemonProcess`: `name [option=value ...]`.
///
/// Errors: a missing or bad name, a word that is not `name=value`, an
/// unknown, repeated or empty option, a bad value (each naming the option,
/// the value and the rule), `user` root, both `script-user` and `script-group`.
pub fn parse_daemon_process(args: &str) -> Result<DaemonProcess, DirectiveError> {
    let (name, mut rest) = take_word(args)?;
    if args.trim().is_empty() {
        return Err(err(
            "expected a daemon process group name, then options name=value",
        ));
    }
    if name.is_empty() {
        return Err(err("the daemon process group name must not be empty"));
    }
    if name.contains('=') {
        return Err(err(format!(
            "the first argument must be the daemon process group name, got the option {name:?}"
        )));
    }
    let mut dp = DaemonProcess::new(&name);
    let mut seen: HashMap<String, String> = HashMap::new();
    while !rest.trim_start().is_empty() {
        let (option, value, after) = take_option(rest)?;
        rest = after;
        let o = option.as_str();
        let v = value.as_str();
        if o.is_empty() {
            return Err(err(format!("option name missing before '=' in \"={v}\"")));
        }
        if !OPTIONS.contains(&o) {
            return Err(unknown(o));
        }
        if let Some(first) = seen.insert(option.clone(), value.clone()) {
            return Err(err(format!(
                "option {o:?} given twice ({o}={first:?} and {o}={v:?})"
            )));
        }
        if v.is_empty() {
            // As mod_wsgi, which takes these empty (mod_wsgi-express writes
            // python-path='' when no --python-path is given): not set.
            if MAY_BE_EMPTY.contains(&o) {
                continue;
            }
            return Err(err(format!("option {o:?} needs a value ({o}=...)")));
        }
        match o {
            "processes" => {
                dp.processes = int(o, v, 1, INT_MAX, "")? as u32;
                dp.processes_given = true;
            }
            "threads" => {
                dp.threads = int(o, v, 0, MAX_THREADS, "")? as u32;
                dp.threads_given = true;
            }
            "display-name" => dp.display_name = Some(value),
            "home" => dp.home = Some(absolute(o, v)?),
            "user" => {
                let user = principal(o, v)?;
                if user == Principal::Name("root".into()) || user == Principal::Id(0) {
                    return Err(err(format!(
                        "process group {:?}: user={v:?} refused: daemon processes never run application code as root; set user= to an unprivileged user",
                        dp.name
                    )));
                }
                dp.user = Some(user);
            }
            "group" => dp.group = Some(principal(o, v)?),
            "supplementary-groups" => {
                for g in v.split(',') {
                    if g.is_empty() {
                        return Err(err(format!(
                            "supplementary-groups has an empty group name in {v:?} (separate names with single commas)"
                        )));
                    }
                    dp.supplementary_groups.push(principal(o, g)?);
                }
            }
            "umask" => {
                let ok = v.bytes().all(|b| (b'0'..=b'7').contains(&b));
                match u32::from_str_radix(v, 8) {
                    Ok(n) if ok && n <= 0o777 => dp.umask = Some(n),
                    _ => {
                        return Err(err(format!(
                            "umask expects an octal number from 0 to 0777 such as 0022, got {v:?}"
                        )))
                    }
                }
            }
            "lang" => dp.lang = Some(value),
            "locale" => dp.locale = Some(value),
            "chroot" => dp.chroot = Some(absolute(o, v)?),
            "script-user" => dp.script_user = Some(principal(o, v)?),
            "script-group" => dp.script_group = Some(principal(o, v)?),
            "python-home" => dp.python_home = Some(value),
            "python-path" => dp.python_path = split_python_path(v),
            "python-eggs" => dp.python_eggs = Some(value),
            "switch-interval" => {
                let d = v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .and_then(|f| Duration::try_from_secs_f64(f).ok())
                    .filter(|d| !d.is_zero());
                let Some(d) = d else {
                    return Err(err(format!(
                        "switch-interval expects a positive number of seconds such as 0.005, got {v:?}"
                    )));
                };
                dp.switch_interval = Some(d);
            }
            "restart-interval" => dp.restart_interval = secs(o, v)?,
            "maximum-requests" => dp.maximum_requests = int(o, v, 0, INT_MAX, "")? as u32,
            "inactivity-timeout" => dp.inactivity_timeout = secs(o, v)?,
            "request-timeout" => dp.request_timeout = secs(o, v)?,
            "interrupt-timeout" => dp.interrupt_timeout = secs(o, v)?,
            "deadlock-timeout" => dp.deadlock_timeout = secs(o, v)?,
            "startup-timeout" => dp.startup_timeout = secs(o, v)?,
            "graceful-timeout" => dp.graceful_timeout = secs(o, v)?,
            "eviction-timeout" => dp.eviction_timeout = secs(o, v)?,
            "shutdown-timeout" => dp.shutdown_timeout = secs(o, v)?,
            "connect-timeout" => dp.connect_timeout = secs(o, v)?,
            "socket-timeout" => dp.socket_timeout = Some(secs(o, v)?).filter(|d| !d.is_zero()),
            "queue-timeout" => dp.queue_timeout = secs(o, v)?,
            "listen-backlog" => dp.listen_backlog = int(o, v, 0, INT_MAX, "")? as u32,
            "socket-user" => dp.socket_user = Some(principal(o, v)?),
            "cpu-time-limit" => dp.cpu_time_limit = secs(o, v)?,
            "cpu-priority" => dp.cpu_priority = int(o, v, -20, 20, "")? as i32,
            "memory-limit" => dp.memory_limit = int(o, v, 0, INT64_MAX, "bytes")? as u64,
            "virtual-memory-limit" => {
                dp.virtual_memory_limit = int(o, v, 0, INT64_MAX, "bytes")? as u64
            }
            "stack-size" => dp.stack_size = Some(int(o, v, 1, INT_MAX, "bytes")? as u32),
            "receive-buffer-size" => dp.receive_buffer_size = size(o, v, 512, "system default")?,
            "send-buffer-size" => dp.send_buffer_size = size(o, v, 512, "system default")?,
            "header-buffer-size" => {
                dp.header_buffer_size = size(o, v, 8192, "the default, 32768")?.unwrap_or(32768)
            }
            "response-buffer-size" => {
                let n = size(o, v, 65536, "the default, 8388608")?;
                dp.response_buffer_size = n.unwrap_or(8_388_608)
            }
            "response-socket-timeout" => {
                dp.response_socket_timeout = Some(secs(o, v)?).filter(|d| !d.is_zero())
            }
            "response-flush-delay" => {
                let ms = int(o, v, 0, INT_MAX, "milliseconds")?;
                dp.response_flush_delay = Duration::from_millis(ms as u64);
            }
            "server-metrics" => {
                dp.server_metrics = parse_on_off(D, v)
                    .map_err(|_| err(format!("server-metrics expects On or Off, got {v:?}")))?
            }
            _ => unreachable!("{o} is in OPTIONS but not handled"),
        }
    }
    if dp.script_user.is_some() && dp.script_group.is_some() {
        return Err(err(
            "only one of script-user and script-group may be given (mod_wsgi checks one owner)",
        ));
    }
    Ok(dp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(args: &str) -> String {
        parse_daemon_process(args).unwrap_err().to_string()
    }

    #[test]
    fn full_line() {
        let line = r#"app.example.com:1 processes=3 threads=25 display-name="my app"
            home=/srv/app user=www group=#33 supplementary-groups=ssl-cert,#44 umask=0027
            lang=en_US.UTF-8 locale='C.UTF-8' chroot=/jail script-user=#1000
            python-home=/srv/venv python-path="/srv/a dir:/srv/b::/srv/c" python-eggs=/tmp/eggs
            switch-interval=0.002 restart-interval=3600 maximum-requests=1000
            inactivity-timeout=300 request-timeout=60 interrupt-timeout=10
            deadlock-timeout=60 startup-timeout=14 graceful-timeout=30 eviction-timeout=20
            shutdown-timeout=7 connect-timeout=16 socket-timeout=61 queue-timeout=45
            listen-backlog=500 socket-user=apache cpu-time-limit=120 cpu-priority=-5
            memory-limit=1073741824 virtual-memory-limit=2147483648 stack-size=524288
            receive-buffer-size=65536 send-buffer-size=512 header-buffer-size=65536
            response-buffer-size=1048576 response-socket-timeout=30 response-flush-delay=0
            server-metrics=On"#;
        for option in OPTIONS.iter().filter(|o| **o != "script-group") {
            assert!(line.contains(&format!(" {option}=")), "{option} missing");
        }
        let name = |n: &str| Some(Principal::Name(n.into()));
        let s = Duration::from_secs;
        #[rustfmt::skip]
        let expected = DaemonProcess {
            name: "app.example.com:1".into(),
            processes: 3, processes_given: true, threads: 25, threads_given: true,
            display_name: Some("my app".into()), home: Some("/srv/app".into()),
            user: name("www"), group: Some(Principal::Id(33)),
            supplementary_groups: vec![Principal::Name("ssl-cert".into()), Principal::Id(44)],
            umask: Some(0o027), lang: Some("en_US.UTF-8".into()), locale: Some("C.UTF-8".into()),
            chroot: Some("/jail".into()), script_user: Some(Principal::Id(1000)), script_group: None,
            python_home: Some("/srv/venv".into()),
            python_path: vec!["/srv/a dir".into(), "/srv/b".into(), "/srv/c".into()],
            python_eggs: Some("/tmp/eggs".into()), switch_interval: Some(Duration::from_millis(2)),
            restart_interval: s(3600), maximum_requests: 1000, inactivity_timeout: s(300),
            request_timeout: s(60), interrupt_timeout: s(10), deadlock_timeout: s(60),
            startup_timeout: s(14), graceful_timeout: s(30), eviction_timeout: s(20),
            shutdown_timeout: s(7), connect_timeout: s(16), socket_timeout: Some(s(61)),
            queue_timeout: s(45), listen_backlog: 500, socket_user: name("apache"),
            cpu_time_limit: s(120), cpu_priority: -5,
            memory_limit: 1 << 30, virtual_memory_limit: 1 << 31, stack_size: Some(524288),
            receive_buffer_size: Some(65536), send_buffer_size: Some(512),
            header_buffer_size: 65536, response_buffer_size: 1048576,
            response_socket_timeout: Some(s(30)), response_flush_delay: Duration::ZERO,
            server_metrics: true,
        };
        let d = parse_daemon_process(line).unwrap();
        assert_eq!(d, expected);
        assert_eq!(d.display_title(), "my app");
        assert_eq!(d.response_socket_timeout_or(s(300)), s(30));
        assert_eq!(d.effective_eviction_timeout(), s(20));
        let g = parse_daemon_process("g script-group=staff").unwrap();
        assert_eq!(g.script_group, name("staff"));
    }

    #[test]
    #[rustfmt::skip]
    fn defaults() {
        let (s, ms) = (Duration::from_secs, Duration::from_millis);
        let d = parse_daemon_process("  mygroup  ").unwrap();
        assert_eq!(d, DaemonProcess::new("mygroup"));
        assert_eq!((d.processes, d.processes_given, d.threads, d.threads_given), (1, false, 15, false));
        assert_eq!((d.deadlock_timeout, d.graceful_timeout, d.shutdown_timeout), (s(300), s(15), s(5)));
        assert_eq!((d.connect_timeout, d.request_timeout, d.response_flush_delay), (s(15), s(0), ms(5)));
        assert_eq!((d.listen_backlog, d.header_buffer_size, d.response_buffer_size), (100, 32768, 8 << 20));
        assert_eq!((d.user.clone(), d.umask, d.server_metrics), (None, None, false));
        assert_eq!(d.display_title(), "(wsgi:mygroup)");
        assert_eq!((d.socket_timeout_or(s(300)), d.response_socket_timeout_or(s(300))), (s(300), s(300)));
        assert_eq!(d.effective_eviction_timeout(), s(15));
        // processes=1 given explicitly still counts (wsgi.multiprocess True).
        let one = parse_daemon_process("g processes=1 threads=0").unwrap();
        assert_eq!((one.processes, one.processes_given, one.threads, one.threads_given), (1, true, 0, true));
        // 0 means "the default" for these, as in mod_wsgi.
        let z = parse_daemon_process("g socket-timeout=0 response-socket-timeout=0 send-buffer-size=0 \
             header-buffer-size=0 response-buffer-size=0").unwrap();
        assert_eq!((z.socket_timeout, z.response_socket_timeout, z.send_buffer_size), (None, None, None));
        assert_eq!((z.header_buffer_size, z.response_buffer_size), (32768, 8 << 20));
        let st = parse_daemon_process("g socket-timeout=60").unwrap();
        assert_eq!(st.response_socket_timeout_or(s(300)), s(60));
    }

    #[test]
    fn quoting_and_titles() {
        let d = parse_daemon_process(r#""my group" display-name='it\'s "x"' "lang=en US""#);
        let d = d.unwrap();
        assert_eq!(d.name, "my group");
        assert_eq!(d.display_name.as_deref(), Some(r#"it's "x""#));
        assert_eq!(d.lang.as_deref(), Some("en US"));
        let g = parse_daemon_process("g display-name=%{GROUP} python-path='/a:/b c'").unwrap();
        assert_eq!(g.display_title(), "(wsgi:g)");
        assert_eq!(g.python_path, vec!["/a", "/b c"]);
        let literal = parse_daemon_process("g display-name=x%{GROUP}").unwrap();
        assert_eq!(literal.display_title(), "x%{GROUP}");
    }

    /// mod_wsgi-express's generated line: `python-path=''` and the other
    /// options mod_wsgi takes empty are as if not given.
    #[test]
    fn empty_values_mod_wsgi_takes() {
        let d = parse_daemon_process(
            "g python-path='' python-home= python-eggs='' lang='' locale='' display-name='' supplementary-groups=''",
        )
        .unwrap();
        assert_eq!(d, DaemonProcess::new("g"));
        assert_eq!(d.display_title(), "(wsgi:g)");
        for o in OPTIONS.iter().filter(|o| !MAY_BE_EMPTY.contains(o)) {
            let e = parse_daemon_process(&format!("g {o}=''")).unwrap_err();
            assert!(e.to_string().contains("needs a value"), "{o}: {e}");
        }
    }

    /// Each error class: (arguments, text the message must contain).
    #[test]
    fn errors() {
        #[rustfmt::skip]
        let cases = [
            ("   ", "expected a daemon process group name, then options name=value"),
            (r#""" threads=2"#, "name must not be empty"),
            ("processes=2 threads=2", "group name, got the option \"processes=2\""),
            ("g stray", "unexpected argument \"stray\": options have the form name=value"),
            ("g =5", "option name missing before '=' in \"=5\""),
            (r#"g display-name="open"#, "unterminated quote"),
            ("g colour=red", "unknown option \"colour\" (valid options: processes, threads,"),
            ("g Threads=5", "unknown option \"Threads\"; did you mean \"threads\"?"),
            ("g newrelic-config-file=/x", "unknown option \"newrelic-config-file\" ("),
            ("g request_timeout=5", "unknown option \"request_timeout\"; did you mean \"request-timeout\"?"),
            ("g thread=5", "; did you mean \"threads\"?"),
            ("g threads=5 threads=10", "option \"threads\" given twice (threads=\"5\" and threads=\"10\")"),
            ("g home=", "option \"home\" needs a value (home=...)"),
            ("g user= threads=2", "option \"user\" needs a value"),
            ("g group=", "option \"group\" needs a value"),
            ("g processes=0", "processes must be at least 1, got \"0\""),
            ("g request-timeout=1s", "request-timeout expects a whole number of seconds, got \"1s\""),
            ("g threads=-1", "threads must be at least 0, got \"-1\""),
            ("g threads=65534", "threads must be at most 65533, got \"65534\""),
            ("g maximum-requests=1e3", "maximum-requests expects a whole number, got \"1e3\""),
            ("g processes=99999999999999999999", "processes must be at most 2147483647, got"),
            ("g listen-backlog=+5", "listen-backlog expects a whole number, got \"+5\""),
            ("g cpu-priority=21", "cpu-priority must be at most 20, got \"21\""),
            ("g memory-limit=-1", "memory-limit must be at least 0 bytes, got \"-1\""),
            ("g stack-size=0", "stack-size must be at least 1 bytes, got \"0\""),
            ("g send-buffer-size=1", "must be 0 (system default) or at least 512 bytes, got \"1\""),
            ("g header-buffer-size=4096", "must be 0 (the default, 32768) or at least 8192 bytes"),
            ("g response-buffer-size=1024", "or at least 65536 bytes, got \"1024\""),
            ("g response-flush-delay=5ms", "expects a whole number of milliseconds, got \"5ms\""),
            ("g server-metrics=yes", "server-metrics expects On or Off, got \"yes\""),
            ("g user=root", "process group \"g\": user=\"root\" refused: daemon processes never run application code as root; set user= to an unprivileged user"),
            ("g user=#0", "user=\"#0\" refused"),
            ("g group=#abc", "group expects a name or #number (a numeric id), got \"#abc\""),
            ("g supplementary-groups=a,,b", "empty group name in \"a,,b\""),
            ("g home=srv", "home must be an absolute directory path, got \"srv\""),
            ("g chroot=jail", "chroot must be an absolute directory path"),
            ("g script-user=a script-group=b", "only one of script-user and script-group"),
        ];
        for (args, want) in cases {
            let got = e(args);
            assert!(got.starts_with("WSGIDaemonProcess: "), "{args}: {got}");
            assert!(got.contains(want), "{args}: {got}");
        }
        for bad in ["0", "-1", "abc", "inf", "NaN", "1e-30"] {
            let got = e(&format!("g switch-interval={bad}"));
            let want = format!(
                "switch-interval expects a positive number of seconds such as 0.005, got {bad:?}"
            );
            assert!(got.ends_with(&want), "{got}");
        }
        for bad in ["0999", "22a", "-022", "01000", "0x12"] {
            let want =
                format!("umask expects an octal number from 0 to 0777 such as 0022, got {bad:?}");
            assert!(e(&format!("g umask={bad}")).ends_with(&want), "{bad}");
        }
        assert_eq!(parse_daemon_process("g umask=0").unwrap().umask, Some(0));
    }
}
