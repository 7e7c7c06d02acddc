//! Fencing in ha.cf (`fence`, `stonith_host`) and its credentials files
//! (fence.d/NODE): docs/SAFETY.md, "Fencing".

mod config_util;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use config_util::{AUTHKEYS, HA_CF, HARESOURCES, errors, load, ok, write_dir};
use harust::config::{FenceAgent, Severity};

fn credentials(dir: &Path, node: &str, text: &str, mode: u32) {
    let d = dir.join("fence.d");
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join(node);
    std::fs::write(&f, text).unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn fence_agent_with_credentials_loads_and_fences_only_its_node() {
    let dir = write_dir(
        &format!("{HA_CF}fence node-a fence_ipmilan\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    credentials(dir.path(), "node-a", "ip=198.18.0.9\npassword=x\n", 0o600);
    let l = ok(dir.path(), "node-b");
    let ha = &l.config.ha;
    assert!(ha.fencing_for("node-a"));
    assert!(!ha.fencing_for("node-b"));
    let f: Vec<_> = ha.fences_from("node-b", "node-a").collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].agent, FenceAgent::Agent("fence_ipmilan".into()));
    // The target itself needs no credentials and runs nothing.
    std::fs::remove_file(dir.path().join("fence.d/node-a")).unwrap();
    let l = ok(dir.path(), "node-a");
    assert_eq!(l.config.ha.fences_from("node-a", "node-a").count(), 0);
}

#[test]
fn fencing_without_credentials_is_an_error_at_its_line() {
    let dir = write_dir(
        &format!("{HA_CF}fence node-a stonith:external/ipmi\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    let err = load(dir.path(), "node-b").unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{d}/ha.cf:9: fencing node-a: no credentials file {d}/fence.d/node-a (the agent's options as name=value lines, mode 0600, owned by root)"
        )]
    );
}

#[test]
fn a_credentials_file_with_the_wrong_mode_is_refused_like_authkeys() {
    let dir = write_dir(
        &format!("{HA_CF}fence node-a fence_virsh\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    credentials(dir.path(), "node-a", "ip=198.18.0.9\n", 0o644);
    let err = load(dir.path(), "node-b").unwrap_err();
    let f = dir.path().join("fence.d/node-a");
    let shown = f.display();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{shown}: mode 0644 is too open; it must be 0600 and owned by root (chmod 600 {shown})"
        )]
    );
}

#[test]
fn a_bad_credentials_line_is_reported_with_its_line() {
    let dir = write_dir(
        &format!("{HA_CF}fence node-a fence_virsh\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    credentials(dir.path(), "node-a", "ip=198.18.0.9\nsecret\n", 0o600);
    let err = load(dir.path(), "node-b").unwrap_err();
    let shown = dir.path().join("fence.d/node-a");
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}:2: expected name=value (an option of the fence agent or STONITH plugin)",
            shown.display()
        )]
    );
}

#[test]
fn stonith_host_with_inline_parameters_works_with_a_warning() {
    let dir = write_dir(
        &format!("{HA_CF}stonith_host node-b external/ssh hostlist=node-a\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    let l = ok(dir.path(), "node-b");
    let w: Vec<String> = l
        .notices
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.to_string())
        .collect();
    assert!(
        w.iter().any(|w| w.ends_with(
            "ha.cf:9: warning: stonith_host: the parameters of external/ssh are in ha.cf, which every user may read; move them to fence.d/NODE (mode 0600) with `fence NODE stonith:external/ssh`"
        )),
        "{w:?}"
    );
    let ha = &l.config.ha;
    // FROM node-b: B may fence A; nobody fences B.
    assert!(ha.fencing_for("node-a"));
    assert!(!ha.fencing_for("node-b"));
    assert_eq!(ha.fences_from("node-b", "node-a").count(), 1);
    assert_eq!(ha.fences_from("node-a", "node-b").count(), 0);
}

#[test]
fn stonith_host_without_parameters_points_to_the_credentials_file() {
    let dir = write_dir(
        &format!("{HA_CF}stonith_host * external/ipmi\n"),
        AUTHKEYS,
        HARESOURCES,
    );
    let err = load(dir.path(), "node-b").unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{d}/ha.cf:9: stonith_host: no parameters for external/ipmi: heartbeat's form takes them on this line; to keep them out of ha.cf write `fence NODE stonith:external/ipmi` and put them in fence.d/NODE as name=value lines"
        )]
    );
}

#[test]
fn fence_lines_must_name_nodes_and_known_agents() {
    let dir = write_dir(
        &format!(
            "{HA_CF}fence node-c fence_virsh\nfence node-a ipmitool\nstonith_host nod-b null x\n"
        ),
        AUTHKEYS,
        HARESOURCES,
    );
    let err = load(dir.path(), "node-b").unwrap_err();
    let d = dir.path().display();
    assert_eq!(
        errors(&err),
        vec![
            format!("{d}/ha.cf:9: fence: \"node-c\" is not a node (did you mean \"node-a\"?)"),
            format!(
                "{d}/ha.cf:10: fence: unknown agent \"ipmitool\": name a fence-agents command (fence_ipmilan, fence_virsh, …, or an absolute path) or stonith:TYPE"
            ),
            format!(
                "{d}/ha.cf:11: stonith_host: \"nod-b\" is not a node (did you mean \"node-b\"?)"
            ),
        ]
    );
}
