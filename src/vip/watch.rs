//! Address and link events from rtnetlink's multicast groups
//! (`ip monitor address link`), so the runtime can reconcile when someone
//! deletes a VIP behind our back.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use futures::channel::mpsc::UnboundedReceiver;
use rtnetlink::MulticastGroup;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::LinkAttribute;
use tokio::task::JoinHandle;

use super::{VipError, msg_addr};

/// One change the kernel reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrEvent {
    Added {
        addr: IpAddr,
        prefix: u8,
        ifindex: u32,
    },
    Removed {
        addr: IpAddr,
        prefix: u8,
        ifindex: u32,
    },
    /// The interface is gone, and its addresses with it (the kernel may not
    /// report those one by one).
    LinkRemoved { ifindex: u32, name: Option<String> },
}

/// The event stream. It ends only if the netlink socket fails (for example
/// the kernel dropped events: `ENOBUFS`); the runtime should then reconcile
/// and watch again. Dropping it closes the socket.
pub struct AddrWatch {
    rx: UnboundedReceiver<(
        NetlinkMessage<RouteNetlinkMessage>,
        rtnetlink::sys::SocketAddr,
    )>,
    conn: JoinHandle<()>,
    _handle: rtnetlink::Handle,
}

impl std::fmt::Debug for AddrWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddrWatch")
    }
}

/// Subscribes to IPv4 and IPv6 address events and link events in the
/// caller's network namespace. Call inside a tokio runtime.
pub async fn watch() -> Result<AddrWatch, VipError> {
    let (conn, handle, rx) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Link,
    ])
    .map_err(|source| VipError::Connect { source })?;
    Ok(AddrWatch {
        rx,
        conn: tokio::spawn(conn),
        _handle: handle,
    })
}

fn to_event(msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<AddrEvent> {
    let NetlinkPayload::InnerMessage(inner) = msg.payload else {
        return None;
    };
    match inner {
        RouteNetlinkMessage::NewAddress(m) => Some(AddrEvent::Added {
            addr: msg_addr(&m)?,
            prefix: m.header.prefix_len,
            ifindex: m.header.index,
        }),
        RouteNetlinkMessage::DelAddress(m) => Some(AddrEvent::Removed {
            addr: msg_addr(&m)?,
            prefix: m.header.prefix_len,
            ifindex: m.header.index,
        }),
        RouteNetlinkMessage::DelLink(m) => Some(AddrEvent::LinkRemoved {
            ifindex: m.header.index,
            name: m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }),
        }),
        _ => None,
    }
}

impl Stream for AddrWatch {
    type Item = AddrEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AddrEvent>> {
        loop {
            match Pin::new(&mut self.rx).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some((msg, _))) => {
                    if let Some(ev) = to_event(msg) {
                        return Poll::Ready(Some(ev));
                    }
                }
            }
        }
    }
}

impl Drop for AddrWatch {
    fn drop(&mut self) {
        self.conn.abort();
    }
}
