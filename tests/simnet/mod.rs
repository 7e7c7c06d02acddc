//! A deterministic cluster simulation: N engines, a simulated network that
//! loses, delays, duplicates, reorders and partitions, simulated resources,
//! and a fake clock. Everything random comes from one seed, so a failing
//! run replays exactly (`HARUST_SIM_SEED=<seed>`).

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use harust::config::{AutoFailback, Config, Group, HaCf, Medium, Resource, Timings, Vip, VipKind};
use harust::engine::{
    AdminError, AdminRequest, Engine, Event, Input, Maintenance, Op, Output, Params,
};
use harust::wire::{Keyring, Message, Method};

pub const MS: Duration = Duration::from_millis(1);

#[path = "../support/rng.rs"]
mod rng;
pub mod wire_pair;
pub use rng::Rng;

/// Network faults, applied to every message independently.
#[derive(Debug, Clone)]
pub struct NetModel {
    pub loss: f64,
    pub dup: f64,
    pub delay_min: Duration,
    pub delay_max: Duration,
}

impl Default for NetModel {
    fn default() -> Self {
        NetModel {
            loss: 0.0,
            dup: 0.0,
            delay_min: Duration::from_micros(100),
            delay_max: Duration::from_micros(300),
        }
    }
}

/// A cluster description.
#[derive(Debug, Clone)]
pub struct Spec {
    pub nodes: usize,
    /// (preferred node, number of VIPs, number of units) per group.
    pub groups: Vec<(usize, usize, usize)>,
    pub timings: Timings,
    pub failback: AutoFailback,
    /// Ping nodes (quorum witnesses), each answering every node whose
    /// uplink is up.
    pub ping_nodes: usize,
    /// Nodes that are `witness`es (vote, never hold).
    pub witnesses: Vec<usize>,
    /// `quorum on`.
    pub quorum: bool,
    /// Fence devices (ha.cf `fence`, `stonith_host`).
    pub fences: Vec<harust::config::Fence>,
}

impl Spec {
    pub fn two_node(failback: AutoFailback) -> Spec {
        Spec {
            nodes: 2,
            groups: vec![(0, 1, 1)],
            timings: timings(100, 1000),
            failback,
            ping_nodes: 0,
            witnesses: vec![],
            quorum: false,
            fences: vec![],
        }
    }

    pub fn config(&self, me: usize) -> Config {
        let nodes: Vec<String> = (0..self.nodes).map(node_name).collect();
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, &(pref, vips, units))| {
                let mut resources = Vec::new();
                for v in 0..vips {
                    resources.push(Resource::Vip(Vip {
                        kind: VipKind::IPaddr2,
                        addr: IpAddr::V4(Ipv4Addr::new(198, 18, i as u8, 100 + v as u8)),
                        prefix: 24,
                        iface: Some("eth0".into()),
                        label: None,
                        broadcast: None,
                        auto_prefix: false,
                    }));
                }
                for u in 0..units {
                    resources.push(Resource::Unit(format!("svc{i}-{u}.service")));
                }
                Group {
                    node: node_name(pref),
                    key: format!("g{i}"),
                    resources,
                    line: i + 1,
                }
            })
            .collect();
        Config {
            dir: PathBuf::from("/sim"),
            local_node: node_name(me),
            ha: HaCf {
                timings: self.timings,
                udpport: 694,
                media: vec![Medium::Bcast {
                    iface: "eth0".into(),
                    port: 694,
                }],
                nodes,
                auto_failback: self.failback,
                ping_nodes: (0..self.ping_nodes)
                    .map(|i| IpAddr::V4(Ipv4Addr::new(198, 19, 0, 1 + i as u8)))
                    .collect(),
                ping_groups: vec![],
                deadping: None,
                autojoin: false,
                witnesses: self.witnesses.iter().map(|&w| node_name(w)).collect(),
                quorum: self.quorum,
                fences: self.fences.clone(),
            },
            keys: Keyring::single(Method::Crc),
            groups,
        }
    }
}

pub fn timings(keepalive_ms: u64, deadtime_ms: u64) -> Timings {
    Timings {
        keepalive: Duration::from_millis(keepalive_ms),
        deadtime: Duration::from_millis(deadtime_ms),
        warntime: Duration::from_millis(deadtime_ms / 2),
        initdead: Duration::from_millis(deadtime_ms * 2),
    }
}

/// One engine of `spec`, for tests that drive engines by hand: node `me`,
/// reconciled with nothing present, at time zero.
pub fn reconciled_engine(spec: &Spec, me: usize) -> Engine {
    let params = Params {
        uuid: [me as u8 + 1; 16],
        generation: 0x6b06_f980 + me as u64,
        wall_base: 0x6b06_f000,
        seed: 7 + me as u64,
    };
    let mut e = Engine::new(&spec.config(me), params, Duration::ZERO);
    e.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
    e
}

/// The messages among an engine's outputs.
pub fn sent(out: &[Output]) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some((**m).clone()),
            _ => None,
        })
        .collect()
}

pub fn node_name(i: usize) -> String {
    format!("node-{}", (b'a' + i as u8) as char)
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        msg: Message,
    },
    ResDone {
        node: usize,
        epoch: u64,
        group: usize,
        resource: usize,
        op: Op,
    },
    /// Every node with its uplink up gets a reply from every ping node.
    PingRound,
    /// A frozen daemon (SIGSTOP) resumes.
    Thaw {
        node: usize,
        epoch: u64,
    },
    /// systemd's watchdog kills a frozen daemon; `ExecStopPost=`'s
    /// release-local then removes its resources and systemd restarts it.
    WatchdogKill {
        node: usize,
        epoch: u64,
    },
    StopPostDone {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// A fence run by `node` (as of `epoch`) against `target` ends.
    FenceDone {
        node: usize,
        epoch: u64,
        target: usize,
    },
}

pub struct SimNode {
    pub engine: Option<Engine>,
    /// Resources really up on this machine.
    pub present: BTreeSet<(usize, usize)>,
    pub generation: u64,
    epoch: u64,
    pub events: Vec<(Duration, Event)>,
    pub replies: Vec<(u64, Result<(), AdminError>)>,
    pub announces: Vec<(Duration, usize)>,
    /// Resources whose start fails here.
    pub broken: BTreeSet<(usize, usize)>,
    pub acquisitions: usize,
    /// The maintenance mode in the state dir, as the runtime persists it.
    pub maintenance: Maintenance,
    /// Inputs the daemon woke for (packets read while awake included).
    pub wakes: u64,
    /// Quiet reads ([`Sim::quiet_reads`]) in force, and what waits unread:
    /// with its arrival time when read quietly (the kernel's timestamp),
    /// without when read awake (fed when read, as the runtime does).
    deferred: bool,
    inbox: Vec<(Option<Duration>, Message)>,
}

pub struct Sim {
    pub seed: u64,
    pub rng: Rng,
    pub now: Duration,
    pub spec: Spec,
    pub net: NetModel,
    /// Directed pairs (from, to) whose packets are dropped.
    pub cut: BTreeSet<(usize, usize)>,
    pub nodes: Vec<SimNode>,
    pub res_latency: Duration,
    /// Whether each node reaches the ping nodes.
    pub uplink: Vec<bool>,
    /// Nodes whose daemon is stopped (SIGSTOP): no input reaches it.
    pub frozen: BTreeSet<usize>,
    /// How long `ExecStopPost=` takes to remove a killed daemon's
    /// resources, and systemd's restart delay.
    pub stop_post: Duration,
    pub restart_after: Duration,
    /// Check "never two holders" after every step (see [`Sim::exclusive`]).
    pub check_exclusive: bool,
    /// Whether fence devices work: a working one resets its target (the
    /// machine goes down, resources and all, and boots again after
    /// `restart_after`); a broken one fails without touching it.
    pub fence_works: bool,
    pub fence_latency: Duration,
    /// Every fence that powered a node off: (when, by, target).
    pub fenced: Vec<(Duration, usize, usize)>,
    /// Model the runtime's quiet reads: while a node's engine is quiet,
    /// packets wait in its socket and are read, at their arrival times,
    /// only when it wakes for something else.
    pub quiet_reads: bool,
    queue: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    slab: Vec<Option<Ev>>,
    order: u64,
    transcript: Vec<String>,
    next_admin: u64,
}

impl Sim {
    pub fn new(seed: u64, spec: Spec, net: NetModel) -> Sim {
        let count = spec.nodes;
        let nodes = (0..spec.nodes)
            .map(|_| SimNode {
                engine: None,
                present: BTreeSet::new(),
                generation: 0,
                epoch: 0,
                events: vec![],
                replies: vec![],
                announces: vec![],
                broken: BTreeSet::new(),
                acquisitions: 0,
                maintenance: Maintenance::default(),
                wakes: 0,
                deferred: false,
                inbox: Vec::new(),
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng: Rng::new(seed),
            now: Duration::ZERO,
            spec,
            net,
            cut: BTreeSet::new(),
            nodes,
            res_latency: MS,
            uplink: vec![true; count],
            frozen: BTreeSet::new(),
            stop_post: 50 * MS,
            restart_after: Duration::from_millis(500),
            check_exclusive: false,
            fence_works: true,
            fence_latency: Duration::from_millis(300),
            fenced: Vec::new(),
            quiet_reads: false,
            queue: BinaryHeap::new(),
            slab: Vec::new(),
            order: 0,
            transcript: Vec::new(),
            next_admin: 1,
        };
        if sim.spec.ping_nodes > 0 {
            sim.push(Duration::ZERO, Ev::PingRound);
        }
        sim
    }

    fn ping_interval(&self) -> Duration {
        self.spec.timings.deadtime / 4
    }

    fn log(&mut self, line: String) {
        self.transcript
            .push(format!("{:>10.3}ms {line}", self.now.as_secs_f64() * 1e3));
    }

    /// The last lines of the transcript, and how to replay.
    pub fn report(&self, what: &str) -> String {
        let mut s = format!(
            "\nsimulation invariant failed: {what}\nseed {}\n",
            self.seed
        );
        let path = std::env::temp_dir().join(format!("harust-sim-{}.log", self.seed));
        if std::fs::write(&path, self.transcript.join("\n")).is_ok() {
            let _ = writeln!(s, "full transcript: {}", path.display());
        }
        let from = self.transcript.len().saturating_sub(400);
        for l in &self.transcript[from..] {
            let _ = writeln!(s, "  {l}");
        }
        let _ = writeln!(
            s,
            "replay with: HARUST_SIM_SEED={} cargo test --test sim -- --nocapture",
            self.seed
        );
        s
    }

    pub fn check(&self, ok: bool, what: &str) {
        if !ok {
            panic!("{}", self.report(what));
        }
    }

    fn push(&mut self, at: Duration, ev: Ev) {
        self.order += 1;
        self.slab.push(Some(ev));
        self.queue
            .push(Reverse((at, self.order, self.slab.len() - 1)));
    }

    /// Starts (or restarts) a node's daemon.
    pub fn start(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.generation += 1;
        node.epoch += 1;
        let params = Params {
            uuid: [n as u8 + 1; 16],
            generation: 0x6b06_f980 + node.generation,
            wall_base: 0x6b06_f000,
            seed: self.seed ^ ((n as u64) << 32) ^ node.generation,
        };
        let present: Vec<_> = node.present.iter().copied().collect();
        let cfg = self.spec.config(n);
        let mut engine = Engine::new(&cfg, params, self.now);
        engine.set_maintenance(self.nodes[n].maintenance.clone());
        self.nodes[n].engine = Some(engine);
        self.log(format!(
            "{} START gen {}",
            node_name(n),
            self.nodes[n].generation
        ));
        self.input(n, Input::Reconciled { present });
    }

    /// kill -9 of the daemon: resources stay up on the machine.
    pub fn crash_daemon(&mut self, n: usize) {
        self.nodes[n].engine = None;
        self.nodes[n].inbox.clear();
        self.nodes[n].deferred = false;
        self.nodes[n].epoch += 1;
        self.log(format!("{} CRASH daemon (resources stay)", node_name(n)));
    }

    /// The machine dies: daemon and resources are gone.
    pub fn crash_machine(&mut self, n: usize) {
        self.crash_daemon(n);
        self.nodes[n].present.clear();
        self.log(format!("{} POWER OFF", node_name(n)));
    }

    pub fn shutdown(&mut self, n: usize) {
        self.input(n, Input::Shutdown);
    }

    pub fn admin(&mut self, n: usize, req: AdminRequest) -> u64 {
        let id = self.next_admin;
        self.next_admin += 1;
        self.input(n, Input::Admin { id, request: req });
        id
    }

    pub fn reply(&self, n: usize, id: u64) -> Option<&Result<(), AdminError>> {
        self.nodes[n]
            .replies
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, r)| r)
    }

    /// Cuts traffic between the two sides, both ways.
    pub fn partition(&mut self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
        self.log(format!("PARTITION {a:?} | {b:?}"));
    }

    /// Drops packets from `from` to `to` only (one-way loss).
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
        self.log(format!(
            "CUT {} -> {} (one way)",
            node_name(from),
            node_name(to)
        ));
    }

    /// The watchdog interval the daemon sets from its deadtime.
    pub fn watchdog(&self) -> Duration {
        self.spec.timings.deadtime / 2
    }

    /// SIGSTOP of node `n`'s daemon for `d`. If that outlasts the
    /// watchdog, systemd kills it, `ExecStopPost=` removes its resources
    /// and systemd starts it again.
    pub fn freeze(&mut self, n: usize, d: Duration) {
        if self.nodes[n].engine.is_none() {
            return;
        }
        self.frozen.insert(n);
        let epoch = self.nodes[n].epoch;
        self.log(format!("{} FROZEN for {:?}", node_name(n), d));
        let wd = self.watchdog();
        if d >= wd {
            self.push(self.now + wd, Ev::WatchdogKill { node: n, epoch });
        } else {
            self.push(self.now + d, Ev::Thaw { node: n, epoch });
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
        self.log("HEAL".into());
    }

    pub fn input(&mut self, n: usize, input: Input) {
        if self.frozen.contains(&n) {
            return;
        }
        if self.nodes[n].engine.is_none() {
            return;
        }
        self.nodes[n].wakes += 1;
        // As the runtime's read_waiting: what waited comes first.
        for (at, msg) in std::mem::take(&mut self.nodes[n].inbox) {
            let at = at.unwrap_or(self.now);
            self.handle(n, at, Input::Packet { link: 0, msg });
        }
        self.handle(n, self.now, input);
        self.settle(n);
    }

    /// The runtime's settle_links: quiet reads while the engine is quiet.
    fn settle(&mut self, n: usize) {
        let quiet = self.quiet_reads && self.nodes[n].engine.as_ref().is_some_and(|e| e.quiet());
        if let Some(e) = self.nodes[n].engine.as_mut() {
            e.set_reads_deferred(quiet);
        }
        self.nodes[n].deferred = quiet;
    }

    fn handle(&mut self, n: usize, now: Duration, input: Input) {
        let Some(engine) = self.nodes[n].engine.as_mut() else {
            return;
        };
        let summary = summarize_input(&input);
        let outs = engine.handle(now, input);
        self.nodes[n].maintenance = engine.maintenance().clone();
        if !summary.is_empty() {
            self.log(format!("{} <- {summary}", node_name(n)));
        }
        for o in outs {
            self.output(n, o);
        }
    }

    fn output(&mut self, n: usize, o: Output) {
        match o {
            Output::Send(m) => {
                let kind = m.kind().unwrap_or("?").to_string();
                if kind != "status" && kind != "NS_ackmsg" {
                    self.log(format!("{} -> send {}", node_name(n), summarize_msg(&m)));
                }
                for to in 0..self.nodes.len() {
                    if to == n || self.cut.contains(&(n, to)) {
                        continue;
                    }
                    if self.rng.chance(self.net.loss) {
                        continue;
                    }
                    let copies = if self.rng.chance(self.net.dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let d = self.rng.between(self.net.delay_min, self.net.delay_max);
                        let at = self.now + d;
                        self.push(
                            at,
                            Ev::Deliver {
                                to,
                                msg: (*m).clone(),
                            },
                        );
                    }
                }
            }
            Output::Start { group, resource } | Output::Stop { group, resource } => {
                let op = if matches!(o, Output::Start { .. }) {
                    Op::Start
                } else {
                    Op::Stop
                };
                self.log(format!("{} -> {op} g{group}/{resource}", node_name(n)));
                let epoch = self.nodes[n].epoch;
                let at = self.now + self.res_latency;
                self.push(
                    at,
                    Ev::ResDone {
                        node: n,
                        epoch,
                        group,
                        resource,
                        op,
                    },
                );
            }
            Output::Announce { group } => {
                self.log(format!("{} -> announce g{group}", node_name(n)));
                let now = self.now;
                self.nodes[n].announces.push((now, group));
            }
            Output::Reply { id, result } => {
                self.log(format!("{} -> reply #{id} {result:?}", node_name(n)));
                self.nodes[n].replies.push((id, result));
            }
            Output::Event(e) => {
                if !matches!(e, Event::LinkUp { .. } | Event::LinkDown { .. }) {
                    self.log(format!("{} !! {e}", node_name(n)));
                }
                if matches!(e, Event::Acquired { .. }) {
                    self.nodes[n].acquisitions += 1;
                }
                let now = self.now;
                self.nodes[n].events.push((now, e));
            }
            Output::Fence { node: target } => {
                self.log(format!("{} -> FENCE {}", node_name(n), node_name(target)));
                let epoch = self.nodes[n].epoch;
                let at = self.now + self.fence_latency;
                self.push(
                    at,
                    Ev::FenceDone {
                        node: n,
                        epoch,
                        target,
                    },
                );
            }
            Output::Stopped => {
                self.log(format!("{} -> STOPPED", node_name(n)));
                self.nodes[n].engine = None;
                self.nodes[n].epoch += 1;
            }
        }
    }

    fn next_time(&self) -> Option<Duration> {
        let q = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let e = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.frozen.contains(i))
            .filter_map(|(_, n)| n.engine.as_ref().and_then(|e| e.next_deadline()))
            .min();
        match (q, e) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs until `until` (absolute simulated time).
    pub fn run_until(&mut self, until: Duration) {
        let mut steps = 0u64;
        while let Some(t) = self.next_time() {
            if t > until {
                break;
            }
            steps += 1;
            self.check(steps < 5_000_000, "simulation made no progress (livelock)");
            self.now = self.now.max(t);
            if let Some(Reverse((qt, _, _))) = self.queue.peek()
                && *qt <= self.now
            {
                let Reverse((_, _, idx)) = self.queue.pop().unwrap();
                let ev = self.slab[idx].take().unwrap();
                self.event(ev);
                if self.check_exclusive {
                    self.check_never_two_holders();
                }
                continue;
            }
            for n in 0..self.nodes.len() {
                let due = !self.frozen.contains(&n)
                    && self.nodes[n]
                        .engine
                        .as_ref()
                        .and_then(|e| e.next_deadline())
                        .is_some_and(|d| d <= self.now);
                if due {
                    self.input(n, Input::Tick);
                }
            }
            if self.check_exclusive {
                self.check_never_two_holders();
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    fn event(&mut self, ev: Ev) {
        match ev {
            Ev::Thaw { node, epoch } => {
                if self.nodes[node].epoch == epoch && self.frozen.remove(&node) {
                    self.log(format!("{} THAWED", node_name(node)));
                    self.input(node, Input::Tick);
                }
            }
            Ev::WatchdogKill { node, epoch } => {
                if self.nodes[node].epoch != epoch {
                    return;
                }
                self.frozen.remove(&node);
                self.log(format!("{} WATCHDOG fired", node_name(node)));
                self.crash_daemon(node);
                let at = self.now + self.stop_post;
                self.push(at, Ev::StopPostDone { node });
            }
            Ev::StopPostDone { node } => {
                // release-local keeps everything in maintenance mode.
                if !self.nodes[node].maintenance.on {
                    self.nodes[node].present.clear();
                }
                self.log(format!("{} release-local done", node_name(node)));
                let at = self.now + self.restart_after;
                self.push(at, Ev::Restart { node });
            }
            Ev::Restart { node } => {
                if self.nodes[node].engine.is_none() {
                    self.start(node);
                }
            }
            Ev::FenceDone {
                node,
                epoch,
                target,
            } => {
                if self.nodes[node].epoch != epoch {
                    return; // the daemon that asked is gone
                }
                let result = if self.fence_works {
                    self.frozen.remove(&target);
                    self.crash_machine(target);
                    self.fenced.push((self.now, node, target));
                    let at = self.now + self.restart_after;
                    self.push(at, Ev::Restart { node: target });
                    Ok(())
                } else {
                    Err("simulated fence device failure".to_string())
                };
                self.input(
                    node,
                    Input::FenceDone {
                        node: target,
                        result,
                    },
                );
            }
            Ev::PingRound => {
                for n in 0..self.nodes.len() {
                    if self.uplink[n] {
                        for target in 0..self.spec.ping_nodes {
                            self.input(n, Input::PingReply { target });
                        }
                    }
                }
                let at = self.now + self.ping_interval();
                self.push(at, Ev::PingRound);
            }
            Ev::Deliver { to, msg } => {
                // A stopped daemon's datagrams wait in its socket.
                if self.nodes[to].deferred || self.frozen.contains(&to) {
                    let at = self.nodes[to].deferred.then_some(self.now);
                    self.nodes[to].inbox.push((at, msg));
                } else if self.nodes[to].engine.is_some() {
                    self.input(to, Input::Packet { link: 0, msg });
                }
            }
            Ev::ResDone {
                node,
                epoch,
                group,
                resource,
                op,
            } => {
                if self.nodes[node].epoch != epoch {
                    return; // the daemon that asked is gone
                }
                let result = match op {
                    Op::Start if self.nodes[node].broken.contains(&(group, resource)) => {
                        Err("simulated start failure".to_string())
                    }
                    Op::Start => {
                        self.nodes[node].present.insert((group, resource));
                        Ok(())
                    }
                    Op::Stop => {
                        self.nodes[node].present.remove(&(group, resource));
                        Ok(())
                    }
                };
                self.input(
                    node,
                    Input::ResourceDone {
                        group,
                        resource,
                        op,
                        result,
                    },
                );
            }
        }
    }

    /// Nodes whose engine holds group `g`.
    pub fn holders(&self, g: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| {
                self.nodes[n]
                    .engine
                    .as_ref()
                    .is_some_and(|e| e.held().contains(&g))
            })
            .collect()
    }

    /// Nodes that hold group `g` in their engine, run one of its units or
    /// keep one of its addresses up. With quorum on even a planned
    /// hand-over is break before make, so nothing is exempt.
    pub fn exclusive_holders(&self, g: usize) -> Vec<usize> {
        let held: Vec<usize> = self.holders(g);
        (0..self.nodes.len())
            .filter(|&n| held.contains(&n) || self.nodes[n].present.iter().any(|&(x, _)| x == g))
            .collect()
    }

    /// The safety invariant with quorum on: at no instant do two nodes
    /// hold a group or run any of its resources.
    pub fn check_never_two_holders(&self) {
        for g in 0..self.spec.groups.len() {
            let h = self.exclusive_holders(g);
            if h.len() > 1 {
                panic!(
                    "{}",
                    self.report(&format!("two holders of g{g} at once: {h:?}"))
                );
            }
        }
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].engine.is_some())
            .collect()
    }

    pub fn group_len(&self, g: usize) -> usize {
        self.spec.groups[g].1 + self.spec.groups[g].2
    }

    /// The invariants that must hold once a connected cluster has settled:
    /// each group has exactly one holder, every resource of it is up on
    /// that holder and nowhere else.
    pub fn check_settled(&self, what: &str) {
        for g in 0..self.spec.groups.len() {
            let h = self.holders(g);
            self.check(
                h.len() == 1,
                &format!("{what}: group g{g} has holders {h:?}"),
            );
            for n in 0..self.nodes.len() {
                for r in 0..self.group_len(g) {
                    let up = self.nodes[n].present.contains(&(g, r));
                    let should = n == h[0];
                    self.check(
                        up == should,
                        &format!(
                            "{what}: resource g{g}/{r} is {} on {} (holder {})",
                            if up { "up" } else { "down" },
                            node_name(n),
                            node_name(h[0])
                        ),
                    );
                }
            }
        }
    }

    /// Waits (in simulated time) until `cond` holds, checking often.
    pub fn run_until_cond(
        &mut self,
        limit: Duration,
        what: &str,
        cond: impl Fn(&Sim) -> bool,
    ) -> Duration {
        let start = self.now;
        let step = MS;
        while !cond(self) {
            self.check(
                self.now - start <= limit,
                &format!("timed out waiting for: {what}"),
            );
            self.run_for(step);
        }
        self.now - start
    }

    /// Runs `secs` at `pct` % loss each way and checks that nobody was
    /// declared dead and group 0 stayed on node 0.
    pub fn check_no_false_failover_under_loss(&mut self, pct: u64, secs: u64, what: &str) {
        let deaths = self.peer_deaths();
        self.net = NetModel {
            loss: pct as f64 / 100.0,
            ..NetModel::default()
        };
        self.run_for(Duration::from_secs(secs));
        self.check(
            self.peer_deaths() == deaths,
            &format!("a live node was declared dead at {pct} % loss, {what}"),
        );
        self.check(self.holders(0) == vec![0], "the group moved");
    }

    pub fn peer_deaths(&self) -> usize {
        self.nodes
            .iter()
            .flat_map(|n| &n.events)
            .filter(|(_, e)| matches!(e, Event::PeerDead { .. }))
            .count()
    }
}

fn summarize_input(i: &Input) -> String {
    match i {
        Input::Packet { msg, .. } => {
            let k = msg.kind().unwrap_or("?");
            if k == "status" || k.starts_with("NS_") {
                String::new()
            } else {
                summarize_msg(msg)
            }
        }
        Input::Tick => String::new(),
        other => format!("{other:?}"),
    }
}

fn summarize_msg(m: &Message) -> String {
    let mut s = String::new();
    for name in [
        "t", "src", "dest", "seq", "firstseq", "lastseq", "info", "rsc_hold", "info", "hr_held",
        "hr_busy", "hr_sb", "hr_fail", "hr_leave", "hr_mnt",
    ] {
        if let Some(v) = m.get_str(name) {
            let _ = write!(s, "{name}={v} ");
        }
    }
    s
}

/// Seeds to run: a range, or the one in `HARUST_SIM_SEED`.
/// `HARUST_SIM_COUNT` overrides the count, for longer runs.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    let count = std::env::var("HARUST_SIM_COUNT")
        .map(|c| c.parse().expect("HARUST_SIM_COUNT must be a number"))
        .unwrap_or(count);
    match std::env::var("HARUST_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("HARUST_SIM_SEED must be a number")],
        Err(_) => (base..base + count).collect(),
    }
}
