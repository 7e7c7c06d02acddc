//! Property tests for the wire codec: round trips, tamper detection, and
//! no panics on any input.

use harust::wire::{
    DecodeError, Keyring, MAX_DEPTH, MAXMSG, Message, Method, Value, decode, encode,
    encode_classic, parse, try_encode, with_inner_auth,
};
use proptest::prelude::*;

fn keyring() -> impl Strategy<Value = Keyring> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..80)
            .prop_map(|k| Keyring::single(Method::Sha1(k))),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|k| Keyring::single(Method::Md5(k))),
        Just(Keyring::single(Method::Crc)),
    ]
}

/// Names heartbeat can carry: non-empty, no '=', NUL, CR or LF; and not
/// `auth`, which `encode` manages.
fn name() -> impl Strategy<Value = String> {
    "[^=\u{0}\r\n]{1,10}".prop_filter("auth is reserved", |n| n != "auth")
}

fn message_of(fields: Vec<(String, Value)>) -> Message {
    Message {
        fields: fields.into_iter().map(|(n, v)| (n.into(), v)).collect(),
    }
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn list() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..12), 1..5)
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => bytes(40).prop_map(Value::Str),
        2 => bytes(40).prop_map(Value::Bin),
        1 => list().prop_map(Value::List),
        1 => bytes(40).prop_map(Value::Compressed),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::collection::vec((name(), inner), 0..4)
            .prop_map(|fields| Value::Struct(message_of(fields)))
    })
}

fn message() -> impl Strategy<Value = Message> {
    proptest::collection::vec((name(), value()), 0..8).prop_map(message_of)
}

/// Messages the classic text format can carry: what heartbeat puts in its
/// FIFO and what `hbpeer.py --classic` sends (no empty values, no CR, NUL
/// or 0x13 in strings, printable list elements).
fn classic_message() -> impl Strategy<Value = Message> {
    let text = "[^\u{0}\r\u{13}]{1,20}".prop_map(|s| s.into_bytes());
    let elem = "[ -~]{1,8}".prop_map(|s| s.into_bytes());
    let value = prop_oneof![
        4 => text.prop_map(Value::Str),
        2 => proptest::collection::vec(any::<u8>(), 1..24).prop_map(Value::Bin),
        1 => proptest::collection::vec(elem, 1..4).prop_map(Value::List),
    ];
    let name = "[a-z_][a-z0-9_]{0,8}".prop_filter("auth is reserved", |n| n != "auth");
    proptest::collection::vec((name, value), 1..8).prop_map(message_of)
}

proptest! {
    #[test]
    fn decode_of_encode_is_the_message_plus_auth(m in message(), keys in keyring()) {
        let pkt = encode(&m, &keys);
        let got = decode(&pkt, &keys).unwrap();
        prop_assert_eq!(&got, &with_inner_auth(&m, &keys));
        prop_assert_eq!(got.without("auth"), m.clone());
        // And encoding what was received gives the same datagram.
        prop_assert_eq!(encode(&got, &keys), pkt);
    }

    #[test]
    fn try_encode_accepts_what_the_generators_make(m in message(), keys in keyring()) {
        prop_assert_eq!(try_encode(&m, &keys).unwrap(), encode(&m, &keys));
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        m in message(),
        keys in keyring(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut pkt = encode(&m, &keys);
        let i = at.index(pkt.len());
        pkt[i] ^= flip;
        prop_assert!(decode(&pkt, &keys).is_err(), "byte {} ^ {:#x} accepted", i, flip);
    }

    #[test]
    fn every_truncation_is_an_error(m in message(), keys in keyring()) {
        let pkt = encode(&m, &keys);
        for len in 0..pkt.len() {
            prop_assert!(decode(&pkt[..len], &keys).is_err(), "prefix of {} accepted", len);
        }
    }

    #[test]
    fn truncated_netstring_says_truncated(m in message(), keys in keyring(), at in any::<prop::sample::Index>()) {
        let pkt = encode(&m, &keys);
        let len = at.index(pkt.len());
        // Cutting a datagram short anywhere, even inside the digest, is
        // reported as truncation rather than as bad auth or malformed.
        let err = decode(&pkt[..len], &keys).unwrap_err();
        prop_assert_eq!(err, DecodeError::Truncated);
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in bytes(600), keys in keyring()) {
        let _ = decode(&buf, &keys);
        let mut ns = b"###\n".to_vec();
        ns.extend_from_slice(&buf);
        let _ = decode(&ns, &keys);
        let mut cl = b">>>\n".to_vec();
        cl.extend_from_slice(&buf);
        let _ = decode(&cl, &keys);
    }

    #[test]
    fn mutated_packets_never_panic(
        m in message(),
        keys in keyring(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        for pkt in [encode(&m, &keys), encode_classic(&m, &keys)] {
            let mut pkt = pkt;
            for (at, b) in &edits {
                let i = at.index(pkt.len());
                pkt[i] = *b;
            }
            let _ = decode(&pkt, &keys);
            let _ = parse(&pkt);
        }
    }

    #[test]
    fn classic_round_trips(m in classic_message(), keys in keyring()) {
        let pkt = encode_classic(&m, &keys);
        let got = decode(&pkt, &keys).unwrap();
        prop_assert_eq!(&got, &with_inner_auth(&m, &keys));
        prop_assert_eq!(encode_classic(&got, &keys), pkt);
    }

    #[test]
    fn classic_single_byte_change_is_rejected(
        m in classic_message(),
        keys in keyring(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut pkt = encode_classic(&m, &keys);
        let i = at.index(pkt.len());
        pkt[i] ^= flip;
        if let Ok(got) = decode(&pkt, &keys) {
            // The classic format has slack heartbeat also accepts (blank
            // lines, CR for LF, a trailing NUL): a change there may parse,
            // but never into a different message.
            prop_assert_eq!(got, with_inner_auth(&m, &keys));
        }
    }
}

fn sha1() -> Keyring {
    Keyring::single(Method::Sha1(b"labsecret".to_vec()))
}

#[test]
fn oversized_input_is_too_large() {
    let mut m = Message::new("status");
    m.add_bin("blob", &vec![7u8; MAXMSG]);
    let pkt = encode(&m, &sha1());
    assert!(pkt.len() > MAXMSG);
    assert_eq!(
        decode(&pkt, &sha1()),
        Err(DecodeError::TooLarge { len: pkt.len() })
    );
    assert!(try_encode(&m, &sha1()).is_err());
    let junk = vec![b'#'; MAXMSG + 1];
    assert_eq!(decode(&junk, &sha1()).unwrap_err().kind(), "too_large");
}

#[test]
fn input_of_exactly_maxmsg_is_parsed() {
    let mut m = Message::new("x");
    let mut pkt = encode(&m, &sha1());
    let pad = MAXMSG - pkt.len();
    // Grow one field until the datagram is exactly MAXMSG bytes.
    let mut n = pad;
    loop {
        m = Message::new("x");
        m.add_bin("b", &vec![0u8; n]);
        pkt = encode(&m, &sha1());
        if pkt.len() <= MAXMSG {
            break;
        }
        n -= pkt.len() - MAXMSG;
    }
    while pkt.len() < MAXMSG {
        n += 1;
        m = Message::new("x");
        m.add_bin("b", &vec![0u8; n]);
        pkt = encode(&m, &sha1());
    }
    assert_eq!(pkt.len(), MAXMSG);
    assert_eq!(decode(&pkt, &sha1()).unwrap().without("auth"), m);
}

fn nested(depth: usize) -> Message {
    let mut m = Message::new("leaf");
    for _ in 0..depth {
        let mut outer = Message::new("n");
        outer.fields.push(("s".into(), Value::Struct(m)));
        m = outer;
    }
    m
}

#[test]
fn nesting_up_to_the_limit_round_trips() {
    let m = nested(MAX_DEPTH);
    assert_eq!(decode(&encode(&m, &sha1()), &sha1()).unwrap(), m);
}

#[test]
fn nesting_beyond_the_limit_is_rejected_without_recursing_further() {
    let m = nested(MAX_DEPTH + 1);
    assert_eq!(
        decode(&encode(&m, &sha1()), &sha1()),
        Err(DecodeError::TooDeep)
    );
    assert!(try_encode(&m, &sha1()).is_err());
    // A hand-made very deep packet: each level is a valid prefix.
    let mut body = b"###\n%%%\n".to_vec();
    for _ in 0..2_000 {
        let mut f = b"(2)s=".to_vec();
        f.extend_from_slice(&body);
        let mut next = b"###\n".to_vec();
        next.extend_from_slice(format!("{}:", f.len()).as_bytes());
        next.extend_from_slice(&f);
        next.extend_from_slice(b",%%%\n");
        body = next;
    }
    let pkt = harust::wire::seal(body, &sha1());
    assert_eq!(decode(&pkt, &sha1()), Err(DecodeError::TooDeep));
}

#[test]
fn decode_error_kinds_are_distinct() {
    let all = [
        DecodeError::TooLarge { len: 1 },
        DecodeError::Truncated,
        DecodeError::UnknownFormat,
        DecodeError::Malformed {
            offset: 0,
            what: "x",
        },
        DecodeError::TooDeep,
        DecodeError::MissingAuth,
        DecodeError::UnknownKeyIndex(2),
        DecodeError::BadAuth,
    ];
    let mut kinds: Vec<&str> = all.iter().map(DecodeError::kind).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), all.len());
}
