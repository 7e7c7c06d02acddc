//! A two-node engine driven by a byte script of peer messages, time,
//! resource results and admin requests (`tests/engine_script`, shared with
//! the proptest in `tests/fuzz_prop.rs`). It must never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/engine_script/mod.rs"]
mod engine_script;

fuzz_target!(|data: &[u8]| {
    let _ = engine_script::run(data);
});
