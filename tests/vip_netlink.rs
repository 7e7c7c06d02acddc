//! VIPs over rtnetlink in a namespace of the test's own: `node:eth0`
//! (198.18.1.1/24, 2001:db8:1::1/64) joined by veth to a peer namespace.
//! Checked from outside with `ip -j addr`.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use harust::config::{Vip, VipKind};
use harust::vip::{AddOutcome, AddrEvent, DelOutcome, VipError, Vips, watch};
use support::{Netns, veth};

const DEADLINE: Duration = Duration::from_secs(5);

fn node(tag: &str) -> (Netns, Netns) {
    let n = Netns::new(&format!("{tag}-n"));
    let peer = Netns::new(&format!("{tag}-p"));
    veth(&n, "eth0", &peer, "eth0");
    n.exec_ok(&["ip", "addr", "add", "198.18.1.1/24", "dev", "eth0"]);
    n.exec_ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    (n, peer)
}

fn vip(addr: &str, prefix: u8, iface: Option<&str>) -> Vip {
    let addr: IpAddr = addr.parse().unwrap();
    Vip {
        kind: if addr.is_ipv4() {
            VipKind::IPaddr2
        } else {
            VipKind::IPv6addr
        },
        addr,
        prefix,
        iface: iface.map(str::to_owned),
        label: None,
        broadcast: None,
        auto_prefix: false,
    }
}

fn addr_info(ns: &Netns, iface: &str, addr: &str) -> Option<serde_json::Value> {
    ns.addrs(iface)
        .into_iter()
        .find(|a| a["local"].as_str() == Some(addr))
}

#[test]
fn ipv4_vip_gets_label_and_computed_broadcast_and_is_idempotent() {
    require_privileged!("ipv4_vip_gets_label_and_computed_broadcast_and_is_idempotent");
    let (n, _peer) = node("v4");
    let mut v = vip("198.18.1.100", 24, Some("eth0"));
    v.label = Some("eth0:0".into());
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        assert_eq!(vips.add(&v).await.unwrap(), AddOutcome::Added);
        assert!(vips.present(&v).await.unwrap());
        assert_eq!(vips.add(&v).await.unwrap(), AddOutcome::AlreadyPresent);
    });
    let a = addr_info(&n, "eth0", "198.18.1.100").expect("VIP on eth0");
    assert_eq!(a["prefixlen"], 24);
    assert_eq!(a["label"], "eth0:0");
    assert_eq!(a["broadcast"], "198.18.1.255");
    assert_eq!(a["secondary"], true, "198.18.1.1 is the primary: {a}");
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        assert_eq!(vips.del(&v).await.unwrap(), DelOutcome::Deleted);
        assert!(!vips.present(&v).await.unwrap());
        assert_eq!(vips.del(&v).await.unwrap(), DelOutcome::Absent);
    });
    assert!(addr_info(&n, "eth0", "198.18.1.100").is_none());
    assert!(
        n.has_addr("eth0", "198.18.1.1"),
        "the node's own address stays"
    );
}

#[test]
fn ipv4_vip_takes_configured_broadcast_and_alias_iface_label() {
    require_privileged!("ipv4_vip_takes_configured_broadcast_and_alias_iface_label");
    let (n, _peer) = node("brd");
    let mut v = vip("198.18.1.101", 25, Some("eth0:ha"));
    v.broadcast = Some("198.18.1.120".parse().unwrap());
    n.run(|| async {
        assert_eq!(
            Vips::connect().unwrap().add(&v).await.unwrap(),
            AddOutcome::Added
        );
    });
    let a = addr_info(&n, "eth0", "198.18.1.101").expect("VIP on eth0");
    assert_eq!(a["prefixlen"], 25);
    assert_eq!(a["broadcast"], "198.18.1.120");
    assert_eq!(a["label"], "eth0:ha");
}

#[test]
fn ipv6_vip_is_added_without_dad_and_deleted_idempotently() {
    require_privileged!("ipv6_vip_is_added_without_dad_and_deleted_idempotently");
    let (n, _peer) = node("v6");
    // DAD is on for this interface, so only NODAD makes the VIP usable at once.
    n.sysctl("net/ipv6/conf/eth0/accept_dad", "1");
    let v = vip("2001:db8:1::100", 64, Some("eth0"));
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        assert_eq!(vips.add(&v).await.unwrap(), AddOutcome::Added);
        assert_eq!(vips.add(&v).await.unwrap(), AddOutcome::AlreadyPresent);
    });
    let a = addr_info(&n, "eth0", "2001:db8:1::100").expect("VIP on eth0");
    assert_eq!(a["prefixlen"], 64);
    assert_eq!(a["nodad"], true, "{a}");
    assert!(a.get("tentative").is_none(), "usable at once: {a}");
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        assert_eq!(vips.del(&v).await.unwrap(), DelOutcome::Deleted);
        assert_eq!(vips.del(&v).await.unwrap(), DelOutcome::Absent);
    });
    assert!(addr_info(&n, "eth0", "2001:db8:1::100").is_none());
}

#[test]
fn vip_without_interface_goes_where_its_subnet_is() {
    require_privileged!("vip_without_interface_goes_where_its_subnet_is");
    let (n, _peer) = node("findif");
    let v4 = vip("198.18.1.150", 24, None);
    let v6 = vip("2001:db8:1::150", 64, None);
    let (r4, r6) = n.run(|| async {
        let vips = Vips::connect().unwrap();
        let r4 = vips.resolve(&v4).await.unwrap();
        let r6 = vips.resolve(&v6).await.unwrap();
        assert_eq!(vips.add(&v4).await.unwrap(), AddOutcome::Added);
        assert_eq!(vips.add(&v6).await.unwrap(), AddOutcome::Added);
        (r4, r6)
    });
    assert_eq!(r4.name, "eth0");
    assert_eq!(r6.name, "eth0");
    assert!(n.has_addr("eth0", "198.18.1.150"));
    assert!(n.has_addr("eth0", "2001:db8:1::150"));
}

#[test]
fn vip_in_no_local_subnet_without_interface_is_an_error() {
    require_privileged!("vip_in_no_local_subnet_without_interface_is_an_error");
    let (n, _peer) = node("nosub");
    let err = n.run(|| async {
        Vips::connect()
            .unwrap()
            .add(&vip("198.18.9.1", 24, None))
            .await
            .unwrap_err()
    });
    assert!(
        matches!(err, VipError::NoInterfaceForSubnet { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("198.18.9.1/24"), "{err}");
}

#[test]
fn missing_interface_is_a_clear_error_for_add_and_absent_for_del() {
    require_privileged!("missing_interface_is_a_clear_error_for_add_and_absent_for_del");
    let (n, _peer) = node("noif");
    let v = vip("198.18.1.100", 24, Some("eth9"));
    let (err, del, present) = n.run(|| async {
        let vips = Vips::connect().unwrap();
        (
            vips.add(&v).await.unwrap_err(),
            vips.del(&v).await.unwrap(),
            vips.present(&v).await.unwrap(),
        )
    });
    assert_eq!(
        err.to_string(),
        "VIP 198.18.1.100: interface eth9 does not exist"
    );
    assert_eq!(del, DelOutcome::Absent);
    assert!(!present);
}

#[test]
fn list_present_reports_each_vip_in_order() {
    require_privileged!("list_present_reports_each_vip_in_order");
    let (n, _peer) = node("list");
    n.exec_ok(&["ip", "addr", "add", "198.18.1.50/24", "dev", "eth0"]);
    let vips = [
        vip("198.18.1.50", 24, Some("eth0")),
        vip("198.18.1.51", 24, Some("eth0")),
        vip("198.18.1.1", 24, None),
        vip("198.18.1.50", 24, Some("eth7")),
    ];
    let got = n.run(|| async { Vips::connect().unwrap().list_present(&vips).await.unwrap() });
    assert_eq!(got, [true, false, true, false]);
}

#[test]
fn watch_reports_vip_deleted_behind_our_back_and_link_removal() {
    require_privileged!("watch_reports_vip_deleted_behind_our_back_and_link_removal");
    let (n, peer) = node("watch");
    veth(&n, "eth1", &peer, "eth1");
    let eth0 = n.json(&["ip", "-j", "link", "show", "dev", "eth0"])[0]["ifindex"]
        .as_u64()
        .unwrap() as u32;
    let eth1 = n.json(&["ip", "-j", "link", "show", "dev", "eth1"])[0]["ifindex"]
        .as_u64()
        .unwrap() as u32;
    n.run(|| async {
        let mut events = watch().await.unwrap();
        let vips = Vips::connect().unwrap();
        let v = vip("198.18.1.100", 24, Some("eth0"));
        vips.add(&v).await.unwrap();
        let mut next = async |what: &str, want: &dyn Fn(&AddrEvent) -> bool| loop {
            match tokio::time::timeout(DEADLINE, events.next()).await {
                Ok(Some(ev)) if want(&ev) => return ev,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("watch stream ended waiting for {what}"),
                Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
            }
        };
        let vip_addr: IpAddr = "198.18.1.100".parse().unwrap();
        let added = next(
            "Added 198.18.1.100",
            &|e| matches!(e, AddrEvent::Added { addr, .. } if *addr == vip_addr),
        )
        .await;
        assert_eq!(
            added,
            AddrEvent::Added {
                addr: vip_addr,
                prefix: 24,
                ifindex: eth0
            }
        );

        n.exec_ok(&["ip", "addr", "del", "198.18.1.100/24", "dev", "eth0"]);
        let removed = next(
            "Removed 198.18.1.100",
            &|e| matches!(e, AddrEvent::Removed { addr, .. } if *addr == vip_addr),
        )
        .await;
        assert_eq!(
            removed,
            AddrEvent::Removed {
                addr: vip_addr,
                prefix: 24,
                ifindex: eth0
            }
        );

        n.exec_ok(&["ip", "link", "del", "eth1"]);
        let gone = next("LinkRemoved eth1", &|e| {
            matches!(e, AddrEvent::LinkRemoved { .. })
        })
        .await;
        assert_eq!(
            gone,
            AddrEvent::LinkRemoved {
                ifindex: eth1,
                name: Some("eth1".into())
            }
        );
    });
}

/// With `promote_secondaries` off, the kernel deletes every secondary of a
/// subnet along with its primary. A VIP that happens to be that primary
/// must not take the other groups' VIPs down with it.
#[test]
fn deleting_primary_vip_keeps_secondaries_and_restores_sysctl() {
    require_privileged!("deleting_primary_vip_keeps_secondaries_and_restores_sysctl");
    let (n, _peer) = node("promote");
    n.sysctl("net/ipv4/conf/all/promote_secondaries", "0");
    n.sysctl("net/ipv4/conf/eth0/promote_secondaries", "0");

    // First, the kernel behaviour this guards against.
    n.exec_ok(&["ip", "addr", "add", "198.18.6.10/24", "dev", "eth0"]);
    n.exec_ok(&["ip", "addr", "add", "198.18.6.11/24", "dev", "eth0"]);
    n.exec_ok(&["ip", "addr", "del", "198.18.6.10/24", "dev", "eth0"]);
    assert!(
        !n.has_addr("eth0", "198.18.6.11"),
        "kernel should flush secondaries with their primary when promote_secondaries=0"
    );

    let first = vip("198.18.5.10", 24, Some("eth0"));
    let mut second = vip("198.18.5.11", 24, Some("eth0"));
    second.label = Some("eth0:1".into());
    n.run(|| async {
        let vips = Vips::connect().unwrap();
        vips.add(&first).await.unwrap();
        vips.add(&second).await.unwrap();
    });
    let s = addr_info(&n, "eth0", "198.18.5.11").unwrap();
    assert_eq!(s["secondary"], true, "{s}");
    n.run(|| async {
        assert_eq!(
            Vips::connect().unwrap().del(&first).await.unwrap(),
            DelOutcome::Deleted
        );
    });
    assert!(!n.has_addr("eth0", "198.18.5.10"));
    let s = addr_info(&n, "eth0", "198.18.5.11").expect("secondary VIP survived");
    assert_eq!(s["label"], "eth0:1", "kept its label: {s}");
    assert_eq!(n.read_sysctl("net/ipv4/conf/eth0/promote_secondaries"), "0");
}

#[test]
fn concurrent_actions_on_one_connection_all_succeed() {
    require_privileged!("concurrent_actions_on_one_connection_all_succeed");
    let (n, _peer) = node("conc");
    // The runtime runs each group's actions in its own task on one
    // connection; the kernel refuses a second dump on a socket while one
    // runs (EBUSY), so the adapter must serialise them.
    let vips: Vec<Vip> = (60..68)
        .map(|i| vip(&format!("198.18.1.{i}"), 24, Some("eth0")))
        .collect();
    let (added, removed) = n.run(|| async {
        let v = std::sync::Arc::new(Vips::connect().unwrap());
        let adds = vips.iter().cloned().map(|x| {
            let v = v.clone();
            tokio::spawn(async move { v.add(&x).await.map(|_| ()) })
        });
        let added: Vec<_> = futures::future::join_all(adds).await;
        let dels = vips.iter().cloned().map(|x| {
            let v = v.clone();
            tokio::spawn(async move { v.del(&x).await.map(|_| ()) })
        });
        let removed: Vec<_> = futures::future::join_all(dels).await;
        (added, removed)
    });
    for r in added.into_iter().chain(removed) {
        r.expect("task")
            .expect("every concurrent add and delete succeeds");
    }
    for v in &vips {
        assert!(
            !n.has_addr("eth0", &v.addr.to_string()),
            "{} removed",
            v.addr
        );
    }
}
