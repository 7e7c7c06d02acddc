//! heartbeat's `crc` auth method (PROTOCOL.md §1.3, `hb:lib/plugins/HBauth/crc.c`).
//!
//! CRC-32 with polynomial 0x04C11DB7, MSB-first, initial value 0, no
//! reflection, final xor 0xFFFFFFFF. This is CRC-32/CKSUM (POSIX `cksum`)
//! *without* the length suffix that `cksum` appends.

const POLY: u32 = 0x04C1_1DB7;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ POLY
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The checksum of `data`, as heartbeat computes it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc = (crc << 8) ^ TABLE[(((crc >> 24) as u8) ^ b) as usize];
    }
    !crc
}

/// The checksum as heartbeat prints it: `%lx`, lowercase, no leading zeros.
pub fn crc32_hex(data: &[u8]) -> String {
    format!("{:x}", crc32(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_is_all_ones() {
        // init 0, nothing shifted in, then xorout.
        assert_eq!(crc32(b""), 0xFFFF_FFFF);
    }

    #[test]
    fn catalogue_check_value() {
        // The CRC catalogue's check value for CRC-32/CKSUM over "123456789"
        // (the catalogue's algorithm has no length suffix; `cksum(1)` adds one).
        assert_eq!(crc32(b"123456789"), 0x765E_7680);
    }

    #[test]
    fn hex_has_no_leading_zeros() {
        // Find an input whose CRC has a leading zero nibble and check the text.
        let mut n = 0u32;
        loop {
            let data = n.to_le_bytes();
            let c = crc32(&data);
            if c < 0x1000_0000 {
                let hex = crc32_hex(&data);
                assert!(!hex.starts_with('0'));
                assert_eq!(u32::from_str_radix(&hex, 16).unwrap(), c);
                break;
            }
            n += 1;
        }
    }
}
