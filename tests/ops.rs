//! The day-2 verbs (`cleanup`, `maintenance`, `standby`/`online`,
//! `stop`/`start`) on saved CIBs (`CIB_file`) with Pacemaker's real tools:
//! what each would do, what it refuses (exit 2, the file unchanged), and
//! the changes the tools can make on a file. What needs a running
//! controller (a cleanup, a re-probe, the waits) is lab/tests/lab_ops.rs.

mod common;
use common::*;
use std::path::Path;

fn saved_cib(name: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(repo().join("tests/fixtures/status").join(name), f.path()).unwrap();
    f
}

fn mailha(cib: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env("CIB_file", cib)
        .arg("--config")
        .arg(repo().join("examples/postfix.toml"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn pcmk(cib: &Path, argv: &[&str]) {
    let o = std::process::Command::new(argv[0])
        .env("CIB_file", cib)
        .args(&argv[1..])
        .output()
        .unwrap();
    assert!(o.status.success(), "{argv:?}: {o:?}");
}

/// Runs the saved CIB through crm_simulate with `inject` (e.g. a failed
/// monitor), writing the outcome back to it.
fn simulate(cib: &Path, inject: &[&str]) {
    let out = cib.with_extension("sim");
    let mut argv = vec!["crm_simulate", "-x", cib.to_str().unwrap()];
    argv.extend_from_slice(inject);
    argv.extend_from_slice(&["-S", "-O", out.to_str().unwrap()]);
    let o = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap();
    assert!(o.status.success(), "{argv:?}: {o:?}");
    std::fs::rename(&out, cib).unwrap();
}

#[test]
fn cleanup_says_what_it_would_forget_and_refuses_unknown_names() {
    if !have_crm_verify() {
        return;
    }
    // Postfix's monitor failed on mail1; Pacemaker restarted it there.
    let f = saved_cib("cib-healthy.xml");
    simulate(f.path(), &["-i", "svc-postfix_monitor_2000@mail1=7"]);
    let before = std::fs::read_to_string(f.path()).unwrap();
    let (code, out, err) = mailha(f.path(), &["cleanup", "--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("would forget svc-postfix on mail1: ")
            && out.contains("monitor: not running")
            && out.contains("crm_resource --cleanup --resource svc-postfix --node mail1"),
        "{out}"
    );
    let (code, _, err) = mailha(f.path(), &["cleanup", "postfx"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no service or resource is named \"postfx\"")
            && err.contains("did you mean \"postfix\"")
            && err.contains("nothing was changed"),
        "{err}"
    );
    let (code, _, err) = mailha(f.path(), &["cleanup", "--node", "mail3"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no node is named \"mail3\""), "{err}");
    let (code, out, _) = mailha(f.path(), &["cleanup", "vip", "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["would_clear"], serde_json::json!([]), "nothing recorded");
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);
}

#[test]
fn maintenance_on_is_recorded_once_and_off_previews_the_recovery_it_hands_back() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let (code, out, err) = mailha(f.path(), &["maintenance", "on", "postfix"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("svc-postfix is in maintenance"), "{out}");
    let (code, out, _) = mailha(f.path(), &["maintenance", "on", "postfix"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("already in maintenance"), "{out}");
    // Postfix dies while in maintenance: Pacemaker records the failed
    // monitor and does nothing about it.
    simulate(f.path(), &["-i", "svc-postfix_monitor_2000@mail1=7"]);
    let before = std::fs::read_to_string(f.path()).unwrap();
    let (code, out, err) = mailha(
        f.path(),
        &["maintenance", "off", "postfix", "--dry-run", "--json"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let would = v["would_do"].to_string();
    assert!(
        would.contains("svc-postfix") && would.contains("recover"),
        "handing back recovers postfix: {v}"
    );
    assert!(
        v["commands"][1].to_string().contains("--delete-parameter"),
        "{v}"
    );
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);
    // The cluster's own maintenance mode, on a file.
    let (code, _, err) = mailha(f.path(), &["maintenance", "on"]);
    assert_eq!(code, Some(0), "{err}");
    let cib = std::fs::read_to_string(f.path()).unwrap();
    assert!(
        cib.contains(r#"name="maintenance-mode" value="true""#),
        "{cib}"
    );
    let (code, out, _) = mailha(f.path(), &["status"]);
    assert_eq!(code, Some(0));
    assert!(
        out.starts_with("DEGRADED") && out.contains("MAINTENANCE: the cluster"),
        "{out}"
    );
}

#[test]
fn a_standby_of_the_active_node_needs_somewhere_for_the_mail_to_go() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let before = std::fs::read_to_string(f.path()).unwrap();
    let (code, out, err) = mailha(f.path(), &["standby", "mail1", "--dry-run"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("the mail would move from mail1 to mail2")
            && out.contains("crm_attribute --node mail1 --name standby --update on"),
        "{out}"
    );
    let (code, out, _) = mailha(f.path(), &["standby", "mail2", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(!out.contains("would move"), "mail2 runs no mail: {out}");
    let (code, _, err) = mailha(f.path(), &["standby", "mial1"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("did you mean \"mail1\""), "{err}");
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);

    // mail2 without network: the mail would have nowhere to go.
    simulate(
        f.path(),
        &[
            "-i",
            "ping_monitor_2000@mail2=7",
            "-F",
            "ping_start_0@mail2=1",
        ],
    );
    let before = std::fs::read_to_string(f.path()).unwrap();
    let (code, _, err) = mailha(f.path(), &["standby", "mail1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("mail2 cannot take the mail over")
            && err.contains("network check (ping)")
            && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(f.path()).unwrap(), before);
}

#[test]
fn online_takes_a_node_out_of_standby_and_nothing_else() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let (code, out, _) = mailha(f.path(), &["online", "mail2"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("not in standby: nothing to do"), "{out}");
    pcmk(
        f.path(),
        &[
            "crm_attribute",
            "--node",
            "mail2",
            "--name",
            "standby",
            "--update",
            "on",
        ],
    );
    simulate(f.path(), &[]);
    let (code, out, _) = mailha(f.path(), &["online", "mail2", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("crm_attribute --node mail2 --name standby --update off"),
        "{out}"
    );
}

#[test]
fn stop_and_start_act_on_the_root_of_the_chain() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    let (code, out, _) = mailha(f.path(), &["stop", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("services first, the lease last")
            && out.contains("crm_resource --resource lease --meta --set-parameter target-role --parameter-value Stopped"),
        "{out}"
    );
    // On a file, the change lands and nothing acts on it: the wait runs
    // out and says so; the stack is left stopping (as asked).
    let (code, _, err) = mailha(f.path(), &["stop", "--wait=2s"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not done within 2s"), "{err}");
    let cib = std::fs::read_to_string(f.path()).unwrap();
    assert!(
        cib.contains(r#"name="target-role" value="Stopped""#),
        "{cib}"
    );
    let (code, out, _) = mailha(f.path(), &["start", "--dry-run"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("crm_resource --resource lease --meta --delete-parameter target-role"),
        "{out}"
    );
}

#[test]
fn history_reads_a_failure_and_its_recovery_from_pacemakers_own_record() {
    if !have_crm_verify() {
        return;
    }
    let f = saved_cib("cib-healthy.xml");
    simulate(f.path(), &["-i", "svc-postfix_monitor_2000@mail1=7"]);
    let spool = tempfile::tempdir().unwrap();
    let (code, out, err) = mailha(
        f.path(),
        &[
            "history",
            "--since",
            "1h",
            "--spool",
            spool.path().to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let incidents = v["incidents"].as_array().unwrap();
    let failed = incidents
        .iter()
        .find(|i| {
            i["cause"]
                .as_str()
                .is_some_and(|c| c.starts_with("svc-postfix monitor failed on mail1"))
        })
        .unwrap_or_else(|| panic!("no incident caused by postfix's failure: {v}"));
    assert!(
        failed["entries"]
            .to_string()
            .contains("svc-postfix started on mail1"),
        "the recovery is part of it: {failed}"
    );
    let (code, out, _) = mailha(
        f.path(),
        &["history", "--spool", spool.path().to_str().unwrap()],
    );
    assert_eq!(code, Some(0));
    assert!(out.contains("svc-postfix monitor failed on mail1"), "{out}");
    assert!(
        std::fs::read_dir(spool.path()).unwrap().next().is_none(),
        "history made no spool"
    );
}
