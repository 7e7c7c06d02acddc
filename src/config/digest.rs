//! Digests of the cluster-relevant configuration, one per part, which
//! harust nodes exchange (the `hr_cfg` field of their status messages) to
//! warn when their configurations differ, naming the part.
//!
//! Only what must agree across nodes goes in. Interfaces and `ucast` peer
//! addresses legitimately differ from node to node, so `media` covers the
//! UDP port, the kinds of media and the multicast groups.

use std::fmt::Write as _;

use sha1::{Digest as _, Sha1};

use super::{AutoFailback, Config, Medium, Resource};

/// The field of harust's status messages that carries the digest.
pub const FIELD: &str = "hr_cfg";

/// The parts, in the order they are sent and named.
pub const PARTS: [&str; 5] = ["nodes", "media", "timings", "auto_failback", "haresources"];

/// One short digest per part of [`PARTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDigest {
    parts: [String; 5],
}

fn short(text: &str) -> String {
    let h = Sha1::digest(text.as_bytes());
    h[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical text of each part of `cfg`.
fn canonical(cfg: &Config) -> [String; 5] {
    let ha = &cfg.ha;
    let mut nodes: Vec<String> = ha.nodes.iter().map(|n| n.to_ascii_lowercase()).collect();
    nodes.sort();
    nodes.dedup();

    let mut media: Vec<String> = ha
        .media
        .iter()
        .map(|m| match m {
            Medium::Ucast { port, .. } => format!("ucast {port}"),
            Medium::Bcast { port, .. } => format!("bcast {port}"),
            Medium::Mcast {
                group, port, ttl, ..
            } => format!("mcast {group} {port} {ttl}"),
        })
        .collect();
    media.sort();
    media.dedup();

    let t = &ha.timings;
    let timings = format!(
        "keepalive {} warntime {} deadtime {} initdead {}",
        t.keepalive.as_millis(),
        t.warntime.as_millis(),
        t.deadtime.as_millis(),
        t.initdead.as_millis()
    );
    let auto_failback = match ha.auto_failback {
        AutoFailback::On => "on",
        AutoFailback::Off => "off",
        AutoFailback::Legacy => "legacy",
    };
    let mut haresources = String::new();
    for g in &cfg.groups {
        let _ = write!(haresources, "{} {}", g.node, g.key);
        for r in &g.resources {
            match r {
                Resource::Vip(v) => {
                    let _ = write!(haresources, " {:?} {}/{}", v.kind, v.addr, v.prefix);
                }
                other => {
                    let _ = write!(haresources, " {}", other.describe());
                }
            }
        }
        haresources.push('\n');
    }
    // Witnesses and quorum belong with the nodes: voters that disagree on
    // who votes, or on whether a majority is needed, break the safety rules.
    let mut witnesses: Vec<String> = ha
        .witnesses
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    witnesses.sort();
    [
        format!(
            "{} witness {} quorum {}",
            nodes.join(" "),
            witnesses.join(" "),
            ha.quorum
        ),
        format!("udpport {} {}", ha.udpport, media.join(",")),
        timings,
        auto_failback.to_string(),
        haresources,
    ]
}

impl ConfigDigest {
    pub fn of(cfg: &Config) -> ConfigDigest {
        ConfigDigest {
            parts: canonical(cfg).map(|t| short(&t)),
        }
    }

    /// The `hr_cfg` field value: `nodes=1a2b3c4d media=... ...`.
    pub fn to_field(&self) -> String {
        PARTS
            .iter()
            .zip(&self.parts)
            .map(|(p, d)| format!("{p}={d}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The parts in which a peer's `hr_cfg` value differs from ours. A
    /// part the peer does not send (an older or newer harust) is not
    /// compared.
    pub fn differences(&self, theirs: &str) -> Vec<&'static str> {
        PARTS
            .iter()
            .zip(&self.parts)
            .filter(|(part, ours)| {
                theirs
                    .split_ascii_whitespace()
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k == *part)
                    .is_some_and(|(_, v)| v != ours.as_str())
            })
            .map(|(part, _)| *part)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HaCf, Timings};
    use std::time::Duration;

    fn cfg() -> Config {
        Config {
            dir: "/etc/harust".into(),
            local_node: "node-a".into(),
            ha: HaCf {
                timings: Timings {
                    keepalive: Duration::from_millis(500),
                    deadtime: Duration::from_secs(3),
                    warntime: Duration::from_secs(2),
                    initdead: Duration::from_secs(6),
                },
                udpport: 694,
                media: vec![Medium::Ucast {
                    iface: "eth0".into(),
                    peer: "198.18.1.2".parse().unwrap(),
                    port: 694,
                }],
                nodes: vec!["node-a".into(), "node-b".into()],
                auto_failback: AutoFailback::On,
                ping_nodes: vec![],
                ping_groups: vec![],
                deadping: None,
                autojoin: false,
                witnesses: vec![],
                quorum: false,
                fences: vec![],
            },
            keys: crate::wire::Keyring::single(crate::wire::Method::Crc),
            groups: vec![],
        }
    }

    #[test]
    fn identical_configurations_have_no_difference() {
        let d = ConfigDigest::of(&cfg());
        assert!(d.differences(&d.to_field()).is_empty());
        assert_eq!(d.to_field().split(' ').count(), 5);
    }

    #[test]
    fn what_legitimately_differs_per_node_is_left_out() {
        let a = ConfigDigest::of(&cfg());
        let mut b = cfg();
        b.local_node = "node-b".into();
        b.ha.nodes.reverse();
        b.ha.media = vec![Medium::Ucast {
            iface: "ens3".into(),
            peer: "198.18.1.1".parse().unwrap(),
            port: 694,
        }];
        assert!(a.differences(&ConfigDigest::of(&b).to_field()).is_empty());
    }

    #[test]
    fn each_differing_part_is_named() {
        let a = ConfigDigest::of(&cfg());
        let mut b = cfg();
        b.ha.timings.deadtime = Duration::from_secs(5);
        b.ha.auto_failback = AutoFailback::Off;
        assert_eq!(
            a.differences(&ConfigDigest::of(&b).to_field()),
            ["timings", "auto_failback"]
        );
        let mut c = cfg();
        c.ha.udpport = 695;
        c.ha.nodes.push("node-c".into());
        assert_eq!(
            a.differences(&ConfigDigest::of(&c).to_field()),
            ["nodes", "media"]
        );
    }

    #[test]
    fn parts_a_peer_does_not_send_are_not_compared() {
        let a = ConfigDigest::of(&cfg());
        assert!(a.differences("timings=00000000").contains(&"timings"));
        assert!(a.differences("").is_empty());
        assert!(a.differences("future=1234").is_empty());
    }
}
