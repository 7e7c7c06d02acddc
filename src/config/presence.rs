//! Whether what each resource maps to exists on this host: the unit file
//! (or its template, or the init script systemd's sysv generator turns
//! into a service) and, for heartbeat resource scripts, the script. Used
//! by `harust check-config`, which warns rather than fails: the unit may
//! well be installed after the configuration is written.

use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Severity};
use super::haresources::{MAILTO_TEMPLATE, SCRIPT_TEMPLATE};
use super::unit::instance_unescape;
use super::{Config, HARESOURCES, Resource};

/// systemd's system unit search path (systemd.unit(5)), and where the
/// sysv generator finds init scripts.
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
pub const INIT_D: &str = "/etc/init.d";

/// Where to look; [`Host::system`] for the running system.
#[derive(Debug, Clone)]
pub struct Host {
    pub unit_dirs: Vec<PathBuf>,
    pub init_d: PathBuf,
}

impl Host {
    pub fn system() -> Host {
        Host {
            unit_dirs: UNIT_DIRS.iter().map(PathBuf::from).collect(),
            init_d: PathBuf::from(INIT_D),
        }
    }

    /// Whether systemd could load `unit`: its file, its template's file,
    /// or for a service an init script.
    pub fn has_unit(&self, unit: &str) -> bool {
        let mut names = vec![unit.to_string()];
        if let (Some(at), Some(dot)) = (unit.find('@'), unit.rfind('.')) {
            names.push(format!("{}@{}", &unit[..at], &unit[dot..]));
        }
        let found = self
            .unit_dirs
            .iter()
            .any(|d| names.iter().any(|n| d.join(n).exists()));
        found
            || unit
                .strip_suffix(".service")
                .filter(|n| !n.contains('@'))
                .is_some_and(|n| self.init_d.join(n).is_file())
    }
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A warning for each resource whose unit or script is missing here, at
/// its group's line in haresources.
pub fn check(cfg: &Config, host: &Host) -> Vec<Diagnostic> {
    let path = cfg.dir.join(HARESOURCES).display().to_string();
    let mut out = Vec::new();
    for g in &cfg.groups {
        for r in &g.resources {
            let Resource::Unit(unit) = r else { continue };
            let mut problems = Vec::new();
            if !host.has_unit(unit) {
                problems.push(format!(
                    "unit {unit} is not installed on this host (no unit file in {})",
                    host.unit_dirs
                        .first()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default()
                        + " or systemd's other unit directories"
                ));
            }
            let script_prefix = format!("{SCRIPT_TEMPLATE}@");
            if let Some(inst) = unit
                .strip_prefix(&script_prefix)
                .and_then(|u| u.strip_suffix(".service"))
                && let Some(script) = instance_unescape(inst).and_then(|a| a.into_iter().next())
                && !executable(Path::new(&script))
            {
                problems.push(format!("the resource script {script} is not executable"));
            }
            if unit.starts_with(&format!("{MAILTO_TEMPLATE}@"))
                && !executable(Path::new("/usr/sbin/sendmail"))
            {
                problems.push("MailTo needs /usr/sbin/sendmail, which is not installed".into());
            }
            for p in problems {
                out.push(Diagnostic {
                    path: path.clone(),
                    line: Some(g.line),
                    severity: Severity::Warning,
                    message: format!("{}: {p}; the first takeover would fail", g.key),
                });
            }
        }
    }
    out
}
