//! The `mod_ssl` and `certificate` checks (with `--https-port` only): is
//! mod_ssl in the modules directory, and do the certificate and key exist,
//! parse and belong together? The files are read with the `openssl`
//! command (`openssl x509` for the certificate, its public key and expiry;
//! `openssl pkey -pubout` for the key's public half); a pair whose public
//! keys differ is what makes mod_ssl refuse to start with only "key values
//! mismatch" in the error log. Failures are RWSGI0156 (missing or
//! unreadable) and RWSGI0157 (certificate and key do not match).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::Finding;
use crate::cli::ServerArgs;
use crate::model::{absolute, HostFacts};

/// The certificate and key files the options name: `--ssl-certificate
/// BASE` gives `BASE.crt` and `BASE.key`, else `--ssl-certificate-file`
/// and `--ssl-certificate-key-file`; made absolute against `cwd`.
pub fn certificate_files(a: &ServerArgs, cwd: &Path) -> (Option<PathBuf>, Option<PathBuf>) {
    let h = &a.https;
    let (cert, key) = match &h.ssl_certificate {
        Some(base) => {
            let base = base.to_string_lossy();
            (
                Some(PathBuf::from(format!("{base}.crt"))),
                Some(PathBuf::from(format!("{base}.key"))),
            )
        }
        None => (
            h.ssl_certificate_file.clone(),
            h.ssl_certificate_key_file.clone(),
        ),
    };
    (
        cert.map(|p| absolute(cwd, &p)),
        key.map(|p| absolute(cwd, &p)),
    )
}

/// The first PEM block labelled `label` in `text`, its base64 body without
/// white space, so that two renderings of one key compare equal.
pub fn pem_body(text: &str, label: &str) -> Option<String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    Some(
        text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

/// `openssl <args>`: (success, stdout, stderr), or the reason it could not run.
fn openssl(args: &[&std::ffi::OsStr]) -> Result<(bool, String, String), String> {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The first line of openssl's complaint.
fn first_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .to_string()
}

/// What `openssl x509 -noout -pubkey -enddate -checkend 0` said about a
/// certificate (pure): its public key (`None`: it did not parse), its
/// `notAfter` and whether it has expired.
pub fn parse_x509_output(stdout: &str) -> (Option<String>, Option<String>, bool) {
    let key = pem_body(stdout, "PUBLIC KEY");
    let not_after = stdout
        .lines()
        .find_map(|l| l.strip_prefix("notAfter="))
        .map(str::to_string);
    let expired = stdout.contains("Certificate will expire");
    (key, not_after, expired)
}

/// The certificate finding for existing files (runs openssl).
fn certificate(cert: &Path, key: &Path, extra: &[(&str, PathBuf)]) -> Finding {
    let x509 = openssl(&[
        "x509".as_ref(),
        "-in".as_ref(),
        cert.as_os_str(),
        "-noout".as_ref(),
        "-pubkey".as_ref(),
        "-enddate".as_ref(),
        "-checkend".as_ref(),
        "0".as_ref(),
    ]);
    let (_, out, err) = match x509 {
        Ok(r) => r,
        Err(e) => {
            return Finding::warn(
                "certificate",
                format!("RWSGI0156: the certificate was not checked: {e}"),
                "install openssl (apt-get install openssl)",
            )
        }
    };
    let (cert_key, not_after, expired) = parse_x509_output(&out);
    let Some(cert_key) = cert_key else {
        return Finding::fail(
            "certificate",
            format!(
                "RWSGI0156: {} is not a PEM certificate: {}",
                cert.display(),
                first_line(&err)
            ),
            "give --ssl-certificate-file the PEM certificate (-----BEGIN CERTIFICATE-----)",
        );
    };
    let key_out = match openssl(&[
        "pkey".as_ref(),
        "-in".as_ref(),
        key.as_os_str(),
        "-pubout".as_ref(),
        "-passin".as_ref(),
        "pass:".as_ref(),
    ]) {
        Ok(r) => r,
        Err(e) => {
            return Finding::warn(
                "certificate",
                format!("RWSGI0156: the key was not checked: {e}"),
                "install openssl",
            )
        }
    };
    let Some(key_pub) = pem_body(&key_out.1, "PUBLIC KEY") else {
        return Finding::fail(
            "certificate",
            format!(
                "RWSGI0156: {} is not an unencrypted PEM private key: {}",
                key.display(),
                first_line(&key_out.2)
            ),
            "give --ssl-certificate-key-file the certificate's private key, without a passphrase \
             (openssl pkey -in KEY -out KEY.plain)",
        );
    };
    if key_pub != cert_key {
        return Finding::fail(
            "certificate",
            format!(
                "RWSGI0157: the key {} does not belong to the certificate {} (their public keys differ); \
                 mod_ssl would refuse to start",
                key.display(),
                cert.display()
            ),
            "give the key the certificate was made with, or a certificate made for this key",
        );
    }
    for (option, file) in extra {
        match openssl(&[
            "x509".as_ref(),
            "-in".as_ref(),
            file.as_os_str(),
            "-noout".as_ref(),
        ]) {
            Ok((true, _, _)) => {}
            Ok((false, _, err)) => {
                return Finding::fail(
                    "certificate",
                    format!(
                        "RWSGI0156: {option} {} is not a PEM certificate: {}",
                        file.display(),
                        first_line(&err)
                    ),
                    format!("give {option} a PEM file of CA certificates"),
                )
            }
            Err(_) => {}
        }
    }
    let until = not_after.unwrap_or_else(|| "unknown".into());
    if expired {
        return Finding::warn(
            "certificate",
            format!(
                "RWSGI0156: the certificate {} expired ({until}): clients will refuse it",
                cert.display()
            ),
            "renew the certificate",
        );
    }
    Finding::ok(
        "certificate",
        format!(
            "{} and {} parse and match (valid until {until})",
            cert.display(),
            key.display()
        ),
    )
}

/// The HTTPS findings: one `OK` line without `--https-port`, else `mod_ssl`
/// and `certificate`.
pub fn check(a: &ServerArgs, host: &HostFacts) -> Vec<Finding> {
    if a.https.https_port.is_none() {
        return vec![Finding::ok(
            "https",
            "HTTPS not asked for (no --https-port)",
        )];
    }
    let modules = absolute(&host.cwd, &a.modules_directory);
    let ssl = modules.join("mod_ssl.so");
    let mod_ssl = if ssl.is_file() {
        Finding::ok("mod_ssl", format!("{} is present", ssl.display()))
    } else {
        Finding::fail(
            "mod_ssl",
            format!("RWSGI0156: --https-port needs mod_ssl, but {} does not exist", ssl.display()),
            "install Apache's mod_ssl (Debian: it is in the apache2 package), or point --modules-directory at it",
        )
    };
    let (cert, key) = certificate_files(a, &host.cwd);
    let certificate = match (cert, key) {
        (Some(cert), Some(key)) => {
            let missing: Vec<String> = [&cert, &key]
                .iter()
                .filter(|p| !p.is_file())
                .map(|p| p.display().to_string())
                .collect();
            if missing.is_empty() {
                let extra: Vec<(&str, PathBuf)> = [
                    ("--ssl-ca-certificate-file", &a.https.ssl_ca_certificate_file),
                    ("--ssl-certificate-chain-file", &a.https.ssl_certificate_chain_file),
                ]
                .into_iter()
                .filter_map(|(o, p)| p.as_ref().map(|p| (o, absolute(&host.cwd, p))))
                .filter(|(_, p)| p.is_file())
                .collect();
                certificate(&cert, &key, &extra)
            } else {
                Finding::fail(
                    "certificate",
                    format!("RWSGI0156: {} does not exist (or is not a file)", missing.join(" and ")),
                    "give the paths of the certificate and its key",
                )
            }
        }
        _ => Finding::fail(
            "certificate",
            "RWSGI0156: --https-port needs a certificate and its key",
            "pass --ssl-certificate-file and --ssl-certificate-key-file, or --ssl-certificate BASE (BASE.crt, BASE.key)",
        ),
    };
    vec![mod_ssl, certificate]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_bodies_ignore_layout() {
        let a = "x\n-----BEGIN PUBLIC KEY-----\nAAAA\nBBBB\n-----END PUBLIC KEY-----\nnotAfter=Jan  1 00:00:00 2030 GMT\n";
        assert_eq!(pem_body(a, "PUBLIC KEY").as_deref(), Some("AAAABBBB"));
        assert_eq!(pem_body(a, "CERTIFICATE"), None);
        let (k, until, expired) = parse_x509_output(&format!("{a}Certificate will not expire\n"));
        assert_eq!(k.as_deref(), Some("AAAABBBB"));
        assert_eq!(until.as_deref(), Some("Jan  1 00:00:00 2030 GMT"));
        assert!(!expired);
        assert!(parse_x509_output(&format!("{a}Certificate will expire\n")).2);
        assert_eq!(parse_x509_output("").0, None);
    }
}
