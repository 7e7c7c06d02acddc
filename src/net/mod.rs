//! UDP media (ucast, bcast, mcast), bound per interface.
//!
//! A thin adapter: it opens the sockets heartbeat opens for each `Medium`
//! and moves datagrams; it decides nothing about them.
//!
//! Sockets, as heartbeat 3.0.6 makes them (PROTOCOL.md §1.1):
//! - every medium has its own *write* socket, bound to the medium's
//!   interface with `SO_BINDTODEVICE`. ucast sets `IP_TOS=IPTOS_LOWDELAY`
//!   (0x10, seen on the wire); bcast and mcast leave TOS at 0, as the
//!   captured bcast traffic shows. bcast sets `SO_BROADCAST` and sends to the
//!   interface's broadcast address; mcast sets the outgoing interface, TTL
//!   and loopback.
//! - *read* sockets are bound to the wildcard address and the port, with
//!   `SO_REUSEADDR`, `SO_REUSEPORT` and `SO_BINDTODEVICE`. Media that share
//!   family, port and interface (say `ucast eth0 A` and `bcast eth0`) share one
//!   read socket: two of our own sockets in one `SO_REUSEPORT` group would
//!   have the kernel split the datagrams between them. mcast media join their
//!   group on that shared socket.
//!
//! A datagram read on a shared socket is credited to the medium it most
//! likely came over: the ucast medium whose peer sent it, else the first
//! bcast/mcast medium on that socket, else the first medium.
//!
//! Unlike heartbeat's, a ucast write socket is also bound to the port
//! (`SO_REUSEADDR`, `SO_REUSEPORT`), so it sends from it, and is read too:
//! connected to its peer, it takes exactly the datagrams a peer that does
//! the same sends from its own ucast socket. The kernel finds such a
//! socket by early demux and skips the input route lookup (about 5 % of
//! an idle beat thread's `perf` samples at a 10 ms keepalive; the
//! wall-clock gain was within the bench's spread, bench/notes.md).
//! Everything else, heartbeat's datagrams (from any port) included, still
//! reaches the shared read socket; a ucast socket that is not connected
//! (no route yet) is one more member of its reuseport group, so its
//! datagrams are credited as the shared socket's are. A ucast medium to
//! one of our own addresses (`to_self`) is not bound: it sends nothing and
//! must read nothing.
//!
//! While quiet, a read socket that has carried nothing for [`IDLE_AFTER`]
//! (the shared socket of two harust nodes, whose beats come over their
//! connected ucast sockets) stays registered with tokio instead of being
//! read at every beat: a quiet read takes it only once epoll has seen a
//! datagram on it, and otherwise costs no system call. A socket that
//! carries datagrams is read at every quiet read, and wakes nothing.

pub mod ping;
mod socket;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::config::Medium;

/// heartbeat's `udpport` default.
pub const DEFAULT_PORT: u16 = 694;

/// `IPTOS_LOWDELAY`, which heartbeat's ucast write socket sets.
const TOS_LOWDELAY: u32 = 0x10;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// A read socket that has carried nothing for this long is idle: while
/// quiet it is read only once epoll has seen a datagram on it. It decides
/// cost alone, not what is read: a peer beating on a socket (at most a
/// deadtime apart) keeps it busy, and a datagram on an idle socket still
/// wakes the loop, or waits for the beat thread's next read.
pub const IDLE_AFTER: Duration = Duration::from_secs(10);

/// One configured medium, by its position in the slice given to
/// [`Links::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub usize);

/// One datagram read from a medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub link: LinkId,
    pub from: SocketAddr,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{link}: interface {iface} not found")]
    InterfaceMissing {
        link: String,
        iface: String,
        #[source]
        source: io::Error,
    },
    #[error("{link}: interface {iface} has no IPv4 broadcast address")]
    NoBroadcast { link: String, iface: String },
    #[error("{link}: {what}")]
    Socket {
        link: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{link}: sending to {dest} failed")]
    Send {
        link: String,
        dest: SocketAddr,
        #[source]
        source: io::Error,
    },
}

struct Link {
    name: String,
    /// Non-blocking and not registered with tokio: we never wait to write,
    /// and a registered socket would wake the loop after every send.
    socket: std::net::UdpSocket,
    dest: SocketAddr,
    /// Connected to `dest`, the socket keeps its route and source address
    /// and a send looks up nothing. Not while there is no route to `dest`
    /// (an interface down at start), nor after a send failed for another
    /// reason than the peer's closed port: the source address chosen at
    /// connect time may be gone (the node was renumbered).
    connected: AtomicBool,
    /// `dest` is one of our own addresses, as a ucast list shared by every
    /// node's ha.cf has it: what we send there comes back to us alone,
    /// and the engine drops its own messages. Not sent, which halves the
    /// datagrams of an idle two-node cluster. Known once connected.
    to_self: AtomicBool,
}

impl Link {
    /// Connects to `dest` with today's route and source; whether it did.
    fn connect(&self) -> bool {
        let ok = self.socket.connect(self.dest).is_ok();
        let own = ok
            && self
                .socket
                .local_addr()
                .is_ok_and(|a| a.ip() == self.dest.ip());
        self.to_self.store(own, Ordering::Relaxed);
        self.connected.store(ok, Ordering::Relaxed);
        ok
    }

    fn send(&self, payload: &[u8]) -> io::Result<()> {
        if !self.connected.load(Ordering::Relaxed) {
            self.socket.send_to(payload, self.dest)?;
            // It works again: connect, with today's route and source.
            self.connect();
            return Ok(());
        }
        if self.to_self.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.socket.send(payload) {
            Ok(_) => Ok(()),
            // A connected socket reports an ICMP port unreachable (a peer
            // between two daemons) on its next send, which then sends
            // nothing; that clears the error, so the payload goes again.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.socket.send(payload).map(drop)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(_) => {
                // Per send again until a send works; this one with a fresh
                // route and source.
                self.connected.store(false, Ordering::Relaxed);
                socket::disconnect(&self.socket)?;
                self.socket.send_to(payload, self.dest).map(drop)
            }
        }
    }
}

/// A read socket and the media it serves.
struct ReadSocket {
    /// Non-blocking; read directly while the links are quiet.
    socket: std::net::UdpSocket,
    /// A duplicate registered with tokio, so a datagram wakes the loop;
    /// `None` while quiet and busy (dropping it takes the socket out of
    /// epoll). While quiet and idle, read through it, only when tokio saw
    /// it readable.
    woken: Option<UdpSocket>,
    iface: String,
    credit: Credit,
    /// Whether it gave a datagram since the last
    /// [`sort`](Links::sort_readers).
    got: bool,
    /// The last sort that saw it had given one.
    busy_at: Instant,
}

/// Which medium a datagram read on a socket is credited to, by sender
/// (see the module comment): worked out once, as a read at every beat
/// should touch little.
#[derive(Clone)]
struct Credit {
    /// The ucast media among the socket's, by peer.
    ucast: Vec<(IpAddr, LinkId)>,
    /// The first bcast/mcast medium, else the first medium.
    other: LinkId,
}

impl Credit {
    fn new(all: &[Medium], media: &[usize]) -> Credit {
        let ucast = media
            .iter()
            .filter_map(|&i| match &all[i] {
                Medium::Ucast { peer, .. } => Some((*peer, LinkId(i))),
                _ => None,
            })
            .collect();
        let group = media
            .iter()
            .find(|&&i| !matches!(&all[i], Medium::Ucast { .. }));
        Credit {
            ucast,
            other: LinkId(*group.unwrap_or(&media[0])),
        }
    }

    fn of(&self, from: IpAddr) -> LinkId {
        self.ucast
            .iter()
            .find(|(peer, _)| *peer == from)
            .map_or(self.other, |&(_, l)| l)
    }
}

/// The open media: one write socket per medium and shared read sockets,
/// read by the caller's own task: no reader task, no queue, no extra
/// wake-up per packet (it matters at a 10 ms keepalive).
pub struct Links {
    links: Vec<Link>,
    readers: Vec<ReadSocket>,
    buf: Vec<u8>,
    /// The second datagram of a quiet read ([`try_recv_into`](Self::try_recv_into)),
    /// handed out by the next call; empty until a first quiet read.
    spare: Vec<u8>,
    spare_meta: Option<(usize, LinkId, SocketAddr, Option<std::time::SystemTime>)>,
    /// Readers found empty in a row by quiet reads: when every one is,
    /// the round is over.
    drained: usize,
    /// The reader to try first next time, so one busy socket cannot
    /// starve the others.
    next: usize,
    quiet: bool,
    /// Every read socket gives arrival times.
    can_quiet: bool,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Links")
            .field(
                "links",
                &self.links.iter().map(|l| &l.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The name heartbeat's logs use for a medium: `ucast eth0 198.18.1.2`,
/// `bcast eth0`, `mcast eth0 225.0.0.1:694`.
pub fn medium_name(medium: &Medium) -> String {
    match medium {
        Medium::Ucast { iface, peer, .. } => match peer {
            IpAddr::V4(_) => format!("ucast {iface} {peer}"),
            IpAddr::V6(_) => format!("ucast6 {iface} {peer}"),
        },
        Medium::Bcast { iface, .. } => format!("bcast {iface}"),
        Medium::Mcast {
            iface, group, port, ..
        } => match group {
            IpAddr::V4(_) => format!("mcast {iface} {group}:{port}"),
            IpAddr::V6(_) => format!("mcast6 {iface} [{group}]:{port}"),
        },
    }
}

fn socket_err<'a>(link: &'a str, what: &'static str) -> impl FnOnce(io::Error) -> NetError + 'a {
    move |source| NetError::Socket {
        link: link.to_owned(),
        what,
        source,
    }
}

/// Which read socket a medium uses: family (true = IPv6), port, interface.
type ReaderKey = (bool, u16, String);

struct Reader {
    fd: OwnedFd,
    media: Vec<usize>,
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Whether `ip` is one of this host's addresses (it can be bound).
pub fn is_own_address(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// Binds `fd` (already bound to its device) to the wildcard address and
/// `port`, beside the other sockets on it.
fn bind_to_port(name: &str, fd: &OwnedFd, v6: bool, port: u16) -> Result<(), NetError> {
    let sock = SockRef::from(fd);
    sock.set_reuse_address(true)
        .map_err(socket_err(name, "setting SO_REUSEADDR"))?;
    sock.set_reuse_port(true)
        .map_err(socket_err(name, "setting SO_REUSEPORT"))?;
    if v6 {
        sock.set_only_v6(true)
            .map_err(socket_err(name, "setting IPV6_V6ONLY"))?;
    }
    socket::bind(fd, SocketAddr::new(unspecified(v6), port))
        .map_err(socket_err(name, "binding to the port"))
}

fn open_reader(name: &str, key: &ReaderKey) -> Result<OwnedFd, NetError> {
    let (v6, port, iface) = key;
    let fd = socket::udp_socket(*v6).map_err(socket_err(name, "creating read socket"))?;
    socket::bind_to_device(&fd, iface)
        .map_err(socket_err(name, "binding read socket to device"))?;
    bind_to_port(name, &fd, *v6, *port)?;
    Ok(fd)
}

/// The write socket of one medium and where it sends.
fn open_writer(
    name: &str,
    medium: &Medium,
    port: u16,
    ifindex: u32,
) -> Result<(OwnedFd, SocketAddr, bool), NetError> {
    let scoped = |ip: IpAddr, port: u16| match ip {
        IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, ifindex)),
        IpAddr::V4(_) => SocketAddr::new(ip, port),
    };
    let (v6, dest) = match medium {
        Medium::Ucast { peer, .. } => (peer.is_ipv6(), scoped(*peer, port)),
        Medium::Bcast { iface, .. } => {
            let brd = socket::broadcast_addr(iface)
                .map_err(socket_err(name, "reading the interface's addresses"))?
                .ok_or_else(|| NetError::NoBroadcast {
                    link: name.to_owned(),
                    iface: iface.clone(),
                })?;
            (false, SocketAddr::new(IpAddr::V4(brd), port))
        }
        Medium::Mcast { group, port, .. } => (group.is_ipv6(), scoped(*group, *port)),
    };
    let fd = socket::udp_socket(v6).map_err(socket_err(name, "creating write socket"))?;
    socket::bind_to_device(&fd, medium.iface())
        .map_err(socket_err(name, "binding write socket to device"))?;
    let mut bound = false;
    match medium {
        Medium::Ucast { .. } => {
            let sock = SockRef::from(&fd);
            if v6 {
                sock.set_tclass_v6(TOS_LOWDELAY)
            } else {
                sock.set_tos_v4(TOS_LOWDELAY)
            }
            .map_err(socket_err(name, "setting IP_TOS lowdelay"))?;
            if !is_own_address(dest.ip()) {
                bind_to_port(name, &fd, v6, port)?;
                bound = true;
            }
        }
        Medium::Bcast { .. } => {
            SockRef::from(&fd)
                .set_broadcast(true)
                .map_err(socket_err(name, "setting SO_BROADCAST"))?;
        }
        Medium::Mcast { ttl, loopback, .. } => {
            socket::set_multicast_out(&fd, v6, ifindex, *ttl, *loopback).map_err(socket_err(
                name,
                "setting multicast interface, TTL and loop",
            ))?;
        }
    }
    Ok((fd, dest, bound))
}

/// When a datagram stamped `stamp` (the kernel's wall-clock arrival time)
/// arrived, on the engine's clock that reads `now` while the wall clock
/// reads `wall`; never before `not_before` (the engine's time only moves
/// forward, whatever a clock step says) nor after `now`. Unstamped: `now`.
pub fn arrival(
    stamp: Option<std::time::SystemTime>,
    wall: std::time::SystemTime,
    now: std::time::Duration,
    not_before: std::time::Duration,
) -> std::time::Duration {
    let age = stamp.and_then(|s| wall.duration_since(s).ok());
    age.map_or(now, |a| now.saturating_sub(a))
        .max(not_before)
        .min(now)
}

/// A tokio handle on a duplicate of `socket`: a failed registration
/// leaves `socket` itself open.
fn tokio_socket(socket: &std::net::UdpSocket) -> io::Result<UdpSocket> {
    UdpSocket::from_std(socket.try_clone()?)
}

impl Links {
    /// Opens every medium, each on its own port. Must be called inside a
    /// tokio runtime; the sockets live in the caller's network namespace.
    pub async fn open(media: &[Medium]) -> Result<Links, NetError> {
        let mut links = Vec::with_capacity(media.len());
        let mut stamped_all = true;
        let mut readers: BTreeMap<ReaderKey, Reader> = BTreeMap::new();
        let mut ucast_keys = Vec::new();
        for (i, medium) in media.iter().enumerate() {
            let name = medium_name(medium);
            let iface = medium.iface();
            let ifindex = socket::ifindex(iface).map_err(|source| NetError::InterfaceMissing {
                link: name.clone(),
                iface: iface.to_owned(),
                source,
            })?;
            let rport = medium.port();
            let (fd, dest, bound) = open_writer(&name, medium, rport, ifindex)?;
            let v6 = match medium {
                Medium::Ucast { peer, .. } => peer.is_ipv6(),
                Medium::Bcast { .. } => false,
                Medium::Mcast { group, .. } => group.is_ipv6(),
            };
            let key = (v6, rport, iface.to_owned());
            if bound {
                ucast_keys.push((i, key.clone()));
            }
            let reader = match readers.entry(key) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let fd = open_reader(&name, e.key())?;
                    e.insert(Reader { fd, media: vec![] })
                }
            };
            if let Medium::Mcast { group, .. } = medium {
                socket::join_group(&reader.fd, *group, ifindex)
                    .map_err(socket_err(&name, "joining multicast group"))?;
            }
            reader.media.push(i);
            let socket = std::net::UdpSocket::from(fd);
            socket
                .set_nonblocking(true)
                .map_err(socket_err(&name, "making the socket non-blocking"))?;
            // No route yet is no error: the link's sends fail until it
            // comes (see `Link::connected`).
            let link = Link {
                socket,
                name,
                dest,
                connected: AtomicBool::new(false),
                to_self: AtomicBool::new(false),
            };
            link.connect();
            links.push(link);
        }

        let mut sockets = Vec::with_capacity(readers.len() + ucast_keys.len());
        let mut add = |socket: std::net::UdpSocket, iface: String, credit: Credit| {
            // Without arrival times, quiet reads would judge a peer by
            // when we read it; the links then simply stay woken.
            stamped_all &= socket::set_timestamps(&socket).is_ok();
            let woken = Some(
                tokio_socket(&socket)
                    .map_err(socket_err(&iface, "registering socket with tokio"))?,
            );
            sockets.push(ReadSocket {
                socket,
                woken,
                iface,
                credit,
                got: false,
                busy_at: Instant::now(),
            });
            Ok::<_, NetError>(())
        };
        // The ucast sockets bound to the port (see the module comment).
        for (i, key) in ucast_keys {
            let link = &links[i];
            let dup = link
                .socket
                .try_clone()
                .map_err(socket_err(&link.name, "duplicating the ucast socket"))?;
            add(dup, key.2.clone(), Credit::new(media, &readers[&key].media))?;
        }
        for ((_, _, iface), reader) in readers {
            let credit = Credit::new(media, &reader.media);
            add(std::net::UdpSocket::from(reader.fd), iface, credit)?;
        }
        Ok(Links {
            links,
            readers: sockets,
            buf: vec![0u8; MAX_DATAGRAM],
            spare: Vec::new(),
            spare_meta: None,
            drained: 0,
            next: 0,
            quiet: false,
            can_quiet: stamped_all,
        })
    }

    /// No media at all: what stands in for the links while they are lent
    /// to the beat thread. Reads wait forever and sends go nowhere.
    pub fn placeholder() -> Links {
        Links {
            links: Vec::new(),
            readers: Vec::new(),
            buf: Vec::new(),
            spare: Vec::new(),
            spare_meta: None,
            drained: 0,
            next: 0,
            quiet: true,
            can_quiet: true,
        }
    }

    /// Whether datagrams wait to be read by [`try_recv_into`](Self::try_recv_into)
    /// instead of waking [`recv_into`](Self::recv_into).
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// Quiet: an arriving datagram no longer wakes the loop; it waits in
    /// the socket, with its arrival time, until the caller reads it at
    /// its next wake-up (an idle socket's still wakes the loop, see the
    /// module comment). Woken: every datagram wakes [`recv_into`](Self::recv_into).
    /// Quiet is refused (the links stay woken) where the kernel gives no
    /// arrival times. If registering fails, the links stay quiet, each
    /// socket open and readable by [`try_recv_into`](Self::try_recv_into).
    pub fn set_quiet(&mut self, quiet: bool) -> io::Result<()> {
        let quiet = quiet && self.can_quiet;
        if quiet == self.quiet {
            return Ok(());
        }
        if quiet {
            // Busy sockets leave epoll; idle ones stay in it.
            self.quiet = true;
            return self.sort_readers(Instant::now());
        }
        for r in &mut self.readers {
            if r.woken.is_none() {
                r.woken = Some(tokio_socket(&r.socket)?);
            }
        }
        self.quiet = false;
        Ok(())
    }

    /// While quiet, sorts the read sockets as of `now`: one that has read
    /// nothing for [`IDLE_AFTER`] is registered with tokio (read only once
    /// seen readable), any other is not (read at every quiet read). The
    /// caller sorts now and then; a socket's datagrams are read either way.
    pub fn sort_readers(&mut self, now: Instant) -> io::Result<()> {
        for r in &mut self.readers {
            if std::mem::take(&mut r.got) {
                r.busy_at = now;
            }
        }
        if !self.quiet {
            return Ok(());
        }
        for r in &mut self.readers {
            let idle = now.saturating_duration_since(r.busy_at) >= IDLE_AFTER;
            if !idle {
                r.woken = None;
            } else if r.woken.is_none() {
                r.woken = Some(tokio_socket(&r.socket)?);
            }
        }
        Ok(())
    }

    /// How many read sockets are idle and registered (see
    /// [`sort_readers`](Self::sort_readers)), and how many are read at every
    /// quiet read.
    pub fn idle_readers(&self) -> (usize, usize) {
        let idle = self.readers.iter().filter(|r| r.woken.is_some()).count();
        (idle, self.readers.len() - idle)
    }

    /// A datagram that has arrived, without waiting, from any medium:
    /// its medium, sender and arrival time (`None` if the kernel gave
    /// none). `None` once every socket has been found empty, which ends
    /// the round: the next call starts reading them again. Each socket is
    /// read two datagrams at a time, so a round that finds one beat costs
    /// one system call per socket.
    pub fn try_recv_into(
        &mut self,
        payload: &mut Vec<u8>,
    ) -> Option<(LinkId, SocketAddr, Option<std::time::SystemTime>)> {
        if let Some((len, link, from, at)) = self.spare_meta.take() {
            payload.clear();
            payload.extend_from_slice(&self.spare[..len]);
            return Some((link, from, at));
        }
        let n = self.readers.len();
        if self.spare.len() < MAX_DATAGRAM {
            self.spare.resize(MAX_DATAGRAM, 0);
        }
        while self.drained < n {
            let i = self.next % n;
            self.next = i + 1;
            let r = &self.readers[i];
            // A few tries, as in recv_into: an error is logged and the
            // socket read again.
            let mut got = None;
            for _ in 0..4 {
                let read = match &r.woken {
                    // Idle: no system call unless tokio saw it readable
                    // (an atomic load; `WouldBlock` from the read clears it).
                    Some(w) => w.try_io(Interest::READABLE, || {
                        socket::recv_pair(w, &mut self.buf, &mut self.spare)
                    }),
                    None => socket::recv_pair(&r.socket, &mut self.buf, &mut self.spare),
                };
                match read {
                    Ok(pair) => {
                        got = Some(pair);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // A ucast socket's peer port was closed (ICMP): the
                    // error is cleared by reading it, and means nothing
                    // to a read.
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                    Err(e) => log::warn!("reading UDP on {}: {e}", r.iface),
                }
            }
            let Some(((len, from, at), second)) = got else {
                self.drained += 1;
                continue;
            };
            let r = &mut self.readers[i];
            r.got = true;
            let link = r.credit.of(from.ip());
            match second {
                // Two: there may be more; this reader comes first again.
                Some((len2, from2, at2)) => {
                    self.next = i;
                    self.drained = 0;
                    let link2 = r.credit.of(from2.ip());
                    self.spare_meta = Some((len2, link2, from2, at2));
                }
                None => self.drained += 1,
            }
            payload.clear();
            payload.extend_from_slice(&self.buf[..len]);
            return Some((link, from, at));
        }
        self.drained = 0;
        None
    }

    /// How many media are open; `LinkId`s run from 0 to this.
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// `ucast eth0 198.18.1.2`, `bcast eth0`, ...
    pub fn link_name(&self, id: LinkId) -> String {
        self.links
            .get(id.0)
            .map_or_else(|| format!("link #{}", id.0), |l| l.name.clone())
    }

    /// Where a medium sends to.
    pub fn destination(&self, id: LinkId) -> Option<SocketAddr> {
        self.links.get(id.0).map(|l| l.dest)
    }

    /// Sends `payload` on one medium.
    pub async fn send_on(&self, id: LinkId, payload: &[u8]) -> Result<(), NetError> {
        let link = self.links.get(id.0).ok_or_else(|| NetError::Socket {
            link: format!("link #{}", id.0),
            what: "no such link",
            source: io::ErrorKind::NotFound.into(),
        })?;
        match link.send(payload) {
            Ok(()) => Ok(()),
            Err(source) => Err(NetError::Send {
                link: link.name.clone(),
                dest: link.dest,
                source,
            }),
        }
    }

    /// Sends `payload` on every medium. A failing medium does not stop the
    /// others; its error is returned with its id.
    pub async fn send(&self, payload: &[u8]) -> Vec<(LinkId, NetError)> {
        let mut errors = Vec::new();
        for i in 0..self.links.len() {
            if let Err(e) = self.send_on(LinkId(i), payload).await {
                errors.push((LinkId(i), e));
            }
        }
        errors
    }

    /// Sends `payload` on every medium without waiting: a UDP send either
    /// fits in the socket buffer now or is a loss like any other. This lets
    /// the event loop send from synchronous code.
    pub fn try_send(&self, payload: &[u8]) -> Vec<(LinkId, NetError)> {
        let mut errors = Vec::new();
        for (i, link) in self.links.iter().enumerate() {
            if let Err(source) = link.send(payload) {
                errors.push((
                    LinkId(i),
                    NetError::Send {
                        link: link.name.clone(),
                        dest: link.dest,
                        source,
                    },
                ));
            }
        }
        errors
    }

    /// The next datagram from any medium. Never `None` while `self`
    /// lives; a read error is logged and that socket read again.
    pub async fn recv(&mut self) -> Option<Datagram> {
        let mut payload = Vec::new();
        let (link, from) = self.recv_into(&mut payload).await?;
        Some(Datagram {
            link,
            from,
            payload,
        })
    }

    /// [`recv`](Self::recv) into `payload` (replacing what it held), so a
    /// caller that keeps the buffer receives without allocating.
    pub async fn recv_into(&mut self, payload: &mut Vec<u8>) -> Option<(LinkId, SocketAddr)> {
        if self.readers.is_empty() {
            return std::future::pending().await;
        }
        // What a quiet read left over comes first, in order.
        if let Some((len, link, from, _)) = self.spare_meta.take() {
            payload.clear();
            payload.extend_from_slice(&self.spare[..len]);
            return Some((link, from));
        }
        std::future::poll_fn(|cx| {
            let n = self.readers.len();
            for k in 0..n {
                let i = (self.next + k) % n;
                let r = &self.readers[i];
                // A few tries: after an error (e.g. the interface went
                // down) the socket must be polled again to register for
                // wake-up.
                let Some(socket) = &r.woken else { continue };
                for _ in 0..4 {
                    let mut rb = tokio::io::ReadBuf::new(&mut self.buf);
                    match socket.poll_recv_from(cx, &mut rb) {
                        Poll::Ready(Ok(from)) => {
                            self.next = i + 1;
                            let link = r.credit.of(from.ip());
                            self.readers[i].got = true;
                            payload.clear();
                            payload.extend_from_slice(rb.filled());
                            return Poll::Ready(Some((link, from)));
                        }
                        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                        Poll::Ready(Err(e)) => {
                            log::warn!("reading UDP on {}: {e}", r.iface);
                        }
                        Poll::Pending => break,
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucast(iface: &str, peer: &str) -> Medium {
        Medium::Ucast {
            iface: iface.into(),
            peer: peer.parse().unwrap(),
            port: DEFAULT_PORT,
        }
    }

    #[test]
    fn medium_names_read_like_ha_cf() {
        assert_eq!(
            medium_name(&ucast("eth0", "198.18.1.2")),
            "ucast eth0 198.18.1.2"
        );
        assert_eq!(
            medium_name(&ucast("eth1", "2001:db8::2")),
            "ucast6 eth1 2001:db8::2"
        );
        assert_eq!(
            medium_name(&Medium::Bcast {
                iface: "eth0".into(),
                port: DEFAULT_PORT,
            }),
            "bcast eth0"
        );
        let m = Medium::Mcast {
            iface: "eth0".into(),
            group: "225.0.0.1".parse().unwrap(),
            port: 694,
            ttl: 1,
            loopback: false,
        };
        assert_eq!(medium_name(&m), "mcast eth0 225.0.0.1:694");
    }

    #[test]
    fn shared_reader_credits_the_ucast_peer_then_bcast() {
        let all = vec![
            ucast("eth0", "198.18.1.2"),
            Medium::Bcast {
                iface: "eth0".into(),
                port: DEFAULT_PORT,
            },
            ucast("eth0", "198.18.1.3"),
        ];
        let on = [0, 1, 2];
        let credit = |on: &[usize], from: &str| Credit::new(&all, on).of(from.parse().unwrap()).0;
        assert_eq!(credit(&on, "198.18.1.3"), 2);
        assert_eq!(credit(&on, "198.18.1.2"), 0);
        assert_eq!(credit(&on, "198.18.1.9"), 1);
        assert_eq!(credit(&[0, 2], "198.18.1.9"), 0);
    }
}
