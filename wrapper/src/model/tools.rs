//! The parts of [`super::ServerConfig::build`] for mod_wsgi-express's
//! telemetry and debugging tools: the MPM debug mode and PHP 5 choose, the
//! `--enable-telemetry` service, the Python packages to check, the `-D`
//! flags of httpd.

use std::path::Path;

use anyhow::{anyhow, Result};

use super::rules;
use crate::cli::{Mpm, ServerArgs};
use crate::debug::Debug;
use crate::service::Service;
use crate::telemetry::{self, Telemetry};

/// What [`build`] resolves.
pub(super) struct Tools {
    /// The telemetry directives.
    pub telemetry: Telemetry,
    /// The `--service-script` services plus `--enable-telemetry`'s.
    pub services: Vec<Service>,
    /// (module, option, package) the Python home must import.
    pub python_requirements: Vec<(String, String, String)>,
    /// `-D` flags apachectl passes to httpd.
    pub httpd_defines: Vec<String>,
}

/// The MPM, as mod_wsgi-express picks it: debug mode takes worker (else
/// prefork) whatever `--server-mpm` says, `--with-php5` prefork, otherwise
/// [`rules::choose_mpm`] of `--server-mpm`.
pub(super) fn choose_mpm(a: &ServerArgs, debug: bool, modules: &Path) -> Result<Mpm> {
    if debug {
        rules::choose_mpm(&[Mpm::Worker, Mpm::Prefork], modules)
    } else if a.content.with_php5 {
        rules::choose_mpm(&[Mpm::Prefork], modules).map_err(|e| {
            anyhow!("--with-php5 needs the prefork MPM (mod_php is not thread-safe): {e}")
        })
    } else {
        rules::choose_mpm(&a.server_mpm, modules)
    }
}

/// Resolves the telemetry options ([`telemetry::build`]), adds the
/// ingester service of `--enable-telemetry` to `services`, and lists the
/// packages to check and the httpd flags of debug mode.
pub(super) fn build(
    a: &ServerArgs,
    server_root: &Path,
    mut services: Vec<Service>,
    debug: Option<&Debug>,
) -> Result<Tools> {
    let service_names: Vec<String> = a
        .service
        .service_script
        .chunks(2)
        .map(|c| c[0].clone())
        .collect();
    let telemetry = telemetry::build(&a.telemetry, server_root, &service_names)?;
    let mut python_requirements: Vec<(String, String, String)> = Vec::new();
    if let Some(i) = &telemetry.ingester {
        services.push(Service {
            group: "service:telemetry".into(),
            script: i.script.clone(),
            user: None,
            unix_group: None,
            error_log: None,
        });
        python_requirements.push((
            "mod_wsgi.telemetry.server".into(),
            "--enable-telemetry".into(),
            "mod_wsgi-telemetry".into(),
        ));
    }
    if let Some(d) = debug {
        for (m, o, p) in d.python_requirements() {
            python_requirements.push((m.into(), o.into(), p.into()));
        }
    }
    let httpd_defines = match debug {
        Some(_) => vec!["ONE_PROCESS".to_string()],
        None => Vec::new(),
    };
    Ok(Tools {
        telemetry,
        services,
        python_requirements,
        httpd_defines,
    })
}
