//! `harust::systemd::units` against a real systemd: a `systemd --user`
//! manager on a private session bus (see tests/sdsupport). Root only; under
//! `CI=true` a machine that cannot run the manager fails these tests.

mod sdsupport;

use std::time::Duration;

use futures::StreamExt;
use harust::systemd::units::{ActiveState, JobKind, JobResult, UnitError, Units};
use sdsupport::UserManager;

/// A manager with `units` (name, unit file text) installed, and a connected
/// adapter. `None` when skipped.
async fn manager_with(units: &[(&str, &str)]) -> Option<(UserManager, Units)> {
    let um = UserManager::start().await?;
    for (name, text) in units {
        um.write_unit(name, text);
    }
    um.daemon_reload().await;
    let adapter = Units::connect(Some(um.bus_address()))
        .await
        .expect("connecting the adapter to the test manager")
        .with_job_timeout(Duration::from_secs(30));
    Some((um, adapter))
}

const SLEEPER: &str = "[Service]\nExecStart=/bin/sleep 300\n";

#[tokio::test]
async fn start_is_confirmed_active_and_stop_inactive() {
    let Some((_um, units)) = manager_with(&[("sleeper.service", SLEEPER)]).await else {
        return;
    };
    assert_eq!(
        units.active_state("sleeper.service").await.unwrap(),
        ActiveState::Inactive
    );
    units.start("sleeper.service").await.expect("start");
    assert_eq!(
        units.active_state("sleeper.service").await.unwrap(),
        ActiveState::Active
    );
    units.stop("sleeper.service").await.expect("stop");
    assert_eq!(
        units.active_state("sleeper.service").await.unwrap(),
        ActiveState::Inactive
    );
}

#[tokio::test]
async fn a_failing_start_is_a_job_failure_with_systemds_reason() {
    let unit = "[Service]\nType=oneshot\nExecStart=/bin/false\n";
    let Some((_um, units)) = manager_with(&[("fails.service", unit)]).await else {
        return;
    };
    match units.start("fails.service").await {
        Err(UnitError::JobFailed {
            unit,
            kind,
            result,
            reason,
        }) => {
            assert_eq!(unit, "fails.service");
            assert_eq!(kind, JobKind::Start);
            assert_eq!(result, JobResult::Failed);
            assert_eq!(reason.as_deref(), Some("exit-code"));
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    assert_eq!(
        units.active_state("fails.service").await.unwrap(),
        ActiveState::Failed
    );
}

#[tokio::test]
async fn a_start_timed_out_by_systemd_fails_with_reason_timeout() {
    // Type=notify that never sends READY=1: systemd gives up after 1 s. The
    // job result is `failed` (a job result `timeout` is JobTimeoutSec=);
    // the service's own Result says why.
    let unit = "[Service]\nType=notify\nExecStart=/bin/sleep 300\nTimeoutStartSec=1\n";
    let Some((_um, units)) = manager_with(&[("never-ready.service", unit)]).await else {
        return;
    };
    match units.start("never-ready.service").await {
        Err(UnitError::JobFailed { result, reason, .. }) => {
            assert_eq!(result, JobResult::Failed);
            assert_eq!(reason.as_deref(), Some("timeout"));
        }
        other => panic!("expected a timed-out job, got {other:?}"),
    }
}

#[tokio::test]
async fn a_job_timed_out_by_systemd_is_a_timeout_result() {
    let unit = "[Unit]\nJobTimeoutSec=1\n[Service]\nType=notify\nExecStart=/bin/sleep 300\n\
                TimeoutStartSec=infinity\n";
    let Some((_um, units)) = manager_with(&[("job-timeout.service", unit)]).await else {
        return;
    };
    match units.start("job-timeout.service").await {
        Err(UnitError::JobFailed { result, .. }) => assert_eq!(result, JobResult::Timeout),
        other => panic!("expected a job timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_job_that_outlasts_our_timeout_is_reported_as_such() {
    let unit = "[Service]\nType=notify\nExecStart=/bin/sleep 300\nTimeoutStartSec=infinity\n";
    let Some((_um, units)) = manager_with(&[("slow.service", unit)]).await else {
        return;
    };
    let units = units.with_job_timeout(Duration::from_millis(300));
    match units.start("slow.service").await {
        Err(UnitError::JobTimeout { unit, kind, .. }) => {
            assert_eq!(unit, "slow.service");
            assert_eq!(kind, JobKind::Start);
        }
        other => panic!("expected JobTimeout, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_unit_is_not_found() {
    let Some((_um, units)) = manager_with(&[]).await else {
        return;
    };
    let missing = "harust-no-such-unit.service";
    for (what, result) in [
        ("start", units.start(missing).await),
        ("stop", units.stop(missing).await),
    ] {
        match result {
            Err(UnitError::NotFound { unit }) => assert_eq!(unit, missing, "{what}"),
            other => panic!("{what}: expected NotFound, got {other:?}"),
        }
    }
    assert!(matches!(
        units.active_state(missing).await,
        Err(UnitError::NotFound { .. })
    ));
    assert!(matches!(
        units.watch(&[missing.to_owned()]).await,
        Err(UnitError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_oneshot_that_does_not_remain_is_not_held_after_start() {
    let unit = "[Service]\nType=oneshot\nExecStart=/bin/true\n";
    let Some((_um, units)) = manager_with(&[("once.service", unit)]).await else {
        return;
    };
    match units.start("once.service").await {
        Err(UnitError::WrongState {
            kind,
            state,
            reason,
            ..
        }) => {
            assert_eq!(kind, JobKind::Start);
            assert_eq!(state, ActiveState::Inactive);
            assert_eq!(reason.as_deref(), Some("success"));
        }
        other => panic!("expected WrongState, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_reports_a_held_unit_killed_from_outside_as_failed() {
    let Some((um, units)) = manager_with(&[("victim.service", SLEEPER)]).await else {
        return;
    };
    units.start("victim.service").await.expect("start");
    let mut events = units
        .watch(&["victim.service".to_owned()])
        .await
        .expect("watch");

    // Someone else kills the main process (systemctl --user kill -s KILL).
    let other = um.connect().await;
    zbus_systemd::systemd1::ManagerProxy::new(&other)
        .await
        .unwrap()
        .kill_unit("victim.service".into(), "main".into(), libc::SIGKILL)
        .await
        .expect("KillUnit");

    let down = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await {
            if event.is_down() {
                return event;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .expect("timed out waiting for the watch to report victim.service down");
    assert_eq!(down.unit, "victim.service");
    assert_eq!(down.active_state, ActiveState::Failed);
    assert_eq!(down.sub_state, "failed");
    assert_eq!(down.result.as_deref(), Some("signal"));
}

#[tokio::test]
async fn our_own_stop_is_watched_as_inactive_not_failed() {
    let Some((_um, units)) = manager_with(&[("held.service", SLEEPER)]).await else {
        return;
    };
    units.start("held.service").await.expect("start");
    let mut events = units
        .watch(&["held.service".to_owned()])
        .await
        .expect("watch");
    units.stop("held.service").await.expect("stop");
    let down = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(event) = events.next().await {
            if event.is_down() {
                return event;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .expect("timed out waiting for the watch to report held.service down");
    assert_eq!(down.active_state, ActiveState::Inactive);
    assert_eq!(down.result.as_deref(), Some("success"));
}

#[tokio::test]
async fn a_group_started_left_to_right_and_stopped_right_to_left_shows_in_systemds_timestamps() {
    let group = ["first.service", "second.service", "third.service"];
    let files: Vec<(&str, &str)> = group.iter().map(|u| (*u, SLEEPER)).collect();
    let Some((um, units)) = manager_with(&files).await else {
        return;
    };
    // Pin the units (Unit.Ref) so systemd does not garbage-collect them,
    // and their timestamps, once they are inactive.
    let conn = um.connect().await;
    let manager = zbus_systemd::systemd1::ManagerProxy::new(&conn)
        .await
        .unwrap();
    let mut proxies = Vec::new();
    for unit in group {
        let path = manager.load_unit(unit.into()).await.unwrap();
        let proxy = zbus_systemd::systemd1::UnitProxy::builder(&conn)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .unwrap();
        proxy.reference().await.expect("Unit.Ref");
        proxies.push(proxy);
    }

    for unit in group {
        units.start(unit).await.expect("start");
    }
    for unit in group.iter().rev() {
        units.stop(unit).await.expect("stop");
    }

    let mut entered = Vec::new();
    let mut left = Vec::new();
    for proxy in &proxies {
        entered.push(proxy.active_enter_timestamp_monotonic().await.unwrap());
        left.push(proxy.inactive_enter_timestamp_monotonic().await.unwrap());
    }
    assert!(entered.iter().all(|&t| t > 0), "{entered:?}");
    assert!(entered.is_sorted(), "started out of order: {entered:?}");
    assert!(
        left.iter().rev().is_sorted(),
        "stopped out of order: {left:?}"
    );
    assert!(entered[2] < left[2], "third stopped before it started");
}

/// A configuration whose groups are `groups` (units only), as release-local
/// reads it.
fn units_config(groups: &[&[&str]]) -> harust::config::Config {
    use harust::config::{AutoFailback, Config, Group, HaCf, Medium, Resource, Timings};
    let nodes = vec!["node-a".to_string(), "node-b".to_string()];
    Config {
        dir: "/nonexistent".into(),
        local_node: "node-a".into(),
        ha: HaCf {
            timings: Timings {
                keepalive: Duration::from_millis(100),
                deadtime: Duration::from_secs(1),
                warntime: Duration::from_millis(500),
                initdead: Duration::from_secs(2),
            },
            udpport: 694,
            media: vec![Medium::Bcast {
                iface: "eth0".into(),
                port: 694,
            }],
            nodes,
            auto_failback: AutoFailback::On,
            ping_nodes: vec![],
            ping_groups: vec![],
            deadping: None,
            autojoin: false,
            witnesses: vec![],
            quorum: false,
            fences: vec![],
        },
        keys: harust::wire::Keyring::single(harust::wire::Method::Crc),
        groups: groups
            .iter()
            .enumerate()
            .map(|(i, units)| Group {
                node: "node-a".into(),
                key: units[0].into(),
                resources: units
                    .iter()
                    .map(|u| Resource::Unit(u.to_string()))
                    .collect(),
                line: i + 1,
            })
            .collect(),
    }
}

#[tokio::test]
async fn release_local_stops_the_units_left_running_right_to_left() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stops");
    // Each unit notes its stop; release-local waits for each stop job, so
    // the file shows the order.
    let unit = |name: &str| {
        format!(
            "[Service]\nExecStart=/bin/sleep 300\nExecStop=/bin/sh -c 'echo {name} >> {}'\n",
            log.display()
        )
    };
    let (a, b, c, idle) = (unit("a"), unit("b"), unit("c"), unit("idle"));
    let Some((um, units)) = manager_with(&[
        ("a.service", &a),
        ("b.service", &b),
        ("c.service", &c),
        ("idle.service", &idle),
    ])
    .await
    else {
        return;
    };
    for u in ["a.service", "b.service", "c.service"] {
        units.start(u).await.expect("start");
    }
    let cfg = units_config(&[&["a.service", "b.service"], &["c.service", "idle.service"]]);
    let done = harust::resources::release_local(&cfg, Some(um.bus_address()))
        .await
        .expect("release-local");
    assert_eq!(done.units, 3, "{done:?}");
    assert_eq!(done.addresses, 0);
    for u in ["a.service", "b.service", "c.service", "idle.service"] {
        assert_eq!(
            units.active_state(u).await.unwrap(),
            ActiveState::Inactive,
            "{u}"
        );
    }
    // Last group first, each right to left; the unit that was not running
    // is left alone.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "c\nb\na\n");
}
