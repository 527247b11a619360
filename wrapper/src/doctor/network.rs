//! The `port` and `https-port` checks: can Apache bind `--port` (and
//! `--https-port`) on `--host`? Each address is bound (with
//! `SO_REUSEADDR`, as Apache binds, so a port in TIME_WAIT counts as free)
//! and released at once. Without `--host` Apache listens on every
//! interface: `[::]` (which also takes IPv4), or `0.0.0.0` where IPv6 is
//! off. Failures are RWSGI0153.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use super::Finding;
use crate::cli::ServerArgs;
use crate::model::HostFacts;

/// The addresses Apache would bind for `host` and `port`: those `host`
/// resolves to, or the wildcard addresses without a host (`[::]` first).
/// Errors: the host name does not resolve.
pub fn addresses(host: Option<&str>, port: u16) -> Result<Vec<SocketAddr>, String> {
    match host {
        None => Ok(vec![
            SocketAddr::from(([0u16; 8], port)),
            SocketAddr::from(([0u8; 4], port)),
        ]),
        Some(h) => {
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let mut found: Vec<SocketAddr> = (h, port)
                .to_socket_addrs()
                .map_err(|e| format!("--host {h} does not resolve: {e}"))?
                .collect();
            found.dedup();
            if found.is_empty() {
                return Err(format!("--host {h} resolves to no address"));
            }
            Ok(found)
        }
    }
}

/// Why a bind failed, worded for the user, and the fix (pure).
pub fn explain(
    option: &str,
    addr: &SocketAddr,
    kind: ErrorKind,
    raw: &str,
    euid: u32,
) -> (String, String) {
    let port = addr.port();
    match kind {
        ErrorKind::AddrInUse => (
            format!("RWSGI0153: {option} {port}: {addr} is already in use by another program"),
            format!(
                "stop what listens there (`ss -ltnp 'sport = :{port}'` names it), or choose another {option}"
            ),
        ),
        ErrorKind::PermissionDenied if port < 1024 && euid != 0 => (
            format!("RWSGI0153: {option} {port}: ports below 1024 need root (binding {addr}: {raw})"),
            format!("run as root with --user/--group, or choose an {option} of 1024 or more"),
        ),
        ErrorKind::AddrNotAvailable => (
            format!("RWSGI0153: {option} {port}: {} is not an address of this machine ({raw})", addr.ip()),
            "give --host an address of one of this machine's interfaces (or none for all)".to_string(),
        ),
        _ => (
            format!("RWSGI0153: {option} {port}: cannot bind {addr}: {raw}"),
            format!("choose another {option} or --host"),
        ),
    }
}

/// Binds the addresses for one port: the first that binds is enough for
/// the wildcard case (`[::]` or else `0.0.0.0`); for a host every address
/// must bind.
fn check_port(
    option: &'static str,
    check: &'static str,
    host: Option<&str>,
    port: u32,
    euid: u32,
) -> Finding {
    let port = match u16::try_from(port) {
        Ok(p) if p > 0 => p,
        _ => {
            return Finding::fail(
                check,
                format!("RWSGI0153: {option} {port} is out of range (1-65535)"),
                "choose a port from 1 to 65535",
            )
        }
    };
    let addrs = match addresses(host, port) {
        Ok(a) => a,
        Err(e) => {
            return Finding::fail(
                check,
                format!("RWSGI0153: {e}"),
                "give --host an IP address or a name that resolves",
            )
        }
    };
    let mut bound = Vec::new();
    for addr in &addrs {
        match TcpListener::bind(addr) {
            Ok(_) => {
                bound.push(addr.to_string());
                if host.is_none() {
                    break;
                }
            }
            // No IPv6 on this machine: the IPv4 wildcard is what Apache uses.
            Err(e) if host.is_none() && addr.is_ipv6() && e.kind() != ErrorKind::AddrInUse => {
                continue
            }
            Err(e) => {
                let (message, fix) = explain(option, addr, e.kind(), &e.to_string(), euid);
                return Finding::fail(check, message, fix);
            }
        }
    }
    Finding::ok(
        check,
        format!("{option} {port} is free on {}", bound.join(", ")),
    )
}

/// The port findings: `--port`, and `--https-port` when given.
pub fn check(a: &ServerArgs, host: &HostFacts) -> Vec<Finding> {
    let mut out = vec![check_port(
        "--port",
        "port",
        a.host.as_deref(),
        a.port,
        host.euid,
    )];
    if let Some(p) = a.https.https_port {
        out.push(check_port(
            "--https-port",
            "https-port",
            a.host.as_deref(),
            p,
            host.euid,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_and_host_addresses() {
        let w = addresses(None, 8000).unwrap();
        assert_eq!(w[0].to_string(), "[::]:8000");
        assert_eq!(w[1].to_string(), "0.0.0.0:8000");
        assert_eq!(
            addresses(Some("127.0.0.1"), 80).unwrap(),
            vec!["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(
            addresses(Some("[::1]"), 81).unwrap(),
            vec!["[::1]:81".parse().unwrap()]
        );
        assert!(addresses(Some("no-such-host.invalid"), 80).is_err());
    }

    #[test]
    fn explanations() {
        let a: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let (m, f) = explain("--port", &a, ErrorKind::AddrInUse, "Address in use", 0);
        assert_eq!(
            m,
            "RWSGI0153: --port 8000: 127.0.0.1:8000 is already in use by another program"
        );
        assert!(f.contains("ss -ltnp"), "{f}");
        let low: SocketAddr = "0.0.0.0:80".parse().unwrap();
        let (m, _) = explain(
            "--port",
            &low,
            ErrorKind::PermissionDenied,
            "Permission denied",
            1000,
        );
        assert!(m.contains("ports below 1024 need root"), "{m}");
        let (m, _) = explain("--https-port", &a, ErrorKind::AddrNotAvailable, "x", 0);
        assert!(
            m.contains("127.0.0.1 is not an address of this machine"),
            "{m}"
        );
    }

    #[test]
    fn real_bind_of_a_busy_port() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let f = check_port("--port", "port", Some("127.0.0.1"), port.into(), 0);
        assert_eq!(f.status, crate::doctor::Status::Fail, "{f}");
        assert!(f.message.contains("already in use"), "{f}");
        drop(busy);
        let f = check_port("--port", "port", Some("127.0.0.1"), port.into(), 0);
        assert_eq!(f.status, crate::doctor::Status::Ok, "{f}");
    }
}
