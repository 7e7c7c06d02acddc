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
    [Node::A, Node::B]
        .into_iter()
        .filter(|&n| t.node(n).has_addr("eth0", VIP))
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
