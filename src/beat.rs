//! The beat thread: beats for the engine while it holds a lease
//! ([`LeaseTerms`]).
//!
//! A quiet node at a 10 ms keepalive does little more than send a beat
//! and take its peers' beats, a hundred times a second. Each of those
//! wake-ups starts from cold caches, so it costs what it touches: the
//! event loop, the engine and the decoder touch far more than the job
//! needs. While the engine is quiet, this thread does that job alone: it
//! sleeps until the next beat, reads what waits on the media, checks that
//! each datagram is an authentic beat of an up peer that differs from its
//! last only in `seq` (the next one, or the same on another medium) and
//! the counters ([`netstring::alike`]), and sends the engine's beat with
//! the next `seq` and `ts`. It logs what it read and sent since its last
//! beat, and keeps what came before as the engine's [`LeaseDone`]: the
//! beats' times and each peer as after its last beat. It returns the
//! lease at the first thing it does not expect (anything else read, a
//! late peer, a deadline of the engine's, a failed send), and right after
//! its last beat ([`lease_beats`], or a [`LEASE_MAX`] after it was lent),
//! so that feeding the engine delays no beat. The runtime then has the
//! engine take in the [`LeaseDone`] at once ([`Engine::lease_forward`]),
//! feeds it the log in order, at the times it happened, and checks that
//! the beat the engine sends is the one that went out (docs/RELIABILITY.md,
//! leases).

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;

use crate::engine::{Engine, LeaseDone, LeaseTerms, PeerDone, Time, beat_ts};
use crate::net::{LinkId, Links, NetError};
use crate::wire::{self, Authenticator, Keyed, netstring};

/// A lease is returned after this at the latest, so the engine's counters
/// lag by no more (anything that reads them, a D-Bus call, takes the
/// lease back first).
pub const LEASE_MAX: Duration = Duration::from_secs(2);
/// The fewest beats a lease is lent for: a log this short took well under
/// a keepalive of 10 ms to feed to the engine even in a debug build.
pub const LEASE_BEATS: u32 = 20;
/// The share of a keepalive that feeding a lease's log to the engine may
/// take: it happens right after the lease's last beat, and the next one
/// is the loop's, due a keepalive later.
const REPLAY_SHARE: u32 = 4;

/// How many beats a lease is lent for: as many as the runtime can feed
/// the engine within a quarter keepalive, at `replay_per_beat` (what it
/// took per beat so far; `None` before the first lease), and no more
/// than [`LEASE_MAX`] holds. Each lease costs the loop a turn whatever
/// its length (taking it back, feeding the engine, lending the next):
/// at a 10 ms keepalive, 20-beat leases were a third of a quiet node's
/// CPU beyond the beat thread's.
pub fn lease_beats(keepalive: Duration, replay_per_beat: Option<Duration>) -> u32 {
    let most = (LEASE_MAX.as_nanos() / keepalive.as_nanos().max(1)) as u32;
    let fits = match replay_per_beat {
        Some(cost) => (keepalive / REPLAY_SHARE).as_nanos() / cost.as_nanos().max(1),
        None => 0,
    };
    (fits.min(u32::MAX as u128) as u32)
        .min(most)
        .max(LEASE_BEATS)
}

/// A lease is returned once its log holds this many bytes (the log holds
/// what came since the last beat, so only a flood of datagrams fills it).
const LOG_BYTES_MAX: usize = 256 * 1024;
/// How long the runtime waits for a lease it asked back: the thread
/// answers within one turn of its loop, which never blocks.
const RECLAIM_WAIT: Duration = Duration::from_secs(2);

/// What happened during a lease, in order.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A datagram read, with its arrival time (engine time).
    Got {
        link: LinkId,
        from: SocketAddr,
        at: Time,
        bytes: Range<usize>,
    },
    /// A beat sent at `at`.
    Sent { at: Time, bytes: Range<usize> },
}

/// A lease as lent: the terms and what the thread needs to keep them.
pub struct Lease {
    pub terms: LeaseTerms,
    /// The media, lent with the lease and returned with it.
    pub links: Links,
    pub keyed: Keyed,
    /// The engine's time zero.
    pub origin: Instant,
    /// The engine's time when the lease was taken (its last input).
    pub start: Time,
    /// Returned right after this many beats ([`lease_beats`]).
    pub beats: u32,
    /// Each up peer's last status datagram the engine took, by node.
    pub templates: Vec<Vec<u8>>,
    /// The log, empty; lent so its buffers are reused.
    pub log: Vec<Entry>,
    pub bytes: Vec<u8>,
    /// What came before the log, empty; lent for its buffers too.
    pub done: LeaseDone,
}

/// A lease as returned.
pub struct Returned {
    pub links: Links,
    pub templates: Vec<Vec<u8>>,
    /// What happened before the last beat.
    pub done: LeaseDone,
    /// What happened from the last beat on, in order.
    pub log: Vec<Entry>,
    /// The datagrams of the log.
    pub bytes: Vec<u8>,
    /// Sends that failed, with the last beat of the log.
    pub errors: Vec<(LinkId, NetError)>,
    /// Why it ended.
    pub why: &'static str,
}

/// The thread, and a lease when one is out.
pub struct BeatThread {
    lend_tx: std::sync::mpsc::Sender<Lease>,
    back_rx: mpsc::UnboundedReceiver<Returned>,
    stop: Arc<AtomicBool>,
    /// Unparked to ask the lease back: a futex wait is the cheapest sleep
    /// that can also be cut short (`perf` put a `ppoll` on an eventfd's
    /// set-up at about 5 % of the thread's samples; bench/notes.md).
    thread: std::thread::Thread,
    /// Beats the thread has sent, ever.
    beats: Arc<AtomicU64>,
    out: bool,
}

impl BeatThread {
    pub fn spawn() -> io::Result<BeatThread> {
        let stop = Arc::new(AtomicBool::new(false));
        let (lend_tx, lend_rx) = std::sync::mpsc::channel::<Lease>();
        let (back_tx, back_rx) = mpsc::unbounded_channel();
        let beats = Arc::new(AtomicU64::new(0));
        let (t_stop, t_beats) = (stop.clone(), beats.clone());
        let handle = std::thread::Builder::new()
            .name("harust-beat".into())
            .spawn(move || {
                let mut bufs = Buffers::default();
                while let Ok(mut lease) = lend_rx.recv() {
                    let (why, errors) = hold(&mut lease, &t_stop, &t_beats, &mut bufs);
                    let back = Returned {
                        links: lease.links,
                        templates: lease.templates,
                        done: lease.done,
                        log: lease.log,
                        bytes: lease.bytes,
                        errors,
                        why,
                    };
                    if back_tx.send(back).is_err() {
                        break;
                    }
                }
            })?;
        Ok(BeatThread {
            lend_tx,
            back_rx,
            stop,
            thread: handle.thread().clone(),
            beats,
            out: false,
        })
    }

    /// How many beats the thread has sent: while a lease is out, the
    /// service watchdog is fed only if this moves.
    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }

    /// Whether a lease is out.
    pub fn is_out(&self) -> bool {
        self.out
    }

    /// Lends `lease`; gives it back if the thread is gone.
    pub fn lend(&mut self, lease: Lease) -> Result<(), Box<Lease>> {
        debug_assert!(!self.out);
        self.stop.store(false, Ordering::Release);
        self.lend_tx.send(lease).map_err(|e| Box::new(e.0))?;
        self.out = true;
        Ok(())
    }

    /// The lease, once the thread returns it by itself.
    pub async fn returned(&mut self) -> Option<Returned> {
        let r = self.back_rx.recv().await;
        self.out = false;
        r
    }

    /// Asks the lease back and waits for it (within a turn of the thread's
    /// loop). `None` if none is out.
    pub fn reclaim(&mut self) -> Option<Returned> {
        if !self.out {
            return None;
        }
        self.stop.store(true, Ordering::Release);
        self.thread.unpark();
        let since = Instant::now();
        loop {
            match self.back_rx.try_recv() {
                Ok(r) => {
                    self.out = false;
                    return Some(r);
                }
                Err(mpsc::error::TryRecvError::Empty) if since.elapsed() < RECLAIM_WAIT => {
                    std::thread::yield_now();
                }
                // The thread never blocks: if it does not answer, the loop
                // cannot go on without its media. Exit; systemd restarts
                // us, and peers see a node that stopped.
                _ => panic!("the beat thread did not return its lease"),
            }
        }
    }
}

/// The thread's own buffers, kept between leases.
#[derive(Default)]
struct Buffers {
    rx: Vec<u8>,
    /// The last beat sent.
    tx: Vec<u8>,
    /// Its inner auth's text.
    scratch: Vec<u8>,
    /// Where its counters sit, once encoded in full in this lease.
    patch: Option<Patch>,
}

/// Where a beat's `seq`, `ts` and inner `auth` values sit in the datagram
/// and `seq` and `ts` in the auth text. From one beat to the next only
/// these change (and the trailer), mostly without changing length: the
/// next beat is the last one with them rewritten and both HMACs computed
/// anew. Encoding the engine's message field by field each time cost an
/// idle node about an eighth of its CPU at a 10 ms keepalive (bench/notes.md).
#[derive(Debug, PartialEq)]
struct Patch {
    seq: Range<usize>,
    ts: Range<usize>,
    auth: Range<usize>,
    /// Where the trailer starts.
    body_end: usize,
    text_seq: Range<usize>,
    text_ts: Range<usize>,
}

/// The value of the line `name=` in an auth text (one `name=value` line
/// per field; values hold no newline there).
fn text_value_range(text: &[u8], name: &[u8]) -> Option<Range<usize>> {
    let mut at = 0;
    for line in text.split(|&c| c == b'\n') {
        if line.len() > name.len() && line.starts_with(name) && line[name.len()] == b'=' {
            return Some(at + name.len() + 1..at + line.len());
        }
        at += line.len() + 1;
    }
    None
}

impl Patch {
    /// `None` for a beat that has no such fields (no inner auth, say):
    /// each is then encoded in full.
    fn of(datagram: &[u8], text: &[u8]) -> Option<Patch> {
        let (body_end, _, _) = netstring::find_trailer(datagram)?;
        let body = &datagram[..body_end];
        Some(Patch {
            seq: netstring::str_value_range(body, b"seq")?,
            ts: netstring::str_value_range(body, b"ts")?,
            auth: netstring::str_value_range(body, wire::classic::AUTH_FIELD.as_bytes())?,
            body_end,
            text_seq: text_value_range(text, b"seq")?,
            text_ts: text_value_range(text, b"ts")?,
        })
    }

    /// Rewrites the beat in `tx` (its auth text in `text`) with `seq` and
    /// `ts`; `false`, with `tx` and `text` to be encoded anew, where a
    /// value's length changed.
    fn apply(&self, tx: &mut Vec<u8>, text: &mut [u8], keyed: &Keyed, seq: u64, ts: u64) -> bool {
        let mut buf = [0u8; 16];
        for (value, at, text_at) in [
            (seq, &self.seq, &self.text_seq),
            (ts, &self.ts, &self.text_ts),
        ] {
            let hex = wire::hex_digits(value, &mut buf);
            if hex.len() != at.len() {
                return false;
            }
            tx[at.clone()].copy_from_slice(hex);
            text[text_at.clone()].copy_from_slice(hex);
        }
        let Some(inner) = keyed.sign_sig(text) else {
            return false;
        };
        if inner.as_bytes().len() != self.auth.len() {
            return false;
        }
        tx[self.auth.clone()].copy_from_slice(inner.as_bytes());
        tx.truncate(self.body_end);
        let Some(trailer) = keyed.sign_sig(tx) else {
            return false;
        };
        netstring::write_trailer(tx, trailer.as_bytes());
        true
    }
}

/// A peer as the thread follows it.
struct Watch {
    /// Index into the lease's templates.
    node: usize,
    /// The template's signed part (its body), `None` if it has none.
    body: Option<usize>,
    last_seq: u64,
    last_heard: Time,
    dead_after: Duration,
    links: Vec<(LinkId, Time)>,
    /// When its last status came (the engine's warntime counts from it).
    last_status: Option<Time>,
    /// Its beats taken in this lease (first copies).
    taken: u64,
}

/// What a datagram is to the lease.
enum Seen {
    /// A beat of this peer (index into the watches) with this seq.
    Beat(usize, u64),
    /// What the engine takes in and ignores: an `NS_ackmsg` (flow
    /// control, which harust does not need) or our own beat.
    Inert,
    /// Anything else: the engine must see it now.
    Other,
}

/// The signed part of a netstring datagram if `keyed` authenticates it.
fn authentic<'a>(buf: &'a [u8], keyed: &Keyed) -> Option<&'a [u8]> {
    if buf.len() > wire::MAXMSG || !buf.starts_with(netstring::START) {
        return None;
    }
    let (signed, index, hex) = netstring::find_trailer(buf)?;
    keyed
        .check(index, &buf[..signed], hex)
        .filter(|ok| *ok)
        .map(|_| &buf[..signed])
}

/// What `buf` is; `own` is the last beat we sent.
fn classify(buf: &[u8], lease: &Lease, watches: &[Watch], own: &[u8]) -> Seen {
    let Some(body) = authentic(buf, &lease.keyed) else {
        return Seen::Other;
    };
    for (i, w) in watches.iter().enumerate() {
        let Some(len) = w.body else { continue };
        if let Ok(Some(seq)) = netstring::alike(&lease.templates[w.node][..len], body) {
            return Seen::Beat(i, seq);
        }
    }
    if body[netstring::START.len()..].starts_with(b"14:(0)t=NS_ackmsg,") {
        return Seen::Inert;
    }
    // Our own beat, back from a ucast list shared by every node (when the
    // medium's socket could not tell it was ours, see `net`).
    if let Some((len, _, _)) = netstring::find_trailer(own)
        && netstring::alike(&own[..len], body).is_ok()
    {
        return Seen::Inert;
    }
    Seen::Other
}

/// Why a lease ends, and the sends that failed.
type End = (&'static str, Vec<(LinkId, NetError)>);

/// A lease being held.
struct Holder<'a> {
    lease: &'a mut Lease,
    bufs: &'a mut Buffers,
    stop: &'a AtomicBool,
    beats: &'a AtomicU64,
    watches: Vec<Watch>,
    until: Time,
    seq: u64,
    next_beat: Time,
    /// The time of the last entry: every entry's is at or after it, as
    /// the engine's inputs must be.
    last: Time,
    /// Beats sent in this lease.
    sent: u32,
}

impl Holder<'_> {
    fn log(&mut self, entry: impl FnOnce(Range<usize>) -> Entry, data: &[u8]) {
        let start = self.lease.bytes.len();
        self.lease.bytes.extend_from_slice(data);
        self.lease.log.push(entry(start..self.lease.bytes.len()));
    }

    /// Whatever the engine would do at `t` besides beating; then the lease
    /// must end.
    fn check(&self, t: Time) -> Option<&'static str> {
        let terms = &self.lease.terms;
        // The engine judges a late peer at its own beats, as here.
        if self
            .watches
            .iter()
            .any(|w| t >= w.last_heard + terms.late_after)
        {
            return Some("a late peer");
        }
        if self
            .watches
            .iter()
            .any(|w| w.links.iter().any(|(_, h)| t >= *h + terms.deadtime))
        {
            return Some("a medium's deadtime");
        }
        if t >= self.until {
            return Some("the engine's deadline");
        }
        if self.stop.load(Ordering::Acquire) {
            return Some("asked back");
        }
        if self.lease.bytes.len() >= LOG_BYTES_MAX {
            return Some("a full log");
        }
        None
    }

    /// Everything logged so far becomes what came before the beat about to
    /// go out: the last beat's time, and each peer as it is now. Only beats
    /// were logged (anything else ended the lease when it was read).
    fn fold(&mut self) {
        let done = &mut self.lease.done;
        if let Some(&Entry::Sent { at, .. }) = self.lease.log.first() {
            done.beats.push(at);
        }
        // In place: one beat after another reuses the same buffers.
        done.peers.truncate(self.watches.len());
        for (i, w) in self.watches.iter().enumerate() {
            if i == done.peers.len() {
                done.peers.push(PeerDone {
                    node: w.node,
                    last_seq: 0,
                    last_heard: Time::ZERO,
                    taken: 0,
                    links: Vec::new(),
                });
            }
            let d = &mut done.peers[i];
            (d.node, d.last_seq, d.last_heard, d.taken) =
                (w.node, w.last_seq, w.last_heard, w.taken);
            d.links.clear();
            d.links.extend(w.links.iter().map(|&(l, t)| (l.0, t)));
        }
        self.lease.log.clear();
        self.lease.bytes.clear();
    }

    /// The beat due at `t`, as the engine would send it when given an
    /// input at `t`, unless the lease must end first.
    fn beat(&mut self, t: Time) -> Result<(), End> {
        if let Some(why) = self.check(t) {
            return Err((why, Vec::new()));
        }
        self.fold();
        let ts = beat_ts(self.lease.terms.wall_base, t);
        let bufs = &mut *self.bufs;
        // The first beat of a lease in full: the engine's message may
        // have changed since the last lease.
        let patched = self.sent > 0
            && bufs.patch.as_ref().is_some_and(|p| {
                p.apply(
                    &mut bufs.tx,
                    &mut bufs.scratch,
                    &self.lease.keyed,
                    self.seq,
                    ts,
                )
            });
        if !patched {
            let beat = &mut self.lease.terms.beat;
            beat.set_hex("seq", self.seq);
            beat.set_hex("ts", ts);
            wire::encode_into(beat, &self.lease.keyed, &mut bufs.tx, &mut bufs.scratch);
            bufs.patch = Patch::of(&bufs.tx, &bufs.scratch);
        }
        let errors = self.lease.links.try_send(&self.bufs.tx);
        let tx = std::mem::take(&mut self.bufs.tx);
        self.log(|bytes| Entry::Sent { at: t, bytes }, &tx);
        self.bufs.tx = tx;
        self.last = t;
        if !errors.is_empty() {
            return Err(("a failed send", errors));
        }
        self.seq += 1;
        self.sent += 1;
        self.beats.fetch_add(1, Ordering::Relaxed);
        self.next_beat = Engine::beat_after(self.next_beat, t, self.lease.terms.keepalive);
        // Back now, a keepalive before the next beat is due, rather than
        // in the middle of a later one.
        if self.sent >= self.lease.beats || t >= self.lease.start + LEASE_MAX {
            return Err(("its length", Vec::new()));
        }
        Ok(())
    }

    /// Reads what waits on the media; a datagram that arrived after the
    /// beat was due follows it, as it would in the engine.
    fn read(&mut self, now: Time) -> Result<(), End> {
        let wall = SystemTime::now();
        while let Some((link, from, stamp)) = self.lease.links.try_recv_into(&mut self.bufs.rx) {
            let at = crate::net::arrival(stamp, wall, now, self.last);
            let beaten = if at >= self.next_beat {
                self.beat(at)
            } else {
                Ok(())
            };
            // Logged even when the lease ends at that beat: it has been
            // read, and only the engine may still see it.
            let rx = std::mem::take(&mut self.bufs.rx);
            self.log(
                |bytes| Entry::Got {
                    link,
                    from,
                    at,
                    bytes,
                },
                &rx,
            );
            self.last = at;
            if let Err(end) = beaten {
                self.bufs.rx = rx;
                return Err(end);
            }
            let seen = classify(&rx, self.lease, &self.watches, &self.bufs.tx);
            self.bufs.rx = rx;
            match seen {
                Seen::Inert => {}
                Seen::Other => return Err(("a message the engine must see", Vec::new())),
                Seen::Beat(i, s) => {
                    let w = &mut self.watches[i];
                    let Some(l) = w.links.iter_mut().find(|(l, _)| *l == link) else {
                        return Err(("a beat on a medium that was down", Vec::new()));
                    };
                    l.1 = at;
                    if s == w.last_seq + 1 {
                        let late = w
                            .last_status
                            .is_some_and(|p| at.saturating_sub(p) > self.lease.terms.warntime);
                        w.last_seq = s;
                        w.last_heard = at;
                        w.last_status = Some(at);
                        w.taken += 1;
                        // The engine logs a late heartbeat: it must see this one.
                        if late {
                            return Err(("a late heartbeat", Vec::new()));
                        }
                    } else if s != w.last_seq {
                        return Err(("a beat out of order", Vec::new()));
                    }
                }
            }
        }
        Ok(())
    }

    fn run(&mut self) -> End {
        loop {
            let now = self.lease.origin.elapsed();
            if let Err(end) = self.read(now) {
                return end;
            }
            if now >= self.next_beat
                && let Err(end) = self.beat(now)
            {
                return end;
            }
            if let Some(why) = self.check(now) {
                return (why, Vec::new());
            }
            // Asleep until our next beat, the first deadline of a peer or
            // medium, the lease's end, or being asked back.
            let deadtime = self.lease.terms.deadtime;
            let mut wake = self.next_beat.min(self.until);
            for w in &self.watches {
                wake = wake.min(w.last_heard + w.dead_after);
                for (_, h) in &w.links {
                    wake = wake.min(*h + deadtime);
                }
            }
            let left = wake.saturating_sub(self.lease.origin.elapsed());
            if !left.is_zero() {
                // May return early (an unpark meant for the lease before,
                // or spuriously): the loop checks everything again.
                std::thread::park_timeout(left);
            }
        }
    }
}

/// Holds the lease until it must go back; returns why, and the failed
/// sends.
fn hold(lease: &mut Lease, stop: &AtomicBool, beats: &AtomicU64, bufs: &mut Buffers) -> End {
    let t = &lease.terms;
    let watches: Vec<Watch> = t
        .peers
        .iter()
        .map(|p| Watch {
            node: p.node,
            body: lease
                .templates
                .get(p.node)
                .and_then(|raw| netstring::find_trailer(raw).map(|(len, _, _)| len)),
            last_seq: p.last_seq,
            last_heard: p.last_heard,
            dead_after: p.dead_after,
            links: p.links.iter().map(|&(l, t)| (LinkId(l), t)).collect(),
            last_status: p.last_status,
            taken: 0,
        })
        .collect();
    // Normally back after a beat (see `beat`); this if none comes.
    let latest = lease.start + LEASE_MAX * 2;
    let until = t.until.map_or(latest, |u| u.min(latest));
    let (seq, next_beat, last) = (t.seq, t.next_beat, lease.start);
    Holder {
        lease,
        bufs,
        stop,
        beats,
        watches,
        until,
        seq,
        next_beat,
        last,
        sent: 0,
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A status beat as the engine sends it (fields in its order).
    fn status(seq: u64, ts: u64) -> wire::Message {
        let mut m = wire::Message::new("status");
        m.add_str("st", "active")
            .add_str("dt", "7530")
            .add_str("protocol", "1")
            .add_str("src", "node-a")
            .add_hex("seq", seq)
            .add_hex("hg", 0x6b1643cf)
            .add_hex("ts", ts)
            .add_str("hr_v", "1")
            .add_str("ttl", "3");
        m
    }

    #[test]
    fn a_patched_beat_is_the_beat_encoded_in_full() {
        let keyed = Keyed::new(&wire::Keyring::single(wire::Method::Sha1(
            b"secret".to_vec(),
        )));
        let (mut tx, mut text) = (Vec::new(), Vec::new());
        wire::encode_into(&status(0x1f0, 0x693ed1a0), &keyed, &mut tx, &mut text);
        let patch = Patch::of(&tx, &text).expect("a status beat has seq, ts and auth");
        let (mut full, mut full_text) = (Vec::new(), Vec::new());
        for (seq, ts) in [
            (0x1f1, 0x693ed1a0),
            (0x1ff, 0x693ed1a1),
            (0x200, 0x7fffffff),
        ] {
            assert!(patch.apply(&mut tx, &mut text, &keyed, seq, ts));
            wire::encode_into(&status(seq, ts), &keyed, &mut full, &mut full_text);
            assert_eq!(
                String::from_utf8_lossy(&tx),
                String::from_utf8_lossy(&full),
                "seq {seq:x} ts {ts:x}"
            );
            // And the next patch is found where this one put things.
            assert_eq!(
                Patch::of(&tx, &text),
                Some(Patch::of(&full, &full_text).unwrap())
            );
        }
        // One more digit: encoded in full instead.
        assert!(!patch.apply(&mut tx, &mut text, &keyed, 0x1000, 0x7fffffff));
    }

    #[test]
    fn a_lease_is_as_long_as_its_log_can_be_fed_in_a_quarter_keepalive() {
        // Before the first lease, and when feeding is slow: the fewest.
        assert_eq!(lease_beats(10 * MS, None), LEASE_BEATS);
        assert_eq!(lease_beats(10 * MS, Some(MS)), LEASE_BEATS);
        // 2.5 ms at 20 µs a beat.
        assert_eq!(lease_beats(10 * MS, Some(Duration::from_micros(20))), 125);
        // Never longer than LEASE_MAX holds, however cheap.
        assert_eq!(lease_beats(10 * MS, Some(Duration::from_nanos(1))), 200);
        assert_eq!(lease_beats(10 * MS, Some(Duration::ZERO)), 200);
        // Slow keepalives: LEASE_MAX ends the lease first (beat()).
        assert_eq!(
            lease_beats(Duration::from_secs(1), Some(Duration::from_micros(20))),
            LEASE_BEATS
        );
    }
}
