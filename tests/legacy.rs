//! `mailha import-legacy`: the 2014 kit's `etc/ha_conf.ini`, as described in
//! `shared/seed/original-behaviour.md`, converted to `mailha.toml`.

use assert_cmd::Command;
use mailha::legacy;
use predicates::prelude::*;
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/legacy")
        .join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap()
}

fn mailha() -> Command {
    Command::cargo_bin("mailha").unwrap()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Everything in `dir` but what the test put there: the importer must
/// leave no temporary file behind.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---- the realistic file -------------------------------------------------

#[test]
fn a_typical_2in1_install_converts_to_this_config() {
    let im = legacy::import(Path::new("etc/ha_conf.ini"), &read("ha_conf.ini")).unwrap();
    insta::assert_snapshot!("typical_2in1_toml", im.toml);
    let report: Vec<String> = im.unmapped.iter().map(ToString::to_string).collect();
    insta::assert_snapshot!("typical_2in1_unmapped", report.join("\n"));
    assert_eq!(im.disabled_examples, 3, "the three ####### KEY= examples");
}

#[test]
fn the_converted_config_passes_check() {
    let im = legacy::import(Path::new("etc/ha_conf.ini"), &read("ha_conf.ini")).unwrap();
    let loaded = mailha::config::load_str(Path::new("mailha.toml"), &im.toml, Some(0o600))
        .unwrap_or_else(|e| panic!("{e}\n---\n{}", im.toml));
    let c = &loaded.config;
    assert_eq!(c.cluster.name, "acme");
    assert_eq!(c.vip.nic, "eth0");
    assert_eq!(c.vip.label.as_deref(), Some("0"));
    assert_eq!(c.storage.mounts.len(), 3);
    assert!(
        c.storage.lease.is_some(),
        "EYOU_DISK_XT_STATUS=1 keeps a guard"
    );
}

#[test]
fn the_password_goes_to_the_config_and_nowhere_else() {
    let im = legacy::import(Path::new("etc/ha_conf.ini"), &read("ha_conf.ini")).unwrap();
    assert!(im.toml.contains("password = \"s3cret&pass\""));
    assert!(
        im.unmapped
            .iter()
            .all(|u| !u.to_string().contains("s3cret"))
    );
}

// ---- hostile files ------------------------------------------------------

/// Writes fixture `name` into `dir` with `@MARKER@` pointing at
/// `dir/marker`, and returns (input, marker).
fn hostile_in(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let marker = dir.join("marker");
    let text = read(&format!("hostile/{name}")).replace("@MARKER@", &marker.to_string_lossy());
    let input = dir.join(name);
    std::fs::write(&input, text).unwrap();
    (input, marker)
}

/// (fixture, line, key) the importer must name.
const HOSTILE: &[(&str, usize, &str)] = &[
    ("vip_command_substitution.ini", 7, "EMAIL_VIP"),
    ("vip_rm_rf.ini", 7, "EMAIL_VIP"),
    ("ping_gw_backticks.ini", 8, "HA_PING_GW"),
    ("command_after_value.ini", 8, "SSH_PORT"),
    ("disk_uuid_substitution.ini", 9, "EYOU_DISK_XT"),
    ("mount_semicolon.ini", 8, "DISK_MOUNT_1"),
    ("mount_pipe.ini", 8, "DISK_MOUNT_1"),
    ("recipients_ampersand.ini", 8, "TO"),
];

#[test]
fn every_hostile_file_is_refused_naming_its_line_and_nothing_is_written() {
    for (name, line, key) in HOSTILE {
        let dir = tempfile::tempdir().unwrap();
        let (input, marker) = hostile_in(dir.path(), name);
        let out = dir.path().join("mailha.toml");
        mailha()
            .arg("import-legacy")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(format!("{name}:{line}: {key}: ")))
            .stderr(predicate::str::contains("nothing written"));
        assert!(!out.exists(), "{name}: output written");
        assert!(!marker.exists(), "{name}: the substitution ran");
        assert_eq!(entries(dir.path()), [*name], "{name}: left files behind");
    }
}

#[test]
fn the_marker_fixtures_would_have_run_under_the_original_kit() {
    // Validates the test above: sourcing these files, as the original kit
    // did, creates the marker; so its absence above means something.
    for name in [
        "vip_command_substitution.ini",
        "ping_gw_backticks.ini",
        "command_after_value.ini",
        "disk_uuid_substitution.ini",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (input, marker) = hostile_in(dir.path(), name);
        let st = std::process::Command::new("/bin/sh")
            .args(["-c", ". \"$1\"", "sh"])
            .arg(&input)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "{name}");
        assert!(marker.exists(), "{name}: sourcing it should have run touch");
    }
}

#[test]
fn the_library_reports_the_same_refusal_without_any_io() {
    let text = read("hostile/vip_rm_rf.ini");
    let e = legacy::import(Path::new("ha_conf.ini"), &text).unwrap_err();
    assert_eq!(
        e.to_string(),
        "ha_conf.ini:7: EMAIL_VIP: $(rm -rf /) is a command substitution, refused here; \
         this file is read as data and nothing was run"
    );
}

// ---- the command line ---------------------------------------------------

#[test]
fn import_writes_a_0600_file_and_lists_what_it_could_not_map() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mailha.toml");
    mailha()
        .arg("import-legacy")
        .arg(fixture("ha_conf.ini"))
        .args(["-o"])
        .arg(&out)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "written (mode 0600), ok: cluster acme",
        ))
        .stdout(predicate::str::contains(
            "line 17: EMAIL_SER_N=10.10.10.10 10.10.10.20: node names are placeholders",
        ))
        .stdout(predicate::str::contains(
            "line 33: SUBJECT=[${EMAIL_SJ}] mail HA switchover",
        ))
        .stdout(predicate::str::contains(
            "ignored 3 disabled example line(s)",
        ));
    assert_eq!(mode_of(&out), 0o600);
    assert_eq!(entries(dir.path()), ["mailha.toml"]);
    mailha().arg("check").arg(&out).assert().code(0);
}

#[test]
fn a_monitoring_platform_channel_is_listed_as_unmapped() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ha_conf.ini");
    let text = read("ha_conf.ini").replace("CHECK_SEND_MESSAGE=\"0\"", "CHECK_SEND_MESSAGE=\"1\"");
    std::fs::write(&input, text).unwrap();
    mailha()
        .arg("import-legacy")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("mailha.toml"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "line 26: CHECK_SEND_MESSAGE=1: monitoring-platform channel has no equivalent; \
             configure [alerts.webhook]",
        ))
        .stdout(predicate::str::contains("line 31: FROM_PASS: not imported"));
}

#[test]
fn an_existing_output_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mailha.toml");
    std::fs::write(&out, "# hand-written\n").unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    mailha()
        .arg("import-legacy")
        .arg(fixture("ha_conf.ini"))
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists; nothing written"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "# hand-written\n");

    mailha()
        .arg("import-legacy")
        .arg(fixture("ha_conf.ini"))
        .arg("-o")
        .arg(&out)
        .arg("--force")
        .assert()
        .code(0);
    assert!(std::fs::read_to_string(&out).unwrap().contains("[cluster]"));
    assert_eq!(mode_of(&out), 0o600, "the replacement is a new 0600 file");
    assert_eq!(entries(dir.path()), ["mailha.toml"]);
}

#[test]
fn a_result_that_fails_check_is_not_written() {
    // A VIP equal to a node's own address imports field by field, but
    // `mailha check` rejects it: the VIP must float.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ha_conf.ini");
    let text =
        read("ha_conf.ini").replace("EMAIL_VIP=\"172.16.100.10\"", "EMAIL_VIP=\"10.10.10.10\"");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("mailha.toml");
    mailha()
        .arg("import-legacy")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("vip.address"))
        .stderr(predicate::str::contains("does not pass `mailha check`"));
    assert!(!out.exists());
    assert_eq!(entries(dir.path()), ["ha_conf.ini"]);
}

#[test]
fn a_missing_input_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    mailha()
        .arg("import-legacy")
        .arg(dir.path().join("nope.ini"))
        .arg("-o")
        .arg(dir.path().join("mailha.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.ini"));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_missing_required_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ha_conf.ini");
    std::fs::write(&input, "EMAIL_SJ=\"ACME\"\n").unwrap();
    mailha()
        .arg("import-legacy")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("mailha.toml"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "ha_conf.ini: EMAIL_VIP: required but missing",
        ))
        .stderr(predicate::str::contains(
            "ha_conf.ini: EMAIL_SER_N: required but missing",
        ));
}

// ---- never panics -------------------------------------------------------

const VALID_START: &str = "EMAIL_VIP=\"172.16.100.10\"\nEMAIL_VIP_DEV=\"eth0:0\"\n\
    EMAIL_VIP_NET=\"24\"\nEMAIL_SER_N=\"10.10.10.10 10.10.10.20\"\n";

/// Text shaped like the original's file: assignments, quotes, comments,
/// substitutions, separators.
fn shellish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("EMAIL_VIP=".to_string()),
        Just("EMAIL_VIP_DEV=".to_string()),
        Just("EMAIL_SER_N=".to_string()),
        Just("DISK_MOUNT_1=".to_string()),
        Just("EYOU_DISK_XT_STATUS=".to_string()),
        Just("EYOU_DISK_XT=".to_string()),
        Just("HA_SERVER=".to_string()),
        Just("SUBJECT=".to_string()),
        Just("#######".to_string()),
        "[\"'`$(){}\\\\;|&#=, \\t\\n:/.-]{1,4}",
        "[a-zA-Z0-9_.]{1,12}",
        Just("10.10.10.10".to_string()),
        Just("-U ".to_string()),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = mailha::shellvars::parse(&text);
        let _ = legacy::import(Path::new("ha_conf.ini"), &text);
    }

    #[test]
    fn shell_shaped_text_never_panics_and_any_output_is_valid_toml(
        tail in shellish(),
        valid_start in any::<bool>(),
    ) {
        // A valid start lets the random tail reach the mapping code, not
        // only the "required but missing" path.
        let text = if valid_start { format!("{VALID_START}{tail}") } else { tail };
        let _ = mailha::shellvars::parse(&text);
        if let Ok(im) = legacy::import(Path::new("ha_conf.ini"), &text) {
            prop_assert!(
                mailha::config::parse_raw(&im.toml).is_ok(),
                "not a mailha.toml:\n{}", im.toml
            );
        }
    }

    #[test]
    fn a_substitution_in_the_vip_is_always_refused(cmd in "[ -~]{0,30}") {
        let text = format!(
            "EMAIL_VIP=\"$({cmd})\"\nEMAIL_VIP_DEV=eth0\nEMAIL_VIP_NET=24\n\
             EMAIL_SER_N=\"10.0.0.1 10.0.0.2\"\n"
        );
        prop_assert!(legacy::import(Path::new("ha_conf.ini"), &text).is_err());
    }
}
