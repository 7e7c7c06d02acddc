//! Leases (src/engine/lease.rs, src/beat.rs). While the engine is quiet,
//! the beat thread sends the beats of the lease's terms and takes a
//! peer's beats that say nothing new; the runtime then feeds the engine
//! what happened, in order, and checks that each beat the engine sends is
//! the one that went out. Here, on the wire's bytes: the beats of a lease
//! are the engine's own, a peer's steady beats read as alike, and a change
//! of the engine's state shows as a different beat.

mod simnet;

use std::time::Duration;

use harust::engine::{Engine, Input, LeaseDone, LeaseTerms, Output, PeerDone, beat_ts};
use harust::wire::{self, Message, netstring};
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

/// A lease's log: (time, the medium it came on or `None` for a beat A
/// sent, datagram).
type Log = Vec<(Duration, Option<usize>, Vec<u8>)>;

/// The beat thread's part: `beats` of A's beats from the terms (B takes
/// them on both media) and B's beats to A, logged for A, not fed to it.
fn lease_log(a: &mut Node, b: &mut Node, terms: &LeaseTerms, ka: Duration, beats: usize) -> Log {
    let mut beat = terms.beat.clone();
    let (mut seq, mut next) = (terms.seq, terms.next_beat);
    let mut log = Log::new();
    let mut last_status_of_b: Option<Vec<u8>> = None;
    for _ in 0..beats {
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
    log
}

/// The runtime's part: the log fed to A in order; each beat A sends must
/// be the lease's. Returns the beats and the acks A sent.
fn feed(a: &mut Node, log: &[(Duration, Option<usize>, Vec<u8>)]) -> (usize, usize) {
    let (mut beats, mut acks) = (0, 0);
    for (at, link, bytes) in log {
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
    (beats, acks)
}

#[test]
fn the_beats_of_a_lease_are_the_engines_own() {
    let (mut a, mut b, _, ka) = quiet_pair();
    let terms = a.engine.lease().expect("a lease");
    assert_eq!(terms.peers.len(), 1, "B is up: {terms:?}");
    let log = lease_log(&mut a, &mut b, &terms, ka, 60);
    let (beats, acks) = feed(&mut a, &log);
    assert_eq!(beats, 60);
    // A harust peer has no use for acks: a quiet pair sends beats alone.
    assert_eq!(acks, 0, "A acked the harust peer B's beats");
    assert!(
        a.engine.lease().is_some(),
        "A is still quiet after the lease"
    );
}

/// What the runtime does with a returned lease: the engine takes in all
/// before the last beat at once (`Engine::lease_forward`, from what the
/// beat thread kept), and is fed the rest. It must end exactly where
/// feeding the whole log leaves it, and go on the same: here a
/// retransmit request for a beat of the lease, then the peer's silence
/// until it is dead, datagram for datagram.
#[test]
fn a_lease_taken_in_at_once_is_the_lease_fed_in_full() {
    let (mut full, mut b, _, ka) = quiet_pair();
    let (mut fwd, _, _, _) = quiet_pair();
    let terms = full.engine.lease().expect("a lease");
    assert_eq!(
        format!("{terms:?}"),
        format!("{:?}", fwd.engine.lease().expect("a lease")),
        "two pairs settled alike differ"
    );
    let log = lease_log(&mut full, &mut b, &terms, ka, 60);
    assert_eq!(feed(&mut full, &log).0, 60);

    // The beat thread's summary of what came before the last beat.
    let last = log
        .iter()
        .rposition(|(_, l, _)| l.is_none())
        .expect("a beat");
    let p = &terms.peers[0];
    let mut peer = PeerDone {
        node: p.node,
        last_seq: p.last_seq,
        last_heard: p.last_heard,
        taken: 0,
        links: p.links.clone(),
    };
    let mut done = LeaseDone::default();
    for (at, link, bytes) in &log[..last] {
        let Some(link) = link else {
            done.beats.push(*at);
            continue;
        };
        let msg = wire::decode(bytes, &fwd.keyed).expect("authentic");
        assert_eq!(msg.kind(), Some("status"), "only beats came");
        let seq = msg.get_hex("seq").expect("a seq");
        if seq == peer.last_seq + 1 {
            (peer.last_seq, peer.last_heard) = (seq, *at);
            peer.taken += 1;
        }
        let l = peer
            .links
            .iter_mut()
            .find(|(l, _)| l == link)
            .expect("an up medium");
        l.1 = *at;
    }
    assert!(
        done.beats.len() == 59 && peer.taken >= 58,
        "{done:?} {peer:?}"
    );
    done.peers.push(peer);
    fwd.engine.lease_forward(&done);
    assert_eq!(feed(&mut fwd, &log[last..]).0, 1);

    let mut now = log.last().expect("a log").0;
    let same = |what: &str, x: String, y: String| assert_eq!(x, y, "{what} differs");
    same(
        "the next lease",
        format!("{:?}", fwd.engine.lease()),
        format!("{:?}", full.engine.lease()),
    );
    same(
        "the counters",
        format!("{:?}", fwd.engine.counters()),
        format!("{:?}", full.engine.counters()),
    );
    same(
        "the view",
        format!("{:?}", fwd.engine.view(now)),
        format!("{:?}", full.engine.view(now)),
    );
    same(
        "the deadline",
        format!("{:?}", fwd.engine.next_deadline()),
        format!("{:?}", full.engine.next_deadline()),
    );

    // Then the same inputs give the same datagrams and actions.
    let mut rexmit = Message::new("NS_rexmit");
    rexmit
        .add_str("src", "node-b")
        .add_str("dest", "node-a")
        .add_dec("firstseq", terms.seq + 30)
        .add_dec("lastseq", terms.seq + 30);
    let mut step = |input: Input, now: Duration| {
        let mut out = Vec::new();
        for n in [&mut fwd, &mut full] {
            let mut said = Vec::new();
            for o in n.engine.handle(now, input.clone()) {
                match o {
                    Output::Send(m) => {
                        wire::encode_into(&m, &n.keyed, &mut n.tx, &mut n.scratch);
                        said.push(format!("{:?}", n.tx));
                    }
                    other => said.push(format!("{other:?}")),
                }
            }
            out.push(said);
        }
        assert_eq!(out[0], out[1], "at {now:?} after {input:?}");
        out.remove(0)
    };
    // B's next beat (a late heartbeat would show if A judged its
    // interval from the wrong status), then its request.
    now += ka;
    for pkt in b.step(now, Input::Tick) {
        let msg = wire::decode(&pkt, &b.keyed).expect("authentic");
        for link in [0, 1] {
            step(
                Input::Packet {
                    link,
                    msg: msg.clone(),
                },
                now,
            );
        }
    }
    let resent = step(
        Input::Packet {
            link: 0,
            msg: rexmit,
        },
        now,
    );
    assert_eq!(
        resent.len(),
        1,
        "the lease's beat was not resent: {resent:?}"
    );
    // Past B's deadtime, a millisecond at a time.
    let until = now + ka * 40;
    let mut died = false;
    while now < until {
        now += Duration::from_millis(1);
        died |= step(Input::Tick, now)
            .iter()
            .any(|o| o.contains("PeerDead"));
    }
    assert!(died, "B never died in either");
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
