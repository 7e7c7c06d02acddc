//! The man pages the package ships: `harust generate-docs` writes harust(8)
//! and one page per visible subcommand, all in section 8 (the binary is in
//! /usr/sbin), and the hand-written pages refer to them there.

use std::path::Path;
use std::process::Command;

const HARUST: &str = env!("CARGO_BIN_EXE_harust");

fn generate(dir: &Path) {
    let out = Command::new(HARUST)
        .arg("generate-docs")
        .arg(dir)
        .output()
        .expect("run harust generate-docs");
    assert!(
        out.status.success(),
        "harust generate-docs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generated_pages_are_in_section_8_one_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for want in [
        "harust.8",
        "harust-daemon.8",
        "harust-status.8",
        "harust-standby.8",
        "harust-takeover.8",
        "harust-reload.8",
        "harust-metrics.8",
        "harust-check-config.8",
        "harust-release-local.8",
        "harust-fence-confirm.8",
        "harust-fence-run.8",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert!(
        names.iter().all(|n| n.ends_with(".8")),
        "every page in section 8: {names:?}"
    );
    // The packaging-only subcommand and clap's `help` get no page.
    assert!(
        !names
            .iter()
            .any(|n| n.contains("generate-docs") || n.contains("-help")),
        "{names:?}"
    );
    let top = std::fs::read_to_string(dir.path().join("man/harust.8")).unwrap();
    assert!(top.contains(".TH harust 8"), "title line: {top}");
    // The SUBCOMMANDS section points at the subcommands' own pages.
    assert!(top.contains("harust\\-status(8)"), "{top}");
}

#[test]
fn hand_written_pages_and_the_unit_refer_to_section_8() {
    let top = Path::new(env!("CARGO_MANIFEST_DIR"));
    for page in ["ha.cf.5", "authkeys.5", "haresources.5"] {
        let text = std::fs::read_to_string(top.join("docs/man").join(page)).unwrap();
        assert!(text.contains(".BR harust (8)"), "{page} has no harust(8)");
        assert!(
            !text
                .lines()
                .any(|l| l.contains("harust") && l.contains("(1)")),
            "{page} still refers to a harust page in section 1"
        );
    }
    let unit = std::fs::read_to_string(top.join("units/harust.service")).unwrap();
    assert!(
        unit.contains("Documentation=man:harust(8) "),
        "harust.service's Documentation="
    );
}
