//! `mailha status` on states produced by Pacemaker's own tools
//! (tests/fixtures/status/make.sh: crm_simulate + crm_mon on the CIB
//! mailha renders for examples/postfix.toml).

mod common;
use common::*;
use mailha::status::{health, parse, render_human};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/status").join(name)).unwrap()
}

#[test]
fn a_healthy_cluster_reads_ok_with_the_mail_on_one_node() {
    let st = parse(&fixture("healthy.xml")).unwrap();
    assert_eq!(health(&st), "OK");
    assert_eq!(st.active_node.as_deref(), Some("mail1"));
    assert!(st.quorate && st.stonith_enabled);
    assert!(st.failures.is_empty() && st.leftover_moves.is_empty());
    insta::assert_snapshot!(
        "status-healthy",
        render_human(&st, Some("198.51.100.100/24"))
    );
}

#[test]
fn a_failed_daemon_and_a_leftover_ban_need_attention() {
    let st = parse(&fixture("failed.xml")).unwrap();
    assert_eq!(health(&st), "DEGRADED");
    let postfix = st.resources.iter().find(|r| r.id == "svc-postfix").unwrap();
    assert!(postfix.failed);
    assert_eq!(postfix.fail_count, 1);
    assert_eq!(st.failures[0].resource, "svc-postfix");
    assert_eq!(
        st.leftover_moves.len(),
        1,
        "fence avoidance constraints are not leftovers"
    );
    assert_eq!(st.leftover_moves[0].node, "mail2");
    insta::assert_snapshot!(
        "status-failed",
        render_human(&st, Some("198.51.100.100/24"))
    );
}

#[test]
fn a_dead_node_shows_offline_and_the_mail_on_the_other() {
    let st = parse(&fixture("node1-down.xml")).unwrap();
    assert_eq!(st.active_node.as_deref(), Some("mail2"));
    assert!(!st.nodes[0].online);
    assert_eq!(health(&st), "DEGRADED");
    insta::assert_snapshot!("status-node1-down", render_human(&st, None));
}

#[test]
fn the_human_view_fits_80_columns() {
    for f in ["healthy.xml", "failed.xml", "node1-down.xml"] {
        let text = render_human(&parse(&fixture(f)).unwrap(), Some("198.51.100.100/24"));
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{f}: {line:?}");
        }
    }
}

#[test]
fn the_json_schema_is_stable() {
    let st = parse(&fixture("failed.xml")).unwrap();
    insta::assert_snapshot!(
        "status-json-failed",
        serde_json::to_string_pretty(&st).unwrap()
    );
}

#[test]
fn mailha_status_asks_the_real_crm_mon() {
    if !have_crm_verify() {
        return;
    }
    // CIB_file makes crm_mon read a saved CIB instead of a live cluster.
    let out = assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env(
            "CIB_file",
            repo().join("tests/fixtures/status/cib-failed.xml"),
        )
        .args(["--config"])
        .arg(repo().join("examples/postfix.toml"))
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with("DEGRADED: mail runs on mail1 (VIP 198.51.100.100/24)"),
        "{text}"
    );
    assert!(
        text.contains("leftover ban of svc-postfix on mail2"),
        "{text}"
    );
}

/// Debian 13's Pacemaker 3.0 prints the same states (make.sh with the
/// lab's trixie tree): the parser reads them to the same verdicts.
#[test]
fn pacemaker_30s_crm_mon_reads_to_the_same_verdicts() {
    let v3 = |name: &str| parse(&fixture(&format!("pacemaker-3.0/{name}"))).unwrap();
    let st = v3("healthy.xml");
    assert_eq!(health(&st), "OK");
    assert_eq!(st.active_node.as_deref(), Some("mail1"));
    assert!(st.quorate && st.stonith_enabled);
    assert!(st.failures.is_empty() && st.leftover_moves.is_empty());
    assert!(st.nodes.iter().all(|n| n.online));

    let st = v3("failed.xml");
    assert_eq!(health(&st), "DEGRADED");
    let postfix = st.resources.iter().find(|r| r.id == "svc-postfix").unwrap();
    assert!(postfix.failed);
    assert_eq!(postfix.fail_count, 1);
    assert_eq!(st.failures[0].resource, "svc-postfix");
    assert_eq!(st.leftover_moves.len(), 1);
    assert_eq!(st.leftover_moves[0].node, "mail2");

    let st = v3("node1-down.xml");
    assert_eq!(st.active_node.as_deref(), Some("mail2"));
    assert!(!st.nodes[0].online);
    assert_eq!(health(&st), "DEGRADED");

    let st = v3("mail2-standby.xml");
    assert_eq!(st.active_node.as_deref(), Some("mail1"));
}

/// The keeper's answer to `status`, as a keeper that `role` and fenced
/// itself for `why` (if any) gives it.
fn keeper_says(role: &str, holds: bool, why: Option<&str>) -> mailha::lease::client::Status {
    serde_json::from_value(serde_json::json!({
        "pid": 812, "node": "mail1", "node_id": 1, "peer": "mail2", "peer_id": 2,
        "cluster": "mail", "device": "/dev/disk/by-label/lease", "role": role,
        "holds": holds, "wanted": holds, "released": !holds, "counter": 4711,
        "renewal_age_ms": 120, "io_stalled_ms": null, "peer_unchanged_ms": 300,
        "peer_dead": false, "peer_holding": false, "peer_fenced": false,
        "host_dead_ms": 4500, "renew_ms": 500, "fence_pending": null,
        "fences": [], "self_fenced": why
    }))
    .unwrap()
}

/// Pacemaker sees a node whose keeper fenced itself (or does not answer)
/// as online with its resources fine, yet that node can take nothing
/// over: status said OK while the mail had nowhere to go (issue 19).
#[test]
fn a_keeper_that_fenced_itself_or_does_not_answer_is_no_ok_cluster() {
    use mailha::status::KeeperView;
    let mut st = parse(&fixture("healthy.xml")).unwrap();
    let holding = keeper_says("holding", true, None);
    st.keeper = Some(KeeperView::of(Ok(&holding)));
    assert_eq!(health(&st), "OK");
    let view = render_human(&st, None);
    assert!(
        view.contains("lease keeper: holding, holds the data lease"),
        "{view}"
    );

    let fenced = keeper_says("fenced", false, Some("fence request 7 from the peer"));
    st.keeper = Some(KeeperView::of(Ok(&fenced)));
    assert_eq!(health(&st), "DEGRADED");
    let view = render_human(&st, None);
    assert!(
        view.contains("! lease keeper fenced itself, no takeover until restarted: fence"),
        "{view}"
    );

    // Idle against its will: Pacemaker runs the lease on mail1, whose
    // keeper holds nothing (restarted behind the cluster's back).
    let mut idle = KeeperView::of(Ok(&keeper_says("idle", false, None)));
    idle.judge(&st.resources);
    assert!(idle.idle_against_its_will);
    st.keeper = Some(idle);
    assert_eq!(health(&st), "DEGRADED");
    let view = render_human(&st, None);
    assert!(
        view.contains("! lease keeper idle: holds nothing, yet Pacemaker runs the lease"),
        "{view}"
    );
    // The same keeper on the node that does not run the lease is fine.
    let mut other = keeper_says("idle", false, None);
    other.node = "mail2".into();
    let mut idle = KeeperView::of(Ok(&other));
    idle.judge(&st.resources);
    assert!(!idle.idle_against_its_will);

    st.keeper = Some(KeeperView::of(Err("@mailha-lease: connection refused")));
    assert_eq!(health(&st), "DEGRADED");
    let view = render_human(&st, None);
    assert!(view.contains("! lease keeper not answering"), "{view}");
    for l in view.lines() {
        assert!(l.chars().count() <= 80, "{l}");
    }
}

/// `mailha maintenance on postfix` as the CIB keeps it (the resource's
/// `maintenance` meta-attribute, set by the real crm_resource): status
/// names it and the cluster is not OK while it lasts.
#[test]
fn a_service_in_maintenance_is_shown_loudly() {
    if !have_crm_verify() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::copy(repo().join("tests/fixtures/status/cib-healthy.xml"), &cib).unwrap();
    let set = std::process::Command::new("crm_resource")
        .env("CIB_file", &cib)
        .args(["--resource", "svc-postfix", "--meta", "--set-parameter"])
        .args(["maintenance", "--parameter-value", "true"])
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    let out = assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env("CIB_file", &cib)
        .arg("--config")
        .arg(repo().join("examples/postfix.toml"))
        .arg("status")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("DEGRADED: mail runs on mail1"), "{text}");
    assert!(
        text.contains("MAINTENANCE: svc-postfix is neither managed nor monitored"),
        "{text}"
    );
}
