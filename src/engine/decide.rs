//! Decisions: who may hold a group, who should, and acting on it.

use super::*;

impl Engine {
    /// Whether node `n` may hold group `g`. `strict` honours standby;
    /// `joiners` counts peers that are up but not yet active.
    pub(super) fn eligible(&self, n: NodeId, g: GroupId, strict: bool, joiners: bool) -> bool {
        // A witness only votes; without quorum nobody in our view may hold.
        if self.is_witness(n) || !self.ping_ok(n) || !self.has_quorum() {
            return false;
        }
        if n == self.me {
            self.comm_up
                && !self.leaving
                && !self.outvoted(g)
                && !self.failed.contains(&g)
                && (!strict || !self.standby.contains(&g))
        } else {
            let p = &self.peers[n];
            p.live()
                && (p.active || joiners)
                && !p.advert.leaving
                && !p.advert.failed.contains(&g)
                && (!strict || !p.advert.standby.contains(&g))
        }
    }

    pub(super) fn claims(&self, n: NodeId, g: GroupId) -> bool {
        if n == self.me {
            matches!(
                self.local[g],
                Local::Held | Local::Acquiring { .. } | Local::Releasing { .. }
            )
        } else {
            let p = &self.peers[n];
            p.live()
                && (p.advert.held.contains(&g)
                    || p.advert.busy.contains(&g)
                    || self.hb_unreported(n))
        }
    }

    /// How many ping targets we reach, if any are configured.
    pub(super) fn ping_score(&self) -> Option<u32> {
        (!self.ping.is_empty()).then(|| self.ping_up.iter().filter(|u| **u).count() as u32)
    }

    /// Ping nodes are quorum witnesses (heartbeat's ipfail): a node that
    /// reaches fewer of them than another live node may not hold groups,
    /// and a node that reaches none and sees no peer holds nothing, so on a
    /// split only the side that still reaches them keeps the groups.
    pub(super) fn ping_ok(&self, n: NodeId) -> bool {
        let Some(mine) = self.ping_score() else {
            return true;
        };
        let score = |x: NodeId| -> u32 {
            if x == self.me {
                mine
            } else {
                // A peer that does not report a score (heartbeat) is not
                // judged by it.
                self.peers[x].advert.ping.unwrap_or(u32::MAX)
            }
        };
        // Iterated twice rather than collected: this runs for every group
        // on every engine step.
        let live = || {
            (0..self.nodes.len())
                .filter(|&x| x == self.me || (self.peers[x].live() && self.peers[x].active))
        };
        let best = live()
            .map(score)
            .filter(|&s| s != u32::MAX)
            .max()
            .unwrap_or(0);
        let s = score(n);
        if s == u32::MAX {
            return true;
        }
        if s < best {
            return false;
        }
        s > 0 || live().nth(1).is_some()
    }

    /// The ping targets in the order `Input::PingReply` numbers them, each
    /// with the addresses to probe (any one answering is enough).
    pub fn ping_targets(cfg: &Config) -> Vec<Vec<std::net::IpAddr>> {
        cfg.ha
            .ping_nodes
            .iter()
            .map(|a| vec![*a])
            .chain(cfg.ha.ping_groups.iter().map(|g| g.addrs.clone()))
            .collect()
    }

    /// Who should hold group `g`, computed the same way on every node.
    pub(super) fn desired(&self, g: GroupId) -> Option<NodeId> {
        self.desired_among(g, false)
    }

    /// `desired`, also counting peers still joining. We never acquire a
    /// group that a joining peer may be about to claim.
    pub(super) fn desired_among(&self, g: GroupId, joiners: bool) -> Option<NodeId> {
        // The candidates are those `eligible` with `strict`, or, when there
        // are none, without it (standby yields only to a node that can take
        // over). Filtered on the fly rather than collected: this runs for
        // every group on every engine step.
        let strict = (0..self.nodes.len()).any(|n| self.eligible(n, g, true, joiners));
        let cands = || (0..self.nodes.len()).filter(move |&n| self.eligible(n, g, strict, joiners));
        let pref = self.groups[g].preferred;
        if self.failback != AutoFailback::Off && cands().any(|n| n == pref) {
            return Some(pref);
        }
        // Ring order from the preferred node: deterministic everywhere.
        let len = self.nodes.len();
        let rank = |n: &NodeId| (*n + len - pref) % len;
        if let Some(c) = cands().filter(|&n| self.claims(n, g)).min_by_key(rank) {
            return Some(c);
        }
        cands().min_by_key(rank)
    }

    pub(super) fn decide(&mut self, now: Time) {
        // Maintenance: nothing starts moving; a dead peer is acted on
        // once it ends, by these same rules.
        if !self.reconciled || self.maintenance.on {
            return;
        }
        for g in 0..self.groups.len() {
            let d = self.desired(g);
            if let Some(h) = self.holder(g) {
                self.last_holder[g] = Some(h);
            }
            let other_claims = (0..self.nodes.len()).any(|n| n != self.me && self.claims(n, g));
            match self.local[g] {
                Local::Idle => {
                    let joiners_agree = self.desired_among(g, true) == Some(self.me);
                    if d == Some(self.me)
                        && !other_claims
                        && joiners_agree
                        && !self.awaiting_release()
                        && !self.fencing.blocks()
                        && !self.fence_holds_back()
                        && !self.claimed_out_of_view(g)
                        && (!self.quorum.enabled || now >= self.view_settles())
                    {
                        self.acquire(g);
                    } else if d == Some(self.me)
                        && self.failback == AutoFailback::Legacy
                        && self.ip_requested.insert(g)
                    {
                        let mut m = Message::new("ip-request");
                        m.add_str("ipaddr", &self.groups[g].key.clone());
                        self.send(m);
                    }
                }
                // Held before comm is up only if adopted in maintenance:
                // it is judged once we know who else is there.
                Local::Held if !self.comm_up => {}
                Local::Held => {
                    if d != Some(self.me) {
                        self.give_up(now, g, d);
                    } else {
                        self.resolve_conflict(g);
                    }
                }
                Local::HandingOff { since } => {
                    if d == Some(self.me) {
                        self.transition(g, Local::Held);
                    } else {
                        let taken = d.is_some_and(|n| {
                            n != self.me
                                && self.peers[n].live()
                                && self.peers[n].advert.held.contains(&g)
                        });
                        if taken
                            || d.is_none()
                            || now >= since + self.timings.deadtime
                            || self.must_let_go(g)
                        {
                            self.release(g, d);
                        }
                    }
                }
                Local::Acquiring { .. } | Local::Releasing { .. } | Local::Failed => {}
            }
            if d.is_none() && !self.failed.is_empty() && self.any_failed_everywhere(g) {
                if self.group_failed_reported.insert(g) {
                    let group = self.groups[g].key.clone();
                    self.event(Event::GroupFailed { group });
                }
            } else if d.is_some() {
                self.group_failed_reported.remove(&g);
            }
            if self.local[g] == Local::Held {
                // A legacy request is finished once the group is ours.
                self.ip_requested.remove(&g);
            }
        }
    }

    pub(super) fn any_failed_everywhere(&self, g: GroupId) -> bool {
        // Every live node (us included) has failed the group.
        self.failed.contains(&g)
            && (0..self.nodes.len())
                .filter(|&n| n != self.me && self.peers[n].live())
                .all(|n| self.peers[n].advert.failed.contains(&g))
    }

    // ---------------------------------------------------------------
    // heartbeat peers (PROTOCOL.md §1.9)
    // ---------------------------------------------------------------
}
