//! `mailha report` on a saved CIB (`CIB_file`) with planted secrets: the
//! relay password (inline in mailha.toml, and quoted by an alert event),
//! a webhook URL with its token, and a password nvpair in the CIB. None
//! may be in the bundle; the bundle is 0600 and has a manifest. Both
//! nodes over SSH: lab/tests/lab_ops.rs.

mod common;
use common::*;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

const RELAY_PW: &str = "Pl4nted-relay-pw";
const HOOK_TOKEN: &str = "Pl4ntedHookToken";
const CIB_PW: &str = "Pl4nted-cib-pw";

#[test]
fn a_report_holds_the_clusters_state_and_none_of_its_secrets() {
    if !have_crm_verify() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mailha.toml");
    let text = std::fs::read_to_string(repo().join("examples/postfix.toml"))
        .unwrap()
        .replace(
            "password_file = \"/etc/mailha/smtp.password\"",
            &format!("password = \"{RELAY_PW}\""),
        )
        + &format!("\n[alerts.webhook]\nurl = \"https://hooks.example.com/T0/B1/{HOOK_TOKEN}\"\n");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&cfg)
        .unwrap();
    std::fs::write(&cfg, &text).unwrap();
    let cib = dir.path().join("cib.xml");
    let c = std::fs::read_to_string(repo().join("tests/fixtures/status/cib-healthy.xml"))
        .unwrap()
        .replacen(
            "</instance_attributes>",
            &format!(
                "<nvpair id=\"planted-pw\" name=\"password\" value=\"{CIB_PW}\"/></instance_attributes>"
            ),
            1,
        );
    std::fs::write(&cib, c).unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(spool.join("pending")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::fs::write(
        spool.join("pending/01796453036663476-0027827-000000.json"),
        serde_json::json!({
            "kind": "resource", "host": "mail1", "recorded_at_ms": now as u64 - 1000,
            "node": "mail1", "rsc": "svc-postfix", "task": "monitor", "interval_ms": 2000,
            "rc": 7, "target_rc": 0, "status": 0,
            "desc": format!("relay said: auth failed for {RELAY_PW}")
        })
        .to_string(),
    )
    .unwrap();
    let out = dir.path().join("report.tar.gz");
    let o = assert_cmd::Command::cargo_bin("mailha")
        .unwrap()
        .env("CIB_file", &cib)
        .env("MAILHA_SPOOL", &spool)
        .arg("--config")
        .arg(&cfg)
        .args(["report", "--no-peer", "--since", "1h", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{said}");
    assert!(said.contains("(0600)"), "{said}");
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let t = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(t.success());
    let mut all = String::new();
    let mut names = Vec::new();
    for f in walk(&x) {
        names.push(f.strip_prefix(&x).unwrap().display().to_string());
        all.push_str(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
    }
    for s in [RELAY_PW, HOOK_TOKEN, CIB_PW] {
        assert!(!all.contains(s), "{s} is in the bundle ({names:?})");
    }
    let has = |end: &str| names.iter().any(|n| n.ends_with(end));
    for f in [
        "MANIFEST.txt",
        "cib.xml",
        "crm_mon.xml",
        "alerts.json",
        "mailha.toml",
        "check-live.txt",
    ] {
        assert!(has(f), "{f} not in {names:?}");
    }
    assert!(
        all.contains("svc-postfix"),
        "the CIB and the alert are there"
    );
    assert!(all.contains("[redacted]"), "and say where a secret was");
    let manifest = names.iter().find(|n| n.ends_with("MANIFEST.txt")).unwrap();
    let m = std::fs::read_to_string(x.join(manifest)).unwrap();
    assert!(m.contains("the peer was not asked (--no-peer)"), "{m}");
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p));
        } else {
            v.push(p);
        }
    }
    v
}
