//! `authkeys` (authkeys(5), `hb:heartbeat/auth.c parse_authfile`):
//!
//! ```text
//! auth N            # the key used to sign outgoing packets
//! N sha1 SECRET     # N from 1 to 15, unique
//! N md5 SECRET
//! N crc             # no secret; insecure
//! ```
//!
//! heartbeat reads each line with `sscanf("%d%s%s")`, so a secret is one
//! whitespace-free word: with more words, heartbeat signs with the first
//! one. harust does the same, so both sides of a mixed cluster agree, and
//! warns. Key indexes run from 0 to 15 (`MAXAUTH` is 16 in
//! `hb:heartbeat/auth.c`; authkeys(5) says 1 to 15, but heartbeat runs
//! `auth 0`).
//!
//! The file must not be readable by group or others and must be owned by
//! root. That check is separate ([`check_permissions`],
//! [`check_file_permissions`]) so that [`parse`] works on plain text.

use std::collections::BTreeMap;
use std::path::Path;

use super::diag::{Diagnostic, Diagnostics, Sink, did_you_mean, finish, quote};
use crate::wire::{Keyring, Method};

const METHODS: &[&str] = &["sha1", "md5", "crc"];

/// Parses authkeys text. `path` is used only in messages.
pub fn parse(path: &str, text: &str) -> Result<(Keyring, Vec<Diagnostic>), Diagnostics> {
    let mut d = Sink::new(path);
    let mut keys: BTreeMap<u8, (Method, usize)> = BTreeMap::new();
    let mut active: Option<(u8, usize)> = None;
    // Indices that appeared on a line with an error, so that `auth N`
    // does not also report them as missing.
    let mut broken: Vec<u8> = Vec::new();

    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let words: Vec<&str> = content.split_whitespace().collect();
        let Some(&first) = words.first() else {
            continue;
        };
        if first == "auth" {
            let [_, n] = words[..] else {
                d.error(line, "auth: expected one key index (auth 1)");
                continue;
            };
            match parse_index(n) {
                Some(n) => {
                    if let Some((_, prev)) = active {
                        d.error(line, format!("auth is given twice (first on line {prev})"));
                    } else {
                        active = Some((n, line));
                    }
                }
                None => d.error(
                    line,
                    format!("auth: {} is not a key index (0 to 15)", quote(n)),
                ),
            }
            continue;
        }
        let Some(n) = parse_index(first) else {
            let hint = did_you_mean(first, ["auth"]);
            d.error(
                line,
                format!(
                    "expected \"auth N\" or \"N METHOD [KEY]\" with N from 0 to 15, not {}{hint}",
                    quote(first)
                ),
            );
            continue;
        };
        let Some(&method) = words.get(1) else {
            d.error(line, format!("key {n}: missing method (sha1, md5 or crc)"));
            broken.push(n);
            continue;
        };
        let key = words.get(2).copied();
        if words.len() > 3 && method != "crc" {
            d.warning(
                line,
                format!(
                    "key {n}: the key has spaces; as heartbeat does, only its first word {} is \
                     used (write the key as one word)",
                    quote(key.unwrap_or_default())
                ),
            );
        }
        let m = match (method, key) {
            ("sha1", Some(k)) => Method::Sha1(k.as_bytes().to_vec()),
            ("md5", Some(k)) => Method::Md5(k.as_bytes().to_vec()),
            ("sha1" | "md5", None) => {
                d.error(
                    line,
                    format!("key {n}: {method} needs a key ({n} {method} SECRET)"),
                );
                broken.push(n);
                continue;
            }
            ("crc", k) => {
                if k.is_some() {
                    d.warning(
                        line,
                        format!("key {n}: crc takes no key; the key is ignored"),
                    );
                }
                Method::Crc
            }
            _ => {
                d.error(
                    line,
                    format!(
                        "key {n}: unknown method {} (use sha1, md5 or crc){}",
                        quote(method),
                        did_you_mean(method, METHODS.iter().copied())
                    ),
                );
                broken.push(n);
                continue;
            }
        };
        if let Some((_, prev)) = keys.get(&n) {
            d.error(
                line,
                format!("key {n} is defined twice (first on line {prev})"),
            );
            continue;
        }
        keys.insert(n, (m, line));
    }

    let keyring = match active {
        None => {
            d.error_at(
                None,
                "no \"auth N\" line: say which key signs outgoing packets",
            );
            None
        }
        Some((n, line)) => match keys.get(&n) {
            Some((m, _)) => {
                if *m == Method::Crc {
                    d.warning(
                        line,
                        "auth uses crc, which does not authenticate anything; use sha1 with a secret",
                    );
                }
                Some(Keyring {
                    active: n,
                    keys: keys.iter().map(|(k, (m, _))| (*k, m.clone())).collect(),
                })
            }
            None if broken.contains(&n) => None,
            None => {
                d.error(line, format!("auth {n}: there is no key {n} in this file"));
                None
            }
        },
    };
    finish(keyring, d.list)
}

/// heartbeat's `auth N` index: 0 to 15 (`MAXAUTH` is 16).
fn parse_index(s: &str) -> Option<u8> {
    if s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = s.parse().ok()?;
    (0..=15).contains(&n).then_some(n)
}

/// The error if `mode`/`uid` are not safe for an authkeys file: no group
/// or other permission bits, and owned by `owner` (root, 0, for the
/// daemon; tests that cannot chown pass their own uid).
pub fn check_permissions(path: &str, mode: u32, uid: u32, owner: u32) -> Option<Diagnostic> {
    let who = if owner == 0 {
        "root".to_string()
    } else {
        format!("uid {owner}")
    };
    let mut d = Sink::new(path);
    let perm = mode & 0o7777;
    if perm & 0o077 != 0 {
        d.error_at(
            None,
            format!(
                "mode {perm:04o} is too open; it must be 0600 and owned by {who} (chmod 600 {path})"
            ),
        );
    } else if uid != owner {
        let chown = if owner == 0 {
            "root:".to_string()
        } else {
            owner.to_string()
        };
        d.error_at(
            None,
            format!(
                "owned by uid {uid}; it must be owned by {who} with mode 0600 (chown {chown} {path})"
            ),
        );
    }
    d.list.pop()
}

/// Reads the file's mode and owner and applies [`check_permissions`].
pub fn check_file_permissions(path: &Path, owner: u32) -> Option<Diagnostic> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display().to_string();
    match std::fs::metadata(path) {
        Ok(m) => check_permissions(&shown, m.mode(), m.uid(), owner),
        Err(e) => Some(Diagnostic {
            path: shown,
            line: None,
            severity: super::diag::Severity::Error,
            message: format!("cannot read: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_authkeys() {
        let (k, notes) = parse("authkeys", "auth 2\n2 sha1 HI!\n").unwrap();
        assert_eq!(k.active, 2);
        assert_eq!(k.keys[&2], Method::Sha1(b"HI!".to_vec()));
        assert!(notes.is_empty());
    }

    #[test]
    fn permission_messages() {
        let e = check_permissions("/etc/harust/authkeys", 0o100644, 0, 0).unwrap();
        assert_eq!(
            e.to_string(),
            "/etc/harust/authkeys: mode 0644 is too open; it must be 0600 and owned by root \
             (chmod 600 /etc/harust/authkeys)"
        );
        assert!(check_permissions("a", 0o100600, 0, 0).is_none());
        assert!(check_permissions("a", 0o100400, 0, 0).is_none());
        assert!(check_permissions("a", 0o100600, 1000, 1000).is_none());
        let e = check_permissions("a", 0o100600, 1000, 0).unwrap();
        assert_eq!(
            e.to_string(),
            "a: owned by uid 1000; it must be owned by root with mode 0600 (chown root: a)"
        );
    }
}
