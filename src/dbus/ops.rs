//! What the methods do: hand a request to the runtime, wait for its
//! answer, and for Standby/Takeover wait until the cluster has settled.

use std::time::Duration;

use log::info;
use tokio::sync::{mpsc, oneshot, watch};
use zbus::message::Header;

use super::Error;
use super::model::{self, GroupRow};
use crate::control::{Control, Snapshot};
use crate::engine::{AdminError, AdminRequest, Scope};

/// Slack on top of two deadtimes for resource actions (units starting).
const SETTLE_SLACK: Duration = Duration::from_secs(10);

pub(super) fn parse_scope(s: &str) -> Result<Scope, Error> {
    Scope::parse(s).ok_or_else(|| {
        Error::InvalidScope(format!(
            "unknown scope {s:?}: use all, local, foreign or failback"
        ))
    })
}

fn gone() -> Error {
    Error::ShuttingDown("the daemon is stopping; its event loop has ended".to_string())
}

impl From<AdminError> for Error {
    fn from(e: AdminError) -> Error {
        let msg = e.to_string();
        match e {
            AdminError::NoPeer(_) => Error::NoPeer(msg),
            AdminError::NotReady => Error::NotReady(msg),
            AdminError::ShuttingDown => Error::ShuttingDown(msg),
            AdminError::Maintenance => Error::Maintenance(msg),
            AdminError::NotFencing(_) => Error::NotFencing(msg),
        }
    }
}

/// How long a request may take to settle: two deadtimes (a peer that
/// vanishes mid-handoff is declared dead, then the group moves) plus slack.
pub(super) fn settle_limit(s: &Snapshot) -> Duration {
    Duration::from_millis(s.deadtime_ms.saturating_mul(2)) + SETTLE_SLACK
}

/// Sends `request`; once the engine accepts it, waits until it has taken
/// effect ([`model::settled`]) and returns the groups as they are then.
pub(super) async fn admin(
    control: &mpsc::Sender<Control>,
    snapshot: &watch::Receiver<Snapshot>,
    request: AdminRequest,
) -> Result<Vec<GroupRow>, Error> {
    let (reply, answer) = oneshot::channel();
    control
        .send(Control::Admin { request, reply })
        .await
        .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())??;
    let mut snapshot = snapshot.clone();
    let limit = settle_limit(&snapshot.borrow());
    let waited = tokio::time::timeout(limit, async {
        let s = snapshot
            .wait_for(|s| model::settled(&s.view, request))
            .await?;
        Ok::<_, watch::error::RecvError>(model::groups(&s.view))
    })
    .await;
    match waited {
        Ok(Ok(groups)) => Ok(groups),
        Ok(Err(_)) => Err(gone()),
        Err(_) => {
            let s = snapshot.borrow();
            let now: Vec<String> = s
                .view
                .groups
                .iter()
                .map(|g| {
                    format!(
                        "{} is {} here, held by {}",
                        g.key,
                        g.local_state,
                        g.holder.as_deref().unwrap_or("nobody")
                    )
                })
                .collect();
            Err(Error::Timeout(format!(
                "{} was accepted but the cluster did not settle within {} ms: {}",
                describe(request),
                limit.as_millis(),
                now.join("; ")
            )))
        }
    }
}

fn describe(request: AdminRequest) -> String {
    match request {
        AdminRequest::Standby(s) => format!("standby [{s}]"),
        AdminRequest::Takeover(s) => format!("takeover [{s}]"),
        AdminRequest::Maintenance(on) => {
            format!("maintenance {}", if on { "on" } else { "off" })
        }
        AdminRequest::FenceConfirm(n) => format!("fence-confirm of node #{n}"),
    }
}

/// Asks the runtime to re-read its configuration.
pub(super) async fn reload(control: &mpsc::Sender<Control>) -> Result<(), Error> {
    let (reply, answer) = oneshot::channel();
    control
        .send(Control::Reload { reply })
        .await
        .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?.map_err(|errors| {
        Error::ReloadFailed(format!(
            "the new configuration has errors; the previous one stays in force:\n{errors}"
        ))
    })
}

/// Logs who asked (unique name and uid), for the audit trail.
pub(super) async fn log_caller(conn: &zbus::Connection, hdr: &Header<'_>, request: AdminRequest) {
    let Some(sender) = hdr.sender() else {
        info!("{} requested over D-Bus", describe(request));
        return;
    };
    let uid = match zbus::fdo::DBusProxy::new(conn).await {
        Ok(dbus) => dbus
            .get_connection_unix_user(sender.clone().into())
            .await
            .ok(),
        Err(_) => None,
    };
    match uid {
        Some(uid) => info!(
            "{} requested over D-Bus by {sender} (uid {uid})",
            describe(request)
        ),
        None => info!("{} requested over D-Bus by {sender}", describe(request)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scope_is_a_typed_error_naming_the_choices() {
        match parse_scope("everything") {
            Err(Error::InvalidScope(m)) => assert!(m.contains("all, local, foreign or failback")),
            other => panic!("expected InvalidScope, got {other:?}"),
        }
        assert_eq!(parse_scope("failback").unwrap(), Scope::Failback);
    }

    #[test]
    fn engine_refusals_map_to_their_dbus_errors() {
        use zbus::DBusError;
        let e = Error::from(AdminError::NoPeer("g".into()));
        assert_eq!(e.name().as_str(), "org.harust.Harust1.Error.NoPeer");
        assert_eq!(e.description(), Some("no live peer can take over group g"));
        let e = Error::from(AdminError::NotReady);
        assert_eq!(e.name().as_str(), "org.harust.Harust1.Error.NotReady");
    }
}
