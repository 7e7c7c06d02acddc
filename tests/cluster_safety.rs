//! Safety with real daemons (docs/SAFETY.md): namespaces A, B and C on one
//! bridge (support::Topology), heartbeats dropped by nft rules on the
//! bridge. "Never two holders" is sampled every few milliseconds through
//! each run, from the addresses really configured in A and B.
//!
//! Root only; under `CI=true` a machine without `ip` or `nft` fails these.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::daemon::{Daemon, HaConfig};
use support::{Netns, Node, Topology, wait_until};

const VIP: &str = "198.18.1.100";
const LONG: Duration = Duration::from_secs(10);

fn holders(t: &Topology) -> Vec<Node> {
    holders_of(t, VIP)
}

fn holders_of(t: &Topology, vip: &str) -> Vec<Node> {
    [Node::A, Node::B]
        .into_iter()
        .filter(|&n| t.node(n).has_addr("eth0", vip))
        .collect()
}

fn start(t: &Topology, node: Node, cfg: &HaConfig) -> Daemon {
    let mut d = Daemon::start(t.node(node), node, cfg);
    d.wait_ready(LONG);
    d
}

/// Drops heartbeats (UDP 694) forwarded from each `from` bridge port to
/// each `to` port (`a0`, `b0`, `c0`).
fn drop_beats(bridge: &Netns, pairs: &[(&str, &str)]) {
    bridge.exec_ok(&["nft", "add", "table", "bridge", "harust_safety"]);
    bridge.exec_ok(&[
        "nft",
        "add",
        "chain",
        "bridge",
        "harust_safety",
        "hr_forward",
        "{ type filter hook forward priority 0 ; policy accept ; }",
    ]);
    for (from, to) in pairs {
        bridge.exec_ok(&[
            "nft",
            "add",
            "rule",
            "bridge",
            "harust_safety",
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

fn heal(bridge: &Netns) {
    bridge.exec_ok(&["nft", "delete", "table", "bridge", "harust_safety"]);
}

/// Samples the holders until `done` or `deadline`; returns the longest
/// stretch during which both A and B had the address.
fn watch_holders(
    t: &Topology,
    deadline: Duration,
    what: &str,
    mut done: impl FnMut(&[Node]) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut both_since: Option<Instant> = None;
    let mut longest = Duration::ZERO;
    loop {
        let h = holders(t);
        if h.len() > 1 {
            let s = *both_since.get_or_insert_with(Instant::now);
            longest = longest.max(s.elapsed());
        } else {
            both_since = None;
        }
        if done(&h) {
            return longest;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what} (holders {h:?})"
        );
        thread::sleep(Duration::from_millis(3));
    }
}

fn tools(test: &str) -> bool {
    support::netns::privileged(test) && support::netns::has_tool(test, "nft", "--version")
}

#[test]
fn witness_cluster_node_cut_off_never_two_holders_and_b_holds_at_the_end() {
    if !tools("witness_cluster_node_cut_off_never_two_holders_and_b_holds_at_the_end") {
        return;
    }
    let t = Topology::new("sf-wit");
    let cfg = HaConfig::fast()
        .nodes(&[Node::A, Node::B, Node::C])
        .line("witness client-c")
        .vip_group(Node::A, &[VIP]);
    let mut a = start(&t, Node::A, &cfg);
    let _b = start(&t, Node::B, &cfg);
    let _w = start(&t, Node::C, &cfg);
    wait_until(LONG, "A to hold the VIP", || holders(&t) == [Node::A]);

    let cut = Instant::now();
    drop_beats(
        &t.bridge,
        &[("a0", "b0"), ("b0", "a0"), ("a0", "c0"), ("c0", "a0")],
    );
    let both = watch_holders(&t, LONG, "B to hold the VIP", |h| h == [Node::B]);
    let took = cut.elapsed();
    eprintln!("A cut off: B holds the VIP {took:?} after the cut");
    assert_eq!(both, Duration::ZERO, "A and B both held the VIP");
    a.wait_log(LONG, "quorum lost");
    // The release wait: deadtime + A's release bound (watchdog 200 ms,
    // 2 keepalives, 2 s), counted from A's last beat.
    assert!(
        took >= Duration::from_millis(300 + 200 + 100 + 2000 - 100),
        "B took over after {took:?}, before A was certain to have let go"
    );
    // Still cut off: A stays without quorum and without the address.
    let both = watch_holders(&t, Duration::from_secs(3), "a quiet second", |_| {
        cut.elapsed() > took + Duration::from_secs(1)
    });
    assert_eq!(both, Duration::ZERO, "A took the VIP back while cut off");
    assert_eq!(holders(&t), [Node::B]);

    heal(&t.bridge);
    let both = watch_holders(&t, LONG, "A to hold the VIP again (failback)", |h| {
        h == [Node::A]
    });
    assert_eq!(both, Duration::ZERO, "two holders during the failback");
}

#[test]
fn one_way_loss_in_a_two_node_cluster_leaves_one_holder_within_a_keepalive() {
    if !tools("one_way_loss_in_a_two_node_cluster_leaves_one_holder_within_a_keepalive") {
        return;
    }
    let t = Topology::new("sf-1way");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let a = start(&t, Node::A, &cfg);
    let _b = start(&t, Node::B, &cfg);
    wait_until(LONG, "A to hold the VIP", || holders(&t) == [Node::A]);

    // A's beats no longer reach B; B's still reach A. B takes over after
    // its deadtime; A hears B declare it dead and yields.
    drop_beats(&t.bridge, &[("a0", "b0")]);
    let both = watch_holders(&t, LONG, "B alone to hold the VIP", |h| h == [Node::B]);
    eprintln!("one-way loss: both held the VIP for {both:?}");
    // One keepalive (50 ms) plus the release, with a margin for a loaded
    // machine; without the rule both hold for as long as the loss lasts.
    assert!(
        both <= Duration::from_millis(50 + 450),
        "both held the VIP for {both:?}"
    );
    let mark = a.log_mark();
    let both = watch_holders(&t, Duration::from_secs(3), "a quiet second", {
        let start = Instant::now();
        move |_| start.elapsed() > Duration::from_secs(1)
    });
    assert_eq!(both, Duration::ZERO, "A took the VIP back during the loss");
    assert!(
        !a.log_since(mark).contains("acquired"),
        "A acquired during the loss"
    );

    heal(&t.bridge);
    let both = watch_holders(&t, LONG, "A to hold the VIP again (failback)", |h| {
        h == [Node::A]
    });
    assert!(
        both <= Duration::from_millis(500),
        "failback overlap {both:?}"
    );
}

const VIP2: &str = "198.18.1.101";

/// Who holds each of `vips`, from one address listing per node.
fn placement(t: &Topology, vips: &[&str]) -> Vec<Vec<Node>> {
    let listed: Vec<(Node, Vec<serde_json::Value>)> = [Node::A, Node::B]
        .into_iter()
        .map(|n| (n, t.node(n).addrs("eth0")))
        .collect();
    vips.iter()
        .map(|vip| {
            listed
                .iter()
                .filter(|(_, addrs)| addrs.iter().any(|a| a["local"].as_str() == Some(vip)))
                .map(|(n, _)| *n)
                .collect()
        })
        .collect()
}

/// [`watch_holders`] for several addresses: samples until `done` or
/// `deadline`; returns, per address, the longest stretch during which both
/// A and B had it.
fn watch_placement(
    t: &Topology,
    vips: &[&str],
    deadline: Duration,
    what: &str,
    mut done: impl FnMut(&[Vec<Node>]) -> bool,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut both_since: Vec<Option<Instant>> = vec![None; vips.len()];
    let mut longest = vec![Duration::ZERO; vips.len()];
    loop {
        let p = placement(t, vips);
        for (i, h) in p.iter().enumerate() {
            if h.len() > 1 {
                let s = *both_since[i].get_or_insert_with(Instant::now);
                longest[i] = longest[i].max(s.elapsed());
            } else {
                both_since[i] = None;
            }
        }
        if done(&p) {
            return longest;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what} (holders of {vips:?}: {p:?})"
        );
        thread::sleep(Duration::from_millis(3));
    }
}

/// One-way loss in a two-node cluster with a group preferred by each node
/// (VIP on A, VIP2 on B): `from`'s beats stop reaching the other node for
/// a while, then the loss heals.
///
/// With quorum off the node still heard yields what the deaf node took,
/// so both hold a group for at most one keepalive plus the release. With
/// quorum on there is never an instant with two holders: the node without
/// the first node of the `node` lines (B) loses quorum whichever way the
/// loss goes, and A, the tie-break's winner, holds both groups.
fn one_way_loss(tag: &str, from: Node, quorum: bool) {
    let t = Topology::new(tag);
    let mut cfg = HaConfig::fast()
        .vip_group(Node::A, &[VIP])
        .vip_group(Node::B, &[VIP2]);
    if quorum {
        cfg = cfg.quorum("on");
    }
    let vips = [VIP, VIP2];
    let home = vec![vec![Node::A], vec![Node::B]];
    let mut a = start(&t, Node::A, &cfg);
    let mut b = start(&t, Node::B, &cfg);
    wait_until(LONG, "A to hold VIP and B VIP2", || {
        placement(&t, &vips) == home
    });

    let (deaf, heard) = match from {
        Node::A => (Node::B, Node::A),
        _ => (Node::A, Node::B),
    };
    let port = |n: Node| if n == Node::A { "a0" } else { "b0" };
    let cut = Instant::now();
    drop_beats(&t.bridge, &[(port(heard), port(deaf))]);
    // With quorum off the deaf node takes the other's group and the node
    // still heard yields it; with quorum on B loses quorum and A, the
    // tie-break's winner, takes B's group once B is certain to have let go.
    let during = if quorum || deaf == Node::A {
        vec![vec![Node::A], vec![Node::A]]
    } else {
        vec![vec![Node::B], vec![Node::B]]
    };
    // Except with quorum on and A's beats lost: A still hears B, which has
    // released for lack of quorum, and does not take B's group while B is
    // alive (docs/SAFETY.md: unheld until the heal, safe but not
    // available). Accepted once A has had longer than the release wait to
    // take it, so the test also holds if A comes to take it.
    let unheld = vec![vec![Node::A], vec![]];
    let may_stay_unheld = quorum && deaf == Node::B;
    let release_wait = Duration::from_millis(300 + 200 + 100 + 2000 + 1000);
    let both = watch_placement(&t, &vips, LONG, "one node to hold both groups", |p| {
        p == during || (may_stay_unheld && p == unheld && cut.elapsed() > release_wait)
    });
    let during = placement(&t, &vips);
    let took = cut.elapsed();
    eprintln!(
        "one-way loss {heard:?}->{deaf:?} (quorum {}): {during:?} after {took:?}; \
         both held VIP for {:?}, VIP2 for {:?}",
        if quorum { "on" } else { "off" },
        both[0],
        both[1]
    );
    if quorum {
        assert_eq!(both, [Duration::ZERO; 2], "two holders with quorum on");
        b.wait_log(LONG, "quorum lost");
        assert!(
            !a.log().contains("quorum lost"),
            "A, the first node, lost quorum"
        );
        if deaf == Node::A {
            // A stopped hearing B at the cut: it takes B's group only after
            // deadtime + B's release bound (watchdog 200 ms, 2 keepalives,
            // 2 s).
            assert!(
                took >= Duration::from_millis(300 + 200 + 100 + 2000 - 100),
                "A took VIP2 after {took:?}, before B was certain to have let go"
            );
        }
    } else {
        // One keepalive (50 ms) plus the release, with a margin for a
        // loaded machine; without the rule both hold while the loss lasts.
        for (vip, d) in vips.iter().zip(&both) {
            assert!(
                *d <= Duration::from_millis(50 + 450),
                "both held {vip} for {d:?}"
            );
        }
        let d = if deaf == Node::A { &mut a } else { &mut b };
        d.wait_log(LONG, "is dead");
    }
    // Still one-way: nothing moves back and forth.
    let marks = (a.log_mark(), b.log_mark());
    let quiet = Instant::now();
    let both = watch_placement(&t, &vips, Duration::from_secs(3), "a quiet second", |p| {
        assert_eq!(p, during, "the groups moved during the loss");
        quiet.elapsed() > Duration::from_secs(1)
    });
    assert_eq!(both, [Duration::ZERO; 2]);
    for (d, mark) in [(&a, marks.0), (&b, marks.1)] {
        let log = d.log_since(mark);
        for word in ["acquir", "took over", "releas"] {
            assert!(
                !log.contains(word),
                "{} logged {word:?} during the loss:\n{log}",
                d.node
            );
        }
    }

    heal(&t.bridge);
    let both = watch_placement(&t, &vips, LONG, "the groups to go home (failback)", |p| {
        p == home
    });
    if quorum {
        assert_eq!(both, [Duration::ZERO; 2], "two holders during the failback");
        b.wait_log(LONG, "quorum regained");
    } else {
        for (vip, d) in vips.iter().zip(&both) {
            assert!(
                *d <= Duration::from_millis(500),
                "failback overlap of {vip}: {d:?}"
            );
        }
    }
}

#[test]
fn one_way_loss_b_to_a_without_quorum_leaves_one_holder_within_a_keepalive() {
    if !tools("one_way_loss_b_to_a_without_quorum_leaves_one_holder_within_a_keepalive") {
        return;
    }
    one_way_loss("sf-1wba", Node::B, false);
}

#[test]
fn one_way_loss_b_to_a_with_quorum_never_has_two_holders() {
    if !tools("one_way_loss_b_to_a_with_quorum_never_has_two_holders") {
        return;
    }
    one_way_loss("sf-1wbaq", Node::B, true);
}

#[test]
fn one_way_loss_a_to_b_with_quorum_never_has_two_holders() {
    if !tools("one_way_loss_a_to_b_with_quorum_never_has_two_holders") {
        return;
    }
    one_way_loss("sf-1wabq", Node::A, true);
}

/// A, B and the witness C, A holding the VIP, every node seeing the other
/// two with quorum.
fn witness_cluster(tag: &str) -> (Topology, [Daemon; 3]) {
    let t = Topology::new(tag);
    let cfg = HaConfig::fast()
        .nodes(&[Node::A, Node::B, Node::C])
        .line("witness client-c")
        .vip_group(Node::A, &[VIP]);
    let a = start(&t, Node::A, &cfg);
    let b = start(&t, Node::B, &cfg);
    let w = start(&t, Node::C, &cfg);
    let mut d = [a, b, w];
    wait_until(LONG, "A to hold the VIP", || holders(&t) == [Node::A]);
    for daemon in &mut d {
        wait_status(daemon, "both peers up, with quorum", |s| {
            s.contains("peers up: ") && s.matches(", ").count() == 1 && s.ends_with("; quorum")
        });
    }
    (t, d)
}

/// Waits for the daemon's `STATUS=` line to satisfy `ok`.
fn wait_status(d: &mut Daemon, what: &str, ok: impl Fn(&str) -> bool) {
    let what = format!("{}'s STATUS= to show {what}", d.node);
    d.wait(LONG, &what, |d| d.status().is_some_and(|s| ok(&s)));
}

/// Samples the holders for `window`: A must hold the VIP alone throughout.
fn a_keeps_the_vip(t: &Topology, window: Duration, what: &str) {
    let start = Instant::now();
    watch_holders(t, window + LONG, what, |h| {
        assert_eq!(h, [Node::A], "{what}: the VIP moved");
        start.elapsed() >= window
    });
}

/// How long a takeover from a silent A would wait with these timings:
/// deadtime + A's release bound (watchdog 200 ms, 2 keepalives, 2 s), and
/// a margin; nothing may move during it.
const RELEASE_WAIT: Duration = Duration::from_millis(300 + 200 + 100 + 2000 + 500);

#[test]
fn witness_down_while_a_and_b_run_on_moves_nothing_and_keeps_quorum() {
    if !tools("witness_down_while_a_and_b_run_on_moves_nothing_and_keeps_quorum") {
        return;
    }
    let (t, [mut a, mut b, mut w]) = witness_cluster("sf-wdown");
    let marks = (a.log_mark(), b.log_mark());
    w.kill(libc::SIGKILL);
    w.wait_exit(LONG);
    // A and B declare the witness dead and keep quorum: 2 of 3 voters.
    for d in [&mut a, &mut b] {
        wait_status(d, "client-c gone, quorum kept", |s| {
            !s.contains("client-c") && s.ends_with("; quorum")
        });
    }
    a_keeps_the_vip(&t, RELEASE_WAIT, "the witness down");
    for (d, mark) in [(&a, marks.0), (&b, marks.1)] {
        let log = d.log_since(mark);
        assert!(
            log.contains("client-c"),
            "{} did not notice the witness go",
            d.node
        );
        for word in ["quorum lost", "releas", "acquir", "took over"] {
            assert!(
                !log.contains(word),
                "{} logged {word:?} with the witness down:\n{log}",
                d.node
            );
        }
        assert!(d.status().unwrap().ends_with("; quorum"));
    }
    assert_eq!(holders(&t), [Node::A]);
}

#[test]
fn witness_restart_moves_nothing_and_the_witness_rejoins() {
    if !tools("witness_restart_moves_nothing_and_the_witness_rejoins") {
        return;
    }
    let (t, [mut a, mut b, mut w]) = witness_cluster("sf-wrestart");
    let marks = (a.log_mark(), b.log_mark());
    // A graceful stop (SIGTERM, as systemctl restart does), then a start.
    w.kill(libc::SIGTERM);
    w.wait_exit(LONG);
    for d in [&mut a, &mut b] {
        wait_status(d, "client-c gone, quorum kept", |s| {
            !s.contains("client-c") && s.ends_with("; quorum")
        });
    }
    a_keeps_the_vip(&t, Duration::from_millis(500), "the witness stopped");
    w.restart();
    w.wait_ready(LONG);
    for d in [&mut a, &mut b] {
        wait_status(d, "client-c up again", |s| {
            s.contains("client-c") && s.ends_with("; quorum")
        });
    }
    wait_status(&mut w, "the witness back with both peers and quorum", |s| {
        s.starts_with("standby (witness): holds 0/1 groups; peers up: ")
            && s.contains("node-a")
            && s.contains("node-b")
            && s.ends_with("; quorum")
    });
    // The restarted witness's view settles; still nothing moves.
    a_keeps_the_vip(&t, RELEASE_WAIT, "the witness restarted");
    for (d, mark) in [(&a, marks.0), (&b, marks.1)] {
        let log = d.log_since(mark);
        for word in ["quorum lost", "releas", "acquir", "took over"] {
            assert!(
                !log.contains(word),
                "{} logged {word:?} through the witness's restart:\n{log}",
                d.node
            );
        }
    }
    assert!(!w.log().contains("acquir"), "the witness acquired a group");
}
