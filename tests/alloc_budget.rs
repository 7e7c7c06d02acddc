//! Allocations on the hot path, counted by a global allocator: a beat sent
//! (the engine's step and the encoding) and a duplicate received on a
//! second medium (the decoding and the engine's step). At a 10 ms keepalive
//! both happen a hundred times a second on every node; the budgets pin
//! today's counts so that a regression fails here.

mod simnet;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use harust::engine::{Input, Output};
use harust::wire;
use simnet::wire_pair::{exchange, settled_pair};

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
