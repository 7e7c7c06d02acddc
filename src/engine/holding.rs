//! Holding: split-brain resolution, acquiring and releasing groups.

use super::*;

impl Engine {
    pub(super) fn resolve_conflict(&mut self, g: GroupId) {
        let contested = (0..self.nodes.len()).any(|n| {
            n != self.me && self.peers[n].live() && self.peers[n].advert.held.contains(&g)
        });
        if !contested {
            self.conflict_announced.remove(&g);
            return;
        }
        // We are the desired holder and so, by the same rule on the other
        // side, the keeper: the others release. Refresh the neighbours'
        // caches at once, since they may point at the loser.
        if self.conflict_announced.insert(g) {
            self.counters.split_brains += 1;
            self.out.push(Output::Announce { group: g });
            let group = self.groups[g].key.clone();
            let keeper = self.nodes[self.me].clone();
            self.event(Event::SplitBrainResolved { group, keeper });
        }
    }

    pub(super) fn acquire(&mut self, g: GroupId) {
        if self.maintenance.on {
            return;
        }
        let group = self.groups[g].key.clone();
        self.event(Event::Acquiring { group });
        if self.groups[g].len == 0 {
            return self.acquired(g);
        }
        self.start_from(g, 0);
    }

    /// Starts resource `r`, and with it the addresses that follow it
    /// directly: adding them is one netlink batch, not a round trip each.
    pub(super) fn start_from(&mut self, g: GroupId, r: usize) {
        let vips = &self.groups[g].vips;
        let mut upto = r;
        while vips[upto] && upto + 1 < vips.len() && vips[upto + 1] {
            upto += 1;
        }
        self.transition(g, Local::Acquiring { next: r, upto });
        for resource in r..=upto {
            self.out.push(Output::Start { group: g, resource });
        }
    }

    /// Stops resource `r`, and with it the addresses right before it, last
    /// first.
    pub(super) fn stop_from(&mut self, g: GroupId, r: usize) {
        let vips = &self.groups[g].vips;
        let mut low = r;
        while vips[low] && low > 0 && vips[low - 1] {
            low -= 1;
        }
        self.transition(g, Local::Releasing { next: r, low });
        for resource in (low..=r).rev() {
            self.out.push(Output::Stop { group: g, resource });
        }
    }

    pub(super) fn acquired(&mut self, g: GroupId) {
        self.transition(g, Local::Held);
        let from = self.last_holder[g].filter(|&n| n != self.me);
        if from.is_some_and(|n| !self.peers[n].live()) {
            self.counters.failovers += 1;
        }
        let group = self.groups[g].key.clone();
        let takeover_from = from.map(|n| self.nodes[n].clone());
        self.event(Event::Acquired {
            group,
            takeover_from,
        });
    }

    pub(super) fn give_up(&mut self, now: Time, g: GroupId, to: Option<NodeId>) {
        if self.must_let_go(g) {
            // Quorum lost or declared dead: no hand-over, just let go.
            return self.release(g, to);
        }
        let live_taker = to.is_some_and(|n| n != self.me && self.peers[n].live());
        // Only a harust peer says when it holds a group, which is what
        // make-before-break waits for; heartbeat takes over after we let go.
        let mbb_taker = live_taker && to.is_some_and(|n| self.peers[n].advert.harust);
        let other_holds = (0..self.nodes.len()).any(|n| {
            n != self.me && self.peers[n].live() && self.peers[n].advert.held.contains(&g)
        });
        if other_holds {
            // Split brain heal: the keeper already holds it.
            let group = self.groups[g].key.clone();
            let keeper = to.map(|n| self.nodes[n].clone()).unwrap_or_default();
            self.counters.split_brains += 1;
            self.event(Event::SplitBrainResolved { group, keeper });
            return self.release(g, to);
        }
        // Make before break keeps an address-only group on both nodes for
        // a moment; with quorum on, never two holders comes first
        // (docs/SAFETY.md), so the hand-over is break before make.
        let mbb = self.groups[g].vip_only && mbb_taker && !self.quorum.enabled;
        if self.leaving && !mbb {
            // A stopping node releases in reverse group order; see
            // `maybe_finish_shutdown`.
            return;
        }
        if let Some(peer) = to.filter(|_| live_taker && !mbb_taker) {
            return self.hb_give_up(now, g, peer);
        }
        if mbb {
            // Make before break: keep answering until the taker holds it.
            self.transition(g, Local::HandingOff { since: now });
            let group = self.groups[g].key.clone();
            let to = to.map(|n| self.nodes[n].clone());
            self.event(Event::Releasing { group, to });
        } else {
            self.release(g, to);
        }
    }

    pub(super) fn release(&mut self, g: GroupId, to: Option<NodeId>) {
        // Maintenance: a held group stays (a failed one is released when
        // maintenance ends).
        if self.maintenance.on && matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            return;
        }
        if self.leaving
            && self
                .local
                .iter()
                .any(|l| matches!(l, Local::Releasing { .. }))
        {
            // A stopping node releases one group at a time, last first;
            // the next one starts when this one is done.
            return;
        }
        if !matches!(self.local[g], Local::HandingOff { .. }) {
            let group = self.groups[g].key.clone();
            let to = to.map(|n| self.nodes[n].clone());
            self.event(Event::Releasing { group, to });
        }
        self.conflict_announced.remove(&g);
        if self.groups[g].len == 0 {
            return self.released(g);
        }
        self.stop_from(g, self.groups[g].len - 1);
    }

    pub(super) fn released(&mut self, g: GroupId) {
        let to = if self.failed.contains(&g) {
            Local::Failed
        } else {
            Local::Idle
        };
        self.transition(g, to);
        self.repairing.retain(|(x, _)| *x != g);
        let group = self.groups[g].key.clone();
        self.event(Event::Released { group });
        if let Some(n) = self.ip_request_from.remove(&g) {
            self.ip_request_resp(n, g, true);
        }
    }
}
