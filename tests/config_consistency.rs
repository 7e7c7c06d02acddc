//! Configuration consistency: harust nodes exchange per-part digests of
//! their cluster-relevant configuration (`hr_cfg` on status messages). Two
//! real daemons in test namespaces, each serving its API on a private
//! dbus-daemon: a difference is a WARNING naming the peer and the parts,
//! shown by `harust status` and the `ConfigMismatch` property; agreeing
//! configurations show none.

mod support;

use std::process::Command;
use std::time::Duration;

use support::bus::Bus;
use support::daemon::{Daemon, HaConfig, Launch};
use support::{Node, Topology};

const HARUST: &str = env!("CARGO_BIN_EXE_harust");
const LONG: Duration = Duration::from_secs(20);

fn can_run(test: &str) -> bool {
    support::privileged(test) && support::netns::has_tool(test, "dbus-daemon", "--version")
}

/// `harust status --json` of the daemon on `bus`.
fn status(bus: &Bus) -> serde_json::Value {
    let out = Command::new(HARUST)
        .args(["status", "--json", "--bus", bus.address()])
        .output()
        .expect("run harust status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

fn pair(tag: &str, a: &HaConfig, b: &HaConfig) -> (Topology, Bus, Bus, Daemon, Daemon) {
    let t = Topology::new(tag);
    let (bus_a, bus_b) = (Bus::start(), Bus::start());
    let mut da = Daemon::start_with(&t.a, Node::A, a, Launch::default().bus(bus_a.address()));
    let mut db = Daemon::start_with(&t.b, Node::B, b, Launch::default().bus(bus_b.address()));
    da.wait_ready(LONG);
    db.wait_ready(LONG);
    (t, bus_a, bus_b, da, db)
}

#[test]
fn differing_configurations_are_a_warning_naming_the_peer_and_parts() {
    const T: &str = "differing_configurations_are_a_warning_naming_the_peer_and_parts";
    if !can_run(T) {
        return;
    }
    let a = HaConfig::fast().vip_group(Node::A, &["198.18.1.100"]);
    // node-b: another deadtime and auto_failback, and a second group.
    let b = HaConfig::fast()
        .timings(50, 400, 600)
        .auto_failback("off")
        .vip_group(Node::A, &["198.18.1.100"])
        .vip_group(Node::B, &["198.18.1.101"]);
    let (_t, bus_a, bus_b, mut da, mut db) = pair("cfgdiff", &a, &b);

    let warning =
        "node node-b's configuration differs from ours in: timings, auto_failback, haresources";
    da.wait_log(LONG, warning);
    let line = da
        .log()
        .lines()
        .find(|l| l.contains(warning))
        .unwrap()
        .to_string();
    assert!(line.starts_with("WARN"), "not a warning: {line}");
    assert!(line.contains("config-mismatch"), "no HARUST_EVENT: {line}");
    db.wait_log(
        LONG,
        "node node-a's configuration differs from ours in: timings, auto_failback, haresources",
    );

    let s = status(&bus_a);
    assert_eq!(
        s["config_mismatch"]["node-b"],
        serde_json::json!(["timings", "auto_failback", "haresources"]),
        "{s:#}"
    );
    let text = Command::new(HARUST)
        .args(["status", "--bus", bus_b.address()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("node-a differs in: timings, auto_failback, haresources"),
        "{text}"
    );
    let metrics = Command::new(HARUST)
        .args(["metrics", "--bus", bus_a.address()])
        .output()
        .expect("run harust metrics");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    for (part, v) in [("timings", 1), ("haresources", 1), ("nodes", 0)] {
        let line = format!("harust_config_mismatch{{peer=\"node-b\",part=\"{part}\"}} {v}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line} in\n{metrics}"
        );
    }
    let prop = Command::new("busctl")
        .arg(format!("--address={}", bus_a.address()))
        .args([
            "get-property",
            "org.harust.Harust1",
            "/org/harust/Harust1",
            "org.harust.Harust1",
            "ConfigMismatch",
        ])
        .output()
        .expect("run busctl");
    assert_eq!(
        String::from_utf8_lossy(&prop.stdout).trim(),
        r#"a{sas} 1 "node-b" 3 "timings" "auto_failback" "haresources""#
    );
}

#[test]
fn agreeing_configurations_show_no_mismatch() {
    const T: &str = "agreeing_configurations_show_no_mismatch";
    if !can_run(T) {
        return;
    }
    let cfg = HaConfig::fast().vip_group(Node::A, &["198.18.1.100"]);
    let (_t, bus_a, _bus_b, mut da, _db) = pair("cfgsame", &cfg, &cfg);
    da.wait_log(LONG, "node node-b's configuration agrees with ours");
    assert!(!da.log().contains("config-mismatch"), "{}", da.log());
    let s = status(&bus_a);
    assert_eq!(s["config_mismatch"], serde_json::json!({}), "{s:#}");
}
