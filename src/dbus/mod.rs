//! The D-Bus API: `org.harust.Harust1` at `/org/harust/Harust1`.
//!
//! ```text
//!  D-Bus call ──▶ Harust1 (#[interface], thin) ──▶ ops::admin / ops::reload ──Control──▶ runtime
//!                                                  ops waits on the Snapshot until settled
//!  runtime ──Snapshot (watch)──▶ publish::properties ──▶ PropertiesChanged (changed ones only)
//!  runtime ──Event (broadcast)─▶ publish::signals    ──▶ PeerUp, GroupAcquired, …, Transition
//! ```
//!
//! `dbus-interfaces/org.harust.Harust1.xml` is the contract and documents
//! every member; a test checks it against the live introspection. The bus
//! policy is `dbus-interfaces/org.harust.Harust1.conf`.

pub mod client;
pub mod metrics;
pub mod model;
mod ops;
mod publish;

use std::collections::BTreeMap;

use anyhow::Context;
use log::{info, warn};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use zbus::interface;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;

use crate::control::{Control, Handle, Snapshot};
use crate::engine::AdminRequest;
use model::GroupRow;

/// The well-known name, object path and interface (DESIGN.md: fixed).
pub const NAME: &str = "org.harust.Harust1";
pub const PATH: &str = "/org/harust/Harust1";
pub const INTERFACE: &str = "org.harust.Harust1";

/// Typed errors of the API: `org.harust.Harust1.Error.<Variant>`, each with
/// a message for people.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.harust.Harust1.Error")]
pub enum Error {
    /// The scope is not `all`, `local`, `foreign` or `failback`.
    InvalidScope(String),
    /// A group in scope is held here and no live peer can take it.
    NoPeer(String),
    /// Cluster communication is not up yet (initdead, no peer heard).
    NotReady(String),
    /// The daemon is stopping (or its event loop is gone).
    ShuttingDown(String),
    /// The new configuration has errors; the old one stays in force.
    ReloadFailed(String),
    /// The request was accepted, but the cluster did not settle in time.
    Timeout(String),
    /// Maintenance mode is on: nothing may move until it is turned off.
    Maintenance(String),
    /// FenceConfirm: the node is not waiting for a fence (alive, stopped
    /// gracefully, without a fence device, or not a node).
    NotFencing(String),
}

/// The object at [`PATH`]. Its methods only parse and delegate to [`ops`];
/// its properties read the latest [`Snapshot`].
pub struct Harust1 {
    control: mpsc::Sender<Control>,
    snapshot: watch::Receiver<Snapshot>,
}

#[interface(name = "org.harust.Harust1", introspection_docs = false)]
impl Harust1 {
    /// hb_standby: hand the groups in `scope` to a peer; returns `Groups`
    /// once they have moved.
    #[zbus(out_args("groups"))]
    async fn standby(
        &self,
        scope: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<GroupRow>, Error> {
        let request = AdminRequest::Standby(ops::parse_scope(scope)?);
        ops::log_caller(conn, &hdr, request).await;
        ops::admin(&self.control, &self.snapshot, request).await
    }

    /// hb_takeover: take the groups in `scope` over; returns `Groups` once
    /// this node holds them.
    #[zbus(out_args("groups"))]
    async fn takeover(
        &self,
        scope: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<Vec<GroupRow>, Error> {
        let request = AdminRequest::Takeover(ops::parse_scope(scope)?);
        ops::log_caller(conn, &hdr, request).await;
        ops::admin(&self.control, &self.snapshot, request).await
    }

    /// Cluster-wide maintenance mode on or off: while on, no node acquires,
    /// releases or fails over anything.
    async fn set_maintenance(
        &self,
        on: bool,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        let request = AdminRequest::Maintenance(on);
        ops::log_caller(conn, &hdr, request).await;
        ops::admin(&self.control, &self.snapshot, request)
            .await
            .map(|_| ())
    }

    /// heartbeat's meatware: the operator confirms that `node` is off (or
    /// was reset); it counts as a successful fence of its current death,
    /// so its groups may be taken over.
    async fn fence_confirm(
        &self,
        node: &str,
        #[zbus(header)] hdr: Header<'_>,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> Result<(), Error> {
        let index = self
            .snapshot
            .borrow()
            .view
            .nodes
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(node));
        let Some(index) = index else {
            return Err(Error::NotFencing(format!(
                "{node} is not a node of this cluster"
            )));
        };
        let request = AdminRequest::FenceConfirm(index);
        ops::log_caller(conn, &hdr, request).await;
        ops::admin(&self.control, &self.snapshot, request)
            .await
            .map(|_| ())
    }

    /// Re-read the configuration.
    async fn reload(&self) -> Result<(), Error> {
        ops::reload(&self.control).await
    }

    /// Everything `harust status` shows, as one JSON document.
    #[zbus(out_args("json"))]
    fn status(&self) -> String {
        model::status_json(&self.snapshot.borrow()).to_string()
    }

    /// The node name cannot change while the daemon runs.
    #[zbus(property(emits_changed_signal = "const"))]
    fn node(&self) -> String {
        self.snapshot.borrow().view.node.clone()
    }

    #[zbus(property)]
    fn state(&self) -> String {
        self.snapshot.borrow().view.state.to_string()
    }

    #[zbus(property)]
    fn nodes(&self) -> Vec<(String, String)> {
        model::nodes(&self.snapshot.borrow())
    }

    #[zbus(property)]
    fn quorum(&self) -> String {
        model::quorum(&self.snapshot.borrow().view).to_string()
    }

    #[zbus(property)]
    fn maintenance(&self) -> bool {
        self.snapshot.borrow().view.maintenance
    }

    #[zbus(property)]
    fn links(&self) -> Vec<(String, String, bool)> {
        model::links(&self.snapshot.borrow())
    }

    #[zbus(property)]
    fn groups(&self) -> Vec<GroupRow> {
        model::groups(&self.snapshot.borrow().view)
    }

    #[zbus(property)]
    fn timings(&self) -> BTreeMap<String, u64> {
        model::timings(&self.snapshot.borrow())
    }

    #[zbus(property)]
    fn counters(&self) -> BTreeMap<String, u64> {
        model::counters(&self.snapshot.borrow().view)
    }

    #[zbus(property)]
    fn config_mismatch(&self) -> BTreeMap<String, Vec<String>> {
        self.snapshot.borrow().config_mismatch.clone()
    }

    /// Changes with every beat: read it, no PropertiesChanged.
    #[zbus(property(emits_changed_signal = "false"))]
    fn last_heard(&self) -> BTreeMap<String, u64> {
        model::last_heard(&self.snapshot.borrow())
    }

    #[zbus(property)]
    fn transitions(&self) -> Vec<(u64, String, String)> {
        model::transitions(&self.snapshot.borrow())
    }

    #[zbus(signal)]
    async fn comm_up(e: &SignalEmitter<'_>) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn peer_up(e: &SignalEmitter<'_>, node: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn peer_restarted(e: &SignalEmitter<'_>, node: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn peer_dead(e: &SignalEmitter<'_>, node: &str, graceful: bool) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn late_heartbeat(
        e: &SignalEmitter<'_>,
        node: &str,
        interval_ms: u64,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn link_up(e: &SignalEmitter<'_>, node: &str, link: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn link_down(e: &SignalEmitter<'_>, node: &str, link: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn ping_node_up(e: &SignalEmitter<'_>, target: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn ping_node_down(e: &SignalEmitter<'_>, target: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn group_acquiring(e: &SignalEmitter<'_>, group: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn group_acquired(
        e: &SignalEmitter<'_>,
        group: &str,
        from_node: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn group_releasing(e: &SignalEmitter<'_>, group: &str, to_node: &str)
    -> zbus::Result<()>;
    #[zbus(signal)]
    async fn group_released(e: &SignalEmitter<'_>, group: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn group_failed(e: &SignalEmitter<'_>, group: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn resource_failed(
        e: &SignalEmitter<'_>,
        group: &str,
        resource: u32,
        op: &str,
        reason: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn resource_repaired(
        e: &SignalEmitter<'_>,
        group: &str,
        resource: u32,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn split_brain_resolved(
        e: &SignalEmitter<'_>,
        group: &str,
        keeper: &str,
    ) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn standby_requested(e: &SignalEmitter<'_>, scope: &str, by: &str) -> zbus::Result<()>;
    #[zbus(signal)]
    async fn takeover_requested(e: &SignalEmitter<'_>, scope: &str, by: &str) -> zbus::Result<()>;
    /// Every signalled event once more, generically, for simple monitors.
    #[zbus(signal)]
    async fn transition(
        e: &SignalEmitter<'_>,
        event: &str,
        node: &str,
        group: &str,
        message: &str,
    ) -> zbus::Result<()>;
}

/// A served API. Dropping it stops its tasks and releases the name.
pub struct Server {
    _conn: zbus::Connection,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How to name a bus in messages.
pub fn bus_label(address: Option<&str>) -> String {
    match address {
        None => "the system bus".to_string(),
        Some(a) => format!("the bus at {a}"),
    }
}

fn builder(address: Option<&str>) -> zbus::connection::Builder<'static> {
    match address {
        None => zbus::connection::Builder::system(),
        Some(a) => zbus::connection::Builder::address(a),
    }
}

/// Serves the API on the system bus (`None`) or at `address`. Fails if the
/// name is already owned there: it is requested without queueing and
/// without replacing its owner.
pub async fn serve(address: Option<&str>, handle: Handle) -> anyhow::Result<Server> {
    let bus = bus_label(address);
    let iface = Harust1 {
        control: handle.control.clone(),
        snapshot: handle.snapshot.clone(),
    };
    let built = builder(address)
        .serve_at(PATH, iface)
        .name(NAME)
        .allow_name_replacements(false)
        .replace_existing_names(false)
        .build()
        .await;
    let conn = match built {
        Ok(c) => c,
        Err(zbus::Error::NameTaken) => {
            anyhow::bail!(
                "{NAME} is already owned on {bus}{}: another harust daemon serves it; refusing to start",
                owner_of(address).await
            )
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot serve {NAME} on {bus}"));
        }
    };
    let iface_ref = conn
        .object_server()
        .interface::<_, Harust1>(PATH)
        .await
        .context("the interface just served is missing")?;
    let tasks = vec![
        tokio::spawn(publish::properties(
            iface_ref.clone(),
            handle.snapshot.clone(),
        )),
        tokio::spawn(publish::signals(
            iface_ref,
            handle.events.subscribe(),
            handle.snapshot.clone(),
        )),
    ];
    info!("serving {NAME} at {PATH} on {bus}");
    Ok(Server { _conn: conn, tasks })
}

/// " (by :1.4, pid 1234)", best effort, for the name-taken error.
async fn owner_of(address: Option<&str>) -> String {
    let probe = async {
        let conn = builder(address).build().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name: zbus::names::BusName<'_> = NAME.try_into()?;
        let owner = dbus.get_name_owner(name).await?;
        let pid = dbus
            .get_connection_unix_process_id(owner.clone().into())
            .await
            .ok();
        Ok::<_, zbus::Error>(match pid {
            Some(pid) => format!(" (by {owner}, pid {pid})"),
            None => format!(" (by {owner})"),
        })
    };
    match probe.await {
        Ok(s) => s,
        Err(e) => {
            warn!("cannot find who owns {NAME}: {e}");
            String::new()
        }
    }
}
