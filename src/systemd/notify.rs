//! `sd_notify(3)`: telling the service manager that supervises harust how it
//! is doing.
//!
//! The message format comes from the sd-notify crate ([`NotifyState`]); the
//! sending is ours, because the crate reads the environment and opens a new
//! socket on every call, and the watchdog ping runs on every tick of the main
//! loop. A [`Notifier`] opens its socket once, sends without blocking, and
//! also understands abstract-namespace addresses (`@name`).
//!
//! WATCHDOG=1 must come from the daemon's main loop itself (not from a side
//! task that would keep pinging while the loop hangs): the runtime calls
//! [`Notifier::watchdog`] on a tick of [`Notifier::watchdog_interval`].

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::time::Duration;

use sd_notify::NotifyState;

/// Sends `sd_notify` messages, or nothing at all when harust is not run by a
/// service manager that asked for them (`NOTIFY_SOCKET` unset).
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `NOTIFY_SOCKET` as given, for error messages.
    address: String,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service:
    /// `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`. The variables are
    /// left in place (removing them is unsound once threads run).
    pub fn from_env() -> io::Result<Self> {
        let watchdog = watchdog_interval_from(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(addr) if !addr.is_empty() => {
                Ok(Self::with_address(addr.as_bytes())?.with_watchdog(watchdog))
            }
            _ => Ok(Self::disabled().with_watchdog(watchdog)),
        }
    }

    /// Notify to the datagram socket at `path` (tests bind one).
    pub fn with_socket(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::with_address(path.as_ref().as_os_str().as_bytes())
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self {
            target: None,
            address: String::new(),
            watchdog: None,
        }
    }

    /// Use this watchdog interval instead of the one from the environment.
    pub fn with_watchdog(mut self, interval: Option<Duration>) -> Self {
        self.watchdog = interval;
        self
    }

    /// `NOTIFY_SOCKET` syntax: a path, or `@name` for the abstract namespace.
    fn with_address(addr: &[u8]) -> io::Result<Self> {
        let address = String::from_utf8_lossy(addr).into_owned();
        let addr = match addr.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(Path::new(std::ffi::OsStr::from_bytes(addr)))?,
        };
        let socket = UnixDatagram::unbound()?;
        // The main loop must never block on a busy manager; a lost ping is
        // retried on the next tick.
        socket.set_nonblocking(true)?;
        Ok(Self {
            target: Some((socket, addr)),
            address,
            watchdog: None,
        })
    }

    /// Whether messages go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Where messages go (`NOTIFY_SOCKET` as given), empty if nowhere.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// READY=1: configuration loaded, sockets bound, local state reconciled.
    pub fn ready(&self) -> io::Result<()> {
        self.send(&[NotifyState::Ready])
    }

    /// STATUS=text, the line `systemctl status` shows. Line breaks would end
    /// the field (and could inject others), so they become spaces.
    pub fn status(&self, text: &str) -> io::Result<()> {
        let text = sanitise_status(text);
        self.send(&[NotifyState::Status(&text)])
    }

    /// RELOADING=1 with MONOTONIC_USEC (needed by `Type=notify-reload`, and
    /// lets systemd order the reload); send [`Notifier::ready`] when done.
    pub fn reloading(&self) -> io::Result<()> {
        if !self.is_enabled() {
            return Ok(());
        }
        self.send(&[NotifyState::Reloading, NotifyState::monotonic_usec_now()?])
    }

    /// STOPPING=1: a graceful shutdown has begun.
    pub fn stopping(&self) -> io::Result<()> {
        self.send(&[NotifyState::Stopping])
    }

    /// WATCHDOG=1: one datagram on an already open socket.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send(&[NotifyState::Watchdog])
    }

    /// Sets the service's watchdog timeout to `timeout` (`WATCHDOG_USEC=`,
    /// systemd 236 and later) and pings at half of it from now on. Only
    /// when the manager runs a watchdog for us: the unit's `WatchdogSec=`
    /// then bounds only the start-up.
    pub fn override_watchdog(&mut self, timeout: Duration) -> io::Result<()> {
        if self.watchdog.is_none() || self.target.is_none() {
            return Ok(());
        }
        let usec = u32::try_from(timeout.as_micros()).unwrap_or(u32::MAX);
        self.send(&[NotifyState::WatchdogUsec(usec)])?;
        self.watchdog = Some(Duration::from_micros(u64::from(usec)) / 2);
        Ok(())
    }

    /// How often to call [`Notifier::watchdog`]: half of `WATCHDOG_USEC`,
    /// as sd_watchdog_enabled(3) recommends; `None` if the watchdog is off
    /// or meant for another process (`WATCHDOG_PID`).
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        let Some((socket, addr)) = &self.target else {
            return Ok(());
        };
        let mut msg = String::new();
        for state in states {
            msg.push_str(&state.to_string());
            msg.push('\n');
        }
        let sent = socket.send_to_addr(msg.as_bytes(), addr)?;
        if sent != msg.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write to NOTIFY_SOCKET",
            ));
        }
        Ok(())
    }
}

/// Newlines would end the STATUS= field: replace CR and LF with spaces.
pub fn sanitise_status(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// Half of `WATCHDOG_USEC`, if it is set, positive, and `WATCHDOG_PID` is
/// unset or `our_pid` (sd_watchdog_enabled(3)).
pub fn watchdog_interval_from(
    usec: Option<&str>,
    pid: Option<&str>,
    our_pid: u32,
) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != our_pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec() {
        assert_eq!(
            watchdog_interval_from(Some("4000000"), None, 7),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn watchdog_meant_for_another_pid_is_not_ours() {
        assert_eq!(watchdog_interval_from(Some("4000000"), Some("8"), 7), None);
        assert_eq!(
            watchdog_interval_from(Some("4000000"), Some("7"), 7),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn no_or_bad_watchdog_usec_means_no_watchdog() {
        assert_eq!(watchdog_interval_from(None, None, 7), None);
        assert_eq!(watchdog_interval_from(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval_from(Some("10"), Some("x"), 7), None);
    }

    #[test]
    fn status_loses_its_line_breaks() {
        assert_eq!(sanitise_status("a\nb\r\nc"), "a b  c");
    }
}
