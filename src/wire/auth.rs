//! Authentication methods from authkeys (PROTOCOL.md §1.3).

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// One `N method [key]` line of authkeys.
#[derive(Clone, PartialEq, Eq)]
pub enum Method {
    Sha1(Vec<u8>),
    Md5(Vec<u8>),
    Crc,
}

impl std::fmt::Debug for Method {
    // Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Sha1(_) => "sha1",
            Method::Md5(_) => "md5",
            Method::Crc => "crc",
        })
    }
}

/// All keys from authkeys, and the index used for sending (`auth N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    pub active: u8,
    pub keys: BTreeMap<u8, Method>,
}

impl Keyring {
    /// A ring with a single key at index 1; convenient for tests.
    pub fn single(method: Method) -> Self {
        Keyring {
            active: 1,
            keys: BTreeMap::from([(1, method)]),
        }
    }

    pub fn active_method(&self) -> &Method {
        &self.keys[&self.active]
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn hmac_hex<D>(key: &[u8], data: &[u8]) -> String
where
    Hmac<D>: KeyInit + Mac,
    D: hmac::EagerHash,
{
    // HMAC takes keys of any length (longer ones are hashed first, RFC 2104),
    // so this cannot fail; an empty digest would simply never verify.
    match <Hmac<D> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            hex_lower(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

impl Method {
    /// The name used in authkeys (`sha1`, `md5`, `crc`).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Sha1(_) => "sha1",
            Method::Md5(_) => "md5",
            Method::Crc => "crc",
        }
    }

    /// The authenticator of `data` as heartbeat prints it
    /// (`hb:lib/plugins/HBauth/{sha1,md5,crc}.c`, PROTOCOL.md §1.3):
    /// lowercase hex HMAC for sha1/md5, `%lx` for crc.
    pub fn digest_hex(&self, data: &[u8]) -> String {
        match self {
            Method::Sha1(key) => hmac_hex::<sha1::Sha1>(key, data),
            Method::Md5(key) => hmac_hex::<md5::Md5>(key, data),
            Method::Crc => super::crc::crc32_hex(data),
        }
    }

    /// Whether `hex` is the authenticator of `data`, compared in constant
    /// time. The comparison is on the exact text, as heartbeat's `strcmp`:
    /// upper-case hex or a zero-padded crc does not verify.
    pub fn verify(&self, data: &[u8], hex: &[u8]) -> bool {
        let expected = self.digest_hex(data);
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(hex))
    }
}

/// `"N HEX"` on the stack: the longest is a three-digit index, a space and
/// the 40 hex digits of SHA-1.
#[derive(Clone, Copy)]
pub struct Sig {
    buf: [u8; 48],
    len: usize,
}

impl Sig {
    fn new() -> Self {
        Sig {
            buf: [0; 48],
            len: 0,
        }
    }

    fn push(&mut self, c: u8) {
        self.buf[self.len] = c;
        self.len += 1;
    }

    fn push_hex(&mut self, bytes: &[u8]) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        for &b in bytes {
            self.push(DIGITS[usize::from(b >> 4)]);
            self.push(DIGITS[usize::from(b & 15)]);
        }
    }

    /// `%lx`: lowercase, no leading zeros.
    fn push_u32_hex(&mut self, v: u32) {
        let digits = (32 - v.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in (0..digits).rev() {
            self.push(b"0123456789abcdef"[((v >> (4 * i)) & 15) as usize]);
        }
    }

    fn push_index(&mut self, index: u8) {
        if index >= 100 {
            self.push(b'0' + index / 100);
        }
        if index >= 10 {
            self.push(b'0' + index / 10 % 10);
        }
        self.push(b'0' + index % 10);
        self.push(b' ');
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Signing and checking, by key index: a [`Keyring`] keys its MAC afresh
/// every time; a [`Keyed`] ring keeps each keyed state and clones it.
pub trait Authenticator {
    /// `"N HEX"` for `data` with the active key; `None` if the active index
    /// has no key.
    fn sign_sig(&self, data: &[u8]) -> Option<Sig>;

    /// Whether `hex` is the authenticator of `data` with the key of
    /// `index` (constant time); `None` if authkeys has no such index.
    fn check(&self, index: u8, data: &[u8], hex: &[u8]) -> Option<bool>;
}

/// The hex digest of `data`, without the index.
fn digest_sig<M: Mac>(mut mac: M, data: &[u8]) -> Sig {
    mac.update(data);
    let mut sig = Sig::new();
    sig.push_hex(&mac.finalize().into_bytes());
    sig
}

fn verify_sig(expected: Option<Sig>, hex: &[u8]) -> bool {
    expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(hex)))
}

fn method_sig(method: &Method, data: &[u8]) -> Option<Sig> {
    match method {
        Method::Sha1(key) => Hmac::<sha1::Sha1>::new_from_slice(key)
            .ok()
            .map(|m| digest_sig(m, data)),
        Method::Md5(key) => Hmac::<md5::Md5>::new_from_slice(key)
            .ok()
            .map(|m| digest_sig(m, data)),
        Method::Crc => {
            let mut sig = Sig::new();
            sig.push_u32_hex(super::crc::crc32(data));
            Some(sig)
        }
    }
}

fn with_index(index: u8, digest: Sig) -> Sig {
    let mut sig = Sig::new();
    sig.push_index(index);
    for &c in digest.as_bytes() {
        sig.push(c);
    }
    sig
}

impl Authenticator for Keyring {
    fn sign_sig(&self, data: &[u8]) -> Option<Sig> {
        let d = method_sig(self.get(self.active)?, data)?;
        Some(with_index(self.active, d))
    }

    fn check(&self, index: u8, data: &[u8], hex: &[u8]) -> Option<bool> {
        Some(verify_sig(method_sig(self.get(index)?, data), hex))
    }
}

/// One key, with its MAC keyed once.
#[derive(Clone)]
enum KeyedMethod {
    Sha1(Hmac<sha1::Sha1>),
    Md5(Hmac<md5::Md5>),
    Crc,
}

/// A [`Keyring`] with every HMAC keyed once: each packet clones the keyed
/// state instead of hashing the key again. Build it again when the keys
/// change.
#[derive(Clone)]
pub struct Keyed {
    active: u8,
    /// The active key first: a beat finds its key at once (authkeys
    /// rarely holds more than two).
    keys: Vec<(u8, KeyedMethod)>,
}

impl std::fmt::Debug for Keyed {
    // Keys never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyed(active {})", self.active)
    }
}

impl Keyed {
    pub fn new(ring: &Keyring) -> Keyed {
        let mut keys: Vec<(u8, KeyedMethod)> = ring
            .keys
            .iter()
            .filter_map(|(&i, m)| {
                let k = match m {
                    Method::Sha1(key) => KeyedMethod::Sha1(Hmac::new_from_slice(key).ok()?),
                    Method::Md5(key) => KeyedMethod::Md5(Hmac::new_from_slice(key).ok()?),
                    Method::Crc => KeyedMethod::Crc,
                };
                Some((i, k))
            })
            .collect();
        keys.sort_by_key(|(i, _)| *i != ring.active);
        Keyed {
            active: ring.active,
            keys,
        }
    }

    fn method(&self, index: u8) -> Option<&KeyedMethod> {
        self.keys.iter().find(|(i, _)| *i == index).map(|(_, m)| m)
    }

    fn digest(&self, index: u8, data: &[u8]) -> Option<Sig> {
        Some(match self.method(index)? {
            KeyedMethod::Sha1(m) => digest_sig(m.clone(), data),
            KeyedMethod::Md5(m) => digest_sig(m.clone(), data),
            KeyedMethod::Crc => {
                let mut sig = Sig::new();
                sig.push_u32_hex(super::crc::crc32(data));
                sig
            }
        })
    }
}

impl Authenticator for Keyed {
    fn sign_sig(&self, data: &[u8]) -> Option<Sig> {
        Some(with_index(self.active, self.digest(self.active, data)?))
    }

    fn check(&self, index: u8, data: &[u8], hex: &[u8]) -> Option<bool> {
        self.method(index)?;
        Some(verify_sig(self.digest(index, data), hex))
    }
}

impl Keyring {
    /// The method for key index `index`, if authkeys has it.
    pub fn get(&self, index: u8) -> Option<&Method> {
        self.keys.get(&index)
    }

    /// `"N HEX"` for `data` with the active key, the text of both the
    /// trailer and the inner `auth` field. `None` if the active index has
    /// no key (a config error the config module rejects).
    pub fn sign(&self, data: &[u8]) -> Option<String> {
        let method = self.get(self.active)?;
        Some(format!("{} {}", self.active, method.digest_hex(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha1_rfc2202_case_2() {
        let m = Method::Sha1(b"Jefe".to_vec());
        assert_eq!(
            m.digest_hex(b"what do ya want for nothing?"),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn hmac_md5_rfc2104_case_2() {
        let m = Method::Md5(b"Jefe".to_vec());
        assert_eq!(
            m.digest_hex(b"what do ya want for nothing?"),
            "750c783e6ab0b503eaa86e310a5db738"
        );
    }

    #[test]
    fn hmac_sha1_long_key_is_hashed_first() {
        // RFC 2202 case 6: an 80-byte key.
        let m = Method::Sha1(vec![0xaa; 80]);
        assert_eq!(
            m.digest_hex(b"Test Using Larger Than Block-Size Key - Hash Key First"),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn verify_is_exact_text() {
        let m = Method::Sha1(b"k".to_vec());
        let d = m.digest_hex(b"x");
        assert!(m.verify(b"x", d.as_bytes()));
        assert!(!m.verify(b"x", d.to_uppercase().as_bytes()));
        assert!(!m.verify(b"x", &d.as_bytes()[1..]));
        assert!(!m.verify(b"y", d.as_bytes()));
    }

    #[test]
    fn sign_uses_active_index() {
        let mut ring = Keyring::single(Method::Crc);
        ring.keys.insert(3, Method::Md5(b"Hello!".to_vec()));
        ring.active = 3;
        let s = ring.sign(b"abc").unwrap();
        assert!(s.starts_with("3 "));
        assert_eq!(s.len(), 2 + 32);
        ring.active = 7;
        assert_eq!(ring.sign(b"abc"), None);
    }

    #[test]
    fn keyed_and_stack_signatures_match_the_plain_ones() {
        for method in [
            Method::Sha1(b"k".to_vec()),
            Method::Md5(vec![7; 100]),
            Method::Crc,
        ] {
            let mut ring = Keyring::single(method);
            ring.keys.insert(12, Method::Crc);
            let keyed = Keyed::new(&ring);
            for data in [&b""[..], b"abc", &[0x5a; 300]] {
                let plain = ring.sign(data).unwrap();
                assert_eq!(ring.sign_sig(data).unwrap().as_bytes(), plain.as_bytes());
                assert_eq!(keyed.sign_sig(data).unwrap().as_bytes(), plain.as_bytes());
                let hex = plain.split_once(' ').unwrap().1.as_bytes();
                assert_eq!(keyed.check(1, data, hex), Some(true));
                assert_eq!(keyed.check(1, b"other", hex), Some(false));
                assert_eq!(keyed.check(2, data, hex), None);
            }
            ring.active = 12;
            assert_eq!(
                Keyed::new(&ring).sign_sig(b"x").unwrap().as_bytes(),
                ring.sign(b"x").unwrap().as_bytes()
            );
        }
    }

    #[test]
    fn debug_never_shows_key() {
        let m = Method::Sha1(b"labsecret".to_vec());
        assert!(!format!("{m:?}").contains("labsecret"));
    }
}
