//! `haresources`: one resource group per logical line,
//! `node res1 res2 …`, as heartbeat's `ResourceManager` reads it.
//!
//! * `#` at the start of a line or after whitespace starts a comment;
//! * a line ending in `\` continues on the next one;
//! * blank lines are skipped.
//!
//! Resources, started left to right and stopped right to left:
//!
//! | written | means |
//! |---|---|
//! | `IPaddr::ADDR[/PREFIX[/IFACE[:LABEL]][/BROADCAST]]` | IPv4 VIP (`eth0:0` is iface `eth0`, label `eth0:0`) |
//! | `IPaddr2::…` | the same syntax; also takes an IPv6 ADDR |
//! | `IPv6addr::ADDR[/PREFIX[/IFACE]]` | IPv6 VIP; everything after `IPv6addr::` is one argument |
//! | `ADDR[/…]` (a bare IPv4 address) | `IPaddr::ADDR[/…]`, as in heartbeat |
//! | `Filesystem::DEV::DIR[::TYPE[::OPTS]]` | a transient mount unit ([`Mount`]) |
//! | `drbddisk[::RES]` | `drbd-promote@RES.service` (`@all` without RES) |
//! | `SendArp::ADDR/IFACE` | harust's own announcement ([`Resource::Announce`]) |
//! | `IPsrcaddr::ADDR` | the default route's source ([`Resource::SrcAddr`]) |
//! | `MailTo::ADDR[::SUBJECT]`, `apache[::CONF]` | `harust-mailto@….service`, `apache2.service` |
//! | `NAME[::a…]` with a `resource.d/NAME` script | `harust-resource@PATH:a….service` |
//! | `name`, `name.service`, `x.mount`, … | systemd unit; a bare name gets `.service` |
//! | `Name::a::b` | template instance `Name@a:b.service`, args escaped as `systemd-escape` |
//!
//! A missing PREFIX is taken, when the address is acquired, from the
//! connected route that holds the address, as heartbeat's IPaddr (findif)
//! does; check-config says so. Empty `/` fields are skipped, as IPaddr
//! does.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics, Sink, did_you_mean, finish, quote};
use super::hacf::valid_iface;
use super::unit::{UNIT_NAME_MAX, instance_escape, map_unit};
use super::{Group, Mount, Resource, Vip, VipKind};

/// The template unit that runs a heartbeat resource script with its
/// arguments (`units/harust-resource@.service`).
pub const SCRIPT_TEMPLATE: &str = "harust-resource";
/// The template unit that mails on takeover and release
/// (`units/harust-mailto@.service`).
pub const MAILTO_TEMPLATE: &str = "harust-mailto";

/// Where heartbeat resource scripts are looked for, in order: the
/// configuration directory's `resource.d`, then heartbeat's own.
pub fn script_dirs(config_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![config_dir.join("resource.d")];
    let hb = PathBuf::from("/etc/ha.d/resource.d");
    if !dirs.contains(&hb) {
        dirs.push(hb);
    }
    dirs
}

/// The first `dir/name` that is a file, if any.
fn find_script(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// heartbeat's own resource.d scripts that harust has no native
/// treatment for: they run through the script template when the script
/// exists on this host, and are otherwise mapped to a unit of that name.
const HEARTBEAT_AGENTS: &[&str] = &[
    "AudibleAlarm",
    "Delay",
    "ICP",
    "LVM",
    "LinuxSCSI",
    "OCF",
    "Raid1",
    "ServeRAID",
    "WAS",
    "WinPopup",
    "Xinetd",
    "db2",
    "hto-mapfuncs",
    "ids",
    "portblock",
];

const VIP_AGENTS: &[(&str, VipKind)] = &[
    ("IPaddr", VipKind::IPaddr),
    ("IPaddr2", VipKind::IPaddr2),
    ("IPv6addr", VipKind::IPv6addr),
];

/// Parses haresources text. `nodes` are the configured node names
/// (lowercased); each group's node must be one of them. With an empty
/// `nodes` (ha.cf had none, which is reported there) the check is skipped.
pub fn parse(
    path: &str,
    text: &str,
    nodes: &[String],
) -> Result<(Vec<Group>, Vec<Diagnostic>), Diagnostics> {
    parse_with(path, text, nodes, &[])
}

/// [`parse`], with heartbeat resource scripts looked for in `script_dirs`
/// (see [`script_dirs`]): a resource naming an existing script runs it
/// through the script template unit, as heartbeat would.
pub fn parse_with(
    path: &str,
    text: &str,
    nodes: &[String],
    script_dirs: &[PathBuf],
) -> Result<(Vec<Group>, Vec<Diagnostic>), Diagnostics> {
    let mut d = Sink::new(path);
    let mut groups = Vec::new();
    // Where each VIP address and unit was first used, for duplicates.
    let mut used: HashMap<String, usize> = HashMap::new();
    for logical in logical_lines(text, &mut d) {
        if let Some(g) = parse_group(&logical, nodes, script_dirs, &mut used, &mut d) {
            groups.push(g);
        }
    }
    let ok = !d.has_errors();
    finish(ok.then_some(groups), d.list)
}

/// One token and the physical line it is on.
type Token<'a> = (&'a str, usize);

/// Joins `\` continuations; drops comments and blank lines.
fn logical_lines<'a>(text: &'a str, d: &mut Sink) -> Vec<Vec<Token<'a>>> {
    let mut out = Vec::new();
    let mut cur: Vec<Token<'a>> = Vec::new();
    let mut continuing = false;
    let mut last_line = 0;
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        last_line = line;
        let raw = raw.trim_end_matches('\r');
        let content = strip_comment(raw).trim_end();
        let (content, cont) = match content.strip_suffix('\\') {
            Some(c) => (c, true),
            None => (content, false),
        };
        cur.extend(content.split_whitespace().map(|t| (t, line)));
        continuing = cont;
        if !cont && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if continuing {
        d.warning(
            last_line,
            "the file ends with a '\\' continuation; the group ends here",
        );
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Cuts a `#` comment that starts the line or follows whitespace.
fn strip_comment(s: &str) -> &str {
    let mut prev_ws = true;
    for (i, c) in s.char_indices() {
        if c == '#' && prev_ws {
            return &s[..i];
        }
        prev_ws = c.is_whitespace();
    }
    s
}

fn parse_group(
    tokens: &[Token<'_>],
    nodes: &[String],
    script_dirs: &[PathBuf],
    used: &mut HashMap<String, usize>,
    d: &mut Sink,
) -> Option<Group> {
    let (&(node_raw, line), resources) = tokens.split_first()?;
    let node = node_raw.to_lowercase();
    let mut ok = true;
    if !nodes.is_empty() && !nodes.contains(&node) {
        d.error(
            line,
            format!(
                "{} is not a configured node (ha.cf lists: {}){}",
                quote(&node),
                nodes.join(", "),
                did_you_mean(&node, nodes.iter().map(String::as_str))
            ),
        );
        ok = false;
    }
    if resources.is_empty() {
        d.error(
            line,
            format!("the group for {} lists no resources", quote(&node)),
        );
        return None;
    }
    let mut out = Vec::new();
    for &(tok, tline) in resources {
        match parse_resource_with(tok, tline, script_dirs, d) {
            Some(r) => {
                let id = match &r {
                    Resource::Vip(v) => format!("address {}", v.addr),
                    Resource::Mount(m) => format!("mount point {}", m.path),
                    Resource::SrcAddr(_) => "IPsrcaddr (the default route's source)".to_string(),
                    other => format!("unit {}", other.describe()),
                };
                if let Some(prev) = used.get(&id) {
                    d.error(
                        tline,
                        format!("{id} is already used on line {prev}; a resource can be in one group only"),
                    );
                    ok = false;
                } else {
                    used.insert(id, tline);
                }
                out.push(r);
            }
            None => ok = false,
        }
    }
    ok.then(|| Group {
        node,
        key: resources[0].0.to_string(),
        resources: out,
        line,
    })
}

/// Parses one resource token; reports problems to `d`.
#[cfg(test)]
pub(crate) fn parse_resource(tok: &str, line: usize, d: &mut Sink) -> Option<Resource> {
    parse_resource_with(tok, line, &[], d)
}

/// An instance of one of harust's templates, its arguments escaped
/// reversibly; an error if the name grows too long.
fn template_instance(
    template: &str,
    args: &[&str],
    tok: &str,
    line: usize,
    d: &mut Sink,
) -> Option<String> {
    let inst: Vec<String> = args.iter().map(|a| instance_escape(a)).collect();
    let unit = format!("{template}@{}.service", inst.join(":"));
    if unit.len() > UNIT_NAME_MAX {
        d.error(
            line,
            format!(
                "{}: the unit name {template}@….service would be {} characters long; systemd \
                 allows at most {UNIT_NAME_MAX}",
                quote(tok),
                unit.len()
            ),
        );
        return None;
    }
    Some(unit)
}

/// heartbeat resource agents harust runs natively or maps to a known unit
/// (see docs/MIGRATING.md). `None` when `name` is not one of them.
fn known_agent(
    name: &str,
    args: &[&str],
    tok: &str,
    line: usize,
    d: &mut Sink,
) -> Option<Option<Resource>> {
    let q = quote(tok);
    let r = match name {
        // resource.d/Filesystem DEVICE DIRECTORY [FSTYPE [OPTIONS]]
        "Filesystem" => {
            let (what, path, fstype, options) = match args {
                [w, p] => (w, p, None, None),
                [w, p, t] => (w, p, Some(*t), None),
                [w, p, t, o] => (w, p, Some(*t), Some(*o)),
                _ => {
                    d.error(
                        line,
                        format!("{q}: expected Filesystem::DEVICE::DIRECTORY[::TYPE[::OPTIONS]]"),
                    );
                    return Some(None);
                }
            };
            if !path.starts_with('/') || path.split('/').any(|c| c == "." || c == "..") {
                d.error(
                    line,
                    format!(
                        "{q}: the mount point {} must be an absolute path",
                        quote(path)
                    ),
                );
                return Some(None);
            }
            if what.is_empty() || what.contains(char::is_control) {
                d.error(line, format!("{q}: empty or unprintable device"));
                return Some(None);
            }
            let m = Mount {
                what: what.to_string(),
                path: path.to_string(),
                fstype: fstype.filter(|t| !t.is_empty()).map(str::to_string),
                options: options.filter(|o| !o.is_empty()).map(str::to_string),
            };
            if m.unit().len() > UNIT_NAME_MAX {
                d.error(
                    line,
                    format!(
                        "{q}: the mount unit's name would be {} characters long; systemd allows \
                         at most {UNIT_NAME_MAX}",
                        m.unit().len()
                    ),
                );
                return Some(None);
            }
            d.notice(
                line,
                format!(
                    "{q}: mounted by harust through the transient unit {} (What={} Where={}{}{}); \
                     unmounted on release",
                    m.unit(),
                    m.what,
                    m.path,
                    m.fstype
                        .as_ref()
                        .map(|t| format!(" Type={t}"))
                        .unwrap_or_default(),
                    m.options
                        .as_ref()
                        .map(|o| format!(" Options={o}"))
                        .unwrap_or_default(),
                ),
            );
            Resource::Mount(m)
        }
        // drbd-utils ships drbd-promote@.service for exactly this; a bare
        // drbddisk means every resource (`drbdadm primary all`).
        "drbddisk" => {
            let res = match args {
                [] => "all",
                [r] if !r.is_empty() => r,
                _ => {
                    d.error(
                        line,
                        format!("{q}: expected drbddisk or drbddisk::RESOURCE"),
                    );
                    return Some(None);
                }
            };
            let unit = match map_unit("drbd-promote", &[res]) {
                Ok(u) => u,
                Err(why) => {
                    d.error(line, format!("{q}: {why}"));
                    return Some(None);
                }
            };
            d.notice(
                line,
                format!(
                    "{q}: runs as {unit}, the unit drbd-utils ships for promoting a DRBD resource"
                ),
            );
            Resource::Unit(unit)
        }
        "SendArp" => {
            let parsed = match args {
                [a] => a.split_once('/').and_then(|(ip, i)| {
                    Some((ip.parse::<Ipv4Addr>().ok()?, i.to_string()))
                        .filter(|(_, i)| valid_iface(i))
                }),
                _ => None,
            };
            let Some((addr, iface)) = parsed else {
                d.error(line, format!("{q}: expected SendArp::ADDRESS/INTERFACE"));
                return Some(None);
            };
            d.notice(
                line,
                format!(
                    "{q}: done by harust's own gratuitous ARP announcement of {addr} on {iface}"
                ),
            );
            Resource::Announce { addr, iface }
        }
        "IPsrcaddr" => {
            let addr = match args {
                [a] => a.split('/').next().and_then(|a| a.parse::<IpAddr>().ok()),
                _ => None,
            };
            let Some(addr) = addr else {
                d.error(line, format!("{q}: expected IPsrcaddr::ADDRESS"));
                return Some(None);
            };
            d.notice(
                line,
                format!(
                    "{q}: harust makes {addr} the preferred source of the default route over \
                     netlink, and puts the previous source back on release"
                ),
            );
            Resource::SrcAddr(addr)
        }
        "MailTo" => {
            if !(1..=2).contains(&args.len()) || args.iter().any(|a| a.is_empty()) {
                d.error(line, format!("{q}: expected MailTo::ADDRESS[::SUBJECT]"));
                return Some(None);
            }
            let Some(unit) = template_instance(MAILTO_TEMPLATE, args, tok, line, d) else {
                return Some(None);
            };
            d.notice(
                line,
                format!("{q}: runs as {unit}, which mails through the local sendmail on takeover and release"),
            );
            Resource::Unit(unit)
        }
        "apache" => {
            if args.len() > 1 {
                d.error(line, format!("{q}: expected apache or apache::CONFIGFILE"));
                return Some(None);
            }
            let ignored = if args.is_empty() {
                String::new()
            } else {
                format!(
                    "; the configuration file {} is not passed on (apache2.service reads /etc/apache2)",
                    quote(args[0])
                )
            };
            d.notice(
                line,
                format!("{q}: runs as Debian's apache2.service{ignored}"),
            );
            Resource::Unit("apache2.service".to_string())
        }
        _ => return None,
    };
    Some(Some(r))
}

/// Parses one resource token, looking heartbeat resource scripts up in
/// `script_dirs`; reports problems to `d`.
pub(crate) fn parse_resource_with(
    tok: &str,
    line: usize,
    script_dirs: &[PathBuf],
    d: &mut Sink,
) -> Option<Resource> {
    for &(agent, kind) in VIP_AGENTS {
        if let Some(arg) = tok.strip_prefix(agent).and_then(|r| r.strip_prefix("::")) {
            return parse_vip(kind, arg, tok, line, d).map(Resource::Vip);
        }
    }
    let mut parts = tok.split("::");
    let name = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();

    if let Some(&(agent, _)) = VIP_AGENTS
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(name))
    {
        let msg = if agent == name {
            format!(
                "{}: {agent} needs an address ({agent}::ADDR/PREFIX)",
                quote(tok)
            )
        } else {
            format!(
                "{}: resource agent names are case-sensitive (did you mean \"{agent}\"?)",
                quote(tok)
            )
        };
        d.error(line, msg);
        return None;
    }
    if let Some(r) = known_agent(name, &args, tok, line, d) {
        return r;
    }
    // heartbeat looks for resource.d/NAME before /etc/init.d/NAME.
    if super::unit::unit_suffix(name).is_none()
        && let Some(script) = find_script(script_dirs, name)
    {
        let script_s = script.display().to_string();
        let mut all = vec![script_s.as_str()];
        all.extend(args.iter().copied());
        let unit = template_instance(SCRIPT_TEMPLATE, &all, tok, line, d)?;
        d.notice(
            line,
            format!(
                "{}: runs the heartbeat resource script {script_s} (start, stop, status) through {unit}",
                quote(tok)
            ),
        );
        return Some(Resource::Unit(unit));
    }
    let first = tok.split('/').next().unwrap_or_default();
    if first.parse::<Ipv4Addr>().is_ok() {
        // "the resource script name IPaddr is implied" (haresources(5)).
        return parse_vip(VipKind::IPaddr, tok, tok, line, d).map(Resource::Vip);
    }
    if first.parse::<std::net::Ipv6Addr>().is_ok() {
        d.error(
            line,
            format!(
                "{}: an IPv6 address must be written IPv6addr::{tok}",
                quote(tok)
            ),
        );
        return None;
    }
    if args.is_empty()
        && let Some(s) = super::diag::suggest(name, VIP_AGENTS.iter().map(|(a, _)| *a))
        && name.len() > 3
        && !name.contains('.')
    {
        // e.g. "IPadr": a typo of an agent, not a real unit name.
        d.warning(
            line,
            format!(
                "{}: taken as a systemd unit; did you mean the {s} agent?",
                quote(tok)
            ),
        );
    }
    match map_unit(name, &args) {
        Ok(unit) => {
            if HEARTBEAT_AGENTS.contains(&name) {
                d.warning(
                    line,
                    format!(
                        "{}: {name} is a heartbeat resource script, and no resource.d/{name} \
                         exists here; harust starts the systemd unit {unit} instead, which you \
                         must provide",
                        quote(tok)
                    ),
                );
            }
            Some(Resource::Unit(unit))
        }
        Err(why) => {
            d.error(line, format!("{}: {why}", quote(tok)));
            None
        }
    }
}

fn agent_name(kind: VipKind) -> &'static str {
    match kind {
        VipKind::IPaddr => "IPaddr",
        VipKind::IPaddr2 => "IPaddr2",
        VipKind::IPv6addr => "IPv6addr",
    }
}

/// Parses the argument of `IPaddr::`, `IPaddr2::` or `IPv6addr::`.
fn parse_vip(kind: VipKind, arg: &str, tok: &str, line: usize, d: &mut Sink) -> Option<Vip> {
    let agent = agent_name(kind);
    let mut parts: Vec<&str> = arg.split('/').collect();
    if parts.len() > 1 && parts[1..].iter().any(|p| p.is_empty()) {
        // heartbeat's IPaddr splits on runs of '/', so an empty field
        // vanishes: 10.0.30.15//8/eth0:10 is 10.0.30.15/8/eth0:10.
        let first = parts[0];
        parts.retain(|p| !p.is_empty());
        if parts.first() != Some(&first) {
            parts.insert(0, first);
        }
        d.notice(
            line,
            format!(
                "{}: empty '/' field ignored, as heartbeat's {agent} does: read as {agent}::{}",
                quote(tok),
                parts.join("/")
            ),
        );
    }
    let mut err = |msg: String| {
        d.error(line, format!("{}: {msg}", quote(tok)));
        None
    };
    let addr: IpAddr = match parts[0].parse() {
        Ok(a) => a,
        // `IPaddr::1.2.3.4::x`: heartbeat would pass two arguments.
        Err(_) if arg.contains("::") => {
            return err(format!(
                "{agent} takes one argument, ADDR/PREFIX/IFACE, not several '::' arguments"
            ));
        }
        Err(_) => return err(format!("{} is not an IP address", quote(parts[0]))),
    };
    match (kind, addr) {
        (VipKind::IPaddr, IpAddr::V6(_)) => {
            return err("IPaddr takes an IPv4 address; use IPv6addr:: for IPv6".into());
        }
        (VipKind::IPv6addr, IpAddr::V4(_)) => {
            return err("IPv6addr takes an IPv6 address; use IPaddr:: for IPv4".into());
        }
        _ => {}
    }
    let bad = match addr {
        IpAddr::V4(a) => {
            a.is_unspecified() || a.is_multicast() || a.is_loopback() || a.is_broadcast()
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_multicast() || a.is_loopback(),
    };
    if bad {
        return err(format!("{addr} cannot be a floating address"));
    }
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match parts.get(1) {
        None => None,
        Some(p) => match parse_prefix(p, addr.is_ipv4()) {
            Some(n) => Some(n),
            None => {
                return err(format!(
                    "{} is not a prefix length (1 to {max}{})",
                    quote(p),
                    if addr.is_ipv4() {
                        ", or a netmask such as 255.255.255.0"
                    } else {
                        ""
                    }
                ));
            }
        },
    };
    let rest = parts.get(2..).unwrap_or_default();
    let (iface_part, bcast_part) = match (kind, rest) {
        (_, []) => (None, None),
        (VipKind::IPv6addr, [i]) => (Some(*i), None),
        (VipKind::IPv6addr, _) => {
            return err("expected IPv6addr::ADDR/PREFIX/IFACE; too many '/' parts".into());
        }
        // "case $NIC in [0-9]*) BROADCAST=$NIC" (resource.d/IPaddr)
        (_, [b]) if b.starts_with(|c: char| c.is_ascii_digit()) => (None, Some(*b)),
        (_, [i]) => (Some(*i), None),
        (_, [i, b]) => (Some(*i), Some(*b)),
        _ => {
            return err(format!(
                "expected {agent}::ADDR/PREFIX/IFACE/BROADCAST; too many '/' parts"
            ));
        }
    };
    let (iface, label) = match iface_part {
        None => (None, None),
        Some(s) => match s.split_once(':') {
            None if valid_iface(s) => (Some(s.to_string()), None),
            Some((i, l))
                if valid_iface(i) && !l.is_empty() && s.len() <= 15 && !l.contains('/') =>
            {
                if kind == VipKind::IPv6addr || addr.is_ipv6() {
                    return err(format!("{}: IPv6 addresses take no label", quote(s)));
                }
                (Some(i.to_string()), Some(s.to_string()))
            }
            _ => {
                return err(format!(
                    "{} is not an interface (eth0) or an interface with label (eth0:0), 15 characters at most",
                    quote(s)
                ));
            }
        },
    };
    let broadcast = match bcast_part {
        None => None,
        Some(b) => match (b.parse::<Ipv4Addr>(), addr) {
            (Ok(b), IpAddr::V4(_)) => Some(b),
            (_, IpAddr::V6(_)) => return err("IPv6 addresses take no broadcast address".into()),
            (Err(_), _) => return err(format!("{} is not a broadcast address", quote(b))),
        },
    };
    let auto_prefix = prefix.is_none();
    let prefix = match prefix {
        Some(p) => p,
        None => {
            d.notice(
                line,
                format!(
                    "{}: no prefix length given: as heartbeat's {agent} does, the address takes \
                     the prefix of the connected route that holds it, looked up when it is \
                     acquired; write {agent}::{addr}/PREFIX to fix it",
                    quote(tok)
                ),
            );
            max
        }
    };
    if let IpAddr::V4(a) = addr
        && prefix <= 30
        && !auto_prefix
    {
        let mask = u32::MAX << (32 - prefix);
        let v = u32::from(a);
        if v & !mask == 0 || v | mask == u32::MAX {
            d.warning(
                line,
                format!(
                    "{}: {a} is the {} address of its /{prefix} subnet",
                    quote(tok),
                    if v & !mask == 0 {
                        "network"
                    } else {
                        "broadcast"
                    }
                ),
            );
        }
    }
    Some(Vip {
        kind,
        addr,
        prefix,
        iface,
        label,
        broadcast,
        auto_prefix,
    })
}

/// `24`, or for IPv4 also a contiguous netmask such as `255.255.255.0`.
fn parse_prefix(p: &str, v4: bool) -> Option<u8> {
    let max = if v4 { 32 } else { 128 };
    if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) {
        let n: u8 = p.parse().ok()?;
        return (1..=max).contains(&n).then_some(n);
    }
    if v4 {
        let m = u32::from(p.parse::<Ipv4Addr>().ok()?);
        let n = m.leading_ones();
        if n >= 1 && m.checked_shl(n).unwrap_or(0) == 0 {
            return u8::try_from(n).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(tok: &str) -> Vip {
        let mut d = Sink::new("haresources");
        match parse_resource(tok, 1, &mut d) {
            Some(Resource::Vip(v)) => v,
            other => panic!("{tok}: {other:?} {:?}", d.list),
        }
    }

    #[test]
    fn ipaddr_forms() {
        let v = vip("IPaddr::192.168.9.19/24/eth0:0");
        assert_eq!(v.prefix, 24);
        assert_eq!(v.iface.as_deref(), Some("eth0"));
        assert_eq!(v.label.as_deref(), Some("eth0:0"));
        let v = vip("IPaddr::198.18.0.1/24/198.18.0.255");
        assert_eq!(v.iface, None);
        assert_eq!(v.broadcast, Some(Ipv4Addr::new(198, 18, 0, 255)));
        let v = vip("IPaddr2::198.18.0.1/255.255.0.0/eth1/198.18.255.255");
        assert_eq!(v.prefix, 16);
        assert_eq!(v.kind, VipKind::IPaddr2);
        let v = vip("198.18.0.7");
        assert_eq!((v.kind, v.prefix), (VipKind::IPaddr, 32));
    }

    #[test]
    fn ipv6addr_keeps_double_colons() {
        let v = vip("IPv6addr::2001:db8::10/64/eth0");
        assert_eq!(v.addr, "2001:db8::10".parse::<IpAddr>().unwrap());
        assert_eq!(v.prefix, 64);
        assert_eq!(v.iface.as_deref(), Some("eth0"));
        assert_eq!(vip("IPv6addr::2001:db8::10").prefix, 128);
    }

    #[test]
    fn netmask_must_be_contiguous() {
        assert_eq!(parse_prefix("255.255.255.0", true), Some(24));
        assert_eq!(parse_prefix("255.0.255.0", true), None);
        assert_eq!(parse_prefix("0.0.0.0", true), None);
        assert_eq!(parse_prefix("33", true), None);
        assert_eq!(parse_prefix("0", true), None);
    }

    #[test]
    fn comments_and_continuations() {
        let text = "# c\nnode-a IPaddr::198.18.0.1/24 \\\n  apache2 # web\n\nnode-b mysql # db\n";
        let nodes = vec!["node-a".to_string(), "node-b".to_string()];
        let (g, _) = parse("h", text, &nodes).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].resources.len(), 2);
        assert_eq!(g[0].line, 2);
        assert_eq!(g[1].resources, vec![Resource::Unit("mysql.service".into())]);
    }
}
