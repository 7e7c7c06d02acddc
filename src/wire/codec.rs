//! Encoding and decoding whole UDP payloads, with both authenticators
//! (PROTOCOL.md §1.2–1.3).
//!
//! Sending (`encode`) does what heartbeat 3.0.6 does with its default
//! `msgfmt classic`: append the inner `auth` field when the message has no
//! struct or compressed field (`add_control_msg_fields` → `add_msg_auth`),
//! then write netstring format and the trailer with the active key
//! (`msg2wirefmt` → `msg2netstring`).
//!
//! Receiving (`decode`) dispatches on the first four bytes like
//! `wirefmt2msg_ll`: `###\n` is netstring, checked by its trailer only;
//! `>>>\n` is classic, checked by its inner `auth` field only.

use super::classic::{self, AUTH_FIELD};
use super::netstring;
use super::{Authenticator, DecodeError, EncodeError, Keyring, MAX_DEPTH, MAXMSG, Message, Value};

/// The two formats a datagram can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `###\n…%%%\n` plus trailer: what heartbeat 3.0.6 sends.
    Netstring,
    /// `>>>\n…<<<\n`: accepted on receive.
    Classic,
}

/// A parsed, not yet authenticated datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub format: Format,
    pub msg: Message,
    /// For netstring: the length of `###\n`…`%%%\n`, which the trailer covers.
    pub signed_len: usize,
    /// For netstring: the trailer's key index and hex digest.
    pub trailer: Option<(u8, Vec<u8>)>,
}

// ------------------------------------------------------------------ encode

/// Whether heartbeat adds the inner `auth` field: not when a struct or
/// compressed field forces netstring (`must_use_netstring`).
pub fn wants_inner_auth(msg: &Message) -> bool {
    !msg.fields
        .iter()
        .any(|(_, v)| matches!(v, Value::Struct(_) | Value::Compressed(_)))
}

/// `msg` with the inner `auth=N HEX` field set with the active key:
/// modified in place if present, else appended (`ha_msg_mod`). Returns
/// `msg` unchanged if the message is not eligible or the key is missing.
pub fn with_inner_auth<K: Authenticator + ?Sized>(msg: &Message, keys: &K) -> Message {
    let mut out = msg.clone();
    let Some(auth) = inner_auth(msg, keys, &mut Vec::new()) else {
        return out;
    };
    let value = Value::Str(auth.as_bytes().to_vec());
    match out.fields.iter_mut().find(|(n, _)| n == AUTH_FIELD) {
        Some((_, v)) => *v = value,
        None => out.fields.push((AUTH_FIELD.into(), value)),
    }
    out
}

/// The inner `auth` value heartbeat would add to `msg`, if any; `scratch`
/// holds the text it is computed over.
fn inner_auth<K: Authenticator + ?Sized>(
    msg: &Message,
    keys: &K,
    scratch: &mut Vec<u8>,
) -> Option<super::Sig> {
    if !wants_inner_auth(msg) {
        return None;
    }
    scratch.clear();
    classic::write_auth_text(scratch, msg);
    keys.sign_sig(scratch)
}

/// `###\n` fields `%%%\n`, exactly as given (no auth added, no trailer).
pub fn encode_body(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    netstring::write_body(&mut out, msg);
    out
}

/// Appends the trailer `LEN:N HEX,` computed over `body` with the active
/// key. If the active index has no key (config rejects that), the body is
/// returned without trailer, and every receiver will drop it.
pub fn seal<K: Authenticator + ?Sized>(mut body: Vec<u8>, keys: &K) -> Vec<u8> {
    if let Some(auth) = keys.sign_sig(&body) {
        netstring::write_trailer(&mut body, auth.as_bytes());
    }
    body
}

/// The datagram heartbeat would send for `msg` (given without `auth`):
/// inner auth when eligible, netstring body, trailer. Never fails; see
/// [`try_encode`] to check that peers will accept the result.
pub fn encode<K: Authenticator + ?Sized>(msg: &Message, keys: &K) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(msg, keys, &mut out, &mut Vec::new());
    out
}

/// [`encode`] into `out` (cleared first), with `scratch` for the inner
/// auth text: with both kept between calls, a beat is encoded without
/// allocating.
pub fn encode_into<K: Authenticator + ?Sized>(
    msg: &Message,
    keys: &K,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    out.clear();
    let auth = inner_auth(msg, keys, scratch);
    netstring::write_body_with(out, msg, auth.as_ref().map(|a| (AUTH_FIELD, a.as_bytes())));
    if let Some(trailer) = keys.sign_sig(out) {
        netstring::write_trailer(out, trailer.as_bytes());
    }
}

/// [`encode`], refusing what a peer would reject: names that are empty or
/// hold `=`, NUL, CR or LF; empty lists or list elements; nesting deeper
/// than [`MAX_DEPTH`]; a missing active key; more than MAXMSG bytes.
pub fn try_encode(msg: &Message, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
    check_message(msg, 0)?;
    if keys.get(keys.active).is_none() {
        return Err(EncodeError::NoActiveKey(keys.active));
    }
    let out = encode(msg, keys);
    if out.len() > MAXMSG {
        return Err(EncodeError::TooLarge { len: out.len() });
    }
    Ok(out)
}

fn check_message(msg: &Message, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    for (name, value) in &msg.fields {
        if name.is_empty() || name.bytes().any(|c| matches!(c, b'=' | 0 | b'\r' | b'\n')) {
            return Err(EncodeError::BadName(name.to_string()));
        }
        match value {
            Value::List(items) if items.is_empty() || items.iter().any(Vec::is_empty) => {
                return Err(EncodeError::EmptyList(name.to_string()));
            }
            Value::Struct(m) => check_message(m, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

/// A classic-format datagram, `>>>\n`…`<<<\n`, with the inner auth field
/// set as in [`encode`]. Heartbeat never sends this on UDP; scripts write
/// it to the FIFO, and peers accept it.
pub fn encode_classic(msg: &Message, keys: &Keyring) -> Vec<u8> {
    let mut out = Vec::new();
    classic::write_message(&mut out, &with_inner_auth(msg, keys));
    out
}

// ------------------------------------------------------------------ decode

/// Parses a datagram without checking any authenticator. For tools and
/// tests; the daemon uses [`decode`].
pub fn parse(buf: &[u8]) -> Result<Parsed, DecodeError> {
    if buf.len() > MAXMSG {
        return Err(DecodeError::TooLarge { len: buf.len() });
    }
    if buf.starts_with(netstring::START) {
        let (msg, signed_len) = netstring::parse_body(buf)?;
        let (index, hex) = netstring::parse_trailer(&buf[signed_len..], signed_len)?;
        Ok(Parsed {
            format: Format::Netstring,
            msg,
            signed_len,
            trailer: Some((index, hex.to_vec())),
        })
    } else if buf.starts_with(classic::START) {
        Ok(Parsed {
            format: Format::Classic,
            msg: classic::parse_packet(buf)?,
            signed_len: 0,
            trailer: None,
        })
    } else if netstring::START.starts_with(buf) || classic::START.starts_with(buf) {
        Err(DecodeError::Truncated)
    } else {
        Err(DecodeError::UnknownFormat)
    }
}

/// Checks a trailer digest over `signed` with the key of `index`.
///
/// Heartbeat itself takes the *method* of the packet's index but the
/// receiver's *outbound* key (`hb_compute_authentication`, PROTOCOL.md §1.3
/// quirk); we use the key of the packet's index, which is the same when
/// authkeys has a single key and is what a key rotation needs.
pub fn verify_digest<K: Authenticator + ?Sized>(
    keys: &K,
    index: u8,
    signed: &[u8],
    hex: &[u8],
) -> Result<(), DecodeError> {
    match keys.check(index, signed, hex) {
        None => Err(DecodeError::UnknownKeyIndex(index)),
        Some(true) => Ok(()),
        Some(false) => Err(DecodeError::BadAuth),
    }
}

/// Checks the inner `auth=N HEX` field against the classic text of the
/// other fields (`isauthentic`). If several `auth` fields are present the
/// last one counts, as in heartbeat.
pub fn verify_inner_auth<K: Authenticator + ?Sized>(
    msg: &Message,
    keys: &K,
) -> Result<(), DecodeError> {
    let Some((_, value)) = msg.fields.iter().rev().find(|(n, _)| n == AUTH_FIELD) else {
        return Err(DecodeError::MissingAuth);
    };
    let Value::Str(text) = value else {
        return Err(DecodeError::BadAuth);
    };
    let (index, hex) = netstring::parse_auth_text(text).ok_or(DecodeError::BadAuth)?;
    verify_digest(keys, index, &classic::auth_text(msg), hex)
}

/// Parses and authenticates one datagram.
///
/// Netstring packets are checked by their trailer, with the key of the
/// index the trailer names; classic packets by their inner `auth` field.
/// The trailer is found and checked before the body is parsed, so a forged
/// packet costs a digest, not a parse. The returned message has every field
/// in wire order, *including* the inner `auth` field when the packet
/// carries one (so `encode` of the message reproduces the packet). Use
/// [`Message::without`] to drop it.
pub fn decode<K: Authenticator + ?Sized>(buf: &[u8], keys: &K) -> Result<Message, DecodeError> {
    if buf.len() <= MAXMSG
        && buf.starts_with(netstring::START)
        && let Some((signed_len, index, hex)) = netstring::find_trailer(buf)
    {
        verify_digest(keys, index, &buf[..signed_len], hex)?;
        if let Ok((msg, body_len)) = netstring::parse_body(buf)
            && body_len == signed_len
        {
            return Ok(msg);
        }
        // Otherwise the full parse below names what is wrong.
    }
    let parsed = parse(buf)?;
    match (&parsed.format, &parsed.trailer) {
        (Format::Netstring, Some((index, hex))) => {
            verify_digest(keys, *index, &buf[..parsed.signed_len], hex)?;
        }
        _ => verify_inner_auth(&parsed.msg, keys)?,
    }
    Ok(parsed.msg)
}
