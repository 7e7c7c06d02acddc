//! The one event loop: it owns the engine, feeds it inputs and carries out
//! its outputs through the adapters.
//!
//! ```text
//!  net::Links ──datagram──▶ ┌─────────────────────────┐ ──Send──▶ wire::encode ─▶ net::Links
//!  engine deadline ──tick─▶ │                         │ ──Start/Stop──▶ action task (vip / systemd)
//!  action tasks ──result──▶ │  Runtime::run: select!  │ ──Announce──▶ GARP/NA task
//!  vip::watch / unit watch ▶│  owns the Engine        │ ──Event──▶ log, STATUS=, D-Bus signal
//!  D-Bus (Control) ───────▶ │                         │ ──Reply──▶ the waiting D-Bus call
//!                           │                         │ ──Event──▶ hook queue (systemd::hooks)
//!  SIGTERM / SIGHUP ──────▶ └─────────────────────────┘   watchdog tick ─▶ WATCHDOG=1
//! ```
//!
//! Resource actions run in their own tasks so the loop never waits on
//! netlink or systemd; the engine already serialises the actions of a group.
//! A group's consecutive addresses come as one batch of Start or Stop
//! outputs and go to the kernel as one netlink batch. Address work and the
//! GARP/NA rounds (`vip::Announcer`) run on a thread of their own
//! (`resource_worker`), so they never hold up a beat.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures::StreamExt;
use log::{debug, error, info, warn};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::digest::{self, ConfigDigest};
use crate::config::{self, Config, Resource, Vip};
use crate::engine::{self, AdminError, AdminRequest, Engine, Event, Input, Op, Output, View};
use crate::net::{self, Links};
use crate::systemd::hooks::Hooks;
use crate::systemd::{Notifier, Units};
use crate::vip::{self, AddrEvent, AnnounceConfig, Announcer, Vips};
use crate::wire;

/// What the daemon was started with.
#[derive(Debug, Clone)]
pub struct Options {
    pub config_dir: PathBuf,
    pub node: String,
    /// Where to reach systemd's manager; `None` is the system bus.
    pub systemd_bus: Option<String>,
    /// Where the generation counter and node UUID are kept.
    pub state_dir: PathBuf,
    /// How often and how fast a taken address is announced (GARP/NA).
    pub announce: AnnounceConfig,
}

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

const TRANSITIONS_KEPT: usize = 32;
/// How long queued event hooks may still run once the daemon has stopped.
const HOOKS_AT_EXIT: Duration = Duration::from_secs(30);
/// How often moving counters alone are republished.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);
/// Distinct log-limiter keys remembered at most.
const RATE_LIMIT_KEYS: usize = 1024;

struct ActionDone {
    group: usize,
    resource: usize,
    op: Op,
    result: Result<(), String>,
}

/// A log line limiter: at most one line per key per interval, with a count
/// of what was suppressed.
struct RateLimit {
    interval: Duration,
    last: HashMap<String, (Instant, u64)>,
}

impl RateLimit {
    fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` if a line may be logged now.
    fn allow(&mut self, key: &str) -> Option<u64> {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((t, n)) if now.duration_since(*t) < self.interval => {
                *n += 1;
                None
            }
            Some((t, n)) => {
                let s = *n;
                *t = now;
                *n = 0;
                Some(s)
            }
            None => {
                // Forged packets from many spoofed sources must not grow
                // this without bound: forget quiet keys first.
                if self.last.len() >= RATE_LIMIT_KEYS {
                    let interval = self.interval;
                    self.last
                        .retain(|_, (t, _)| now.duration_since(*t) < interval);
                    if self.last.len() >= RATE_LIMIT_KEYS {
                        return None;
                    }
                }
                self.last.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

pub struct Runtime {
    opts: Options,
    cfg: Config,
    engine: Engine,
    origin: Instant,
    links: Links,
    vips: Arc<Vips>,
    /// Where address work runs (see [`resource_worker`]).
    worker: tokio::runtime::Handle,
    units: Option<Units>,
    /// harust-event@.service instances, in order, off the loop.
    hooks: Hooks,
    fencer: crate::fence::Fencer,
    notifier: Notifier,
    actions_tx: mpsc::UnboundedSender<ActionDone>,
    actions_rx: mpsc::UnboundedReceiver<ActionDone>,
    control_rx: mpsc::Receiver<Control>,
    control_tx: mpsc::Sender<Control>,
    snapshot_tx: watch::Sender<Snapshot>,
    events_tx: tokio::sync::broadcast::Sender<Event>,
    pending: HashMap<u64, oneshot::Sender<Result<(), AdminError>>>,
    next_id: u64,
    drops: RateLimit,
    /// The keys with each HMAC keyed once; rebuilt on reload.
    keyed: wire::Keyed,
    /// Kept between beats, so sending and receiving one allocates nothing.
    tx_buf: Vec<u8>,
    auth_scratch: Vec<u8>,
    rx_buf: Vec<u8>,
    transitions: VecDeque<(u64, String, String)>,
    last_status: String,
    /// GARP/NA rounds of every address, keyed by (group, resource).
    announcer: Announcer,
    changes_published: u64,
    counters_published: Instant,
    /// Our configuration digest, as our status messages carry it.
    digest: ConfigDigest,
    /// Per peer: its last `hr_cfg` value and the parts that differ.
    peer_config: HashMap<String, (String, Vec<&'static str>)>,
    /// The default route's source before each held `IPsrcaddr`, put back
    /// on release.
    sources: Sources,
    /// The maintenance mode as last written to the state dir.
    maintenance_saved: engine::Maintenance,
}

/// The default route's source before each held `IPsrcaddr`, by position.
type Sources = Arc<std::sync::Mutex<HashMap<(usize, usize), Option<IpAddr>>>>;

impl Runtime {
    /// Loads the configuration, binds the media and connects the adapters.
    /// Nothing is acquired yet.
    pub async fn new(opts: Options, notifier: Notifier) -> Result<Runtime> {
        let loaded = config::load(&opts.config_dir, &opts.node)
            .map_err(|d| anyhow::anyhow!("configuration errors:\n{d}"))?;
        for n in &loaded.notices {
            info!("{n}");
        }
        let cfg = loaded.config;
        // A shared ha.cf lists every node's address; heartbeat then sends
        // to itself too. We skip our own: it only costs a decode per beat.
        let media: Vec<config::Medium> = cfg
            .ha
            .media
            .iter()
            .filter(|m| match m {
                config::Medium::Ucast { peer, .. } => {
                    let own = std::net::UdpSocket::bind((*peer, 0)).is_ok();
                    if own {
                        debug!(
                            "skipping {}: it is this node's own address",
                            net::medium_name(m)
                        );
                    }
                    !own
                }
                _ => true,
            })
            .cloned()
            .collect();
        let links = Links::open(&media)
            .await
            .context("cannot open the heartbeat media")?;
        let worker = resource_worker().context("cannot start the resource thread")?;
        let (vips, announcer) = {
            // The netlink and packet sockets are served by the worker.
            let _on = worker.enter();
            let vips = Vips::connect().context("cannot open rtnetlink")?;
            (Arc::new(vips), Announcer::spawn(opts.announce))
        };
        let has_units = cfg
            .groups
            .iter()
            .any(|g| g.resources.iter().any(|r| r.unit_name().is_some()));
        // A daemon whose groups hold no units, and that fences nobody,
        // never needs the manager.
        let fences = cfg
            .ha
            .nodes
            .iter()
            .any(|n| cfg.ha.fences_from(&cfg.local_node, n).next().is_some());
        let units = if has_units || fences {
            Some(
                Units::connect(opts.systemd_bus.as_deref())
                    .await
                    .context("cannot reach systemd's manager")?,
            )
        } else {
            None
        };
        let hooks = Hooks::spawn(opts.systemd_bus.clone());
        let (generation, uuid) = identity(&opts.state_dir);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let params = engine::Params {
            uuid,
            generation,
            wall_base: wall.as_secs(),
            seed: wall.as_nanos() as u64 ^ u64::from(std::process::id()),
        };
        let mut engine = Engine::new(&cfg, params, Duration::ZERO);
        let digest = ConfigDigest::of(&cfg);
        engine.set_config_digest(digest.to_field());
        let maintenance_saved = load_maintenance(&opts.state_dir);
        if maintenance_saved.on {
            crate::notice!(harust_event = "maintenance-on";
                "maintenance mode is on (set on {}): resources found up here are kept as they are",
                maintenance_saved.by);
        }
        engine.set_maintenance(maintenance_saved.clone());
        let (actions_tx, actions_rx) = mpsc::unbounded_channel();
        let (control_tx, control_rx) = mpsc::channel(16);
        let origin = Instant::now();
        let snapshot = Snapshot {
            view: engine.view(Duration::ZERO),
            keepalive_ms: cfg.ha.timings.keepalive.as_millis() as u64,
            deadtime_ms: cfg.ha.timings.deadtime.as_millis() as u64,
            warntime_ms: cfg.ha.timings.warntime.as_millis() as u64,
            initdead_ms: cfg.ha.timings.initdead.as_millis() as u64,
            links: (0..links.len())
                .map(|i| links.link_name(net::LinkId(i)))
                .collect(),
            transitions: VecDeque::new(),
            published_ms: unix_ms(),
            config_mismatch: BTreeMap::new(),
        };
        let (snapshot_tx, _) = watch::channel(snapshot);
        let (events_tx, _) = tokio::sync::broadcast::channel(256);
        info!(
            "harust {} starting as {} (generation {generation:x}) with {} media and {} groups",
            env!("CARGO_PKG_VERSION"),
            opts.node,
            links.len(),
            cfg.groups.len()
        );
        let keyed = wire::Keyed::new(&cfg.keys);
        Ok(Runtime {
            opts,
            cfg,
            engine,
            origin,
            links,
            vips,
            worker,
            fencer: crate::fence::Fencer::new(units.clone()),
            units,
            hooks,
            notifier,
            actions_tx,
            actions_rx,
            control_rx,
            control_tx,
            snapshot_tx,
            events_tx,
            pending: HashMap::new(),
            next_id: 1,
            drops: RateLimit::new(Duration::from_secs(10)),
            keyed,
            tx_buf: Vec::new(),
            auth_scratch: Vec::new(),
            rx_buf: Vec::new(),
            transitions: VecDeque::new(),
            last_status: String::new(),
            announcer,
            changes_published: 0,
            counters_published: Instant::now(),
            digest,
            peer_config: HashMap::new(),
            sources: Arc::default(),
            maintenance_saved,
        })
    }

    pub fn handle(&self) -> Handle {
        Handle {
            control: self.control_tx.clone(),
            snapshot: self.snapshot_tx.subscribe(),
            events: self.events_tx.clone(),
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Runs until a graceful stop completes.
    pub async fn run(mut self) -> Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut sigterm = signal(SignalKind::terminate())?;
        let mut sigint = signal(SignalKind::interrupt())?;
        let mut sighup = signal(SignalKind::hangup())?;

        // Watch before reading state, so no change is missed.
        let mut addr_events = vip::watch().await.context("cannot watch addresses")?;
        let mut unit_events = match &self.units {
            Some(u) => Some(u.watch(&self.unit_names()).await?),
            None => None,
        };
        let mut pings = spawn_pinger(
            Engine::ping_targets(&self.cfg),
            self.cfg.ha.effective_deadping(),
        );
        let present = self.reconcile().await;
        self.feed(Input::Reconciled { present });

        if let Err(e) = self.notifier.ready() {
            error!(harust_event = "notify-failed";
                "cannot send READY=1 to NOTIFY_SOCKET={}: {e}; a Type=notify start will time out",
                self.notifier.address());
        }
        // Our own watchdog from the deadtime (docs/SAFETY.md): a stalled
        // loop is killed, and release-local run, before a peer takes over.
        let wd = engine::watchdog_timeout(self.cfg.ha.timings.deadtime);
        if let Err(e) = self.notifier.override_watchdog(wd) {
            warn!("cannot set the service watchdog to {wd:?}: {e}");
        }
        self.publish_status();
        let mut watchdog = self.notifier.watchdog_interval().map(tokio::time::interval);
        let mut stopping = false;

        // One timer, moved only when the deadline moves: a new timer per
        // turn would wake the runtime (an eventfd write) after every step.
        let far = || Instant::now() + Duration::from_secs(3600);
        let timer = tokio::time::sleep_until(far());
        tokio::pin!(timer);
        let mut armed: Option<Instant> = None;
        loop {
            let deadline = self
                .engine
                .next_deadline()
                .map(|d| self.origin + d)
                .unwrap_or_else(far);
            if armed != Some(deadline) || timer.is_elapsed() {
                timer.as_mut().reset(deadline);
                armed = Some(deadline);
            }
            tokio::select! {
                biased;
                _ = sigterm.recv() => self.begin_stop(&mut stopping),
                _ = sigint.recv() => self.begin_stop(&mut stopping),
                _ = sighup.recv() => { let _ = self.reload(); }
                Some(done) = self.actions_rx.recv() => {
                    self.feed(Input::ResourceDone {
                        group: done.group,
                        resource: done.resource,
                        op: done.op,
                        result: done.result,
                    });
                }
                Some((link, from)) = self.links.recv_into(&mut self.rx_buf) => {
                    let buf = std::mem::take(&mut self.rx_buf);
                    self.on_datagram(link, from, &buf);
                    self.rx_buf = buf;
                }
                _ = &mut timer => {
                    armed = None;
                    self.feed(Input::Tick);
                }
                Some(ev) = addr_events.next() => self.on_addr_event(ev),
                Some(ev) = async {
                    match unit_events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if ev.is_down() {
                        self.on_unit_down(&ev.unit, ev.active_state.as_str(), ev.result.as_deref());
                    }
                }
                Some(c) = self.control_rx.recv() => self.on_control(c),
                Some((node, result)) = self.fencer.done() => self.feed(Input::FenceDone { node, result }),
                Some(target) = pings.recv() => self.feed(Input::PingReply { target }),
                _ = async {
                    match watchdog.as_mut() {
                        Some(w) => { w.tick().await; }
                        None => std::future::pending().await,
                    }
                } => {
                    // From the loop itself: a stuck loop stops the pings.
                    let _ = self.notifier.watchdog();
                }
            }
            if self.engine.is_stopped() {
                break;
            }
        }
        // Everything is released: the last hooks may run, bounded well
        // within the unit's TimeoutStopSec=.
        self.hooks.finish(HOOKS_AT_EXIT).await;
        info!("stopped");
        Ok(())
    }

    fn begin_stop(&mut self, stopping: &mut bool) {
        if *stopping {
            return;
        }
        *stopping = true;
        let _ = self.notifier.stopping();
        if self.engine.maintenance().on {
            info!("stopping in maintenance mode: every resource stays up for the next start");
        } else {
            info!("stopping: handing over every group");
        }
        self.feed(Input::Shutdown);
    }

    fn unit_names(&self) -> Vec<String> {
        self.cfg
            .groups
            .iter()
            .flat_map(|g| &g.resources)
            .filter_map(Resource::unit_name)
            .collect()
    }

    /// Which resources are really up now.
    async fn reconcile(&self) -> Vec<(usize, usize)> {
        let at: Vec<(usize, usize)> =
            positions(&self.cfg, |r| matches!(r, Resource::Vip(_))).collect();
        let vips: Vec<Vip> = at
            .iter()
            .filter_map(|&(g, r)| match &self.cfg.groups[g].resources[r] {
                Resource::Vip(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        // One address dump for all of them.
        let vips_up = self.vips.list_present(&vips).await.unwrap_or_else(|e| {
            warn!("cannot check the addresses: {e}");
            vec![false; vips.len()]
        });
        let adopting = self.engine.maintenance().on;
        let mut present = Vec::new();
        for (g, group) in self.cfg.groups.iter().enumerate() {
            for (r, res) in group.resources.iter().enumerate() {
                let up = match res {
                    Resource::Vip(_) => at
                        .iter()
                        .position(|&x| x == (g, r))
                        .is_some_and(|i| vips_up[i]),
                    // Nothing to take back: an announcement is made again on
                    // the next acquire. In maintenance it is part of what
                    // is adopted, so it does not keep its group from it.
                    Resource::Announce { .. } => adopting,
                    // Left by a crashed daemon: releasing it takes it off.
                    Resource::SrcAddr(a) => self.vips.is_default_source(*a).await.unwrap_or(false),
                    Resource::Unit(_) | Resource::Mount(_) => match &self.units {
                        Some(units) => units
                            .active_state(&res.unit_name().unwrap_or_default())
                            .await
                            .map(|s| matches!(s.as_str(), "active" | "activating" | "reloading"))
                            .unwrap_or(false),
                        None => false,
                    },
                };
                if up && adopting {
                    present.push((g, r));
                } else if up {
                    warn!(harust_event = "reconcile", harust_group = group.key.as_str();
                        "resource {r} of group {} is up although this daemon holds nothing; removing it",
                        group.key);
                    present.push((g, r));
                }
            }
        }
        present
    }

    fn on_datagram(&mut self, link: net::LinkId, from: std::net::SocketAddr, payload: &[u8]) {
        match wire::decode(payload, &self.keyed) {
            Ok(msg) => {
                let digest = self.new_config_digest(&msg);
                let replays = self.engine.counters().replays;
                self.feed(Input::Packet { link: link.0, msg });
                // Only from a message the engine took (not a replay).
                if let Some((peer, theirs)) = digest
                    && self.engine.counters().replays == replays
                {
                    self.compare_config(peer, theirs);
                }
            }
            Err(e) => {
                let kind = e.kind();
                let key = format!("{kind}:{}", from.ip());
                if let Some(suppressed) = self.drops.allow(&key) {
                    warn!(harust_event = "packet-dropped", harust_link = self.links.link_name(link).as_str();
                        "dropped packet from {from} on {}: {e}{}", self.links.link_name(link),
                        if suppressed > 0 { format!(" ({suppressed} more suppressed)") } else { String::new() });
                }
                self.feed(Input::BadPacket { link: link.0, kind });
            }
        }
    }

    /// A peer's `hr_cfg` on a status message, if it changed since the
    /// last one (the common case, unchanged, costs no allocation).
    fn new_config_digest(&self, msg: &wire::Message) -> Option<(String, String)> {
        if msg.kind() != Some("status") {
            return None;
        }
        let (peer, theirs) = (msg.get_str("src")?, msg.get_str(digest::FIELD)?);
        if peer == self.opts.node || !self.cfg.ha.nodes.iter().any(|n| n == peer) {
            return None;
        }
        match self.peer_config.get(peer) {
            Some((raw, _)) if raw == theirs => None,
            _ => Some((peer.to_string(), theirs.to_string())),
        }
    }

    /// Compares a peer's configuration digest with ours and warns, naming
    /// the parts, when that comparison changes.
    fn compare_config(&mut self, peer: String, theirs: String) {
        let parts = self.digest.differences(&theirs);
        let before = self
            .peer_config
            .insert(peer.clone(), (theirs, parts.clone()));
        if before.is_some_and(|(_, p)| p == parts) {
            return;
        }
        let peer = peer.as_str();
        if parts.is_empty() {
            info!(harust_event = "config-match", harust_node = peer;
                "node {peer}'s configuration agrees with ours");
        } else {
            warn!(harust_event = "config-mismatch", harust_node = peer, harust_parts = parts.join(",").as_str();
                "node {peer}'s configuration differs from ours in: {} (compare ha.cf and haresources on both nodes)",
                parts.join(", "));
        }
        self.publish_status();
    }

    fn on_addr_event(&mut self, ev: AddrEvent) {
        let AddrEvent::Removed { addr, .. } = ev else {
            return;
        };
        let lost: Vec<(usize, usize)> = self.find_vip(addr).collect();
        for (g, r) in lost {
            self.feed(Input::ResourceLost {
                group: g,
                resource: r,
                reason: format!("address {addr} was removed from its interface"),
            });
        }
    }

    fn find_vip(&self, addr: IpAddr) -> impl Iterator<Item = (usize, usize)> + '_ {
        positions(
            &self.cfg,
            move |res| matches!(res, Resource::Vip(v) if v.addr == addr),
        )
    }

    fn on_unit_down(&mut self, unit: &str, state: &str, result: Option<&str>) {
        let hits: Vec<(usize, usize)> =
            positions(&self.cfg, |res| res.unit_name().as_deref() == Some(unit)).collect();
        for (g, r) in hits {
            self.feed(Input::ResourceLost {
                group: g,
                resource: r,
                reason: format!(
                    "unit {unit} is {state}{}",
                    result.map(|x| format!(" ({x})")).unwrap_or_default()
                ),
            });
        }
    }

    fn on_control(&mut self, c: Control) {
        match c {
            Control::Admin { request, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.pending.insert(id, reply);
                self.feed(Input::Admin { id, request });
            }
            Control::Reload { reply } => {
                let r = self.reload();
                let _ = reply.send(r);
            }
        }
    }

    /// Re-reads the configuration. A broken one keeps the old running.
    fn reload(&mut self) -> Result<(), String> {
        let _ = self.notifier.reloading();
        let result = match config::load(&self.opts.config_dir, &self.opts.node) {
            Err(d) => {
                for line in d.to_string().lines() {
                    error!(harust_event = "reload-failed"; "{line}");
                }
                error!(harust_event = "reload-failed"; "reload failed; the previous configuration stays in force");
                Err(d.to_string())
            }
            Ok(loaded) => {
                let new = loaded.config;
                if new.groups != self.cfg.groups
                    || new.ha.nodes != self.cfg.ha.nodes
                    || new.ha.media != self.cfg.ha.media
                    || new.ha.witnesses != self.cfg.ha.witnesses
                    || new.ha.quorum != self.cfg.ha.quorum
                {
                    let msg = "nodes, media, witnesses, quorum or resource groups changed: they take effect on the next restart (a restart hands the groups over)".to_string();
                    warn!(harust_event = "reload-partial"; "{msg}");
                }
                // Keys and timings take effect at once.
                self.cfg.keys = new.keys.clone();
                self.keyed = wire::Keyed::new(&self.cfg.keys);
                self.engine.set_timings(new.ha.timings);
                // Peers compare what runs here: the new timings, the rest
                // as started.
                let mut running = self.cfg.clone();
                running.ha.timings = new.ha.timings;
                self.digest = ConfigDigest::of(&running);
                self.engine.set_config_digest(self.digest.to_field());
                // Compared afresh with each peer's next beat.
                self.peer_config.clear();
                info!(harust_event = "reloaded"; "configuration reloaded from {}", self.opts.config_dir.display());
                Ok(())
            }
        };
        let _ = self.notifier.ready();
        self.publish_status();
        result
    }

    /// One engine step and everything it asks for.
    fn feed(&mut self, input: Input) {
        let now = self.now();
        let outputs = self.engine.handle(now, input);
        let mut changed = false;
        // A group's address actions of this step, run as one batch each.
        let mut batches: Vec<(usize, Op, Vec<usize>)> = Vec::new();
        let mut batch = |group: usize, resource: usize, op: Op| match batches.last_mut() {
            Some((g, o, rs)) if *g == group && *o == op => rs.push(resource),
            _ => batches.push((group, op, vec![resource])),
        };
        for o in outputs {
            match o {
                Output::Send(m) => {
                    wire::encode_into(&m, &self.keyed, &mut self.tx_buf, &mut self.auth_scratch);
                    for (link, e) in self.links.try_send(&self.tx_buf) {
                        let key = format!("send:{}", link.0);
                        if self.drops.allow(&key).is_some() {
                            warn!(harust_event = "send-failed", harust_link = self.links.link_name(link).as_str();
                                "{e}");
                        }
                    }
                }
                Output::Start { group, resource } | Output::Stop { group, resource } => {
                    let op = if matches!(o, Output::Start { .. }) {
                        Op::Start
                    } else {
                        Op::Stop
                    };
                    if matches!(self.cfg.groups[group].resources[resource], Resource::Vip(_)) {
                        batch(group, resource, op);
                    } else {
                        self.act(group, resource, op);
                    }
                }
                Output::Announce { group } => {
                    for (r, res) in self.cfg.groups[group].resources.iter().enumerate() {
                        if announced(res).is_some() {
                            self.announcer.again((group, r));
                        }
                    }
                }
                Output::Reply { id, result } => {
                    if let Some(tx) = self.pending.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                Output::Event(e) => {
                    changed = true;
                    self.log_event(&e);
                    self.hooks.push(&e);
                    let _ = self.events_tx.send(e);
                }
                Output::Stopped => changed = true,
                Output::Fence { node } => self.fencer.start(node, &self.cfg.ha.nodes[node]),
            }
        }
        for (group, op, resources) in batches {
            self.act_vips(group, op, resources);
        }
        if *self.engine.maintenance() != self.maintenance_saved {
            self.maintenance_saved = self.engine.maintenance().clone();
            save_maintenance(&self.opts.state_dir, &self.maintenance_saved);
        }
        // A peer's advert (who holds what) changes without an event; the
        // counters move with every beat and are published at most once a
        // second, which keeps a 10 ms keepalive cheap.
        let seen = self.engine.changes();
        let counters_due = self.counters_published.elapsed() >= COUNTERS_EVERY
            && self.snapshot_tx.borrow().view.counters != self.engine.counters();
        if changed || seen != self.changes_published || counters_due {
            self.changes_published = seen;
            self.counters_published = Instant::now();
            self.publish_status();
        }
    }

    fn resource_name(&self, group_key: &str, r: usize) -> Option<String> {
        let g = self.cfg.groups.iter().find(|g| g.key == group_key)?;
        Some(g.resources.get(r)?.describe())
    }

    /// Adds or deletes addresses of a group as one netlink batch, on the
    /// resource thread; the results come back through `actions_rx`, one per
    /// address, in the order asked.
    fn act_vips(&self, group: usize, op: Op, resources: Vec<usize>) {
        let vips: Vec<Vip> = resources
            .iter()
            .filter_map(|&r| match &self.cfg.groups[group].resources[r] {
                Resource::Vip(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        if op == Op::Stop {
            // An address we give up must not be announced any more.
            for &r in &resources {
                self.announcer.cancel((group, r));
            }
        }
        let tx = self.actions_tx.clone();
        let nl = self.vips.clone();
        let announcer = self.announcer.clone();
        let gkey = self.cfg.groups[group].key.clone();
        self.worker.spawn(async move {
            let (vips, results): (Vec<Vip>, Vec<Result<(), String>>) = if op == Op::Start {
                // An address written without a prefix takes its connected
                // route's, as heartbeat's IPaddr does (a route dump each).
                let mut resolved = Vec::with_capacity(vips.len());
                for v in &vips {
                    resolved.push(nl.with_route_prefix(v).await);
                }
                let vips: Vec<Vip> = vips
                    .iter()
                    .zip(&resolved)
                    .map(|(v, r)| r.as_ref().unwrap_or(v).clone())
                    .collect();
                let ok: Vec<Vip> = resolved
                    .iter()
                    .filter_map(|r| r.as_ref().ok().cloned())
                    .collect();
                let mut batch = nl.add_batch(&ok).await.into_iter();
                let added: Vec<Result<vip::AddOutcome, vip::VipError>> = resolved
                    .into_iter()
                    .map(|r| match r {
                        Ok(_) => batch.next().expect("one result per address asked for"),
                        Err(e) => Err(e),
                    })
                    .collect();
                // Neighbours learn the new owner at once; the repeats run
                // on after the action is confirmed.
                let up: Vec<Vip> = vips
                    .iter()
                    .zip(&added)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(v, _)| v.clone())
                    .collect();
                let mut targets = nl.targets(&up).await.into_iter();
                for (&r, a) in resources.iter().zip(&added) {
                    if a.is_ok() {
                        match targets.next() {
                            Some(Ok(t)) => announcer.start((group, r), t),
                            Some(Err(e)) => warn!("cannot announce: {}", chain(&e)),
                            None => {}
                        }
                    }
                }
                let results = added
                    .into_iter()
                    .map(|r| r.map(|_| ()).map_err(|e| chain(&e)))
                    .collect();
                (vips, results)
            } else {
                let results = nl
                    .del_batch(&vips)
                    .await
                    .into_iter()
                    .map(|r| r.map(|_| ()).map_err(|e| chain(&e)))
                    .collect();
                (vips, results)
            };
            for ((resource, v), result) in resources.into_iter().zip(&vips).zip(results) {
                let what = format!("{}/{}", v.addr, v.prefix);
                report(&gkey, &what, op, &result);
                let _ = tx.send(ActionDone {
                    group,
                    resource,
                    op,
                    result,
                });
            }
        });
    }

    /// Starts or stops a unit in its own task; the result comes back
    /// through `actions_rx`.
    fn act(&self, group: usize, resource: usize, op: Op) {
        let res = self.cfg.groups[group].resources[resource].clone();
        if let Resource::Vip(_) = res {
            return self.act_vips(group, op, vec![resource]);
        }
        let tx = self.actions_tx.clone();
        let units = self.units.clone();
        let vips = self.vips.clone();
        let announcer = self.announcer.clone();
        let gkey = self.cfg.groups[group].key.clone();
        let sources = self.sources.clone();
        tokio::spawn(async move {
            let result = match (&res, op) {
                (Resource::Unit(u), Op::Start) => match units {
                    Some(units) => units.start(u).await.map_err(|e| chain(&e)),
                    None => Err("systemd's manager is not connected".to_string()),
                },
                (Resource::Unit(u), Op::Stop) => match units {
                    Some(units) => units.stop(u).await.map_err(|e| chain(&e)),
                    None => Err("systemd's manager is not connected".to_string()),
                },
                (Resource::Announce { .. }, Op::Start) => {
                    if let Some(v) = announced(&res) {
                        match vips.targets(std::slice::from_ref(&v)).await.pop() {
                            Some(Ok(t)) => announcer.start((group, resource), t),
                            Some(Err(e)) => warn!("cannot announce: {}", chain(&e)),
                            None => {}
                        }
                    }
                    Ok(())
                }
                (Resource::Announce { .. }, Op::Stop) => {
                    announcer.cancel((group, resource));
                    Ok(())
                }
                (Resource::SrcAddr(a), Op::Start) => match vips.set_default_source(*a).await {
                    Ok(before) => {
                        sources
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert((group, resource), before);
                        Ok(())
                    }
                    Err(e) => Err(chain(&e)),
                },
                (Resource::SrcAddr(a), Op::Stop) => {
                    let before = sources
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&(group, resource))
                        .flatten();
                    vips.restore_default_source(*a, before)
                        .await
                        .map_err(|e| chain(&e))
                }
                (Resource::Mount(m), Op::Start) => match units {
                    Some(units) => units
                        .start_mount(
                            &m.unit(),
                            &m.what,
                            &m.path,
                            m.fstype.as_deref(),
                            m.options.as_deref(),
                        )
                        .await
                        .map_err(|e| chain(&e)),
                    None => Err("systemd's manager is not connected".to_string()),
                },
                (Resource::Mount(m), Op::Stop) => match units {
                    Some(units) => units.stop(&m.unit()).await.map_err(|e| chain(&e)),
                    None => Err("systemd's manager is not connected".to_string()),
                },
                // Addresses go through act_vips.
                (Resource::Vip(_), _) => Ok(()),
            };
            report(&gkey, &res.describe(), op, &result);
            let _ = tx.send(ActionDone {
                group,
                resource,
                op,
                result,
            });
        });
    }

    fn log_event(&mut self, e: &Event) {
        let name = e.name();
        let mut fields: Vec<(&str, String)> = vec![("harust_event", name.to_string())];
        match e {
            Event::PeerUp { node }
            | Event::PeerRestarted { node }
            | Event::PeerDead { node, .. }
            | Event::LateHeartbeat { node, .. } => fields.push(("harust_node", node.clone())),
            Event::LinkUp { node, link } | Event::LinkDown { node, link } => {
                fields.push(("harust_node", node.clone()));
                fields.push(("harust_link", self.links.link_name(net::LinkId(*link))));
            }
            Event::Acquiring { group }
            | Event::Acquired { group, .. }
            | Event::Releasing { group, .. }
            | Event::Released { group }
            | Event::ResourceRepaired { group, .. }
            | Event::GroupFailed { group }
            | Event::Adopted { group }
            | Event::SplitBrainResolved { group, .. } => {
                fields.push(("harust_group", group.clone()))
            }
            Event::ResourceFailed {
                group, resource, ..
            } => {
                fields.push(("harust_group", group.clone()));
                if let Some(r) = self.resource_name(group, *resource) {
                    fields.push(("harust_resource", r));
                }
            }
            Event::Dropped { node: Some(n), .. } => fields.push(("harust_node", n.clone())),
            Event::MaintenanceOn { by } | Event::MaintenanceOff { by } => {
                fields.push(("harust_node", by.clone()))
            }
            Event::Fencing { node, .. }
            | Event::Fenced { node, .. }
            | Event::FenceFailed { node, .. }
            | Event::FenceNeeded { node } => fields.push(("harust_node", node.clone())),
            _ => {}
        }
        // Priorities mean something: a takeover is NOTICE, a death WARNING,
        // a resource failure ERR.
        let (level, notice) = match e {
            Event::Acquired { .. }
            | Event::Released { .. }
            | Event::StandbyRequested { .. }
            | Event::TakeoverRequested { .. }
            | Event::PeerUp { .. }
            | Event::QuorumRegained { .. }
            | Event::MaintenanceOn { .. }
            | Event::MaintenanceOff { .. }
            | Event::Adopted { .. }
            | Event::CommUp => (log::Level::Info, true),
            Event::PeerDead { .. }
            | Event::LateHeartbeat { .. }
            | Event::LinkDown { .. }
            | Event::SplitBrainResolved { .. }
            | Event::PeerRestarted { .. }
            | Event::PingDown { .. }
            | Event::QuorumLost { .. }
            | Event::Dropped { .. } => (log::Level::Warn, false),
            Event::ResourceFailed { .. }
            | Event::GroupFailed { .. }
            | Event::FenceFailed { .. }
            | Event::FenceNeeded { .. } => (log::Level::Error, false),
            Event::Fenced { .. } => (log::Level::Info, true),
            Event::Fencing { .. } => (log::Level::Warn, false),
            _ => (log::Level::Info, false),
        };
        let mut text = e.to_string();
        if let Event::Dropped { reason, node } = e {
            let key = format!("drop:{reason}:{}", node.as_deref().unwrap_or(""));
            match self.drops.allow(&key) {
                None => return,
                Some(0) => {}
                Some(s) => text.push_str(&format!(" ({s} more suppressed)")),
            }
        }
        if notice {
            fields.push((crate::systemd::journal::PRIORITY_KEY, "notice".to_string()));
        }
        emit(level, &fields, &text);
        if !matches!(
            e,
            Event::LateHeartbeat { .. } | Event::LinkUp { .. } | Event::LinkDown { .. }
        ) {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            self.transitions
                .push_back((ms, name.to_string(), e.to_string()));
            if self.transitions.len() > TRANSITIONS_KEPT {
                self.transitions.pop_front();
            }
        }
    }

    fn publish_status(&mut self) {
        let view = self.engine.view(self.now());
        let status = status_line(&view);
        if status != self.last_status {
            let _ = self.notifier.status(&status);
            self.last_status = status;
        }
        let t = self.engine.timings();
        self.snapshot_tx.send_modify(|s| {
            s.view = view;
            s.published_ms = unix_ms();
            s.config_mismatch = self
                .peer_config
                .iter()
                .filter(|(_, (_, parts))| !parts.is_empty())
                .map(|(peer, (_, parts))| {
                    (peer.clone(), parts.iter().map(|p| p.to_string()).collect())
                })
                .collect();
            s.transitions = self.transitions.clone();
            s.keepalive_ms = t.keepalive.as_millis() as u64;
            s.deadtime_ms = t.deadtime.as_millis() as u64;
            s.warntime_ms = t.warntime.as_millis() as u64;
            s.initdead_ms = t.initdead.as_millis() as u64;
        });
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Logs a resource action's result.
fn report(gkey: &str, what: &str, op: Op, result: &Result<(), String>) {
    match result {
        Ok(()) => debug!("{op} {what} ({gkey}): done"),
        Err(e) => {
            error!(harust_event = "resource-failed", harust_group = gkey, harust_resource = what;
                "{op} {what} failed: {e}")
        }
    }
}

/// A thread of its own for the address work (netlink requests and dumps,
/// GARP/NA), so a large group's batch never delays the loop's thread, which
/// sends and receives the heartbeats; see [`lower_priority`].
fn resource_worker() -> std::io::Result<tokio::runtime::Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("harust-resources".into())
        .spawn(move || {
            lower_priority();
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(std::future::pending::<()>());
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the resource thread did not start"))?
}

/// Puts the calling thread below the loop's when the daemon runs with a
/// real-time policy (`CPUSchedulingPolicy=rr`, which this thread
/// inherited): back to the normal policy, so a beat due always preempts
/// address work. Without one, both threads are equal and run side by side.
fn lower_priority() {
    let normal = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread only.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal) } != 0 {
        debug!(
            "resource thread keeps its policy: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// An error with its causes, `outer: inner: root`, so the log names the
/// root cause (e.g. the errno from netlink), not just the operation.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Logs `text` with structured fields (only those that apply).
fn emit(level: log::Level, fields: &[(&str, String)], text: &str) {
    if level > log::max_level() {
        return;
    }
    let kvs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let kvs: &[(&str, &str)] = &kvs;
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target("harust")
            .args(format_args!("{text}"))
            .key_values(&kvs)
            .build(),
    );
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

/// What a resource announces with GARP/NA once acquired: a VIP, or the
/// address of a `SendArp`.
fn announced(r: &Resource) -> Option<Vip> {
    match r {
        Resource::Vip(v) => Some(v.clone()),
        Resource::Announce { addr, iface } => Some(Vip {
            kind: config::VipKind::IPaddr,
            addr: IpAddr::V4(*addr),
            prefix: 32,
            iface: Some(iface.clone()),
            label: None,
            broadcast: None,
            auto_prefix: false,
        }),
        _ => None,
    }
}

/// The (group, resource) positions of the resources `pick` selects.
fn positions<'a>(
    cfg: &'a Config,
    pick: impl Fn(&Resource) -> bool + 'a,
) -> impl Iterator<Item = (usize, usize)> + 'a {
    cfg.groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| {
            group
                .resources
                .iter()
                .enumerate()
                .map(move |(r, res)| (g, r, res))
        })
        .filter(move |(_, _, res)| pick(res))
        .map(|(g, r, _)| (g, r))
}

/// Probes the ping targets and reports each reply's target index. The
/// engine judges silence against `deadping`; this only sends and listens.
fn spawn_pinger(targets: Vec<Vec<IpAddr>>, deadping: Duration) -> mpsc::Receiver<usize> {
    let (tx, rx) = mpsc::channel(64);
    if targets.is_empty() {
        return rx;
    }
    let interval = (deadping / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut socks = Vec::new();
        for v6 in [false, true] {
            if targets.iter().flatten().any(|a| a.is_ipv6() == v6) {
                match net::ping::Pinger::new(v6) {
                    Ok(p) => socks.push(p),
                    Err(e) => error!("cannot open an ICMP socket for ping nodes: {e}"),
                }
            }
        }
        let mut tick = tokio::time::interval(interval);
        loop {
            let recv = async {
                match socks.as_slice() {
                    [] => std::future::pending().await,
                    [a] => a.recv().await,
                    [a, b, ..] => tokio::select! { r = a.recv() => r, r = b.recv() => r },
                }
            };
            tokio::select! {
                _ = tick.tick() => {
                    for addr in targets.iter().flatten() {
                        for s in socks.iter_mut() {
                            let _ = s.send(*addr);
                        }
                    }
                }
                r = recv => {
                    if let Ok(from) = r {
                        for (i, t) in targets.iter().enumerate() {
                            if t.contains(&from) && tx.send(i).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    rx
}

const MAINTENANCE_FILE: &str = "maintenance";

/// The maintenance mode persisted in `state_dir` (off if never set or
/// unreadable).
pub fn load_maintenance(state_dir: &Path) -> engine::Maintenance {
    std::fs::read_to_string(state_dir.join(MAINTENANCE_FILE))
        .ok()
        .and_then(|s| engine::Maintenance::from_field(s.trim()))
        .unwrap_or_default()
}

/// Persists the maintenance mode so a restarted daemon knows it before it
/// hears any peer. Written to a temporary file and renamed: a crash leaves
/// the old or the new mode, never half of one.
fn save_maintenance(state_dir: &Path, m: &engine::Maintenance) {
    let path = state_dir.join(MAINTENANCE_FILE);
    let tmp = state_dir.join(".maintenance.tmp");
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| std::fs::write(&tmp, m.to_field() + "\n"))
        .and_then(|_| std::fs::rename(&tmp, &path))
    {
        error!(
            "cannot record maintenance mode in {}: {e}; a restart will not know it",
            path.display()
        );
    }
}

/// The generation (`hg`) and node UUID, persisted in `state_dir`. The
/// generation must grow on every start or peers take us for a replay.
fn identity(state_dir: &Path) -> (u64, [u8; 16]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let gen_path = state_dir.join("generation");
    let stored = std::fs::read_to_string(&gen_path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let generation = (stored + 1).max(now);
    let uuid_path = state_dir.join("uuid");
    let uuid = match std::fs::read(&uuid_path) {
        Ok(b) if b.len() == 16 => b.try_into().unwrap_or([0; 16]),
        _ => {
            let mut u = [0u8; 16];
            if let Ok(b) = std::fs::read("/proc/sys/kernel/random/uuid") {
                let hex: String = String::from_utf8_lossy(&b)
                    .chars()
                    .filter(|c| c.is_ascii_hexdigit())
                    .collect();
                for (i, byte) in u.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("00"), 16)
                        .unwrap_or(0);
                }
            }
            let _ = std::fs::create_dir_all(state_dir);
            let _ = std::fs::write(&uuid_path, u);
            u
        }
    };
    if let Err(e) = std::fs::create_dir_all(state_dir)
        .and_then(|_| std::fs::write(&gen_path, generation.to_string()))
    {
        warn!(
            "cannot record the generation in {}: {e}; using the clock",
            gen_path.display()
        );
    }
    (generation, uuid)
}

/// What `harust release-local` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub addresses: usize,
    pub units: usize,
}

/// `harust release-local`: stop every configured unit that runs here and
/// remove every configured address, each group right to left, last group
/// first (the order of a release). Run by the unit's ExecStopPost= after
/// an abnormal exit, so a crashed or hung node neither answers for a VIP
/// nor runs a service its peer now holds. Goes on past a failure and
/// reports them all at the end.
pub async fn release_local(cfg: &Config, systemd_bus: Option<&str>) -> Result<Released> {
    let vips = Vips::connect().context("cannot open rtnetlink")?;
    let has_units = cfg
        .groups
        .iter()
        .any(|g| g.resources.iter().any(|r| r.unit_name().is_some()));
    let mut errors: Vec<String> = Vec::new();
    let units = if has_units {
        match Units::connect(systemd_bus).await {
            Ok(u) => Some(u),
            Err(e) => {
                errors.push(format!("cannot reach systemd's manager: {e}"));
                None
            }
        }
    } else {
        None
    };
    // First the default route's source: deleting an address also deletes
    // the routes that use it as their source, the default route included.
    for g in &cfg.groups {
        for r in &g.resources {
            if let Resource::SrcAddr(a) = r
                && vips.is_default_source(*a).await.unwrap_or(false)
            {
                match vips.restore_default_source(*a, None).await {
                    Ok(_) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "took {a}, left by the stopped daemon, off the default route");
                    }
                    Err(e) => errors.push(format!("cannot take {a} off the default route: {e}")),
                }
            }
        }
    }
    let mut done = Released::default();
    for g in cfg.groups.iter().rev() {
        for r in g.resources.iter().rev() {
            if let Resource::Vip(v) = r {
                if !vips.present(v).await.unwrap_or(false) {
                    continue;
                }
                match vips.del(v).await {
                    Ok(_) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "removed {}/{} left behind by the stopped daemon", v.addr, v.prefix);
                        done.addresses += 1;
                    }
                    Err(e) => errors.push(format!("cannot remove {}: {e}", v.addr)),
                }
            } else if let (Some(name), Some(u)) = (r.unit_name(), &units) {
                let running = u
                    .active_state(&name)
                    .await
                    .is_ok_and(|s| !matches!(s.as_str(), "inactive" | "failed"));
                if !running {
                    continue;
                }
                match u.stop(&name).await {
                    Ok(()) => {
                        crate::notice!(harust_event = "release-local", harust_group = g.key.as_str();
                            "stopped {name}, left running by the stopped daemon");
                        done.units += 1;
                    }
                    Err(e) => errors.push(format!("cannot stop {name}: {e}")),
                }
            }
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(done)
}
