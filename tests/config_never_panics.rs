//! The parsers take any input without panicking (a fuzzer will hammer
//! them; this is the cheap version).

use harust::config::{authkeys, hacf, haresources, time};
use proptest::prelude::*;

/// Lines built from real directive names and plausible values, so that
/// the generator reaches the value parsers, not just "unknown directive".
fn hacf_line() -> impl Strategy<Value = String> {
    let names = prop::sample::select(hacf::DIRECTIVES.to_vec());
    let value = prop_oneof![
        Just(String::new()),
        "[0-9]{1,25}(\\.[0-9]{0,12})?(ms|us|s|sec|x)?",
        "(eth0|lo|[a-z]{0,20})",
        "(198\\.18\\.0\\.[0-9]{1,3}|ff12::1|2001:db8::[0-9a-f]{1,4}|239\\.1\\.1\\.1)(%eth0)?",
        "(on|off|yes|no|legacy|respawn|none|any|classic|netstring)",
        any::<String>(),
    ];
    (names, prop::collection::vec(value, 0..6)).prop_map(|(n, vs)| format!("{n} {}", vs.join(" ")))
}

fn haresources_token() -> impl Strategy<Value = String> {
    prop_oneof![
        "(IPaddr|IPaddr2|IPv6addr|ipaddr)::[0-9a-f:./]{0,40}(/[a-z0-9:]{0,20}){0,3}",
        "[A-Za-z0-9_.@:\\\\/-]{0,30}(::[^ \\t\\n]{0,10}){0,3}",
        "\\\\",
        "#[a-z]*",
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn hacf_never_panics_on_any_text(text in any::<String>()) {
        let _ = hacf::parse("ha.cf", &text);
    }

    #[test]
    fn hacf_never_panics_on_directive_lines(lines in prop::collection::vec(hacf_line(), 0..20)) {
        let _ = hacf::parse("ha.cf", &lines.join("\n"));
    }

    #[test]
    fn authkeys_never_panics(text in any::<String>(),
                             lines in prop::collection::vec("(auth )?[0-9]{0,3}( (sha1|md5|crc|x))?( [^\\n]{0,10})*", 0..8)) {
        let _ = authkeys::parse("authkeys", &text);
        let _ = authkeys::parse("authkeys", &lines.join("\n"));
    }

    #[test]
    fn haresources_never_panics(text in any::<String>(),
                                groups in prop::collection::vec(prop::collection::vec(haresources_token(), 0..6), 0..6)) {
        let nodes = vec!["node-a".to_string(), "node-b".to_string()];
        let _ = haresources::parse("haresources", &text, &nodes);
        let lines: Vec<String> = groups.iter().map(|g| format!("node-a {}", g.join(" "))).collect();
        let _ = haresources::parse("haresources", &lines.join("\n"), &nodes);
        let _ = haresources::parse("haresources", &lines.join("\n"), &[]);
    }

    #[test]
    fn time_never_panics(s in any::<String>(), t in "[0-9.]{0,40}(ms|us|s|msec|usec|sec)?") {
        let _ = time::parse_time(&s);
        if let Ok(d) = time::parse_time(&t) {
            prop_assert_eq!(time::parse_time(&time::format(d)), Ok(d));
        }
    }
}
