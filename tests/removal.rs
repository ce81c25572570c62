//! The package's prerm asks `mailha package may-remove`; its decision,
//! over crm_mon XML made by Pacemaker's own tools
//! (tests/fixtures/status/make.sh), and the keeper's answer.

use mailha::removal::{Cluster, Observed, Verdict, verdict};

fn status(fixture: &str) -> Cluster {
    let xml = std::fs::read_to_string(format!(
        "{}/tests/fixtures/status/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Cluster::Up(Box::new(mailha::status::parse(&xml).unwrap()))
}

fn on(node: &str, cluster: Cluster, keeper: Option<&str>) -> Verdict {
    verdict(&Observed {
        node: node.into(),
        cluster,
        keeper: keeper.map(String::from),
    })
}

fn refused(v: Verdict) -> String {
    match v {
        Verdict::Refuse(why) => why,
        Verdict::Allow => panic!("removal was allowed"),
    }
}

#[test]
fn the_active_node_running_the_mail_refuses_naming_the_resources() {
    let why = refused(on("mail1", status("healthy.xml"), None));
    assert!(
        why.contains("this node (mail1) is a cluster member"),
        "{why}"
    );
    for r in [
        "lease (ocf:mailha:lease)",
        "fs-data (ocf:mailha:storage)",
        "svc-postfix (ocf:mailha:service)",
    ] {
        assert!(why.contains(r), "{r} not named in: {why}");
    }
    assert!(!why.contains("vip"), "IPaddr2 is not mailha's: {why}");
    assert!(
        why.contains("crm_standby --node mail1 --update on"),
        "{why}"
    );
    assert!(why.contains("MAILHA_REMOVE_ANYWAY=yes"), "{why}");
}

#[test]
fn the_standby_running_the_peers_fence_device_refuses_too() {
    let why = refused(on("mail2", status("healthy.xml"), None));
    assert!(why.contains("fence-mail1 (stonith:fence_mailha)"), "{why}");
}

#[test]
fn a_node_in_standby_that_runs_nothing_of_mailhas_may_remove() {
    assert_eq!(
        on("mail2", status("mail2-standby.xml"), None),
        Verdict::Allow
    );
    // ... but the node that took everything over may not.
    refused(on("mail1", status("mail2-standby.xml"), None));
}

#[test]
fn a_node_that_left_the_cluster_may_remove() {
    assert_eq!(on("mail1", status("node1-down.xml"), None), Verdict::Allow);
    refused(on("mail2", status("node1-down.xml"), None));
}

#[test]
fn no_cluster_stack_no_keeper_may_remove() {
    assert_eq!(on("mail1", Cluster::NotRunning, None), Verdict::Allow);
}

#[test]
fn a_running_lease_keeper_refuses_even_without_the_stack() {
    let why = refused(on("mail1", Cluster::NotRunning, Some("holding")));
    assert!(
        why.contains("lease keeper runs on this node (role: holding)"),
        "{why}"
    );
    assert!(why.contains("systemctl stop mailha-lease"), "{why}");
}

#[test]
fn a_cluster_that_cannot_be_read_refuses() {
    let why = refused(on(
        "mail1",
        Cluster::Unknown("crm_mon: no result within 20s; killed".into()),
        None,
    ));
    assert!(why.contains("cannot tell"), "{why}");
}
