//! Helpers shared by the integration tests (the lab crate's tests include
//! this file too, for crm_verify).
#![allow(dead_code)]

use mailha::config::{self, ConfigError, Diagnostic, Loaded};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace's root (from the product's tests or the lab's).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|d| d.join("examples").is_dir())
        .expect("the workspace root holds examples/")
        .to_path_buf()
}

pub fn eyou_tree() -> PathBuf {
    repo().join("tests/fixtures/eyou-tree")
}

/// A small valid config; tests edit it to break one rule at a time.
pub const BASE: &str = r#"[cluster]
name = "mail"
token_timeout = "1s"

[[cluster.nodes]]
name = "node1"
addresses = ["203.0.113.11", "198.51.100.11"]

[[cluster.nodes]]
name = "node2"
addresses = ["203.0.113.12", "198.51.100.12"]

[vip]
address = "198.51.100.100"
prefix = 24
nic = "eth0"

[network]
ping_targets = ["198.51.100.1"]

[storage.lease]
device = "LABEL=mailha-lease"

[[storage.mounts]]
name = "data"
device = "LABEL=maildata"
mount_point = "/srv/mail"

[services]
profile = "postfix"
"#;

pub fn load(text: &str) -> Result<Loaded, ConfigError> {
    config::load_str(Path::new("mailha.toml"), text, Some(0o600))
}

/// The errors of a config that must not load.
pub fn errors(text: &str) -> Vec<Diagnostic> {
    match load(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(ConfigError::Invalid(d)) => d
            .into_iter()
            .filter(|d| d.severity == config::Severity::Error)
            .collect(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

/// Asserts exactly one error, about `field`, whose message contains
/// `needle`; returns it for line/column checks.
pub fn one_error(text: &str, field: &str, needle: &str) -> Diagnostic {
    let errs = errors(text);
    let all = || {
        errs.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        errs.len(),
        1,
        "expected exactly one error (on {field}); got:\n{}",
        all()
    );
    let d = &errs[0];
    assert!(
        d.field == field
            && (d.message.contains(needle)
                || d.hint.as_deref().is_some_and(|h| h.contains(needle))),
        "no error on {field} containing {needle:?}; got:\n{}",
        all()
    );
    d.clone()
}

/// A test whose prerequisite `why` is missing: in CI (env `CI` set) that
/// is a failure; elsewhere the test says `SKIPPED: {test}: {why}` and the
/// caller returns. The line goes to the process's stderr itself: the
/// harness captures `println!`/`eprintln!` of a passing test and never
/// shows them, so a skip said that way would be invisible.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{test}: prerequisite missing in CI: {why}");
    }
    say_skipped(&format!("{test}: {why}"));
}

/// `SKIPPED: {what}` on the process's stderr, past the harness's capture.
pub fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

pub fn warnings(text: &str) -> Vec<Diagnostic> {
    load(text).expect("config loads").warnings
}

/// The line (1-based) on which `needle` first appears in `text`.
pub fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
        + 1
}

/// Runs `cmd` with a deadline; kills it (by its own PID) when it overruns.
pub fn run_with_deadline(cmd: &mut Command, deadline: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} overran {deadline:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether crm_verify is installed. In CI it must be (the setup installs
/// pacemaker-cli-utils), so a missing one fails there instead of skipping.
pub fn have_crm_verify() -> bool {
    let found = Command::new("crm_verify")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("crm_verify missing in CI: scripts/install-deps.sh installs pacemaker-cli-utils");
    }
    if !found {
        say_skipped("crm_verify not installed (apt-get install pacemaker-cli-utils)");
    }
    found
}

/// Runs crm_verify on the rendered CIB with both nodes online and quorate,
/// so that any warning at all is about the configuration itself. Returns
/// crm_verify's complaints, empty when it accepts the CIB.
pub fn crm_verify(cib_full: &str, node_names: &[&str]) -> Result<(), String> {
    crm_verify_in(None, cib_full, node_names)
}

/// Debian 13's root tree (Pacemaker 3.0), as `mailha-lab tree --release
/// trixie` makes it (scripts/test.sh does, before the tests), or None:
/// SKIPPED outside CI, a failure in CI.
pub fn trixie_tree() -> Option<PathBuf> {
    let tree = std::env::var_os("MAILHA_TEST_TRIXIE_TREE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/mailha-lab/trixie"));
    let ok = nix::unistd::geteuid().is_root() && tree.join("usr/sbin/crm_verify").exists();
    if ok {
        return Some(tree);
    }
    let why = format!(
        "no Debian 13 tree with crm_verify at {} (root, then `mailha-lab tree --release trixie`)",
        tree.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("CI must check Pacemaker 3.0 too: {why}");
    }
    say_skipped(&why);
    None
}

/// `crm_verify` as above, with the Pacemaker of the root tree `tree`
/// (chroot) when given.
pub fn crm_verify_in(
    tree: Option<&Path>,
    cib_full: &str,
    node_names: &[&str],
) -> Result<(), String> {
    let mut status = String::from("<status>\n");
    for (i, n) in node_names.iter().enumerate() {
        status.push_str(&format!(
            "<node_state id=\"{}\" uname=\"{n}\" in_ccm=\"true\" crmd=\"online\" join=\"member\" expected=\"member\"/>\n",
            i + 1
        ));
    }
    status.push_str("</status>");
    let doc = cib_full
        .replacen("<cib ", "<cib have-quorum=\"1\" dc-uuid=\"1\" ", 1)
        .replace("<status/>", &status);
    let dir = match tree {
        Some(t) => tempfile::tempdir_in(t.join("tmp")),
        None => tempfile::tempdir(),
    }
    .expect("tempdir");
    let f = dir.path().join("cib.xml");
    std::fs::write(&f, doc).expect("write");
    let mut c = match tree {
        Some(t) => {
            let mut c = Command::new("chroot");
            c.arg(t).arg("crm_verify");
            c.arg("--xml-file")
                .arg(Path::new("/").join(f.strip_prefix(t).expect("inside the tree")));
            c
        }
        None => {
            let mut c = Command::new("crm_verify");
            c.arg("--xml-file").arg(&f);
            c
        }
    };
    let out = run_with_deadline(c.arg("-V"), Duration::from_secs(30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("exit {:?}: {text}", out.status.code()))
    }
}

/// Root and these programs, or: SKIPPED with the reason outside CI, a
/// failure in CI (where scripts/install-deps.sh must have installed them).
pub fn root_and_tools(what: &str, tools: &[&str]) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let missing: Vec<&str> = tools
        .iter()
        .filter(|t| !Path::new(t).exists())
        .copied()
        .collect();
    if root && missing.is_empty() {
        return true;
    }
    let why = format!("root={root}, missing {missing:?} (scripts/install-deps.sh installs them)");
    skip(what, &why);
    false
}

/// ocf-tester (from resource-agents) on `agent` with instance `name` and
/// `params`: Ok, or its whole output when it did not pass all tests.
pub fn ocf_tester(name: &str, params: &[(String, String)], agent: &Path) -> Result<(), String> {
    ocf_tester_env(name, params, agent, &[])
}

/// `ocf_tester` with `env` set for the agent (e.g. `CIB_file`).
pub fn ocf_tester_env(
    name: &str,
    params: &[(String, String)],
    agent: &Path,
    env: &[(&str, &Path)],
) -> Result<(), String> {
    let mut c = Command::new("ocf-tester");
    // The agents' notes (a monitor's failure) go to a spool of the test's
    // own, never this machine's /var/lib/mailha/spool.
    let spool = tempfile::tempdir().unwrap();
    c.env("MAILHA_SPOOL", spool.path());
    c.envs(env.iter().copied());
    c.args(["-n", name]);
    for (k, v) in params {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    c.arg(agent);
    let o = run_with_deadline(&mut c, Duration::from_secs(180));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    if o.status.success() && out.contains("passed all tests") {
        Ok(())
    } else {
        Err(out)
    }
}

/// strace's options that log every process creation to the file that
/// follows: `strace TRACE_PROCESSES FILE AGENT monitor`.
pub const TRACE_PROCESSES: &[&str] = &[
    "-f",
    "-qq",
    "-e",
    "trace=execve,execveat,fork,vfork,clone,clone3",
    "-o",
];

/// Fails unless the strace log `trace` (`TRACE_PROCESSES`) of one agent
/// run holds nothing but strace's own execve of the agent.
pub fn assert_no_process_created(trace: &str) {
    let calls: Vec<&str> = trace
        .lines()
        .filter(|l| !l.contains("+++") && !l.contains("---"))
        .collect();
    assert_eq!(calls.len(), 1, "process creation during monitor:\n{trace}");
    assert!(calls[0].contains("execve("), "{trace}");
}

/// Runs `argv` (60 s deadline), fails the test unless it succeeds; its
/// stdout, trimmed.
pub fn run_ok(argv: &[&str]) -> String {
    let o = run_with_deadline(
        Command::new(argv[0]).args(&argv[1..]),
        Duration::from_secs(60),
    );
    assert!(
        o.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// An ext4 image (32-64 MiB, `mkfs.ext4 -q -F` plus `mkfs_extra`) in a
/// private temp dir, on its own loop device; detached on drop. Root only.
pub struct LoopImage {
    pub dir: tempfile::TempDir,
    pub dev: String,
}

impl LoopImage {
    pub fn ext4(size: u64, mkfs_extra: &[&str]) -> LoopImage {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let img = dir.path().join("data.img");
        std::fs::File::create(&img).unwrap().set_len(size).unwrap();
        let o = run_with_deadline(
            Command::new("mkfs.ext4")
                .args(["-q", "-F"])
                .args(mkfs_extra)
                .arg(&img),
            Duration::from_secs(60),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = run_with_deadline(
            Command::new("losetup").args(["-f", "--show"]).arg(&img),
            Duration::from_secs(30),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        LoopImage { dir, dev }
    }
}

impl Drop for LoopImage {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// Set in the child that `run_in_private_mount_ns` starts.
pub const IN_NS: &str = "MAILHA_TEST_IN_PRIVATE_MOUNT_NS";

/// True in the re-run under `unshare` (the outer test skips or runs it).
pub fn rerun_in_ns() -> bool {
    std::env::var_os(IN_NS).is_some()
}

/// One scenario in its own mount namespace: `#[test] fn NAME` re-runs
/// this binary for the ignored test `NAME::in_ns` under `unshare
/// --mount`, where the body runs (`run_in_private_mount_ns` fails unless
/// exactly that one test passed there). The file defines
/// `in_private_mount_ns(name)`: its prerequisites, then
/// `run_in_private_mount_ns` with its deadline.
#[allow(unused_macros)]
macro_rules! in_mount_ns {
    ($(#[doc = $doc:literal])* fn $name:ident() $body:block) => {
        $(#[doc = $doc])*
        #[test]
        fn $name() {
            in_private_mount_ns(concat!(stringify!($name), "::in_ns"));
        }
        in_mount_ns! { @in_ns $name $body }
    };
    // `needs`: a tool the scenario runs besides the keepers'.
    ($(#[doc = $doc:literal])* fn $name:ident() needs($what:literal, [$($tool:literal),*]) $body:block) => {
        $(#[doc = $doc])*
        #[test]
        fn $name() {
            if root_and_tools($what, &[$($tool),*]) {
                in_private_mount_ns(concat!(stringify!($name), "::in_ns"));
            }
        }
        in_mount_ns! { @in_ns $name $body }
    };
    (@in_ns $name:ident $body:block) => {
        mod $name {
            use super::*;

            #[test]
            #[ignore = "run in its own mount namespace by the test of the same name"]
            fn in_ns() {
                if !$crate::common::rerun_in_ns() {
                    return;
                }
                $body
            }
        }
    };
}

/// Runs `name`, an `#[ignore]`d test of the calling test binary, in a new
/// private mount namespace (its mounts, frozen or not, are seen by nobody
/// else and vanish with it) and fails unless it passed.
pub fn run_in_private_mount_ns(name: &str, deadline: Duration) {
    let exe = std::env::current_exe().unwrap();
    let o = run_with_deadline(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(exe)
            .args([
                "--exact",
                name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(IN_NS, "1"),
        deadline,
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && out.contains("1 passed"),
        "{name} failed:\n{out}"
    );
}

pub fn openssl(args: &[&str]) {
    let o = run_with_deadline(Command::new("openssl").args(args), Duration::from_secs(60));
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it
/// (`hook.pem`, key `hook.key`), in `dir`.
pub fn make_certs(dir: &Path) {
    let d = dir.display().to_string();
    let p = |f: &str| format!("{d}/{f}");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=hook",
        "-keyout",
        &p("hook.key"),
        "-out",
        &p("hook.csr"),
    ]);
    std::fs::write(dir.join("ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &p("hook.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &p("ext"),
        "-out",
        &p("hook.pem"),
    ]);
}

/// Whether openssl is there to make certificates; SKIPPED without it,
/// a failure in CI.
pub fn openssl_ready() -> bool {
    if Path::new("/usr/bin/openssl").exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("openssl missing in CI (scripts/install-deps.sh)");
    }
    println!("SKIPPED: needs /usr/bin/openssl");
    false
}

/// Debian's headless browser, for the screenshot tests.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium headless with a throwaway profile and `args`, ended after
/// 60 s if it overruns (only this one, by its pid).
pub fn chromium(args: &[String], stdout: Stdio) -> Result<std::process::Output, String> {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("chromium: {e}"))?;
    let pid = child.id();
    let t = Instant::now();
    let watchdog = std::thread::spawn(move || {
        while t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(100));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return;
            }
        }
        // Overran: end this chromium (only ours, by its pid).
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = watchdog.join();
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("chromium exited {}", out.status))
    }
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        p.display()
    );
    let be = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap());
    (be(16), be(20))
}

/// Whether Chromium is there; SKIPPED without it, a failure in CI.
pub fn have_chromium() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("chromium missing in CI (scripts/install-deps.sh)");
    }
    println!("SKIPPED: needs {CHROMIUM} (scripts/install-deps.sh)");
    false
}

/// `examples/postfix.toml` with its `[alerts]` replaced by `alerts` (the
/// TOML from `[alerts]` on), written to `dir/name` as 0600, as a config
/// naming secrets must be.
pub fn config_with_alerts(dir: &Path, name: &str, alerts: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let example = std::fs::read_to_string(repo().join("examples/postfix.toml")).unwrap();
    let head = &example[..example.find("[alerts]").unwrap()];
    let path = dir.join(name);
    std::fs::write(&path, format!("{head}{alerts}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}
