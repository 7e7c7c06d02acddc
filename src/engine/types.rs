//! What goes in and out of the engine.

use std::fmt;
use std::time::Duration;

use crate::wire::Message;

/// Monotonic time since an arbitrary origin, supplied by the caller.
pub type Time = Duration;

/// Index of a node in `ha.cf`'s `node` lines.
pub type NodeId = usize;
/// Index of a group in `haresources`.
pub type GroupId = usize;
/// Index of a link (medium) as the runtime numbers them.
pub type LinkId = usize;

/// heartbeat's standby/takeover scopes (hb_standby(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    Local,
    Foreign,
    Failback,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "all" => Some(Scope::All),
            "local" => Some(Scope::Local),
            "foreign" => Some(Scope::Foreign),
            "failback" => Some(Scope::Failback),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::All => "all",
            Scope::Local => "local",
            Scope::Foreign => "foreign",
            Scope::Failback => "failback",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator request, from D-Bus or the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRequest {
    Standby(Scope),
    Takeover(Scope),
    /// Cluster-wide maintenance mode on or off.
    Maintenance(bool),
    /// The operator confirms that node `NodeId` is off (heartbeat's
    /// meatware): it counts as a successful fence of its current death.
    FenceConfirm(NodeId),
}

/// The cluster's maintenance mode as this node knows it. Every change
/// bumps `version` past every version seen, so the latest operator action
/// wins everywhere, also on a node that was down when it was made; on a
/// tie, `on` wins (docs/PROTOCOL-NOTES.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Maintenance {
    pub on: bool,
    pub version: u64,
    /// The node where the operator changed it.
    pub by: String,
}

impl Maintenance {
    /// Whether `self` supersedes `other`.
    pub fn newer_than(&self, other: &Maintenance) -> bool {
        (self.version, self.on) > (other.version, other.on)
    }

    /// The persisted and wire form: `on version node`.
    pub fn to_field(&self) -> String {
        format!("{} {} {}", u8::from(self.on), self.version, self.by)
    }

    pub fn from_field(s: &str) -> Option<Maintenance> {
        let mut it = s.split_ascii_whitespace();
        let on = match it.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let version = it.next()?.parse().ok()?;
        let by = it.next().unwrap_or("").to_ascii_lowercase();
        Some(Maintenance { on, version, by })
    }
}

/// Why an operator request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("no live peer can take over group {0}")]
    NoPeer(String),
    #[error("this node is shutting down")]
    ShuttingDown,
    #[error("the cluster is not up yet on this node (waiting for peers or initdead)")]
    NotReady,
    #[error("the cluster is in maintenance mode: nothing moves until `harust maintenance off`")]
    Maintenance,
    #[error(
        "node {0} is not waiting for a fence (it is alive, stopped gracefully, or has no fence device)"
    )]
    NotFencing(String),
}

/// A resource action direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Start,
    Stop,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Start => "start",
            Op::Stop => "stop",
        })
    }
}

/// Everything that can happen to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The resources that are really present at start (group, resource).
    /// Nothing is held until this arrives.
    Reconciled {
        present: Vec<(GroupId, usize)>,
    },
    /// An authenticated message from a link.
    Packet {
        link: LinkId,
        msg: Message,
    },
    /// A packet that failed to decode or authenticate; counted only.
    BadPacket {
        link: LinkId,
        kind: &'static str,
    },
    /// The deadline from `next_deadline` was reached.
    Tick,
    /// The result of a `Start`/`Stop` output.
    ResourceDone {
        group: GroupId,
        resource: usize,
        op: Op,
        result: Result<(), String>,
    },
    /// A held resource went away (a unit failed, a VIP was deleted).
    ResourceLost {
        group: GroupId,
        resource: usize,
        reason: String,
    },
    Admin {
        id: u64,
        request: AdminRequest,
    },
    /// An echo reply from ping target `target` (ha.cf's `ping` lines, then
    /// its `ping_group` lines, in order; see `Engine::ping_targets`).
    PingReply {
        target: usize,
    },
    /// Graceful stop: hand everything over, then `Output::Stopped`.
    Shutdown,
    /// The result of an `Output::Fence`.
    FenceDone {
        node: NodeId,
        result: Result<(), String>,
    },
}

/// What the engine asks its adapters to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send on every link. Shared with the engine's send history, which
    /// keeps it for retransmission.
    Send(std::sync::Arc<Message>),
    /// Start a resource. A group's consecutive addresses are asked for in
    /// one step, so the adapter can add them as one batch; their results
    /// must come back in the order they were asked for.
    Start {
        group: GroupId,
        resource: usize,
    },
    /// Stop a resource; batched like [`Output::Start`], last first.
    Stop {
        group: GroupId,
        resource: usize,
    },
    /// Refresh neighbours (GARP/NA) for the group's addresses.
    Announce {
        group: GroupId,
    },
    Reply {
        id: u64,
        result: Result<(), AdminError>,
    },
    Event(Event),
    /// The graceful stop is complete; the runtime may exit.
    Stopped,
    /// Fence node `node` (power it off or reset it); the result comes
    /// back as `Input::FenceDone`.
    Fence {
        node: NodeId,
    },
}

/// Something worth logging, counting or signalling. Names are node and
/// group names, not indices, so adapters need no lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    CommUp,
    PeerUp {
        node: String,
    },
    PeerRestarted {
        node: String,
    },
    PeerDead {
        node: String,
        graceful: bool,
    },
    LateHeartbeat {
        node: String,
        interval: Duration,
    },
    LinkUp {
        node: String,
        link: LinkId,
    },
    PingUp {
        target: String,
    },
    PingDown {
        target: String,
    },
    LinkDown {
        node: String,
        link: LinkId,
    },
    Acquiring {
        group: String,
    },
    Acquired {
        group: String,
        takeover_from: Option<String>,
    },
    Releasing {
        group: String,
        to: Option<String>,
    },
    Released {
        group: String,
    },
    /// A start or stop failed (`op`), or a running resource was lost
    /// (`op` is `None`).
    ResourceFailed {
        group: String,
        resource: usize,
        op: Option<Op>,
        reason: String,
    },
    ResourceRepaired {
        group: String,
        resource: usize,
    },
    /// No node can hold the group; it stays down until an operator acts.
    GroupFailed {
        group: String,
    },
    SplitBrainResolved {
        group: String,
        keeper: String,
    },
    StandbyRequested {
        scope: Scope,
        by: String,
    },
    TakeoverRequested {
        scope: Scope,
        by: String,
    },
    Dropped {
        reason: &'static str,
        node: Option<String>,
    },
    /// This node no longer sees a majority of the voters: it releases
    /// every group and takes none.
    QuorumLost {
        seen: usize,
        voters: usize,
    },
    QuorumRegained {
        seen: usize,
        voters: usize,
    },
    /// Maintenance mode went on or off, by an operator on node `by`.
    MaintenanceOn {
        by: String,
    },
    MaintenanceOff {
        by: String,
    },
    /// At start in maintenance mode: the group's resources were found up
    /// and are kept, not released.
    Adopted {
        group: String,
    },
    /// A silent node is being fenced (its fence unit started).
    Fencing {
        node: String,
        attempt: u32,
    },
    /// A silent node was fenced, by a device (`by` is `None`) or confirmed
    /// by an operator.
    Fenced {
        node: String,
        by: Option<String>,
    },
    /// A fence failed; it is tried again after `retry_in`, and nothing
    /// of the node's is taken meanwhile.
    FenceFailed {
        node: String,
        reason: String,
        retry_in: Duration,
    },
    /// A silent node must be fenced and this node has no device for it.
    FenceNeeded {
        node: String,
    },
}

impl Event {
    /// The stable name used as `HARUST_EVENT` and in D-Bus signals.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CommUp => "comm-up",
            Event::PeerUp { .. } => "peer-up",
            Event::PeerRestarted { .. } => "peer-restarted",
            Event::PeerDead { .. } => "peer-dead",
            Event::LateHeartbeat { .. } => "late-heartbeat",
            Event::LinkUp { .. } => "link-up",
            Event::LinkDown { .. } => "link-down",
            Event::PingUp { .. } => "ping-up",
            Event::PingDown { .. } => "ping-down",
            Event::Acquiring { .. } => "acquiring",
            Event::Acquired { .. } => "acquired",
            Event::Releasing { .. } => "releasing",
            Event::Released { .. } => "released",
            Event::ResourceFailed { .. } => "resource-failed",
            Event::ResourceRepaired { .. } => "resource-repaired",
            Event::GroupFailed { .. } => "group-failed",
            Event::SplitBrainResolved { .. } => "split-brain-resolved",
            Event::StandbyRequested { .. } => "standby",
            Event::TakeoverRequested { .. } => "takeover",
            Event::Dropped { .. } => "packet-dropped",
            Event::QuorumLost { .. } => "quorum-lost",
            Event::QuorumRegained { .. } => "quorum-regained",
            Event::MaintenanceOn { .. } => "maintenance-on",
            Event::MaintenanceOff { .. } => "maintenance-off",
            Event::Adopted { .. } => "adopted",
            Event::Fencing { .. } => "fencing",
            Event::Fenced { .. } => "fenced",
            Event::FenceFailed { .. } => "fence-failed",
            Event::FenceNeeded { .. } => "fence-needed",
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::CommUp => write!(f, "communication with the cluster is up"),
            Event::PeerUp { node } => write!(f, "node {node} is up"),
            Event::PeerRestarted { node } => write!(f, "node {node} restarted"),
            Event::PeerDead { node, graceful } => {
                if *graceful {
                    write!(f, "node {node} stopped gracefully")
                } else {
                    write!(f, "node {node} is dead")
                }
            }
            Event::LateHeartbeat { node, interval } => {
                write!(
                    f,
                    "late heartbeat from {node}: interval {} ms",
                    interval.as_millis()
                )
            }
            Event::LinkUp { node, link } => write!(f, "link {link} to {node} is up"),
            Event::LinkDown { node, link } => write!(f, "link {link} to {node} is down"),
            Event::PingUp { target } => write!(f, "ping node {target} is reachable"),
            Event::PingDown { target } => write!(f, "ping node {target} is unreachable"),
            Event::Acquiring { group } => write!(f, "acquiring group {group}"),
            Event::Acquired {
                group,
                takeover_from: Some(n),
            } => write!(f, "took over group {group} from {n}"),
            Event::Acquired { group, .. } => write!(f, "acquired group {group}"),
            Event::Releasing { group, to: Some(n) } => {
                write!(f, "releasing group {group} to {n}")
            }
            Event::Releasing { group, .. } => write!(f, "releasing group {group}"),
            Event::Released { group } => write!(f, "released group {group}"),
            Event::ResourceFailed {
                group,
                resource,
                op: Some(op),
                reason,
            } => write!(
                f,
                "resource {resource} of group {group} failed to {op}: {reason}"
            ),
            Event::ResourceFailed {
                group,
                resource,
                op: None,
                reason,
            } => write!(f, "resource {resource} of group {group} was lost: {reason}"),
            Event::ResourceRepaired { group, resource } => {
                write!(f, "resource {resource} of group {group} was restored")
            }
            Event::GroupFailed { group } => {
                write!(
                    f,
                    "group {group} failed on every node; an operator must act"
                )
            }
            Event::SplitBrainResolved { group, keeper } => {
                write!(
                    f,
                    "split brain on group {group} resolved: {keeper} keeps it"
                )
            }
            Event::StandbyRequested { scope, by } => {
                write!(f, "standby [{scope}] requested by {by}")
            }
            Event::TakeoverRequested { scope, by } => {
                write!(f, "takeover [{scope}] requested by {by}")
            }
            Event::Dropped { reason, node } => match node {
                Some(n) => write!(f, "dropped packet from {n}: {reason}"),
                None => write!(f, "dropped packet: {reason}"),
            },
            Event::QuorumLost { seen, voters } => write!(
                f,
                "quorum lost: {seen} of {voters} voters in view; releasing every group"
            ),
            Event::QuorumRegained { seen, voters } => {
                write!(f, "quorum regained: {seen} of {voters} voters in view")
            }
            Event::MaintenanceOn { by } => write!(
                f,
                "maintenance mode on (set on {by}): no group is acquired, released or failed over"
            ),
            Event::MaintenanceOff { by } => {
                write!(f, "maintenance mode off (set on {by}): normal rules apply")
            }
            Event::Adopted { group } => write!(
                f,
                "maintenance mode: adopted group {group}, whose resources are up here"
            ),
            Event::Fencing { node, attempt } => {
                write!(f, "fencing node {node} (attempt {attempt})")
            }
            Event::Fenced { node, by: None } => {
                write!(f, "node {node} was fenced; its groups may be taken over")
            }
            Event::Fenced { node, by: Some(by) } => write!(
                f,
                "node {node} confirmed off by the {by}; its groups may be taken over"
            ),
            Event::FenceFailed {
                node,
                reason,
                retry_in,
            } => write!(
                f,
                "fencing node {node} failed: {reason}; its groups are not taken over; \
                 trying again in {} s (or run `harust fence-confirm {node}` once it is off)",
                retry_in.as_secs()
            ),
            Event::FenceNeeded { node } => write!(
                f,
                "node {node} must be fenced before its groups are taken over, and this node has \
                 no fence device for it; run `harust fence-confirm {node}` once it is off"
            ),
        }
    }
}

/// Monotonic counters, exposed on D-Bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    pub beats_sent: u64,
    pub beats_received: u64,
    pub late_beats: u64,
    pub bad_packets: u64,
    pub replays: u64,
    pub failovers: u64,
    pub split_brains: u64,
    pub retransmits_requested: u64,
    pub retransmits_sent: u64,
}

/// A read-only picture of the engine for status displays.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct View {
    pub node: String,
    pub state: &'static str,
    pub nodes: Vec<NodeView>,
    pub groups: Vec<GroupView>,
    pub counters: Counters,
    /// Whether this node has quorum; `None` with quorum off.
    pub quorum: Option<bool>,
    /// This node is a witness: it votes and holds nothing.
    pub witness: bool,
    /// The release bound this node advertises (docs/SAFETY.md).
    pub release_bound_ms: u64,
    /// Cluster-wide maintenance mode (nothing moves).
    pub maintenance: bool,
    /// Live peers that do not (yet) advertise the maintenance mode we
    /// know: heartbeat, an older harust, or one that has not heard it.
    pub maintenance_pending: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeView {
    pub name: String,
    /// `local`, `unknown`, `up`, `active`, `dead`, `fencing` (dead, and
    /// not fenced yet).
    pub status: &'static str,
    /// How its fencing stands, if it is silent and has a fence device:
    /// `pending`, `running`, `retrying`, `waiting-confirm`, `fenced`.
    pub fence: Option<&'static str>,
    pub last_heard_ms_ago: Option<u64>,
    pub links: Vec<(LinkId, bool)>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupView {
    pub key: String,
    pub preferred: String,
    pub holder: Option<String>,
    /// This node's state for the group: `idle`, `acquiring`, `held`,
    /// `handing-off`, `releasing`, `failed`.
    pub local_state: &'static str,
}
