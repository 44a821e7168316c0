//! Which addresses a webhook may reach: public unicast only. Loopback,
//! private, shared (CGNAT), link-local (the metadata address among them),
//! unique-local, site-local, multicast, documentation, discard-only and
//! unspecified ranges are refused, and so is every IPv6 form that carries
//! or tunnels to an IPv4 address (IPv4-compatible, IPv4-mapped, 6to4,
//! Teredo, local-use NAT64; the 6to4 relay anycast on the IPv4 side): a
//! partner names an IPv4 endpoint by its IPv4 address. Only the well-known
//! NAT64 prefix passes, when the IPv4 address it carries would.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why the address is refused, or None when it is public.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the instance metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_private() {
        Some("a private address")
    } else if ip.is_link_local() {
        Some("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Some("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 {
        Some("an unspecified address")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("a multicast or reserved address")
    } else if (a, b, c) == (192, 0, 2) || (a, b, c) == (198, 51, 100) || (a, b, c) == (203, 0, 113) {
        Some("a documentation address")
    } else if a == 198 && (18..20).contains(&b) || (a, b, c) == (192, 0, 0) {
        Some("a reserved address")
    } else if (a, b, c) == (192, 88, 99) {
        Some("a 6to4 relay address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("the instance metadata address")
    } else if ip.is_loopback() {
        Some("a loopback address")
    } else if ip.is_unspecified() {
        Some("an unspecified address")
    } else if s[..6] == [0; 6] {
        Some("an IPv4-compatible address (::/96)")
    } else if s[..6] == [0, 0, 0, 0, 0, 0xffff] {
        Some("an IPv4-mapped address (::ffff:0:0/96)")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("a unique-local (private) address")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("a site-local address (fec0::/10)")
    } else if ip.is_multicast() {
        Some("a multicast address")
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        Some("a documentation address")
    } else if s[0] == 0x2001 && s[1] == 0 {
        Some("a Teredo address (2001::/32)")
    } else if s[0] == 0x2002 {
        Some("a 6to4 address (2002::/16)")
    } else if s[..4] == [0x100, 0, 0, 0] {
        Some("a discard-only address (100::/64)")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // The well-known NAT64 prefix reaches the IPv4 address in its last
        // 32 bits, on the public internet only (RFC 6052).
        refused_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
    } else if s[..2] == [0x64, 0xff9b] {
        // The rest of 64:ff9b::/32, local-use NAT64 (64:ff9b:1::/48) among
        // it: a translator inside some network, to anything.
        Some("a local-use NAT64 address (64:ff9b:1::/48)")
    } else if s[0] & 0xe000 != 0x2000 {
        // Every public IPv6 address is global unicast (2000::/3); the rest
        // is reserved or unassigned.
        Some("an address outside IPv6 global unicast (2000::/3)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::refused;

    #[test]
    fn only_public_unicast_passes() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "192.0.2.10",
            "2001:db8::1",
        ] {
            assert!(refused(bad.parse().unwrap()).is_some(), "{bad}");
        }
        for good in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::5db8:d822"] {
            assert_eq!(refused(good.parse().unwrap()), None, "{good}");
        }
    }

    /// Each range refused, with a public IPv4 address inside where it can
    /// carry one (those passed before: the IPv4 check saw a public one),
    /// and its neighbours just outside passing.
    #[test]
    fn ipv6_forms_that_carry_or_tunnel_to_ipv4_and_the_other_reserved_ranges_are_refused() {
        for (bad, kind) in [
            ("::5db8:d822", "IPv4-compatible"),
            ("::7f00:1", "IPv4-compatible"),
            ("::ffff:93.184.216.34", "IPv4-mapped"),
            ("::ffff:0:0", "IPv4-mapped"),
            ("2002:5db8:d822::1", "6to4"),
            ("2002:a9fe:a9fe::", "6to4"),
            ("2001:0:4136:e378:8000:63bf:a246:27dd", "Teredo"),
            ("2001::1", "Teredo"),
            ("64:ff9b:1::5db8:d822", "local-use NAT64"),
            ("64:ff9b:1:ffff::1", "local-use NAT64"),
            ("fec0::1", "site-local"),
            ("feff:ffff::1", "site-local"),
            ("100::1", "discard-only"),
            ("100::ffff:ffff:ffff:ffff", "discard-only"),
            ("192.88.99.1", "6to4 relay"),
            ("192.88.99.255", "6to4 relay"),
        ] {
            let why = refused(bad.parse().unwrap());
            assert!(why.is_some_and(|w| w.contains(kind)), "{bad}: {why:?}");
        }
        for good in [
            "2001:4860:4860::8888", // in 2001::/16, past Teredo's /32
            "2003::1",              // past 6to4
            "192.88.98.1",          // beside the relay /24
            "192.88.100.1",
            "64:ff9b::1.1.1.1", // well-known NAT64 to a public address
        ] {
            assert_eq!(refused(good.parse().unwrap()), None, "{good}");
        }
        // Outside global unicast, whatever it is.
        for bad in ["100:0:0:1::1", "fe00::1", "4000::1", "1::1"] {
            assert!(refused(bad.parse().unwrap()).is_some(), "{bad}");
        }
    }
}
