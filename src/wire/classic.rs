//! The classic text format (PROTOCOL.md §1.2; `glue:cl_msg.c
//! msg2string_buf`, `string2msg_ll`, `glue:cl_msg_types.c`).
//!
//! ```text
//! ">>>\n" *( ["(" T ")"] NAME "=" VALUE "\n" ) "<<<\n"
//! ```
//!
//! Heartbeat 3.0.6 never sends it on UDP, but accepts it, and it is what the
//! inner `auth` field is computed over (§1.3): the same lines without the
//! `>>>`/`<<<` head and without any field named `auth`.
//!
//! Value encodings: strings have `\n` written as byte 0x13 (SPECIAL_SYM);
//! binary and compressed values are base64; lists are packed `len:elem,`;
//! a struct is the nested message's text (with head) with its newlines
//! replaced by a depth-specific byte (SPECIAL_SYMS).

use super::netstring::{pack_list, parse_list, type_digit};
use super::{DecodeError, MAX_DEPTH, Message, Name, Value, base64, field_name};

pub const START: &[u8] = b">>>\n";
pub const END: &[u8] = b"<<<\n";

/// `\n` inside a string value (`SPECIAL_SYM`).
const STRING_NL: u8 = 19;

/// The newline substitute for a struct nested at each depth
/// (`SPECIAL_SYMS[MAXDEPTH]`).
const STRUCT_NL: [u8; 16] = [
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 15, 16, 17, 18,
];

/// The name of the inner authenticator field (`F_AUTH`).
pub const AUTH_FIELD: &str = "auth";

/// The bytes the inner `auth` field is computed over: every field except
/// `auth`, in order, as classic lines, without `>>>`/`<<<`
/// (`msg2string_buf(m, .., 0, NOHEAD)` in `add_msg_auth`/`isauthentic`).
pub fn auth_text(msg: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    write_fields(&mut out, msg, 0, true);
    out
}

/// [`auth_text`], appended to `out`.
pub fn write_auth_text(out: &mut Vec<u8>, msg: &Message) {
    write_fields(out, msg, 0, true);
}

/// The whole classic message, `>>>\n` … `<<<\n`, all fields included.
pub fn write_message(out: &mut Vec<u8>, msg: &Message) {
    write_head_message(out, msg, 0);
}

fn write_head_message(out: &mut Vec<u8>, msg: &Message, depth: usize) {
    out.extend_from_slice(START);
    write_fields(out, msg, depth, false);
    out.extend_from_slice(END);
}

fn write_fields(out: &mut Vec<u8>, msg: &Message, depth: usize, skip_auth: bool) {
    for (name, value) in &msg.fields {
        if skip_auth && name == AUTH_FIELD {
            continue;
        }
        let t = type_digit(value);
        // A string has no "(0)" prefix; heartbeat rejects "(0)" on input.
        if t != 0 {
            out.extend_from_slice(&[b'(', b'0' + t, b')']);
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        match value {
            // Most values hold no newline: copied whole, not byte by byte.
            Value::Str(s) if !s.contains(&b'\n') => out.extend_from_slice(s),
            Value::Str(s) => out.extend(s.iter().map(|&c| if c == b'\n' { STRING_NL } else { c })),
            Value::Bin(b) | Value::Compressed(b) => base64::encode_into(out, b),
            Value::List(items) => pack_list(out, items),
            Value::Struct(m) => {
                let mut nested = Vec::new();
                write_head_message(&mut nested, m, depth + 1);
                let sym = STRUCT_NL.get(depth).copied().unwrap_or(b'\n');
                out.extend(nested.iter().map(|&c| if c == b'\n' { sym } else { c }));
            }
        }
        out.push(b'\n');
    }
}

// ---------------------------------------------------------------- parsing

fn malformed(offset: usize, what: &'static str) -> DecodeError {
    DecodeError::Malformed { offset, what }
}

/// Parses a whole classic packet. A single trailing NUL is tolerated, as
/// `msg2wirefmt_noac` counts one in the length it hands to writers.
pub fn parse_packet(buf: &[u8]) -> Result<Message, DecodeError> {
    let body = match buf.split_last() {
        Some((0, rest)) => rest,
        _ => buf,
    };
    if let Some(at) = body.iter().position(|&c| c == 0) {
        // Heartbeat stops at the first NUL (it is a C string).
        return Err(malformed(at, "NUL in classic message"));
    }
    parse_message(body, 0, 0, true)
}

/// One `>>>\n` … `<<<\n` message that must fill `text` exactly.
/// `base` is the offset of `text` in the packet; `top` whether running out
/// of input means the datagram was cut short.
fn parse_message(
    text: &[u8],
    depth: usize,
    base: usize,
    top: bool,
) -> Result<Message, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let short = |what| {
        if top {
            DecodeError::Truncated
        } else {
            malformed(base + text.len(), what)
        }
    };
    if !text.starts_with(START) {
        return Err(if START.starts_with(text) {
            short("input ends inside '>>>'")
        } else {
            malformed(base, "message does not start with '>>>'")
        });
    }
    let mut pos = START.len();
    let mut msg = Message::default();
    loop {
        // Heartbeat skips blank lines and stray CRs between fields.
        while pos < text.len() && matches!(text[pos], b'\n' | b'\r') {
            pos += 1;
        }
        let rest = &text[pos..];
        if rest.starts_with(END) {
            if pos + END.len() != text.len() {
                return Err(malformed(base + pos + END.len(), "bytes after '<<<'"));
            }
            return Ok(msg);
        }
        // A line runs to the first CR or LF (`strcspn(valp, "\r\n")`).
        let Some(len) = rest.iter().position(|&c| c == b'\n' || c == b'\r') else {
            return Err(short("message ends before '<<<'"));
        };
        msg.fields
            .push(parse_line(&rest[..len], depth, base + pos)?);
        pos += len;
    }
}

/// `[(T)]NAME=VALUE` (`ha_msg_add_nv_depth`, `add_string_field`).
fn parse_line(line: &[u8], depth: usize, at: usize) -> Result<(Name, Value), DecodeError> {
    let Some(eq) = line.iter().position(|&c| c == b'=') else {
        return Err(malformed(at, "line without '='"));
    };
    let (mut name, raw) = (&line[..eq], &line[eq + 1..]);
    if raw.is_empty() {
        // Heartbeat passes a NULL value for an empty one, which fails.
        return Err(malformed(at + eq, "empty value"));
    }
    let mut t = b'0';
    if name.first() == Some(&b'(') {
        if name.len() < 3 || name[2] != b')' {
            return Err(malformed(at, "no closing parenthesis after type"));
        }
        t = name[1];
        if !matches!(t, b'1'..=b'4') {
            // "(0)" is "wrong type" to heartbeat; 5.. have no text form.
            return Err(malformed(at + 1, "bad classic field type"));
        }
        name = &name[3..];
    }
    if name.is_empty() {
        return Err(malformed(at, "empty field name"));
    }
    let name = field_name(
        std::str::from_utf8(name).map_err(|_| malformed(at, "field name is not UTF-8"))?,
    );
    let vat = at + eq + 1;
    let value = match t {
        b'0' => Value::Str(
            raw.iter()
                .map(|&c| if c == STRING_NL { b'\n' } else { c })
                .collect(),
        ),
        b'1' => Value::Bin(base64::decode(raw).ok_or(malformed(vat, "bad base64"))?),
        b'4' => Value::Compressed(base64::decode(raw).ok_or(malformed(vat, "bad base64"))?),
        b'3' => Value::List(parse_list(raw, vat)?),
        _ => {
            // b'2': the nested text, its newlines encoded for this depth.
            let Some(&sym) = STRUCT_NL.get(depth) else {
                return Err(DecodeError::TooDeep);
            };
            let nested: Vec<u8> = raw
                .iter()
                .map(|&c| if c == sym { b'\n' } else { c })
                .collect();
            Value::Struct(parse_message(&nested, depth + 1, vat, false)?)
        }
    };
    Ok((name, value))
}
