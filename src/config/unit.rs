//! Mapping haresources script names to systemd unit names.
//!
//! * `apache2` → `apache2.service` (a bare name gets `.service`);
//! * `apache2.service`, `data.mount`, … are kept;
//! * `Name::a::b` → the template instance `Name@a:b.service`, each
//!   argument escaped as `systemd-escape` does.

/// Unit type suffixes systemd knows (systemd.unit(5)).
pub const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".slice",
    ".scope",
];

/// systemd's longest unit name (`UNIT_NAME_MAX`).
pub const UNIT_NAME_MAX: usize = 255;

/// Escapes one string as `systemd-escape STRING` does (systemd's
/// `unit_name_escape`): `/` becomes `-`; ASCII letters, digits, `:`, `_`
/// and `.` stay, except a leading `.`; every other byte, including `-` and
/// `\`, becomes `\xNN`.
pub fn systemd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// Escapes one argument of harust's own template units
/// (`harust-resource@.service`, `harust-mailto@.service`): as
/// [`systemd_escape`], but `:` too, so that the instance can be split on
/// `:` and each part unescaped back exactly ([`instance_unescape`]).
pub fn instance_escape(s: &str) -> String {
    systemd_escape(s).replace(':', "\\x3a")
}

/// The arguments of an instance made by [`instance_escape`] and joined
/// with `:`; `None` if it is not such an instance.
pub fn instance_unescape(instance: &str) -> Option<Vec<String>> {
    instance
        .split(':')
        .map(|part| {
            let mut out = Vec::new();
            let b = part.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'-' => out.push(b'/'),
                    b'\\' => {
                        let hex = part.get(i + 2..i + 4)?;
                        if b.get(i + 1) != Some(&b'x') {
                            return None;
                        }
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 3;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            String::from_utf8(out).ok()
        })
        .collect()
}

/// The unit name systemd gives a path (`systemd-escape --path`): `/` is
/// `-`, leading and trailing slashes go, and `/` itself is `-`.
pub fn path_unit_name(path: &str, suffix: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return format!("-.{suffix}");
    }
    format!("{}.{suffix}", systemd_escape(&parts.join("/")))
}

/// The suffix of `name` if it ends in a known unit type.
pub fn unit_suffix(name: &str) -> Option<&'static str> {
    UNIT_SUFFIXES
        .iter()
        .copied()
        .find(|s| name.len() > s.len() && name.ends_with(s))
}

/// Characters systemd allows in a unit name (besides `@`, handled apart).
fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '\\')
}

/// Maps a haresources script name and its `::` arguments to a unit name,
/// or says why it cannot.
pub fn map_unit(name: &str, args: &[&str]) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty resource name".into());
    }
    if name.contains('/') {
        return Err(
            "a resource names a script or unit, not a path; use the unit's name \
                    (e.g. apache2 for /etc/init.d/apache2)"
                .into(),
        );
    }
    let (prefix, suffix) = match unit_suffix(name) {
        Some(s) => (&name[..name.len() - s.len()], s),
        None => (name, ".service"),
    };
    if let Some(c) = prefix.chars().find(|c| !valid_name_char(*c) && *c != '@') {
        return Err(format!(
            "{c:?} is not allowed in a systemd unit name (use letters, digits, ':', '-', '_', '.')"
        ));
    }
    let unit = if args.is_empty() {
        format!("{prefix}{suffix}")
    } else {
        if prefix.contains('@') {
            return Err(
                "a unit that already names a template instance (with '@') cannot take \
                        '::' arguments"
                    .into(),
            );
        }
        if args.iter().any(|a| a.is_empty()) {
            return Err("empty '::' argument".into());
        }
        let instance: Vec<String> = args.iter().map(|a| systemd_escape(a)).collect();
        format!("{prefix}@{}{suffix}", instance.join(":"))
    };
    if prefix.starts_with('@') || prefix.starts_with('.') {
        return Err("a unit name cannot start with '@' or '.'".into());
    }
    if unit.len() > UNIT_NAME_MAX {
        return Err(format!(
            "the unit name would be {} characters long; systemd allows at most {UNIT_NAME_MAX}",
            unit.len()
        ));
    }
    if let Some(at) = unit.find('@')
        && unit[at + 1..].contains('@')
    {
        return Err("a unit name can hold only one '@'".into());
    }
    Ok(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_matches_systemd_escape() {
        // Expected values produced by systemd-escape(1) (systemd 257).
        for (input, want) in [
            ("a", "a"),
            ("/dev/sda1", "-dev-sda1"),
            ("-x", "\\x2dx"),
            (".hid", "\\x2ehid"),
            ("a b", "a\\x20b"),
            ("ü", "\\xc3\\xbc"),
            ("a\\b", "a\\x5cb"),
            ("x:y_z.w", "x:y_z.w"),
            ("/data1/", "-data1-"),
            ("foo-bar", "foo\\x2dbar"),
        ] {
            assert_eq!(systemd_escape(input), want, "{input:?}");
        }
    }

    #[test]
    fn instance_escape_is_reversible() {
        for args in [
            vec!["/etc/ha.d/resource.d/drbd_primary", "r0"],
            vec!["a:b", "-x", "sp ace", ".hid", "ü\\"],
            vec!["admin@example.org", "web: takeover"],
        ] {
            let inst: Vec<String> = args.iter().map(|a| instance_escape(a)).collect();
            let back = instance_unescape(&inst.join(":")).unwrap();
            assert_eq!(back, args);
        }
        assert_eq!(instance_unescape("a\\xz1"), None);
    }

    #[test]
    fn path_unit_names_match_systemd_escape_path() {
        // systemd-escape --path --suffix=mount (systemd 257).
        assert_eq!(path_unit_name("/data", "mount"), "data.mount");
        assert_eq!(
            path_unit_name("/srv/my-data/", "mount"),
            "srv-my\\x2ddata.mount"
        );
        assert_eq!(path_unit_name("/", "mount"), "-.mount");
    }

    #[test]
    fn bare_name_gets_service() {
        assert_eq!(map_unit("apache2", &[]).unwrap(), "apache2.service");
        assert_eq!(map_unit("apache2.service", &[]).unwrap(), "apache2.service");
        assert_eq!(map_unit("data.mount", &[]).unwrap(), "data.mount");
        assert_eq!(map_unit("foo@bar", &[]).unwrap(), "foo@bar.service");
    }

    #[test]
    fn template_instances() {
        assert_eq!(
            map_unit("Filesystem", &["/dev/sda1", "/data1", "ext2"]).unwrap(),
            "Filesystem@-dev-sda1:-data1:ext2.service"
        );
        assert_eq!(map_unit("drbd.target", &["r0"]).unwrap(), "drbd@r0.target");
    }

    #[test]
    fn refusals() {
        assert!(map_unit("/etc/init.d/apache", &[]).is_err());
        assert!(map_unit("a@b", &["c"]).is_err());
        assert!(map_unit("a", &[""]).is_err());
        assert!(map_unit("a b", &[]).is_err());
        assert!(map_unit(&"x".repeat(300), &[]).is_err());
    }
}
