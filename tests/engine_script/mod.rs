//! Drives a two-node [`Engine`] from a byte script: packets from a peer
//! (mostly well-formed heartbeat messages with arbitrary field values,
//! some straight from `wire::parse` of raw bytes), time passing, resource
//! results, admin requests and shutdown. The engine must never panic.
//!
//! Shared by the proptest in `tests/fuzz_prop.rs` and the `engine` target
//! in `fuzz/` (included there with `#[path]`), so both explore the same
//! input space; the fuzzer just does it for much longer, with coverage.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use harust::config::{AutoFailback, Config, Group, HaCf, Medium, Resource, Timings, Vip, VipKind};
use harust::engine::{AdminRequest, Engine, Input, Op, Output, Params, Scope, View};
use harust::wire::{Keyring, Message, Method, Value};

/// Reads a script; past its end every read is zero, so any byte string
/// is a valid (possibly short) script.
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.byte();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `max` raw bytes, length first.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

pub const NODES: [&str; 2] = ["node-a", "node-b"];
const GROUP_KEYS: [&str; 2] = ["198.18.0.100", "web.service"];

/// `node-a`'s config: two nodes, one group of an address and a unit
/// preferring `node-a`, one group of a unit preferring `node-b`; the
/// shape `tests/simnet` builds.
pub fn config(failback: AutoFailback) -> Config {
    let vip = Resource::Vip(Vip {
        kind: VipKind::IPaddr2,
        addr: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        prefix: 24,
        iface: Some("eth0".into()),
        label: None,
        broadcast: None,
        auto_prefix: false,
    });
    Config {
        dir: PathBuf::from("/fuzz"),
        local_node: NODES[0].into(),
        ha: HaCf {
            timings: Timings {
                keepalive: Duration::from_millis(100),
                deadtime: Duration::from_millis(1000),
                warntime: Duration::from_millis(500),
                initdead: Duration::from_millis(2000),
            },
            udpport: 694,
            media: vec![Medium::Bcast {
                iface: "eth0".into(),
                port: 694,
            }],
            nodes: NODES.iter().map(|n| n.to_string()).collect(),
            auto_failback: failback,
            ping_nodes: vec![],
            ping_groups: vec![],
            deadping: None,
            autojoin: false,
            witnesses: vec![],
            quorum: false,
            fences: vec![],
        },
        keys: Keyring::single(Method::Crc),
        groups: vec![
            Group {
                node: NODES[0].into(),
                key: GROUP_KEYS[0].into(),
                resources: vec![vip, Resource::Unit("nginx.service".into())],
                line: 1,
            },
            Group {
                node: NODES[1].into(),
                key: GROUP_KEYS[1].into(),
                resources: vec![Resource::Unit("web.service".into())],
                line: 2,
            },
        ],
    }
}

const KINDS: &[&str] = &[
    "status",
    "resource",
    "shutdone",
    "reqnodes",
    "repnodes",
    "starting",
    "ask_resources",
    "hb_takeover",
    "ip-request",
    "NS_rexmit",
    "NS_nak_rexmit",
    "NS_ackmsg",
    "",
];

const SOURCES: &[&str] = &["node-b", "NODE-B", "node-a", "node-c", ""];

/// Field names the engine reads, plus one it does not.
const FIELDS: &[&str] = &[
    "dest", "st", "dt", "info", "rsc_hold", "firstseq", "lastseq", "ackseq", "hr_v", "hr_held",
    "hr_busy", "hr_sb", "hr_fail", "hr_leave", "protocol", "ld", "x",
];

const WORDS: &[&str] = &[
    "node-a",
    "node-b",
    "active",
    "init",
    "up",
    "me",
    "other",
    "all",
    "local",
    "foreign",
    "failback",
    "shutdown",
    "1",
    "0",
    "198.18.0.100",
    "web.service",
    "198.18.0.100 web.service",
    "nope",
];

/// A field value: a word, a number in hex or decimal, or raw bytes.
fn value(s: &mut Script<'_>) -> Value {
    let text = match s.below(5) {
        0 => s.pick(WORDS).to_string(),
        1 => format!("{:x}", s.u16()),
        2 => format!("{:x}", s.u64()),
        3 => s.u16().to_string(),
        _ => return Value::Str(s.bytes(12).to_vec()),
    };
    Value::Str(text.into_bytes())
}

/// A message shaped like a peer's, with a sequence number that mostly
/// follows on from the last one so that the engine gets past replay
/// tracking.
fn message(s: &mut Script<'_>, seq: &mut u64, hg: &mut u64) -> Message {
    let mut m = Message::new(s.pick(KINDS));
    m.add_str("src", s.pick(SOURCES));
    match s.below(8) {
        0 => {} // unsequenced
        1 => {
            // a restart, or an old generation
            *hg = if s.byte() & 1 == 0 {
                hg.wrapping_add(1)
            } else {
                s.u64()
            };
            *seq = u64::from(s.byte());
        }
        2 => *seq = s.u64(),
        3 => *seq = seq.saturating_sub(u64::from(s.byte() % 8)),
        _ => *seq = seq.saturating_add(1 + u64::from(s.byte() % 3 / 2)),
    }
    m.add_hex("seq", *seq).add_hex("hg", *hg);
    m.add_hex("ts", if s.byte() == 0 { 0 } else { 0x6b06_f000 });
    for _ in 0..s.below(6) {
        let name = s.pick(FIELDS);
        m.fields.push((name.to_string().into(), value(s)));
    }
    m
}

/// Runs one script and returns the engine's final view. Panics (the
/// finding) only through the engine or the checks here.
pub fn run(data: &[u8]) -> View {
    let mut s = Script::new(data);
    let failback = match s.below(3) {
        0 => AutoFailback::On,
        1 => AutoFailback::Off,
        _ => AutoFailback::Legacy,
    };
    let cfg = config(failback);
    let params = Params {
        uuid: [1; 16],
        generation: 0x6b06_f980,
        wall_base: 0x6b06_f000,
        seed: s.u64(),
    };
    let mut now = Duration::ZERO;
    let mut engine = Engine::new(&cfg, params, now);
    let present = match s.below(3) {
        0 => vec![],
        1 => vec![(0, 0), (0, 1)],
        _ => vec![(1, 0)],
    };
    let mut pending: Vec<(usize, usize, Op)> = Vec::new();
    let mut outputs = engine.handle(now, Input::Reconciled { present });
    let (mut seq, mut hg) = (0u64, 0x6b06_f981u64);
    let mut steps = 0;
    while !s.is_empty() && steps < 400 {
        steps += 1;
        for o in outputs.drain(..) {
            match o {
                Output::Start { group, resource } => pending.push((group, resource, Op::Start)),
                Output::Stop { group, resource } => pending.push((group, resource, Op::Stop)),
                _ => {}
            }
        }
        let input = match s.below(10) {
            0 | 1 => {
                // Time passes: a little, or past deadtime.
                let ms = if s.byte() & 1 == 0 {
                    u64::from(s.byte())
                } else {
                    u64::from(s.u16())
                };
                now += Duration::from_millis(ms);
                if let Some(d) = engine.next_deadline() {
                    now = now.max(d.min(now + Duration::from_secs(10)));
                }
                Input::Tick
            }
            2..=4 => Input::Packet {
                link: s.below(2),
                msg: message(&mut s, &mut seq, &mut hg),
            },
            5 => {
                // Raw bytes through the parser, then to the engine as if
                // they had authenticated.
                let raw = s.bytes(256);
                match harust::wire::parse(raw) {
                    Ok(p) => Input::Packet {
                        link: 0,
                        msg: p.msg,
                    },
                    Err(e) => Input::BadPacket {
                        link: 0,
                        kind: e.kind(),
                    },
                }
            }
            6 if !pending.is_empty() => {
                // The runtime answers only what was asked, in any order.
                let i = s.below(pending.len());
                let (group, resource, op) = pending.swap_remove(i);
                let result = if s.byte() % 4 == 0 {
                    Err("failed".into())
                } else {
                    Ok(())
                };
                Input::ResourceDone {
                    group,
                    resource,
                    op,
                    result,
                }
            }
            7 => {
                let group = s.below(cfg.groups.len());
                Input::ResourceLost {
                    group,
                    resource: s.below(cfg.groups[group].resources.len()),
                    reason: "gone".into(),
                }
            }
            8 => {
                let scope = s.pick(&[Scope::All, Scope::Local, Scope::Foreign, Scope::Failback]);
                let request = if s.byte() & 1 == 0 {
                    AdminRequest::Standby(scope)
                } else {
                    AdminRequest::Takeover(scope)
                };
                Input::Admin {
                    id: u64::from(s.byte()),
                    request,
                }
            }
            9 if s.byte() < 16 => Input::Shutdown,
            _ => Input::Tick,
        };
        outputs = engine.handle(now, input);
        // A peer's own `dt` sets how long we wait for it, so deadlines
        // may be far ahead; computing them must not overflow.
        let _ = engine.next_deadline();
        let view = engine.view(now);
        assert_eq!(view.groups.len(), cfg.groups.len());
    }
    engine.view(now)
}
