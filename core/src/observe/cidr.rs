//! The client allow-list of the metrics endpoint and the status page
//! (`WSGIMetricsAllow`, `rwsgi-express --metrics-allow`): addresses and
//! networks in CIDR notation (RFC 4632; RFC 4291 §2.3 for IPv6).

use std::net::IpAddr;

/// A network: an address and a prefix length (a bare address is a
/// network of one: /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// The default allow-list: the loopback addresses `127.0.0.1/32` and `::1/128`.
pub fn default_allow() -> Vec<Cidr> {
    vec![
        Cidr {
            net: IpAddr::from([127, 0, 0, 1]),
            prefix: 32,
        },
        Cidr {
            net: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            prefix: 128,
        },
    ]
}

fn bits(a: IpAddr) -> (u128, u8) {
    match a {
        IpAddr::V4(v) => (u32::from(v) as u128, 32),
        IpAddr::V6(v) => (u128::from(v), 128),
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it
/// carries; other addresses as they are.
fn unmap(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v) => v.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(a),
        a => a,
    }
}

impl Cidr {
    /// Parses `addr` or `addr/prefix` (`10.0.0.0/8`, `::1`, `fd00::/8`).
    /// Errors name the text and what is wrong with it.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or a network in CIDR notation (such as 127.0.0.1, 10.0.0.0/8 or ::1)"))?;
        let net = unmap(net);
        let width = bits(net).1;
        let prefix = match prefix {
            None => width,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= width => n,
                _ => {
                    return Err(format!(
                        "{text:?}: the prefix length must be a number from 0 to {width}"
                    ))
                }
            },
        };
        Ok(Cidr { net, prefix })
    }

    /// Whether `addr` is in this network (an IPv4-mapped IPv6 address is
    /// matched as its IPv4 address).
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (a, wa) = bits(unmap(addr));
        let (n, wn) = bits(self.net);
        if wa != wn {
            return false;
        }
        if self.prefix == 0 {
            return true;
        }
        let shift = wn - self.prefix;
        (a >> shift) == (n >> shift)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// Whether client address `addr` (text, as Apache gives it) is in any of
/// `allow`; an address that does not parse is refused.
pub fn allowed(allow: &[Cidr], addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(a) => allow.iter().any(|c| c.contains(a)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let lo = default_allow();
        assert!(allowed(&lo, "127.0.0.1"));
        assert!(allowed(&lo, "::1"));
        assert!(allowed(&lo, "::ffff:127.0.0.1"));
        assert!(!allowed(&lo, "127.0.0.2"));
        assert!(!allowed(&lo, "not an address"));
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains("fd12::1".parse().unwrap()));
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
    }

    #[test]
    fn bad_input_is_named() {
        let e = Cidr::parse("10.0.0.0/33").unwrap_err();
        assert!(e.contains("0 to 32"), "{e}");
        let e = Cidr::parse("localhost").unwrap_err();
        assert!(e.contains("\"localhost\""), "{e}");
        assert!(Cidr::parse("::1/129").is_err());
    }
}
