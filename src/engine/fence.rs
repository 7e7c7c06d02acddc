//! Fencing (docs/SAFETY.md, "Fencing").
//!
//! A peer that goes silent without handing over (declared dead, or never
//! heard by the end of initdead) and for which ha.cf configures a fence
//! device must be fenced before anything is taken: until then it may still
//! hold any group. Every survivor that may run a device for it does so
//! (a second power-off of a node that is off changes nothing); a survivor
//! that has none waits for an operator's `fence-confirm`. A failed fence
//! is retried with a doubling backoff and never counts as a success.
//! Hearing the peer again cancels whatever was pending.

use std::time::Duration;

use super::{Engine, Event, NodeId, Output, Time};
use crate::config::Config;

/// The first retry of a failed fence, doubled each time up to
/// [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_secs(5);
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// With quorum off, how long a node other than the first `node` line
/// waits before it fences. In a split of two nodes that may fence each
/// other, both declare the other dead at about the same time; the first
/// node's fence then lands first and the other never fires, instead of
/// each powering the other off. A fence agent that needs longer than this
/// to power a node off loses the guarantee.
pub const DELAY_OTHERS: Duration = Duration::from_secs(5);

/// Where the fencing of one peer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing to do: alive, stopped gracefully, or no device for it.
    Clear,
    /// Silent: to be fenced at `at`; `failed` attempts so far.
    Due { failed: u32, at: Time },
    /// The fence unit runs.
    Running { failed: u32 },
    /// Fenced, or confirmed by an operator: its groups may be taken.
    Done,
}

#[derive(Debug, Clone)]
pub(super) struct Fencing {
    /// Per node: some node may fence it.
    needed: Vec<bool>,
    /// Per node: this node has a device for it.
    can: Vec<bool>,
    state: Vec<State>,
}

/// The wait after the `failed`-th failure in a row.
fn backoff(failed: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(1u32 << failed.saturating_sub(1).min(16))
        .min(RETRY_MAX)
}

impl Fencing {
    pub fn new(cfg: &Config) -> Fencing {
        let ha = &cfg.ha;
        let local = cfg.local_node.as_str();
        Fencing {
            needed: ha
                .nodes
                .iter()
                .map(|n| n != local && ha.fencing_for(n))
                .collect(),
            can: ha
                .nodes
                .iter()
                .map(|n| ha.fences_from(local, n).next().is_some())
                .collect(),
            state: vec![State::Clear; ha.nodes.len()],
        }
    }

    /// Whether any peer is fenced when it dies (this also turns the
    /// release wait on).
    pub fn enabled(&self) -> bool {
        self.needed.contains(&true)
    }

    /// Whether anything must wait for a fence: a silent peer not fenced.
    pub fn blocks(&self) -> bool {
        self.state
            .iter()
            .any(|s| matches!(s, State::Due { .. } | State::Running { .. }))
    }

    /// The next retry this node runs itself.
    pub fn next_deadline(&self, now: Time) -> Option<Time> {
        (0..self.state.len())
            .filter_map(|n| match self.state[n] {
                State::Due { at, .. } if self.can[n] && at > now => Some(at),
                _ => None,
            })
            .min()
    }

    /// For status: `running`, `retrying`, `waiting-confirm`, `fenced`.
    pub fn describe(&self, n: NodeId) -> Option<&'static str> {
        match self.state[n] {
            State::Clear => None,
            State::Due { .. } if !self.can[n] => Some("waiting-confirm"),
            State::Due { failed: 0, .. } => Some("pending"),
            State::Due { .. } => Some("retrying"),
            State::Running { .. } => Some("running"),
            State::Done => Some("fenced"),
        }
    }
}

impl Engine {
    /// Peer `n` went silent without handing over.
    pub(super) fn fence_on_silence(&mut self, n: NodeId) {
        if !self.fencing.needed[n] {
            return;
        }
        // With quorum on only the majority (or the first node's half)
        // fences, so nobody needs to wait.
        let delay = if !self.quorum.enabled && self.me != 0 {
            DELAY_OTHERS
        } else {
            Duration::ZERO
        };
        self.fencing.state[n] = State::Due {
            failed: 0,
            at: self.now + delay,
        };
        self.changes += 1;
        if !self.fencing.can[n] {
            let node = self.nodes[n].clone();
            self.event(Event::FenceNeeded { node });
        }
    }

    /// Peer `n` is heard again, or stopped gracefully: nothing to fence.
    /// A fence still running is not stopped; its result is ignored.
    pub(super) fn fence_clear(&mut self, n: NodeId) {
        if self.fencing.state[n] != State::Clear {
            self.fencing.state[n] = State::Clear;
            self.changes += 1;
        }
    }

    /// Starts the fences that are due. Not in maintenance (a silent peer
    /// is only reported then), nor while stopping, nor without quorum: a
    /// node cut off from the majority must not power off the nodes that
    /// hold the groups (it fences once it is back in a majority, if the
    /// peer is still silent then). With quorum on, only once the view has
    /// settled: a node cut off from all others declares them dead one at
    /// a time, and still counts the ones not yet declared.
    pub(super) fn fence_step(&mut self) {
        if self.maintenance.on || self.leaving || !self.fencing.blocks() {
            return;
        }
        if self.quorum.enabled && (self.now < self.view_settles() || !self.has_quorum()) {
            return;
        }
        for n in 0..self.nodes.len() {
            let State::Due { failed, at } = self.fencing.state[n] else {
                continue;
            };
            if !self.fencing.can[n] || at > self.now {
                continue;
            }
            self.fencing.state[n] = State::Running { failed };
            let node = self.nodes[n].clone();
            self.event(Event::Fencing {
                node,
                attempt: failed + 1,
            });
            self.out.push(Output::Fence { node: n });
        }
    }

    /// The result of an [`Output::Fence`].
    pub(super) fn on_fence_done(&mut self, n: NodeId, result: Result<(), String>) {
        let Some(State::Running { failed }) = self.fencing.state.get(n).copied() else {
            // Heard again meanwhile, confirmed by an operator, or stale.
            return;
        };
        let node = self.nodes[n].clone();
        match result {
            Ok(()) => {
                self.fencing.state[n] = State::Done;
                self.event(Event::Fenced { node, by: None });
            }
            Err(reason) => {
                let failed = failed + 1;
                let retry_in = backoff(failed);
                self.fencing.state[n] = State::Due {
                    failed,
                    at: self.now + retry_in,
                };
                self.event(Event::FenceFailed {
                    node,
                    reason,
                    retry_in,
                });
            }
        }
    }

    /// `harust fence-confirm NODE`: the operator says the node is off,
    /// which counts as a successful fence of its current death
    /// (heartbeat's meatware).
    pub(super) fn fence_confirm(&mut self, n: NodeId) -> Result<(), super::AdminError> {
        let node = self.nodes.get(n).cloned().unwrap_or_default();
        if n >= self.nodes.len() || n == self.me || self.peers[n].live() {
            return Err(super::AdminError::NotFencing(node));
        }
        match self.fencing.state[n] {
            State::Done => Ok(()),
            State::Clear => Err(super::AdminError::NotFencing(node)),
            State::Due { .. } | State::Running { .. } => {
                self.fencing.state[n] = State::Done;
                let by = Some("operator".to_string());
                self.event(Event::Fenced { node, by });
                Ok(())
            }
        }
    }

    /// With fencing on, a node does not start to acquire while a peer it
    /// hears says it is dead: that peer may be fencing it and about to
    /// take its groups (a node reset by a fence, booting during one-way
    /// loss, would otherwise take a group the fencer is about to take).
    pub(super) fn fence_holds_back(&self) -> bool {
        self.fencing.enabled()
            && (0..self.nodes.len()).any(|n| {
                n != self.me
                    && self.peers[n].live()
                    && self.peers[n].advert.dead.contains(&self.nodes[self.me])
            })
    }

    /// For status: how the fencing of node `n` stands.
    pub(super) fn fence_state(&self, n: NodeId) -> Option<&'static str> {
        self.fencing.describe(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_five_seconds_up_to_a_minute() {
        let s: Vec<u64> = (1..=6).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(s, [5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(1000), RETRY_MAX);
    }
}
