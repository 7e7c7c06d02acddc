//! Datagrams into the decoder with the keys the captures in
//! tests/data/vectors use (sha1, md5, crc), and into `parse`.
//!
//! Beyond "never panics":
//! * A netstring packet that parses is exactly what `encode_body` writes
//!   for the parsed message (followed by its trailer), so both sides sign
//!   the same bytes, and one that authenticates is reproduced byte for
//!   byte by `seal` when it was signed with the active key.
//! * A classic packet that parses re-encodes to one that parses to the same
//!   message; one that authenticates still does after re-encoding.

#![no_main]

use std::sync::LazyLock;

use harust::wire::{Format, Keyring, Method, classic, decode, encode_body, parse, seal};
use libfuzzer_sys::fuzz_target;

static KEYRINGS: LazyLock<[Keyring; 3]> = LazyLock::new(|| {
    [
        Keyring::single(Method::Sha1(b"labsecret".to_vec())),
        Keyring::single(Method::Md5(b"Hello!".to_vec())),
        Keyring::single(Method::Crc),
    ]
});

fn classic_text(msg: &harust::wire::Message) -> Vec<u8> {
    let mut out = Vec::new();
    classic::write_message(&mut out, msg);
    out
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    if let Ok(p) = &parsed {
        match p.format {
            Format::Netstring => {
                assert_eq!(encode_body(&p.msg), &data[..p.signed_len]);
                assert!(p.trailer.is_some());
            }
            Format::Classic => {
                let again = parse(&classic_text(&p.msg)).expect("re-encoded classic parses");
                assert_eq!(again.msg, p.msg);
            }
        }
    }
    for keys in KEYRINGS.iter() {
        let Ok(msg) = decode(data, keys) else {
            continue;
        };
        let p = parsed.as_ref().expect("decode accepted what parse refused");
        assert_eq!(msg, p.msg);
        match p.format {
            Format::Netstring => {
                if p.trailer.as_ref().map(|t| t.0) == Some(keys.active) {
                    assert_eq!(seal(encode_body(&msg), keys), data);
                }
            }
            Format::Classic => {
                assert_eq!(decode(&classic_text(&msg), keys).as_ref(), Ok(&msg));
            }
        }
    }
});
