//! The few socket calls std does not offer: options that must be set before
//! `bind`, `SO_BINDTODEVICE`, multicast on a given interface index, the
//! interface's IPv4 broadcast address, a disconnect, and a read of up to
//! two datagrams at once (`recvmmsg`), each with the kernel's arrival time. socket2 where it
//! has the call, libc where it does not; no decisions.

use std::ffi::CString;
use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, SystemTime};

use socket2::{
    Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockAddrStorage, SockRef, Socket, Type,
};

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A non-blocking, close-on-exec UDP socket of the address's family.
pub(crate) fn udp_socket(v6: bool) -> io::Result<OwnedFd> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )
    .map(OwnedFd::from)
}

fn setsockopt<S: AsFd, T>(
    socket: &S,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: value points to a live T of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `SO_BINDTODEVICE`: the socket sends and receives on `iface` only.
pub(crate) fn bind_to_device(fd: &OwnedFd, iface: &str) -> io::Result<()> {
    SockRef::from(fd).bind_device(Some(iface.as_bytes()))
}

pub(crate) fn bind(fd: &OwnedFd, addr: SocketAddr) -> io::Result<()> {
    SockRef::from(fd).bind(&addr.into())
}

/// Undoes `connect` (`AF_UNSPEC`): the socket picks its route and source
/// address at each send again.
pub(crate) fn disconnect<S: AsFd>(socket: &S) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_storage is AF_UNSPEC, of the size given.
    let unspec: libc::sockaddr_storage = unsafe { mem::zeroed() };
    cvt(unsafe {
        libc::connect(
            socket.as_fd().as_raw_fd(),
            (&unspec as *const libc::sockaddr_storage).cast(),
            mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `SO_TIMESTAMPNS`: each datagram carries the time the kernel received
/// it, so one read late is still judged by when it came.
pub(crate) fn set_timestamps<S: AsFd>(socket: &S) -> io::Result<()> {
    setsockopt(
        socket,
        libc::SOL_SOCKET,
        libc::SO_TIMESTAMPNS,
        &1 as &libc::c_int,
    )
}

/// What [`recv_pair`] read into each of its two buffers.
pub(crate) type Stamped = (usize, SocketAddr, Option<SystemTime>);

/// Up to two datagrams without waiting, in one `recvmmsg`: into `first`,
/// then `second`. Fewer than two means the socket was empty after them,
/// so a quiet read of one beat costs one system call, not a second one
/// that ends in `EAGAIN`. `WouldBlock` when there is none.
pub(crate) fn recv_pair<S: AsFd>(
    socket: &S,
    first: &mut [u8],
    second: &mut [u8],
) -> io::Result<(Stamped, Option<Stamped>)> {
    // SAFETY: all-zero msghdrs, addresses and control buffers are valid;
    // each header below points at its own live buffers.
    let mut addrs: [libc::sockaddr_storage; 2] = unsafe { mem::zeroed() };
    let mut control = [[0u64; 8]; 2];
    let mut iov = [
        libc::iovec {
            iov_base: first.as_mut_ptr().cast(),
            iov_len: first.len(),
        },
        libc::iovec {
            iov_base: second.as_mut_ptr().cast(),
            iov_len: second.len(),
        },
    ];
    let mut msgs: [libc::mmsghdr; 2] = unsafe { mem::zeroed() };
    for (k, m) in msgs.iter_mut().enumerate() {
        m.msg_hdr.msg_name = (&mut addrs[k] as *mut libc::sockaddr_storage).cast();
        m.msg_hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        m.msg_hdr.msg_iov = &mut iov[k];
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_control = control[k].as_mut_ptr().cast();
        m.msg_hdr.msg_controllen = mem::size_of_val(&control[k]) as _;
    }
    // SAFETY: msgs describes two messages whose buffers outlive the call.
    let n = cvt(unsafe {
        libc::recvmmsg(
            socket.as_fd().as_raw_fd(),
            msgs.as_mut_ptr(),
            2,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    })?;
    let one = |k: usize| -> io::Result<Stamped> {
        let m = &msgs[k];
        // SAFETY: the kernel wrote msg_namelen bytes of address into a
        // storage of its full size.
        let from = unsafe {
            let mut storage = SockAddrStorage::zeroed();
            *storage.view_as::<libc::sockaddr_storage>() = addrs[k];
            SockAddr::new(storage, m.msg_hdr.msg_namelen)
        }
        .as_socket()
        .ok_or_else(|| io::Error::other("datagram from a non-IP address"))?;
        // SAFETY: the kernel wrote msg_controllen bytes of cmsgs at the
        // start of this message's control buffer.
        let at = unsafe {
            timestamp(
                control[k].as_ptr().cast::<u8>(),
                m.msg_hdr.msg_controllen as usize,
            )
        };
        Ok((m.msg_len as usize, from, at))
    };
    match n {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        1 => Ok((one(0)?, None)),
        _ => Ok((one(0)?, Some(one(1)?))),
    }
}

/// The `SCM_TIMESTAMPNS` among `len` bytes of cmsgs at `control`.
unsafe fn timestamp(control: *const u8, len: usize) -> Option<SystemTime> {
    let mut mh: libc::msghdr = unsafe { mem::zeroed() };
    mh.msg_control = control as *mut libc::c_void;
    mh.msg_controllen = len as _;
    // SAFETY: mh describes the caller's buffer; CMSG_* stay within it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                let d = Duration::new(u64::try_from(ts.tv_sec).ok()?, ts.tv_nsec as u32);
                return SystemTime::UNIX_EPOCH.checked_add(d);
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    None
}

/// The interface index of `iface` in the caller's network namespace.
pub(crate) fn ifindex(iface: &str) -> io::Result<u32> {
    let name = CString::new(iface).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: name is NUL-terminated.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(io::Error::last_os_error()),
        i => Ok(i),
    }
}

/// Join `group` on the interface with index `ifindex`.
pub(crate) fn join_group(fd: &OwnedFd, group: IpAddr, ifindex: u32) -> io::Result<()> {
    let sock = SockRef::from(fd);
    match group {
        IpAddr::V4(g) => sock.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex)),
        IpAddr::V6(g) => sock.join_multicast_v6(&g, ifindex),
    }
}

/// Outgoing multicast goes out of `ifindex`, with this TTL (hop limit) and
/// loopback setting.
pub(crate) fn set_multicast_out(
    fd: &OwnedFd,
    v6: bool,
    ifindex: u32,
    ttl: u8,
    loopback: bool,
) -> io::Result<()> {
    let sock = SockRef::from(fd);
    if v6 {
        sock.set_multicast_if_v6(ifindex)?;
        sock.set_multicast_hops_v6(ttl.into())?;
        sock.set_multicast_loop_v6(loopback)
    } else {
        // socket2 sets IPv4's outgoing interface by address only; by index
        // it takes an ip_mreqn.
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: ifindex as libc::c_int,
        };
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
        sock.set_multicast_ttl_v4(ttl.into())?;
        sock.set_multicast_loop_v4(loopback)
    }
}

/// The IPv4 address of a sockaddr from getifaddrs(3), which hands out raw
/// pointers (socket2 has no reader for them).
fn sockaddr_v4(sa: *const libc::sockaddr) -> Option<Ipv4Addr> {
    // SAFETY: callers pass a pointer from getifaddrs, null or valid.
    unsafe {
        if sa.is_null() || libc::c_int::from((*sa).sa_family) != libc::AF_INET {
            return None;
        }
        let sin = &*(sa as *const libc::sockaddr_in);
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }
}

/// The broadcast address of the first IPv4 address on `iface`, as the kernel
/// has it (`brd` in `ip addr`); computed from the netmask if none is set
/// (heartbeat's `SIOCGIFBRDADDR` would give 0.0.0.0 there).
pub(crate) fn broadcast_addr(iface: &str) -> io::Result<Option<Ipv4Addr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills head; freed below with freeifaddrs.
    cvt(unsafe { libc::getifaddrs(&mut head) })?;
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur walks the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        // SAFETY: ifa_name is a NUL-terminated C string.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if name.to_bytes() != iface.as_bytes() {
            continue;
        }
        let Some(addr) = sockaddr_v4(ifa.ifa_addr) else {
            continue;
        };
        // Without IFA_BROADCAST (`ip addr add` without `brd`) glibc reports
        // the address itself here.
        let brd = if ifa.ifa_flags & libc::IFF_BROADCAST as libc::c_uint != 0 {
            sockaddr_v4(ifa.ifa_ifu).filter(|b| *b != addr && !b.is_unspecified())
        } else {
            None
        };
        found = brd.or_else(|| {
            sockaddr_v4(ifa.ifa_netmask).map(|m| Ipv4Addr::from(u32::from(addr) | !u32::from(m)))
        });
        if found.is_some() {
            break;
        }
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}
