//! Logging: to the journal with structured fields, or to stderr.
//!
//! harust logs through the `log` crate, with its key-value syntax for the
//! fields operators filter on:
//!
//! ```ignore
//! log::info!(harust_event = "link_up", harust_node = "ljdal"; "link to ljdal is up");
//! harust::notice!(harust_event = "takeover", harust_group = "g1"; "taking over group g1");
//! ```
//!
//! # Journal
//!
//! When `/run/systemd/journal/socket` exists, records go to journald over
//! its native protocol through the systemd-journal-logger crate: each
//! key-value pair becomes a field, upper-cased (`HARUST_EVENT=takeover`),
//! next to `MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER=harust`, `CODE_FILE`,
//! `CODE_LINE` and `TARGET`.
//!
//! # Priorities, and NOTICE
//!
//! `log` has no NOTICE level, and systemd-journal-logger 2.2 maps
//! `Info` to PRIORITY=5 (notice) and `Debug` to 6 (info). harust wants the
//! syslog meanings, where routine information is 6 and events an operator
//! must see (takeover, release, failback) are 5, so that
//! `journalctl -u harust -p notice` shows exactly those. Rather than write
//! our own journal protocol, we hand the crate a copy of each record with the
//! level shifted so its table yields syslog's:
//!
//! | harust logs with           | journal PRIORITY | stderr  |
//! |----------------------------|------------------|---------|
//! | `error!`                   | 3 err            | ERROR   |
//! | `warn!`                    | 4 warning        | WARN    |
//! | [`notice!`](crate::notice) | 5 notice         | NOTICE  |
//! | `info!`                    | 6 info           | INFO    |
//! | `debug!`, `trace!`         | 7 debug          | DEBUG, TRACE |
//!
//! `notice!` is `info!` plus the key-value pair `priority = "notice"`,
//! which the loggers here consume (it is not written as a field). A notice
//! is therefore filtered like `info`: `--log-level warn` hides it.
//!
//! # Stderr
//!
//! Otherwise (no journal socket, or `HARUST_LOG_TARGET=stderr`), one line per
//! record: `LEVEL target: message KEY=value ...`.

use std::io::Write;
use std::path::Path;

use log::kv::{self, Key, Source, Value, VisitSource};
use log::{Level, LevelFilter, Log, Metadata, Record};
use systemd_journal_logger::JournalLog;

#[doc(hidden)]
pub use log as __log;

/// Where journald listens for native-protocol records (systemd-journal-logger
/// sends there; the path is fixed in that crate and in journald).
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The environment variable that overrides the choice: `journal`, `stderr`
/// or `auto` (the default).
pub const LOG_TARGET_ENV: &str = "HARUST_LOG_TARGET";

/// The key-value pair key that [`notice!`](crate::notice) adds to a record.
pub const PRIORITY_KEY: &str = "priority";

/// `SYSLOG_IDENTIFIER` of every record, so `journalctl -t harust` works
/// whatever the executable is called.
pub const SYSLOG_IDENTIFIER: &str = "harust";

/// Log a NOTICE: an event the operator must see (takeover, release,
/// failback). Same syntax as `log::info!`, key-value pairs included.
#[macro_export]
macro_rules! notice {
    (target: $target:expr, $($key:tt $(:$capture:tt)? $(= $value:expr)?),+; $($arg:tt)+) => {
        $crate::systemd::journal::__log::log!(target: $target, $crate::systemd::journal::__log::Level::Info,
            priority = "notice", $($key $(:$capture)? $(= $value)?),+; $($arg)+)
    };
    (target: $target:expr, $($arg:tt)+) => {
        $crate::systemd::journal::__log::log!(target: $target, $crate::systemd::journal::__log::Level::Info,
            priority = "notice"; $($arg)+)
    };
    ($($key:tt $(:$capture:tt)? $(= $value:expr)?),+; $($arg:tt)+) => {
        $crate::systemd::journal::__log::log!($crate::systemd::journal::__log::Level::Info,
            priority = "notice", $($key $(:$capture)? $(= $value)?),+; $($arg)+)
    };
    ($($arg:tt)+) => {
        $crate::systemd::journal::__log::log!($crate::systemd::journal::__log::Level::Info,
            priority = "notice"; $($arg)+)
    };
}

/// Where log records go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTarget {
    /// The journal if its socket exists, stderr otherwise.
    Auto,
    Journal,
    Stderr,
}

impl LogTarget {
    /// [`LOG_TARGET_ENV`], or `Auto` if unset or unknown.
    pub fn from_env() -> Self {
        match std::env::var(LOG_TARGET_ENV).as_deref() {
            Ok("journal") => Self::Journal,
            Ok("stderr") => Self::Stderr,
            _ => Self::Auto,
        }
    }
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    #[error("cannot reach journald at {JOURNAL_SOCKET}")]
    Journal(#[source] std::io::Error),
    #[error("a logger is already installed")]
    AlreadyInstalled(#[from] log::SetLoggerError),
}

/// Install the process-wide logger at `level`, choosing the target from
/// [`LOG_TARGET_ENV`] (default: the journal when its socket exists).
/// Returns where records go.
pub fn init_logging(level: LevelFilter) -> Result<LogTarget, LogInitError> {
    init_logging_to(level, LogTarget::from_env())
}

/// Install the process-wide logger at `level` on `target`. With
/// [`LogTarget::Auto`], a journal that exists but does not answer falls
/// back to stderr.
pub fn init_logging_to(level: LevelFilter, target: LogTarget) -> Result<LogTarget, LogInitError> {
    let journal = match target {
        LogTarget::Stderr => None,
        LogTarget::Journal => Some(JournalLog::empty().map_err(LogInitError::Journal)?),
        LogTarget::Auto if Path::new(JOURNAL_SOCKET).exists() => JournalLog::empty().ok(),
        LogTarget::Auto => None,
    };
    let chosen = if journal.is_some() {
        LogTarget::Journal
    } else {
        LogTarget::Stderr
    };
    let logger = Logger {
        journal: journal.map(|j| j.with_syslog_identifier(SYSLOG_IDENTIFIER.to_owned())),
        level,
    };
    log::set_boxed_logger(Box::new(logger))?;
    log::set_max_level(level);
    Ok(chosen)
}

struct Logger {
    journal: Option<JournalLog>,
    level: LevelFilter,
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if let Some(journal) = &self.journal {
            let fields = WithoutPriority(record.key_values());
            let shifted = Record::builder()
                .args(*record.args())
                .level(journal_level(record))
                .target(record.target())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .key_values(&fields)
                .build();
            if journal.journal_send(&shifted).is_ok() {
                return;
            }
            // journald is away (restarting?): keep the record on stderr,
            // which systemd also collects.
        }
        let line = format_stderr_line(record);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Whether the record was logged with [`notice!`](crate::notice).
pub fn is_notice(record: &Record<'_>) -> bool {
    record.level() == Level::Info
        && record
            .key_values()
            .get(Key::from_str(PRIORITY_KEY))
            .is_some_and(|v| v.to_borrowed_str() == Some("notice"))
}

/// The level to hand systemd-journal-logger so that its mapping
/// (Error 3, Warn 4, Info 5, Debug 6, Trace 7) yields the syslog priority we
/// mean (see the module docs).
fn journal_level(record: &Record<'_>) -> Level {
    match record.level() {
        Level::Info if is_notice(record) => Level::Info,
        Level::Info => Level::Debug,
        Level::Debug | Level::Trace => Level::Trace,
        other => other,
    }
}

/// The journal PRIORITY a record gets (3..=7).
pub fn journal_priority(record: &Record<'_>) -> u8 {
    match journal_level(record) {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5,
        Level::Debug => 6,
        Level::Trace => 7,
    }
}

/// One stderr line: `LEVEL target: message KEY=value ...\n`.
pub fn format_stderr_line(record: &Record<'_>) -> String {
    use std::fmt::Write as _;
    let level = if is_notice(record) {
        "NOTICE"
    } else {
        record.level().as_str()
    };
    let mut line = format!("{level} {}: {}", record.target(), record.args());
    struct Fields<'a>(&'a mut String);
    impl<'kvs> VisitSource<'kvs> for Fields<'_> {
        fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
            let _ = write!(self.0, " {}={}", key.as_str().to_ascii_uppercase(), value);
            Ok(())
        }
    }
    let _ = WithoutPriority(record.key_values()).visit(&mut Fields(&mut line));
    line.push('\n');
    line
}

/// A record's key-value pairs without the [`PRIORITY_KEY`] marker.
struct WithoutPriority<'a>(&'a dyn Source);

impl Source for WithoutPriority<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        struct Skip<'a, 'kvs>(&'a mut dyn VisitSource<'kvs>);
        impl<'kvs> VisitSource<'kvs> for Skip<'_, 'kvs> {
            fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), kv::Error> {
                if key.as_str() == PRIORITY_KEY {
                    Ok(())
                } else {
                    self.0.visit_pair(key, value)
                }
            }
        }
        self.0.visit(&mut Skip(visitor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `f` on a record (a record borrows its formatted arguments, which
    /// live only as long as this call).
    fn with_record<R>(
        level: Level,
        msg: &str,
        kvs: &dyn Source,
        f: impl FnOnce(&Record<'_>) -> R,
    ) -> R {
        f(&Record::builder()
            .level(level)
            .target("harust::runtime")
            .args(format_args!("{msg}"))
            .key_values(kvs)
            .build())
    }

    #[test]
    fn stderr_line_has_level_target_message_and_uppercased_fields() {
        let kvs = [("harust_event", "link_up"), ("harust_node", "n2")];
        assert_eq!(
            with_record(Level::Info, "link to n2 is up", &kvs, format_stderr_line),
            "INFO harust::runtime: link to n2 is up HARUST_EVENT=link_up HARUST_NODE=n2\n"
        );
    }

    #[test]
    fn notice_marker_becomes_the_level_and_is_not_a_field() {
        let kvs = [("priority", "notice"), ("harust_event", "takeover")];
        assert!(with_record(Level::Info, "taking over g1", &kvs, is_notice));
        assert_eq!(
            with_record(Level::Info, "taking over g1", &kvs, format_stderr_line),
            "NOTICE harust::runtime: taking over g1 HARUST_EVENT=takeover\n"
        );
        assert_eq!(with_record(Level::Info, "x", &kvs, journal_priority), 5);
    }

    #[test]
    fn notice_accepts_every_form_of_log_info() {
        // No logger is installed here: this checks that each form expands.
        let group = "g1";
        crate::notice!("plain");
        crate::notice!("formatted {group} {}", 1);
        crate::notice!(harust_event = "takeover", harust_group = group; "with fields {group}");
        crate::notice!(target: "harust::engine", "with a target");
        crate::notice!(target: "harust::engine", harust_group:% = group; "target and fields");
    }

    #[test]
    fn journal_priorities_follow_syslog_meanings() {
        let none: [(&str, &str); 0] = [];
        let p = |level| with_record(level, "x", &none, journal_priority);
        assert_eq!(p(Level::Error), 3);
        assert_eq!(p(Level::Warn), 4);
        assert_eq!(p(Level::Info), 6);
        assert_eq!(p(Level::Debug), 7);
        assert_eq!(p(Level::Trace), 7);
        // the marker only means something on an info record
        let marked = [("priority", "notice")];
        assert_eq!(with_record(Level::Warn, "x", &marked, journal_priority), 4);
    }
}
