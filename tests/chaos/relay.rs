//! The test's UDP relay, in the bridge namespace: every heartbeat passes
//! through it, so it can delay, jitter, duplicate and reorder them (the
//! kernel here has no netem).
//!
//! For each ordered pair of nodes (x, y) the relay owns the address
//! R(x→y) = 198.18.1.(100 + 10·x + y) on br0; x's `ucast` line for y
//! points there. A beat received on R(x→y) is sent on to y's real address
//! from R(y→x), the address y itself uses for x: y credits it to its
//! `ucast` medium for x, and anything y sends back to the source address
//! reaches x through the relay too.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::plan::Shape;
use crate::rng::Rng;
use crate::support::{Netns, Node, Topology};

const PORT: u16 = 694;

/// Where `from` sends its beats for `to`.
pub fn relay_addr(from: Node, to: Node) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1, 100 + 10 * from.host() + to.host())
}

type Shapes = Arc<Mutex<HashMap<(u8, u8), Shape>>>;

/// Packets seen and sent, over the relay's life.
#[derive(Debug, Default)]
pub struct Tally {
    pub received: AtomicU64,
    pub sent: AtomicU64,
    pub duplicated: AtomicU64,
    pub held_back: AtomicU64,
}

pub struct Relay {
    shapes: Shapes,
    pub tally: Arc<Tally>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Relay {
    /// Adds the relay addresses to br0 in `bridge` and starts forwarding;
    /// returns once every socket is bound.
    pub fn start(bridge: &Netns, nodes: &[Node], seed: u64) -> Relay {
        let mut pairs = Vec::new();
        for &x in nodes {
            for &y in nodes {
                if x != y {
                    pairs.push((x, y));
                    let a = format!("{}/24", relay_addr(x, y));
                    bridge.exec_ok(&["ip", "addr", "add", &a, "dev", "br0", "nodad"]);
                }
            }
        }
        let shapes: Shapes = Arc::default();
        let tally = Arc::new(Tally::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let shapes = shapes.clone();
            let tally = tally.clone();
            bridge.spawn(move || async move {
                let mut socks = HashMap::new();
                for &(x, y) in &pairs {
                    let at = SocketAddr::from((relay_addr(x, y), PORT));
                    let s = UdpSocket::bind(at)
                        .await
                        .unwrap_or_else(|e| panic!("relay: binding {at}: {e}"));
                    socks.insert((x.host(), y.host()), Arc::new(s));
                }
                let mut rng = Rng::new(seed);
                for &(x, y) in &pairs {
                    let rx = socks[&(x.host(), y.host())].clone();
                    let tx = socks[&(y.host(), x.host())].clone();
                    let to = SocketAddr::from((Topology::ipv4(y, 0), PORT));
                    let key = (x.host(), y.host());
                    let rng = rng.fork(u64::from(x.host()) << 8 | u64::from(y.host()));
                    tokio::spawn(forward(rx, tx, to, key, shapes.clone(), tally.clone(), rng));
                }
                ready_tx.send(()).expect("test waiting for the relay");
                let _ = stop_rx.await;
            })
        };
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            // The thread panicked (its message is on stderr) or hangs.
            panic!("the relay did not bind its sockets within 10 s");
        }
        Relay {
            shapes,
            tally,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Shapes beats `from` → `to` from now on.
    pub fn set(&self, from: Node, to: Node, shape: Shape) {
        self.shapes
            .lock()
            .unwrap()
            .insert((from.host(), to.host()), shape);
    }

    /// Back to plain forwarding for every direction.
    pub fn clear(&self) {
        self.shapes.lock().unwrap().clear();
    }
}

async fn forward(
    rx: Arc<UdpSocket>,
    tx: Arc<UdpSocket>,
    to: SocketAddr,
    key: (u8, u8),
    shapes: Shapes,
    tally: Arc<Tally>,
    mut rng: Rng,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, _)) = rx.recv_from(&mut buf).await else {
            continue;
        };
        tally.received.fetch_add(1, Ordering::Relaxed);
        let shape = shapes
            .lock()
            .unwrap()
            .get(&key)
            .copied()
            .unwrap_or_default();
        let copies = if shape.dup_pct > 0 && rng.percent(shape.dup_pct) {
            tally.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut delay = shape.delay_ms;
            if shape.jitter_ms > 0 {
                delay += rng.range(0, shape.jitter_ms);
            }
            if shape.reorder_pct > 0 && rng.percent(shape.reorder_pct) {
                tally.held_back.fetch_add(1, Ordering::Relaxed);
                delay += shape.reorder_ms;
            }
            if delay == 0 {
                let _ = tx.send_to(&buf[..n], to).await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let (tx, data, tally) = (tx.clone(), buf[..n].to_vec(), tally.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let _ = tx.send_to(&data, to).await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
            });
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Ending the block_on drops the runtime and every forwarding task.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            eprintln!("cleanup: the relay thread panicked");
        }
    }
}
