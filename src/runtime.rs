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
//! (`resources::worker`), so they never hold up a beat.
//!
//! While the engine is quiet, the loop lends the media and the beats to
//! the beat thread (`beat`, `Engine::lease`) and sleeps; any other wake-up
//! takes the lease back and feeds the engine what the thread did first.
//!
//! What is not the loop lives beside it: `control` (the D-Bus adapter's
//! channels and snapshot), `events` (journal entries), `resources` (how
//! actions are carried out), `state` (identity and maintenance on disk).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use futures::StreamExt;
use log::{debug, error, info, warn};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::beat::{self, BeatThread};
use crate::config::digest::{self, ConfigDigest};
use crate::config::{self, Config, Resource};
use crate::control::{Control, Handle, Snapshot, status_line};
use crate::engine::{self, AdminError, Engine, Event, Input, Op, Output};
use crate::events::{self, RateLimit};
use crate::net::{self, Links};
use crate::resources::{self, ActionDone, Actor, Sources, positions};
use crate::state::{identity, load_maintenance, save_maintenance};
use crate::systemd::hooks::Hooks;
use crate::systemd::{Notifier, Units};
use crate::timer::Deadline;
use crate::vip::{self, AddrEvent, AnnounceConfig, Announcer, Vips, announced};
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

const TRANSITIONS_KEPT: usize = 32;
/// How long queued event hooks may still run once the daemon has stopped.
const HOOKS_AT_EXIT: Duration = Duration::from_secs(30);
/// How often moving counters alone are republished.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// Quiet reads (see [`Engine::quiet`]) only where a beat is frequent
/// enough for its wake-ups to matter, and a keepalive's delay of a peer's
/// request small: up to this keepalive.
pub const QUIET_KEEPALIVE_MAX: Duration = Duration::from_millis(50);
fn quiet_allowed(t: &config::Timings) -> bool {
    t.keepalive <= QUIET_KEEPALIVE_MAX
}

/// At most this many waiting datagrams are read per wake-up; more is a
/// flood, read as it comes for a deadtime.
const QUIET_READ_MAX: usize = 64;

/// What woke the loop.
enum Wake {
    Stop,
    Reload,
    Action(ActionDone),
    Datagram(net::LinkId, std::net::SocketAddr),
    Tick,
    Addr(AddrEvent),
    Unit(crate::systemd::UnitEvent),
    Control(Control),
    Fence(usize, Result<(), String>),
    Ping(usize),
    /// The beat thread gave its lease back.
    LeaseBack,
}

pub struct Runtime {
    opts: Options,
    cfg: Config,
    engine: Engine,
    origin: Instant,
    links: Links,
    vips: Arc<Vips>,
    /// Where address work runs (see [`resources::worker`]).
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
    /// The time of the last input fed to the engine.
    fed_at: Duration,
    /// The keepalive allows quiet reads ([`QUIET_KEEPALIVE_MAX`]).
    quiet_allowed: bool,
    /// No quiet reads before this (after a flood).
    quiet_after: Duration,
    /// Beats for a quiet engine ([`beat`]); `None` if it could not start
    /// or once a beat it sent was not the engine's.
    beat: Option<BeatThread>,
    /// Each peer's last status datagram, by node: what its next beat
    /// must look like for a lease to take it without the engine.
    peer_raw: Vec<Vec<u8>>,
    /// The lease log's buffers, kept between leases.
    lease_log: (Vec<beat::Entry>, Vec<u8>),
    lease_done: engine::LeaseDone,
    /// What feeding a lease's log to the engine took per beat, as it
    /// rises at once and falls slowly: it sets the next lease's length.
    replay_per_beat: Option<Duration>,
}

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
        let quiet_allowed = quiet_allowed(&cfg.ha.timings);
        // A shared ha.cf lists every node's address; heartbeat then sends
        // to itself too. We skip our own: it only costs a decode per beat.
        let media: Vec<config::Medium> = cfg
            .ha
            .media
            .iter()
            .filter(|m| match m {
                config::Medium::Ucast { peer, .. } => {
                    let own = net::is_own_address(*peer);
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
        let worker = resources::worker().context("cannot start the resource thread")?;
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
            fed_at: Duration::ZERO,
            quiet_allowed,
            quiet_after: Duration::ZERO,
            beat: None,
            peer_raw: Vec::new(),
            lease_log: (Vec::new(), Vec::new()),
            lease_done: engine::LeaseDone::default(),
            replay_per_beat: None,
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
        let mut pings = net::ping::spawn_pinger(
            Engine::ping_targets(&self.cfg),
            self.cfg.ha.effective_deadping(),
        );
        let present = self.actor().reconcile(self.engine.maintenance().on).await;
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
        // The service watchdog is fed from the loop, so a stuck loop stops
        // it. Any wake-up half an interval after the last ping sends the
        // next: at a fast keepalive they all ride on beats, and the timer
        // wakes the loop for one only when nothing else did.
        let watchdog_every = self.notifier.watchdog_interval();
        let mut watchdog_fed = Instant::now();
        let mut beats_at_ping = None;
        let mut stopping = false;

        // The engine's deadline: a timerfd, not a tokio timer (see
        // `timer`), moved only when the deadline moves.
        let mut timer = Deadline::new().context("cannot create the loop's timerfd")?;
        self.peer_raw = vec![Vec::new(); self.cfg.ha.nodes.len()];
        if self.quiet_allowed {
            self.beat = match BeatThread::spawn() {
                Ok(b) => Some(b),
                Err(e) => {
                    warn!("cannot start the beat thread, every beat goes through the loop: {e}");
                    None
                }
            };
        }
        loop {
            // While a lease is out, the beats and their deadlines are the
            // beat thread's.
            let leased = self.beat.as_ref().is_some_and(BeatThread::is_out);
            let due = if leased {
                None
            } else {
                self.engine.next_deadline().map(|d| self.origin + d)
            };
            let deadline = match watchdog_every.map(|e| watchdog_fed + e) {
                Some(w) => Some(due.map_or(w, |d| d.min(w))),
                None => due,
            };
            // Not expected (EINVAL or ENOMEM only): then the loop ticks
            // every millisecond until the timer can be armed again.
            let timer_failed = match timer.set(deadline) {
                Ok(()) => false,
                Err(e) => {
                    if self.drops.allow("timerfd").is_some() {
                        error!("cannot arm the loop's timer: {e}");
                    }
                    true
                }
            };
            // In order of priority: a beat waiting comes before the
            // deadline that would call its sender late. The branches before
            // the one that fires are polled at every wake, so the signals
            // come after the timer, which is what wakes an idle node.
            let mut returned = None;
            let wake = tokio::select! {
                biased;
                Some(done) = self.actions_rx.recv() => Wake::Action(done),
                Some((link, from)) = self.links.recv_into(&mut self.rx_buf) => Wake::Datagram(link, from),
                r = timer.fired() => {
                    if let Err(e) = r
                        && self.drops.allow("timerfd").is_some()
                    {
                        error!("cannot read the loop's timer: {e}");
                    }
                    Wake::Tick
                }
                _ = tokio::time::sleep(Duration::from_millis(1)), if timer_failed => Wake::Tick,
                _ = sigterm.recv() => Wake::Stop,
                _ = sigint.recv() => Wake::Stop,
                _ = sighup.recv() => Wake::Reload,
                Some(ev) = addr_events.next() => Wake::Addr(ev),
                Some(ev) = async {
                    match unit_events.as_mut() {
                        Some(s) => s.next().await,
                        None => std::future::pending().await,
                    }
                } => Wake::Unit(ev),
                Some(c) = self.control_rx.recv() => Wake::Control(c),
                Some((node, result)) = self.fencer.done() => Wake::Fence(node, result),
                Some(target) = pings.recv() => Wake::Ping(target),
                Some(back) = async {
                    match self.beat.as_mut() {
                        Some(b) if leased => b.returned().await,
                        _ => std::future::pending().await,
                    }
                } => {
                    returned = Some(back);
                    Wake::LeaseBack
                }
            };
            // Whatever woke us sees the engine as of now: first what the
            // beat thread did while it held a lease, then what arrived
            // while quiet, each at its own time.
            // Not when woken for the service watchdog alone while the beat
            // thread is beating (see below).
            let beating = match self.beat.as_ref() {
                Some(b) if b.is_out() => Some(b.beats()),
                _ => None,
            };
            let watchdog_only = leased
                && matches!(wake, Wake::Tick)
                && beating.is_some()
                && beating != beats_at_ping;
            if !watchdog_only && let Some(back) = self.beat.as_mut().and_then(BeatThread::reclaim) {
                self.replay(back);
            }
            if let Some(back) = returned {
                self.replay(back);
            }
            self.read_waiting();
            match wake {
                Wake::Stop => self.begin_stop(&mut stopping),
                Wake::Reload => {
                    let _ = self.reload();
                }
                Wake::Action(done) => self.feed(Input::ResourceDone {
                    group: done.group,
                    resource: done.resource,
                    op: done.op,
                    result: done.result,
                }),
                Wake::Datagram(link, from) => {
                    let buf = std::mem::take(&mut self.rx_buf);
                    self.on_datagram(link, from, &buf, self.now());
                    self.rx_buf = buf;
                }
                // Or the watchdog's deadline only (below).
                Wake::Tick => {
                    if due.is_some_and(|d| d <= Instant::now()) {
                        self.feed(Input::Tick);
                    }
                }
                Wake::Addr(ev) => self.on_addr_event(ev),
                Wake::Unit(ev) => {
                    if ev.is_down() {
                        self.on_unit_down(&ev.unit, ev.active_state.as_str(), ev.result.as_deref());
                    }
                }
                Wake::Control(c) => self.on_control(c),
                Wake::Fence(node, result) => self.feed(Input::FenceDone { node, result }),
                Wake::Ping(target) => self.feed(Input::PingReply { target }),
                // The engine's deadline that ended it may be due.
                Wake::LeaseBack => {
                    if self.engine.next_deadline().is_some_and(|d| d <= self.now()) {
                        self.feed(Input::Tick);
                    }
                }
            }
            // While a lease is out, the loop wakes for the pings alone,
            // without taking the lease back, as long as the beat thread
            // has beaten since the last ping; if it has not, the lease was
            // taken back above (a stuck thread ends the daemon there).
            if let Some(every) = watchdog_every
                && watchdog_fed.elapsed() >= every / 2
            {
                watchdog_fed = Instant::now();
                beats_at_ping = beating.filter(|_| watchdog_only);
                let _ = self.notifier.watchdog();
            }
            if watchdog_only {
                continue;
            }
            self.settle_links();
            if self.engine.is_stopped() {
                break;
            }
            if !stopping {
                self.lend();
            }
        }
        // Everything is released: the last hooks may run, bounded well
        // within the unit's TimeoutStopSec=.
        self.hooks.finish(HOOKS_AT_EXIT).await;
        info!("stopped");
        Ok(())
    }

    /// Reads what waits in the quiet sockets (nothing when woken), each
    /// datagram fed at its arrival time: a beat read a keepalive late
    /// still counts from when it came, so deadtime is judged exactly.
    fn read_waiting(&mut self) {
        if !self.links.is_quiet() {
            return;
        }
        let now = self.now();
        let wall = std::time::SystemTime::now();
        let mut read = 0;
        while read < QUIET_READ_MAX
            && let Some((link, from, at)) = self.links.try_recv_into(&mut self.rx_buf)
        {
            read += 1;
            // Never before what was fed already.
            let at = net::arrival(at, wall, now, self.fed_at);
            let buf = std::mem::take(&mut self.rx_buf);
            self.on_datagram(link, from, &buf, at);
            self.rx_buf = buf;
        }
        if read == QUIET_READ_MAX {
            // A flood: let every datagram wake us again for a while.
            self.quiet_after = self.now() + self.cfg.ha.timings.deadtime;
        }
    }

    /// Goes quiet while the engine is ([`Engine::quiet`]) and back to
    /// waking on every datagram as soon as it is not.
    fn settle_links(&mut self) {
        let quiet = self.quiet_allowed && self.engine.quiet() && self.now() >= self.quiet_after;
        if quiet == self.links.is_quiet() {
            return;
        }
        // On an error the links stay quiet and are read at each wake-up;
        // the next turn tries again.
        if let Err(e) = self.links.set_quiet(quiet)
            && self.drops.allow("register").is_some()
        {
            warn!("cannot register the media's sockets with the event loop: {e}");
        }
        self.engine.set_reads_deferred(self.links.is_quiet());
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

    fn on_datagram(
        &mut self,
        link: net::LinkId,
        from: std::net::SocketAddr,
        payload: &[u8],
        at: Duration,
    ) {
        match wire::decode(payload, &self.keyed) {
            Ok(msg) => {
                // What a lease expects this peer's next beat to look like.
                if msg.kind() == Some("status")
                    && let Some(src) = msg.get_str("src")
                    && let Some(raw) = self
                        .cfg
                        .ha
                        .nodes
                        .iter()
                        .position(|n| n.eq_ignore_ascii_case(src))
                        .and_then(|n| self.peer_raw.get_mut(n))
                {
                    raw.clear();
                    raw.extend_from_slice(payload);
                }
                let digest = self.new_config_digest(&msg);
                let replays = self.engine.counters().replays;
                self.feed_at(at, Input::Packet { link: link.0, msg });
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
                self.feed_at(at, Input::BadPacket { link: link.0, kind });
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
                self.cfg.ha.timings = new.ha.timings;
                self.quiet_allowed = quiet_allowed(&new.ha.timings);
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
        self.feed_at(self.now(), input);
    }

    /// Feeds `input` as of `now`, which is never before the last input's.
    fn feed_at(&mut self, now: Duration, input: Input) {
        self.feed_sent(now, input, None);
    }

    /// [`feed_at`](Self::feed_at), where `sent` went out already: a message
    /// the engine sends that encodes to the same bytes is not sent again.
    /// Returns whether one did (`true` without `sent`).
    fn feed_sent(&mut self, now: Duration, input: Input, sent: Option<&[u8]>) -> bool {
        let mut matched = sent.is_none();
        self.fed_at = now;
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
                    if !matched && sent == Some(self.tx_buf.as_slice()) {
                        matched = true;
                        continue;
                    }
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
                        self.actor().act(group, resource, op);
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
            self.actor().act_vips(group, op, resources);
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
        matched
    }

    /// Lends the beats to the beat thread while the engine is quiet and
    /// the media are read at our own wake-ups.
    fn lend(&mut self) {
        let Some(beat) = self.beat.as_mut() else {
            return;
        };
        if beat.is_out() || !self.links.is_quiet() {
            return;
        }
        let Some(terms) = self.engine.lease() else {
            return;
        };
        // Once a lease (at most `beat::LEASE_MAX`), so a socket that went
        // idle is no longer read at every beat.
        if let Err(e) = self.links.sort_readers(std::time::Instant::now())
            && self.drops.allow("register").is_some()
        {
            warn!("cannot register the media's sockets with the event loop: {e}");
        }
        let (mut log, mut bytes) = std::mem::take(&mut self.lease_log);
        log.clear();
        bytes.clear();
        let mut done = std::mem::take(&mut self.lease_done);
        done.beats.clear();
        done.peers.clear();
        let beats = beat::lease_beats(terms.keepalive, self.replay_per_beat);
        let lease = beat::Lease {
            terms,
            beats,
            links: std::mem::replace(&mut self.links, Links::placeholder()),
            keyed: self.keyed.clone(),
            origin: self.origin.into_std(),
            start: self.fed_at,
            templates: std::mem::take(&mut self.peer_raw),
            log,
            bytes,
            done,
        };
        if let Err(lease) = beat.lend(lease) {
            error!("the beat thread is gone; every beat goes through the loop");
            self.links = lease.links;
            self.peer_raw = lease.templates;
            self.beat = None;
        }
    }

    /// Takes a lease back: the engine is fed what the beat thread read and
    /// sent, in order and at their times, and must send each beat that
    /// went out, byte for byte. If it would have sent another, the thread
    /// is stopped for good: the engine's beat goes out late, and every
    /// later one from the loop.
    fn replay(&mut self, back: beat::Returned) {
        let beat::Returned {
            links,
            templates,
            done,
            log,
            bytes,
            errors,
            why,
        } = back;
        self.links = links;
        self.peer_raw = templates;
        let started = std::time::Instant::now();
        let (mut diverged, mut beats) = (0, done.beats.len() as u32);
        // What came before the last beat at once, the rest in order.
        self.engine.lease_forward(&done);
        if let Some(&at) = done.beats.last() {
            self.fed_at = self.fed_at.max(at);
        }
        for e in &log {
            match e {
                beat::Entry::Got {
                    link,
                    from,
                    at,
                    bytes: r,
                } => self.on_datagram(*link, *from, &bytes[r.clone()], *at),
                beat::Entry::Sent { at, bytes: r } => {
                    beats += 1;
                    if !self.feed_sent(*at, Input::Tick, Some(&bytes[r.clone()])) {
                        diverged += 1;
                    }
                }
            }
        }
        if beats > 0 {
            let took = started.elapsed() / beats;
            self.replay_per_beat = Some(match self.replay_per_beat {
                Some(was) if took <= was => (was * 3 + took) / 4,
                _ => took,
            });
        }
        debug!(
            "lease returned after {} beats, {} entries since the last: {why}",
            beats,
            log.len()
        );
        for (link, e) in errors {
            if self.drops.allow(&format!("send:{}", link.0)).is_some() {
                warn!(harust_event = "send-failed", harust_link = self.links.link_name(link).as_str();
                    "{e}");
            }
        }
        self.lease_log = (log, bytes);
        self.lease_done = done;
        if diverged > 0 {
            error!(harust_event = "lease-diverged";
                "{diverged} beats sent for the engine were not the engine's; the beat thread is stopped");
            self.beat = None;
        }
    }

    fn resource_name(&self, group_key: &str, r: usize) -> Option<String> {
        let g = self.cfg.groups.iter().find(|g| g.key == group_key)?;
        Some(g.resources.get(r)?.describe())
    }

    /// What carries out the engine's Start and Stop outputs.
    fn actor(&self) -> Actor<'_> {
        Actor {
            cfg: &self.cfg,
            vips: &self.vips,
            worker: &self.worker,
            units: self.units.as_ref(),
            announcer: &self.announcer,
            sources: &self.sources,
            done: &self.actions_tx,
        }
    }

    fn log_event(&mut self, e: &Event) {
        let links = &self.links;
        let entry = events::Entry::of(
            e,
            |link| links.link_name(net::LinkId(link)),
            |group, r| self.resource_name(group, r),
        );
        let mut text = e.to_string();
        if let Event::Dropped { reason, node } = e {
            let key = format!("drop:{reason}:{}", node.as_deref().unwrap_or(""));
            match self.drops.allow(&key) {
                None => return,
                Some(0) => {}
                Some(s) => text.push_str(&format!(" ({s} more suppressed)")),
            }
        }
        entry.log(&text);
        if !matches!(
            e,
            Event::LateHeartbeat { .. } | Event::LinkUp { .. } | Event::LinkDown { .. }
        ) {
            self.transitions
                .push_back((unix_ms(), entry.name.to_string(), e.to_string()));
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
