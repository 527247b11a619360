//! Locating the mod_rwsgi shared object, and the `module-config` and
//! `install-module` subcommands (mod_wsgi-express's commands of the same
//! names).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::build_info::BuildInfo;
use crate::model::conf_safe;

/// File name of the installed module (and of a module shipped next to the
/// launcher).
pub const MODULE_FILE: &str = "mod_rwsgi.so";

/// File name cargo gives the cdylib (`target/<profile>/libmod_rwsgi.so`).
pub const CARGO_MODULE_FILE: &str = "libmod_rwsgi.so";

/// The places searched for the module, in order.
///
/// Inputs: `$RWSGI_MODULE` (when set it is the only candidate), the
/// directory of the launcher executable, the Apache modules directory.
/// Output: `[$RWSGI_MODULE]`, or `[<exe dir>/mod_rwsgi.so, <exe
/// dir>/libmod_rwsgi.so, <modules dir>/mod_rwsgi.so]`.
pub fn candidates(
    override_path: Option<&Path>,
    exe_dir: Option<&Path>,
    modules_dir: &Path,
) -> Vec<PathBuf> {
    if let Some(p) = override_path {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(dir) = exe_dir {
        out.push(dir.join(MODULE_FILE));
        out.push(dir.join(CARGO_MODULE_FILE));
    }
    out.push(modules_dir.join(MODULE_FILE));
    out
}

/// The first of [`candidates`] that is a file, made absolute.
///
/// Errors: none found, with the list of places tried (and a hint to build
/// the module or set `RWSGI_MODULE`).
pub fn find_module(
    override_path: Option<&Path>,
    exe_dir: Option<&Path>,
    modules_dir: &Path,
) -> Result<PathBuf> {
    let tried = candidates(override_path, exe_dir, modules_dir);
    if let Some(found) = tried.iter().find(|p| p.is_file()) {
        return Ok(std::path::absolute(found).unwrap_or_else(|_| found.clone()));
    }
    let list: Vec<String> = tried.iter().map(|p| format!("  {}", p.display())).collect();
    let hint = if override_path.is_some() {
        "RWSGI_MODULE names a file that does not exist"
    } else {
        "build it with `cargo build --release -p mod_rwsgi`, run `rwsgi-express install-module`, or set RWSGI_MODULE"
    };
    bail!(
        "cannot find the mod_rwsgi module; tried:\n{}\n{hint}",
        list.join("\n")
    )
}

/// The Python home printed by `module-config`/`install-module`: `--python-home`,
/// else `$VIRTUAL_ENV`, else the build-time Python prefix. Errors if none is
/// known or it is not a directory.
pub fn python_home(
    arg: Option<&Path>,
    virtual_env: Option<&Path>,
    build: &BuildInfo,
) -> Result<PathBuf> {
    let home = arg
        .map(Path::to_path_buf)
        .or_else(|| virtual_env.map(Path::to_path_buf))
        .or_else(|| build.python_home.clone());
    let Some(home) = home else {
        bail!("no Python home known (the launcher was built without Python): pass --python-home");
    };
    let home = std::path::absolute(&home).unwrap_or(home);
    if !home.is_dir() {
        bail!("Python home {} is not a directory", home.display());
    }
    Ok(home)
}

/// The lines for a system Apache's configuration:
/// `LoadModule wsgi_module "<module>"` and `WSGIPythonHome "<home>"`, each
/// ending in a newline. Errors if a path cannot be quoted in httpd.conf.
pub fn config_lines(module: &Path, python_home: &Path) -> Result<String> {
    conf_safe("module", module)?;
    conf_safe("Python home", python_home)?;
    Ok(format!(
        "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"{}\"\n",
        module.display(),
        python_home.display()
    ))
}

/// Copies `module` to `<modules_dir>/mod_rwsgi.so` (through a temporary
/// file and a rename, so a running Apache that has the old file mapped is not
/// disturbed), mode 0644. Returns the destination. When `module` already is
/// the destination nothing is copied. Errors: the directory is missing or
/// not writable.
pub fn install(module: &Path, modules_dir: &Path) -> Result<PathBuf> {
    if !modules_dir.is_dir() {
        bail!("modules directory {} does not exist", modules_dir.display());
    }
    let dest = modules_dir.join(MODULE_FILE);
    if let (Ok(a), Ok(b)) = (module.canonicalize(), dest.canonicalize()) {
        if a == b {
            return Ok(dest);
        }
    }
    let tmp = modules_dir.join(format!(".{MODULE_FILE}.{}.tmp", std::process::id()));
    let result = (|| -> Result<()> {
        std::fs::copy(module, &tmp)
            .with_context(|| format!("cannot copy {} to {}", module.display(), tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, &dest)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|_| dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_order() {
        let c = candidates(None, Some(Path::new("/opt/bin")), Path::new("/mods"));
        assert_eq!(
            c,
            vec![
                PathBuf::from("/opt/bin/mod_rwsgi.so"),
                PathBuf::from("/opt/bin/libmod_rwsgi.so"),
                PathBuf::from("/mods/mod_rwsgi.so"),
            ]
        );
        let c = candidates(
            Some(Path::new("/x/m.so")),
            Some(Path::new("/opt/bin")),
            Path::new("/mods"),
        );
        assert_eq!(c, vec![PathBuf::from("/x/m.so")]);
    }

    #[test]
    fn finds_first_existing_and_reports_tried() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("bin");
        let mods = d.path().join("mods");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&mods).unwrap();
        let e = find_module(None, Some(&bin), &mods)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&bin.join("mod_rwsgi.so").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&bin.join("libmod_rwsgi.so").display().to_string()),
            "{e}"
        );
        assert!(
            e.contains(&mods.join("mod_rwsgi.so").display().to_string()),
            "{e}"
        );
        std::fs::write(mods.join("mod_rwsgi.so"), b"").unwrap();
        assert_eq!(
            find_module(None, Some(&bin), &mods).unwrap(),
            mods.join("mod_rwsgi.so")
        );
        std::fs::write(bin.join("libmod_rwsgi.so"), b"").unwrap();
        assert_eq!(
            find_module(None, Some(&bin), &mods).unwrap(),
            bin.join("libmod_rwsgi.so")
        );
        std::fs::write(bin.join("mod_rwsgi.so"), b"").unwrap();
        assert_eq!(
            find_module(None, Some(&bin), &mods).unwrap(),
            bin.join("mod_rwsgi.so")
        );
        let missing = d.path().join("nope.so");
        let e = find_module(Some(&missing), Some(&bin), &mods)
            .unwrap_err()
            .to_string();
        assert!(e.contains("RWSGI_MODULE"), "{e}");
    }

    #[test]
    fn lines_and_install() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("libmod_rwsgi.so");
        std::fs::write(&src, b"ELF").unwrap();
        let mods = d.path().join("mods");
        std::fs::create_dir(&mods).unwrap();
        let dest = install(&src, &mods).unwrap();
        assert_eq!(dest, mods.join("mod_rwsgi.so"));
        assert_eq!(std::fs::read(&dest).unwrap(), b"ELF");
        assert_eq!(
            std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Installing the installed file onto itself is a no-op.
        assert_eq!(install(&dest, &mods).unwrap(), dest);
        assert_eq!(
            config_lines(&dest, Path::new("/usr")).unwrap(),
            format!(
                "LoadModule wsgi_module \"{}\"\nWSGIPythonHome \"/usr\"\n",
                dest.display()
            )
        );
        assert!(install(&src, &d.path().join("absent")).is_err());
    }

    #[test]
    fn python_home_precedence() {
        let d = tempfile::tempdir().unwrap();
        let build = BuildInfo {
            python_home: Some(d.path().to_path_buf()),
            python_version: None,
        };
        assert_eq!(python_home(None, None, &build).unwrap(), d.path());
        assert_eq!(
            python_home(Some(Path::new("/")), Some(d.path()), &build).unwrap(),
            Path::new("/")
        );
        assert_eq!(
            python_home(None, Some(Path::new("/usr")), &build).unwrap(),
            Path::new("/usr")
        );
        assert!(python_home(None, None, &BuildInfo::default()).is_err());
    }
}
