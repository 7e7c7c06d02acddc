//! Logging: engine events as journal entries with structured fields and
//! meaningful priorities, resource results, and a limiter for lines a peer
//! or a forged packet could repeat without end.

use std::collections::HashMap;
use std::time::Duration;

use log::{debug, error};
use tokio::time::Instant;

use crate::engine::{Event, Op};

/// Distinct log-limiter keys remembered at most.
const RATE_LIMIT_KEYS: usize = 1024;

/// A log line limiter: at most one line per key per interval, with a count
/// of what was suppressed.
pub struct RateLimit {
    interval: Duration,
    last: HashMap<String, (Instant, u64)>,
}

impl RateLimit {
    pub fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` if a line may be logged now.
    pub fn allow(&mut self, key: &str) -> Option<u64> {
        let now = Instant::now();
        match self.last.get_mut(key) {
            Some((t, n)) if now.duration_since(*t) < self.interval => {
                *n += 1;
                None
            }
            Some((t, n)) => {
                let s = *n;
                *t = now;
                *n = 0;
                Some(s)
            }
            None => {
                // Forged packets from many spoofed sources must not grow
                // this without bound: forget quiet keys first.
                if self.last.len() >= RATE_LIMIT_KEYS {
                    let interval = self.interval;
                    self.last
                        .retain(|_, (t, _)| now.duration_since(*t) < interval);
                    if self.last.len() >= RATE_LIMIT_KEYS {
                        return None;
                    }
                }
                self.last.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Logs a resource action's result.
pub fn report(gkey: &str, what: &str, op: Op, result: &Result<(), String>) {
    match result {
        Ok(()) => debug!("{op} {what} ({gkey}): done"),
        Err(e) => {
            error!(harust_event = "resource-failed", harust_group = gkey, harust_resource = what;
                "{op} {what} failed: {e}")
        }
    }
}

/// An error with its causes, `outer: inner: root`, so the log names the
/// root cause (e.g. the errno from netlink), not just the operation.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Logs `text` with structured fields (only those that apply).
pub fn emit(level: log::Level, fields: &[(&str, String)], text: &str) {
    if level > log::max_level() {
        return;
    }
    let kvs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let kvs: &[(&str, &str)] = &kvs;
    log::logger().log(
        &log::Record::builder()
            .level(level)
            .target("harust")
            .args(format_args!("{text}"))
            .key_values(&kvs)
            .build(),
    );
}

/// An engine event as one journal entry: its fields and priority.
pub struct Entry {
    pub name: &'static str,
    pub level: log::Level,
    pub fields: Vec<(&'static str, String)>,
}

impl Entry {
    /// The entry for `e`; `link_name` and `resource_name` name a link and
    /// a group's resource for the structured fields.
    pub fn of(
        e: &Event,
        link_name: impl Fn(usize) -> String,
        resource_name: impl Fn(&str, usize) -> Option<String>,
    ) -> Entry {
        let name = e.name();
        let mut fields: Vec<(&'static str, String)> = vec![("harust_event", name.to_string())];
        match e {
            Event::PeerUp { node }
            | Event::PeerRestarted { node }
            | Event::PeerDead { node, .. }
            | Event::LateHeartbeat { node, .. } => fields.push(("harust_node", node.clone())),
            Event::LinkUp { node, link } | Event::LinkDown { node, link } => {
                fields.push(("harust_node", node.clone()));
                fields.push(("harust_link", link_name(*link)));
            }
            Event::Acquiring { group }
            | Event::Acquired { group, .. }
            | Event::Releasing { group, .. }
            | Event::Released { group }
            | Event::ResourceRepaired { group, .. }
            | Event::GroupFailed { group }
            | Event::Adopted { group }
            | Event::SplitBrainResolved { group, .. } => {
                fields.push(("harust_group", group.clone()))
            }
            Event::ResourceFailed {
                group, resource, ..
            } => {
                fields.push(("harust_group", group.clone()));
                if let Some(r) = resource_name(group, *resource) {
                    fields.push(("harust_resource", r));
                }
            }
            Event::Dropped { node: Some(n), .. } => fields.push(("harust_node", n.clone())),
            Event::MaintenanceOn { by } | Event::MaintenanceOff { by } => {
                fields.push(("harust_node", by.clone()))
            }
            Event::Fencing { node, .. }
            | Event::Fenced { node, .. }
            | Event::FenceFailed { node, .. }
            | Event::FenceNeeded { node } => fields.push(("harust_node", node.clone())),
            _ => {}
        }
        // Priorities mean something: a takeover is NOTICE, a death WARNING,
        // a resource failure ERR.
        let (level, notice) = match e {
            Event::Acquired { .. }
            | Event::Released { .. }
            | Event::StandbyRequested { .. }
            | Event::TakeoverRequested { .. }
            | Event::PeerUp { .. }
            | Event::QuorumRegained { .. }
            | Event::MaintenanceOn { .. }
            | Event::MaintenanceOff { .. }
            | Event::Adopted { .. }
            | Event::CommUp => (log::Level::Info, true),
            Event::PeerDead { .. }
            | Event::LateHeartbeat { .. }
            | Event::LinkDown { .. }
            | Event::SplitBrainResolved { .. }
            | Event::PeerRestarted { .. }
            | Event::PingDown { .. }
            | Event::QuorumLost { .. }
            | Event::Dropped { .. } => (log::Level::Warn, false),
            Event::ResourceFailed { .. }
            | Event::GroupFailed { .. }
            | Event::FenceFailed { .. }
            | Event::FenceNeeded { .. } => (log::Level::Error, false),
            Event::Fenced { .. } => (log::Level::Info, true),
            Event::Fencing { .. } => (log::Level::Warn, false),
            _ => (log::Level::Info, false),
        };
        if notice {
            fields.push((crate::systemd::journal::PRIORITY_KEY, "notice".to_string()));
        }
        Entry {
            name,
            level,
            fields,
        }
    }

    /// Logs `text` with this entry's fields and priority.
    pub fn log(&self, text: &str) {
        emit(self.level, &self.fields, text);
    }
}
