//! `ha.cf`, as heartbeat 3.0.6 reads it in classic (haresources) mode
//! (`hb:heartbeat/config.c parse_config`, ha.cf(5)).
//!
//! Syntax: one directive per line, then its values. `#` starts a comment
//! anywhere on a line. Directive names are case-sensitive, as in
//! heartbeat. For directives that take a list (`node`, `bcast`, `ping`)
//! values are separated by whitespace or commas (heartbeat's `DELIMS`);
//! whole-line directives (`ucast`, `mcast`, `ping_group`, `respawn`, …)
//! split on whitespace only.
//!
//! Every directive heartbeat knows is accepted. Those that mean nothing
//! under systemd produce a notice saying what harust does instead; the
//! unknown ones are errors with a did-you-mean.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::diag::{Diagnostic, Diagnostics, Sink, did_you_mean, finish, quote};
use super::time::{self, TIME_HINT, TimeError, parse_time};
use super::{AutoFailback, Fence, FenceAgent, HaCf, Medium, PingGroup, Timings};

/// heartbeat's registered port (`UDPPORT` in `include/heartbeat.h`).
pub const DEFAULT_UDPPORT: u16 = 694;
/// `keepalive` default: 1000 ms (`hb:config.c init_config`).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_millis(1000);
/// `deadtime` default: 30000 ms.
pub const DEFAULT_DEADTIME: Duration = Duration::from_millis(30_000);

/// heartbeat's `MAXMEDIA` and `MAXNODE` (`include/heartbeat.h`).
pub const MAX_MEDIA: usize = 64;
pub const MAX_NODES: usize = 100;

/// Every directive name harust accepts in ha.cf: heartbeat 3.0.6's
/// `Directives[]`, `WLdirectives[]` and media plugins, in the order the
/// man page groups them. Used for did-you-mean.
pub const DIRECTIVES: &[&str] = &[
    // timing
    "keepalive",
    "deadtime",
    "warntime",
    "initdead",
    "deadping",
    // media
    "udpport",
    "bcast",
    "mcast",
    "mcast6",
    "ucast",
    "ucast6",
    "serial",
    "baud",
    "udp",
    // membership and resources
    "node",
    "auto_failback",
    "nice_failback",
    "ping",
    "ping6",
    "ping_group",
    "hbaping",
    "autojoin",
    "witness",
    "quorum",
    "crm",
    "pacemaker",
    // logging
    "logfile",
    "debugfile",
    "logfacility",
    "use_logd",
    "conn_logd_time",
    "syslogmsgfmt",
    "debug",
    "log_badpack",
    // processes and system
    "respawn",
    "failfast",
    "watchdog",
    "realtime",
    "rtprio",
    "coredumps",
    "coreroot",
    "memreserve",
    "use_apphbd",
    "env",
    // protocol
    "hopfudge",
    "compression",
    "compression_threshold",
    "traditional_compression",
    "msgfmt",
    "uuidfrom",
    "hbgenmethod",
    "max_rexmit_delay",
    "cluster",
    "quorum_server",
    // fencing and API
    "stonith",
    "stonith_host",
    "fence",
    "apiauth",
    // Pacemaker-only
    "crm_daemon_dir",
    "crmd_spawns_pengine",
    "record_config_changes",
    "record_pengine_inputs",
    "enable_config_writes",
];

/// Directives whose value is the rest of the line, split on whitespace
/// only (heartbeat's whole-line directives and `parse`-style media).
const WHOLE_LINE: &[&str] = &[
    "ucast",
    "ucast6",
    "mcast",
    "mcast6",
    "ping_group",
    "respawn",
    "failfast",
    "stonith",
    "stonith_host",
    "fence",
    "apiauth",
    "env",
];

/// ha.cf parsed, plus what `load` needs even when there are errors.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// `Some` when there is no error.
    pub ha: Option<HaCf>,
    /// The node names, lowercased, even if the file has errors, so that
    /// haresources can still be checked.
    pub nodes: Vec<String>,
    /// Line of the first `node` directive, for the local-node check.
    pub first_node_line: Option<usize>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses ha.cf text. `path` is used only in messages. Pure: a host name
/// in a ucast or ping line is reported as not resolving; [`crate::config::load`]
/// and [`parse_with_resolver`] look names up. `Ok` carries the
/// warnings and notices; `Err` carries every diagnostic. The local node is
/// not checked here: see [`check_local_node`].
pub fn parse(path: &str, text: &str) -> Result<(HaCf, Vec<Diagnostic>), Diagnostics> {
    let p = parse_detailed(path, text);
    finish(p.ha, p.diagnostics)
}

/// The error if `local_node` (compared lowercased) is not among `nodes`.
pub fn check_local_node(
    path: &str,
    nodes: &[String],
    first_node_line: Option<usize>,
    local_node: &str,
) -> Option<Diagnostic> {
    let local = local_node.to_lowercase();
    if nodes.contains(&local) {
        return None;
    }
    let mut sink = Sink::new(path);
    let listed = if nodes.is_empty() {
        "no nodes are configured".to_string()
    } else {
        format!("configured nodes: {}", nodes.join(", "))
    };
    sink.error_at(
        first_node_line,
        format!(
            "this node {} is not in any node line ({listed}){}; add \"node {local}\" \
             or name this node with --node",
            quote(&local),
            did_you_mean(&local, nodes.iter().map(String::as_str)),
        ),
    );
    sink.list.pop()
}

/// Looks a host name up, as heartbeat's media and ping plugins do with
/// gethostbyname: `None` if it does not resolve.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<Vec<IpAddr>>;

/// The system's resolver (getaddrinfo: /etc/hosts, then DNS, as
/// nsswitch.conf says).
pub fn system_resolver(name: &str) -> Option<Vec<IpAddr>> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<IpAddr> = (name, 0).to_socket_addrs().ok()?.map(|a| a.ip()).collect();
    (!addrs.is_empty()).then_some(addrs)
}

/// A resolver that knows no name: keeps [`parse`] pure.
pub fn no_resolver(_: &str) -> Option<Vec<IpAddr>> {
    None
}

/// Like [`parse`], keeping node names and lines even on error. Pure: host
/// names do not resolve (see [`parse_detailed_with`]).
pub fn parse_detailed(path: &str, text: &str) -> Parsed {
    parse_detailed_with(path, text, &no_resolver)
}

/// [`parse`], with host names in ucast and ping lines looked up by
/// `resolve` ([`system_resolver`], or a test's own).
pub fn parse_with_resolver(
    path: &str,
    text: &str,
    resolve: Resolver<'_>,
) -> Result<(HaCf, Vec<Diagnostic>), Diagnostics> {
    let p = parse_detailed_with(path, text, resolve);
    finish(p.ha, p.diagnostics)
}

/// [`parse_detailed`] with a given resolver.
pub fn parse_detailed_with(path: &str, text: &str, resolve: Resolver<'_>) -> Parsed {
    let mut b = Builder::new(path, resolve);
    for (idx, raw) in text.split('\n').enumerate() {
        let line = idx + 1;
        // heartbeat zaps everything from the first '#', then CR/LF.
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let content = content.trim_end_matches('\r');
        let mut words = content.split_whitespace();
        let Some(directive) = words.next() else {
            continue;
        };
        let rest: Vec<&str> = if WHOLE_LINE.contains(&directive) {
            words.collect()
        } else {
            words
                .flat_map(|w| w.split(','))
                .filter(|w| !w.is_empty())
                .collect()
        };
        b.directive(line, directive, &rest);
    }
    b.finish()
}

/// heartbeat's `cl_str_to_boolean`.
fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "y" | "1" => Some(true),
        "false" | "off" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

/// syslog facility names heartbeat accepts (`cl_syslogfac_str2int`).
const FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", "none",
];

/// A host name as gethostbyname takes it: dot-separated labels of letters,
/// digits, `-` and `_`.
fn valid_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A Linux interface name: 1..=15 bytes, no `/`, `:` or whitespace.
pub(crate) fn valid_iface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b < 0x20)
}

struct Builder<'r> {
    d: Sink,
    resolve: Resolver<'r>,
    keepalive: Option<(Duration, usize)>,
    deadtime: Option<(Duration, usize)>,
    warntime: Option<(Duration, usize)>,
    initdead: Option<(Duration, usize)>,
    deadping: Option<(Duration, usize)>,
    udpport: Option<(u16, usize)>,
    media: Vec<(Medium, usize)>,
    nodes: Vec<(String, usize)>,
    auto_failback: Option<AutoFailback>,
    ping_nodes: Vec<IpAddr>,
    ping_groups: Vec<PingGroup>,
    witnesses: Vec<(String, usize)>,
    quorum: Option<(bool, usize)>,
    fences: Vec<Fence>,
    /// Line where each single-valued directive was last set.
    seen: HashMap<String, usize>,
    /// heartbeat's bcast, ucast and ucast6 plugins each read `udpport`
    /// once, when their first medium is declared, and keep that port for
    /// all their media (`hb:lib/plugins/HBcomm/bcast.c bcast_init`): the
    /// port each latched, and the line that latched it.
    latched: HashMap<&'static str, (u16, usize)>,
}

impl<'r> Builder<'r> {
    fn new(path: &str, resolve: Resolver<'r>) -> Self {
        Builder {
            d: Sink::new(path),
            resolve,
            keepalive: None,
            deadtime: None,
            warntime: None,
            initdead: None,
            deadping: None,
            udpport: None,
            media: Vec::new(),
            nodes: Vec::new(),
            auto_failback: None,
            ping_nodes: Vec::new(),
            ping_groups: Vec::new(),
            witnesses: Vec::new(),
            quorum: None,
            fences: Vec::new(),
            seen: HashMap::new(),
            latched: HashMap::new(),
        }
    }

    /// Warns when a single-valued directive is repeated; the last wins,
    /// as in heartbeat.
    fn once(&mut self, line: usize, name: &str) {
        if let Some(prev) = self.seen.insert(name.to_string(), line) {
            self.d.warning(
                line,
                format!("{name} is set again (line {prev}); the value on this line is used"),
            );
        }
    }

    /// Exactly one value, or an error saying what was expected.
    fn one<'a>(
        &mut self,
        line: usize,
        name: &str,
        args: &[&'a str],
        what: &str,
    ) -> Option<&'a str> {
        match args {
            [v] => Some(v),
            [] => {
                self.d
                    .error(line, format!("{name}: missing value (expected {what})"));
                None
            }
            [_, extra @ ..] => {
                self.d.error(
                    line,
                    format!(
                        "{name}: takes one value ({what}), but {} more follow: {}",
                        extra.len(),
                        quote(&extra.join(" "))
                    ),
                );
                None
            }
        }
    }

    fn time(&mut self, line: usize, name: &str, args: &[&str]) -> Option<(Duration, usize)> {
        let v = self.one(line, name, args, "a time")?;
        match parse_time(v) {
            Ok(t) => {
                self.once(line, name);
                Some((t, line))
            }
            Err(TimeError::Syntax) => {
                self.d.error(
                    line,
                    format!("{name}: {} is not a time ({TIME_HINT})", quote(v)),
                );
                None
            }
            Err(TimeError::TooLarge) => {
                self.d.error(
                    line,
                    format!(
                        "{name}: {} is too large (at most {} ms)",
                        quote(v),
                        time::MAX_MS
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, line: usize, name: &str, args: &[&str]) -> Option<bool> {
        let v = self.one(line, name, args, "on or off")?;
        let b = parse_bool(v);
        if b.is_none() {
            self.d.error(
                line,
                format!("{name}: {} is not a boolean (use on or off)", quote(v)),
            );
        }
        b
    }

    fn choice(
        &mut self,
        line: usize,
        name: &str,
        args: &[&str],
        choices: &[&str],
    ) -> Option<String> {
        let what = choices.join(", ");
        let v = self.one(line, name, args, &format!("one of {what}"))?;
        if let Some(c) = choices.iter().find(|c| c.eq_ignore_ascii_case(v)) {
            return Some(c.to_string());
        }
        self.d.error(
            line,
            format!(
                "{name}: {} is not one of {what}{}",
                quote(v),
                did_you_mean(v, choices.iter().copied())
            ),
        );
        None
    }

    fn int(&mut self, line: usize, name: &str, args: &[&str], min: u64, max: u64) -> Option<u64> {
        let what = format!("a number from {min} to {max}");
        let v = self.one(line, name, args, &what)?;
        match v.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.d
                    .error(line, format!("{name}: {} is not {what}", quote(v)));
                None
            }
        }
    }

    fn port(&mut self, line: usize, name: &str, v: &str) -> Option<u16> {
        match v.parse::<u16>() {
            Ok(p) if p > 0 => Some(p),
            _ => {
                self.d.error(
                    line,
                    format!("{name}: {} is not a UDP port (1 to 65535)", quote(v)),
                );
                None
            }
        }
    }

    fn iface(&mut self, line: usize, name: &str, v: &str) -> Option<String> {
        if valid_iface(v) {
            Some(v.to_string())
        } else {
            self.d.error(
                line,
                format!(
                    "{name}: {} is not a network interface name (1 to 15 characters, no '/', ':' or spaces)",
                    quote(v)
                ),
            );
            None
        }
    }

    /// An address, or a host name looked up now as heartbeat does at start
    /// (gethostbyname: IPv4 unless `v6`).
    fn ip(&mut self, line: usize, name: &str, v: &str) -> Option<IpAddr> {
        self.ip_of(line, name, v, false)
    }

    fn ip_of(&mut self, line: usize, name: &str, v: &str, v6: bool) -> Option<IpAddr> {
        if let Ok(a) = v.parse::<IpAddr>() {
            return Some(a);
        }
        if !valid_host_name(v) {
            self.d.error(
                line,
                format!(
                    "{name}: {} is neither an IP address nor a host name",
                    quote(v)
                ),
            );
            return None;
        }
        let found = (self.resolve)(v)
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.is_ipv6() == v6);
        match found {
            Some(a) => {
                self.d.notice(
                    line,
                    format!(
                        "{name}: host name {} resolves to {a}; it is looked up once, when the \
                         configuration is loaded, as heartbeat does",
                        quote(v)
                    ),
                );
                Some(a)
            }
            None => {
                self.d.error(
                    line,
                    format!(
                        "{name}: cannot resolve host name {} to an {} address (heartbeat would \
                         refuse to start too); add it to /etc/hosts or write the address",
                        quote(v),
                        if v6 { "IPv6" } else { "IPv4" }
                    ),
                );
                None
            }
        }
    }

    /// The port a new `kind` medium gets: latched at its first medium.
    fn medium_port(&mut self, kind: &'static str, line: usize) -> u16 {
        let now = self.udpport.map_or(DEFAULT_UDPPORT, |(p, _)| p);
        self.latched.entry(kind).or_insert((now, line)).0
    }

    fn notice(&mut self, line: usize, name: &str, args: &[&str], what: &str) {
        let shown = if args.is_empty() {
            name.to_string()
        } else {
            format!("{name} {}", args.join(" "))
        };
        let shown: String = shown.chars().take(80).collect();
        self.d.notice(line, format!("{shown}: {what}"));
    }

    fn add_medium(&mut self, line: usize, m: Medium) {
        if let Some((_, prev)) = self.media.iter().find(|(x, _)| *x == m) {
            let prev = *prev;
            self.d.warning(
                line,
                format!("the same medium is already configured on line {prev}; ignored"),
            );
            return;
        }
        if self.media.len() >= MAX_MEDIA {
            self.d.error(
                line,
                format!("too many media (at most {MAX_MEDIA}, as in heartbeat)"),
            );
            return;
        }
        self.media.push((m, line));
    }

    fn directive(&mut self, line: usize, name: &str, args: &[&str]) {
        match name {
            "keepalive" => self.keepalive = self.time(line, name, args).or(self.keepalive),
            "deadtime" => self.deadtime = self.time(line, name, args).or(self.deadtime),
            "warntime" => self.warntime = self.time(line, name, args).or(self.warntime),
            "initdead" => self.initdead = self.time(line, name, args).or(self.initdead),
            "deadping" => self.deadping = self.time(line, name, args).or(self.deadping),
            "udpport" => {
                let Some(v) = self.one(line, name, args, "a UDP port") else {
                    return;
                };
                if let Some(p) = self.port(line, name, v) {
                    self.once(line, name);
                    let mut kept: Vec<(&str, u16, usize)> = self
                        .latched
                        .iter()
                        .filter(|(_, (port, _))| *port != p)
                        .map(|(k, (port, l))| (*k, *port, *l))
                        .collect();
                    kept.sort_by_key(|k| k.2);
                    if !kept.is_empty() {
                        let list: Vec<String> = kept
                            .iter()
                            .map(|(k, port, l)| {
                                format!("{k} media keep port {port} (first {k} on line {l})")
                            })
                            .collect();
                        self.d.warning(
                            line,
                            format!(
                                "udpport comes after media: as in heartbeat, {}; only media of \
                                 another kind declared after this line use {p}. Put udpport \
                                 before every medium",
                                list.join(", ")
                            ),
                        );
                    }
                    self.udpport = Some((p, line));
                }
            }
            "bcast" | "udp" => {
                if name == "udp" {
                    self.d
                        .notice(line, "udp is heartbeat's old name for bcast; write bcast");
                }
                if args.is_empty() {
                    self.d.error(
                        line,
                        format!("{name}: missing interface (e.g. {name} eth0)"),
                    );
                }
                for a in args {
                    if let Some(iface) = self.iface(line, name, a) {
                        let port = self.medium_port("bcast", line);
                        self.add_medium(line, Medium::Bcast { iface, port });
                    }
                }
            }
            "ucast" | "ucast6" => self.ucast(line, name, args),
            "mcast" | "mcast6" => self.mcast(line, name, args),
            "serial" => self.notice(
                line,
                name,
                args,
                "serial links are not supported by harust; this line adds no medium",
            ),
            "baud" => {
                if self
                    .choice(
                        line,
                        name,
                        args,
                        &[
                            "9600", "19200", "38400", "57600", "115200", "230400", "460800",
                        ],
                    )
                    .is_some()
                {
                    self.notice(
                        line,
                        name,
                        args,
                        "serial links are not supported by harust; ignored",
                    );
                }
            }
            "node" => {
                if args.is_empty() {
                    self.d
                        .error(line, "node: missing node name (the node's uname -n)");
                }
                for a in args {
                    let n = a.to_lowercase();
                    if let Some((_, prev)) = self.nodes.iter().find(|(x, _)| *x == n) {
                        let prev = *prev;
                        self.d.warning(
                            line,
                            format!("node {} is already listed on line {prev}", quote(&n)),
                        );
                    } else if self.nodes.len() >= MAX_NODES {
                        self.d.error(
                            line,
                            format!("too many nodes (at most {MAX_NODES}, as in heartbeat)"),
                        );
                        break;
                    } else {
                        self.nodes.push((n, line));
                    }
                }
            }
            "auto_failback" => {
                let Some(v) = self.one(line, name, args, "on, off or legacy") else {
                    return;
                };
                let af = if v.eq_ignore_ascii_case("legacy") {
                    Some(AutoFailback::Legacy)
                } else {
                    parse_bool(v).map(|b| {
                        if b {
                            AutoFailback::On
                        } else {
                            AutoFailback::Off
                        }
                    })
                };
                match af {
                    Some(af) => {
                        self.once(line, name);
                        self.auto_failback = Some(af);
                    }
                    None => self.d.error(
                        line,
                        format!("auto_failback: {} is not on, off or legacy", quote(v)),
                    ),
                }
            }
            "nice_failback" => {
                // hb:config.c set_nice_failback: on -> auto_failback off,
                // off -> legacy.
                if let Some(b) = self.boolean(line, name, args) {
                    let (af, word) = if b {
                        (AutoFailback::Off, "off")
                    } else {
                        (AutoFailback::Legacy, "legacy")
                    };
                    self.once(line, "auto_failback");
                    self.auto_failback = Some(af);
                    self.d.notice(
                        line,
                        format!(
                            "nice_failback is obsolete; read as \"auto_failback {word}\", as heartbeat does \
                             (write auto_failback on or off instead)"
                        ),
                    );
                }
            }
            // heartbeat's ping6 plugin: IPv6 ping nodes.
            "ping" | "ping6" => {
                if args.is_empty() {
                    self.d.error(line, format!("{name}: missing address"));
                }
                let v6 = name == "ping6";
                for a in args {
                    let ip = self.ip_of(line, name, a, v6);
                    if v6 && ip.is_some_and(|ip| ip.is_ipv4()) {
                        self.d.error(
                            line,
                            format!("ping6: {} is an IPv4 address; use ping", quote(a)),
                        );
                        continue;
                    }
                    if let Some(ip) = ip {
                        if self.ping_nodes.contains(&ip) {
                            self.d
                                .warning(line, format!("ping node {ip} is already listed"));
                        } else if self.ping_nodes.len() + self.ping_groups.len() >= MAX_NODES {
                            self.d.error(
                                line,
                                format!(
                                    "too many ping nodes (at most {MAX_NODES}, as in heartbeat)"
                                ),
                            );
                            break;
                        } else {
                            self.ping_nodes.push(ip);
                        }
                    }
                }
            }
            "ping_group" => {
                let Some((group, addrs)) = args.split_first() else {
                    self.d.error(
                        line,
                        "ping_group: missing group name and addresses (ping_group NAME IP...)",
                    );
                    return;
                };
                if addrs.is_empty() {
                    self.d.error(
                        line,
                        format!("ping_group {group}: missing addresses (ping_group NAME IP...)"),
                    );
                    return;
                }
                let name_lc = group.to_lowercase();
                if self.ping_nodes.len() + self.ping_groups.len() >= MAX_NODES {
                    self.d.error(
                        line,
                        format!("too many ping nodes (at most {MAX_NODES}, as in heartbeat)"),
                    );
                    return;
                }
                if self.ping_groups.iter().any(|g| g.name == name_lc) {
                    self.d.error(
                        line,
                        format!("ping_group {}: defined twice", quote(&name_lc)),
                    );
                    return;
                }
                let mut ok = Vec::new();
                for a in addrs {
                    if let Some(ip) = self.ip(line, name, a) {
                        ok.push(ip);
                    }
                }
                if ok.len() == addrs.len() {
                    self.ping_groups.push(PingGroup {
                        name: name_lc,
                        addrs: ok,
                    });
                }
            }
            // Debian's heartbeat 3.0.6 has no hbaping plugin and refuses
            // the line too (measured).
            "hbaping" => self.d.error(
                line,
                "hbaping: fibre-channel ping nodes are not supported (heartbeat 3.0.6 as \
                 packaged has no hbaping plugin either); use ping or ping_group",
            ),
            "autojoin" => {
                if let Some(v) = self.choice(line, name, args, &["none", "other", "any"])
                    && v != "none"
                {
                    // hb:config.c r1_style_valid
                    self.d.error(
                        line,
                        format!(
                            "autojoin {v}: conflicts with haresources resource management, as in \
                             heartbeat (autojoin is for Pacemaker clusters, which harust does not \
                             run); list every node with node lines and remove autojoin"
                        ),
                    );
                }
            }
            "witness" => {
                if args.is_empty() {
                    self.d.error(
                        line,
                        "witness: missing node name (witness NAME, a node line)",
                    );
                }
                for a in args {
                    let w = a.to_lowercase();
                    if !self.witnesses.iter().any(|(x, _)| *x == w) {
                        self.witnesses.push((w, line));
                    }
                }
            }
            "quorum" => {
                if let Some(on) = self.boolean(line, name, args) {
                    self.once(line, name);
                    self.quorum = Some((on, line));
                }
            }
            "crm" | "pacemaker" => {
                let Some(v) = self.one(line, name, args, "off") else {
                    return;
                };
                let lower = v.to_ascii_lowercase();
                let on = match lower.as_str() {
                    "respawn" | "minimal" | "manual" | "valgrind" | "ccm-only" => Some(true),
                    _ => parse_bool(&lower),
                };
                match on {
                    Some(false) => self.once(line, "crm"),
                    Some(true) => self.d.error(
                        line,
                        format!(
                            "{name} {v}: harust implements heartbeat's classic haresources mode only, \
                             not the Cluster Resource Manager; use Pacemaker for a CRM cluster, or \
                             remove this line (or write \"{name} off\") to use haresources"
                        ),
                    ),
                    None => self.d.error(
                        line,
                        format!("{name}: {} is not a valid value (harust accepts only off)", quote(v)),
                    ),
                }
            }
            "logfile" | "debugfile" => {
                if self.one(line, name, args, "a file name").is_some() {
                    let what = if name == "logfile" {
                        "harust logs to the systemd journal instead (journalctl -u harust)"
                    } else {
                        "harust logs debug messages to the systemd journal instead \
                         (journalctl -u harust -p debug)"
                    };
                    self.notice(line, name, args, what);
                }
            }
            "logfacility" => {
                if self.choice(line, name, args, FACILITIES).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust logs to the systemd journal instead; the syslog facility is not used",
                    );
                }
            }
            "use_logd" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust logs to the systemd journal; there is no logging daemon to use",
                    );
                }
            }
            "conn_logd_time" => {
                if self.time(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust logs to the systemd journal; ignored",
                    );
                }
            }
            "syslogmsgfmt" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust logs to the systemd journal; ignored",
                    );
                }
            }
            "debug" => {
                if self.int(line, name, args, 0, 255).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust always sends debug messages to the journal at debug priority; \
                         show them with journalctl -u harust -p debug",
                    );
                }
            }
            "log_badpack" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "ignored; harust decides how to log bad packets itself",
                    );
                }
            }
            "respawn" | "failfast" => {
                if args.len() < 2 {
                    self.d.error(
                        line,
                        format!(
                            "{name}: expected a user and a command ({name} USER /path/to/program)"
                        ),
                    );
                    return;
                }
                let restart = if name == "respawn" {
                    "Restart=on-failure"
                } else {
                    "Restart=on-failure and FailureAction=reboot"
                };
                self.notice(
                    line,
                    name,
                    args,
                    &format!(
                        "harust does not run child programs; run {} from its own systemd unit \
                         with User={} and {restart}",
                        args[1], args[0]
                    ),
                );
            }
            "watchdog" => {
                if self.one(line, name, args, "a device").is_some() {
                    self.once(line, name);
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not open the device; it uses systemd's watchdog instead \
                         (WatchdogSec= in harust.service)",
                    );
                }
            }
            "realtime" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not change its own scheduling; set CPUSchedulingPolicy= in a \
                         drop-in for harust.service if wanted",
                    );
                }
            }
            "rtprio" => {
                if self.int(line, name, args, 1, 99).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not change its own scheduling; set CPUSchedulingPriority= in a \
                         drop-in for harust.service if wanted",
                    );
                }
            }
            "coredumps" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "core dumps are handled by systemd-coredump (coredumpctl)",
                    );
                }
            }
            "coreroot" => {
                if self.one(line, name, args, "a directory").is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "core dumps are handled by systemd-coredump (coredumpctl)",
                    );
                }
            }
            "memreserve" => {
                if self.int(line, name, args, 1, u64::from(u32::MAX)).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not preallocate memory; ignored",
                    );
                }
            }
            "use_apphbd" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "apphbd is not used; systemd supervises harust with its watchdog",
                    );
                }
            }
            "env" => {
                if args.len() != 1 || !args[0].contains('=') || args[0].starts_with('=') {
                    self.d.error(line, "env: expected NAME=VALUE");
                    return;
                }
                self.notice(
                    line,
                    name,
                    args,
                    "only for respawn clients, which harust does not run; ignored",
                );
            }
            "hopfudge" => {
                if self.int(line, name, args, 0, 255).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "only matters for serial links, which harust does not support; ignored",
                    );
                }
            }
            "compression" => {
                if self.choice(line, name, args, &["zlib", "bz2"]).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not compress the messages it sends (classic-mode messages are \
                         small); ignored",
                    );
                }
            }
            "compression_threshold" => {
                if self.int(line, name, args, 1, u64::from(u32::MAX)).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not compress the messages it sends; ignored",
                    );
                }
            }
            "traditional_compression" => {
                if self.boolean(line, name, args).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "harust does not compress the messages it sends; ignored",
                    );
                }
            }
            "msgfmt" => {
                if let Some(v) = self.choice(line, name, args, &["classic", "netstring"])
                    && v == "netstring"
                {
                    self.notice(
                        line,
                        name,
                        args,
                        "ignored; harust sends messages as heartbeat does with the default, msgfmt classic",
                    );
                }
            }
            "uuidfrom" => {
                if let Some(v) = self.choice(line, name, args, &["file", "nodename"])
                    && v == "nodename"
                {
                    self.notice(line, name, args, "not supported by harust; ignored");
                }
            }
            "hbgenmethod" => {
                if let Some(v) = self.choice(line, name, args, &["file", "time"])
                    && v == "time"
                {
                    self.notice(line, name, args, "not supported by harust; ignored");
                }
            }
            "max_rexmit_delay" => {
                if self.int(line, name, args, 1, u64::from(u32::MAX)).is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "not configurable in harust; it uses heartbeat's default of 250 ms",
                    );
                }
            }
            "cluster" => {
                if self.one(line, name, args, "a cluster name").is_some() {
                    self.notice(line, name, args, "ignored");
                }
            }
            "quorum_server" => {
                if self.one(line, name, args, "a host").is_some() {
                    self.notice(
                        line,
                        name,
                        args,
                        "quorum servers are not supported by harust; ignored",
                    );
                }
            }
            "stonith" => {
                if args.is_empty() {
                    self.d.error(line, format!("{name}: missing arguments"));
                    return;
                }
                self.d.warning(
                    line,
                    "stonith: heartbeat's single-device form is not used by harust; \
                     this line is ignored (use stonith_host FROM TYPE, or fence NODE AGENT \
                     with its credentials in fence.d/NODE)",
                );
            }
            "stonith_host" => {
                let [from, kind, params @ ..] = args else {
                    self.d.error(
                        line,
                        "stonith_host: expected FROM TYPE PARAMS... (FROM is a node or *, TYPE a \
                         STONITH device type from `stonith -L`)",
                    );
                    return;
                };
                if params.is_empty() {
                    self.d.error(
                        line,
                        format!(
                            "stonith_host: no parameters for {kind}: heartbeat's form takes them \
                             on this line; to keep them out of ha.cf write `fence NODE stonith:{kind}` \
                             and put them in fence.d/NODE as name=value lines"
                        ),
                    );
                    return;
                }
                self.d.warning(
                    line,
                    format!(
                        "stonith_host: the parameters of {kind} are in ha.cf, which every user \
                         may read; move them to fence.d/NODE (mode 0600) with \
                         `fence NODE stonith:{kind}`"
                    ),
                );
                self.fences.push(Fence {
                    target: None,
                    from: (*from != "*").then(|| from.to_ascii_lowercase()),
                    agent: FenceAgent::Stonith {
                        kind: kind.to_string(),
                        inline: Some(params.join(" ")),
                    },
                    line,
                });
            }
            "fence" => {
                let [node, agent] = args else {
                    self.d.error(
                        line,
                        "fence: expected NODE AGENT (AGENT: a fence-agents command such as \
                         fence_ipmilan, or stonith:TYPE for a cluster-glue STONITH plugin)",
                    );
                    return;
                };
                let agent = if let Some(kind) = agent.strip_prefix("stonith:") {
                    if kind.is_empty() {
                        self.d.error(
                            line,
                            "fence: stonith: needs a device type (stonith:external/ipmi)",
                        );
                        return;
                    }
                    FenceAgent::Stonith {
                        kind: kind.to_string(),
                        inline: None,
                    }
                } else if agent.starts_with("fence_") || agent.starts_with('/') {
                    FenceAgent::Agent(agent.to_string())
                } else {
                    self.d.error(
                        line,
                        format!(
                            "fence: unknown agent {}: name a fence-agents command (fence_ipmilan, \
                             fence_virsh, …, or an absolute path) or stonith:TYPE",
                            quote(agent)
                        ),
                    );
                    return;
                };
                self.fences.push(Fence {
                    target: Some(node.to_ascii_lowercase()),
                    from: None,
                    agent,
                    line,
                });
            }
            "apiauth" => {
                if args.len() < 2 {
                    self.d
                        .error(line, "apiauth: expected a client name and uid=… or gid=…");
                    return;
                }
                self.notice(
                    line,
                    name,
                    args,
                    "harust's API is D-Bus; who may call it is set by harust's D-Bus policy; ignored",
                );
            }
            "crm_daemon_dir"
            | "crmd_spawns_pengine"
            | "record_config_changes"
            | "record_pengine_inputs"
            | "enable_config_writes" => {
                if args.is_empty() {
                    self.d.error(line, format!("{name}: missing value"));
                    return;
                }
                self.notice(
                    line,
                    name,
                    args,
                    "only used by Pacemaker, which harust does not run; ignored",
                );
            }
            _ => self.d.error(
                line,
                format!(
                    "unknown directive {}{}",
                    quote(name),
                    did_you_mean(name, DIRECTIVES.iter().copied())
                ),
            ),
        }
    }

    fn ucast(&mut self, line: usize, name: &str, args: &[&str]) {
        let [iface, peer] = args else {
            self.d.error(
                line,
                format!(
                    "{name}: expected an interface and the peer's address ({name} eth0 198.18.0.2)"
                ),
            );
            return;
        };
        let iface = self.iface(line, name, iface);
        let peer = if name == "ucast" {
            match peer.parse::<Ipv4Addr>() {
                Ok(a) => Some(IpAddr::V4(a)),
                Err(_) if peer.parse::<Ipv6Addr>().is_ok() => {
                    self.d.error(
                        line,
                        format!("ucast: {} is an IPv6 address; use ucast6", quote(peer)),
                    );
                    None
                }
                Err(_) => self.ip(line, name, peer),
            }
        } else {
            // "For link-local addresses, you may explicitly specify the
            // scope-id ... it has to match the device" (ha.cf(5)).
            let (addr, scope) = match peer.split_once('%') {
                Some((a, s)) => (a, Some(s)),
                None => (*peer, None),
            };
            match addr.parse::<Ipv6Addr>() {
                Ok(a) => {
                    if let (Some(s), Some(i)) = (scope, iface.as_deref())
                        && s != i
                    {
                        self.d.error(
                            line,
                            format!("ucast6: scope %{s} does not match the interface {i}"),
                        );
                        return;
                    }
                    Some(IpAddr::V6(a))
                }
                Err(_) if addr.parse::<Ipv4Addr>().is_ok() => {
                    self.d.error(
                        line,
                        format!("ucast6: {} is an IPv4 address; use ucast", quote(addr)),
                    );
                    None
                }
                Err(_) if scope.is_none() => self.ip_of(line, name, addr, true),
                Err(_) => {
                    self.d.error(
                        line,
                        format!("ucast6: {} is not an IPv6 address", quote(peer)),
                    );
                    None
                }
            }
        };
        if let (Some(iface), Some(peer)) = (iface, peer) {
            if peer.is_unspecified() || peer.is_multicast() {
                self.d
                    .error(line, format!("{name}: {peer} is not a unicast address"));
                return;
            }
            let port = self.medium_port(if name == "ucast" { "ucast" } else { "ucast6" }, line);
            self.add_medium(line, Medium::Ucast { iface, peer, port });
        }
    }

    fn mcast(&mut self, line: usize, name: &str, args: &[&str]) {
        let [iface, group, port, ttl, lp] = args else {
            self.d.error(
                line,
                format!(
                    "{name}: expected 5 values: interface, group, port, {} and loop ({})",
                    if name == "mcast" { "ttl" } else { "hops" },
                    if name == "mcast" {
                        "mcast eth0 239.192.0.42 694 1 0"
                    } else {
                        "mcast6 eth0 ff12::1:2:3:4 694 1 0"
                    }
                ),
            );
            return;
        };
        let iface = self.iface(line, name, iface);
        let group_addr = if name == "mcast" {
            match group.parse::<Ipv4Addr>() {
                Ok(a) if a.is_multicast() => Some(IpAddr::V4(a)),
                _ => {
                    self.d.error(
                        line,
                        format!("mcast: {} is not an IPv4 multicast group (224.0.0.0/4; use 239.192.0.0/14)", quote(group)),
                    );
                    None
                }
            }
        } else {
            match group.parse::<Ipv6Addr>() {
                Ok(a) if a.is_multicast() => Some(IpAddr::V6(a)),
                _ => {
                    self.d.error(
                        line,
                        format!("mcast6: {} is not an IPv6 multicast group (ff00::/8; e.g. ff12::1:2:3:4)", quote(group)),
                    );
                    None
                }
            }
        };
        let port = self.port(line, name, port);
        let ttl_name = if name == "mcast" { "ttl" } else { "hops" };
        let ttl = match ttl.parse::<u8>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.d.error(
                    line,
                    format!(
                        "{name}: {ttl_name} {} is not a number from 0 to 255",
                        quote(ttl)
                    ),
                );
                None
            }
        };
        let loopback = match *lp {
            "0" => Some(false),
            "1" => Some(true),
            _ => {
                self.d
                    .error(line, format!("{name}: loop {} must be 0 or 1", quote(lp)));
                None
            }
        };
        if let (Some(iface), Some(group), Some(port), Some(ttl), Some(loopback)) =
            (iface, group_addr, port, ttl, loopback)
        {
            self.add_medium(
                line,
                Medium::Mcast {
                    iface,
                    group,
                    port,
                    ttl,
                    loopback,
                },
            );
        }
    }

    fn finish(mut self) -> Parsed {
        let first_node_line = self.nodes.first().map(|(_, l)| *l);
        let nodes: Vec<String> = self.nodes.iter().map(|(n, _)| n.clone()).collect();

        if self.media.is_empty() {
            self.d.error_at(
                None,
                "no heartbeat medium: add a bcast, mcast, mcast6, ucast or ucast6 line",
            );
        }
        if nodes.is_empty() {
            self.d.error_at(
                None,
                "no node lines: list every cluster node by its uname -n (node NAME)",
            );
        }
        if self.auto_failback.is_none() {
            self.d.notice_at(
                None,
                "auto_failback is not set; using heartbeat's default, legacy (set it to on or off)",
            );
        }
        let quorum = self.check_quorum(&nodes);
        self.check_fences(&nodes);
        let timings = self.timings();
        let ha = match timings {
            Some(timings) if !self.d.has_errors() => Some(HaCf {
                timings,
                udpport: self.udpport.map_or(DEFAULT_UDPPORT, |(p, _)| p),
                media: self.media.iter().map(|(m, _)| m.clone()).collect(),
                nodes: nodes.clone(),
                auto_failback: self.auto_failback.unwrap_or(AutoFailback::Legacy),
                ping_nodes: self.ping_nodes.clone(),
                ping_groups: self.ping_groups.clone(),
                deadping: self.deadping.map(|(d, _)| d),
                autojoin: false,
                witnesses: self.witnesses.iter().map(|(w, _)| w.clone()).collect(),
                quorum,
                fences: self.fences.clone(),
            }),
            _ => None,
        };
        Parsed {
            ha,
            nodes,
            first_node_line,
            diagnostics: self.d.list,
        }
    }

    /// `witness` and `quorum` against the node list (docs/SAFETY.md). The
    /// default is quorum on exactly when a witness is configured.
    fn check_quorum(&mut self, nodes: &[String]) -> bool {
        for (w, line) in &self.witnesses {
            if !nodes.contains(w) {
                self.d.error(
                    *line,
                    format!(
                        "witness {}: not a node; a witness votes, so list it in a node line too \
                         (node {w}){}",
                        quote(w),
                        did_you_mean(w, nodes.iter().map(String::as_str)),
                    ),
                );
            }
        }
        if !nodes.is_empty()
            && nodes
                .iter()
                .all(|n| self.witnesses.iter().any(|(w, _)| w == n))
        {
            let line = self.witnesses.last().map(|(_, l)| *l);
            self.d.error_at(
                line,
                "every node is a witness, so no node may hold a group; \
                 a witness is a node that only votes",
            );
        }
        let (quorum, line) = match self.quorum {
            Some((q, l)) => (q, Some(l)),
            None => (!self.witnesses.is_empty(), None),
        };
        if quorum && nodes.len() == 1 {
            self.d.error_at(
                line.or(self.witnesses.first().map(|(_, l)| *l)),
                "quorum on with one voter: a single node is always its own majority; \
                 add a node or a witness, or set quorum off",
            );
        }
        quorum
    }

    /// The nodes named by `fence` and `stonith_host` lines must exist.
    fn check_fences(&mut self, nodes: &[String]) {
        for f in &self.fences {
            let (what, n) = match (&f.target, &f.from) {
                (Some(t), _) => ("fence", t),
                (None, Some(from)) => ("stonith_host", from),
                (None, None) => continue,
            };
            if !nodes.contains(n) {
                self.d.error(
                    f.line,
                    format!(
                        "{what}: {} is not a node{}",
                        quote(n),
                        did_you_mean(n, nodes.iter().map(String::as_str)),
                    ),
                );
            }
        }
    }

    /// Defaults and cross-checks from `hb:config.c init_config`.
    fn timings(&mut self) -> Option<Timings> {
        let (keepalive, ka_line) = match self.keepalive {
            Some((k, l)) => (k, Some(l)),
            None => (DEFAULT_KEEPALIVE, None),
        };
        let (deadtime, dt_line) = match self.deadtime {
            Some((d, l)) => (d, Some(l)),
            None => (DEFAULT_DEADTIME, None),
        };
        let fmt = time::format;
        let mut ok = true;
        if keepalive.is_zero() {
            self.d.error_at(ka_line, "keepalive: must be more than 0");
            ok = false;
        }
        if deadtime <= 2 * keepalive {
            self.d.error_at(
                dt_line.or(ka_line),
                format!(
                    "deadtime {} must be more than twice keepalive {} (heartbeat's rule); \
                     raise deadtime or lower keepalive",
                    fmt(deadtime),
                    fmt(keepalive)
                ),
            );
            ok = false;
        }
        let warntime = match self.warntime {
            Some((w, l)) => {
                if w.is_zero() {
                    self.d.error(l, "warntime: must be more than 0");
                    ok = false;
                } else if w >= deadtime {
                    // heartbeat only requires warntime > 0 (hb:config.c
                    // init_config); a node is then declared dead before any
                    // late-heartbeat warning.
                    self.d.warning(
                        l,
                        format!(
                            "warntime {} is not less than deadtime {}: a peer is declared dead \
                             before any late heartbeat is reported (heartbeat accepts this too); \
                             set warntime below deadtime",
                            fmt(w),
                            fmt(deadtime)
                        ),
                    );
                } else if w <= keepalive {
                    self.d.warning(
                        l,
                        format!(
                            "warntime {} is not more than keepalive {}: every heartbeat will be \
                             reported late",
                            fmt(w),
                            fmt(keepalive)
                        ),
                    );
                }
                w
            }
            None => deadtime / 2,
        };
        let initdead = match self.initdead {
            Some((i, l)) => {
                if i < deadtime {
                    self.d.error(
                        l,
                        format!(
                            "initdead {} must be at least deadtime {}",
                            fmt(i),
                            fmt(deadtime)
                        ),
                    );
                    ok = false;
                } else if i < 2 * deadtime {
                    self.d.warning(
                        l,
                        format!(
                            "initdead {} is less than twice deadtime ({}); a node starting while \
                             its network is still coming up may wrongly declare its peer dead",
                            fmt(i),
                            fmt(2 * deadtime)
                        ),
                    );
                }
                i
            }
            None => {
                let i = if deadtime > Duration::from_secs(10) {
                    deadtime
                } else if deadtime < Duration::from_secs(6) {
                    Duration::from_secs(12)
                } else {
                    2 * deadtime
                };
                if i < 2 * deadtime {
                    self.d.warning_at(
                        dt_line,
                        format!(
                            "initdead is not set and defaults to {} (heartbeat's rule); at least \
                             twice deadtime ({}) is advised to allow for slow network start-up",
                            fmt(i),
                            fmt(2 * deadtime)
                        ),
                    );
                }
                i
            }
        };
        if let Some((dp, l)) = self.deadping
            && dp <= 2 * keepalive
        {
            self.d.error(
                l,
                format!(
                    "deadping {} must be more than twice keepalive {}",
                    fmt(dp),
                    fmt(keepalive)
                ),
            );
            ok = false;
        }
        ok.then_some(Timings {
            keepalive,
            deadtime,
            warntime,
            initdead,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> HaCf {
        match parse("ha.cf", text) {
            Ok((h, _)) => h,
            Err(e) => panic!("unexpected errors:\n{e}"),
        }
    }

    const BASE: &str = "bcast eth0\nnode a\nnode b\nauto_failback on\n";

    #[test]
    fn defaults_are_heartbeats() {
        let h = ok(BASE);
        assert_eq!(h.timings.keepalive, Duration::from_secs(1));
        assert_eq!(h.timings.deadtime, Duration::from_secs(30));
        assert_eq!(h.timings.warntime, Duration::from_secs(15));
        assert_eq!(h.timings.initdead, Duration::from_secs(30));
        assert_eq!(h.udpport, 694);
        assert_eq!(h.auto_failback, AutoFailback::On);
    }

    #[test]
    fn initdead_default_rules() {
        let id = |dt: &str| ok(&format!("{BASE}deadtime {dt}\n")).timings.initdead;
        assert_eq!(id("20"), Duration::from_secs(20));
        assert_eq!(id("8"), Duration::from_secs(16));
        assert_eq!(id("10"), Duration::from_secs(20));
        assert_eq!(id("5"), Duration::from_secs(12));
        assert_eq!(id("6"), Duration::from_secs(12));
    }

    #[test]
    fn commas_separate_list_values() {
        let h = ok("bcast eth0,eth1\nnode A,b\n");
        assert_eq!(h.nodes, vec!["a", "b"]);
        assert_eq!(h.media.len(), 2);
    }
}
