//! `harust::systemd::notify` against a datagram socket the test binds, and
//! against a real systemd user manager (Type=notify, see tests/sdsupport).
//!
//! Tests that need the process environment (`NOTIFY_SOCKET`, `WATCHDOG_*`)
//! run this test binary again as a child with that environment, selecting
//! [`notify_probe`] (which does nothing unless `HARUST_NOTIFY_PROBE` is set):
//! the test process's own environment is never changed.

mod sdsupport;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use harust::systemd::Notifier;

const PROBE_ENV: &str = "HARUST_NOTIFY_PROBE";

/// A bound datagram socket in a fresh tempdir, like systemd's notify socket.
struct Listener {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl Listener {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Listener {
            _dir: dir,
            path,
            socket,
        }
    }

    /// The next datagram, waiting at most the read timeout.
    fn recv(&self) -> String {
        recv(&self.socket)
    }
}

fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("waiting for an sd_notify datagram");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// Nothing is queued (call after the sender is done: no waiting needed).
fn assert_nothing_queued(socket: &UnixDatagram) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!(
            "expected no datagram, got {:?}",
            other.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
        ),
    }
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[test]
fn each_message_is_what_systemd_expects() {
    let l = Listener::new();
    let n = Notifier::with_socket(&l.path).unwrap();
    assert!(n.is_enabled());

    n.ready().unwrap();
    assert_eq!(l.recv(), "READY=1\n");
    n.status("active: holds 2/2 groups\npeer up\r\nX=1")
        .unwrap();
    assert_eq!(l.recv(), "STATUS=active: holds 2/2 groups peer up  X=1\n");
    n.stopping().unwrap();
    assert_eq!(l.recv(), "STOPPING=1\n");
    n.watchdog().unwrap();
    assert_eq!(l.recv(), "WATCHDOG=1\n");
}

#[test]
fn the_daemon_sets_its_own_watchdog_from_its_deadtime() {
    let l = Listener::new();
    // The unit's WatchdogSec=5 bounds the start; after it, half the
    // deadtime of 800 ms governs, and pings come at half of that.
    let mut n = Notifier::with_socket(&l.path)
        .unwrap()
        .with_watchdog(Some(Duration::from_millis(2500)));
    let own = harust::engine::watchdog_timeout(Duration::from_millis(800));
    assert_eq!(own, Duration::from_millis(400));
    n.override_watchdog(own).unwrap();
    assert_eq!(l.recv(), "WATCHDOG_USEC=400000\n");
    assert_eq!(n.watchdog_interval(), Some(Duration::from_millis(200)));
    // Never below 200 ms, which a loaded machine could miss.
    assert_eq!(
        harust::engine::watchdog_timeout(Duration::from_millis(100)),
        Duration::from_millis(200)
    );
}

#[test]
fn no_watchdog_is_set_when_the_manager_runs_none_for_us() {
    let l = Listener::new();
    let mut n = Notifier::with_socket(&l.path).unwrap();
    n.override_watchdog(Duration::from_millis(400)).unwrap();
    assert_eq!(n.watchdog_interval(), None);
    assert_nothing_queued(&l.socket);
}

#[test]
fn reloading_carries_the_monotonic_clock() {
    let l = Listener::new();
    let n = Notifier::with_socket(&l.path).unwrap();
    let before = monotonic_usec();
    n.reloading().unwrap();
    let after = monotonic_usec();
    let msg = l.recv();
    let lines: Vec<&str> = msg.lines().collect();
    assert_eq!(lines[0], "RELOADING=1", "{msg:?}");
    let usec: u64 = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {msg:?}"))
        .parse()
        .unwrap();
    assert!(
        (before..=after).contains(&usec),
        "{usec} not in {before}..={after}"
    );
    assert_eq!(lines.len(), 2);
}

#[test]
fn a_disabled_notifier_sends_nothing_and_does_not_fail() {
    let n = Notifier::disabled();
    assert!(!n.is_enabled());
    n.ready().unwrap();
    n.status("x").unwrap();
    n.reloading().unwrap();
    n.stopping().unwrap();
    n.watchdog().unwrap();
    assert_eq!(n.watchdog_interval(), None);
}

/// Run [`notify_probe`] in a child with `env` (and nothing else of ours);
/// its stdout.
fn run_probe(env: &[(&str, &str)]) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "notify_probe", "--nocapture", "--test-threads=1"])
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env(PROBE_ENV, "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn from_env_sends_nothing_without_notify_socket() {
    let l = Listener::new();
    let out = run_probe(&[]);
    assert!(out.contains("probe: enabled=false"), "{out}");
    // The child has exited: anything it sent would be queued by now.
    assert_nothing_queued(&l.socket);
}

#[test]
fn from_env_follows_notify_socket_and_halves_watchdog_usec() {
    let l = Listener::new();
    let out = run_probe(&[
        ("NOTIFY_SOCKET", l.path.to_str().unwrap()),
        ("WATCHDOG_USEC", "3000000"),
    ]);
    assert!(out.contains("probe: enabled=true"), "{out}");
    assert!(out.contains("probe: watchdog=Some(1.5s)"), "{out}");
    assert_eq!(l.recv(), "STATUS=probe says hi\n");
    assert_eq!(l.recv(), "READY=1\n");
    assert_eq!(l.recv(), "WATCHDOG=1\n");
}

#[test]
fn a_watchdog_for_another_pid_is_not_ours() {
    let out = run_probe(&[("WATCHDOG_USEC", "3000000"), ("WATCHDOG_PID", "1")]);
    assert!(out.contains("probe: watchdog=None"), "{out}");
}

#[test]
fn from_env_understands_abstract_socket_addresses() {
    let name = format!("harust-test-notify-{}", std::process::id());
    let socket =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let out = run_probe(&[("NOTIFY_SOCKET", &format!("@{name}"))]);
    assert!(out.contains("probe: enabled=true"), "{out}");
    assert_eq!(recv(&socket), "STATUS=probe says hi\n");
    assert_eq!(recv(&socket), "READY=1\n");
}

/// Not a test on its own: the child side of the tests above, and the main
/// process of the Type=notify unit below. Does nothing unless
/// `HARUST_NOTIFY_PROBE` is set.
#[test]
fn notify_probe() {
    let Ok(mode) = std::env::var(PROBE_ENV) else {
        return;
    };
    let n = Notifier::from_env().unwrap();
    println!("probe: enabled={}", n.is_enabled());
    println!("probe: watchdog={:?}", n.watchdog_interval());
    if mode == "service" {
        // Under systemd: say what we were told, be ready, and stay up.
        let wd = n.watchdog_interval();
        n.status(&format!("serving\nwatchdog every {wd:?}"))
            .unwrap();
        n.ready().unwrap();
        loop {
            n.watchdog().unwrap();
            std::thread::park_timeout(wd.unwrap_or(Duration::from_secs(3600)));
        }
    }
    n.status("probe\nsays hi").unwrap();
    n.ready().unwrap();
    if n.watchdog_interval().is_some() {
        n.watchdog().unwrap();
    }
}

#[tokio::test]
async fn a_real_manager_sees_ready_status_and_our_watchdog_pid() {
    let Some(um) = sdsupport::UserManager::start().await else {
        return;
    };
    let exe = std::env::current_exe().unwrap();
    um.write_unit(
        "notify-probe.service",
        &format!(
            "[Service]\nType=notify\nEnvironment={PROBE_ENV}=service\n\
             ExecStart={} --exact notify_probe --nocapture --test-threads=1\n\
             WatchdogSec=4\nTimeoutStartSec=30\n",
            exe.display()
        ),
    );
    um.daemon_reload().await;
    let units = harust::systemd::Units::connect(Some(um.bus_address()))
        .await
        .unwrap();
    // Type=notify: the start job is done only once READY=1 arrived.
    units
        .start("notify-probe.service")
        .await
        .expect("starting the Type=notify probe");

    let conn = um.connect().await;
    let manager = zbus_systemd::systemd1::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let path = manager
        .load_unit("notify-probe.service".into())
        .await
        .unwrap();
    let service = zbus_systemd::systemd1::ServiceProxy::builder(&conn)
        .path(path)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .unwrap();
    // WATCHDOG_PID is the probe's own pid, so the interval is half of 4 s.
    assert_eq!(
        service.status_text().await.unwrap(),
        "serving watchdog every Some(2s)"
    );
}
