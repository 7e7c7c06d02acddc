//! heartbeat 3.0.6 wire format: netstring messages with an auth trailer
//! (PROTOCOL.md §1.2–1.3), the classic text format on receive, and replay
//! tracking (§1.6). Pure: no I/O.
//!
//! * Sending: [`encode`] (or [`try_encode`] to refuse what peers would
//!   drop) takes a message without `auth`, adds the inner `auth` field when
//!   heartbeat would, and seals it with the active key's trailer.
//!   [`encode_body`] and [`seal`] are the two halves.
//! * Receiving: [`decode`] checks size, format and authenticator and
//!   returns the fields in wire order, the inner `auth` field included;
//!   each failure is a [`DecodeError`] with a [`DecodeError::kind`] for
//!   counters. [`parse`] does the same without authentication.
//! * Then [`SeqTracker::observe_msg`] per peer says whether the message is
//!   new, a duplicate, a replay, or reveals lost messages.
//!
//! Modules: [`netstring`] and [`classic`] are the two formats, [`auth`] and
//! [`crc`] the authenticators, [`codec`] ties them together, [`replay`]
//! tracks sequence numbers.

pub mod auth;
mod base64;
pub mod classic;
pub mod codec;
pub mod crc;
pub mod netstring;
pub mod replay;

pub use auth::{Authenticator, Keyed, Keyring, Method, Sig};
pub use codec::{
    Format, Parsed, decode, encode, encode_body, encode_classic, encode_into, parse, seal,
    try_encode, verify_inner_auth, with_inner_auth,
};
pub use replay::{SeqTracker, Verdict};

// Limits and errors live here, below the formats, so `classic`,
// `netstring` and `codec` each depend on this module and not on each other.

/// Largest message on the wire (`glue:include/clplumbing/ipc.h MAXMSG`).
pub const MAXMSG: usize = 256 * 1024;

/// Deepest struct nesting accepted. Heartbeat's classic format has
/// separator bytes for 16 levels (`MAXDEPTH`); we apply the same bound to
/// netstring so recursion is bounded whatever the input.
pub const MAX_DEPTH: usize = 16;

/// Why a received datagram was dropped. Each variant is a counter; the
/// fields are for the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram of {len} bytes is larger than MAXMSG ({MAXMSG})")]
    TooLarge { len: usize },
    #[error("datagram truncated")]
    Truncated,
    #[error("not a heartbeat message (starts with neither '###' nor '>>>')")]
    UnknownFormat,
    #[error("malformed message at byte {offset}: {what}")]
    Malformed { offset: usize, what: &'static str },
    #[error("structs nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("classic message without an auth field")]
    MissingAuth,
    #[error("auth key index {0} is not in authkeys")]
    UnknownKeyIndex(u8),
    #[error("authentication failed")]
    BadAuth,
}

impl DecodeError {
    /// A stable short name, for counters and structured logs.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Truncated => "truncated",
            DecodeError::UnknownFormat => "unknown_format",
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::TooDeep => "too_deep",
            DecodeError::MissingAuth => "missing_auth",
            DecodeError::UnknownKeyIndex(_) => "unknown_key_index",
            DecodeError::BadAuth => "bad_auth",
        }
    }
}

/// Why a message cannot be sent as heartbeat would accept it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("encoded message is {len} bytes, larger than MAXMSG ({MAXMSG})")]
    TooLarge { len: usize },
    #[error("field name {0:?} is empty or holds '=', NUL, CR or LF")]
    BadName(String),
    #[error("list field {0:?} is empty or has an empty element")]
    EmptyList(String),
    #[error("structs nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("active auth index {0} has no key")]
    NoActiveKey(u8),
}

/// One field value, typed as heartbeat's `(T)` prefix says (PROTOCOL.md §1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `(0)`: a string; raw bytes, may hold `\n` or `,`.
    Str(Vec<u8>),
    /// `(1)`: raw binary, e.g. `srcuuid`.
    Bin(Vec<u8>),
    /// `(2)`: a nested message, without trailer.
    Struct(Message),
    /// `(3)`: a list of strings.
    List(Vec<Vec<u8>>),
    /// `(4)`: compressed bytes, kept opaque.
    Compressed(Vec<u8>),
}

/// A field name: the names the engine writes are `'static` and cost no
/// allocation; names read from a packet are borrowed from the same list
/// when they are on it (see [`field_name`]).
pub type Name = std::borrow::Cow<'static, str>;

/// An ordered list of fields. Order matters for both authenticators.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub fields: Vec<(Name, Value)>,
}

/// The names heartbeat and harust put in the messages they send most
/// often, so a received beat's names need no allocation.
const KNOWN_NAMES: &[&str] = &[
    "t",
    "st",
    "dt",
    "protocol",
    "src",
    "srcuuid",
    "seq",
    "hg",
    "ts",
    "ttl",
    "auth",
    "dest",
    "ackseq",
    "rsc_hold",
    "rtype",
    "isstable",
    "info",
    "firstseq",
    "lastseq",
    // harust's own (src/engine/proto.rs, src/config/digest.rs).
    "hr_v",
    "hr_held",
    "hr_busy",
    "hr_sb",
    "hr_fail",
    "hr_leave",
    "hr_ping",
    "hr_dead",
    "hr_q",
    "hr_rb",
    "hr_claims",
    "hr_up",
    "hr_cfg",
    "hr_mnt",
    "from_id",
    "to_id",
];

/// `value` in lowercase hex without leading zeros, as heartbeat writes
/// seq, hg, ts and dt.
fn push_hex(out: &mut Vec<u8>, value: u64) {
    let mut buf = [0u8; 16];
    out.extend_from_slice(hex_digits(value, &mut buf));
}

/// `value` as [`push_hex`] writes it, in `buf`.
pub fn hex_digits(value: u64, buf: &mut [u8; 16]) -> &[u8] {
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
    for (k, c) in buf[..digits].iter_mut().enumerate() {
        *c = b"0123456789abcdef"[((value >> (4 * (digits - 1 - k))) & 15) as usize];
    }
    &buf[..digits]
}

/// `n` in decimal, appended without a temporary string.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// The name `raw` as a field name: borrowed from the known names when it is
/// one of them.
pub fn field_name(raw: &str) -> Name {
    match KNOWN_NAMES.iter().find(|k| **k == raw) {
        Some(k) => Name::Borrowed(k),
        None => Name::Owned(raw.to_owned()),
    }
}

impl Message {
    /// A message whose first field is `t=<kind>`, with room for a beat's
    /// fields.
    pub fn new(kind: &str) -> Self {
        let mut m = Message {
            fields: Vec::with_capacity(16),
        };
        m.add_str("t", kind);
        m
    }

    pub fn add_str(&mut self, name: impl Into<Name>, value: &str) -> &mut Self {
        self.fields
            .push((name.into(), Value::Str(value.as_bytes().to_vec())));
        self
    }

    pub fn add_bin(&mut self, name: impl Into<Name>, value: &[u8]) -> &mut Self {
        self.fields.push((name.into(), Value::Bin(value.to_vec())));
        self
    }

    /// Adds a number in decimal (heartbeat's `ttl`, NS_rexmit's seqs).
    pub fn add_dec(&mut self, name: impl Into<Name>, value: u64) -> &mut Self {
        let mut digits = Vec::with_capacity(20);
        push_decimal(&mut digits, value);
        self.fields.push((name.into(), Value::Str(digits)));
        self
    }

    /// Adds a number as lowercase hex, as heartbeat does for seq/hg/ts/dt.
    pub fn add_hex(&mut self, name: impl Into<Name>, value: u64) -> &mut Self {
        let mut hex = Vec::new();
        push_hex(&mut hex, value);
        self.fields.push((name.into(), Value::Str(hex)));
        self
    }

    /// Sets the first field `name` to `value` in lowercase hex, in place
    /// (no allocation once its buffer is long enough). `false` if there
    /// is no such string field.
    pub fn set_hex(&mut self, name: &str, value: u64) -> bool {
        let Some((_, Value::Str(v))) = self.fields.iter_mut().find(|(n, _)| n == name) else {
            return false;
        };
        v.clear();
        push_hex(v, value);
        true
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// A string field as UTF-8, if present and valid.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn get_bin(&self, name: &str) -> Option<&[u8]> {
        match self.get(name)? {
            Value::Bin(b) | Value::Str(b) => Some(b),
            _ => None,
        }
    }

    /// A hex string field (seq, hg, ts, dt, ackseq).
    pub fn get_hex(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get_str(name)?, 16).ok()
    }

    /// A decimal string field (NS_rexmit's firstseq/lastseq).
    pub fn get_dec(&self, name: &str) -> Option<u64> {
        self.get_str(name)?.parse().ok()
    }

    /// The `t` field.
    pub fn kind(&self) -> Option<&str> {
        self.get_str("t")
    }

    /// A copy without any field called `name`, e.g. a received message
    /// without its inner `auth` field.
    pub fn without(&self, name: &str) -> Message {
        Message {
            fields: self
                .fields
                .iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect(),
        }
    }

    /// Removes every field called `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|(n, _)| n != name);
        before - self.fields.len()
    }
}
