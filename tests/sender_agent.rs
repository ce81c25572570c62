//! `ocf:mailha:sender`: the alert sender as an OCF resource. Root and
//! ocf-tester needed (SKIPPED without them, FAILS in CI).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The agent as `sender` in a 0755 directory (ocf-tester also runs it as
/// nobody), a config whose only channel is a command appending the
/// incident JSON to a file, and private spool/pid/log paths.
struct Agent {
    dir: tempfile::TempDir,
}

impl Agent {
    fn new() -> Agent {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("sender"))
            .unwrap();
        let example = std::fs::read_to_string(repo().join("examples/postfix.toml")).unwrap();
        let head = &example[..example.find("[alerts]").unwrap()];
        let cfg = format!(
            "{head}[alerts]\ncustomer = \"ACME\"\nbatch_window = \"1s\"\n\n[alerts.command]\nargv = [\"/usr/bin/tee\", \"-a\", \"{}\"]\ntimeout = \"5s\"\n",
            dir.path().join("delivered.json").display()
        );
        std::fs::write(dir.path().join("mailha.toml"), cfg).unwrap();
        std::fs::set_permissions(
            dir.path().join("mailha.toml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Agent { dir }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("sender")
    }
    fn params(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        vec![
            ("config".into(), d.join("mailha.toml").display().to_string()),
            ("spool".into(), d.join("spool").display().to_string()),
            (
                "pid_file".into(),
                d.join("run/sender.pid").display().to_string(),
            ),
            ("log".into(), d.join("log/alert.log").display().to_string()),
        ]
    }
    fn run(&self, action: &str) -> i32 {
        let mut c = Command::new(self.path());
        c.arg(action);
        for (k, v) in self.params() {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        let o = run_with_deadline(&mut c, Duration::from_secs(30));
        o.status.code().unwrap_or(-1)
    }
    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.path().join("run/sender.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Whatever the test did, no sender outlives it.
        self.run("stop");
    }
}

fn prerequisites() -> bool {
    root_and_tools(
        "the sender agent tests",
        &["/usr/sbin/ocf-tester", "/usr/bin/xmllint", "/usr/bin/tee"],
    )
}

#[test]
fn ocf_tester_passes() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    if let Err(out) = ocf_tester("sender-test", &a.params(), &a.path()) {
        panic!("{out}");
    }
}

#[test]
fn the_running_sender_delivers_what_the_alert_agent_spooled_and_a_killed_one_is_noticed() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    assert_eq!(a.run("monitor"), 7, "not running before start");
    assert_eq!(a.run("start"), 0);
    assert_eq!(a.run("monitor"), 0);
    assert_eq!(a.run("start"), 0, "start is idempotent");

    // Pacemaker fires the alert agent; the sender picks the event up.
    let agent = a.dir.path().join("alert_mailha");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), &agent).unwrap();
    let st = Command::new(&agent)
        .env("MAILHA_SPOOL", a.dir.path().join("spool"))
        .env("CRM_alert_kind", "resource")
        .env("CRM_alert_node", "mx1")
        .env("CRM_alert_rsc", "svc-postfix")
        .env("CRM_alert_task", "monitor")
        .env("CRM_alert_rc", "7")
        .env("CRM_alert_target_rc", "0")
        .status()
        .unwrap();
    assert!(st.success());
    let delivered = a.dir.path().join("delivered.json");
    let t = Instant::now();
    while !std::fs::read_to_string(&delivered).is_ok_and(|s| s.contains("svc-postfix")) {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "not delivered; log:\n{}",
            std::fs::read_to_string(a.dir.path().join("log/alert.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // kill -9: the monitor says "not running", Pacemaker would restart it.
    let pid = a.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let t = Instant::now();
    while a.run("monitor") != 7 {
        assert!(t.elapsed() < Duration::from_secs(5), "kill not noticed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(a.run("start"), 0);
    assert_eq!(a.run("stop"), 0);
    assert_eq!(a.run("stop"), 0, "stop is idempotent");
    assert_eq!(a.run("monitor"), 7);
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || a.pid().is_none());
}
