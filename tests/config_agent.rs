//! `ocf:mailha:config`: the config sync's catch-up as an OCF resource, on
//! a saved CIB (`CIB_file`) with the real Pacemaker tools (issue 21: a node
//! that missed an apply catches up when Pacemaker starts it there). Root
//! and ocf-tester needed (SKIPPED without them, FAILS in CI).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A node's files in a 0755 directory (ocf-tester also runs the agent as
/// nobody): the agent as `config`, the cluster key, a saved CIB, this
/// node's mailha.toml.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("config"))
            .unwrap();
        std::fs::write(dir.path().join("authkey"), [7u8; 256]).unwrap();
        let empty = run_with_deadline(
            Command::new("cibadmin").arg("--empty"),
            Duration::from_secs(30),
        );
        std::fs::write(dir.path().join("cib.xml"), &empty.stdout).unwrap();
        Node { dir }
    }
    fn at(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }
    /// `mailha apply` of `text` (from a file of its own: another node's).
    fn apply(&self, text: &str) {
        let f = self.at("applied.toml");
        std::fs::write(&f, text).unwrap();
        let o = run_with_deadline(
            Command::new(env!("CARGO_BIN_EXE_mailha"))
                .env("CIB_file", self.at("cib.xml"))
                .env("MAILHA_AUTHKEY", self.at("authkey"))
                .arg("--config")
                .arg(&f)
                .arg("apply"),
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    fn params(&self) -> Vec<(String, String)> {
        [
            ("config", "mailha.toml"),
            ("authkey", "authkey"),
            ("marker", "active"),
        ]
        .iter()
        .map(|(k, f)| (k.to_string(), self.at(f).display().to_string()))
        .collect()
    }
    /// The agent's `action` as Pacemaker runs it on node1.
    fn agent(&self, action: &str) -> (Option<i32>, String) {
        let mut c = Command::new(self.at("config"));
        c.arg(action)
            .env("CIB_file", self.at("cib.xml"))
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESKEY_CRM_meta_on_node", "node1");
        for (k, v) in self.params() {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        let o = run_with_deadline(&mut c, Duration::from_secs(60));
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
    fn recorded_generation(&self) -> Option<String> {
        let cib = std::fs::read_to_string(self.at("cib.xml")).unwrap();
        let line = cib
            .lines()
            .find(|l| l.contains("nodes-1-mailha-config-generation"))?;
        let v = line.split("value=\"").nth(1)?;
        Some(v.split('"').next()?.to_string())
    }
}

fn prerequisites() -> bool {
    root_and_tools(
        "the config agent tests",
        &[
            "/usr/sbin/ocf-tester",
            "/usr/sbin/cibadmin",
            "/usr/sbin/crm_attribute",
        ],
    )
}

#[test]
fn ocf_tester_passes() {
    if !prerequisites() {
        return;
    }
    let n = Node::new();
    n.apply(BASE);
    std::fs::write(n.at("mailha.toml"), BASE).unwrap();
    let (cib, node) = (n.at("cib.xml"), PathBuf::from("node1"));
    let env: [(&str, &Path); 2] = [("CIB_file", &cib), ("OCF_RESKEY_CRM_meta_on_node", &node)];
    if let Err(out) = ocf_tester_env("config-sync", &n.params(), &n.at("config"), &env) {
        panic!("{out}");
    }
}

#[test]
fn a_node_that_missed_an_apply_catches_up_at_start_and_an_edited_file_is_left_alone() {
    if !prerequisites() {
        return;
    }
    let n = Node::new();
    let first = format!("# generation 1\n{BASE}");
    let second = format!(
        "# generation 2: the VIP moved\n{}",
        BASE.replace("198.51.100.100", "198.51.100.101")
    );
    n.apply(&first);
    n.apply(&second);
    // This node was down for the second apply: its file is the first.
    std::fs::write(n.at("mailha.toml"), &first).unwrap();
    assert_eq!(n.agent("monitor").0, Some(7), "not started yet");
    let (code, err) = n.agent("start");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("brought to generation 2"), "{err}");
    assert_eq!(
        std::fs::read_to_string(n.at("mailha.toml")).unwrap(),
        second
    );
    assert_eq!(n.recorded_generation().as_deref(), Some("2"));
    assert_eq!(n.agent("monitor").0, Some(0));
    assert_eq!(n.agent("stop").0, Some(0));
    assert_eq!(n.agent("monitor").0, Some(7));

    // Edits the cluster never ran are not the agent's to touch.
    let mine = format!("{second}# an edit not applied yet\n");
    std::fs::write(n.at("mailha.toml"), &mine).unwrap();
    let (code, err) = n.agent("start");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(n.at("mailha.toml")).unwrap(), mine);
}
