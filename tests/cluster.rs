//! Two real `harust daemon` processes, node-a in namespace A and node-b in
//! B, on a bridged LAN with a client C (support::Topology). Groups hold
//! floating addresses only. Each test builds its own topology and checks
//! what a client and an operator would see: who has the address (`ip -j
//! addr`), where C's neighbour entry for it points, which node answers a
//! TCP connection to it, the daemons' logs and exit statuses.
//!
//! Timings are short (keepalive 50 ms, deadtime 300 ms) so the suite is
//! fast; timed bounds carry a generous margin, since they are checks, not
//! benchmarks. Takeover times are printed (`--nocapture` shows them).

mod support;

use std::io::Read;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use harust::wire::{self, Keyring, Message, Method};
use support::daemon::{Daemon, HaConfig, node_name};
use support::{Netns, Node, Topology, wait_until};

const VIP: &str = "198.18.1.100";
const VIP2: &str = "198.18.1.101";
const VIP6: &str = "2001:db8:1::100";
/// The port of the test's tiny TCP service on A and B.
const PORT: u16 = 8080;
/// Bound for starting daemons, commands, and anything not timed.
const LONG: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------
// Observation helpers
// ---------------------------------------------------------------------

fn has_vip(ns: &Netns, addr: &str) -> bool {
    ns.has_addr("eth0", addr)
}

/// Which of A and B have `addr` configured.
fn holders(t: &Topology, addr: &str) -> Vec<Node> {
    [Node::A, Node::B]
        .into_iter()
        .filter(|&n| has_vip(t.node(n), addr))
        .collect()
}

/// Like `wait_until`, polling every few milliseconds, and returns how long
/// the condition took to hold (for takeover times).
fn timed_wait(deadline: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        thread::sleep(Duration::from_millis(3));
    }
}

/// Checks `cond` repeatedly for `window`: it must hold every time. This is
/// an observation window for "nothing changes", not a wait for an event.
fn holds_throughout(window: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut checks = 0;
    while start.elapsed() < window {
        assert!(
            cond(),
            "{what} stopped holding after {:?} ({checks} checks passed)",
            start.elapsed()
        );
        checks += 1;
        thread::sleep(Duration::from_millis(10));
    }
}

/// A tiny TCP service bound to [::]:PORT (IPv4 too) in a namespace: it writes its
/// node's name to every connection and closes it. Stopped on drop.
struct Hello {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Hello {
    fn start(ns: &Netns, node: Node) -> Hello {
        let name = node_name(node);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let flag = stop.clone();
        let thread = ns.spawn(move || async move {
            let listener = tokio::net::TcpListener::bind((Ipv6Addr::UNSPECIFIED, PORT))
                .await
                .expect("binding the hello service");
            tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                let accepted =
                    tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
                if let Ok(Ok((mut s, _))) = accepted {
                    use tokio::io::AsyncWriteExt;
                    let _ = s.write_all(name.as_bytes()).await;
                    let _ = s.shutdown().await;
                }
            }
        });
        rx.recv_timeout(LONG).expect("hello service listening");
        Hello {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Hello {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// From C: connect to `addr:PORT` and read who answers.
fn ask(c: &Netns, addr: &str) -> Option<String> {
    let to = SocketAddr::new(addr.parse::<IpAddr>().unwrap(), PORT);
    c.run(|| async move {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_millis(300)).ok()?;
        s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        Some(answer)
    })
}

/// Waits until C, connecting to `addr`, is answered by `node`.
fn wait_answered_by(t: &Topology, addr: &str, node: Node) {
    let want = node_name(node);
    let mut last = None;
    wait_until(LONG, &format!("C to reach {want} through {addr}"), || {
        last = ask(&t.c, addr);
        last.as_deref() == Some(want)
    });
}

/// C's neighbour entry for `addr`, if any.
fn c_neigh(t: &Topology, addr: &str) -> Option<String> {
    t.c.neigh_mac("eth0", addr)
}

fn start(t: &Topology, node: Node, cfg: &HaConfig) -> Daemon {
    let mut d = Daemon::start(t.node(node), node, cfg);
    d.wait_ready(LONG);
    d
}

/// Starts A, then B once A is ready, and waits until each sees the other
/// up. Starting A first makes it the first holder even with auto_failback
/// off. Returns (A, B).
fn start_pair(t: &Topology, cfg: &HaConfig) -> (Daemon, Daemon) {
    let mut a = start(t, Node::A, cfg);
    let mut b = start(t, Node::B, cfg);
    a.wait_log(LONG, "node node-b is up");
    b.wait_log(LONG, "node node-a is up");
    (a, b)
}

/// The common start: A and B up, A holding VIP, C served by A through it.
fn a_holds_and_serves(t: &Topology, cfg: &HaConfig) -> (Daemon, Daemon, Hello, Hello) {
    a_holds_and_serves_at(t, cfg, VIP)
}

fn a_holds_and_serves_at(
    t: &Topology,
    cfg: &HaConfig,
    vip: &str,
) -> (Daemon, Daemon, Hello, Hello) {
    let (a, b) = start_pair(t, cfg);
    let ha = Hello::start(&t.a, Node::A);
    let hb = Hello::start(&t.b, Node::B);
    wait_until(LONG, "A to hold the VIP", || has_vip(&t.a, vip));
    wait_answered_by(t, vip, Node::A);
    assert_eq!(holders(t, vip), vec![Node::A], "only A holds the VIP");
    assert_eq!(
        c_neigh(t, vip).as_deref(),
        Some(t.a.mac("eth0").as_str()),
        "C reached the VIP at A's MAC"
    );
    (a, b, ha, hb)
}

fn takeover_bound(cfg: &HaConfig) -> Duration {
    Duration::from_millis(cfg.deadtime_ms + cfg.keepalive_ms + 1000)
}

/// After A lost the VIP by `how`: B holds it within deadtime, plus a
/// keepalive, plus 1 s; and C's neighbour entry moves to B's MAC by B's
/// announcement (the entry had been A's and is not left to expire).
fn b_takes_over(t: &Topology, cfg: &HaConfig, since: Instant, how: &str) {
    b_takes_over_at(t, cfg, since, how, VIP);
}

fn b_takes_over_at(t: &Topology, cfg: &HaConfig, since: Instant, how: &str, vip: &str) {
    let bound = takeover_bound(cfg);
    timed_wait(bound, &format!("B to hold {vip} after {how}"), || {
        has_vip(&t.b, vip)
    });
    let took = since.elapsed();
    eprintln!("takeover after {how}: B holds the VIP {took:?} after it");
    assert!(took <= bound, "takeover took {took:?} > {bound:?}");
    let b_mac = t.b.mac("eth0");
    wait_until(
        Duration::from_secs(3),
        &format!("C's neighbour entry for {vip} to move to B's MAC (GARP/NA)"),
        || c_neigh(t, vip).as_deref() == Some(b_mac.as_str()),
    );
}

// ---------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------

#[test]
fn preferred_node_holds_vip_and_serves_client() {
    require_privileged!("preferred_node_holds_vip_and_serves_client");
    let t = Topology::new("cl-serve");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    // Settled: A active with its group, B a standby that sees A.
    wait_until(LONG, "A's status to show it holds 1/1", || {
        a.status()
            .is_some_and(|s| s.starts_with("active: holds 1/1 groups"))
    });
    wait_until(LONG, "B's status to show it holds 0/1", || {
        b.status()
            .is_some_and(|s| s.starts_with("standby: holds 0/1 groups"))
    });
}

#[test]
fn kill_9_of_holder_fails_over_within_deadtime() {
    require_privileged!("kill_9_of_holder_fails_over_within_deadtime");
    let t = Topology::new("cl-kill");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (mut a, mut b, _ha, _hb) = a_holds_and_serves(&t, &cfg);

    let killed = Instant::now();
    a.kill(libc::SIGKILL);
    b_takes_over(&t, &cfg, killed, "kill -9 of A");
    assert!(!a.wait_exit(LONG).success());
    b.wait_log(LONG, "node node-a is dead");

    // A's kernel still has the address (nothing ran ExecStopPost=); the
    // unit's ExecStopPost= is release-local.
    assert!(has_vip(&t.a, VIP), "kill -9 leaves the VIP on A");
    let out = a.release_local();
    assert!(out.contains("removed 1 address"), "release-local: {out}");
    assert!(!has_vip(&t.a, VIP));
    wait_answered_by(&t, VIP, Node::B);
    assert_eq!(holders(&t, VIP), vec![Node::B]);
}

#[test]
fn kill_9_of_ipv6_vip_holder_fails_over_with_unsolicited_na() {
    require_privileged!("kill_9_of_ipv6_vip_holder_fails_over_with_unsolicited_na");
    let t = Topology::new("cl-kill6");
    let cfg = HaConfig::fast().group(Node::A, &[&format!("IPv6addr::{VIP6}/64/eth0")]);
    let (mut a, _b, _ha, _hb) = a_holds_and_serves_at(&t, &cfg, VIP6);

    let killed = Instant::now();
    a.kill(libc::SIGKILL);
    b_takes_over_at(&t, &cfg, killed, "kill -9 of A (IPv6)", VIP6);
    a.wait_exit(LONG);
    let out = a.release_local();
    assert!(out.contains("removed 1 address"), "release-local: {out}");
    assert!(!has_vip(&t.a, VIP6));
    wait_answered_by(&t, VIP6, Node::B);
    assert_eq!(holders(&t, VIP6), vec![Node::B]);
}

#[test]
fn link_cut_of_holder_fails_over_then_heals_to_one_holder() {
    require_privileged!("link_cut_of_holder_fails_over_then_heals_to_one_holder");
    let t = Topology::new("cl-link");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);

    let cut = Instant::now();
    t.a.exec_ok(&["ip", "link", "set", "eth0", "down"]);
    b_takes_over(&t, &cfg, cut, "A's link cut");
    // A is cut off, so only B answers on the LAN.
    wait_answered_by(&t, VIP, Node::B);

    // Heal: A (preferred, auto_failback on) keeps the group, B gives it
    // up, and C is pointed back at A.
    let (ma, mb) = (a.log_mark(), b.log_mark());
    t.a.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    t.a.wait_oper_up("eth0");
    wait_until(LONG, "the split brain to be resolved", || {
        a.log_since(ma).contains("split brain") || b.log_since(mb).contains("split brain")
    });
    wait_until(LONG, "A to be the only holder", || {
        holders(&t, VIP) == [Node::A]
    });
    let a_mac = t.a.mac("eth0");
    wait_until(LONG, "C's neighbour entry to point at A again", || {
        c_neigh(&t, VIP).as_deref() == Some(a_mac.as_str())
    });
    wait_answered_by(&t, VIP, Node::A);
    holds_throughout(
        Duration::from_millis(3 * cfg.deadtime_ms),
        "A alone holding the VIP",
        || holders(&t, VIP) == [Node::A],
    );
}

#[test]
fn graceful_stop_hands_over_before_deadtime_and_exits_0() {
    require_privileged!("graceful_stop_hands_over_before_deadtime_and_exits_0");
    let t = Topology::new("cl-term");
    // A long deadtime: a handover that waited for it would miss the bound.
    let cfg = HaConfig::fast()
        .timings(200, 2000, 4000)
        .vip_group(Node::A, &[VIP]);
    let (mut a, mut b, _ha, _hb) = a_holds_and_serves(&t, &cfg);

    let stop = Instant::now();
    a.kill(libc::SIGTERM);
    let took = timed_wait(
        Duration::from_secs(1),
        "B to hold the VIP after SIGTERM to A",
        || has_vip(&t.b, VIP),
    );
    eprintln!("graceful handover: B holds the VIP {took:?} after SIGTERM (deadtime 2 s)");
    let status = a.wait_exit(LONG);
    eprintln!("A exited {:?} after SIGTERM", stop.elapsed());
    assert!(status.success(), "A's daemon exited with {status}");
    assert!(!has_vip(&t.a, VIP), "A removed the VIP before exiting");
    b.wait_log(LONG, "node node-a stopped gracefully");
    let b_mac = t.b.mac("eth0");
    wait_until(LONG, "C's neighbour entry to move to B's MAC", || {
        c_neigh(&t, VIP).as_deref() == Some(b_mac.as_str())
    });
    wait_answered_by(&t, VIP, Node::B);
}

#[test]
fn auto_failback_on_returns_group_to_restarted_preferred_node() {
    require_privileged!("auto_failback_on_returns_group_to_restarted_preferred_node");
    let t = Topology::new("cl-fbon");
    let cfg = HaConfig::fast()
        .auto_failback("on")
        .vip_group(Node::A, &[VIP]);
    let (mut a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    a.kill(libc::SIGKILL);
    b_takes_over(&t, &cfg, Instant::now(), "kill -9 of A");
    a.wait_exit(LONG);
    a.release_local();

    let mb = b.log_mark();
    let back = Instant::now();
    a.restart();
    a.wait_ready(LONG);
    wait_until(LONG, "A to hold the VIP again and B to release it", || {
        holders(&t, VIP) == [Node::A]
    });
    eprintln!(
        "failback: A alone holds the VIP {:?} after its restart",
        back.elapsed()
    );
    assert!(b.log_since(mb).contains("released group"));
    let a_mac = t.a.mac("eth0");
    wait_until(LONG, "C's neighbour entry to move back to A's MAC", || {
        c_neigh(&t, VIP).as_deref() == Some(a_mac.as_str())
    });
    wait_answered_by(&t, VIP, Node::A);
    // B's announcements from its takeover (five rounds over 800 ms) stop
    // when it lets the address go: C must not be pointed back at B.
    holds_throughout(
        Duration::from_secs(1),
        "C's entry to stay on A's MAC",
        || c_neigh(&t, VIP).as_deref() == Some(a_mac.as_str()),
    );
}

/// A killed with -9, then restarted with auto_failback off: B keeps the
/// group. With `release_first`, A's address was removed as ExecStopPost=
/// would; otherwise A finds its own stale address and removes it itself.
fn survivor_keeps_group_when_a_returns(tag: &str, release_first: bool) {
    let t = Topology::new(tag);
    let cfg = HaConfig::fast()
        .auto_failback("off")
        .vip_group(Node::A, &[VIP]);
    let (mut a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    a.kill(libc::SIGKILL);
    b_takes_over(&t, &cfg, Instant::now(), "kill -9 of A");
    a.wait_exit(LONG);
    assert!(has_vip(&t.a, VIP), "kill -9 leaves the VIP on A");
    if release_first {
        a.release_local();
    }

    let ma = a.log_mark();
    a.restart();
    a.wait_ready(LONG);
    if !release_first {
        assert!(
            a.log_since(ma)
                .contains("is up although this daemon holds nothing"),
            "A reports its stale address before READY=1"
        );
    }
    wait_until(LONG, "A's stale VIP to be gone", || !has_vip(&t.a, VIP));
    a.wait_log_since(ma, LONG, "node node-b is up");
    a.wait_log_since(ma, LONG, "communication with the cluster is up");
    holds_throughout(
        Duration::from_millis(3 * cfg.deadtime_ms),
        "B alone holding the VIP after A's return",
        || holders(&t, VIP) == [Node::B],
    );
    assert!(!a.log_since(ma).contains("acquiring group"));
    let b_mac = t.b.mac("eth0");
    assert_eq!(c_neigh(&t, VIP).as_deref(), Some(b_mac.as_str()));
    wait_answered_by(&t, VIP, Node::B);
    drop(b);
}

#[test]
fn auto_failback_off_survivor_keeps_group_when_preferred_returns() {
    require_privileged!("auto_failback_off_survivor_keeps_group_when_preferred_returns");
    survivor_keeps_group_when_a_returns("cl-fboff", true);
}

#[test]
fn restarted_node_removes_its_stale_vip_while_peer_holds_group() {
    require_privileged!("restarted_node_removes_its_stale_vip_while_peer_holds_group");
    survivor_keeps_group_when_a_returns("cl-stale", false);
}

#[test]
fn two_groups_are_held_one_on_each_preferred_node() {
    require_privileged!("two_groups_are_held_one_on_each_preferred_node");
    let t = Topology::new("cl-two");
    let cfg = HaConfig::fast()
        .vip_group(Node::A, &[VIP])
        .vip_group(Node::B, &[VIP2]);
    let (a, b) = start_pair(&t, &cfg);
    let _ha = Hello::start(&t.a, Node::A);
    let _hb = Hello::start(&t.b, Node::B);
    wait_until(LONG, "A to hold VIP and B VIP2, each alone", || {
        holders(&t, VIP) == [Node::A] && holders(&t, VIP2) == [Node::B]
    });
    holds_throughout(
        Duration::from_millis(3 * cfg.deadtime_ms),
        "one group on each node",
        || holders(&t, VIP) == [Node::A] && holders(&t, VIP2) == [Node::B],
    );
    wait_answered_by(&t, VIP, Node::A);
    wait_answered_by(&t, VIP2, Node::B);
    for d in [&a, &b] {
        wait_until(
            LONG,
            &format!("{}'s status to show 1/2 held", d.node),
            || {
                d.status()
                    .is_some_and(|s| s.starts_with("active: holds 1/2 groups"))
            },
        );
    }
}

/// Drops heartbeats (UDP 694) forwarded between A's and B's bridge ports.
fn partition(t: &Topology) {
    let br = &t.bridge;
    br.exec_ok(&["nft", "add", "table", "bridge", "harust_test"]);
    br.exec_ok(&[
        "nft",
        "add",
        "chain",
        "bridge",
        "harust_test",
        "hr_forward",
        "{ type filter hook forward priority 0 ; policy accept ; }",
    ]);
    for (from, to) in [("a0", "b0"), ("b0", "a0")] {
        br.exec_ok(&[
            "nft",
            "add",
            "rule",
            "bridge",
            "harust_test",
            "hr_forward",
            "iifname",
            from,
            "oifname",
            to,
            "udp",
            "dport",
            "694",
            "drop",
        ]);
    }
}

fn heal(t: &Topology) {
    t.bridge
        .exec_ok(&["nft", "delete", "table", "bridge", "harust_test"]);
}

#[test]
fn partition_with_both_holding_heals_to_exactly_one_holder() {
    require_privileged!("partition_with_both_holding_heals_to_exactly_one_holder");
    if !support::netns::has_tool(
        "partition_with_both_holding_heals_to_exactly_one_holder",
        "nft",
        "--version",
    ) {
        return;
    }
    let t = Topology::new("cl-part");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (mut a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);

    let cut = Instant::now();
    partition(&t);
    // B declares A dead and takes the group; A, cut off from B only,
    // keeps it: both hold.
    b_takes_over(&t, &cfg, cut, "a partition");
    a.wait_log(LONG, "node node-b is dead");
    assert_eq!(holders(&t, VIP), [Node::A, Node::B], "both sides hold");

    let (ma, mb) = (a.log_mark(), b.log_mark());
    let healed = Instant::now();
    heal(&t);
    wait_until(LONG, "the split brain to be resolved", || {
        a.log_since(ma).contains("split brain") || b.log_since(mb).contains("split brain")
    });
    wait_until(LONG, "exactly one holder", || holders(&t, VIP).len() == 1);
    let keeper = holders(&t, VIP)[0];
    eprintln!(
        "after the heal {} alone holds the VIP {:?} after healing",
        node_name(keeper),
        healed.elapsed()
    );
    holds_throughout(
        Duration::from_millis(3 * cfg.deadtime_ms),
        "exactly one holder after the heal",
        || holders(&t, VIP) == [keeper],
    );
    let keeper_mac = t.node(keeper).mac("eth0");
    wait_until(LONG, "C's neighbour entry to point at the keeper", || {
        c_neigh(&t, VIP).as_deref() == Some(keeper_mac.as_str())
    });
    wait_answered_by(&t, VIP, keeper);
}

/// A heartbeat `status` from `src`, as a peer would send it, but signed
/// with a key the cluster does not have.
fn forged_status(src: &str, seq: u64) -> Vec<u8> {
    let mut m = Message::new("status");
    m.add_str("st", "active")
        .add_hex("dt", 300)
        .add_str("protocol", "1")
        .add_str("src", src)
        .add_bin("srcuuid", &[7; 16])
        .add_hex("seq", seq)
        .add_hex("hg", 0x7000_0000)
        .add_hex("ts", 0x7000_0000)
        .add_str("ttl", "3");
    let wrong = Keyring::single(Method::Sha1(b"not-the-cluster-secret".to_vec()));
    wire::encode(&m, &wrong)
}

#[test]
fn packets_with_wrong_key_are_dropped_logged_once_and_change_nothing() {
    require_privileged!("packets_with_wrong_key_are_dropped_logged_once_and_change_nothing");
    let t = Topology::new("cl-auth");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    let (ma, mb) = (a.log_mark(), b.log_mark());

    // A socket made in C sends from C wherever it is used.
    let sock: UdpSocket = t.c.run(|| async { UdpSocket::bind("0.0.0.0:0").unwrap() });
    let a_addr = SocketAddr::from((Topology::ipv4(Node::A, 0), 694));
    let b_addr = SocketAddr::from((Topology::ipv4(Node::B, 0), 694));
    let mut seq = 1;
    let mut sent = 0;
    // Spoof each node to the other, for several deadtimes: the forged
    // beats must neither count as the peer's nor disturb the real ones.
    holds_throughout(
        Duration::from_millis(4 * cfg.deadtime_ms),
        "A alone holding the VIP while forged packets arrive",
        || {
            for _ in 0..10 {
                sock.send_to(&forged_status("node-b", seq), a_addr).unwrap();
                sock.send_to(&forged_status("node-a", seq), b_addr).unwrap();
                seq += 1;
                sent += 2;
            }
            holders(&t, VIP) == [Node::A]
        },
    );
    let c_ip = Topology::ipv4(Node::C, 0).to_string();
    for (d, mark) in [(&a, ma), (&b, mb)] {
        let log = d.log_since(mark);
        let rejected: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("dropped packet from {c_ip}:")))
            .collect();
        assert_eq!(
            rejected.len(),
            1,
            "{}: one rate-limited line for {sent} forged packets, got: {rejected:#?}",
            d.node
        );
        assert!(
            rejected[0].contains("authentication failed"),
            "{}",
            rejected[0]
        );
        assert!(rejected[0].contains("HARUST_EVENT=packet-dropped"));
        for bad in [
            "is dead",
            "acquiring",
            "releasing",
            "split brain",
            "restarted",
        ] {
            assert!(!log.contains(bad), "{} logged {bad:?}:\n{log}", d.node);
        }
    }
    eprintln!("{sent} forged packets sent; each node logged one line");
    wait_answered_by(&t, VIP, Node::A);
}

/// Whether `d` logged (after `mark`) that its link over `iface` to `peer`
/// went `up` or `down`.
fn link_event(d: &Daemon, mark: usize, peer: &str, iface: &str, what: &str) -> bool {
    let event = format!("to {peer} is {what} ");
    let medium = format!("HARUST_LINK=ucast {iface} ");
    d.log_since(mark)
        .lines()
        .any(|l| l.contains(&event) && l.contains(&medium))
}

#[test]
fn losing_one_of_two_links_fails_nothing_over() {
    require_privileged!("losing_one_of_two_links_fails_nothing_over");
    let t = Topology::with_links("cl-2link", 2);
    let cfg = HaConfig::fast().links(2).vip_group(Node::A, &[VIP]);
    let (a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    // Each node sees the other on both links, although every message
    // reaches it twice and one copy is always the duplicate.
    for (d, peer) in [(&a, "node-b"), (&b, "node-a")] {
        for link in ["eth0", "eth1"] {
            wait_until(LONG, &format!("{} to see {peer} on {link}", d.node), || {
                link_event(d, 0, peer, link, "up")
            });
        }
    }
    let (ma, mb) = (a.log_mark(), b.log_mark());
    t.a.exec_ok(&["ip", "link", "set", "eth1", "down"]);
    wait_until(LONG, "B to see the link to A on eth1 go down", || {
        link_event(&b, mb, "node-a", "eth1", "down")
    });
    holds_throughout(
        Duration::from_millis(3 * cfg.deadtime_ms),
        "A alone holding the VIP with one link left",
        || holders(&t, VIP) == [Node::A],
    );
    for (d, m) in [(&a, ma), (&b, mb)] {
        let log = d.log_since(m);
        assert!(!log.contains("is dead"), "{}:\n{log}", d.node);
    }
    wait_answered_by(&t, VIP, Node::A);
}

#[test]
fn sigterm_of_lone_holder_removes_vip_and_exits_0() {
    require_privileged!("sigterm_of_lone_holder_removes_vip_and_exits_0");
    let t = Topology::new("cl-alone");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    // B never starts: A declares it dead after initdead and takes the group.
    let mut a = start(&t, Node::A, &cfg);
    a.wait_log(LONG, "node node-b is dead");
    wait_until(LONG, "A to hold the VIP alone", || has_vip(&t.a, VIP));
    a.kill(libc::SIGTERM);
    let status = a.wait_exit(LONG);
    assert!(status.success(), "A's daemon exited with {status}");
    assert!(!has_vip(&t.a, VIP), "A removed the VIP before exiting");
    assert!(a.log().contains("released group"));
}

#[test]
fn a_vip_deleted_behind_our_back_is_restored_and_logged() {
    require_privileged!("a_vip_deleted_behind_our_back_is_restored_and_logged");
    let t = Topology::new("cl-readd");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (mut a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    let mark = a.log_mark();
    // An operator (or a network script) removes the address.
    t.a.exec_ok(&["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
    let took = timed_wait(LONG, "A to put its VIP back", || has_vip(&t.a, VIP));
    println!("VIP restored {} ms after it was deleted", took.as_millis());
    a.wait_log_since(mark, LONG, "was lost: address 198.18.1.100 was removed");
    a.wait_log_since(mark, LONG, "was restored");
    // Nothing moved: A still holds the group, and B never took it.
    assert_eq!(holders(&t, VIP), vec![Node::A]);
    assert!(b.status().is_some_and(|s| s.starts_with("standby")));
    wait_answered_by(&t, VIP, Node::A);
}

/// Drops everything between two bridge ports, both ways: a cut cable
/// between two parts of the LAN.
fn cut_between(t: &Topology, x: &str, y: &str) {
    let br = &t.bridge;
    br.exec_ok(&["nft", "add", "table", "bridge", "harust_uplink"]);
    br.exec_ok(&[
        "nft",
        "add",
        "chain",
        "bridge",
        "harust_uplink",
        "cut",
        "{ type filter hook forward priority 0 ; policy accept ; }",
    ]);
    for (from, to) in [(x, y), (y, x)] {
        br.exec_ok(&[
            "nft",
            "add",
            "rule",
            "bridge",
            "harust_uplink",
            "cut",
            "iifname",
            from,
            "oifname",
            to,
            "drop",
        ]);
    }
}

#[test]
fn losing_the_ping_node_hands_the_group_to_the_peer_that_still_reaches_it() {
    require_privileged!("losing_the_ping_node_hands_the_group_to_the_peer_that_still_reaches_it");
    let t = Topology::new("cl-ping");
    // C is the ping node (a router, in real life): both A and B reach it.
    let cfg = HaConfig::fast()
        .vip_group(Node::A, &[VIP])
        .ping(IpAddr::V4(Topology::ipv4(Node::C, 0)));
    let (a, b, _ha, _hb) = a_holds_and_serves(&t, &cfg);
    // A's uplink to the ping node fails; the heartbeat link to B stays.
    let mark = b.log_mark();
    let cut = Instant::now();
    cut_between(&t, "a0", "c0");
    let took = timed_wait(LONG, "B to take the VIP over", || {
        holders(&t, VIP) == [Node::B]
    });
    println!(
        "B holds the VIP {} ms after A lost its ping node",
        took.as_millis()
    );
    assert!(cut.elapsed() < LONG);
    // No death: both still see each other, and A released on its own.
    assert!(
        !b.log_since(mark).contains("is dead"),
        "{}",
        b.log_since(mark)
    );
    assert!(a.log().contains("ping node 198.18.1.3 is unreachable"));
    assert!(!has_vip(&t.a, VIP));
}

fn default_route(ns: &Netns) -> String {
    String::from_utf8_lossy(&ns.exec_ok(&["ip", "-4", "route", "show", "default"]).stdout)
        .trim()
        .to_owned()
}

/// heartbeat's `IPsrcaddr::VIP`: the holder's default route takes the VIP
/// as its source. After a kill -9, release-local takes it off the route
/// before deleting the address (which would delete the route with it),
/// and the peer's default route takes it.
#[test]
fn ipsrcaddr_follows_the_group_and_release_local_keeps_the_default_route() {
    require_privileged!("ipsrcaddr_follows_the_group_and_release_local_keeps_the_default_route");
    let t = Topology::new("cl-src");
    for ns in [&t.a, &t.b] {
        ns.exec_ok(&["ip", "route", "add", "default", "via", "198.18.1.3"]);
    }
    let cfg = HaConfig::fast().group(
        Node::A,
        &[
            &format!("IPaddr::{VIP}/24/eth0"),
            &format!("IPsrcaddr::{VIP}"),
        ],
    );
    let (mut a, _b) = start_pair(&t, &cfg);
    let want = format!("src {VIP}");
    wait_until(LONG, "A's default route to take the VIP as source", || {
        default_route(&t.a).contains(&want)
    });
    assert!(!default_route(&t.b).contains(&want));

    a.kill(libc::SIGKILL);
    wait_until(LONG, "B's default route to take the VIP as source", || {
        default_route(&t.b).contains(&want)
    });
    a.wait_exit(LONG);
    let out = a.release_local();
    assert!(out.contains("removed 1 address"), "release-local: {out}");
    let r = default_route(&t.a);
    assert!(
        r.starts_with("default via 198.18.1.3"),
        "A's default route is gone: {r:?}"
    );
    assert!(!r.contains("src"), "{r}");
}

/// `ip -o monitor address` in a namespace, written to a file until
/// dropped (the monitor is killed by its PID).
struct AddrMonitor {
    child: std::process::Child,
    out: tempfile::NamedTempFile,
}

impl AddrMonitor {
    fn start(ns: &Netns) -> AddrMonitor {
        let out = tempfile::NamedTempFile::new().expect("a file for ip monitor");
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), "ip", "-o", "monitor", "address"])
            .stdout(out.reopen().expect("reopening the monitor file"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting ip monitor");
        AddrMonitor { child, out }
    }

    /// Lines seen so far that mention `addr`.
    fn lines_for(&self, addr: &str) -> Vec<String> {
        std::fs::read_to_string(self.out.path())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!(" {addr}/")))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for AddrMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn harust_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harust"))
        .args(args)
        .output()
        .expect("running harust");
    assert!(
        out.status.success(),
        "harust {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn maintenance_keeps_the_vip_in_place_while_a_is_stopped_for_longer_than_deadtime() {
    const T: &str =
        "maintenance_keeps_the_vip_in_place_while_a_is_stopped_for_longer_than_deadtime";
    if !support::privileged(T) || !support::netns::has_tool(T, "dbus-daemon", "--version") {
        return;
    }
    use support::bus::Bus;
    use support::daemon::Launch;
    let t = Topology::new("cl-mnt");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let (bus_a, bus_b) = (Bus::start(), Bus::start());
    let mut a = Daemon::start_with(&t.a, Node::A, &cfg, Launch::default().bus(bus_a.address()));
    a.wait_ready(LONG);
    let mut b = Daemon::start_with(&t.b, Node::B, &cfg, Launch::default().bus(bus_b.address()));
    b.wait_ready(LONG);
    a.wait_log(LONG, "node node-b is up");
    wait_until(LONG, "A to hold the VIP", || holders(&t, VIP) == [Node::A]);

    // Turned on at B, taken by A from B's beats.
    harust_cli(&["maintenance", "on", "--bus", bus_b.address()]);
    a.wait_log(LONG, "maintenance mode on (set on node-b)");
    wait_until(LONG, "A's STATUS= to say MAINTENANCE", || {
        a.status().is_some_and(|s| s.contains("MAINTENANCE"))
    });
    let (mon_a, mon_b) = (AddrMonitor::start(&t.a), AddrMonitor::start(&t.b));

    let mb = b.log_mark();
    a.kill(libc::SIGTERM);
    let status = a.wait_exit(LONG);
    assert!(status.success(), "A exited with {status}");
    assert!(
        has_vip(&t.a, VIP),
        "SIGTERM in maintenance left the VIP on A"
    );
    let down = Duration::from_millis(cfg.deadtime_ms * 4);
    holds_throughout(
        down,
        "A alone to keep the VIP while its daemon is down",
        || holders(&t, VIP) == [Node::A],
    );
    assert!(
        b.log_since(mb).contains("node node-a is dead"),
        "B reports A's death"
    );

    a.restart();
    a.wait_ready(LONG);
    a.wait_log(LONG, "adopted group");
    b.wait_log_since(mb, LONG, "node node-a is up");
    holds_throughout(
        Duration::from_millis(cfg.deadtime_ms * 2),
        "A alone to keep the VIP after its restart",
        || holders(&t, VIP) == [Node::A],
    );
    let status_text = harust_cli(&["status", "--bus", bus_a.address()]);
    assert!(status_text.contains("maintenance: ON"), "{status_text}");
    let metrics = harust_cli(&["metrics", "--bus", bus_a.address()]);
    assert!(
        metrics.lines().any(|l| l == "harust_maintenance 1"),
        "{metrics}"
    );
    let (seen_a, seen_b) = (mon_a.lines_for(VIP), mon_b.lines_for(VIP));
    assert!(seen_a.is_empty(), "A's address changed: {seen_a:?}");
    assert!(seen_b.is_empty(), "B's addresses changed: {seen_b:?}");

    // Off (at A): normal rules again; a kill -9 of A fails over.
    harust_cli(&["maintenance", "off", "--bus", bus_a.address()]);
    b.wait_log(LONG, "maintenance mode off (set on node-a)");
    a.kill(libc::SIGKILL);
    timed_wait(
        takeover_bound(&cfg),
        "B to take over after maintenance off",
        || has_vip(&t.b, VIP),
    );
    a.wait_exit(LONG);
}
