//! What the lab tests share (lab/tests/*.rs): the test lab's name, the
//! lab's binary pointed at it and at the product under test, commands with deadlines whose
//! output goes to files (a daemon started inside a node must never hang a
//! test by holding a pipe open), the teardown guard and the skip rule
//! (SKIPPED without root or the lab's programs, FAILS in CI).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The test lab's name: `mht` unless `MAILHA_TEST_LAB` names another
/// (two checkouts testing at once on one machine each take their own).
pub fn lab_name() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| std::env::var("MAILHA_TEST_LAB").unwrap_or_else(|_| "mht".into()))
}

pub fn prefix() -> &'static str {
    lab_name()
}

pub fn state_dir() -> PathBuf {
    PathBuf::from(match lab_name() {
        "mht" => "/run/mailha-lab-test".into(),
        n => format!("/run/mailha-lab-{n}"),
    })
}

pub fn base_dir() -> PathBuf {
    PathBuf::from(match lab_name() {
        "mht" => "/var/lib/mailha-lab-test".into(),
        n => format!("/var/lib/mailha-lab-{n}"),
    })
}

/// The product under test: this workspace's `mailha` (built beside the lab
/// by `cargo test --workspace`), or the one in MAILHA_TEST_BIN (the shipped
/// release build from scripts/build-release.sh, to run the lab tests
/// against what ships).
pub fn mailha_bin() -> PathBuf {
    if let Some(b) = std::env::var_os("MAILHA_TEST_BIN") {
        return b.into();
    }
    let lab = PathBuf::from(env!("CARGO_BIN_EXE_mailha-lab"));
    let bin = lab.with_file_name("mailha");
    assert!(
        bin.exists(),
        "{} is not built: run the lab tests with `cargo test --workspace` (or `cargo build -p mailha` first)",
        bin.display()
    );
    bin
}

/// The product as its Debian package (MAILHA_TEST_DEB, set by
/// scripts/test.sh to what scripts/build-deb.sh built from this tree): the
/// test lab's nodes then install it with `dpkg -i`, as an administrator
/// does, instead of the binary.
pub fn mailha_deb() -> Option<PathBuf> {
    std::env::var_os("MAILHA_TEST_DEB").map(PathBuf::from)
}

/// The package, for a test that needs the nodes to have installed it:
/// None with a visible SKIP when MAILHA_TEST_DEB is unset, a failure in CI.
pub fn deb_or_skip(test: &str) -> Option<PathBuf> {
    let deb = mailha_deb();
    if deb.is_none() {
        let why = "MAILHA_TEST_DEB is unset (scripts/test.sh builds the package with scripts/build-deb.sh and sets it)";
        if std::env::var_os("CI").is_some() {
            panic!("{test}: {why}");
        }
        println!("SKIPPED: {test}: {why}");
    }
    deb
}

/// The lab's binary, pointed at the test lab and at the product under
/// test (its package when there is one).
pub fn lab() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailha-lab"));
    c.env("MAILHA_LAB_PREFIX", prefix())
        .env("MAILHA_LAB_STATE_DIR", state_dir())
        .env("MAILHA_LAB_BASE_DIR", base_dir())
        .env("MAILHA_BIN", mailha_bin())
        .env_remove("MAILHA_LAB_CONFIG")
        .env_remove("MAILHA_CONFIG");
    match mailha_deb() {
        Some(deb) => c.env("MAILHA_LAB_DEB", deb),
        None => c.env_remove("MAILHA_LAB_DEB"),
    };
    c
}

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `c` with a deadline; output to files, not pipes.
pub fn run(c: &mut Command, deadline: Duration) -> Out {
    let dir = tempfile::tempdir().unwrap();
    let (o, e) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = c
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("spawn");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{c:?} overran {deadline:?}; stderr: {}",
                std::fs::read_to_string(&e).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code(),
        stdout: std::fs::read_to_string(&o).unwrap_or_default(),
        stderr: std::fs::read_to_string(&e).unwrap_or_default(),
    }
}

pub fn ok(c: &mut Command, deadline: Duration) -> Out {
    let o = run(c, deadline);
    assert_eq!(o.code, Some(0), "{c:?} failed:\n{}\n{}", o.stdout, o.stderr);
    o
}

/// One drill's JSON report, its last line of output (a failed drill
/// exits 1 and still prints it), echoed for the test log.
pub fn drill(args: &[&str]) -> serde_json::Value {
    let o = run(
        lab().args(["drill"]).args(args).arg("--json"),
        Duration::from_secs(500),
    );
    let line = o.stdout.lines().last().unwrap_or_default().to_string();
    let v: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("drill {args:?}: no JSON ({e}):\n{}\n{}", o.stdout, o.stderr));
    println!("{line}");
    v
}

/// `mailha lab status --json`.
pub fn lab_status() -> serde_json::Value {
    let o = ok(lab().args(["status", "--json"]), Duration::from_secs(30));
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("lab status: {e}: {}", o.stdout))
}

/// `argv` in a node (or the client/gw namespace), 60 s deadline.
pub fn exec(node: &str, argv: &[&str]) -> Out {
    run(
        lab()
            .args(["exec", node, "--timeout", "60s", "--"])
            .args(argv),
        Duration::from_secs(90),
    )
}

/// Tears the test lab down whatever happens (also on a panic).
pub struct Teardown;

impl Drop for Teardown {
    fn drop(&mut self) {
        let o = run(lab().args(["down"]), Duration::from_secs(60));
        if o.code != Some(0) {
            eprintln!("lab down failed:\n{}\n{}", o.stdout, o.stderr);
        }
    }
}

/// What a systemd unit of `node` logged (its journal, messages only).
#[allow(dead_code)] // not every test binary reads a unit's journal
pub fn unit_journal(node: &str, unit: &str) -> String {
    exec(node, &["journalctl", "--no-pager", "-o", "cat", "-u", unit]).stdout
}

/// Whether `test` can run here: root, the lab's programs and `extra`.
/// Outside CI a missing one is `SKIPPED`; in CI (env `CI`) it fails.
pub fn skip_unless_ready(test: &str, extra: &[&str]) -> bool {
    let why = if !nix::unistd::geteuid().is_root() {
        Some("the lab needs root".to_string())
    } else {
        let mut missing = mailha_lab::provision::missing_prerequisites();
        missing.extend(
            extra
                .iter()
                .filter(|p| !Path::new(p).exists())
                .map(|p| p.to_string()),
        );
        (!missing.is_empty())
            .then(|| format!("missing {} (scripts/install-deps.sh)", missing.join(", ")))
    };
    match why {
        None => true,
        Some(w) if std::env::var_os("CI").is_some() => {
            panic!("{test}: prerequisites missing in CI: {w}")
        }
        Some(w) => {
            println!("SKIPPED: {test}: {w}");
            false
        }
    }
}
