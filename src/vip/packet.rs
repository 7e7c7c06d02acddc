//! Announcement frames, built by hand: gratuitous ARP (RFC 826, RFC 5227
//! §3) for IPv4 and an unsolicited Neighbour Advertisement (RFC 4861 §4.4,
//! §7.2.6) for IPv6. Pure: bytes in, bytes out.

use std::net::{Ipv4Addr, Ipv6Addr};

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;

pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// The Ethernet address of ff02::1 (RFC 2464 §7: 33:33 + low 32 bits).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Ethernet's minimum frame without FCS; shorter frames are zero-padded.
const ETH_MIN: usize = 60;

const ARPOP_REQUEST: u16 = 1;
const ARPOP_REPLY: u16 = 2;

fn eth_header(frame: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

fn arp(op: u16, mac: [u8; 6], ip: Ipv4Addr, target_mac: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_MIN);
    eth_header(&mut f, BROADCAST_MAC, mac, ETH_P_ARP);
    f.extend_from_slice(&1u16.to_be_bytes()); // htype: Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype: IPv4
    f.push(6); // hlen
    f.push(4); // plen
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&mac); // sender hardware address
    f.extend_from_slice(&ip.octets()); // sender protocol address
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&ip.octets()); // target protocol address = sender
    f.resize(ETH_MIN, 0);
    f
}

/// Gratuitous ARP request: broadcast, sender = target = `ip`, target
/// hardware address zero (RFC 5227 §3 "ARP Announcement").
pub fn garp_request(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    arp(ARPOP_REQUEST, mac, ip, [0; 6])
}

/// Gratuitous ARP reply: broadcast, sender = target = `ip`. The target
/// hardware address is our own, which Linux requires before it treats a
/// reply as gratuitous and overrides a fresh entry (`arp_process`,
/// `is_garp`).
pub fn garp_reply(mac: [u8; 6], ip: Ipv4Addr) -> Vec<u8> {
    arp(ARPOP_REPLY, mac, ip, mac)
}

/// The Internet checksum over the IPv6 pseudo-header (RFC 8200 §8.1) and an
/// upper-layer message of protocol `next_header`.
pub fn ipv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, next_header]);
    add(msg);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

const ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
const NA_ROUTER: u8 = 0x80;
const NA_OVERRIDE: u8 = 0x20;

/// Unsolicited Neighbour Advertisement for `target`: from `target` to
/// ff02::1, hop limit 255, Override set, Solicited clear, Router as given,
/// with a Target Link-Layer Address option carrying `mac`.
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.push(ND_NEIGHBOR_ADVERT);
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled below
    icmp.push(NA_OVERRIDE | if router { NA_ROUTER } else { 0 });
    icmp.extend_from_slice(&[0, 0, 0]); // reserved
    icmp.extend_from_slice(&target.octets());
    icmp.push(ND_OPT_TARGET_LL_ADDR);
    icmp.push(1); // option length in units of 8 octets
    icmp.extend_from_slice(&mac);
    let sum = ipv6_checksum(target, ALL_NODES, ICMPV6, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(14 + 40 + icmp.len());
    eth_header(&mut f, ALL_NODES_MAC, mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, class 0, flow 0
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(ICMPV6);
    f.push(255); // hop limit: RFC 4861 §7.1.2 drops anything else
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&ALL_NODES.octets());
    f.extend_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn garp_request_matches_hand_decoded_frame() {
        let f = garp_request(MAC, Ipv4Addr::new(198, 18, 1, 100));
        let expected = hex("ffffffffffff 02005e102030 0806
             0001 0800 06 04 0001
             02005e102030 c6120164
             000000000000 c6120164
             000000000000000000000000000000000000");
        assert_eq!(f, expected);
        assert_eq!(f.len(), 60);
    }

    #[test]
    fn garp_reply_has_own_mac_as_target_hardware_address() {
        let f = garp_reply(MAC, Ipv4Addr::new(198, 18, 1, 100));
        let expected = hex("ffffffffffff 02005e102030 0806
             0001 0800 06 04 0002
             02005e102030 c6120164
             02005e102030 c6120164
             000000000000000000000000000000000000");
        assert_eq!(f, expected);
    }

    /// Checksum 0x78eb computed independently (Python: one's complement
    /// sum over pseudo-header and message) for this exact frame.
    #[test]
    fn unsolicited_na_matches_hand_decoded_frame() {
        let target: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let f = unsolicited_na(MAC, target, false);
        let expected = hex("333300000001 02005e102030 86dd
             60000000 0020 3a ff
             20010db8000100000000000000000100
             ff020000000000000000000000000001
             88 00 78eb 20000000
             20010db8000100000000000000000100
             02 01 02005e102030");
        assert_eq!(f, expected);
        assert_eq!(f.len(), 86);
    }

    #[test]
    fn na_router_flag_sets_r_bit() {
        let target: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        assert_eq!(unsolicited_na(MAC, target, true)[14 + 40 + 4], 0xa0);
        assert_eq!(unsolicited_na(MAC, target, false)[14 + 40 + 4], 0x20);
    }

    /// A correct checksum makes the one's complement sum over pseudo-header
    /// and message, checksum included, come out as all ones.
    #[test]
    fn na_checksum_verifies() {
        let target: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
        let f = unsolicited_na(MAC, target, false);
        assert_eq!(ipv6_checksum(target, ALL_NODES, ICMPV6, &f[54..]), 0);
    }
}
