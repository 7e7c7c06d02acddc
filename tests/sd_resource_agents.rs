//! heartbeat resource agents as harust maps them, run by a real systemd
//! (`systemd --user` on a private bus, see tests/sdsupport): a legacy
//! resource.d script through the shipped `harust-resource@.service`,
//! `MailTo` through the shipped `harust-mailto@.service`, `Filesystem` (a
//! loop-backed ext4 image) through a transient mount unit, and
//! `drbddisk::r0` through `drbd-promote@r0.service`. This kernel has no
//! DRBD, so `drbd-promote@.service` is a stand-in of that name that records
//! what it was asked; what is tested is the mapping and its start and stop
//! through systemd, not DRBD.
//!
//! The manager runs as root in a mount namespace of its own, so it may
//! mount, and its mounts are seen by its units and vanish with it; the
//! loop device is set up with autoclear by mount(8) and released on
//! unmount. The booted-container tier is not needed for a real mount.

mod sdsupport;

use std::path::Path;
use std::time::Duration;

use harust::config::{Resource, haresources};
use harust::systemd::units::Units;
use sdsupport::UserManager;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The units haresources maps `line`'s resources to, with resource.d
/// scripts looked up in `config_dir`.
fn mapped(line: &str, config_dir: &Path) -> Vec<String> {
    let nodes = vec!["node-a".to_string()];
    let (groups, _) = haresources::parse_with(
        "haresources",
        line,
        &nodes,
        &haresources::script_dirs(config_dir),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    groups[0]
        .resources
        .iter()
        .map(|r| match r {
            Resource::Unit(u) => u.clone(),
            other => panic!("not a unit: {other:?}"),
        })
        .collect()
}

/// The shipped template, with its helper at the source tree's path (the
/// package installs it in /usr/libexec/harust).
fn shipped_template(name: &str, helper: &str) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/units/{name}")).unwrap();
    text.replace(
        &format!("/usr/libexec/harust/{helper}"),
        &format!("{ROOT}/packaging/libexec/{helper}"),
    )
}

async fn adapter(um: &UserManager) -> Units {
    Units::connect(Some(um.bus_address()))
        .await
        .expect("connecting the adapter to the test manager")
        .with_job_timeout(Duration::from_secs(30))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[tokio::test]
async fn resource_d_script_runs_with_heartbeats_protocol_through_the_template() {
    let Some(um) = UserManager::start().await else {
        return;
    };
    let state = um.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let config_dir = state.join("ha.d");
    let rd = config_dir.join("resource.d");
    std::fs::create_dir_all(&rd).unwrap();
    let calls = state.join("calls");
    // A legacy script: records its arguments, one call per line.
    let script = rd.join("master-redis");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$*\" >>'{}'\n", calls.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    um.write_unit(
        "harust-resource@.service",
        &shipped_template("harust-resource@.service", "resource-script"),
    );
    um.daemon_reload().await;

    let units = mapped("node-a master-redis::r0::a:b::-x/y\n", &config_dir);
    assert_eq!(units.len(), 1);
    assert!(units[0].starts_with("harust-resource@"), "{units:?}");
    let u = adapter(&um).await;
    u.start(&units[0])
        .await
        .unwrap_or_else(|e| panic!("start {}: {e}\n{}", units[0], um.log()));
    assert_eq!(read(&calls), "r0 a:b -x/y start\n");
    u.stop(&units[0]).await.expect("stop");
    assert_eq!(read(&calls), "r0 a:b -x/y start\nr0 a:b -x/y stop\n");
}

#[tokio::test]
async fn a_failing_resource_d_script_fails_the_start() {
    let Some(um) = UserManager::start().await else {
        return;
    };
    let config_dir = um.state_dir().join("ha.d");
    let rd = config_dir.join("resource.d");
    std::fs::create_dir_all(&rd).unwrap();
    let script = rd.join("killnfsd");
    std::fs::write(&script, "#!/bin/sh\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    um.write_unit(
        "harust-resource@.service",
        &shipped_template("harust-resource@.service", "resource-script"),
    );
    um.daemon_reload().await;
    let units = mapped("node-a killnfsd\n", &config_dir);
    let err = adapter(&um).await.start(&units[0]).await.unwrap_err();
    assert!(err.to_string().contains("job failed"), "{err}");
}

#[tokio::test]
async fn drbddisk_starts_and_stops_drbd_promote_through_systemd() {
    let Some(um) = UserManager::start().await else {
        return;
    };
    let state = um.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let calls = state.join("drbd");
    // Stand-in for drbd-utils' drbd-promote@.service (no DRBD here).
    um.write_unit(
        "drbd-promote@.service",
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\n\
             ExecStart=/bin/sh -c 'echo primary %I >>{0}'\n\
             ExecStop=/bin/sh -c 'echo secondary %I >>{0}'\n",
            calls.display()
        ),
    );
    um.daemon_reload().await;
    let units = mapped("node-a drbddisk::r0 drbddisk\n", &state);
    assert_eq!(
        units,
        vec!["drbd-promote@r0.service", "drbd-promote@all.service"]
    );
    let u = adapter(&um).await;
    u.start(&units[0]).await.expect("start");
    u.start(&units[1]).await.expect("start");
    u.stop(&units[1]).await.expect("stop");
    u.stop(&units[0]).await.expect("stop");
    assert_eq!(
        read(&calls),
        "primary r0\nprimary all\nsecondary all\nsecondary r0\n"
    );
}

/// Runs `sh -c script` as a oneshot unit of the manager, so inside its
/// mount namespace (where its mounts are), and returns what it printed.
async fn in_manager(um: &UserManager, u: &Units, name: &str, script: &str) -> String {
    let out = um.state_dir().join(format!("{name}.out"));
    um.write_unit(
        &format!("{name}.service"),
        &format!(
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nStandardOutput=truncate:{}\n\
             ExecStart=/bin/sh -c '{script}'\n",
            out.display()
        ),
    );
    um.daemon_reload().await;
    u.start(&format!("{name}.service"))
        .await
        .expect("probe unit");
    read(&out)
}

/// `Filesystem::IMAGE::DIR::ext4::loop` mounts a real ext4 image (on a
/// loop device) through a transient mount unit, and unmounts it on stop.
/// The user manager runs as root in a mount namespace of its own, so it
/// may mount; the mount is seen by its units, as a group's services see
/// it, and goes away with the namespace.
#[tokio::test]
async fn filesystem_mounts_a_loop_backed_ext4_image_through_a_transient_unit() {
    for tool in ["/usr/sbin/mkfs.ext4", "/dev/loop-control"] {
        if !Path::new(tool).exists() {
            sdsupport::skip(&format!("{tool} is missing (e2fsprogs, loop devices)"));
            return;
        }
    }
    let Some(um) = UserManager::start().await else {
        return;
    };
    let state = um.state_dir();
    let content = state.join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("hello"), "from the image\n").unwrap();
    let image = state.join("data.img");
    let mkfs = std::process::Command::new("/usr/sbin/mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&content)
        .arg(&image)
        .arg("8M")
        .output()
        .unwrap();
    assert!(mkfs.status.success(), "mkfs.ext4: {mkfs:?}");

    let nodes = vec!["node-a".to_string()];
    let line = format!(
        "node-a Filesystem::{}::{}::ext4::loop,ro\n",
        image.display(),
        state.join("mnt-real").display()
    );
    std::fs::create_dir_all(state.join("mnt-real")).unwrap();
    let (groups, _) = haresources::parse("haresources", &line, &nodes).unwrap();
    let Resource::Mount(m) = &groups[0].resources[0] else {
        panic!("{groups:?}")
    };
    let u = adapter(&um).await;
    u.start_mount(
        &m.unit(),
        &m.what,
        &m.path,
        m.fstype.as_deref(),
        m.options.as_deref(),
    )
    .await
    .unwrap_or_else(|e| panic!("mount: {e}\n{}", um.log()));
    let seen = in_manager(
        &um,
        &u,
        "probe-mounted",
        &format!("findmnt -n -o FSTYPE {0}; cat {0}/hello", m.path),
    )
    .await;
    assert_eq!(seen, "ext4\nfrom the image\n");
    u.stop(&m.unit()).await.expect("unmount");
    let seen = in_manager(
        &um,
        &u,
        "probe-unmounted",
        &format!("findmnt -n {0} || echo not mounted; ls {0}", m.path),
    )
    .await;
    assert_eq!(seen, "not mounted\n");
}

/// A mount that fails (an image with no file system on it) is a failed
/// start, which the engine treats like any failed unit: the group is handed
/// over.
#[tokio::test]
async fn a_failing_mount_is_a_failed_start() {
    let Some(um) = UserManager::start().await else {
        return;
    };
    let state = um.state_dir();
    let dir = state.join("mnt");
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = state.join("garbage.img");
    std::fs::write(&garbage, vec![0u8; 1 << 20]).unwrap();
    let path = dir.display().to_string();
    let name = harust::config::unit::path_unit_name(&path, "mount");
    let err = adapter(&um)
        .await
        .start_mount(
            &name,
            &garbage.display().to_string(),
            &path,
            Some("ext4"),
            Some("loop"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("job failed"), "{err}");
}

/// `MailTo::ADDR::SUBJECT` through the shipped `harust-mailto@.service`:
/// a mail on start (takeover) and on stop (release), handed to sendmail
/// (here a stand-in that keeps what it was given).
#[tokio::test]
async fn mailto_mails_on_takeover_and_release_through_the_template() {
    let Some(um) = UserManager::start().await else {
        return;
    };
    let state = um.state_dir();
    std::fs::create_dir_all(&state).unwrap();
    let mails = state.join("mails");
    let sendmail = state.join("sendmail");
    std::fs::write(
        &sendmail,
        format!(
            "#!/bin/sh\necho \"argv: $*\" >>'{0}'\ncat >>'{0}'\n",
            mails.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sendmail, std::fs::Permissions::from_mode(0o755)).unwrap();
    let template = shipped_template("harust-mailto@.service", "mailto").replace(
        "[Service]\n",
        &format!("[Service]\nEnvironment=SENDMAIL={}\n", sendmail.display()),
    );
    um.write_unit("harust-mailto@.service", &template);
    um.daemon_reload().await;
    let units = mapped("node-a MailTo::ops@example.org::web:down\n", &state);
    let u = adapter(&um).await;
    u.start(&units[0])
        .await
        .unwrap_or_else(|e| panic!("start {}: {e}\n{}", units[0], um.log()));
    u.stop(&units[0]).await.expect("stop");
    let text = read(&mails);
    let heads: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("argv:") || l.starts_with("To:") || l.starts_with("Subject:"))
        .collect();
    assert_eq!(heads.len(), 6, "{text}");
    assert_eq!(heads[0], "argv: -t");
    assert_eq!(heads[1], "To: ops@example.org");
    assert!(
        heads[2].starts_with("Subject: web:down: Takeover in progress at "),
        "{text}"
    );
    assert!(
        heads[5].starts_with("Subject: web:down: Migrating resource away at "),
        "{text}"
    );
}
