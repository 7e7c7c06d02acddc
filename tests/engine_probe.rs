//! The liveness probe (issue 7): when a harust peer's beats are late, the
//! engine asks it directly (`NS_hr_probe`) and an answer carrying the same
//! nonce (`NS_hr_probe_ack`) is proof of life. Only harust peers are asked,
//! only a fresh answer counts, and with no answer the peer dies on time.

mod simnet;

use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Event, Input, Output};
use harust::wire::Message;
use simnet::{MS, Spec, reconciled_engine as engine, sent, timings};

const PROBE: &str = "NS_hr_probe";
const PROBE_ACK: &str = "NS_hr_probe_ack";

fn died(out: &[Output]) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Event(Event::PeerDead { .. })))
}

fn kind(m: &Message) -> &str {
    m.kind().unwrap_or("")
}

/// A pair at 10 ms / 30 ms that has exchanged beats for a second, so each
/// knows the other and (when `b_is_harust`) that it is a harust peer. With
/// `b_is_harust` false, node-b's messages lose their `hr_*` fields on the
/// way, as if it were heartbeat.
struct Pair {
    a: Engine,
    b: Engine,
    b_is_harust: bool,
    now: Duration,
}

impl Pair {
    fn new(b_is_harust: bool) -> Pair {
        let mut spec = Spec::two_node(AutoFailback::On);
        spec.timings = timings(10, 30);
        let mut p = Pair {
            a: engine(&spec, 0),
            b: engine(&spec, 1),
            b_is_harust,
            now: Duration::ZERO,
        };
        for _ in 0..1000 {
            p.step(|_| true, |_| true);
        }
        let seen = p.a.view(p.now).nodes[1].status;
        assert!(
            matches!(seen, "up" | "active"),
            "node-a sees node-b as {seen}"
        );
        p
    }

    fn as_sent_by_b(&self, mut m: Message) -> Message {
        if !self.b_is_harust {
            for f in [
                "hr_v", "hr_held", "hr_busy", "hr_sb", "hr_fail", "hr_leave", "hr_ping",
            ] {
                m.remove(f);
            }
        }
        m
    }

    /// One millisecond: both tick, and what each sends reaches the other
    /// if the filter lets it through. Returns node-a's outputs.
    fn step(
        &mut self,
        mut a_to_b: impl FnMut(&Message) -> bool,
        mut b_to_a: impl FnMut(&Message) -> bool,
    ) -> Vec<Output> {
        self.now += MS;
        let now = self.now;
        let mut out_a = self.a.handle(now, Input::Tick);
        let mut from_a = sent(&out_a);
        let mut from_b = sent(&self.b.handle(now, Input::Tick));
        // Answers come back within the same millisecond.
        for _ in 0..4 {
            let mut next_a = Vec::new();
            let mut next_b = Vec::new();
            for m in from_a.drain(..).filter(|m| a_to_b(m)) {
                next_b.extend(sent(&self.b.handle(now, Input::Packet { link: 0, msg: m })));
            }
            for m in from_b.drain(..).filter(|m| b_to_a(m)) {
                let m = self.as_sent_by_b(m);
                let o = self.a.handle(now, Input::Packet { link: 0, msg: m });
                next_a.extend(sent(&o));
                out_a.extend(o);
            }
            from_a = next_a;
            from_b = next_b;
        }
        out_a
    }
}

#[test]
fn a_late_harust_peer_is_probed_and_its_answers_keep_it_alive() {
    let mut p = Pair::new(true);
    let mut probes = 0;
    // node-b's beats are all lost; only its answers to probes get through.
    for _ in 0..300 {
        let out = p.step(|_| true, |m| kind(m) == PROBE_ACK);
        probes += sent(&out).iter().filter(|m| kind(m) == PROBE).count();
        assert!(!died(&out), "node-b declared dead although it answers");
    }
    assert!(probes > 0, "node-a never probed node-b");
    assert_ne!(p.a.view(p.now).nodes[1].status, "dead");
}

#[test]
fn probes_come_several_times_before_the_deadline() {
    let mut p = Pair::new(true);
    let mut at = Vec::new();
    for ms in 1..=30 {
        let out = p.step(|_| true, |_| false);
        if sent(&out).iter().any(|m| {
            kind(m) == PROBE
                && m.get_str("dest") == Some("node-b")
                && m.get_str("hr_nonce").is_some()
        }) {
            at.push(ms);
        }
        if died(&out) {
            break;
        }
    }
    // Beats every 10 ms, deadline 30 ms: from 12 ms on, every 1 ms.
    assert!(
        at.len() >= 15,
        "probes at {at:?} ms: too few before the deadline"
    );
    assert!(at[0] <= 13, "first probe only at {} ms", at[0]);
}

#[test]
fn without_an_answer_the_peer_dies_at_its_deadtime() {
    let mut p = Pair::new(true);
    let mut dead_at = None;
    for ms in 1..=100 {
        if died(&p.step(|_| true, |_| false)) {
            dead_at = Some(ms);
            break;
        }
    }
    let ms = dead_at.expect("node-b never declared dead");
    assert!(
        ms <= 31,
        "declared dead only after {ms} ms (deadtime 30 ms)"
    );
}

#[test]
fn a_replayed_answer_is_no_proof_of_life() {
    let mut p = Pair::new(true);
    // node-b's beats are lost but its answers get through: keep them.
    let mut acks = Vec::new();
    for _ in 0..30 {
        p.step(
            |_| true,
            |m| {
                let ack = kind(m) == PROBE_ACK;
                if ack {
                    acks.push(m.clone());
                }
                ack
            },
        );
    }
    // Their nonces are used up: from now on only replays of them arrive.
    assert!(!acks.is_empty(), "node-b never answered a probe");
    let mut dead_at = None;
    for ms in 1..=100 {
        let mut replay = Vec::new();
        for ack in &acks {
            replay.extend(p.a.handle(
                p.now,
                Input::Packet {
                    link: 0,
                    msg: ack.clone(),
                },
            ));
        }
        if died(&replay) || died(&p.step(|_| true, |_| false)) {
            dead_at = Some(ms);
            break;
        }
    }
    let ms = dead_at.expect("a replayed answer kept node-b alive");
    assert!(
        ms <= 31,
        "declared dead only after {ms} ms (deadtime 30 ms)"
    );
}

#[test]
fn heartbeat_peers_are_never_probed() {
    let mut p = Pair::new(false);
    let mut died_once = false;
    for _ in 0..100 {
        let out = p.step(|_| true, |_| false);
        assert!(
            !sent(&out).iter().any(|m| kind(m) == PROBE),
            "node-a probed a heartbeat peer"
        );
        died_once |= died(&out);
    }
    assert!(
        died_once,
        "the silent heartbeat peer was never declared dead"
    );
}

/// heartbeat expects an ack every ten seqs (§1.6); a harust peer has no
/// use for one, and a quiet harust pair then sends nothing but beats.
#[test]
fn only_heartbeat_peers_are_acked() {
    for b_is_harust in [true, false] {
        let mut p = Pair::new(b_is_harust);
        let mut acks = 0;
        for _ in 0..500 {
            let out = p.step(|_| true, |_| true);
            acks += sent(&out)
                .iter()
                .filter(|m| kind(m) == "NS_ackmsg" && m.get_str("dest") == Some("node-b"))
                .count();
        }
        if b_is_harust {
            assert_eq!(acks, 0, "node-a acked its harust peer");
        } else {
            // 50 beats of node-b: one ack per ten seqs.
            assert!(
                (4..=6).contains(&acks),
                "node-a acked its heartbeat peer {acks} times in 500 ms"
            );
        }
    }
}
