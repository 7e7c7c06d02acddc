//! TEMPORARY stub until the wire branch lands.
pub enum Verdict { Replay, Duplicate, Restarted, InOrder, Gap { missing: Vec<u64> }, Filled, Reset }
#[derive(Debug, Default)]
pub struct SeqTracker { hg: u64, last: u64, seen: bool }
impl SeqTracker {
    pub fn new() -> Self { Self::default() }
    pub fn observe(&mut self, hg: u64, seq: u64) -> Verdict {
        if !self.seen || hg > self.hg { let r = self.seen; self.seen = true; self.hg = hg; self.last = seq; return if r { Verdict::Restarted } else { Verdict::InOrder }; }
        if hg < self.hg { return Verdict::Replay; }
        if seq <= self.last { return Verdict::Duplicate; }
        let gap = seq > self.last + 1; let missing = (self.last + 1..seq).collect();
        self.last = seq;
        if gap { Verdict::Gap { missing } } else { Verdict::InOrder }
    }
    pub fn forget(&mut self, _seq: u64) {}
}
