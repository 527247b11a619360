//! The `python` check: is the Python home (`--python-home`, `$VIRTUAL_ENV`
//! or the build Python's prefix) a prefix or virtualenv of the very Python
//! whose libpython the module links?
//!
//! The module links `libpython3.X.so.1.0` by soname. Two Pythons of the same
//! minor version (Debian's and pyenv's 3.11) share that soname, so the
//! loader happily maps one while the home's standard library and extension
//! modules belong to the other: Python then fails late and obscurely (e.g.
//! `No module named 'math'`, built in in one build and an extension in the
//! other). A home of another minor version does not work at all. The check
//! asks the loader (`ldd`) which libpython it finds for the module, finds
//! the installation prefix of that file (the ancestor holding
//! `lib/python3.X/os.py`), and compares it with the home's base
//! installation (`pyvenv.cfg`'s `home`, followed through nested
//! virtualenvs). Failures are RWSGI0150.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Finding;
use crate::build_info::BuildInfo;

/// One line of `ldd`'s output about libpython.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LddEntry {
    /// The soname the module needs, e.g. `libpython3.11.so.1.0`.
    pub soname: String,
    /// Where the loader finds it; `None` for `not found`.
    pub path: Option<PathBuf>,
}

/// The libpython line of `ldd` output (`\tlibpython3.11.so.1.0 =>
/// /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 (0x...)`), if any.
pub fn parse_ldd(text: &str) -> Option<LddEntry> {
    text.lines().find_map(|line| {
        let (name, rest) = line.trim().split_once("=>")?;
        let soname = name.trim();
        if !soname.starts_with("libpython") {
            return None;
        }
        let target = rest.trim();
        let path = (!target.starts_with("not found")).then(|| {
            let end = target.find(" (").unwrap_or(target.len());
            PathBuf::from(target[..end].trim())
        });
        Some(LddEntry {
            soname: soname.to_string(),
            path,
        })
    })
}

/// `X.Y` of a libpython soname: `libpython3.11.so.1.0` -> `3.11`,
/// `libpython3.13t.so.1.0` -> `3.13` (the free-threaded build's `t` is
/// dropped). `None` for other names.
pub fn soname_version(soname: &str) -> Option<String> {
    let rest = soname.strip_prefix("libpython")?;
    let v = rest.split(".so").next()?;
    let v = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let (major, minor) = v.split_once('.')?;
    (major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok()).then(|| v.to_string())
}

/// The installation prefix a libpython file belongs to: its nearest ancestor
/// directory holding `lib/python<version>/os.py` (`/usr` for
/// `/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0`,
/// `/root/.pyenv/versions/3.11.7` for its `lib/libpython3.11.so.1.0`).
pub fn prefix_of_libpython(lib: &Path, version: &str) -> Option<PathBuf> {
    lib.ancestors()
        .skip(1)
        .find(|d| {
            d.join("lib")
                .join(format!("python{version}"))
                .join("os.py")
                .is_file()
        })
        .map(Path::to_path_buf)
}

/// The `home` (directory of the base interpreter) and version of a
/// virtualenv's `pyvenv.cfg` (`version = 3.11.7`, or `version_info =
/// 3.12.1.final.0` as some tools write it).
pub fn parse_pyvenv_cfg(text: &str) -> (Option<PathBuf>, Option<String>) {
    let mut home = None;
    let mut version = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "home" if !v.is_empty() => home = Some(PathBuf::from(v)),
            "version" | "version_info" if !v.is_empty() && version.is_none() => {
                let parts: Vec<&str> = v.split('.').take(3).collect();
                version = Some(parts.join("."));
            }
            _ => {}
        }
    }
    (home, version)
}

/// What the Python home is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomePython {
    /// The home as configured.
    pub home: PathBuf,
    /// Whether it is a virtualenv (has `pyvenv.cfg`).
    pub venv: bool,
    /// The base installation's prefix (the home itself for a prefix),
    /// canonical.
    pub base: PathBuf,
    /// Its version: `pyvenv.cfg`'s, else `X.Y` of the only
    /// `lib/pythonX.Y/os.py` of the base.
    pub version: Option<String>,
}

/// `X.Y` of the standard library under `prefix/lib` when there is exactly one.
fn stdlib_version(prefix: &Path) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(prefix.join("lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let v = name.strip_prefix("python")?.to_string();
            (soname_version(&format!("libpython{v}.so")).is_some()
                && e.path().join("os.py").is_file())
            .then_some(v)
        })
        .collect();
    found.sort();
    (found.len() == 1).then(|| found.remove(0))
}

/// Describes the home: a virtualenv is followed (through at most four
/// nested virtualenvs) to its base installation. Errors: the home is not a
/// directory, or a `pyvenv.cfg` has no `home`.
pub fn home_python(home: &Path) -> Result<HomePython, String> {
    if !home.is_dir() {
        return Err(format!(
            "the Python home {} is not a directory",
            home.display()
        ));
    }
    let mut dir = home.to_path_buf();
    let mut version = None;
    let mut venv = false;
    for _ in 0..5 {
        let Ok(text) = std::fs::read_to_string(dir.join("pyvenv.cfg")) else {
            break;
        };
        venv = true;
        let (bin, v) = parse_pyvenv_cfg(&text);
        version = version.or(v);
        // The bin directory may be a symlink (/bin -> usr/bin): its
        // parent is then the real one's.
        let bin = bin.map(|b| b.canonicalize().unwrap_or(b));
        let Some(base) = bin.as_deref().and_then(Path::parent) else {
            return Err(format!(
                "{} has no `home = <directory of the base python>` line",
                dir.join("pyvenv.cfg").display()
            ));
        };
        dir = base.to_path_buf();
    }
    let base = dir.canonicalize().unwrap_or(dir);
    let version = version.or_else(|| stdlib_version(&base));
    Ok(HomePython {
        home: home.to_path_buf(),
        venv,
        base,
        version,
    })
}

/// What the module links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModulePython {
    /// The module file.
    pub module: PathBuf,
    /// The libpython soname it needs.
    pub soname: String,
    /// `X.Y` of the soname.
    pub version: String,
    /// The libpython file the loader finds, canonical.
    pub libpython: PathBuf,
    /// The installation prefix of that file, canonical.
    pub prefix: PathBuf,
}

/// The interpreter of the prefix, for the fixes: `prefix/bin/pythonX.Y`.
fn interpreter(prefix: &Path, version: &str) -> String {
    prefix
        .join("bin")
        .join(format!("python{version}"))
        .display()
        .to_string()
}

/// The verdict, from the facts (pure).
///
/// Inputs: what the module links, the home, and the build Python's prefix
/// (`None` when unknown). Output: `OK` when the home's base installation is
/// the module's prefix; `FAIL` (RWSGI0150) naming both otherwise, worded
/// for a different version or for another build of the same version; also
/// `FAIL` when the loader's libpython is not the build Python's.
pub fn verdict(m: &ModulePython, h: &HomePython, build_prefix: Option<&Path>) -> Finding {
    let module_py = format!(
        "{} of the Python {} at {} ({})",
        m.soname,
        m.version,
        m.prefix.display(),
        m.libpython.display()
    );
    if let Some(b) = build_prefix {
        let b = b.canonicalize().unwrap_or_else(|_| b.to_path_buf());
        if b != m.prefix {
            return Finding::fail(
                "python",
                format!(
                    "RWSGI0150: for {} the loader finds {module_py}, but mod_rwsgi was built for the Python at {} \
                     (Apache would refuse it with RWSGI0002)",
                    m.module.display(),
                    b.display()
                ),
                format!(
                    "remove what makes the loader find the other libpython (LD_LIBRARY_PATH, LD_PRELOAD, ld.so.conf), \
                     or rebuild with RWSGI_PYTHON={}",
                    interpreter(&m.prefix, &m.version)
                ),
            );
        }
    }
    let what = if h.venv {
        format!("a virtualenv of the Python at {}", h.base.display())
    } else {
        "its installation prefix".to_string()
    };
    if h.base == m.prefix {
        return Finding::ok(
            "python",
            format!(
                "mod_rwsgi links {module_py}; the Python home {} is {what}",
                h.home.display()
            ),
        );
    }
    let home_version = h.version.as_deref().unwrap_or("of unknown version");
    let same_minor = h
        .version
        .as_deref()
        .is_some_and(|v| v == m.version || v.starts_with(&format!("{}.", m.version)));
    let how = if same_minor {
        "the same version but another build: its standard library and extension modules do not fit the libpython \
         Apache loads"
            .to_string()
    } else {
        format!("another version: the module only runs Python {}", m.version)
    };
    let home_desc = if h.venv {
        format!(
            "a virtualenv of Python {home_version} at {}",
            h.base.display()
        )
    } else {
        format!("the prefix of Python {home_version}")
    };
    let fix = if h.venv {
        format!(
            "recreate the virtualenv with `{} -m venv {}` (or rebuild mod_rwsgi with RWSGI_PYTHON naming the Python at {})",
            interpreter(&m.prefix, &m.version),
            h.home.display(),
            h.base.display()
        )
    } else {
        format!(
            "pass --python-home {} or a virtualenv made by {}",
            m.prefix.display(),
            interpreter(&m.prefix, &m.version)
        )
    };
    Finding::fail(
        "python",
        format!(
            "RWSGI0150: the Python home {} is {home_desc}, but mod_rwsgi links {module_py}: {how}",
            h.home.display()
        ),
        fix,
    )
}

/// Runs `ldd module` and returns its libpython line.
fn ldd(module: &Path) -> Result<Option<LddEntry>, String> {
    let out = Command::new("ldd")
        .arg(module)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ldd {} failed: {}",
            module.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_ldd(&String::from_utf8_lossy(&out.stdout)))
}

/// The `python` check.
///
/// Inputs: the module (`None` when it was not found), the Python home
/// (`None` when none is known) and the build facts. Output: one finding:
/// `FAIL` for a missing module, home or libpython, or a mismatch
/// ([`verdict`]); `WARN` when `ldd` cannot be run or the module's prefix
/// cannot be determined.
pub fn check(module: Option<&Path>, home: Option<&Path>, build: &BuildInfo) -> Finding {
    let Some(module) = module else {
        return Finding::fail(
            "python",
            "RWSGI0150: the mod_rwsgi module was not found, so its Python is unknown",
            "build it (scripts/build.sh), run `rwsgi-express install-module`, or set RWSGI_MODULE",
        );
    };
    let entry = match ldd(module) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Finding::warn(
                "python",
                format!(
                    "RWSGI0150: {} does not link a libpython (is it mod_rwsgi?)",
                    module.display()
                ),
                "point RWSGI_MODULE at mod_rwsgi.so",
            )
        }
        Err(e) => {
            return Finding::warn(
                "python",
                format!("RWSGI0150: cannot tell which libpython the module loads: {e}"),
                "install ldd (package libc-bin)",
            )
        }
    };
    let Some(lib) = entry.path.clone() else {
        return Finding::fail(
            "python",
            format!(
                "RWSGI0150: the loader cannot find {} needed by {}",
                entry.soname,
                module.display()
            ),
            "install the Python the module was built for (e.g. package libpython3.11), or rebuild it for an \
             installed Python (RWSGI_PYTHON)",
        );
    };
    let lib = lib.canonicalize().unwrap_or(lib);
    let version = soname_version(&entry.soname).unwrap_or_default();
    let Some(prefix) = prefix_of_libpython(&lib, &version) else {
        return Finding::warn(
            "python",
            format!(
                "RWSGI0150: no standard library (lib/python{version}/os.py) found above {}, so the module's Python \
                 installation is unknown",
                lib.display()
            ),
            "check that the Python the module was built for is fully installed",
        );
    };
    let prefix = prefix.canonicalize().unwrap_or(prefix);
    let Some(home) = home else {
        return Finding::fail(
            "python",
            "RWSGI0150: no Python home is known (the launcher was built without Python)",
            format!("pass --python-home {}", prefix.display()),
        );
    };
    let h = match home_python(home) {
        Ok(h) => h,
        Err(e) => {
            return Finding::fail(
                "python",
                format!("RWSGI0150: {e}"),
                format!(
                    "pass --python-home with a virtualenv made by {} or that prefix",
                    interpreter(&prefix, &version)
                ),
            )
        }
    };
    let m = ModulePython {
        module: module.to_path_buf(),
        soname: entry.soname,
        version,
        libpython: lib,
        prefix,
    };
    verdict(&m, &h, build.python_home.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn ldd_lines() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\
            \tlibpython3.11.so.1.0 => /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 (0x00007f12)\n\
            \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f11)\n";
        assert_eq!(
            parse_ldd(text),
            Some(LddEntry {
                soname: "libpython3.11.so.1.0".into(),
                path: Some("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0".into()),
            })
        );
        assert_eq!(
            parse_ldd("\tlibpython3.12.so.1.0 => not found\n"),
            Some(LddEntry {
                soname: "libpython3.12.so.1.0".into(),
                path: None
            })
        );
        assert_eq!(parse_ldd("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n"), None);
    }

    #[test]
    fn soname_versions() {
        assert_eq!(
            soname_version("libpython3.11.so.1.0").as_deref(),
            Some("3.11")
        );
        assert_eq!(
            soname_version("libpython3.13t.so.1.0").as_deref(),
            Some("3.13")
        );
        assert_eq!(soname_version("libpython3.so"), None);
        assert_eq!(soname_version("libc.so.6"), None);
    }

    #[test]
    fn pyvenv_cfg() {
        let text =
            "home = /root/.pyenv/versions/3.11.7/bin\ninclude-system-site-packages = false\n\
                    version = 3.11.7\nexecutable = /root/.pyenv/versions/3.11.7/bin/python3.11\n";
        assert_eq!(
            parse_pyvenv_cfg(text),
            (
                Some(PathBuf::from("/root/.pyenv/versions/3.11.7/bin")),
                Some("3.11.7".to_string())
            )
        );
        assert_eq!(
            parse_pyvenv_cfg("version_info = 3.12.1.final.0\n"),
            (None, Some("3.12.1".to_string()))
        );
    }

    fn fake_prefix(root: &Path, version: &str) -> PathBuf {
        let lib = root.join("lib").join(format!("python{version}"));
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(lib.join("os.py"), "").unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        root.canonicalize().unwrap()
    }

    #[test]
    fn prefix_and_home_resolution() {
        let d = tempfile::tempdir().unwrap();
        let usr = fake_prefix(&d.path().join("usr"), "3.11");
        let triplet = usr.join("lib/x86_64-linux-gnu");
        std::fs::create_dir_all(&triplet).unwrap();
        assert_eq!(
            prefix_of_libpython(&triplet.join("libpython3.11.so.1.0"), "3.11"),
            Some(usr.clone())
        );
        assert_eq!(
            prefix_of_libpython(&triplet.join("libpython3.12.so.1.0"), "3.12"),
            None
        );
        // A virtualenv of a virtualenv of usr.
        let v1 = d.path().join("v1");
        std::fs::create_dir_all(v1.join("lib/python3.11")).unwrap();
        std::fs::write(
            v1.join("pyvenv.cfg"),
            format!("home = {}\nversion = 3.11.2\n", usr.join("bin").display()),
        )
        .unwrap();
        let v2 = d.path().join("v2");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(
            v2.join("pyvenv.cfg"),
            format!("home = {}\n", v1.join("bin").display()),
        )
        .unwrap();
        let h = home_python(&v2).unwrap();
        assert!(h.venv);
        assert_eq!(h.base, usr);
        assert_eq!(h.version.as_deref(), Some("3.11.2"));
        let h = home_python(&usr).unwrap();
        assert!(!h.venv);
        assert_eq!(h.version.as_deref(), Some("3.11"));
        assert!(home_python(&d.path().join("missing")).is_err());
    }

    fn module_at(prefix: &str) -> ModulePython {
        ModulePython {
            module: "/m/mod_rwsgi.so".into(),
            soname: "libpython3.11.so.1.0".into(),
            version: "3.11".into(),
            libpython: format!("{prefix}/lib/libpython3.11.so.1.0").into(),
            prefix: prefix.into(),
        }
    }

    fn venv_of(base: &str, version: &str) -> HomePython {
        HomePython {
            home: "/srv/venv".into(),
            venv: true,
            base: base.into(),
            version: Some(version.into()),
        }
    }

    #[test]
    fn verdicts() {
        let m = module_at("/usr");
        let ok = verdict(&m, &venv_of("/usr", "3.11.2"), None);
        assert_eq!(ok.status, Status::Ok, "{ok}");
        assert!(
            ok.message.contains("a virtualenv of the Python at /usr"),
            "{ok}"
        );

        let build = verdict(&m, &venv_of("/root/.pyenv/versions/3.11.7", "3.11.7"), None);
        assert_eq!(build.status, Status::Fail);
        assert!(build.message.starts_with("RWSGI0150: "), "{build}");
        assert!(
            build
                .message
                .contains("Python 3.11.7 at /root/.pyenv/versions/3.11.7"),
            "{build}"
        );
        assert!(build.message.contains("Python 3.11 at /usr"), "{build}");
        assert!(build.message.contains("another build"), "{build}");
        assert!(
            build
                .fix
                .as_deref()
                .unwrap()
                .contains("/usr/bin/python3.11 -m venv /srv/venv"),
            "{build}"
        );

        let minor = verdict(&m, &venv_of("/opt/py312", "3.12.1"), None);
        assert_eq!(minor.status, Status::Fail);
        assert!(
            minor
                .message
                .contains("another version: the module only runs Python 3.11"),
            "{minor}"
        );

        let prefix = HomePython {
            home: "/opt/other".into(),
            venv: false,
            base: "/opt/other".into(),
            version: Some("3.11".into()),
        };
        let p = verdict(&m, &prefix, None);
        assert_eq!(p.status, Status::Fail);
        assert!(
            p.fix.as_deref().unwrap().contains("--python-home /usr"),
            "{p}"
        );

        // The loader finds a libpython of another prefix than the build's.
        let moved = verdict(
            &module_at("/nonexistent/pyenv"),
            &venv_of("/nonexistent/pyenv", "3.11.7"),
            Some(Path::new("/usr")),
        );
        assert_eq!(moved.status, Status::Fail);
        assert!(moved.message.contains("RWSGI0002"), "{moved}");
    }
}
