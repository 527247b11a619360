//! The `python-access` and `app-access` checks: can the user Apache's
//! children run as (`--user`/`--group` when run as root, else the current
//! user) read the Python installation and the application? Run as that
//! user by [`crate::access::check_readable_as`] (a forked child after
//! setgroups/setgid/setuid) when root, with `access(2)` otherwise. pyenv's
//! Pythons under `/root` are the classic failure. Failures are RWSGI0151.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Finding;
use crate::access::{check_readable_as, failure_message, first_failure, plan};
use crate::model::ServerConfig;

/// Checks `targets` as the current user with `access(2)`; `Err(message)`
/// for the first unreadable one, worded as [`failure_message`].
fn readable_here(user: &str, targets: &[PathBuf]) -> Result<(), String> {
    let checks = plan(targets, Path::is_dir).map_err(|e| e.to_string())?;
    match first_failure(&checks, nix::unistd::access) {
        None => Ok(()),
        Some((i, errno)) => {
            let target = &targets[checks[i].target];
            let at = Path::new(std::ffi::OsStr::from_bytes(checks[i].path.as_bytes()));
            Err(failure_message(user, target, at, errno))
        }
    }
}

/// The finding for one group of paths.
fn finding(
    check: &'static str,
    what: &str,
    result: Result<(), String>,
    user: &str,
    fix: &str,
    count: usize,
) -> Finding {
    match result {
        Ok(()) => Finding::ok(
            check,
            format!("user '{user}' can read {what} ({count} path(s) and their directories)"),
        ),
        Err(e) => Finding::fail(check, format!("RWSGI0151: {e}"), fix),
    }
}

/// The two findings for the model `c`: the Python directories
/// ([`ServerConfig::python_dirs`]) and the rest of
/// [`ServerConfig::paths_children_read`].
pub fn check(c: &ServerConfig) -> Vec<Finding> {
    let python: Vec<PathBuf> = c.python_dirs.clone();
    // Directories setup creates (the server root, the default document
    // root) may not exist yet: their nearest existing ancestor must then be
    // searchable.
    let mut app: Vec<PathBuf> = Vec::new();
    for p in c.paths_children_read() {
        let p = p
            .ancestors()
            .find(|a| a.exists())
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        if !python.contains(&p) && !app.contains(&p) {
            app.push(p);
        }
    }
    let user = super::children_user(c, nix::unistd::geteuid().as_raw());
    let test = |targets: &[PathBuf]| -> Result<(), String> {
        match &c.run_as {
            Some(r) => check_readable_as(r, targets).map_err(|e| format!("{e:#}")),
            None => readable_here(&user, targets),
        }
    };
    vec![
        finding(
            "python-access",
            "the Python installation",
            test(&python),
            &user,
            "use a Python that user can read (e.g. Debian's /usr/bin/python3.11, with a virtualenv outside /root) \
             or open up the directory named",
            python.len(),
        ),
        finding(
            "app-access",
            "the application",
            test(&app),
            &user,
            "move the application where that user can read it, or grant read (and search on directories) to it",
            app.len(),
        ),
    ]
}
