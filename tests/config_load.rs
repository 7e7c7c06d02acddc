//! load(): all three files together, and the shipped examples.

mod config_util;

use std::path::Path;

use config_util::{AUTHKEYS, HA_CF, HARESOURCES, errors, load, ok, write_dir};
use harust::config::summary;

#[test]
fn all_errors_are_reported() {
    let dir = write_dir(
        "keepalive 2x\nebugfile /x\nnode node-a node-b\nucast eth0 198.18.0.2\ncrm respawn\n",
        "auth 3\n1 sha1\n",
        "node-c apache2\nnode-a IPaddr::198.18.0.300\n",
    );
    let err = load(dir.path(), "node-a").unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        errors(&err),
        vec![
            format!("{d}/ha.cf:1: keepalive: \"2x\" is not a time (use 2, 2s, 500ms or 100000us)"),
            format!("{d}/ha.cf:2: unknown directive \"ebugfile\" (did you mean \"debugfile\"?)"),
            format!(
                "{d}/ha.cf:5: crm respawn: harust implements heartbeat's classic haresources mode only, not the Cluster Resource Manager; use Pacemaker for a CRM cluster, or remove this line (or write \"crm off\") to use haresources"
            ),
            format!("{d}/authkeys:1: auth 3: there is no key 3 in this file"),
            format!("{d}/authkeys:2: key 1: sha1 needs a key (1 sha1 SECRET)"),
            format!(
                "{d}/haresources:1: \"node-c\" is not a configured node (ha.cf lists: node-a, node-b) (did you mean \"node-a\"?)"
            ),
            format!(
                "{d}/haresources:2: \"IPaddr::198.18.0.300\": \"198.18.0.300\" is not an IP address"
            ),
        ]
    );
    // Display prints one diagnostic per line, errors and notices alike.
    assert_eq!(err.to_string().lines().count(), err.len());
}

#[test]
fn missing_files_are_each_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), "node-a").unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        errors(&err),
        vec![
            format!("{d}/ha.cf: cannot read: No such file or directory (os error 2)"),
            format!("{d}/authkeys: cannot read: No such file or directory (os error 2)"),
            format!("{d}/haresources: cannot read: No such file or directory (os error 2)"),
        ]
    );
}

#[test]
fn invalid_utf8_is_reported_with_its_line() {
    let dir = write_dir(HA_CF, AUTHKEYS, HARESOURCES);
    let mut bytes = HA_CF.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(dir.path().join("ha.cf"), bytes).unwrap();
    let err = load(dir.path(), "node-a").unwrap_err();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}/ha.cf:9: this line is not valid UTF-8",
            dir.path().display()
        )]
    );
}

#[test]
fn loaded_config_carries_dir_and_notices() {
    let dir = write_dir(
        &format!("{HA_CF}logfile /var/log/ha-log\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    let l = ok(dir.path(), "node-b");
    assert_eq!(l.config.dir, dir.path());
    assert_eq!(l.config.local_node, "node-b");
    assert_eq!(l.notices.len(), 1, "{:?}", l.notices);
    assert!(
        l.notices[0]
            .to_string()
            .contains("ha.cf:9: notice: logfile")
    );
}

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/examples"))
}

#[test]
fn packaged_examples_load_cleanly_on_both_nodes() {
    let read = |f: &str| std::fs::read_to_string(examples().join(f)).unwrap();
    let dir = write_dir(&read("ha.cf"), &read("authkeys"), &read("haresources"));
    for node in ["node-a", "node-b"] {
        let l = ok(dir.path(), node);
        assert!(l.notices.is_empty(), "{node}: {:?}", l.notices);
        assert_eq!(l.config.ha.nodes, vec!["node-a", "node-b"]);
        assert_eq!(l.config.groups.len(), 1);
    }
    let s = summary(&ok(dir.path(), "node-a").config);
    for needle in [
        "  ucast eth0 198.18.0.1 (udp port 694)",
        "  ucast eth0 198.18.0.2 (udp port 694)",
        "timings:       keepalive 1s, deadtime 10s, warntime 5s, initdead 30s",
        "  IPaddr2::198.18.0.100/24/eth0 (preferred node node-a)",
        "    vip  198.18.0.100/24 on eth0 (IPaddr2)",
        "    unit apache2.service",
    ] {
        assert!(
            s.lines().any(|l| l == needle),
            "missing {needle:?} in:\n{s}"
        );
    }
}

/// check-config's host check: a unit with no unit file, template or init
/// script here is warned about at its group's line; an installed one,
/// through its template or init script, is not.
#[test]
fn missing_units_and_scripts_are_warned_about() {
    use harust::config::presence::{Host, check};
    let dir = write_dir(
        HA_CF,
        AUTHKEYS,
        "node-a IPaddr::198.18.0.10/24 web drbddisk::r0 legacy\nnode-b nothere broken\n",
    );
    let rd = dir.path().join("resource.d");
    std::fs::create_dir(&rd).unwrap();
    std::fs::write(rd.join("broken"), "#!/bin/sh\n").unwrap();
    let units = tempfile::tempdir().unwrap();
    let init = tempfile::tempdir().unwrap();
    std::fs::write(units.path().join("web.service"), "").unwrap();
    std::fs::write(units.path().join("drbd-promote@.service"), "").unwrap();
    std::fs::write(units.path().join("harust-resource@.service"), "").unwrap();
    std::fs::write(init.path().join("legacy"), "").unwrap();
    let host = Host {
        unit_dirs: vec![units.path().to_path_buf()],
        init_d: init.path().to_path_buf(),
    };
    let loaded = ok(dir.path(), "node-a");
    let warned: Vec<String> = check(&loaded.config, &host)
        .iter()
        .map(|d| d.to_string())
        .collect();
    let hr = dir.path().join("haresources").display().to_string();
    let u = units.path().display();
    assert_eq!(
        warned,
        vec![
            format!(
                "{hr}:2: warning: nothere: unit nothere.service is not installed on this host (no \
                 unit file in {u} or systemd's other unit directories); the first takeover would fail"
            ),
            format!(
                "{hr}:2: warning: nothere: the resource script {} is not executable; the first \
                 takeover would fail",
                rd.join("broken").display()
            ),
        ]
    );
}
