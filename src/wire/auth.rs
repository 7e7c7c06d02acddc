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
    fn debug_never_shows_key() {
        let m = Method::Sha1(b"labsecret".to_vec());
        assert!(!format!("{m:?}").contains("labsecret"));
    }
}
