//! Idle cost with real daemons in test namespaces (support::Topology): at
//! keepalive 10 ms an idle pair wakes about once per keepalive (quiet
//! reads, docs/RELIABILITY.md) and makes no write system calls, such as
//! tokio waking itself through its eventfd. Its own test binary, so the 64-address
//! daemons of `scale` never run beside it: their load makes beats late,
//! and a late beat rightly ends the quiet for a while.

mod support;

use std::time::{Duration, Instant};

use harust::engine::QUIET_HOLDOFF;
use support::daemon::{Daemon, HaConfig};
use support::{Node, Topology, wait_until};

const LONG: Duration = Duration::from_secs(20);
/// The most wake-ups per keepalive a quiet node may show: one, its own
/// beat's deadline. With the deadline on tokio's timer wheel it was about
/// 1.14: the wheel also wakes at each 64 ms slot boundary a deadline
/// crosses (src/timer.rs).
const QUIET_MAX: f64 = 1.08;
/// The most write system calls per keepalive: none is needed at idle
/// (beats go out with sendto). Re-arming the loop's timer once made about
/// 0.25, tokio's self-wakes through its eventfd.
const WRITES_MAX: f64 = 0.02;

/// The daemon's main thread's voluntary context switches: each is one
/// wake-up of the event loop.
fn wakeups(d: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .expect("reading the daemon's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc status")
}

/// The daemon's write-family system calls so far (`syscw` in /proc/PID/io).
fn writes(d: &Daemon) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{}/io", d.pid()))
        .expect("reading the daemon's /proc io");
    io.lines()
        .find_map(|l| l.strip_prefix("syscw:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("syscw in /proc io")
}

/// Idle cost: at keepalive 10 ms each node sends a beat and receives its
/// peer's every 10 ms. Reading the peer's beat as it comes woke the loop
/// twice per beat (about 2.0–3.4 a keepalive were measured); quiet reads
/// take it at our own beat, once.
#[test]
fn an_idle_pair_wakes_about_once_per_keepalive() {
    require_privileged!("an_idle_pair_wakes_about_once_per_keepalive");
    let t = Topology::new("sc-idle");
    let cfg = HaConfig::fast()
        .timings(10, 30, 300)
        .vip_group(Node::A, &["198.18.1.100"]);
    let mut a = Daemon::start(&t.a, Node::A, &cfg);
    let mut b = Daemon::start(&t.b, Node::B, &cfg);
    a.wait_ready(LONG);
    b.wait_ready(LONG);
    wait_until(LONG, "A to hold the group and B to see it", || {
        a.status().is_some_and(|s| s.starts_with("active"))
            && b.status().is_some_and(|s| s.contains("peers up: node-a"))
    });
    // Reads go quiet once nothing has happened for QUIET_HOLDOFF (and a
    // late beat on a loaded machine starts that wait again): wait, with a
    // deadline, for a 3 s window in which both nodes wake about once per
    // keepalive.
    let per_keepalive = |window: Duration| -> [f64; 4] {
        let counts = || [wakeups(&a), wakeups(&b), writes(&a), writes(&b)];
        let before = counts();
        let start = Instant::now();
        wait_until(LONG, "the measuring window to pass", || {
            start.elapsed() >= window
        });
        let keepalives = start.elapsed().as_secs_f64() / 0.010;
        let after = counts();
        [0, 1, 2, 3].map(|i| (after[i] - before[i]) as f64 / keepalives)
    };
    let started = Instant::now();
    loop {
        let w = per_keepalive(Duration::from_secs(3));
        for (i, d) in [&a, &b].into_iter().enumerate() {
            eprintln!(
                "{}: {:.2} wake-ups and {:.3} writes per keepalive",
                d.node,
                w[i],
                w[i + 2]
            );
        }
        if w[..2].iter().all(|&x| x <= QUIET_MAX) && w[2..].iter().all(|&x| x <= WRITES_MAX) {
            break;
        }
        assert!(
            started.elapsed() < QUIET_HOLDOFF + Duration::from_secs(30),
            "no 3 s window at <= {QUIET_MAX} wake-ups and <= {WRITES_MAX} writes per \
             keepalive at 10 ms in {:?}: the last one had {w:.3?} (wake-ups A, B, writes A, B)",
            started.elapsed()
        );
    }
}
