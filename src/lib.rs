//! harust: a systemd-native high-availability daemon, wire-compatible with
//! heartbeat 3.0.6 in its classic `haresources` mode.
//!
//! The pure core (`config`, `wire`, `engine`) does no I/O. The adapters
//! (`net`, `vip`, `systemd`, `dbus`) and `runtime` connect it to the system;
//! `beat`, `control`, `events`, `resources` and `state` are the runtime's
//! parts that are not its loop.

#[cfg(feature = "daemon")]
pub mod beat;
pub mod config;
#[cfg(feature = "daemon")]
pub mod control;
#[cfg(feature = "daemon")]
pub mod dbus;
pub mod engine;
#[cfg(feature = "daemon")]
pub mod events;
#[cfg(feature = "daemon")]
pub mod fence;
#[cfg(feature = "daemon")]
pub mod net;
#[cfg(feature = "daemon")]
pub mod resources;
#[cfg(feature = "daemon")]
pub mod runtime;
#[cfg(feature = "daemon")]
pub mod state;
#[cfg(feature = "daemon")]
pub mod systemd;
#[cfg(feature = "daemon")]
pub mod timer;
#[cfg(feature = "daemon")]
pub mod vip;
pub mod wire;
