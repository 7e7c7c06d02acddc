//! heartbeat's three configuration files, `ha.cf`, `authkeys` and
//! `haresources`, parsed into typed, validated values. Pure: the only I/O
//! is reading the files, and errors carry `path:line`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::wire::Keyring;

/// `auto_failback` (ha.cf(5)). heartbeat's default is `legacy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoFailback {
    On,
    Off,
    Legacy,
}

/// One heartbeat medium line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    /// `ucast IF IP` / `ucast6 IF IP`.
    Ucast { iface: String, peer: IpAddr },
    /// `bcast IF` (one entry per interface named on the line).
    Bcast { iface: String },
    /// `mcast IF GROUP PORT TTL LOOP` / `mcast6 ...`.
    Mcast {
        iface: String,
        group: IpAddr,
        port: u16,
        ttl: u8,
        loopback: bool,
    },
}

impl Medium {
    pub fn iface(&self) -> &str {
        match self {
            Medium::Ucast { iface, .. } | Medium::Bcast { iface } | Medium::Mcast { iface, .. } => {
                iface
            }
        }
    }
}

/// `ping_group NAME IP...`: reachable if any member is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingGroup {
    pub name: String,
    pub addrs: Vec<IpAddr>,
}

/// The timing directives, already validated against each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
}

/// The meaningful content of ha.cf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaCf {
    pub timings: Timings,
    pub udpport: u16,
    pub media: Vec<Medium>,
    /// `node` lines in order, lowercased as heartbeat does.
    pub nodes: Vec<String>,
    pub auto_failback: AutoFailback,
    /// `ping` lines: each address is its own ping node.
    pub ping_nodes: Vec<IpAddr>,
    pub ping_groups: Vec<PingGroup>,
    pub deadping: Option<Duration>,
    pub autojoin: bool,
}

/// Which kind of heartbeat resource agent a VIP line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipKind {
    IPaddr,
    IPaddr2,
    IPv6addr,
}

/// A floating address from haresources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub kind: VipKind,
    pub addr: IpAddr,
    pub prefix: u8,
    /// The interface; `None` means "the one whose subnet holds addr",
    /// resolved at runtime.
    pub iface: Option<String>,
    /// An IPv4 label such as `eth0:0`.
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

/// One resource in a group, in haresources order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Vip(Vip),
    /// A systemd unit name, already mapped (`apache2` -> `apache2.service`).
    Unit(String),
}

/// One haresources line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The preferred node (first word), lowercased.
    pub node: String,
    /// heartbeat's group key: the first resource as written. It names the
    /// group in `ip-request` messages and in logs.
    pub key: String,
    pub resources: Vec<Resource>,
    /// 1-based line in haresources where the group starts.
    pub line: usize,
}

/// Everything harust needs from the three files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub dir: PathBuf,
    pub local_node: String,
    pub ha: HaCf,
    pub keys: Keyring,
    pub groups: Vec<Group>,
}
