//! Per-peer sequence and generation tracking (PROTOCOL.md §1.6;
//! `hb:heartbeat.c should_drop_message`, `is_lost_packet`).
//!
//! One [`SeqTracker`] per peer node. Feed it the `hg` and `seq` of every
//! authenticated message from that node; it says whether to process the
//! message and which sequence numbers are missing (to ask for with
//! `NS_rexmit`). Pure: no clock, no I/O; retransmission timing is the
//! engine's job.
//!
//! Differences from heartbeat, on purpose:
//! * A higher `hg` on *any* message is a restart. Heartbeat only resets on
//!   a `status`, and until then drops the restarted node's other messages
//!   as duplicates of the old incarnation. `hg` is covered by the
//!   authenticators and only grows, so this is safe.
//! * The "returning after partition" case (same `hg`, node marked dead)
//!   needs the node's status, which the engine has: it calls
//!   [`SeqTracker::reset`] there.

use std::collections::BTreeSet;
use std::ops::Range;

use super::Message;

/// A gap larger than this resets tracking ("lost a lot of packets!";
/// `FLOWCONTROL_LIMIT` = MAXMSGHIST/2).
pub const MAX_GAP: u64 = 250;

/// At most this many missing sequence numbers are remembered; beyond it
/// the lowest is forgotten (`MAXMISSING`).
pub const MAX_MISSING: usize = 500;

/// What to do with a message, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The first message from the node, or `seq == last + 1`. Accept.
    InOrder,
    /// `hg` is higher than before: the node restarted. Tracking was reset
    /// and this `seq` is the new baseline. Accept.
    Restarted { previous_hg: u64 },
    /// `seq` skipped ahead by at most [`MAX_GAP`]; `missing` were recorded
    /// (see [`SeqTracker::missing`]) for `NS_rexmit`. Accept.
    Gap { missing: Range<u64> },
    /// A recorded missing `seq` arrived late. Accept (once; a second copy
    /// is a `Duplicate`).
    Filled,
    /// `seq` skipped ahead by more than [`MAX_GAP`]: tracking was reset and
    /// this `seq` is the new baseline; `lost` messages will not be asked
    /// for. Accept.
    Reset { lost: u64 },
    /// `seq` was already seen (or is older than anything tracked). Drop.
    Duplicate,
    /// `hg` is lower than the node's current generation ("attempted replay
    /// attack"). Drop.
    Replay,
    /// `hg`, `seq` or `ts` missing, unparsable or zero. Drop.
    Invalid,
    /// An `NS_*` message: it carries no `seq` and bypasses tracking. Accept.
    Unsequenced,
}

impl Verdict {
    /// Whether the message should be processed.
    pub fn accepted(&self) -> bool {
        matches!(
            self,
            Verdict::InOrder
                | Verdict::Restarted { .. }
                | Verdict::Gap { .. }
                | Verdict::Filled
                | Verdict::Reset { .. }
                | Verdict::Unsequenced
        )
    }

    /// A stable short name, for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Verdict::InOrder => "in_order",
            Verdict::Restarted { .. } => "restarted",
            Verdict::Gap { .. } => "gap",
            Verdict::Filled => "filled",
            Verdict::Reset { .. } => "reset",
            Verdict::Duplicate => "duplicate",
            Verdict::Replay => "replay",
            Verdict::Invalid => "invalid",
            Verdict::Unsequenced => "unsequenced",
        }
    }
}

/// Sequence tracking for one peer node (`struct seqtrack`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqTracker {
    /// Highest generation seen; 0 before the first message.
    generation: u64,
    /// Highest seq seen in this generation; `None` after a reset.
    last_seq: Option<u64>,
    missing: BTreeSet<u64>,
}

impl SeqTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// The node's generation, once a message was seen.
    pub fn generation(&self) -> Option<u64> {
        (self.generation != 0).then_some(self.generation)
    }

    /// The highest sequence number seen in the current generation.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// Missing sequence numbers, lowest first.
    pub fn missing(&self) -> impl Iterator<Item = u64> + '_ {
        self.missing.iter().copied()
    }

    /// Forgets the sequence state but keeps the generation: the next
    /// message is taken as the new baseline (`reset_seqtrack`). For a node
    /// returning after a partition with the same `hg`.
    pub fn reset(&mut self) {
        self.last_seq = None;
        self.missing.clear();
    }

    /// Stops waiting for `seq` ("Irretrievably lost packet", on
    /// `NS_nak_rexmit`). Returns whether it was missing.
    pub fn give_up(&mut self, seq: u64) -> bool {
        self.missing.remove(&seq)
    }

    /// Classifies a message with generation `hg` and sequence `seq`.
    pub fn observe(&mut self, hg: u64, seq: u64) -> Verdict {
        if hg == 0 || seq == 0 {
            return Verdict::Invalid;
        }
        let mut restarted = None;
        if hg < self.generation {
            return Verdict::Replay;
        } else if hg > self.generation {
            if self.generation != 0 {
                restarted = Some(self.generation);
            }
            self.generation = hg;
            self.reset();
        }
        let Some(last) = self.last_seq else {
            self.last_seq = Some(seq);
            return match restarted {
                Some(previous_hg) => Verdict::Restarted { previous_hg },
                None => Verdict::InOrder,
            };
        };
        if seq == last {
            return Verdict::Duplicate;
        }
        if seq < last {
            return if self.missing.remove(&seq) {
                Verdict::Filled
            } else {
                Verdict::Duplicate
            };
        }
        // seq > last, so last + 1 cannot overflow.
        let first_missing = last + 1;
        self.last_seq = Some(seq);
        if seq == first_missing {
            return Verdict::InOrder;
        }
        let lost = seq - first_missing;
        if lost > MAX_GAP {
            self.missing.clear();
            return Verdict::Reset { lost };
        }
        for k in first_missing..seq {
            self.missing.insert(k);
            if self.missing.len() > MAX_MISSING {
                self.missing.pop_first();
            }
        }
        Verdict::Gap {
            missing: first_missing..seq,
        }
    }

    /// [`observe`](Self::observe) for a received message: `NS_*` messages
    /// bypass tracking; otherwise `hg`, `seq` and `ts` (hex, non-zero) are
    /// required.
    pub fn observe_msg(&mut self, msg: &Message) -> Verdict {
        if msg.kind().is_some_and(|t| t.starts_with("NS_")) {
            return Verdict::Unsequenced;
        }
        match (msg.get_hex("hg"), msg.get_hex("seq"), msg.get_hex("ts")) {
            (Some(hg), Some(seq), Some(ts)) if ts != 0 => self.observe(hg, seq),
            _ => Verdict::Invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker_at(hg: u64, seq: u64) -> SeqTracker {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(hg, seq), Verdict::InOrder);
        t
    }

    #[test]
    fn first_message_sets_the_baseline() {
        let mut t = SeqTracker::new();
        assert_eq!(t.generation(), None);
        assert_eq!(t.observe(0x6b06f982, 7), Verdict::InOrder);
        assert_eq!(t.generation(), Some(0x6b06f982));
        assert_eq!(t.last_seq(), Some(7));
    }

    #[test]
    fn next_seq_is_in_order() {
        let mut t = tracker_at(5, 1);
        assert_eq!(t.observe(5, 2), Verdict::InOrder);
        assert_eq!(t.observe(5, 3), Verdict::InOrder);
        assert_eq!(t.missing().count(), 0);
    }

    #[test]
    fn same_seq_twice_is_a_duplicate() {
        let mut t = tracker_at(5, 1);
        assert_eq!(t.observe(5, 1), Verdict::Duplicate);
        assert!(!Verdict::Duplicate.accepted());
    }

    #[test]
    fn older_seq_not_missing_is_a_duplicate() {
        let mut t = tracker_at(5, 1);
        t.observe(5, 2);
        t.observe(5, 3);
        assert_eq!(t.observe(5, 2), Verdict::Duplicate);
    }

    #[test]
    fn lower_generation_is_a_replay() {
        let mut t = tracker_at(5, 10);
        assert_eq!(t.observe(4, 11), Verdict::Replay);
        assert!(!Verdict::Replay.accepted());
        // Tracking is untouched.
        assert_eq!(t.observe(5, 11), Verdict::InOrder);
    }

    #[test]
    fn higher_generation_is_a_restart_and_resets_tracking() {
        let mut t = tracker_at(5, 10);
        t.observe(5, 13);
        assert_eq!(t.missing().collect::<Vec<_>>(), vec![11, 12]);
        assert_eq!(t.observe(6, 1), Verdict::Restarted { previous_hg: 5 });
        assert_eq!(t.generation(), Some(6));
        assert_eq!(t.missing().count(), 0);
        assert_eq!(t.observe(6, 2), Verdict::InOrder);
        // The old incarnation can no longer be replayed.
        assert_eq!(t.observe(5, 14), Verdict::Replay);
    }

    #[test]
    fn gap_is_accepted_and_reports_missing() {
        let mut t = tracker_at(5, 1);
        assert_eq!(t.observe(5, 5), Verdict::Gap { missing: 2..5 });
        assert_eq!(t.missing().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(t.last_seq(), Some(5));
    }

    #[test]
    fn late_missing_seq_is_filled_once() {
        let mut t = tracker_at(5, 1);
        t.observe(5, 4);
        assert_eq!(t.observe(5, 3), Verdict::Filled);
        assert_eq!(t.observe(5, 3), Verdict::Duplicate);
        assert_eq!(t.missing().collect::<Vec<_>>(), vec![2]);
        assert_eq!(t.observe(5, 2), Verdict::Filled);
        assert_eq!(t.missing().count(), 0);
        assert_eq!(t.observe(5, 5), Verdict::InOrder);
    }

    #[test]
    fn gap_of_exactly_max_gap_is_still_tracked() {
        let mut t = tracker_at(5, 1);
        let v = t.observe(5, 2 + MAX_GAP);
        assert_eq!(
            v,
            Verdict::Gap {
                missing: 2..2 + MAX_GAP
            }
        );
        assert_eq!(t.missing().count() as u64, MAX_GAP);
    }

    #[test]
    fn gap_over_max_gap_resets() {
        let mut t = tracker_at(5, 1);
        t.observe(5, 4);
        // last is 4, so 5 ..= 5 + MAX_GAP are lost.
        assert_eq!(
            t.observe(5, 6 + MAX_GAP),
            Verdict::Reset { lost: MAX_GAP + 1 }
        );
        assert_eq!(t.missing().count(), 0);
        assert_eq!(t.observe(5, 7 + MAX_GAP), Verdict::InOrder);
        // What was missing before the reset is forgotten.
        assert_eq!(t.observe(5, 2), Verdict::Duplicate);
    }

    #[test]
    fn missing_is_capped_dropping_the_lowest() {
        let mut t = tracker_at(5, 1);
        let mut seq = 1;
        for _ in 0..3 {
            seq += MAX_GAP + 1;
            assert!(matches!(t.observe(5, seq), Verdict::Gap { .. }));
        }
        assert_eq!(t.missing().count(), MAX_MISSING);
        let lowest = t.missing().next().unwrap();
        assert_eq!(lowest, seq - (MAX_MISSING as u64 + 2) + 1);
        assert_eq!(t.observe(5, 2), Verdict::Duplicate);
        assert_eq!(t.observe(5, seq - 1), Verdict::Filled);
    }

    #[test]
    fn zero_generation_or_seq_is_invalid() {
        let mut t = SeqTracker::new();
        assert_eq!(t.observe(0, 1), Verdict::Invalid);
        assert_eq!(t.observe(1, 0), Verdict::Invalid);
        assert_eq!(t.generation(), None);
    }

    #[test]
    fn give_up_forgets_a_missing_seq() {
        let mut t = tracker_at(5, 1);
        t.observe(5, 3);
        assert!(t.give_up(2));
        assert!(!t.give_up(2));
        assert_eq!(t.observe(5, 2), Verdict::Duplicate);
    }

    #[test]
    fn reset_takes_next_seq_as_baseline_in_same_generation() {
        let mut t = tracker_at(5, 100);
        t.reset();
        assert_eq!(t.observe(5, 3), Verdict::InOrder);
        assert_eq!(t.observe(4, 4), Verdict::Replay);
    }

    #[test]
    fn seq_near_u64_max_does_not_overflow() {
        let mut t = tracker_at(5, u64::MAX - 1);
        assert_eq!(t.observe(5, u64::MAX), Verdict::InOrder);
        assert_eq!(t.observe(5, u64::MAX), Verdict::Duplicate);
    }

    fn msg(fields: &[(&str, &str)]) -> Message {
        let mut m = Message::default();
        for (n, v) in fields {
            m.add_str(n.to_string(), v);
        }
        m
    }

    #[test]
    fn ns_messages_bypass_tracking() {
        let mut t = tracker_at(5, 1);
        let ack = msg(&[
            ("t", "NS_ackmsg"),
            ("ackseq", "1"),
            ("hg", "4"),
            ("ts", "1"),
        ]);
        assert_eq!(t.observe_msg(&ack), Verdict::Unsequenced);
        assert!(Verdict::Unsequenced.accepted());
        assert_eq!(t.observe(5, 2), Verdict::InOrder);
    }

    #[test]
    fn observe_msg_parses_hex_header_and_rejects_zero_ts() {
        let mut t = SeqTracker::new();
        let m = msg(&[
            ("t", "status"),
            ("seq", "a"),
            ("hg", "6b06f982"),
            ("ts", "6b06f981"),
        ]);
        assert_eq!(t.observe_msg(&m), Verdict::InOrder);
        assert_eq!(t.last_seq(), Some(10));
        let m = msg(&[
            ("t", "status"),
            ("seq", "b"),
            ("hg", "6b06f982"),
            ("ts", "0"),
        ]);
        assert_eq!(t.observe_msg(&m), Verdict::Invalid);
        let m = msg(&[("t", "status"), ("hg", "6b06f982"), ("ts", "1")]);
        assert_eq!(t.observe_msg(&m), Verdict::Invalid);
        let m = msg(&[
            ("t", "status"),
            ("seq", "zz"),
            ("hg", "6b06f982"),
            ("ts", "1"),
        ]);
        assert_eq!(t.observe_msg(&m), Verdict::Invalid);
        assert_eq!(t.last_seq(), Some(10));
    }
}
