//! `cluster::patch` against a saved CIB with the real crm_diff and
//! cibadmin (`CIB_file`): a change that landed after the CIB was read makes
//! the patch fail instead of being merged over (issue 21: two operators
//! applying at once, one wins, the other is told).
//!
//! One test in this file: it points the whole process at its saved CIB.

mod common;
use common::*;
use mailha::cib::xml::El;
use mailha::cluster;
use std::process::Command;
use std::time::Duration;

fn crm_attribute(name: &str, value: &str) {
    let o = run_with_deadline(
        Command::new("crm_attribute").args([
            "--type",
            "crm_config",
            "--name",
            name,
            "--update",
            value,
        ]),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn with_property(live: &El, name: &str) -> El {
    let mut new = live.clone();
    let crm = new
        .find_mut("configuration")
        .unwrap()
        .find_mut("crm_config")
        .unwrap();
    crm.children.push(
        El::new("cluster_property_set").attr("id", "mailha").child(
            El::new("nvpair")
                .attr("id", format!("mailha-{name}"))
                .attr("name", name)
                .attr("value", "1"),
        ),
    );
    new
}

#[test]
fn a_patch_computed_before_another_change_landed_is_refused_and_changes_nothing() {
    if !have_crm_verify() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    let empty = run_with_deadline(
        Command::new("cibadmin").arg("--empty"),
        Duration::from_secs(30),
    );
    std::fs::write(&cib, &empty.stdout).unwrap();
    // SAFETY: the only test in this binary; set before any thread reads it.
    unsafe { std::env::set_var("CIB_file", &cib) };
    let scratch = tempfile::tempdir().unwrap();

    // Two operators read the same CIB; the other one's change lands first.
    let live = cluster::query().unwrap();
    crm_attribute("other-operator", "was-here");
    let mine = with_property(&live, "mine");
    match cluster::patch(&live, &mine, scratch.path()) {
        Err(cluster::ClusterError::Moved) => {}
        other => panic!("the patch must be refused, got {other:?}"),
    }
    let now = std::fs::read_to_string(&cib).unwrap();
    assert!(now.contains("other-operator"), "the change that won stays");
    assert!(
        !now.contains("mailha-mine"),
        "the late patch changed nothing:\n{now}"
    );

    // Read again: the patch lands.
    let live = cluster::query().unwrap();
    cluster::patch(&live, &with_property(&live, "mine"), scratch.path()).unwrap();
    let now = std::fs::read_to_string(&cib).unwrap();
    assert!(
        now.contains("mailha-mine") && now.contains("other-operator"),
        "{now}"
    );
    let (_, e1, _) = cluster::version(&live);
    let (_, e2, _) = cluster::version(&El::parse(&now).unwrap());
    assert!(e2 > e1, "the epoch moved on: {e1} -> {e2}");
}
