//! heartbeat's three configuration files, `ha.cf`, `authkeys` and
//! `haresources`, parsed into typed, validated values. Pure: the only I/O
//! is reading the files, and errors carry `path:line`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::wire::Keyring;

pub mod authkeys;
pub mod diag;
pub mod digest;
pub mod fencekeys;
pub mod hacf;
pub mod haresources;
pub mod presence;
mod summary;
pub mod time;
pub mod unit;

pub use diag::{Diagnostic, Diagnostics, Severity};
pub use summary::summary;

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
    /// `ucast IF IP` / `ucast6 IF IP`. `port` is the `udpport` in force
    /// when the first medium of its kind was declared, as in heartbeat.
    Ucast {
        iface: String,
        peer: IpAddr,
        port: u16,
    },
    /// `bcast IF` (one entry per interface named on the line), with its
    /// port as for `Ucast`.
    Bcast { iface: String, port: u16 },
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
            Medium::Ucast { iface, .. }
            | Medium::Bcast { iface, .. }
            | Medium::Mcast { iface, .. } => iface,
        }
    }

    /// The UDP port this medium sends to and listens on.
    pub fn port(&self) -> u16 {
        match self {
            Medium::Ucast { port, .. }
            | Medium::Bcast { port, .. }
            | Medium::Mcast { port, .. } => *port,
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
    /// The last `udpport` value (694 by default). Each ucast and bcast
    /// medium carries the port it really uses.
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
    /// `witness` lines: nodes that vote and never hold a group.
    pub witnesses: Vec<String>,
    /// `quorum on|off`: hold a group only with a strict majority of the
    /// nodes in view. Defaults to on when a witness is configured.
    pub quorum: bool,
    /// Fence devices (`stonith_host`, `fence`), in ha.cf order.
    pub fences: Vec<Fence>,
}

/// A fence device from ha.cf (docs/SAFETY.md, "Fencing").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The node it fences; `None`: any peer (heartbeat's `stonith_host`,
    /// whose device knows which hosts it controls).
    pub target: Option<String>,
    /// The node that may run it; `None`: any node but the target.
    pub from: Option<String>,
    pub agent: FenceAgent,
    /// Its line in ha.cf.
    pub line: usize,
}

/// What runs a fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceAgent {
    /// A cluster-glue STONITH plugin, run as `stonith -t KIND ... -T reset
    /// NODE`. `inline` holds heartbeat's `stonith_host` parameters (its
    /// `-p` string); without them the parameters come from the
    /// credentials file as name=value, passed in the environment (`-E`).
    Stonith {
        kind: String,
        inline: Option<String>,
    },
    /// A fence-agents command (`fence_ipmilan`, …): its options from the
    /// credentials file on its standard input, with `action=reboot`.
    Agent(String),
}

impl Fence {
    /// Whether this device may fence `node`.
    pub fn fences(&self, node: &str) -> bool {
        self.target.as_deref().is_none_or(|t| t == node) && self.from.as_deref() != Some(node)
    }

    /// Whether `local` may run it against `node`.
    pub fn runs_on(&self, local: &str, node: &str) -> bool {
        local != node && self.fences(node) && self.from.as_deref().is_none_or(|f| f == local)
    }

    /// Whether it needs the credentials file of its target.
    pub fn needs_credentials(&self) -> bool {
        !matches!(
            self.agent,
            FenceAgent::Stonith {
                inline: Some(_),
                ..
            }
        )
    }
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
    /// No prefix was written: `prefix` is only the host prefix, and the
    /// one used is that of the connected route holding `addr`, looked up
    /// when the address is acquired (heartbeat's findif).
    pub auto_prefix: bool,
}

/// `Filesystem::DEVICE::DIRECTORY[::TYPE[::OPTIONS]]`, mounted through a
/// transient mount unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `What=`: a device, `nas:/export`, `LABEL=x`, …
    pub what: String,
    /// `Where=`: an absolute path.
    pub path: String,
    /// `Type=`; `None` lets mount(8) find out.
    pub fstype: Option<String>,
    /// `Options=`; `None` is mount(8)'s defaults.
    pub options: Option<String>,
}

impl Mount {
    /// The mount unit's name, which systemd derives from `Where=`
    /// (`systemd-escape --path --suffix=mount`).
    pub fn unit(&self) -> String {
        unit::path_unit_name(&self.path, "mount")
    }
}

/// One resource in a group, in haresources order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Vip(Vip),
    /// A systemd unit name, already mapped (`apache2` -> `apache2.service`).
    Unit(String),
    /// A file system mounted through a transient mount unit.
    Mount(Mount),
    /// `SendArp::ADDR/IFACE`: harust's own gratuitous ARP for an address
    /// this node has (not added or removed by harust).
    Announce {
        addr: Ipv4Addr,
        iface: String,
    },
    /// `IPsrcaddr::ADDR`: made the preferred source address of the default
    /// route while held; the route's previous source is put back on release.
    SrcAddr(IpAddr),
}

impl Resource {
    /// The address this resource is, if it is one.
    pub fn vip(&self) -> Option<&Vip> {
        match self {
            Resource::Vip(v) => Some(v),
            _ => None,
        }
    }

    /// The systemd unit this resource is, if it is one.
    pub fn unit_name(&self) -> Option<String> {
        match self {
            Resource::Unit(u) => Some(u.clone()),
            Resource::Mount(m) => Some(m.unit()),
            _ => None,
        }
    }

    /// A short name for logs: the address, the unit, …
    pub fn describe(&self) -> String {
        match self {
            Resource::Vip(v) => format!("{}/{}", v.addr, v.prefix),
            Resource::Unit(u) => u.clone(),
            Resource::Mount(m) => m.unit(),
            Resource::Announce { addr, iface } => format!("announce {addr} on {iface}"),
            Resource::SrcAddr(a) => format!("source address {a}"),
        }
    }
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

impl HaCf {
    /// Whether some node may fence `node` when it dies: its groups are
    /// then taken only after a fence.
    pub fn fencing_for(&self, node: &str) -> bool {
        self.fences.iter().any(|f| f.fences(node))
    }

    /// The devices `local` may run against `node`, in ha.cf order.
    pub fn fences_from<'a>(
        &'a self,
        local: &'a str,
        node: &'a str,
    ) -> impl Iterator<Item = &'a Fence> {
        self.fences.iter().filter(move |f| f.runs_on(local, node))
    }

    /// The ping-node deadtime in effect: `deadping`, or `deadtime` when
    /// unset (`hb:config.c init_config`).
    pub fn effective_deadping(&self) -> Duration {
        self.deadping.unwrap_or(self.timings.deadtime)
    }
}

/// A configuration that loaded, with the warnings and notices the caller
/// should print (check-config) or log (daemon).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub config: Config,
    pub notices: Vec<Diagnostic>,
}

/// The file names inside the configuration directory.
pub const HA_CF: &str = "ha.cf";
pub const AUTHKEYS: &str = "authkeys";
pub const HARESOURCES: &str = "haresources";

/// Reads, parses and validates `dir/ha.cf`, `dir/authkeys` and
/// `dir/haresources` for the node `local_node` (`uname -n` or `--node`;
/// compared lowercased).
///
/// Every file is checked even when an earlier one has errors, and every
/// error is returned. Messages name the files as `dir.join(name)` shows
/// them. authkeys must be mode 0600 (no group or other bits) and owned by
/// root.
pub fn load(dir: &Path, local_node: &str) -> Result<Loaded, Diagnostics> {
    load_with_owner(dir, local_node, 0)
}

/// [`load`], but authkeys must be owned by `authkeys_owner` instead of
/// root. For tests that run unprivileged and so cannot chown a file to
/// root; the daemon and check-config use [`load`].
pub fn load_with_owner(
    dir: &Path,
    local_node: &str,
    authkeys_owner: u32,
) -> Result<Loaded, Diagnostics> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    let local = local_node.to_lowercase();

    let ha_path = dir.join(HA_CF);
    let ha_shown = ha_path.display().to_string();
    let (ha, nodes) = match read_text(&ha_path, &mut diags) {
        Some(text) => {
            let p = hacf::parse_detailed_with(&ha_shown, &text, &hacf::system_resolver);
            diags.extend(p.diagnostics);
            if let Some(e) = hacf::check_local_node(&ha_shown, &p.nodes, p.first_node_line, &local)
            {
                diags.push(e);
            }
            (p.ha, p.nodes)
        }
        None => (None, Vec::new()),
    };

    if let Some(ha) = &ha {
        check_fence_credentials(dir, &ha_shown, ha, &local, authkeys_owner, &mut diags);
    }

    let ak_path = dir.join(AUTHKEYS);
    let ak_shown = ak_path.display().to_string();
    let keys = match read_text(&ak_path, &mut diags) {
        Some(text) => {
            if let Some(e) = authkeys::check_file_permissions(&ak_path, authkeys_owner) {
                diags.push(e);
            }
            match authkeys::parse(&ak_shown, &text) {
                Ok((k, notes)) => {
                    diags.extend(notes);
                    Some(k)
                }
                Err(e) => {
                    diags.extend(e);
                    None
                }
            }
        }
        None => None,
    };

    let hr_path = dir.join(HARESOURCES);
    let hr_shown = hr_path.display().to_string();
    let groups = match read_text(&hr_path, &mut diags) {
        Some(text) => {
            match haresources::parse_with(&hr_shown, &text, &nodes, &haresources::script_dirs(dir))
            {
                Ok((g, notes)) => {
                    diags.extend(notes);
                    Some(g)
                }
                Err(e) => {
                    diags.extend(e);
                    None
                }
            }
        }
        None => None,
    };

    // Each file's diagnostics in line order; whole-file ones last.
    let order = [&ha_shown, &ak_shown, &hr_shown];
    diags.sort_by_key(|d| {
        (
            order
                .iter()
                .position(|p| **p == d.path)
                .unwrap_or(order.len()),
            d.line.unwrap_or(usize::MAX),
        )
    });

    match (ha, keys, groups) {
        (Some(ha), Some(keys), Some(groups))
            if !diags.iter().any(Diagnostic::is_error)
                && !witness_holds(&ha, &groups, &hr_shown, &mut diags) =>
        {
            Ok(Loaded {
                config: Config {
                    dir: dir.to_path_buf(),
                    local_node: local,
                    ha,
                    keys,
                    groups,
                },
                notices: diags,
            })
        }
        _ => Err(Diagnostics(diags)),
    }
}

/// Every node this one may fence with a device that takes its parameters
/// from a credentials file must have that file, safe and well formed; a
/// missing one is reported at the ha.cf line that needs it.
fn check_fence_credentials(
    dir: &Path,
    ha_shown: &str,
    ha: &HaCf,
    local: &str,
    owner: u32,
    diags: &mut Vec<Diagnostic>,
) {
    for node in ha.nodes.iter().filter(|n| *n != local) {
        let Some(f) = ha.fences_from(local, node).find(|f| f.needs_credentials()) else {
            continue;
        };
        let path = fencekeys::path(dir, node);
        if !path.exists() {
            diags.push(Diagnostic {
                path: ha_shown.to_string(),
                line: Some(f.line),
                severity: Severity::Error,
                message: format!(
                    "fencing {node}: no credentials file {} (the agent's options as name=value \
                     lines, mode 0600, owned by root)",
                    path.display()
                ),
            });
            continue;
        }
        if let Err(e) = fencekeys::load(&path, owner) {
            diags.extend(e);
        }
    }
}

/// Reports (and returns whether) a haresources line names a witness as
/// its node: a witness never holds a group.
fn witness_holds(ha: &HaCf, groups: &[Group], path: &str, diags: &mut Vec<Diagnostic>) -> bool {
    let mut any = false;
    for g in groups.iter().filter(|g| ha.witnesses.contains(&g.node)) {
        any = true;
        diags.push(Diagnostic {
            path: path.to_string(),
            line: Some(g.line),
            severity: Severity::Error,
            message: format!(
                "group {} names {}, a witness (ha.cf), as its node; a witness never holds a \
                 group: name another node, or remove the witness line",
                g.key, g.node
            ),
        });
    }
    any
}

/// Reads a file as text. A read failure or invalid UTF-8 is reported; the
/// text is still returned (lossily decoded) in the latter case so that
/// the rest of the file is checked.
fn read_text(path: &Path, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let shown = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                let bytes = e.into_bytes();
                let bad_at = std::str::from_utf8(&bytes)
                    .err()
                    .map_or(0, |u| u.valid_up_to());
                let line = bytes[..bad_at].iter().filter(|b| **b == b'\n').count() + 1;
                diags.push(Diagnostic {
                    path: shown,
                    line: Some(line),
                    severity: Severity::Error,
                    message: "this line is not valid UTF-8".into(),
                });
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
        },
        Err(e) => {
            diags.push(Diagnostic {
                path: shown,
                line: None,
                severity: Severity::Error,
                message: format!("cannot read: {e}"),
            });
            None
        }
    }
}
