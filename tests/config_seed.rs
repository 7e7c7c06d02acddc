//! The tutorial's configuration (tests/data/seed), typo and all.

mod config_util;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use config_util::{errors, load, ok, seed_copy};
use harust::config::{AutoFailback, Medium, Resource, Vip, VipKind, summary};

#[test]
fn ebugfile_suggests_debugfile() {
    let dir = seed_copy();
    let err = load(dir.path(), "dal.api.loc").expect_err("the typo must fail the load");
    let ha_cf = dir.path().join("ha.cf");
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}:1: unknown directive \"ebugfile\" (did you mean \"debugfile\"?)",
            ha_cf.display()
        )],
        "all diagnostics:\n{err}"
    );
}

#[test]
fn seed_notices_say_what_harust_does_instead() {
    let dir = seed_copy();
    let err = load(dir.path(), "dal.api.loc").unwrap_err();
    let text = err.to_string();
    for needle in [
        "ha.cf:2: notice: logfile /var/log/ha-log: harust logs to the systemd journal",
        "ha.cf:8: notice: logfacility local0:",
        "ha.cf:13: notice: watchdog /dev/watchdog: harust does not open the device; it uses systemd's watchdog",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

fn fixed_seed() -> tempfile::TempDir {
    let dir = seed_copy();
    let path = dir.path().join("ha.cf");
    let text = std::fs::read_to_string(&path).unwrap();
    let fixed = text.replacen("ebugfile", "debugfile", 1);
    assert_ne!(text, fixed);
    std::fs::write(&path, fixed).unwrap();
    dir
}

#[test]
fn fixed_seed_loads() {
    let dir = fixed_seed();
    let loaded = ok(dir.path(), "dal.api.loc");
    let c = &loaded.config;
    assert!(loaded.notices.iter().all(|n| !n.is_error()));
    assert_eq!(c.local_node, "dal.api.loc");
    assert_eq!(c.ha.nodes, vec!["dal.api.loc", "ljdal.loc"]);
    assert_eq!(
        c.ha.media,
        vec![Medium::Ucast {
            iface: "eth0".into(),
            peer: IpAddr::V4(Ipv4Addr::new(192, 168, 9, 22)),
            port: 694,
        }]
    );
    assert_eq!(c.ha.udpport, 694);
    let t = c.ha.timings;
    assert_eq!(t.keepalive, Duration::from_secs(2));
    assert_eq!(t.deadtime, Duration::from_secs(30));
    assert_eq!(t.warntime, Duration::from_secs(10));
    assert_eq!(t.initdead, Duration::from_secs(120));
    assert_eq!(c.ha.auto_failback, AutoFailback::On);
    assert_eq!(c.keys.active, 2);
    assert_eq!(c.groups.len(), 1);
    let g = &c.groups[0];
    assert_eq!(g.node, "dal.api.loc");
    assert_eq!(g.key, "IPaddr::192.168.9.19/24/eth0:0");
    assert_eq!(g.line, 1);
    assert_eq!(
        g.resources,
        vec![
            Resource::Vip(Vip {
                kind: VipKind::IPaddr,
                addr: IpAddr::V4(Ipv4Addr::new(192, 168, 9, 19)),
                prefix: 24,
                iface: Some("eth0".into()),
                label: Some("eth0:0".into()),
                broadcast: None,
                auto_prefix: false,
            }),
            Resource::Unit("apachectl.service".into()),
        ]
    );
}

#[test]
fn fixed_seed_summary() {
    let dir = fixed_seed();
    let s = summary(&ok(dir.path(), "dal.api.loc").config);
    for needle in [
        "local node:    dal.api.loc",
        "nodes:         dal.api.loc, ljdal.loc",
        "  ucast eth0 192.168.9.22 (udp port 694)",
        "timings:       keepalive 2s, deadtime 30s, warntime 10s, initdead 120s",
        "auto_failback: on",
        "auth:          key 2 (sha1)",
        "groups:        1",
        "  IPaddr::192.168.9.19/24/eth0:0 (preferred node dal.api.loc)",
        "    vip  192.168.9.19/24 on eth0 label eth0:0 (IPaddr)",
        "    unit apachectl.service",
    ] {
        assert!(
            s.lines().any(|l| l == needle),
            "missing line {needle:?} in:\n{s}"
        );
    }
    assert!(!s.contains("HI!"), "the key must never be shown");
}

#[test]
fn seed_loads_on_the_other_node_too() {
    let dir = fixed_seed();
    assert_eq!(ok(dir.path(), "ljdal.loc").config.local_node, "ljdal.loc");
}

#[test]
fn seed_as_shipped_fails_on_authkeys_mode() {
    // The seed authkeys is world-readable: harust refuses it.
    let dir = fixed_seed();
    let ak = dir.path().join("authkeys");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = load(dir.path(), "dal.api.loc").unwrap_err();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{0}: mode 0444 is too open; it must be 0600 and owned by {1} (chmod 600 {0})",
            ak.display(),
            match config_util::my_uid(dir.path()) {
                0 => "root".to_string(),
                u => format!("uid {u}"),
            }
        )]
    );
}
