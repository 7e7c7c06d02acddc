//! haresources: groups, VIPs, units and their errors.

mod config_util;

use std::net::IpAddr;

use config_util::errors;
use harust::config::haresources;
use harust::config::unit::instance_unescape;
use harust::config::unit::systemd_escape;
use harust::config::{Diagnostic, Group, Mount, Resource, Severity, Vip, VipKind};

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
            _ => None,
        })
        .collect()
}

fn notices(d: &[Diagnostic]) -> Vec<String> {
    d.iter().map(|d| d.to_string()).collect()
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
        units("node-a my-app::a-b::.x::sp%c\n"),
        vec!["my-app@a\\x2db:\\x2ex:sp\\x25c.service",]
    );
    assert_eq!(systemd_escape("/var/lib/x y"), "-var-lib-x\\x20y");
    assert_eq!(
        units("node-a worker.service::1\n"),
        vec!["worker@1.service"]
    );
}

#[test]
fn heartbeat_scripts_without_a_script_here_get_a_warning() {
    let (g, d) = parse_ok("node-a portblock::tcp::80::block\n");
    assert_eq!(
        g[0].resources,
        vec![Resource::Unit("portblock@tcp:80:block.service".into())]
    );
    assert_eq!(
        notices(&d),
        vec![
            "haresources:1: warning: \"portblock::tcp::80::block\": portblock is a heartbeat \
             resource script, and no resource.d/portblock exists here; harust starts the systemd \
             unit portblock@tcp:80:block.service instead, which you must provide"
        ]
    );
}

#[test]
fn filesystem_is_mounted_through_a_transient_mount_unit() {
    let (g, d) = parse_ok(
        "node-a Filesystem::/dev/drbd0::/data::ext4 Filesystem::nas:/export::/srv/my-nfs::nfs::ro,soft \
         Filesystem::LABEL=x::/x\n",
    );
    let mounts: Vec<(Mount, String)> = g[0]
        .resources
        .iter()
        .map(|r| match r {
            Resource::Mount(m) => (m.clone(), m.unit()),
            other => panic!("{other:?}"),
        })
        .collect();
    let m = |w: &str, p: &str, t: Option<&str>, o: Option<&str>| Mount {
        what: w.into(),
        path: p.into(),
        fstype: t.map(Into::into),
        options: o.map(Into::into),
    };
    assert_eq!(
        mounts,
        vec![
            (
                m("/dev/drbd0", "/data", Some("ext4"), None),
                "data.mount".into()
            ),
            (
                m("nas:/export", "/srv/my-nfs", Some("nfs"), Some("ro,soft")),
                "srv-my\\x2dnfs.mount".into()
            ),
            (m("LABEL=x", "/x", None, None), "x.mount".into()),
        ]
    );
    assert_eq!(
        notices(&d)[0],
        "haresources:1: notice: \"Filesystem::/dev/drbd0::/data::ext4\": mounted by harust \
         through the transient unit data.mount (What=/dev/drbd0 Where=/data Type=ext4); unmounted \
         on release"
    );
    assert_eq!(
        parse_errors("node-a Filesystem::/dev/sda1::data\nnode-b Filesystem::/dev/sda1\n"),
        vec![
            "haresources:1: \"Filesystem::/dev/sda1::data\": the mount point \"data\" must be an absolute path",
            "haresources:2: \"Filesystem::/dev/sda1\": expected Filesystem::DEVICE::DIRECTORY[::TYPE[::OPTIONS]]",
        ]
    );
}

#[test]
fn drbddisk_maps_to_drbd_utils_promote_unit() {
    assert_eq!(
        units("node-a drbddisk::r0 drbddisk\n"),
        vec!["drbd-promote@r0.service", "drbd-promote@all.service"]
    );
}

#[test]
fn sendarp_is_harusts_own_announcement() {
    let (g, d) = parse_ok("node-a SendArp::198.18.0.10/eth0\n");
    assert_eq!(
        g[0].resources,
        vec![Resource::Announce {
            addr: "198.18.0.10".parse().unwrap(),
            iface: "eth0".into()
        }]
    );
    assert_eq!(
        notices(&d),
        vec![
            "haresources:1: notice: \"SendArp::198.18.0.10/eth0\": done by harust's own \
             gratuitous ARP announcement of 198.18.0.10 on eth0"
        ]
    );
    assert_eq!(
        parse_errors("node-a SendArp::198.18.0.10\n"),
        vec!["haresources:1: \"SendArp::198.18.0.10\": expected SendArp::ADDRESS/INTERFACE"]
    );
}

#[test]
fn ipsrcaddr_becomes_the_default_routes_source() {
    let (g, _) = parse_ok("node-a IPaddr::198.18.0.10/24 IPsrcaddr::198.18.0.10/24\n");
    assert_eq!(
        g[0].resources[1],
        Resource::SrcAddr("198.18.0.10".parse().unwrap())
    );
}

#[test]
fn mailto_runs_the_shipped_template_with_reversible_escaping() {
    let u = units("node-a MailTo::ops@example.org::web:down\n");
    assert_eq!(
        u,
        vec!["harust-mailto@ops\\x40example.org:web\\x3adown.service"]
    );
    let inst = u[0]
        .strip_prefix("harust-mailto@")
        .and_then(|x| x.strip_suffix(".service"))
        .unwrap();
    assert_eq!(
        instance_unescape(inst).unwrap(),
        vec!["ops@example.org", "web:down"]
    );
}

#[test]
fn apache_maps_to_debians_apache2_with_a_notice() {
    let (g, d) = parse_ok("node-a apache::/etc/apache/httpd.conf\n");
    assert_eq!(
        g[0].resources,
        vec![Resource::Unit("apache2.service".into())]
    );
    assert_eq!(
        notices(&d),
        vec![
            "haresources:1: notice: \"apache::/etc/apache/httpd.conf\": runs as Debian's \
             apache2.service; the configuration file \"/etc/apache/httpd.conf\" is not passed on \
             (apache2.service reads /etc/apache2)"
        ]
    );
}

#[test]
fn resource_d_scripts_run_through_the_template_unit() {
    let dir = tempfile::tempdir().unwrap();
    let rd = dir.path().join("resource.d");
    std::fs::create_dir(&rd).unwrap();
    std::fs::write(rd.join("killnfsd"), "#!/bin/sh\n").unwrap();
    let (g, d) = haresources::parse_with(
        "haresources",
        "node-a killnfsd::a:b::-x/y\nnode-b other\n",
        &nodes(),
        &haresources::script_dirs(dir.path()),
    )
    .unwrap();
    let Resource::Unit(u) = &g[0].resources[0] else {
        panic!("{g:?}")
    };
    let inst = u
        .strip_prefix("harust-resource@")
        .and_then(|x| x.strip_suffix(".service"))
        .unwrap();
    let script = rd.join("killnfsd").display().to_string();
    assert_eq!(
        instance_unescape(inst).unwrap(),
        vec![script.as_str(), "a:b", "-x/y"]
    );
    assert_eq!(
        notices(&d),
        vec![format!(
            "haresources:1: notice: \"killnfsd::a:b::-x/y\": runs the heartbeat resource script \
             {script} (start, stop, status) through {u}"
        )]
    );
    // No such script: a unit, as before.
    assert_eq!(g[1].resources, vec![Resource::Unit("other.service".into())]);
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
            auto_prefix: false,
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
fn missing_prefix_takes_the_connected_routes_at_acquire_with_notice() {
    let (g, d) = parse_ok("node-a IPaddr::198.18.0.10 198.18.0.11 IPaddr::198.18.0.12/24\n");
    let auto: Vec<bool> = g[0]
        .resources
        .iter()
        .map(|r| match r {
            Resource::Vip(v) => v.auto_prefix,
            _ => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(auto, vec![true, true, false]);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|x| x.severity == Severity::Notice));
    assert_eq!(
        d[0].to_string(),
        "haresources:1: notice: \"IPaddr::198.18.0.10\": no prefix length given: as heartbeat's \
         IPaddr does, the address takes the prefix of the connected route that holds it, looked up \
         when it is acquired; write IPaddr::198.18.0.10/PREFIX to fix it"
    );
}

#[test]
fn empty_field_in_ipaddr_is_skipped_as_heartbeat_does() {
    let (g, d) = parse_ok("node-a IPaddr::10.0.30.15//8/eth0:10\n");
    let Resource::Vip(v) = &g[0].resources[0] else {
        panic!()
    };
    assert_eq!(
        (
            v.prefix,
            v.iface.as_deref(),
            v.label.as_deref(),
            v.auto_prefix
        ),
        (8, Some("eth0"), Some("eth0:10"), false)
    );
    assert_eq!(
        notices(&d),
        vec![
            "haresources:1: notice: \"IPaddr::10.0.30.15//8/eth0:10\": empty '/' field ignored, \
             as heartbeat's IPaddr does: read as IPaddr::10.0.30.15/8/eth0:10"
        ]
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

#[test]
fn too_long_agent_arguments_are_errors_not_units() {
    let long = "x".repeat(300);
    let e = parse_errors(&format!(
        "node-a MailTo::{long}\nnode-b Filesystem::/dev/sda::/{long}\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("haresources:1: \"MailTo::xxx"), "{e:?}");
    assert!(
        e[0].ends_with(
            "the unit name harust-mailto@….service would be 322 characters long; systemd allows \
             at most 255"
        ),
        "{e:?}"
    );
    assert!(
        e[1].ends_with(
            "the mount unit's name would be 306 characters long; systemd allows at most 255"
        ),
        "{e:?}"
    );
}
