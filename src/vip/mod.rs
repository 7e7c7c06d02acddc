//! Floating addresses over rtnetlink, announced with GARP/NA.
//!
//! A thin adapter: add, delete and look up VIPs, announce them to the
//! segment, and report address changes. Whether a VIP *should* be here is
//! the engine's business.
//!
//! - [`Vips::add_batch`] and [`Vips::del_batch`] act on a group's addresses
//!   at once: one link lookup per interface, one address dump per family,
//!   and every request in one datagram, which the kernel carries out within
//!   one sendmsg(2). Each address still gets its own result.
//! - [`Announcer`] sends the GARP/NA rounds of every address from one task,
//!   with one long-lived packet socket per interface.
//! - [`Vips::add`] and [`Vips::del`] are idempotent: an address already
//!   present (same address on the interface, whatever its prefix) is
//!   [`AddOutcome::AlreadyPresent`]; deleting an absent one is
//!   [`DelOutcome::Absent`].
//! - An IPv4 VIP gets its label and broadcast address (`brd +` when the
//!   configuration gives none, as IPaddr does). An IPv6 VIP is added with
//!   `IFA_F_NODAD`, so it is usable at once.
//! - With no interface configured, the VIP goes on the interface holding an
//!   address of the same subnet (longest prefix wins), like heartbeat's
//!   IPaddr `findif`.
//! - Deleting a primary IPv4 address makes the kernel delete its
//!   secondaries unless `promote_secondaries` is on (see [`Vips::del`]).

mod announce;
mod batch;
mod network;
pub mod packet;
mod route;
mod watch;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::task::JoinHandle;

use crate::config::Vip;

pub use announce::{AnnounceTarget, Announcer, announced};
pub use watch::{AddrEvent, AddrWatch, watch};

#[derive(Debug, thiserror::Error)]
pub enum VipError {
    #[error("opening a netlink socket")]
    Connect {
        #[source]
        source: io::Error,
    },
    #[error("VIP {addr}: interface {iface} does not exist")]
    InterfaceMissing { iface: String, addr: IpAddr },
    #[error(
        "VIP {addr}/{prefix}: no interface has an address in that subnet; \
         name the interface in haresources"
    )]
    NoInterfaceForSubnet { addr: IpAddr, prefix: u8 },
    #[error("VIP {addr}: {op} on {iface} failed")]
    Netlink {
        op: &'static str,
        addr: IpAddr,
        iface: String,
        /// Boxed: rtnetlink's error carries a whole netlink message.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("VIP {addr}: sending its netlink batch failed")]
    Batch {
        addr: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("VIP {addr}: {path}")]
    Sysctl {
        addr: IpAddr,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{addr}: there is no default route to give a source address")]
    NoDefaultRoute { addr: IpAddr },
    #[error("{addr}: not an address of this node, so it cannot be the default route's source")]
    SourceNotLocal { addr: IpAddr },
    #[error("VIP {addr}: interface {iface} has no Ethernet address to announce from")]
    NoMac { iface: String, addr: IpAddr },
    #[error("VIP {addr}: announcing on {iface} failed")]
    Announce {
        addr: IpAddr,
        iface: String,
        #[source]
        source: io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    AlreadyPresent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelOutcome {
    Deleted,
    Absent,
}

/// How often, and how far apart, a VIP is announced after it is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceConfig {
    /// Rounds sent; each IPv4 round is one ARP request and one ARP reply,
    /// each IPv6 round one Neighbour Advertisement.
    pub count: u32,
    /// Pause between rounds; the first round goes at once.
    pub interval: Duration,
}

impl Default for AnnounceConfig {
    /// Five rounds, 200 ms apart: the first reaches the segment at once,
    /// the rest cover a lost frame or a switch still learning.
    fn default() -> Self {
        AnnounceConfig {
            count: 5,
            interval: Duration::from_millis(200),
        }
    }
}

/// The interface a VIP lives on, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipIface {
    pub index: u32,
    pub name: String,
    /// The IPv4 label to give the address, if any.
    pub label: Option<String>,
}

#[derive(Clone)]
struct LinkInfo {
    index: u32,
    name: String,
    mac: Option<[u8; 6]>,
}

/// The positive errno of a netlink error reply, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// The address a message is about: IFA_LOCAL (the address itself on IPv4
/// point-to-point links too), else IFA_ADDRESS.
pub(crate) fn msg_addr(m: &AddressMessage) -> Option<IpAddr> {
    let local = m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

fn is_secondary(m: &AddressMessage) -> bool {
    m.header.flags.contains(AddressHeaderFlags::Secondary)
        || m.attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Flags(f) if f.contains(AddressFlags::Secondary)))
}

fn label_of(m: &AddressMessage) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        AddressAttribute::Label(l) => Some(l.clone()),
        _ => None,
    })
}

/// Whether `a` and `b` share the first `prefix` bits (false across families).
pub fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// `ip addr add ... brd +`: the all-ones host part, or none for /31 and /32.
pub fn default_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix < 31).then(|| Ipv4Addr::from(u32::from(addr) | (u32::MAX >> prefix)))
}

/// Splits `iface` as haresources may write it (`eth0:0`) into the device and
/// the label; an explicit `label` wins.
fn device_and_label(vip: &Vip) -> (Option<&str>, Option<String>) {
    match vip.iface.as_deref() {
        Some(i) => match i.split_once(':') {
            Some((dev, _)) => (Some(dev), vip.label.clone().or_else(|| Some(i.to_owned()))),
            None => (Some(i), vip.label.clone()),
        },
        None => (None, vip.label.clone()),
    }
}

fn family_of(addr: IpAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn sysctl_path(family: &str, iface: &str, key: &str) -> String {
    format!("/proc/sys/net/{family}/conf/{iface}/{key}")
}

/// Reads a 0/1 sysctl of the calling thread's network namespace.
fn read_flag(path: &str) -> io::Result<bool> {
    Ok(std::fs::read_to_string(path)?.trim() != "0")
}

/// A netlink connection in the caller's network namespace.
pub struct Vips {
    handle: Handle,
    conn: JoinHandle<()>,
    /// Adds and deletes go out in batches on a socket of their own.
    batcher: batch::Batcher,
    /// One request at a time: the kernel answers a second address or link
    /// dump on the same socket with EBUSY while one is running, and the
    /// runtime acts on several addresses at once.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Vips {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vips")
    }
}

impl Drop for Vips {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Vips {
    /// Opens the netlink socket. Call inside a tokio runtime; the socket
    /// belongs to the calling thread's network namespace.
    pub fn connect() -> Result<Vips, VipError> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|source| VipError::Connect { source })?;
        let batcher = batch::Batcher::open().map_err(|source| VipError::Connect { source })?;
        Ok(Vips {
            handle,
            conn: tokio::spawn(conn),
            batcher,
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// Sends the requests as one batch (see [`batch`]) and returns each
    /// one's answer as rtnetlink reports errors, or why the batch could not
    /// be sent at all.
    fn batch(
        &self,
        requests: Vec<(RouteNetlinkMessage, u16)>,
    ) -> io::Result<Vec<Result<(), rtnetlink::Error>>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .batcher
            .run(requests)?
            .into_iter()
            .map(|a| a.map_err(rtnetlink::Error::NetlinkError))
            .collect())
    }

    /// `e` for one address of a batch that could not be sent.
    fn batch_err(addr: IpAddr, e: &io::Error) -> VipError {
        VipError::Batch {
            addr,
            source: io::Error::new(e.kind(), e.to_string()),
        }
    }

    fn nl_err<'a>(
        op: &'static str,
        addr: IpAddr,
        iface: &'a str,
    ) -> impl FnOnce(rtnetlink::Error) -> VipError + 'a {
        move |source| VipError::Netlink {
            op,
            addr,
            iface: iface.to_owned(),
            source: Box::new(source),
        }
    }

    fn link_info(m: &rtnetlink::packet_route::link::LinkMessage) -> LinkInfo {
        let mut info = LinkInfo {
            index: m.header.index,
            name: String::new(),
            mac: None,
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => info.name = n.clone(),
                LinkAttribute::Address(mac) if mac.len() == 6 => {
                    info.mac = Some(mac[..6].try_into().expect("6 bytes"))
                }
                _ => {}
            }
        }
        info
    }

    /// `None` if the interface does not exist.
    async fn link_by_name(&self, name: &str, addr: IpAddr) -> Result<Option<LinkInfo>, VipError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(m)) => Ok(Some(Self::link_info(&m))),
            Ok(None) => Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(Self::nl_err("looking up the interface", addr, name)(e)),
        }
    }

    async fn link_by_index(&self, index: u32, addr: IpAddr) -> Result<LinkInfo, VipError> {
        let mut links = self.handle.link().get().match_index(index).execute();
        let iface = format!("#{index}");
        match links.try_next().await {
            Ok(Some(m)) => Ok(Self::link_info(&m)),
            Ok(None) => Err(VipError::InterfaceMissing { iface, addr }),
            Err(e) if errno(&e) == Some(libc::ENODEV) => {
                Err(VipError::InterfaceMissing { iface, addr })
            }
            Err(e) => Err(Self::nl_err("looking up the interface", addr, &iface)(e)),
        }
    }

    /// All addresses of `addr`'s family in the namespace.
    async fn dump(&self, addr: IpAddr) -> Result<Vec<AddressMessage>, VipError> {
        let mut req = self.handle.address().get();
        req.message_mut().header.family = family_of(addr);
        let all: Vec<AddressMessage> = req.execute().try_collect().await.map_err(Self::nl_err(
            "listing addresses",
            addr,
            "all interfaces",
        ))?;
        Ok(all
            .into_iter()
            .filter(|m| m.header.family == family_of(addr))
            .collect())
    }

    /// The interface `vip` goes on: the configured one (which must exist),
    /// else the one holding an address of the VIP's subnet.
    pub async fn resolve(&self, vip: &Vip) -> Result<VipIface, VipError> {
        let _one = self.busy.lock().await;
        let mut seen = Seen::default();
        Ok(self.resolve_link(&mut seen, vip).await?.0)
    }

    async fn resolve_link(
        &self,
        seen: &mut Seen,
        vip: &Vip,
    ) -> Result<(VipIface, LinkInfo), VipError> {
        let (dev, label) = device_and_label(vip);
        let link = match dev {
            Some(dev) => seen
                .link_by_name(self, dev, vip.addr)
                .await?
                .ok_or_else(|| VipError::InterfaceMissing {
                    iface: dev.to_owned(),
                    addr: vip.addr,
                })?,
            None => {
                let index = seen
                    .addresses(self, vip.addr)
                    .await?
                    .iter()
                    .filter(|m| m.header.prefix_len > 0)
                    .filter(|m| {
                        msg_addr(m).is_some_and(|a| same_subnet(a, vip.addr, m.header.prefix_len))
                    })
                    .max_by_key(|m| m.header.prefix_len)
                    .ok_or(VipError::NoInterfaceForSubnet {
                        addr: vip.addr,
                        prefix: vip.prefix,
                    })?
                    .header
                    .index;
                seen.link_by_index(self, index, vip.addr).await?
            }
        };
        let iface = VipIface {
            index: link.index,
            name: link.name.clone(),
            label: label.filter(|_| vip.addr.is_ipv4()),
        };
        Ok((iface, link))
    }

    /// The messages for `vip.addr` on its interface (any interface when none
    /// is configured). A configured interface that does not exist holds
    /// nothing.
    async fn find(&self, seen: &mut Seen, vip: &Vip) -> Result<Vec<AddressMessage>, VipError> {
        let index = match device_and_label(vip).0 {
            Some(dev) => match seen.link_by_name(self, dev, vip.addr).await? {
                Some(l) => Some(l.index),
                None => return Ok(vec![]),
            },
            None => None,
        };
        Ok(seen
            .addresses(self, vip.addr)
            .await?
            .iter()
            .filter(|m| index.is_none_or(|i| m.header.index == i))
            .filter(|m| msg_addr(m) == Some(vip.addr))
            .cloned()
            .collect())
    }

    /// Whether the VIP's address is on its interface (on any interface when
    /// none is configured).
    pub async fn present(&self, vip: &Vip) -> Result<bool, VipError> {
        Ok(self.list_present(std::slice::from_ref(vip)).await?[0])
    }

    /// [`present`](Self::present) for each VIP, in order, from one address
    /// dump: for reconciling at start.
    pub async fn list_present(&self, vips: &[Vip]) -> Result<Vec<bool>, VipError> {
        let _one = self.busy.lock().await;
        let mut seen = Seen::default();
        let mut out = Vec::with_capacity(vips.len());
        for vip in vips {
            out.push(!self.find(&mut seen, vip).await?.is_empty());
        }
        Ok(out)
    }

    /// Adds the VIP; returns once the kernel has acknowledged it.
    pub async fn add(&self, vip: &Vip) -> Result<AddOutcome, VipError> {
        let mut r = self.add_batch(std::slice::from_ref(vip)).await;
        r.pop().expect("one result per VIP")
    }

    /// Adds the VIPs as one batch: one link lookup per interface and one
    /// address dump per family, then every request sent before the first
    /// acknowledgement is awaited, so they appear together. Returns one
    /// result per VIP, in order, once the kernel has answered them all.
    pub async fn add_batch(&self, vips: &[Vip]) -> Vec<Result<AddOutcome, VipError>> {
        let _one = self.busy.lock().await;
        let mut seen = Seen::default();
        let mut out: Vec<Option<Result<AddOutcome, VipError>>> = Vec::with_capacity(vips.len());
        let mut requests = Vec::new();
        let mut asked: Vec<(usize, String)> = Vec::new();
        for (i, vip) in vips.iter().enumerate() {
            let iface = match self.resolve_link(&mut seen, vip).await {
                Ok((iface, _)) => iface,
                Err(e) => {
                    out.push(Some(Err(e)));
                    continue;
                }
            };
            let present = match seen.addresses(self, vip.addr).await {
                Ok(all) => all
                    .iter()
                    .any(|m| m.header.index == iface.index && msg_addr(m) == Some(vip.addr)),
                Err(e) => {
                    out.push(Some(Err(e)));
                    continue;
                }
            };
            if present {
                out.push(Some(Ok(AddOutcome::AlreadyPresent)));
                continue;
            }
            out.push(None);
            let mut req = self.handle.address().add(iface.index, vip.addr, vip.prefix);
            let msg = req.message_mut();
            msg.attributes.clear();
            msg.attributes.push(AddressAttribute::Local(vip.addr));
            msg.attributes.push(AddressAttribute::Address(vip.addr));
            match vip.addr {
                IpAddr::V4(v4) => {
                    if let Some(brd) = vip.broadcast.or_else(|| default_broadcast(v4, vip.prefix)) {
                        msg.attributes.push(AddressAttribute::Broadcast(brd));
                    }
                    if let Some(label) = &iface.label {
                        msg.attributes.push(AddressAttribute::Label(label.clone()));
                    }
                }
                IpAddr::V6(_) => {
                    msg.header.flags = AddressHeaderFlags::Nodad;
                    msg.attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
            }
            let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
            let msg = RouteNetlinkMessage::NewAddress(std::mem::take(req.message_mut()));
            requests.push((msg, flags));
            asked.push((i, iface.name));
        }
        let answers = match self.batch(requests) {
            Ok(a) => a,
            Err(e) => {
                for (i, _) in asked {
                    out[i] = Some(Err(Self::batch_err(vips[i].addr, &e)));
                }
                return out
                    .into_iter()
                    .map(|r| r.expect("every VIP answered"))
                    .collect();
            }
        };
        for ((i, iface), answer) in asked.into_iter().zip(answers) {
            let vip = &vips[i];
            out[i] = Some(match answer {
                Ok(()) => Ok(AddOutcome::Added),
                Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
                Err(e) => Err(Self::nl_err("adding the address", vip.addr, &iface)(e)),
            });
        }
        out.into_iter()
            .map(|r| r.expect("every VIP answered"))
            .collect()
    }

    /// Deletes the VIP; returns once the kernel has acknowledged it.
    pub async fn del(&self, vip: &Vip) -> Result<DelOutcome, VipError> {
        let mut r = self.del_batch(std::slice::from_ref(vip)).await;
        r.pop().expect("one result per VIP")
    }

    /// Deletes the VIPs as one batch, like [`add_batch`](Self::add_batch);
    /// one result per VIP, in order.
    ///
    /// Deleting a primary IPv4 address deletes the secondaries of its subnet
    /// unless `promote_secondaries` is on for the interface. When a VIP is
    /// such a primary, `promote_secondaries` is switched on for the
    /// interface just for the batch, then put back. We prefer this to
    /// re-adding the vanished secondaries afterwards: the kernel promotes
    /// them atomically with their labels, flags and lifetimes, and the
    /// other groups' VIPs never disappear, not even for a moment.
    pub async fn del_batch(&self, vips: &[Vip]) -> Vec<Result<DelOutcome, VipError>> {
        let _one = self.busy.lock().await;
        let mut seen = Seen::default();
        let mut out: Vec<Result<DelOutcome, VipError>> = Vec::with_capacity(vips.len());
        let mut guards: HashMap<u32, PromoteGuard> = HashMap::new();
        let mut requests = Vec::new();
        let mut asked: Vec<(usize, String)> = Vec::new();
        for (i, vip) in vips.iter().enumerate() {
            let found = match self.find(&mut seen, vip).await {
                Ok(f) => f,
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            out.push(Ok(DelOutcome::Absent));
            for m in found {
                let index = m.header.index;
                if let std::collections::hash_map::Entry::Vacant(slot) = guards.entry(index) {
                    match self.guard_secondaries(&mut seen, vip, &m).await {
                        Ok(Some(g)) => {
                            slot.insert(g);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            out[i] = Err(e);
                            continue;
                        }
                    }
                }
                let iface = match seen.link_by_index(self, index, vip.addr).await {
                    Ok(l) => l.name,
                    Err(_) => format!("#{index}"),
                };
                let mut del = AddressMessage::default();
                del.header = m.header.clone();
                del.header.flags = AddressHeaderFlags::empty();
                del.attributes.push(AddressAttribute::Local(vip.addr));
                del.attributes.push(AddressAttribute::Address(vip.addr));
                if let Some(l) = label_of(&m) {
                    del.attributes.push(AddressAttribute::Label(l));
                }
                requests.push((
                    RouteNetlinkMessage::DelAddress(del),
                    NLM_F_REQUEST | NLM_F_ACK,
                ));
                asked.push((i, iface));
            }
        }
        let answers = match self.batch(requests) {
            Ok(a) => a,
            Err(e) => {
                for (i, _) in asked {
                    out[i] = Err(Self::batch_err(vips[i].addr, &e));
                }
                return out;
            }
        };
        for ((i, iface), answer) in asked.into_iter().zip(answers) {
            let vip = &vips[i];
            let r = match answer {
                Ok(()) => Ok(Some(DelOutcome::Deleted)),
                Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => Ok(None),
                Err(e) => Err(Self::nl_err("deleting the address", vip.addr, &iface)(e)),
            };
            match r {
                Ok(Some(d)) if out[i].is_ok() => out[i] = Ok(d),
                Ok(_) => {}
                Err(e) => out[i] = Err(e),
            }
        }
        drop(guards);
        out
    }

    /// If deleting `m` would take secondaries with it, switches
    /// `promote_secondaries` on and returns a guard that switches it back.
    async fn guard_secondaries(
        &self,
        seen: &mut Seen,
        vip: &Vip,
        m: &AddressMessage,
    ) -> Result<Option<PromoteGuard>, VipError> {
        if !vip.addr.is_ipv4() || is_secondary(m) {
            return Ok(None);
        }
        let prefix = m.header.prefix_len;
        let has_secondaries = seen.addresses(self, vip.addr).await?.iter().any(|o| {
            o.header.index == m.header.index
                && is_secondary(o)
                && o.header.prefix_len == prefix
                && msg_addr(o).is_some_and(|a| same_subnet(a, vip.addr, prefix))
        });
        if !has_secondaries {
            return Ok(None);
        }
        let name = seen
            .link_by_index(self, m.header.index, vip.addr)
            .await?
            .name;
        let sysctl_err = |path: &String| {
            let path = path.clone();
            move |source| VipError::Sysctl {
                addr: vip.addr,
                path,
                source,
            }
        };
        // The kernel honours conf/all OR conf/<iface>.
        let all = sysctl_path("ipv4", "all", "promote_secondaries");
        let path = sysctl_path("ipv4", &name, "promote_secondaries");
        if read_flag(&all).map_err(sysctl_err(&all))?
            || read_flag(&path).map_err(sysctl_err(&path))?
        {
            return Ok(None);
        }
        std::fs::write(&path, "1").map_err(sysctl_err(&path))?;
        log::info!(
            "VIP {} is the primary address of its subnet on {name}: promote_secondaries \
             enabled for the delete so its secondaries survive",
            vip.addr
        );
        Ok(Some(PromoteGuard { iface: name, path }))
    }

    /// Where to announce each VIP from (one link lookup per interface), for
    /// an [`Announcer`]. One result per VIP, in order.
    pub async fn targets(&self, vips: &[Vip]) -> Vec<Result<AnnounceTarget, VipError>> {
        let _one = self.busy.lock().await;
        let mut seen = Seen::default();
        let mut out = Vec::with_capacity(vips.len());
        for vip in vips {
            out.push(
                self.resolve_link(&mut seen, vip)
                    .await
                    .and_then(|(iface, link)| {
                        let mac = link.mac.ok_or_else(|| VipError::NoMac {
                            iface: iface.name.clone(),
                            addr: vip.addr,
                        })?;
                        // A forwarding interface answers as a router (NA R flag).
                        let router = vip.addr.is_ipv6()
                            && read_flag(&sysctl_path("ipv6", &iface.name, "forwarding"))
                                .unwrap_or(false);
                        Ok(AnnounceTarget {
                            addr: vip.addr,
                            ifindex: iface.index,
                            iface: iface.name,
                            mac,
                            router,
                        })
                    }),
            );
        }
        out
    }
}

/// What one batch has looked up already: links by name and index, and the
/// address dump of each family, so a batch costs one dump, not one per VIP.
#[derive(Default)]
struct Seen {
    by_name: HashMap<String, Option<LinkInfo>>,
    by_index: HashMap<u32, LinkInfo>,
    v4: Option<Vec<AddressMessage>>,
    v6: Option<Vec<AddressMessage>>,
}

impl Seen {
    async fn link_by_name(
        &mut self,
        vips: &Vips,
        name: &str,
        addr: IpAddr,
    ) -> Result<Option<LinkInfo>, VipError> {
        if let Some(l) = self.by_name.get(name) {
            return Ok(l.clone());
        }
        let l = vips.link_by_name(name, addr).await?;
        self.by_name.insert(name.to_owned(), l.clone());
        Ok(l)
    }

    async fn link_by_index(
        &mut self,
        vips: &Vips,
        index: u32,
        addr: IpAddr,
    ) -> Result<LinkInfo, VipError> {
        if let Some(l) = self.by_index.get(&index) {
            return Ok(l.clone());
        }
        let l = vips.link_by_index(index, addr).await?;
        self.by_index.insert(index, l.clone());
        Ok(l)
    }

    async fn addresses(
        &mut self,
        vips: &Vips,
        addr: IpAddr,
    ) -> Result<&[AddressMessage], VipError> {
        let slot = if addr.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        if slot.is_none() {
            *slot = Some(vips.dump(addr).await?);
        }
        Ok(slot.as_deref().unwrap_or_default())
    }
}

/// Puts `promote_secondaries` back to 0 when dropped.
struct PromoteGuard {
    iface: String,
    path: String,
}

impl Drop for PromoteGuard {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(&self.path, "0") {
            log::warn!("{}: restoring promote_secondaries=0: {e}", self.iface);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VipKind;

    #[test]
    fn broadcast_defaults_like_brd_plus() {
        let a = Ipv4Addr::new(198, 18, 1, 100);
        assert_eq!(
            default_broadcast(a, 24),
            Some(Ipv4Addr::new(198, 18, 1, 255))
        );
        assert_eq!(
            default_broadcast(a, 16),
            Some(Ipv4Addr::new(198, 18, 255, 255))
        );
        assert_eq!(default_broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(default_broadcast(a, 31), None);
        assert_eq!(default_broadcast(a, 32), None);
    }

    #[test]
    fn subnets_compare_by_prefix() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_subnet(ip("198.18.1.1"), ip("198.18.1.200"), 24));
        assert!(!same_subnet(ip("198.18.1.1"), ip("198.18.2.1"), 24));
        assert!(same_subnet(ip("198.18.1.1"), ip("198.19.0.0"), 15));
        assert!(same_subnet(ip("198.18.1.1"), ip("1.2.3.4"), 0));
        assert!(same_subnet(ip("2001:db8:1::1"), ip("2001:db8:1::ff"), 64));
        assert!(!same_subnet(ip("2001:db8:1::1"), ip("2001:db8:2::1"), 64));
        assert!(!same_subnet(ip("198.18.1.1"), ip("2001:db8:1::1"), 0));
    }

    fn vip(iface: Option<&str>, label: Option<&str>) -> Vip {
        Vip {
            kind: VipKind::IPaddr,
            addr: "198.18.1.100".parse().unwrap(),
            prefix: 24,
            iface: iface.map(str::to_owned),
            label: label.map(str::to_owned),
            broadcast: None,
            auto_prefix: false,
        }
    }

    #[test]
    fn alias_interface_splits_into_device_and_label() {
        assert_eq!(
            device_and_label(&vip(Some("eth0:0"), None)),
            (Some("eth0"), Some("eth0:0".to_owned()))
        );
        assert_eq!(
            device_and_label(&vip(Some("eth0:0"), Some("eth0:ha"))),
            (Some("eth0"), Some("eth0:ha".to_owned()))
        );
        assert_eq!(
            device_and_label(&vip(Some("eth0"), None)),
            (Some("eth0"), None)
        );
        assert_eq!(device_and_label(&vip(None, None)), (None, None));
    }
}
