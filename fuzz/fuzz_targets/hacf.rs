//! ha.cf text, as lossy UTF-8, into the parser: it must never panic, and
//! what it accepts must be consistent with itself.

#![no_main]

use harust::config::hacf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok((ha, _notices)) = hacf::parse("ha.cf", &text) {
        // heartbeat's init_config rules, which the engine's timers rely on.
        // warntime >= deadtime is accepted with a warning, as heartbeat does.
        let t = ha.timings;
        assert!(!t.keepalive.is_zero(), "{t:?}");
        assert!(
            t.keepalive.checked_mul(2).is_some_and(|k2| k2 < t.deadtime),
            "{t:?}"
        );
        assert!(!t.warntime.is_zero(), "{t:?}");
        assert!(t.initdead >= t.deadtime, "{t:?}");
    }
});
