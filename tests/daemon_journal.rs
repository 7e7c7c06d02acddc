//! The daemon's log in a real journal: node-b's `harust daemon` runs in its
//! test network namespace *and* in the mount namespace of a private
//! journald (sdsupport::Journald), where `/run/systemd/journal/socket` is
//! that journald, with `HARUST_LOG_TARGET=auto` as in production. A
//! takeover is caused by killing node-a, and the entries are read back with
//! `journalctl -D DIR -o json`. Root only; under `CI=true` a machine that
//! cannot run these fails them.

mod sdsupport;
mod support;

use std::time::Duration;

use serde_json::Value;
use support::daemon::{Daemon, HaConfig, Launch};
use support::{Node, Topology, wait_until};

const VIP: &str = "198.18.1.100";
const LONG: Duration = Duration::from_secs(20);

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing or not a single text value in {entry:#}"))
}

#[test]
fn a_takeover_is_logged_to_the_journal_as_notice_and_the_death_as_warning() {
    if !support::privileged("a_takeover_is_logged_to_the_journal") {
        return;
    }
    let t = Topology::new("jdtake");
    let Some(jd) = sdsupport::Journald::start() else {
        return;
    };
    let cfg = HaConfig::fast().vip_group(Node::A, &[VIP]);
    let group = format!("IPaddr2::{VIP}/24/eth0");
    let mut a = Daemon::start(&t.a, Node::A, &cfg);
    let launch = Launch::default()
        .mount_ns_of(jd.init_pid())
        .env("HARUST_LOG_TARGET", "auto");
    let mut b = Daemon::start_with(&t.b, Node::B, &cfg, launch);
    a.wait_ready(LONG);
    b.wait_ready(LONG);
    // B knows A before A goes: its peer-up is in the journal.
    jd.wait_for_entries(&["HARUST_EVENT=peer-up", "HARUST_NODE=node-a"], 1);
    wait_until(LONG, "A to hold the VIP", || t.a.has_addr("eth0", VIP));

    a.kill(libc::SIGKILL);
    a.wait_exit(LONG);
    let acquired = jd.wait_for_entries(&["HARUST_EVENT=acquired"], 1);
    let dead = jd.wait_for_entries(&["HARUST_EVENT=peer-dead"], 1);
    assert!(
        t.b.has_addr("eth0", VIP),
        "B logged acquired without the VIP"
    );

    let acquired = &acquired[0];
    assert_eq!(field(acquired, "HARUST_GROUP"), group);
    assert_eq!(field(acquired, "PRIORITY"), "5", "a takeover is NOTICE");
    assert_eq!(field(acquired, "SYSLOG_IDENTIFIER"), "harust");
    let dead = &dead[0];
    assert_eq!(field(dead, "HARUST_NODE"), "node-a");
    assert_eq!(field(dead, "PRIORITY"), "4", "a dead peer is WARNING");
    assert_eq!(field(dead, "SYSLOG_IDENTIFIER"), "harust");

    // `auto` chose the journal: nothing of this went to stderr.
    let stderr = b.log();
    assert!(
        !stderr.contains("acquired group"),
        "B logged to stderr although a journal was there:\n{stderr}"
    );
}

#[test]
fn losing_quorum_is_a_warning_with_harust_event_quorum_lost() {
    if !support::privileged("losing_quorum_is_a_warning") {
        return;
    }
    let t = Topology::new("jdquorum");
    let Some(jd) = sdsupport::Journald::start() else {
        return;
    };
    // Two nodes, quorum on: alone, node-b loses the tie to node-a.
    let cfg = HaConfig::fast()
        .line("quorum on")
        .vip_group(Node::B, &[VIP]);
    let mut a = Daemon::start(&t.a, Node::A, &cfg);
    let launch = Launch::default()
        .mount_ns_of(jd.init_pid())
        .env("HARUST_LOG_TARGET", "auto");
    let mut b = Daemon::start_with(&t.b, Node::B, &cfg, launch);
    a.wait_ready(LONG);
    b.wait_ready(LONG);
    wait_until(LONG, "B to hold the VIP", || t.b.has_addr("eth0", VIP));

    a.kill(libc::SIGKILL);
    a.wait_exit(LONG);
    let lost = jd.wait_for_entries(&["HARUST_EVENT=quorum-lost"], 1);
    assert_eq!(field(&lost[0], "PRIORITY"), "4", "quorum lost is WARNING");
    wait_until(LONG, "B to release the VIP", || !t.b.has_addr("eth0", VIP));

    a.restart();
    let back = jd.wait_for_entries(&["HARUST_EVENT=quorum-regained"], 1);
    assert_eq!(
        field(&back[0], "PRIORITY"),
        "5",
        "quorum regained is NOTICE"
    );
    wait_until(LONG, "B to hold the VIP again", || {
        t.b.has_addr("eth0", VIP)
    });
}
