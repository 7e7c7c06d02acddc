//! Leases: while the engine is quiet, the runtime may beat without it.
//!
//! At a 10 ms keepalive a quiet node's whole job is to send a beat that
//! differs from the last only in `seq` and `ts`, and to take its peers'
//! beats that differ from theirs only in the same way. A lease hands that
//! job to a small loop with the beat the engine would send next. When the
//! lease ends, the engine takes in what happened before the lease's last
//! beat at once ([`Engine::lease_forward`]), and the runtime feeds it the
//! rest, from that beat on, in order, checking that the beat the engine
//! produces is the one that went out (docs/RELIABILITY.md). The terms say
//! when the lease must end.

use super::*;

/// What a lease may do, and until when.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// The next status beat, header included; the lease sets `seq` and
    /// `ts` of each beat it sends.
    pub beat: Message,
    /// The seq of the first beat the lease sends.
    pub seq: u64,
    /// When that beat is due.
    pub next_beat: Time,
    pub keepalive: Duration,
    /// A peer silent this long is late: the lease ends.
    pub late_after: Duration,
    /// A peer's beat this long after its last is a late heartbeat (an
    /// event): the lease ends with it.
    pub warntime: Duration,
    /// A medium silent this long is down: the lease ends.
    pub deadtime: Duration,
    /// `ts` of a beat sent at `t` is [`beat_ts`]`(wall_base, t)`.
    pub wall_base: u64,
    /// The lease ends by then, whatever happens.
    pub until: Option<Time>,
    /// Every peer that is up.
    pub peers: Vec<LeasePeer>,
}

/// A peer as a lease expects it: its next beat is `last_seq + 1`.
#[derive(Debug, Clone)]
pub struct LeasePeer {
    pub node: NodeId,
    pub last_seq: u64,
    pub last_heard: Time,
    /// When its last status came, if one did since it came up.
    pub last_status: Option<Time>,
    /// Silent this long, it is dead (its own deadtime).
    pub dead_after: Duration,
    /// Its media that are up, and when each was last heard.
    pub links: Vec<(LinkId, Time)>,
}

/// What a lease did before its last beat, for [`Engine::lease_forward`]:
/// nothing but beats, ours and the peers' in order (no late one, no gap).
#[derive(Debug, Clone, Default)]
pub struct LeaseDone {
    /// When each of our beats went out, the first with the terms' `seq`.
    pub beats: Vec<Time>,
    /// The peers whose beats were taken, as after the last of them.
    pub peers: Vec<PeerDone>,
}

/// A peer after the beats a lease took from it.
#[derive(Debug, Clone)]
pub struct PeerDone {
    pub node: NodeId,
    /// Its last beat taken, and when it came (first copy).
    pub last_seq: u64,
    pub last_heard: Time,
    /// How many of its beats were taken (first copies).
    pub taken: u64,
    /// When each of its media was last heard (every copy).
    pub links: Vec<(LinkId, Time)>,
}

impl Engine {
    /// Takes in what a lease did before its last beat, as if each of those
    /// beats, ours and the peers', had been fed in order: for a quiet
    /// engine a peer's beat that says what its last said moves only its
    /// seq, its times and a counter, and our beat only our seq, schedule,
    /// history and a counter (`tests/engine_lease.rs` holds this against
    /// feeding the same log in full). Sends nothing: those beats went out.
    pub fn lease_forward(&mut self, done: &LeaseDone) {
        for d in &done.peers {
            let p = &mut self.peers[d.node];
            if let (Some(hg), Some(last)) = (p.seq.generation(), p.seq.last_seq()) {
                for s in last.saturating_add(1)..=d.last_seq {
                    p.seq.observe(hg, s);
                }
            }
            if d.taken > 0 {
                p.last_heard = Some(d.last_heard);
                p.last_status = Some(d.last_heard);
                p.next_probe = None;
                p.status_seq = d.last_seq;
                self.counters.beats_received += d.taken;
            }
            for &(l, t) in &d.links {
                if let Some(e) = p.links.get_mut(&l) {
                    e.0 = e.0.max(t);
                }
            }
            self.now = self.now.max(d.last_heard);
        }
        let Some(&first) = done.beats.first() else {
            return;
        };
        // One beat built as `timers` would, each of the others a copy with
        // its own seq and ts (the lease changes nothing else in it).
        let mut beat = self.status_message();
        self.stamp(&mut beat, Some(self.seq + 1), first);
        for &at in &done.beats {
            self.now = self.now.max(at);
            self.seq += 1;
            beat.set_hex("seq", self.seq);
            beat.set_hex("ts", beat_ts(self.params.wall_base, at));
            self.remember(std::sync::Arc::new(beat.clone()));
            self.counters.beats_sent += 1;
            self.next_beat = Engine::beat_after(self.next_beat, at, self.timings.keepalive);
        }
    }

    /// The terms of a lease, if one may be taken now: the engine is quiet
    /// ([`Engine::quiet`]), every peer is a harust node that is up or dead,
    /// and no seq of any peer is missing. A heartbeat peer is never leased
    /// to: it expects our acks on time.
    pub fn lease(&self) -> Option<LeaseTerms> {
        if !self.quiet() || !self.first_status_sent {
            return None;
        }
        let mut peers = Vec::new();
        for (n, p) in self.peers.iter().enumerate() {
            if n == self.me || p.state == PeerState::Dead {
                continue;
            }
            if p.state != PeerState::Up || !p.advert.harust || p.seq.missing().next().is_some() {
                return None;
            }
            peers.push(LeasePeer {
                node: n,
                last_seq: p.seq.last_seq()?,
                last_heard: p.last_heard?,
                last_status: p.last_status,
                dead_after: p.dead_after,
                links: p
                    .links
                    .iter()
                    .filter(|(_, (_, up))| *up)
                    .map(|(l, (t, _))| (*l, *t))
                    .collect(),
            });
        }
        let seq = self.seq + 1;
        let mut beat = self.status_message();
        self.stamp(&mut beat, Some(seq), self.now);
        Some(LeaseTerms {
            beat,
            seq,
            next_beat: self.next_beat,
            keepalive: self.timings.keepalive,
            late_after: self.late_after(),
            warntime: self.timings.warntime,
            deadtime: self.timings.deadtime,
            wall_base: self.params.wall_base,
            until: self.other_deadlines(),
            peers,
        })
    }

    /// When the beat after one sent at `sent` is due, by the rule of
    /// [`timers`](Self::timers), for a lease to keep the same schedule.
    pub fn beat_after(next_beat: Time, sent: Time, keepalive: Duration) -> Time {
        let next = (next_beat + keepalive).max(sent);
        if next == sent { sent + keepalive } else { next }
    }
}
