//! harust's own fields on heartbeat messages.
//!
//! Every `status` and `resource` message from a harust node carries what
//! the node holds, is busy with, and refuses. heartbeat ignores fields it
//! does not know, so these ride along without breaking a mixed cluster.
//! Groups are named by their haresources key, which every node shares.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{GroupId, Maintenance};
use crate::wire::Message;

/// Marks a harust sender; the value is the advert format version.
const VERSION: &str = "hr_v";
const HELD: &str = "hr_held";
const BUSY: &str = "hr_busy";
const STANDBY: &str = "hr_sb";
const FAILED: &str = "hr_fail";
const LEAVING: &str = "hr_leave";
const PING: &str = "hr_ping";
const DEAD: &str = "hr_dead";
const QUORUM: &str = "hr_q";
const RELEASE_BOUND: &str = "hr_rb";
const CLAIMS: &str = "hr_claims";
const UP: &str = "hr_up";
const MAINTENANCE: &str = "hr_mnt";

/// What a node says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advert {
    pub harust: bool,
    /// Groups fully acquired.
    pub held: BTreeSet<GroupId>,
    /// Groups being acquired or released: nobody else may start them.
    pub busy: BTreeSet<GroupId>,
    /// Groups it declines while another node can hold them.
    pub standby: BTreeSet<GroupId>,
    /// Groups that failed there; it will not hold them.
    pub failed: BTreeSet<GroupId>,
    /// It is shutting down.
    pub leaving: bool,
    /// How many ping targets it reaches, if ping nodes are configured.
    pub ping: Option<u32>,
    /// Nodes it has declared dead (names): one of them that still hears
    /// this yields (docs/SAFETY.md, one-way loss).
    pub dead: BTreeSet<String>,
    /// Whether it has quorum, if quorum is on.
    pub quorum: Option<bool>,
    /// How long after its deadtime it is certain to have released
    /// everything once it has lost quorum or hung.
    pub release_bound: Option<Duration>,
    /// With quorum on: groups it knows other nodes hold, are busy with,
    /// or may still hold (a silent node within its release wait), as
    /// (node name, group). A node that does not see that other node
    /// must not take those groups.
    pub claims: BTreeSet<(String, GroupId)>,
    /// With quorum on: the peers it hears (names). A peer counts toward
    /// our quorum only if it hears us too.
    pub up: BTreeSet<String>,
    /// The maintenance mode it knows (`hr_mnt=on version node`), once any
    /// operator has set it.
    pub maintenance: Option<Maintenance>,
}

impl Advert {
    pub fn add_to(&self, m: &mut Message, keys: &[&str]) {
        m.add_str(VERSION, "1");
        for (name, set) in [
            (HELD, &self.held),
            (BUSY, &self.busy),
            (STANDBY, &self.standby),
            (FAILED, &self.failed),
        ] {
            if !set.is_empty() {
                let list: Vec<&str> = set.iter().filter_map(|&g| keys.get(g).copied()).collect();
                m.add_str(name, &list.join(" "));
            }
        }
        if self.leaving {
            m.add_str(LEAVING, "1");
        }
        if let Some(p) = self.ping {
            m.add_str(PING, &p.to_string());
        }
        if !self.dead.is_empty() {
            let list: Vec<&str> = self.dead.iter().map(String::as_str).collect();
            m.add_str(DEAD, &list.join(" "));
        }
        if let Some(q) = self.quorum {
            m.add_str(QUORUM, if q { "1" } else { "0" });
        }
        if let Some(rb) = self.release_bound {
            m.add_dec(RELEASE_BOUND, rb.as_millis() as u64);
        }
        if !self.up.is_empty() {
            let list: Vec<&str> = self.up.iter().map(String::as_str).collect();
            m.add_str(UP, &list.join(" "));
        }
        if !self.claims.is_empty() {
            let list: Vec<String> = self
                .claims
                .iter()
                .filter_map(|(n, g)| keys.get(*g).map(|k| format!("{n}:{k}")))
                .collect();
            m.add_str(CLAIMS, &list.join(" "));
        }
        if let Some(mnt) = &self.maintenance {
            m.add_str(MAINTENANCE, &mnt.to_field());
        }
    }

    /// The raw values of the advert's fields in `m`, in `out`: equal
    /// bytes are an equal advert, so a peer's unchanged advert (nearly
    /// every beat) need not be parsed again.
    pub fn raw_fields(m: &Message, out: &mut Vec<u8>) {
        out.clear();
        for name in [
            VERSION,
            HELD,
            BUSY,
            STANDBY,
            FAILED,
            LEAVING,
            PING,
            DEAD,
            QUORUM,
            RELEASE_BOUND,
            CLAIMS,
            UP,
            MAINTENANCE,
        ] {
            // Length-prefixed: absent, empty and adjacent values differ.
            match m.get_bin(name) {
                Some(v) => {
                    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    out.extend_from_slice(v);
                }
                None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
            }
        }
    }

    /// The advert in `m`, or `None` if the sender is not a harust node.
    pub fn from_message(m: &Message, keys: &[&str]) -> Option<Advert> {
        m.get_str(VERSION)?;
        let set = |name: &str| -> BTreeSet<GroupId> {
            m.get_str(name)
                .unwrap_or("")
                .split_ascii_whitespace()
                .filter_map(|k| keys.iter().position(|x| *x == k))
                .collect()
        };
        Some(Advert {
            harust: true,
            held: set(HELD),
            busy: set(BUSY),
            standby: set(STANDBY),
            failed: set(FAILED),
            leaving: m.get_str(LEAVING) == Some("1"),
            ping: m.get_str(PING).and_then(|p| p.parse().ok()),
            dead: m
                .get_str(DEAD)
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
            quorum: m.get_str(QUORUM).map(|q| q == "1"),
            release_bound: m
                .get_str(RELEASE_BOUND)
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
            up: m
                .get_str(UP)
                .unwrap_or("")
                .split_ascii_whitespace()
                .map(str::to_ascii_lowercase)
                .collect(),
            // Node names hold no ':', keys may: split at the first.
            claims: m
                .get_str(CLAIMS)
                .unwrap_or("")
                .split_ascii_whitespace()
                .filter_map(|c| c.split_once(':'))
                .filter_map(|(n, k)| {
                    let g = keys.iter().position(|x| *x == k)?;
                    Some((n.to_ascii_lowercase(), g))
                })
                .collect(),
            maintenance: m.get_str(MAINTENANCE).and_then(Maintenance::from_field),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What lets `on_status` skip parsing an unchanged advert: the raw
    /// fields tell any change of the advert, and nothing else.
    #[test]
    fn raw_fields_change_with_the_advert_only() {
        let keys = ["g0", "g1"];
        let raw = |a: &Advert, seq: &str| {
            let mut m = Message::new("status");
            m.add_str("seq", seq);
            a.add_to(&mut m, &keys);
            let mut out = Vec::new();
            Advert::raw_fields(&m, &mut out);
            out
        };
        let a = Advert {
            harust: true,
            held: [0].into(),
            ..Advert::default()
        };
        assert_eq!(raw(&a, "1"), raw(&a, "2"));
        let moved = Advert {
            held: [1].into(),
            ..a.clone()
        };
        let leaving = Advert {
            leaving: true,
            ..a.clone()
        };
        for other in [moved, leaving] {
            assert_ne!(raw(&a, "1"), raw(&other, "1"), "{other:?}");
        }
        // An empty value is not an absent one.
        let mut m = Message::new("status");
        m.add_str("hr_v", "1").add_str("hr_held", "");
        let (mut with, mut without) = (Vec::new(), Vec::new());
        Advert::raw_fields(&m, &mut with);
        let mut m = Message::new("status");
        m.add_str("hr_v", "1");
        Advert::raw_fields(&m, &mut without);
        assert_ne!(with, without);
    }

    #[test]
    fn advert_round_trips_through_a_message() {
        let keys = ["IPaddr::198.18.1.100/24", "Name::a:b"];
        let a = Advert {
            harust: true,
            held: [0].into(),
            busy: [1].into(),
            standby: [0, 1].into(),
            failed: BTreeSet::new(),
            leaving: true,
            ping: Some(2),
            dead: ["node-b".to_string()].into(),
            quorum: Some(true),
            release_bound: Some(Duration::from_millis(2700)),
            claims: [("node-c".to_string(), 1)].into(),
            up: ["node-c".to_string()].into(),
            maintenance: Some(Maintenance {
                on: true,
                version: 3,
                by: "node-b".to_string(),
            }),
        };
        let mut m = Message::new("status");
        a.add_to(&mut m, &keys);
        assert_eq!(Advert::from_message(&m, &keys), Some(a));
    }

    #[test]
    fn heartbeat_messages_carry_no_advert() {
        let m = Message::new("status");
        assert_eq!(Advert::from_message(&m, &["g"]), None);
    }
}
