//! Known-answer tests against real heartbeat 3.0.6 traffic
//! (`tests/data/vectors/`, copied from the project's captures; see
//! PROTOCOL.md §1.3 for the keys).
//!
//! Every captured datagram must decode and authenticate with its capture's
//! key (trailer and inner field), and every netstring one must re-encode to
//! the same bytes from the message without its `auth` field.

use std::path::{Path, PathBuf};

use harust::wire::{
    self, DecodeError, Format, Keyring, Message, Method, Value, decode, encode, encode_body,
    encode_classic, parse, seal, verify_inner_auth,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors")
}

/// The UDP payloads to or from port 694 in a classic pcap file (Ethernet,
/// optionally 802.1Q, IPv4, UDP). Just enough of libpcap's format for our
/// captures; anything else fails the test loudly.
fn pcap_payloads(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(data.len() >= 24, "{}: no pcap header", path.display());
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let le = match magic {
        0xA1B2_C3D4 | 0xA1B2_3C4D => true,
        0xD4C3_B2A1 | 0x4D3C_B2A1 => false,
        _ => panic!("{}: not a pcap file", path.display()),
    };
    let u32_at = |b: &[u8], i: usize| {
        let a: [u8; 4] = b[i..i + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    assert_eq!(
        u32_at(&data, 20),
        1,
        "{}: linktype not Ethernet",
        path.display()
    );

    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 16 <= data.len() {
        let incl = u32_at(&data, pos + 8) as usize;
        let orig = u32_at(&data, pos + 12) as usize;
        let frame = &data[pos + 16..pos + 16 + incl];
        pos += 16 + incl;
        assert_eq!(incl, orig, "{}: frame cut by snaplen", path.display());
        let (mut eth, mut etype) = (14, be16(frame, 12));
        if etype == 0x8100 {
            (eth, etype) = (18, be16(frame, 16));
        }
        if etype != 0x0800 {
            continue;
        }
        let ip = &frame[eth..];
        if ip[0] >> 4 != 4 || ip[9] != 17 {
            continue;
        }
        let ihl = usize::from(ip[0] & 15) * 4;
        let udp = &ip[ihl..];
        let (sport, dport, ulen) = (be16(udp, 0), be16(udp, 2), usize::from(be16(udp, 4)));
        if sport != 694 && dport != 694 {
            continue;
        }
        out.push(udp[8..ulen].to_vec());
    }
    assert_eq!(pos, data.len(), "{}: trailing bytes", path.display());
    out
}

fn sha1_lab() -> Keyring {
    Keyring::single(Method::Sha1(b"labsecret".to_vec()))
}

/// The key for a capture, by file name (PROTOCOL.md §1.3).
fn key_for(file: &str) -> Keyring {
    if file.starts_with("md5-") {
        Keyring::single(Method::Md5(b"Hello!".to_vec()))
    } else if file.starts_with("crc-") {
        Keyring::single(Method::Crc)
    } else {
        sha1_lab()
    }
}

/// Every capture with its number of netstring and classic datagrams.
const CAPTURES: &[(&str, usize, usize)] = &[
    ("bcast-standby.pcap", 61, 0),
    ("crc-stop.pcap", 62, 0),
    ("interactive-ucast-sha1.pcap", 85, 0),
    ("interop-classic.pcap", 57, 36),
    ("interop-netstring.pcap", 93, 0),
    ("legacy-failback.pcap", 44, 0),
    ("md5-kill9-ka1-dt3.pcap", 75, 0),
    ("seed-failback.pcap", 95, 0),
    ("seed-kill9.pcap", 60, 0),
    ("seed-standby.pcap", 59, 0),
    ("seed-stop.pcap", 62, 0),
    ("seed-takeover.pcap", 80, 0),
];

#[test]
fn every_capture_is_present() {
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = CAPTURES.iter().map(|c| c.0).collect();
    assert_eq!(on_disk, listed);
}

#[test]
fn every_captured_datagram_decodes_authenticates_and_reencodes() {
    let (mut netstring, mut classic) = (0, 0);
    for &(file, want_netstring, want_classic) in CAPTURES {
        let keys = key_for(file);
        let (mut n, mut c) = (0, 0);
        for (i, pkt) in pcap_payloads(&data_dir().join(file)).iter().enumerate() {
            let ctx = format!("{file} datagram #{i} ({} bytes)", pkt.len());
            let msg = decode(pkt, &keys).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            // Every captured message carries the inner field, last, and it
            // verifies too (heartbeat only checks it on classic packets).
            assert_eq!(msg.fields.last().map(|f| &*f.0), Some("auth"), "{ctx}");
            verify_inner_auth(&msg, &keys).unwrap_or_else(|e| panic!("{ctx}: inner: {e}"));
            let bare = msg.without("auth");
            assert_eq!(bare.fields.len() + 1, msg.fields.len(), "{ctx}");

            match parse(pkt).unwrap().format {
                Format::Netstring => {
                    n += 1;
                    assert_eq!(encode(&bare, &keys), *pkt, "{ctx}: re-encoding differs");
                    // Re-encoding the received message (auth and all) too.
                    assert_eq!(encode(&msg, &keys), *pkt, "{ctx}");
                    assert_eq!(seal(encode_body(&msg), &keys), *pkt, "{ctx}");
                }
                Format::Classic => {
                    c += 1;
                    assert_eq!(encode_classic(&bare, &keys), *pkt, "{ctx}: classic differs");
                }
            }
        }
        assert_eq!(
            (n, c),
            (want_netstring, want_classic),
            "{file}: datagram count"
        );
        netstring += n;
        classic += c;
    }
    assert_eq!((netstring, classic), (833, 36));
    eprintln!("{netstring} netstring + {classic} classic datagrams checked");
}

#[test]
fn every_captured_datagram_fails_with_the_wrong_key() {
    let wrong = Keyring::single(Method::Sha1(b"not-the-key".to_vec()));
    let mut checked = 0;
    for &(file, _, _) in CAPTURES {
        for pkt in pcap_payloads(&data_dir().join(file)) {
            assert_eq!(decode(&pkt, &wrong), Err(DecodeError::BadAuth), "{file}");
            checked += 1;
        }
    }
    assert_eq!(checked, 869);
}

#[test]
fn captured_datagrams_with_an_unknown_key_index_are_rejected() {
    let mut keys = Keyring::single(Method::Crc);
    keys.keys.clear();
    keys.keys.insert(2, Method::Crc);
    keys.active = 2;
    let pkts = pcap_payloads(&data_dir().join("crc-stop.pcap"));
    assert_eq!(
        decode(&pkts[0], &keys),
        Err(DecodeError::UnknownKeyIndex(1))
    );
}

// ------------------------------------------------------------ KAT*.txt

struct Kat {
    payload: Vec<u8>,
    keys: Keyring,
    trailer: String,
    inner: String,
}

/// Reads a `KAT*.txt` produced by `anchors/heartbeat/kat.py`.
fn read_kat(file: &str) -> Kat {
    let text = std::fs::read_to_string(data_dir().join(file)).unwrap();
    let mut lines = text.lines();
    let key = lines
        .clone()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("key line");
    let mut parts = key.split(' ');
    let (num, method) = (parts.next().unwrap(), parts.next().unwrap());
    let secret = parts
        .next()
        .unwrap_or("")
        .trim_matches('\'')
        .as_bytes()
        .to_vec();
    let method = match method {
        "sha1" => Method::Sha1(secret),
        "md5" => Method::Md5(secret),
        "crc" => Method::Crc,
        other => panic!("{file}: method {other}"),
    };
    let mut keys = Keyring::single(method);
    assert_eq!(num, "1");
    keys.active = 1;

    lines
        .find(|l| l.starts_with("-- UDP payload, hex:"))
        .unwrap();
    let hex: String = lines.by_ref().take_while(|l| !l.is_empty()).collect();
    let payload = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{file}: no {prefix:?}"))
            .to_string()
    };
    // "trailer on the wire      : '42:1 4e85…705d,'"
    let trailer = after("trailer on the wire      : '");
    let trailer = trailer.trim_end_matches(['\'', ',']);
    let trailer = trailer.split_once(':').unwrap().1.to_string();
    let inner = after("inner field on the wire  : auth=");
    Kat {
        payload,
        keys,
        trailer,
        inner,
    }
}

/// Checks one KAT: the expected digests (from PROTOCOL.md §1.3) are the
/// file's, decoding verifies both, our computation gives the same text,
/// and the packet re-encodes byte for byte.
fn check_kat(file: &str, len: usize, trailer: &str, inner: &str) {
    let kat = read_kat(file);
    assert_eq!(kat.payload.len(), len, "{file}");
    assert_eq!(kat.trailer, trailer, "{file}");
    assert_eq!(kat.inner, inner, "{file}");

    let msg = decode(&kat.payload, &kat.keys).unwrap();
    assert_eq!(msg.get_str("auth"), Some(inner));
    verify_inner_auth(&msg, &kat.keys).unwrap();

    let parsed = parse(&kat.payload).unwrap();
    let signed = &kat.payload[..parsed.signed_len];
    assert!(signed.ends_with(b"%%%\n"));
    assert_eq!(kat.keys.sign(signed).unwrap(), trailer);
    let text = wire::classic::auth_text(&msg);
    assert_eq!(kat.keys.sign(&text).unwrap(), inner);

    assert_eq!(encode(&msg.without("auth"), &kat.keys), kat.payload);
}

#[test]
fn kat_sha1_matches_protocol_md() {
    check_kat(
        "KAT.txt",
        308,
        "1 4e85f5a6fdebaee77011439566ddfcfcaaf7705d",
        "1 969a5c4c9be42248e5244157bae433738d2ee1b4",
    );
    // The exact bytes PROTOCOL.md §1.3 lists for the inner field.
    let kat = read_kat("KAT.txt");
    let msg = decode(&kat.payload, &kat.keys).unwrap();
    assert_eq!(
        wire::classic::auth_text(&msg),
        b"t=status\nst=init\ndt=7d00\nprotocol=1\nsrc=node-b\n(1)srcuuid=lGft+TxjRK201Fl4TEe9Ww==\n\
          seq=1\nhg=6b06f982\nts=6b06f981\nld=0.69 1.54 1.21 3/145 117\nttl=3\n"
            .to_vec()
    );
    assert_eq!(parse(&kat.payload).unwrap().signed_len, 262);
}

#[test]
fn kat_md5_matches_protocol_md() {
    check_kat(
        "KAT-md5.txt",
        292,
        "1 dde091ce4fef5ea7435a056ac1f3a81e",
        "1 eae9962e559f97ba76ba089b398d0798",
    );
}

#[test]
fn kat_crc_matches_protocol_md() {
    check_kat("KAT-crc.txt", 244, "1 5d219c0a", "1 bbfdcc27");
}

#[test]
fn kat_sha1_decodes_to_the_documented_fields() {
    let kat = read_kat("KAT.txt");
    let msg = decode(&kat.payload, &kat.keys).unwrap();
    assert_eq!(msg.kind(), Some("status"));
    assert_eq!(msg.get_str("st"), Some("init"));
    assert_eq!(msg.get_hex("dt"), Some(0x7d00));
    assert_eq!(msg.get_hex("seq"), Some(1));
    assert_eq!(msg.get_hex("hg"), Some(0x6b06_f982));
    assert_eq!(msg.get_hex("ts"), Some(0x6b06_f981));
    assert_eq!(
        msg.get("srcuuid"),
        Some(&Value::Bin(
            b"\x94g\xed\xf9<cD\xad\xb4\xd4YxLG\xbd[".to_vec()
        ))
    );
    let names: Vec<&str> = msg.fields.iter().map(|f| &*f.0).collect();
    assert_eq!(
        names,
        [
            "t", "st", "dt", "protocol", "src", "srcuuid", "seq", "hg", "ts", "ld", "ttl", "auth"
        ]
    );
}

#[test]
fn kat_built_from_scratch_is_byte_identical() {
    // What the engine will do: build the message field by field.
    let mut m = Message::new("status");
    m.add_str("st", "init")
        .add_hex("dt", 0x7d00)
        .add_str("protocol", "1")
        .add_str("src", "node-b")
        .add_bin("srcuuid", b"\x94g\xed\xf9<cD\xad\xb4\xd4YxLG\xbd[")
        .add_hex("seq", 1)
        .add_hex("hg", 0x6b06_f982)
        .add_hex("ts", 0x6b06_f981)
        .add_str("ld", "0.69 1.54 1.21 3/145 117")
        .add_str("ttl", "3");
    assert_eq!(encode(&m, &sha1_lab()), read_kat("KAT.txt").payload);
}
