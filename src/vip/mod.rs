//! Floating addresses over rtnetlink, announced with GARP/NA.
//!
//! A thin adapter: add, delete and look up VIPs, announce them to the
//! segment, and report address changes. Whether a VIP *should* be here is
//! the engine's business.
//!
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

mod network;
pub mod packet;
mod route;
mod watch;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use futures::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::task::JoinHandle;

use crate::config::Vip;

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
        Ok(Vips {
            handle,
            conn: tokio::spawn(conn),
            busy: tokio::sync::Mutex::new(()),
        })
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
        Ok(self.resolve_link(vip).await?.0)
    }

    async fn resolve_link(&self, vip: &Vip) -> Result<(VipIface, LinkInfo), VipError> {
        let (dev, label) = device_and_label(vip);
        let link = match dev {
            Some(dev) => self.link_by_name(dev, vip.addr).await?.ok_or_else(|| {
                VipError::InterfaceMissing {
                    iface: dev.to_owned(),
                    addr: vip.addr,
                }
            })?,
            None => {
                let best = self
                    .dump(vip.addr)
                    .await?
                    .into_iter()
                    .filter(|m| m.header.prefix_len > 0)
                    .filter(|m| {
                        msg_addr(m).is_some_and(|a| same_subnet(a, vip.addr, m.header.prefix_len))
                    })
                    .max_by_key(|m| m.header.prefix_len)
                    .ok_or(VipError::NoInterfaceForSubnet {
                        addr: vip.addr,
                        prefix: vip.prefix,
                    })?;
                self.link_by_index(best.header.index, vip.addr).await?
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
    async fn find(&self, vip: &Vip) -> Result<Vec<AddressMessage>, VipError> {
        let index = match device_and_label(vip).0 {
            Some(dev) => match self.link_by_name(dev, vip.addr).await? {
                Some(l) => Some(l.index),
                None => return Ok(vec![]),
            },
            None => None,
        };
        Ok(self
            .dump(vip.addr)
            .await?
            .into_iter()
            .filter(|m| index.is_none_or(|i| m.header.index == i))
            .filter(|m| msg_addr(m) == Some(vip.addr))
            .collect())
    }

    /// Whether the VIP's address is on its interface (on any interface when
    /// none is configured).
    pub async fn present(&self, vip: &Vip) -> Result<bool, VipError> {
        let _one = self.busy.lock().await;
        Ok(!self.find(vip).await?.is_empty())
    }

    /// [`present`](Self::present) for each VIP, in order: for reconciling
    /// at start.
    pub async fn list_present(&self, vips: &[Vip]) -> Result<Vec<bool>, VipError> {
        let mut out = Vec::with_capacity(vips.len());
        for vip in vips {
            out.push(self.present(vip).await?);
        }
        Ok(out)
    }

    /// Adds the VIP; returns once the kernel has acknowledged it.
    pub async fn add(&self, vip: &Vip) -> Result<AddOutcome, VipError> {
        let _one = self.busy.lock().await;
        let (iface, _) = self.resolve_link(vip).await?;
        let existing = self.dump(vip.addr).await?;
        if existing
            .iter()
            .any(|m| m.header.index == iface.index && msg_addr(m) == Some(vip.addr))
        {
            return Ok(AddOutcome::AlreadyPresent);
        }

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
        match req.execute().await {
            Ok(()) => Ok(AddOutcome::Added),
            Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(AddOutcome::AlreadyPresent),
            Err(e) => Err(Self::nl_err("adding the address", vip.addr, &iface.name)(e)),
        }
    }

    /// Deletes the VIP; returns once the kernel has acknowledged it.
    ///
    /// Deleting a primary IPv4 address deletes the secondaries of its subnet
    /// unless `promote_secondaries` is on for the interface. When the VIP is
    /// such a primary, `promote_secondaries` is switched on for the
    /// interface just for the delete, then put back. We prefer this to
    /// re-adding the vanished secondaries afterwards: the kernel promotes
    /// them atomically with their labels, flags and lifetimes, and the
    /// other groups' VIPs never disappear, not even for a moment.
    pub async fn del(&self, vip: &Vip) -> Result<DelOutcome, VipError> {
        let _one = self.busy.lock().await;
        let found = self.find(vip).await?;
        if found.is_empty() {
            return Ok(DelOutcome::Absent);
        }
        let mut outcome = DelOutcome::Absent;
        for m in found {
            let guard = self.guard_secondaries(vip, &m).await?;
            let name = guard.as_ref().map(|g| g.iface.clone());
            let mut del = AddressMessage::default();
            del.header = m.header.clone();
            del.header.flags = AddressHeaderFlags::empty();
            del.attributes.push(AddressAttribute::Local(vip.addr));
            del.attributes.push(AddressAttribute::Address(vip.addr));
            if let Some(l) = label_of(&m) {
                del.attributes.push(AddressAttribute::Label(l));
            }
            let result = self.handle.address().del(del).execute().await;
            drop(guard);
            match result {
                Ok(()) => outcome = DelOutcome::Deleted,
                Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENOENT)) => {}
                Err(e) => {
                    let iface = match name {
                        Some(n) => n,
                        None => self
                            .link_by_index(m.header.index, vip.addr)
                            .await
                            .map_or_else(|_| format!("#{}", m.header.index), |l| l.name),
                    };
                    return Err(Self::nl_err("deleting the address", vip.addr, &iface)(e));
                }
            }
        }
        Ok(outcome)
    }

    /// If deleting `m` would take secondaries with it, switches
    /// `promote_secondaries` on and returns a guard that switches it back.
    async fn guard_secondaries(
        &self,
        vip: &Vip,
        m: &AddressMessage,
    ) -> Result<Option<PromoteGuard>, VipError> {
        if !vip.addr.is_ipv4() || is_secondary(m) {
            return Ok(None);
        }
        let prefix = m.header.prefix_len;
        let has_secondaries = self.dump(vip.addr).await?.iter().any(|o| {
            o.header.index == m.header.index
                && is_secondary(o)
                && o.header.prefix_len == prefix
                && msg_addr(o).is_some_and(|a| same_subnet(a, vip.addr, prefix))
        });
        if !has_secondaries {
            return Ok(None);
        }
        let name = self.link_by_index(m.header.index, vip.addr).await?.name;
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

    /// Announces the VIP on its interface: `cfg.count` rounds of gratuitous
    /// ARP (request and reply) for IPv4, or unsolicited Neighbour
    /// Advertisements for IPv6 (Router flag set when the interface forwards
    /// IPv6), the first at once, then every `cfg.interval`.
    pub async fn announce(&self, vip: &Vip, cfg: &AnnounceConfig) -> Result<(), VipError> {
        let (iface, link) = {
            let _one = self.busy.lock().await;
            self.resolve_link(vip).await?
        };
        let mac = link.mac.ok_or_else(|| VipError::NoMac {
            iface: iface.name.clone(),
            addr: vip.addr,
        })?;
        let frames = match vip.addr {
            IpAddr::V4(v4) => vec![packet::garp_request(mac, v4), packet::garp_reply(mac, v4)],
            IpAddr::V6(v6) => {
                let fwd = sysctl_path("ipv6", &iface.name, "forwarding");
                let router = read_flag(&fwd).unwrap_or(false);
                vec![packet::unsolicited_na(mac, v6, router)]
            }
        };
        let announce_err = |source| VipError::Announce {
            addr: vip.addr,
            iface: iface.name.clone(),
            source,
        };
        let socket = network::PacketSocket::open(iface.index).map_err(announce_err)?;
        for round in 0..cfg.count {
            if round > 0 {
                tokio::time::sleep(cfg.interval).await;
            }
            for f in &frames {
                socket.send(f).map_err(announce_err)?;
            }
        }
        Ok(())
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
