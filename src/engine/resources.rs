//! Resource results: starts, stops, failures and losses.

use super::*;

impl Engine {
    pub(super) fn on_resource_done(
        &mut self,
        _now: Time,
        g: GroupId,
        r: usize,
        op: Op,
        result: Result<(), String>,
    ) {
        if g >= self.groups.len() {
            return;
        }
        if self.cleanup.contains(&(g, r)) {
            if let Err(reason) = result {
                self.resource_failed(g, r, Some(op), reason);
                if self.retry_stop(g, r) {
                    return;
                }
            }
            self.cleanup.remove(&(g, r));
            self.stop_tries.remove(&(g, r));
            if self.cleanup.is_empty() {
                self.reconciled = true;
            }
            return;
        }
        if op == Op::Start && self.repairing.remove(&(g, r)) {
            match result {
                Ok(()) => {
                    let group = self.groups[g].key.clone();
                    self.event(Event::ResourceRepaired { group, resource: r });
                }
                Err(reason) => {
                    self.resource_failed(g, r, Some(op), reason);
                    self.fail_group(g);
                }
            }
            return;
        }
        match (self.local[g], op) {
            (Local::Acquiring { next, upto }, Op::Start) if next == r => match result {
                Ok(()) if r + 1 < self.groups[g].len => {
                    if r < upto {
                        // r + 1 is in flight already, in the same batch.
                        self.transition(g, Local::Acquiring { next: r + 1, upto });
                    } else {
                        self.start_from(g, r + 1);
                    }
                }
                Ok(()) => self.acquired(g),
                Err(reason) => {
                    self.resource_failed(g, r, Some(op), reason);
                    self.failed.insert(g);
                    // Undo what started, in reverse; the failed one too,
                    // since a unit may be half up, and the rest of its
                    // batch, whose results come after this one.
                    self.stop_from(g, upto);
                }
            },
            (Local::Releasing { next, low }, Op::Stop) if next == r => {
                if let Err(reason) = result {
                    self.resource_failed(g, r, Some(op), reason);
                    if self.retry_stop(g, r) {
                        // The rest of the batch is asked for again after
                        // the retry: its results now would be stale.
                        self.transition(g, Local::Releasing { next: r, low: r });
                        return;
                    }
                }
                self.stop_tries.remove(&(g, r));
                if r == 0 {
                    self.released(g);
                } else if r > low {
                    self.transition(g, Local::Releasing { next: r - 1, low });
                } else {
                    self.stop_from(g, r - 1);
                }
            }
            _ => {} // a late or duplicate result: nothing waits for it
        }
    }

    pub(super) fn resource_failed(&mut self, g: GroupId, r: usize, op: Option<Op>, reason: String) {
        let group = self.groups[g].key.clone();
        self.event(Event::ResourceFailed {
            group,
            resource: r,
            op,
            reason,
        });
    }

    /// A stop that failed may have left the resource up (an address still
    /// answering, a unit still running): try again a few times before
    /// moving on, rather than count it released at once.
    pub(super) fn retry_stop(&mut self, g: GroupId, r: usize) -> bool {
        let tries = self.stop_tries.entry((g, r)).or_insert(0);
        *tries += 1;
        if *tries > STOP_RETRIES {
            self.stop_tries.remove(&(g, r));
            return false;
        }
        self.out.push(Output::Stop {
            group: g,
            resource: r,
        });
        true
    }

    pub(super) fn on_resource_lost(&mut self, g: GroupId, r: usize, reason: String) {
        if g >= self.groups.len() || r >= self.groups[g].len {
            return;
        }
        if !matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            return;
        }
        let group = self.groups[g].key.clone();
        // Lost while running, not a failed action.
        self.event(Event::ResourceFailed {
            group,
            resource: r,
            op: None,
            reason,
        });
        if self.groups[g].vips[r] {
            // An address deleted behind our back: put it back.
            if self.repairing.insert((g, r)) {
                self.out.push(Output::Start {
                    group: g,
                    resource: r,
                });
            }
        } else {
            // systemd already applied the unit's own Restart= policy; a
            // unit that still failed goes to a node that can run it.
            self.fail_group(g);
        }
    }

    pub(super) fn fail_group(&mut self, g: GroupId) {
        self.failed.insert(g);
        if matches!(self.local[g], Local::Held | Local::HandingOff { .. }) {
            self.release(g, None);
        }
    }

    // ---------------------------------------------------------------
    // Operator requests
    // ---------------------------------------------------------------
}
