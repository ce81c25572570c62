//! `mailha apply` against a saved CIB: the real cibadmin, crm_diff,
//! crm_verify and crm_simulate, pointed at a file with CIB_file instead of
//! a live cluster.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn mailha(cib: &Path, config: &Path, args: &[&str]) -> std::process::Output {
    // The config digests are keyed with the cluster's authkey: a test key
    // beside the saved CIB.
    let key = cib.with_file_name("authkey");
    if !key.exists() {
        std::fs::write(&key, [7u8; 256]).unwrap();
    }
    run_with_deadline(
        Command::new(env!("CARGO_BIN_EXE_mailha"))
            .env("CIB_file", cib)
            .env("MAILHA_AUTHKEY", &key)
            .arg("--config")
            .arg(config)
            .args(args),
        Duration::from_secs(60),
    )
}

fn tool(args: &[&str], cib: Option<&Path>) -> String {
    let mut c = Command::new(args[0]);
    c.args(&args[1..]);
    if let Some(f) = cib {
        c.env("CIB_file", f);
    }
    let o = run_with_deadline(&mut c, Duration::from_secs(60));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Both nodes online, reaching the ping target, everything started where
/// the scheduler puts it.
fn run_cluster(cib: &Path, dir: &Path) {
    let mut s = std::fs::read_to_string(cib).unwrap();
    let states: String = (1..=2)
        .map(|i| {
            format!(
                "<node_state id=\"{i}\" uname=\"node{i}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\">\
                 <transient_attributes id=\"{i}\"><instance_attributes id=\"status-{i}\">\
                 <nvpair id=\"status-{i}-pingd\" name=\"pingd\" value=\"1000\"/></instance_attributes></transient_attributes></node_state>"
            )
        })
        .collect();
    s = s.replacen("<cib ", "<cib have-quorum=\"1\" dc-uuid=\"1\" ", 1);
    s = s.replace("<status/>", &format!("<status>{states}</status>"));
    let input = dir.join("online.xml");
    std::fs::write(&input, s).unwrap();
    tool(
        &[
            "crm_simulate",
            "-x",
            input.to_str().unwrap(),
            "-S",
            "-O",
            cib.to_str().unwrap(),
        ],
        None,
    );
}

/// The actions of crm_simulate's "Transition Summary" section.
fn transition_actions(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with("Transition Summary:"))
        .skip(1)
        .take_while(|l| !l.starts_with("Executing Cluster Transition:"))
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// A temporary directory with an empty saved CIB and `config`.
fn empty_cib_and(config: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, tool(&["cibadmin", "--empty"], None)).unwrap();
    let conf = dir.path().join("mailha.toml");
    std::fs::write(&conf, config).unwrap();
    (dir, cib, conf)
}

#[test]
fn apply_installs_the_config_then_changes_only_what_changed() {
    if !have_crm_verify() {
        return;
    }
    let (dir, cib, conf) = empty_cib_and(BASE);

    // First apply: everything is new.
    let o = mailha(&cib, &conf, &["apply"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&cib).unwrap();
    assert!(text.contains("id=\"svc-postfix\"") && text.contains("mailha-config-digest"));

    // Applying the same file again is a no-op.
    let o = mailha(&cib, &conf, &["apply"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "the cluster already runs this configuration"
    );

    // With the cluster running, add a service.
    run_cluster(&cib, dir.path());
    let o = mailha(&cib, &conf, &["status"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("OK: mail runs on node1"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let before = tool(&["crm_simulate", "-x", cib.to_str().unwrap(), "-S"], None);
    assert!(
        transition_actions(&before).is_empty(),
        "settled before the change:\n{before}"
    );
    std::fs::write(
        &conf,
        format!(
            "{BASE}\n[services.rspamd]\nstart = [\"/usr/bin/rspamd\"]\ndepends_on = [\"postfix\"]\n"
        ),
    )
    .unwrap();

    // Until it is applied, status shows this node's file has drifted.
    let drift = |cib: &Path, conf: &Path| {
        let o = mailha(cib, conf, &["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["config"]["drift"].as_bool().unwrap()
    };
    assert!(drift(&cib, &conf));

    // A dry run verifies and shows the diff but changes nothing.
    let unchanged = std::fs::read_to_string(&cib).unwrap();
    let o = mailha(&cib, &conf, &["apply", "--dry-run"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("+    <primitive id=\"svc-rspamd\""));
    assert_eq!(std::fs::read_to_string(&cib).unwrap(), unchanged);

    let o = mailha(&cib, &conf, &["apply"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!drift(&cib, &conf), "applied: no drift");

    // An operator's watch switch survives the next apply.
    let o = mailha(&cib, &conf, &["watch", "off", "postfix"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(
        &conf,
        std::fs::read_to_string(&conf).unwrap() + "\n[policy]\nfailure_timeout = \"20min\"\n",
    )
    .unwrap();
    let o = mailha(&cib, &conf, &["apply"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = mailha(&cib, &conf, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["watch_off"], serde_json::json!(["postfix"]));
    let o = mailha(&cib, &conf, &["watch", "off", "postfx"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean \"postfix\""));
    let transition = tool(&["crm_simulate", "-x", cib.to_str().unwrap(), "-S"], None);
    let actions = transition_actions(&transition);
    assert_eq!(
        actions.len(),
        1,
        "only the new service starts:\n{transition}"
    );
    assert!(
        actions[0].contains("Start") && actions[0].contains("svc-rspamd"),
        "{actions:?}"
    );
}

#[test]
fn apply_refuses_a_config_that_does_not_load_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, "<cib/>").unwrap();
    let conf = dir.path().join("mailha.toml");
    std::fs::write(&conf, BASE.replace("prefix = 24", "prefix = 99")).unwrap();
    let o = mailha(&cib, &conf, &["apply"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&cib).unwrap(), "<cib/>");
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sync_state(cib: &Path, conf: &Path) -> serde_json::Value {
    let o = mailha(cib, conf, &["status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["config_sync"].clone()
}

/// Issue 21: a node's file that is an older copy is behind; apply from it
/// refuses without --force and shows what it would revert; `config pull`
/// gives the running file back byte for byte from the CIB alone.
#[test]
fn an_older_file_is_behind_apply_refuses_it_and_pull_brings_the_running_one_back() {
    if !have_crm_verify() {
        return;
    }
    let first = format!("# first generation\n{BASE}");
    let (dir, cib, conf) = empty_cib_and(&first);
    let o = mailha(&cib, &conf, &["apply"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("applied (generation 1)"), "{}", out(&o));
    assert_eq!(sync_state(&cib, &conf)["state"], "same");

    // The VIP moves; comments, tabs and trailing spaces are part of it.
    let second = format!(
        "# second generation: the VIP moved \t \n{}",
        BASE.replace("198.51.100.100", "198.51.100.101")
    );
    assert_ne!(second, first);
    std::fs::write(&conf, &second).unwrap();
    let o = mailha(&cib, &conf, &["apply"]);
    assert!(o.status.success(), "{}", out(&o));
    let s = sync_state(&cib, &conf);
    assert_eq!(s["running_generation"], 2, "{s}");
    assert!(s["applied_by"].as_str().unwrap().contains('@'), "{s}");
    assert!(s["applied_at"].as_str().unwrap().ends_with('Z'), "{s}");

    // The older copy: behind; apply refuses and names what it reverts.
    std::fs::write(&conf, &first).unwrap();
    let s = sync_state(&cib, &conf);
    assert_eq!(
        (s["state"].as_str(), s["generation"].as_u64()),
        (Some("behind"), Some(1)),
        "{s}"
    );
    let human = out(&mailha(&cib, &conf, &["status"]));
    assert!(
        human.contains("mailha.toml here is generation 1, behind 2: mailha config pull")
            && human.contains("config: generation 2 by "),
        "{human}"
    );
    let before = std::fs::read_to_string(&cib).unwrap();
    let o = mailha(&cib, &conf, &["apply"]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    let said = out(&o);
    assert!(
        said.contains("generation 1, older than what runs")
            && said.contains("-address = \"198.51.100.101\"")
            && said.contains("+address = \"198.51.100.100\"")
            && said.contains("--force"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&cib).unwrap(),
        before,
        "nothing changed"
    );

    // pull: the diff first (a dry run writes nothing), then the file.
    let o = mailha(&cib, &conf, &["config", "pull", "--dry-run"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(
        out(&o).contains("+address = \"198.51.100.101\""),
        "{}",
        out(&o)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), first);
    let o = mailha(&cib, &conf, &["config", "pull"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        second,
        "byte for byte"
    );
    assert!(
        !dir.path().join("mailha.toml.unapplied").exists(),
        "an older generation is no loss"
    );

    // A node whose disk lost the file gets it back from the cluster alone.
    std::fs::remove_file(&conf).unwrap();
    assert_eq!(sync_state(&cib, &conf)["state"], "missing");
    let o = mailha(&cib, &conf, &["config", "pull"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), second);

    // Edits nobody applied are kept aside by a pull.
    std::fs::write(&conf, format!("{second}# mine\n")).unwrap();
    assert_eq!(sync_state(&cib, &conf)["state"], "ahead");
    let o = mailha(&cib, &conf, &["config", "pull"]);
    assert!(o.status.success(), "{}", out(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mailha.toml.unapplied")).unwrap(),
        format!("{second}# mine\n")
    );

    // --force applies the older file anyway: a new generation.
    std::fs::write(&conf, &first).unwrap();
    let o = mailha(&cib, &conf, &["apply", "--force"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("applied (generation 3)"), "{}", out(&o));
    assert_eq!(sync_state(&cib, &conf)["state"], "same");
}
