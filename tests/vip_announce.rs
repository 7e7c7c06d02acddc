//! Announcements seen by a client: on a bridged LAN (support::Topology),
//! client C has a neighbour entry for the VIP pointing at a stale MAC. Node A
//! adds the VIP and announces it; C's entry must move to A's MAC at once,
//! without waiting for it to expire.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use harust::config::{Vip, VipKind};
use harust::vip::{AddOutcome, AnnounceConfig, Announcer, Vips};
use support::Topology;

const OLD_MAC: &str = "02:00:00:00:00:99";

fn vip(addr: &str, prefix: u8) -> Vip {
    let addr: IpAddr = addr.parse().unwrap();
    Vip {
        kind: if addr.is_ipv4() {
            VipKind::IPaddr2
        } else {
            VipKind::IPv6addr
        },
        addr,
        prefix,
        iface: Some("eth0".into()),
        label: None,
        broadcast: None,
        auto_prefix: false,
    }
}

fn client_entry_moves_to_a_on_announce(t: &Topology, v: Vip) {
    let addr = v.addr.to_string();
    t.c.exec_ok(&[
        "ip", "neigh", "replace", &addr, "lladdr", OLD_MAC, "dev", "eth0", "nud", "stale",
    ]);
    assert_eq!(t.c.neigh_mac("eth0", &addr).as_deref(), Some(OLD_MAC));
    let a_mac = t.a.mac("eth0");

    t.a.run(|| async {
        let vips = Vips::connect().unwrap();
        assert_eq!(vips.add(&v).await.unwrap(), AddOutcome::Added);
    });
    // Adding the address alone announces nothing.
    assert_eq!(t.c.neigh_mac("eth0", &addr).as_deref(), Some(OLD_MAC));

    let cfg = AnnounceConfig {
        count: 3,
        interval: Duration::from_millis(20),
    };
    let moved = || t.c.neigh_mac("eth0", &addr).as_deref() == Some(a_mac.as_str());
    t.a.run(|| async {
        let vips = Vips::connect().unwrap();
        let target = vips
            .targets(std::slice::from_ref(&v))
            .await
            .remove(0)
            .unwrap();
        let announcer = Announcer::spawn(cfg);
        announcer.start((0, 0), target);
        // Polled here, so the announcing task runs on this runtime meanwhile.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !moved() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for C's neighbour entry for {addr} to move to A's MAC {a_mac}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

#[test]
fn gratuitous_arp_moves_clients_neighbour_entry_to_new_holder() {
    require_privileged!("gratuitous_arp_moves_clients_neighbour_entry_to_new_holder");
    let t = Topology::new("garp");
    client_entry_moves_to_a_on_announce(&t, vip("198.18.1.100", 24));
}

#[test]
fn unsolicited_na_moves_clients_neighbour_entry_to_new_holder() {
    require_privileged!("unsolicited_na_moves_clients_neighbour_entry_to_new_holder");
    let t = Topology::new("na");
    client_entry_moves_to_a_on_announce(&t, vip("2001:db8:1::100", 64));
}

#[test]
fn default_announce_is_five_rounds_200ms_apart() {
    assert_eq!(
        AnnounceConfig::default(),
        AnnounceConfig {
            count: 5,
            interval: Duration::from_millis(200)
        }
    );
}
