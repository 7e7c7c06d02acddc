//! The daemon against systemd: real `harust daemon` processes in test
//! network namespaces (support::Topology), each node with its own real
//! `systemd --user` manager (sdsupport::UserManager) reached with
//! `--systemd-bus`, and the daemon's sd_notify messages read from the
//! socket the test binds (support::daemon).
//!
//! - Units: a group's VIP and units start in order and stop in reverse; a
//!   unit that fails to start, or a held unit killed from outside, sends the
//!   group to the peer; a killed holder's units start on the peer.
//! - sd_notify: READY=1 once the heartbeat port is bound; WATCHDOG=1 at half
//!   of WATCHDOG_USEC, from the loop (none while the process is stopped);
//!   RELOADING=1/READY=1 around SIGHUP; STATUS= follows a takeover.
//!
//! Units are simple services whose processes run in the manager's
//! namespaces, not in the node's network namespace. Root only; under
//! `CI=true` a machine that cannot run these fails them.

mod sdsupport;
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use sdsupport::UserManager;
use support::daemon::{Daemon, HaConfig, Launch};
use support::netns::{has_tool, run_ok};
use support::{Netns, Node, Topology, block_on, wait_until};

const VIP: &str = "198.18.1.100";
/// Bound for anything not timed: starting daemons and managers, unit jobs.
const LONG: Duration = Duration::from_secs(20);
/// `sleep infinity`, and nothing to restart it: a killed unit stays down.
const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep infinity\nRestart=no\n";

fn vip_resource() -> String {
    format!("IPaddr2::{VIP}/24/eth0")
}

/// The tools these tests use to observe, beyond what the helpers check.
fn tools_present(test: &str) -> bool {
    support::privileged(test) && has_tool(test, "busctl", "--version")
}

/// A user manager with `units` (name, unit file) installed. `None` when
/// skipped (the helper said so loudly, or failed under CI).
fn manager(units: &[(&str, &str)]) -> Option<UserManager> {
    block_on(async {
        let um = UserManager::start().await?;
        for (name, text) in units {
            um.write_unit(name, text);
        }
        um.daemon_reload().await;
        Some(um)
    })
}

/// systemd's object path label for `s` (bus_label_escape).
fn bus_label(s: &str) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect()
}

/// `ActiveState` of `unit`, read with busctl (the manager loads the unit
/// for the lookup).
fn unit_state(um: &UserManager, unit: &str) -> String {
    let out = run_ok(&[
        "busctl",
        &format!("--address={}", um.bus_address()),
        "get-property",
        "org.freedesktop.systemd1",
        &format!("/org/freedesktop/systemd1/unit/{}", bus_label(unit)),
        "org.freedesktop.systemd1.Unit",
        "ActiveState",
    ]);
    // `s "active"`
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("s ")
        .trim_matches('"')
        .to_owned()
}

fn wait_unit_state(um: &UserManager, who: &str, unit: &str, state: &str) {
    let mut last = String::new();
    let what = format!("{unit} on {who} to be {state}");
    wait_until(LONG, &what, || {
        last = unit_state(um, unit);
        last == state
    });
}

fn wait_vip(ns: &Netns, who: &str, present: bool) {
    let what = format!("{VIP} to be {} {who}", if present { "on" } else { "off" });
    wait_until(LONG, &what, || ns.has_addr("eth0", VIP) == present);
}

fn launch(um: &UserManager) -> Launch {
    Launch::default().systemd_bus(um.bus_address())
}

fn wait_status(d: &mut Daemon, prefix: &str) {
    let what = format!("{}'s STATUS= to start with {prefix:?}", d.node);
    d.wait(LONG, &what, |d| {
        d.status().is_some_and(|s| s.starts_with(prefix))
    });
}

// ---------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------

/// A test network namespace bind-mounted onto a file in a temporary
/// directory, so that processes in a user manager started *after* this
/// (whose private `/run` hides `/run/netns`, but whose mount namespace is a
/// copy of ours) can `nsenter --net=PATH`. Unmounted on drop.
struct PinnedNetns {
    dir: tempfile::TempDir,
}

impl PinnedNetns {
    fn new(ns: &Netns) -> PinnedNetns {
        let dir = tempfile::Builder::new()
            .prefix("harust-pin-")
            .tempdir()
            .expect("temporary directory for a netns pin");
        let pin = PinnedNetns { dir };
        fs::write(pin.path(), "").expect("creating the pin file");
        run_ok(&[
            "mount",
            "--bind",
            &format!("/run/netns/{}", ns.name()),
            pin.path().to_str().expect("utf-8 path"),
        ]);
        pin
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("netns")
    }
}

impl Drop for PinnedNetns {
    fn drop(&mut self) {
        match Command::new("umount").arg(self.path()).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "cleanup: umount {} failed: {}",
                self.path().display(),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cleanup: umount {}: {e}", self.path().display()),
        }
    }
}

/// Writes `dir/probe.sh EVENT UNIT`, which appends to `dir/order.log` one
/// line saying, at that moment, whether the VIP is on eth0 in the pinned
/// namespace and the state of `first` and `second`.
fn write_probe(dir: &Path, pin: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("probe.sh");
    let log = dir.join("order.log");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             PATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             vip=down\n\
             nsenter --net={pin} ip -o addr show dev eth0 | grep -q ' {VIP}/' && vip=up\n\
             first=$(systemctl --user is-active first.service)\n\
             second=$(systemctl --user is-active second.service)\n\
             echo \"$1 $2: vip=$vip first=$first second=$second\" >> {log}\n",
            pin = pin.display(),
            log = log.display(),
        ),
    )
    .expect("writing the probe script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod probe");
    (script, log)
}

#[test]
fn group_starts_vip_then_units_in_order_and_stops_in_reverse_on_sigterm() {
    if !tools_present("group_starts_vip_then_units_in_order") {
        return;
    }
    let t = Topology::new("sdord");
    let pin = PinnedNetns::new(&t.a);
    let scratch = tempfile::tempdir().expect("scratch directory");
    let (probe, order) = write_probe(scratch.path(), &pin.path());
    let unit = |name: &str| {
        format!(
            "[Service]\nExecStartPre={p} start {name}\nExecStart=/bin/sleep infinity\n\
             ExecStopPost={p} stop {name}\nRestart=no\n",
            p = probe.display()
        )
    };
    let (first, second) = (unit("first"), unit("second"));
    let Some(um) = manager(&[("first.service", &first), ("second.service", &second)]) else {
        return;
    };
    // `first` and `second` are bare names: harust maps them to .service.
    let cfg = HaConfig::fast().group(Node::A, &[&vip_resource(), "first", "second"]);
    let mut a = Daemon::start_with(&t.a, Node::A, &cfg, launch(&um));
    a.wait_ready(LONG);
    wait_status(&mut a, "active: holds 1/1");
    assert!(t.a.has_addr("eth0", VIP));
    assert_eq!(unit_state(&um, "first.service"), "active");
    assert_eq!(unit_state(&um, "second.service"), "active");

    a.kill(libc::SIGTERM);
    let status = a.wait_exit(LONG);
    assert!(status.success(), "SIGTERM: {status}\n{}", a.log());
    assert!(
        a.notes().iter().any(|n| n.contains("STOPPING=1")),
        "no STOPPING=1 in {:?}",
        a.notes()
    );
    let lines: Vec<String> = fs::read_to_string(&order)
        .expect("reading the order log")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            // The address first; each unit only once the one before is up.
            "start first: vip=up first=activating second=inactive",
            "start second: vip=up first=active second=activating",
            // In reverse: the address goes last.
            "stop second: vip=up first=active second=deactivating",
            "stop first: vip=up first=deactivating second=inactive",
        ],
        "the units' own record of the order"
    );
    assert!(!t.a.has_addr("eth0", VIP), "the VIP outlived the daemon");
    assert_eq!(unit_state(&um, "first.service"), "inactive");
    assert_eq!(unit_state(&um, "second.service"), "inactive");
}

/// Topology, one user manager per node with `units_a`/`units_b`, and both
/// daemons running `cfg` (READY). `None` when skipped.
struct Pair {
    a: Daemon,
    b: Daemon,
    um_a: UserManager,
    um_b: UserManager,
    t: Topology,
}

impl Pair {
    fn start(
        tag: &str,
        cfg: &HaConfig,
        units_a: &[(&str, &str)],
        units_b: &[(&str, &str)],
    ) -> Option<Pair> {
        let t = Topology::new(tag);
        let um_a = manager(units_a)?;
        let um_b = manager(units_b)?;
        let mut a = Daemon::start_with(&t.a, Node::A, cfg, launch(&um_a));
        let mut b = Daemon::start_with(&t.b, Node::B, cfg, launch(&um_b));
        a.wait_ready(LONG);
        b.wait_ready(LONG);
        Some(Pair {
            a,
            b,
            um_a,
            um_b,
            t,
        })
    }
}

#[test]
fn a_unit_that_fails_to_start_sends_the_group_to_the_peer() {
    if !tools_present("a_unit_that_fails_to_start_sends_the_group_to_the_peer") {
        return;
    }
    let broken = "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/false\n";
    let cfg = HaConfig::fast().group(Node::A, &[&vip_resource(), "web"]);
    let Some(mut p) = Pair::start(
        "sdfail",
        &cfg,
        &[("web.service", broken)],
        &[("web.service", SLEEPER)],
    ) else {
        return;
    };
    wait_status(&mut p.b, "active: holds 1/1");
    wait_vip(&p.t.b, "B", true);
    assert_eq!(unit_state(&p.um_b, "web.service"), "active");
    wait_vip(&p.t.a, "A", false);
    assert_eq!(unit_state(&p.um_a, "web.service"), "failed");
    assert!(
        p.a.log().contains("resource-failed"),
        "A did not log the failure:\n{}",
        p.a.log()
    );
    wait_status(&mut p.a, "standby: holds 0/1");
}

#[test]
fn a_held_unit_killed_from_outside_moves_the_group_to_the_peer() {
    if !tools_present("a_held_unit_killed_from_outside_moves_the_group_to_the_peer") {
        return;
    }
    let cfg = HaConfig::fast().group(Node::A, &[&vip_resource(), "web"]);
    let Some(mut p) = Pair::start(
        "sdkill",
        &cfg,
        &[("web.service", SLEEPER)],
        &[("web.service", SLEEPER)],
    ) else {
        return;
    };
    wait_status(&mut p.a, "active: holds 1/1");
    wait_status(&mut p.b, "standby: holds 0/1");
    wait_unit_state(&p.um_a, "A", "web.service", "active");
    assert_eq!(unit_state(&p.um_b, "web.service"), "inactive");

    // What an operator's `systemctl kill -s KILL web` does.
    run_ok(&[
        "busctl",
        &format!("--address={}", p.um_a.bus_address()),
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "KillUnit",
        "ssi",
        "web.service",
        "all",
        "9",
    ]);
    wait_status(&mut p.b, "active: holds 1/1");
    wait_unit_state(&p.um_b, "B", "web.service", "active");
    wait_vip(&p.t.b, "B", true);
    wait_vip(&p.t.a, "A", false);
    assert_eq!(unit_state(&p.um_a, "web.service"), "failed");
    // A noticed through its unit watch, with systemd's reason.
    let log = p.a.log();
    assert!(
        log.contains("unit web.service is failed (signal)"),
        "A's log does not show the unit going down:\n{log}"
    );
}

#[test]
fn killing_the_holder_starts_its_units_on_the_peer() {
    if !tools_present("killing_the_holder_starts_its_units_on_the_peer") {
        return;
    }
    let cfg = HaConfig::fast().group(Node::A, &[&vip_resource(), "first", "second"]);
    let units = [("first.service", SLEEPER), ("second.service", SLEEPER)];
    let Some(mut p) = Pair::start("sdcrash", &cfg, &units, &units) else {
        return;
    };
    wait_status(&mut p.a, "active: holds 1/1");
    wait_unit_state(&p.um_a, "A", "second.service", "active");
    for u in ["first.service", "second.service"] {
        assert_eq!(unit_state(&p.um_b, u), "inactive", "{u} on B");
    }

    p.a.kill(libc::SIGKILL);
    p.a.wait_exit(LONG);
    wait_status(&mut p.b, "active: holds 1/1");
    wait_vip(&p.t.b, "B", true);
    for u in ["first.service", "second.service"] {
        assert_eq!(unit_state(&p.um_b, u), "active", "{u} on B");
    }
}

/// A `u64` property of `unit` on the Unit interface, read with busctl.
fn unit_u64(um: &UserManager, unit: &str, property: &str) -> u64 {
    let out = run_ok(&[
        "busctl",
        &format!("--address={}", um.bus_address()),
        "get-property",
        "org.freedesktop.systemd1",
        &format!("/org/freedesktop/systemd1/unit/{}", bus_label(unit)),
        "org.freedesktop.systemd1.Unit",
        property,
    ]);
    // `t 123456`
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .trim_start_matches("t ")
        .parse()
        .unwrap_or_else(|_| panic!("{unit} {property}: {text:?}"))
}

/// Issue 12: "a group with three units ahead of its addresses adds nothing
/// beyond systemd's own job times". After a kill -9 of the holder, the
/// peer starts the three units one after the other, each when the
/// previous one's job is done: between one unit becoming active and the
/// next one's activation starting, by systemd's own monotonic timestamps,
/// only harust's step (JobRemoved -> engine -> StartUnit) passes.
#[test]
fn a_three_unit_group_takes_over_in_systemds_job_times() {
    if !tools_present("a_three_unit_group_takes_over_in_systemds_job_times") {
        return;
    }
    // Each start takes systemd about 100 ms (ExecStartPre), so a job's own
    // time is visible beside harust's steps between jobs.
    let slow =
        "[Service]\nExecStartPre=/bin/sleep 0.1\nExecStart=/bin/sleep infinity\nRestart=no\n";
    let names = ["first.service", "second.service", "third.service"];
    let cfg = HaConfig::fast().group(Node::A, &["first", "second", "third", &vip_resource()]);
    let units: Vec<(&str, &str)> = names.iter().map(|n| (*n, slow)).collect();
    let Some(mut p) = Pair::start("sd3units", &cfg, &units, &units) else {
        return;
    };
    wait_status(&mut p.a, "active: holds 1/1");
    wait_vip(&p.t.a, "A", true);

    p.a.kill(libc::SIGKILL);
    p.a.wait_exit(LONG);
    wait_status(&mut p.b, "active: holds 1/1");
    wait_vip(&p.t.b, "B", true);

    // Activation started (InactiveExit) and done (ActiveEnter), in µs.
    let began: Vec<u64> = names
        .iter()
        .map(|u| unit_u64(&p.um_b, u, "InactiveExitTimestampMonotonic"))
        .collect();
    let active: Vec<u64> = names
        .iter()
        .map(|u| unit_u64(&p.um_b, u, "ActiveEnterTimestampMonotonic"))
        .collect();
    let jobs: u64 = began.iter().zip(&active).map(|(b, a)| a - b).sum();
    let steps: Vec<u64> = (1..3).map(|i| began[i] - active[i - 1]).collect();
    let total = active[2] - began[0];
    eprintln!(
        "three units on B: {total} µs from the first unit's start to the third active; \
         systemd's jobs {jobs} µs; harust between jobs {steps:?} µs"
    );
    assert!(
        began.windows(2).all(|w| w[0] < w[1]) && active.windows(2).all(|w| w[0] <= w[1]),
        "units not started in order: began {began:?}, active {active:?}"
    );
    // Each job waits for the previous one (no overlap), and harust's step
    // is a few D-Bus round trips: milliseconds, tens on a loaded machine
    // with a debug build. The bound catches a step that waits on a timer
    // or polls.
    for (i, s) in steps.iter().enumerate() {
        assert!(
            *s <= 250_000,
            "{} µs between {} active and {} starting",
            s,
            names[i],
            names[i + 1]
        );
    }
}

// ---------------------------------------------------------------------
// sd_notify
// ---------------------------------------------------------------------

/// One daemon, node-a, alone, holding one VIP group.
fn lone(tag: &str, launch: Launch) -> (Topology, Daemon) {
    let t = Topology::new(tag);
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let a = Daemon::start_with(&t.a, Node::A, &cfg, launch);
    (t, a)
}

#[test]
fn ready_is_sent_once_the_heartbeat_port_is_bound() {
    if !support::privileged("ready_is_sent_once_the_heartbeat_port_is_bound")
        || !has_tool("ready_is_sent_once_the_heartbeat_port_is_bound", "ss", "-V")
    {
        return;
    }
    let (t, mut a) = lone("sdready", Launch::default());
    a.wait_ready(LONG);
    let bound = t.a.exec_ok(&["ss", "-H", "-u", "-l", "-n", "sport = :694"]);
    let bound = String::from_utf8_lossy(&bound.stdout);
    assert!(
        bound.contains(":694"),
        "READY=1 arrived but nothing listens on udp/694: {bound:?}"
    );
    let readies = a.notes().iter().filter(|n| n.contains("READY=1")).count();
    assert_eq!(readies, 1, "{:?}", a.notes());
}

/// NOTIFY_SOCKET set to something unusable: the daemon runs on, and says
/// in its log why systemd will never hear READY=1.
fn unusable_notify_socket_is_logged(test: &str, tag: &str, socket: &str, expect: &str) {
    if !support::privileged(test) {
        return;
    }
    let (_t, mut a) = lone(tag, Launch::default().env("NOTIFY_SOCKET", socket));
    a.wait_log(LONG, expect);
    let log = a.log();
    let line = log
        .lines()
        .find(|l| l.contains(expect))
        .expect("the line just waited for");
    assert!(line.contains("ERROR"), "not logged as an error: {line}");
    assert!(
        line.contains(socket) && line.contains("Type=notify start will time out"),
        "the error names neither the socket nor the consequence: {line}"
    );
}

#[test]
fn a_notify_socket_nobody_listens_on_is_logged_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-socket");
    unusable_notify_socket_is_logged(
        "a_notify_socket_nobody_listens_on_is_logged_as_an_error",
        "sdnone",
        missing.to_str().unwrap(),
        "cannot send READY=1 to NOTIFY_SOCKET=",
    );
}

#[test]
fn a_notify_socket_address_too_long_is_logged_as_an_error() {
    // sockaddr_un holds 108 bytes: this path cannot even be addressed.
    let long = format!("/tmp/{}", "n".repeat(200));
    unusable_notify_socket_is_logged(
        "a_notify_socket_address_too_long_is_logged_as_an_error",
        "sdlong",
        &long,
        "cannot be used",
    );
}

fn is_ping(note: &str) -> bool {
    note.lines().any(|l| l == "WATCHDOG=1")
}

fn pings(d: &Daemon) -> Vec<Instant> {
    d.timed_notes()
        .into_iter()
        .filter(|(_, n)| is_ping(n))
        .map(|(t, _)| t)
        .collect()
}

/// Whether every thread of `pid` is stopped (state `T` in its stat).
fn all_threads_stopped(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|t| {
        fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // `pid (comm) S ...`: the state follows the last ')'.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

#[test]
fn watchdog_is_set_from_the_deadtime_pings_at_half_and_stops_while_the_loop_is_stopped() {
    if !support::privileged("watchdog_pings_at_half_watchdog_usec") {
        return;
    }
    // The unit's bound (WatchdogSec=5), then the daemon's own: half its
    // deadtime of 800 ms.
    const WATCHDOG: Duration = Duration::from_millis(400);
    // WATCHDOG_PID unset: the pings are meant for whoever set the variable.
    let t = Topology::new("sdwd");
    let cfg = HaConfig::fast()
        .timings(50, 800, 1600)
        .vip_group(Node::A, &[VIP]);
    let mut a = Daemon::start_with(
        &t.a,
        Node::A,
        &cfg,
        Launch::default().env("WATCHDOG_USEC", "5000000"),
    );
    a.wait_ready(LONG);
    a.wait(LONG, "WATCHDOG_USEC= from the daemon", |d| {
        d.notes()
            .iter()
            .any(|n| n.lines().any(|l| l == "WATCHDOG_USEC=400000"))
    });

    // About 200 ms apart: take a dozen. The times are when the test read
    // them, so on a loaded machine single gaps vary; their mean does not.
    a.wait(LONG, "a dozen WATCHDOG=1", |d| pings(d).len() >= 12);
    let p = pings(&a);
    let gaps: Vec<Duration> = p.windows(2).map(|w| w[1] - w[0]).collect();
    let mean = (p[p.len() - 1] - p[0]) / gaps.len() as u32;
    println!("watchdog pings: mean interval {mean:?}, gaps {gaps:?}");
    assert!(
        (Duration::from_millis(100)..=Duration::from_millis(300)).contains(&mean),
        "a watchdog of 400 ms should give pings about 200 ms apart, got {mean:?}: {gaps:?}"
    );

    // A stopped loop sends nothing, so the manager would kill it. Once
    // every thread is stopped, a mark queued behind whatever the daemon
    // sent before separates "before" from "while stopped".
    a.kill(libc::SIGSTOP);
    let pid = a.pid();
    wait_until(LONG, "every thread of the daemon to stop", || {
        all_threads_stopped(pid)
    });
    const MARK: &str = "TEST: the daemon is stopped";
    a.mark_notes(MARK);
    // An observation window (nothing may arrive), not a wait for an event.
    thread::sleep(WATCHDOG * 2 + Duration::from_millis(200));
    let while_stopped: Vec<String> = a.notes().into_iter().skip_while(|n| n != MARK).collect();
    a.kill(libc::SIGCONT);
    assert_eq!(
        while_stopped.first().map(String::as_str),
        Some(MARK),
        "the test's mark never arrived"
    );
    assert!(
        !while_stopped.iter().any(|n| is_ping(n)),
        "WATCHDOG=1 while the daemon was stopped: {while_stopped:?}"
    );
    a.wait(LONG, "WATCHDOG=1 again after SIGCONT", |d| {
        let after: Vec<String> = d.notes().into_iter().skip_while(|n| n != MARK).collect();
        after.iter().filter(|n| is_ping(n)).count() >= 3
    });
}

#[test]
fn sighup_reports_reloading_then_ready() {
    if !support::privileged("sighup_reports_reloading_then_ready") {
        return;
    }
    let (_t, mut a) = lone("sdhup", Launch::default());
    a.wait_ready(LONG);
    let before = a.notes().len();
    a.kill(libc::SIGHUP);
    a.wait(LONG, "READY=1 after RELOADING=1", |d| {
        let notes = d.notes();
        let after = notes.get(before..).unwrap_or_default();
        let reloading = after.iter().position(|n| n.contains("RELOADING=1"));
        reloading.is_some_and(|i| after[i + 1..].iter().any(|n| n.contains("READY=1")))
    });
    let notes = a.notes();
    let reloading = notes[before..]
        .iter()
        .find(|n| n.contains("RELOADING=1"))
        .unwrap();
    assert!(
        reloading.contains("MONOTONIC_USEC="),
        "RELOADING=1 needs MONOTONIC_USEC for Type=notify-reload: {reloading:?}"
    );
}

#[test]
fn status_goes_from_standby_to_active_on_takeover() {
    if !support::privileged("status_goes_from_standby_to_active_on_takeover") {
        return;
    }
    let t = Topology::new("sdstat");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let mut a = Daemon::start(&t.a, Node::A, &cfg);
    let mut b = Daemon::start(&t.b, Node::B, &cfg);
    a.wait_ready(LONG);
    b.wait_ready(LONG);
    wait_status(&mut a, "active: holds 1/1 groups; peers up: node-b");
    wait_status(&mut b, "standby: holds 0/1 groups; peers up: node-a");

    a.kill(libc::SIGKILL);
    a.wait_exit(LONG);
    wait_status(&mut b, "active: holds 1/1 groups; no peer up");
    wait_vip(&t.b, "B", true);
    // Every STATUS= B sent, in order: standby came before active.
    let statuses: Vec<String> = b
        .notes()
        .iter()
        .flat_map(|n| {
            n.lines()
                .filter_map(|l| l.strip_prefix("STATUS="))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let standby = statuses
        .iter()
        .position(|s| s.starts_with("standby: holds 0/1"));
    let active = statuses
        .iter()
        .rposition(|s| s.starts_with("active: holds 1/1"));
    assert!(
        matches!((standby, active), (Some(s), Some(a)) if s < a),
        "B's STATUS= lines: {statuses:#?}"
    );
}

// ---------------------------------------------------------------------
// Event hooks: harust-event@.service
// ---------------------------------------------------------------------

/// The hook template: a oneshot that logs its start and end, sleeping in
/// between (2 s for `acquiring`, which then fails).
fn write_hook(dir: &Path) -> (PathBuf, PathBuf) {
    let script = dir.join("hook.sh");
    let log = dir.join("hooks.log");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo \"start $1\" >> {log}\n\
             case $1 in acquiring:*) sleep 2 ;; *) sleep 0.2 ;; esac\n\
             echo \"end $1\" >> {log}\n\
             case $1 in acquiring:*) exit 1 ;; esac\n",
            log = log.display(),
        ),
    )
    .expect("writing the hook script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod hook");
    (script, log)
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn event_hooks_run_one_at_a_time_in_order_without_delaying_the_takeover() {
    const T: &str = "event_hooks_run_one_at_a_time_in_order_without_delaying_the_takeover";
    if !tools_present(T) {
        return;
    }
    let scratch = tempfile::tempdir().expect("scratch directory");
    let (hook, log) = write_hook(scratch.path());
    let template = format!("[Service]\nType=oneshot\nExecStart={} %I\n", hook.display());
    let Some(um) = manager(&[("harust-event@.service", &template)]) else {
        return;
    };
    let t = Topology::new("sdhook");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let mut a = Daemon::start_with(&t.a, Node::A, &cfg, launch(&um));
    let group = vip_resource();

    // The acquiring hook takes 2 s; the address is up long before it ends.
    wait_vip(&t.a, "node-a", true);
    let seen = read_lines(&log);
    assert!(
        !seen.contains(&format!("end acquiring:{group}")),
        "the takeover waited for the acquiring hook: {seen:?}"
    );
    wait_until(LONG, "the acquired hook to end", || {
        read_lines(&log).contains(&format!("end acquired:{group}"))
    });

    a.kill(libc::SIGTERM);
    let status = a.wait_exit(LONG);
    assert!(status.success(), "SIGTERM: {status}\n{}", a.log());

    // Strictly one at a time: every start is followed by its own end.
    let lines = read_lines(&log);
    for pair in lines.chunks(2) {
        let [start, end] = pair else {
            panic!("a hook started and did not end: {lines:?}");
        };
        assert_eq!(
            start.strip_prefix("start "),
            end.strip_prefix("end "),
            "hooks overlapped: {lines:?}"
        );
    }
    // In order: the group's transitions, the released one before exit.
    let group_events: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("start "))
        .filter_map(|i| i.strip_suffix(&format!(":{group}")))
        .collect();
    assert_eq!(
        group_events,
        ["acquiring", "acquired", "releasing", "released"],
        "{lines:?}"
    );
    // The failed one is logged once and not run again.
    let daemon_log = a.log();
    let failed: Vec<&str> = daemon_log
        .lines()
        .filter(|l| l.contains("hook harust-event@acquiring:") && l.contains("failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{daemon_log}");
    assert!(failed[0].contains("ERROR"), "{}", failed[0]);
}

#[test]
fn cluster_events_run_hooks_for_the_peer() {
    const T: &str = "cluster_events_run_hooks_for_the_peer";
    if !tools_present(T) {
        return;
    }
    let scratch = tempfile::tempdir().expect("scratch directory");
    let (hook, log) = write_hook(scratch.path());
    let template = format!("[Service]\nType=oneshot\nExecStart={} %I\n", hook.display());
    let Some(um) = manager(&[("harust-event@.service", &template)]) else {
        return;
    };
    let t = Topology::new("sdhkpeer");
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let _a = Daemon::start_with(&t.a, Node::A, &cfg, launch(&um));
    let b = Daemon::start(&t.b, Node::B, &cfg);
    wait_until(LONG, "node-a's peer-up hook for node-b", || {
        read_lines(&log).contains(&"end peer-up:node-b".to_string())
    });
    b.kill(libc::SIGKILL);
    wait_until(LONG, "node-a's peer-dead hook for node-b", || {
        read_lines(&log).contains(&"end peer-dead:node-b".to_string())
    });
    let lines = read_lines(&log);
    let up = lines.iter().position(|l| l == "start peer-up:node-b");
    let dead = lines.iter().position(|l| l == "start peer-dead:node-b");
    assert!(
        matches!((up, dead), (Some(u), Some(d)) if u < d),
        "peer-up must come before peer-dead: {lines:?}"
    );
}

// ---------------------------------------------------------------------
// heartbeat resource agents in a running group

/// A haresources group as heartbeat users write it: an address without a
/// prefix (acquired with its connected route's /24) and a `Filesystem`
/// (a loop-backed ext4 image, mounted through a transient mount unit).
/// A holds it; on SIGTERM A unmounts and B mounts.
#[test]
fn heartbeat_filesystem_and_prefixless_address_fail_over() {
    if !tools_present("heartbeat_filesystem_and_prefixless_address_fail_over") {
        return;
    }
    for tool in ["/usr/sbin/mkfs.ext4", "/dev/loop-control"] {
        if !Path::new(tool).exists() {
            sdsupport::skip(&format!("{tool} is missing (e2fsprogs, loop devices)"));
            return;
        }
    }
    let scratch = tempfile::tempdir().expect("scratch directory");
    let content = scratch.path().join("content");
    fs::create_dir_all(&content).unwrap();
    fs::write(content.join("hello"), "data\n").unwrap();
    let image = scratch.path().join("data.img");
    let mkfs = Command::new("/usr/sbin/mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&content)
        .arg(&image)
        .arg("8M")
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "mkfs.ext4: {mkfs:?}");
    let mnt = scratch.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let unit = harust::config::unit::path_unit_name(&mnt.display().to_string(), "mount");
    // Read-only: both managers may mount the same image, one at a time.
    let fs_res = format!(
        "Filesystem::{}::{}::ext4::loop,ro",
        image.display(),
        mnt.display()
    );
    let cfg = HaConfig::fast().group(Node::A, &[VIP, &fs_res]);
    let Some(mut p) = Pair::start("sdagent", &cfg, &[], &[]) else {
        return;
    };
    wait_status(&mut p.a, "active: holds 1/1");
    let a =
        p.t.a
            .addrs("eth0")
            .into_iter()
            .find(|a| a["local"].as_str() == Some(VIP))
            .expect("the address on A");
    assert_eq!(a["prefixlen"], 24, "the connected route's prefix: {a}");
    wait_unit_state(&p.um_a, "A", &unit, "active");
    assert_eq!(unit_state(&p.um_b, &unit), "inactive");

    p.a.kill(libc::SIGTERM);
    let status = p.a.wait_exit(LONG);
    assert!(status.success(), "SIGTERM: {status}\n{}", p.a.log());
    wait_status(&mut p.b, "active: holds 1/1");
    wait_unit_state(&p.um_b, "B", &unit, "active");
    assert_eq!(unit_state(&p.um_a, &unit), "inactive", "A unmounted");
    wait_vip(&p.t.b, "B", true);
}
