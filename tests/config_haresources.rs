//! haresources: groups, VIPs, units and their errors.

mod config_util;

use std::net::IpAddr;

use config_util::errors;
use harust::config::haresources;
use harust::config::unit::systemd_escape;
use harust::config::{Diagnostic, Group, Resource, Severity, Vip, VipKind};

fn nodes() -> Vec<String> {
    vec!["node-a".into(), "node-b".into()]
}

fn parse_ok(text: &str) -> (Vec<Group>, Vec<Diagnostic>) {
    match haresources::parse("haresources", text, &nodes()) {
        Ok(x) => x,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn parse_errors(text: &str) -> Vec<String> {
    match haresources::parse("haresources", text, &nodes()) {
        Ok((g, _)) => panic!("expected errors, got {g:?}"),
        Err(e) => errors(&e),
    }
}

fn units(text: &str) -> Vec<String> {
    parse_ok(text).0[0]
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Unit(u) => Some(u.clone()),
            Resource::Vip(_) => None,
        })
        .collect()
}

#[test]
fn bare_name_gets_service_suffix() {
    assert_eq!(
        units("node-a apache2 apache2.socket data.mount nightly.timer web.target\n"),
        vec![
            "apache2.service",
            "apache2.socket",
            "data.mount",
            "nightly.timer",
            "web.target"
        ]
    );
}

#[test]
fn template_unit_is_escaped_like_systemd_escape() {
    // Expected names from `systemd-escape` (systemd 257).
    assert_eq!(
        units("node-a Filesystem::/dev/sda1::/data1::ext2 drbddisk::r0 my-app::a-b::.x::sp%c\n"),
        vec![
            "Filesystem@-dev-sda1:-data1:ext2.service",
            "drbddisk@r0.service",
            "my-app@a\\x2db:\\x2ex:sp\\x25c.service",
        ]
    );
    assert_eq!(systemd_escape("/var/lib/x y"), "-var-lib-x\\x20y");
    assert_eq!(
        units("node-a worker.service::1\n"),
        vec!["worker@1.service"]
    );
}

#[test]
fn heartbeat_scripts_get_a_notice() {
    let (_, d) = parse_ok("node-a Filesystem::/dev/sda1::/data1::ext2\n");
    assert_eq!(
        d[0].to_string(),
        "haresources:1: notice: \"Filesystem::/dev/sda1::/data1::ext2\": Filesystem is a heartbeat resource script; harust starts the systemd unit Filesystem@-dev-sda1:-data1:ext2.service instead, which you must provide"
    );
}

#[test]
fn ipaddr_with_label_and_broadcast() {
    let (g, d) = parse_ok("node-a IPaddr::198.18.0.10/24/eth0:0/198.18.0.255 apachectl\n");
    assert!(d.is_empty(), "{d:?}");
    assert_eq!(g[0].key, "IPaddr::198.18.0.10/24/eth0:0/198.18.0.255");
    assert_eq!(
        g[0].resources[0],
        Resource::Vip(Vip {
            kind: VipKind::IPaddr,
            addr: "198.18.0.10".parse().unwrap(),
            prefix: 24,
            iface: Some("eth0".into()),
            label: Some("eth0:0".into()),
            broadcast: Some("198.18.0.255".parse().unwrap()),
        })
    );
}

#[test]
fn ipv6addr_takes_the_rest_as_one_argument() {
    let (g, _) = parse_ok("node-b IPv6addr::2001:db8::100/64/eth1\n");
    let Resource::Vip(v) = &g[0].resources[0] else {
        panic!()
    };
    assert_eq!(v.kind, VipKind::IPv6addr);
    assert_eq!(v.addr, "2001:db8::100".parse::<IpAddr>().unwrap());
    assert_eq!((v.prefix, v.iface.as_deref()), (64, Some("eth1")));
    assert_eq!(g[0].node, "node-b");
}

#[test]
fn ipaddr2_accepts_ipv6() {
    let (g, _) = parse_ok("node-a IPaddr2::2001:db8::5/64/eth0\n");
    let Resource::Vip(v) = &g[0].resources[0] else {
        panic!()
    };
    assert_eq!(v.kind, VipKind::IPaddr2);
    assert!(v.addr.is_ipv6());
}

#[test]
fn missing_prefix_defaults_to_host_route_with_notice() {
    let (g, d) = parse_ok("node-a IPaddr::198.18.0.10 198.18.0.11\n");
    let prefixes: Vec<u8> = g[0]
        .resources
        .iter()
        .map(|r| match r {
            Resource::Vip(v) => v.prefix,
            Resource::Unit(_) => 0,
        })
        .collect();
    assert_eq!(prefixes, vec![32, 32]);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|x| x.severity == Severity::Notice));
    assert_eq!(
        d[0].to_string(),
        "haresources:1: notice: \"IPaddr::198.18.0.10\": no prefix length given; harust uses /32 (heartbeat guessed it from the routing table); write IPaddr::198.18.0.10/PREFIX to choose"
    );
}

#[test]
fn node_must_be_configured() {
    assert_eq!(
        parse_errors("node-c apache2\n"),
        vec![
            "haresources:1: \"node-c\" is not a configured node (ha.cf lists: node-a, node-b) (did you mean \"node-a\"?)"
        ]
    );
    // Case does not matter, as in heartbeat.
    assert_eq!(parse_ok("NODE-A apache2\n").0[0].node, "node-a");
}

#[test]
fn continuation_comments_and_blank_lines() {
    let (g, _) = parse_ok(
        "# groups\n\nnode-a IPaddr::198.18.0.10/24 \\\n    apache2 \\\n    mysql   # db\nnode-b \\\n  IPaddr::198.18.0.11/24\n",
    );
    assert_eq!(g.len(), 2);
    assert_eq!(g[0].line, 3);
    assert_eq!(g[0].resources.len(), 3);
    assert_eq!(g[1].line, 6);
    assert_eq!(g[1].key, "IPaddr::198.18.0.11/24");
}

#[test]
fn errors_point_at_the_physical_line() {
    assert_eq!(
        parse_errors("node-a IPaddr::198.18.0.10/24 \\\n  IPaddr::198.18.0.300/24\n"),
        vec!["haresources:2: \"IPaddr::198.18.0.300/24\": \"198.18.0.300\" is not an IP address"]
    );
}

#[test]
fn bad_vips_are_explained() {
    assert_eq!(
        parse_errors(
            "node-a IPaddr::198.18.0.10/33\n\
             node-a IPaddr::2001:db8::1/64\n\
             node-a IPaddr::198.18.0.12/24/eth0/eth1/x\n\
             node-a IPaddr::198.18.0.13/24/averylonginterface0\n\
             node-a IPaddr::224.0.0.1/24\n\
             node-a ipaddr::198.18.0.14\n\
             node-a IPaddr\n\
             node-a 2001:db8::9/64\n\
             node-a IPv6addr::198.18.0.15/24\n\
             node-a IPaddr::198.18.0.16/255.0.255.0\n\
             node-a IPv6addr::2001:db8::2/64/eth0:1\n"
        ),
        vec![
            "haresources:1: \"IPaddr::198.18.0.10/33\": \"33\" is not a prefix length (1 to 32, or a netmask such as 255.255.255.0)",
            "haresources:2: \"IPaddr::2001:db8::1/64\": IPaddr takes an IPv4 address; use IPv6addr:: for IPv6",
            "haresources:3: \"IPaddr::198.18.0.12/24/eth0/eth1/x\": expected IPaddr::ADDR/PREFIX/IFACE/BROADCAST; too many '/' parts",
            "haresources:4: \"IPaddr::198.18.0.13/24/averylonginterface0\": \"averylonginterface0\" is not an interface (eth0) or an interface with label (eth0:0), 15 characters at most",
            "haresources:5: \"IPaddr::224.0.0.1/24\": 224.0.0.1 cannot be a floating address",
            "haresources:6: \"ipaddr::198.18.0.14\": resource agent names are case-sensitive (did you mean \"IPaddr\"?)",
            "haresources:7: \"IPaddr\": IPaddr needs an address (IPaddr::ADDR/PREFIX)",
            "haresources:8: \"2001:db8::9/64\": an IPv6 address must be written IPv6addr::2001:db8::9/64",
            "haresources:9: \"IPv6addr::198.18.0.15/24\": IPv6addr takes an IPv6 address; use IPaddr:: for IPv4",
            "haresources:10: \"IPaddr::198.18.0.16/255.0.255.0\": \"255.0.255.0\" is not a prefix length (1 to 32, or a netmask such as 255.255.255.0)",
            "haresources:11: \"IPv6addr::2001:db8::2/64/eth0:1\": \"eth0:1\": IPv6 addresses take no label",
        ]
    );
}

#[test]
fn bad_units_are_explained() {
    assert_eq!(
        parse_errors("node-a /etc/init.d/apache2\nnode-a foo::\nnode-a a@b::c\nnode-a\n"),
        vec![
            "haresources:1: \"/etc/init.d/apache2\": a resource names a script or unit, not a path; use the unit's name (e.g. apache2 for /etc/init.d/apache2)",
            "haresources:2: \"foo::\": empty '::' argument",
            "haresources:3: \"a@b::c\": a unit that already names a template instance (with '@') cannot take '::' arguments",
            "haresources:4: the group for \"node-a\" lists no resources",
        ]
    );
}

#[test]
fn a_resource_belongs_to_one_group() {
    assert_eq!(
        parse_errors(
            "node-a IPaddr::198.18.0.10/24 apache2\nnode-b IPaddr2::198.18.0.10/24/eth1 apache2.service\n"
        ),
        vec![
            "haresources:2: address 198.18.0.10 is already used on line 1; a resource can be in one group only",
            "haresources:2: unit apache2.service is already used on line 1; a resource can be in one group only",
        ]
    );
}

#[test]
fn vip_on_network_address_warns() {
    let (_, d) = parse_ok("node-a IPaddr::198.18.0.0/24\n");
    assert_eq!(
        d[0].to_string(),
        "haresources:1: warning: \"IPaddr::198.18.0.0/24\": 198.18.0.0 is the network address of its /24 subnet"
    );
}

#[test]
fn empty_file_has_no_groups() {
    assert!(parse_ok("# nothing\n\n").0.is_empty());
}
