//! The systemd adapter: what harust asks of, and tells, the service manager.
//!
//! - [`units`]: start/stop units through `org.freedesktop.systemd1.Manager`,
//!   confirmed by `JobRemoved`; read and watch their `ActiveState`.
//! - [`notify`]: `sd_notify(3)` (READY=1, STATUS=, RELOADING=1, STOPPING=1,
//!   WATCHDOG=1) to the manager supervising harust itself.
//! - [`hooks`]: the administrator's `harust-event@.service` instances, one
//!   per event, strictly in order, on their own task.
//! - [`journal`]: logging to the journal with structured `HARUST_*` fields,
//!   or to stderr when there is no journal.
//!
//! Like every adapter, this module decides nothing: it reports what systemd
//! says (typed), and the engine decides what to do about it.

pub mod hooks;
pub mod journal;
pub mod notify;
pub mod units;

pub use journal::{LogTarget, init_logging};
pub use notify::Notifier;
pub use units::{ActiveState, JobResult, UnitError, UnitEvent, Units};
