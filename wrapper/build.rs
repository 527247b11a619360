//! Build script of rwsgi-express: records the build machine's Apache and
//! Python facts as compile-time environment variables, read by
//! `src/build_info.rs`.
//!
//! Inputs (environment):
//! - `APXS`: the apxs program to ask (default `apxs`). `apxs -q SBINDIR`,
//!   `TARGET` and `LIBEXECDIR` give the default httpd executable
//!   (`SBINDIR/TARGET`) and modules directory. When apxs cannot be run the
//!   Debian paths `/usr/sbin/apache2` and `/usr/lib/apache2/modules` are used.
//! - `RWSGI_PYTHON`: the Python the module is built for (default `python3`,
//!   the same default as the root package's build script). Its
//!   `sys.base_prefix` becomes the default `--python-home` and its
//!   `major.minor` the version whose `lib/pythonX.Y` a Python home must have.
//!   When it cannot be run both are recorded empty and the launcher then
//!   requires `--python-home` (or `VIRTUAL_ENV`).
//!
//! Outputs: `RWSGI_DEFAULT_HTTPD`, `RWSGI_DEFAULT_MODULES_DIR`,
//! `RWSGI_APXS_SBINDIR`, `RWSGI_APXS_BINDIR` (where `rotatelogs` is looked
//! for, as mod_wsgi-express looks for it),
//! `RWSGI_BUILD_PYTHON_HOME`, `RWSGI_BUILD_PYTHON_VERSION`.

use std::env;
use std::process::Command;

fn apxs_query(apxs: &str, var: &str) -> Option<String> {
    let out = Command::new(apxs).args(["-q", var]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let value = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!value.is_empty()).then_some(value)
}

fn python_facts(python: &str) -> Option<(String, String)> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys; print(sys.base_prefix); print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let prefix = lines.next()?.trim().to_string();
    let version = lines.next()?.trim().to_string();
    (!prefix.is_empty() && !version.is_empty()).then_some((prefix, version))
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=APXS");
    println!("cargo:rerun-if-env-changed=RWSGI_PYTHON");

    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".to_string());
    let sbindir = apxs_query(&apxs, "SBINDIR").unwrap_or_else(|| "/usr/sbin".to_string());
    let target = apxs_query(&apxs, "TARGET").unwrap_or_else(|| "apache2".to_string());
    let libexecdir =
        apxs_query(&apxs, "LIBEXECDIR").unwrap_or_else(|| "/usr/lib/apache2/modules".to_string());
    println!("cargo:rustc-env=RWSGI_DEFAULT_HTTPD={sbindir}/{target}");
    println!("cargo:rustc-env=RWSGI_DEFAULT_MODULES_DIR={libexecdir}");
    let bindir = apxs_query(&apxs, "BINDIR").unwrap_or_else(|| "/usr/bin".to_string());
    println!("cargo:rustc-env=RWSGI_APXS_SBINDIR={sbindir}");
    println!("cargo:rustc-env=RWSGI_APXS_BINDIR={bindir}");

    let python = env::var("RWSGI_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let (home, version) = match python_facts(&python) {
        Some(facts) => facts,
        None => {
            println!(
                "cargo:warning=cannot run `{python}` (RWSGI_PYTHON): rwsgi-express will have no default --python-home"
            );
            (String::new(), String::new())
        }
    };
    println!("cargo:rustc-env=RWSGI_BUILD_PYTHON_HOME={home}");
    println!("cargo:rustc-env=RWSGI_BUILD_PYTHON_VERSION={version}");
}
