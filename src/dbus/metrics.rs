//! `harust metrics [--http]`: the daemon's state in the OpenMetrics text
//! format, read over D-Bus (one `GetAll`), so the daemon itself opens no
//! port. `--http` answers one HTTP request on stdin/stdout, for a
//! socket-activated `Accept=yes` unit (units/harust-metrics.socket).
//!
//! The rendering is a plain function of the properties, unit-tested here;
//! tests/dbus_api.rs parses real output with a real OpenMetrics parser.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::INTERFACE;
use super::client::{self, ClientError};

/// What `harust metrics` reads: the properties of `org.harust.Harust1`, as
/// `GetAll` returns them. Every field is optional, so an older daemon
/// without one still yields the rest.
#[derive(Debug, Default, zbus::DeserializeDict, zbus::Type)]
#[zbus(signature = "a{sv}")]
pub struct Props {
    #[zbus(rename = "Node")]
    pub node: Option<String>,
    #[zbus(rename = "State")]
    pub state: Option<String>,
    #[zbus(rename = "Nodes")]
    pub nodes: Option<Vec<(String, String)>>,
    #[zbus(rename = "Links")]
    pub links: Option<Vec<(String, String, bool)>>,
    #[zbus(rename = "Groups")]
    pub groups: Option<Vec<(String, String, String, String)>>,
    #[zbus(rename = "Counters")]
    pub counters: Option<BTreeMap<String, u64>>,
    #[zbus(rename = "LastHeard")]
    pub last_heard: Option<BTreeMap<String, u64>>,
    #[zbus(rename = "ConfigMismatch")]
    pub config_mismatch: Option<BTreeMap<String, Vec<String>>>,
    #[zbus(rename = "Maintenance")]
    pub maintenance: Option<bool>,
}

/// The MIME type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The counters, in the `Counters` property's keys, with their help.
const COUNTERS: &[(&str, &str)] = &[
    ("beats_received", "Heartbeats received from peers."),
    ("beats_sent", "Heartbeats sent."),
    (
        "late_beats",
        "Heartbeats that arrived after warntime (heartbeat's late heartbeat).",
    ),
    (
        "bad_packets",
        "Packets dropped because they failed to decode or authenticate.",
    ),
    (
        "replays",
        "Packets dropped as replays (old sequence or generation).",
    ),
    ("failovers", "Groups this node took over from a dead peer."),
    (
        "split_brains",
        "Split brains resolved (two holders of one group).",
    ),
    ("retransmits_requested", "Retransmissions asked of peers."),
    (
        "retransmits_sent",
        "Retransmissions sent at a peer's request.",
    ),
];
const NODE_STATES: &[&str] = &["starting", "active", "standby", "leaving", "stopped"];
const PEER_STATES: &[&str] = &["unknown", "up", "active", "dead", "fencing"];
const GROUP_STATES: &[&str] = &[
    "idle",
    "acquiring",
    "held",
    "handing-off",
    "releasing",
    "failed",
];

/// Reads the properties over D-Bus (the system bus, or `bus`).
pub async fn fetch(bus: &Option<String>) -> Result<Props, ClientError> {
    client::call(
        bus,
        Duration::from_secs(10),
        "org.freedesktop.DBus.Properties",
        "GetAll",
        &(INTERFACE,),
    )
    .await
}

/// `harust metrics`: the text, ending in `# EOF`.
pub async fn metrics(bus: Option<String>, now_ms: u64) -> Result<String, ClientError> {
    let props = fetch(&bus).await?;
    Ok(render(&props, now_ms).trim_end().to_string())
}

/// A label value with OpenMetrics escaping: `\`, `"` and line feeds.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
        let _ = writeln!(self.0, "# HELP {name} {help}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// A stateset: one sample per state, 1 for the current one. A state
    /// outside `states` (a newer daemon) gets its own sample too.
    fn stateset(&mut self, name: &str, labels: &[(&str, &str)], states: &[&str], current: &str) {
        let extra = (!states.contains(&current)).then_some(current);
        for s in states.iter().copied().chain(extra) {
            let mut l = labels.to_vec();
            l.push((name, s));
            self.sample(name, &l, u8::from(s == current));
        }
    }
}

/// The OpenMetrics exposition of `p`, with ages counted to `now_ms`.
pub fn render(p: &Props, now_ms: u64) -> String {
    let mut o = Out(String::new());
    let me = p.node.as_deref().unwrap_or("");
    let empty = Vec::new();
    let nodes = p.nodes.as_ref().unwrap_or(&empty);

    o.family(
        "harust_build",
        "info",
        "This node's name and harust's version.",
    );
    o.sample(
        "harust_build_info",
        &[("node", me), ("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    if let Some(state) = &p.state {
        o.family(
            "harust_node_state",
            "stateset",
            "This node's state: starting (before initdead), active (holds a group), standby, leaving, stopped.",
        );
        o.stateset("harust_node_state", &[], NODE_STATES, state);
    }

    if let Some(c) = &p.counters {
        for (key, help) in COUNTERS {
            let name = format!("harust_{key}");
            o.family(&name, "counter", help);
            o.sample(
                &format!("{name}_total"),
                &[],
                c.get(*key).copied().unwrap_or(0),
            );
        }
    }

    let peers: Vec<&(String, String)> = nodes.iter().filter(|(n, _)| n != me).collect();
    if !peers.is_empty() {
        o.family(
            "harust_peer_state",
            "stateset",
            "Each peer's state as this node sees it: unknown (never heard), up (heard), active (heard and in the cluster), dead, fencing (dead and not fenced yet: nothing of its is taken over).",
        );
        for (peer, status) in &peers {
            o.stateset("harust_peer_state", &[("peer", peer)], PEER_STATES, status);
        }
        if let Some(heard) = &p.last_heard {
            o.family(
                "harust_peer_last_heard_age_seconds",
                "gauge",
                "Seconds since the last packet from each peer heard so far.",
            );
            let _ = writeln!(o.0, "# UNIT harust_peer_last_heard_age_seconds seconds");
            for (peer, _) in &peers {
                if let Some(at) = heard.get(peer.as_str()) {
                    let age = now_ms.saturating_sub(*at) as f64 / 1000.0;
                    o.sample("harust_peer_last_heard_age_seconds", &[("peer", peer)], age);
                }
            }
        }
    }

    if let Some(mismatch) = &p.config_mismatch {
        o.family(
            "harust_config_mismatch",
            "gauge",
            "1 if the peer's configuration differs from this node's in that part (HARUST_EVENT=config-mismatch).",
        );
        for (peer, _) in &peers {
            let differing = mismatch.get(peer.as_str());
            for part in crate::config::digest::PARTS {
                let differs = differing.is_some_and(|d| d.iter().any(|x| x == part));
                o.sample(
                    "harust_config_mismatch",
                    &[("peer", peer), ("part", part)],
                    u8::from(differs),
                );
            }
        }
    }

    if let Some(links) = &p.links {
        o.family(
            "harust_link_up",
            "gauge",
            "1 if heartbeats from the peer arrive on the link (medium), 0 if it is down.",
        );
        for (peer, link, up) in links {
            o.sample(
                "harust_link_up",
                &[("peer", peer), ("link", link)],
                u8::from(*up),
            );
        }
    }

    if let Some(groups) = &p.groups {
        o.family(
            "harust_group_held_here",
            "gauge",
            "1 if this node holds the resource group.",
        );
        for (g, _, _, state) in groups {
            o.sample(
                "harust_group_held_here",
                &[("group", g)],
                u8::from(state == "held"),
            );
        }
        o.family(
            "harust_group_holder",
            "gauge",
            "1 on the node that holds the group as this node sees it, 0 on the others.",
        );
        for (g, holder, _, _) in groups {
            for (n, _) in nodes {
                o.sample(
                    "harust_group_holder",
                    &[("group", g), ("node", n)],
                    u8::from(holder == n),
                );
            }
        }
        o.family(
            "harust_group_state",
            "stateset",
            "This node's state for the group: idle, acquiring, held, handing-off, releasing, failed.",
        );
        for (g, _, _, state) in groups {
            o.stateset("harust_group_state", &[("group", g)], GROUP_STATES, state);
        }
    }
    if let Some(m) = p.maintenance {
        o.family(
            "harust_maintenance",
            "gauge",
            "1 while cluster-wide maintenance mode is on (nothing is acquired, released or failed over).",
        );
        o.sample("harust_maintenance", &[], u8::from(m));
    }
    o.0.push_str("# EOF\n");
    o.0
}

/// The most of a request that is read: a scrape is one short GET.
const MAX_REQUEST: usize = 8192;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What to answer a request line with: (status, reason) or `None` to serve
/// the metrics (`head` leaves the body out).
fn route(request_line: &str) -> Result<bool, (u16, &'static str)> {
    let mut parts = request_line.split_ascii_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        "" => return Err((400, "Bad Request")),
        _ => return Err((405, "Method Not Allowed")),
    };
    match path {
        "/" | "/metrics" => Ok(head),
        _ => Err((404, "Not Found")),
    }
}

fn response(status: u16, reason: &str, content_type: &str, body: &str, head: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        r.extend_from_slice(body.as_bytes());
    }
    r
}

/// Reads the request head (up to the blank line) from `input`.
async fn read_head(input: &mut (impl AsyncReadExt + Unpin)) -> Option<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() >= MAX_REQUEST {
            break;
        }
        let n = input.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// `harust metrics --http`: one request on stdin, its answer on stdout.
/// A daemon that cannot be read is a 503, which Prometheus records as a
/// failed scrape (`up` 0).
pub async fn http(bus: Option<String>, now_ms: impl Fn() -> u64) -> Result<(), std::io::Error> {
    let mut stdin = tokio::io::stdin();
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stdin))
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let first = head.lines().next().unwrap_or("");
    let reply = match route(first) {
        Err((status, reason)) => response(
            status,
            reason,
            "text/plain; charset=utf-8",
            &format!("{reason}: GET /metrics\n"),
            false,
        ),
        Ok(head_only) => match fetch(&bus).await {
            Ok(p) => response(200, "OK", CONTENT_TYPE, &render(&p, now_ms()), head_only),
            Err(e) => {
                // Prometheus only sees a failed scrape: say why in the log.
                eprintln!("harust metrics: cannot read the daemon: {e}");
                response(
                    503,
                    "Service Unavailable",
                    "text/plain; charset=utf-8",
                    &format!("harust: {e}\n"),
                    head_only,
                )
            }
        },
    };
    let mut stdout = tokio::io::stdout();
    stdout.write_all(&reply).await?;
    stdout.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> Props {
        Props {
            node: Some("node-a".into()),
            state: Some("active".into()),
            nodes: Some(vec![
                ("node-a".into(), "local".into()),
                ("node-b".into(), "up".into()),
                ("node-c".into(), "unknown".into()),
            ]),
            links: Some(vec![(
                "node-b".into(),
                "ucast eth0 198.18.1.2".into(),
                true,
            )]),
            groups: Some(vec![(
                "IPaddr2::198.18.1.100/24/eth0".into(),
                "node-a".into(),
                "node-a".into(),
                "held".into(),
            )]),
            counters: Some(BTreeMap::from([
                ("beats_received".to_string(), 7),
                ("failovers".to_string(), 1),
            ])),
            last_heard: Some(BTreeMap::from([("node-b".to_string(), 9_750)])),
            config_mismatch: Some(BTreeMap::from([(
                "node-b".to_string(),
                vec!["timings".to_string()],
            )])),
            maintenance: Some(true),
        }
    }

    #[test]
    fn counters_peers_links_and_groups_are_exposed() {
        let text = render(&props(), 10_000);
        for line in [
            "# TYPE harust_beats_received counter",
            "harust_beats_received_total 7",
            "harust_failovers_total 1",
            "harust_split_brains_total 0",
            "harust_retransmits_sent_total 0",
            "harust_node_state{harust_node_state=\"active\"} 1",
            "harust_peer_state{peer=\"node-b\",harust_peer_state=\"up\"} 1",
            "harust_peer_state{peer=\"node-b\",harust_peer_state=\"dead\"} 0",
            "harust_peer_state{peer=\"node-c\",harust_peer_state=\"unknown\"} 1",
            "harust_peer_last_heard_age_seconds{peer=\"node-b\"} 0.25",
            "harust_link_up{peer=\"node-b\",link=\"ucast eth0 198.18.1.2\"} 1",
            "harust_config_mismatch{peer=\"node-b\",part=\"timings\"} 1",
            "harust_config_mismatch{peer=\"node-b\",part=\"haresources\"} 0",
            "harust_config_mismatch{peer=\"node-c\",part=\"timings\"} 0",
            "harust_group_held_here{group=\"IPaddr2::198.18.1.100/24/eth0\"} 1",
            "harust_group_holder{group=\"IPaddr2::198.18.1.100/24/eth0\",node=\"node-a\"} 1",
            "harust_group_holder{group=\"IPaddr2::198.18.1.100/24/eth0\",node=\"node-b\"} 0",
            "# TYPE harust_maintenance gauge",
            "harust_maintenance 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("peer=\"node-a\""), "this node is no peer");
        // A never-heard peer has no age.
        assert!(!text.contains("last_heard_age_seconds{peer=\"node-c\"}"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn an_unknown_state_still_gets_a_sample() {
        let mut p = props();
        p.state = Some("fencing".into());
        let text = render(&p, 0);
        assert!(text.contains("harust_node_state{harust_node_state=\"fencing\"} 1"));
        assert!(text.contains("harust_node_state{harust_node_state=\"active\"} 0"));
    }

    #[test]
    fn only_get_and_head_of_the_metrics_path_are_served() {
        assert_eq!(route("GET /metrics HTTP/1.1"), Ok(false));
        assert_eq!(route("GET / HTTP/1.0"), Ok(false));
        assert_eq!(route("HEAD /metrics?x=1 HTTP/1.1"), Ok(true));
        assert_eq!(
            route("POST /metrics HTTP/1.1"),
            Err((405, "Method Not Allowed"))
        );
        assert_eq!(route("GET /other HTTP/1.1"), Err((404, "Not Found")));
        assert_eq!(route(""), Err((400, "Bad Request")));
    }
}
