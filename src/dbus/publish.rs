//! The two tasks that push changes out: PropertiesChanged for properties
//! whose value changed, and one signal per engine event.

use std::time::Duration;

use log::warn;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use zbus::object_server::InterfaceRef;

use super::model;
use super::{Harust1, Harust1Signals};
use crate::control::Snapshot;
use crate::engine::Event;

/// Counters move with every heartbeat; their PropertiesChanged is sent at
/// most this often (the getter is always current).
const COUNTERS_INTERVAL: Duration = Duration::from_secs(1);

/// The property values, as last announced.
#[derive(PartialEq)]
struct Shown {
    state: String,
    quorum: &'static str,
    nodes: Vec<(String, String)>,
    links: Vec<(String, String, bool)>,
    groups: Vec<model::GroupRow>,
    timings: std::collections::BTreeMap<String, u64>,
    transitions: Vec<(u64, String, String)>,
    config_mismatch: std::collections::BTreeMap<String, Vec<String>>,
}

impl Shown {
    fn of(s: &Snapshot) -> Shown {
        Shown {
            state: s.view.state.to_string(),
            quorum: model::quorum(&s.view),
            nodes: model::nodes(s),
            links: model::links(s),
            groups: model::groups(&s.view),
            timings: model::timings(s),
            transitions: model::transitions(s),
            config_mismatch: s.config_mismatch.clone(),
        }
    }
}

/// Watches the snapshot and emits PropertiesChanged for each property that
/// changed (`Node` never does).
pub(super) async fn properties(iface: InterfaceRef<Harust1>, mut rx: watch::Receiver<Snapshot>) {
    let (mut shown, mut counters) = {
        let s = rx.borrow_and_update();
        (Shown::of(&s), s.view.counters)
    };
    let mut counters_sent = Instant::now();
    let mut counters_due: Option<Instant> = None;
    loop {
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let (now, c) = {
                    let s = rx.borrow_and_update();
                    (Shown::of(&s), s.view.counters)
                };
                if let Err(e) = emit_changes(&iface, &shown, &now).await {
                    warn!("cannot emit PropertiesChanged: {e}");
                }
                shown = now;
                if c != counters && counters_due.is_none() {
                    counters_due = Some((counters_sent + COUNTERS_INTERVAL).max(Instant::now()));
                }
            }
            _ = async {
                match counters_due {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                counters_due = None;
                counters_sent = Instant::now();
                counters = rx.borrow().view.counters;
                let i = iface.get().await;
                if let Err(e) = i.counters_changed(iface.signal_emitter()).await {
                    warn!("cannot emit PropertiesChanged for Counters: {e}");
                }
            }
        }
    }
}

async fn emit_changes(iface: &InterfaceRef<Harust1>, old: &Shown, new: &Shown) -> zbus::Result<()> {
    if old == new {
        return Ok(());
    }
    let e = iface.signal_emitter();
    let i = iface.get().await;
    if old.state != new.state {
        i.state_changed(e).await?;
    }
    if old.nodes != new.nodes {
        i.nodes_changed(e).await?;
    }
    if old.quorum != new.quorum {
        i.quorum_changed(e).await?;
    }
    if old.links != new.links {
        i.links_changed(e).await?;
    }
    if old.groups != new.groups {
        i.groups_changed(e).await?;
    }
    if old.timings != new.timings {
        i.timings_changed(e).await?;
    }
    if old.transitions != new.transitions {
        i.transitions_changed(e).await?;
    }
    if old.config_mismatch != new.config_mismatch {
        i.config_mismatch_changed(e).await?;
    }
    Ok(())
}

/// Emits a signal for each engine event, then a generic `Transition`.
/// Dropped packets are counted (`Counters`), not signalled: a flood of them
/// must not become a flood on the system bus.
pub(super) async fn signals(
    iface: InterfaceRef<Harust1>,
    mut events: broadcast::Receiver<Event>,
    snapshot: watch::Receiver<Snapshot>,
) {
    loop {
        let e = match events.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                warn!("D-Bus signals fell behind: {n} events were not signalled");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if matches!(e, Event::Dropped { .. }) {
            continue;
        }
        let link = |l: usize| {
            snapshot
                .borrow()
                .links
                .get(l)
                .cloned()
                .unwrap_or_else(|| format!("link #{l}"))
        };
        if let Err(err) = emit(&iface, &e, link).await {
            warn!("cannot emit the D-Bus signal for {}: {err}", e.name());
        }
    }
}

async fn emit(
    s: &InterfaceRef<Harust1>,
    e: &Event,
    link: impl Fn(usize) -> String,
) -> zbus::Result<()> {
    let (node, group) = match e {
        Event::CommUp => {
            s.comm_up().await?;
            ("", "")
        }
        Event::PeerUp { node } => {
            s.peer_up(node).await?;
            (node.as_str(), "")
        }
        Event::PeerRestarted { node } => {
            s.peer_restarted(node).await?;
            (node.as_str(), "")
        }
        Event::PeerDead { node, graceful } => {
            s.peer_dead(node, *graceful).await?;
            (node.as_str(), "")
        }
        Event::LateHeartbeat { node, interval } => {
            s.late_heartbeat(node, interval.as_millis() as u64).await?;
            (node.as_str(), "")
        }
        Event::LinkUp { node, link: l } => {
            s.link_up(node, &link(*l)).await?;
            (node.as_str(), "")
        }
        Event::LinkDown { node, link: l } => {
            s.link_down(node, &link(*l)).await?;
            (node.as_str(), "")
        }
        Event::PingUp { target } => {
            s.ping_node_up(target).await?;
            ("", "")
        }
        Event::PingDown { target } => {
            s.ping_node_down(target).await?;
            ("", "")
        }
        Event::Acquiring { group } => {
            s.group_acquiring(group).await?;
            ("", group.as_str())
        }
        Event::Acquired {
            group,
            takeover_from,
        } => {
            let from = takeover_from.as_deref().unwrap_or("");
            s.group_acquired(group, from).await?;
            (from, group.as_str())
        }
        Event::Releasing { group, to } => {
            let to = to.as_deref().unwrap_or("");
            s.group_releasing(group, to).await?;
            (to, group.as_str())
        }
        Event::Released { group } => {
            s.group_released(group).await?;
            ("", group.as_str())
        }
        Event::GroupFailed { group } => {
            s.group_failed(group).await?;
            ("", group.as_str())
        }
        Event::ResourceFailed {
            group,
            resource,
            op,
            reason,
        } => {
            let op = op.map_or_else(|| "lost".to_string(), |o| o.to_string());
            s.resource_failed(group, *resource as u32, &op, reason)
                .await?;
            ("", group.as_str())
        }
        Event::ResourceRepaired { group, resource } => {
            s.resource_repaired(group, *resource as u32).await?;
            ("", group.as_str())
        }
        Event::SplitBrainResolved { group, keeper } => {
            s.split_brain_resolved(group, keeper).await?;
            (keeper.as_str(), group.as_str())
        }
        Event::StandbyRequested { scope, by } => {
            s.standby_requested(scope.as_str(), by).await?;
            (by.as_str(), "")
        }
        Event::TakeoverRequested { scope, by } => {
            s.takeover_requested(scope.as_str(), by).await?;
            (by.as_str(), "")
        }
        Event::Dropped { .. } => return Ok(()),
        Event::QuorumLost { .. } | Event::QuorumRegained { .. } => ("", ""),
        Event::MaintenanceOn { by } | Event::MaintenanceOff { by } => (by.as_str(), ""),
        Event::Adopted { group } => ("", group.as_str()),
        Event::Fencing { node, .. }
        | Event::Fenced { node, .. }
        | Event::FenceFailed { node, .. }
        | Event::FenceNeeded { node } => (node.as_str(), ""),
    };
    s.transition(e.name(), node, group, &e.to_string()).await
}
