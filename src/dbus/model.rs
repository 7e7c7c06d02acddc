//! Plain functions from the daemon's [`Snapshot`] to what the D-Bus API
//! shows: property values, the `Status()` JSON, and whether an operator
//! request has taken effect. No D-Bus here, so all of it is unit-tested.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::control::Snapshot;
use crate::engine::{AdminRequest, GroupView, Scope, View};

/// `Nodes`: (name, status) for every node in ha.cf order, this node
/// included. Status is `local`, `unknown`, `up`, `active` or `dead`.
pub fn nodes(s: &Snapshot) -> Vec<(String, String)> {
    s.view
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.status.to_string()))
        .collect()
}

/// `Links`: (node, link, up) for every link to every peer the engine has
/// heard on. The link is named by its medium, e.g. `ucast eth0 198.18.1.2`.
pub fn links(s: &Snapshot) -> Vec<(String, String, bool)> {
    s.view
        .nodes
        .iter()
        .flat_map(|n| {
            n.links
                .iter()
                .map(move |(l, up)| (n.name.clone(), link_name(s, *l), *up))
        })
        .collect()
}

fn link_name(s: &Snapshot, l: usize) -> String {
    s.links
        .get(l)
        .cloned()
        .unwrap_or_else(|| format!("link #{l}"))
}

/// One row of `Groups` and of the Standby/Takeover reply:
/// (group, holder or "", preferred node, this node's state for it).
pub type GroupRow = (String, String, String, String);

/// `Groups`, in haresources order.
pub fn groups(v: &View) -> Vec<GroupRow> {
    v.groups
        .iter()
        .map(|g| {
            (
                g.key.clone(),
                g.holder.clone().unwrap_or_default(),
                g.preferred.clone(),
                g.local_state.to_string(),
            )
        })
        .collect()
}

/// `Timings`, in milliseconds, keyed `keepalive`, `warntime`, `deadtime`,
/// `initdead`.
pub fn timings(s: &Snapshot) -> BTreeMap<String, u64> {
    [
        ("keepalive", s.keepalive_ms),
        ("warntime", s.warntime_ms),
        ("deadtime", s.deadtime_ms),
        ("initdead", s.initdead_ms),
        ("release_bound", s.view.release_bound_ms),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `Quorum`: `yes`, `no`, or `off` with quorum off.
pub fn quorum(v: &View) -> &'static str {
    match v.quorum {
        Some(true) => "yes",
        Some(false) => "no",
        None => "off",
    }
}

/// `Counters`, keyed by the field names of [`crate::engine::Counters`].
pub fn counters(v: &View) -> BTreeMap<String, u64> {
    let c = v.counters;
    [
        ("beats_received", c.beats_received),
        ("beats_sent", c.beats_sent),
        ("late_beats", c.late_beats),
        ("bad_packets", c.bad_packets),
        ("replays", c.replays),
        ("failovers", c.failovers),
        ("split_brains", c.split_brains),
        ("retransmits_requested", c.retransmits_requested),
        ("retransmits_sent", c.retransmits_sent),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// `LastHeard`: when each peer that has been heard was last heard, in ms
/// since the epoch.
pub fn last_heard(s: &Snapshot) -> BTreeMap<String, u64> {
    s.view
        .nodes
        .iter()
        .filter_map(|n| {
            let ago = n.last_heard_ms_ago?;
            Some((n.name.clone(), s.published_ms.saturating_sub(ago)))
        })
        .collect()
}

/// `Transitions`: (unix time in ms, event name, message), oldest first.
pub fn transitions(s: &Snapshot) -> Vec<(u64, String, String)> {
    s.transitions.iter().cloned().collect()
}

/// The document `Status()` returns, and `harust status --json` prints.
pub fn status_json(s: &Snapshot) -> Value {
    let v = &s.view;
    json!({
        "node": v.node,
        "state": v.state,
        "summary": crate::control::status_line(v),
        "quorum": quorum(v),
        "maintenance": v.maintenance,
        "maintenance_pending": v.maintenance_pending,
        "witness": v.witness,
        "timings_ms": timings(s),
        "nodes": v.nodes.iter().map(|n| json!({
            "name": n.name,
            "status": n.status,
            "fence": n.fence,
            "last_heard_ms_ago": n.last_heard_ms_ago,
            "links": n.links.iter().map(|(l, up)| json!({
                "link": link_name(s, *l),
                "up": up,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "links": s.links,
        "groups": v.groups.iter().map(|g| json!({
            "group": g.key,
            "holder": g.holder,
            "preferred": g.preferred,
            "local_state": g.local_state,
        })).collect::<Vec<_>>(),
        "counters": counters(v),
        "config_mismatch": s.config_mismatch,
        "transitions": s.transitions.iter().map(|(t, e, m)| json!({
            "time_ms": t,
            "event": e,
            "message": m,
        })).collect::<Vec<_>>(),
    })
}

/// Whether `g` is in `scope` as seen from `me` (hb_standby(1)): `local`
/// groups prefer this node, `foreign` ones another; `failback` means the
/// foreign groups for a standby and this node's own for a takeover.
fn in_scope(g: &GroupView, me: &str, request: AdminRequest) -> bool {
    let local = g.preferred == me;
    match request {
        AdminRequest::Standby(Scope::All) | AdminRequest::Takeover(Scope::All) => true,
        AdminRequest::Standby(Scope::Local) | AdminRequest::Takeover(Scope::Local) => local,
        AdminRequest::Standby(Scope::Foreign) | AdminRequest::Takeover(Scope::Foreign) => !local,
        AdminRequest::Standby(Scope::Failback) => !local,
        AdminRequest::Takeover(Scope::Failback) => local,
        AdminRequest::Maintenance(_) | AdminRequest::FenceConfirm(_) => false,
    }
}

/// Whether this node's groups are all at rest: none acquiring, releasing
/// or handing off.
fn at_rest(v: &View) -> bool {
    v.groups
        .iter()
        .all(|g| matches!(g.local_state, "idle" | "held" | "failed"))
}

/// Whether an accepted request has taken effect in `v`: this node is at
/// rest, and every group in scope has moved. After a standby a peer holds
/// it (or it failed everywhere); after a takeover this node holds it (or
/// failed to).
pub fn settled(v: &View, request: AdminRequest) -> bool {
    // Maintenance moves nothing: accepted is done.
    if let AdminRequest::Maintenance(on) = request {
        return v.maintenance == on;
    }
    // A confirmation only records what the operator did.
    if let AdminRequest::FenceConfirm(_) = request {
        return true;
    }
    at_rest(v)
        && v.groups
            .iter()
            .filter(|g| in_scope(g, &v.node, request))
            .all(|g| match request {
                AdminRequest::Standby(_) => {
                    g.local_state == "failed"
                        || (g.local_state == "idle"
                            && g.holder.as_deref().is_some_and(|h| h != v.node))
                }
                AdminRequest::Takeover(_) => matches!(g.local_state, "held" | "failed"),
                AdminRequest::Maintenance(_) | AdminRequest::FenceConfirm(_) => true,
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Counters, NodeView};
    use std::collections::VecDeque;

    fn group(key: &str, preferred: &str, holder: Option<&str>, state: &'static str) -> GroupView {
        GroupView {
            key: key.into(),
            preferred: preferred.into(),
            holder: holder.map(Into::into),
            local_state: state,
        }
    }

    fn view(groups: Vec<GroupView>) -> View {
        View {
            node: "node-a".into(),
            state: "active",
            nodes: vec![
                NodeView {
                    name: "node-a".into(),
                    status: "local",
                    last_heard_ms_ago: None,
                    links: vec![],
                    fence: None,
                },
                NodeView {
                    name: "node-b".into(),
                    status: "active",
                    last_heard_ms_ago: Some(4),
                    links: vec![(0, true), (1, false)],
                    fence: None,
                },
            ],
            groups,
            counters: Counters {
                beats_received: 7,
                failovers: 1,
                ..Counters::default()
            },
            quorum: None,
            witness: false,
            release_bound_ms: 2700,
            maintenance: false,
            maintenance_pending: vec![],
        }
    }

    #[test]
    fn quorum_is_off_yes_or_no_and_the_summary_says_when_it_is_lost() {
        let mut v = view(vec![]);
        assert_eq!(quorum(&v), "off");
        v.quorum = Some(true);
        assert_eq!(quorum(&v), "yes");
        v.quorum = Some(false);
        assert_eq!(quorum(&v), "no");
        assert!(
            crate::control::status_line(&v).ends_with("; NO QUORUM"),
            "{}",
            crate::control::status_line(&v)
        );
        let doc = status_json(&snapshot(v));
        assert_eq!(doc["quorum"], "no");
        assert_eq!(doc["timings_ms"]["release_bound"], 2700);
    }

    fn snapshot(v: View) -> Snapshot {
        Snapshot {
            view: v,
            keepalive_ms: 10,
            deadtime_ms: 100,
            warntime_ms: 50,
            initdead_ms: 300,
            links: vec!["ucast eth0 198.18.1.2".into(), "bcast eth1".into()],
            transitions: VecDeque::from([(1, "acquired".into(), "acquired group g".into())]),
            published_ms: 10_000,
            config_mismatch: BTreeMap::from([("node-b".to_string(), vec!["timings".to_string()])]),
        }
    }

    const STANDBY_ALL: AdminRequest = AdminRequest::Standby(Scope::All);
    const TAKEOVER_ALL: AdminRequest = AdminRequest::Takeover(Scope::All);

    #[test]
    fn standby_is_settled_once_the_peer_holds_the_group() {
        let held = view(vec![group("g", "node-a", Some("node-a"), "held")]);
        let releasing = view(vec![group("g", "node-a", Some("node-a"), "releasing")]);
        let between = view(vec![group("g", "node-a", None, "idle")]);
        let moved = view(vec![group("g", "node-a", Some("node-b"), "idle")]);
        assert!(!settled(&held, STANDBY_ALL));
        assert!(!settled(&releasing, STANDBY_ALL));
        assert!(!settled(&between, STANDBY_ALL));
        assert!(settled(&moved, STANDBY_ALL));
    }

    #[test]
    fn standby_waits_for_every_group_of_this_node_to_be_at_rest() {
        // g2 is out of scope (local standby, foreign group) but still moving.
        let v = view(vec![
            group("g1", "node-a", Some("node-b"), "idle"),
            group("g2", "node-b", Some("node-a"), "handing-off"),
        ]);
        assert!(!settled(&v, AdminRequest::Standby(Scope::Local)));
    }

    #[test]
    fn standby_scopes_select_groups_by_preferred_node() {
        let v = view(vec![
            group("mine", "node-a", Some("node-b"), "idle"),
            group("theirs", "node-b", Some("node-a"), "held"),
        ]);
        assert!(settled(&v, AdminRequest::Standby(Scope::Local)));
        assert!(!settled(&v, AdminRequest::Standby(Scope::Foreign)));
        assert!(!settled(&v, AdminRequest::Standby(Scope::Failback)));
        assert!(!settled(&v, STANDBY_ALL));
    }

    #[test]
    fn takeover_is_settled_once_this_node_holds_or_failed() {
        let acquiring = view(vec![group("g", "node-b", None, "acquiring")]);
        let held = view(vec![group("g", "node-b", Some("node-a"), "held")]);
        let failed = view(vec![group("g", "node-b", None, "failed")]);
        assert!(!settled(&acquiring, TAKEOVER_ALL));
        assert!(settled(&held, TAKEOVER_ALL));
        assert!(settled(&failed, TAKEOVER_ALL));
        // failback takeover is "my own groups back": a foreign one is out.
        let foreign = view(vec![group("g", "node-b", Some("node-b"), "idle")]);
        assert!(settled(&foreign, AdminRequest::Takeover(Scope::Failback)));
        assert!(!settled(&foreign, TAKEOVER_ALL));
    }

    #[test]
    fn properties_are_readable_rows() {
        let s = snapshot(view(vec![group("g", "node-a", None, "idle")]));
        assert_eq!(
            nodes(&s),
            vec![
                ("node-a".to_string(), "local".to_string()),
                ("node-b".to_string(), "active".to_string())
            ]
        );
        assert_eq!(
            links(&s),
            vec![
                ("node-b".into(), "ucast eth0 198.18.1.2".into(), true),
                ("node-b".into(), "bcast eth1".into(), false)
            ]
        );
        assert_eq!(
            groups(&s.view),
            vec![(
                "g".to_string(),
                String::new(),
                "node-a".to_string(),
                "idle".to_string()
            )]
        );
        assert_eq!(timings(&s)["deadtime"], 100);
        let c = counters(&s.view);
        assert_eq!((c["beats_received"], c["failovers"]), (7, 1));
        assert_eq!(c.len(), 9);
        // node-b was heard 4 ms before the snapshot; node-a is this node.
        assert_eq!(
            last_heard(&s),
            BTreeMap::from([("node-b".to_string(), 9_996)])
        );
    }

    #[test]
    fn status_json_has_everything_the_cli_prints() {
        let s = snapshot(view(vec![group("g", "node-a", Some("node-b"), "idle")]));
        let j = status_json(&s);
        assert_eq!(j["node"], "node-a");
        assert_eq!(j["nodes"][1]["last_heard_ms_ago"], 4);
        assert_eq!(j["nodes"][1]["links"][0]["link"], "ucast eth0 198.18.1.2");
        assert_eq!(j["groups"][0]["holder"], "node-b");
        assert_eq!(j["groups"][0]["preferred"], "node-a");
        assert_eq!(j["timings_ms"]["initdead"], 300);
        assert_eq!(j["counters"]["failovers"], 1);
        assert_eq!(j["transitions"][0]["event"], "acquired");
        assert_eq!(j["config_mismatch"]["node-b"][0], "timings");
    }
}
