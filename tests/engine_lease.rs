//! Leases (src/engine/lease.rs, src/beat.rs). While the engine is quiet,
//! the beat thread sends the beats of the lease's terms and takes a
//! peer's beats that say nothing new; the runtime then feeds the engine
//! what happened, in order, and checks that each beat the engine sends is
//! the one that went out. Here, on the wire's bytes: the beats of a lease
//! are the engine's own, a peer's steady beats read as alike, and a change
//! of the engine's state shows as a different beat.

mod simnet;

use std::time::Duration;

use harust::engine::{Engine, Input, Output, beat_ts};
use harust::wire::{self, netstring};
use simnet::wire_pair::{Node, exchange, settled_pair};

/// A settled pair, run until A offers a lease (it waits for the quiet
/// hold-off after the last event).
fn quiet_pair() -> (Node, Node, Duration, Duration) {
    let (mut a, mut b, mut now, ka) = settled_pair();
    assert!(
        a.engine.lease().is_none(),
        "a lease just after the pair settled, before the engine is quiet"
    );
    let deadline = now + Duration::from_secs(60);
    while a.engine.lease().is_none() {
        assert!(now < deadline, "A offers no lease after a minute of quiet");
        now += ka;
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
    }
    (a, b, now, ka)
}

/// The signed part of a datagram (what `alike` compares).
fn body(datagram: &[u8]) -> &[u8] {
    let (len, _, _) = netstring::find_trailer(datagram).expect("a trailer");
    &datagram[..len]
}

#[test]
fn the_beats_of_a_lease_are_the_engines_own() {
    let (mut a, mut b, _, ka) = quiet_pair();
    let terms = a.engine.lease().expect("a lease");
    assert_eq!(terms.peers.len(), 1, "B is up: {terms:?}");

    // The beat thread's part: A's beats from the terms (B takes them on
    // both media) and B's beats to A, logged for A, not fed to it.
    let mut beat = terms.beat.clone();
    let (mut seq, mut next) = (terms.seq, terms.next_beat);
    // (time, the medium it came on or `None` for a beat A sent, datagram)
    let mut log: Vec<(Duration, Option<usize>, Vec<u8>)> = Vec::new();
    let mut last_status_of_b: Option<Vec<u8>> = None;
    for _ in 0..60 {
        let now = next;
        beat.set_hex("seq", seq);
        beat.set_hex("ts", beat_ts(terms.wall_base, now));
        wire::encode_into(&beat, &a.keyed, &mut a.tx, &mut a.scratch);
        let sent = a.tx.clone();
        log.push((now, None, sent.clone()));
        for link in [0, 1] {
            for pkt in b.receive(now, link, &sent) {
                log.extend([0, 1].map(|l| (now, Some(l), pkt.clone())));
            }
        }
        let later = now + ka / 2;
        for pkt in b.step(later, Input::Tick) {
            let msg = wire::decode(&pkt, &b.keyed).expect("authentic");
            if msg.kind() == Some("status") {
                // What the thread takes without the engine: alike to the
                // last, with the next seq.
                if let Some(prev) = &last_status_of_b {
                    let want = msg.get_hex("seq");
                    assert_eq!(netstring::alike(body(prev), body(&pkt)), Ok(want));
                    assert_eq!(
                        want,
                        netstring::alike(body(prev), body(prev))
                            .unwrap()
                            .map(|s| s + 1)
                    );
                }
                last_status_of_b = Some(pkt.clone());
            }
            log.extend([0, 1].map(|l| (later, Some(l), pkt.clone())));
        }
        seq += 1;
        next = Engine::beat_after(next, now, terms.keepalive);
    }

    // The runtime's part: the log fed to A in order.
    let (mut beats, mut acks) = (0, 0);
    for (at, link, bytes) in &log {
        let outs = match link {
            None => a.engine.handle(*at, Input::Tick),
            Some(link) => {
                let msg = wire::decode(bytes, &a.keyed).expect("authentic");
                a.engine.handle(*at, Input::Packet { link: *link, msg })
            }
        };
        let mut wire_out = Vec::new();
        for o in &outs {
            match o {
                Output::Send(m) => {
                    wire::encode_into(m, &a.keyed, &mut a.tx, &mut a.scratch);
                    if m.kind() == Some("NS_ackmsg") {
                        acks += 1;
                    } else {
                        wire_out.push(a.tx.clone());
                    }
                }
                other => panic!("A did something at {at:?} besides beating: {other:?}"),
            }
        }
        if link.is_none() {
            assert_eq!(
                wire_out,
                vec![bytes.clone()],
                "A's beat at {at:?} is not the lease's"
            );
            beats += 1;
        } else {
            assert!(wire_out.is_empty(), "A sent more than an ack at {at:?}");
        }
    }
    assert_eq!(beats, 60);
    // A harust peer has no use for acks: a quiet pair sends beats alone.
    assert_eq!(acks, 0, "A acked the harust peer B's beats");
    assert!(
        a.engine.lease().is_some(),
        "A is still quiet after the lease"
    );
}

#[test]
fn a_change_of_the_engines_state_shows_in_its_next_beat() {
    let (mut a, _, _, _) = quiet_pair();
    let terms = a.engine.lease().expect("a lease");
    let mut beat = terms.beat.clone();
    let at = terms.next_beat;
    beat.set_hex("ts", beat_ts(terms.wall_base, at));
    wire::encode_into(&beat, &a.keyed, &mut a.tx, &mut a.scratch);
    let leased = a.tx.clone();
    // As a reload of the timings would: the digest in every beat changes.
    a.engine.set_config_digest("changed".into());
    let outs = a.engine.handle(at, Input::Tick);
    let Some(Output::Send(m)) = outs.first() else {
        panic!("no beat: {outs:?}");
    };
    wire::encode_into(m, &a.keyed, &mut a.tx, &mut a.scratch);
    assert_ne!(
        a.tx, leased,
        "the replay would not see that the lease's beat is stale"
    );
    assert_eq!(m.get_hex("seq"), Some(terms.seq));
}
