//! An end user's network, as the limits and the fraud rules count it.

use std::net::IpAddr;

/// An IPv4 address, or an IPv6 /64: IPv6 users usually hold a whole /64
/// (one household or phone), so that is what one "IP" is.
pub fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The network of an address an operator names: an IPv4 address, or any
/// IPv6 address of the /64 (its `/64` suffix optional).
pub fn parse_network(raw: &str) -> Result<String, String> {
    let address = raw.trim().trim_end_matches("/64");
    address.parse().map(network).map_err(|_| {
        format!("an end user's network is an IPv4 address or an IPv6 address of the /64 (`203.0.113.7`, `2001:db8::/64`); not `{raw}`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_is_an_ipv4_address_or_an_ipv6_64() {
        assert_eq!(network("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(network("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(
            network("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        assert_eq!(parse_network(" 2001:db8:1:2::/64").unwrap(), "2001:db8:1:2::/64");
        assert_eq!(parse_network("2001:db8:1:2:ff::1").unwrap(), "2001:db8:1:2::/64");
        assert_eq!(parse_network("203.0.113.7").unwrap(), "203.0.113.7");
        for bad in ["", "203.0.113", "example.com", "2001:db8::/48"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }
}
