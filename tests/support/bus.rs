//! A private `dbus-daemon` configured like Debian's system bus (method
//! calls denied unless a service's policy allows them) plus our own policy,
//! `dbus-interfaces/org.harust.Harust1.conf`: `tests/data/system-bus.conf.in`,
//! shared with the shell harnesses. Ended on Drop.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    /// Starts the bus and returns once it listens (it prints its address).
    pub fn start() -> Bus {
        let dir = tempfile::Builder::new()
            .prefix("harust-bus-")
            .tempdir()
            .expect("a temporary directory for the bus");
        // The socket must be reachable by user nobody too.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod 755");
        let policy = dir.path().join("org.harust.Harust1.conf");
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dbus-interfaces/org.harust.Harust1.conf"),
            &policy,
        )
        .expect("copying the bus policy");
        let socket = dir.path().join("bus");
        let config = include_str!("../data/system-bus.conf.in")
            .replace("@SOCKET@", &socket.display().to_string())
            .replace("@POLICY@", &policy.display().to_string());
        let conf = dir.path().join("bus.conf");
        fs::write(&conf, config).expect("writing bus.conf");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting dbus-daemon");
        // It prints its address once it listens: that is readiness.
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line);
        if read.is_err() || !line.starts_with("unix:") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dbus-daemon did not start: {line:?}");
        }
        Bus {
            child,
            address: format!("unix:path={}", socket.display()),
            _dir: dir,
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // Our own child, by its handle (PID).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
