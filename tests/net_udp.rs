//! Real UDP between two network namespaces joined by veth pairs:
//! `a:ethN` (198.18.{N+1}.1/24) <-> `b:ethN` (198.18.{N+1}.2/24).

mod support;

use std::net::IpAddr;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime};

use harust::config::Medium;
use harust::net::{Datagram, LinkId, Links};
use support::{Netns, veth};

const PORT: u16 = 694;
const DEADLINE: Duration = Duration::from_secs(5);

/// Two namespaces joined by `links` veth pairs, with IPv4 and IPv6
/// addresses on each.
fn pair(tag: &str, links: usize) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}-a"));
    let b = Netns::new(&format!("{tag}-b"));
    for i in 0..links {
        let eth = format!("eth{i}");
        veth(&a, &eth, &b, &eth);
        for (ns, host) in [(&a, 1), (&b, 2)] {
            ns.exec_ok(&[
                "ip",
                "addr",
                "add",
                &format!("198.18.{}.{host}/24", i + 1),
                "dev",
                &eth,
            ]);
            ns.exec_ok(&[
                "ip",
                "addr",
                "add",
                &format!("2001:db8:{}::{host}/64", i + 1),
                "dev",
                &eth,
                "nodad",
            ]);
        }
        a.wait_oper_up(&eth);
        b.wait_oper_up(&eth);
    }
    (a, b)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ucast(iface: &str, peer: &str) -> Medium {
    Medium::Ucast {
        iface: iface.into(),
        peer: ip(peer),
        port: PORT,
    }
}

/// Opens `media` in `ns` on a background thread, signals once bound, then
/// collects `count` datagrams (each within the deadline).
fn receiver(
    ns: &Netns,
    media: Vec<Medium>,
    count: usize,
) -> std::thread::JoinHandle<Vec<Datagram>> {
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let h = ns.spawn(move || async move {
        let mut links = Links::open(&media).await.expect("opening receiver links");
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        while got.len() < count {
            match tokio::time::timeout(DEADLINE, links.recv()).await {
                Ok(Some(d)) => got.push(d),
                Ok(None) => panic!("reader stopped"),
                Err(_) => panic!(
                    "timed out waiting for datagram {} of {count}; got {got:?}",
                    got.len() + 1
                ),
            }
        }
        got
    });
    ready_rx
        .recv_timeout(DEADLINE)
        .expect("receiver to bind its sockets");
    h
}

fn send_all(ns: &Netns, media: Vec<Medium>, payloads: Vec<Vec<u8>>) {
    ns.run(move || async move {
        let links = Links::open(&media).await.expect("opening sender links");
        for p in &payloads {
            let errors = links.send(p).await;
            assert!(errors.is_empty(), "send errors: {errors:?}");
        }
    });
}

#[test]
fn ucast_datagram_crosses_veth_with_sender_address() {
    require_privileged!("ucast_datagram_crosses_veth_with_sender_address");
    let (a, b) = pair("ucast", 1);
    let rx = receiver(&b, vec![ucast("eth0", "198.18.1.1")], 1);
    send_all(
        &a,
        vec![ucast("eth0", "198.18.1.2")],
        vec![b"###\nhello%%%\n".to_vec()],
    );
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"###\nhello%%%\n");
    assert_eq!(got[0].link, LinkId(0));
    assert_eq!(got[0].from.ip(), ip("198.18.1.1"));
    // Unlike heartbeat's (an ephemeral port), harust's ucast socket sends
    // from the port, so the peer's connected ucast socket takes it.
    assert_eq!(got[0].from.port(), PORT);
}

/// A peer's ucast socket sends from the port to ours, connected to it; a
/// heartbeat node sends from an ephemeral port to the shared read socket.
/// Both reach the ucast medium, in order.
#[test]
fn a_peers_ucast_socket_and_a_heartbeat_nodes_ephemeral_port_both_reach_us() {
    require_privileged!("a_peers_ucast_socket_and_a_heartbeat_nodes_ephemeral_port_both_reach_us");
    let (a, b) = pair("uconn", 1);
    let rx = receiver(&b, vec![ucast("eth0", "198.18.1.1")], 2);
    // The ucast socket, connected to the peer's port from ours.
    let ss = b.exec_ok(&["ss", "-H", "-u", "-n", "state", "established"]);
    let ss = String::from_utf8_lossy(&ss.stdout);
    // `Recv-Q Send-Q Local Peer`; the local address has its device
    // (`198.18.1.2%eth0:694`).
    let connected = ss.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4
            && f[2].starts_with("198.18.1.2")
            && f[2].ends_with(":694")
            && f[3] == "198.18.1.1:694"
    });
    assert!(
        connected,
        "no ucast socket connected from :694 to the peer's :694: {ss:?}"
    );
    send_all(
        &a,
        vec![ucast("eth0", "198.18.1.2")],
        vec![b"harust".to_vec()],
    );
    a.run(|| async {
        let s = std::net::UdpSocket::bind("198.18.1.1:0").unwrap();
        s.send_to(b"heartbeat", "198.18.1.2:694").unwrap();
    });
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"harust");
    assert_eq!(got[0].from.port(), PORT);
    assert_eq!(got[1].payload, b"heartbeat");
    assert_ne!(got[1].from.port(), PORT);
    assert!(got.iter().all(|d| d.link == LinkId(0)), "{got:?}");
}

#[test]
fn ucast6_datagram_crosses_veth() {
    require_privileged!("ucast6_datagram_crosses_veth");
    let (a, b) = pair("ucast6", 1);
    let rx = receiver(&b, vec![ucast("eth0", "2001:db8:1::1")], 1);
    send_all(
        &a,
        vec![ucast("eth0", "2001:db8:1::2")],
        vec![b"six".to_vec()],
    );
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"six");
    assert_eq!(got[0].from.ip(), ip("2001:db8:1::1"));
}

#[test]
fn bcast_reaches_peer_via_interface_broadcast_address() {
    require_privileged!("bcast_reaches_peer_via_interface_broadcast_address");
    let (a, b) = pair("bcast", 1);
    let rx = receiver(
        &b,
        vec![Medium::Bcast {
            iface: "eth0".into(),
            port: PORT,
        }],
        1,
    );
    let dest = a.run(|| async {
        let links = Links::open(&[Medium::Bcast {
            iface: "eth0".into(),
            port: PORT,
        }])
        .await
        .unwrap();
        assert!(links.send(b"to all").await.is_empty());
        links.destination(LinkId(0)).unwrap()
    });
    assert_eq!(dest, "198.18.1.255:694".parse().unwrap());
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"to all");
    assert_eq!(got[0].from.ip(), ip("198.18.1.1"));
}

/// Two media on different interfaces bind two read sockets to the same
/// port. Were `SO_BINDTODEVICE` not honoured, both would sit in one
/// `SO_REUSEPORT` group and the kernel would hand about half the datagrams
/// to the wrong one.
#[test]
fn read_socket_bound_to_one_interface_never_gets_anothers_datagrams() {
    require_privileged!("read_socket_bound_to_one_interface_never_gets_anothers_datagrams");
    let (a, b) = pair("bind", 2);
    const N: usize = 20;
    let rx = receiver(
        &b,
        vec![ucast("eth0", "198.18.1.1"), ucast("eth1", "198.18.2.1")],
        2 * N,
    );
    let mut payloads = Vec::new();
    for i in 0..N {
        payloads.push(format!("eth0 {i}").into_bytes());
    }
    send_all(&a, vec![ucast("eth0", "198.18.1.2")], payloads);
    let mut payloads = Vec::new();
    for i in 0..N {
        payloads.push(format!("eth1 {i}").into_bytes());
    }
    send_all(&a, vec![ucast("eth1", "198.18.2.2")], payloads);
    let got = rx.join().unwrap();
    for d in &got {
        let text = String::from_utf8_lossy(&d.payload);
        let expected = if text.starts_with("eth0") {
            LinkId(0)
        } else {
            LinkId(1)
        };
        assert_eq!(
            d.link, expected,
            "{text:?} read on the wrong interface's socket"
        );
    }
}

/// Several media on one interface share one read socket: every datagram is
/// delivered once, credited to the medium of its sender.
#[test]
fn media_sharing_an_interface_share_one_reader() {
    require_privileged!("media_sharing_an_interface_share_one_reader");
    let (a, b) = pair("share", 1);
    let rx = receiver(
        &b,
        vec![
            Medium::Bcast {
                iface: "eth0".into(),
                port: PORT,
            },
            ucast("eth0", "198.18.1.1"),
            ucast("eth0", "198.18.1.9"),
        ],
        2,
    );
    send_all(
        &a,
        vec![ucast("eth0", "198.18.1.2")],
        vec![b"one".to_vec(), b"two".to_vec()],
    );
    let got = rx.join().unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|d| d.link == LinkId(1)), "{got:?}");
    assert_eq!(got[0].payload, b"one");
    assert_eq!(got[1].payload, b"two");
}

#[test]
fn mcast_group_joined_on_interface_receives() {
    require_privileged!("mcast_group_joined_on_interface_receives");
    let (a, b) = pair("mcast", 1);
    let m = Medium::Mcast {
        iface: "eth0".into(),
        group: ip("225.0.0.1"),
        port: 6940,
        ttl: 1,
        loopback: false,
    };
    let rx = receiver(&b, vec![m.clone()], 1);
    send_all(&a, vec![m], vec![b"group".to_vec()]);
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"group");
    assert_eq!(got[0].from.ip(), ip("198.18.1.1"));
}

#[test]
fn mcast6_group_joined_on_interface_receives() {
    require_privileged!("mcast6_group_joined_on_interface_receives");
    let (a, b) = pair("mcast6", 1);
    let m = Medium::Mcast {
        iface: "eth0".into(),
        group: ip("ff02::694"),
        port: 694,
        ttl: 1,
        loopback: false,
    };
    let rx = receiver(&b, vec![m.clone()], 1);
    send_all(&a, vec![m], vec![b"group6".to_vec()]);
    let got = rx.join().unwrap();
    assert_eq!(got[0].payload, b"group6");
}

#[test]
fn missing_interface_is_named_in_the_error() {
    require_privileged!("missing_interface_is_named_in_the_error");
    let ns = Netns::new("noif");
    let err = ns.run(|| async {
        Links::open(&[ucast("eth7", "198.18.1.1")])
            .await
            .unwrap_err()
    });
    let text = err.to_string();
    assert!(text.contains("eth7"), "{text}");
    assert!(text.contains("ucast eth7 198.18.1.1"), "{text}");
}

/// The shared Topology: A and B talk over each of their links through the
/// bridge namespace, and C sits on link 0.
#[test]
fn topology_carries_ucast_between_a_and_b_on_every_link() {
    require_privileged!("topology_carries_ucast_between_a_and_b_on_every_link");
    use support::{Node, Topology};
    let t = Topology::with_links("topo", 2);
    for link in 0..t.links() {
        let eth = format!("eth{link}");
        let a_ip = Topology::ipv4(Node::A, link).to_string();
        let b_ip = Topology::ipv4(Node::B, link).to_string();
        let rx = receiver(&t.b, vec![ucast(&eth, &a_ip)], 1);
        send_all(
            &t.a,
            vec![ucast(&eth, &b_ip)],
            vec![eth.clone().into_bytes()],
        );
        let got = rx.join().unwrap();
        assert_eq!(got[0].payload, eth.as_bytes());
        assert_eq!(got[0].from.ip(), ip(&a_ip));
    }
    let c = Topology::ipv4(Node::C, 0).to_string();
    t.a.exec_ok(&["ping", "-c", "1", "-W", "5", &c]);
}

/// heartbeat's ucast write socket marks its datagrams IPTOS_LOWDELAY; its
/// bcast datagrams go out with TOS 0 (PROTOCOL.md §1.1, captured).
#[test]
fn ucast_is_sent_lowdelay_and_bcast_with_tos_zero_like_heartbeat() {
    require_privileged!("ucast_is_sent_lowdelay_and_bcast_with_tos_zero_like_heartbeat");
    if !support::netns::has_tool(
        "ucast_is_sent_lowdelay_and_bcast_with_tos_zero",
        "tcpdump",
        "--version",
    ) {
        return;
    }
    let (a, b) = pair("tos", 1);
    let cap = support::netns::Capture::start(&b, "eth0", "udp dst port 694", 2);
    send_all(
        &a,
        vec![
            ucast("eth0", "198.18.1.2"),
            Medium::Bcast {
                iface: "eth0".into(),
                port: PORT,
            },
        ],
        vec![b"tos".to_vec()],
    );
    let text = cap.finish(DEADLINE);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("tos 0x")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("tos 0x10"), "ucast: {}", lines[0]);
    assert!(lines[1].contains("tos 0x0,"), "bcast: {}", lines[1]);
    assert!(text.contains("198.18.1.255.694"), "{text}");
}

/// node-b's links to node-a, gone quiet (see `Links::set_quiet`).
async fn quiet_links() -> Links {
    let mut links = Links::open(&[ucast("eth0", "198.18.1.1")])
        .await
        .expect("opening receiver links");
    links.set_quiet(true).expect("going quiet");
    assert!(links.is_quiet(), "the kernel gives no arrival times here");
    links
}

/// Quiet links (the runtime's quiet reads): datagrams wait in the
/// socket, wake nothing, and are read later, in order, each with the
/// kernel's arrival time; back to woken, datagrams wake `recv` again.
#[test]
fn quiet_links_keep_datagrams_with_their_arrival_times() {
    require_privileged!("quiet_links_keep_datagrams_with_their_arrival_times");
    let (a, b) = pair("quiet", 1);
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (sent_tx, sent_rx) = std_mpsc::channel::<(SystemTime, SystemTime)>();
    let rx = b.spawn(move || async move {
        let mut links = quiet_links().await;
        ready_tx.send(()).unwrap();
        let (before, after) = sent_rx.recv_timeout(DEADLINE).expect("the first send");
        // Quiet: nothing wakes recv, the datagram waits in the socket.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), links.recv())
                .await
                .is_err(),
            "a quiet link woke recv"
        );
        // Three waiting: read two at a time, in order, each with its own
        // arrival time, then none (the round is over).
        let mut payload = Vec::new();
        let mut last = before;
        for want in [&b"quiet-1"[..], b"quiet-2", b"quiet-3"] {
            let (link, from, at) = links
                .try_recv_into(&mut payload)
                .expect("a datagram waiting in the socket");
            assert_eq!(payload, want);
            assert_eq!(link, LinkId(0));
            assert_eq!(from.ip(), ip("198.18.1.1"));
            let at = at.expect("an arrival time");
            assert!(
                last <= at && at <= after,
                "arrival {at:?} outside {last:?}..{after:?}"
            );
            last = at;
        }
        assert!(links.try_recv_into(&mut payload).is_none());
        // A new round reads the socket again.
        assert!(links.try_recv_into(&mut payload).is_none());
        links.set_quiet(false).expect("waking again");
        ready_tx.send(()).unwrap();
        tokio::time::timeout(DEADLINE, links.recv())
            .await
            .expect("a woken link's datagram")
            .expect("a datagram")
    });
    ready_rx
        .recv_timeout(DEADLINE)
        .expect("the receiver to go quiet");
    let before = SystemTime::now();
    send_all(
        &a,
        vec![ucast("eth0", "198.18.1.2")],
        vec![
            b"quiet-1".to_vec(),
            b"quiet-2".to_vec(),
            b"quiet-3".to_vec(),
        ],
    );
    sent_tx.send((before, SystemTime::now())).unwrap();
    ready_rx
        .recv_timeout(DEADLINE)
        .expect("the receiver to wake");
    send_all(
        &a,
        vec![ucast("eth0", "198.18.1.2")],
        vec![b"woken".to_vec()],
    );
    assert_eq!(rx.join().unwrap().payload, b"woken");
}

/// While quiet, a read socket that has carried nothing for a while (the
/// shared one, when the peer's beats come over its connected ucast socket)
/// is read only once epoll has seen a datagram on it, so a quiet read
/// costs no system call for it; what arrives there is still read, with
/// its arrival time, and makes the socket busy again.
#[test]
fn an_idle_read_socket_is_read_once_epoll_saw_a_datagram() {
    require_privileged!("an_idle_read_socket_is_read_once_epoll_saw_a_datagram");
    let (a, b) = pair("idle", 1);
    let (ready_tx, ready_rx) = std_mpsc::channel();
    let (sent_tx, sent_rx) = std_mpsc::channel::<(SystemTime, SystemTime)>();
    let rx = b.spawn(move || async move {
        let mut links = quiet_links().await;
        // Both sockets (the connected ucast one and the shared one) have
        // just been opened: busy, read at every quiet read.
        assert_eq!(links.idle_readers(), (0, 2));
        let later = std::time::Instant::now() + harust::net::IDLE_AFTER;
        links
            .sort_readers(later)
            .expect("registering the idle sockets");
        assert_eq!(links.idle_readers(), (2, 0));
        ready_tx.send(()).unwrap();
        let (before, after) = sent_rx.recv_timeout(DEADLINE).expect("the send");
        // The datagram waits in the shared socket, but this runtime's
        // reactor has not run since: nothing said it is readable, so
        // nothing reads it (a busy socket would be read here).
        let mut payload = Vec::new();
        assert!(
            links.try_recv_into(&mut payload).is_none(),
            "an idle socket was read before epoll saw a datagram"
        );
        // Once the reactor has run, the next quiet read takes it.
        let deadline = std::time::Instant::now() + DEADLINE;
        let (link, from, at) = loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if let Some(got) = links.try_recv_into(&mut payload) {
                break got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the idle socket's datagram was never read"
            );
        };
        assert_eq!(payload, b"from-an-ephemeral-port");
        assert_eq!(link, LinkId(0));
        assert_ne!(from.port(), PORT);
        let at = at.expect("an arrival time");
        assert!(
            before <= at && at <= after,
            "arrival {at:?} outside {before:?}..{after:?}"
        );
        assert!(links.try_recv_into(&mut payload).is_none());
        // It carried a datagram: busy again, read at every quiet read.
        links.sort_readers(later).expect("sorting");
        assert_eq!(links.idle_readers(), (1, 1));
    });
    ready_rx
        .recv_timeout(DEADLINE)
        .expect("the receiver to go quiet");
    let before = SystemTime::now();
    a.run(|| async {
        let s = std::net::UdpSocket::bind("198.18.1.1:0").unwrap();
        s.send_to(b"from-an-ephemeral-port", "198.18.1.2:694")
            .unwrap();
    });
    sent_tx.send((before, SystemTime::now())).unwrap();
    rx.join().unwrap();
}

/// The write socket is connected (its route is looked up once, not per
/// beat), so the kernel reports a peer's closed port (ICMP port
/// unreachable, while its daemon restarts) on the next send, which then
/// sends nothing. The beat must still go out.
#[test]
fn a_send_after_the_peers_port_was_closed_still_goes_out() {
    require_privileged!("a_send_after_the_peers_port_was_closed_still_goes_out");
    let (a, b) = pair("refused", 1);
    let (refused_tx, refused_rx) = std_mpsc::channel();
    let (go_tx, go_rx) = std_mpsc::channel::<()>();
    let sender = a.spawn(move || async move {
        let links = Links::open(&[ucast("eth0", "198.18.1.2")])
            .await
            .expect("opening sender links");
        // Nobody listens on b: it answers with a port unreachable.
        assert!(links.send(b"into the void").await.is_empty());
        // A socket of our own sends after it: once its error is in, the
        // one for the link's datagram is too.
        let probe = std::net::UdpSocket::bind("198.18.1.1:0").unwrap();
        probe.connect(("198.18.1.2", PORT)).unwrap();
        probe.send(b"probe").unwrap();
        let until = std::time::Instant::now() + DEADLINE;
        while probe.take_error().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < until,
                "no port unreachable came back from b"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        refused_tx.send(()).unwrap();
        go_rx.recv_timeout(DEADLINE).unwrap();
        links.send(b"after the restart").await
    });
    refused_rx
        .recv_timeout(DEADLINE)
        .expect("the sender to see the port unreachable");
    let rx = receiver(&b, vec![ucast("eth0", "198.18.1.1")], 1);
    go_tx.send(()).unwrap();
    let errors = sender.join().unwrap();
    assert!(errors.is_empty(), "send errors: {errors:?}");
    assert_eq!(rx.join().unwrap()[0].payload, b"after the restart");
}

/// `Links` opened in `ns` on a thread of its own: `send` sends on every
/// link and returns the errors.
struct Sender {
    payloads: std_mpsc::Sender<Vec<u8>>,
    errors: std_mpsc::Receiver<Vec<String>>,
}

impl Sender {
    fn open(ns: &Netns, media: Vec<Medium>) -> Sender {
        let (p_tx, p_rx) = std_mpsc::channel::<Vec<u8>>();
        let (e_tx, e_rx) = std_mpsc::channel();
        // Detached: it ends when `payloads` is dropped.
        let _ = ns.spawn(move || async move {
            let links = Links::open(&media).await.expect("opening sender links");
            while let Ok(p) = p_rx.recv() {
                let errors = links.send(&p).await;
                let _ = e_tx.send(errors.iter().map(|(_, e)| e.to_string()).collect());
            }
        });
        Sender {
            payloads: p_tx,
            errors: e_rx,
        }
    }

    fn send(&self, payload: &[u8]) -> Vec<String> {
        self.payloads
            .send(payload.to_vec())
            .expect("the sender to run");
        self.errors
            .recv_timeout(DEADLINE)
            .expect("the sender to answer (did opening the links fail?)")
    }
}

/// An interface down when the daemon starts is no error: the write socket
/// cannot be connected (no route), its sends fail while the link is down
/// and go out once it is up.
#[test]
fn a_link_down_at_start_sends_once_it_is_up() {
    require_privileged!("a_link_down_at_start_sends_once_it_is_up");
    let (a, b) = pair("linkdown", 1);
    a.exec_ok(&["ip", "link", "set", "eth0", "down"]);
    let tx = Sender::open(&a, vec![ucast("eth0", "198.18.1.2")]);
    assert!(
        !tx.send(b"while down").is_empty(),
        "a send on a link that is down reported no error"
    );
    a.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    a.wait_oper_up("eth0");
    b.wait_oper_up("eth0");
    let rx = receiver(&b, vec![ucast("eth0", "198.18.1.1")], 1);
    let errors = tx.send(b"up again");
    assert!(errors.is_empty(), "send errors: {errors:?}");
    assert_eq!(rx.join().unwrap()[0].payload, b"up again");
}

/// The connected write socket fixed its source address at start; a node
/// renumbered while running still sends, from its new address.
#[test]
fn a_renumbered_node_sends_from_its_new_address() {
    require_privileged!("a_renumbered_node_sends_from_its_new_address");
    let (a, b) = pair("renumber", 1);
    let rx = receiver(&b, vec![ucast("eth0", "198.18.1.1")], 2);
    let tx = Sender::open(&a, vec![ucast("eth0", "198.18.1.2")]);
    assert!(tx.send(b"before").is_empty());
    a.exec_ok(&["ip", "addr", "del", "198.18.1.1/24", "dev", "eth0"]);
    a.exec_ok(&["ip", "addr", "add", "198.18.1.3/24", "dev", "eth0"]);
    let errors = tx.send(b"after");
    assert!(errors.is_empty(), "send errors: {errors:?}");
    let got = rx.join().unwrap();
    assert_eq!(
        (got[0].from.ip(), got[1].from.ip()),
        (ip("198.18.1.1"), ip("198.18.1.3"))
    );
    assert_eq!(got[1].payload, b"after");
}
