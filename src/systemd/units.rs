//! Unit control through `org.freedesktop.systemd1.Manager`: a thin adapter.
//!
//! One unit per call; the engine owns ordering (a group starts left to right
//! and stops right to left) and every decision about failures.
//!
//! # What "confirmed" means
//!
//! [`Units::start`] and [`Units::stop`] follow the protocol systemd documents
//! for clients (and `systemctl` uses):
//!
//! 1. `Subscribe()` once per connection (done by [`Units::new`]), so systemd
//!    emits job and unit signals to us;
//! 2. subscribe to `JobRemoved` *before* calling `StartUnit`/`StopUnit` with
//!    mode `replace`, so the signal cannot be missed;
//! 3. wait, bounded by the job timeout, for the `JobRemoved` whose job path
//!    is the one the call returned;
//! 4. result `done` is necessary but not sufficient: the unit's
//!    `ActiveState` must then fit. For a start it must be `active`; a
//!    `Type=oneshot` unit without `RemainAfterExit=yes` finishes its start job
//!    with `done` and is `inactive` right after, which for an HA resource means
//!    "not held", so it is reported as [`UnitError::WrongState`]. For a stop,
//!    `inactive` or `failed` both mean the resource is released.
//!
//! Any other job result (`failed`, `timeout`, `dependency`, `canceled`, ...)
//! comes back as [`UnitError::JobFailed`] with the unit's own `Result`
//! property (`exit-code`, `signal`, `timeout`, ...) as the reason; a unit
//! systemd does not know as [`UnitError::NotFound`].
//!
//! # Watching held units
//!
//! [`Units::watch`] turns the `PropertiesChanged` signals of each unit object
//! into [`UnitEvent`]s, one per change of `ActiveState`. It reports every
//! change, including those caused by our own stop jobs: telling an expected
//! `inactive` from an unexpected one is the engine's business.
//! [`UnitEvent::is_down`] marks the states that mean "no longer held".
//! To reconcile without a gap, create the watch first and read
//! [`Units::active_state`] after.
//!
//! The returned stream must be polled continuously (zbus stops reading the
//! connection while any of its signal queues is full).

use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use zbus::Connection;
use zbus::fdo::PropertiesProxy;
use zbus::names::InterfaceName;
use zbus::proxy::CacheProperties;
use zbus_systemd::systemd1::{ManagerProxy, UnitProxy};

/// How long [`Units::start`]/[`Units::stop`] wait for `JobRemoved` by
/// default. Longer than systemd's own default `TimeoutStartSec=` (90 s), so
/// normally systemd times the job out first and says so (`timeout`).
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(300);

const SYSTEMD_SERVICE: &str = "org.freedesktop.systemd1";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
const ALREADY_SUBSCRIBED: &str = "org.freedesktop.systemd1.AlreadySubscribed";

/// A unit's `ActiveState`, as systemd reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActiveState {
    Active,
    Reloading,
    Inactive,
    Failed,
    Activating,
    Deactivating,
    Maintenance,
    Refreshing,
    /// A state this systemd knows and we do not.
    Other(String),
}

impl ActiveState {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "active",
            Self::Reloading => "reloading",
            Self::Inactive => "inactive",
            Self::Failed => "failed",
            Self::Activating => "activating",
            Self::Deactivating => "deactivating",
            Self::Maintenance => "maintenance",
            Self::Refreshing => "refreshing",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for ActiveState {
    fn from(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "reloading" => Self::Reloading,
            "inactive" => Self::Inactive,
            "failed" => Self::Failed,
            "activating" => Self::Activating,
            "deactivating" => Self::Deactivating,
            "maintenance" => Self::Maintenance,
            "refreshing" => Self::Refreshing,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ActiveState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `result` argument of a `JobRemoved` signal (org.freedesktop.systemd1(5)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum JobResult {
    Done,
    Canceled,
    Timeout,
    Failed,
    Dependency,
    Skipped,
    /// A result this systemd knows and we do not.
    Other(String),
}

impl JobResult {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Done => "done",
            Self::Canceled => "canceled",
            Self::Timeout => "timeout",
            Self::Failed => "failed",
            Self::Dependency => "dependency",
            Self::Skipped => "skipped",
            Self::Other(s) => s,
        }
    }
}

impl From<&str> for JobResult {
    fn from(s: &str) -> Self {
        match s {
            "done" => Self::Done,
            "canceled" => Self::Canceled,
            "timeout" => Self::Timeout,
            "failed" => Self::Failed,
            "dependency" => Self::Dependency,
            "skipped" => Self::Skipped,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which job we asked systemd for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobKind {
    Start,
    Stop,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::Stop => "stop",
        })
    }
}

/// Everything that can go wrong talking to systemd about a unit.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    #[error("cannot connect to systemd's manager on {bus}")]
    Connect {
        /// The bus address, or "the system bus".
        bus: String,
        #[source]
        source: zbus::Error,
    },
    /// systemd has no unit file for this name (`NoSuchUnit`, or `LoadState`
    /// `not-found`).
    #[error("unit {unit} not found")]
    NotFound { unit: String },
    /// The job ended with a result other than `done`.
    #[error("{kind} of {unit}: job {result}{}", reason_suffix(.reason))]
    JobFailed {
        unit: String,
        kind: JobKind,
        result: JobResult,
        /// The unit's own `Result` property (`exit-code`, `signal`, ...),
        /// when its type has one.
        reason: Option<String>,
    },
    /// The job was `done` but the unit is not in the state the job is for
    /// (see the module docs).
    #[error("{kind} of {unit}: job done, but unit is {state} ({sub_state}){}", reason_suffix(.reason))]
    WrongState {
        unit: String,
        kind: JobKind,
        state: ActiveState,
        sub_state: String,
        reason: Option<String>,
    },
    /// No `JobRemoved` for our job within the job timeout.
    #[error("{kind} of {unit}: job {job} not finished within {timeout:?}")]
    JobTimeout {
        unit: String,
        kind: JobKind,
        job: String,
        timeout: Duration,
    },
    /// The connection to the bus ended while we waited for our job.
    #[error("{kind} of {unit}: connection to systemd closed while waiting for job {job}")]
    Disconnected {
        unit: String,
        kind: JobKind,
        job: String,
    },
    /// Any other D-Bus failure (access denied, unit masked, ...).
    #[error("{unit}: D-Bus request to systemd failed")]
    Bus {
        unit: String,
        #[source]
        source: zbus::Error,
    },
}

fn reason_suffix(reason: &Option<String>) -> String {
    reason
        .as_deref()
        .map(|r| format!(" (result: {r})"))
        .unwrap_or_default()
}

impl UnitError {
    /// The unit the error is about (none for a connection failure).
    pub fn unit(&self) -> Option<&str> {
        match self {
            Self::Connect { .. } => None,
            Self::NotFound { unit }
            | Self::JobFailed { unit, .. }
            | Self::WrongState { unit, .. }
            | Self::JobTimeout { unit, .. }
            | Self::Disconnected { unit, .. }
            | Self::Bus { unit, .. } => Some(unit),
        }
    }

    /// Map a failed D-Bus call about `unit`: `NoSuchUnit` is typed, the rest
    /// keeps the zbus error.
    fn from_call(unit: &str, source: zbus::Error) -> Self {
        match &source {
            zbus::Error::MethodError(name, _, _) if name.as_str() == NO_SUCH_UNIT => {
                Self::NotFound {
                    unit: unit.to_owned(),
                }
            }
            _ => Self::Bus {
                unit: unit.to_owned(),
                source,
            },
        }
    }
}

/// A change of a watched unit's `ActiveState`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitEvent {
    pub unit: String,
    pub active_state: ActiveState,
    pub sub_state: String,
    /// The unit's `Result` property at the time (`success`, `exit-code`,
    /// `signal`, ...), for unit types that have one.
    pub result: Option<String>,
}

impl UnitEvent {
    /// The unit is no longer running: `failed` or `inactive`.
    pub fn is_down(&self) -> bool {
        matches!(
            self.active_state,
            ActiveState::Failed | ActiveState::Inactive
        )
    }
}

/// A connection to systemd's manager, cheap to clone.
#[derive(Clone, Debug)]
pub struct Units {
    conn: Connection,
    manager: ManagerProxy<'static>,
    job_timeout: Duration,
}

impl Units {
    /// Connect to the manager on `address` (a D-Bus address such as
    /// `unix:path=/run/user/0/bus`), or on the system bus when `None`, and
    /// subscribe to its signals.
    pub async fn connect(address: Option<&str>) -> Result<Self, UnitError> {
        let bus = address.unwrap_or("the system bus").to_owned();
        let builder = match address {
            Some(address) => zbus::connection::Builder::address(address),
            None => zbus::connection::Builder::system(),
        };
        let conn = builder.build().await.map_err(|source| UnitError::Connect {
            bus: bus.clone(),
            source,
        })?;
        Self::new(conn)
            .await
            .map_err(|source| UnitError::Connect { bus, source })
    }

    /// Use an existing connection; calls `Subscribe()` on it.
    pub async fn new(conn: Connection) -> zbus::Result<Self> {
        let manager = ManagerProxy::builder(&conn)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        match manager.subscribe().await {
            Ok(()) => {}
            // Another `Units` on this connection subscribed already.
            Err(zbus::Error::MethodError(name, _, _)) if name.as_str() == ALREADY_SUBSCRIBED => {}
            Err(e) => return Err(e),
        }
        Ok(Self {
            conn,
            manager,
            job_timeout: DEFAULT_JOB_TIMEOUT,
        })
    }

    /// Wait at most `timeout` for a job to finish (default
    /// [`DEFAULT_JOB_TIMEOUT`]).
    pub fn with_job_timeout(mut self, timeout: Duration) -> Self {
        self.job_timeout = timeout;
        self
    }

    /// The connection, e.g. to share it with other proxies.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Start `unit` and wait until systemd confirms it is `active`.
    pub async fn start(&self, unit: &str) -> Result<(), UnitError> {
        self.run_job(unit, JobKind::Start).await
    }

    /// Run a `Type=oneshot` unit without `RemainAfterExit=` (a fence):
    /// its start job is `done` only once its `ExecStart=` succeeded, and
    /// it is `inactive` again by then.
    pub async fn run_oneshot(&self, unit: &str) -> Result<(), UnitError> {
        match self.start(unit).await {
            Err(UnitError::WrongState {
                state: ActiveState::Inactive,
                ..
            }) => Ok(()),
            r => r,
        }
    }

    /// Stop `unit` and wait until systemd confirms it is `inactive` or
    /// `failed`.
    pub async fn stop(&self, unit: &str) -> Result<(), UnitError> {
        self.run_job(unit, JobKind::Stop).await
    }

    /// Whether systemd finds a unit file for `unit` (for an instance: its
    /// template). Loading it starts nothing.
    pub async fn exists(&self, unit: &str) -> Result<bool, UnitError> {
        match self.unit_proxy(unit).await {
            Ok(_) => Ok(true),
            Err(UnitError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Mount `what` on `path` through a transient mount unit
    /// (`StartTransientUnit`, as `systemd-mount` does) and wait until it is
    /// `active`. The unit is named after `path`, so [`Units::stop`] on that
    /// name unmounts it, and a failed mount is a failed job like any other.
    pub async fn start_mount(
        &self,
        unit: &str,
        what: &str,
        path: &str,
        fstype: Option<&str>,
        options: Option<&str>,
    ) -> Result<(), UnitError> {
        let str_prop = |k: &str, v: &str| {
            (
                k.to_owned(),
                zbus::OwnedVariant::try_from(zbus::Variant::from(v.to_owned())),
            )
        };
        let mut props = vec![
            str_prop("Description", &format!("harust mount of {what} on {path}")),
            str_prop("What", what),
            str_prop("Where", path),
        ];
        if let Some(t) = fstype {
            props.push(str_prop("Type", t));
        }
        if let Some(o) = options {
            props.push(str_prop("Options", o));
        }
        let props = props
            .into_iter()
            .map(|(k, v)| v.map(|v| (k, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| UnitError::Bus {
                unit: unit.to_owned(),
                source: e,
            })?;
        let manager = self.manager.clone();
        let name = unit.to_owned();
        self.run_job_with(unit, JobKind::Start, async move {
            manager
                .start_transient_unit(name, "replace".to_owned(), props, vec![])
                .await
        })
        .await
    }

    /// The unit's current `ActiveState` (loading the unit if systemd had
    /// garbage-collected it, which does not start it).
    pub async fn active_state(&self, unit: &str) -> Result<ActiveState, UnitError> {
        let proxy = self.unit_proxy(unit).await?;
        let state = proxy
            .active_state()
            .await
            .map_err(|e| UnitError::from_call(unit, e))?;
        Ok(ActiveState::from(state.as_str()))
    }

    /// Watch `units` for changes of their `ActiveState` (see the module
    /// docs). Fails if a unit does not exist, except a mount unit (ours are
    /// transient, made when mounted).
    pub async fn watch(
        &self,
        units: &[String],
    ) -> Result<BoxStream<'static, UnitEvent>, UnitError> {
        let mut streams = Vec::with_capacity(units.len());
        for unit in units {
            streams.push(self.watch_one(unit).await?);
        }
        Ok(futures::stream::select_all(streams).boxed())
    }

    async fn watch_one(&self, unit: &str) -> Result<BoxStream<'static, UnitEvent>, UnitError> {
        let err = |e| UnitError::from_call(unit, e);
        let path = self.manager.load_unit(unit.to_owned()).await.map_err(err)?;
        let props = PropertiesProxy::builder(&self.conn)
            .destination(SYSTEMD_SERVICE)
            .path(path.clone())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        // Subscribe before reading the current state, so no change is lost.
        let signals = props.receive_properties_changed().await.map_err(err)?;
        let proxy = if unit.ends_with(".mount") {
            // harust's mounts are transient: the unit has no file and
            // exists only while mounted, under the same object path.
            UnitProxy::builder(&self.conn)
                .destination(SYSTEMD_SERVICE)
                .path(path.clone())
                .cache_properties(CacheProperties::No)
                .build()
                .await
                .map_err(err)?
        } else {
            self.unit_proxy(unit).await?
        };
        let last = ActiveState::from(proxy.active_state().await.map_err(err)?.as_str());
        let type_interface = type_interface(unit);
        let result = match type_interface {
            Some(iface) => read_result(&props, iface).await,
            None => None,
        };
        let state = WatchState {
            unit: unit.to_owned(),
            type_interface,
            last,
            result,
        };
        Ok(
            futures::stream::unfold((signals, state), |(mut signals, mut state)| async move {
                loop {
                    let signal = signals.next().await?;
                    let Ok(args) = signal.args() else { continue };
                    if let Some(event) =
                        state.apply(args.interface_name().as_str(), args.changed_properties())
                    {
                        return Some((event, (signals, state)));
                    }
                }
            })
            .boxed(),
        )
    }

    async fn run_job(&self, unit: &str, kind: JobKind) -> Result<(), UnitError> {
        let manager = self.manager.clone();
        let name = unit.to_owned();
        self.run_job_with(unit, kind, async move {
            match kind {
                JobKind::Start => manager.start_unit(name, "replace".to_owned()).await,
                JobKind::Stop => manager.stop_unit(name, "replace".to_owned()).await,
            }
        })
        .await
    }

    /// Waits for the job `call` creates (see the module docs).
    async fn run_job_with(
        &self,
        unit: &str,
        kind: JobKind,
        call: impl std::future::Future<Output = zbus::Result<zbus::OwnedObjectPath>>,
    ) -> Result<(), UnitError> {
        let err = |e| UnitError::from_call(unit, e);
        // Before the call: JobRemoved may come right after the reply.
        let mut removed = self.manager.receive_job_removed().await.map_err(err)?;
        let job = call.await.map_err(err)?;
        let wait = async {
            while let Some(signal) = removed.next().await {
                let Ok(args) = signal.args() else { continue };
                if *args.job() == job {
                    return Some(JobResult::from(args.result().as_str()));
                }
            }
            None
        };
        let result = match tokio::time::timeout(self.job_timeout, wait).await {
            Ok(Some(result)) => result,
            Ok(None) => {
                return Err(UnitError::Disconnected {
                    unit: unit.to_owned(),
                    kind,
                    job: job.to_string(),
                });
            }
            Err(_) => {
                return Err(UnitError::JobTimeout {
                    unit: unit.to_owned(),
                    kind,
                    job: job.to_string(),
                    timeout: self.job_timeout,
                });
            }
        };
        drop(removed);

        let proxy = match self.unit_proxy(unit).await {
            // A transient unit (our mounts) is gone once stopped.
            Err(UnitError::NotFound { .. })
                if kind == JobKind::Stop && result == JobResult::Done =>
            {
                return Ok(());
            }
            r => r?,
        };
        if result != JobResult::Done {
            return Err(UnitError::JobFailed {
                unit: unit.to_owned(),
                kind,
                result,
                reason: self.unit_result(&proxy, unit).await,
            });
        }
        let state = ActiveState::from(proxy.active_state().await.map_err(err)?.as_str());
        let fits = match kind {
            JobKind::Start => state == ActiveState::Active,
            JobKind::Stop => matches!(state, ActiveState::Inactive | ActiveState::Failed),
        };
        // The reason is read only for a failure: one round trip less
        // between the units of a group.
        if fits {
            return Ok(());
        }
        let reason = self.unit_result(&proxy, unit).await;
        let sub_state = proxy.sub_state().await.map_err(err)?;
        Err(UnitError::WrongState {
            unit: unit.to_owned(),
            kind,
            state,
            sub_state,
            reason,
        })
    }

    /// An uncached proxy for the unit object; `NotFound` if systemd has no
    /// unit file for it.
    async fn unit_proxy(&self, unit: &str) -> Result<UnitProxy<'static>, UnitError> {
        let err = |e| UnitError::from_call(unit, e);
        let path = self.manager.load_unit(unit.to_owned()).await.map_err(err)?;
        let proxy = UnitProxy::builder(&self.conn)
            .destination(SYSTEMD_SERVICE)
            .path(path)
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(err)?;
        if proxy.load_state().await.map_err(err)? == "not-found" {
            return Err(UnitError::NotFound {
                unit: unit.to_owned(),
            });
        }
        Ok(proxy)
    }

    /// The unit type's `Result` property, best effort: it only explains an
    /// error we already have.
    async fn unit_result(&self, proxy: &UnitProxy<'static>, unit: &str) -> Option<String> {
        let iface = type_interface(unit)?;
        let props = PropertiesProxy::builder(&self.conn)
            .destination(SYSTEMD_SERVICE)
            .path(proxy.inner().path().to_owned())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .ok()?;
        read_result(&props, iface).await
    }
}

async fn read_result(props: &PropertiesProxy<'_>, iface: &'static str) -> Option<String> {
    let iface = InterfaceName::try_from(iface).ok()?;
    let value = props.get(iface, "Result").await.ok()?;
    match &*value {
        zbus::Variant::Str(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// The type-specific interface of a unit (the one with `Result`), from the
/// unit name's suffix.
fn type_interface(unit: &str) -> Option<&'static str> {
    Some(match unit.rsplit_once('.')?.1 {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "automount" => "org.freedesktop.systemd1.Automount",
        "swap" => "org.freedesktop.systemd1.Swap",
        "timer" => "org.freedesktop.systemd1.Timer",
        "path" => "org.freedesktop.systemd1.Path",
        "scope" => "org.freedesktop.systemd1.Scope",
        _ => return None,
    })
}

/// What a unit watch remembers between signals.
struct WatchState {
    unit: String,
    type_interface: Option<&'static str>,
    last: ActiveState,
    result: Option<String>,
}

impl WatchState {
    /// Fold one `PropertiesChanged` into the state; an event when
    /// `ActiveState` changed.
    ///
    /// systemd sends the type-specific interface's `PropertiesChanged` (with
    /// `Result`) before the generic Unit interface's (with `ActiveState`), so
    /// the result we hold is already the one belonging to the new state.
    fn apply(
        &mut self,
        interface: &str,
        changed: &std::collections::HashMap<&str, zbus::Variant<'_>>,
    ) -> Option<UnitEvent> {
        let text = |name: &str| match changed.get(name) {
            Some(zbus::Variant::Str(s)) => Some(s.as_str().to_owned()),
            _ => None,
        };
        if Some(interface) == self.type_interface {
            if let Some(result) = text("Result") {
                self.result = Some(result);
            }
            return None;
        }
        if interface != UNIT_INTERFACE {
            return None;
        }
        let state = ActiveState::from(text("ActiveState")?.as_str());
        if state == self.last {
            return None;
        }
        self.last = state.clone();
        Some(UnitEvent {
            unit: self.unit.clone(),
            active_state: state,
            sub_state: text("SubState").unwrap_or_default(),
            result: self.result.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_results_round_trip_through_their_names() {
        for s in [
            "active",
            "inactive",
            "failed",
            "activating",
            "deactivating",
            "reloading",
        ] {
            assert_eq!(ActiveState::from(s).as_str(), s);
        }
        assert_eq!(
            ActiveState::from("new-state"),
            ActiveState::Other("new-state".into())
        );
        for r in [
            "done",
            "canceled",
            "timeout",
            "failed",
            "dependency",
            "skipped",
        ] {
            assert_eq!(JobResult::from(r).as_str(), r);
        }
    }

    #[test]
    fn type_interface_follows_the_unit_suffix() {
        assert_eq!(
            type_interface("a.service"),
            Some("org.freedesktop.systemd1.Service")
        );
        assert_eq!(
            type_interface("x@a:b.service"),
            Some("org.freedesktop.systemd1.Service")
        );
        assert_eq!(type_interface("multi-user.target"), None);
        assert_eq!(type_interface("noext"), None);
    }

    #[test]
    fn watch_reports_only_changes_of_active_state_with_the_latest_result() {
        let mut w = WatchState {
            unit: "a.service".into(),
            type_interface: type_interface("a.service"),
            last: ActiveState::Active,
            result: Some("success".into()),
        };
        let unit = |active: &'static str, sub: &'static str| {
            std::collections::HashMap::from([
                ("ActiveState", zbus::Variant::from(active)),
                ("SubState", zbus::Variant::from(sub)),
            ])
        };
        assert_eq!(w.apply(UNIT_INTERFACE, &unit("active", "running")), None);
        let svc = std::collections::HashMap::from([("Result", zbus::Variant::from("signal"))]);
        assert_eq!(w.apply("org.freedesktop.systemd1.Service", &svc), None);
        let ev = w.apply(UNIT_INTERFACE, &unit("failed", "failed")).unwrap();
        assert!(ev.is_down());
        assert_eq!(ev.result.as_deref(), Some("signal"));
        assert_eq!(ev.sub_state, "failed");
        assert_eq!(w.apply(UNIT_INTERFACE, &unit("failed", "failed")), None);
    }
}
