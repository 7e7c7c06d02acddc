//! Many rtnetlink requests in one datagram. The kernel carries out the
//! requests of a datagram one after the other, inside the one sendmsg(2),
//! and acks each: a group's addresses appear together, with neither a round
//! trip nor a chance for the scheduler to step in between them.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rtnetlink::packet_core::{ErrorMessage, NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// The largest datagram sent; a larger batch goes out in several.
const CHUNK: usize = 32 * 1024;
/// How long an answer may take. The kernel answers rtnetlink requests
/// before sendmsg(2) returns, so this bounds only the impossible.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// A netlink socket of its own for batches (rtnetlink's connection sends
/// one request per datagram).
pub(crate) struct Batcher {
    socket: Socket,
    seq: AtomicU32,
}

impl Batcher {
    pub(crate) fn open() -> io::Result<Batcher> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let tv = libc::timeval {
            tv_sec: ANSWER_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: setsockopt(2) with a timeval of the size given.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Batcher {
            socket,
            seq: AtomicU32::new(1),
        })
    }

    /// Sends every request (with its header flags, which must ask for an
    /// ack) and returns each one's answer, in order. Blocks only for
    /// answers the kernel has already queued.
    pub(crate) fn run(
        &self,
        requests: Vec<(RouteNetlinkMessage, u16)>,
    ) -> io::Result<Vec<Result<(), ErrorMessage>>> {
        let n = requests.len() as u32;
        let base = self.seq.fetch_add(n, Ordering::Relaxed);
        let mut answers: Vec<Option<Result<(), ErrorMessage>>> = vec![None; n as usize];
        let mut buf = Vec::with_capacity(CHUNK);
        let mut sent = 0u32;
        let mut requests = requests.into_iter().peekable();
        while requests.peek().is_some() {
            buf.clear();
            while let Some((msg, flags)) = requests.peek() {
                let mut m = NetlinkMessage::from(msg.clone());
                m.header.flags = *flags;
                m.header.sequence_number = base.wrapping_add(sent);
                m.finalize();
                let len = m.buffer_len();
                if !buf.is_empty() && buf.len() + len > CHUNK {
                    break;
                }
                let at = buf.len();
                // NLMSG_ALIGN: each message starts on 4 bytes.
                buf.resize(at + len.next_multiple_of(4), 0);
                m.serialize(&mut buf[at..at + len]);
                requests.next();
                sent += 1;
            }
            self.socket.send(&buf, 0)?;
        }
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        while answers.iter().any(Option::is_none) {
            rx.clear();
            self.socket.recv(&mut rx, 0)?;
            let mut off = 0;
            while off + 16 <= rx.len() {
                let len =
                    u32::from_ne_bytes(rx[off..off + 4].try_into().expect("4 bytes")) as usize;
                if len < 16 || off + len > rx.len() {
                    break;
                }
                if let Ok(m) =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[off..off + len])
                {
                    let i = m.header.sequence_number.wrapping_sub(base);
                    if let (NetlinkPayload::Error(e), Some(slot)) =
                        (m.payload, answers.get_mut(i as usize))
                    {
                        *slot = Some(match e.code {
                            None => Ok(()),
                            Some(_) => Err(e),
                        });
                    }
                }
                off += len.next_multiple_of(4);
            }
        }
        Ok(answers.into_iter().map(|a| a.expect("answered")).collect())
    }
}
