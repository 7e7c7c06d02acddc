//! Quorum and the release wait (docs/SAFETY.md).
//!
//! With `quorum on`, a node may hold or take a group only while it sees a
//! strict majority of the voters (every `node`, witnesses included, itself
//! included). An exact half wins only on the side of the tie-breaker, the
//! first `node` line, and with ping nodes configured only if that side
//! also reaches one of them. Both sides apply the same rule to the same
//! configuration, so they agree without talking.
//!
//! Taking a group from a peer that went silent waits until that peer is
//! certain to have let go: its deadtime plus the release bound it
//! advertised, counted from the last message heard from it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Engine, Event, GroupId, NodeId, PeerState, Time};
use crate::config::Config;

/// What a node needs to release everything after it lost quorum or hung,
/// beyond its deadtime: the slack of its own detection (its last beat may
/// have been heard up to two keepalives before it heard ours) and the
/// stops, or its watchdog firing and `ExecStopPost=`'s release-local.
pub const STOP_ALLOWANCE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub(super) struct Quorum {
    pub enabled: bool,
    voters: usize,
    witnesses: BTreeSet<NodeId>,
    /// With an exact half, the side with this node wins.
    tie_winner: NodeId,
}

impl Quorum {
    pub fn new(cfg: &Config) -> Quorum {
        let nodes = &cfg.ha.nodes;
        Quorum {
            enabled: cfg.ha.quorum,
            voters: nodes.len(),
            witnesses: cfg
                .ha
                .witnesses
                .iter()
                .filter_map(|w| nodes.iter().position(|n| n == w))
                .collect(),
            tie_winner: 0,
        }
    }

    pub fn is_witness(&self, n: NodeId) -> bool {
        self.witnesses.contains(&n)
    }

    /// Whether the nodes in `seen` (this one included) make a quorum.
    /// `ping` is whether this node reaches a ping node, if any is
    /// configured. Always true with quorum off.
    pub fn has(&self, seen: &[NodeId], ping: Option<bool>) -> bool {
        if !self.enabled {
            return true;
        }
        let n = seen.len() * 2;
        if n > self.voters {
            true
        } else if n == self.voters {
            ping != Some(false) && seen.contains(&self.tie_winner)
        } else {
            false
        }
    }
}

/// The service watchdog timeout the daemon sets for itself
/// (`WATCHDOG_USEC=`): half its deadtime, so that a stalled loop is killed
/// before a peer declares it dead, but never under 200 ms, which a loaded
/// machine could miss without anything being wrong.
pub fn watchdog_timeout(deadtime: Duration) -> Duration {
    (deadtime / 2).max(Duration::from_millis(200))
}

/// The release bound a node advertises: see [`STOP_ALLOWANCE`]. A hung
/// daemon is killed by its watchdog ([`watchdog_timeout`]) and its
/// resources removed by `ExecStopPost=` within it.
pub fn release_bound(keepalive: Duration, deadtime: Duration) -> Duration {
    watchdog_timeout(deadtime) + keepalive * 2 + STOP_ALLOWANCE
}

impl Engine {
    /// This node and the peers it hears that hear it too: with one-way
    /// loss, a peer we hear but that does not hear us is on no side of
    /// ours. (A heartbeat peer says nothing of whom it hears: hearing it
    /// is all we know.)
    fn in_view(&self) -> Vec<NodeId> {
        let me = &self.nodes[self.me];
        (0..self.nodes.len())
            .filter(|&n| {
                let p = &self.peers[n];
                n == self.me || (p.live() && (!p.advert.harust || p.advert.up.contains(me)))
            })
            .collect()
    }

    /// The peers we hear, by name, for the advert (quorum on).
    pub(super) fn heard_peers(&self) -> BTreeSet<String> {
        if !self.quorum.enabled {
            return BTreeSet::new();
        }
        (0..self.nodes.len())
            .filter(|&n| n != self.me && self.peers[n].live())
            .map(|n| self.nodes[n].clone())
            .collect()
    }

    pub(super) fn has_quorum(&self) -> bool {
        self.quorum
            .has(&self.in_view(), self.ping_score().map(|s| s > 0))
    }

    pub(super) fn is_witness(&self, n: NodeId) -> bool {
        self.quorum.is_witness(n)
    }

    /// The peers we have declared dead, by name, for the advert.
    pub(super) fn declared_dead(&self) -> BTreeSet<String> {
        (0..self.nodes.len())
            .filter(|&n| n != self.me && self.peers[n].state == PeerState::Dead)
            .map(|n| self.nodes[n].clone())
            .collect()
    }

    /// What we know other nodes hold or may still hold, for the advert
    /// (quorum on): a node that joins our majority without seeing them
    /// learns it from us.
    pub(super) fn claims_of_others(&self) -> BTreeSet<(String, GroupId)> {
        let mut c = BTreeSet::new();
        if !self.quorum.enabled {
            return c;
        }
        for n in (0..self.nodes.len()).filter(|&n| n != self.me) {
            let p = &self.peers[n];
            let gs: Vec<GroupId> = if p.live() {
                (0..self.groups.len())
                    .filter(|&g| self.claims(n, g))
                    .collect()
            } else if p.released_by.is_some_and(|t| self.now < t) {
                (0..self.groups.len()).collect()
            } else {
                continue;
            };
            c.extend(gs.into_iter().map(|g| (self.nodes[n].clone(), g)));
        }
        c
    }

    /// A live peer says a node we do not see holds or may hold `g`.
    pub(super) fn claimed_out_of_view(&self, g: GroupId) -> bool {
        self.quorum.enabled
            && (0..self.nodes.len()).any(|n| {
                n != self.me
                    && self.peers[n].live()
                    && self.peers[n].advert.claims.iter().any(|(x, cg)| {
                        *cg == g
                            && self
                                .nodes
                                .iter()
                                .position(|y| y == x)
                                .is_some_and(|x| x != self.me && !self.peers[x].live())
                    })
            })
    }

    /// When the view has been stable long enough to take a group: the
    /// adverts of a node that came into view, and of the nodes that see
    /// it and us, have had two keepalives to arrive. Two nodes that see a
    /// common peer but not each other learn each other's claims from it
    /// before either acts on a new view.
    pub(super) fn view_settles(&self) -> Time {
        self.view.1 + self.timings.keepalive * 2
    }

    /// Reports quorum lost and regained, once comm is up.
    pub(super) fn track_quorum(&mut self) {
        if !self.quorum.enabled {
            return;
        }
        let view = self.in_view();
        if view != self.view.0 {
            self.view = (view, self.now);
        }
        if !self.comm_up {
            return;
        }
        let q = self.has_quorum();
        if self.had_quorum == Some(q) {
            return;
        }
        let first = self.had_quorum.is_none();
        self.had_quorum = Some(q);
        let seen = self.in_view().len();
        let voters = self.nodes.len();
        if !q {
            self.event(Event::QuorumLost { seen, voters });
        } else if !first {
            self.event(Event::QuorumRegained { seen, voters });
        }
    }

    /// When peer `n`'s claim that we are dead starts to count: it must
    /// have been heard without a break for its deadtime, so that after a
    /// partition heals, its last beats from before it heard us again do
    /// not make us yield.
    pub(super) fn outvote_due(&self, n: NodeId) -> Option<Time> {
        if n == self.me {
            return None;
        }
        let p = &self.peers[n];
        if !p.live() || !p.advert.dead.contains(&self.nodes[self.me]) {
            return None;
        }
        Some(p.up_since? + p.dead_after)
    }

    /// One-way loss: a peer we hear has declared us dead, and it will
    /// take group `g` (it has quorum) or already claims it. We yield at
    /// once instead of holding `g` beside it.
    pub(super) fn outvoted(&self, g: GroupId) -> bool {
        (0..self.nodes.len()).any(|n| {
            self.outvote_due(n).is_some_and(|t| self.now >= t)
                && if self.quorum.enabled {
                    self.peers[n].advert.quorum == Some(true)
                } else {
                    self.claims(n, g)
                }
        })
    }

    /// Whether group `g` must be released now, without a hand-over.
    pub(super) fn must_let_go(&self, g: GroupId) -> bool {
        !self.has_quorum() || self.outvoted(g)
    }

    /// With quorum on, whether a peer that went silent may still hold
    /// something: nothing is taken until its release bound has passed.
    pub(super) fn awaiting_release(&self) -> bool {
        (self.quorum.enabled || self.fencing.enabled())
            && self
                .peers
                .iter()
                .any(|p| !p.live() && p.released_by.is_some_and(|t| self.now < t))
    }

    /// Peer `n` went silent (not a graceful stop): it is certain to have
    /// let go of everything by its deadtime plus its release bound,
    /// counted from the last message heard. What it held is not enough
    /// to know: it may have started a group after its last message
    /// reached us, so every group waits.
    pub(super) fn record_silence(&mut self, n: NodeId) {
        if self.is_witness(n) {
            // It never holds anything (configuration checks that).
            return;
        }
        self.fence_on_silence(n);
        let p = &self.peers[n];
        let rb = p.advert.release_bound.unwrap_or(self.release_bound);
        let from = p.last_heard.unwrap_or(self.now);
        let until = from + p.dead_after + rb;
        self.peers[n].released_by = Some(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(voters: usize, witnesses: &[NodeId]) -> Quorum {
        Quorum {
            enabled: true,
            voters,
            witnesses: witnesses.iter().copied().collect(),
            tie_winner: 0,
        }
    }

    #[test]
    fn a_strict_majority_has_quorum_and_a_minority_has_not() {
        let q = q(3, &[2]);
        assert!(q.has(&[0, 2], None));
        assert!(q.has(&[1, 2], None));
        assert!(!q.has(&[0], None));
        assert!(!q.has(&[1], None));
    }

    #[test]
    fn an_even_split_goes_to_the_first_node_on_both_sides() {
        let q = q(2, &[]);
        assert!(q.has(&[0], None));
        assert!(!q.has(&[1], None));
        let q4 = super::Quorum {
            voters: 4,
            ..q.clone()
        };
        assert!(q4.has(&[0, 3], None));
        assert!(!q4.has(&[1, 2], None));
    }

    #[test]
    fn ping_nodes_decide_a_tie_first() {
        let q = q(2, &[]);
        assert!(!q.has(&[0], Some(false)), "cut off from the ping nodes");
        assert!(q.has(&[0], Some(true)));
        assert!(!q.has(&[1], Some(true)), "the other side never wins a tie");
    }

    #[test]
    fn quorum_off_always_has_quorum() {
        let mut q = q(3, &[]);
        q.enabled = false;
        assert!(q.has(&[1], Some(false)));
    }
}
