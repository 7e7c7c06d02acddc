//! Leases: while the engine is quiet, the runtime may beat without it.
//!
//! At a 10 ms keepalive a quiet node's whole job is to send a beat that
//! differs from the last only in `seq` and `ts`, and to take its peers'
//! beats that differ from theirs only in the same way. A lease hands that
//! job to a small loop with the beat the engine would send next; the
//! runtime then feeds the engine everything that happened, in order, and
//! checks that each beat the engine produces is the one that went out
//! (docs/RELIABILITY.md). The terms say when the lease must end.

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
    /// Silent this long, it is dead (its own deadtime).
    pub dead_after: Duration,
    /// Its media that are up, and when each was last heard.
    pub links: Vec<(LinkId, Time)>,
}

impl Engine {
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
