//! Sending: sequencing, status and `resource` messages, the advert.

use super::*;

impl Engine {
    /// Appends heartbeat's common header (§1.4) and queues the message.
    pub(super) fn send(&mut self, mut m: Message) {
        let control = m.kind().is_some_and(|k| k.starts_with("NS_"));
        if !control {
            self.seq += 1;
        }
        self.stamp(&mut m, (!control).then_some(self.seq), self.now);
        let m = std::sync::Arc::new(m);
        if !control {
            self.remember(m.clone());
        }
        self.out.push(Output::Send(m));
    }

    /// Keeps a sequenced message, sent as `self.seq`, for retransmission.
    pub(super) fn remember(&mut self, m: std::sync::Arc<Message>) {
        self.history.push_back((self.seq, m));
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    /// The header fields, `seq` only for a sequenced message.
    pub(super) fn stamp(&self, m: &mut Message, seq: Option<u64>, now: Time) {
        m.add_str("src", &self.nodes[self.me]);
        m.add_bin("srcuuid", &self.params.uuid);
        if let Some(seq) = seq {
            m.add_hex("seq", seq);
        }
        m.add_hex("hg", self.params.generation);
        m.add_hex("ts", beat_ts(self.params.wall_base, now));
        m.add_dec("ttl", 1 + self.nodes.len() as u64);
    }

    pub(super) fn send_status(&mut self) {
        let m = self.status_message();
        self.first_status_sent = true;
        self.counters.beats_sent += 1;
        self.send(m);
    }

    /// The status beat as it would go now, without its header.
    pub(super) fn status_message(&self) -> Message {
        let st = if !self.first_status_sent {
            "init"
        } else if self.comm_up && !self.leaving {
            "active"
        } else {
            "up"
        };
        let mut m = Message::new("status");
        m.add_str("st", st)
            .add_hex("dt", self.timings.deadtime.as_millis() as u64)
            .add_str("protocol", "1");
        self.current_advert().add_to(&mut m, &self.groups_keys());
        if let Some(d) = &self.config_digest {
            m.add_str(crate::config::digest::FIELD, d);
        }
        m
    }

    pub(super) fn send_resource(&mut self, info: Option<&str>) {
        let mut m = Message::new("resource");
        // heartbeat opens a stop with "none, not stable" (§1.9); the hr_*
        // fields still say what we hold until we have let go.
        let stopping = info == Some("shutdown");
        m.add_str("rsc_hold", if stopping { "none" } else { self.rsc_hold() })
            .add_str("rtype", "full")
            .add_str(
                "isstable",
                if self.is_stable() && !stopping {
                    "1"
                } else {
                    "0"
                },
            );
        if let Some(i) = info {
            m.add_str("info", i);
        }
        let a = self.current_advert();
        a.add_to(&mut m, &self.groups_keys());
        self.advertised = Some(a);
        self.send(m);
    }

    pub(super) fn advertise_if_changed(&mut self) {
        if !self.first_status_sent {
            return;
        }
        let a = self.current_advert();
        if self.advertised.as_ref() != Some(&a) || std::mem::take(&mut self.hb_report_due) {
            self.send_resource(None);
        }
    }

    pub(super) fn current_advert(&self) -> Advert {
        let mut a = Advert {
            harust: true,
            leaving: self.leaving,
            ping: self.ping_score(),
            standby: self.standby.clone(),
            failed: self.failed.clone(),
            dead: self.declared_dead(),
            quorum: self.quorum.enabled.then(|| self.has_quorum()),
            release_bound: Some(self.release_bound),
            claims: self.claims_of_others(),
            up: self.heard_peers(),
            // Only once set: a node never told stays silent about it.
            maintenance: (self.maintenance != Maintenance::default())
                .then(|| self.maintenance.clone()),
            ..Advert::default()
        };
        for (g, l) in self.local.iter().enumerate() {
            match l {
                Local::Held => {
                    a.held.insert(g);
                }
                Local::Acquiring { .. } | Local::Releasing { .. } => {
                    a.busy.insert(g);
                }
                _ => {}
            }
        }
        a
    }

    /// heartbeat's `rsc_hold` for what we hold (§1.9). heartbeat speaks of
    /// responsibility for "my groups" and "the peer's groups" even when one
    /// of those sets is empty: an active node with no groups of its own
    /// still says `local`, and a node whose peers are all dead holds `all`.
    pub(super) fn rsc_hold(&self) -> &'static str {
        let active = self.comm_up && !self.leaving;
        let covers = |mine: bool, vacuous: bool| {
            let mut gs = (0..self.groups.len())
                .filter(|&g| (self.groups[g].preferred == self.me) == mine)
                .peekable();
            if gs.peek().is_none() {
                return vacuous;
            }
            gs.all(|g| self.local[g] == Local::Held)
        };
        let no_peer = (0..self.nodes.len()).all(|n| n == self.me || !self.peers[n].live());
        let local = covers(true, active && self.standby.is_empty());
        let foreign = covers(false, active && no_peer);
        match (local, foreign) {
            (true, true) => "all",
            (true, false) => "local",
            (false, true) => "foreign",
            (false, false) => "none",
        }
    }

    pub(super) fn groups_keys(&self) -> Vec<&str> {
        self.groups.iter().map(|g| g.key.as_str()).collect()
    }

    // ---------------------------------------------------------------
    // Decisions
    // ---------------------------------------------------------------
}

/// heartbeat's `ts`: the sender's wall clock in seconds, never 0 (a zero
/// `ts` is dropped by the receiver).
pub fn beat_ts(wall_base: u64, now: Time) -> u64 {
    (wall_base + now.as_secs()).max(1)
}
