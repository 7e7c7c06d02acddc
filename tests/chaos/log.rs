//! Reading a daemon's stderr log (`LEVEL harust: message HARUST_EVENT=...
//! HARUST_NODE=...`, one engine event per line) to cross-check what the
//! daemon reports over D-Bus.

/// One engine event, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    /// `HARUST_EVENT`: `acquired`, `peer-dead`, ...
    pub name: String,
    /// The human message, e.g. `took over group G from node-a`.
    pub message: String,
    /// `HARUST_NODE`, if the event names a node.
    pub node: Option<String>,
}

/// The part of a support::daemon log written by the daemon's current
/// start (the counters and transitions are per process).
pub fn current_start(log: &str) -> &str {
    match log.rfind("==== test: start #") {
        Some(i) => &log[i..],
        None => log,
    }
}

fn field<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    let at = rest.find(&format!(" {key}="))? + key.len() + 2;
    let value = &rest[at..];
    Some(match value.find(" HARUST_") {
        Some(end) => &value[..end],
        None => value,
    })
}

/// The engine events in `log`, in order. Only the engine's own lines
/// (target `harust`) count: an adapter's error line may carry a
/// `HARUST_EVENT` too, but is no engine event.
pub fn events(log: &str) -> Vec<Logged> {
    log.lines()
        .filter_map(|line| {
            let (_level, rest) = line.split_once(' ')?;
            let rest = rest.strip_prefix("harust: ")?;
            let at = rest.find(" HARUST_EVENT=")?;
            let message = rest[..at].to_owned();
            let fields = &rest[at..];
            Some(Logged {
                name: field(fields, "HARUST_EVENT")?.to_owned(),
                message,
                node: field(fields, "HARUST_NODE").map(str::to_owned),
            })
        })
        .collect()
}

/// Whether the event is one of the daemon's `Transitions` (everything
/// but the per-beat and per-link noise; runtime.rs `log_event`).
pub fn is_transition(e: &Logged) -> bool {
    !matches!(e.name.as_str(), "late-heartbeat" | "link-up" | "link-down")
}

/// Whether the event changes who holds what or who is alive: what a
/// settled cluster no longer logs.
pub fn is_change(e: &Logged) -> bool {
    matches!(
        e.name.as_str(),
        "peer-up"
            | "peer-dead"
            | "peer-restarted"
            | "acquiring"
            | "acquired"
            | "releasing"
            | "released"
            | "split-brain-resolved"
            | "resource-failed"
            | "group-failed"
            | "comm-up"
    )
}

/// What the counters must say, derived from the log alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    /// `took over group G from N` while N was not up (engine `acquired`:
    /// the counter counts a takeover from a peer that is not live).
    pub failovers: u64,
    /// `split brain on group ... resolved` lines: both places the engine
    /// counts one also log one.
    pub split_brains: u64,
    /// Every `took over` line, live peer or not (failback included).
    pub took_over: u64,
}

/// Replays the log's peer events (a peer is up from `node X is up` until
/// `node X is dead` / `stopped gracefully`; unknown peers are not up) and
/// counts takeovers from peers that were not up.
pub fn expected(events: &[Logged]) -> Expected {
    use std::collections::BTreeSet;
    let mut up: BTreeSet<String> = BTreeSet::new();
    let mut e = Expected::default();
    for ev in events {
        match ev.name.as_str() {
            "peer-up" => {
                if let Some(n) = &ev.node {
                    up.insert(n.clone());
                }
            }
            "peer-dead" => {
                if let Some(n) = &ev.node {
                    up.remove(n);
                }
            }
            "split-brain-resolved" => e.split_brains += 1,
            "acquired" => {
                if let Some((_, from)) = ev.message.rsplit_once(" from ") {
                    e.took_over += 1;
                    if !up.contains(from) {
                        e.failovers += 1;
                    }
                }
            }
            _ => {}
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
==== test: start #1 of node-b ====
NOTICE harust: node node-a is up HARUST_EVENT=peer-up HARUST_NODE=node-a
WARN harust: link ucast eth0 198.18.1.112 to node-a is down HARUST_EVENT=link-down HARUST_NODE=node-a HARUST_LINK=ucast eth0 198.18.1.112
WARN harust: node node-a is dead HARUST_EVENT=peer-dead HARUST_NODE=node-a
INFO harust: acquiring group g HARUST_EVENT=acquiring HARUST_GROUP=g
NOTICE harust: took over group g from node-a HARUST_EVENT=acquired HARUST_GROUP=g
ERROR harust::runtime: start x failed: y HARUST_EVENT=resource-failed HARUST_GROUP=g
NOTICE harust: node node-a is up HARUST_EVENT=peer-up HARUST_NODE=node-a
NOTICE harust: took over group h from node-a HARUST_EVENT=acquired HARUST_GROUP=h
WARN harust: split brain on group g resolved: node-b keeps it HARUST_EVENT=split-brain-resolved HARUST_GROUP=g
";

    #[test]
    fn log_events_and_counts() {
        let ev = events(current_start(LOG));
        assert_eq!(ev.len(), 8, "{ev:#?}");
        assert_eq!(ev[1].node.as_deref(), Some("node-a"));
        assert_eq!(ev[1].name, "link-down");
        assert_eq!(ev.iter().filter(|e| is_transition(e)).count(), 7);
        let e = expected(&ev);
        assert_eq!(
            e,
            Expected {
                failovers: 1,
                split_brains: 1,
                took_over: 2
            }
        );
    }

    #[test]
    fn current_start_is_the_last_section() {
        let two = format!(
            "{LOG}==== test: start #2 of node-b ====\nINFO harust: x HARUST_EVENT=comm-up\n"
        );
        assert_eq!(events(current_start(&two)).len(), 1);
    }
}
