//! ICMP echo to ping nodes (ha.cf `ping` / `ping_group`). Raw sockets, so
//! CAP_NET_RAW suffices and no `ping_group_range` sysctl is needed. The
//! adapter only sends and reports replies; the engine decides what a
//! silent ping node means (`deadping`).

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};

use std::time::Duration;

use log::error;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// A raw ICMP socket for one address family.
pub struct Pinger {
    fd: AsyncFd<Socket>,
    v6: bool,
    ident: u16,
    seq: u16,
}

impl Pinger {
    pub fn new(v6: bool) -> io::Result<Pinger> {
        let (domain, proto) = if v6 {
            (Domain::IPV6, Protocol::ICMPV6)
        } else {
            (Domain::IPV4, Protocol::ICMPV4)
        };
        let fd = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(proto))?;
        // SAFETY: we own `fd` and it stays open as long as the AsyncFd.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(Pinger {
            fd,
            v6,
            ident: (std::process::id() & 0xffff) as u16,
            seq: 0,
        })
    }

    /// Sends one echo request.
    pub fn send(&mut self, to: IpAddr) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let pkt = echo_request(self.v6, self.ident, self.seq);
        if to.is_ipv6() != self.v6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "address family mismatch",
            ));
        }
        let to = SockAddr::from(SocketAddr::new(to, 0));
        self.fd.get_ref().send_to(&pkt, &to).map(drop)
    }

    /// The source of the next echo reply meant for us.
    pub async fn recv(&self) -> io::Result<IpAddr> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_reply(fd.get_ref(), self.v6, self.ident)) {
                Ok(Ok(Some(addr))) => return Ok(addr),
                Ok(Ok(None)) => continue, // someone else's ICMP
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

fn echo_request(v6: bool, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 }, 0, 0, 0];
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"harust-ping");
    if !v6 {
        // The kernel fills in the ICMPv6 checksum, not the ICMPv4 one.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn recv_reply(sock: &Socket, v6: bool, ident: u16) -> io::Result<Option<IpAddr>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    let (n, from) = sock.recv_from(&mut buf)?;
    // SAFETY: recv_from initialised the first n bytes.
    let data: Vec<u8> = buf[..n]
        .iter()
        .map(|b| unsafe { b.assume_init() })
        .collect();
    // An ICMPv4 raw socket delivers the IP header too; ICMPv6 does not.
    let icmp = if v6 {
        &data[..]
    } else {
        let ihl = usize::from(data.first().copied().unwrap_or(0) & 0x0f) * 4;
        data.get(ihl..).unwrap_or(&[])
    };
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if icmp.len() < 8 || icmp[0] != want || u16::from_be_bytes([icmp[4], icmp[5]]) != ident {
        return Ok(None);
    }
    let Some(from) = from.as_socket() else {
        return Ok(None);
    };
    let addr = from.ip();
    Ok(Some(addr))
}

/// Probes the ping targets and reports each reply's target index. The
/// engine judges silence against `deadping`; this only sends and listens.
pub fn spawn_pinger(targets: Vec<Vec<IpAddr>>, deadping: Duration) -> mpsc::Receiver<usize> {
    let (tx, rx) = mpsc::channel(64);
    if targets.is_empty() {
        return rx;
    }
    let interval = (deadping / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    tokio::spawn(async move {
        let mut socks = Vec::new();
        for v6 in [false, true] {
            if targets.iter().flatten().any(|a| a.is_ipv6() == v6) {
                match Pinger::new(v6) {
                    Ok(p) => socks.push(p),
                    Err(e) => error!("cannot open an ICMP socket for ping nodes: {e}"),
                }
            }
        }
        let mut tick = tokio::time::interval(interval);
        loop {
            let recv = async {
                match socks.as_slice() {
                    [] => std::future::pending().await,
                    [a] => a.recv().await,
                    [a, b, ..] => tokio::select! { r = a.recv() => r, r = b.recv() => r },
                }
            };
            tokio::select! {
                _ = tick.tick() => {
                    for addr in targets.iter().flatten() {
                        for s in socks.iter_mut() {
                            let _ = s.send(*addr);
                        }
                    }
                }
                r = recv => {
                    if let Ok(from) = r {
                        for (i, t) in targets.iter().enumerate() {
                            if t.contains(&from) && tx.send(i).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_echo_request_checksums_to_zero() {
        let p = echo_request(false, 0x1234, 7);
        assert_eq!(p[0], ECHO_REQUEST_V4);
        assert_eq!(checksum(&p), 0);
    }
}
