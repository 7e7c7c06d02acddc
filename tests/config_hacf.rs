//! ha.cf: directives, defaults, validation and exact messages.

mod config_util;

use std::net::IpAddr;
use std::time::Duration;

use config_util::{AUTHKEYS, HARESOURCES, errors, load, write_dir};
use harust::config::hacf::{self, DIRECTIVES};
use harust::config::{AutoFailback, Diagnostic, HaCf, Medium, Severity};

const MEDIA_AND_NODES: &str = "bcast eth0\nnode node-a node-b\nauto_failback on\ninitdead 60\n";

fn parse_ok(text: &str) -> (HaCf, Vec<Diagnostic>) {
    match hacf::parse("ha.cf", text) {
        Ok(x) => x,
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn parse_errors(text: &str) -> Vec<String> {
    match hacf::parse("ha.cf", text) {
        Ok((h, _)) => panic!("expected errors, got {h:?}"),
        Err(e) => errors(&e),
    }
}

fn notices(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Notice)
        .map(|d| d.to_string())
        .collect()
}

fn warnings(d: &[Diagnostic]) -> Vec<String> {
    d.iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.to_string())
        .collect()
}

#[test]
fn unknown_directive_suggests_the_closest_known_one() {
    assert_eq!(
        parse_errors(&format!("{MEDIA_AND_NODES}keepalvie 2\n")),
        vec!["ha.cf:5: unknown directive \"keepalvie\" (did you mean \"keepalive\"?)"]
    );
    assert_eq!(
        parse_errors(&format!("{MEDIA_AND_NODES}frobnicate yes\n")),
        vec!["ha.cf:5: unknown directive \"frobnicate\""]
    );
    // Directive names are case-sensitive, as in heartbeat.
    assert_eq!(
        parse_errors(&format!("{MEDIA_AND_NODES}Keepalive 2\n")),
        vec!["ha.cf:5: unknown directive \"Keepalive\" (did you mean \"keepalive\"?)"]
    );
}

#[test]
fn unknown_directive_message_uses_the_path_as_given() {
    let dir = write_dir(
        "ebugfile /var/log/ha-debug\nbcast eth0\nnode node-a\nnode node-b\n",
        AUTHKEYS,
        HARESOURCES,
    );
    let err = load(dir.path(), "node-a").unwrap_err();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}/ha.cf:1: unknown directive \"ebugfile\" (did you mean \"debugfile\"?)",
            dir.path().display()
        )]
    );
}

#[test]
fn bad_time_says_what_was_expected() {
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nkeepalive 2x\n"),
        vec!["ha.cf:3: keepalive: \"2x\" is not a time (use 2, 2s, 500ms or 100000us)"]
    );
    assert_eq!(
        parse_errors("bcast eth0\nnode a\ndeadtime\n"),
        vec!["ha.cf:3: deadtime: missing value (expected a time)"]
    );
    assert_eq!(
        parse_errors("bcast eth0\nnode a\ndeadtime 30 40\n"),
        vec!["ha.cf:3: deadtime: takes one value (a time), but 1 more follow: \"40\""]
    );
}

#[test]
fn time_values_take_heartbeats_units_and_fractions() {
    for (written, ms) in [
        ("1", 1000),
        ("0.5", 500),
        ("500ms", 500),
        ("2s", 2000),
        ("500000us", 500),
        ("1.5", 1500),
    ] {
        let (h, _) = parse_ok(&format!("{MEDIA_AND_NODES}keepalive {written}\n"));
        assert_eq!(h.timings.keepalive, Duration::from_millis(ms), "{written}");
    }
}

#[test]
fn defaults_follow_heartbeat() {
    let (h, d) = parse_ok("bcast eth0\nnode a\n");
    assert_eq!(h.timings.keepalive, Duration::from_millis(1000));
    assert_eq!(h.timings.deadtime, Duration::from_secs(30));
    assert_eq!(h.timings.warntime, Duration::from_secs(15));
    assert_eq!(h.timings.initdead, Duration::from_secs(30));
    assert_eq!(h.udpport, 694);
    assert_eq!(h.auto_failback, AutoFailback::Legacy);
    assert_eq!(h.deadping, None);
    assert_eq!(h.effective_deadping(), Duration::from_secs(30));
    assert!(!h.autojoin);
    assert!(
        notices(&d)
            .iter()
            .any(|n| n == "ha.cf: notice: auto_failback is not set; using heartbeat's default, legacy (set it to on or off)")
    );
}

#[test]
fn warntime_defaults_to_half_deadtime() {
    let (h, _) = parse_ok(&format!("{MEDIA_AND_NODES}deadtime 20\ninitdead 40\n"));
    assert_eq!(h.timings.warntime, Duration::from_secs(10));
}

#[test]
fn initdead_defaults_by_deadtime() {
    let initdead = |dt: &str| {
        let (h, _) = parse_ok(&format!("bcast eth0\nnode a\ndeadtime {dt}\n"));
        h.timings.initdead
    };
    assert_eq!(initdead("30"), Duration::from_secs(30)); // > 10 s: deadtime
    assert_eq!(initdead("3"), Duration::from_secs(12)); // < 6 s: 12 s
    assert_eq!(initdead("8"), Duration::from_secs(16)); // else 2 × deadtime
}

#[test]
fn deadtime_must_exceed_twice_keepalive() {
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nkeepalive 2\ndeadtime 4\n"),
        vec![
            "ha.cf:4: deadtime 4s must be more than twice keepalive 2s (heartbeat's rule); raise deadtime or lower keepalive"
        ]
    );
    // Only keepalive written: the error points at it.
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nkeepalive 20\n"),
        vec![
            "ha.cf:3: deadtime 30s must be more than twice keepalive 20s (heartbeat's rule); raise deadtime or lower keepalive"
        ]
    );
}

#[test]
fn keepalive_zero_is_refused() {
    let e = parse_errors("bcast eth0\nnode a\nkeepalive 0\n");
    assert!(
        e.contains(&"ha.cf:3: keepalive: must be more than 0".to_string()),
        "{e:?}"
    );
}

#[test]
fn initdead_below_deadtime_is_an_error() {
    assert_eq!(
        parse_errors("bcast eth0\nnode a\ndeadtime 30\ninitdead 20\n"),
        vec!["ha.cf:4: initdead 20s must be at least deadtime 30s"]
    );
}

#[test]
fn warntime_not_below_deadtime_is_accepted_with_a_warning_as_heartbeat_runs_it() {
    let (h, d) = parse_ok("bcast eth0\nnode a\ndeadtime 10\nwarntime 20\ninitdead 20\n");
    assert_eq!(h.timings.warntime, Duration::from_secs(20));
    assert_eq!(
        warnings(&d),
        vec![
            "ha.cf:4: warning: warntime 20s is not less than deadtime 10s: a peer is declared dead \
             before any late heartbeat is reported (heartbeat accepts this too); set warntime \
             below deadtime"
        ]
    );
    assert_eq!(
        parse_errors("bcast eth0\nnode a\ndeadtime 10\nwarntime 0\ninitdead 20\n"),
        vec!["ha.cf:4: warntime: must be more than 0"]
    );
}

#[test]
fn initdead_below_twice_deadtime_warns() {
    let (_, d) = parse_ok("bcast eth0\nnode a\ndeadtime 30\ninitdead 40\n");
    assert_eq!(
        warnings(&d),
        vec![
            "ha.cf:4: warning: initdead 40s is less than twice deadtime (60s); a node starting while its network is still coming up may wrongly declare its peer dead"
        ]
    );
    let (_, d) = parse_ok("bcast eth0\nnode a\ndeadtime 30\ninitdead 60\n");
    assert!(warnings(&d).is_empty(), "{d:?}");
}

#[test]
fn deadping_must_exceed_twice_keepalive() {
    assert_eq!(
        parse_errors(&format!("{MEDIA_AND_NODES}ping 198.18.0.254\ndeadping 2\n")),
        vec!["ha.cf:6: deadping 2s must be more than twice keepalive 1s"]
    );
}

#[test]
fn at_least_one_medium_is_required() {
    assert_eq!(
        parse_errors("node a\n"),
        vec!["ha.cf: no heartbeat medium: add a bcast, mcast, mcast6, ucast or ucast6 line"]
    );
    // A serial line is accepted but is not a medium harust can use.
    let e = parse_errors("node a\nserial /dev/ttyS0\n");
    assert!(e[0].contains("no heartbeat medium"), "{e:?}");
}

#[test]
fn node_lines_are_required() {
    assert_eq!(
        parse_errors("bcast eth0\n"),
        vec!["ha.cf: no node lines: list every cluster node by its uname -n (node NAME)"]
    );
}

#[test]
fn node_names_are_lowercased() {
    let (h, _) = parse_ok("bcast eth0\nnode Node-A NODE-B\nnode node-c\n");
    assert_eq!(h.nodes, vec!["node-a", "node-b", "node-c"]);
}

#[test]
fn local_node_must_be_listed() {
    let dir = write_dir(config_util::HA_CF, AUTHKEYS, HARESOURCES);
    let err = load(dir.path(), "node-c").unwrap_err();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}/ha.cf:6: this node \"node-c\" is not in any node line (configured nodes: node-a, node-b) (did you mean \"node-a\"?); add \"node node-c\" or name this node with --node",
            dir.path().display()
        )]
    );
    // Compared lowercased, like heartbeat's uname -n handling.
    assert!(load(dir.path(), "NODE-A").is_ok());
}

#[test]
fn auto_failback_values() {
    for (v, want) in [
        ("on", AutoFailback::On),
        ("yes", AutoFailback::On),
        ("off", AutoFailback::Off),
        ("false", AutoFailback::Off),
        ("legacy", AutoFailback::Legacy),
        ("LEGACY", AutoFailback::Legacy),
    ] {
        let (h, _) = parse_ok(&format!("bcast eth0\nnode a\nauto_failback {v}\n"));
        assert_eq!(h.auto_failback, want, "{v}");
    }
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nauto_failback sometimes\n"),
        vec!["ha.cf:3: auto_failback: \"sometimes\" is not on, off or legacy"]
    );
}

#[test]
fn nice_failback_maps_like_heartbeat() {
    let (h, d) = parse_ok("bcast eth0\nnode a\nnice_failback on\n");
    assert_eq!(h.auto_failback, AutoFailback::Off);
    assert!(notices(&d)[0].contains("nice_failback is obsolete"));
}

#[test]
fn crm_on_is_refused() {
    for v in ["on", "yes", "respawn", "true", "minimal"] {
        for d in ["crm", "pacemaker"] {
            let e = parse_errors(&format!("bcast eth0\nnode a\n{d} {v}\n"));
            assert_eq!(
                e,
                vec![format!(
                    "ha.cf:3: {d} {v}: harust implements heartbeat's classic haresources mode only, not the Cluster Resource Manager; use Pacemaker for a CRM cluster, or remove this line (or write \"{d} off\") to use haresources"
                )]
            );
        }
    }
}

#[test]
fn crm_off_is_accepted() {
    for v in ["off", "no", "false"] {
        parse_ok(&format!("bcast eth0\nnode a\ncrm {v}\n"));
    }
}

#[test]
fn autojoin_other_than_none_is_refused_as_in_heartbeat() {
    parse_ok("bcast eth0\nnode a\nautojoin none\n");
    let e = parse_errors("bcast eth0\nnode a\nautojoin any\n");
    assert!(
        e[0].starts_with("ha.cf:3: autojoin any: conflicts with haresources"),
        "{e:?}"
    );
}

#[test]
fn udpport_is_parsed_and_checked() {
    let (h, _) = parse_ok("udpport 1694\nbcast eth0\nnode a\n");
    assert_eq!(h.udpport, 1694);
    assert_eq!(
        parse_errors("udpport 70000\nbcast eth0\nnode a\n"),
        vec!["ha.cf:1: udpport: \"70000\" is not a UDP port (1 to 65535)"]
    );
}

/// heartbeat 3.0.6, measured: `bcast eth0`, `udpport 696`, `ucast eth0 …`,
/// `bcast eth1` listens on 694 on eth0 and eth1 and on 696 for the ucast.
#[test]
fn udpport_applies_to_media_kinds_first_declared_after_it_as_in_heartbeat() {
    let (h, d) = parse_ok(
        "bcast eth0\nudpport 696\nucast eth0 198.18.0.2\nbcast eth1\nnode a\ninitdead 60\n",
    );
    let ports: Vec<(String, u16)> = h
        .media
        .iter()
        .map(|m| (m.iface().to_string(), m.port()))
        .collect();
    assert_eq!(
        ports,
        vec![
            ("eth0".to_string(), 694),
            ("eth0".to_string(), 696),
            ("eth1".to_string(), 694)
        ]
    );
    assert_eq!(h.udpport, 696);
    assert_eq!(
        warnings(&d),
        vec![
            "ha.cf:2: warning: udpport comes after media: as in heartbeat, bcast media keep port \
             694 (first bcast on line 1); only media of another kind declared after this line use \
             696. Put udpport before every medium"
        ]
    );
    // Before every medium: no warning, every medium on the port.
    let (h, d) = parse_ok("udpport 696\nbcast eth0\nucast eth0 198.18.0.2\nnode a\ninitdead 60\n");
    assert!(h.media.iter().all(|m| m.port() == 696));
    assert!(warnings(&d).is_empty());
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn hosts(name: &str) -> Option<Vec<IpAddr>> {
    match name {
        "peer-b" => Some(vec![ip("2001:db8::2"), ip("198.18.0.2")]),
        "gw" => Some(vec![ip("198.18.0.254")]),
        _ => None,
    }
}

#[test]
fn host_names_in_ucast_and_ping_are_resolved_like_gethostbyname() {
    let text = "ucast eth0 peer-b\nping gw\nping_group g1 gw 198.18.0.253\nnode a\n";
    let (h, d) = match hacf::parse_with_resolver("ha.cf", text, &hosts) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        h.media,
        vec![Medium::Ucast {
            iface: "eth0".into(),
            peer: ip("198.18.0.2"),
            port: 694,
        }]
    );
    assert_eq!(h.ping_nodes, vec![ip("198.18.0.254")]);
    assert_eq!(
        h.ping_groups[0].addrs,
        vec![ip("198.18.0.254"), ip("198.18.0.253")]
    );
    assert_eq!(
        notices(&d)[0],
        "ha.cf:1: notice: ucast: host name \"peer-b\" resolves to 198.18.0.2; it is looked up \
         once, when the configuration is loaded, as heartbeat does"
    );
    let e = match hacf::parse_with_resolver(
        "ha.cf",
        "ucast eth0 nowhere\nping x_y..z\nnode a\n",
        &hosts,
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => errors(&e),
    };
    assert_eq!(
        e,
        vec![
            "ha.cf:1: ucast: cannot resolve host name \"nowhere\" to an IPv4 address (heartbeat \
             would refuse to start too); add it to /etc/hosts or write the address",
            "ha.cf:2: ping: \"x_y..z\" is neither an IP address nor a host name",
            "ha.cf: no heartbeat medium: add a bcast, mcast, mcast6, ucast or ucast6 line",
        ]
    );
}

#[test]
fn localhost_resolves_through_the_system_resolver() {
    let (h, _) = hacf::parse_with_resolver(
        "ha.cf",
        "ucast eth0 localhost\nnode a\n",
        &hacf::system_resolver,
    )
    .unwrap();
    assert!(matches!(&h.media[0], Medium::Ucast { peer, .. } if peer.is_loopback()));
}

#[test]
fn media_are_parsed() {
    let (h, _) = parse_ok(
        "node a\n\
         bcast eth0 eth1\n\
         ucast eth2 198.18.0.2\n\
         ucast6 eth3 fe80::1%eth3\n\
         mcast eth4 239.192.0.42 694 1 0\n\
         mcast6 eth5 ff12::1:2:3:4 695 2 1\n",
    );
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        h.media,
        vec![
            Medium::Bcast {
                iface: "eth0".into(),
                port: 694,
            },
            Medium::Bcast {
                iface: "eth1".into(),
                port: 694,
            },
            Medium::Ucast {
                iface: "eth2".into(),
                peer: ip("198.18.0.2"),
                port: 694,
            },
            Medium::Ucast {
                iface: "eth3".into(),
                peer: ip("fe80::1"),
                port: 694,
            },
            Medium::Mcast {
                iface: "eth4".into(),
                group: ip("239.192.0.42"),
                port: 694,
                ttl: 1,
                loopback: false
            },
            Medium::Mcast {
                iface: "eth5".into(),
                group: ip("ff12::1:2:3:4"),
                port: 695,
                ttl: 2,
                loopback: true
            },
        ]
    );
}

#[test]
fn bad_media_are_explained() {
    let e = parse_errors(
        "node a\n\
         ucast eth0 2001:db8::2\n\
         ucast eth0 peer/x\n\
         mcast eth0 198.18.0.1 694 1 0\n\
         mcast eth0 239.0.0.1 694 1\n\
         ucast6 eth0 fe80::1%eth1\n\
         bcast eth0/1\n",
    );
    assert_eq!(
        e,
        vec![
            "ha.cf:2: ucast: \"2001:db8::2\" is an IPv6 address; use ucast6",
            "ha.cf:3: ucast: \"peer/x\" is neither an IP address nor a host name",
            "ha.cf:4: mcast: \"198.18.0.1\" is not an IPv4 multicast group (224.0.0.0/4; use 239.192.0.0/14)",
            "ha.cf:5: mcast: expected 5 values: interface, group, port, ttl and loop (mcast eth0 239.192.0.42 694 1 0)",
            "ha.cf:6: ucast6: scope %eth1 does not match the interface eth0",
            "ha.cf:7: bcast: \"eth0/1\" is not a network interface name (1 to 15 characters, no '/', ':' or spaces)",
            "ha.cf: no heartbeat medium: add a bcast, mcast, mcast6, ucast or ucast6 line",
        ]
    );
}

#[test]
fn ping_nodes_and_groups() {
    let (h, _) = parse_ok(
        "bcast eth0\nnode a\nping 198.18.0.254 198.18.1.254\nping_group routers 198.18.2.1 198.18.2.2\n",
    );
    assert_eq!(h.ping_nodes.len(), 2);
    assert_eq!(h.ping_groups[0].name, "routers");
    assert_eq!(h.ping_groups[0].addrs.len(), 2);
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nping_group routers\n"),
        vec!["ha.cf:3: ping_group routers: missing addresses (ping_group NAME IP...)"]
    );
}

#[test]
fn systemd_replaced_directives_get_a_notice() {
    let (_, d) = parse_ok(
        "bcast eth0\nnode a\n\
         logfile /var/log/ha-log\n\
         debugfile /var/log/ha-debug\n\
         logfacility local0\n\
         use_logd yes\n\
         watchdog /dev/watchdog\n\
         respawn hacluster /usr/lib/heartbeat/ipfail\n",
    );
    let n = notices(&d);
    let expect = [
        "ha.cf:3: notice: logfile /var/log/ha-log: harust logs to the systemd journal instead (journalctl -u harust)",
        "ha.cf:4: notice: debugfile /var/log/ha-debug: harust logs debug messages to the systemd journal instead (journalctl -u harust -p debug)",
        "ha.cf:5: notice: logfacility local0: harust logs to the systemd journal instead; the syslog facility is not used",
        "ha.cf:6: notice: use_logd yes: harust logs to the systemd journal; there is no logging daemon to use",
        "ha.cf:7: notice: watchdog /dev/watchdog: harust does not open the device; it uses systemd's watchdog instead (WatchdogSec= in harust.service)",
        "ha.cf:8: notice: respawn hacluster /usr/lib/heartbeat/ipfail: harust does not run child programs; run /usr/lib/heartbeat/ipfail from its own systemd unit with User=hacluster and Restart=on-failure",
    ];
    for e in expect {
        assert!(n.iter().any(|x| x == e), "missing {e:?} in {n:#?}");
    }
}

/// One valid line for every directive harust knows; each must be
/// accepted without error.
const EVERY_DIRECTIVE: &[&str] = &[
    "keepalive 2",
    "deadtime 30",
    "warntime 10",
    "initdead 120",
    "deadping 40",
    "udpport 694",
    "bcast eth0",
    "mcast eth0 239.192.0.42 694 1 0",
    "mcast6 eth0 ff12::1:2:3:4 694 1 0",
    "ucast eth0 198.18.0.2",
    "ucast6 eth0 2001:db8::2",
    "serial /dev/ttyS0",
    "baud 19200",
    "udp eth1",
    "node a b",
    "auto_failback off",
    "nice_failback off",
    "ping 198.18.0.254",
    "ping6 2001:db8::fe",
    "ping_group g 198.18.0.253 198.18.0.252",
    "autojoin none",
    "witness b",
    "quorum on",
    "crm off",
    "pacemaker no",
    "logfile /var/log/ha-log",
    "debugfile /var/log/ha-debug",
    "logfacility daemon",
    "use_logd off",
    "conn_logd_time 60",
    "syslogmsgfmt true",
    "debug 1",
    "log_badpack false",
    "respawn hacluster /usr/lib/heartbeat/ipfail",
    "failfast hacluster /usr/lib/heartbeat/ccm",
    "watchdog /dev/watchdog",
    "realtime on",
    "rtprio 5",
    "coredumps true",
    "coreroot /var/lib/heartbeat/cores",
    "memreserve 6500",
    "use_apphbd no",
    "env HA_x=1",
    "hopfudge 1",
    "compression bz2",
    "compression_threshold 20",
    "traditional_compression on",
    "msgfmt netstring",
    "uuidfrom nodename",
    "hbgenmethod file",
    "max_rexmit_delay 250",
    "cluster linux-ha",
    "quorum_server q.example",
    "stonith baytech /etc/ha.d/conf/stonith.baytech",
    "stonith_host * baytech 10.0.0.3 mylogin mysecretpassword",
    "fence b fence_ipmilan",
    "apiauth ipfail uid=hacluster",
    "crm_daemon_dir /usr/lib/pacemaker",
    "crmd_spawns_pengine off",
    "record_config_changes on",
    "record_pengine_inputs on",
    "enable_config_writes on",
];

#[test]
fn every_heartbeat_directive_is_accepted() {
    let text = EVERY_DIRECTIVE.join("\n");
    let (h, d) = parse_ok(&text);
    assert_eq!(h.nodes, vec!["a", "b"]);
    // Each directive in the list of known ones has a sample line; hbaping
    // is known, and refused as Debian's heartbeat 3.0.6 refuses it.
    for name in DIRECTIVES.iter().filter(|d| **d != "hbaping") {
        assert!(
            EVERY_DIRECTIVE
                .iter()
                .any(|l| l.split_whitespace().next() == Some(name)),
            "no sample line for {name}"
        );
    }
    // Every line that is only accepted for compatibility says so.
    for (i, l) in EVERY_DIRECTIVE.iter().enumerate() {
        let name = l.split_whitespace().next().unwrap();
        let quiet = [
            "keepalive",
            "deadtime",
            "warntime",
            "initdead",
            "deadping",
            "udpport",
            "bcast",
            "mcast",
            "mcast6",
            "ucast",
            "ucast6",
            "node",
            "auto_failback",
            "ping",
            "ping6",
            "ping_group",
            "autojoin",
            "witness",
            "quorum",
            "fence",
            "crm",
            "pacemaker",
            "msgfmt",
            "uuidfrom",
            "hbgenmethod",
        ];
        let said = d.iter().any(|x| x.line == Some(i + 1));
        assert!(quiet.contains(&name) || said, "no notice for line {:?}", l);
    }
}

#[test]
fn repeated_directive_warns_and_the_last_wins() {
    let (h, d) =
        parse_ok("bcast eth0\nnode a\nkeepalive 2\nkeepalive 3\ndeadtime 30\ninitdead 60\n");
    assert_eq!(h.timings.keepalive, Duration::from_secs(3));
    assert_eq!(
        warnings(&d),
        vec!["ha.cf:4: warning: keepalive is set again (line 3); the value on this line is used"]
    );
}

#[test]
fn comments_blank_lines_and_crlf() {
    let (h, _) =
        parse_ok("# comment\r\n\r\nbcast eth0 # trailing\r\nnode a\r\n  keepalive 2   \r\n");
    assert_eq!(h.timings.keepalive, Duration::from_secs(2));
}

#[test]
fn bad_values_of_compatibility_directives_are_errors() {
    assert_eq!(
        parse_errors(
            "bcast eth0\nnode a\nuse_logd maybe\nlogfacility local9\ndebug 300\nmsgfmt xml\n"
        ),
        vec![
            "ha.cf:3: use_logd: \"maybe\" is not a boolean (use on or off)",
            "ha.cf:4: logfacility: \"local9\" is not one of auth, authpriv, cron, daemon, ftp, kern, lpr, mail, news, syslog, user, uucp, local0, local1, local2, local3, local4, local5, local6, local7, none (did you mean \"local0\"?)",
            "ha.cf:5: debug: \"300\" is not a number from 0 to 255",
            "ha.cf:6: msgfmt: \"xml\" is not one of classic, netstring",
        ]
    );
}

/// Measured against heartbeat 3.0.6: it does not know normalpoll, and has
/// no hbaping plugin.
#[test]
fn normalpoll_and_hbaping_are_refused_as_heartbeat_refuses_them() {
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nnormalpoll true\nhbaping fc0\n"),
        vec![
            "ha.cf:3: unknown directive \"normalpoll\"",
            "ha.cf:4: hbaping: fibre-channel ping nodes are not supported (heartbeat 3.0.6 as \
             packaged has no hbaping plugin either); use ping or ping_group",
        ]
    );
}

#[test]
fn witness_defaults_quorum_on_and_quorum_is_off_without_one() {
    let (h, _) = parse_ok(MEDIA_AND_NODES);
    assert!(h.witnesses.is_empty());
    assert!(!h.quorum, "heartbeat's behaviour without a witness");
    let (h, _) = parse_ok(&format!("{MEDIA_AND_NODES}node W\nwitness w\n"));
    assert_eq!(h.witnesses, vec!["w"]);
    assert!(h.quorum, "a witness turns quorum on by default");
    let (h, _) = parse_ok(&format!("{MEDIA_AND_NODES}node w\nwitness w\nquorum off\n"));
    assert!(!h.quorum);
    let (h, _) = parse_ok(&format!("{MEDIA_AND_NODES}quorum on\n"));
    assert!(
        h.quorum,
        "two nodes without a witness: the tie-break decides"
    );
}

#[test]
fn witness_that_is_not_a_node_is_an_error_with_its_line() {
    assert_eq!(
        parse_errors(&format!("{MEDIA_AND_NODES}witness node-c\n")),
        vec![
            "ha.cf:5: witness \"node-c\": not a node; a witness votes, so list it in a node \
             line too (node node-c) (did you mean \"node-a\"?)"
        ]
    );
}

/// heartbeat 3.0.6 runs `ping6` (its ping6 plugin), measured.
#[test]
fn ping6_adds_ipv6_ping_nodes() {
    let (h, _) = parse_ok("bcast eth0\nnode a\ninitdead 60\nping6 2001:db8::fe\n");
    assert_eq!(h.ping_nodes, vec![ip("2001:db8::fe")]);
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nping6 198.18.0.254\n"),
        vec!["ha.cf:3: ping6: \"198.18.0.254\" is an IPv4 address; use ping"]
    );
}

#[test]
fn quorum_on_with_one_voter_is_an_error_with_its_line() {
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nauto_failback on\nquorum on\n"),
        vec![
            "ha.cf:4: quorum on with one voter: a single node is always its own majority; \
             add a node or a witness, or set quorum off"
        ]
    );
    assert_eq!(
        parse_errors("bcast eth0\nnode a\nauto_failback on\nquorum yes please\n").len(),
        1
    );
}

#[test]
fn a_cluster_of_witnesses_only_is_an_error() {
    let e = parse_errors("bcast eth0\nnode a b\nwitness a\nwitness b\nauto_failback on\n");
    assert_eq!(
        e,
        vec![
            "ha.cf:4: every node is a witness, so no node may hold a group; a witness is a \
             node that only votes"
        ]
    );
}

#[test]
fn a_group_on_a_witness_is_an_error_in_haresources() {
    let dir = write_dir(
        &format!("{MEDIA_AND_NODES}node w\nwitness w\n"),
        AUTHKEYS,
        "node-a 198.18.7.1\nw 198.18.7.2\n",
    );
    let e = load(dir.path(), "node-a").expect_err("a group on a witness must not load");
    let shown = dir.path().join("haresources").display().to_string();
    assert_eq!(
        errors(&e),
        vec![format!(
            "{shown}:2: group 198.18.7.2 names w, a witness (ha.cf), as its node; a witness \
             never holds a group: name another node, or remove the witness line"
        )]
    );
}
