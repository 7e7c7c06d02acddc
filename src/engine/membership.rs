//! Membership: deadlines, incoming packets, proof of life, liveness probes
//! and retransmission.

use super::*;

impl Engine {
    pub(super) fn timers(&mut self, now: Time) {
        // Peer deadlines first, so a beat we send reflects them.
        for n in 0..self.peers.len() {
            if n == self.me {
                continue;
            }
            match self.peers[n].state {
                PeerState::Unknown if now >= self.started + self.timings.initdead => {
                    self.peers[n].state = PeerState::Dead;
                    // Never heard: it may hold anything since before we
                    // started (initdead is at least its deadtime).
                    self.record_silence(n);
                    let node = self.nodes[n].clone();
                    self.event(Event::PeerDead {
                        node,
                        graceful: false,
                    });
                }
                PeerState::Up => {
                    let p = &self.peers[n];
                    if p.last_heard.is_some_and(|h| now >= h + p.dead_after) {
                        self.mark_dead(n, false);
                        continue;
                    }
                    let dead = self.timings.deadtime;
                    let mut down = Vec::new();
                    for (l, (t, up)) in self.peers[n].links.iter_mut() {
                        if *up && now >= *t + dead {
                            *up = false;
                            down.push(*l);
                        }
                    }
                    for link in down {
                        let node = self.nodes[n].clone();
                        self.event(Event::LinkDown { node, link });
                    }
                    self.request_retransmits(now, n);
                    self.probe_if_late(now, n);
                }
                _ => {}
            }
        }
        for i in 0..self.ping.len() {
            let up = self.ping[i].1.is_some_and(|t| now < t + self.deadping);
            if up != self.ping_up[i] {
                self.ping_up[i] = up;
                let target = self.ping[i].0.clone();
                self.event(if up {
                    Event::PingUp { target }
                } else {
                    Event::PingDown { target }
                });
            }
        }
        self.check_comm_up();
        if now >= self.next_beat {
            self.send_status();
            self.next_beat = Engine::beat_after(self.next_beat, now, self.timings.keepalive);
        }
    }

    pub(super) fn mark_dead(&mut self, n: NodeId, graceful: bool) {
        if graceful {
            self.peers[n].released_by = None;
            self.fence_clear(n);
        } else {
            self.record_silence(n);
        }
        let p = &mut self.peers[n];
        p.up_since = None;
        p.state = PeerState::Dead;
        p.active = false;
        p.rexmit.clear();
        for (_, up) in p.links.values_mut() {
            *up = false;
        }
        p.advert = Advert::default();
        p.advert_raw.clear();
        p.reported = false;
        p.hb_stable = false;
        p.active_since = None;
        let node = self.nodes[n].clone();
        self.event(Event::PeerDead { node, graceful });
        // heartbeat: standby does not survive the peer's death (mach_down
        // takes the groups back regardless).
        self.standby.clear();
    }

    pub(super) fn check_comm_up(&mut self) {
        if self.comm_up || !self.reconciled || self.leaving {
            return;
        }
        let waiting = (0..self.peers.len())
            .any(|n| n != self.me && self.peers[n].state == PeerState::Unknown);
        if waiting {
            return;
        }
        self.comm_up = true;
        self.event(Event::CommUp);
        self.send_status();
        // heartbeat peers only go active after reqnodes/repnodes (§1.7).
        if let Some(peer) = (0..self.peers.len()).find(|&n| n != self.me && self.peers[n].live()) {
            let mut m = Message::new("reqnodes");
            m.add_str("dest", &self.nodes[peer]);
            self.send(m);
        }
        self.send(Message::new("starting"));
    }

    // ---------------------------------------------------------------
    // Packets
    // ---------------------------------------------------------------

    pub(super) fn on_packet(&mut self, now: Time, link: LinkId, msg: Message) {
        let Some(src) = msg.get_str("src").map(str::to_ascii_lowercase) else {
            return self.drop_packet("no src", None);
        };
        let Some(n) = self.nodes.iter().position(|x| *x == src) else {
            return self.drop_packet("unknown node", Some(src));
        };
        if n == self.me {
            return; // our own message looped back by a shared ucast list
        }
        let kind = msg.kind().unwrap_or("").to_string();
        // Messages for another node still count for sequencing and
        // liveness; only their content is not ours.
        let for_us = msg
            .get_str("dest")
            .is_none_or(|d| d.eq_ignore_ascii_case(&self.nodes[self.me]));
        if kind.starts_with("NS_") {
            if !for_us {
                return;
            }
            // Not sequenced, never retransmitted, never proof of life.
            return self.on_control(now, n, link, &kind, &msg);
        }
        let (Some(hg), Some(seq)) = (msg.get_hex("hg"), msg.get_hex("seq")) else {
            return self.drop_packet("no seq or generation", Some(src));
        };
        if self.peers[n].gone.is_some_and(|g| hg <= g) {
            return; // a stopped node's last words
        }
        if msg.get_hex("ts").unwrap_or(0) == 0 {
            return self.drop_packet("zero timestamp", Some(src));
        }
        let verdict = self.peers[n].seq.observe(hg, seq);
        if self.peers[n].state == PeerState::Dead
            && verdict.accepted()
            && !matches!(verdict, Verdict::Restarted { .. })
        {
            // Back after a partition, same generation: it may have answered
            // for our addresses meanwhile, so neighbours may point at it. (A
            // restarted peer held nothing: no need.)
            for g in 0..self.groups.len() {
                if self.local[g] == Local::Held && self.groups[g].vips.contains(&true) {
                    self.out.push(Output::Announce { group: g });
                }
            }
        }
        // A retransmitted message that fills a gap is older than one
        // already taken in: what it says of the sender's state (its advert,
        // st=) is stale. After a one-way cut heals, such a beat still says
        // we are dead, and taking it in made us yield a group just given
        // back (chaos seed 4008, docs/RELIABILITY.md).
        let late = matches!(verdict, Verdict::Filled);
        let in_order = match verdict {
            Verdict::Replay => {
                self.counters.replays += 1;
                return self.drop_packet("replayed (old generation)", Some(src));
            }
            Verdict::Invalid => return self.drop_packet("bad seq or generation", Some(src)),
            Verdict::Duplicate => {
                // Every message comes once per medium: the first copy is in
                // order, the rest are duplicates, yet each shows that its
                // medium works (heartbeat credits every medium a message
                // arrives on). Not proof of life, since a replay can be.
                if self.peers[n].live() {
                    self.link_heard(now, n, link);
                    // Also what a status overtaken by a later message looks
                    // like when the seqs before that one were given up (a
                    // peer back from the dead, or a gap too long to track).
                    if for_us && kind == "status" {
                        self.late_status(now, n, seq, &msg);
                    }
                }
                return;
            }
            Verdict::Unsequenced => return,
            Verdict::Restarted { .. } => {
                self.peers[n].rexmit.clear();
                if self.peers[n].state == PeerState::Up {
                    self.event(Event::PeerRestarted { node: src.clone() });
                }
                // A restarted peer holds nothing until it says so.
                self.peers[n].advert = Advert::default();
                self.peers[n].advert_raw.clear();
                self.peers[n].active = false;
                self.peers[n].status_seq = 0;
                self.peers[n].reported = false;
                self.peers[n].hb_stable = false;
                self.peers[n].active_since = None;
                true
            }
            Verdict::InOrder => true,
            Verdict::Gap { missing } => {
                // A peer back from the dead (partition heal) says what it
                // holds in its next beat; what it sent meanwhile is moot.
                if self.peers[n].state == PeerState::Dead {
                    for s in missing {
                        self.peers[n].seq.give_up(s);
                    }
                } else {
                    let when = now + self.rexmit_delay();
                    for s in missing {
                        self.peers[n].rexmit.entry(s).or_insert((when, 0));
                    }
                }
                false
            }
            Verdict::Filled => {
                self.peers[n].rexmit.remove(&seq);
                false
            }
            Verdict::Reset { .. } => {
                self.peers[n].rexmit.clear();
                false
            }
        };
        self.maybe_ack(n, seq, in_order);
        self.heard(now, n, link);
        if !for_us {
            return;
        }
        match kind.as_str() {
            "status" => self.on_status(now, n, seq, &msg, late),
            "resource" => {
                let info = msg.get_str("info").unwrap_or("");
                match Advert::from_message(&msg, &self.groups_keys()) {
                    Some(_) if late => {}
                    Some(a) => self.set_advert(n, a),
                    // heartbeat announces a stop or a standby before it
                    // releases: it holds what it held until `shutdone` or
                    // its `ask_resources info=done`.
                    None if info == "shutdown" || info == "standby" => {}
                    None => self.hb_resource(n, &msg),
                }
                if info == "shutdown" {
                    self.peers[n].advert.leaving = true;
                    self.peers[n].advert_raw.clear();
                    self.changes += 1;
                }
            }
            "shutdone" => {
                // heartbeat beats on for a moment after shutdone; those
                // beats must not bring the node back (vectors/seed-stop).
                self.peers[n].gone = self.peers[n].seq.generation();
                self.mark_dead(n, true);
            }
            "reqnodes" => {
                let mut m = Message::new("repnodes");
                let list: String = self.nodes.iter().map(|x| format!("{x} ")).collect();
                m.add_str("dest", &src)
                    .add_str("nodelist", &list)
                    .add_str("delnodelist", " ");
                self.send(m);
            }
            "starting" => self.send_resource(None),
            "ask_resources" => self.on_ask_resources(n, &msg),
            "hb_takeover" => {
                let scope = msg
                    .get_str("rsc_hold")
                    .and_then(Scope::parse)
                    .unwrap_or(Scope::All);
                // heartbeat's rc.d/hb_takeover: the peer goes standby for
                // what the requester takes, seen from the requester.
                let gs = self.scope_groups_of(n, scope, true);
                self.standby.extend(gs);
                if !self.peers[n].advert.harust {
                    // It wants them back: it no longer declines them.
                    self.peers[n].advert.standby.clear();
                }
                self.event(Event::TakeoverRequested {
                    scope,
                    by: src.clone(),
                });
            }
            "ip-request" => self.on_ip_request(n, &msg),
            "ip-request-resp" => {
                // Legacy failback: a heartbeat holder let go of the group.
                let g = msg
                    .get_str("ipaddr")
                    .and_then(|k| self.groups.iter().position(|x| x.key == k));
                if let Some(g) = g
                    && !self.peers[n].advert.harust
                    && msg.get_str("weown") == Some("yes")
                {
                    let a = &mut self.peers[n].advert;
                    a.held.remove(&g);
                    a.busy.remove(&g);
                    self.changes += 1;
                }
            }
            _ => {} // repnodes, stonith: informational here
        }
    }

    /// heartbeat's ACK rule (§1.6): ack every tenth seq, never at or past a
    /// missing one, since heartbeat ignores retransmit requests for seqs
    /// already acked. When a gap fills, ack what is now complete.
    /// A harust peer is not acked: it has no use for acks (its history is
    /// bounded by count), and a quiet pair then sends nothing but beats.
    pub(super) fn maybe_ack(&mut self, n: NodeId, seq: u64, in_order: bool) {
        let p = &self.peers[n];
        if p.advert.harust || p.seq.missing().next().is_some() {
            return;
        }
        let Some(last) = p.seq.last_seq() else {
            return;
        };
        let trigger = p.ack_trigger;
        let ack = if in_order {
            (seq % 10 == trigger).then_some(seq)
        } else {
            // The highest seq ≡ trigger (mod 10) up to `last`, if the gap
            // that just filled reached it.
            // (`last % 10` first: a forged seq near u64::MAX must not overflow.)
            last.checked_sub((last % 10 + 10 - trigger) % 10)
                .filter(|&a| a >= seq)
        };
        if let Some(a) = ack {
            let mut m = Message::new("NS_ackmsg");
            m.add_str("dest", &self.nodes[n].clone())
                .add_hex("ackseq", a);
            self.send(m);
        }
    }

    pub(super) fn on_control(
        &mut self,
        now: Time,
        n: NodeId,
        link: LinkId,
        kind: &str,
        msg: &Message,
    ) {
        match kind {
            PROBE => {
                // Likewise, only a peer that probes again (a keepalive/10
                // later) has missed our answer or our beat.
                let last = self.peers[n].probed_at.replace(now);
                if last.is_some_and(|t| now.saturating_sub(t) <= self.late_after()) {
                    self.disturbed();
                }
                if let Some(nonce) = msg.get_str("hr_nonce") {
                    let mut m = Message::new(PROBE_ACK);
                    m.add_str("dest", &self.nodes[n].clone())
                        .add_str("hr_nonce", nonce);
                    self.send(m);
                }
            }
            PROBE_ACK => {
                // Proof of life only for a nonce we sent: a replayed ack
                // cannot keep a dead node alive.
                let nonce = msg.get_hex("hr_nonce");
                let p = &mut self.peers[n];
                if let Some(i) = nonce.and_then(|x| p.probes.iter().position(|y| *y == x)) {
                    p.probes.remove(i);
                    if p.state == PeerState::Up {
                        self.heard(now, n, link);
                    }
                }
            }
            "NS_rexmit" => {
                self.disturbed();
                let (Some(first), Some(last)) = (msg.get_dec("firstseq"), msg.get_dec("lastseq"))
                else {
                    return self.drop_packet("bad NS_rexmit", Some(self.nodes[n].clone()));
                };
                // At most 50 per request, as heartbeat.
                for s in first..=last.min(first.saturating_add(49)) {
                    self.resend(now, n, s);
                }
            }
            "NS_nak_rexmit" => {
                if let Some(s) = msg.get_hex("firstseq") {
                    self.peers[n].rexmit.remove(&s);
                    self.peers[n].seq.give_up(s);
                }
            }
            _ => {} // NS_ackmsg: flow control is not needed by harust itself
        }
    }

    /// A status beat; `late` for a retransmit that filled a gap, whose
    /// state is older than what the sender has said since.
    pub(super) fn on_status(&mut self, now: Time, n: NodeId, seq: u64, msg: &Message, late: bool) {
        self.counters.beats_received += 1;
        if late {
            return self.late_status(now, n, seq, msg);
        }
        let p = &mut self.peers[n];
        if let Some(dt) = msg.get_hex("dt")
            && dt > 0
        {
            // PROTOCOL.md §1.5: judge the sender by its own deadtime.
            p.dead_after = Duration::from_millis(dt);
        }
        if let Some(prev) = p.last_status.replace(now) {
            let interval = now.saturating_sub(prev);
            if interval > self.timings.warntime && p.state == PeerState::Up {
                self.counters.late_beats += 1;
                let node = self.nodes[n].clone();
                self.event(Event::LateHeartbeat { node, interval });
            }
        }
        self.take_st(now, n, seq, msg);
        let mut raw = std::mem::take(&mut self.raw_scratch);
        Advert::raw_fields(msg, &mut raw);
        if raw != self.peers[n].advert_raw {
            if let Some(a) = Advert::from_message(msg, &self.groups_keys()) {
                self.set_advert(n, a);
                std::mem::swap(&mut raw, &mut self.peers[n].advert_raw);
            }
        }
        self.raw_scratch = raw;
    }

    /// Whether the peer is active, from its status `seq`.
    fn take_st(&mut self, now: Time, n: NodeId, seq: u64, msg: &Message) {
        let p = &mut self.peers[n];
        p.status_seq = seq;
        p.active = msg.get_str("st") == Some("active");
        if p.active && p.active_since.is_none() {
            p.active_since = Some(now);
        }
    }

    /// A status that arrives after a later message of its sender: what it
    /// advertises is older than what that message said (chaos seed 4008),
    /// but its `st` is the newest unless a later status came first. After
    /// a partition heals, a peer's `resource` overtaking its `status` left
    /// the peer not active, and both sides holding, for another keepalive.
    fn late_status(&mut self, now: Time, n: NodeId, seq: u64, msg: &Message) {
        if seq > self.peers[n].status_seq {
            self.take_st(now, n, seq, msg);
        }
    }

    pub(super) fn set_advert(&mut self, n: NodeId, a: Advert) {
        self.peers[n].advert_raw.clear();
        if let Some(m) = &a.maintenance {
            self.apply_maintenance(m.clone());
        }
        if self.peers[n].advert != a {
            self.changes += 1;
            self.peers[n].advert = a;
        }
    }

    /// Proof of life from a sequenced message.
    pub(super) fn heard(&mut self, now: Time, n: NodeId, link: LinkId) {
        let was = self.peers[n].state;
        let p = &mut self.peers[n];
        p.last_heard = Some(now);
        p.next_probe = None;
        let newly_up = was != PeerState::Up;
        if newly_up {
            p.state = PeerState::Up;
            p.last_status = None;
            p.up_since = Some(now);
            p.released_by = None;
        }
        if newly_up {
            self.fence_clear(n);
            let node = self.nodes[n].clone();
            self.event(Event::PeerUp { node });
            // Answer at once so the newcomer need not wait a keepalive.
            if self.first_status_sent {
                self.send_status();
            }
        }
        self.link_heard(now, n, link);
    }

    /// A message from peer `n` arrived over `link`.
    pub(super) fn link_heard(&mut self, now: Time, n: NodeId, link: LinkId) {
        let e = self.peers[n].links.entry(link).or_insert((now, false));
        e.0 = now;
        if !e.1 {
            e.1 = true;
            let node = self.nodes[n].clone();
            self.event(Event::LinkUp { node, link });
        }
    }

    /// When a harust peer's beats are late, ask it directly, several times
    /// before its deadline: under loss, one answer is enough evidence that
    /// it lives, where a plain miss-three-beats rule would declare it dead.
    /// From 1.2 keepalives on, every keepalive/10: at 10 ms / 30 ms that is
    /// eighteen round trips before the deadline (`sim`
    /// `no_false_failover_at_fast_timings_under_heavy_loss`).
    pub(super) fn probe_if_late(&mut self, now: Time, n: NodeId) {
        let Some(due) = self.probe_due(n) else {
            return;
        };
        if now < due {
            return;
        }
        let nonce = next_rand(&mut self.rng);
        let interval = self.probe_interval();
        let p = &mut self.peers[n];
        // The first probe is what a stall of a few milliseconds on either
        // side costs, and the peer's next beat answers it; a second one
        // means that beat is missing too, which looks like loss.
        let again = p.next_probe.is_some();
        p.probes.push_back(nonce);
        if p.probes.len() > PROBES_KEPT {
            p.probes.pop_front();
        }
        p.next_probe = Some(now + interval);
        if again {
            self.disturbed();
        }
        let mut m = Message::new(PROBE);
        m.add_str("dest", &self.nodes[n].clone())
            .add_hex("hr_nonce", nonce);
        self.send(m);
    }

    /// Silence after which a peer's beat counts as late (1.2 keepalives).
    pub(super) fn late_after(&self) -> Duration {
        self.timings.keepalive + self.timings.keepalive / 5
    }

    pub(super) fn probe_interval(&self) -> Duration {
        (self.timings.keepalive / 10).max(Duration::from_millis(1))
    }

    /// When the next probe to `n` is due, if it is a live harust peer.
    pub(super) fn probe_due(&self, n: NodeId) -> Option<Time> {
        let p = &self.peers[n];
        if p.state != PeerState::Up || !p.advert.harust {
            return None;
        }
        let heard = p.last_heard?;
        let late = heard + self.late_after();
        Some(p.next_probe.unwrap_or(late).max(late))
    }

    pub(super) fn drop_packet(&mut self, reason: &'static str, node: Option<String>) {
        self.counters.bad_packets += 1;
        self.event(Event::Dropped { reason, node });
    }

    pub(super) fn rexmit_delay(&mut self) -> Duration {
        // heartbeat waits a random 50..250 ms so that many receivers do not
        // all ask at once (§1.6).
        Duration::from_millis(50 + next_rand(&mut self.rng) % 200)
    }

    pub(super) fn request_retransmits(&mut self, now: Time, n: NodeId) {
        // The tracker is the truth about what is still missing.
        let p = &mut self.peers[n];
        if !p.rexmit.is_empty() {
            let missing: BTreeSet<u64> = p.seq.missing().collect();
            p.rexmit.retain(|s, _| missing.contains(s));
        }
        let due: Vec<(u64, u32)> = self.peers[n]
            .rexmit
            .iter()
            .filter(|(_, (t, _))| *t <= now)
            .map(|(s, (_, c))| (*s, *c))
            .collect();
        for (s, count) in due {
            if count >= REXMIT_TRIES {
                // Irretrievably lost, as heartbeat logs it; the next beat
                // carries the state that matters anyway.
                self.peers[n].rexmit.remove(&s);
                self.peers[n].seq.give_up(s);
                continue;
            }
            self.peers[n]
                .rexmit
                .insert(s, (now + REXMIT_REPEAT, count + 1));
            let mut m = Message::new("NS_rexmit");
            m.add_str("dest", &self.nodes[n].clone())
                .add_str("firstseq", &s.to_string())
                .add_str("lastseq", &s.to_string());
            self.counters.retransmits_requested += 1;
            self.disturbed();
            self.send(m);
        }
    }

    pub(super) fn resend(&mut self, now: Time, n: NodeId, s: u64) {
        if let Some(t) = self.peers[n].resent.get(&s)
            && now < *t + REXMIT_HOLDOFF
        {
            return;
        }
        self.peers[n].resent.insert(s, now);
        if self.peers[n].resent.len() > HISTORY {
            self.peers[n].resent.pop_first();
        }
        match self.history.iter().find(|(q, _)| *q == s) {
            Some((_, m)) => {
                let m = m.clone();
                self.counters.retransmits_sent += 1;
                self.out.push(Output::Send(m));
            }
            None => {
                let mut m = Message::new("NS_nak_rexmit");
                let info = if self.history.front().is_some_and(|(q, _)| s < *q) {
                    "seqno too low"
                } else {
                    "seqno not found"
                };
                m.add_hex("firstseq", s)
                    .add_str("dest", &self.nodes[n].clone())
                    .add_str("info", info);
                self.send(m);
            }
        }
    }

    // ---------------------------------------------------------------
    // Sending
    // ---------------------------------------------------------------
}
