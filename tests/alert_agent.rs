//! The built binary run as Pacemaker runs its alert agent: under the name
//! `alert_mailha`, with the event in hostile `CRM_alert_*` variables.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A temp dir holding an `alert_mailha` symlink to the built binary.
fn agent(dir: &Path) -> PathBuf {
    let link = dir.join("alert_mailha");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("mailha"), &link).unwrap();
    link
}

fn spooled(spool: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(spool.join("pending"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap())
        .collect()
}

#[test]
fn a_hostile_event_is_stored_as_data_and_nothing_runs() {
    let t = tempfile::tempdir().unwrap();
    let spool = t.path().join("spool");
    let marker = t.path().join("MARKER");
    let bin = agent(t.path());
    let m = marker.display();
    let out = Command::new(&bin)
        .env_clear()
        .env("MAILHA_SPOOL", &spool)
        .env("CRM_alert_kind", "resource")
        .env("CRM_alert_node", format!("$(touch {m})"))
        .env("CRM_alert_rsc", format!("`touch {m}`"))
        .env("CRM_alert_task", format!("monitor; touch {m}"))
        .env(
            "CRM_alert_desc",
            format!("line1\nSubject: x\r\n| touch {m}"),
        )
        .env("CRM_alert_rc", "7")
        .env("CRM_alert_target_rc", "0")
        .env("CRM_alert_attribute_value", "v".repeat(64 * 1024))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    assert!(!marker.exists(), "a value was executed");

    let events = spooled(&spool);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["kind"], "resource");
    assert_eq!(e["node"], format!("$(touch {m})"));
    assert_eq!(e["rsc"], format!("`touch {m}`"));
    assert_eq!(e["task"], format!("monitor; touch {m}"));
    assert_eq!(e["desc"], format!("line1\\nSubject: x\\r\\n| touch {m}"));
    assert_eq!(e["rc"], 7);
    assert!(e["attribute_value"].as_str().unwrap().len() < 2048);
}

#[test]
fn the_spool_is_private_and_each_call_adds_one_file() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let spool = t.path().join("spool");
    let bin = agent(t.path());
    for node in ["mx1", "mx2", "mx1"] {
        let st = Command::new(&bin)
            .env("MAILHA_SPOOL", &spool)
            .env("CRM_alert_kind", "node")
            .env("CRM_alert_node", node)
            .env("CRM_alert_desc", "lost")
            .status()
            .unwrap();
        assert!(st.success());
    }
    let nodes: Vec<_> = spooled(&spool)
        .iter()
        .map(|e| e["node"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(nodes, ["mx1", "mx2", "mx1"], "ordered as recorded");
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn run_by_hand_without_an_event_it_refuses_and_records_nothing() {
    let t = tempfile::tempdir().unwrap();
    let spool = t.path().join("spool");
    let out = Command::new(agent(t.path()))
        .env_remove("CRM_alert_kind")
        .env("MAILHA_SPOOL", &spool)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CRM_alert_kind"));
    assert!(!spool.exists());
}

#[test]
fn an_unwritable_spool_fails_loudly() {
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let out = Command::new(agent(t.path()))
        .env("MAILHA_SPOOL", file.join("spool"))
        .env("CRM_alert_kind", "node")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}
