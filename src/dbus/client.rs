//! The CLI side of the D-Bus API: `harust status|standby|takeover|reload`.
//! Each talks to the daemon over D-Bus only.
//!
//! Exit codes (documented in docs/DBUS.md): 1 any other failure,
//! 3 the daemon is not running, 4 access denied by the bus policy, 5 the
//! daemon refused the request, 6 accepted but not settled in time.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{INTERFACE, NAME, PATH, bus_label};
use crate::engine::Scope;

/// Where the policy file lands (packaging).
const POLICY: &str = "/usr/share/dbus-1/system.d/org.harust.Harust1.conf";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {bus}: {source}")]
    Connect {
        bus: String,
        #[source]
        source: zbus::Error,
    },
    #[error("harust is not running ({NAME} has no owner on {bus})")]
    NotRunning { bus: String },
    #[error("access denied: {method} needs root (see {POLICY})")]
    AccessDenied { method: String },
    #[error("the daemon refused: {message} [{name}]")]
    Refused { name: String, message: String },
    #[error("{message}")]
    Timeout { message: String },
    #[error("{method} on {bus} failed: {source}")]
    Call {
        method: String,
        bus: String,
        #[source]
        source: zbus::Error,
    },
    #[error("the daemon sent an unreadable reply to {method}: {detail}")]
    BadReply { method: String, detail: String },
}

impl ClientError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotRunning { .. } => 3,
            ClientError::AccessDenied { .. } => 4,
            ClientError::Refused { .. } => 5,
            ClientError::Timeout { .. } => 6,
            ClientError::Connect { .. }
            | ClientError::Call { .. }
            | ClientError::BadReply { .. } => 1,
        }
    }
}

/// One method call on the daemon, with errors made readable.
async fn call_api<B, R>(
    bus: &Option<String>,
    timeout: Duration,
    method: &str,
    body: &B,
) -> Result<R, ClientError>
where
    B: serde::Serialize + zbus::wire::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::wire::Type,
{
    call(bus, timeout, INTERFACE, method, body).await
}

/// One call of `interface.method` on the daemon's object (ours, or e.g.
/// `org.freedesktop.DBus.Properties`), with errors made readable.
pub(super) async fn call<B, R>(
    bus: &Option<String>,
    timeout: Duration,
    interface: &str,
    method: &str,
    body: &B,
) -> Result<R, ClientError>
where
    B: serde::Serialize + zbus::wire::DynamicType,
    R: for<'d> serde::Deserialize<'d> + zbus::wire::Type,
{
    let label = bus_label(bus.as_deref());
    let builder = match bus {
        None => zbus::connection::Builder::system(),
        Some(a) => zbus::connection::Builder::address(a.as_str()),
    };
    let conn = builder
        .method_timeout(timeout)
        .build()
        .await
        .map_err(|source| ClientError::Connect {
            bus: label.clone(),
            source,
        })?;
    let reply = conn
        .call_method(Some(NAME), PATH, Some(interface), method, body)
        .await
        .map_err(|e| classify(e, method, &label))?;
    reply
        .body()
        .deserialize::<R>()
        .map_err(|e| ClientError::BadReply {
            method: method.to_string(),
            detail: e.to_string(),
        })
}

/// The D-Bus error name and message of a failed call, if it was an error
/// reply (zbus turns the freedesktop ones into `Error::FDO`).
fn error_reply(e: &zbus::Error) -> Option<(String, String)> {
    use zbus::DBusError;
    match e {
        zbus::Error::MethodError(name, detail, _) => {
            Some((name.to_string(), detail.clone().unwrap_or_default()))
        }
        zbus::Error::FDO(f) => Some((
            f.name().to_string(),
            f.description().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

fn classify(e: zbus::Error, method: &str, bus: &str) -> ClientError {
    if let Some((name, message)) = error_reply(&e) {
        match name.as_str() {
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
                return ClientError::NotRunning {
                    bus: bus.to_string(),
                };
            }
            "org.freedesktop.DBus.Error.AccessDenied" => {
                return ClientError::AccessDenied {
                    method: method.to_string(),
                };
            }
            "org.harust.Harust1.Error.Timeout" => return ClientError::Timeout { message },
            n if n.starts_with("org.harust.Harust1.Error.") => {
                return ClientError::Refused {
                    name: n.to_string(),
                    message,
                };
            }
            _ => {}
        }
    }
    ClientError::Call {
        method: method.to_string(),
        bus: bus.to_string(),
        source: e,
    }
}

const QUICK: Duration = Duration::from_secs(30);
/// Standby/Takeover wait for the cluster to settle (the daemon bounds that
/// wait by two deadtimes plus slack).
const SETTLE: Duration = Duration::from_secs(600);

pub async fn status(bus: Option<String>, json: bool) -> Result<String, ClientError> {
    let doc: String = call_api(&bus, QUICK, "Status", &()).await?;
    let v: Value = serde_json::from_str(&doc).map_err(|e| ClientError::BadReply {
        method: "Status".into(),
        detail: e.to_string(),
    })?;
    if json {
        Ok(serde_json::to_string_pretty(&v).unwrap_or(doc))
    } else {
        Ok(render_status(&v, unix_ms()))
    }
}

pub async fn standby(bus: Option<String>, scope: Scope) -> Result<String, ClientError> {
    let groups: Vec<(String, String, String, String)> =
        call_api(&bus, SETTLE, "Standby", &(scope.as_str(),)).await?;
    Ok(render_groups(&format!("standby [{scope}] done"), &groups))
}

pub async fn takeover(bus: Option<String>, scope: Scope) -> Result<String, ClientError> {
    let groups: Vec<(String, String, String, String)> =
        call_api(&bus, SETTLE, "Takeover", &(scope.as_str(),)).await?;
    Ok(render_groups(&format!("takeover [{scope}] done"), &groups))
}

pub async fn maintenance(bus: Option<String>, on: bool) -> Result<String, ClientError> {
    let () = call_api(&bus, QUICK, "SetMaintenance", &(on,)).await?;
    Ok(if on {
        "maintenance mode on: no group moves anywhere in the cluster until `harust maintenance off`"
    } else {
        "maintenance mode off: normal rules apply"
    }
    .to_string())
}

pub async fn fence_confirm(bus: Option<String>, node: String) -> Result<String, ClientError> {
    let () = call_api(&bus, QUICK, "FenceConfirm", &(node.as_str(),)).await?;
    Ok(format!(
        "{node} confirmed off: its groups may be taken over"
    ))
}

pub async fn reload(bus: Option<String>) -> Result<String, ClientError> {
    let () = call_api(&bus, QUICK, "Reload", &()).await?;
    Ok("configuration reloaded".to_string())
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn render_groups(title: &str, groups: &[(String, String, String, String)]) -> String {
    let mut out = format!("{title}\n");
    let rows: Vec<[String; 4]> = groups
        .iter()
        .map(|(g, h, p, s)| [g.clone(), or_dash(h), p.clone(), s.clone()])
        .collect();
    out.push_str(&table(["GROUP", "HOLDER", "PREFERRED", "HERE"], &rows));
    out.trim_end().to_string()
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}

/// Columns padded to their widest cell.
fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::from("  ");
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = width[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or("")
}

fn age(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms} ms ago")
    } else if ms < 600_000 {
        format!("{} s ago", ms / 1000)
    } else if ms < 172_800_000 {
        format!("{} min ago", ms / 60_000)
    } else {
        format!("{} days ago", ms / 86_400_000)
    }
}

/// The text `harust status` prints from the `Status()` document.
pub fn render_status(v: &Value, now_ms: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", s(v, "node"), s(v, "summary"));
    let t = &v["timings_ms"];
    let _ = writeln!(
        out,
        "timings: keepalive {} ms, warntime {} ms, deadtime {} ms, initdead {} ms",
        t["keepalive"], t["warntime"], t["deadtime"], t["initdead"]
    );
    let role = if v["witness"].as_bool() == Some(true) {
        " (this node is a witness: it votes and holds nothing)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "safety: quorum {}, release bound {} ms{role}",
        v["quorum"].as_str().unwrap_or("off"),
        t["release_bound"]
    );
    if v["maintenance"].as_bool() == Some(true) {
        let _ = writeln!(
            out,
            "maintenance: ON (cluster-wide: nothing is acquired, released or failed over; \
             `harust maintenance off` resumes)"
        );
    }
    let pending: Vec<&str> = v["maintenance_pending"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    if !pending.is_empty() {
        let _ = writeln!(
            out,
            "maintenance: not (yet) in force on {} (heartbeat, an older harust, or not heard yet)",
            pending.join(", ")
        );
    }

    let empty = Vec::new();
    let nodes = v["nodes"].as_array().unwrap_or(&empty);
    out.push_str("\nnodes:\n");
    let rows: Vec<[String; 3]> = nodes
        .iter()
        .map(|n| {
            let heard = match n["last_heard_ms_ago"].as_u64() {
                Some(ms) => age(ms),
                None if s(n, "status") == "local" => "-".into(),
                None => "never".into(),
            };
            let status = match n["fence"].as_str() {
                Some(f) => format!("{} (fence: {f})", s(n, "status")),
                None => s(n, "status").into(),
            };
            [s(n, "name").into(), status, heard]
        })
        .collect();
    out.push_str(&table(["NODE", "STATUS", "LAST BEAT"], &rows));

    out.push_str("\nlinks:\n");
    let mut rows: Vec<[String; 4]> = Vec::new();
    for n in nodes {
        for l in n["links"].as_array().unwrap_or(&empty) {
            let up = if l["up"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            };
            let heard = n["last_heard_ms_ago"]
                .as_u64()
                .map(age)
                .unwrap_or("-".into());
            rows.push([s(n, "name").into(), s(l, "link").into(), up.into(), heard]);
        }
    }
    if rows.is_empty() {
        out.push_str("  (no peer heard yet)\n");
    } else {
        out.push_str(&table(["NODE", "LINK", "STATE", "LAST BEAT"], &rows));
    }

    out.push_str("\ngroups:\n");
    let rows: Vec<[String; 4]> = v["groups"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|g| {
            [
                s(g, "group").into(),
                or_dash(s(g, "holder")),
                s(g, "preferred").into(),
                s(g, "local_state").into(),
            ]
        })
        .collect();
    out.push_str(&table(["GROUP", "HOLDER", "PREFERRED", "HERE"], &rows));

    let c = &v["counters"];
    let _ = writeln!(
        out,
        "\ncounters: beats received {}, sent {}, late {}; bad packets {}, replays {}; failovers {}, split brains {}; retransmits requested {}, sent {}",
        c["beats_received"],
        c["beats_sent"],
        c["late_beats"],
        c["bad_packets"],
        c["replays"],
        c["failovers"],
        c["split_brains"],
        c["retransmits_requested"],
        c["retransmits_sent"]
    );

    if let Some(m) = v["config_mismatch"].as_object().filter(|m| !m.is_empty()) {
        out.push_str("\nconfiguration mismatch (HARUST_EVENT=config-mismatch):\n");
        for (peer, parts) in m {
            let parts: Vec<&str> = parts
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|p| p.as_str())
                .collect();
            let _ = writeln!(out, "  {peer} differs in: {}", parts.join(", "));
        }
    }

    let trans = v["transitions"].as_array().unwrap_or(&empty);
    out.push_str("\nrecent transitions:\n");
    if trans.is_empty() {
        out.push_str("  (none)\n");
    }
    for t in trans {
        let when = t["time_ms"]
            .as_u64()
            .map(|ms| age(now_ms.saturating_sub(ms)))
            .unwrap_or_default();
        let _ = writeln!(out, "  {when:>12}  {}", s(t, "message"));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let codes = [
            ClientError::NotRunning { bus: "b".into() }.exit_code(),
            ClientError::AccessDenied { method: "m".into() }.exit_code(),
            ClientError::Refused {
                name: "n".into(),
                message: "m".into(),
            }
            .exit_code(),
            ClientError::Timeout {
                message: "m".into(),
            }
            .exit_code(),
        ];
        assert_eq!(codes, [3, 4, 5, 6]);
    }

    #[test]
    fn not_running_and_access_denied_messages_say_what_to_do() {
        let e = ClientError::NotRunning {
            bus: "the system bus".into(),
        };
        assert_eq!(
            e.to_string(),
            "harust is not running (org.harust.Harust1 has no owner on the system bus)"
        );
        let e = ClientError::AccessDenied {
            method: "Standby".into(),
        };
        assert_eq!(
            e.to_string(),
            "access denied: Standby needs root (see /usr/share/dbus-1/system.d/org.harust.Harust1.conf)"
        );
    }

    #[test]
    fn status_text_shows_nodes_links_groups_and_transitions() {
        let v: Value = serde_json::json!({
            "node": "node-a",
            "summary": "active: holds 1/1 groups; peers up: node-b",
            "timings_ms": {"keepalive": 10, "warntime": 50, "deadtime": 100, "initdead": 300},
            "nodes": [
                {"name": "node-a", "status": "local", "last_heard_ms_ago": null, "links": []},
                {"name": "node-b", "status": "active", "last_heard_ms_ago": 3,
                 "links": [{"link": "ucast eth0 198.18.1.2", "up": true}]}
            ],
            "groups": [{"group": "IPaddr2::198.18.1.100/24/eth0", "holder": "node-a",
                        "preferred": "node-a", "local_state": "held"}],
            "counters": {"beats_received": 5, "failovers": 0},
            "transitions": [{"time_ms": 1000, "event": "acquired", "message": "acquired group g"}]
        });
        let text = render_status(&v, 3000);
        assert!(
            text.starts_with("node-a: active: holds 1/1 groups"),
            "{text}"
        );
        assert!(text.contains("node-b  active  3 ms ago"), "{text}");
        assert!(
            text.contains("node-b  ucast eth0 198.18.1.2  up     3 ms ago"),
            "{text}"
        );
        assert!(
            text.contains("IPaddr2::198.18.1.100/24/eth0  node-a  node-a     held"),
            "{text}"
        );
        assert!(text.contains("2000 ms ago  acquired group g"), "{text}");
        assert!(!text.contains("mismatch"), "{text}");
        let mut v = v;
        v["config_mismatch"] = serde_json::json!({"node-b": ["timings", "haresources"]});
        let text = render_status(&v, 3000);
        assert!(
            text.contains("node-b differs in: timings, haresources"),
            "{text}"
        );
        assert!(text.contains("safety: quorum off"), "{text}");
    }

    #[test]
    fn status_text_shows_quorum_the_witness_and_the_release_bound() {
        let v: Value = serde_json::json!({
            "node": "tiny",
            "summary": "standby (witness): holds 0/1 groups; peers up: node-a; quorum",
            "quorum": "yes",
            "witness": true,
            "timings_ms": {"keepalive": 100, "warntime": 500, "deadtime": 1000,
                           "initdead": 2000, "release_bound": 2700},
        });
        let text = render_status(&v, 0);
        assert!(
            text.contains(
                "safety: quorum yes, release bound 2700 ms (this node is a witness: \
                 it votes and holds nothing)"
            ),
            "{text}"
        );
    }
}
