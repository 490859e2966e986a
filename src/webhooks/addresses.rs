//! Which addresses the webhook client may connect to: those on the public
//! internet only. The `ssrf-guard` crate classifies them (private, loopback,
//! link-local, shared, documentation, benchmarking, reserved and multicast
//! blocks, IPv4 and IPv6, the deprecated site-local `fec0::/10` included; an
//! IPv6 address that carries an IPv4 one judged by it; 6to4, Teredo and
//! local-use NAT64 refused whatever they carry, since a relay decides where
//! they land). Past its list, an IPv6 address must be global unicast
//! (`2000::/3`), unless it is IPv4-mapped or well-known NAT64, whose IPv4
//! address the crate has judged: so IPv4-compatible `::a.b.c.d`, SIIT and
//! whatever IANA has not assigned are refused too.

use std::net::{IpAddr, Ipv6Addr};

/// An address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    ssrf_guard::is_public(ip)
        && match ip {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => is_global_unicast(v6) || carries_ipv4(v6),
        }
}

fn is_global_unicast(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xe000 == 0x2000
}

/// How a dual-stack socket spells IPv4 (`::ffff:a.b.c.d`), and what DNS64
/// answers on an IPv6-only host (`64:ff9b::a.b.c.d`).
fn carries_ipv4(ip: Ipv6Addr) -> bool {
    ip.to_ipv4_mapped().is_some() || ip.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_on_the_public_internet_are_public() {
        let table = [
            // IPv4
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("127.0.0.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("192.0.0.8", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
            // IPv6 global unicast
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:830::200e", true),
            // loopback, unspecified, link-local, unique local, site-local, multicast
            ("::1", false),
            ("::", false),
            ("fe80::1", false),
            ("fd00::1", false),
            ("fc00::1", false),
            ("fec0::1", false),
            ("feff::1", false),
            ("ff02::1", false),
            ("ff0e::1", false),
            // IPv4-mapped: the IPv4 address decides
            ("::ffff:10.0.0.1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("::ffff:8.8.8.8", true),
            // IPv4-compatible (deprecated): refused whatever it carries
            ("::7f00:1", false),
            ("::127.0.0.1", false),
            ("::10.0.0.1", false),
            ("::8.8.8.8", false),
            // SIIT
            ("::ffff:0:7f00:1", false),
            // 6to4: refused whatever it carries (a relay decides where it lands)
            ("2002:7f00:1::", false),
            ("2002:a00:1::1", false),
            ("2002:a9fe:a9fe::1", false),
            ("2002:808:808::1", false),
            // Teredo: refused whatever it carries
            ("2001::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            // NAT64: the well-known prefix carries an IPv4 address; local-use is refused
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::a00:1", false),
            ("64:ff9b::808:808", true),
            ("64:ff9b:1::808:808", false),
            // documentation, benchmarking, discard, SRv6, not assigned
            ("2001:db8::1", false),
            ("3fff::1", false),
            ("2001:2::1", false),
            ("100::1", false),
            ("5f00::1", false),
            ("4000::1", false),
            ("2c0f:f000::1", true),
        ];
        let wrong: Vec<_> = table
            .iter()
            .filter(|(ip, public)| is_public(ip.parse().unwrap()) != *public)
            .collect();
        assert!(wrong.is_empty(), "misjudged (address, expected): {wrong:?}");
    }
}
