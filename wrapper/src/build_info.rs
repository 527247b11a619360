//! Facts recorded at build time by `build.rs` (apxs and the Python the module
//! is built for).

use std::path::PathBuf;

/// Default `--httpd-executable`: `apxs -q SBINDIR`/`apxs -q TARGET` at build
/// time (honouring `APXS`), `/usr/sbin/apache2` when apxs was not available.
pub const DEFAULT_HTTPD: &str = env!("RWSGI_DEFAULT_HTTPD");

/// Default `--modules-directory`: `apxs -q LIBEXECDIR` at build time,
/// `/usr/lib/apache2/modules` when apxs was not available.
pub const DEFAULT_MODULES_DIR: &str = env!("RWSGI_DEFAULT_MODULES_DIR");

/// Where the default `--rotatelogs-executable` is looked for, in order, as
/// mod_wsgi-express looks: `apxs -q SBINDIR`, then `apxs -q BINDIR` at
/// build time (`/usr/sbin`, `/usr/bin` without apxs).
pub const ROTATELOGS_DIRS: [&str; 2] = [env!("RWSGI_APXS_SBINDIR"), env!("RWSGI_APXS_BINDIR")];

/// Default `--mime-types`, the file Debian's `media-types` package installs
/// (mod_wsgi-express looks it up through Python's `mimetypes.knownfiles`).
pub const DEFAULT_MIME_TYPES: &str = "/etc/mime.types";

/// What the launcher knows about the Python the module was built for.
///
/// `python_home` is that Python's `sys.base_prefix` (the last-resort default
/// of `--python-home`); `python_version` is its `"X.Y"`, used to require
/// `<python home>/lib/pythonX.Y`. Either is `None` when `$RWSGI_PYTHON`
/// could not be run at build time. Tests build their own value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `sys.base_prefix` of `$RWSGI_PYTHON` at build time.
    pub python_home: Option<PathBuf>,
    /// `major.minor` of `$RWSGI_PYTHON` at build time, e.g. `"3.11"`.
    pub python_version: Option<String>,
}

impl BuildInfo {
    /// The values embedded in this binary by `build.rs` (empty values become
    /// `None`).
    pub fn embedded() -> Self {
        let home = env!("RWSGI_BUILD_PYTHON_HOME");
        let version = env!("RWSGI_BUILD_PYTHON_VERSION");
        BuildInfo {
            python_home: (!home.is_empty()).then(|| PathBuf::from(home)),
            python_version: (!version.is_empty()).then(|| version.to_string()),
        }
    }
}
