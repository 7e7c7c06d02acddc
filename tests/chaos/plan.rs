//! What one run does, derived from its seed alone: the cluster (2 or 3
//! nodes, timings, groups) and a schedule of fault windows.
//!
//! The schedule is the replayable part: `--seed S` gives the same cluster
//! and the same faults at the same offsets. What the faults do to single
//! packets (which one a 30 % loss rule drops) depends on timing and is not
//! replayed.

use std::fmt;
use std::net::Ipv4Addr;

use crate::rng::Rng;
use crate::support::Node;
use crate::support::daemon::node_name;

/// Heartbeats crossing a node's bridge port, seen from the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// From the node into the bridge (its beats out).
    Ingress,
    /// From the bridge to the node (its beats in).
    Egress,
}

/// What the test relay does to heartbeats of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    pub delay_ms: u64,
    /// Extra delay, uniform in `0..=jitter_ms`, per packet.
    pub jitter_ms: u64,
    /// Percent of packets sent twice (the copy with its own delay).
    pub dup_pct: u64,
    /// Percent of packets held back a further `reorder_ms`, so later ones
    /// overtake them.
    pub reorder_pct: u64,
    pub reorder_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// nft `numgen random`: drop `per10k`/10000 of the heartbeats crossing
    /// `node`'s bridge port in `dir`.
    Loss { node: Node, dir: Dir, per10k: u64 },
    /// The relay delays, duplicates or reorders beats `from` → `to`.
    Shape { from: Node, to: Node, shape: Shape },
    /// nft: drop every heartbeat `from` → `to`, and only those: `to`
    /// stops hearing `from` while `from` still hears `to`.
    OneWay { from: Node, to: Node },
    /// nft: drop every heartbeat of each (from, to) pair.
    Partition {
        pairs: Vec<(Node, Node)>,
        what: String,
    },
    /// The node's bridge port down (carrier lost on its eth0).
    LinkDown { node: Node },
    /// SIGSTOP, then SIGCONT.
    Stop { node: Node },
    /// kill -9, restarted at the window's end. `crash`: the machine died,
    /// so `harust release-local` runs at once (its addresses vanish with
    /// it); otherwise only the daemon died and its addresses stay until it
    /// restarts and finds them.
    Kill { node: Node, crash: bool },
    /// Quorum clusters: SIGSTOP, and after `watchdog_ms` what systemd does
    /// when the daemon's watchdog fires (kill -9, then `ExecStopPost=`'s
    /// `harust release-local`); restarted at the window's end.
    Hang { node: Node, watchdog_ms: u64 },
}

impl Fault {
    /// The kinds this fault counts as, for the tally.
    pub fn kinds(&self) -> Vec<&'static str> {
        match self {
            Fault::Loss { .. } => vec!["loss"],
            Fault::Shape { shape, .. } => {
                let mut k = Vec::new();
                if shape.delay_ms > 0 || shape.jitter_ms > 0 {
                    k.push("delay/jitter");
                }
                if shape.dup_pct > 0 {
                    k.push("duplication");
                }
                if shape.reorder_pct > 0 {
                    k.push("reordering");
                }
                k
            }
            Fault::OneWay { .. } => vec!["one-way cut"],
            Fault::Partition { .. } => vec!["partition"],
            Fault::LinkDown { .. } => vec!["link flap"],
            Fault::Stop { .. } => vec!["sigstop/sigcont"],
            Fault::Kill { crash: true, .. } => vec!["kill -9 + release-local (machine crash)"],
            Fault::Kill { crash: false, .. } => vec!["kill -9 (daemon crash, addresses kept)"],
            Fault::Hang { .. } => vec!["sigstop + watchdog kill + release-local"],
        }
    }
}

fn short(n: Node) -> &'static str {
    match n {
        Node::A => "A",
        Node::B => "B",
        Node::C => "C",
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Loss { node, dir, per10k } => write!(
                f,
                "loss {:.2}% on {}'s port, {}",
                *per10k as f64 / 100.0,
                short(*node),
                match dir {
                    Dir::Ingress => "from it",
                    Dir::Egress => "to it",
                }
            ),
            Fault::Shape { from, to, shape } => write!(
                f,
                "relay {}->{}: delay {} ms + jitter {} ms, dup {}%, reorder {}% by {} ms",
                short(*from),
                short(*to),
                shape.delay_ms,
                shape.jitter_ms,
                shape.dup_pct,
                shape.reorder_pct,
                shape.reorder_ms
            ),
            Fault::OneWay { from, to } => write!(
                f,
                "one-way cut: {}'s beats no longer reach {}",
                short(*from),
                short(*to)
            ),
            Fault::Partition { what, .. } => write!(f, "partition: {what}"),
            Fault::LinkDown { node } => write!(f, "link flap: {}'s port down", short(*node)),
            Fault::Stop { node } => write!(f, "SIGSTOP {} (SIGCONT at the end)", short(*node)),
            Fault::Kill { node, crash } => write!(
                f,
                "kill -9 {}{} (restart at the end)",
                short(*node),
                if *crash { " + release-local" } else { "" }
            ),
            Fault::Hang { node, watchdog_ms } => write!(
                f,
                "SIGSTOP {}; at +{watchdog_ms} ms the watchdog: kill -9 + release-local (restart at the end)",
                short(*node)
            ),
        }
    }
}

/// One fault, active over `[start_ms, end_ms)` from the schedule's start.
#[derive(Debug, Clone)]
pub struct Window {
    pub start_ms: u64,
    pub end_ms: u64,
    pub fault: Fault,
}

/// A run: the cluster and its faults.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub nodes: Vec<Node>,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub initdead_ms: u64,
    pub auto_failback: &'static str,
    /// The `witness` node, if any: it votes and holds no group.
    pub witness: Option<Node>,
    /// A `quorum` line to write; `None` leaves the default (on exactly
    /// when there is a witness).
    pub quorum: Option<&'static str>,
    /// (preferred node, its addresses on eth0).
    pub groups: Vec<(Node, Vec<Ipv4Addr>)>,
    /// The fault phase; every window ends by then.
    pub duration_ms: u64,
    pub windows: Vec<Window>,
}

/// The address of group `g`'s `i`th VIP: 198.18.1.(200 + 10 g + i).
pub fn vip(g: usize, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, (200 + 10 * g + i) as u8)
}

/// The daemon's own watchdog timeout for a deadtime (engine
/// `watchdog_timeout`): half of it, at least 200 ms.
pub fn watchdog_ms(deadtime_ms: u64) -> u64 {
    (deadtime_ms / 2).max(200)
}

impl Plan {
    /// Every even seed is a witness cluster (A, B and the witness C, quorum
    /// on by default), so any 20 consecutive seeds hold ten of them; odd
    /// seeds are 2- or 3-node clusters without quorum.
    pub fn from_seed(seed: u64) -> Plan {
        let mut rng = Rng::new(seed);
        let witness = (seed % 2 == 0).then_some(Node::C);
        let three = rng.percent(35);
        let nodes = if three || witness.is_some() {
            vec![Node::A, Node::B, Node::C]
        } else {
            vec![Node::A, Node::B]
        };
        let keepalive_ms = rng.range(20, 50);
        let deadtime_ms = rng.range(150.max(4 * keepalive_ms), 300);
        let auto_failback = if rng.percent(60) { "on" } else { "off" };
        let mut groups = Vec::new();
        for (g, &pref) in nodes.iter().enumerate() {
            if g == 2 && (witness.is_some() || rng.percent(50)) {
                break;
            }
            let n = rng.range(1, 2) as usize;
            groups.push((pref, (0..n).map(|i| vip(g, i)).collect()));
        }
        let quorum = witness.is_some();
        // With quorum a takeover from a silent node waits its deadtime plus
        // its release bound (about 2.5 s here): longer schedules and
        // windows, so that faults outlast it and groups do move.
        let duration_ms = if quorum {
            rng.range(5000, 7000)
        } else {
            rng.range(2500, 4000)
        };
        let windows = schedule(
            &mut rng,
            &nodes,
            keepalive_ms,
            deadtime_ms,
            duration_ms,
            quorum,
        );
        Plan {
            seed,
            nodes,
            keepalive_ms,
            deadtime_ms,
            initdead_ms: 2 * deadtime_ms,
            auto_failback,
            witness,
            quorum: None,
            groups,
            duration_ms,
            windows,
        }
    }

    /// Whether quorum is on: what the daemons read from `quorum`, or its
    /// default.
    pub fn quorum_on(&self) -> bool {
        match self.quorum {
            Some(q) => q == "on",
            None => self.witness.is_some(),
        }
    }

    /// A witness cluster whose node A is cut off from B and the witness
    /// for 3 s while it holds its group: with quorum on A lets go before B
    /// takes over; with `quorum off` both hold it.
    pub fn a_cut_off(seed: u64, quorum: Option<&'static str>) -> Plan {
        let (a, b, w) = (Node::A, Node::B, Node::C);
        Plan {
            seed,
            nodes: vec![a, b, w],
            keepalive_ms: 50,
            deadtime_ms: 300,
            initdead_ms: 600,
            auto_failback: "on",
            witness: Some(w),
            quorum,
            groups: vec![(a, vec![vip(0, 0)]), (b, vec![vip(1, 0)])],
            duration_ms: 3500,
            windows: vec![Window {
                start_ms: 0,
                end_ms: 3000,
                fault: Fault::Partition {
                    pairs: vec![(a, b), (b, a), (a, w), (w, a)],
                    what: "A isolated".into(),
                },
            }],
        }
    }
}

fn schedule(
    rng: &mut Rng,
    nodes: &[Node],
    keepalive: u64,
    deadtime: u64,
    duration: u64,
    quorum: bool,
) -> Vec<Window> {
    let wanted = rng.range(4, 9);
    let mut candidates = Vec::new();
    for _ in 0..wanted {
        let start = rng.below(duration - 300);
        let (fault, len) = match rng.below(16) {
            0..=2 => (
                Fault::Loss {
                    node: *rng.pick(nodes),
                    dir: *rng.pick(&[Dir::Ingress, Dir::Egress]),
                    per10k: rng.range(500, 10_000),
                },
                rng.range(200, 1500),
            ),
            3..=5 => {
                let from = *rng.pick(nodes);
                let to = *rng.pick(&others(nodes, from));
                let mut shape = Shape::default();
                while shape == Shape::default() {
                    if rng.percent(60) {
                        shape.delay_ms = rng.range(0, deadtime * 6 / 5);
                        shape.jitter_ms = rng.range(0, 3 * keepalive);
                    }
                    if rng.percent(40) {
                        shape.dup_pct = rng.range(5, 50);
                    }
                    if rng.percent(40) {
                        shape.reorder_pct = rng.range(10, 50);
                        shape.reorder_ms = rng.range(keepalive, 3 * keepalive);
                    }
                }
                (Fault::Shape { from, to, shape }, rng.range(300, 2000))
            }
            6..=7 => (partition(rng, nodes), rng.range(200, 2000)),
            8..=9 => (
                Fault::LinkDown {
                    node: *rng.pick(nodes),
                },
                rng.range(100, 1500),
            ),
            10..=11 => {
                let node = *rng.pick(nodes);
                let len = rng.range(keepalive, 2 * deadtime);
                // With quorum the frozen daemon is fenced by its watchdog
                // (systemd's part played by the test), as in production.
                let watchdog_ms = watchdog_ms(deadtime);
                if quorum && len > watchdog_ms {
                    (Fault::Hang { node, watchdog_ms }, len)
                } else {
                    (Fault::Stop { node }, len)
                }
            }
            12..=13 => {
                let from = *rng.pick(nodes);
                let to = *rng.pick(&others(nodes, from));
                (Fault::OneWay { from, to }, rng.range(200, 2000))
            }
            _ => (
                Fault::Kill {
                    node: *rng.pick(nodes),
                    // With quorum a daemon crash is followed by the unit's
                    // `ExecStopPost=` release-local, as in production: an
                    // address left behind is for fencing, not quorum.
                    crash: rng.percent(50) || quorum,
                },
                rng.range(100, 2000),
            ),
        };
        let len = match fault {
            _ if !quorum => len,
            Fault::Shape { .. } | Fault::Stop { .. } => len,
            Fault::Hang { .. } => len * 5,
            _ => len * 3,
        };
        candidates.push(Window {
            start_ms: start,
            end_ms: (start + len).min(duration),
            fault,
        });
    }
    candidates.sort_by_key(|w| w.start_ms);
    // One process fault per node at a time, one link flap per port, one
    // shape per direction: drop the candidates that would overlap.
    let mut accepted: Vec<Window> = Vec::new();
    for w in candidates {
        let clash = accepted.iter().any(|a| {
            a.end_ms > w.start_ms
                && match (&a.fault, &w.fault) {
                    (
                        Fault::Stop { node: x }
                        | Fault::Kill { node: x, .. }
                        | Fault::Hang { node: x, .. },
                        Fault::Stop { node: y }
                        | Fault::Kill { node: y, .. }
                        | Fault::Hang { node: y, .. },
                    ) => x == y,
                    (Fault::LinkDown { node: x }, Fault::LinkDown { node: y }) => x == y,
                    (
                        Fault::Shape {
                            from: f1, to: t1, ..
                        },
                        Fault::Shape {
                            from: f2, to: t2, ..
                        },
                    ) => f1 == f2 && t1 == t2,
                    _ => false,
                }
        });
        if !clash {
            accepted.push(w);
        }
    }
    accepted
}

fn others(nodes: &[Node], n: Node) -> Vec<Node> {
    nodes.iter().copied().filter(|&m| m != n).collect()
}

fn partition(rng: &mut Rng, nodes: &[Node]) -> Fault {
    let x = *rng.pick(nodes);
    let rest = others(nodes, x);
    let y = *rng.pick(&rest);
    match rng.below(3) {
        0 => {
            let mut pairs = Vec::new();
            for &o in &rest {
                pairs.push((x, o));
                pairs.push((o, x));
            }
            Fault::Partition {
                pairs,
                what: format!("{} isolated", short(x)),
            }
        }
        1 if nodes.len() > 2 => Fault::Partition {
            pairs: vec![(x, y), (y, x)],
            what: format!(
                "{} and {} cut, both still reach the third",
                short(x),
                short(y)
            ),
        },
        _ => Fault::Partition {
            pairs: vec![(x, y)],
            what: format!("one way: {} no longer reaches {}", short(x), short(y)),
        },
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.nodes.iter().map(|&n| node_name(n)).collect();
        writeln!(
            f,
            "seed {}: nodes {}{}; keepalive {} ms, deadtime {} ms, initdead {} ms; auto_failback {}; quorum {}",
            self.seed,
            names.join(", "),
            self.witness
                .map(|w| format!(" (witness {})", node_name(w)))
                .unwrap_or_default(),
            self.keepalive_ms,
            self.deadtime_ms,
            self.initdead_ms,
            self.auto_failback,
            if self.quorum_on() { "on" } else { "off" }
        )?;
        for (g, (pref, vips)) in self.groups.iter().enumerate() {
            let v: Vec<String> = vips.iter().map(|a| a.to_string()).collect();
            writeln!(
                f,
                "  group {g}: preferred {}, {}",
                node_name(*pref),
                v.join(" ")
            )?;
        }
        writeln!(f, "  faults over {} ms:", self.duration_ms)?;
        for w in &self.windows {
            writeln!(f, "    {:>5}..{:>5} ms  {}", w.start_ms, w.end_ms, w.fault)?;
        }
        Ok(())
    }
}
