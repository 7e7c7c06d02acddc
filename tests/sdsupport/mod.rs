//! Test support: a real systemd user manager and a real journald, each in a
//! private mount + pid namespace, for tests run as root on a machine where
//! systemd need not be PID 1.
//!
//! - [`UserManager::start`]: `systemd --user` with its own session bus. The
//!   bus socket and the unit directory live in a temporary directory on the
//!   real filesystem, so the test process (outside the namespace) connects to
//!   [`UserManager::bus_address`] and drops units into
//!   [`UserManager::unit_dir`].
//! - [`Journald::start`]: a standalone systemd-journald whose `/run` is a
//!   temporary directory; [`Journald::command`] runs a process inside its
//!   namespace, where the journal socket is at the real path.
//!
//! Both tear everything down in `Drop`: they kill the `unshare` process they
//! started (by PID), whose `--kill-child` takes the namespace's init, and with
//! it every process in the namespace. Every wait is bounded and names what it
//! waits for.
//!
//! Missing tools or privileges: [`skip`] fails the test under `CI=true`, and
//! otherwise prints `SKIPPED: <reason>` loudly; the `start` functions return
//! `None` then, and the test returns.
//!
//! What the manager needs, found by trial (see the scripts next to this file):
//! `/run/systemd/system` must exist, it must have a cgroup of its own named
//! `…/user@0.service`, and it must not be PID 1 of its namespace. It attaches
//! to a session bus only through its own `dbus.socket`/`dbus.service` (from
//! the dbus-user-session package).
//!
//! Debian packages these need: `systemd` (the manager, journald,
//! journalctl), `dbus-daemon`, `dbus-user-session`, `util-linux` (unshare,
//! nsenter). Root, and a writable cgroup filesystem (hybrid or unified).

#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

/// How long a manager or journald gets to come up (generous: tests run in
/// parallel on small machines).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

const SCRIPT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdsupport");
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// A privileged test cannot run here. Under `CI=true` that is a failure;
/// otherwise say so loudly on stderr (the caller then returns).
pub fn skip(reason: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot run privileged test: {reason} (CI=true: not skipping)");
    }
    // Straight to the process's stderr: libtest captures eprintln! of
    // passing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// The first unmet requirement among root and `files`, if any.
fn missing(files: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root".into());
    }
    files
        .iter()
        .find(|f| !Path::new(f).exists())
        .map(|f| format!("{f} is missing"))
}

/// Poll `check` until it yields a value, at most `timeout`; panic naming
/// `what` otherwise. For conditions with no event to wait on (a socket file
/// appearing); the pause between checks is short and never the
/// synchronisation itself.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The blocking twin of [`wait_for`], for `Drop` and non-async tests.
pub fn wait_for_blocking<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A unique name for this process and call.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `unshare --mount --pid --fork --kill-child --mount-proc sh SCRIPT ARGS`.
/// The unshare process dies with the thread that spawned it (PDEATHSIG), so
/// even a test killed outright leaves nothing behind.
fn namespaced(
    script: &str,
    args: &[&str],
    env: &[(&str, PathBuf)],
    log: &Path,
) -> std::io::Result<Child> {
    let log = File::create(log)?;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
    ])
    .arg(Path::new(SCRIPT_DIR).join(script))
    .args(args)
    .env_clear()
    .env("PATH", PATH)
    .env("LANG", "C.UTF-8")
    .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Kill the namespace by killing its `unshare` (by PID), and reap it.
fn kill_namespace(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A `systemd --user` manager with its own session bus.
pub struct UserManager {
    child: Child,
    dir: tempfile::TempDir,
    cgroups: Vec<PathBuf>,
    bus_address: String,
}

impl UserManager {
    /// Start a manager and wait until `org.freedesktop.systemd1` is on its
    /// bus. `None` (after [`skip`]) if this machine cannot run one.
    pub async fn start() -> Option<Self> {
        if let Some(why) = missing(&[
            "/lib/systemd/systemd",
            "/usr/bin/unshare",
            "/usr/bin/dbus-daemon",
            "/usr/lib/systemd/user/dbus.socket",
            "/usr/lib/systemd/user/dbus.service",
        ]) {
            skip(&format!("systemd user manager: {why}"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("harust-um-")
            .tempdir()
            .expect("temporary directory for the user manager");
        let d = dir.path();
        let unit_dir = d.join("config/systemd/user");
        for sub in ["home", "run", "data", "state", "cache"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::create_dir_all(&unit_dir).unwrap();
        // Only the session bus: no other user units from the host.
        std::fs::write(
            unit_dir.join("harust-test.target"),
            "[Unit]\nDescription=harust test user manager: just the session bus\n\
             Wants=dbus.socket dbus.service\nAfter=dbus.socket dbus.service\n",
        )
        .unwrap();

        let slice = format!("{}.slice", unique("harust-test"));
        let cgroup = format!("{slice}/user@0.service");
        let cgroups = if Path::new("/sys/fs/cgroup/unified").is_dir() {
            vec!["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"]
        } else {
            vec!["/sys/fs/cgroup"]
        }
        .into_iter()
        .map(|h| Path::new(h).join(&slice))
        .collect();

        let bus_path = d.join("run/bus");
        let bus_address = format!("unix:path={}", bus_path.display());
        let log = d.join("user-manager.log");
        let env = [
            ("HOME", d.join("home")),
            ("XDG_CONFIG_HOME", d.join("config")),
            ("XDG_RUNTIME_DIR", d.join("run")),
            ("XDG_DATA_HOME", d.join("data")),
            ("XDG_STATE_HOME", d.join("state")),
            ("XDG_CACHE_HOME", d.join("cache")),
            ("DBUS_SESSION_BUS_ADDRESS", PathBuf::from(&bus_address)),
        ];
        let child = namespaced("user-manager-ns.sh", &[&cgroup], &env, &log)
            .expect("spawning unshare for the user manager");
        let mut um = UserManager {
            child,
            dir,
            cgroups,
            bus_address,
        };

        // 1. The manager has opened its dbus.socket.
        wait_for("the user manager's bus socket", STARTUP_TIMEOUT, || {
            if let Ok(Some(status)) = um.child.try_wait() {
                panic!(
                    "user manager exited ({status}) before its bus came up:\n{}",
                    um.log()
                );
            }
            bus_path.exists().then_some(())
        })
        .await;
        // 2. The socket file appears at bind(), a moment before listen():
        //    until then a connection is refused. Connecting starts
        //    dbus.service; then the manager takes its name.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let conn = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let builder = zbus::connection::Builder::address(um.bus_address.as_str());
            let error = match tokio::time::timeout(remaining, builder.build()).await {
                Ok(Ok(conn)) => break conn,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer".to_owned(),
            };
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {STARTUP_TIMEOUT:?} waiting for the test session bus \
                     to accept connections: {error}\n{}",
                    um.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        um.wait_for_name(&conn, "org.freedesktop.systemd1").await;
        Some(um)
    }

    /// A process in the manager's mount namespace (its `unshare`), for
    /// `nsenter --target PID --mount`: what is mounted there is seen by
    /// the units it runs, and by nothing on the host.
    pub fn mount_ns_pid(&self) -> u32 {
        self.child.id()
    }

    /// The session bus address (`unix:path=…`), reachable from the test.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// Where unit files go; call [`UserManager::daemon_reload`] after writing.
    pub fn unit_dir(&self) -> PathBuf {
        self.dir.path().join("config/systemd/user")
    }

    /// A scratch directory for the test's own files (scripts, markers).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Write `unit_dir()/name`.
    pub fn write_unit(&self, name: &str, text: &str) {
        std::fs::write(self.unit_dir().join(name), text).expect("writing a unit file");
    }

    /// `systemctl --user daemon-reload`: `Manager.Reload()` replies once the
    /// reload is complete.
    pub async fn daemon_reload(&self) {
        let conn = self.connect().await;
        let manager = zbus_systemd::systemd1::ManagerProxy::new(&conn)
            .await
            .expect("manager proxy");
        manager.reload().await.expect("daemon-reload");
    }

    /// A new connection to the session bus.
    pub async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.bus_address.as_str())
            .build()
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}\n{}", self.bus_address, self.log()))
    }

    /// The manager's own output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("user-manager.log")).unwrap_or_default()
    }

    async fn wait_for_name(&self, conn: &zbus::Connection, name: &str) {
        let dbus = zbus::fdo::DBusProxy::new(conn).await.expect("DBus proxy");
        let mut changes = dbus
            .receive_name_owner_changed()
            .await
            .expect("NameOwnerChanged stream");
        let wait = async {
            if dbus
                .name_has_owner(name.try_into().unwrap())
                .await
                .unwrap_or(false)
            {
                return;
            }
            while let Some(signal) = changes.next().await {
                if let Ok(args) = signal.args() {
                    if args.name().as_str() == name && args.new_owner().is_some() {
                        return;
                    }
                }
            }
        };
        if tokio::time::timeout(STARTUP_TIMEOUT, wait).await.is_err() {
            panic!(
                "timed out after {STARTUP_TIMEOUT:?} waiting for {name} on the test bus:\n{}",
                self.log()
            );
        }
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        kill_namespace(&mut self.child);
        // The namespace's processes are gone once their cgroups are empty;
        // then remove the cgroups, deepest first.
        let mut problems = Vec::new();
        for root in &self.cgroups {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match remove_cgroup_tree(root) {
                    Ok(()) => break,
                    Err(e) if Instant::now() >= deadline => {
                        problems.push(format!("{}: {e}", root.display()));
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
        if !problems.is_empty() {
            eprintln!("user manager teardown: could not remove cgroups: {problems:?}");
        }
    }
}

/// `rmdir` every directory under `root`, then `root`.
fn remove_cgroup_tree(root: &Path) -> std::io::Result<()> {
    if !root.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(root)
}

/// A standalone systemd-journald.
pub struct Journald {
    child: Child,
    dir: tempfile::TempDir,
    /// The namespace's init, as seen from here (for nsenter).
    init_pid: u32,
}

impl Journald {
    /// Start journald and wait for its socket. `None` (after [`skip`]) if
    /// this machine cannot run one.
    pub fn start() -> Option<Self> {
        if let Some(why) = missing(&[
            "/lib/systemd/systemd-journald",
            "/usr/bin/journalctl",
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
            "/etc/systemd/journald.conf",
        ]) {
            skip(&format!("journald: {why}"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("harust-jd-")
            .tempdir()
            .expect("temporary directory for journald");
        let state = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let child = namespaced(
            "journald-ns.sh",
            &[&state],
            &[],
            &dir.path().join("journald.log"),
        )
        .expect("spawning unshare for journald");
        let unshare_pid = child.id();
        let mut jd = Journald {
            child,
            dir,
            init_pid: 0,
        };
        let children = format!("/proc/{unshare_pid}/task/{unshare_pid}/children");
        jd.init_pid = wait_for_blocking(
            "unshare to fork the namespace init",
            STARTUP_TIMEOUT,
            || {
                std::fs::read_to_string(&children)
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            },
        );
        let socket = jd.socket_path();
        wait_for_blocking("journald's socket", STARTUP_TIMEOUT, || {
            if let Ok(Some(status)) = jd.child.try_wait() {
                panic!(
                    "journald exited ({status}) before its socket appeared:\n{}",
                    jd.log()
                );
            }
            socket.exists().then_some(())
        });
        Some(jd)
    }

    /// The journal socket, as seen from the test process. (Inside the
    /// namespace it is `/run/systemd/journal/socket`.)
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("run/systemd/journal/socket")
    }

    /// The namespace's init, as seen from the test: `nsenter --target` it
    /// (`--mount`) to log to this journald.
    pub fn init_pid(&self) -> u32 {
        self.init_pid
    }

    /// The journal files, for `journalctl -D`.
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("run/log/journal")
    }

    /// A command run inside journald's mount and pid namespaces, where
    /// `/run/systemd/journal/socket` is this journald.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg("--target")
            .arg(self.init_pid.to_string())
            .args(["--mount", "--pid", "--"])
            .arg(program);
        cmd
    }

    /// `journalctl -D <journal_dir> -o json MATCHES…`, one JSON object per
    /// entry.
    pub fn entries(&self, matches: &[&str]) -> Vec<serde_json::Value> {
        let out = Command::new("journalctl")
            .arg("-D")
            .arg(self.journal_dir())
            .args(["--no-pager", "-o", "json"])
            .args(matches)
            .output()
            .expect("running journalctl");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait until at least `count` entries match `matches` (journald writes
    /// asynchronously); all matching entries.
    pub fn wait_for_entries(&self, matches: &[&str], count: usize) -> Vec<serde_json::Value> {
        wait_for_blocking(
            &format!("{count} journal entries matching {matches:?}"),
            STARTUP_TIMEOUT,
            || {
                let entries = self.entries(matches);
                (entries.len() >= count).then_some(entries)
            },
        )
    }

    /// journald's own output, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("journald.log")).unwrap_or_default()
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        kill_namespace(&mut self.child);
    }
}
