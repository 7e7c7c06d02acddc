//! Network namespaces for privileged tests.
//!
//! Every namespace gets a unique name (`hr-<pid>-<n>-<tag>`) and is deleted
//! when its guard drops, also when the test panics. Nothing is ever created
//! in the root namespace: veth pairs are made by `ip` running *inside* a
//! test namespace, with the other end placed straight into its peer.
//!
//! Addresses: 198.18.0.0/15 and 2001:db8::/32 only (DESIGN.md, "Network
//! safety").

#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Checks that privileged tests can run here (root, `ip`, namespaces).
///
/// Returns `true` if they can. Otherwise, under `CI=true` it panics; outside
/// CI it prints `SKIPPED: <test>: <reason>` to stderr (uncaptured) and
/// returns `false`,
/// and the caller returns. Use it through [`require_privileged!`].
pub fn privileged(test: &str) -> bool {
    let reason = if unsafe { libc::geteuid() } != 0 {
        Some("not root".to_owned())
    } else {
        missing_tool("ip", "-V")
    };
    can_run(test, reason)
}

/// Like [`privileged`], for an extra tool a test needs (`tcpdump`, ...):
/// runs `tool version_arg` to see that it is there.
pub fn has_tool(test: &str, tool: &str, version_arg: &str) -> bool {
    can_run(test, missing_tool(tool, version_arg))
}

fn missing_tool(tool: &str, version_arg: &str) -> Option<String> {
    match Command::new(tool).arg(version_arg).output() {
        Err(e) => Some(format!("`{tool}` not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!("`{tool} {version_arg}` failed")),
        Ok(_) => None,
    }
}

fn can_run(test: &str, reason: Option<String>) -> bool {
    match reason {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("privileged test {test} cannot run under CI=true: {why}")
        }
        Some(why) => {
            // Straight to fd 2: libtest captures eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {test}: {why} ***\n");
            false
        }
    }
}

/// `require_privileged!();` at the top of a test: returns early (loudly) or
/// fails under CI, see [`privileged`].
#[macro_export]
macro_rules! require_privileged {
    () => {
        if !$crate::support::netns::privileged(module_path!()) {
            return;
        }
    };
    ($name:expr) => {
        if !$crate::support::netns::privileged($name) {
            return;
        }
    };
}

/// Polls `cond` until it holds, for at most `deadline`. Panics naming `what`
/// and how long it waited if it never does.
pub fn wait_until(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        if cond() {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Runs a command, panicking with its stderr if it fails.
pub fn run_ok(argv: &[&str]) -> Output {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace owned by the test; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `hr-<pid>-<n>-<tag>` with `lo` up and IPv6 DAD off (so test
    /// addresses are usable at once).
    pub fn new(tag: &str) -> Netns {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("hr-{}-{n}-{tag}", std::process::id());
        run_ok(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        for key in ["all", "default"] {
            ns.sysctl(&format!("net/ipv6/conf/{key}/accept_dad"), "0");
        }
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME argv...`, whatever its status.
    pub fn exec(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {argv:?} in {}: {e}", self.name))
    }

    /// Like [`exec`](Self::exec), but panics with stderr unless it succeeds.
    pub fn exec_ok(&self, argv: &[&str]) -> Output {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} in {} failed ({}): {}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `argv` in the namespace and parses its stdout as JSON
    /// (for `ip -j ...`).
    pub fn json(&self, argv: &[&str]) -> serde_json::Value {
        let out = self.exec_ok(argv);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{argv:?} in {}: bad JSON: {e}", self.name))
    }

    /// Writes a sysctl of this namespace; `key` is the path under
    /// `/proc/sys`, e.g. `net/ipv4/conf/eth0/promote_secondaries`.
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec_ok(&["sh", "-c", &format!("echo {value} > /proc/sys/{key}")]);
    }

    /// Reads a sysctl of this namespace.
    pub fn read_sysctl(&self, key: &str) -> String {
        let out = self.exec_ok(&["cat", &format!("/proc/sys/{key}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The MAC address of `iface`, lowercase `aa:bb:..`.
    pub fn mac(&self, iface: &str) -> String {
        let v = self.json(&["ip", "-j", "link", "show", "dev", iface]);
        v[0]["address"]
            .as_str()
            .unwrap_or_else(|| panic!("{iface} in {} has no MAC", self.name))
            .to_owned()
    }

    /// `ip -j addr show dev IFACE`, as (address, prefix, label) triples.
    pub fn addrs(&self, iface: &str) -> Vec<serde_json::Value> {
        let v = self.json(&["ip", "-j", "addr", "show", "dev", iface]);
        v[0]["addr_info"].as_array().cloned().unwrap_or_default()
    }

    /// Whether `addr` is on `iface`.
    pub fn has_addr(&self, iface: &str, addr: &str) -> bool {
        self.addrs(iface)
            .iter()
            .any(|a| a["local"].as_str() == Some(addr))
    }

    /// The link-layer address of the neighbour entry for `ip` on `iface`, if
    /// any.
    pub fn neigh_mac(&self, iface: &str, ip: &str) -> Option<String> {
        let v = self.json(&["ip", "-j", "neigh", "show", "dev", iface, "to", ip]);
        v.as_array()?
            .iter()
            .find(|e| e["dst"].as_str() == Some(ip))
            .and_then(|e| e["lladdr"].as_str().map(str::to_owned))
    }

    /// `ip link set IFACE up` and wait until its operstate is UP (carrier on
    /// both veth ends).
    pub fn wait_oper_up(&self, iface: &str) {
        wait_until(
            Duration::from_secs(5),
            &format!("{iface} in {} to be operationally UP", self.name),
            || {
                let v = self.json(&["ip", "-j", "link", "show", "dev", iface]);
                v[0]["operstate"].as_str() == Some("UP")
            },
        );
    }

    /// Runs `f()` to completion on a new thread that has entered this
    /// namespace (`setns`), on a current-thread tokio runtime, and returns its
    /// output. A panic inside is re-raised here.
    ///
    /// Sockets and netlink connections made inside belong to this namespace.
    /// Do not use `spawn_blocking` or `tokio::fs` inside: their threads are
    /// not in the namespace.
    pub fn run<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = T>,
        T: Send,
    {
        thread::scope(|s| {
            let h = s.spawn(|| {
                self.enter_current_thread();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building a tokio runtime");
                rt.block_on(f())
            });
            match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Like [`run`](Self::run) but in the background: returns at once; join
    /// the handle for the output.
    pub fn spawn<F, Fut, T>(&self, f: F) -> thread::JoinHandle<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = self.path();
        thread::spawn(move || {
            enter(&path);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a tokio runtime");
            rt.block_on(f())
        })
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    fn enter_current_thread(&self) {
        enter(&self.path());
    }
}

/// `setns(CLONE_NEWNET)` for the calling thread only.
fn enter(path: &str) {
    let f = File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: f is an open namespace fd; setns affects this thread only.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Best effort: report, never panic in drop (it may run in a panic).
        match Command::new("ip")
            .args(["netns", "del", &self.name])
            .output()
        {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cleanup: ip netns del {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cleanup: ip netns del {}: {e}", self.name),
        }
    }
}

/// Connects `a:a_if` and `b:b_if` with a veth pair. `ip` runs inside `a` and
/// puts the peer straight into `b`; nothing touches the root namespace.
/// Both ends are set up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    a.exec_ok(&[
        "ip",
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ]);
    a.exec_ok(&["ip", "link", "set", a_if, "up"]);
    b.exec_ok(&["ip", "link", "set", b_if, "up"]);
}

/// A node on a [`Topology`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    A,
    B,
    C,
}

impl Node {
    /// The host part of the node's addresses: A=1, B=2, C=3.
    pub fn host(self) -> u8 {
        match self {
            Node::A => 1,
            Node::B => 2,
            Node::C => 3,
        }
    }
}

/// A switched LAN: a bridge namespace holding one bridge per link
/// (`br0`, `br1`, ...), HA nodes A and B with `eth0..eth{links-1}`, and a
/// client C with `eth0` on link 0.
///
/// Link `i` is 198.18.{i+1}.0/24 and 2001:db8:{i+1}::/64; node A is host 1,
/// B host 2, C host 3 (so A's eth0 is 198.18.1.1/24 and 2001:db8:1::1/64).
/// Every namespace has a unique name, so topologies in parallel tests never
/// meet. Later tests run real daemons in A and B with `ip netns exec`.
#[derive(Debug)]
pub struct Topology {
    pub a: Netns,
    pub b: Netns,
    pub c: Netns,
    /// Declared last so the nodes' veths go first; deleting any end kills
    /// the pair anyway.
    pub bridge: Netns,
    links: usize,
}

impl Topology {
    /// One link (eth0 on br0).
    pub fn new(tag: &str) -> Topology {
        Topology::with_links(tag, 1)
    }

    /// `links` links between A and B; C sits on link 0 only.
    pub fn with_links(tag: &str, links: usize) -> Topology {
        assert!((1..=8).contains(&links), "1..=8 links");
        let bridge = Netns::new(&format!("{tag}-br"));
        let a = Netns::new(&format!("{tag}-a"));
        let b = Netns::new(&format!("{tag}-b"));
        let c = Netns::new(&format!("{tag}-c"));
        let t = Topology {
            a,
            b,
            c,
            bridge,
            links,
        };
        for i in 0..links {
            let br = format!("br{i}");
            t.bridge.exec_ok(&[
                "ip",
                "link",
                "add",
                &br,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ]);
            t.bridge.exec_ok(&["ip", "link", "set", &br, "up"]);
            let mut nodes = vec![Node::A, Node::B];
            if i == 0 {
                nodes.push(Node::C);
            }
            for node in nodes {
                let port = format!("{}{i}", format!("{node:?}").to_lowercase());
                let eth = format!("eth{i}");
                veth(&t.bridge, &port, t.node(node), &eth);
                t.bridge
                    .exec_ok(&["ip", "link", "set", &port, "master", &br]);
                let ns = t.node(node);
                let v4 = format!("{}/24", Topology::ipv4(node, i));
                let v6 = format!("{}/64", Topology::ipv6(node, i));
                ns.exec_ok(&["ip", "addr", "add", &v4, "dev", &eth]);
                ns.exec_ok(&["ip", "addr", "add", &v6, "dev", &eth, "nodad"]);
            }
        }
        for i in 0..links {
            let eth = format!("eth{i}");
            t.a.wait_oper_up(&eth);
            t.b.wait_oper_up(&eth);
        }
        t.c.wait_oper_up("eth0");
        t
    }

    pub fn links(&self) -> usize {
        self.links
    }

    pub fn node(&self, node: Node) -> &Netns {
        match node {
            Node::A => &self.a,
            Node::B => &self.b,
            Node::C => &self.c,
        }
    }

    /// The node's IPv4 address on link `link`: 198.18.{link+1}.{host}.
    pub fn ipv4(node: Node, link: usize) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, link as u8 + 1, node.host())
    }

    /// The node's IPv6 address on link `link`: 2001:db8:{link+1}::{host}.
    pub fn ipv6(node: Node, link: usize) -> Ipv6Addr {
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            link as u16 + 1,
            0,
            0,
            0,
            0,
            node.host().into(),
        )
    }
}

/// A running `tcpdump -l -n -v -c COUNT` in a namespace, started and known
/// to be listening. Killed (by its own PID) if dropped unfinished.
#[derive(Debug)]
pub struct Capture {
    child: Option<std::process::Child>,
    what: String,
}

impl Capture {
    /// Starts capturing `count` packets matching `filter` on `iface` and
    /// returns once tcpdump reports it is listening.
    pub fn start(ns: &Netns, iface: &str, filter: &str, count: usize) -> Capture {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;
        let what = format!("tcpdump on {iface} in {} for {filter:?}", ns.name());
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "tcpdump",
                "-l",
                "-n",
                "-v",
                "-i",
                iface,
            ])
            .args(["-c", &count.to_string()])
            .args(filter.split_whitespace())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let mut cap = Capture {
            child: Some(child),
            what,
        };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            cap.kill();
            panic!("timed out waiting for {} to listen", cap.what);
        }
        cap
    }

    /// Waits (at most `deadline`) for the capture to finish and returns what
    /// tcpdump printed.
    pub fn finish(mut self, deadline: Duration) -> String {
        // The child stays in `self` while waiting, so a timeout panic kills
        // it in Drop.
        let what = format!("{} to capture its packets", self.what);
        wait_until(deadline, &what, || {
            let child = self.child.as_mut().expect("not finished yet");
            matches!(child.try_wait(), Ok(Some(_)))
        });
        let child = self.child.take().expect("not finished yet");
        let out = child.wait_with_output().expect("tcpdump output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.kill();
    }
}
