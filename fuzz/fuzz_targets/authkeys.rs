//! authkeys text, as lossy UTF-8, into the parser: it must never panic,
//! and an accepted file always has a key for `auth N`, which signing
//! relies on (`Keyring::active_method` indexes it).

#![no_main]

use harust::config::authkeys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((keys, _notices)) = authkeys::parse("authkeys", &text) {
        let _ = keys.active_method();
        assert!(keys.sign(b"x").is_some());
    }
});
