//! The fast, in-suite version of what `fuzz/` runs for longer.
//!
//! Arbitrary bytes into `wire::decode`/`parse` and arbitrary text into the
//! config parsers are already covered by `wire_prop.rs` and
//! `config_never_panics.rs`; this file adds what those lack: the engine fed
//! arbitrary peer messages (the `engine` fuzz target's script, see
//! `engine_script`), and the decoder's round-trip property on whatever it
//! accepts (the `decode` target's check).

mod engine_script;

use harust::wire::{Format, Keyring, Method, classic, encode_body, parse};
use proptest::prelude::*;

/// A script that starts like a real exchange: the peer's status beats.
fn peer_beats() -> Vec<u8> {
    let mut s = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for _ in 0..20 {
        // packet on link 0: `status` from node-b, next seq, non-zero ts,
        // two fields: hr_v=1 and st=active
        s.extend_from_slice(&[2, 0, 0, 0, 4, 0, 1, 2, 8, 0, 12, 1, 0, 2]);
        // time passes: 100 ms
        s.extend_from_slice(&[0, 0, 100]);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_never_panics_on_arbitrary_scripts(script in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = engine_script::run(&script);
    }

    #[test]
    fn engine_never_panics_after_a_peer_is_up(tail in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let mut script = peer_beats();
        script.extend_from_slice(&tail);
        let _ = engine_script::run(&script);
    }

    /// Whatever the netstring parser accepts is exactly what the encoder
    /// writes for the result, so the authenticator covers the same bytes
    /// on both sides; what the classic parser accepts re-encodes to a
    /// packet that parses to the same message.
    #[test]
    fn accepted_packets_reencode(
        fields in proptest::collection::vec(
            ("[a-z(0-4)=]{0,6}", proptest::collection::vec(any::<u8>(), 0..12)), 0..6),
        classic_fmt in any::<bool>(),
    ) {
        let mut buf = Vec::new();
        if classic_fmt {
            buf.extend_from_slice(b">>>\n");
            for (name, value) in &fields {
                buf.extend_from_slice(name.as_bytes());
                buf.push(b'=');
                buf.extend_from_slice(value);
                buf.push(b'\n');
            }
            buf.extend_from_slice(b"<<<\n");
        } else {
            let mut body = b"###\n".to_vec();
            for (name, value) in &fields {
                let mut f = name.as_bytes().to_vec();
                f.push(b'=');
                f.extend_from_slice(value);
                body.extend_from_slice(format!("{}:", f.len()).as_bytes());
                body.extend_from_slice(&f);
                body.push(b',');
            }
            body.extend_from_slice(b"%%%\n");
            buf = harust::wire::seal(body, &Keyring::single(Method::Crc));
        }
        if let Ok(p) = parse(&buf) {
            match p.format {
                Format::Netstring => prop_assert_eq!(encode_body(&p.msg), &buf[..p.signed_len]),
                Format::Classic => {
                    let mut again = Vec::new();
                    classic::write_message(&mut again, &p.msg);
                    prop_assert_eq!(parse(&again).map(|q| q.msg), Ok(p.msg));
                }
            }
        }
    }
}

#[test]
fn peer_beats_script_brings_the_peer_up() {
    // The prefix above is only useful if it gets past replay tracking.
    let view = engine_script::run(&peer_beats());
    let peer = &view.nodes[1];
    assert_eq!(peer.name, "node-b");
    assert_eq!(peer.status, "active", "{view:#?}");
}
