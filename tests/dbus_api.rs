//! The D-Bus API against a real `dbus-daemon` with our bus policy, real
//! `harust daemon` processes in network namespaces, and the real `busctl`.
//!
//! Each node gets its own private bus (the well-known name is per bus), a
//! system-bus-like configuration that includes
//! `dbus-interfaces/org.harust.Harust1.conf`, in a directory user nobody
//! can reach. Readiness is the name appearing on the bus; every wait has a
//! deadline and names what it waited for.

mod support;

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use support::bus::Bus;
use support::{Netns, Topology};

const NAME: &str = "org.harust.Harust1";
const PATH: &str = "/org/harust/Harust1";
const IFACE: &str = "org.harust.Harust1";
const VIP: &str = "198.18.1.100";
const GROUP: &str = "IPaddr2::198.18.1.100/24/eth0";
const HARUST: &str = env!("CARGO_BIN_EXE_harust");
/// Generous: debug builds on a shared machine.
const SETTLE: Duration = Duration::from_secs(20);

type Group = (String, String, String, String);

/// Root, `ip`, and the D-Bus tools; loud skip (or failure under CI=true).
fn can_run(test: &str) -> bool {
    support::privileged(test)
        && support::netns::has_tool(test, "dbus-daemon", "--version")
        && support::netns::has_tool(test, "busctl", "--version")
        && support::netns::has_tool(test, "setpriv", "--version")
}

fn tempdir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("harust-dbus-")
        .tempdir()
        .expect("tempdir");
    // The bus socket must be reachable by user nobody.
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod 755");
    d
}

/// A `harust daemon` run in a namespace, logging to a file.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    what: String,
}

impl Daemon {
    fn start(ns: &Netns, node: &str, config: &Path, state: &Path, bus: &Bus) -> Daemon {
        let log = state.with_extension("log");
        fs::create_dir_all(state).expect("state dir");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), HARUST, "daemon"])
            .arg("--config-dir")
            .arg(config)
            .args(["--node", node, "--bus", bus.address()])
            .arg("--state-dir")
            .arg(state)
            .args(["--log-level", "debug"])
            .env("HARUST_LOG_TARGET", "stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("daemon log"))
            .spawn()
            .expect("start harust daemon");
        Daemon {
            child: Some(child),
            log,
            what: format!("{node} in {}", ns.name()),
        }
    }

    fn log(&self) -> String {
        format!(
            "--- log of {} ---\n{}",
            self.what,
            fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `ip netns exec` execs harust: the PID is the daemon's.
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("cleanup: {} ignored SIGTERM; killing it", self.what);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// ha.cf, haresources and authkeys for the two-node test cluster.
fn write_config(dir: &Path) {
    fs::create_dir_all(dir).expect("config dir");
    fs::write(
        dir.join("ha.cf"),
        "keepalive 10ms\nwarntime 50ms\ndeadtime 100ms\ninitdead 300ms\n\
         ucast eth0 198.18.1.1\nucast eth0 198.18.1.2\n\
         node node-a node-b\nauto_failback on\n",
    )
    .expect("ha.cf");
    fs::write(dir.join("haresources"), format!("node-a {GROUP}\n")).expect("haresources");
    let keys = dir.join("authkeys");
    fs::write(&keys, "auth 1\n1 sha1 test\n").expect("authkeys");
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o600)).expect("chmod authkeys");
}

/// One or two nodes, each serving the API on its own bus. Fields drop in
/// order: daemons, then buses, then files, then namespaces.
struct Cluster {
    a: Daemon,
    b: Option<Daemon>,
    bus_a: Bus,
    bus_b: Option<Bus>,
    dir: tempfile::TempDir,
    topo: Topology,
}

impl Cluster {
    /// node-a alone (node-b configured but never started): it holds the
    /// group once initdead is over.
    fn one(tag: &str) -> Cluster {
        Cluster::start(tag, false)
    }

    /// node-a holding the group, node-b up beside it.
    fn two(tag: &str) -> Cluster {
        Cluster::start(tag, true)
    }

    fn start(tag: &str, two: bool) -> Cluster {
        let topo = Topology::new(tag);
        let dir = tempdir();
        let config = dir.path().join("config");
        write_config(&config);
        let bus_a = Bus::start();
        let a = Daemon::start(&topo.a, "node-a", &config, &dir.path().join("a"), &bus_a);
        let (b, bus_b) = if two {
            let bus_b = Bus::start();
            let b = Daemon::start(&topo.b, "node-b", &config, &dir.path().join("b"), &bus_b);
            (Some(b), Some(bus_b))
        } else {
            (None, None)
        };
        let mut c = Cluster {
            a,
            b,
            bus_a,
            bus_b,
            dir,
            topo,
        };
        let bus = c.bus_a.address().to_string();
        c.wait("node-a to own org.harust.Harust1", || has_owner(&bus));
        if let Some(bus_b) = &c.bus_b {
            let bus_b = bus_b.address().to_string();
            c.wait("node-b to own org.harust.Harust1", || has_owner(&bus_b));
        }
        c.wait_holder(Side::A, "node-a", "held");
        if two {
            c.wait_holder(Side::B, "node-a", "idle");
            c.wait("node-a to see node-b up", || {
                prop(&bus, "Nodes").is_some_and(|n| {
                    let n = n.to_string();
                    n.contains(r#"["node-b","up"]"#) || n.contains(r#"["node-b","active"]"#)
                })
            });
        }
        c
    }

    fn bus(&self, side: Side) -> &str {
        match side {
            Side::A => self.bus_a.address(),
            Side::B => self.bus_b.as_ref().expect("a two-node cluster").address(),
        }
    }

    fn logs(&self) -> String {
        let mut s = self.a.log();
        if let Some(b) = &self.b {
            s.push('\n');
            s.push_str(&b.log());
        }
        s
    }

    /// Polls `cond` until it holds; on timeout (or a daemon's exit) panics
    /// naming `what`, with the daemons' logs.
    fn wait(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            if cond() {
                return;
            }
            let dead = [Some(&mut self.a), self.b.as_mut()]
                .into_iter()
                .flatten()
                .find_map(|d| d.exited().map(|st| format!("{} exited ({st})", d.what)));
            if let Some(dead) = dead {
                panic!("{dead} while waiting for {what}\n{}", self.logs());
            }
            if start.elapsed() > SETTLE {
                panic!(
                    "timed out after {SETTLE:?} waiting for {what}\n{}",
                    self.logs()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Waits until the bus of `side` shows the group held by `holder`, with
    /// that node's own state for it `state`.
    fn wait_holder(&mut self, side: Side, holder: &str, state: &str) {
        let bus = self.bus(side).to_string();
        let what = format!("{side:?}'s Groups to show {holder} holding the group, {state} there");
        self.wait(&what, || {
            groups(&bus).is_some_and(|g| g.len() == 1 && g[0].1 == holder && g[0].3 == state)
        });
    }

    fn vip_on(&self, ns: &Netns) -> bool {
        ns.has_addr("eth0", VIP)
    }

    fn assert_vip_on_b(&self) {
        assert!(
            self.vip_on(&self.topo.b) && !self.vip_on(&self.topo.a),
            "the VIP should be on node-b only (a: {}, b: {})\n{}",
            self.vip_on(&self.topo.a),
            self.vip_on(&self.topo.b),
            self.logs()
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Side {
    A,
    B,
}

fn busctl(bus: &str, args: &[&str]) -> Output {
    Command::new("busctl")
        .arg(format!("--address={bus}"))
        .args(args)
        .output()
        .expect("run busctl")
}

/// `busctl` as user nobody.
fn busctl_nobody(bus: &str, args: &[&str]) -> Output {
    as_nobody("busctl", &[&[&*format!("--address={bus}")], args].concat())
}

fn as_nobody(program: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", program])
        .args(args)
        .output()
        .expect("run setpriv")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn has_owner(bus: &str) -> bool {
    let out = busctl(
        bus,
        &[
            "call",
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "NameHasOwner",
            "s",
            NAME,
        ],
    );
    text(&out.stdout).trim() == "b true"
}

/// A property's value as busctl's JSON (`data`), if readable.
fn prop(bus: &str, name: &str) -> Option<serde_json::Value> {
    let out = busctl(
        bus,
        &["--json=short", "get-property", NAME, PATH, IFACE, name],
    );
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v["data"].clone())
}

fn groups(bus: &str) -> Option<Vec<Group>> {
    serde_json::from_value(prop(bus, "Groups")?).ok()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect(bus: &str) -> zbus::Connection {
    zbus::connection::Builder::address(bus)
        .method_timeout(SETTLE * 2)
        .build()
        .await
        .expect("connect to the test bus")
}

/// Calls a method of ours; a failure comes back as (error name, message).
async fn call<B>(
    conn: &zbus::Connection,
    method: &str,
    body: &B,
) -> Result<zbus::Message, (String, String)>
where
    B: serde::Serialize + zbus::wire::DynamicType,
{
    use zbus::DBusError;
    conn.call_method(Some(NAME), PATH, Some(IFACE), method, body)
        .await
        .map_err(|e| match &e {
            zbus::Error::MethodError(name, detail, _) => {
                (name.to_string(), detail.clone().unwrap_or_default())
            }
            zbus::Error::FDO(f) => (
                f.name().to_string(),
                f.description().unwrap_or_default().to_string(),
            ),
            other => (String::new(), other.to_string()),
        })
}

// ---------------------------------------------------------------------
// The interface XML is the contract
// ---------------------------------------------------------------------

/// The `org.harust.Harust1` interface of an introspection document,
/// normalised: comments and whitespace dropped, `<x/>` and `<x></x>` the
/// same, attributes sorted, members sorted by kind and name (arguments
/// keep their order, which is part of the signature).
fn normalised_interface(xml: &str) -> Vec<String> {
    let mut s = xml.to_string();
    while let Some(a) = s.find("<!--") {
        let b = s[a..].find("-->").expect("unterminated comment") + a + 3;
        s.replace_range(a..b, "");
    }
    let start = s
        .find(&format!(r#"<interface name="{IFACE}">"#))
        .unwrap_or_else(|| panic!("no {IFACE} interface in:\n{xml}"));
    let end = s[start..].find("</interface>").expect("no </interface>") + start;
    let body = &s[start..end];
    // Tags of the interface's body, skipping the <interface> tag itself.
    let mut tags = Vec::new();
    let mut rest = &body[body.find('>').expect("interface tag") + 1..];
    while let Some(a) = rest.find('<') {
        let b = rest[a..].find('>').expect("unterminated tag") + a;
        let raw = rest[a + 1..b].trim();
        rest = &rest[b + 1..];
        if let Some(closing) = raw.strip_prefix('/') {
            tags.push(format!("</{}>", closing.trim()));
        } else {
            let (raw, empty) = match raw.strip_suffix('/') {
                Some(r) => (r, true),
                None => (raw, false),
            };
            let mut words = raw.split_whitespace();
            let name = words.next().expect("tag name").to_string();
            let attrs = raw[name.len()..].trim();
            let mut pairs: Vec<String> = Vec::new();
            let mut a = attrs;
            while let Some(eq) = a.find('=') {
                let key = a[..eq].trim();
                let v0 = a[eq..].find('"').expect("quoted value") + eq + 1;
                let v1 = a[v0..].find('"').expect("closing quote") + v0;
                pairs.push(format!("{key}={:?}", &a[v0..v1]));
                a = &a[v1 + 1..];
            }
            pairs.sort();
            tags.push(format!("<{name} {}>", pairs.join(" ")));
            if empty {
                tags.push(format!("</{name}>"));
            }
        }
    }
    // Group into members (depth-1 elements), each one string.
    let mut members = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for t in tags {
        let closing = t.starts_with("</");
        if !closing {
            depth += 1;
        }
        current.push_str(&t);
        if closing {
            depth -= 1;
            if depth == 0 {
                members.push(std::mem::take(&mut current));
            }
        }
    }
    members.sort();
    members
}

#[test]
fn interface_xml_equals_the_live_introspection() {
    if !can_run("interface_xml_equals_the_live_introspection") {
        return;
    }
    let c = Cluster::one("dbx");
    let out = busctl(
        c.bus(Side::A),
        &["introspect", "--xml-interface", NAME, PATH],
    );
    assert!(out.status.success(), "introspect: {}", text(&out.stderr));
    let live = normalised_interface(&text(&out.stdout));
    let file = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus-interfaces/org.harust.Harust1.xml"),
    )
    .expect("read the interface XML");
    let contract = normalised_interface(&file);
    assert!(contract.iter().any(|m| m.contains(r#"name="Standby""#)));
    if live != contract {
        let only_live: Vec<_> = live.iter().filter(|m| !contract.contains(m)).collect();
        let only_file: Vec<_> = contract.iter().filter(|m| !live.contains(m)).collect();
        panic!(
            "dbus-interfaces/org.harust.Harust1.xml differs from the daemon's introspection\n\
             only in the daemon: {only_live:#?}\nonly in the file: {only_file:#?}"
        );
    }
}

// ---------------------------------------------------------------------
// Methods and properties
// ---------------------------------------------------------------------

#[test]
fn properties_changed_and_signals_fire_on_a_takeover() {
    if !can_run("properties_changed_and_signals_fire_on_a_takeover") {
        return;
    }
    let c = Cluster::two("dbpc");
    let bus_b = c.bus(Side::B).to_string();
    runtime().block_on(async {
        use futures::StreamExt;
        let conn = connect(&bus_b).await;
        // Every signal from our object: PropertiesChanged and our own.
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .path(PATH)
            .build()
            .expect("match rule");
        // Subscribed (AddMatch done) before the call: nothing is missed.
        let mut stream =
            zbus::MessageStream::for_match_rule(rule, &conn, std::num::NonZeroUsize::new(4096))
                .await
                .expect("subscribe to our signals");
        let reply = call(&conn, "Takeover", &("all",))
            .await
            .unwrap_or_else(|e| panic!("Takeover failed: {e:?}\n{}", c.logs()));
        let groups: Vec<Group> = reply.body().deserialize().expect("a(ssss) reply");
        assert_eq!(
            groups,
            vec![(
                GROUP.into(),
                "node-b".into(),
                "node-a".into(),
                "held".into()
            )]
        );
        let (mut groups_held, mut state_active, mut acquired, mut transition) =
            (false, false, false, false);
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(SETTLE, async {
            while let Some(Ok(m)) = stream.next().await {
                let h = m.header();
                let member = h.member().map(|m| m.to_string()).unwrap_or_default();
                seen.push(member.clone());
                match member.as_str() {
                    "PropertiesChanged" => {
                        let (iface, mut changed, _): (
                            String,
                            HashMap<String, zbus::OwnedVariant>,
                            Vec<String>,
                        ) = m.body().deserialize().expect("PropertiesChanged body");
                        if iface != IFACE {
                            continue;
                        }
                        seen.push(format!("  {:?}", changed.keys().collect::<Vec<_>>()));
                        if let Some(v) = changed.remove("Groups") {
                            let g = Vec::<Group>::try_from(v).expect("Groups is a(ssss)");
                            groups_held |= g[0].1 == "node-b" && g[0].3 == "held";
                        }
                        if let Some(v) = changed.remove("State") {
                            state_active |= String::try_from(v).expect("State is s") == "active";
                        }
                    }
                    "GroupAcquired" => {
                        let (group, _from): (String, String) =
                            m.body().deserialize().expect("GroupAcquired(ss)");
                        acquired |= group == GROUP;
                    }
                    "Transition" => {
                        let (event, _node, group, _msg): (String, String, String, String) =
                            m.body().deserialize().expect("Transition(ssss)");
                        transition |= event == "acquired" && group == GROUP;
                    }
                    _ => {}
                }
                if groups_held && state_active && acquired && transition {
                    return;
                }
            }
        })
        .await;
        assert!(
            groups_held && state_active && acquired && transition,
            "missing: Groups held by node-b {groups_held}, State active {state_active}, \
             GroupAcquired {acquired}, Transition acquired {transition}; saw {seen:?}\n{}",
            c.logs()
        );
    });
    c.assert_vip_on_b();
}

#[test]
fn standby_moves_the_group_to_the_peer_and_returns_the_new_state() {
    if !can_run("standby_moves_the_group_to_the_peer_and_returns_the_new_state") {
        return;
    }
    let mut c = Cluster::two("dbsb");
    let bus_a = c.bus(Side::A).to_string();
    let groups: Vec<Group> = runtime().block_on(async {
        let conn = connect(&bus_a).await;
        let reply = call(&conn, "Standby", &("all",))
            .await
            .unwrap_or_else(|e| panic!("Standby failed: {e:?}\n{}", c.logs()));
        reply.body().deserialize().expect("a(ssss) reply")
    });
    // The reply is the state after the move, not a promise of it.
    assert_eq!(
        groups,
        vec![(
            GROUP.into(),
            "node-b".into(),
            "node-a".into(),
            "idle".into()
        )],
        "{}",
        c.logs()
    );
    c.assert_vip_on_b();
    c.wait_holder(Side::B, "node-b", "held");
}

#[test]
fn standby_without_a_live_peer_is_a_typed_error() {
    if !can_run("standby_without_a_live_peer_is_a_typed_error") {
        return;
    }
    let c = Cluster::one("dbnp");
    let bus = c.bus(Side::A).to_string();
    runtime().block_on(async {
        let conn = connect(&bus).await;
        let (name, message) = call(&conn, "Standby", &("all",))
            .await
            .expect_err("Standby with no peer must fail");
        assert_eq!(name, "org.harust.Harust1.Error.NoPeer", "{message}");
        assert!(message.contains(GROUP), "{message}");
        let (name, message) = call(&conn, "Takeover", &("everything",))
            .await
            .expect_err("an unknown scope must fail");
        assert_eq!(name, "org.harust.Harust1.Error.InvalidScope", "{message}");
        assert!(
            message.contains("all, local, foreign or failback"),
            "{message}"
        );
    });
    assert!(c.vip_on(&c.topo.a), "the group must stay where it was");
}

#[test]
fn nobody_is_denied_standby_but_can_read_status() {
    if !can_run("nobody_is_denied_standby_but_can_read_status") {
        return;
    }
    let c = Cluster::one("dbno");
    let bus = c.bus(Side::A);

    let out = busctl_nobody(bus, &["get-property", NAME, PATH, IFACE, "Groups"]);
    assert!(
        out.status.success(),
        "nobody reads Groups: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains(r#""node-a" "node-a" "held""#),
        "{}",
        text(&out.stdout)
    );

    let out = busctl_nobody(bus, &["call", NAME, PATH, IFACE, "Status"]);
    assert!(
        out.status.success(),
        "nobody calls Status: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("node-a"));

    let out = busctl_nobody(bus, &["introspect", NAME, PATH]);
    assert!(
        out.status.success(),
        "nobody introspects: {}",
        text(&out.stderr)
    );

    for args in [
        &["Standby", "s", "all"][..],
        &["Takeover", "s", "all"],
        &["Reload"],
        &["SetMaintenance", "b", "true"],
    ] {
        let out = busctl_nobody(bus, &[&["call", NAME, PATH, IFACE][..], args].concat());
        assert!(!out.status.success(), "nobody must not call {args:?}");
        assert!(
            text(&out.stderr).contains("Access denied"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    let out = as_nobody(HARUST, &["standby", "--bus", bus]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "access denied: Standby needs root (see /usr/share/dbus-1/system.d/org.harust.Harust1.conf)"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = as_nobody(HARUST, &["status", "--bus", bus]);
    assert!(
        out.status.success(),
        "nobody runs harust status: {}",
        text(&out.stderr)
    );

    assert!(c.vip_on(&c.topo.a), "a denied call must change nothing");
}

#[test]
fn busctl_standby_moves_the_group() {
    if !can_run("busctl_standby_moves_the_group") {
        return;
    }
    let mut c = Cluster::two("dbbc");
    let out = busctl(
        c.bus(Side::A),
        &[
            "--timeout=60",
            "call",
            NAME,
            PATH,
            IFACE,
            "Standby",
            "s",
            "all",
        ],
    );
    assert!(
        out.status.success(),
        "busctl call Standby: {}\n{}",
        text(&out.stderr),
        c.logs()
    );
    assert_eq!(
        text(&out.stdout).trim(),
        format!(r#"a(ssss) 1 "{GROUP}" "node-b" "node-a" "idle""#)
    );
    c.assert_vip_on_b();
    c.wait_holder(Side::B, "node-b", "held");
}

// ---------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------

fn harust(args: &[&str]) -> Output {
    Command::new(HARUST)
        .args(args)
        .output()
        .expect("run harust")
}

#[test]
fn cli_status_standby_takeover_and_not_running() {
    if !can_run("cli_status_standby_takeover_and_not_running") {
        return;
    }
    let mut c = Cluster::two("dbcl");
    let bus = c.bus(Side::A).to_string();

    let out = harust(&["status", "--bus", &bus]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    for want in [
        "node-a: active",
        "node-b",
        "up",
        GROUP,
        "held",
        "ucast eth0 198.18.1.2",
        "acquired group",
    ] {
        assert!(s.contains(want), "status lacks {want:?}:\n{s}");
    }

    let out = harust(&["status", "--json", "--bus", &bus]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(j["groups"][0]["holder"], "node-a");
    assert_eq!(j["nodes"][1]["name"], "node-b");

    let out = harust(&["standby", "--bus", &bus]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), c.logs());
    assert!(
        text(&out.stdout).contains("node-b"),
        "{}",
        text(&out.stdout)
    );
    c.assert_vip_on_b();

    let out = harust(&["takeover", "all", "--bus", &bus]);
    assert!(out.status.success(), "{}\n{}", text(&out.stderr), c.logs());
    assert!(
        c.vip_on(&c.topo.a),
        "takeover brings the VIP back to node-a"
    );
    c.wait_holder(Side::B, "node-a", "idle");

    let out = harust(&["reload", "--bus", &bus]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A bus where no harust runs.
    let empty = Bus::start();
    let out = harust(&["status", "--bus", empty.address()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr).trim(),
        format!(
            "harust: harust is not running (org.harust.Harust1 has no owner on the bus at {})",
            empty.address()
        )
    );
}

#[test]
fn a_second_daemon_on_the_same_bus_refuses_to_start() {
    if !can_run("a_second_daemon_on_the_same_bus_refuses_to_start") {
        return;
    }
    let mut c = Cluster::one("db2d");
    let config = c.dir.path().join("config");
    let state = c.dir.path().join("second");
    let mut second = Daemon::start(&c.topo.c, "node-a", &config, &state, &c.bus_a);
    let mut status = None;
    c.wait("the second daemon to exit", || {
        status = second.exited();
        status.is_some()
    });
    let log = second.log();
    assert!(!status.unwrap().success(), "{log}");
    assert!(
        log.contains(&format!(
            "org.harust.Harust1 is already owned on the bus at {}",
            c.bus_a.address()
        )) && log.contains("refusing to start"),
        "{log}"
    );
    // The first one still serves.
    assert!(has_owner(c.bus(Side::A)));
    assert!(groups(c.bus(Side::A)).is_some_and(|g| g[0].3 == "held"));
}

// ---------------------------------------------------------------------
// harust metrics: OpenMetrics, checked by a real parser
// ---------------------------------------------------------------------

/// Parsed OpenMetrics: family types, and samples (name, labels, value).
struct Parsed {
    families: HashMap<String, String>,
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Parsed {
    /// The value of the one sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let hits: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "want one sample {name}{labels:?}, got {hits:?} of {:?}",
            self.samples
        );
        hits[0]
    }
}

const PARSER: &str = "tests/data/openmetrics-parse.py";

/// Debian's python3, where apt installs python3-prometheus-client (a
/// `python3` earlier in PATH, e.g. pyenv's, would not see it).
const PYTHON: &str = "/usr/bin/python3";

/// python3 with prometheus_client's OpenMetrics parser; loud skip (or
/// failure under CI=true) without it.
fn has_parser(test: &str) -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let why = "/usr/bin/python3 cannot import prometheus_client (apt-get install python3-prometheus-client)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test} cannot run under CI=true: {why}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {test}: {why} ***\n");
    false
}

/// Runs the real parser on `text`; panics with its complaint if invalid.
fn parse_openmetrics(text_in: &str) -> Parsed {
    use std::io::Write;
    let mut child = Command::new(PYTHON)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(PARSER))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the OpenMetrics parser");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text_in.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser rejects the text: {}\n{text_in}",
        text(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("parser JSON");
    Parsed {
        families: serde_json::from_value(v["families"].clone()).unwrap(),
        samples: serde_json::from_value(v["samples"].clone()).unwrap(),
    }
}

/// `harust metrics --http --bus BUS` given `request` on stdin: the raw
/// response.
fn metrics_http(bus: &str, request: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(HARUST)
        .args(["metrics", "--http", "--bus", bus])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run harust metrics --http");
    // Left open, like a client's connection: the request ends at its blank
    // line, not at EOF.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// (status line, headers lowercased, body) of an HTTP response.
fn split_response(r: &str) -> (String, String, String) {
    let (head, body) = r.split_once("\r\n\r\n").expect("an HTTP response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.into(), headers.to_ascii_lowercase(), body.into())
}

#[test]
fn metrics_are_openmetrics_with_counters_peers_links_and_groups() {
    const T: &str = "metrics_are_openmetrics_with_counters_peers_links_and_groups";
    if !can_run(T) || !has_parser(T) {
        return;
    }
    let mut c = Cluster::two("dbmet");
    let (bus_a, bus_b) = (c.bus(Side::A).to_string(), c.bus(Side::B).to_string());
    c.wait("node-a's LastHeard to have node-b", || {
        prop(&bus_a, "LastHeard").is_some_and(|v| v.get("node-b").is_some())
    });

    let out = harust(&["metrics", "--bus", &bus_a]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    let m = parse_openmetrics(&body);
    for (family, kind) in [
        ("harust_build", "info"),
        ("harust_beats_received", "counter"),
        ("harust_late_beats", "counter"),
        ("harust_bad_packets", "counter"),
        ("harust_replays", "counter"),
        ("harust_failovers", "counter"),
        ("harust_split_brains", "counter"),
        ("harust_retransmits_requested", "counter"),
        ("harust_peer_state", "stateset"),
        ("harust_peer_last_heard_age_seconds", "gauge"),
        ("harust_link_up", "gauge"),
        ("harust_group_held_here", "gauge"),
        ("harust_group_holder", "gauge"),
    ] {
        assert_eq!(
            m.families.get(family).map(String::as_str),
            Some(kind),
            "family {family}: {:?}",
            m.families
        );
    }
    assert!(m.value("harust_beats_received_total", &[]) > 0.0);
    assert_eq!(m.value("harust_bad_packets_total", &[]), 0.0);
    assert_eq!(m.value("harust_build_info", &[("node", "node-a")]), 1.0);
    // Heard: up, or active once it is in the cluster (heartbeat's st=).
    let heard = |m: &Parsed, peer: &str| {
        m.value(
            "harust_peer_state",
            &[("peer", peer), ("harust_peer_state", "up")],
        ) + m.value(
            "harust_peer_state",
            &[("peer", peer), ("harust_peer_state", "active")],
        )
    };
    assert_eq!(heard(&m, "node-b"), 1.0);
    assert_eq!(
        m.value(
            "harust_peer_state",
            &[("peer", "node-b"), ("harust_peer_state", "dead")]
        ),
        0.0
    );
    let age = m.value("harust_peer_last_heard_age_seconds", &[("peer", "node-b")]);
    // keepalive 10 ms; a published snapshot is at most about a second old.
    assert!((0.0..3.0).contains(&age), "last heard {age} s ago");
    assert_eq!(
        m.value(
            "harust_link_up",
            &[("peer", "node-b"), ("link", "ucast eth0 198.18.1.2")]
        ),
        1.0
    );
    assert_eq!(m.value("harust_group_held_here", &[("group", GROUP)]), 1.0);
    assert_eq!(
        m.value(
            "harust_group_holder",
            &[("group", GROUP), ("node", "node-a")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "harust_group_holder",
            &[("group", GROUP), ("node", "node-b")]
        ),
        0.0
    );
    // Both nodes run the same files.
    assert_eq!(
        m.value(
            "harust_config_mismatch",
            &[("peer", "node-b"), ("part", "timings")]
        ),
        0.0
    );

    // node-b's view over HTTP, as the socket-activated unit serves it.
    let r = metrics_http(
        &bus_b,
        "GET /metrics HTTP/1.1\r\nHost: node-b\r\nAccept: */*\r\n\r\n",
    );
    let (status, headers, body) = split_response(&r);
    assert_eq!(status, "HTTP/1.1 200 OK", "{r}");
    assert!(
        headers.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    assert!(
        headers.contains(&format!("content-length: {}", body.len())),
        "{headers}"
    );
    let m = parse_openmetrics(&body);
    assert_eq!(m.value("harust_group_held_here", &[("group", GROUP)]), 0.0);
    assert_eq!(
        m.value(
            "harust_group_holder",
            &[("group", GROUP), ("node", "node-a")]
        ),
        1.0
    );
    assert_eq!(heard(&m, "node-a"), 1.0);

    let r = metrics_http(&bus_b, "POST /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
    let r = metrics_http(&bus_b, "GET /secrets HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
}

#[test]
fn metrics_without_a_daemon_is_not_running_or_503() {
    const T: &str = "metrics_without_a_daemon_is_not_running_or_503";
    if !support::privileged(T) || !support::netns::has_tool(T, "dbus-daemon", "--version") {
        return;
    }
    let empty = Bus::start();
    let out = harust(&["metrics", "--bus", empty.address()]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let r = metrics_http(empty.address(), "GET /metrics HTTP/1.0\r\n\r\n");
    let (status, _, body) = split_response(&r);
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable", "{r}");
    assert!(body.contains("harust is not running"), "{body}");
}
