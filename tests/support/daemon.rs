//! Real `harust daemon` processes in test namespaces.
//!
//! [`HaConfig`] renders heartbeat's three files for a two-node pair
//! (`node-a`, `node-b`) on a [`Topology`](super::Topology): a `ucast` line
//! per link and node, short timings, VIP-only groups. [`Daemon::start`]
//! writes them into a private temporary directory (authkeys mode 0600) and
//! runs
//!
//! ```text
//! ip netns exec NS harust daemon --config-dir DIR --node NAME --bus none --state-dir DIR/state
//! ```
//!
//! with `HARUST_LOG_TARGET=stderr` (stderr goes to `DIR/harust.log`) and
//! `NOTIFY_SOCKET` pointing at a datagram socket the test binds, so a test
//! waits for `READY=1` instead of sleeping. `ip netns exec` execs the
//! command in place, so the child's PID is the daemon's own: signals go to
//! it by PID and nothing else. [`Daemon::start_with`] takes a [`Launch`]
//! for more: `--systemd-bus`, extra environment (`WATCHDOG_USEC`, a log
//! target), or another process's mount namespace (a test journald's), for
//! which `nsenter --net=/run/netns/NS --target PID --mount` replaces
//! `ip netns exec` and likewise execs in place. Dropping a [`Daemon`] kills it with SIGKILL;
//! if the test is panicking (or `HARUST_TEST_LOGS` is set), the daemon's
//! log is printed first.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::{Netns, Node, Topology, wait_until};

/// The node name harust uses for a topology node.
pub fn node_name(node: Node) -> &'static str {
    match node {
        Node::A => "node-a",
        Node::B => "node-b",
        Node::C => "client-c",
    }
}

/// ha.cf, authkeys and haresources for nodes A and B of a topology.
#[derive(Debug, Clone)]
pub struct HaConfig {
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    pub warntime_ms: u64,
    pub initdead_ms: u64,
    /// `on`, `off` or `legacy`.
    pub auto_failback: &'static str,
    /// Links 0..links carry heartbeats (`ucast ethN` to both nodes).
    pub links: usize,
    /// The shared secret (sha1, index 1).
    pub key: String,
    /// haresources lines: (preferred node, resources).
    pub groups: Vec<(Node, Vec<String>)>,
    /// The cluster's `node` lines, in order: A and B unless set with
    /// [`nodes`](Self::nodes) (C then joins as a third HA node).
    pub nodes: Vec<Node>,
    /// `ucast IFACE ADDR` lines written instead of one per link and node,
    /// e.g. to send through a test relay. Empty: the default lines.
    pub ucast: Vec<(String, IpAddr)>,
    /// `ping ADDR` lines: ping nodes, the quorum witnesses.
    pub ping: Vec<IpAddr>,
    /// More ha.cf lines, written last (`witness client-c`, `quorum on`).
    pub extra: Vec<String>,
    /// `witness NAME` lines: nodes (also in `nodes`) that vote and never
    /// hold a group.
    pub witnesses: Vec<Node>,
    /// `quorum on|off`; `None` writes no line (the default: on exactly
    /// when a witness is configured).
    pub quorum: Option<&'static str>,
    /// More files in the configuration directory (path relative to it,
    /// text), written mode 0600: e.g. `fence.d/node-a`.
    pub files: Vec<(String, String)>,
}

impl HaConfig {
    /// Fast timings: keepalive 50 ms, deadtime 300 ms, warntime 150 ms,
    /// initdead 600 ms; auto_failback on; one link; no groups.
    pub fn fast() -> HaConfig {
        HaConfig {
            keepalive_ms: 50,
            deadtime_ms: 300,
            warntime_ms: 150,
            initdead_ms: 600,
            auto_failback: "on",
            links: 1,
            key: "cluster-test-secret".to_owned(),
            groups: Vec::new(),
            nodes: vec![Node::A, Node::B],
            ucast: Vec::new(),
            ping: Vec::new(),
            extra: Vec::new(),
            witnesses: Vec::new(),
            quorum: None,
            files: Vec::new(),
        }
    }

    /// One more file in the configuration directory, mode 0600.
    pub fn file(mut self, path: &str, text: &str) -> Self {
        self.files.push((path.to_owned(), text.to_owned()));
        self
    }

    pub fn timings(mut self, keepalive_ms: u64, deadtime_ms: u64, initdead_ms: u64) -> Self {
        self.keepalive_ms = keepalive_ms;
        self.deadtime_ms = deadtime_ms;
        self.warntime_ms = deadtime_ms / 2;
        self.initdead_ms = initdead_ms;
        self
    }

    pub fn auto_failback(mut self, value: &'static str) -> Self {
        self.auto_failback = value;
        self
    }

    pub fn links(mut self, links: usize) -> Self {
        self.links = links;
        self
    }

    /// The cluster's nodes (`node` lines, and the default `ucast` lines).
    pub fn nodes(mut self, nodes: &[Node]) -> Self {
        self.nodes = nodes.to_vec();
        self
    }

    /// Replaces the default `ucast` lines with `ucast IFACE ADDR` for each
    /// pair given.
    pub fn ucast(mut self, lines: &[(&str, IpAddr)]) -> Self {
        self.ucast = lines.iter().map(|(i, a)| (i.to_string(), *a)).collect();
        self
    }

    /// A group of floating addresses (`IPaddr2::ADDR/24/eth0` for each) whose
    /// preferred node is `node`.
    pub fn vip_group(mut self, node: Node, addrs: &[&str]) -> Self {
        let res = addrs
            .iter()
            .map(|a| format!("IPaddr2::{a}/24/eth0"))
            .collect();
        self.groups.push((node, res));
        self
    }

    /// A group of any haresources resources, e.g.
    /// `IPv6addr::2001:db8:1::100/64/eth0`, whose preferred node is `node`.
    pub fn group(mut self, node: Node, resources: &[&str]) -> Self {
        self.groups
            .push((node, resources.iter().map(|r| r.to_string()).collect()));
        self
    }

    /// Adds a line to ha.cf.
    pub fn line(mut self, text: &str) -> Self {
        self.extra.push(text.to_string());
        self
    }

    /// Adds a ping node.
    pub fn ping(mut self, addr: IpAddr) -> Self {
        self.ping.push(addr);
        self
    }

    /// Makes `node` (one of [`nodes`](Self::nodes)) a witness.
    pub fn witness(mut self, node: Node) -> Self {
        self.witnesses.push(node);
        self
    }

    /// Writes `quorum on` or `quorum off`.
    pub fn quorum(mut self, value: &'static str) -> Self {
        self.quorum = Some(value);
        self
    }

    pub fn ha_cf(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "keepalive {}ms", self.keepalive_ms);
        let _ = writeln!(s, "deadtime {}ms", self.deadtime_ms);
        let _ = writeln!(s, "warntime {}ms", self.warntime_ms);
        let _ = writeln!(s, "initdead {}ms", self.initdead_ms);
        let _ = writeln!(s, "udpport 694");
        if self.ucast.is_empty() {
            for link in 0..self.links {
                for &node in &self.nodes {
                    let _ = writeln!(s, "ucast eth{link} {}", Topology::ipv4(node, link));
                }
            }
        }
        for (iface, addr) in &self.ucast {
            let _ = writeln!(s, "ucast {iface} {addr}");
        }
        for &node in &self.nodes {
            let _ = writeln!(s, "node {}", node_name(node));
        }
        for addr in &self.ping {
            let _ = writeln!(s, "ping {addr}");
        }
        for &w in &self.witnesses {
            let _ = writeln!(s, "witness {}", node_name(w));
        }
        if let Some(q) = self.quorum {
            let _ = writeln!(s, "quorum {q}");
        }
        let _ = writeln!(s, "auto_failback {}", self.auto_failback);
        for l in &self.extra {
            let _ = writeln!(s, "{l}");
        }
        s
    }

    pub fn authkeys(&self) -> String {
        format!("auth 1\n1 sha1 {}\n", self.key)
    }

    pub fn haresources(&self) -> String {
        self.groups
            .iter()
            .map(|(node, res)| format!("{} {}\n", node_name(*node), res.join(" ")))
            .collect()
    }

    /// Writes the three files into `dir` (authkeys mode 0600).
    pub fn write(&self, dir: &Path) {
        fs::write(dir.join("ha.cf"), self.ha_cf()).expect("writing ha.cf");
        fs::write(dir.join("haresources"), self.haresources()).expect("writing haresources");
        let keys = dir.join("authkeys");
        fs::write(&keys, self.authkeys()).expect("writing authkeys");
        fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).expect("chmod authkeys");
        for (path, text) in &self.files {
            let p = dir.join(path);
            fs::create_dir_all(p.parent().expect("a file in a directory")).expect("mkdir");
            fs::write(&p, text).expect("writing a configuration file");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        }
    }
}

/// What the daemon sent to its `NOTIFY_SOCKET`, one datagram per entry,
/// with when it arrived.
type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

/// How a [`Daemon`] is launched, beyond its configuration files.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `--systemd-bus ADDRESS`: where the daemon reaches systemd's manager
    /// (a test `systemd --user`'s session bus).
    pub systemd_bus: Option<String>,
    /// Extra environment, set last (so `HARUST_LOG_TARGET` here wins).
    pub env: Vec<(String, String)>,
    /// Run in this process's mount namespace (e.g. a test journald's, so
    /// `/run/systemd/journal/socket` is that journald), still in the test
    /// network namespace.
    pub mount_ns_of: Option<u32>,
    /// `--bus ADDRESS`: where the daemon serves its D-Bus API (a test
    /// dbus-daemon); `None` runs it with `--bus none`.
    pub bus: Option<String>,
}

impl Launch {
    pub fn systemd_bus(mut self, address: &str) -> Self {
        self.systemd_bus = Some(address.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn mount_ns_of(mut self, pid: u32) -> Self {
        self.mount_ns_of = Some(pid);
        self
    }

    pub fn bus(mut self, address: &str) -> Self {
        self.bus = Some(address.to_owned());
        self
    }
}

/// A `harust daemon` running in a namespace, killed (SIGKILL, by PID) on
/// drop.
pub struct Daemon {
    pub node: String,
    ns: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    pid: i32,
    notes: Notes,
    stop_reader: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
    started: usize,
    launch: Launch,
}

impl Daemon {
    /// Writes `cfg` and starts the daemon for `node` in `ns`.
    pub fn start(ns: &Netns, node: Node, cfg: &HaConfig) -> Daemon {
        Daemon::start_with(ns, node, cfg, Launch::default())
    }

    /// [`start`](Self::start), launched as `launch` says.
    pub fn start_with(ns: &Netns, node: Node, cfg: &HaConfig, launch: Launch) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix(&format!("harust-{}-", node_name(node)))
            .tempdir()
            .expect("creating a temporary directory");
        cfg.write(dir.path());
        let notify = dir.path().join("notify");
        let sock = UnixDatagram::bind(&notify).expect("binding the notify socket");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("setting a read timeout");
        let notes: Notes = Arc::default();
        let stop_reader = Arc::new(AtomicBool::new(false));
        let reader = {
            let notes = notes.clone();
            let stop = stop_reader.clone();
            thread::spawn(move || {
                let mut buf = vec![0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        notes.lock().unwrap().push((Instant::now(), text));
                    }
                }
            })
        };
        let mut d = Daemon {
            node: node_name(node).to_owned(),
            ns: ns.name().to_owned(),
            dir,
            child: None,
            pid: 0,
            notes,
            stop_reader,
            reader: Some(reader),
            started: 0,
            launch,
        };
        d.spawn();
        d
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("harust.log")
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.node);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the daemon log");
        self.started += 1;
        {
            use std::io::Write;
            let mut l = &log;
            let _ = writeln!(
                l,
                "==== test: start #{} of {} ====",
                self.started, self.node
            );
        }
        self.notes.lock().unwrap().clear();
        let dir = self.dir.path();
        let mut cmd = match self.launch.mount_ns_of {
            None => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &self.ns]);
                c
            }
            // No --pid: nsenter then execs in place, like `ip netns exec`.
            Some(pid) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{}", self.ns)).args([
                    "--target",
                    &pid.to_string(),
                    "--mount",
                    "--",
                ]);
                c
            }
        };
        cmd.arg(env!("CARGO_BIN_EXE_harust"))
            .arg("daemon")
            .arg("--config-dir")
            .arg(dir)
            .args(["--node", &self.node, "--bus"])
            .arg(self.launch.bus.as_deref().unwrap_or("none"))
            .arg("--state-dir")
            .arg(dir.join("state"));
        if let Some(bus) = &self.launch.systemd_bus {
            cmd.args(["--systemd-bus", bus]);
        }
        let child = cmd
            .env("HARUST_LOG_TARGET", "stderr")
            .env("NOTIFY_SOCKET", dir.join("notify"))
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .envs(self.launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting harust for {} in {}: {e}", self.node, self.ns));
        self.pid = child.id() as i32;
        self.child = Some(child);
    }

    /// Starts the daemon again (same configuration and state directory)
    /// after it has exited.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Waits for `READY=1` from this start of the daemon.
    pub fn wait_ready(&mut self, deadline: Duration) {
        let what = format!("{} to send READY=1", self.node);
        self.wait(deadline, &what, |d| {
            d.notes().iter().any(|n| n.contains("READY=1"))
        });
    }

    /// Everything the daemon sent to its notify socket since it started.
    pub fn notes(&self) -> Vec<String> {
        self.timed_notes().into_iter().map(|(_, n)| n).collect()
    }

    /// Sends `text` to the daemon's notify socket from the test: it lands
    /// in [`notes`](Self::notes) after everything already queued there, a
    /// mark to tell what the daemon sent before and after a moment.
    pub fn mark_notes(&self, text: &str) {
        let sock = UnixDatagram::unbound().expect("an unbound datagram socket");
        sock.send_to(text.as_bytes(), self.dir.path().join("notify"))
            .expect("sending a mark to the notify socket");
    }

    /// [`notes`](Self::notes), each with when the test received it.
    pub fn timed_notes(&self) -> Vec<(Instant, String)> {
        self.notes.lock().unwrap().clone()
    }

    /// The last `STATUS=` line, e.g. `active: holds 1/1 groups; peers up: node-b`.
    pub fn status(&self) -> Option<String> {
        self.notes().iter().rev().find_map(|n| {
            n.lines()
                .find_map(|l| l.strip_prefix("STATUS="))
                .map(str::to_owned)
        })
    }

    /// The daemon's stderr so far (all its starts).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A mark for [`log_since`](Self::log_since): the log's length now.
    pub fn log_mark(&self) -> usize {
        self.log().len()
    }

    /// The log written after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        self.log().get(mark..).unwrap_or_default().to_owned()
    }

    /// Waits until the log (after `mark`) contains `needle`.
    pub fn wait_log_since(&mut self, mark: usize, deadline: Duration, needle: &str) {
        let what = format!("{}'s log to show {needle:?}", self.node);
        self.wait(deadline, &what, |d| d.log_since(mark).contains(needle));
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&mut self, deadline: Duration, needle: &str) {
        self.wait_log_since(0, deadline, needle);
    }

    /// `wait_until`, but failing at once (with the log) if the daemon exits.
    pub fn wait(&mut self, deadline: Duration, what: &str, mut cond: impl FnMut(&Daemon) -> bool) {
        wait_until(deadline, what, || {
            if cond(self) {
                return true;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("{} exited ({status}) while waiting for {what}", self.node);
            }
            false
        });
    }

    /// Sends `sig` to the daemon, by its PID.
    pub fn kill(&self, sig: libc::c_int) {
        assert!(self.child.is_some(), "{} is not running", self.node);
        // SAFETY: kill(2) on the PID of our own, not yet reaped, child.
        let rc = unsafe { libc::kill(self.pid, sig) };
        assert_eq!(
            rc,
            0,
            "kill({}, {sig}): {}",
            self.pid,
            std::io::Error::last_os_error()
        );
    }

    /// Waits (at most `deadline`) for the daemon to exit and reaps it.
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let node = self.node.clone();
        let mut status = None;
        wait_until(deadline, &format!("{node} to exit"), || {
            let child = self.child.as_mut().expect("daemon not running");
            match child.try_wait() {
                Ok(Some(s)) => {
                    status = Some(s);
                    true
                }
                Ok(None) => false,
                Err(e) => panic!("waiting for {node}: {e}"),
            }
        });
        self.child = None;
        status.expect("exited")
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs `harust release-local` for this node in its namespace (what
    /// the unit's ExecStopPost= does) and returns its stdout.
    pub fn release_local(&self) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, env!("CARGO_BIN_EXE_harust")])
            .arg("release-local")
            .arg("--config-dir")
            .arg(self.dir.path())
            .args(["--node", &self.node])
            .env("HARUST_LOG_TARGET", "stderr")
            .output()
            .expect("running harust release-local");
        assert!(
            out.status.success(),
            "release-local for {} failed ({}): {}",
            self.node,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Kills the daemon with SIGKILL and reaps it (no-op if not running).
    fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: kill(2) on our own child's PID; not yet reaped.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                thread::sleep(Duration::from_millis(5));
            }
            eprintln!(
                "cleanup: {} (pid {}) did not exit after SIGKILL",
                self.node, self.pid
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.reap();
        self.stop_reader.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if thread::panicking() || std::env::var_os("HARUST_TEST_LOGS").is_some() {
            eprintln!(
                "----- log of {} ({}) -----\n{}----- end of {} -----",
                self.node,
                self.log_path().display(),
                self.log(),
                self.node
            );
        }
    }
}
