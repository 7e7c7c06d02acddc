//! heartbeat peers: their `resource` reports and heartbeat's hand-over
//! exchange (`ask_resources`, `ip-request`, `shutdone`).

use super::*;

impl Engine {
    /// A heartbeat peer that is up but has not yet said what it holds: it
    /// may hold anything. Bounded by initdead, for peers that never report
    /// (heartbeat sends `resource` only with nice_failback).
    pub(super) fn hb_unreported(&self, n: NodeId) -> bool {
        let p = &self.peers[n];
        !p.advert.harust
            && !p.reported
            && p.last_status.is_some()
            && p.active_since
                .is_none_or(|t| self.now < t + self.timings.initdead)
    }

    /// A heartbeat peer's holdings, from its `resource` report. `rsc_hold`
    /// is relative to the sender: `local` are the groups it prefers.
    pub(super) fn hb_resource(&mut self, n: NodeId, msg: &Message) {
        if !self.peers[n].reported && self.comm_up {
            // Its first report since it came up: heartbeat's starting node
            // goes stable on ours (RSCRCVD -> STABLE), so answer with it.
            self.hb_report_due = true;
        }
        let hold = msg.get_str("rsc_hold").unwrap_or("none");
        let scope = match hold {
            "local" => Some(Scope::Local),
            "foreign" => Some(Scope::Foreign),
            "all" => Some(Scope::All),
            _ => None,
        };
        let mut held: BTreeSet<GroupId> = scope
            .map(|s| self.scope_groups_of(n, s, false).into_iter().collect())
            .unwrap_or_default();
        if msg.get_str("info") == Some("mach_down") {
            // "I took the dead node's groups too", on top of its own.
            held.extend(self.peers[n].advert.held.iter().copied());
        }
        self.peers[n].reported = true;
        self.peers[n].hb_stable = msg.get_str("isstable") == Some("1");
        let a = &mut self.peers[n].advert;
        a.harust = false;
        a.held = held;
        a.busy.clear();
        self.changes += 1;
    }

    pub(super) fn on_ask_resources(&mut self, n: NodeId, msg: &Message) {
        let scope = msg
            .get_str("rsc_hold")
            .and_then(Scope::parse)
            .unwrap_or(Scope::All);
        match msg.get_str("info") {
            Some("me") => {
                // The peer gives up `scope` (its hb_standby, or its
                // auto_failback giving our groups back).
                let gs: BTreeSet<GroupId> =
                    self.scope_groups_of(n, scope, false).into_iter().collect();
                if !self.peers[n].advert.harust {
                    self.peers[n].advert.standby.extend(gs.iter().copied());
                    self.hb_asker = Some((n, gs, false));
                }
                if self.is_stable() {
                    let mut m = Message::new("ask_resources");
                    m.add_str("rsc_hold", scope.as_str())
                        .add_str("info", "other");
                    self.send(m);
                }
            }
            Some("done") if !self.peers[n].advert.harust => {
                // Its release is complete: what it gave up is free now.
                if let Some((asker, gs, done)) = &mut self.hb_asker
                    && *asker == n
                {
                    *done = true;
                    let gs = gs.clone();
                    self.peers[n].advert.held.retain(|g| !gs.contains(g));
                    self.changes += 1;
                }
            }
            Some("other") => {
                if let Some(ask) = self.hb_ask.as_mut()
                    && ask.peer == n
                {
                    ask.granted = true;
                }
            }
            _ => {}
        }
    }

    /// Legacy failback (`auto_failback legacy`, §1.9): a heartbeat peer
    /// asks for its group back; we let go and say so. harust peers decide
    /// from the adverts instead.
    pub(super) fn on_ip_request(&mut self, n: NodeId, msg: &Message) {
        let Some(key) = msg.get_str("ipaddr") else {
            return;
        };
        let Some(g) = self.groups.iter().position(|x| x.key == key) else {
            return;
        };
        // heartbeat peers: ourselves; in maintenance we neither release nor
        // say we do not own it (which would let it take the group): it
        // waits, as for a node that does not answer.
        if self.peers[n].advert.harust || self.maintenance.on {
            return;
        }
        if self.local[g] == Local::Held {
            // It takes the group once we answer: nobody else may meanwhile.
            self.peers[n].advert.busy.insert(g);
            self.ip_request_from.insert(g, n);
            self.release(g, Some(n));
        } else {
            self.ip_request_resp(n, g, false);
        }
    }

    pub(super) fn ip_request_resp(&mut self, n: NodeId, g: GroupId, weown: bool) {
        let mut m = Message::new("ip-request-resp");
        m.add_str("dest", &self.nodes[n].clone())
            .add_str("ipaddr", &self.groups[g].key.clone())
            .add_str("weown", if weown { "yes" } else { "no" })
            .add_str("ok", "OK");
        self.send(m);
    }

    /// Hands `g` to a heartbeat peer: ask first, release once granted.
    pub(super) fn hb_give_up(&mut self, now: Time, g: GroupId, peer: NodeId) {
        match &mut self.hb_ask {
            Some(ask) if ask.peer == peer && ask.granted => {
                ask.groups.insert(g);
                self.release(g, Some(peer));
            }
            Some(ask) if ask.peer == peer => {
                ask.groups.insert(g);
            }
            Some(_) => {} // one exchange at a time, as heartbeat
            // heartbeat's PerformAutoFailback also waits for the peer to be
            // stable: an ask before that is ignored as "in flux".
            None if now >= self.hb_ask_holdoff && self.peers[peer].hb_stable => {
                let groups: BTreeSet<GroupId> = [g].into();
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", self.scope_name(&groups))
                    .add_str("info", "me");
                self.send(m);
                self.hb_ask = Some(HbAsk {
                    peer,
                    groups,
                    since: now,
                    granted: false,
                });
            }
            None => {}
        }
    }

    /// heartbeat's name for a set of groups, seen from us.
    pub(super) fn scope_name(&self, groups: &BTreeSet<GroupId>) -> &'static str {
        let mine = groups
            .iter()
            .filter(|&&g| self.groups[g].preferred == self.me)
            .count();
        if mine == groups.len() {
            "local"
        } else if mine == 0 {
            "foreign"
        } else {
            "all"
        }
    }

    /// Moves the heartbeat exchanges along after each step.
    pub(super) fn hb_progress(&mut self, now: Time) {
        if let Some(ask) = self.hb_ask.clone() {
            let done = ask
                .groups
                .iter()
                .all(|&g| matches!(self.local[g], Local::Idle | Local::Failed));
            if ask.granted && done {
                self.send_resource(Some("standby"));
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", self.scope_name(&ask.groups))
                    .add_str("info", "done");
                self.send(m);
                self.hb_ask = None;
            } else if !ask.granted && now >= ask.since + STANDBY_REPLY {
                // heartbeat: "No reply to standby request. Standby request
                // cancelled." We keep the groups and may ask again later.
                self.hb_ask = None;
                self.hb_ask_holdoff = now + STANDBY_REPLY;
            } else if !self.peers[ask.peer].live() {
                self.hb_ask = None;
            }
        }
        if let Some((n, gs, peer_done)) = self.hb_asker.clone() {
            let taken = gs
                .iter()
                .all(|&g| matches!(self.local[g], Local::Held | Local::Failed));
            if !self.peers[n].live() {
                self.hb_asker = None;
            } else if peer_done && taken && self.is_stable() {
                // Our last phase: heartbeat leaves its standby state on it.
                let mut m = Message::new("ask_resources");
                m.add_str("rsc_hold", "all").add_str("info", "done");
                self.send(m);
                self.hb_asker = None;
            }
        }
    }
}
