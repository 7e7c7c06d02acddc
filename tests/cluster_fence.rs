//! Fencing with real parts (docs/SAFETY.md, "Fencing"): nodes A and B in
//! test namespaces (support::Topology), B's daemon reaching a real
//! `systemd --user` (sdsupport::UserManager) that runs the shipped
//! `units/harust-fence@.service`, whose `harust fence-run` runs
//! cluster-glue's real `/usr/sbin/stonith` with a real external plugin.
//!
//! The plugin is installed by the test into the manager's private mount
//! namespace only: a copy of /usr/lib/stonith/plugins/external with the
//! test's plugin added is bind-mounted over that directory there, so the
//! host never sees it and it goes with the namespace. The working plugin
//! asks the test's "power switch" (a pair of FIFOs, as a real plugin talks
//! to a PDU) to power node A off: the switch kills A's daemon (SIGKILL, by
//! the PID the test started it with) and takes A's link down. The failing
//! plugin fails like an unreachable device.
//!
//! Root only; under `CI=true` a machine without cluster-glue's stonith,
//! or unable to run the manager, fails these.

mod sdsupport;
mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sdsupport::UserManager;
use support::daemon::{Daemon, HaConfig, Launch};
use support::netns::run_ok;
use support::{Node, Topology, block_on, wait_until};

const VIP: &str = "198.18.1.100";
const LONG: Duration = Duration::from_secs(20);
const PLUGINS: &str = "/usr/lib/stonith/plugins/external";
const STONITH: &str = "/usr/sbin/stonith";

/// The external plugin: cluster-glue calls it with an action, the
/// device's parameters in the environment (here `pdu`, the switch's
/// directory).
const PLUGIN: &str = r#"#!/bin/sh
case "$1" in
gethosts) echo node-a ;;
reset|off)
    echo "$1 $2" > "$pdu/req" || exit 1
    read -r answer < "$pdu/resp"
    [ "$answer" = ok ] ;;
on|status) exit 0 ;;
getconfignames) echo pdu ;;
getinfo-devid|getinfo-devname) echo harust-test ;;
getinfo-devdescr) echo "harust test power switch" ;;
getinfo-devurl) echo "https://example.org/harust" ;;
getinfo-xml) echo '<parameters><parameter name="pdu" unique="1" required="1"><content type="string"/><shortdesc lang="en">switch</shortdesc></parameter></parameters>' ;;
*) exit 1 ;;
esac
"#;

/// A device that does not answer.
const BROKEN: &str = r#"#!/bin/sh
case "$1" in
reset|off) echo "harust-test-broken: no route to the power switch" >&2; exit 1 ;;
gethosts) echo node-a ;;
on|status) exit 1 ;;
getconfignames) echo pdu ;;
getinfo-devid|getinfo-devname) echo harust-test-broken ;;
getinfo-devdescr) echo "broken harust test switch" ;;
getinfo-devurl) echo "https://example.org/harust" ;;
getinfo-xml) echo '<parameters><parameter name="pdu" unique="1" required="1"><content type="string"/><shortdesc lang="en">switch</shortdesc></parameter></parameters>' ;;
*) exit 1 ;;
esac
"#;

/// Whether this machine can run these; under CI it must.
fn can_run(test: &str) -> bool {
    if !support::netns::privileged(test) {
        return false;
    }
    if !Path::new(STONITH).exists() || !Path::new(PLUGINS).is_dir() {
        sdsupport::skip(&format!(
            "{test}: cluster-glue's {STONITH} and {PLUGINS} are needed (apt-get install cluster-glue)"
        ));
        return false;
    }
    true
}

/// Test files the fence unit reads: not under /tmp, which the unit's
/// PrivateTmp= hides (and bound into the unit, in case the checkout is).
fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("harust-{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a scratch directory")
}

/// The manager, with the shipped fence template, a drop-in that points it
/// at the test's binary and B's configuration, and the test's plugins
/// mounted over cluster-glue's plugin directory in its namespace only.
fn manager(scratch: &Path, config: &Path) -> Option<UserManager> {
    let um = block_on(UserManager::start())?;
    let plugins = scratch.join("plugins");
    fs::create_dir_all(&plugins).unwrap();
    for e in fs::read_dir(PLUGINS).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), plugins.join(e.file_name())).unwrap();
        }
    }
    for (name, text) in [("harust-test", PLUGIN), ("harust-test-broken", BROKEN)] {
        let p = plugins.join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }
    run_ok(&[
        "nsenter",
        "--target",
        &um.mount_ns_pid().to_string(),
        "--mount",
        "--",
        "mount",
        "--bind",
        plugins.to_str().unwrap(),
        PLUGINS,
    ]);
    let template = fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("units/harust-fence@.service"),
    )
    .unwrap();
    um.write_unit("harust-fence@.service", &template);
    let dropin = um.unit_dir().join("harust-fence@.service.d");
    fs::create_dir_all(&dropin).unwrap();
    fs::write(
        dropin.join("test.conf"),
        format!(
            "[Service]\nEnvironment=HARUST_CONFIG_DIR={} HARUST_NODE=node-b\nExecStart=\nExecStart={} fence-run %i\n\
             # No journald in the test namespace: the unit's output goes here.\n\
             StandardOutput=append:{}\nStandardError=append:{}\n\
             # These three fail with 226/NAMESPACE under the test's user manager\n\
             # (found by trial); the rest of the shipped sandbox stays.\n\
             ProtectHome=no\nProtectKernelTunables=no\nProtectKernelLogs=no\n\
             # A checkout under /tmp would be hidden by PrivateTmp=.\n\
             BindReadOnlyPaths={}\nBindPaths={}\n",
            config.display(),
            env!("CARGO_BIN_EXE_harust"),
            fence_log(scratch).display(),
            fence_log(scratch).display(),
            env!("CARGO_BIN_EXE_harust"),
            scratch.display(),
        ),
    )
    .unwrap();
    block_on(um.daemon_reload());
    Some(um)
}

/// Where the fence unit's output goes.
fn fence_log(scratch: &Path) -> PathBuf {
    scratch.join("fence-unit.log")
}

/// Prints the manager's log and the fence unit's output if the test fails.
struct ShowLog<'a>(&'a UserManager, PathBuf);

impl Drop for ShowLog<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            let status = Command::new("busctl")
                .arg(format!("--address={}", self.0.bus_address()))
                .args([
                    "introspect",
                    "org.freedesktop.systemd1",
                    "/org/freedesktop/systemd1/unit/harust_2dfence_40node_2da_2eservice",
                    "org.freedesktop.systemd1.Service",
                ])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let exec: Vec<&str> = status
                .lines()
                .filter(|l| l.contains("ExecMain") || l.contains(".Result"))
                .collect();
            eprintln!(
                "----- user manager log -----\n{}\n----- fence unit -----\n{}\n{}",
                self.0.log(),
                exec.join("\n"),
                fs::read_to_string(&self.1).unwrap_or_default()
            );
        }
    }
}

/// The test's power switch: answers one request from the plugin by
/// powering node A off (its daemon killed by PID, its link down), and
/// records when it did.
struct Switch {
    dir: PathBuf,
    off_at: Arc<Mutex<Option<Instant>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Switch {
    fn start(dir: &Path, a_pid: i32, a_ns: String) -> Switch {
        let dir = dir.join("pdu");
        fs::create_dir_all(&dir).unwrap();
        for f in ["req", "resp"] {
            let p = dir.join(f);
            let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
            // SAFETY: a NUL-terminated path.
            assert_eq!(
                unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
                0,
                "mkfifo {p:?}"
            );
        }
        let off_at = Arc::new(Mutex::new(None));
        let thread = {
            let dir = dir.clone();
            let off_at = off_at.clone();
            thread::spawn(move || {
                let mut line = String::new();
                let req = fs::File::open(dir.join("req")).expect("opening req");
                BufReader::new(req).read_line(&mut line).unwrap();
                if !line.starts_with("reset node-a") && !line.starts_with("off node-a") {
                    return; // the test's own wake-up, or a wrong target
                }
                // SAFETY: the PID of the daemon this test started.
                unsafe { libc::kill(a_pid, libc::SIGKILL) };
                run_ok(&["ip", "-n", &a_ns, "link", "set", "eth0", "down"]);
                *off_at.lock().unwrap() = Some(Instant::now());
                let mut resp = fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("resp"))
                    .expect("opening resp");
                let _ = writeln!(resp, "ok");
            })
        };
        Switch {
            dir,
            off_at,
            thread: Some(thread),
        }
    }

    fn off_at(&self) -> Option<Instant> {
        *self.off_at.lock().unwrap()
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        // Wake a switch still waiting for a request: a non-blocking open
        // succeeds only while it waits.
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(mut f) = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dir.join("req"))
        {
            let _ = writeln!(f, "quit");
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn config(plugin: &str, pdu: &Path) -> HaConfig {
    // B fences A with the plugin; its parameters (the switch) in B's
    // credentials file, as name=value.
    HaConfig::fast()
        .vip_group(Node::A, &[VIP])
        .line(&format!("fence node-a stonith:external/{plugin}"))
        .file("fence.d/node-a", &format!("pdu={}\n", pdu.display()))
}

/// A's daemon, then B's with the manager and a D-Bus API.
fn start(
    t: &Topology,
    cfg: &HaConfig,
    um: &UserManager,
    bus: &support::bus::Bus,
) -> (Daemon, Daemon) {
    let mut a = Daemon::start(t.node(Node::A), Node::A, cfg);
    a.wait_ready(LONG);
    let mut b = Daemon::start_with(
        t.node(Node::B),
        Node::B,
        cfg,
        Launch::default()
            .systemd_bus(um.bus_address())
            .bus(bus.address()),
    );
    b.wait_ready(LONG);
    wait_until(LONG, "A to hold the VIP", || {
        t.node(Node::A).has_addr("eth0", VIP)
    });
    (a, b)
}

/// Copies B's configuration where the fence unit can read it.
fn unit_config(b_cfg: &HaConfig, scratch: &Path) -> PathBuf {
    let dir = scratch.join("config");
    fs::create_dir_all(&dir).unwrap();
    b_cfg.write(&dir);
    dir
}

#[test]
fn b_takes_the_vip_only_after_its_fence_unit_powered_a_off() {
    let test = "b_takes_the_vip_only_after_its_fence_unit_powered_a_off";
    if !can_run(test) {
        return;
    }
    let s = scratch("fence-ok");
    let cfg = config("harust-test", &s.path().join("pdu"));
    let unit_cfg = unit_config(&cfg, s.path());
    let Some(um) = manager(s.path(), &unit_cfg) else {
        return;
    };
    let _show = ShowLog(&um, fence_log(s.path()));
    let bus = support::bus::Bus::start();
    let t = Topology::new("fence-ok");
    let (mut a, mut b) = start(&t, &cfg, &um, &bus);
    let switch = Switch::start(s.path(), a.pid(), t.node(Node::A).name().to_owned());

    // A hangs, holding the VIP: B declares it dead and fences it.
    a.kill(libc::SIGSTOP);
    let start = Instant::now();
    let mut b_took: Option<Instant> = None;
    wait_until(LONG, "B to hold the VIP", || {
        let a_on = t.node(Node::A).has_addr("eth0", VIP) && switch.off_at().is_none();
        let b_on = t.node(Node::B).has_addr("eth0", VIP);
        assert!(
            !(a_on && b_on),
            "A (not yet powered off) and B both hold the VIP"
        );
        if b_on && b_took.is_none() {
            b_took = Some(Instant::now());
        }
        b_on
    });
    let off = switch.off_at().expect("the switch powered A off");
    assert!(
        off < b_took.unwrap(),
        "B took the VIP before the fence powered A off"
    );
    eprintln!(
        "fenced {:?} and took over {:?} after A froze",
        off - start,
        b_took.unwrap() - start
    );
    // The same order in B's log: the fence unit succeeded, then the takeover.
    b.wait_log(LONG, "took over group");
    let log = b.log();
    let fenced = log
        .find("node node-a was fenced")
        .expect("B logs the fence");
    let took = log.find("took over group").unwrap();
    assert!(
        fenced < took,
        "B logged the takeover before the fence:\n{log}"
    );
    assert!(log.contains("HARUST_EVENT=fencing"), "{log}");
    assert!(
        !t.node(Node::A)
            .exec(&["ip", "link", "show", "eth0"])
            .stdout
            .windows(5)
            .any(|w| w == b",UP,"),
        "A's link is down"
    );
    // Reaped by Drop; the switch killed it already.
    let _ = a.wait_exit(LONG);
    drop(switch);
}

#[test]
fn a_failing_fence_is_retried_and_never_leads_to_a_takeover_until_fence_confirm() {
    let test = "a_failing_fence_is_retried_and_never_leads_to_a_takeover_until_fence_confirm";
    if !can_run(test) {
        return;
    }
    let s = scratch("fence-fail");
    let cfg = config("harust-test-broken", &s.path().join("pdu"));
    let unit_cfg = unit_config(&cfg, s.path());
    let Some(um) = manager(s.path(), &unit_cfg) else {
        return;
    };
    let _show = ShowLog(&um, fence_log(s.path()));
    let bus = support::bus::Bus::start();
    let t = Topology::new("fence-fail");
    let (mut a, mut b) = start(&t, &cfg, &um, &bus);

    a.kill(libc::SIGSTOP);
    // The first attempt fails, and the retry 5 s later too; B never takes
    // the VIP meanwhile.
    let deadline = Instant::now() + LONG;
    loop {
        assert!(
            !t.node(Node::B).has_addr("eth0", VIP),
            "B took the VIP although no fence succeeded:\n{}",
            b.log()
        );
        if b.log().matches("HARUST_EVENT=fence-failed").count() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for two failed fences:\n{}",
            b.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    let log = b.log();
    let failed = log
        .lines()
        .find(|l| l.contains("HARUST_EVENT=fence-failed"))
        .unwrap();
    assert!(failed.starts_with("ERROR "), "{failed}");
    assert!(failed.contains("harust-fence@node-a.service"), "{failed}");
    let status = Command::new(env!("CARGO_BIN_EXE_harust"))
        .args(["status", "--bus", bus.address()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("fencing (fence: "), "harust status:\n{text}");
    assert!(
        b.status().is_some_and(|s| s.contains("; FENCING node-a")),
        "STATUS= {:?}",
        b.status()
    );

    // The operator powers A off by hand, then confirms.
    a.kill(libc::SIGKILL);
    t.node(Node::A)
        .exec_ok(&["ip", "link", "set", "eth0", "down"]);
    let out = Command::new(env!("CARGO_BIN_EXE_harust"))
        .args(["fence-confirm", "node-a", "--bus", bus.address()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fence-confirm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(LONG, "B to hold the VIP after fence-confirm", || {
        t.node(Node::B).has_addr("eth0", VIP)
    });
    b.wait_log(LONG, "confirmed off by the operator");
    let _ = a.wait_exit(LONG);
}
