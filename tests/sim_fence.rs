//! Fencing in simulation (docs/SAFETY.md, "Fencing"): a silent holder's
//! groups are taken only after it was fenced (the simulated device powers
//! the machine off and it boots again), a failing device never leads to a
//! takeover, `fence-confirm` unblocks, and hearing the node again cancels
//! the fence. "Never two holders" is checked after every step.

mod simnet;
use simnet as sim;

use std::time::Duration;

use harust::config::{AutoFailback, Fence, FenceAgent};
use harust::engine::{
    AdminError, AdminRequest, Event, FENCE_DELAY_OTHERS, FENCE_RETRY_FIRST, release_bound,
};
use sim::{NetModel, Sim, Spec, node_name, seeds};

fn settle_time(spec: &Spec) -> Duration {
    spec.timings.initdead + spec.timings.deadtime * 3
}

fn safe_wait(spec: &Spec) -> Duration {
    spec.timings.deadtime + release_bound(spec.timings.keepalive, spec.timings.deadtime)
}

fn device(target: Option<usize>, from: Option<usize>) -> Fence {
    Fence {
        target: target.map(node_name),
        from: from.map(node_name),
        agent: FenceAgent::Stonith {
            kind: "external/sim".into(),
            inline: Some("x".into()),
        },
        line: 1,
    }
}

/// node-a holds g0; only node-b has a device, for node-a (heartbeat's
/// `stonith_host node-b TYPE PARAMS`).
fn b_fences_a() -> Spec {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.fences = vec![device(None, Some(1))];
    spec
}

fn boot(sim: &mut Sim) {
    for n in 0..sim.spec.nodes {
        sim.start(n);
    }
    sim.run_for(settle_time(&sim.spec.clone()));
    sim.check_settled("after boot");
    sim.check(sim.holders(0) == vec![0], "node-a holds g0");
}

fn first_event(sim: &Sim, n: usize, f: impl Fn(&Event) -> bool) -> Option<Duration> {
    sim.nodes[n]
        .events
        .iter()
        .find(|(_, e)| f(e))
        .map(|(t, _)| *t)
}

#[test]
fn a_silent_holder_is_fenced_before_its_groups_are_taken() {
    for seed in seeds(21_000, 20) {
        let spec = b_fences_a();
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        // node-a boots again only after the heal below: a node without a
        // device of its own takes over after initdead, as heartbeat does.
        sim.restart_after = Duration::from_secs(5);
        boot(&mut sim);
        let cut = sim.now;
        sim.partition(&[0], &[1]);
        // Cut off, node-a holds on (quorum off) until it is powered off;
        // node-b, not the first node, fences after FENCE_DELAY_OTHERS.
        sim.run_until_cond(
            spec.timings.deadtime * 2 + FENCE_DELAY_OTHERS + sim.fence_latency,
            "node-b holds g0",
            |s| s.holders(0) == vec![1],
        );
        sim.check(
            sim.fenced.len() == 1 && sim.fenced[0].1 == 1 && sim.fenced[0].2 == 0,
            "node-b fenced node-a once",
        );
        let fenced = first_event(&sim, 1, |e| matches!(e, Event::Fenced { by: None, .. }));
        let acquired = first_event(&sim, 1, |e| matches!(e, Event::Acquired { .. }));
        sim.check(
            fenced.is_some() && acquired.is_some() && fenced < acquired,
            "node-b reports the fence before it acquires",
        );
        sim.check(
            acquired.unwrap() >= cut + safe_wait(&spec) - spec.timings.keepalive * 2,
            "fencing keeps the release wait",
        );
        // node-a boots again, and fails back without two holders.
        sim.heal();
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after node-a rebooted");
    }
}

#[test]
fn a_failing_fence_never_leads_to_a_takeover_and_fence_confirm_unblocks() {
    let spec = b_fences_a();
    let mut sim = Sim::new(1, spec.clone(), NetModel::default());
    sim.check_exclusive = true;
    sim.fence_works = false;
    boot(&mut sim);
    sim.partition(&[0], &[1]);
    sim.run_for(Duration::from_secs(60));
    sim.check(sim.holders(0) == vec![0], "node-a alone holds g0");
    sim.check(sim.nodes[1].acquisitions == 0, "node-b took nothing");
    let failures: Vec<Duration> = sim.nodes[1]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::FenceFailed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    sim.check(
        failures.len() >= 3
            && failures[0] == FENCE_RETRY_FIRST
            && failures[1] == FENCE_RETRY_FIRST * 2,
        &format!("retried with a doubling backoff: {failures:?}"),
    );
    let status = sim.nodes[1].engine.as_ref().unwrap().view(sim.now);
    sim.check(
        status.nodes[0].status == "fencing",
        &format!("node-a shows as fencing: {:?}", status.nodes[0]),
    );

    // The operator powers node-a off by hand, then confirms.
    sim.crash_machine(0);
    let id = sim.admin(1, AdminRequest::FenceConfirm(0));
    sim.check(sim.reply(1, id) == Some(&Ok(())), "FenceConfirm accepted");
    sim.run_until_cond(safe_wait(&spec), "node-b holds g0", |s| {
        s.holders(0) == vec![1]
    });
    sim.check(
        first_event(&sim, 1, |e| matches!(e, Event::Fenced { by: Some(_), .. })).is_some(),
        "the confirmation is reported",
    );
}

#[test]
fn hearing_the_node_again_cancels_its_fence() {
    let spec = b_fences_a();
    let mut sim = Sim::new(2, spec.clone(), NetModel::default());
    sim.check_exclusive = true;
    sim.fence_works = false;
    boot(&mut sim);
    sim.partition(&[0], &[1]);
    let first_fence = spec.timings.deadtime * 2 + FENCE_DELAY_OTHERS + sim.fence_latency;
    sim.run_until_cond(first_fence, "the first fence to fail", |s| {
        first_event(s, 1, |e| matches!(e, Event::FenceFailed { .. })).is_some()
    });
    sim.heal();
    sim.run_for(spec.timings.deadtime);
    let healed = sim.now;
    sim.run_for(FENCE_RETRY_FIRST * 4);
    let later = sim.nodes[1]
        .events
        .iter()
        .any(|(t, e)| *t > healed && matches!(e, Event::Fencing { .. }));
    sim.check(!later, "no fence after node-a was heard again");
    sim.check(sim.holders(0) == vec![0], "node-a still holds g0");
    let id = sim.admin(1, AdminRequest::FenceConfirm(0));
    sim.check(
        matches!(sim.reply(1, id), Some(Err(AdminError::NotFencing(_)))),
        "a live node cannot be confirmed off",
    );
}

#[test]
fn a_node_without_a_device_waits_for_a_confirmation() {
    // Only node-a may fence node-b (stonith_host node-a ...): when node-a
    // dies, node-b has nothing to fence it with.
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.fences = vec![device(Some(0), Some(2)), device(None, Some(0))];
    spec.nodes = 3;
    let mut sim = Sim::new(3, spec.clone(), NetModel::default());
    sim.check_exclusive = true;
    // Reset by node-c's device, node-a stays down for this test.
    sim.restart_after = Duration::from_secs(3600);
    boot(&mut sim);
    sim.crash_machine(0);
    sim.run_for(safe_wait(&spec) * 3);
    sim.check(sim.holders(0).is_empty(), "nobody took g0 unfenced");
    sim.check(
        first_event(&sim, 1, |e| matches!(e, Event::FenceNeeded { .. })).is_some(),
        "node-b says node-a must be fenced",
    );
    // node-c fences node-a (its device), and says nothing to node-b: only
    // the operator's confirmation lets node-b go on.
    sim.check(sim.fenced.iter().any(|f| f.1 == 2), "node-c fenced node-a");
    let id = sim.admin(1, AdminRequest::FenceConfirm(0));
    sim.check(sim.reply(1, id) == Some(&Ok(())), "FenceConfirm accepted");
    sim.run_until_cond(safe_wait(&spec), "g0 is held again", |s| {
        s.holders(0).len() == 1
    });
}

#[test]
fn never_two_holders_with_fencing_through_partitions_one_way_loss_and_freezes() {
    for seed in seeds(22_000, 60) {
        let mut rng = sim::Rng::new(seed);
        let mut spec = Spec::two_node([AutoFailback::On, AutoFailback::Off][rng.below(2) as usize]);
        // Each node may fence the other.
        spec.fences = vec![device(Some(0), None), device(Some(1), None)];
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        for n in 0..2 {
            sim.start(n);
        }
        sim.run_for(settle_time(&spec));
        sim.check_settled("after boot");
        for _ in 0..3 {
            let x = rng.below(2) as usize;
            match rng.below(3) {
                0 => sim.partition(&[0], &[1]),
                1 => sim.cut_one_way(x, 1 - x),
                _ => sim.freeze(x, Duration::from_millis(100 + rng.below(3_000))),
            }
            sim.run_for(Duration::from_millis(500 + rng.below(5_000)));
            sim.heal();
            sim.run_for(settle_time(&spec) + safe_wait(&spec) + sim.restart_after);
        }
        sim.run_for(settle_time(&spec) + safe_wait(&spec));
        sim.check_settled("after the faults healed");
    }
}

/// A witness cluster where every node may fence every other
/// (`stonith_host * TYPE PARAMS`): the node cut off from the majority
/// never fences, the majority fences it and takes its group.
#[test]
fn a_node_without_quorum_never_fences_the_majority() {
    for seed in seeds(21_500, 20) {
        let mut spec = b_fences_a();
        spec.nodes = 3;
        spec.witnesses = vec![2];
        spec.quorum = true;
        spec.fences = vec![device(None, None)];
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        sim.restart_after = Duration::from_secs(600);
        boot(&mut sim);
        sim.partition(&[0], &[1, 2]);
        sim.run_until_cond(
            safe_wait(&spec) + spec.timings.deadtime * 2,
            "node-b holds g0",
            |s| s.holders(0) == vec![1],
        );
        sim.check(
            sim.fenced.iter().all(|&(_, by, _)| by != 0),
            &format!("node-a, without quorum, fenced nobody: {:?}", sim.fenced),
        );
        sim.check(
            sim.fenced
                .iter()
                .any(|&(_, by, target)| by != 0 && target == 0),
            &format!("the majority fenced node-a: {:?}", sim.fenced),
        );
    }
}

/// Two nodes, quorum off, each may fence the other: in a split both
/// declare the other dead at once, and without a delay each would power
/// the other off. The first node fences at once, the other after
/// FENCE_DELAY_OTHERS, so only node-b goes down and node-a keeps g0.
#[test]
fn in_a_two_node_split_only_the_first_node_fences() {
    for seed in seeds(21_700, 20) {
        let mut spec = b_fences_a();
        spec.fences = vec![device(None, None)];
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        sim.check_exclusive = true;
        sim.restart_after = Duration::from_secs(600);
        boot(&mut sim);
        sim.partition(&[0], &[1]);
        sim.run_for(spec.timings.deadtime * 2 + FENCE_DELAY_OTHERS * 2);
        sim.check(
            sim.fenced.len() == 1 && sim.fenced[0].1 == 0 && sim.fenced[0].2 == 1,
            &format!("node-a alone fenced node-b: {:?}", sim.fenced),
        );
        sim.check(sim.holders(0) == vec![0], "node-a holds g0");
    }
}
