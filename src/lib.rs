//! harust: a systemd-native high-availability daemon, wire-compatible with
//! heartbeat 3.0.6 in its classic `haresources` mode.
//!
//! The pure core (`config`, `wire`, `engine`) does no I/O. The adapters
//! (`net`, `vip`, `systemd`, `dbus`) and `runtime` connect it to the system.

pub mod config;
pub mod dbus;
pub mod engine;
pub mod net;
pub mod runtime;
pub mod systemd;
pub mod vip;
pub mod wire;
