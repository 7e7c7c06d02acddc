//! The engine's answer to bad packets that passed authentication: each is
//! dropped and counted, and nothing else changes.

mod simnet;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Event, Input, Output, Params};
use harust::wire::Message;
use simnet::Spec;

/// The simulated pair's keepalive: every engine beats again by then.
const KA: Duration = Duration::from_millis(100);

fn engine(spec: &Spec, me: usize, generation: u64) -> Engine {
    let params = Params {
        uuid: [me as u8 + 1; 16],
        generation,
        wall_base: 0x6b06_f000,
        seed: me as u64,
    };
    let mut e = Engine::new(&spec.config(me), params, Duration::ZERO);
    e.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
    e
}

/// Node-b's first beat, as node-a would receive it.
fn beat_of(b: &mut Engine, t: Duration) -> Message {
    b.handle(t, Input::Tick)
        .into_iter()
        .find_map(|o| match o {
            Output::Send(m) if m.kind() == Some("status") => {
                Some(std::sync::Arc::unwrap_or_clone(m))
            }
            _ => None,
        })
        .expect("a status beat")
}

fn dropped(out: &[Output]) -> Vec<&'static str> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(Event::Dropped { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect()
}

fn peer_up(out: &[Output]) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Event(Event::PeerUp { .. })))
}

#[test]
fn a_packet_from_an_unknown_node_is_dropped_and_counted() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0, 0x6b06_f980);
    let mut m = Message::new("status");
    m.add_str("st", "active")
        .add_str("src", "intruder")
        .add_hex("seq", 1)
        .add_hex("hg", 1)
        .add_hex("ts", 1);
    let out = a.handle(Duration::from_millis(5), Input::Packet { link: 0, msg: m });
    assert_eq!(dropped(&out), vec!["unknown node"]);
    assert!(!peer_up(&out));
    assert_eq!(a.counters().bad_packets, 1);
}

#[test]
fn a_replayed_packet_from_an_older_generation_is_dropped_and_counted() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0, 0x6b06_f980);
    // node-b's previous life, then its current one.
    let mut old_b = engine(&spec, 1, 0x100);
    let mut b = engine(&spec, 1, 0x200);
    let old = beat_of(&mut old_b, KA);
    let new = beat_of(&mut b, KA);
    let t = KA + Duration::from_millis(5);
    let out = a.handle(t, Input::Packet { link: 0, msg: new });
    assert!(peer_up(&out), "the current beat is accepted");
    let out = a.handle(t, Input::Packet { link: 0, msg: old });
    assert_eq!(dropped(&out), vec!["replayed (old generation)"]);
    assert_eq!(a.counters().replays, 1);
}

#[test]
fn a_packet_from_a_future_generation_is_a_restart_not_a_replay() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0, 0x6b06_f980);
    let mut b = engine(&spec, 1, 0x200);
    let mut b2 = engine(&spec, 1, 0x300);
    let t = KA + Duration::from_millis(5);
    a.handle(
        t,
        Input::Packet {
            link: 0,
            msg: beat_of(&mut b, KA),
        },
    );
    let out = a.handle(
        t,
        Input::Packet {
            link: 0,
            msg: beat_of(&mut b2, KA),
        },
    );
    assert!(dropped(&out).is_empty());
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::PeerRestarted { .. })))
    );
    assert_eq!(a.counters().replays, 0);
}

#[test]
fn a_duplicate_is_ignored_without_counting_it_as_bad() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0, 0x6b06_f980);
    let mut b = engine(&spec, 1, 0x200);
    let beat = beat_of(&mut b, KA);
    let t = KA + Duration::from_millis(5);
    a.handle(
        t,
        Input::Packet {
            link: 0,
            msg: beat.clone(),
        },
    );
    let out = a.handle(t, Input::Packet { link: 0, msg: beat });
    assert!(dropped(&out).is_empty());
    assert_eq!(a.counters().bad_packets, 0);
}

#[test]
fn a_packet_without_sequence_or_timestamp_is_dropped() {
    let spec = Spec::two_node(AutoFailback::On);
    let mut a = engine(&spec, 0, 0x6b06_f980);
    let mut m = Message::new("status");
    m.add_str("src", "node-b").add_hex("hg", 5);
    let out = a.handle(Duration::from_millis(5), Input::Packet { link: 0, msg: m });
    assert_eq!(dropped(&out), vec!["no seq or generation"]);
    let mut m = Message::new("status");
    m.add_str("src", "node-b")
        .add_hex("seq", 1)
        .add_hex("hg", 5)
        .add_hex("ts", 0);
    let out = a.handle(Duration::from_millis(6), Input::Packet { link: 0, msg: m });
    assert_eq!(dropped(&out), vec!["zero timestamp"]);
    assert_eq!(a.counters().bad_packets, 2);
}

fn stops(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| matches!(o, Output::Stop { .. }))
        .count()
}

#[test]
fn a_failed_stop_is_tried_again_before_it_counts_as_done() {
    use harust::engine::Op;
    let spec = Spec::two_node(AutoFailback::On);
    let params = Params {
        uuid: [1; 16],
        generation: 7,
        wall_base: 0x6b06_f000,
        seed: 1,
    };
    let mut a = Engine::new(&spec.config(0), params, Duration::ZERO);
    // A stale address found at start must go before anything else.
    let out = a.handle(
        Duration::ZERO,
        Input::Reconciled {
            present: vec![(0, 0)],
        },
    );
    assert_eq!(stops(&out), 1);
    let failed = || Input::ResourceDone {
        group: 0,
        resource: 0,
        op: Op::Stop,
        result: Err("listing addresses failed: EBUSY".into()),
    };
    for attempt in 1..=3 {
        let out = a.handle(Duration::from_millis(attempt), failed());
        assert_eq!(stops(&out), 1, "attempt {attempt} is retried");
    }
    // After the last retry it gives up (and reports it) rather than loop.
    let out = a.handle(Duration::from_millis(10), failed());
    assert_eq!(stops(&out), 0);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::ResourceFailed { .. })))
    );
}
