//! Fence credentials: `DIR/fence.d/NODE`, one file per node to fence,
//! `name=value` lines (`#` comments), mode 0600 and owned by root like
//! authkeys. ha.cf is world-readable, so passwords never go there
//! (docs/SAFETY.md, "Fencing").

use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics, Sink};

/// The directory of credentials files inside the configuration directory.
pub const DIR: &str = "fence.d";

/// The credentials file for fencing `node`.
pub fn path(config_dir: &Path, node: &str) -> PathBuf {
    config_dir.join(DIR).join(node)
}

/// Parses `name=value` lines, in order. Values keep inner spaces; a name
/// is letters, digits, `_` and `-`.
pub fn parse(path: &str, text: &str) -> Result<Vec<(String, String)>, Diagnostics> {
    let mut d = Sink::new(path);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            d.error(
                i + 1,
                "expected name=value (an option of the fence agent or STONITH plugin)",
            );
            continue;
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            d.error(
                i + 1,
                "the name before = must be letters, digits, _ or - (name=value)",
            );
            continue;
        }
        out.push((name.to_string(), value.trim().to_string()));
    }
    if d.has_errors() {
        Err(Diagnostics(d.list))
    } else {
        Ok(out)
    }
}

/// Checks the file's mode and owner (as authkeys), then reads and parses it.
pub fn load(path: &Path, owner: u32) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    if let Some(e) = super::authkeys::check_file_permissions(path, owner) {
        return Err(vec![e]);
    }
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic {
            path: shown.clone(),
            line: None,
            severity: super::Severity::Error,
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse(&shown, &text).map_err(|d| d.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_lines_with_comments() {
        let kv = parse(
            "f",
            "# ipmi\nip=198.18.0.9\n username = admin\npassword=a b=c\n\n",
        )
        .unwrap();
        assert_eq!(
            kv,
            [
                ("ip".into(), "198.18.0.9".into()),
                ("username".into(), "admin".into()),
                ("password".into(), "a b=c".into())
            ]
        );
    }

    #[test]
    fn a_line_without_equals_is_an_error_with_its_line() {
        let e = parse("/etc/harust/fence.d/a", "ip=1\npassword\n").unwrap_err();
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "/etc/harust/fence.d/a:2: expected name=value (an option of the fence agent or STONITH plugin)"
        );
    }
}
