//! Idle cost with real daemons in test namespaces (support::Topology): at
//! keepalive 10 ms an idle pair wakes about once per keepalive (quiet
//! reads, docs/RELIABILITY.md) and makes no write system calls, such as
//! tokio waking itself through its eventfd. Its own test binary, so the 64-address
//! daemons of `scale` never run beside it: their load makes beats late,
//! and a late beat rightly ends the quiet for a while.

mod support;

use std::time::{Duration, Instant};

use harust::beat::LEASE_BEATS;
use harust::engine::QUIET_HOLDOFF;
use support::daemon::{Daemon, HaConfig, Launch};
use support::{Node, Topology, wait_until};

const LONG: Duration = Duration::from_secs(20);
/// The most wake-ups per keepalive a quiet node may show: one, its own
/// beat's deadline. With the deadline on tokio's timer wheel it was about
/// 1.14: the wheel also wakes at each 64 ms slot boundary a deadline
/// crosses (src/timer.rs).
const QUIET_MAX: f64 = 1.08;
/// While the beat thread holds a lease the loop still wakes for each
/// watchdog ping, every half WATCHDOG (0.1 per keepalive here), and to take
/// each lease back (at most one per `LEASE_BEATS` beats, the shortest
/// lease), which may be the same wake-ups.
const LOOP: f64 = 0.1 + 1.0 / LEASE_BEATS as f64;
/// The most write system calls per keepalive: none is needed at idle
/// (beats go out with sendto). Re-arming the loop's timer once made about
/// 0.25, tokio's self-wakes through its eventfd.
const WRITES_MAX: f64 = 0.02;
/// While leases come and go: the beat thread wakes the loop with each
/// lease it returns, through tokio's eventfd.
const LEASE_WRITES: f64 = 1.0 / LEASE_BEATS as f64;

/// The service watchdog each daemon sets from its deadtime (30 ms here):
/// the 200 ms floor of `engine::watchdog_timeout`. systemd kills a daemon
/// whose pings are further apart.
const WATCHDOG: Duration = Duration::from_millis(200);

/// The daemon's voluntary context switches, all threads: each is one
/// wake-up of the event loop or of the beat thread.
fn wakeups(d: &Daemon) -> u64 {
    let tasks =
        std::fs::read_dir(format!("/proc/{}/task", d.pid())).expect("listing the daemon's threads");
    tasks
        .map(|t| {
            let status = std::fs::read_to_string(t.expect("a thread").path().join("status"))
                .unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Whether the daemon runs its beat thread (src/beat.rs).
fn has_beat_thread(d: &Daemon) -> bool {
    std::fs::read_dir(format!("/proc/{}/task", d.pid()))
        .expect("listing the daemon's threads")
        .any(|t| {
            std::fs::read_to_string(t.expect("a thread").path().join("comm"))
                .is_ok_and(|c| c.trim() == "harust-beat")
        })
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

/// The longest gap between two `WATCHDOG=1` pings of `d` sent after
/// `since`, and how many there were.
fn watchdog_pings(d: &Daemon, since: Instant) -> (Duration, usize) {
    let at: Vec<Instant> = d
        .timed_notes()
        .into_iter()
        .filter(|(t, n)| *t >= since && n.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| t)
        .collect();
    let gap = at
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX);
    (gap, at.len())
}

/// Idle cost: at keepalive 10 ms each node sends a beat and receives its
/// peer's every 10 ms. Reading the peer's beat as it comes woke the loop
/// twice per beat (about 2.0–3.4 a keepalive were measured); quiet reads
/// take it at our own beat, once. Run as systemd runs it, with a service
/// watchdog: its pings ride on the beats' wake-ups (a timer of their own
/// was another 10 wake-ups a second) and still come in time.
#[test]
fn an_idle_pair_wakes_about_once_per_keepalive() {
    require_privileged!("an_idle_pair_wakes_about_once_per_keepalive");
    let t = Topology::new("sc-idle");
    let cfg = HaConfig::fast()
        .timings(10, 30, 300)
        .vip_group(Node::A, &["198.18.1.100"]);
    // What `WatchdogSec=5` in units/harust.service gives; each daemon
    // then sets its own (WATCHDOG).
    let launch = Launch::default().env("WATCHDOG_USEC", "5000000");
    let mut a = Daemon::start_with(&t.a, Node::A, &cfg, launch.clone());
    let mut b = Daemon::start_with(&t.b, Node::B, &cfg, launch);
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
    for d in [&a, &b] {
        let set = format!("WATCHDOG_USEC={}", WATCHDOG.as_micros());
        assert!(
            d.notes().iter().any(|n| n.lines().any(|l| l == set)),
            "{} did not set its watchdog to {WATCHDOG:?}: {:?}",
            d.node,
            d.notes()
        );
    }
    let started = Instant::now();
    loop {
        let window_start = Instant::now();
        let w = per_keepalive(Duration::from_secs(3));
        // Whatever the wake-ups, the pings must keep systemd's watchdog
        // from firing (a gap within the window would show at its end).
        for d in [&a, &b] {
            let (gap, n) = watchdog_pings(d, window_start);
            assert!(
                n >= 3 && gap < WATCHDOG,
                "{}: {n} watchdog pings in 3 s, the longest gap {gap:?}: systemd would kill it",
                d.node
            );
        }
        for (i, d) in [&a, &b].into_iter().enumerate() {
            eprintln!(
                "{}: {:.2} wake-ups and {:.3} writes per keepalive",
                d.node,
                w[i],
                w[i + 2]
            );
        }
        if w[..2].iter().all(|&x| x <= QUIET_MAX + LOOP)
            && w[2..].iter().all(|&x| x <= WRITES_MAX + LEASE_WRITES)
        {
            break;
        }
        assert!(
            started.elapsed() < QUIET_HOLDOFF + Duration::from_secs(30),
            "no 3 s window at <= {QUIET_MAX} + {LOOP} wake-ups and <= {WRITES_MAX} + {LEASE_WRITES} writes per \
             keepalive at 10 ms in {:?}: the last one had {w:.3?} (wake-ups A, B, writes A, B)",
            started.elapsed()
        );
    }
    // The beats went out from the beat thread, and each was the engine's.
    for d in [&a, &b] {
        assert!(has_beat_thread(d), "{} runs no beat thread", d.node);
        let log = d.log();
        assert!(
            !log.contains("lease-diverged"),
            "{}: a beat sent for the engine was not the engine's:\n{log}",
            d.node
        );
    }
}
