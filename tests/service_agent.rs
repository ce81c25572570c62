//! `ocf:mailha:service` run as Pacemaker runs it: the binary under the
//! name `service`, parameters in OCF_RESKEY_*, against a real memcached.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A 0755 directory with the agent as `service` (ocf-tester also runs it
/// as `nobody`, so the path must be reachable).
struct Agent {
    dir: tempfile::TempDir,
    port: u16,
}

impl Agent {
    fn new() -> Agent {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_mailha"), dir.path().join("service"))
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Agent { dir, port }
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("service")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("memcached.pid")
    }
    fn params(&self) -> Vec<(String, String)> {
        let start = format!(
            "[\"/usr/bin/memcached\",\"-d\",\"-u\",\"root\",\"-p\",\"{}\",\"-l\",\"127.0.0.1\",\"-P\",\"{}\"]",
            self.port,
            self.pid_file().display()
        );
        vec![
            ("name".into(), "memcached".into()),
            ("start".into(), start),
            ("pid_file".into(), self.pid_file().display().to_string()),
            ("executable".into(), "/usr/bin/memcached".into()),
            ("probe".into(), "memcached".into()),
            ("probe_port".into(), self.port.to_string()),
        ]
    }
    fn cmd(&self, action: &str, params: &[(String, String)]) -> Command {
        let mut c = Command::new(self.path());
        c.arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MAILHA_SPOOL", self.spool());
        for (k, v) in params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        c
    }
    fn run(&self, action: &str) -> i32 {
        run_with_deadline(
            &mut self.cmd(action, &self.params()),
            Duration::from_secs(60),
        )
        .status
        .code()
        .unwrap()
    }
    /// The alert spool this agent's events go to (never the host's).
    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }
    /// The events the agent spooled, as JSON.
    fn spooled(&self) -> Vec<serde_json::Value> {
        let Ok(rd) = std::fs::read_dir(self.spool().join("pending")) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
            .collect()
    }
    fn daemon_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Whatever a failed test left: only the memcached this test started.
        if let Some(pid) = self.daemon_pid() {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe == Path::new("/usr/bin/memcached") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn prerequisites() -> bool {
    root_and_tools(
        "the service agent tests",
        &[
            "/usr/bin/memcached",
            "/usr/sbin/ocf-tester",
            "/usr/bin/strace",
            "/usr/bin/xmllint",
        ],
    )
}

#[test]
fn ocf_tester_passes_against_a_real_memcached() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    if let Err(out) = ocf_tester("memcached-test", &a.params(), &a.path()) {
        panic!("{out}");
    }
}

#[test]
fn a_killed_daemon_is_noticed_and_stop_is_idempotent() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    assert_eq!(a.run("monitor"), 7, "not running before start");
    assert_eq!(a.run("start"), 0);
    assert_eq!(a.run("monitor"), 0);
    let pid = a.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a.run("monitor"), 7, "kill -9 is seen at the next monitor");
    assert_eq!(a.run("stop"), 0);
    assert_eq!(a.run("stop"), 0);
    assert!(!a.pid_file().exists(), "the stale pid file is removed");
}

#[test]
fn stopping_one_memcached_leaves_another_instance_of_the_binary_running() {
    if !prerequisites() {
        return;
    }
    let ours = Agent::new();
    let theirs = Agent::new();
    assert_eq!(ours.run("start"), 0);
    assert_eq!(theirs.run("start"), 0);
    let their_pid = theirs.daemon_pid().unwrap();
    assert_eq!(ours.run("stop"), 0);
    // The second stop finds no pid file: it must not take that as "every
    // memcached is ours".
    assert_eq!(ours.run("stop"), 0);
    assert_eq!(ours.run("monitor"), 7);
    assert_eq!(theirs.run("monitor"), 0);
    assert_eq!(theirs.daemon_pid(), Some(their_pid));
    assert_eq!(theirs.run("stop"), 0);
}

/// A container's memcached (another PID namespace, visible in our /proc)
/// is not this node's daemon, whatever its binary.
#[test]
fn a_stop_never_touches_a_daemon_of_the_same_binary_in_a_container() {
    if !prerequisites() {
        return;
    }
    let ours = Agent::new();
    let theirs = Agent::new();
    let mut container = Command::new("unshare")
        // --kill-child: the memcached dies with unshare, which we kill.
        .args(["--pid", "--fork", "--kill-child", "--"])
        .args(["/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1"])
        .args(["-p", &theirs.port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", theirs.port)).is_err() {
        assert!(up.elapsed() < Duration::from_secs(10), "no memcached");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Our pid file is gone (never started): only orphans of our binary
    // would be ours, and the container's memcached looks like one.
    assert_eq!(ours.run("stop"), 0);
    let alive = std::net::TcpStream::connect(("127.0.0.1", theirs.port)).is_ok();
    let _ = container.kill();
    let _ = container.wait();
    assert!(alive, "the container's memcached was killed");
}

#[test]
fn a_recurring_monitor_that_fails_tells_the_operator_and_a_probe_does_not() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    assert_eq!(a.run("start"), 0);
    let pid = a.daemon_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // Pacemaker's probe (interval 0) only asks: nothing to report.
    assert_eq!(a.run("monitor"), 7);
    assert!(a.spooled().is_empty(), "{:?}", a.spooled());

    // The recurring monitor's failure is what Pacemaker recovers from.
    let mut c = a.cmd("monitor", &a.params());
    c.env("OCF_RESKEY_CRM_meta_interval", "10000")
        .env("OCF_RESOURCE_INSTANCE", "svc-memcached");
    assert_eq!(
        run_with_deadline(&mut c, Duration::from_secs(60))
            .status
            .code(),
        Some(7)
    );
    let ev = a.spooled();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["kind"], "service_restarted", "{}", ev[0]);
    assert_eq!(ev[0]["rsc"], "svc-memcached", "{}", ev[0]);
    let desc = ev[0]["desc"].as_str().unwrap();
    assert!(
        desc.starts_with("memcached: ") && desc.contains(&pid.to_string()),
        "{desc}"
    );
    assert_eq!(a.run("stop"), 0);
}

#[test]
fn a_monitor_creates_no_process() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    assert_eq!(a.run("start"), 0);
    let trace = a.dir.path().join("trace");
    let mut c = Command::new("strace");
    c.args(TRACE_PROCESSES).arg(&trace);
    c.arg(a.path())
        .arg("monitor")
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    for (k, v) in a.params() {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    let o = run_with_deadline(&mut c, Duration::from_secs(30));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_no_process_created(&std::fs::read_to_string(&trace).unwrap());
    assert_eq!(a.run("stop"), 0);
}

#[test]
fn hostile_parameters_are_refused_and_execute_nothing() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    let marker = a.dir.path().join("MARKER");
    for (k, v) in [
        (
            "start",
            format!("[\"/usr/bin/touch\",\"$(touch {})\"]", marker.display()),
        ),
        (
            "start",
            format!("[\"/usr/bin/touch {}\"]", marker.display()),
        ),
        (
            "start",
            format!("[\"/usr/bin/touch\",\"{};id\"]", marker.display()),
        ),
        ("pid_file", "/proc/self/environ".to_string()),
        ("probe_port", "11211\n/usr/bin/touch".to_string()),
        ("executable", "../../usr/bin/memcached".to_string()),
    ] {
        let mut params = a.params();
        params.retain(|(n, _)| n != k);
        params.push((k.to_string(), v.clone()));
        for action in ["start", "monitor", "validate-all"] {
            let o = run_with_deadline(&mut a.cmd(action, &params), Duration::from_secs(30));
            assert_eq!(o.status.code(), Some(6), "{action} with {k}={v:?}");
            assert!(String::from_utf8_lossy(&o.stderr).contains("ocf-exit-reason:"));
        }
    }
    assert!(!marker.exists(), "a hostile parameter ran something");
}

#[test]
fn watch_off_in_the_cib_limits_the_next_monitor_to_liveness() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    assert_eq!(a.run("start"), 0);
    // Point the probe at a socket that accepts and never answers (held
    // for the whole test, so no other test can take its port): deep
    // checks fail.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mute_port = mute.local_addr().unwrap().port();
    let mut params = a.params();
    params.retain(|(k, _)| k != "probe_port");
    params.push(("probe_port".into(), mute_port.to_string()));
    params.push(("probe_timeout".into(), "500ms".into()));
    let cib = a.dir.path().join("cib.xml");
    let monitor = |switch: &str| {
        std::fs::write(
            &cib,
            format!(
                "<cib><configuration><crm_config><cluster_property_set id=\"mailha\">\
                 <nvpair id=\"w\" name=\"mailha-watch-memcached\" value=\"{switch}\"/>\
                 </cluster_property_set></crm_config></configuration></cib>"
            ),
        )
        .unwrap();
        let mut c = a.cmd("monitor", &params);
        c.env("MAILHA_CIB_FILE", &cib);
        run_with_deadline(&mut c, Duration::from_secs(30))
            .status
            .code()
            .unwrap()
    };
    assert_eq!(monitor("on"), 1, "watched: the failing probe counts");
    assert_eq!(
        monitor("off"),
        0,
        "watch off: the daemon is alive, that is enough"
    );
    assert_eq!(a.run("stop"), 0);
}

/// A free TCP port on 127.0.0.1 that nothing listens on: connecting to it
/// is refused.
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `start` with `params` under the default op timeout (60 s: the
/// agent answers by 54 s at the latest); its exit code, exit reason and
/// log (stderr).
fn start_with(a: &Agent, params: &[(String, String)]) -> (i32, String, String) {
    let o = run_with_deadline(&mut a.cmd("start", params), Duration::from_secs(90));
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let reason = stderr
        .lines()
        .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
        .unwrap_or_default()
        .to_string();
    (o.status.code().unwrap(), reason, stderr)
}

fn set(params: &mut Vec<(String, String)>, k: &str, v: &str) {
    params.retain(|(n, _)| n != k);
    params.push((k.into(), v.into()));
}

/// The `fail-daemon` drill in small: the daemon's process is up, its port
/// refuses (there a firewall rule, here a probe on a port it does not
/// listen on). The start gives up once the daemon made no progress for
/// start_stall, saying why, instead of waiting out the op timeout.
#[test]
fn a_start_gives_up_a_daemon_that_is_up_but_never_answers() {
    if !prerequisites() {
        return;
    }
    let a = Agent::new();
    let mut params = a.params();
    set(&mut params, "probe_port", &refused_port().to_string());
    set(&mut params, "start_stall", "2s");
    let (code, reason, log) = start_with(&a, &params);
    assert_eq!(code, 1, "OCF_ERR_GENERIC: {reason}");
    assert!(
        reason.starts_with("memcached: start given up, no progress for "),
        "{reason}"
    );
    assert!(
        reason.contains(": memcached probe: connect 127.0.0.1:") && reason.contains("refused"),
        "the reason names the probe and its failure: {reason}"
    );
    assert!(
        reason.len() <= 128,
        "Pacemaker keeps an exit reason's first 128 characters: {reason}"
    );
    assert!(
        log.contains(
            "memcached: gave up the start: its process is up but its probe still fails after "
        ) && log.contains("(start_stall 2s: "),
        "the numbers are in the agent's log: {log}"
    );
    assert!(
        a.daemon_pid().is_some(),
        "the daemon itself is left to stop"
    );
    assert_eq!(a.run("stop"), 0);
}

/// A slow but healthy start: the daemon's process is up and busy (InnoDB
/// recovery) for twice start_stall before it opens its port. It makes
/// progress all along, so the start waits for it and succeeds; the same
/// daemon asleep instead of working is given up.
#[test]
fn a_start_waits_for_a_daemon_that_makes_progress_and_answers_late() {
    if !prerequisites() {
        return;
    }
    let script = repo().join("tests/fixtures/service/late-daemon.sh");
    let late = |how: &str| {
        let a = Agent::new();
        let mut params = a.params();
        let start = serde_json::to_string(&[
            script.display().to_string(),
            a.pid_file().display().to_string(),
            a.port.to_string(),
            "4".into(),
            how.into(),
        ])
        .unwrap();
        set(&mut params, "start", &start);
        set(&mut params, "start_stall", "2s");
        // The pid is the script's until it becomes memcached.
        params.retain(|(k, _)| k != "executable");
        let (code, reason, _) = start_with(&a, &params);
        let monitor = run_with_deadline(&mut a.cmd("monitor", &params), Duration::from_secs(30))
            .status
            .code();
        assert_eq!(
            run_with_deadline(&mut a.cmd("stop", &params), Duration::from_secs(60))
                .status
                .code(),
            Some(0)
        );
        (code, reason, monitor)
    };
    let (code, reason, monitor) = late("work");
    assert_eq!(code, 0, "the working daemon was given up: {reason}");
    assert_eq!(monitor, Some(0));
    let (code, reason, _) = late("sleep");
    assert_eq!(code, 1, "{reason}");
    assert!(reason.contains("start given up, no progress"), "{reason}");
}
