//! The pure cluster engine: membership, resource groups, negotiation and
//! split-brain resolution. No tokio, no sockets, no clock reads: time comes
//! in with every call and randomness from a seed.
//!
//! Decisions follow one rule, evaluated by every node from the same shared
//! facts: each node advertises what it holds, what it is busy with, and
//! what it refuses (standby, failed) in every status and `resource`
//! message (the `hr_*` fields, which heartbeat ignores). From those facts
//! [`Engine::desired`] names one holder per group; a node acquires a group
//! only when it is the desired holder and no live peer claims it, and
//! releases it when it is not. The messages heartbeat's own peers need
//! (PROTOCOL.md §1.4–1.9) are sent alongside.
//!
//! A heartbeat peer advertises nothing of this: its holdings come from its
//! `resource` reports (`rsc_hold` is relative to the sender), a hand-over
//! to it runs heartbeat's three-phase `ask_resources` exchange, and it
//! takes over only after `shutdone`. Ping nodes are quorum witnesses: a
//! node that reaches fewer of them than a live peer does may hold nothing.
//!
//! Layout: construction and the public API here; then `membership`
//! (deadlines, packets, proof of life, probes, retransmits), `sending`,
//! `decide` (`desired`, `decide`), `holding` (split brain, acquire,
//! release), `hb_peer` (heartbeat's hand-over exchange), `resources`
//! (their results) and `admin` (operator requests, the graceful stop).

mod admin;
mod decide;
mod fence;
mod hb_peer;
mod holding;
mod lease;
mod membership;
mod proto;
mod quorum;
mod resources;
mod sending;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

pub use lease::{LeaseDone, LeasePeer, LeaseTerms, PeerDone};
pub use sending::beat_ts;
pub use types::*;

use crate::config::{AutoFailback, Config, Resource, Timings};
use crate::wire::Message;
use crate::wire::replay::{SeqTracker, Verdict};
use fence::Fencing;
pub use fence::{
    DELAY_OTHERS as FENCE_DELAY_OTHERS, RETRY_FIRST as FENCE_RETRY_FIRST,
    RETRY_MAX as FENCE_RETRY_MAX,
};
use proto::Advert;
use quorum::Quorum;
pub use quorum::{STOP_ALLOWANCE, release_bound, watchdog_timeout};

/// How often a failed stop is tried again.
const STOP_RETRIES: u32 = 3;
/// heartbeat cancels a standby whose first reply takes longer (§1.9,
/// STANDBY_INIT_TO_MS).
const STANDBY_REPLY: Duration = Duration::from_secs(10);
/// A harust-only liveness probe, sent to a harust peer whose beats are
/// late, and its answer. `NS_` types are unsequenced and heartbeat ignores
/// types it does not know, so mixed clusters are unaffected.
const PROBE: &str = "NS_hr_probe";
const PROBE_ACK: &str = "NS_hr_probe_ack";
/// Recent probe nonces remembered per peer.
const PROBES_KEPT: usize = 16;
/// How long after the last event or sign of loss reads may go quiet.
pub const QUIET_HOLDOFF: Duration = Duration::from_secs(5);
/// How many sent messages are kept for retransmission (heartbeat MAXMSGHIST).
const HISTORY: usize = 500;
/// Do not resend one seq more often than this (heartbeat: max_rexmit_delay − 10 ms).
const REXMIT_HOLDOFF: Duration = Duration::from_millis(240);
/// Repeat a retransmit request this often while a seq is missing...
const REXMIT_REPEAT: Duration = Duration::from_millis(250);
/// ...but not forever.
const REXMIT_TRIES: u32 = 10;

/// Per-process identity, supplied by the runtime.
#[derive(Debug, Clone)]
pub struct Params {
    pub uuid: [u8; 16],
    /// heartbeat's `hg`: bumped on every start, persisted by the runtime.
    pub generation: u64,
    /// Unix seconds at `now` = 0, for the `ts` field.
    pub wall_base: u64,
    pub seed: u64,
}

/// The engine's view of one group's definition.
#[derive(Debug, Clone)]
struct GroupDef {
    key: String,
    preferred: NodeId,
    /// Resource count; the adapters know what each one is.
    len: usize,
    /// Which resources are addresses (the rest are units).
    vips: Vec<bool>,
    /// Only addresses: handed over make-before-break.
    vip_only: bool,
}

/// Our side of heartbeat's three-phase `ask_resources` exchange, used to
/// hand groups to a heartbeat peer, which only takes them on `info=done`.
#[derive(Debug, Clone)]
struct HbAsk {
    peer: NodeId,
    groups: BTreeSet<GroupId>,
    since: Time,
    /// The peer answered `info=other`: release, then say `done`.
    granted: bool,
}

/// This node's state for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Idle,
    /// Resources `0..next` are up; waiting for `next`'s start. Starts
    /// are in flight for `next..=upto` (a run of addresses).
    Acquiring {
        next: usize,
        upto: usize,
    },
    Held,
    /// Still up, no longer claimed: waiting for the new holder to hold it
    /// before releasing, so clients never see the address missing.
    HandingOff {
        since: Time,
    },
    /// Resources `0..=next` may be up; waiting for `next`'s stop. Stops
    /// are in flight for `low..=next` (a run of addresses).
    Releasing {
        next: usize,
        low: usize,
    },
    Failed,
}

impl Local {
    /// Whether a group may go from `self` to `to`: the one place that
    /// says which transitions exist, so a new state cannot be entered
    /// from a place nobody thought of.
    fn may_become(self, to: Local) -> bool {
        use Local::*;
        match (self, to) {
            // Start: resource by resource, left to right (an empty group
            // is held at once).
            (Idle, Acquiring { next: 0, .. } | Held) => true,
            // The next of the run of addresses in flight, or the first of
            // a new run.
            (Acquiring { next, .. }, Acquiring { next: n, upto }) => n == next + 1 && upto >= n,
            (Acquiring { .. }, Held) => true,
            // A start failed: undo from the last of its run down (their
            // results come after this one), the failed one included.
            (Acquiring { upto, .. }, Releasing { next: n, low }) => n == upto && low <= n,
            // Stop: right to left (an empty group is released at once).
            (Held, HandingOff { .. } | Releasing { .. } | Idle | Failed) => true,
            (HandingOff { .. }, Held | Releasing { .. } | Idle | Failed) => true,
            // The next stop, or the same one again after a failed stop
            // (its retry ends the run in flight).
            (Releasing { next, .. }, Releasing { next: n, low }) => {
                (n + 1 == next || n == next) && low <= n
            }
            (Releasing { next: 0, .. }, Idle | Failed) => true,
            // An operator's takeover clears a failure.
            (Failed, Idle) => true,
            _ => false,
        }
    }

    /// Whether the move may happen in maintenance mode: an acquire or a
    /// release under way may finish, none may start.
    fn may_become_in_maintenance(self, to: Local) -> bool {
        use Local::*;
        match self {
            Acquiring { .. } | Releasing { .. } => true,
            HandingOff { .. } => to == Held,
            Idle | Held | Failed => false,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Local::Idle => "idle",
            Local::Acquiring { .. } => "acquiring",
            Local::Held => "held",
            Local::HandingOff { .. } => "handing-off",
            Local::Releasing { .. } => "releasing",
            Local::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerState {
    /// Not heard since we started.
    Unknown,
    Up,
    Dead,
}

#[derive(Debug)]
struct Peer {
    name: String,
    state: PeerState,
    /// `st=active`: its cluster communication is up.
    active: bool,
    /// The seq of the status `active` was taken from (this generation).
    status_seq: u64,
    last_heard: Option<Time>,
    last_status: Option<Time>,
    /// The sender's own deadtime (`dt`), by which we judge it.
    dead_after: Duration,
    seq: SeqTracker,
    ack_trigger: u64,
    /// Missing seqs and when to (re)request them.
    rexmit: BTreeMap<u64, (Time, u32)>,
    links: BTreeMap<LinkId, (Time, bool)>,
    advert: Advert,
    /// The raw fields `advert` was read from by the last status
    /// ([`Advert::raw_fields`]); empty when `advert` came from elsewhere.
    advert_raw: Vec<u8>,
    /// Last time we resent each seq to this peer.
    resent: BTreeMap<u64, Time>,
    /// Nonces of our recent liveness probes to this peer, and when the
    /// next probe is due while its beats are late.
    probes: VecDeque<u64>,
    next_probe: Option<Time>,
    /// When it last probed us.
    probed_at: Option<Time>,
    /// The generation that said `shutdone`: its late beats do not revive it.
    gone: Option<u64>,
    /// A heartbeat peer's holdings are unknown until its first `resource`
    /// report; until then it may hold anything (heartbeat's has_resources).
    reported: bool,
    /// When it last became active, to bound that wait.
    active_since: Option<Time>,
    /// A heartbeat peer's last `isstable`: it ignores ask_resources while
    /// it is "in flux", so we ask only once it is stable.
    hb_stable: bool,
    /// Since when we have heard it without a break.
    up_since: Option<Time>,
    /// When it is certain to have released everything after it went
    /// silent (quorum on).
    released_by: Option<Time>,
}

impl Peer {
    fn live(&self) -> bool {
        self.state == PeerState::Up
    }
}

pub struct Engine {
    me: NodeId,
    nodes: Vec<String>,
    timings: Timings,
    failback: AutoFailback,
    groups: Vec<GroupDef>,
    params: Params,
    rng: u64,
    started: Time,
    now: Time,
    seq: u64,
    history: VecDeque<(u64, std::sync::Arc<Message>)>,
    peers: Vec<Peer>,
    next_beat: Time,
    /// Reused by `on_status` for a peer's raw advert fields.
    raw_scratch: Vec<u8>,
    first_status_sent: bool,
    reconciled: bool,
    cleanup: BTreeSet<(GroupId, usize)>,
    comm_up: bool,
    leaving: bool,
    stopped: bool,
    local: Vec<Local>,
    standby: BTreeSet<GroupId>,
    failed: BTreeSet<GroupId>,
    /// Failed stops retried so far, per resource.
    stop_tries: BTreeMap<(GroupId, usize), u32>,
    /// VIPs being re-added after they vanished while held.
    repairing: BTreeSet<(GroupId, usize)>,
    /// Groups whose split brain we already announced as keeper.
    conflict_announced: BTreeSet<GroupId>,
    /// Groups already reported as failed everywhere.
    group_failed_reported: BTreeSet<GroupId>,
    /// Legacy mode: groups we sent an `ip-request` for.
    ip_requested: BTreeSet<GroupId>,
    /// Legacy mode: groups a heartbeat peer asked us to release.
    ip_request_from: BTreeMap<GroupId, NodeId>,
    /// Last holder seen for each group, to tell a failover from a start.
    last_holder: Vec<Option<NodeId>>,
    advertised: Option<Advert>,
    hb_ask: Option<HbAsk>,
    /// No new ask before this (after one timed out).
    hb_ask_holdoff: Time,
    /// A heartbeat peer that asked us to take its groups; it gets our
    /// `ask_resources info=done` once we hold them.
    /// The groups, and whether its own `info=done` (its release is over)
    /// has come: ours must follow it, never precede it.
    hb_asker: Option<(NodeId, BTreeSet<GroupId>, bool)>,
    /// Send our `resource` report after this step (a heartbeat peer needs it).
    hb_report_due: bool,
    /// Ping targets (name, last reply) and how long a silent one lives.
    ping: Vec<(String, Option<Time>)>,
    ping_up: Vec<bool>,
    deadping: Duration,
    quorum: Quorum,
    fencing: Fencing,
    /// Whether we had quorum at the last step, once comm is up.
    had_quorum: Option<bool>,
    /// The voters in view at the last step, and since when (quorum on).
    view: (Vec<NodeId>, Time),
    /// What we advertise as our release bound, and assume for a peer
    /// that advertises none (heartbeat).
    release_bound: Duration,
    counters: Counters,
    /// Bumped whenever anything a status reader sees may have changed.
    changes: u64,
    /// `hr_cfg`: the configuration digest carried by our status messages
    /// (set by the runtime; the comparison is not the engine's business).
    config_digest: Option<String>,
    /// Cluster-wide maintenance mode: nothing is acquired or released.
    maintenance: Maintenance,
    /// Set while adopting at start in maintenance (the one move out of
    /// idle maintenance allows).
    adopting: bool,
    /// Resources of groups found only partly up at a start in maintenance:
    /// left alone, removed once maintenance ends (unless held by then).
    deferred: BTreeSet<(GroupId, usize)>,
    /// The runtime reads peers' messages at its own wake-ups only
    /// ([`Engine::quiet`]): lateness is then judged at our own beats.
    reads_deferred: bool,
    /// The last event or sign of loss (see [`Engine::quiet`]).
    disturbed_at: Option<Time>,
    out: Vec<Output>,
}

impl Engine {
    /// Builds an engine for `cfg.local_node`. The config is already
    /// validated, so every name resolves.
    pub fn new(cfg: &Config, params: Params, now: Time) -> Engine {
        let nodes = cfg.ha.nodes.clone();
        let me = nodes
            .iter()
            .position(|n| *n == cfg.local_node)
            .expect("config validation ensures the local node is listed");
        let groups = cfg
            .groups
            .iter()
            .map(|g| GroupDef {
                key: g.key.clone(),
                preferred: nodes.iter().position(|n| *n == g.node).unwrap_or(0),
                len: g.resources.len(),
                vips: g
                    .resources
                    .iter()
                    .map(|r| matches!(r, Resource::Vip(_)))
                    .collect(),
                vip_only: g.resources.iter().all(|r| matches!(r, Resource::Vip(_))),
            })
            .collect::<Vec<_>>();
        let ping: Vec<(String, Option<Time>)> = cfg
            .ha
            .ping_nodes
            .iter()
            .map(|a| a.to_string())
            .chain(cfg.ha.ping_groups.iter().map(|g| g.name.clone()))
            .map(|n| (n, None))
            .collect();
        let mut rng = params.seed ^ 0x9e37_79b9_7f4a_7c15;
        let peers = nodes
            .iter()
            .map(|name| Peer {
                name: name.clone(),
                state: PeerState::Unknown,
                active: false,
                status_seq: 0,
                last_heard: None,
                last_status: None,
                dead_after: cfg.ha.timings.deadtime,
                seq: SeqTracker::new(),
                // heartbeat picks rand()%10 per node (config.c add_node).
                ack_trigger: next_rand(&mut rng) % 10,
                rexmit: BTreeMap::new(),
                links: BTreeMap::new(),
                advert: Advert::default(),
                advert_raw: Vec::new(),
                resent: BTreeMap::new(),
                probes: VecDeque::new(),
                next_probe: None,
                probed_at: None,
                gone: None,
                reported: false,
                active_since: None,
                hb_stable: false,
                up_since: None,
                released_by: None,
            })
            .collect();
        Engine {
            me,
            timings: cfg.ha.timings,
            failback: cfg.ha.auto_failback,
            local: vec![Local::Idle; groups.len()],
            last_holder: vec![None; groups.len()],
            groups,
            nodes,
            params,
            rng,
            started: now,
            now,
            seq: 0,
            history: VecDeque::new(),
            peers,
            next_beat: now,
            raw_scratch: Vec::new(),
            first_status_sent: false,
            config_digest: None,
            reconciled: false,
            cleanup: BTreeSet::new(),
            comm_up: false,
            leaving: false,
            stopped: false,
            standby: BTreeSet::new(),
            failed: BTreeSet::new(),
            repairing: BTreeSet::new(),
            stop_tries: BTreeMap::new(),
            conflict_announced: BTreeSet::new(),
            group_failed_reported: BTreeSet::new(),
            ip_requested: BTreeSet::new(),
            ip_request_from: BTreeMap::new(),
            advertised: None,
            hb_ask: None,
            hb_ask_holdoff: now,
            hb_asker: None,
            hb_report_due: false,
            ping_up: vec![false; ping.len()],
            ping,
            deadping: cfg.ha.effective_deadping(),
            quorum: Quorum::new(cfg),
            fencing: Fencing::new(cfg),
            had_quorum: None,
            view: (Vec::new(), now),
            release_bound: release_bound(cfg.ha.timings.keepalive, cfg.ha.timings.deadtime),
            counters: Counters::default(),
            changes: 0,
            maintenance: Maintenance::default(),
            adopting: false,
            deferred: BTreeSet::new(),
            reads_deferred: false,
            disturbed_at: None,
            out: Vec::new(),
        }
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, now: Time, input: Input) -> Vec<Output> {
        if self.stopped {
            return Vec::new();
        }
        self.now = self.now.max(now);
        match input {
            Input::Reconciled { present } => self.on_reconciled(present),
            Input::Packet { link, msg } => self.on_packet(now, link, msg),
            // The runtime logs the details; here it is only counted.
            Input::BadPacket { .. } => self.counters.bad_packets += 1,
            Input::Tick => {}
            Input::ResourceDone {
                group,
                resource,
                op,
                result,
            } => self.on_resource_done(now, group, resource, op, result),
            Input::ResourceLost {
                group,
                resource,
                reason,
            } => self.on_resource_lost(group, resource, reason),
            Input::Admin { id, request } => self.on_admin(id, request),
            Input::PingReply { target } => {
                if let Some(t) = self.ping.get_mut(target) {
                    t.1 = Some(now);
                }
            }
            Input::FenceDone { node, result } => self.on_fence_done(node, result),
            Input::Shutdown => {
                if !self.leaving {
                    self.leaving = true;
                    // In maintenance we keep everything and just go
                    // silent: no "I am releasing" to heartbeat peers.
                    if !self.maintenance.on {
                        self.send_resource(Some("shutdown"));
                    }
                }
            }
        }
        self.timers(now);
        self.track_quorum();
        self.fence_step();
        self.decide(now);
        self.hb_progress(now);
        self.advertise_if_changed();
        self.maybe_finish_shutdown();
        std::mem::take(&mut self.out)
    }

    /// When `handle(now, Input::Tick)` must next be called.
    pub fn next_deadline(&self) -> Option<Time> {
        if self.stopped {
            return None;
        }
        let mut d = self.next_beat;
        let initdead = self.started + self.timings.initdead;
        for (i, p) in self.peers.iter().enumerate() {
            if i == self.me {
                continue;
            }
            match p.state {
                PeerState::Unknown => d = d.min(initdead),
                PeerState::Up => {
                    if let Some(h) = p.last_heard {
                        d = d.min(h + p.dead_after);
                    }
                    for (t, up) in p.links.values() {
                        if *up {
                            d = d.min(*t + self.timings.deadtime);
                        }
                    }
                    for (t, _) in p.rexmit.values() {
                        d = d.min(*t);
                    }
                    // Deferred reads: a beat may already wait unread, so
                    // lateness is judged when we wake anyway, at our own
                    // next beat; a late peer ends the quiet (see `quiet`).
                    if let Some(t) = self.probe_due(i)
                        && !self.reads_deferred
                    {
                        d = d.min(t);
                    }
                }
                PeerState::Dead => {}
            }
        }
        Some(self.other_deadlines().map_or(d, |o| d.min(o)))
    }

    /// The deadlines other than our beat and our peers' liveness: what a
    /// lease ([`Engine::lease`]) must be back for.
    fn other_deadlines(&self) -> Option<Time> {
        let mut d = Time::MAX;
        for l in &self.local {
            if let Local::HandingOff { since } = l {
                d = d.min(*since + self.timings.deadtime);
            }
        }
        for (i, (_, t)) in self.ping.iter().enumerate() {
            if self.ping_up[i]
                && let Some(t) = t
            {
                d = d.min(*t + self.deadping);
            }
        }
        if self.quorum.enabled && self.view_settles() > self.now {
            d = d.min(self.view_settles());
        }
        for (i, p) in self.peers.iter().enumerate() {
            if let Some(t) = p.released_by
                && t > self.now
            {
                d = d.min(t);
            }
            if let Some(t) = self.outvote_due(i)
                && t > self.now
            {
                d = d.min(t);
            }
        }
        if let Some(t) = self.fencing.next_deadline(self.now) {
            d = d.min(t);
        }
        if let Some(ask) = &self.hb_ask
            && !ask.granted
        {
            d = d.min(ask.since + STANDBY_REPLY);
        }
        if self.hb_ask.is_none() && self.hb_ask_holdoff > self.now {
            d = d.min(self.hb_ask_holdoff);
        }
        (d < Time::MAX).then_some(d)
    }

    pub fn view(&self, now: Time) -> View {
        let nodes = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| NodeView {
                name: p.name.clone(),
                status: if i == self.me {
                    "local"
                } else {
                    match p.state {
                        PeerState::Unknown => "unknown",
                        PeerState::Dead
                            if matches!(
                                self.fence_state(i),
                                Some(s) if s != "fenced"
                            ) =>
                        {
                            "fencing"
                        }
                        PeerState::Dead => "dead",
                        PeerState::Up if p.active => "active",
                        PeerState::Up => "up",
                    }
                },
                last_heard_ms_ago: p
                    .last_heard
                    .map(|t| now.saturating_sub(t).as_millis() as u64),
                links: p.links.iter().map(|(l, (_, up))| (*l, *up)).collect(),
                fence: self.fence_state(i),
            })
            .collect();
        let groups = (0..self.groups.len())
            .map(|g| GroupView {
                key: self.groups[g].key.clone(),
                preferred: self.nodes[self.groups[g].preferred].clone(),
                holder: self.holder(g).map(|n| self.nodes[n].clone()),
                local_state: self.local[g].name(),
            })
            .collect();
        View {
            node: self.nodes[self.me].clone(),
            state: self.state_name(),
            nodes,
            groups,
            counters: self.counters,
            quorum: self.quorum.enabled.then(|| self.has_quorum()),
            witness: self.quorum.is_witness(self.me),
            release_bound_ms: self.release_bound.as_millis() as u64,
            maintenance: self.maintenance.on,
            maintenance_pending: self.maintenance_pending(),
        }
    }

    /// Live peers whose adverts do not carry our maintenance mode.
    fn maintenance_pending(&self) -> Vec<String> {
        (0..self.nodes.len())
            .filter(|&n| n != self.me && self.peers[n].live())
            .filter(|&n| {
                self.peers[n].advert.maintenance.as_ref().map(|m| m.on) != Some(self.maintenance.on)
                    && (self.maintenance.on || self.peers[n].advert.maintenance.is_some())
            })
            .map(|n| self.nodes[n].clone())
            .collect()
    }

    /// Restores the maintenance mode persisted by the previous daemon;
    /// call before the first `handle`.
    pub fn set_maintenance(&mut self, m: Maintenance) {
        self.maintenance = m;
    }

    /// The maintenance mode as this node knows it, to persist.
    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    /// Takes `m` if it is newer than what we know (an operator's request
    /// here, or a peer's advert).
    fn apply_maintenance(&mut self, m: Maintenance) {
        if !m.newer_than(&self.maintenance) {
            return;
        }
        let was = self.maintenance.on;
        self.maintenance = m;
        self.changes += 1;
        if was == self.maintenance.on {
            return;
        }
        let by = self.maintenance.by.clone();
        if self.maintenance.on {
            self.event(Event::MaintenanceOn { by });
        } else {
            self.event(Event::MaintenanceOff { by });
            // What a start in maintenance left alone is cleaned up now,
            // as at any start, before anything is acquired.
            for (g, r) in std::mem::take(&mut self.deferred) {
                if self.local[g] == Local::Idle && self.cleanup.insert((g, r)) {
                    self.out.push(Output::Stop {
                        group: g,
                        resource: r,
                    });
                }
            }
            if !self.cleanup.is_empty() {
                self.reconciled = false;
            }
        }
    }

    /// Overrides the release bound this node advertises (by default
    /// [`release_bound`] of its timings).
    pub fn set_release_bound(&mut self, d: Duration) {
        self.release_bound = d;
    }

    /// Whether this node has quorum (always with quorum off).
    pub fn quorate(&self) -> bool {
        self.has_quorum()
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Applies new timings from a reload; they govern the next beat and
    /// every deadline from now on.
    pub fn set_timings(&mut self, t: Timings) {
        self.timings = t;
        // The service watchdog set at start stays until a restart: the
        // bound may grow with the deadtime, never shrink.
        self.release_bound = self
            .release_bound
            .max(release_bound(t.keepalive, t.deadtime));
        self.next_beat = self.next_beat.min(self.now + t.keepalive);
    }

    /// The configuration digest our status messages carry from now on.
    pub fn set_config_digest(&mut self, digest: String) {
        self.config_digest = Some(digest);
    }

    /// A number that changes whenever the [`View`] may have changed other
    /// than in its counters, so readers can skip rebuilding it.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Whether the graceful stop is complete.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn node_name(&self) -> &str {
        &self.nodes[self.me]
    }

    /// Groups this node holds (fully acquired), for tests and status.
    pub fn held(&self) -> Vec<GroupId> {
        (0..self.groups.len())
            .filter(|&g| self.local[g] == Local::Held)
            .collect()
    }

    /// Whether this node hears peer `n` (node index).
    pub fn sees(&self, n: NodeId) -> bool {
        n != self.me && self.peers[n].live()
    }

    /// This node's state for group `g`, as in [`GroupView::local_state`].
    pub fn local_state(&self, g: GroupId) -> &'static str {
        self.local[g].name()
    }

    /// Groups whose resources may be up here (anything but idle/failed).
    pub fn busy_or_held(&self) -> Vec<GroupId> {
        (0..self.groups.len())
            .filter(|&g| !matches!(self.local[g], Local::Idle | Local::Failed))
            .collect()
    }

    /// Whether nothing is under way that a peer's next message would move
    /// along: every group settled, every peer known and on time, nothing
    /// asked, retransmitted, probed, fenced or settling. Only then may the
    /// runtime read peers' messages at its own wake-ups rather than at once
    /// ([`set_reads_deferred`](Self::set_reads_deferred)), which delays a
    /// message by at most a keepalive and halves an idle node's wake-ups.
    pub fn quiet(&self) -> bool {
        let late = self.late_after();
        let peers_on_time = self.peers.iter().enumerate().all(|(i, p)| {
            i == self.me
                || match p.state {
                    PeerState::Unknown => false,
                    PeerState::Dead => true,
                    PeerState::Up => {
                        p.rexmit.is_empty()
                            && p.next_probe.is_none()
                            && p.last_heard.is_some_and(|h| h + late > self.now)
                    }
                }
        });
        let calm = self
            .disturbed_at
            .is_none_or(|t| t + QUIET_HOLDOFF.max(self.timings.deadtime * 10) <= self.now);
        calm && self.is_stable()
            && !self.leaving
            && !self.stopped
            && peers_on_time
            && self.hb_ask.is_none()
            && self.hb_asker.is_none()
            && !self.hb_report_due
            && self.ip_requested.is_empty()
            && self.ip_request_from.is_empty()
            && self.repairing.is_empty()
            && !self.fencing.blocks()
            && !(self.quorum.enabled && self.view_settles() > self.now)
    }

    /// Something happened, or a message went missing: no quiet reads for
    /// a while, so a lossy link keeps probes answered at once.
    fn disturbed(&mut self) {
        self.disturbed_at = Some(self.now);
    }

    /// Set by the runtime while it reads peers' messages only when it
    /// wakes for something else: liveness probes then wait for our own
    /// next beat instead of waking us between beats.
    pub fn set_reads_deferred(&mut self, on: bool) {
        self.reads_deferred = on;
    }

    /// Whether every group is idle, held or failed and comm is up.
    pub fn is_stable(&self) -> bool {
        self.comm_up
            && self
                .local
                .iter()
                .all(|l| matches!(l, Local::Idle | Local::Held | Local::Failed))
    }

    pub fn is_comm_up(&self) -> bool {
        self.comm_up
    }

    fn state_name(&self) -> &'static str {
        if self.stopped {
            "stopped"
        } else if self.leaving {
            "leaving"
        } else if !self.comm_up {
            "starting"
        } else if self.local.contains(&Local::Held) {
            "active"
        } else {
            "standby"
        }
    }

    /// The group's holder in this node's view.
    fn holder(&self, g: GroupId) -> Option<NodeId> {
        if matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            return Some(self.me);
        }
        (0..self.nodes.len()).find(|&n| {
            n != self.me && self.peers[n].live() && self.peers[n].advert.held.contains(&g)
        })
    }

    /// Moves group `g` to `to`. Every write of a group's local state goes
    /// through here; an impossible source state is a bug in the engine,
    /// and going on from it could hold a group twice, so it panics (the
    /// daemon restarts and reconciles).
    fn transition(&mut self, g: GroupId, to: Local) {
        let from = self.local[g];
        assert!(
            from.may_become(to),
            "group {}: no transition from {from:?} to {to:?}",
            self.groups[g].key
        );
        // Maintenance is gated here too, so no path can move a group
        // while it is on.
        assert!(
            !self.maintenance.on || self.adopting || from.may_become_in_maintenance(to),
            "group {}: {from:?} to {to:?} during maintenance",
            self.groups[g].key
        );
        self.local[g] = to;
    }

    fn event(&mut self, e: Event) {
        // A late beat came after all: a stall, not a change. `quiet` keeps
        // a peer that is still late from being read quietly.
        if !matches!(e, Event::LateHeartbeat { .. }) {
            self.disturbed();
        }
        self.changes += 1;
        self.out.push(Output::Event(e));
    }

    // ---------------------------------------------------------------
    // Start-up and membership
    // ---------------------------------------------------------------

    fn on_reconciled(&mut self, present: Vec<(GroupId, usize)>) {
        if self.reconciled || !self.cleanup.is_empty() {
            return;
        }
        if self.maintenance.on {
            return self.adopt(present);
        }
        // Nothing is held at start: leftovers from a crash are removed
        // before we may acquire anything (DESIGN.md "Reconcile").
        for (g, r) in present {
            if g < self.groups.len() && r < self.groups[g].len && self.cleanup.insert((g, r)) {
                self.out.push(Output::Stop {
                    group: g,
                    resource: r,
                });
            }
        }
        if self.cleanup.is_empty() {
            self.reconciled = true;
        }
    }

    /// A start in maintenance: a group whose resources are all up is held
    /// as it is; a partly-up group is left alone until maintenance ends.
    fn adopt(&mut self, present: Vec<(GroupId, usize)>) {
        let present: BTreeSet<(GroupId, usize)> = present.into_iter().collect();
        for g in 0..self.groups.len() {
            let up: Vec<usize> = (0..self.groups[g].len)
                .filter(|&r| present.contains(&(g, r)))
                .collect();
            if up.is_empty() {
                continue;
            }
            if up.len() == self.groups[g].len {
                self.adopting = true;
                self.transition(g, Local::Held);
                self.adopting = false;
                let group = self.groups[g].key.clone();
                self.event(Event::Adopted { group });
            } else {
                self.deferred.extend(up.into_iter().map(|r| (g, r)));
            }
        }
        self.reconciled = true;
    }
}

fn next_rand(s: &mut u64) -> u64 {
    // splitmix64: tiny, and enough for jitter.
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::Local::*;
    use std::time::Duration;

    #[test]
    fn groups_start_left_to_right_and_stop_right_to_left_only() {
        let acq = |next, upto| Acquiring { next, upto };
        let rel = |next, low| Releasing { next, low };
        assert!(Idle.may_become(acq(0, 0)));
        assert!(Idle.may_become(acq(0, 3)), "a run of addresses at once");
        assert!(!Idle.may_become(acq(1, 1)));
        assert!(acq(0, 0).may_become(acq(1, 1)));
        assert!(acq(0, 2).may_become(acq(1, 2)), "the next of the run");
        assert!(!acq(1, 1).may_become(acq(0, 0)));
        assert!(!acq(0, 0).may_become(acq(2, 2)), "no resource is skipped");
        assert!(acq(1, 3).may_become(rel(3, 0)), "a failure undoes its run");
        assert!(
            !acq(1, 3).may_become(rel(1, 0)),
            "not before its run's results"
        );
        assert!(rel(2, 2).may_become(rel(1, 1)));
        assert!(rel(2, 0).may_become(rel(1, 0)), "the next of the run");
        assert!(rel(2, 0).may_become(rel(2, 2)), "a retried stop");
        assert!(!rel(1, 1).may_become(rel(2, 2)));
        assert!(!rel(1, 1).may_become(Idle));
        assert!(rel(0, 0).may_become(Idle));
    }

    #[test]
    fn nothing_is_held_without_being_acquired_nor_dropped_without_a_stop() {
        let all = [
            Idle,
            Acquiring { next: 0, upto: 0 },
            Held,
            HandingOff {
                since: Duration::ZERO,
            },
            Releasing { next: 0, low: 0 },
            Failed,
        ];
        for from in all {
            assert_eq!(
                from.may_become(Held),
                matches!(from, Idle | Acquiring { .. } | HandingOff { .. }),
                "{from:?} -> Held"
            );
        }
        assert!(!Failed.may_become(Acquiring { next: 0, upto: 0 }));
        assert!(!Acquiring { next: 0, upto: 0 }.may_become(Idle));
        assert!(!Idle.may_become(Releasing { next: 0, low: 0 }));
    }
}
