//! Allocations on the hot path, counted by a global allocator: a beat sent
//! (the engine's step and the encoding) and a duplicate received on a
//! second medium (the decoding and the engine's step). At a 10 ms keepalive
//! both happen a hundred times a second on every node; the budgets pin
//! today's counts so that a regression fails here.

mod simnet;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use harust::config::AutoFailback;
use harust::engine::{Engine, Input, Op, Output, Params};
use harust::wire::{self, Keyed, Keyring, Message, Method};
use simnet::Spec;

/// Allocations (and reallocations) made by the calling thread.
struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNT.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        COUNT.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let before = COUNT.with(Cell::get);
    let out = f();
    (COUNT.with(Cell::get) - before, out)
}

/// What a beat may cost, at most: the engine's own message and its step.
const PER_BEAT_SENT: u64 = 26;
/// What the second copy of a beat may cost, at most: about half is the
/// decode (one value per field), the rest the engine's step; the per-group
/// evaluation in decide.rs builds no vectors.
const PER_DUPLICATE: u64 = 30;

struct Node {
    engine: Engine,
    keyed: Keyed,
    tx: Vec<u8>,
    scratch: Vec<u8>,
}

impl Node {
    fn new(spec: &Spec, me: usize) -> Node {
        let mut cfg = spec.config(me);
        cfg.keys = Keyring::single(Method::Sha1(b"alloc-budget-secret".to_vec()));
        let params = Params {
            uuid: [me as u8 + 1; 16],
            generation: 0x6b06_f981 + me as u64,
            wall_base: 0x6b06_f000,
            seed: me as u64,
        };
        let mut engine = Engine::new(&cfg, params, Duration::ZERO);
        engine.handle(Duration::ZERO, Input::Reconciled { present: vec![] });
        Node {
            engine,
            keyed: Keyed::new(&cfg.keys),
            tx: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// One step as the runtime takes it: every message sent is encoded into
    /// the kept buffer, and resource actions succeed at once. Returns the
    /// datagrams.
    fn step(&mut self, now: Duration, input: Input) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        let mut inputs = vec![input];
        while let Some(input) = inputs.pop() {
            for o in self.engine.handle(now, input) {
                match o {
                    Output::Send(m) => {
                        wire::encode_into(&m, &self.keyed, &mut self.tx, &mut self.scratch);
                        sent.push(self.tx.clone());
                    }
                    Output::Start { group, resource } | Output::Stop { group, resource } => {
                        let op = if matches!(o, Output::Start { .. }) {
                            Op::Start
                        } else {
                            Op::Stop
                        };
                        inputs.insert(
                            0,
                            Input::ResourceDone {
                                group,
                                resource,
                                op,
                                result: Ok(()),
                            },
                        );
                    }
                    _ => {}
                }
            }
        }
        sent
    }

    fn receive(&mut self, now: Duration, link: usize, bytes: &[u8]) -> Vec<Vec<u8>> {
        let msg: Message = wire::decode(bytes, &self.keyed).expect("authentic");
        self.step(now, Input::Packet { link, msg })
    }
}

/// Two nodes on two media, beating until both see each other up and A
/// holds its group.
fn settled_pair() -> (Node, Node, Duration, Duration) {
    let mut spec = Spec::two_node(AutoFailback::On);
    spec.groups = vec![(0, 2, 0)];
    let ka = spec.timings.keepalive;
    let mut a = Node::new(&spec, 0);
    let mut b = Node::new(&spec, 1);
    let mut now = Duration::ZERO;
    for _ in 0..200 {
        now += ka / 2;
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
    }
    let held = a.engine.view(now).groups[0].local_state;
    assert_eq!(held, "held", "A holds its group before measuring");
    (a, b, now, ka)
}

/// `from` takes a step; what it sends reaches `to` on both media, and the
/// answers come back.
fn exchange(from: &mut Node, to: &mut Node, now: Duration) {
    let mut to_peer = from.step(now, Input::Tick);
    for _ in 0..4 {
        let mut back = Vec::new();
        for pkt in to_peer.drain(..) {
            for link in [0, 1] {
                back.extend(to.receive(now, link, &pkt));
            }
        }
        for pkt in back {
            for link in [0, 1] {
                to_peer.extend(from.receive(now, link, &pkt));
            }
        }
    }
}

#[test]
fn a_beat_sent_and_a_duplicate_received_stay_within_their_allocation_budgets() {
    let (mut a, mut b, mut now, ka) = settled_pair();
    let mut worst_sent = 0;
    let mut worst_dup = 0;
    let mut measured = 0;
    for _ in 0..100 {
        now += ka;
        // What the runtime does for a tick: the engine's step, then each
        // message encoded into the kept buffer and sent from it.
        let (n, pkts) = allocations(|| {
            let outs = a.engine.handle(now, Input::Tick);
            let mut beats = 0;
            for o in &outs {
                if let Output::Send(m) = o {
                    wire::encode_into(m, &a.keyed, &mut a.tx, &mut a.scratch);
                    beats += 1;
                }
            }
            (outs, beats)
        });
        let (outs, beats) = pkts;
        if beats != 1
            || !outs
                .iter()
                .any(|o| matches!(o, Output::Send(m) if m.kind() == Some("status")))
        {
            // A link probe or a retransmission went along: not a plain beat.
            exchange(&mut b, &mut a, now);
            continue;
        }
        measured += 1;
        worst_sent = worst_sent.max(n);
        let pkt = a.tx.clone();
        b.receive(now, 0, &pkt);
        // The same beat again on the second medium: decoded, authenticated
        // and handed to the engine, which counts it as a duplicate.
        let (n, _) = allocations(|| {
            let msg = wire::decode(&pkt, &b.keyed).expect("authentic");
            b.engine.handle(now, Input::Packet { link: 1, msg })
        });
        worst_dup = worst_dup.max(n);
        exchange(&mut b, &mut a, now);
    }
    assert!(measured >= 10, "only {measured} plain beats");
    eprintln!("allocations: {worst_sent} per beat sent, {worst_dup} per duplicate received");
    assert!(
        worst_sent <= PER_BEAT_SENT,
        "a beat sent allocates {worst_sent} times (budget {PER_BEAT_SENT})"
    );
    assert!(
        worst_dup <= PER_DUPLICATE,
        "a duplicate received allocates {worst_dup} times (budget {PER_DUPLICATE})"
    );
}
