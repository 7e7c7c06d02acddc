//! GARP and unsolicited NA rounds, for every address at once.
//!
//! One task sends all rounds, from one long-lived packet socket per
//! interface: the addresses of a group taken together are announced in the
//! same instant, and no socket is opened per announcement.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::network::PacketSocket;
use super::{AnnounceConfig, packet};
use crate::config::{self, Resource, Vip};

/// Where and how an address is announced: resolved by
/// [`Vips::targets`](super::Vips::targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceTarget {
    pub addr: IpAddr,
    pub ifindex: u32,
    pub iface: String,
    pub mac: [u8; 6],
    /// IPv6 only: the NA carries the Router flag.
    pub router: bool,
}

impl AnnounceTarget {
    /// One round: an ARP request and reply for IPv4, one NA for IPv6.
    fn frames(&self) -> Vec<Vec<u8>> {
        match self.addr {
            IpAddr::V4(v4) => vec![
                packet::garp_request(self.mac, v4),
                packet::garp_reply(self.mac, v4),
            ],
            IpAddr::V6(v6) => vec![packet::unsolicited_na(self.mac, v6, self.router)],
        }
    }
}

/// The caller's name for one address (the runtime's group and resource).
pub type Key = (usize, usize);

enum Cmd {
    Start(Key, AnnounceTarget),
    Again(Key),
    Cancel(Key),
}

/// The handle of the announcing task. Commands take effect in the order
/// they are sent, from any thread.
#[derive(Debug, Clone)]
pub struct Announcer {
    tx: mpsc::UnboundedSender<Cmd>,
}

impl Announcer {
    /// Spawns the task on the current tokio runtime. It ends when every
    /// handle is dropped.
    pub fn spawn(cfg: AnnounceConfig) -> Announcer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, cfg));
        Announcer { tx }
    }

    /// Starts the rounds for `key` at `target` (ending any running for
    /// `key`): the first round goes at once.
    pub fn start(&self, key: Key, target: AnnounceTarget) {
        let _ = self.tx.send(Cmd::Start(key, target));
    }

    /// Starts the rounds again for an address started before and not
    /// cancelled since; nothing otherwise.
    pub fn again(&self, key: Key) {
        let _ = self.tx.send(Cmd::Again(key));
    }

    /// Ends the rounds for `key` and forgets its target: a node that gave an
    /// address up must not keep pointing neighbours at itself.
    pub fn cancel(&self, key: Key) {
        let _ = self.tx.send(Cmd::Cancel(key));
    }
}

struct Rounds {
    target: AnnounceTarget,
    frames: Vec<Vec<u8>>,
    left: u32,
    due: Instant,
}

async fn run(mut rx: mpsc::UnboundedReceiver<Cmd>, cfg: AnnounceConfig) {
    let mut sockets: HashMap<u32, PacketSocket> = HashMap::new();
    let mut known: HashMap<Key, Rounds> = HashMap::new();
    loop {
        let due = known.values().filter(|r| r.left > 0).map(|r| r.due).min();
        let first = tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(c) => Some(c),
                None => return,
            },
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => None,
        };
        // Take every command already queued, so a batch goes out together.
        let mut next = first;
        while let Some(cmd) = next {
            match cmd {
                Cmd::Start(key, target) => {
                    let frames = target.frames();
                    known.insert(
                        key,
                        Rounds {
                            target,
                            frames,
                            left: cfg.count,
                            due: Instant::now(),
                        },
                    );
                }
                Cmd::Again(key) => {
                    if let Some(r) = known.get_mut(&key) {
                        r.left = cfg.count;
                        r.due = Instant::now();
                    }
                }
                Cmd::Cancel(key) => {
                    known.remove(&key);
                }
            }
            next = rx.try_recv().ok();
        }
        let now = Instant::now();
        for r in known.values_mut().filter(|r| r.left > 0 && r.due <= now) {
            r.left -= 1;
            r.due = now + cfg.interval;
            let t = &r.target;
            let socket = match sockets.get(&t.ifindex) {
                Some(s) => s,
                None => match PacketSocket::open(t.ifindex) {
                    Ok(s) => sockets.entry(t.ifindex).or_insert(s),
                    Err(e) => {
                        log::warn!(
                            "announcing {} on {}: opening a socket: {e}",
                            t.addr,
                            t.iface
                        );
                        r.left = 0;
                        continue;
                    }
                },
            };
            for f in &r.frames {
                if let Err(e) = socket.send(f) {
                    log::warn!("announcing {} on {} failed: {e}", t.addr, t.iface);
                    // The interface may be gone or renumbered: open afresh
                    // next time.
                    sockets.remove(&t.ifindex);
                    r.left = 0;
                    break;
                }
            }
        }
    }
}
/// What a resource announces with GARP/NA once acquired: a VIP, or the
/// address of a `SendArp`.
pub fn announced(r: &Resource) -> Option<Vip> {
    match r {
        Resource::Vip(v) => Some(v.clone()),
        Resource::Announce { addr, iface } => Some(Vip {
            kind: config::VipKind::IPaddr,
            addr: IpAddr::V4(*addr),
            prefix: 32,
            iface: Some(iface.clone()),
            label: None,
            broadcast: None,
            auto_prefix: false,
        }),
        _ => None,
    }
}
