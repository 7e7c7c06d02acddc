//! Helpers shared by the config integration tests.
#![allow(dead_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use harust::config::{self, Diagnostics, Loaded};
use tempfile::TempDir;

/// The seed files, exactly as the tutorial printed them.
pub fn seed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed"))
}

/// A temporary config directory holding the three files; authkeys is
/// chmod 600 as harust requires.
pub fn write_dir(ha_cf: &str, authkeys: &str, haresources: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ha.cf"), ha_cf).unwrap();
    std::fs::write(dir.path().join("haresources"), haresources).unwrap();
    let ak = dir.path().join("authkeys");
    std::fs::write(&ak, authkeys).unwrap();
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// A copy of the seed config in a tempdir, authkeys chmod 600.
pub fn seed_copy() -> TempDir {
    let read = |f: &str| std::fs::read_to_string(seed_dir().join(f)).unwrap();
    write_dir(&read("ha.cf"), &read("authkeys"), &read("haresources"))
}

/// The uid owning files this test creates: root when the suite runs as
/// root, otherwise the test user (who cannot chown to root).
pub fn my_uid(dir: &Path) -> u32 {
    std::fs::metadata(dir).unwrap().uid()
}

/// `config::load`, accepting an authkeys owned by the test's own user.
pub fn load(dir: &Path, node: &str) -> Result<Loaded, Diagnostics> {
    config::load_with_owner(dir, node, my_uid(dir))
}

/// Every error of a failed load, as printed.
pub fn errors(d: &Diagnostics) -> Vec<String> {
    d.errors().map(|e| e.to_string()).collect()
}

pub fn ok(dir: &Path, node: &str) -> Loaded {
    match load(dir, node) {
        Ok(l) => l,
        Err(e) => panic!("expected the config to load, got:\n{e}"),
    }
}

pub const AUTHKEYS: &str = "auth 1\n1 sha1 labsecret\n";
pub const HA_CF: &str = "\
keepalive 1
deadtime 10
warntime 5
initdead 30
ucast eth0 198.18.0.2
node node-a
node node-b
auto_failback on
";
pub const HARESOURCES: &str = "node-a IPaddr2::198.18.0.100/24/eth0 apache2\n";
