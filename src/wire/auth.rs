//! Authentication methods from authkeys (PROTOCOL.md §1.3).

use std::collections::BTreeMap;

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
