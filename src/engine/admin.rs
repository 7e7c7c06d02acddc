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
        } else if req == AdminRequest::Maintenance(false) && !self.comm_up {
            // Not before we know the peers: what we adopted would be
            // judged against an empty cluster.
            Err(AdminError::NotReady)
        } else if let AdminRequest::Maintenance(on) = req {
            self.set_maintenance_here(on);
            Ok(())
        } else if let AdminRequest::FenceConfirm(n) = req {
            // Also in maintenance: it only records what the operator did.
            self.fence_confirm(n)
        } else if self.maintenance.on {
            Err(AdminError::Maintenance)
        } else if !self.comm_up {
            Err(AdminError::NotReady)
        } else {
            match req {
                AdminRequest::Standby(scope) => self.standby(scope),
                AdminRequest::Takeover(scope) => self.takeover(scope),
                AdminRequest::Maintenance(_) | AdminRequest::FenceConfirm(_) => Ok(()),
            }
        };
        self.out.push(Output::Reply { id, result });
    }

    /// An operator's maintenance on/off on this node: a version above
    /// every one seen, so it wins everywhere; repeating the current mode
    /// changes nothing.
    fn set_maintenance_here(&mut self, on: bool) {
        if self.maintenance.on == on && self.maintenance.version > 0 {
            return;
        }
        let m = Maintenance {
            on,
            version: self.maintenance.version + 1,
            by: self.nodes[self.me].clone(),
        };
        self.apply_maintenance(m);
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
        if self.maintenance.on {
            // Stop without releasing: once nothing is under way, exit and
            // leave the resources up for the next daemon to adopt.
            let busy = self
                .local
                .iter()
                .any(|l| matches!(l, Local::Acquiring { .. } | Local::Releasing { .. }));
            if !busy && self.cleanup.is_empty() {
                self.stopped = true;
                self.out.push(Output::Stopped);
            }
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
