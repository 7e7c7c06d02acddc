//! The engine in deterministic multi-node simulation (DESIGN.md, test tier
//! 1). Each test runs many seeds; a failure prints a replayable transcript.

mod simnet;
use simnet as sim;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{AdminError, AdminRequest, Event, QUIET_HOLDOFF, Scope};
use sim::{MS, NetModel, Sim, Spec, node_name, seeds, timings};

fn lossy(rng: &mut sim::Rng) -> NetModel {
    NetModel {
        loss: (rng.below(20) as f64) / 100.0,
        dup: (rng.below(10) as f64) / 100.0,
        delay_min: Duration::from_micros(50),
        delay_max: Duration::from_micros(50 + rng.below(20_000)),
    }
}

fn random_spec(rng: &mut sim::Rng, failback: AutoFailback) -> Spec {
    let nodes = 2 + rng.below(4) as usize;
    let groups = (0..1 + rng.below(3))
        .map(|_| {
            (
                rng.below(nodes as u64) as usize,
                1 + rng.below(2) as usize,
                rng.below(3) as usize,
            )
        })
        .collect();
    Spec {
        nodes,
        groups,
        timings: timings(100, 1000),
        failback,
        ping_nodes: 0,
        witnesses: vec![],
        quorum: false,
        fences: vec![],
    }
}

fn failback_mode(rng: &mut sim::Rng) -> AutoFailback {
    [AutoFailback::On, AutoFailback::Off, AutoFailback::Legacy][rng.below(3) as usize]
}

/// Starts every node at a random moment within `spread` and settles.
fn boot(sim: &mut Sim, spread: Duration) {
    let mut order: Vec<(Duration, usize)> = (0..sim.spec.nodes)
        .map(|n| (sim.rng.between(Duration::ZERO, spread), n))
        .collect();
    order.sort();
    for (at, n) in order {
        sim.run_until(at);
        sim.start(n);
    }
}

fn settle_time(spec: &Spec) -> Duration {
    spec.timings.initdead + spec.timings.deadtime * 3
}

#[test]
fn cluster_settles_with_one_holder_per_group() {
    for seed in seeds(1_000, 150) {
        let mut rng = sim::Rng::new(seed);
        let failback = failback_mode(&mut rng);
        let spec = random_spec(&mut rng, failback);
        let net = lossy(&mut rng);
        let mut sim = Sim::new(seed, spec.clone(), net);
        // Half the runs read as the runtime does while quiet (tests/sim_quiet.rs).
        sim.quiet_reads = seed % 2 == 1;
        boot(&mut sim, spec.timings.initdead);
        sim.run_for(settle_time(&spec));
        sim.check_settled("after boot");
        if failback != AutoFailback::Off {
            for (g, &(pref, _, _)) in spec.groups.iter().enumerate() {
                sim.check(
                    sim.holders(g) == vec![pref],
                    &format!("g{g} should be on its preferred node {}", node_name(pref)),
                );
            }
        }
    }
}

#[test]
fn nodes_started_together_settle_without_a_fixed_delay() {
    for seed in seeds(2_000, 50) {
        let spec = Spec::two_node(AutoFailback::On);
        let mut sim = Sim::new(seed, spec, NetModel::default());
        sim.start(0);
        sim.start(1);
        // heartbeat needs its 10 s RQSTDELAY here; we need a few packets.
        sim.run_until_cond(50 * MS, "group held after simultaneous start", |s| {
            s.holders(0) == vec![0]
        });
    }
}

#[test]
fn failover_within_deadtime_plus_keepalive_when_holder_dies() {
    for seed in seeds(3_000, 120) {
        let mut rng = sim::Rng::new(seed);
        let failback = failback_mode(&mut rng);
        let mut spec = random_spec(&mut rng, failback);
        spec.timings = timings(10 + rng.below(90), 0);
        spec.timings.deadtime = spec.timings.keepalive * (3 + rng.below(8) as u32);
        spec.timings.warntime = spec.timings.deadtime / 2;
        spec.timings.initdead = spec.timings.deadtime * 2;
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        // Half the runs read as the runtime does while quiet (tests/sim_quiet.rs).
        sim.quiet_reads = seed % 2 == 1;
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("before the kill");
        if sim.quiet_reads {
            // Idle long enough for the reads to go quiet.
            sim.run_for(QUIET_HOLDOFF.max(spec.timings.deadtime * 10) + spec.timings.keepalive);
        }
        let g = rng.below(spec.groups.len() as u64) as usize;
        let victim = sim.holders(g)[0];
        if rng.chance(0.5) {
            sim.crash_machine(victim);
        } else {
            // kill -9 leaves the address on the dead daemon's machine; the
            // group must still move (the unit's ExecStopPost cleans up).
            sim.crash_daemon(victim);
        }
        // Each resource takes 1 ms to start in the simulation.
        let bound = spec.timings.deadtime
            + spec.timings.keepalive
            + sim.group_len(g) as u32 * sim.res_latency
            + MS;
        sim.run_until_cond(bound, "another node holds the group", |s| {
            let h = s.holders(g);
            h.len() == 1 && h[0] != victim
        });
    }
}

#[test]
fn no_failover_while_beats_arrive_within_deadtime() {
    for seed in seeds(4_000, 100) {
        let mut rng = sim::Rng::new(seed);
        let failback = failback_mode(&mut rng);
        let spec = random_spec(&mut rng, failback);
        // Up to 20 % loss and 20 ms jitter against a 1 s deadtime: beats
        // keep arriving well inside it.
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("before the lossy minute");
        let holders: Vec<_> = (0..spec.groups.len()).map(|g| sim.holders(g)).collect();
        let deaths = sim.peer_deaths();
        sim.net = lossy(&mut rng);
        sim.run_for(Duration::from_secs(30));
        sim.check(
            sim.peer_deaths() == deaths,
            "a node was declared dead under bearable loss",
        );
        let after: Vec<_> = (0..spec.groups.len()).map(|g| sim.holders(g)).collect();
        sim.check(holders == after, "a group moved although no node died");
        // Once the loss stops, retransmit requests stop too.
        sim.net = NetModel::default();
        sim.run_for(spec.timings.deadtime);
        let asked = |s: &Sim| -> u64 {
            s.nodes
                .iter()
                .filter_map(|n| n.engine.as_ref())
                .map(|e| e.counters().retransmits_requested)
                .sum()
        };
        let before = asked(&sim);
        sim.run_for(spec.timings.deadtime * 5);
        sim.check(
            asked(&sim) == before,
            "retransmit requests go on without loss",
        );
    }
}

#[test]
fn partition_heal_leaves_exactly_one_holder() {
    for seed in seeds(5_000, 100) {
        let mut rng = sim::Rng::new(seed);
        let failback = failback_mode(&mut rng);
        let spec = random_spec(&mut rng, failback);
        let mut sim = Sim::new(seed, spec.clone(), lossy(&mut rng));
        // Half the runs read as the runtime does while quiet (tests/sim_quiet.rs).
        sim.quiet_reads = seed % 2 == 1;
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("before the partition");
        if sim.quiet_reads {
            // Idle long enough for the reads to go quiet.
            sim.run_for(QUIET_HOLDOFF.max(spec.timings.deadtime * 10) + spec.timings.keepalive);
        }
        let cut = 1 + rng.below(spec.nodes as u64 - 1) as usize;
        let a: Vec<usize> = (0..cut).collect();
        let b: Vec<usize> = (cut..spec.nodes).collect();
        sim.partition(&a, &b);
        sim.run_for(spec.timings.deadtime * 4);
        // Both sides hold every group now: the split brain we must heal.
        for g in 0..spec.groups.len() {
            sim.check(
                sim.holders(g).len() == 2,
                &format!("g{g} held on both sides of the split"),
            );
        }
        sim.heal();
        sim.run_for(spec.timings.deadtime * 3);
        sim.check_settled("after the heal");
        let resolved = sim
            .nodes
            .iter()
            .flat_map(|n| &n.events)
            .any(|(_, e)| matches!(e, Event::SplitBrainResolved { .. }));
        sim.check(
            resolved,
            "the heal was not reported as a split-brain resolution",
        );
        // The keeper refreshed its neighbours at once.
        for g in 0..spec.groups.len() {
            let keeper = sim.holders(g)[0];
            sim.check(
                sim.nodes[keeper].announces.iter().any(|(_, x)| *x == g),
                &format!("keeper of g{g} did not announce"),
            );
        }
    }
}

#[test]
fn failback_on_returns_the_group_and_off_keeps_it() {
    for seed in seeds(6_000, 40) {
        for failback in [AutoFailback::On, AutoFailback::Off, AutoFailback::Legacy] {
            let spec = Spec::two_node(failback);
            let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
            boot(&mut sim, Duration::ZERO);
            sim.run_for(settle_time(&spec));
            sim.check(sim.holders(0) == vec![0], "node-a holds its group at start");
            sim.crash_daemon(0);
            sim.run_for(spec.timings.deadtime * 2);
            sim.check(sim.holders(0) == vec![1], "node-b took over");
            // node-a comes back with its stale address still configured.
            sim.start(0);
            sim.run_for(spec.timings.deadtime * 3);
            sim.check_settled("after node-a returned");
            let want = if failback == AutoFailback::Off { 1 } else { 0 };
            sim.check(
                sim.holders(0) == vec![want],
                &format!(
                    "{failback:?}: expected {} to hold the group",
                    node_name(want)
                ),
            );
        }
    }
}

#[test]
fn failback_is_make_before_break_for_address_only_groups() {
    for seed in seeds(6_500, 20) {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.groups = vec![(0, 2, 0)];
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.crash_machine(0);
        sim.run_for(spec.timings.deadtime * 2);
        sim.start(0);
        // At every instant some node has both addresses up.
        let limit = sim.now + spec.timings.deadtime * 3;
        while sim.now < limit {
            sim.run_for(Duration::from_micros(100));
            let covered = sim
                .nodes
                .iter()
                .any(|n| n.present.contains(&(0, 0)) && n.present.contains(&(0, 1)));
            sim.check(covered, "an address was down during the handover");
        }
        sim.check(sim.holders(0) == vec![0], "node-a got its group back");
    }
}

#[test]
fn standby_moves_groups_and_takeover_brings_them_back() {
    for seed in seeds(7_000, 40) {
        for failback in [AutoFailback::On, AutoFailback::Off] {
            let mut spec = Spec::two_node(failback);
            spec.groups = vec![(0, 1, 1), (1, 1, 0)];
            let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
            boot(&mut sim, Duration::ZERO);
            sim.run_for(settle_time(&spec));
            sim.check_settled("at start");
            // hb_standby all on node-a: node-b holds everything.
            let id = sim.admin(0, AdminRequest::Standby(Scope::All));
            sim.check(sim.reply(0, id) == Some(&Ok(())), "standby accepted");
            sim.run_for(spec.timings.keepalive * 5);
            sim.check_settled("after standby");
            sim.check(
                sim.holders(0) == vec![1] && sim.holders(1) == vec![1],
                "node-b holds all",
            );
            // hb_takeover local on node-a: its own group comes back only.
            let id = sim.admin(0, AdminRequest::Takeover(Scope::Local));
            sim.check(sim.reply(0, id) == Some(&Ok(())), "takeover accepted");
            sim.run_for(spec.timings.keepalive * 5);
            sim.check_settled("after takeover");
            sim.check(sim.holders(0) == vec![0], "node-a took its own group back");
            sim.check(sim.holders(1) == vec![1], "node-b kept its own group");
            // Standby foreign on node-b, which holds only its local group: no change.
            let id = sim.admin(1, AdminRequest::Standby(Scope::Foreign));
            sim.check(
                sim.reply(1, id) == Some(&Ok(())),
                "standby foreign accepted",
            );
            sim.run_for(spec.timings.keepalive * 5);
            sim.check(
                sim.holders(1) == vec![1],
                "standby foreign left node-b's own group",
            );
        }
    }
}

#[test]
fn standby_without_a_live_peer_is_refused() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut sim = Sim::new(1, spec.clone(), NetModel::default());
    sim.start(0);
    sim.run_for(settle_time(&spec));
    sim.check(
        sim.holders(0) == vec![0],
        "node-a alone holds the group after initdead",
    );
    let id = sim.admin(0, AdminRequest::Standby(Scope::All));
    sim.check(
        matches!(sim.reply(0, id), Some(Err(AdminError::NoPeer(_)))),
        "standby without a peer must fail with NoPeer",
    );
    sim.run_for(spec.timings.keepalive * 5);
    sim.check(sim.holders(0) == vec![0], "node-a still holds the group");
}

#[test]
fn graceful_stop_hands_over_before_deadtime() {
    for seed in seeds(8_000, 40) {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.groups = vec![(0, 1, 2), (0, 1, 0)];
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.shutdown(0);
        sim.run_until_cond(spec.timings.keepalive, "node-b holds both groups", |s| {
            s.holders(0) == vec![1] && s.holders(1) == vec![1]
        });
        sim.run_for(spec.timings.keepalive);
        sim.check(sim.nodes[0].engine.is_none(), "node-a finished its stop");
        sim.check(
            sim.nodes[0].present.is_empty(),
            "node-a released everything",
        );
        sim.check(
            !sim.nodes[1].events.iter().any(|(_, e)| {
                matches!(
                    e,
                    Event::PeerDead {
                        graceful: false,
                        ..
                    }
                )
            }),
            "node-b saw a clean stop, not a death",
        );
    }
}

#[test]
fn failed_start_moves_the_group_and_failing_everywhere_stops_flapping() {
    for seed in seeds(9_000, 40) {
        let spec = Spec::two_node(AutoFailback::On);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        // The unit (resource 1) cannot start on node-a.
        sim.nodes[0].broken.insert((0, 1));
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("after node-a's failure");
        sim.check(
            sim.holders(0) == vec![1],
            "node-b runs the group node-a could not",
        );
        // Now it fails on node-b as well: nobody holds it and nobody retries.
        sim.nodes[1].broken.insert((0, 1));
        sim.crash_machine(1);
        sim.start(1);
        sim.run_for(settle_time(&spec) * 3);
        sim.check(
            sim.holders(0).is_empty(),
            "a group that fails everywhere is held nowhere",
        );
        sim.check(
            sim.nodes.iter().all(|n| n.present.is_empty()),
            "no resource of a failed group stays up",
        );
        let tries = sim.nodes[0].acquisitions + sim.nodes[1].acquisitions;
        sim.check(tries <= 1, "the failed group flapped");
        let reported = sim
            .nodes
            .iter()
            .flat_map(|n| &n.events)
            .any(|(_, e)| matches!(e, Event::GroupFailed { .. }));
        sim.check(reported, "the failed group was reported");
    }
}

#[test]
fn a_vip_deleted_behind_our_back_is_restored() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut sim = Sim::new(7, spec.clone(), NetModel::default());
    boot(&mut sim, Duration::ZERO);
    sim.run_for(settle_time(&spec));
    sim.nodes[0].present.remove(&(0, 0));
    sim.input(
        0,
        harust::engine::Input::ResourceLost {
            group: 0,
            resource: 0,
            reason: "address deleted".into(),
        },
    );
    sim.run_for(spec.timings.keepalive);
    sim.check_settled("after the repair");
    sim.check(sim.holders(0) == vec![0], "node-a kept the group");
}

#[test]
fn a_failed_unit_hands_the_group_to_the_peer() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut sim = Sim::new(8, spec.clone(), NetModel::default());
    boot(&mut sim, Duration::ZERO);
    sim.run_for(settle_time(&spec));
    sim.input(
        0,
        harust::engine::Input::ResourceLost {
            group: 0,
            resource: 1,
            reason: "unit entered failed state".into(),
        },
    );
    sim.nodes[0].present.remove(&(0, 1));
    sim.run_for(spec.timings.keepalive * 3);
    sim.check_settled("after the unit failure");
    sim.check(sim.holders(0) == vec![1], "node-b took the group over");
}

#[test]
fn a_restarted_daemon_removes_its_stale_resources() {
    let spec = Spec::two_node(AutoFailback::Off);
    let mut sim = Sim::new(9, spec.clone(), NetModel::default());
    boot(&mut sim, Duration::ZERO);
    sim.run_for(settle_time(&spec));
    sim.crash_daemon(0);
    sim.run_for(spec.timings.deadtime * 2);
    sim.start(0);
    sim.run_for(spec.timings.keepalive * 3);
    sim.check(
        sim.nodes[0].present.is_empty(),
        "node-a removed its stale resources",
    );
    sim.check(
        sim.holders(0) == vec![1],
        "node-b keeps the group (auto_failback off)",
    );
}

#[test]
fn losing_the_ping_nodes_hands_groups_to_a_peer_that_still_reaches_them() {
    for seed in seeds(10_000, 40) {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.ping_nodes = 1;
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("at start");
        sim.check(sim.holders(0) == vec![0], "node-a holds its group");
        // node-a's uplink fails; the heartbeat link stays up.
        sim.uplink[0] = false;
        sim.run_until_cond(spec.timings.deadtime * 2, "node-b takes over", |s| {
            s.holders(0) == vec![1]
        });
        sim.run_for(spec.timings.keepalive * 3);
        sim.check_settled("after the uplink failure");
        // It comes back: auto_failback returns the group.
        sim.uplink[0] = true;
        sim.run_for(spec.timings.deadtime * 2);
        sim.check_settled("after the uplink returned");
        sim.check(sim.holders(0) == vec![0], "the group returned to node-a");
    }
}

#[test]
fn on_a_split_only_the_side_that_reaches_the_ping_nodes_holds() {
    for seed in seeds(11_000, 40) {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.ping_nodes = 2;
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        // node-a is cut off from everything: peer and ping nodes.
        sim.uplink[0] = false;
        sim.partition(&[0], &[1]);
        sim.run_for(spec.timings.deadtime * 4);
        sim.check(
            sim.holders(0) == vec![1],
            "only node-b, which reaches the ping nodes, holds",
        );
        sim.check(
            sim.nodes[0].present.is_empty(),
            "node-a released everything",
        );
        sim.uplink[0] = true;
        sim.heal();
        sim.run_for(spec.timings.deadtime * 3);
        sim.check_settled("after the heal");
    }
}

/// At the fastest timings a plain miss-three-beats rule fails often under
/// loss (20 % each way: a beat and the next two lost is 0.8 % per beat, some
/// 50 a minute); the liveness probes must keep a live peer alive.
#[test]
fn no_false_failover_at_fast_timings_under_heavy_loss() {
    for (seed, pct) in [(11, 10u64), (12, 20), (13, 20)] {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.timings = timings(10, 30);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("before the loss");
        sim.check_no_false_failover_under_loss(pct, 200, "10 ms / 30 ms");
    }
}

/// Issue 7: any dual holding ends within one keepalive after beats get
/// through again. After a partition both sides hold; from the heal on, the
/// first beat each way carries the other's holdings, both apply the same
/// rule, and the loser lets go at once.
#[test]
fn dual_holding_ends_within_one_keepalive_of_the_heal() {
    for seed in seeds(7_000, 40) {
        let mut rng = sim::Rng::new(seed);
        let failback = failback_mode(&mut rng);
        let mut spec = Spec::two_node(failback);
        spec.groups = vec![(0, 1, 0)];
        spec.timings = if rng.chance(0.5) {
            timings(10, 30)
        } else {
            timings(100, 1000)
        };
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim, Duration::ZERO);
        sim.run_for(settle_time(&spec));
        sim.check_settled("before the partition");
        sim.partition(&[0], &[1]);
        sim.run_for(spec.timings.deadtime * 3);
        sim.check(
            sim.holders(0).len() == 2,
            "both sides hold during the split",
        );
        sim.heal();
        // One keepalive for the next beat each way, plus the network's
        // delay and the release itself.
        sim.run_for(spec.timings.keepalive + 2 * MS);
        sim.check(
            sim.holders(0).len() == 1,
            "still held on both sides one keepalive after the heal",
        );
    }
}
