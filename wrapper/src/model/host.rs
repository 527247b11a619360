//! Facts about the machine and process the model depends on.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Facts about the machine and process that the model depends on, gathered
/// once by [`HostFacts::current`] so tests can substitute their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// Effective uid: 0 means Apache's children must be given `--user`/`--group`.
    pub euid: u32,
    /// Effective gid (Apache's `Group` when not run as root).
    pub egid: u32,
    /// Real uid, part of the default server root name (as in mod_wsgi-express).
    pub uid: u32,
    /// Current directory, against which relative paths are resolved.
    pub cwd: PathBuf,
    /// `$VIRTUAL_ENV`, the first default of `--python-home`.
    pub virtual_env: Option<PathBuf>,
    /// `$RWSGI_MODULE`, the module path override.
    pub module_override: Option<PathBuf>,
    /// Directory of the running executable, searched for the module.
    pub exe_dir: Option<PathBuf>,
    /// The current locale: first non-empty of `$LC_ALL`, `$LC_CTYPE`, `$LANG`.
    pub locale_env: Option<String>,
    /// bash (`/bin/bash`, else `/usr/bin/bash`): apachectl's shell, whose
    /// `exec -a` names the Apache processes (`--process-name`).
    pub bash: Option<PathBuf>,
    /// `$PATH`, to find programs given by name (`--gdb-executable`).
    pub path_env: Option<String>,
}

impl HostFacts {
    /// Reads the facts of the running process. Errors only if the current
    /// directory cannot be determined.
    pub fn current() -> Result<Self> {
        let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Ok(HostFacts {
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            uid: nix::unistd::getuid().as_raw(),
            cwd: std::env::current_dir().context("cannot determine the current directory")?,
            virtual_env: non_empty("VIRTUAL_ENV").map(PathBuf::from),
            module_override: non_empty("RWSGI_MODULE").map(PathBuf::from),
            exe_dir: std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf)),
            locale_env: ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .find_map(|n| non_empty(n))
                .map(|v| v.to_string_lossy().into_owned()),
            bash: ["/bin/bash", "/usr/bin/bash"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file()),
            path_env: std::env::var("PATH").ok(),
        })
    }
}
