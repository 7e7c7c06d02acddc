//! The least a heartbeat node can cost at idle: bench/failover's `floor`
//! row. Every keepalive it wakes once, reads what waits on its socket
//! (checking each datagram's HMAC-SHA1), and sends one beat of heartbeat's
//! size with its two HMAC-SHA1s (the inner `auth` field and the trailer),
//! as every node of a heartbeat cluster must, active or passive. No state,
//! no allocation per beat, no event loop: what remains is the system calls.
//!
//! `idle-floor BIND_ADDR:PORT PEER_ADDR:PORT KEEPALIVE_MS`

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};

/// A status beat of heartbeat 3.0.6 in netstring format is about this long.
const BEAT_LEN: usize = 430;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: idle-floor BIND_ADDR:PORT PEER_ADDR:PORT KEEPALIVE_MS");
        std::process::exit(2);
    }
    let keepalive = Duration::from_millis(args[3].parse().expect("KEEPALIVE_MS"));
    let sock = UdpSocket::bind(&args[1]).expect("bind");
    sock.connect(&args[2]).expect("peer address");
    sock.set_nonblocking(true).expect("non-blocking");
    let key = Hmac::<sha1::Sha1>::new_from_slice(b"benchsecret").expect("key");
    let mut rx = [0u8; 2048];
    let mut beat = [b'x'; BEAT_LEN + 20];
    let (mut seq, mut heard) = (0u64, 0u64);
    let mut next = Instant::now();
    loop {
        next += keepalive;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        // One read per wake: a peer beats once per keepalive too.
        if let Ok(n) = sock.recv(&mut rx) {
            let body = n.saturating_sub(20);
            let mut mac = key.clone();
            mac.update(&rx[..body]);
            if mac.verify_slice(&rx[body..n]).is_ok() {
                heard += 1;
            }
        }
        seq += 1;
        beat[..8].copy_from_slice(&seq.to_le_bytes());
        let mut inner = key.clone();
        inner.update(&beat[..BEAT_LEN / 2]);
        beat[BEAT_LEN / 2..BEAT_LEN / 2 + 20].copy_from_slice(&inner.finalize().into_bytes());
        let mut trailer = key.clone();
        trailer.update(&beat[..BEAT_LEN]);
        beat[BEAT_LEN..].copy_from_slice(&trailer.finalize().into_bytes());
        let _ = sock.send(&beat);
        if seq % 6000 == 0 {
            eprintln!("{seq} beats sent, {heard} read");
        }
    }
}
