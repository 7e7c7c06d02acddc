//! What the daemon shares with its control channels (the D-Bus adapter):
//! requests in, the published snapshot and events out.

use std::collections::{BTreeMap, VecDeque};

use tokio::sync::{mpsc, oneshot, watch};

use crate::engine::{AdminError, AdminRequest, Event, View};

/// A request from the D-Bus API (or any other control channel).
#[derive(Debug)]
pub enum Control {
    Admin {
        request: AdminRequest,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    /// Re-read the configuration; the reply lists every problem if it failed.
    Reload {
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// What the daemon publishes for status readers.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub view: View,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    pub links: Vec<String>,
    /// The last transitions, oldest first: (unix ms, event name, text).
    pub transitions: VecDeque<(u64, String, String)>,
    /// When `view` was taken (unix ms): its ages count from here.
    pub published_ms: u64,
    /// Peers whose configuration differs from ours: peer -> parts.
    pub config_mismatch: BTreeMap<String, Vec<String>>,
}

/// The far ends of the daemon's channels, for the D-Bus adapter.
pub struct Handle {
    pub control: mpsc::Sender<Control>,
    pub snapshot: watch::Receiver<Snapshot>,
    /// Every engine event, as it happens.
    pub events: tokio::sync::broadcast::Sender<Event>,
}

/// The one-line `STATUS=` summary, e.g.
/// `active: holds 1/2 groups; peers up: node-b`.
pub fn status_line(v: &View) -> String {
    let held = v.groups.iter().filter(|g| g.local_state == "held").count();
    let up: Vec<&str> = v
        .nodes
        .iter()
        .filter(|n| matches!(n.status, "up" | "active"))
        .map(|n| n.name.as_str())
        .collect();
    let peers = if up.is_empty() {
        "no peer up".to_string()
    } else {
        format!("peers up: {}", up.join(", "))
    };
    let quorum = match v.quorum {
        Some(true) => "; quorum",
        Some(false) => "; NO QUORUM",
        None => "",
    };
    let witness = if v.witness { " (witness)" } else { "" };
    let maintenance = if v.maintenance { "; MAINTENANCE" } else { "" };
    let fencing: String = v
        .nodes
        .iter()
        .filter(|n| n.status == "fencing")
        .map(|n| format!("; FENCING {}", n.name))
        .collect();
    format!(
        "{}{witness}: holds {held}/{} groups; {peers}{quorum}{maintenance}{fencing}",
        v.state,
        v.groups.len()
    )
}
