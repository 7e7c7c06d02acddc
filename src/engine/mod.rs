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
//! Layout: construction and the public API; membership (`timers`,
//! `on_packet`, `heard`); sending; decisions (`desired`, `decide`,
//! `give_up`); heartbeat peers (`hb_*`); resource results; operator
//! requests; the graceful stop.

mod proto;
mod types;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

pub use types::*;

use crate::config::{AutoFailback, Config, Resource, Timings};
use crate::wire::Message;
use crate::wire::replay::{SeqTracker, Verdict};
use proto::Advert;

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
    /// Resources `0..next` are up; waiting for `next`'s start.
    Acquiring {
        next: usize,
    },
    Held,
    /// Still up, no longer claimed: waiting for the new holder to hold it
    /// before releasing, so clients never see the address missing.
    HandingOff {
        since: Time,
    },
    /// Resources `0..=next` may be up; waiting for `next`'s stop.
    Releasing {
        next: usize,
    },
    Failed,
}

impl Local {
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
    /// Last time we resent each seq to this peer.
    resent: BTreeMap<u64, Time>,
    /// Nonces of our recent liveness probes to this peer, and when the
    /// next probe is due while its beats are late.
    probes: VecDeque<u64>,
    next_probe: Option<Time>,
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
    history: VecDeque<(u64, Message)>,
    peers: Vec<Peer>,
    next_beat: Time,
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
    counters: Counters,
    /// Bumped whenever anything a status reader sees may have changed.
    changes: u64,
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
                last_heard: None,
                last_status: None,
                dead_after: cfg.ha.timings.deadtime,
                seq: SeqTracker::new(),
                // heartbeat picks rand()%10 per node (config.c add_node).
                ack_trigger: next_rand(&mut rng) % 10,
                rexmit: BTreeMap::new(),
                links: BTreeMap::new(),
                advert: Advert::default(),
                resent: BTreeMap::new(),
                probes: VecDeque::new(),
                next_probe: None,
                gone: None,
                reported: false,
                active_since: None,
                hb_stable: false,
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
            first_status_sent: false,
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
            counters: Counters::default(),
            changes: 0,
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
            Input::Shutdown => {
                if !self.leaving {
                    self.leaving = true;
                    self.send_resource(Some("shutdown"));
                }
            }
        }
        self.timers(now);
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
                    if let Some(t) = self.probe_due(i) {
                        d = d.min(t);
                    }
                }
                PeerState::Dead => {}
            }
        }
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
        if let Some(ask) = &self.hb_ask
            && !ask.granted
        {
            d = d.min(ask.since + STANDBY_REPLY);
        }
        if self.hb_ask.is_none() && self.hb_ask_holdoff > self.now {
            d = d.min(self.hb_ask_holdoff);
        }
        Some(d)
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
                        PeerState::Dead => "dead",
                        PeerState::Up if p.active => "active",
                        PeerState::Up => "up",
                    }
                },
                last_heard_ms_ago: p
                    .last_heard
                    .map(|t| now.saturating_sub(t).as_millis() as u64),
                links: p.links.iter().map(|(l, (_, up))| (*l, *up)).collect(),
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
        }
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// Applies new timings from a reload; they govern the next beat and
    /// every deadline from now on.
    pub fn set_timings(&mut self, t: Timings) {
        self.timings = t;
        self.next_beat = self.next_beat.min(self.now + t.keepalive);
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

    /// Groups whose resources may be up here (anything but idle/failed).
    pub fn busy_or_held(&self) -> Vec<GroupId> {
        (0..self.groups.len())
            .filter(|&g| !matches!(self.local[g], Local::Idle | Local::Failed))
            .collect()
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

    fn event(&mut self, e: Event) {
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

    fn timers(&mut self, now: Time) {
        // Peer deadlines first, so a beat we send reflects them.
        for n in 0..self.peers.len() {
            if n == self.me {
                continue;
            }
            match self.peers[n].state {
                PeerState::Unknown if now >= self.started + self.timings.initdead => {
                    self.peers[n].state = PeerState::Dead;
                    let node = self.nodes[n].clone();
                    self.event(Event::PeerDead {
                        node,
                        graceful: false,
                    });
                }
                PeerState::Up => {
                    let p = &self.peers[n];
                    if p.last_heard.is_some_and(|h| now >= h + p.dead_after) {
                        self.mark_dead(n, false);
                        continue;
                    }
                    let dead = self.timings.deadtime;
                    let mut down = Vec::new();
                    for (l, (t, up)) in self.peers[n].links.iter_mut() {
                        if *up && now >= *t + dead {
                            *up = false;
                            down.push(*l);
                        }
                    }
                    for link in down {
                        let node = self.nodes[n].clone();
                        self.event(Event::LinkDown { node, link });
                    }
                    self.request_retransmits(now, n);
                    self.probe_if_late(now, n);
                }
                _ => {}
            }
        }
        for i in 0..self.ping.len() {
            let up = self.ping[i].1.is_some_and(|t| now < t + self.deadping);
            if up != self.ping_up[i] {
                self.ping_up[i] = up;
                let target = self.ping[i].0.clone();
                self.event(if up {
                    Event::PingUp { target }
                } else {
                    Event::PingDown { target }
                });
            }
        }
        self.check_comm_up();
        if now >= self.next_beat {
            self.send_status();
            self.next_beat = (self.next_beat + self.timings.keepalive).max(now);
            if self.next_beat == now {
                self.next_beat = now + self.timings.keepalive;
            }
        }
    }

    fn mark_dead(&mut self, n: NodeId, graceful: bool) {
        let p = &mut self.peers[n];
        p.state = PeerState::Dead;
        p.active = false;
        p.rexmit.clear();
        for (_, up) in p.links.values_mut() {
            *up = false;
        }
        p.advert = Advert::default();
        p.reported = false;
        p.hb_stable = false;
        p.active_since = None;
        let node = self.nodes[n].clone();
        self.event(Event::PeerDead { node, graceful });
        // heartbeat: standby does not survive the peer's death (mach_down
        // takes the groups back regardless).
        self.standby.clear();
    }

    fn check_comm_up(&mut self) {
        if self.comm_up || !self.reconciled || self.leaving {
            return;
        }
        let waiting = (0..self.peers.len())
            .any(|n| n != self.me && self.peers[n].state == PeerState::Unknown);
        if waiting {
            return;
        }
        self.comm_up = true;
        self.event(Event::CommUp);
        self.send_status();
        // heartbeat peers only go active after reqnodes/repnodes (§1.7).
        if let Some(peer) = (0..self.peers.len()).find(|&n| n != self.me && self.peers[n].live()) {
            let mut m = Message::new("reqnodes");
            m.add_str("dest", &self.nodes[peer]);
            self.send(m);
        }
        self.send(Message::new("starting"));
    }

    // ---------------------------------------------------------------
    // Packets
    // ---------------------------------------------------------------

    fn on_packet(&mut self, now: Time, link: LinkId, msg: Message) {
        let Some(src) = msg.get_str("src").map(str::to_ascii_lowercase) else {
            return self.drop_packet("no src", None);
        };
        let Some(n) = self.nodes.iter().position(|x| *x == src) else {
            return self.drop_packet("unknown node", Some(src));
        };
        if n == self.me {
            return; // our own message looped back by a shared ucast list
        }
        let kind = msg.kind().unwrap_or("").to_string();
        // Messages for another node still count for sequencing and
        // liveness; only their content is not ours.
        let for_us = msg
            .get_str("dest")
            .is_none_or(|d| d.eq_ignore_ascii_case(&self.nodes[self.me]));
        if kind.starts_with("NS_") {
            if !for_us {
                return;
            }
            // Not sequenced, never retransmitted, never proof of life.
            return self.on_control(now, n, link, &kind, &msg);
        }
        let (Some(hg), Some(seq)) = (msg.get_hex("hg"), msg.get_hex("seq")) else {
            return self.drop_packet("no seq or generation", Some(src));
        };
        if self.peers[n].gone.is_some_and(|g| hg <= g) {
            return; // a stopped node's last words
        }
        if msg.get_hex("ts").unwrap_or(0) == 0 {
            return self.drop_packet("zero timestamp", Some(src));
        }
        let verdict = self.peers[n].seq.observe(hg, seq);
        if self.peers[n].state == PeerState::Dead
            && verdict.accepted()
            && !matches!(verdict, Verdict::Restarted { .. })
        {
            // Back after a partition, same generation: it may have answered
            // for our addresses meanwhile, so neighbours may point at it. (A
            // restarted peer held nothing: no need.)
            for g in 0..self.groups.len() {
                if self.local[g] == Local::Held && self.groups[g].vips.contains(&true) {
                    self.out.push(Output::Announce { group: g });
                }
            }
        }
        let in_order = match verdict {
            Verdict::Replay => {
                self.counters.replays += 1;
                return self.drop_packet("replayed (old generation)", Some(src));
            }
            Verdict::Invalid => return self.drop_packet("bad seq or generation", Some(src)),
            Verdict::Duplicate => {
                // Every message comes once per medium: the first copy is in
                // order, the rest are duplicates, yet each shows that its
                // medium works (heartbeat credits every medium a message
                // arrives on). Not proof of life, since a replay can be.
                if self.peers[n].live() {
                    self.link_heard(now, n, link);
                }
                return;
            }
            Verdict::Unsequenced => return,
            Verdict::Restarted { .. } => {
                self.peers[n].rexmit.clear();
                if self.peers[n].state == PeerState::Up {
                    self.event(Event::PeerRestarted { node: src.clone() });
                }
                // A restarted peer holds nothing until it says so.
                self.peers[n].advert = Advert::default();
                self.peers[n].active = false;
                self.peers[n].reported = false;
                self.peers[n].hb_stable = false;
                self.peers[n].active_since = None;
                true
            }
            Verdict::InOrder => true,
            Verdict::Gap { missing } => {
                // A peer back from the dead (partition heal) says what it
                // holds in its next beat; what it sent meanwhile is moot.
                if self.peers[n].state == PeerState::Dead {
                    for s in missing {
                        self.peers[n].seq.give_up(s);
                    }
                } else {
                    let when = now + self.rexmit_delay();
                    for s in missing {
                        self.peers[n].rexmit.entry(s).or_insert((when, 0));
                    }
                }
                false
            }
            Verdict::Filled => {
                self.peers[n].rexmit.remove(&seq);
                false
            }
            Verdict::Reset { .. } => {
                self.peers[n].rexmit.clear();
                false
            }
        };
        self.maybe_ack(n, seq, in_order);
        self.heard(now, n, link);
        if !for_us {
            return;
        }
        match kind.as_str() {
            "status" => self.on_status(now, n, &msg),
            "resource" => {
                let info = msg.get_str("info").unwrap_or("");
                match Advert::from_message(&msg, &self.groups_keys()) {
                    Some(a) => self.set_advert(n, a),
                    // heartbeat announces a stop or a standby before it
                    // releases: it holds what it held until `shutdone` or
                    // its `ask_resources info=done`.
                    None if info == "shutdown" || info == "standby" => {}
                    None => self.hb_resource(n, &msg),
                }
                if info == "shutdown" {
                    self.peers[n].advert.leaving = true;
                    self.changes += 1;
                }
            }
            "shutdone" => {
                // heartbeat beats on for a moment after shutdone; those
                // beats must not bring the node back (vectors/seed-stop).
                self.peers[n].gone = self.peers[n].seq.generation();
                self.mark_dead(n, true);
            }
            "reqnodes" => {
                let mut m = Message::new("repnodes");
                let list: String = self.nodes.iter().map(|x| format!("{x} ")).collect();
                m.add_str("dest", &src)
                    .add_str("nodelist", &list)
                    .add_str("delnodelist", " ");
                self.send(m);
            }
            "starting" => self.send_resource(None),
            "ask_resources" => self.on_ask_resources(n, &msg),
            "hb_takeover" => {
                let scope = msg
                    .get_str("rsc_hold")
                    .and_then(Scope::parse)
                    .unwrap_or(Scope::All);
                // heartbeat's rc.d/hb_takeover: the peer goes standby for
                // what the requester takes, seen from the requester.
                let gs = self.scope_groups_of(n, scope, true);
                self.standby.extend(gs);
                if !self.peers[n].advert.harust {
                    // It wants them back: it no longer declines them.
                    self.peers[n].advert.standby.clear();
                }
                self.event(Event::TakeoverRequested {
                    scope,
                    by: src.clone(),
                });
            }
            "ip-request" => self.on_ip_request(n, &msg),
            "ip-request-resp" => {
                // Legacy failback: a heartbeat holder let go of the group.
                let g = msg
                    .get_str("ipaddr")
                    .and_then(|k| self.groups.iter().position(|x| x.key == k));
                if let Some(g) = g
                    && !self.peers[n].advert.harust
                    && msg.get_str("weown") == Some("yes")
                {
                    let a = &mut self.peers[n].advert;
                    a.held.remove(&g);
                    a.busy.remove(&g);
                    self.changes += 1;
                }
            }
            _ => {} // repnodes, stonith: informational here
        }
    }

    /// heartbeat's ACK rule (§1.6): ack every tenth seq, never at or past a
    /// missing one, since heartbeat ignores retransmit requests for seqs
    /// already acked. When a gap fills, ack what is now complete.
    fn maybe_ack(&mut self, n: NodeId, seq: u64, in_order: bool) {
        let p = &self.peers[n];
        if p.seq.missing().next().is_some() {
            return;
        }
        let Some(last) = p.seq.last_seq() else {
            return;
        };
        let trigger = p.ack_trigger;
        let ack = if in_order {
            (seq % 10 == trigger).then_some(seq)
        } else {
            // The highest seq ≡ trigger (mod 10) up to `last`, if the gap
            // that just filled reached it.
            // (`last % 10` first: a forged seq near u64::MAX must not overflow.)
            last.checked_sub((last % 10 + 10 - trigger) % 10)
                .filter(|&a| a >= seq)
        };
        if let Some(a) = ack {
            let mut m = Message::new("NS_ackmsg");
            m.add_str("dest", &self.nodes[n].clone())
                .add_hex("ackseq", a);
            self.send(m);
        }
    }

    fn on_control(&mut self, now: Time, n: NodeId, link: LinkId, kind: &str, msg: &Message) {
        match kind {
            PROBE => {
                if let Some(nonce) = msg.get_str("hr_nonce") {
                    let mut m = Message::new(PROBE_ACK);
                    m.add_str("dest", &self.nodes[n].clone())
                        .add_str("hr_nonce", nonce);
                    self.send(m);
                }
            }
            PROBE_ACK => {
                // Proof of life only for a nonce we sent: a replayed ack
                // cannot keep a dead node alive.
                let nonce = msg.get_hex("hr_nonce");
                let p = &mut self.peers[n];
                if let Some(i) = nonce.and_then(|x| p.probes.iter().position(|y| *y == x)) {
                    p.probes.remove(i);
                    if p.state == PeerState::Up {
                        self.heard(now, n, link);
                    }
                }
            }
            "NS_rexmit" => {
                let (Some(first), Some(last)) = (msg.get_dec("firstseq"), msg.get_dec("lastseq"))
                else {
                    return self.drop_packet("bad NS_rexmit", Some(self.nodes[n].clone()));
                };
                // At most 50 per request, as heartbeat.
                for s in first..=last.min(first.saturating_add(49)) {
                    self.resend(now, n, s);
                }
            }
            "NS_nak_rexmit" => {
                if let Some(s) = msg.get_hex("firstseq") {
                    self.peers[n].rexmit.remove(&s);
                    self.peers[n].seq.give_up(s);
                }
            }
            _ => {} // NS_ackmsg: flow control is not needed by harust itself
        }
    }

    fn on_status(&mut self, now: Time, n: NodeId, msg: &Message) {
        self.counters.beats_received += 1;
        let p = &mut self.peers[n];
        if let Some(dt) = msg.get_hex("dt")
            && dt > 0
        {
            // PROTOCOL.md §1.5: judge the sender by its own deadtime.
            p.dead_after = Duration::from_millis(dt);
        }
        if let Some(prev) = p.last_status.replace(now) {
            let interval = now.saturating_sub(prev);
            if interval > self.timings.warntime && p.state == PeerState::Up {
                self.counters.late_beats += 1;
                let node = self.nodes[n].clone();
                self.event(Event::LateHeartbeat { node, interval });
            }
        }
        let p = &mut self.peers[n];
        p.active = msg.get_str("st") == Some("active");
        if p.active && p.active_since.is_none() {
            p.active_since = Some(now);
        }
        if let Some(a) = Advert::from_message(msg, &self.groups_keys()) {
            self.set_advert(n, a);
        }
    }

    fn set_advert(&mut self, n: NodeId, a: Advert) {
        if self.peers[n].advert != a {
            self.changes += 1;
            self.peers[n].advert = a;
        }
    }

    /// Proof of life from a sequenced message.
    fn heard(&mut self, now: Time, n: NodeId, link: LinkId) {
        let was = self.peers[n].state;
        let p = &mut self.peers[n];
        p.last_heard = Some(now);
        p.next_probe = None;
        let newly_up = was != PeerState::Up;
        if newly_up {
            p.state = PeerState::Up;
            p.last_status = None;
        }
        if newly_up {
            let node = self.nodes[n].clone();
            self.event(Event::PeerUp { node });
            // Answer at once so the newcomer need not wait a keepalive.
            if self.first_status_sent {
                self.send_status();
            }
        }
        self.link_heard(now, n, link);
    }

    /// A message from peer `n` arrived over `link`.
    fn link_heard(&mut self, now: Time, n: NodeId, link: LinkId) {
        let e = self.peers[n].links.entry(link).or_insert((now, false));
        e.0 = now;
        if !e.1 {
            e.1 = true;
            let node = self.nodes[n].clone();
            self.event(Event::LinkUp { node, link });
        }
    }

    /// When a harust peer's beats are late, ask it directly, several times
    /// before its deadline: under loss, one answer is enough evidence that
    /// it lives, where a plain miss-three-beats rule would declare it dead.
    /// From 1.2 keepalives on, every keepalive/5: at 10 ms / 30 ms that is
    /// nine round trips before the deadline (`sim`
    /// `no_false_failover_at_fast_timings_under_heavy_loss`).
    fn probe_if_late(&mut self, now: Time, n: NodeId) {
        let Some(due) = self.probe_due(n) else {
            return;
        };
        if now < due {
            return;
        }
        let nonce = next_rand(&mut self.rng);
        let interval = self.probe_interval();
        let p = &mut self.peers[n];
        p.probes.push_back(nonce);
        if p.probes.len() > PROBES_KEPT {
            p.probes.pop_front();
        }
        p.next_probe = Some(now + interval);
        let mut m = Message::new(PROBE);
        m.add_str("dest", &self.nodes[n].clone())
            .add_hex("hr_nonce", nonce);
        self.send(m);
    }

    fn probe_interval(&self) -> Duration {
        (self.timings.keepalive / 5).max(Duration::from_millis(1))
    }

    /// When the next probe to `n` is due, if it is a live harust peer.
    fn probe_due(&self, n: NodeId) -> Option<Time> {
        let p = &self.peers[n];
        if p.state != PeerState::Up || !p.advert.harust {
            return None;
        }
        let heard = p.last_heard?;
        let late = heard + self.timings.keepalive + self.timings.keepalive / 5;
        Some(p.next_probe.unwrap_or(late).max(late))
    }

    fn drop_packet(&mut self, reason: &'static str, node: Option<String>) {
        self.counters.bad_packets += 1;
        self.event(Event::Dropped { reason, node });
    }

    fn rexmit_delay(&mut self) -> Duration {
        // heartbeat waits a random 50..250 ms so that many receivers do not
        // all ask at once (§1.6).
        Duration::from_millis(50 + next_rand(&mut self.rng) % 200)
    }

    fn request_retransmits(&mut self, now: Time, n: NodeId) {
        // The tracker is the truth about what is still missing.
        let p = &mut self.peers[n];
        if !p.rexmit.is_empty() {
            let missing: BTreeSet<u64> = p.seq.missing().collect();
            p.rexmit.retain(|s, _| missing.contains(s));
        }
        let due: Vec<(u64, u32)> = self.peers[n]
            .rexmit
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(s, (_, c))| (*s, *c))
            .collect();
        for (s, count) in due {
            if count >= REXMIT_TRIES {
                // Irretrievably lost, as heartbeat logs it; the next beat
                // carries the state that matters anyway.
                self.peers[n].rexmit.remove(&s);
                self.peers[n].seq.give_up(s);
                continue;
            }
            self.peers[n]
                .rexmit
                .insert(s, (now + REXMIT_REPEAT, count + 1));
            let mut m = Message::new("NS_rexmit");
            m.add_str("dest", &self.nodes[n].clone())
                .add_str("firstseq", &s.to_string())
                .add_str("lastseq", &s.to_string());
            self.counters.retransmits_requested += 1;
            self.send(m);
        }
    }

    fn resend(&mut self, now: Time, n: NodeId, s: u64) {
        if let Some(t) = self.peers[n].resent.get(&s)
            && now < *t + REXMIT_HOLDOFF
        {
            return;
        }
        self.peers[n].resent.insert(s, now);
        if self.peers[n].resent.len() > HISTORY {
            self.peers[n].resent.pop_first();
        }
        match self.history.iter().find(|(q, _)| *q == s) {
            Some((_, m)) => {
                let m = m.clone();
                self.counters.retransmits_sent += 1;
                self.out.push(Output::Send(m));
            }
            None => {
                let mut m = Message::new("NS_nak_rexmit");
                let info = if self.history.front().is_some_and(|(q, _)| s < *q) {
                    "seqno too low"
                } else {
                    "seqno not found"
                };
                m.add_hex("firstseq", s)
                    .add_str("dest", &self.nodes[n].clone())
                    .add_str("info", info);
                self.send(m);
            }
        }
    }

    // ---------------------------------------------------------------
    // Sending
    // ---------------------------------------------------------------

    /// Appends heartbeat's common header (§1.4) and queues the message.
    fn send(&mut self, mut m: Message) {
        let control = m.kind().is_some_and(|k| k.starts_with("NS_"));
        m.add_str("src", &self.nodes[self.me].clone());
        m.add_bin("srcuuid", &self.params.uuid);
        if !control {
            self.seq += 1;
            m.add_hex("seq", self.seq);
        }
        m.add_hex("hg", self.params.generation);
        let ts = self.params.wall_base + self.now.as_secs();
        m.add_hex("ts", ts.max(1));
        m.add_str("ttl", &(1 + self.nodes.len()).to_string());
        if !control {
            self.history.push_back((self.seq, m.clone()));
            if self.history.len() > HISTORY {
                self.history.pop_front();
            }
        }
        self.out.push(Output::Send(m));
    }

    fn send_status(&mut self) {
        let st = if !self.first_status_sent {
            "init"
        } else if self.comm_up && !self.leaving {
            "active"
        } else {
            "up"
        };
        self.first_status_sent = true;
        let mut m = Message::new("status");
        m.add_str("st", st)
            .add_hex("dt", self.timings.deadtime.as_millis() as u64)
            .add_str("protocol", "1");
        self.current_advert().add_to(&mut m, &self.groups_keys());
        self.counters.beats_sent += 1;
        self.send(m);
    }

    fn send_resource(&mut self, info: Option<&str>) {
        let mut m = Message::new("resource");
        // heartbeat opens a stop with "none, not stable" (§1.9); the hr_*
        // fields still say what we hold until we have let go.
        let stopping = info == Some("shutdown");
        m.add_str("rsc_hold", if stopping { "none" } else { self.rsc_hold() })
            .add_str("rtype", "full")
            .add_str(
                "isstable",
                if self.is_stable() && !stopping {
                    "1"
                } else {
                    "0"
                },
            );
        if let Some(i) = info {
            m.add_str("info", i);
        }
        let a = self.current_advert();
        a.add_to(&mut m, &self.groups_keys());
        self.advertised = Some(a);
        self.send(m);
    }

    fn advertise_if_changed(&mut self) {
        if !self.first_status_sent {
            return;
        }
        let a = self.current_advert();
        if self.advertised.as_ref() != Some(&a) || std::mem::take(&mut self.hb_report_due) {
            self.send_resource(None);
        }
    }

    fn current_advert(&self) -> Advert {
        let mut a = Advert {
            harust: true,
            leaving: self.leaving,
            ping: self.ping_score(),
            standby: self.standby.clone(),
            failed: self.failed.clone(),
            ..Advert::default()
        };
        for (g, l) in self.local.iter().enumerate() {
            match l {
                Local::Held => {
                    a.held.insert(g);
                }
                Local::Acquiring { .. } | Local::Releasing { .. } => {
                    a.busy.insert(g);
                }
                _ => {}
            }
        }
        a
    }

    /// heartbeat's `rsc_hold` for what we hold (§1.9). heartbeat speaks of
    /// responsibility for "my groups" and "the peer's groups" even when one
    /// of those sets is empty: an active node with no groups of its own
    /// still says `local`, and a node whose peers are all dead holds `all`.
    fn rsc_hold(&self) -> &'static str {
        let active = self.comm_up && !self.leaving;
        let covers = |mine: bool, vacuous: bool| {
            let mut gs = (0..self.groups.len())
                .filter(|&g| (self.groups[g].preferred == self.me) == mine)
                .peekable();
            if gs.peek().is_none() {
                return vacuous;
            }
            gs.all(|g| self.local[g] == Local::Held)
        };
        let no_peer = (0..self.nodes.len()).all(|n| n == self.me || !self.peers[n].live());
        let local = covers(true, active && self.standby.is_empty());
        let foreign = covers(false, active && no_peer);
        match (local, foreign) {
            (true, true) => "all",
            (true, false) => "local",
            (false, true) => "foreign",
            (false, false) => "none",
        }
    }

    fn groups_keys(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.key.as_str()).collect()
    }

    // ---------------------------------------------------------------
    // Decisions
    // ---------------------------------------------------------------

    /// Whether node `n` may hold group `g`. `strict` honours standby;
    /// `joiners` counts peers that are up but not yet active.
    fn eligible(&self, n: NodeId, g: GroupId, strict: bool, joiners: bool) -> bool {
        if !self.ping_ok(n) {
            return false;
        }
        if n == self.me {
            self.comm_up
                && !self.leaving
                && !self.failed.contains(&g)
                && (!strict || !self.standby.contains(&g))
        } else {
            let p = &self.peers[n];
            p.live()
                && (p.active || joiners)
                && !p.advert.leaving
                && !p.advert.failed.contains(&g)
                && (!strict || !p.advert.standby.contains(&g))
        }
    }

    fn claims(&self, n: NodeId, g: GroupId) -> bool {
        if n == self.me {
            matches!(
                self.local[g],
                Local::Held | Local::Acquiring { .. } | Local::Releasing { .. }
            )
        } else {
            let p = &self.peers[n];
            p.live()
                && (p.advert.held.contains(&g)
                    || p.advert.busy.contains(&g)
                    || self.hb_unreported(n))
        }
    }

    /// How many ping targets we reach, if any are configured.
    fn ping_score(&self) -> Option<u32> {
        (!self.ping.is_empty()).then(|| self.ping_up.iter().filter(|u| **u).count() as u32)
    }

    /// Ping nodes are quorum witnesses (heartbeat's ipfail): a node that
    /// reaches fewer of them than another live node may not hold groups,
    /// and a node that reaches none and sees no peer holds nothing, so on a
    /// split only the side that still reaches them keeps the groups.
    fn ping_ok(&self, n: NodeId) -> bool {
        let Some(mine) = self.ping_score() else {
            return true;
        };
        let score = |x: NodeId| -> u32 {
            if x == self.me {
                mine
            } else {
                // A peer that does not report a score (heartbeat) is not
                // judged by it.
                self.peers[x].advert.ping.unwrap_or(u32::MAX)
            }
        };
        let live: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&x| x == self.me || (self.peers[x].live() && self.peers[x].active))
            .collect();
        let best = live
            .iter()
            .map(|&x| score(x))
            .filter(|&s| s != u32::MAX)
            .max()
            .unwrap_or(0);
        let s = score(n);
        if s == u32::MAX {
            return true;
        }
        if s < best {
            return false;
        }
        s > 0 || live.len() > 1
    }

    /// The ping targets in the order `Input::PingReply` numbers them, each
    /// with the addresses to probe (any one answering is enough).
    pub fn ping_targets(cfg: &Config) -> Vec<Vec<std::net::IpAddr>> {
        cfg.ha
            .ping_nodes
            .iter()
            .map(|a| vec![*a])
            .chain(cfg.ha.ping_groups.iter().map(|g| g.addrs.clone()))
            .collect()
    }

    /// Who should hold group `g`, computed the same way on every node.
    fn desired(&self, g: GroupId) -> Option<NodeId> {
        self.desired_among(g, false)
    }

    /// `desired`, also counting peers still joining. We never acquire a
    /// group that a joining peer may be about to claim.
    fn desired_among(&self, g: GroupId, joiners: bool) -> Option<NodeId> {
        let all: Vec<NodeId> = (0..self.nodes.len()).collect();
        let mut cands: Vec<NodeId> = all
            .iter()
            .copied()
            .filter(|&n| self.eligible(n, g, true, joiners))
            .collect();
        if cands.is_empty() {
            // Standby yields only to a node that can take over.
            cands = all
                .iter()
                .copied()
                .filter(|&n| self.eligible(n, g, false, joiners))
                .collect();
        }
        let pref = self.groups[g].preferred;
        if cands.contains(&pref) && self.failback != AutoFailback::Off {
            return Some(pref);
        }
        // Ring order from the preferred node: deterministic everywhere.
        let len = self.nodes.len();
        let rank = |n: &NodeId| (*n + len - pref) % len;
        if let Some(c) = cands
            .iter()
            .copied()
            .filter(|&n| self.claims(n, g))
            .min_by_key(rank)
        {
            return Some(c);
        }
        cands.iter().copied().min_by_key(rank)
    }

    fn decide(&mut self, now: Time) {
        if !self.reconciled {
            return;
        }
        for g in 0..self.groups.len() {
            let d = self.desired(g);
            if let Some(h) = self.holder(g) {
                self.last_holder[g] = Some(h);
            }
            let other_claims = (0..self.nodes.len()).any(|n| n != self.me && self.claims(n, g));
            match self.local[g] {
                Local::Idle => {
                    let joiners_agree = self.desired_among(g, true) == Some(self.me);
                    if d == Some(self.me) && !other_claims && joiners_agree {
                        self.acquire(g);
                    } else if d == Some(self.me)
                        && self.failback == AutoFailback::Legacy
                        && self.ip_requested.insert(g)
                    {
                        let mut m = Message::new("ip-request");
                        m.add_str("ipaddr", &self.groups[g].key.clone());
                        self.send(m);
                    }
                }
                Local::Held => {
                    if d != Some(self.me) {
                        self.give_up(now, g, d);
                    } else {
                        self.resolve_conflict(g);
                    }
                }
                Local::HandingOff { since } => {
                    if d == Some(self.me) {
                        self.local[g] = Local::Held;
                    } else {
                        let taken = d.is_some_and(|n| {
                            n != self.me
                                && self.peers[n].live()
                                && self.peers[n].advert.held.contains(&g)
                        });
                        if taken || d.is_none() || now >= since + self.timings.deadtime {
                            self.release(g, d);
                        }
                    }
                }
                Local::Acquiring { .. } | Local::Releasing { .. } | Local::Failed => {}
            }
            if d.is_none() && !self.failed.is_empty() && self.any_failed_everywhere(g) {
                if self.group_failed_reported.insert(g) {
                    let group = self.groups[g].key.clone();
                    self.event(Event::GroupFailed { group });
                }
            } else if d.is_some() {
                self.group_failed_reported.remove(&g);
            }
            if self.local[g] == Local::Held {
                // A legacy request is finished once the group is ours.
                self.ip_requested.remove(&g);
            }
        }
    }

    fn any_failed_everywhere(&self, g: GroupId) -> bool {
        // Every live node (us included) has failed the group.
        self.failed.contains(&g)
            && (0..self.nodes.len())
                .filter(|&n| n != self.me && self.peers[n].live())
                .all(|n| self.peers[n].advert.failed.contains(&g))
    }

    // ---------------------------------------------------------------
    // heartbeat peers (PROTOCOL.md §1.9)
    // ---------------------------------------------------------------

    /// A heartbeat peer that is up but has not yet said what it holds: it
    /// may hold anything. Bounded by initdead, for peers that never report
    /// (heartbeat sends `resource` only with nice_failback).
    fn hb_unreported(&self, n: NodeId) -> bool {
        let p = &self.peers[n];
        !p.advert.harust
            && !p.reported
            && p.last_status.is_some()
            && p.active_since
                .is_none_or(|t| self.now < t + self.timings.initdead)
    }

    /// A heartbeat peer's holdings, from its `resource` report. `rsc_hold`
    /// is relative to the sender: `local` are the groups it prefers.
    fn hb_resource(&mut self, n: NodeId, msg: &Message) {
        if !self.peers[n].reported && self.comm_up {
            // Its first report since it came up: heartbeat's starting node
            // goes stable on ours (RSCRCVD -> STABLE), so answer with it.
            self.hb_report_due = true;
        }
        let hold = msg.get_str("rsc_hold").unwrap_or("none");
        let scope = match hold {
            "local" => Some(Scope::Local),
            "foreign" => Some(Scope::Foreign),
            "all" => Some(Scope::All),
            _ => None,
        };
        let mut held: BTreeSet<GroupId> = scope
            .map(|s| self.scope_groups_of(n, s, false).into_iter().collect())
            .unwrap_or_default();
        if msg.get_str("info") == Some("mach_down") {
            // "I took the dead node's groups too", on top of its own.
            held.extend(self.peers[n].advert.held.iter().copied());
        }
        self.peers[n].reported = true;
        self.peers[n].hb_stable = msg.get_str("isstable") == Some("1");
        let a = &mut self.peers[n].advert;
        a.harust = false;
        a.held = held;
        a.busy.clear();
        self.changes += 1;
    }

    fn on_ask_resources(&mut self, n: NodeId, msg: &Message) {
        let scope = msg
            .get_str("rsc_hold")
            .and_then(Scope::parse)
            .unwrap_or(Scope::All);
        match msg.get_str("info") {
            Some("me") => {
                // The peer gives up `scope` (its hb_standby, or its
                // auto_failback giving our groups back).
                let gs: BTreeSet<GroupId> =
                    self.scope_groups_of(n, scope, false).into_iter().collect();
                if !self.peers[n].advert.harust {
                    self.peers[n].advert.standby.extend(gs.iter().copied());
                    self.hb_asker = Some((n, gs, false));
                }
                if self.is_stable() {
                    let mut m = Message::new("ask_resources");
                    m.add_str("rsc_hold", scope.as_str())
                        .add_str("info", "other");
                    self.send(m);
                }
            }
            Some("done") if !self.peers[n].advert.harust => {
                // Its release is complete: what it gave up is free now.
                if let Some((asker, gs, done)) = &mut self.hb_asker
                    && *asker == n
                {
                    *done = true;
                    let gs = gs.clone();
                    self.peers[n].advert.held.retain(|g| !gs.contains(g));
                    self.changes += 1;
                }
            }
            Some("other") => {
                if let Some(ask) = self.hb_ask.as_mut()
                    && ask.peer == n
                {
                    ask.granted = true;
                }
            }
            _ => {}
        }
    }

    /// Legacy failback (`auto_failback legacy`, §1.9): a heartbeat peer
    /// asks for its group back; we let go and say so. harust peers decide
    /// from the adverts instead.
    fn on_ip_request(&mut self, n: NodeId, msg: &Message) {
        let Some(key) = msg.get_str("ipaddr") else {
            return;
        };
        let Some(g) = self.groups.iter().position(|x| x.key == key) else {
            return;
        };
        if self.peers[n].advert.harust {
            return;
        }
        if self.local[g] == Local::Held {
            // It takes the group once we answer: nobody else may meanwhile.
            self.peers[n].advert.busy.insert(g);
            self.ip_request_from.insert(g, n);
            self.release(g, Some(n));
        } else {
            self.ip_request_resp(n, g, false);
        }
    }

    fn ip_request_resp(&mut self, n: NodeId, g: GroupId, weown: bool) {
        let mut m = Message::new("ip-request-resp");
        m.add_str("dest", &self.nodes[n].clone())
            .add_str("ipaddr", &self.groups[g].key.clone())
            .add_str("weown", if weown { "yes" } else { "no" })
            .add_str("ok", "OK");
        self.send(m);
    }

    /// Hands `g` to a heartbeat peer: ask first, release once granted.
    fn hb_give_up(&mut self, now: Time, g: GroupId, peer: NodeId) {
        match &mut self.hb_ask {
            Some(ask) if ask.peer == peer && ask.granted => {
                ask.groups.insert(g);
                self.release(g, Some(peer));
            }
            Some(ask) if ask.peer == peer => {
                ask.groups.insert(g);
            }
            Some(_) => {} // one exchange at a time, as heartbeat
            // heartbeat's PerformAutoFailback also waits for the peer to be
            // stable: an ask before that is ignored as "in flux".
            None if now >= self.hb_ask_holdoff && self.peers[peer].hb_stable => {
                let groups: BTreeSet<GroupId> = [g].into();
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", self.scope_name(&groups))
                    .add_str("info", "me");
                self.send(m);
                self.hb_ask = Some(HbAsk {
                    peer,
                    groups,
                    since: now,
                    granted: false,
                });
            }
            None => {}
        }
    }

    /// heartbeat's name for a set of groups, seen from us.
    fn scope_name(&self, groups: &BTreeSet<GroupId>) -> &'static str {
        let mine = groups
            .iter()
            .filter(|&&g| self.groups[g].preferred == self.me)
            .count();
        if mine == groups.len() {
            "local"
        } else if mine == 0 {
            "foreign"
        } else {
            "all"
        }
    }

    /// Moves the heartbeat exchanges along after each step.
    fn hb_progress(&mut self, now: Time) {
        if let Some(ask) = self.hb_ask.clone() {
            let done = ask
                .groups
                .iter()
                .all(|&g| matches!(self.local[g], Local::Idle | Local::Failed));
            if ask.granted && done {
                self.send_resource(Some("standby"));
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", self.scope_name(&ask.groups))
                    .add_str("info", "done");
                self.send(m);
                self.hb_ask = None;
            } else if !ask.granted && now >= ask.since + STANDBY_REPLY {
                // heartbeat: "No reply to standby request. Standby request
                // cancelled." We keep the groups and may ask again later.
                self.hb_ask = None;
                self.hb_ask_holdoff = now + STANDBY_REPLY;
            } else if !self.peers[ask.peer].live() {
                self.hb_ask = None;
            }
        }
        if let Some((n, gs, peer_done)) = self.hb_asker.clone() {
            let taken = gs
                .iter()
                .all(|&g| matches!(self.local[g], Local::Held | Local::Failed));
            if !self.peers[n].live() {
                self.hb_asker = None;
            } else if peer_done && taken && self.is_stable() {
                // Our last phase: heartbeat leaves its standby state on it.
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", "all").add_str("info", "done");
                self.send(m);
                self.hb_asker = None;
            }
        }
    }

    fn resolve_conflict(&mut self, g: GroupId) {
        let others: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&n| {
                n != self.me && self.peers[n].live() && self.peers[n].advert.held.contains(&g)
            })
            .collect();
        if others.is_empty() {
            self.conflict_announced.remove(&g);
            return;
        }
        // We are the desired holder and so, by the same rule on the other
        // side, the keeper: the others release. Refresh the neighbours'
        // caches at once, since they may point at the loser.
        if self.conflict_announced.insert(g) {
            self.counters.split_brains += 1;
            self.out.push(Output::Announce { group: g });
            let group = self.groups[g].key.clone();
            let keeper = self.nodes[self.me].clone();
            self.event(Event::SplitBrainResolved { group, keeper });
        }
    }

    fn acquire(&mut self, g: GroupId) {
        let group = self.groups[g].key.clone();
        self.event(Event::Acquiring { group });
        if self.groups[g].len == 0 {
            return self.acquired(g);
        }
        self.local[g] = Local::Acquiring { next: 0 };
        self.out.push(Output::Start {
            group: g,
            resource: 0,
        });
    }

    fn acquired(&mut self, g: GroupId) {
        self.local[g] = Local::Held;
        let from = self.last_holder[g].filter(|&n| n != self.me);
        if from.is_some_and(|n| !self.peers[n].live()) {
            self.counters.failovers += 1;
        }
        let group = self.groups[g].key.clone();
        let takeover_from = from.map(|n| self.nodes[n].clone());
        self.event(Event::Acquired {
            group,
            takeover_from,
        });
    }

    fn give_up(&mut self, now: Time, g: GroupId, to: Option<NodeId>) {
        let live_taker = to.is_some_and(|n| n != self.me && self.peers[n].live());
        // Only a harust peer says when it holds a group, which is what
        // make-before-break waits for; heartbeat takes over after we let go.
        let mbb_taker = live_taker && to.is_some_and(|n| self.peers[n].advert.harust);
        let other_holds = (0..self.nodes.len()).any(|n| {
            n != self.me && self.peers[n].live() && self.peers[n].advert.held.contains(&g)
        });
        if other_holds {
            // Split brain heal: the keeper already holds it.
            let group = self.groups[g].key.clone();
            let keeper = to.map(|n| self.nodes[n].clone()).unwrap_or_default();
            self.counters.split_brains += 1;
            self.event(Event::SplitBrainResolved { group, keeper });
            return self.release(g, to);
        }
        if self.leaving && !(self.groups[g].vip_only && mbb_taker) {
            // A stopping node releases in reverse group order; see
            // `maybe_finish_shutdown`.
            return;
        }
        if let Some(peer) = to.filter(|_| live_taker && !mbb_taker) {
            return self.hb_give_up(now, g, peer);
        }
        if self.groups[g].vip_only && mbb_taker {
            // Make before break: keep answering until the taker holds it.
            self.local[g] = Local::HandingOff { since: now };
            let group = self.groups[g].key.clone();
            let to = to.map(|n| self.nodes[n].clone());
            self.event(Event::Releasing { group, to });
        } else {
            self.release(g, to);
        }
    }

    fn release(&mut self, g: GroupId, to: Option<NodeId>) {
        if self.leaving
            && self
                .local
                .iter()
                .any(|l| matches!(l, Local::Releasing { .. }))
        {
            // A stopping node releases one group at a time, last first;
            // the next one starts when this one is done.
            return;
        }
        if !matches!(self.local[g], Local::HandingOff { .. }) {
            let group = self.groups[g].key.clone();
            let to = to.map(|n| self.nodes[n].clone());
            self.event(Event::Releasing { group, to });
        }
        self.conflict_announced.remove(&g);
        if self.groups[g].len == 0 {
            return self.released(g);
        }
        let next = self.groups[g].len - 1;
        self.local[g] = Local::Releasing { next };
        self.out.push(Output::Stop {
            group: g,
            resource: next,
        });
    }

    fn released(&mut self, g: GroupId) {
        self.local[g] = if self.failed.contains(&g) {
            Local::Failed
        } else {
            Local::Idle
        };
        self.repairing.retain(|(x, _)| *x != g);
        let group = self.groups[g].key.clone();
        self.event(Event::Released { group });
        if let Some(n) = self.ip_request_from.remove(&g) {
            self.ip_request_resp(n, g, true);
        }
    }

    fn on_resource_done(
        &mut self,
        _now: Time,
        g: GroupId,
        r: usize,
        op: Op,
        result: Result<(), String>,
    ) {
        if g >= self.groups.len() {
            return;
        }
        if self.cleanup.contains(&(g, r)) {
            if let Err(reason) = result {
                self.resource_failed(g, r, Some(op), reason);
                if self.retry_stop(g, r) {
                    return;
                }
            }
            self.cleanup.remove(&(g, r));
            self.stop_tries.remove(&(g, r));
            if self.cleanup.is_empty() {
                self.reconciled = true;
            }
            return;
        }
        if op == Op::Start && self.repairing.remove(&(g, r)) {
            match result {
                Ok(()) => {
                    let group = self.groups[g].key.clone();
                    self.event(Event::ResourceRepaired { group, resource: r });
                }
                Err(reason) => {
                    self.resource_failed(g, r, Some(op), reason);
                    self.fail_group(g);
                }
            }
            return;
        }
        match (self.local[g], op) {
            (Local::Acquiring { next }, Op::Start) if next == r => match result {
                Ok(()) if r + 1 < self.groups[g].len => {
                    self.local[g] = Local::Acquiring { next: r + 1 };
                    self.out.push(Output::Start {
                        group: g,
                        resource: r + 1,
                    });
                }
                Ok(()) => self.acquired(g),
                Err(reason) => {
                    self.resource_failed(g, r, Some(op), reason);
                    self.failed.insert(g);
                    // Undo what started, in reverse; the failed one too,
                    // since a unit may be half up.
                    self.local[g] = Local::Releasing { next: r };
                    self.out.push(Output::Stop {
                        group: g,
                        resource: r,
                    });
                }
            },
            (Local::Releasing { next }, Op::Stop) if next == r => {
                if let Err(reason) = result {
                    self.resource_failed(g, r, Some(op), reason);
                    if self.retry_stop(g, r) {
                        return;
                    }
                }
                self.stop_tries.remove(&(g, r));
                if r == 0 {
                    self.released(g);
                } else {
                    self.local[g] = Local::Releasing { next: r - 1 };
                    self.out.push(Output::Stop {
                        group: g,
                        resource: r - 1,
                    });
                }
            }
            _ => {} // a late or duplicate result: nothing waits for it
        }
    }

    fn resource_failed(&mut self, g: GroupId, r: usize, op: Option<Op>, reason: String) {
        let group = self.groups[g].key.clone();
        self.event(Event::ResourceFailed {
            group,
            resource: r,
            op,
            reason,
        });
    }

    /// A stop that failed may have left the resource up (an address still
    /// answering, a unit still running): try again a few times before
    /// moving on, rather than count it released at once.
    fn retry_stop(&mut self, g: GroupId, r: usize) -> bool {
        let tries = self.stop_tries.entry((g, r)).or_insert(0);
        *tries += 1;
        if *tries > STOP_RETRIES {
            self.stop_tries.remove(&(g, r));
            return false;
        }
        self.out.push(Output::Stop {
            group: g,
            resource: r,
        });
        true
    }

    fn on_resource_lost(&mut self, g: GroupId, r: usize, reason: String) {
        if g >= self.groups.len() || r >= self.groups[g].len {
            return;
        }
        if !matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            return;
        }
        let group = self.groups[g].key.clone();
        // Lost while running, not a failed action.
        self.event(Event::ResourceFailed {
            group,
            resource: r,
            op: None,
            reason,
        });
        if self.groups[g].vips[r] {
            // An address deleted behind our back: put it back.
            if self.repairing.insert((g, r)) {
                self.out.push(Output::Start {
                    group: g,
                    resource: r,
                });
            }
        } else {
            // systemd already applied the unit's own Restart= policy; a
            // unit that still failed goes to a node that can run it.
            self.fail_group(g);
        }
    }

    fn fail_group(&mut self, g: GroupId) {
        self.failed.insert(g);
        if matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            self.release(g, None);
        }
    }

    // ---------------------------------------------------------------
    // Operator requests
    // ---------------------------------------------------------------

    /// Groups in `scope` as seen from node `n` (hb_standby semantics).
    /// `takeover` maps `failback` as heartbeat's rc.d/hb_takeover does.
    fn scope_groups_of(&self, n: NodeId, scope: Scope, takeover: bool) -> Vec<GroupId> {
        (0..self.groups.len())
            .filter(|&g| {
                let local = self.groups[g].preferred == n;
                match scope {
                    Scope::All => true,
                    Scope::Local => local,
                    Scope::Foreign => !local,
                    Scope::Failback => takeover || !local,
                }
            })
            .collect()
    }

    fn on_admin(&mut self, id: u64, req: AdminRequest) {
        let result = if self.leaving {
            Err(AdminError::ShuttingDown)
        } else if !self.comm_up {
            Err(AdminError::NotReady)
        } else {
            match req {
                AdminRequest::Standby(scope) => self.standby(scope),
                AdminRequest::Takeover(scope) => self.takeover(scope),
            }
        };
        self.out.push(Output::Reply { id, result });
    }

    fn standby(&mut self, scope: Scope) -> Result<(), AdminError> {
        let gs = self.scope_groups_of(self.me, scope, false);
        for &g in &gs {
            let mine = matches!(self.local[g], Local::Held | Local::Acquiring { .. });
            let taker =
                (0..self.nodes.len()).any(|n| n != self.me && self.eligible(n, g, false, false));
            if mine && !taker {
                return Err(AdminError::NoPeer(self.groups[g].key.clone()));
            }
        }
        self.standby.extend(gs);
        // Toward a heartbeat peer the hand-over runs its three phases
        // (`hb_give_up`), which open with this same message.
        let hb_peer = (0..self.nodes.len())
            .any(|n| n != self.me && self.peers[n].live() && !self.peers[n].advert.harust);
        if !hb_peer {
            let mut m = Message::new("ask_resources");
            let hold = if scope == Scope::Failback {
                "foreign"
            } else {
                scope.as_str()
            };
            m.add_str("rsc_hold", hold).add_str("info", "me");
            self.send(m);
        }
        let by = self.nodes[self.me].clone();
        self.event(Event::StandbyRequested { scope, by });
        Ok(())
    }

    fn takeover(&mut self, scope: Scope) -> Result<(), AdminError> {
        // Our `failback` takeover means "my own groups back".
        let scope = if scope == Scope::Failback {
            Scope::Local
        } else {
            scope
        };
        for g in self.scope_groups_of(self.me, scope, false) {
            self.standby.remove(&g);
            self.failed.remove(&g);
            if self.local[g] == Local::Failed {
                self.local[g] = Local::Idle;
            }
        }
        let mut m = Message::new("hb_takeover");
        m.add_str("rsc_hold", scope.as_str());
        self.send(m);
        let by = self.nodes[self.me].clone();
        self.event(Event::TakeoverRequested { scope, by });
        Ok(())
    }

    fn maybe_finish_shutdown(&mut self) {
        if !self.leaving || self.stopped {
            return;
        }
        // Start the next group's release, last group first.
        if !self
            .local
            .iter()
            .any(|l| matches!(l, Local::Releasing { .. }))
        {
            if let Some(g) = (0..self.groups.len())
                .rev()
                .find(|&g| self.local[g] == Local::Held)
            {
                let to = self.desired(g);
                self.release(g, to);
            }
        }
        let done = self
            .local
            .iter()
            .all(|l| matches!(l, Local::Idle | Local::Failed))
            && self.cleanup.is_empty();
        if done {
            let mut m = Message::new("shutdone");
            m.add_str("st", "dead");
            self.send(m);
            self.stopped = true;
            self.out.push(Output::Stopped);
        }
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
