//! Inputs the fuzzers found to crash harust, kept so the fix stays fixed.

mod engine_script;

/// A forged sequence number near u64::MAX overflowed the ACK computation
/// (`last + 10`) when a gap filled.
#[test]
fn ack_after_a_gap_near_the_largest_seq_does_not_overflow() {
    let script = include_bytes!("../fuzz/seeds/engine/regression-ack-overflow");
    let _ = engine_script::run(script);
}
