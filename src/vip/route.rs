//! Routes, for two heartbeat behaviours harust keeps: an address written
//! without a prefix takes the prefix of the connected route that holds it
//! (heartbeat's findif), and `IPsrcaddr` sets the preferred source of the
//! default route. Like the rest of the adapter, these read and write the
//! kernel's state and decide nothing.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};

use super::{VipError, Vips, same_subnet};
use crate::config::Vip;

/// The main routing table (`RT_TABLE_MAIN`).
const MAIN_TABLE: u8 = 254;

fn route_ip(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn attr_ip(m: &RouteMessage, pick: fn(&RouteAttribute) -> Option<&RouteAddress>) -> Option<IpAddr> {
    m.attributes.iter().find_map(pick).and_then(route_ip)
}

fn destination(a: &RouteAttribute) -> Option<&RouteAddress> {
    match a {
        RouteAttribute::Destination(d) => Some(d),
        _ => None,
    }
}

fn gateway(a: &RouteAttribute) -> Option<&RouteAddress> {
    match a {
        RouteAttribute::Gateway(g) => Some(g),
        _ => None,
    }
}

fn pref_source(a: &RouteAttribute) -> Option<&RouteAddress> {
    match a {
        RouteAttribute::PrefSource(s) => Some(s),
        _ => None,
    }
}

impl Vips {
    /// The main table's routes of `addr`'s family.
    async fn routes(&self, addr: IpAddr) -> Result<Vec<RouteMessage>, VipError> {
        let query = match addr {
            IpAddr::V4(_) => RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
            IpAddr::V6(_) => RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
        };
        let all: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(Self::nl_err("listing routes", addr, "all interfaces"))?;
        Ok(all
            .into_iter()
            .filter(|m| m.header.table == MAIN_TABLE)
            .collect())
    }

    /// `vip` with the prefix it is acquired with: the one written, or
    /// when none was ([`Vip::auto_prefix`]) that of the longest connected
    /// route (no gateway) holding the address, as heartbeat's findif does.
    /// Without such a route the host prefix stays.
    pub async fn with_route_prefix(&self, vip: &Vip) -> Result<Vip, VipError> {
        if !vip.auto_prefix {
            return Ok(vip.clone());
        }
        let _one = self.busy.lock().await;
        let best = self
            .routes(vip.addr)
            .await?
            .into_iter()
            .filter(|m| m.header.destination_prefix_length > 0)
            .filter(|m| attr_ip(m, gateway).is_none())
            .filter(|m| {
                attr_ip(m, destination)
                    .is_some_and(|d| same_subnet(d, vip.addr, m.header.destination_prefix_length))
            })
            .map(|m| m.header.destination_prefix_length)
            .max();
        let mut v = vip.clone();
        if let Some(p) = best {
            v.prefix = p;
        }
        Ok(v)
    }

    /// Whether `src` is the default route's preferred source now (for
    /// reconciling after a restart).
    pub async fn is_default_source(&self, src: IpAddr) -> Result<bool, VipError> {
        let _one = self.busy.lock().await;
        Ok(self
            .routes(src)
            .await?
            .iter()
            .find(|m| m.header.destination_prefix_length == 0)
            .and_then(|m| attr_ip(m, pref_source))
            == Some(src))
    }

    /// Makes `src` the preferred source of the default route; returns the
    /// source it had before (`None`: none), to give to
    /// [`Vips::restore_default_source`] on release.
    pub async fn set_default_source(&self, src: IpAddr) -> Result<Option<IpAddr>, VipError> {
        self.swap_default_source(src, Some(src)).await
    }

    /// Puts the default route's preferred source back to `previous`.
    pub async fn restore_default_source(
        &self,
        addr: IpAddr,
        previous: Option<IpAddr>,
    ) -> Result<(), VipError> {
        self.swap_default_source(addr, previous).await.map(|_| ())
    }

    async fn swap_default_source(
        &self,
        addr: IpAddr,
        src: Option<IpAddr>,
    ) -> Result<Option<IpAddr>, VipError> {
        let _one = self.busy.lock().await;
        if let Some(s) = src
            && !self
                .dump(s)
                .await?
                .iter()
                .any(|m| super::msg_addr(m) == Some(s))
        {
            // The kernel would only say EINVAL.
            return Err(VipError::SourceNotLocal { addr: s });
        }
        let route = self
            .routes(addr)
            .await?
            .into_iter()
            .find(|m| m.header.destination_prefix_length == 0)
            .ok_or(VipError::NoDefaultRoute { addr })?;
        let before = attr_ip(&route, pref_source);
        let mut msg = route.clone();
        msg.attributes.retain(|a| {
            !matches!(
                a,
                RouteAttribute::PrefSource(_) | RouteAttribute::CacheInfo(_)
            )
        });
        if let Some(s) = src {
            msg.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(s)));
        }
        let iface = "the default route";
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(Self::nl_err("setting the source address", addr, iface))?;
        Ok(before)
    }
}
