//! The `app` check: does the application import, and does it have its
//! callable? Run in a subprocess by the Python home's interpreter (the
//! Python the module will use once the `python` check passed), as the user
//! Apache's children run as, in the directory and with the Python path the
//! daemon processes get, with a timeout. The script is loaded as mod_wsgi
//! loads it (a module named `_mod_wsgi_<md5 of the path>`, so `if __name__
//! == "__main__"` blocks do not run); a module application is imported with
//! `importlib`; a paste application is loaded with
//! `paste.deploy.loadapp("config:" + path)`, as its `handler.wsgi` loads
//! it. A static site has no application to check. Failures are RWSGI0152.

use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Finding;
use crate::access::RunAs;
use crate::model::{Application, ServerConfig};

/// The probe run by the application's Python: `argv` is the kind (`script`,
/// `module` or `paste`), the script path, module name or `.ini` file, the
/// callable's name (for paste, the name the loaded application is given), then
/// the Python path entries (added with `site.addsitedir`, as
/// `WSGIPythonPath`). It prints one tab-separated result line starting with
/// `rwsgi-doctor` and exits 0 (callable found), 10 (import raised), 11
/// (no such attribute) or 12 (not callable).
pub const PROBE: &str = r#"
import sys, site, traceback
kind, target, name = sys.argv[1:4]
for p in sys.argv[4:]:
    site.addsitedir(p)
def say(*fields):
    print("\nrwsgi-doctor\t" + "\t".join(str(f).replace("\n", " ").replace("\t", " ") for f in fields))
try:
    if kind == "script":
        import hashlib, types
        mod = types.ModuleType("_mod_wsgi_" + hashlib.md5(target.encode()).hexdigest())
        mod.__file__ = target
        sys.modules[mod.__name__] = mod
        with open(target, "rb") as f:
            code = compile(f.read(), target, "exec")
        exec(code, mod.__dict__)
    elif kind == "paste":
        import types
        from paste.deploy import loadapp
        mod = types.SimpleNamespace(**{name: loadapp("config:" + target)})
    else:
        import importlib
        mod = importlib.import_module(target)
except BaseException as e:
    tb = traceback.extract_tb(e.__traceback__)
    where = "%s:%s" % (tb[-1].filename, tb[-1].lineno) if tb else ""
    say("import-error", "%s: %s" % (type(e).__name__, e), where)
    traceback.print_exc()
    sys.exit(10)
if not hasattr(mod, name):
    names = sorted(n for n, v in vars(mod).items()
                   if callable(v) and not n.startswith("_") and not isinstance(v, type(sys)))
    say("missing", ", ".join(names[:12]))
    sys.exit(11)
obj = getattr(mod, name)
if not callable(obj):
    say("not-callable", type(obj).__name__)
    sys.exit(12)
say("callable", type(obj).__name__)
"#;

/// What the probe reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The callable exists and is callable (its type's name).
    Callable(String),
    /// The import raised: `Type: message` and `file:line` of the last frame.
    ImportError(String, String),
    /// No attribute of that name; the public callables it does define.
    Missing(String),
    /// The attribute is not callable (its type's name).
    NotCallable(String),
    /// The probe did not report (exit status, last lines of stderr).
    Crashed(Option<i32>, String),
}

/// Classifies the probe's exit status and output (pure).
pub fn classify(code: Option<i32>, stdout: &str, stderr: &str) -> Outcome {
    let line = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("rwsgi-doctor\t"));
    let fields: Vec<&str> = line.map(|l| l.split('\t').collect()).unwrap_or_default();
    let field = |i: usize| fields.get(i).copied().unwrap_or("").to_string();
    match (code, fields.first().copied()) {
        (Some(0), Some("callable")) => Outcome::Callable(field(1)),
        (Some(10), Some("import-error")) => Outcome::ImportError(field(1), field(2)),
        (Some(11), Some("missing")) => Outcome::Missing(field(1)),
        (Some(12), Some("not-callable")) => Outcome::NotCallable(field(1)),
        _ => {
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Outcome::Crashed(code, tail.join(" / "))
        }
    }
}

/// The finding for an outcome (pure). `what` names the application (`the
/// WSGI script /srv/app.wsgi`, `the module pkg.wsgi`, `the Paste Deploy
/// configuration /srv/site.ini`, which `loads` rather than imports),
/// `name` its callable.
pub fn finding(
    outcome: &Outcome,
    what: &str,
    loads: bool,
    name: &str,
    user: &str,
    python: &Path,
) -> Finding {
    let by = format!("as user '{user}' with {}", python.display());
    let (verb, doing) = if loads {
        ("loads", "loading")
    } else {
        ("imports", "importing")
    };
    match outcome {
        Outcome::Callable(t) => Finding::ok(
            "app",
            format!("{what} {verb} and its `{name}` is callable ({t}), {by}"),
        ),
        Outcome::ImportError(e, at) if e.starts_with("ModuleNotFoundError: No module named 'mod_wsgi'") => {
            Finding::warn(
                "app",
                format!("RWSGI0152: {what} imports `mod_wsgi`, which exists only inside Apache: the import was not checked past it ({at})"),
                "import mod_wsgi inside a try/except ImportError if the application should also load outside Apache",
            )
        }
        Outcome::ImportError(e, at) => Finding::fail(
            "app",
            format!("RWSGI0152: {doing} {what} {by} failed: {e} (at {at})"),
            if loads && e.starts_with("ModuleNotFoundError: No module named 'paste'") {
                "install PasteDeploy into the Python home (pip install PasteDeploy)"
            } else {
                "install what is missing into the Python home, or fix the code at the place named"
            },
        ),
        Outcome::Missing(names) => {
            let defined = if names.is_empty() {
                "it defines no public callable".to_string()
            } else {
                format!("its callables: {names}")
            };
            let fix = match names.split(", ").next() {
                Some(first) if !first.is_empty() => format!(
                    "define `{name}`, or name the callable with --callable-object (e.g. --callable-object {first})"
                ),
                _ => format!("define `{name}` in it, or name the callable with --callable-object"),
            };
            Finding::fail(
                "app",
                format!("RWSGI0152: {what} has no `{name}` ({defined})"),
                fix,
            )
        }
        Outcome::NotCallable(t) => Finding::fail(
            "app",
            format!("RWSGI0152: `{name}` of {what} is a {t}, not a callable"),
            "point --callable-object at the WSGI application object",
        ),
        Outcome::Crashed(code, tail) => Finding::fail(
            "app",
            format!(
                "RWSGI0152: the {} of {what} {by} ended without a result (exit status {}): {tail}",
                if loads { "loading" } else { "import" },
                code.map_or("none: killed by a signal".to_string(), |c| c.to_string())
            ),
            "run the import by hand with that Python to see the error",
        ),
    }
}

/// The interpreter of the Python home: `<home>/bin/pythonX.Y` for the
/// version the module runs (`version`, e.g. `3.11`), else `bin/python3`,
/// else `bin/python` (the names the module chooses its program name from).
pub fn interpreter(home: &Path, version: Option<&str>) -> PathBuf {
    let mut names: Vec<String> = version
        .map(|v| format!("bin/python{v}"))
        .into_iter()
        .collect();
    names.extend(["bin/python3".to_string(), "bin/python".to_string()]);
    names
        .iter()
        .map(|b| home.join(b))
        .find(|p| p.exists())
        .unwrap_or_else(|| home.join("bin/python3"))
}

/// Drops to `run_as` (supplementary groups, gid, uid, as Apache's
/// `initgroups`/`setgid`/`setuid`) and enters `dir`, in the child between
/// fork and exec.
fn as_user(cmd: &mut Command, run_as: Option<&RunAs>, dir: CString) {
    let ids = run_as.map(|r| {
        (
            r.groups
                .iter()
                .map(|g| nix::unistd::Gid::from_raw(*g))
                .collect::<Vec<_>>(),
            nix::unistd::Gid::from_raw(r.gid),
            nix::unistd::Uid::from_raw(r.uid),
        )
    });
    let hook = move || -> std::io::Result<()> {
        if let Some((groups, gid, uid)) = &ids {
            nix::unistd::setgroups(groups)?;
            nix::unistd::setgid(*gid)?;
            nix::unistd::setuid(*uid)?;
        }
        nix::unistd::chdir(dir.as_c_str())?;
        Ok(())
    };
    // SAFETY: the hook runs in the forked child before exec and only makes
    // system calls (setgroups, setgid, setuid, chdir) on data prepared
    // before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Reads a pipe to its end on a thread (so a chatty import cannot fill it).
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
        s
    })
}

/// The `app` check for the model `c`, giving the import `timeout`.
pub fn check(c: &ServerConfig, timeout: Duration) -> Finding {
    let (kind, target, name, what) = match &c.app {
        Application::Script { path } => (
            "script",
            path.display().to_string(),
            c.callable_object.clone(),
            format!("the WSGI script {}", path.display()),
        ),
        Application::Module { name, callable, .. } => (
            "module",
            name.clone(),
            callable.clone(),
            format!("the module {name}"),
        ),
        Application::Paste { config, .. } => (
            "paste",
            config.display().to_string(),
            "application".to_string(),
            format!("the Paste Deploy configuration {}", config.display()),
        ),
        Application::Static { directory } => {
            return Finding::ok(
                "app",
                format!(
                    "no WSGI application to import (--application-type static: Apache serves {})",
                    directory.display()
                ),
            )
        }
    };
    let loads = kind == "paste";
    // python_dirs[1] is <home>/lib/pythonX.Y when the version is known.
    let version = c
        .python_dirs
        .get(1)
        .and_then(|d| d.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("python"));
    let python = interpreter(&c.python_home, version);
    let user = super::children_user(c, nix::unistd::geteuid().as_raw());
    // Daemon processes start in the working directory; Apache's children in /.
    let dir = if c.daemon.is_some() {
        c.working_directory.clone()
    } else {
        PathBuf::from("/")
    };
    let Ok(dir_c) = CString::new(dir.as_os_str().as_bytes()) else {
        return Finding::fail(
            "app",
            format!("RWSGI0152: {} contains a NUL byte", dir.display()),
            "rename it",
        );
    };
    let mut cmd = Command::new(&python);
    cmd.arg("-c")
        .arg(PROBE)
        .arg(kind)
        .arg(&target)
        .arg(&name)
        .args(c.python_path.split(':').filter(|p| !p.is_empty()))
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", &c.locale)
        .env("LC_ALL", &c.locale)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    as_user(&mut cmd, c.run_as.as_ref(), dir_c);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Finding::fail(
                "app",
                format!(
                    "RWSGI0152: cannot run {} as user '{user}' in {}: {e}",
                    python.display(),
                    dir.display()
                ),
                "make the Python home and the working directory readable by that user (see the access lines)",
            )
        }
    };
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        // The import started its own process group: stop all of it.
        let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
        return Finding::fail(
            "app",
            format!(
                "RWSGI0152: {} {what} as user '{user}' did not finish within {} s",
                if loads { "loading" } else { "importing" },
                timeout.as_secs()
            ),
            "find what the import waits for (a database, the network, a lock), or raise --import-timeout \
             (and the daemons' --startup-timeout)",
        );
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    finding(
        &classify(status.code(), &stdout, &stderr),
        &what,
        loads,
        &name,
        &user,
        &python,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn classification() {
        assert_eq!(
            classify(Some(0), "hello\n\nrwsgi-doctor\tcallable\tfunction\n", ""),
            Outcome::Callable("function".into())
        );
        assert_eq!(
            classify(
                Some(10),
                "\nrwsgi-doctor\timport-error\tModuleNotFoundError: No module named 'flask'\t/srv/app.wsgi:1\n",
                "Traceback...\n"
            ),
            Outcome::ImportError(
                "ModuleNotFoundError: No module named 'flask'".into(),
                "/srv/app.wsgi:1".into()
            )
        );
        assert_eq!(
            classify(Some(11), "\nrwsgi-doctor\tmissing\tapp, make_app\n", ""),
            Outcome::Missing("app, make_app".into())
        );
        assert_eq!(
            classify(Some(12), "\nrwsgi-doctor\tnot-callable\tstr\n", ""),
            Outcome::NotCallable("str".into())
        );
        assert_eq!(
            classify(Some(1), "", "a\nb\nc\nFatal Python error: x\n"),
            Outcome::Crashed(Some(1), "b / c / Fatal Python error: x".into())
        );
        // A result line the application printed itself does not count
        // without the matching exit status.
        assert!(matches!(
            classify(None, "\nrwsgi-doctor\tcallable\tfunction\n", ""),
            Outcome::Crashed(None, _)
        ));
    }

    #[test]
    fn paste_findings() {
        let py = Path::new("/v/bin/python3");
        let what = "the Paste Deploy configuration /s/site.ini";
        let f = finding(
            &Outcome::Callable("function".into()),
            what,
            true,
            "application",
            "nobody",
            py,
        );
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.message.starts_with(
                "the Paste Deploy configuration /s/site.ini loads and its `application` is callable (function)"
            ),
            "{f}"
        );
        let f = finding(
            &Outcome::ImportError(
                "ModuleNotFoundError: No module named 'paste'".into(),
                "<string>:12".into(),
            ),
            what,
            true,
            "application",
            "nobody",
            py,
        );
        assert_eq!(f.status, Status::Fail);
        assert!(
            f.message.starts_with(
                "RWSGI0152: loading the Paste Deploy configuration /s/site.ini as user"
            ),
            "{f}"
        );
        assert!(f.fix.unwrap().contains("pip install PasteDeploy"));
    }

    #[test]
    fn interpreter_names() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        assert_eq!(interpreter(d.path(), Some("3.11")), bin.join("python3"));
        std::fs::write(bin.join("python"), "").unwrap();
        assert_eq!(interpreter(d.path(), Some("3.11")), bin.join("python"));
        std::fs::write(bin.join("python3"), "").unwrap();
        std::fs::write(bin.join("python3.11"), "").unwrap();
        assert_eq!(interpreter(d.path(), Some("3.11")), bin.join("python3.11"));
        assert_eq!(interpreter(d.path(), None), bin.join("python3"));
    }

    #[test]
    fn findings() {
        let py = Path::new("/v/bin/python3");
        let f = finding(
            &Outcome::Missing("app, make_app".into()),
            "the WSGI script /s/a.wsgi",
            false,
            "application",
            "nobody",
            py,
        );
        assert_eq!(f.status, Status::Fail);
        assert_eq!(f.message, "RWSGI0152: the WSGI script /s/a.wsgi has no `application` (its callables: app, make_app)");
        assert!(f.fix.unwrap().contains("--callable-object app"));
        let f = finding(
            &Outcome::ImportError(
                "ModuleNotFoundError: No module named 'mod_wsgi'".into(),
                "/s/a.wsgi:3".into(),
            ),
            "x",
            false,
            "application",
            "nobody",
            py,
        );
        assert_eq!(f.status, Status::Warn);
        let f = finding(
            &Outcome::Callable("function".into()),
            "x",
            false,
            "application",
            "nobody",
            py,
        );
        assert_eq!(f.status, Status::Ok);
        assert!(
            f.message.contains("as user 'nobody' with /v/bin/python3"),
            "{f}"
        );
    }
}
