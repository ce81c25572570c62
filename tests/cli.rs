//! The command line as an administrator meets it.

mod common;
use assert_cmd::Command;
use common::*;
use predicates::prelude::*;

fn mailha() -> Command {
    Command::cargo_bin("mailha").unwrap()
}

#[test]
fn version_and_help_on_every_verb() {
    mailha()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("mailha "));
    for verb in [
        &["check"][..],
        &["render"],
        &["render", "cib"],
        &["render", "corosync"],
    ] {
        mailha()
            .args(verb)
            .arg("--help")
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage"));
    }
}

#[test]
fn check_prints_a_one_line_summary_and_exits_0() {
    let out = mailha()
        .args(["check"])
        .arg(repo().join("examples/postfix.toml"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = String::from_utf8(out).unwrap();
    assert_eq!(s.lines().count(), 1, "{s}");
    assert!(
        s.contains("nodes mail1 and mail2") && s.contains("6 services") && s.contains("1 mount"),
        "{s}"
    );
}

#[test]
fn check_of_a_broken_file_exits_2_naming_file_line_column_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mailha.toml");
    let text = BASE.replace("prefix = 24", "prefix = 40");
    std::fs::write(&f, &text).unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    mailha()
        .arg("check")
        .arg(&f)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}:{}:10: error: vip.prefix: 40 is outside 1..32",
            f.display(),
            line_of(&text, "prefix = 40")
        )));
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(before.len(), after.len(), "check changes nothing");
}

#[test]
fn a_missing_config_is_a_clear_error() {
    mailha()
        .args(["--config", "/nonexistent/mailha.toml", "render", "cib"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/nonexistent/mailha.toml: cannot read",
        ));
}

#[test]
fn render_prints_the_same_bytes_every_time() {
    let run = |what: &str| {
        mailha()
            .arg("--config")
            .arg(repo().join("examples/eyou.toml"))
            .args(["render", what])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(run("cib"), run("cib"));
    assert_eq!(run("corosync"), run("corosync"));
    assert!(
        String::from_utf8(run("corosync"))
            .unwrap()
            .contains("two_node: 1")
    );
}

#[test]
fn the_config_path_can_come_from_the_environment() {
    mailha()
        .env("MAILHA_CONFIG", repo().join("examples/gateway.toml"))
        .arg("check")
        .assert()
        .success()
        .stdout(predicate::str::contains("profile gateway"));
}

/// What the units' drop-in runs as `ExecStopPost=` (`unit-ended %n`): it
/// never fails the unit's stop, never reports a stop that was asked for,
/// and reports nothing the agent did not arm (none is armed on this
/// machine, which runs no cluster).
#[test]
fn a_units_end_is_reported_only_when_it_ended_of_itself_and_was_armed() {
    // Stopped as asked: not a word.
    mailha()
        .args(["unit-ended", "postfix@-.service"])
        .env("SERVICE_RESULT", "success")
        .env("EXIT_CODE", "exited")
        .env("EXIT_STATUS", "0")
        .assert()
        .success()
        .stderr("");
    // Killed, but nothing armed it: said, and left to the monitor.
    mailha()
        .args(["unit-ended", "mailha-test-never-armed.service"])
        .env("SERVICE_RESULT", "signal")
        .env("EXIT_CODE", "killed")
        .env("EXIT_STATUS", "KILL")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "mailha-test-never-armed.service killed by signal KILL; not armed",
        ));
    // A name no unit has: refused, and still no failed stop.
    mailha()
        .args(["unit-ended", "../../etc/passwd"])
        .env("SERVICE_RESULT", "signal")
        .assert()
        .success()
        .stderr(predicate::str::contains("unit-ended"));
}
