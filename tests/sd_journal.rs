//! `harust::systemd::journal` against a real, private journald (see
//! tests/sdsupport), read back with `journalctl -o json`.
//!
//! The logging process is this test binary run again, selecting
//! [`journal_probe`] (which does nothing unless `HARUST_JOURNAL_PROBE` is
//! set): a logger is process-wide, and inside journald's namespace the
//! journal socket is at its real path, as in production.

mod sdsupport;

use std::process::Command;

use harust::systemd::journal::{LogTarget, init_logging};
use serde_json::Value;

const PROBE_ENV: &str = "HARUST_JOURNAL_PROBE";

/// The child side: log one record per priority, tagged with the value of
/// `HARUST_JOURNAL_PROBE`.
#[test]
fn journal_probe() {
    let Ok(tag) = std::env::var(PROBE_ENV) else {
        return;
    };
    let target = init_logging(log::LevelFilter::Trace).unwrap();
    println!("probe: target={target:?}");
    let tag = tag.as_str();
    harust::notice!(harust_event = "takeover", harust_group = "g1", harust_test = tag;
        "taking over group {}", "g1");
    log::info!(harust_event = "link_up", harust_node = "n2", harust_test = tag; "link to n2 is up");
    log::warn!(harust_test = tag; "late heartbeat from n2");
    log::error!(harust_test = tag; "cannot bind udp/694");
    log::debug!(harust_test = tag; "tick");
    log::logger().flush();
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing or not a single text value in {entry}"))
}

#[test]
fn records_reach_the_journal_with_fields_and_syslog_priorities() {
    let Some(jd) = sdsupport::Journald::start() else {
        return;
    };
    let tag = format!("run-{}", std::process::id());
    let out = jd
        .command(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "journal_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, &tag)
        .env_remove("HARUST_LOG_TARGET")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed: {stdout}\n{}\njournald: {}",
        String::from_utf8_lossy(&out.stderr),
        jd.log()
    );
    assert!(stdout.contains("probe: target=Journal"), "{stdout}");

    let entries = jd.wait_for_entries(&[&format!("HARUST_TEST={tag}")], 5);
    let by_message = |m: &str| {
        entries
            .iter()
            .find(|e| e["MESSAGE"] == m)
            .unwrap_or_else(|| panic!("no entry {m:?} in {entries:#?}"))
    };

    let takeover = by_message("taking over group g1");
    assert_eq!(field(takeover, "PRIORITY"), "5", "NOTICE");
    assert_eq!(field(takeover, "HARUST_EVENT"), "takeover");
    assert_eq!(field(takeover, "HARUST_GROUP"), "g1");
    assert_eq!(field(takeover, "SYSLOG_IDENTIFIER"), "harust");
    assert_eq!(field(takeover, "_TRANSPORT"), "journal", "native protocol");
    assert_eq!(field(takeover, "TARGET"), "sd_journal");
    assert!(takeover.get("CODE_LINE").is_some(), "{takeover}");

    let link = by_message("link to n2 is up");
    assert_eq!(field(link, "PRIORITY"), "6", "INFO");
    assert_eq!(field(link, "HARUST_NODE"), "n2");
    assert_eq!(field(by_message("late heartbeat from n2"), "PRIORITY"), "4");
    assert_eq!(field(by_message("cannot bind udp/694"), "PRIORITY"), "3");
    assert_eq!(field(by_message("tick"), "PRIORITY"), "7");

    // journalctl -p notice: the takeover and worse, not routine info.
    let important: Vec<Value> = jd
        .entries(&["-p", "notice", &format!("HARUST_TEST={tag}")])
        .into_iter()
        .collect();
    let mut messages: Vec<&str> = important.iter().map(|e| field(e, "MESSAGE")).collect();
    messages.sort();
    assert_eq!(
        messages,
        [
            "cannot bind udp/694",
            "late heartbeat from n2",
            "taking over group g1"
        ]
    );
}

#[test]
fn stderr_lines_carry_level_target_message_and_fields() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "journal_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_ENV, "t1")
        .env("HARUST_LOG_TARGET", "stderr")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("probe: target={:?}", LogTarget::Stderr)),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("HARUST_TEST=t1"))
        .collect();
    assert_eq!(
        lines,
        [
            "NOTICE sd_journal: taking over group g1 HARUST_EVENT=takeover HARUST_GROUP=g1 HARUST_TEST=t1",
            "INFO sd_journal: link to n2 is up HARUST_EVENT=link_up HARUST_NODE=n2 HARUST_TEST=t1",
            "WARN sd_journal: late heartbeat from n2 HARUST_TEST=t1",
            "ERROR sd_journal: cannot bind udp/694 HARUST_TEST=t1",
            "DEBUG sd_journal: tick HARUST_TEST=t1",
        ]
    );
}
