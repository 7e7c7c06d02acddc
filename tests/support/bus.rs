//! A private `dbus-daemon` configured like Debian's system bus (method
//! calls denied unless a service's policy allows them) plus our own policy,
//! `dbus-interfaces/org.harust.Harust1.conf`. Ended on Drop.

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
        let config = format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"#,
            socket = socket.display(),
            policy = policy.display(),
        );
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
