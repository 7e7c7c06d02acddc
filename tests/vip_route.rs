//! heartbeat behaviours that read or write routes, over rtnetlink in a
//! namespace of the test's own: an address written without a prefix takes
//! the prefix of its connected route (heartbeat's findif), and IPsrcaddr
//! sets the default route's preferred source and puts the old one back.

mod support;

use std::net::IpAddr;

use harust::config::{Vip, VipKind};
use harust::vip::{VipError, Vips};
use support::{Netns, veth};

fn node(tag: &str) -> (Netns, Netns) {
    let n = Netns::new(&format!("{tag}-n"));
    let peer = Netns::new(&format!("{tag}-p"));
    veth(&n, "eth0", &peer, "eth0");
    n.exec_ok(&["ip", "addr", "add", "198.18.1.1/24", "dev", "eth0"]);
    n.exec_ok(&["ip", "addr", "add", "198.18.3.1/22", "dev", "eth0"]);
    (n, peer)
}

fn auto_vip(addr: &str) -> Vip {
    Vip {
        kind: VipKind::IPaddr,
        addr: addr.parse().unwrap(),
        prefix: 32,
        iface: None,
        label: None,
        broadcast: None,
        auto_prefix: true,
    }
}

fn default_route(n: &Netns) -> String {
    String::from_utf8_lossy(&n.exec_ok(&["ip", "-4", "route", "show", "default"]).stdout)
        .into_owned()
}

#[test]
fn address_without_prefix_takes_its_connected_routes_prefix() {
    require_privileged!("address_without_prefix_takes_its_connected_routes_prefix");
    let (n, _peer) = node("rpfx");
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        // 198.18.1.0/24 and 198.18.0.0/22 both hold it: the longest wins.
        let v = vips
            .with_route_prefix(&auto_vip("198.18.1.100"))
            .await
            .unwrap();
        assert_eq!(v.prefix, 24);
        let v = vips
            .with_route_prefix(&auto_vip("198.18.2.100"))
            .await
            .unwrap();
        assert_eq!(v.prefix, 22);
        // No connected route: the host prefix stays.
        let v = vips
            .with_route_prefix(&auto_vip("198.19.9.9"))
            .await
            .unwrap();
        assert_eq!(v.prefix, 32);
        // A written prefix is never changed.
        let mut written = auto_vip("198.18.1.101");
        written.auto_prefix = false;
        written.prefix = 28;
        assert_eq!(vips.with_route_prefix(&written).await.unwrap().prefix, 28);
        let v = vips
            .with_route_prefix(&auto_vip("198.18.1.100"))
            .await
            .unwrap();
        vips.add(&v).await.unwrap();
    });
    let a = n
        .addrs("eth0")
        .into_iter()
        .find(|a| a["local"].as_str() == Some("198.18.1.100"))
        .expect("the address was added");
    assert_eq!(a["prefixlen"], 24, "{a}");
}

#[test]
fn ipsrcaddr_sets_the_default_routes_source_and_restores_it() {
    require_privileged!("ipsrcaddr_sets_the_default_routes_source_and_restores_it");
    let (n, _peer) = node("rsrc");
    n.exec_ok(&["ip", "addr", "add", "198.18.1.50/24", "dev", "eth0"]);
    n.exec_ok(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "198.18.1.254",
        "src",
        "198.18.1.1",
    ]);
    let vip: IpAddr = "198.18.1.50".parse().unwrap();
    let before = n.run(|| async {
        let vips = Vips::connect().unwrap();
        assert!(!vips.is_default_source(vip).await.unwrap());
        let before = vips.set_default_source(vip).await.unwrap();
        assert!(vips.is_default_source(vip).await.unwrap());
        before
    });
    assert_eq!(before, Some("198.18.1.1".parse().unwrap()));
    let r = default_route(&n);
    assert!(r.contains("src 198.18.1.50"), "{r}");
    assert!(r.contains("via 198.18.1.254"), "the gateway stays: {r}");
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        vips.restore_default_source(vip, before).await.unwrap();
    });
    let r = default_route(&n);
    assert!(r.contains("src 198.18.1.1"), "{r}");
    // An address the node does not have cannot be the source.
    let err = n.run(|| async {
        let vips = Vips::connect().unwrap();
        vips.set_default_source("198.18.1.77".parse().unwrap())
            .await
            .unwrap_err()
    });
    assert!(matches!(err, VipError::SourceNotLocal { .. }), "{err}");
    // Without a previous source, release removes ours.
    n.exec_ok(&["ip", "route", "replace", "default", "via", "198.18.1.254"]);
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        let before = vips.set_default_source(vip).await.unwrap();
        assert_eq!(before, None);
        vips.restore_default_source(vip, before).await.unwrap();
    });
    let r = default_route(&n);
    assert!(!r.contains("src"), "{r}");
}
