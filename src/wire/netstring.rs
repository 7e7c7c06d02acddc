//! The netstring wire format heartbeat 3.0.6 always sends (PROTOCOL.md §1.2;
//! `glue:cl_netstring.c`, `glue:cl_msg_types.c fields2netstring`).
//!
//! ```text
//! packet   = "###\n" *field "%%%\n" trailer
//! field    = LEN ":" "(" T ")" NAME "=" VALUE ","
//! trailer  = LEN ":" AUTHNUM " " HEXDIGEST ","
//! ```
//!
//! The parser is stricter than heartbeat's where heartbeat never produces
//! the input (leading zeros in lengths, bytes after the trailer, an unknown
//! type digit, which heartbeat `assert`s on), so that every accepted packet
//! re-encodes to the same bytes.

use super::{DecodeError, MAX_DEPTH, MAXMSG, Message, Name, Value, field_name};

pub const START: &[u8] = b"###\n";
pub const END: &[u8] = b"%%%\n";

/// The `(T)` digit of each value type (`glue:include/ha_msg.h FT_*`).
pub fn type_digit(v: &Value) -> u8 {
    match v {
        Value::Str(_) => 0,
        Value::Bin(_) => 1,
        Value::Struct(_) => 2,
        Value::List(_) => 3,
        Value::Compressed(_) => 4,
    }
}

// ---------------------------------------------------------------- writing

fn push_netstring(out: &mut Vec<u8>, payload: &[u8]) {
    super::push_decimal(out, payload.len() as u64);
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b',');
}

/// A list value: each element as `len:elem,` (`string_list_pack`).
pub fn pack_list(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    for item in items {
        push_netstring(out, item);
    }
}

/// `"###\n" fields "%%%\n"`, without trailer (`msg2netstring_buf`).
/// Nested structs are written the same way, inside their field.
pub fn write_body(out: &mut Vec<u8>, msg: &Message) {
    write_body_with(out, msg, None);
}

/// [`write_body`], with `field = (name, string)` set as `ha_msg_mod` would:
/// the first field of that name gets the string as its value, or the field
/// is appended. This is how the inner `auth` field goes on without a copy
/// of the message.
pub fn write_body_with(out: &mut Vec<u8>, msg: &Message, field: Option<(&str, &[u8])>) {
    out.extend_from_slice(START);
    let mut pending = field;
    for (name, value) in &msg.fields {
        match pending {
            Some((n, s)) if n == name => {
                write_flat(out, 0, name, s);
                pending = None;
            }
            _ => write_field(out, name, value),
        }
    }
    if let Some((n, s)) = pending {
        write_flat(out, 0, n, s);
    }
    out.extend_from_slice(END);
}

/// One field whose value bytes are known: its length is too, so it is
/// written straight into `out`.
fn write_flat(out: &mut Vec<u8>, t: u8, name: &str, value: &[u8]) {
    super::push_decimal(out, (3 + name.len() + 1 + value.len()) as u64);
    out.extend_from_slice(&[b':', b'(', b'0' + t, b')']);
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b',');
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &Value) {
    let t = type_digit(value);
    match value {
        Value::Str(b) | Value::Bin(b) | Value::Compressed(b) => write_flat(out, t, name, b),
        Value::Struct(m) => {
            let mut inner = Vec::new();
            write_body(&mut inner, m);
            write_flat(out, t, name, &inner);
        }
        Value::List(items) => {
            let mut inner = Vec::new();
            pack_list(&mut inner, items);
            write_flat(out, t, name, &inner);
        }
    }
}

/// Appends the trailer netstring holding `"N HEX"`.
pub fn write_trailer(out: &mut Vec<u8>, auth: &[u8]) {
    push_netstring(out, auth);
}

/// Where the trailer of a whole packet starts, its key index and digest,
/// read from the end: `%%%\n LEN ":" "N HEX" ","`, the packet's last
/// bytes. `None` if they are not shaped so; the full parse then says why.
pub fn find_trailer(buf: &[u8]) -> Option<(usize, u8, &[u8])> {
    let body_end = buf.len().checked_sub(1).filter(|&e| buf[e] == b',')?;
    let colon = buf[..body_end].iter().rposition(|&c| c == b':')?;
    let start = buf[..colon]
        .iter()
        .rposition(|c| !c.is_ascii_digit())
        .map_or(0, |p| p + 1);
    let digits = &buf[start..colon];
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') || digits.len() > 6 {
        return None;
    }
    let len = digits
        .iter()
        .fold(0usize, |n, &c| n * 10 + usize::from(c - b'0'));
    let auth = &buf[colon + 1..body_end];
    if len != auth.len() || !buf[..start].ends_with(END) {
        return None;
    }
    let (index, hex) = parse_auth_text(auth)?;
    Some((start, index, hex))
}

// ---------------------------------------------------------------- parsing

/// A cursor over `buf`, reporting offsets relative to the whole packet.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` in the packet, for error messages.
    base: usize,
    /// Whether running out of bytes means the datagram was cut short
    /// (top level) or a nested length was wrong (inside a field value).
    top: bool,
}

impl<'a> Cursor<'a> {
    fn malformed(&self, at: usize, what: &'static str) -> DecodeError {
        DecodeError::Malformed {
            offset: self.base + at,
            what,
        }
    }

    fn short(&self, what: &'static str) -> DecodeError {
        if self.top {
            DecodeError::Truncated
        } else {
            self.malformed(self.buf.len(), what)
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// A decimal netstring length followed by `:`. No sign, no leading
    /// zeros (heartbeat prints `%d`), at most MAXMSG.
    fn length(&mut self) -> Result<usize, DecodeError> {
        let start = self.pos;
        let mut n: usize = 0;
        loop {
            let Some(&c) = self.buf.get(self.pos) else {
                return Err(self.short("length runs to end of input"));
            };
            match c {
                b'0'..=b'9' => {
                    if self.pos > start && self.buf[start] == b'0' {
                        return Err(self.malformed(start, "length with leading zero"));
                    }
                    n = n * 10 + usize::from(c - b'0');
                    if n > MAXMSG {
                        return Err(self.malformed(start, "length larger than MAXMSG"));
                    }
                    self.pos += 1;
                }
                b':' if self.pos > start => {
                    self.pos += 1;
                    return Ok(n);
                }
                _ => return Err(self.malformed(self.pos, "expected length digits and ':'")),
            }
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest().len() < n {
            return Err(self.short("netstring runs past end of input"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn comma(&mut self) -> Result<(), DecodeError> {
        match self.buf.get(self.pos) {
            None => Err(self.short("missing ',' after netstring")),
            Some(b',') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.malformed(self.pos, "netstring not terminated by ','")),
        }
    }

    /// One `len:payload,`; returns the payload and its offset in `buf`.
    fn netstring(&mut self) -> Result<(usize, &'a [u8]), DecodeError> {
        let n = self.length()?;
        let at = self.pos;
        let s = self.take(n)?;
        self.comma()?;
        Ok((at, s))
    }
}

/// Parses `"###\n" fields "%%%\n"` at the start of `buf`; returns the
/// message and the number of bytes consumed (the length the trailer covers).
pub fn parse_body(buf: &[u8]) -> Result<(Message, usize), DecodeError> {
    let mut cur = Cursor {
        buf,
        pos: 0,
        base: 0,
        top: true,
    };
    let msg = parse_message(&mut cur, 0)?;
    Ok((msg, cur.pos))
}

fn parse_message(cur: &mut Cursor<'_>, depth: usize) -> Result<Message, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let rest = cur.rest();
    if !rest.starts_with(START) {
        return Err(if START.starts_with(rest) {
            cur.short("input ends inside '###'")
        } else {
            cur.malformed(cur.pos, "message does not start with '###'")
        });
    }
    cur.pos += START.len();
    let mut msg = Message::default();
    loop {
        let rest = cur.rest();
        if rest.starts_with(END) {
            cur.pos += END.len();
            return Ok(msg);
        }
        if rest.is_empty() || (rest[0] == b'%' && END.starts_with(rest)) {
            return Err(cur.short("message ends before '%%%'"));
        }
        let (at, payload) = cur.netstring()?;
        msg.fields.push(parse_field(cur, at, payload, depth)?);
    }
}

/// `(T)NAME=VALUE` (`process_netstring_nvpair`).
fn parse_field(
    cur: &Cursor<'_>,
    at: usize,
    payload: &[u8],
    depth: usize,
) -> Result<(Name, Value), DecodeError> {
    let bad = |off: usize, what| DecodeError::Malformed {
        offset: cur.base + at + off,
        what,
    };
    if payload.len() < 3 || payload[0] != b'(' || payload[2] != b')' {
        return Err(bad(0, "field does not start with '(T)'"));
    }
    let t = payload[1];
    let body = &payload[3..];
    // NAME is everything up to the first '='; heartbeat's strcspn also
    // stops at NUL, which then fails its '=' check.
    let Some(eq) = body.iter().position(|&c| c == b'=' || c == 0) else {
        return Err(bad(3, "field without '='"));
    };
    if body[eq] != b'=' {
        return Err(bad(3 + eq, "NUL in field name"));
    }
    if eq == 0 {
        return Err(bad(3, "empty field name"));
    }
    let name = field_name(
        std::str::from_utf8(&body[..eq]).map_err(|_| bad(3, "field name is not UTF-8"))?,
    );
    let vstart = at + 3 + eq + 1;
    let raw = &body[eq + 1..];
    let value = match t {
        b'0' => Value::Str(raw.to_vec()),
        b'1' => Value::Bin(raw.to_vec()),
        b'2' => {
            // A nested message without trailer (`netstring2struct`), which
            // must fill the value exactly.
            let mut inner = Cursor {
                buf: raw,
                pos: 0,
                base: cur.base + vstart,
                top: false,
            };
            let m = parse_message(&mut inner, depth + 1)?;
            if inner.pos != raw.len() {
                return Err(inner.malformed(inner.pos, "bytes after nested '%%%'"));
            }
            Value::Struct(m)
        }
        b'3' => Value::List(parse_list(raw, cur.base + vstart)?),
        b'4' => Value::Compressed(raw.to_vec()),
        _ => return Err(bad(1, "unknown field type")),
    };
    Ok((name, value))
}

/// A packed string list (`string_list_unpack`). Heartbeat rejects an empty
/// list and empty elements (`len <= 0`), so do we.
pub fn parse_list(raw: &[u8], base: usize) -> Result<Vec<Vec<u8>>, DecodeError> {
    if raw.is_empty() {
        return Err(DecodeError::Malformed {
            offset: base,
            what: "empty list",
        });
    }
    let mut cur = Cursor {
        buf: raw,
        pos: 0,
        base,
        top: false,
    };
    let mut items = Vec::new();
    while cur.pos < raw.len() {
        let (at, item) = cur.netstring()?;
        if item.is_empty() {
            return Err(cur.malformed(at, "empty list element"));
        }
        items.push(item.to_vec());
    }
    Ok(items)
}

/// The trailer `LEN:N HEX,` that must end the packet. Returns the key
/// index and the hex text.
pub fn parse_trailer(buf: &[u8], base: usize) -> Result<(u8, &[u8]), DecodeError> {
    let mut cur = Cursor {
        buf,
        pos: 0,
        base,
        top: true,
    };
    if buf.is_empty() {
        // Cut right after "%%%\n".
        return Err(DecodeError::Truncated);
    }
    let (at, auth) = cur.netstring()?;
    if cur.pos != buf.len() {
        return Err(cur.malformed(cur.pos, "bytes after the auth trailer"));
    }
    parse_auth_text(auth).ok_or(DecodeError::Malformed {
        offset: base + at,
        what: "auth trailer is not 'N HEX'",
    })
}

/// `"N HEX"`: a decimal key index without leading zeros, one space, and a
/// non-empty run of lowercase hex digits (`sprintf("%d %s")`).
pub fn parse_auth_text(auth: &[u8]) -> Option<(u8, &[u8])> {
    let sp = auth.iter().position(|&c| c == b' ')?;
    let (num, hex) = (&auth[..sp], &auth[sp + 1..]);
    if num.is_empty()
        || num.len() > 3
        || (num.len() > 1 && num[0] == b'0')
        || !num.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let index = num.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let index = u8::try_from(index).ok()?;
    if hex.is_empty() || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((index, hex))
}

/// The fields of a netstring body (`"###\n" … "%%%\n"`) as `(name, field)`,
/// `field` being the whole `(T)NAME=VALUE`; `None` at the end. Malformed
/// input ends the walk with `Some(None)`.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(body: &'a [u8]) -> Option<Self> {
        let inner = body.strip_prefix(START)?.strip_suffix(END)?;
        Some(Fields { rest: inner })
    }

    fn next_field(&mut self) -> Option<Option<(&'a [u8], &'a [u8])>> {
        if self.rest.is_empty() {
            return None;
        }
        let colon = self.rest.iter().take(7).position(|&c| c == b':');
        let parsed = colon.and_then(|c| {
            let digits = &self.rest[..c];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let len = digits
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
            let field = self.rest.get(c + 1..c + 1 + len)?;
            if self.rest.get(c + 1 + len) != Some(&b',') || field.len() < 4 || field[0] != b'(' {
                return None;
            }
            let eq = field.iter().position(|&x| x == b'=')?;
            Some((c + 2 + len, &field[3.min(eq)..eq], field))
        });
        match parsed {
            Some((used, name, field)) => {
                self.rest = &self.rest[used..];
                Some(Some((name, field)))
            }
            None => {
                self.rest = &[];
                Some(None)
            }
        }
    }
}

/// Where the value of the first string field `name` sits in `body`
/// (`"###\n"` … `"%%%\n"`).
pub fn str_value_range(body: &[u8], name: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut fields = Fields::new(body)?;
    while let Some(Some((n, field))) = fields.next_field() {
        if n == name {
            if !field.starts_with(b"(0)") {
                return None;
            }
            // The field is a subslice of body: its offset is the distance.
            let at = field.as_ptr() as usize - body.as_ptr() as usize;
            let start = at + 3 + name.len() + 1;
            return Some(start..at + field.len());
        }
    }
    None
}

/// Whether `new` says what `prev` said: two netstring bodies of one
/// sender whose fields are the same, in the same order, but for the
/// counters every message of a node changes (`ts`, the inner `auth`,
/// `ackseq`) and `seq`. Returns the seq of `new` (`None` when it has
/// none), or `Err(())` when anything else differs or either body is
/// malformed. Neither body is parsed into a message.
#[allow(clippy::result_unit_err)]
pub fn alike(prev: &[u8], new: &[u8]) -> Result<Option<u64>, ()> {
    let (mut a, mut b) = (Fields::new(prev).ok_or(())?, Fields::new(new).ok_or(())?);
    let mut seq = None;
    loop {
        match (a.next_field(), b.next_field()) {
            (None, None) => return Ok(seq),
            (Some(Some((na, fa))), Some(Some((nb, fb)))) if na == nb => match na {
                b"ts" | b"auth" | b"ackseq" => {}
                b"seq" => {
                    let hex = &fb[na.len() + 4..];
                    if hex.is_empty() || hex.len() > 16 {
                        return Err(());
                    }
                    let mut v = 0u64;
                    for &c in hex {
                        let d = (c as char).to_digit(16).ok_or(())?;
                        v = v << 4 | u64::from(d);
                    }
                    seq = Some(v);
                }
                _ if fa == fb => {}
                _ => return Err(()),
            },
            _ => return Err(()),
        }
    }
}

#[cfg(test)]
mod alike_tests {
    use super::*;

    fn body(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut m = Message::new("status");
        for (n, v) in fields {
            m.add_str(field_name(n), v);
        }
        let mut out = Vec::new();
        write_body(&mut out, &m);
        out
    }

    #[test]
    fn only_the_counters_may_differ() {
        let a = body(&[
            ("src", "node-b"),
            ("seq", "1f"),
            ("ts", "6b06f0"),
            ("auth", "1 ab"),
        ]);
        let b = body(&[
            ("src", "node-b"),
            ("seq", "20"),
            ("ts", "6b06f1"),
            ("auth", "1 cd"),
        ]);
        assert_eq!(alike(&a, &b), Ok(Some(0x20)));
        let c = body(&[
            ("src", "node-c"),
            ("seq", "20"),
            ("ts", "6b06f1"),
            ("auth", "1 cd"),
        ]);
        assert_eq!(alike(&a, &c), Err(()));
        let d = body(&[("src", "node-b"), ("seq", "20"), ("ts", "6b06f1")]);
        assert_eq!(alike(&a, &d), Err(()), "a field less");
        let e = body(&[
            ("src", "node-b"),
            ("ts", "6b06f1"),
            ("seq", "20"),
            ("auth", "1 cd"),
        ]);
        assert_eq!(alike(&a, &e), Err(()), "another order");
        let f = body(&[
            ("src", "node-b"),
            ("seq", "zz"),
            ("ts", "6b06f1"),
            ("auth", "1 cd"),
        ]);
        assert_eq!(alike(&a, &f), Err(()), "a bad seq");
        assert_eq!(alike(&a, b"###\n3:abc,%%%\n"), Err(()));
        let mut g = b.clone();
        g.truncate(g.len() - 6);
        g.extend_from_slice(END);
        assert_eq!(alike(&a, &g), Err(()), "a cut field");
    }
}
