//! Maintenance mode in the deterministic simulation: while it is on,
//! nothing moves anywhere in the cluster, a restarted daemon adopts what it
//! holds, and the latest operator action wins on every node.

mod simnet;
use simnet as sim;

use std::collections::BTreeSet;
use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{AdminError, AdminRequest, Event, Scope};
use sim::{NetModel, Sim, Spec, seeds};

fn settle_time(spec: &Spec) -> Duration {
    spec.timings.initdead + spec.timings.deadtime * 3
}

fn boot(sim: &mut Sim) {
    for n in 0..sim.spec.nodes {
        sim.start(n);
    }
    let t = settle_time(&sim.spec);
    sim.run_for(t);
    sim.check_settled("at start");
}

fn on_everywhere(sim: &Sim, nodes: &[usize], on: bool) -> bool {
    nodes.iter().all(|&n| {
        sim.nodes[n].engine.as_ref().is_some_and(|e| {
            e.maintenance().on == on && e.view(sim.now).maintenance_pending.is_empty()
        })
    })
}

fn set(sim: &mut Sim, n: usize, on: bool) {
    let id = sim.admin(n, AdminRequest::Maintenance(on));
    sim.check(sim.reply(n, id) == Some(&Ok(())), "maintenance accepted");
    let everyone = sim.running();
    let keepalive = sim.spec.timings.keepalive;
    sim.run_until_cond(keepalive * 3, "every node took the change", |s| {
        on_everywhere(s, &everyone, on)
    });
}

fn present(sim: &Sim) -> Vec<BTreeSet<(usize, usize)>> {
    sim.nodes.iter().map(|n| n.present.clone()).collect()
}

fn three_nodes(failback: AutoFailback) -> Spec {
    let mut spec = Spec::two_node(failback);
    spec.nodes = 3;
    spec.groups = vec![(0, 1, 1), (1, 2, 0), (2, 1, 1)];
    spec
}

#[test]
fn a_dead_holder_is_reported_but_its_groups_move_only_after_off() {
    for seed in seeds(31_000, 30) {
        for failback in [AutoFailback::On, AutoFailback::Off] {
            let spec = three_nodes(failback);
            let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
            boot(&mut sim);
            set(&mut sim, 1, true);
            let before = present(&sim);
            let deaths = sim.peer_deaths();
            sim.crash_machine(0);
            sim.run_for(spec.timings.deadtime * 4);
            sim.check(
                sim.peer_deaths() >= deaths + 2,
                "both survivors report node-a's death",
            );
            let now = present(&sim);
            sim.check(
                now[1] == before[1] && now[2] == before[2],
                "the survivors took nothing over during maintenance",
            );
            sim.check(
                sim.holders(0).is_empty(),
                "node-a's group is held by nobody",
            );
            // Off on node-c: the normal rules, applied to the state now.
            set(&mut sim, 2, false);
            sim.run_for(spec.timings.deadtime * 2);
            sim.check_settled("after maintenance off");
            sim.check(
                matches!(sim.holders(0).as_slice(), [1] | [2]),
                "a survivor holds node-a's group",
            );
        }
    }
}

#[test]
fn a_daemon_stopped_and_restarted_in_maintenance_adopts_what_it_holds() {
    for seed in seeds(32_000, 30) {
        for failback in [AutoFailback::On, AutoFailback::Off] {
            let mut spec = Spec::two_node(failback);
            spec.groups = vec![(0, 1, 2), (1, 1, 0), (0, 2, 0)];
            let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
            boot(&mut sim);
            set(&mut sim, 1, true);
            let before = present(&sim);
            let held: Vec<Vec<usize>> = (0..3).map(|g| sim.holders(g)).collect();
            // SIGTERM: the stop completes without releasing anything.
            sim.shutdown(0);
            sim.run_for(spec.timings.keepalive * 2);
            sim.check(sim.nodes[0].engine.is_none(), "node-a stopped");
            sim.check(present(&sim) == before, "the stop released nothing");
            // Down for longer than deadtime: node-b reports it, keeps still.
            sim.run_for(spec.timings.deadtime * 3);
            sim.check(present(&sim) == before, "node-b took nothing over");
            let acquisitions = sim.nodes[0].acquisitions;
            sim.start(0);
            sim.run_for(settle_time(&spec));
            sim.check(present(&sim) == before, "the restart moved nothing");
            sim.check(
                (0..3).all(|g| sim.holders(g) == held[g]),
                "node-a adopted its groups",
            );
            sim.check(
                sim.nodes[0].acquisitions == acquisitions,
                "adopted, not acquired again",
            );
            sim.check(
                sim.nodes[0]
                    .events
                    .iter()
                    .any(|(_, e)| matches!(e, Event::Adopted { .. })),
                "the adoption is reported",
            );
            set(&mut sim, 0, false);
            sim.run_for(spec.timings.deadtime * 2);
            sim.check_settled("after maintenance off");
            sim.check(
                (0..3).all(|g| sim.holders(g) == held[g]),
                "nothing moved after off either",
            );
        }
    }
}

#[test]
fn a_daemon_killed_by_its_watchdog_in_maintenance_keeps_its_resources() {
    for seed in seeds(33_000, 20) {
        let spec = Spec::two_node(AutoFailback::On);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim);
        set(&mut sim, 0, true);
        let before = present(&sim);
        // Frozen past the watchdog: killed, release-local, restarted.
        sim.freeze(0, spec.timings.deadtime * 3);
        sim.run_for(spec.timings.deadtime * 4);
        sim.check(sim.nodes[0].engine.is_some(), "node-a was restarted");
        sim.check(present(&sim) == before, "nothing moved");
        sim.check(sim.holders(0) == vec![0], "node-a adopted its group");
    }
}

#[test]
fn the_latest_change_wins_on_a_node_that_was_down_when_it_was_made() {
    for seed in seeds(34_000, 20) {
        let spec = three_nodes(AutoFailback::On);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim);
        set(&mut sim, 0, true);
        // node-c stops in maintenance (it remembers "on"); meanwhile the
        // operator turns maintenance off, then on again, then off.
        sim.shutdown(2);
        // Until its deadtime, its peers count it as one that has not
        // taken the next change.
        sim.run_for(spec.timings.deadtime * 2);
        sim.check(sim.nodes[2].engine.is_none(), "node-c stopped");
        set(&mut sim, 1, false);
        sim.run_for(spec.timings.deadtime * 2);
        set(&mut sim, 0, true);
        set(&mut sim, 1, false);
        sim.check(sim.nodes[2].maintenance.on, "node-c's state dir says on");
        sim.start(2);
        let keepalive = spec.timings.keepalive;
        sim.run_until_cond(keepalive * 5, "node-c learns maintenance is off", |s| {
            on_everywhere(s, &[0, 1, 2], false)
        });
        sim.run_for(settle_time(&spec));
        sim.check_settled("after node-c rejoined");
        // The newest version is the one everybody keeps.
        let versions: BTreeSet<u64> = (0..3).map(|n| sim.nodes[n].maintenance.version).collect();
        sim.check(versions.len() == 1, "one version everywhere");
    }
}

#[test]
fn a_node_started_fresh_joins_a_cluster_in_maintenance() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut sim = Sim::new(1, spec.clone(), NetModel::default());
    sim.start(1);
    sim.run_for(settle_time(&spec));
    sim.check(
        sim.holders(0) == vec![1],
        "node-b holds node-a's group alone",
    );
    set(&mut sim, 1, true);
    sim.start(0);
    sim.run_until_cond(spec.timings.deadtime * 2, "node-a is in maintenance", |s| {
        on_everywhere(s, &[0, 1], true)
    });
    sim.run_for(settle_time(&spec));
    sim.check(
        sim.holders(0) == vec![1] && sim.nodes[0].present.is_empty(),
        "no failback to node-a during maintenance",
    );
    set(&mut sim, 0, false);
    sim.run_for(spec.timings.deadtime * 2);
    sim.check_settled("after off");
    sim.check(sim.holders(0) == vec![0], "failback after off");
}

#[test]
fn standby_and_takeover_are_refused_during_maintenance() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut sim = Sim::new(2, spec.clone(), NetModel::default());
    boot(&mut sim);
    set(&mut sim, 0, true);
    let id = sim.admin(0, AdminRequest::Standby(Scope::All));
    sim.check(
        sim.reply(0, id) == Some(&Err(AdminError::Maintenance)),
        "standby refused",
    );
    let id = sim.admin(1, AdminRequest::Takeover(Scope::All));
    sim.check(
        sim.reply(1, id) == Some(&Err(AdminError::Maintenance)),
        "takeover refused",
    );
    sim.run_for(spec.timings.deadtime);
    sim.check(sim.holders(0) == vec![0], "nothing moved");
}

#[test]
fn maintenance_off_before_the_restarted_node_hears_all_its_peers_keeps_what_it_adopted() {
    for seed in seeds(35_000, 20) {
        let spec = three_nodes(AutoFailback::Off);
        let mut sim = Sim::new(seed, spec.clone(), NetModel::default());
        boot(&mut sim);
        set(&mut sim, 0, true);
        sim.shutdown(0);
        sim.run_for(spec.timings.keepalive * 2);
        let before = present(&sim);
        // node-a restarts cut off from node-c, so its comm is not up
        // until initdead; it must not judge what it adopted before.
        sim.partition(&[0], &[2]);
        sim.start(0);
        let id = sim.admin(0, AdminRequest::Maintenance(false));
        sim.check(
            sim.reply(0, id) == Some(&Err(AdminError::NotReady)),
            "off refused before comm is up",
        );
        sim.check(sim.holders(0) == vec![0], "node-a adopted its group");
        // node-b turns it off; node-a hears that while waiting for node-c.
        let id = sim.admin(1, AdminRequest::Maintenance(false));
        sim.check(sim.reply(1, id) == Some(&Ok(())), "off accepted on node-b");
        sim.run_for(spec.timings.keepalive * 3);
        sim.check(!sim.nodes[0].maintenance.on, "node-a took the off");
        sim.check(
            present(&sim) == before,
            "nothing moved before node-a's comm is up",
        );
        sim.heal();
        sim.run_for(settle_time(&spec));
        sim.check_settled("after off");
    }
}
