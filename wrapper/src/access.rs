//! Checking, as the user Apache's children will run as, that the paths the
//! application needs are readable.
//!
//! When run as root, Apache binds its port as root and runs its children as
//! `User`/`Group`; a Python home under `/root` then fails at the first
//! request with an obscure import error. The check runs for real: a forked
//! child takes the user's identity (the same supplementary groups Apache's
//! `initgroups` would give) and calls `access(2)` on every ancestor directory
//! (search permission) and on the path itself (read, plus search for
//! directories). The first failure is reported.
//!
//! [`plan`] and [`first_failure`] are pure and unit-tested; [`check_readable_as`]
//! does the fork.

use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::unistd::{AccessFlags, Gid, Group, Uid, User};
use serde::Serialize;

/// The identity of Apache's children: `--user`/`--group` resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunAs {
    /// `--user` as given (a name or `#uid`), written to `User`.
    pub user: String,
    /// `--group` as given (a name or `#gid`), written to `Group`.
    pub group: String,
    /// Resolved uid.
    #[serde(skip)]
    pub uid: u32,
    /// Resolved gid.
    #[serde(skip)]
    pub gid: u32,
    /// Supplementary groups Apache's `initgroups(user, gid)` gives the
    /// children (always includes `gid`).
    #[serde(skip)]
    pub groups: Vec<u32>,
}

impl RunAs {
    /// Resolves a user and group given as names or, as Apache accepts, as
    /// `#number`. Errors when a name is unknown.
    pub fn resolve(user: &str, group: &str) -> Result<RunAs> {
        let (uid, user_name) = match user.strip_prefix('#') {
            Some(n) => {
                let uid: u32 = n
                    .parse()
                    .map_err(|_| anyhow!("--user {user:?} is not a valid #uid"))?;
                let name = User::from_uid(Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name);
                (uid, name)
            }
            None => {
                let u = User::from_name(user)
                    .with_context(|| format!("cannot look up user {user:?}"))?
                    .ok_or_else(|| anyhow!("--user {user:?}: no such user"))?;
                (u.uid.as_raw(), Some(u.name))
            }
        };
        let gid = match group.strip_prefix('#') {
            Some(n) => n
                .parse()
                .map_err(|_| anyhow!("--group {group:?} is not a valid #gid"))?,
            None => Group::from_name(group)
                .with_context(|| format!("cannot look up group {group:?}"))?
                .ok_or_else(|| anyhow!("--group {group:?}: no such group"))?
                .gid
                .as_raw(),
        };
        let mut groups = vec![gid];
        if let Some(name) = user_name.and_then(|n| CString::new(n).ok()) {
            if let Ok(list) = nix::unistd::getgrouplist(&name, Gid::from_raw(gid)) {
                for g in list {
                    if !groups.contains(&g.as_raw()) {
                        groups.push(g.as_raw());
                    }
                }
            }
        }
        Ok(RunAs {
            user: user.to_string(),
            group: group.to_string(),
            uid,
            gid,
            groups,
        })
    }
}

/// One `access(2)` call of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Index of the target path this check belongs to.
    pub target: usize,
    /// The path given to `access(2)`.
    pub path: CString,
    /// `X_OK` for ancestors; `R_OK` (plus `X_OK` for directories) for the target.
    pub mode: AccessFlags,
}

/// The checks for `targets`, in order: for each target its ancestors from
/// `/` down (search permission), then the target itself (read; read and
/// search if `is_dir(target)`). Targets should be absolute. Errors if a path
/// contains a NUL byte.
pub fn plan(targets: &[PathBuf], is_dir: impl Fn(&Path) -> bool) -> Result<Vec<Check>> {
    let mut checks = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let mut ancestors: Vec<&Path> = target.ancestors().skip(1).collect();
        ancestors.reverse();
        for a in ancestors {
            checks.push(Check {
                target: i,
                path: CString::new(a.as_os_str().as_bytes())?,
                mode: AccessFlags::X_OK,
            });
        }
        let mode = if is_dir(target) {
            AccessFlags::R_OK | AccessFlags::X_OK
        } else {
            AccessFlags::R_OK
        };
        checks.push(Check {
            target: i,
            path: CString::new(target.as_os_str().as_bytes())?,
            mode,
        });
    }
    Ok(checks)
}

/// Runs `checks` in order with `access` and returns the index of the first
/// failing check and its errno. Allocation-free, so that it can run in a
/// forked child.
pub fn first_failure(
    checks: &[Check],
    mut access: impl FnMut(&CStr, AccessFlags) -> Result<(), Errno>,
) -> Option<(usize, Errno)> {
    checks
        .iter()
        .enumerate()
        .find_map(|(i, c)| access(&c.path, c.mode).err().map(|e| (i, e)))
}

/// The message for a failed check: `user 'nobody' cannot read
/// /root/.pyenv/versions/3.11.7 (permission denied on /root); Apache's
/// children run as that user`.
pub fn failure_message(user: &str, target: &Path, failed_at: &Path, errno: Errno) -> String {
    let desc = errno.desc();
    let mut desc_lc = desc.to_string();
    if let Some(first) = desc.chars().next() {
        desc_lc.replace_range(..first.len_utf8(), &first.to_lowercase().to_string());
    }
    let place = if failed_at == target {
        desc_lc
    } else {
        format!("{desc_lc} on {}", failed_at.display())
    };
    format!(
        "user '{user}' cannot read {} ({place}); Apache's children run as that user",
        target.display()
    )
}

/// Checks that `run_as` can read every path of `targets` (and search every
/// ancestor directory), reporting the first that it cannot.
///
/// Runs as root only: a child process is forked, sets the supplementary
/// groups, gid and uid of `run_as` and calls `access(2)` per [`plan`]; the
/// result comes back over a pipe. Paths are canonicalised first (as root) so
/// the failing ancestor is the real one. Errors: the message of
/// [`failure_message`], or a failure to fork or to switch user.
pub fn check_readable_as(run_as: &RunAs, targets: &[PathBuf]) -> Result<()> {
    let real: Vec<PathBuf> = targets
        .iter()
        .map(|t| t.canonicalize().unwrap_or_else(|_| t.clone()))
        .collect();
    let checks = plan(&real, Path::is_dir)?;
    let groups: Vec<Gid> = run_as.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (uid, gid) = (Uid::from_raw(run_as.uid), Gid::from_raw(run_as.gid));

    let (read_end, write_end) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: the child only makes async-signal-safe system calls
    // (setgroups, setgid, setuid, access, write, _exit) on data prepared
    // before the fork; `first_failure` does not allocate.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(read_end);
            // Record: [status, check index, errno] as little-endian u32s;
            // status 0 = all readable, 1 = check failed, 2 = could not switch user.
            let record = match nix::unistd::setgroups(&groups)
                .and_then(|_| nix::unistd::setgid(gid))
                .and_then(|_| nix::unistd::setuid(uid))
            {
                Err(e) => [2u32, 0, e as i32 as u32],
                Ok(()) => match first_failure(&checks, nix::unistd::access) {
                    None => [0, 0, 0],
                    Some((i, e)) => [1, i as u32, e as i32 as u32],
                },
            };
            let mut bytes = [0u8; 12];
            for (chunk, v) in bytes.chunks_mut(4).zip(record) {
                chunk.copy_from_slice(&v.to_le_bytes());
            }
            let _ = nix::unistd::write(&write_end, &bytes);
            // SAFETY: _exit skips atexit handlers and destructors that belong
            // to the parent.
            unsafe { nix::libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write_end);
            let mut buf = Vec::new();
            std::fs::File::from(read_end)
                .read_to_end(&mut buf)
                .context("reading the access check result")?;
            nix::sys::wait::waitpid(child, None).context("waiting for the access check")?;
            if buf.len() != 12 {
                bail!(
                    "the access check as user '{}' did not report a result",
                    run_as.user
                );
            }
            let word = |i: usize| u32::from_le_bytes(buf[i * 4..i * 4 + 4].try_into().unwrap());
            match word(0) {
                0 => Ok(()),
                1 => {
                    let check = &checks[word(1) as usize];
                    let target = &real[check.target];
                    let at = Path::new(std::ffi::OsStr::from_bytes(check.path.as_bytes()));
                    let errno = Errno::from_raw(word(2) as i32);
                    // Name the target as the user gave it (it may be a symlink).
                    let shown = targets[check.target].as_path();
                    let at = if at == target.as_path() { shown } else { at };
                    Err(anyhow!(failure_message(&run_as.user, shown, at, errno)))
                }
                _ => bail!(
                    "cannot switch to user '{}' group '{}' to check file access: {}",
                    run_as.user,
                    run_as.group,
                    Errno::from_raw(word(2) as i32).desc()
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    #[test]
    fn plan_checks_ancestors_then_target() {
        let targets = vec![PathBuf::from("/root/py"), PathBuf::from("/srv/app.wsgi")];
        let checks = plan(&targets, |p| p == Path::new("/root/py")).unwrap();
        let got: Vec<(usize, CString, AccessFlags)> = checks
            .into_iter()
            .map(|k| (k.target, k.path, k.mode))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, c("/"), AccessFlags::X_OK),
                (0, c("/root"), AccessFlags::X_OK),
                (0, c("/root/py"), AccessFlags::R_OK | AccessFlags::X_OK),
                (1, c("/"), AccessFlags::X_OK),
                (1, c("/srv"), AccessFlags::X_OK),
                (1, c("/srv/app.wsgi"), AccessFlags::R_OK),
            ]
        );
    }

    #[test]
    fn first_failure_stops_at_first_denied() {
        let targets = vec![PathBuf::from("/ok/a"), PathBuf::from("/root/.pyenv/x")];
        let checks = plan(&targets, |_| true).unwrap();
        let r = first_failure(&checks, |p, _| {
            if p.to_bytes() == b"/root" {
                Err(Errno::EACCES)
            } else {
                Ok(())
            }
        });
        let (i, e) = r.unwrap();
        assert_eq!(checks[i].path, c("/root"));
        assert_eq!(checks[i].target, 1);
        assert_eq!(e, Errno::EACCES);
        assert_eq!(first_failure(&checks, |_, _| Ok(())), None);
    }

    #[test]
    fn message_format() {
        assert_eq!(
            failure_message(
                "nobody",
                Path::new("/root/.pyenv/versions/3.11.7"),
                Path::new("/root"),
                Errno::EACCES
            ),
            "user 'nobody' cannot read /root/.pyenv/versions/3.11.7 (permission denied on /root); \
             Apache's children run as that user"
        );
        assert_eq!(
            failure_message("nobody", Path::new("/srv/a"), Path::new("/srv/a"), Errno::EACCES),
            "user 'nobody' cannot read /srv/a (permission denied); Apache's children run as that user"
        );
    }

    #[test]
    fn resolve_numeric_and_named() {
        let r = RunAs::resolve("nobody", "nogroup").unwrap();
        assert_eq!((r.uid, r.gid), (65534, 65534));
        assert!(r.groups.contains(&65534));
        let r = RunAs::resolve("#65534", "#65534").unwrap();
        assert_eq!((r.uid, r.gid), (65534, 65534));
        assert!(RunAs::resolve("no-such-user-rwsgi", "nogroup").is_err());
        assert!(RunAs::resolve("nobody", "no-such-group-rwsgi").is_err());
    }

    /// Real fork + privilege drop; only possible as root.
    #[test]
    fn real_check_as_nobody() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let inner = private.join("lib");
        std::fs::create_dir(&inner).unwrap();
        let open = dir.path().join("open.txt");
        std::fs::write(&open, b"x").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();

        let nobody = RunAs::resolve("nobody", "nogroup").unwrap();
        check_readable_as(&nobody, std::slice::from_ref(&open)).unwrap();
        let e = check_readable_as(&nobody, &[open, inner.clone()])
            .unwrap_err()
            .to_string();
        let real_private = private.canonicalize().unwrap();
        assert_eq!(
            e,
            format!(
                "user 'nobody' cannot read {} (permission denied on {}); Apache's children run as that user",
                inner.display(),
                real_private.display()
            )
        );
    }
}
