//! A partition heals and the peer's messages arrive out of order: a
//! `status` overtaken by a later `resource` message must still make the
//! peer active. Its seq lies in the range given up when the peer came back
//! from the dead, so it reads as a duplicate; without taking its `st`, the
//! peer counted as not active, and both sides held the group, for one more
//! keepalive (the `sim` seed 7009 trace).

mod simnet;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Input};
use harust::wire::Message;
use simnet::{MS, Spec, reconciled_engine as engine, sent, timings};

fn sequenced(m: &Message) -> bool {
    m.kind().is_some_and(|k| !k.starts_with("NS_"))
}

fn status_of(e: &Engine, now: Duration, n: usize) -> &'static str {
    e.view(now).nodes[n].status
}

struct Pair {
    a: Engine,
    b: Engine,
    now: Duration,
}

impl Pair {
    /// One millisecond: both tick; returns what each sent.
    fn tick(&mut self) -> (Vec<Message>, Vec<Message>) {
        self.now += MS;
        let now = self.now;
        (
            sent(&self.a.handle(now, Input::Tick)),
            sent(&self.b.handle(now, Input::Tick)),
        )
    }

    fn deliver_to_a(&mut self, msgs: Vec<Message>) -> Vec<Message> {
        let now = self.now;
        msgs.into_iter()
            .flat_map(|msg| sent(&self.a.handle(now, Input::Packet { link: 0, msg })))
            .collect()
    }

    fn deliver_to_b(&mut self, msgs: Vec<Message>) -> Vec<Message> {
        let now = self.now;
        msgs.into_iter()
            .flat_map(|msg| sent(&self.b.handle(now, Input::Packet { link: 0, msg })))
            .collect()
    }
}

#[test]
fn a_status_overtaken_after_a_heal_still_makes_the_peer_active() {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.timings = timings(10, 30);
    let mut p = Pair {
        a: engine(&spec, 0),
        b: engine(&spec, 1),
        now: Duration::ZERO,
    };
    // Settle: every message delivered at once.
    for _ in 0..1000 {
        let (from_a, from_b) = p.tick();
        let back = p.deliver_to_b(from_a);
        let more = p.deliver_to_a(from_b);
        p.deliver_to_a(back);
        p.deliver_to_b(more);
    }
    assert_eq!(status_of(&p.b, p.now, 0), "active", "before the split");
    // Split until each holds node-a dead.
    for _ in 0..100 {
        p.tick();
    }
    assert_eq!(status_of(&p.b, p.now, 0), "dead", "after the split");
    // Heal: node-b's next beat reaches node-a, whose answer (its status,
    // then what follows it) reaches node-b in reverse order.
    let mut held = Vec::new();
    let deadline = p.now + 100 * MS;
    while held.iter().filter(|m: &&Message| sequenced(m)).count() < 2 {
        assert!(
            p.now < deadline,
            "node-a sent fewer than two messages after the heal"
        );
        let (from_a, from_b) = p.tick();
        held.extend(from_a);
        held.extend(p.deliver_to_a(from_b));
    }
    let kinds: Vec<String> = held
        .iter()
        .filter_map(Message::kind)
        .map(String::from)
        .collect();
    let first_status = held
        .iter()
        .position(|m| m.kind() == Some("status"))
        .expect("node-a answered with its status");
    assert!(
        held[first_status + 1..].iter().any(sequenced),
        "node-a sent nothing sequenced after its status: {kinds:?}"
    );
    held.reverse();
    p.deliver_to_b(held);
    assert_eq!(
        status_of(&p.b, p.now, 0),
        "active",
        "node-b does not count node-a active after {kinds:?} arrived in reverse order"
    );
}
