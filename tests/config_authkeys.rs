//! authkeys: syntax, keys and the file's mode and owner.

mod config_util;

use std::os::unix::fs::PermissionsExt;

use config_util::{AUTHKEYS, HA_CF, HARESOURCES, errors, my_uid, write_dir};
use harust::config::authkeys;
use harust::wire::Method;

fn parse_errors(text: &str) -> Vec<String> {
    match authkeys::parse("authkeys", text) {
        Ok((k, _)) => panic!("expected errors, got {k:?}"),
        Err(e) => errors(&e),
    }
}

#[test]
fn sha1_md5_and_crc_keys() {
    let (k, d) = authkeys::parse(
        "authkeys",
        "# keys\nauth 3\n1 md5 Hello!\n2 crc\n3 sha1 labsecret # rotated\n",
    )
    .unwrap();
    assert_eq!(k.active, 3);
    assert_eq!(k.keys[&1], Method::Md5(b"Hello!".to_vec()));
    assert_eq!(k.keys[&2], Method::Crc);
    assert_eq!(k.keys[&3], Method::Sha1(b"labsecret".to_vec()));
    assert!(d.is_empty(), "{d:?}");
}

#[test]
fn crc_warns_and_takes_no_key() {
    let (k, d) = authkeys::parse("authkeys", "auth 1\n1 crc extra\n").unwrap();
    assert_eq!(k.keys[&1], Method::Crc);
    let d: Vec<String> = d.iter().map(|x| x.to_string()).collect();
    assert_eq!(
        d,
        vec![
            "authkeys:1: warning: auth uses crc, which does not authenticate anything; use sha1 with a secret",
            "authkeys:2: warning: key 1: crc takes no key; the key is ignored",
        ]
    );
}

#[test]
fn auth_line_is_required() {
    assert_eq!(
        parse_errors("1 sha1 x\n"),
        vec!["authkeys: no \"auth N\" line: say which key signs outgoing packets"]
    );
}

#[test]
fn auth_index_must_exist() {
    assert_eq!(
        parse_errors("auth 2\n1 sha1 x\n"),
        vec!["authkeys:1: auth 2: there is no key 2 in this file"]
    );
}

#[test]
fn sha1_and_md5_need_a_key() {
    assert_eq!(
        parse_errors("auth 1\n1 sha1\n2 md5\n"),
        vec![
            "authkeys:2: key 1: sha1 needs a key (1 sha1 SECRET)",
            "authkeys:3: key 2: md5 needs a key (2 md5 SECRET)",
        ]
    );
}

/// heartbeat reads keys with sscanf("%d%s%s") and signs with the first
/// word (measured: it starts); both sides must use the same secret.
#[test]
fn a_key_with_spaces_uses_its_first_word_as_heartbeat_does() {
    let (k, notes) = authkeys::parse("authkeys", "auth 1\n1 sha1 two words\n").unwrap();
    assert_eq!(k.keys[&1], Method::Sha1(b"two".to_vec()));
    assert_eq!(
        notes.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        vec![
            "authkeys:2: warning: key 1: the key has spaces; as heartbeat does, only its first \
             word \"two\" is used (write the key as one word)"
        ]
    );
}

/// heartbeat's MAXAUTH is 16: `auth 0` runs (measured).
#[test]
fn key_index_zero_is_accepted_as_heartbeat_does() {
    let (k, _) = authkeys::parse("authkeys", "auth 0\n0 sha1 x\n").unwrap();
    assert_eq!(k.active, 0);
    // And the codec signs and checks with key 0.
    let mut m = harust::wire::Message::new("status");
    m.add_str("src", "node-a").add_hex("seq", 1);
    let pkt = harust::wire::encode(&m, &k);
    let back = harust::wire::decode(&pkt, &k).expect("decodes with key 0");
    assert_eq!(back.get_str("src"), Some("node-a"));
}

#[test]
fn unknown_method_suggests() {
    assert_eq!(
        parse_errors("auth 1\n1 sha2 x\n"),
        vec![
            "authkeys:2: key 1: unknown method \"sha2\" (use sha1, md5 or crc) (did you mean \"sha1\"?)"
        ]
    );
}

#[test]
fn index_range_and_duplicates() {
    assert_eq!(
        parse_errors("auth 16\n16 sha1 x\n1 sha1 a\n1 md5 b\nauth 1\naut 1\n"),
        vec![
            "authkeys:1: auth: \"16\" is not a key index (0 to 15)",
            "authkeys:2: expected \"auth N\" or \"N METHOD [KEY]\" with N from 0 to 15, not \"16\"",
            "authkeys:4: key 1 is defined twice (first on line 3)",
            "authkeys:6: expected \"auth N\" or \"N METHOD [KEY]\" with N from 0 to 15, not \"aut\" (did you mean \"auth\"?)",
        ]
    );
}

#[test]
fn authkeys_mode_must_be_0600() {
    let dir = write_dir(HA_CF, AUTHKEYS, HARESOURCES);
    let ak = dir.path().join("authkeys");
    std::fs::set_permissions(&ak, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = harust::config::load(dir.path(), "node-a").unwrap_err();
    let e = errors(&err);
    let shown = ak.display();
    assert_eq!(
        e[0],
        format!(
            "{shown}: mode 0644 is too open; it must be 0600 and owned by root (chmod 600 {shown})"
        )
    );
    // Group-only bits are too open as well; 0400 is fine.
    assert!(authkeys::check_permissions("k", 0o100640, 0, 0).is_some());
    assert!(authkeys::check_permissions("k", 0o100400, 0, 0).is_none());
}

#[test]
fn authkeys_must_be_owned_by_root() {
    let dir = write_dir(HA_CF, AUTHKEYS, HARESOURCES);
    let ak = dir.path().join("authkeys");
    let shown = ak.display();
    if my_uid(dir.path()) == 0 {
        // As root: hand the file to nobody and see it refused.
        std::os::unix::fs::chown(&ak, Some(65534), Some(65534)).unwrap();
        let err = harust::config::load(dir.path(), "node-a").unwrap_err();
        assert_eq!(
            errors(&err),
            vec![format!(
                "{shown}: owned by uid 65534; it must be owned by root with mode 0600 (chown root: {shown})"
            )]
        );
        std::os::unix::fs::chown(&ak, Some(0), Some(0)).unwrap();
        assert!(harust::config::load(dir.path(), "node-a").is_ok());
    } else {
        // Unprivileged: our own file is not root's.
        let uid = my_uid(dir.path());
        assert_eq!(
            authkeys::check_file_permissions(&ak, 0).map(|d| d.to_string()),
            Some(format!(
                "{shown}: owned by uid {uid}; it must be owned by root with mode 0600 (chown root: {shown})"
            ))
        );
    }
}

#[test]
fn missing_authkeys_is_reported() {
    let dir = write_dir(HA_CF, AUTHKEYS, HARESOURCES);
    std::fs::remove_file(dir.path().join("authkeys")).unwrap();
    let err = config_util::load(dir.path(), "node-a").unwrap_err();
    assert_eq!(
        errors(&err),
        vec![format!(
            "{}/authkeys: cannot read: No such file or directory (os error 2)",
            dir.path().display()
        )]
    );
}
