//! Safety in simulation (docs/SAFETY.md): quorum, witnesses, the release
//! wait, one-way loss and frozen daemons. With quorum on, "never two
//! holders" is checked after every step of the simulation, not only once
//! it has settled.

mod simnet;
use simnet as sim;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Event, QUIET_HOLDOFF, release_bound};
use sim::{MS, NetModel, Sim, Spec, node_name, seeds, timings};

fn settle_time(spec: &Spec) -> Duration {
    spec.timings.initdead + spec.timings.deadtime * 3
}

fn boot(sim: &mut Sim) {
    for n in 0..sim.spec.nodes {
        sim.start(n);
    }
}

/// The wait before a silent holder's groups are taken, with quorum on.
fn safe_wait(spec: &Spec) -> Duration {
    spec.timings.deadtime + release_bound(spec.timings.keepalive, spec.timings.deadtime)
}

/// node-a and node-b, which hold groups, and the witness node-c; quorum on.
fn witness_cluster() -> Spec {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.nodes = 3;
    spec.witnesses = vec![2];
    spec.quorum = true;
    spec
}

/// 2–4 voting nodes, with or without one witness, quorum on, groups on
/// the voting nodes.
fn random_quorum_spec(rng: &mut sim::Rng) -> Spec {
    let voting = 2 + rng.below(3) as usize;
    let witness = rng.chance(0.5);
    let nodes = voting + usize::from(witness);
    let groups = (0..1 + rng.below(3))
        .map(|_| {
            (
                rng.below(voting as u64) as usize,
                1 + rng.below(2) as usize,
                rng.below(3) as usize,
            )
        })
        .collect();
    Spec {
        nodes,
        groups,
        timings: timings(100, 1000),
        failback: [AutoFailback::On, AutoFailback::Off][rng.below(2) as usize],
        ping_nodes: 0,
        witnesses: if witness { vec![voting] } else { vec![] },
        quorum: true,
        fences: vec![],
    }
}

fn mild(rng: &mut sim::Rng) -> NetModel {
    NetModel {
        loss: (rng.below(5) as f64) / 100.0,
        dup: (rng.below(5) as f64) / 100.0,
        delay_min: Duration::from_micros(50),
        delay_max: Duration::from_micros(50 + rng.below(5_000)),
    }
}

/// One random fault: a partition, a one-way cut, a node cut off from
/// all, or a frozen daemon. Returns a description for the transcript.
fn inject(sim: &mut Sim, rng: &mut sim::Rng) {
    let n = sim.spec.nodes;
    let x = rng.below(n as u64) as usize;
    match rng.below(4) {
        0 => {
            let mut a = vec![];
            let mut b = vec![];
            for i in 0..n {
                if rng.chance(0.5) { &mut a } else { &mut b }.push(i);
            }
            sim.partition(&a, &b);
        }
        1 => {
            let y = (x + 1 + rng.below(n as u64 - 1) as usize) % n;
            sim.cut_one_way(x, y);
        }
        2 => {
            let others: Vec<usize> = (0..n).filter(|&i| i != x).collect();
            sim.partition(&[x], &others);
        }
        _ => {
            let d = Duration::from_millis(100 + rng.below(3_000));
            sim.freeze(x, d);
        }
    }
}

#[test]
fn never_two_holders_with_quorum_through_partitions_one_way_loss_and_freezes() {
    for seed in seeds(11_000, 120) {
        let mut rng = sim::Rng::new(seed);
        let spec = random_quorum_spec(&mut rng);
        let mut sim = Sim::new(seed, spec.clone(), mild(&mut rng));
        sim.check_exclusive = true;
        // Half the runs read as the runtime does at short keepalives
        // (tests/sim_quiet.rs): a peer's message up to a keepalive late.
        sim.quiet_reads = seed % 2 == 1;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.check_settled("after boot");
        if sim.quiet_reads {
            // Idle long enough for the reads to go quiet.
            sim.run_for(QUIET_HOLDOFF.max(spec.timings.deadtime * 10) + spec.timings.keepalive);
        }
        for _ in 0..3 {
            inject(&mut sim, &mut rng);
            if rng.chance(0.3) {
                inject(&mut sim, &mut rng);
            }
            sim.run_for(Duration::from_millis(500 + rng.below(5_000)));
            sim.heal();
            sim.run_for(settle_time(&spec) + safe_wait(&spec));
        }
        // The frozen ones were thawed or restarted by now.
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after the faults healed");
    }
}

#[test]
fn witness_cluster_node_cut_off_from_both_others_releases_and_the_other_takes_over() {
    for seed in seeds(12_000, 40) {
        let spec = witness_cluster();
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.check_settled("after boot");
        sim.check(sim.holders(0) == vec![0], "node-a holds g0");
        sim.partition(&[0], &[1, 2]);
        let took = sim.run_until_cond(
            safe_wait(&spec) + spec.timings.deadtime,
            "node-b holds g0",
            |s| s.holders(0) == vec![1],
        );
        sim.check(
            took + spec.timings.keepalive * 2 >= safe_wait(&spec),
            &format!("node-b took g0 after {took:?}, before the release wait"),
        );
        let lost = sim.nodes[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::QuorumLost { seen: 1, voters: 3 }));
        sim.check(lost, "node-a reports quorum lost");
        sim.check(
            sim.nodes[2].acquisitions == 0,
            "the witness never acquires anything",
        );
        sim.heal();
        sim.run_for(settle_time(&spec));
        sim.check_settled("after the heal");
        let regained = sim.nodes[0]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::QuorumRegained { .. }));
        sim.check(regained, "node-a reports quorum regained");
    }
}

#[test]
fn the_witness_never_holds_even_when_it_alone_is_left() {
    let spec = witness_cluster();
    let mut sim = Sim::new(1, spec.clone(), NetModel::default());
    boot(&mut sim);
    sim.run_for(settle_time(&spec));
    sim.crash_machine(0);
    sim.crash_machine(1);
    sim.run_for(settle_time(&spec) * 3);
    sim.check(sim.holders(0).is_empty(), "nobody holds g0");
    sim.check(sim.nodes[2].acquisitions == 0, "the witness acquired");
}

#[test]
fn even_split_without_a_witness_goes_to_the_first_node_on_both_sides() {
    for seed in seeds(13_000, 40) {
        // The group prefers node-b: the tie-break, not the preference,
        // decides who holds during the split.
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.groups = vec![(1, 1, 1)];
        spec.quorum = true;
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.check(sim.holders(0) == vec![1], "node-b holds g0 at first");
        sim.partition(&[0], &[1]);
        sim.run_until_cond(
            safe_wait(&spec) + spec.timings.deadtime,
            "node-a, first in the node list, takes g0",
            |s| s.holders(0) == vec![0],
        );
        sim.run_for(Duration::from_secs(5));
        sim.check(sim.holders(0) == vec![0], "node-a keeps g0 while split");
        sim.heal();
        sim.run_for(settle_time(&spec));
        sim.check_settled("after the heal");
        sim.check(sim.holders(0) == vec![1], "g0 fails back to node-b");
    }
}

#[test]
fn takeover_with_quorum_waits_deadtime_plus_the_release_bound() {
    for seed in seeds(14_000, 20) {
        let spec = witness_cluster();
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.crash_machine(0);
        let took = sim.run_until_cond(
            safe_wait(&spec) + spec.timings.keepalive * 2,
            "node-b holds g0",
            |s| s.holders(0) == vec![1],
        );
        sim.check(
            took + spec.timings.keepalive >= safe_wait(&spec),
            &format!("took over after {took:?}: the release wait was cut short"),
        );
    }
}

/// Runs `steps` of 1 ms and returns the longest stretch during which
/// two engines held group `g`.
fn longest_dual_hold(sim: &mut Sim, g: usize, d: Duration) -> Duration {
    let mut longest = Duration::ZERO;
    let mut since = None;
    let end = sim.now + d;
    while sim.now < end {
        sim.run_for(MS);
        if sim.holders(g).len() > 1 {
            let s = *since.get_or_insert(sim.now);
            longest = longest.max(sim.now - s);
        } else {
            since = None;
        }
    }
    longest
}

#[test]
fn one_way_loss_without_quorum_leaves_one_holder_within_a_keepalive() {
    for seed in seeds(15_000, 40) {
        let mut rng = sim::Rng::new(seed);
        let spec = Spec::two_node([AutoFailback::On, AutoFailback::Off][rng.below(2) as usize]);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.check_settled("after boot");
        let holder = sim.holders(0)[0];
        let other = 1 - holder;
        // The holder's beats no longer reach the other node, which then
        // takes the group; the holder still hears it say so.
        sim.cut_one_way(holder, other);
        let dual = longest_dual_hold(&mut sim, 0, Duration::from_secs(4));
        let bound = spec.timings.keepalive + sim.group_len(0) as u32 * sim.res_latency + 2 * MS;
        sim.check(
            dual <= bound,
            &format!("both held g0 for {dual:?} (bound {bound:?})"),
        );
        sim.check(
            sim.holders(0) == vec![other],
            &format!("{} holds g0 during the loss", node_name(other)),
        );
        sim.heal();
        sim.run_for(settle_time(&spec));
        sim.check_settled("after the loss ended");
        if spec.failback == AutoFailback::On {
            sim.check(sim.holders(0) == vec![0], "g0 fails back to node-a");
        }
    }
}

#[test]
fn one_way_loss_with_quorum_never_has_two_holders() {
    for seed in seeds(16_000, 40) {
        let mut rng = sim::Rng::new(seed);
        let mut spec = Spec::two_node(AutoFailback::On);
        if rng.chance(0.5) {
            spec.nodes = 3;
            spec.witnesses = vec![2];
        }
        spec.quorum = true;
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        let (from, to) = if rng.chance(0.5) { (0, 1) } else { (1, 0) };
        sim.cut_one_way(from, to);
        sim.run_for(safe_wait(&spec) * 2);
        sim.check(
            sim.holders(0).len() <= 1,
            "one holder at most during the loss",
        );
        sim.heal();
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after the loss ended");
    }
}

#[test]
fn a_frozen_holder_killed_by_its_watchdog_is_taken_over_without_overlap() {
    for seed in seeds(17_000, 30) {
        let spec = witness_cluster();
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        // Restarted only after node-b has taken over.
        sim.restart_after = Duration::from_secs(6);
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.freeze(0, Duration::from_secs(3));
        sim.run_until_cond(
            safe_wait(&spec) + spec.timings.deadtime,
            "node-b holds g0",
            |s| s.holders(0) == vec![1],
        );
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after the restart");
        sim.check(sim.holders(0) == vec![0], "g0 fails back to node-a");
    }
}

#[test]
fn a_silent_witness_delays_no_takeover() {
    let spec = witness_cluster();
    let mut sim = Sim::new(1, spec.clone(), NetModel::default());
    // The witness never starts: node-a still takes g0 right after initdead.
    sim.start(0);
    sim.start(1);
    let took = sim.run_until_cond(
        spec.timings.initdead + spec.timings.keepalive * 4,
        "node-a holds g0",
        |s| s.holders(0) == vec![0],
    );
    sim.check(
        took >= spec.timings.initdead,
        "g0 taken before the witness was declared dead",
    );
}

/// Chaos seed 4008 (docs/RELIABILITY.md): after a one-way cut heals, the
/// preferred node, given its group back, keeps it. The holder's beats that
/// were lost while it still called the preferred node dead come back as
/// retransmits after the heal; they are old news and must not make the
/// preferred node yield again (a bounce: the address dropped and re-added).
#[test]
fn a_group_given_back_after_a_one_way_cut_does_not_bounce_on_late_retransmits() {
    for seed in seeds(18_000, 20) {
        let mut spec = witness_cluster();
        spec.groups = vec![(1, 1, 0)]; // preferred by node-b
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        boot(&mut sim);
        sim.run_for(settle_time(&spec));
        sim.check(sim.holders(0) == vec![1], "node-b holds g0 after boot");
        // node-a no longer hears node-b: it declares node-b dead, node-b
        // yields, node-a takes g0 after the release wait.
        sim.cut_one_way(1, 0);
        sim.run_until_cond(safe_wait(&spec) * 2, "node-a holds g0", |s| {
            s.holders(0) == vec![0]
        });
        // A few of node-a's beats (saying node-b is dead) are lost on the
        // way to node-b too, then everything heals: node-b asks for them.
        sim.cut_one_way(0, 1);
        sim.run_for(spec.timings.keepalive * 3);
        sim.heal();
        let healed = sim.now;
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after the heal");
        sim.check(sim.holders(0) == vec![1], "g0 is back on node-b");
        let after = |n: usize, f: fn(&Event) -> bool| {
            sim.nodes[n]
                .events
                .iter()
                .filter(|(t, e)| *t >= healed && f(e))
                .count()
        };
        let released = after(1, |e| matches!(e, Event::Releasing { .. }));
        let acquired = after(1, |e| matches!(e, Event::Acquired { .. }));
        sim.check(
            released == 0 && acquired == 1,
            &format!(
                "node-b acquired g0 {acquired} times and released it {released} times after the heal (want once, never)"
            ),
        );
    }
}
