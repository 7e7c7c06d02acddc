//! A group's consecutive addresses are asked for in one engine step, so the
//! runtime can add or delete them as one netlink batch; units still go one
//! at a time, and a failure inside a batch still undoes all of it.

mod simnet;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Event, Input, Op, Output, Params};
use simnet::Spec;

/// One node of a pair whose peer never shows up, with group 0 made of
/// `vips` addresses then `units` units.
fn lone_engine(vips: usize, units: usize) -> Engine {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.groups = vec![(0, vips, units)];
    let params = Params {
        uuid: [1; 16],
        generation: 1,
        wall_base: 0x6b06_f000,
        seed: 0,
    };
    let mut e = Engine::new(&spec.config(0), params, Duration::ZERO);
    e.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
    e
}

/// The (op, resource) actions among `out`, in order.
fn actions(out: &[Output]) -> Vec<(Op, usize)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Start { resource, .. } => Some((Op::Start, *resource)),
            Output::Stop { resource, .. } => Some((Op::Stop, *resource)),
            _ => None,
        })
        .collect()
}

/// Ticks through the engine's deadlines until it asks for an action.
fn until_acquiring(e: &mut Engine) -> (Duration, Vec<(Op, usize)>) {
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(60) {
        now = e
            .next_deadline()
            .unwrap_or(now + Duration::from_millis(100));
        let acts = actions(&e.handle(now, Input::Tick));
        if !acts.is_empty() {
            return (now, acts);
        }
    }
    panic!("the lone node never started acquiring its group");
}

fn done(e: &mut Engine, now: Duration, op: Op, resource: usize, ok: bool) -> Vec<Output> {
    e.handle(
        now,
        Input::ResourceDone {
            group: 0,
            resource,
            op,
            result: if ok { Ok(()) } else { Err("failed".into()) },
        },
    )
}

#[test]
fn consecutive_addresses_start_together_and_units_alone() {
    let mut e = lone_engine(3, 1);
    let (now, first) = until_acquiring(&mut e);
    assert_eq!(first, [(Op::Start, 0), (Op::Start, 1), (Op::Start, 2)]);
    assert!(actions(&done(&mut e, now, Op::Start, 0, true)).is_empty());
    assert!(actions(&done(&mut e, now, Op::Start, 1, true)).is_empty());
    assert_eq!(
        actions(&done(&mut e, now, Op::Start, 2, true)),
        [(Op::Start, 3)],
        "the unit starts once every address is up"
    );
    let out = done(&mut e, now, Op::Start, 3, true);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::Acquired { .. }))),
        "acquired once the unit is up: {out:?}"
    );
}

#[test]
fn a_failure_inside_a_batch_stops_the_whole_batch_last_first() {
    let mut e = lone_engine(4, 0);
    let (now, first) = until_acquiring(&mut e);
    assert_eq!(first.len(), 4, "{first:?}");
    assert!(actions(&done(&mut e, now, Op::Start, 0, true)).is_empty());
    // 1 fails; 2 and 3 may have been added by the same batch.
    assert_eq!(
        actions(&done(&mut e, now, Op::Start, 1, false)),
        [(Op::Stop, 3), (Op::Stop, 2), (Op::Stop, 1), (Op::Stop, 0)]
    );
    // The rest of the start batch answers after: stale, nothing to do.
    assert!(actions(&done(&mut e, now, Op::Start, 2, true)).is_empty());
    assert!(actions(&done(&mut e, now, Op::Start, 3, true)).is_empty());
    for r in [3, 2, 1] {
        assert!(actions(&done(&mut e, now, Op::Stop, r, true)).is_empty());
    }
    let out = done(&mut e, now, Op::Stop, 0, true);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::Released { .. }))),
        "released once the whole batch is down: {out:?}"
    );
}

#[test]
fn a_stop_retried_inside_a_batch_asks_for_the_rest_again() {
    let mut e = lone_engine(3, 0);
    let (now, first) = until_acquiring(&mut e);
    for (_, r) in first {
        done(&mut e, now, Op::Start, r, true);
    }
    let stops = actions(&e.handle(now, Input::Shutdown));
    assert_eq!(stops, [(Op::Stop, 2), (Op::Stop, 1), (Op::Stop, 0)]);
    assert_eq!(
        actions(&done(&mut e, now, Op::Stop, 2, false)),
        [(Op::Stop, 2)],
        "the failed stop is retried alone"
    );
    // The batch's other answers come before the retry's: stale.
    assert!(actions(&done(&mut e, now, Op::Stop, 1, true)).is_empty());
    assert!(actions(&done(&mut e, now, Op::Stop, 0, true)).is_empty());
    assert_eq!(
        actions(&done(&mut e, now, Op::Stop, 2, true)),
        [(Op::Stop, 1), (Op::Stop, 0)],
        "after the retry, the rest of the batch is asked for again"
    );
}
