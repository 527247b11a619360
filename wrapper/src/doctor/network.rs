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

/// The socket inodes listening on TCP `port` in the text of
/// `/proc/net/tcp` or `/proc/net/tcp6` (pure): rows whose local address
/// ends in `:<port in hex>` and whose state is `0A` (LISTEN).
pub fn listening_inodes(proc_net_tcp: &str, port: u16) -> Vec<u64> {
    let suffix = format!(":{port:04X}");
    proc_net_tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            (local.ends_with(&suffix) && *state == "0A")
                .then(|| inode.parse().ok())
                .flatten()
        })
        .collect()
}

/// The process holding a listening socket on `port`, as `pid N (name)`,
/// found through `/proc` (all processes are visible to root; otherwise
/// only the user's own). `None` when not found.
pub fn port_holder(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if wanted.iter().any(|w| link.as_os_str() == w.as_str()) {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    None
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
                let (mut message, fix) = explain(option, addr, e.kind(), &e.to_string(), euid);
                if e.kind() == ErrorKind::AddrInUse {
                    if let Some(holder) = port_holder(port) {
                        message = format!("{message}: {holder}");
                    }
                }
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
    fn proc_net_tcp_rows() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 00000000:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1077 1 0\n\
            1: 0100007F:1F40 0100007F:D2DA 01 00000000:00000000 03:0000104A 00000000     0        0 2000 3 0\n\
            2: 0100007F:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3000 1 0\n";
        assert_eq!(listening_inodes(text, 8000), vec![1077]);
        assert_eq!(listening_inodes(text, 8001), vec![3000]);
        assert!(listening_inodes(text, 80).is_empty());
    }

    #[test]
    fn real_bind_of_a_busy_port() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let f = check_port("--port", "port", Some("127.0.0.1"), port.into(), 0);
        assert_eq!(f.status, crate::doctor::Status::Fail, "{f}");
        assert!(f.message.contains("already in use"), "{f}");
        // This test process is the holder.
        let me = format!("pid {} (", std::process::id());
        assert!(f.message.contains(&me), "{f}");
        drop(busy);
        let f = check_port("--port", "port", Some("127.0.0.1"), port.into(), 0);
        assert_eq!(f.status, crate::doctor::Status::Ok, "{f}");
    }
}
