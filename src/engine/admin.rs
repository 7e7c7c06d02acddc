//! Operator requests (standby, takeover) and the graceful stop.

use super::*;

impl Engine {
    /// Groups in `scope` as seen from node `n` (hb_standby semantics).
    /// `takeover` maps `failback` as heartbeat's rc.d/hb_takeover does.
    pub(super) fn scope_groups_of(&self, n: NodeId, scope: Scope, takeover: bool) -> Vec<GroupId> {
        (0..self.groups.len())
            .filter(|&g| {
                let local = self.groups[g].preferred == n;
                match scope {
                    Scope::All => true,
                    Scope::Local => local,
                    Scope::Foreign => !local,
                    Scope::Failback => takeover || !local,
                }
            })
            .collect()
    }

    pub(super) fn on_admin(&mut self, id: u64, req: AdminRequest) {
        let result = if self.leaving {
            Err(AdminError::ShuttingDown)
        } else if !self.comm_up {
            Err(AdminError::NotReady)
        } else {
            match req {
                AdminRequest::Standby(scope) => self.standby(scope),
                AdminRequest::Takeover(scope) => self.takeover(scope),
            }
        };
        self.out.push(Output::Reply { id, result });
    }

    pub(super) fn standby(&mut self, scope: Scope) -> Result<(), AdminError> {
        let gs = self.scope_groups_of(self.me, scope, false);
        for &g in &gs {
            let mine = matches!(self.local[g], Local::Held | Local::Acquiring { .. });
            let taker =
                (0..self.nodes.len()).any(|n| n != self.me && self.eligible(n, g, false, false));
            if mine && !taker {
                return Err(AdminError::NoPeer(self.groups[g].key.clone()));
            }
        }
        self.standby.extend(gs);
        // Toward a heartbeat peer the hand-over runs its three phases
        // (`hb_give_up`), which open with this same message.
        let hb_peer = (0..self.nodes.len())
            .any(|n| n != self.me && self.peers[n].live() && !self.peers[n].advert.harust);
        if !hb_peer {
            let mut m = Message::new("ask_resources");
            let hold = if scope == Scope::Failback {
                "foreign"
            } else {
                scope.as_str()
            };
            m.add_str("rsc_hold", hold).add_str("info", "me");
            self.send(m);
        }
        let by = self.nodes[self.me].clone();
        self.event(Event::StandbyRequested { scope, by });
        Ok(())
    }

    pub(super) fn takeover(&mut self, scope: Scope) -> Result<(), AdminError> {
        // Our `failback` takeover means "my own groups back".
        let scope = if scope == Scope::Failback {
            Scope::Local
        } else {
            scope
        };
        for g in self.scope_groups_of(self.me, scope, false) {
            self.standby.remove(&g);
            self.failed.remove(&g);
            if self.local[g] == Local::Failed {
                self.transition(g, Local::Idle);
            }
        }
        let mut m = Message::new("hb_takeover");
        m.add_str("rsc_hold", scope.as_str());
        self.send(m);
        let by = self.nodes[self.me].clone();
        self.event(Event::TakeoverRequested { scope, by });
        Ok(())
    }

    pub(super) fn maybe_finish_shutdown(&mut self) {
        if !self.leaving || self.stopped {
            return;
        }
        // Start the next group's release, last group first.
        if !self
            .local
            .iter()
            .any(|l| matches!(l, Local::Releasing { .. }))
        {
            if let Some(g) = (0..self.groups.len())
                .rev()
                .find(|&g| self.local[g] == Local::Held)
            {
                let to = self.desired(g);
                self.release(g, to);
            }
        }
        let done = self
            .local
            .iter()
            .all(|l| matches!(l, Local::Idle | Local::Failed))
            && self.cleanup.is_empty();
        if done {
            let mut m = Message::new("shutdone");
            m.add_str("st", "dead");
            self.send(m);
            self.stopped = true;
            self.out.push(Output::Stopped);
        }
    }
}
