//! The `sockets` check (is the daemon socket directory usable? RWSGI0154)
//! and the `mpm` check (do the MPM's process and thread directives fit
//! `--processes`, `--threads` and `--max-clients`? RWSGI0155).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Finding;
use crate::cli::Mpm;
use crate::model::{HostFacts, ServerConfig};

/// Longest UNIX socket path (`sun_path` holds 108 bytes with the NUL).
pub const SOCKET_PATH_MAX: usize = 107;

/// Bytes the module adds to the directory in a socket name when the group
/// name is too long and is hashed: `/` + prefix base + pid (7 digits at
/// most) + `.` + generation (up to 4 digits) + `.` + 8 hex digits + `.sock`.
pub fn socket_name_overhead(base: &str) -> usize {
    1 + base.len() + 7 + 5 + 1 + 8 + 5
}

/// Whether a directory with `mode`, owned by `owner:group`, lets a process
/// of `uid` with `groups` search it (the `x` bit that applies; root always
/// may).
pub fn may_search(mode: u32, owner: u32, group: u32, uid: u32, groups: &[u32]) -> bool {
    if uid == 0 {
        return true;
    }
    let bit = if owner == uid {
        0o100
    } else if groups.contains(&group) {
        0o010
    } else {
        0o001
    };
    mode & bit != 0
}

/// The first of `dir` and its ancestors that `uid`/`groups` cannot search.
fn first_unsearchable(dir: &Path, uid: u32, groups: &[u32]) -> Option<std::path::PathBuf> {
    let mut chain: Vec<&Path> = dir.ancestors().collect();
    chain.reverse();
    chain.into_iter().find_map(|d| {
        let m = std::fs::metadata(d).ok()?;
        (!may_search(m.mode(), m.uid(), m.gid(), uid, groups)).then(|| d.to_path_buf())
    })
}

/// The `sockets` finding for the model `c` (daemon mode only).
///
/// With `--socket-prefix DIR`: `DIR` must not be world-writable (the module
/// refuses it), must be writable by the Apache parent, searchable (with its
/// ancestors) by the children's user, and short enough for a socket name.
/// Without it the module makes `<server root>/rwsgi` itself; only the
/// length is checked (reading the server root is the `app-access` check).
pub fn sockets(c: &ServerConfig, host: &HostFacts) -> Finding {
    if c.daemon.is_none() {
        return Finding::ok("sockets", "embedded mode: no daemon sockets");
    }
    let (dir, base, given) = match &c.socket_prefix {
        Some(prefix) => (
            prefix.parent().unwrap_or(Path::new("/")).to_path_buf(),
            prefix
                .file_name()
                .map(|f| f.to_string_lossy().into_owned() + ".")
                .unwrap_or_default(),
            true,
        ),
        None => (c.server_root.join("rwsgi"), String::new(), false),
    };
    let longest = dir.as_os_str().len() + socket_name_overhead(&base);
    if longest > SOCKET_PATH_MAX {
        return Finding::fail(
            "sockets",
            format!(
                "RWSGI0154: daemon socket names in {} would be up to {longest} bytes, more than a UNIX socket's {SOCKET_PATH_MAX}",
                dir.display()
            ),
            if given {
                "give --socket-prefix a shorter directory"
            } else {
                "give --server-root (or --socket-prefix) a shorter directory"
            },
        );
    }
    if !given {
        return Finding::ok(
            "sockets",
            format!(
                "daemon sockets go to {} (made by the module)",
                dir.display()
            ),
        );
    }
    let meta = match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            return Finding::fail(
                "sockets",
                format!(
                    "RWSGI0154: --socket-prefix {} is not a directory",
                    dir.display()
                ),
                "give --socket-prefix an existing directory",
            )
        }
        Err(e) => {
            return Finding::fail(
                "sockets",
                format!("RWSGI0154: --socket-prefix {}: {e}", dir.display()),
                "create the directory first",
            )
        }
    };
    if meta.mode() & 0o002 != 0 {
        return Finding::fail(
            "sockets",
            format!(
                "RWSGI0154: --socket-prefix {} is world-writable: another user could replace the daemon sockets, so the module refuses it",
                dir.display()
            ),
            format!("use a directory only root and the children's user can write (chmod o-w {})", dir.display()),
        );
    }
    if let Err(e) = nix::unistd::access(
        &dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    ) {
        return Finding::fail(
            "sockets",
            format!(
                "RWSGI0154: the Apache parent (uid {}) cannot create sockets in --socket-prefix {}: {}",
                host.euid,
                dir.display(),
                e.desc()
            ),
            "give that user write permission on the directory, or choose another",
        );
    }
    let (uid, groups, user) = match &c.run_as {
        Some(r) => (r.uid, r.groups.clone(), r.user.clone()),
        None => (
            host.euid,
            vec![host.egid],
            super::children_user(c, host.euid),
        ),
    };
    if let Some(blocked) = first_unsearchable(&dir, uid, &groups) {
        return Finding::fail(
            "sockets",
            format!(
                "RWSGI0154: user '{user}' cannot reach the daemon sockets in {} (no search permission on {})",
                dir.display(),
                blocked.display()
            ),
            format!("grant that user search (x) permission on {}", blocked.display()),
        );
    }
    Finding::ok(
        "sockets",
        format!(
            "daemon sockets go to {} (writable by Apache, reachable by user '{user}')",
            dir.display()
        ),
    )
}

/// Apache's compile-time limits for an MPM: (`MAX_SERVER_LIMIT`,
/// `MAX_THREAD_LIMIT`) of httpd 2.4's event, worker and prefork sources.
pub fn compiled_limits(mpm: Mpm) -> (u32, u32) {
    match mpm {
        Mpm::Event => (20_000, 100_000),
        Mpm::Worker => (20_000, 20_000),
        Mpm::Prefork => (200_000, 1),
    }
}

/// The `mpm` finding for the model `c` (pure): `WARN` when Apache would
/// lower a directive to its compile-time limit, when `--threads` has no
/// effect (embedded mode under prefork), or when Apache's children cannot
/// hold the daemon's threads' worth of requests; `OK` with the figures
/// otherwise.
pub fn mpm(c: &ServerConfig) -> Finding {
    let s = &c.sizing;
    let name = c.mpm.name();
    let (max_servers, max_threads) = compiled_limits(c.mpm);
    if s.server_limit > max_servers || s.thread_limit > max_threads {
        return Finding::warn(
            "mpm",
            format!(
                "RWSGI0155: the {name} MPM allows at most {max_servers} children of {max_threads} thread(s); \
                 ServerLimit {} / ThreadLimit {} would be lowered by Apache",
                s.server_limit, s.thread_limit
            ),
            "lower --max-clients, --processes or --threads",
        );
    }
    if c.mpm == Mpm::Prefork && c.daemon.is_none() && c.threads > 1 {
        return Finding::warn(
            "mpm",
            format!(
                "RWSGI0155: --threads {} has no effect in embedded mode under the prefork MPM: each child serves one \
                 request at a time ({} children at most)",
                c.threads, s.max_request_workers
            ),
            "drop --threads, use daemon mode (the default), or --server-mpm event",
        );
    }
    let wanted = c.processes.saturating_mul(c.threads);
    if s.max_request_workers < wanted {
        return Finding::warn(
            "mpm",
            format!(
                "RWSGI0155: Apache's {} worker(s) (MaxRequestWorkers) are fewer than the {wanted} requests the \
                 application's {} process(es) x {} thread(s) can run",
                s.max_request_workers, c.processes, c.threads
            ),
            format!("raise --max-clients to {wanted} or more"),
        );
    }
    let app = match &c.daemon {
        Some(_) => format!(
            "relaying to {} daemon process(es) x {} thread(s)",
            c.processes, c.threads
        ),
        None => "running the application embedded".to_string(),
    };
    Finding::ok(
        "mpm",
        format!(
            "{name} MPM: up to {} child(ren) x {} thread(s), MaxRequestWorkers {}, {app}",
            s.active_children(),
            s.threads_per_child,
            s.max_request_workers
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;
    use crate::model::tests::Fixture;

    #[test]
    fn search_bits() {
        assert!(may_search(0o700, 5, 5, 5, &[5]));
        assert!(!may_search(0o700, 5, 5, 6, &[6]));
        assert!(may_search(0o710, 5, 7, 6, &[6, 7]));
        assert!(may_search(0o701, 5, 7, 6, &[6]));
        assert!(!may_search(0o770, 5, 7, 6, &[6]));
        assert!(may_search(0o000, 5, 5, 0, &[0]));
    }

    #[test]
    fn socket_name_length() {
        // "/" + "wsgi." + pid + ".gen" + "." + hash + ".sock"
        assert_eq!(socket_name_overhead("wsgi."), 1 + 5 + 7 + 5 + 1 + 8 + 5);
        assert_eq!(socket_name_overhead(""), 27);
    }

    #[test]
    fn socket_directory_verdicts() {
        use std::os::unix::fs::PermissionsExt;
        let f = Fixture::new();
        // Checked as the user running the test (who owns the directories).
        let host = f.host(nix::unistd::geteuid().as_raw());
        let c = f.config(&["app.wsgi", "--embedded-mode"]).unwrap();
        assert!(sockets(&c, &host).message.contains("embedded mode"));
        let c = f.config(&["app.wsgi"]).unwrap();
        let s = sockets(&c, &host);
        assert_eq!(s.status, Status::Ok, "{s}");
        assert!(s.message.contains("root/rwsgi (made by the module)"), "{s}");

        let dir = f.path("sockets");
        std::fs::create_dir(&dir).unwrap();
        let prefix = dir.to_string_lossy().into_owned();
        let c = f.config(&["app.wsgi", "--socket-prefix", &prefix]).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let s = sockets(&c, &host);
        assert_eq!(s.status, Status::Fail, "{s}");
        assert!(s.message.contains("world-writable"), "{s}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = sockets(&c, &host);
        assert_eq!(s.status, Status::Ok, "{s}");

        let deep = f.path(&"d".repeat(100));
        std::fs::create_dir(&deep).unwrap();
        let c = f
            .config(&["app.wsgi", "--socket-prefix", &deep.to_string_lossy()])
            .unwrap();
        let s = sockets(&c, &host);
        assert_eq!(s.status, Status::Fail, "{s}");
        assert!(s.message.contains("more than a UNIX socket's 107"), "{s}");
    }

    #[test]
    fn mpm_verdicts() {
        let f = Fixture::new();
        let c = f.config(&["app.wsgi"]).unwrap();
        let m = mpm(&c);
        assert_eq!(m.status, Status::Ok, "{m}");
        assert!(
            m.message
                .contains("relaying to 1 daemon process(es) x 5 thread(s)"),
            "{m}"
        );

        let mut c = f
            .config(&["app.wsgi", "--embedded-mode", "--threads", "4"])
            .unwrap();
        c.mpm = Mpm::Prefork;
        assert_eq!(mpm(&c).status, Status::Warn);

        let mut c = f
            .config(&["app.wsgi", "--processes", "2", "--threads", "10"])
            .unwrap();
        c.sizing.max_request_workers = 5;
        let w = mpm(&c);
        assert_eq!(w.status, Status::Warn);
        assert!(w.fix.unwrap().contains("--max-clients to 20"));

        let mut c = f.config(&["app.wsgi"]).unwrap();
        c.mpm = Mpm::Worker;
        c.sizing.thread_limit = 30_000;
        assert!(mpm(&c).message.contains("lowered by Apache"));
    }
}
