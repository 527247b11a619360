//! Build script of mod_rwsgi.
//!
//! Inputs (environment):
//! - `APXS`: the apxs program of the Apache to build against (default `apxs`).
//!   `apxs -q INCLUDEDIR`, `APR_INCLUDEDIR`, `APU_INCLUDEDIR` and
//!   `EXTRA_CPPFLAGS` give the header search path and defines.
//! - `RWSGI_PYTHON`: the Python interpreter whose libpython the module links
//!   (default `python3` on PATH). Its version, libpython path and prefix are
//!   recorded in the module (`RWSGI_BUILD_*` compile-time variables) so the
//!   module can check at load time that the libpython mapped into Apache is
//!   the one it was built for.
//! - `PYO3_PYTHON`: read by pyo3-ffi for its ABI configuration; it must name a
//!   Python of the same minor version as `RWSGI_PYTHON` (checked here).
//!
//! Outputs: `$OUT_DIR/bindings.rs` (bindgen, allowlisted), the static library
//! of the C shim (`src/ffi/shim.c`), link directives for libpython (with an
//! rpath when it is not in a system library directory), and `-z nodelete` so
//! that Apache's unload/reload of the module on restart never unmaps code that
//! Python or thread-local destructors still reference.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn apxs_query(apxs: &str, var: &str) -> String {
    let out = Command::new(apxs)
        .args(["-q", var])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{apxs} -q {var}` (install apache2-dev or set APXS): {e}")
        });
    if !out.status.success() {
        panic!(
            "`{apxs} -q {var}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout)
        .expect("apxs output is not UTF-8")
        .trim()
        .to_string()
}

/// Facts about the Python named by `RWSGI_PYTHON`.
struct PythonInfo {
    version: String,
    minor: String,
    libdir: String,
    ldlibrary: String,
    instsoname: String,
    base_prefix: String,
    executable: String,
}

fn python_info(python: &str) -> PythonInfo {
    let script = "import sys, sysconfig\n\
        v = sysconfig.get_config_var\n\
        print(sys.version.split()[0])\n\
        print('%d.%d' % sys.version_info[:2])\n\
        print(v('LIBDIR') or '')\n\
        print(v('LDLIBRARY') or '')\n\
        print(v('INSTSONAME') or '')\n\
        print(sys.base_prefix)\n\
        print(sys.executable)\n\
        print(v('Py_ENABLE_SHARED') or 0)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .output()
        .unwrap_or_else(|e| panic!("cannot run RWSGI_PYTHON={python}: {e}"));
    if !out.status.success() {
        panic!(
            "RWSGI_PYTHON={python} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8(out.stdout).expect("python output is not UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 8 {
        panic!("unexpected output from RWSGI_PYTHON={python}: {text}");
    }
    if lines[7].trim() != "1" {
        panic!(
            "RWSGI_PYTHON={python} was not built with --enable-shared: mod_rwsgi needs libpython as a shared library"
        );
    }
    PythonInfo {
        version: lines[0].into(),
        minor: lines[1].into(),
        libdir: lines[2].into(),
        ldlibrary: lines[3].into(),
        instsoname: lines[4].into(),
        base_prefix: lines[5].into(),
        executable: lines[6].into(),
    }
}

fn python_minor(python: &str) -> Option<String> {
    let out = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    for var in ["APXS", "RWSGI_PYTHON", "PYO3_PYTHON"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    for file in ["src/ffi/wrapper.h", "src/ffi/shim.h", "src/ffi/shim.c"] {
        println!("cargo:rerun-if-changed={file}");
    }

    // ---- Apache ---------------------------------------------------------
    let apxs = env::var("APXS").unwrap_or_else(|_| "apxs".into());
    let mut include_dirs = vec![PathBuf::from("src/ffi")];
    for var in ["INCLUDEDIR", "APR_INCLUDEDIR", "APU_INCLUDEDIR"] {
        let dir = apxs_query(&apxs, var);
        if !dir.is_empty() && !include_dirs.iter().any(|d| d == Path::new(&dir)) {
            include_dirs.push(dir.into());
        }
    }
    let defines: Vec<String> = apxs_query(&apxs, "EXTRA_CPPFLAGS")
        .split_whitespace()
        .filter(|f| f.starts_with("-D"))
        .map(String::from)
        .collect();

    let mut shim = cc::Build::new();
    shim.file("src/ffi/shim.c").warnings(true);
    for dir in &include_dirs {
        shim.include(dir);
    }
    for def in &defines {
        let def = &def[2..];
        match def.split_once('=') {
            Some((k, v)) => shim.define(k, v),
            None => shim.define(def, None),
        };
    }
    shim.compile("rwsgi_shim");

    let mut builder = bindgen::Builder::default()
        .header("src/ffi/wrapper.h")
        .clang_args(include_dirs.iter().map(|d| format!("-I{}", d.display())))
        .clang_args(defines.iter().cloned())
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false);
    for pattern in [
        "ap_.*",
        "apr_.*",
        "rwsgi_.*",
        "request_rec",
        "server_rec",
        "conn_rec",
        "module",
        "module_struct",
        "command_rec",
        "cmd_parms",
        "cmd_func",
        "process_rec",
        "core_dir_config",
        "unixd_config_rec",
        "global_score",
        "process_score",
        "worker_score",
        "authn_.*",
        "authz_.*",
    ] {
        builder = builder
            .allowlist_function(pattern)
            .allowlist_type(pattern)
            .allowlist_var(pattern);
    }
    for var in [
        "APLOG_.*",
        "OK",
        "DECLINED",
        "DONE",
        "HTTP_.*",
        "RSRC_CONF",
        "ACCESS_CONF",
        "OR_.*",
        "REQUEST_CHUNKED_.*",
        "AP_MPMQ_.*",
        "APR_.*",
        "AP_CONN_.*",
        "APR_HOOK_.*",
        "M_GET",
        "M_POST",
        "M_OPTIONS",
        "AP_FTYPE_.*",
        "EXEC_ON_READ",
        "RAW_ARGS",
        "TAKE1",
        "TAKE2",
        "TAKE12",
        "TAKE123",
        "ITERATE",
        "FLAG",
        "NO_ARGS",
        "GLOBAL_ONLY",
        "NOT_IN_.*",
        "REMOTE_.*",
        "MODULE_MAGIC_.*",
        "AP_MODULE_FLAG_.*",
        "AP_SQ_.*",
        "AUTHN_.*",
        "AUTHZ_.*",
        "AP_AUTH_.*",
        "SATISFY_.*",
    ] {
        builder = builder.allowlist_var(var).allowlist_type(var);
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on src/ffi/wrapper.h (is libclang-dev installed?)");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    bindings
        .write_to_file(out_dir.join("bindings.rs"))
        .expect("cannot write bindings.rs");

    // ---- Python ---------------------------------------------------------
    let python = env::var("RWSGI_PYTHON").unwrap_or_else(|_| "python3".into());
    let info = python_info(&python);
    let pyo3_python = env::var("PYO3_PYTHON").unwrap_or_else(|_| "python3".into());
    match python_minor(&pyo3_python) {
        Some(minor) if minor == info.minor => {}
        found => panic!(
            "pyo3-ffi is configured for PYO3_PYTHON={pyo3_python} ({}) but RWSGI_PYTHON={python} is {}: \
             set PYO3_PYTHON={python}",
            found.unwrap_or_else(|| "not runnable".into()),
            info.minor
        ),
    }
    let soname = if info.instsoname.is_empty() {
        info.ldlibrary.clone()
    } else {
        info.instsoname.clone()
    };
    let libpython = Path::new(&info.libdir).join(&soname);
    let libpython = std::fs::canonicalize(&libpython).unwrap_or_else(|e| {
        panic!(
            "libpython of RWSGI_PYTHON={python} not found at {}: {e} (install the python3.X-dev package)",
            libpython.display()
        )
    });
    let link_name = info
        .ldlibrary
        .strip_prefix("lib")
        .and_then(|s| s.split(".so").next())
        .unwrap_or_else(|| panic!("unexpected LDLIBRARY {}", info.ldlibrary))
        .to_string();
    println!("cargo:rustc-link-search=native={}", info.libdir);
    println!("cargo:rustc-link-lib=dylib={link_name}");
    let system_dirs = ["/usr/lib", "/lib", "/usr/lib64", "/lib64"];
    let in_system_dir = system_dirs.iter().any(|d| {
        info.libdir == *d
            || info.libdir.starts_with(&format!("{d}/x86_64-linux-gnu"))
            || info.libdir.starts_with(&format!("{d}/aarch64-linux-gnu"))
    });
    if !in_system_dir {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,{}", info.libdir);
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rustc-env=RWSGI_BUILD_PY_VERSION={}", info.version);
    println!(
        "cargo:rustc-env=RWSGI_BUILD_LIBPYTHON={}",
        libpython.display()
    );
    println!("cargo:rustc-env=RWSGI_BUILD_PY_PREFIX={}", info.base_prefix);
    println!(
        "cargo:rustc-env=RWSGI_BUILD_PY_EXECUTABLE={}",
        info.executable
    );
}
