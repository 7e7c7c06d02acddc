//! haresources text, as lossy UTF-8, into the parser, with the node list
//! a config would give it (and with none, as when ha.cf lists no nodes):
//! it must never panic, and each accepted group names a listed node.

#![no_main]

use harust::config::haresources;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let nodes = vec!["node-a".to_string(), "node-b".to_string()];
    if let Ok((groups, _notices)) = haresources::parse("haresources", &text, &nodes) {
        for g in &groups {
            assert!(nodes.contains(&g.node), "{g:?}");
            assert!(!g.resources.is_empty(), "{g:?}");
        }
    }
    let _ = haresources::parse("haresources", &text, &[]);
});
