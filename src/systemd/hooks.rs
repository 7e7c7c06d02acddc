//! Ordered event hooks: for each group transition and cluster event, an
//! instance of the administrator's template `harust-event@.service`, if one
//! is installed.
//!
//! ```text
//!  runtime ──Hook (try_send, never waits)──▶ queue ──▶ hook task: one at a time
//!                                                      exists? ─▶ StartUnit ─▶ JobRemoved
//! ```
//!
//! The instance names the event and its subject, systemd-escaped:
//! `harust-event@acquired:IPaddr2::198.18.1.100-24-eth0.service`, which a
//! unit reads unescaped as `%I` (`acquired:IPaddr2::198.18.1.100/24/eth0`).
//! Hooks run strictly in order: the next starts once systemd reports the
//! previous job's result, so a `Type=oneshot` hook has finished. They run
//! on their own task, so the heartbeat and every takeover go on meanwhile.
//! A failed hook is logged (`HARUST_EVENT=hook-failed`) and not retried.

use std::time::Duration;

use log::{debug, error, info, warn};
use tokio::sync::mpsc;

use super::units::Units;
use crate::config::unit::systemd_escape;
use crate::engine::Event;

/// The template an administrator installs to receive events.
pub const TEMPLATE: &str = "harust-event@.service";
/// Events waiting for their hook; beyond this (hooks far slower than the
/// events) new ones are dropped, with a warning, rather than held forever.
const QUEUE: usize = 256;
/// How long one hook may run before the queue moves on (systemd's default
/// start timeout for a oneshot is infinity).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

/// One event for the hook: its name (as in `HARUST_EVENT=`) and subject
/// (the group, or the peer node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub event: &'static str,
    pub subject: String,
}

impl Hook {
    /// The hook `e` runs, if it runs one: group transitions (acquiring,
    /// acquired, releasing, released, group-failed) and cluster events
    /// (peer-up, peer-dead, split-brain-resolved, quorum-lost,
    /// quorum-regained, maintenance-on, maintenance-off, fenced,
    /// fence-failed, fence-needed).
    pub fn for_event(e: &Event) -> Option<Hook> {
        let subject = match e {
            Event::Acquiring { group }
            | Event::Acquired { group, .. }
            | Event::Releasing { group, .. }
            | Event::Released { group }
            | Event::GroupFailed { group }
            | Event::SplitBrainResolved { group, .. } => group.clone(),
            Event::PeerUp { node } | Event::PeerDead { node, .. } => node.clone(),
            // The voters this node sees, of all.
            Event::QuorumLost { seen, voters } | Event::QuorumRegained { seen, voters } => {
                format!("{seen}/{voters}")
            }
            // The node whose operator changed the mode.
            Event::MaintenanceOn { by } | Event::MaintenanceOff { by } => by.clone(),
            // The node being fenced.
            Event::Fenced { node, .. }
            | Event::FenceFailed { node, .. }
            | Event::FenceNeeded { node } => node.clone(),
            _ => return None,
        };
        Some(Hook {
            event: e.name(),
            subject,
        })
    }

    /// `harust-event@EVENT:SUBJECT.service`, escaped as systemd-escape does.
    pub fn unit(&self) -> String {
        let instance = systemd_escape(&format!("{}:{}", self.event, self.subject));
        format!("harust-event@{instance}.service")
    }
}

/// The runtime's end of the hook queue.
pub struct Hooks {
    tx: mpsc::Sender<Hook>,
    task: tokio::task::JoinHandle<()>,
}

impl Hooks {
    /// Starts the hook task; it reaches systemd's manager at `systemd_bus`
    /// (the system bus if `None`) when the first event comes.
    pub fn spawn(systemd_bus: Option<String>) -> Hooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(rx, systemd_bus));
        Hooks { tx, task }
    }

    /// At exit, once every group is released: lets the queued hooks (the
    /// last `released` ones) run, for at most `limit`.
    pub async fn finish(self, limit: Duration) {
        drop(self.tx);
        let mut task = self.task;
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            warn!("event hooks still running after {limit:?}: not waiting for them");
            task.abort();
        }
    }

    /// Queues the hook for `e`, if any. Never waits.
    pub fn push(&self, e: &Event) {
        let Some(hook) = Hook::for_event(e) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(h)) = self.tx.try_send(hook) {
            warn!(harust_event = "hook-failed";
                "event hooks are {QUEUE} events behind: not running {} for {}", h.unit(), h.event);
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Hook>, systemd_bus: Option<String>) {
    let mut units: Option<Units> = None;
    let mut unreachable_said = false;
    while let Some(hook) = rx.recv().await {
        if units.is_none() {
            match Units::connect(systemd_bus.as_deref()).await {
                Ok(u) => units = Some(u.with_job_timeout(HOOK_TIMEOUT)),
                Err(e) => {
                    if !unreachable_said {
                        info!(
                            "event hooks ({TEMPLATE}) are off while systemd's manager cannot be reached: {e}"
                        );
                        unreachable_said = true;
                    }
                    continue;
                }
            }
        }
        let Some(u) = &units else { continue };
        let unit = hook.unit();
        match u.exists(&unit).await {
            Ok(true) => {}
            Ok(false) => {
                debug!("no {TEMPLATE} installed: no hook for {}", hook.event);
                continue;
            }
            Err(e) => {
                warn!(harust_event = "hook-failed", harust_unit = unit.as_str();
                    "cannot look up the hook {unit}: {e}");
                // Reconnect on the next event (the manager may have gone).
                units = None;
                continue;
            }
        }
        match u.start(&unit).await {
            Ok(()) => info!(harust_event = "hook-done", harust_unit = unit.as_str();
                "hook {unit} for {} of {} done", hook.event, hook.subject),
            Err(e) => error!(harust_event = "hook-failed", harust_unit = unit.as_str();
                "hook {unit} for {} of {} failed (not retried): {e}", hook.event, hook.subject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_cluster_events_have_hooks_others_not() {
        let g = "IPaddr2::198.18.1.100/24/eth0".to_string();
        let h = Hook::for_event(&Event::Acquired {
            group: g.clone(),
            takeover_from: None,
        })
        .unwrap();
        assert_eq!(h.event, "acquired");
        assert_eq!(
            h.unit(),
            "harust-event@acquired:IPaddr2::198.18.1.100-24-eth0.service"
        );
        let h = Hook::for_event(&Event::PeerDead {
            node: "node-b".into(),
            graceful: false,
        })
        .unwrap();
        assert_eq!(h.unit(), "harust-event@peer\\x2ddead:node\\x2db.service");
        let h = Hook::for_event(&Event::QuorumLost { seen: 1, voters: 3 }).unwrap();
        assert_eq!(h.unit(), "harust-event@quorum\\x2dlost:1-3.service");
        let h = Hook::for_event(&Event::MaintenanceOn {
            by: "node-a".into(),
        })
        .unwrap();
        assert_eq!(h.event, "maintenance-on");
        assert!(Hook::for_event(&Event::CommUp).is_none());
        assert!(
            Hook::for_event(&Event::LateHeartbeat {
                node: "node-b".into(),
                interval: Duration::from_millis(5),
            })
            .is_none()
        );
    }
}
