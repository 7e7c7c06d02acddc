//! One chaos run: build the cluster of a [`Plan`], play its fault
//! schedule, heal, settle, and check what a settled cluster must be.

use std::fmt::Write as _;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bus::Bus;
use crate::log::{self as dlog, Logged};
use crate::monitor::{self, Dual, Monitors};
use crate::nft::{self, Rules};
use crate::plan::{Fault, Plan, Shape};
use crate::relay::{Relay, relay_addr};
use crate::support::daemon::{Daemon, HaConfig, Launch, node_name};
use crate::support::{Node, Topology};

/// Bound for a start, a command, a READY=1.
const LONG: Duration = Duration::from_secs(10);
/// Bound for the settle after the heal.
const SETTLE: Duration = Duration::from_secs(20);
/// Quorum off, one-way cut: both nodes may hold a group for one keepalive
/// (until the cut-off node hears its peer declare it dead) plus the time
/// to release it, which for VIPs is one netlink request; this is that
/// time's allowance on a loaded machine.
const RELEASE_SLACK_MS: u64 = 500;

/// What a run did and found.
#[derive(Debug)]
pub struct Outcome {
    pub violations: Vec<String>,
    /// One entry per fault injected, by kind (plan::Fault::kinds).
    pub kinds: Vec<&'static str>,
    pub elapsed: Duration,
    /// From the heal to a settled cluster.
    pub settled_in: Option<Duration>,
    /// The relay's (received, sent, duplicated, held back).
    pub relay: [u64; 4],
    /// Where the logs were kept, if they were.
    pub kept: Option<PathBuf>,
    /// Address changes the monitors saw over the whole run.
    pub changes: usize,
    /// Intervals with two holders of a group (every one is a violation
    /// with quorum on).
    pub duals: usize,
    /// Quorum off: the length (ms) of each of those intervals that only a
    /// one-way cut can explain (bounded by a keepalive + the release).
    pub one_way_duals_ms: Vec<f64>,
    /// Witness clusters: make-before-break hand-overs (ms each), counted
    /// apart (see `hand_over`).
    pub hand_overs_ms: Vec<f64>,
    /// `took over group G from N` lines, all daemons, all starts.
    pub takeovers: usize,
}

/// Runs `plan`; keeps its logs under `out/seed-S/` if it fails or `keep`.
pub fn run(plan: &Plan, out: &Path, keep: bool) -> Outcome {
    let started = Instant::now();
    let dir = out.join(format!("seed-{}", plan.seed));
    let mut kinds = Vec::new();
    let mut relay = [0; 4];
    let mut settled_in = None;
    let mut sampled = (0, 0, Vec::new(), Vec::new());
    let mut takeovers = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut c = Cluster::new(plan, dir.clone());
        let mut v = c.play(&mut kinds, &mut settled_in);
        let (found, changes, duals, one_way, hand_overs) = c.check_timeline();
        takeovers = c.takeovers();
        v.extend(found);
        sampled = (changes, duals, one_way, hand_overs);
        let t = &c.relay.tally;
        use std::sync::atomic::Ordering::Relaxed;
        relay = [
            t.received.load(Relaxed),
            t.sent.load(Relaxed),
            t.duplicated.load(Relaxed),
            t.held_back.load(Relaxed),
        ];
        c.save = keep || !v.is_empty();
        v
    }));
    let violations = match result {
        Ok(v) => v,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            vec![format!("the run panicked: {msg}")]
        }
    };
    let kept = (keep || !violations.is_empty()).then(|| {
        let _ = fs::create_dir_all(&dir);
        let mut text = format!("{plan}\n");
        for v in &violations {
            let _ = writeln!(text, "VIOLATION: {v}");
        }
        let _ = fs::write(dir.join("result.txt"), text);
        dir.clone()
    });
    Outcome {
        violations,
        kinds,
        elapsed: started.elapsed(),
        settled_in,
        relay,
        kept,
        changes: sampled.0,
        duals: sampled.1,
        one_way_duals_ms: sampled.2,
        hand_overs_ms: sampled.3,
        takeovers,
    }
}

/// Per group, per VIP, the nodes that have it.
type Holders = Vec<Vec<Vec<Node>>>;

/// Holders, STATUS lines, and each daemon's count of change events.
type Picture = (Holders, Vec<Option<String>>, Vec<usize>);

/// The running cluster. Fields drop in order: daemons (SIGKILL by PID),
/// address monitors, buses, relay, then the namespaces.
struct Cluster<'p> {
    daemons: Vec<Daemon>,
    monitors: Monitors,
    buses: Vec<Bus>,
    relay: Relay,
    t: Topology,
    plan: &'p Plan,
    rules: Rules,
    killed: Vec<bool>,
    stopped: Vec<bool>,
    /// What was done when, for the kept logs.
    actions: Vec<String>,
    t0: Instant,
    /// The schedule's start, unix µs (for the monitors' stamps).
    sched_us: i64,
    /// Hung daemons whose watchdog has fired (killed, not stopped).
    fenced: Vec<bool>,
    dir: PathBuf,
    save: bool,
}

fn poll(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

impl<'p> Cluster<'p> {
    fn new(plan: &'p Plan, dir: PathBuf) -> Cluster<'p> {
        let t = Topology::new(&format!("chaos{}", plan.seed % 1000));
        let relay = Relay::start(&t.bridge, &plan.nodes, plan.seed);
        let rules = Rules::default();
        rules.apply(&t.bridge);
        let nodes: Vec<(Node, &crate::support::Netns)> =
            plan.nodes.iter().map(|&n| (n, t.node(n))).collect();
        let monitors = Monitors::start(&nodes, &dir);
        let mut base = HaConfig::fast()
            .timings(plan.keepalive_ms, plan.deadtime_ms, plan.initdead_ms)
            .auto_failback(plan.auto_failback)
            .nodes(&plan.nodes);
        if let Some(w) = plan.witness {
            base = base.witness(w);
        }
        if let Some(q) = plan.quorum {
            base = base.quorum(q);
        }
        for (pref, vips) in &plan.groups {
            let v: Vec<String> = vips.iter().map(|a| a.to_string()).collect();
            let v: Vec<&str> = v.iter().map(String::as_str).collect();
            base = base.vip_group(*pref, &v);
        }
        let buses: Vec<Bus> = plan.nodes.iter().map(|_| Bus::start()).collect();
        let mut daemons = Vec::new();
        for (i, &n) in plan.nodes.iter().enumerate() {
            let ucast: Vec<(&str, std::net::IpAddr)> = plan
                .nodes
                .iter()
                .filter(|&&m| m != n)
                .map(|&m| ("eth0", relay_addr(n, m).into()))
                .collect();
            let cfg = base.clone().ucast(&ucast);
            let launch = Launch::default().bus(buses[i].address());
            daemons.push(Daemon::start_with(t.node(n), n, &cfg, launch));
        }
        for d in &mut daemons {
            d.wait_ready(LONG);
        }
        let k = plan.nodes.len();
        Cluster {
            daemons,
            monitors,
            buses,
            relay,
            t,
            plan,
            rules,
            killed: vec![false; k],
            stopped: vec![false; k],
            actions: Vec::new(),
            t0: Instant::now(),
            sched_us: 0,
            fenced: vec![false; k],
            dir,
            save: false,
        }
    }

    fn idx(&self, n: Node) -> usize {
        self.plan
            .nodes
            .iter()
            .position(|&m| m == n)
            .expect("a node of the plan")
    }

    fn note(&mut self, what: String) {
        let ms = self.t0.elapsed().as_millis();
        self.actions.push(format!("{ms:>6} ms  {what}"));
    }

    /// The whole run; returns the violations found.
    fn play(
        &mut self,
        kinds: &mut Vec<&'static str>,
        settled_in: &mut Option<Duration>,
    ) -> Vec<String> {
        self.t0 = Instant::now();
        let init = Duration::from_millis(self.plan.initdead_ms) + LONG;
        if !poll(init, || self.all_peers_up() && self.one_holder_each()) {
            return vec![format!(
                "no initial convergence within {init:?}: {}",
                self.describe()
            )];
        }
        self.note("initial convergence: every peer up, one holder per group".into());

        // The schedule: each window begins and ends, ends first at a tie;
        // a hang's watchdog fires in between.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        enum Step {
            End,
            Watchdog,
            Begin,
        }
        let mut steps: Vec<(u64, Step, usize)> = Vec::new();
        for (i, w) in self.plan.windows.iter().enumerate() {
            steps.push((w.start_ms, Step::Begin, i));
            steps.push((w.end_ms, Step::End, i));
            if let Fault::Hang { watchdog_ms, .. } = w.fault {
                if w.start_ms + watchdog_ms < w.end_ms {
                    steps.push((w.start_ms + watchdog_ms, Step::Watchdog, i));
                }
            }
        }
        steps.sort_by_key(|&(at, step, i)| (at, step, i));
        let start = Instant::now();
        self.sched_us = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as i64;
        for (at, step, i) in steps {
            let due = start + Duration::from_millis(at);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            if let Some(v) = self.unexpected_exit() {
                return vec![v];
            }
            let fault = self.plan.windows[i].fault.clone();
            match step {
                Step::Begin => {
                    kinds.extend(fault.kinds());
                    self.begin(i, &fault);
                }
                Step::Watchdog => self.watchdog(i, &fault),
                Step::End => self.end(i, &fault),
            }
        }
        let end = start + Duration::from_millis(self.plan.duration_ms);
        if let Some(wait) = end.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if let Some(v) = self.unexpected_exit() {
            return vec![v];
        }
        self.heal();
        let healed = Instant::now();
        for d in &mut self.daemons {
            d.wait_ready(LONG);
        }
        if !self.settle() {
            return vec![format!(
                "did not settle within {SETTLE:?} of the heal: {}",
                self.describe()
            )];
        }
        *settled_in = Some(healed.elapsed());
        self.note(format!("settled {:?} after the heal", healed.elapsed()));
        self.check()
    }

    fn begin(&mut self, id: usize, fault: &Fault) {
        self.note(format!("begin #{id}: {fault}"));
        match fault {
            Fault::Loss { node, dir, per10k } => {
                self.rules.loss.push((id, *node, *dir, *per10k));
                self.rules.apply(&self.t.bridge);
            }
            Fault::Shape { from, to, shape } => self.relay.set(*from, *to, *shape),
            Fault::Partition { pairs, .. } => {
                self.rules
                    .cut
                    .extend(pairs.iter().map(|&(f, t)| (id, f, t)));
                self.rules.apply(&self.t.bridge);
            }
            Fault::OneWay { from, to } => {
                self.rules.cut.push((id, *from, *to));
                self.rules.apply(&self.t.bridge);
            }
            Fault::LinkDown { node } => self.port(*node, "down"),
            Fault::Stop { node } | Fault::Hang { node, .. } => {
                let i = self.idx(*node);
                self.daemons[i].kill(libc::SIGSTOP);
                self.stopped[i] = true;
            }
            Fault::Kill { node, crash } => {
                let i = self.idx(*node);
                self.daemons[i].kill(libc::SIGKILL);
                self.daemons[i].wait_exit(LONG);
                self.killed[i] = true;
                if *crash {
                    let out = self.daemons[i].release_local();
                    self.note(format!(
                        "release-local {}: {}",
                        node_name(*node),
                        out.trim()
                    ));
                }
            }
        }
    }

    fn end(&mut self, id: usize, fault: &Fault) {
        self.note(format!("end #{id}: {fault}"));
        match fault {
            Fault::Loss { .. } | Fault::Partition { .. } | Fault::OneWay { .. } => {
                self.rules.remove(id);
                self.rules.apply(&self.t.bridge);
            }
            Fault::Hang { node, .. } => {
                let i = self.idx(*node);
                if self.fenced[i] {
                    self.daemons[i].restart();
                    self.killed[i] = false;
                    self.fenced[i] = false;
                } else {
                    self.daemons[i].kill(libc::SIGCONT);
                    self.stopped[i] = false;
                }
            }
            Fault::Shape { from, to, .. } => self.relay.set(*from, *to, Shape::default()),
            Fault::LinkDown { node } => self.port(*node, "up"),
            Fault::Stop { node } => {
                let i = self.idx(*node);
                self.daemons[i].kill(libc::SIGCONT);
                self.stopped[i] = false;
            }
            Fault::Kill { node, .. } => {
                let i = self.idx(*node);
                self.daemons[i].restart();
                self.killed[i] = false;
            }
        }
    }

    /// What systemd does when a hung daemon misses its watchdog: kill it,
    /// then run the unit's `ExecStopPost=harust release-local`.
    fn watchdog(&mut self, id: usize, fault: &Fault) {
        let Fault::Hang { node, .. } = fault else {
            return;
        };
        self.note(format!("watchdog #{id}: {} missed it", node_name(*node)));
        let i = self.idx(*node);
        self.daemons[i].kill(libc::SIGKILL);
        self.daemons[i].wait_exit(LONG);
        self.stopped[i] = false;
        self.killed[i] = true;
        self.fenced[i] = true;
        let out = self.daemons[i].release_local();
        self.note(format!(
            "release-local {}: {}",
            node_name(*node),
            out.trim()
        ));
    }

    fn port(&self, node: Node, state: &str) {
        self.t
            .bridge
            .exec_ok(&["ip", "link", "set", &nft::port(node), state]);
    }

    /// Whatever a window left behind (none should): every rule gone,
    /// every port up, plain forwarding, every daemon running.
    fn heal(&mut self) {
        self.rules = Rules::default();
        self.rules.apply(&self.t.bridge);
        self.relay.clear();
        for &n in &self.plan.nodes {
            self.port(n, "up");
        }
        for i in 0..self.daemons.len() {
            if self.stopped[i] {
                self.daemons[i].kill(libc::SIGCONT);
                self.stopped[i] = false;
            }
            if self.killed[i] {
                self.daemons[i].restart();
                self.killed[i] = false;
                self.fenced[i] = false;
            }
        }
        self.note("healed: no nft rule, every port up, plain relay, every daemon running".into());
    }

    fn unexpected_exit(&mut self) -> Option<String> {
        for i in 0..self.daemons.len() {
            if !self.killed[i] && !self.daemons[i].running() {
                return Some(format!(
                    "{} exited on its own (see its log)",
                    self.daemons[i].node
                ));
            }
        }
        None
    }

    // -----------------------------------------------------------------
    // Observation
    // -----------------------------------------------------------------

    /// Which nodes have VIP `addr` on eth0 (`ip -j addr`).
    fn vip_holders(&self, addr: &str) -> Vec<Node> {
        self.plan
            .nodes
            .iter()
            .copied()
            .filter(|&n| self.t.node(n).has_addr("eth0", addr))
            .collect()
    }

    /// Per group, per VIP: the nodes that have it.
    fn holders(&self) -> Holders {
        self.plan
            .groups
            .iter()
            .map(|(_, vips)| {
                vips.iter()
                    .map(|a| self.vip_holders(&a.to_string()))
                    .collect()
            })
            .collect()
    }

    fn one_holder_each(&self) -> bool {
        self.holders()
            .iter()
            .all(|g| g.iter().all(|h| h.len() == 1) && g.iter().all(|h| h == &g[0]))
    }

    fn all_peers_up(&self) -> bool {
        self.daemons.iter().all(|d| {
            let Some(s) = d.status() else { return false };
            self.plan
                .nodes
                .iter()
                .map(|&n| node_name(n))
                .filter(|&n| n != d.node)
                .all(|peer| {
                    // `peers up: x, y` ends the line or a `;` does.
                    s.split_once("peers up: ").is_some_and(|(_, up)| {
                        let up = up.split(';').next().unwrap_or_default();
                        up.split(", ").any(|p| p == peer)
                    })
                })
        })
    }

    /// What a settled cluster must keep still: holders, STATUS lines, and
    /// the number of membership/group events each daemon has logged.
    fn picture(&self) -> Picture {
        let statuses = self.daemons.iter().map(Daemon::status).collect();
        let changes = self
            .daemons
            .iter()
            .map(|d| {
                dlog::events(&d.log())
                    .iter()
                    .filter(|e| dlog::is_change(e))
                    .count()
            })
            .collect();
        (self.holders(), statuses, changes)
    }

    /// Waits (at most SETTLE) until every peer is up everywhere and the
    /// picture has not changed for four deadtimes (at least 1 s).
    fn settle(&mut self) -> bool {
        let quiet = Duration::from_millis((4 * self.plan.deadtime_ms).max(1000));
        let start = Instant::now();
        let mut last = None;
        let mut since = Instant::now();
        while start.elapsed() < SETTLE {
            let now = self.all_peers_up().then(|| self.picture());
            if now.is_none() || now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return true;
            }
            thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for (g, h) in self.holders().iter().enumerate() {
            let _ = write!(s, "group {g} holders per VIP {h:?}; ");
        }
        for d in &self.daemons {
            let _ = write!(s, "{} STATUS={:?}; ", d.node, d.status());
        }
        s
    }

    // -----------------------------------------------------------------
    // Checks on the settled cluster
    // -----------------------------------------------------------------

    fn check(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        let holders = self.holders();
        // 1. Addresses: each VIP on exactly one node, a group's VIPs
        //    together; with auto_failback on and everyone up, on the
        //    preferred node.
        let mut holder_of = Vec::new();
        for (g, per_vip) in holders.iter().enumerate() {
            let (pref, vips) = &self.plan.groups[g];
            for (a, h) in vips.iter().zip(per_vip) {
                if h.len() != 1 {
                    v.push(format!(
                        "VIP {a} of group {g} is on {} nodes: {h:?}",
                        h.len()
                    ));
                }
            }
            if per_vip.iter().any(|h| h != &per_vip[0]) {
                v.push(format!(
                    "group {g}'s VIPs are split across nodes: {per_vip:?}"
                ));
            }
            let holder = (per_vip[0].len() == 1).then(|| per_vip[0][0]);
            if self.plan.auto_failback == "on" && holder.is_some_and(|h| h != *pref) {
                v.push(format!(
                    "group {g} is on {} although its preferred node {} is up (auto_failback on)",
                    node_name(holder.unwrap()),
                    node_name(*pref)
                ));
            }
            holder_of.push(holder);
        }
        // 2. STATUS=: each daemon holds what the kernel shows it holding.
        for (i, d) in self.daemons.iter().enumerate() {
            let n = self.plan.nodes[i];
            let want = holder_of.iter().filter(|&&h| h == Some(n)).count();
            let total = self.plan.groups.len();
            let status = d.status().unwrap_or_default();
            if !status.contains(&format!("holds {want}/{total} groups")) {
                v.push(format!(
                    "{}'s STATUS is {status:?} but it has the addresses of {want}/{total} groups",
                    d.node
                ));
            }
        }
        // 3. D-Bus: every daemon names the same holder for each group, the
        //    holder says `held` and the others `idle`; the counters and
        //    transitions agree with its log.
        for i in 0..self.daemons.len() {
            let node = self.daemons[i].node.clone();
            let doc = match crate::bus::status(&self.buses[i]) {
                Ok(doc) => doc,
                Err(e) => {
                    v.push(format!("{node}: {e}"));
                    continue;
                }
            };
            // Kept with the logs (Drop removes the directory otherwise).
            let _ = fs::create_dir_all(&self.dir);
            let _ = fs::write(
                self.dir.join(format!("status-{node}.json")),
                serde_json::to_string_pretty(&doc).unwrap_or_default(),
            );
            let groups = doc["groups"].as_array().cloned().unwrap_or_default();
            if groups.len() != self.plan.groups.len() {
                v.push(format!("{node}: D-Bus lists {} groups", groups.len()));
                continue;
            }
            for (g, gv) in groups.iter().enumerate() {
                let first = format!("{}/", self.plan.groups[g].1[0]);
                let key = gv["group"].as_str().unwrap_or("");
                if !key.contains(&first) {
                    v.push(format!(
                        "{node}: D-Bus group {g} is {key:?}, expected {first}..."
                    ));
                    continue;
                }
                let want = holder_of[g].map(node_name);
                let said = gv["holder"].as_str();
                if said != want {
                    v.push(format!(
                        "{node}: D-Bus says group {g}'s holder is {said:?}, the kernel {want:?}"
                    ));
                }
                let state = gv["local_state"].as_str().unwrap_or("");
                let want_state = if want == Some(node.as_str()) {
                    "held"
                } else {
                    "idle"
                };
                if state != want_state {
                    v.push(format!(
                        "{node}: group {g} is {state:?} locally, expected {want_state:?}"
                    ));
                }
            }
            let log = self.daemons[i].log();
            let events = dlog::events(dlog::current_start(&log));
            v.extend(check_counters(&node, &doc, &events));
            v.extend(check_transitions(&node, &doc, &events));
        }
        if !v.is_empty() {
            v.extend(self.resource_failures());
        }
        v
    }

    /// The monitors' whole-run record against the rules: in a witness
    /// cluster, never two holders of a group and never a witness holding
    /// anything; without quorum, two holders under a one-way cut alone for
    /// at most one keepalive plus the release. Returns (violations, address
    /// changes seen, two-holder intervals that are no hand-over,
    /// one-way-only intervals' ms, hand-overs' ms).
    #[allow(clippy::type_complexity)]
    fn check_timeline(&mut self) -> (Vec<String>, usize, usize, Vec<f64>, Vec<f64>) {
        let groups = &self.plan.groups;
        let mut changes = self.monitors.finish();
        changes.retain(|c| groups.iter().any(|g| g.1.contains(&c.addr)));
        let duals = monitor::duals(&changes, groups);
        let ms = |us: i64| (us - self.sched_us) as f64 / 1000.0;
        let mut v = Vec::new();
        let mut one_way = Vec::new();
        let mut hand_overs = Vec::new();
        let mut handed = Vec::new();
        if let Some(w) = self.plan.witness {
            if let Some(c) = changes.iter().find(|c| c.node == w && c.up) {
                v.push(format!(
                    "the witness {} took VIP {} at {:+.1} ms",
                    node_name(w),
                    c.addr,
                    ms(c.at_us)
                ));
            }
        }
        for d in &duals {
            let to = d.to_us.map(ms);
            let len = to.map(|t| t - ms(d.from_us));
            let what = format!(
                "two holders of group {} ({}) from {:+.1} ms to {} (schedule time){}",
                d.group,
                d.nodes
                    .iter()
                    .map(|&n| node_name(n))
                    .collect::<Vec<_>>()
                    .join(" and "),
                ms(d.from_us),
                to.map(|t| format!("{t:+.1} ms"))
                    .unwrap_or_else(|| "the end of the run".into()),
                len.map(|l| format!(", {l:.3} ms")).unwrap_or_default()
            );
            if let Some(w) = self.plan.witness {
                // With quorum on the engine hands over break before make:
                // no overlap is exempt. (With quorum off, as in the test
                // that shows the checker can fail, hand-overs still are.)
                let exempt = !self.plan.quorum_on();
                if let Some(len) = len.filter(|_| exempt && self.hand_over(d, &mut handed)) {
                    hand_overs.push(len);
                    continue;
                }
                v.push(format!(
                    "witness cluster (witness {}, quorum {}): {what}",
                    node_name(w),
                    if self.plan.quorum_on() { "on" } else { "off" }
                ));
                continue;
            }
            if let (Some(len), Some(w)) = (len, self.only_one_way(d)) {
                one_way.push(len);
                let bound = (self.plan.keepalive_ms + RELEASE_SLACK_MS) as f64;
                if len > bound {
                    v.push(format!(
                        "quorum off, under the one-way cut #{w} alone: {what}, longer than                          a keepalive + {RELEASE_SLACK_MS} ms ({bound} ms)"
                    ));
                }
            }
        }
        let _ = fs::create_dir_all(&self.dir);
        let mut text = format!(
            "{} address changes; schedule start at unix {} us\n",
            changes.len(),
            self.sched_us
        );
        for d in &duals {
            let _ = writeln!(text, "{d:?}");
        }
        let _ = fs::write(self.dir.join("two-holders.txt"), text);
        let duals = duals.len() - hand_overs.len();
        (v, changes.len(), duals, one_way, hand_overs)
    }

    /// Whether `d` is a make-before-break hand-over of an address-only
    /// group, which the engine does by design between harust nodes that
    /// hear each other when quorum is off (docs/SAFETY.md): the old holder
    /// keeps the address until the
    /// new one holds it. So: two nodes, the new holder's addition opened
    /// the interval, it lasted at most the hand-over's timeout (a
    /// deadtime) + a keepalive + 500 ms, and the old holder's log names a
    /// hand-over to the new one (`releasing group G to NEW`, each line
    /// matching one interval; `handed` counts those already matched).
    fn hand_over(&self, d: &Dual, handed: &mut Vec<(usize, Node, Node)>) -> bool {
        let Some(to) = d.to_us else {
            return false;
        };
        let new = d.opened_by;
        let [x, y] = d.nodes[..] else {
            return false;
        };
        let old = if x == new { y } else { x };
        let len_ms = ((to - d.from_us) / 1000) as u64;
        let bound = self.plan.deadtime_ms + self.plan.keepalive_ms + RELEASE_SLACK_MS;
        let key = format!(
            "releasing group IPaddr2::{}/24/eth0 to {}",
            self.plan.groups[d.group].1[0],
            node_name(new)
        );
        let logged = self.daemons[self.idx(old)].log().matches(&key).count();
        let done = handed.iter().filter(|&&h| h == (d.group, old, new)).count();
        if len_ms <= bound && logged > done {
            handed.push((d.group, old, new));
            return true;
        }
        false
    }

    /// The one window that explains `d`, if it is a one-way cut and no
    /// other fault was active from two deadtimes before `d` to its end.
    fn only_one_way(&self, d: &Dual) -> Option<usize> {
        let ms = |us: i64| (us - self.sched_us) / 1000;
        let from = ms(d.from_us) - 2 * self.plan.deadtime_ms as i64;
        let to = ms(d.to_us?);
        let active: Vec<usize> = (0..self.plan.windows.len())
            .filter(|&i| {
                let w = &self.plan.windows[i];
                (w.start_ms as i64) <= to && (w.end_ms as i64) >= from
            })
            .collect();
        match active[..] {
            [i] if matches!(self.plan.windows[i].fault, Fault::OneWay { .. }) => Some(i),
            _ => None,
        }
    }

    fn takeovers(&self) -> usize {
        self.daemons
            .iter()
            .map(|d| {
                dlog::events(&d.log())
                    .iter()
                    .filter(|e| e.name == "acquired" && e.message.contains(" from "))
                    .count()
            })
            .sum()
    }

    /// Every resource failure the daemons logged, as a hint for whoever
    /// reads a failing run.
    fn resource_failures(&self) -> Vec<String> {
        let mut v = Vec::new();
        for d in &self.daemons {
            for e in dlog::events(&d.log()) {
                if e.name == "resource-failed" {
                    v.push(format!("(hint) {} logged: {}", d.node, e.message));
                }
            }
        }
        v
    }
}

fn check_counters(node: &str, doc: &serde_json::Value, events: &[Logged]) -> Vec<String> {
    let mut v = Vec::new();
    let want = dlog::expected(events);
    let c = &doc["counters"];
    for (key, expect) in [
        ("failovers", want.failovers),
        ("split_brains", want.split_brains),
    ] {
        match c[key].as_u64() {
            Some(got) if got == expect => {}
            got => v.push(format!(
                "{node}: counter {key} is {got:?}, its log says {expect} \
                 ({} took-over lines in all)",
                want.took_over
            )),
        }
    }
    v
}

fn check_transitions(node: &str, doc: &serde_json::Value, events: &[Logged]) -> Vec<String> {
    let t = doc["transitions"].as_array().cloned().unwrap_or_default();
    let logged: Vec<&Logged> = events.iter().filter(|e| dlog::is_transition(e)).collect();
    if t.len() > logged.len() {
        return vec![format!(
            "{node}: D-Bus has {} transitions, its log only {}",
            t.len(),
            logged.len()
        )];
    }
    let tail = &logged[logged.len() - t.len()..];
    for (k, (d, l)) in t.iter().zip(tail).enumerate() {
        let name = d["event"].as_str().unwrap_or("");
        let msg = d["message"].as_str().unwrap_or("");
        // A rate-limited drop line may carry "(N more suppressed)".
        if name != l.name || !l.message.starts_with(msg) {
            return vec![format!(
                "{node}: transition {k} of {} is {name} {msg:?}, the log has {} {:?}",
                t.len(),
                l.name,
                l.message
            )];
        }
    }
    Vec::new()
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        if !(self.save || thread::panicking()) {
            let _ = fs::remove_dir_all(&self.dir);
            return;
        }
        let _ = fs::create_dir_all(&self.dir);
        let _ = fs::write(self.dir.join("actions.txt"), self.actions.join("\n") + "\n");
        for d in &self.daemons {
            let _ = fs::copy(d.log_path(), self.dir.join(format!("{}.log", d.node)));
        }
    }
}
