//! The short human summary `harust check-config` prints.

use std::fmt::Write;

use super::time::format as t;
use super::{AutoFailback, Config, Medium, Resource, VipKind};
use crate::wire::Method;

/// A few lines describing a loaded configuration: the local node, nodes,
/// media, timings, auto_failback, ping nodes, the signing key's method
/// (never the key), and each group with its resources as harust will
/// run them. Times are in heartbeat syntax (`2s`, `500ms`).
pub fn summary(c: &Config) -> String {
    let mut s = String::new();
    let h = &c.ha;
    // Writing to a String cannot fail.
    let _ = writeln!(s, "configuration: {}", c.dir.display());
    let _ = writeln!(s, "local node:    {}", c.local_node);
    let _ = writeln!(s, "nodes:         {}", h.nodes.join(", "));
    let _ = writeln!(s, "media:");
    for m in &h.media {
        let _ = match m {
            Medium::Ucast { iface, peer, port } => {
                let kw = if peer.is_ipv6() { "ucast6" } else { "ucast" };
                writeln!(s, "  {kw} {iface} {peer} (udp port {port})")
            }
            Medium::Bcast { iface, port } => writeln!(s, "  bcast {iface} (udp port {port})"),
            Medium::Mcast {
                iface,
                group,
                port,
                ttl,
                loopback,
            } => {
                let kw = if group.is_ipv6() { "mcast6" } else { "mcast" };
                writeln!(
                    s,
                    "  {kw} {iface} {group} port {port} ttl {ttl} loop {}",
                    u8::from(*loopback)
                )
            }
        };
    }
    let tm = &h.timings;
    let _ = writeln!(
        s,
        "timings:       keepalive {}, deadtime {}, warntime {}, initdead {}",
        t(tm.keepalive),
        t(tm.deadtime),
        t(tm.warntime),
        t(tm.initdead)
    );
    let af = match h.auto_failback {
        AutoFailback::On => "on",
        AutoFailback::Off => "off",
        AutoFailback::Legacy => "legacy",
    };
    let _ = writeln!(s, "auto_failback: {af}");
    if !h.ping_nodes.is_empty() || !h.ping_groups.is_empty() {
        let mut pings: Vec<String> = h.ping_nodes.iter().map(|p| p.to_string()).collect();
        for g in &h.ping_groups {
            let addrs: Vec<String> = g.addrs.iter().map(|a| a.to_string()).collect();
            pings.push(format!("{} ({})", g.name, addrs.join(" ")));
        }
        let _ = writeln!(
            s,
            "ping:          {} (deadping {})",
            pings.join(", "),
            t(h.effective_deadping())
        );
    }
    let method = match c.keys.keys.get(&c.keys.active) {
        Some(Method::Sha1(_)) => "sha1",
        Some(Method::Md5(_)) => "md5",
        Some(Method::Crc) => "crc",
        None => "?",
    };
    let _ = writeln!(s, "auth:          key {} ({method})", c.keys.active);
    let _ = writeln!(s, "groups:        {}", c.groups.len());
    for g in &c.groups {
        let _ = writeln!(s, "  {} (preferred node {})", g.key, g.node);
        for r in &g.resources {
            let _ = match r {
                Resource::Vip(v) => {
                    let kind = match v.kind {
                        VipKind::IPaddr => "IPaddr",
                        VipKind::IPaddr2 => "IPaddr2",
                        VipKind::IPv6addr => "IPv6addr",
                    };
                    let mut line = if v.auto_prefix {
                        format!("    vip  {} (prefix of its connected route)", v.addr)
                    } else {
                        format!("    vip  {}/{}", v.addr, v.prefix)
                    };
                    match &v.iface {
                        Some(i) => {
                            let _ = write!(line, " on {i}");
                        }
                        None => line.push_str(" on the interface whose subnet holds it"),
                    }
                    if let Some(l) = &v.label {
                        let _ = write!(line, " label {l}");
                    }
                    if let Some(b) = v.broadcast {
                        let _ = write!(line, " broadcast {b}");
                    }
                    writeln!(s, "{line} ({kind})")
                }
                Resource::Unit(u) => writeln!(s, "    unit {u}"),
                Resource::Mount(m) => writeln!(
                    s,
                    "    mount {} on {}{}{} (transient unit {})",
                    m.what,
                    m.path,
                    m.fstype
                        .as_ref()
                        .map(|t| format!(" type {t}"))
                        .unwrap_or_default(),
                    m.options
                        .as_ref()
                        .map(|o| format!(" options {o}"))
                        .unwrap_or_default(),
                    m.unit()
                ),
                Resource::Announce { addr, iface } => {
                    writeln!(s, "    arp  announce {addr} on {iface} (SendArp)")
                }
                Resource::SrcAddr(a) => {
                    writeln!(s, "    src  {a} as the default route's source (IPsrcaddr)")
                }
            };
        }
    }
    s
}
