//! `ocf:mailha:service` in unit mode against a real systemd: a throwaway
//! machine booted by systemd-nspawn from this host's own tree (an overlay
//! with a tmpfs upper layer, systemd as PID 1, pure cgroup v2, a network
//! of its own; DESIGN section 9, "Nodes that boot systemd"), where the
//! agent runs as Pacemaker runs it, against Debian's memcached.service.
//! Root, systemd-nspawn, memcached, strace and ocf-tester: SKIPPED
//! without them, FAILS in CI. The machine is torn down whatever happens
//! (its PID 1 killed by PID, the mounts and cgroups removed).

mod common;
use common::*;
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the agent is inside the machine (the test build, bound in
/// read-only; `service` is a symlink to it, the name the binary answers
/// to as the agent).
const AGENT_DIR: &str = "/usr/local/lib/mailha-test";

/// The memcached of Debian's unit (its /etc/memcached.conf: 127.0.0.1:11211).
const MEMCACHED: &[(&str, &str)] = &[
    ("name", "memcached"),
    ("unit", "memcached.service"),
    ("executable", "/usr/bin/memcached"),
    ("probe", "memcached"),
    ("probe_port", "11211"),
];

/// A cgroup hierarchy mounted on this host.
struct Hierarchy {
    dir: PathBuf,
    /// The unified (v2) hierarchy: a cgroup there is killed at once.
    v2: bool,
    /// A v1 cpuset hierarchy.
    cpuset: bool,
}

fn hierarchies() -> Vec<Hierarchy> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let dir = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let opts = r.nth(1).unwrap_or("");
            (fstype == "cgroup" || fstype == "cgroup2").then(|| Hierarchy {
                dir: PathBuf::from(dir),
                v2: fstype == "cgroup2",
                cpuset: fstype == "cgroup" && opts.split(',').any(|o| o == "cpuset"),
            })
        })
        .collect()
}

/// The cgroup layout a machine boots with (systemd-nspawn's
/// `SYSTEMD_NSPAWN_UNIFIED_HIERARCHY`).
#[derive(Debug, Clone, Copy)]
enum Cgroups {
    /// Pure cgroup v2, as Debian 12 boots.
    V2,
    /// What nspawn picks on this host: hybrid on a hybrid host (this one:
    /// v1 controllers, v2 at /sys/fs/cgroup/unified), v2 on a v2 host.
    HostDefault,
    /// cgroup v1 only: units in the `name=systemd` tree.
    Legacy,
}

/// The throwaway machine.
struct Machine {
    dir: tempfile::TempDir,
    /// Its cgroup in every hierarchy (nspawn and everything of the
    /// machine run in them).
    cgroups: Vec<PathBuf>,
    /// The one in the unified hierarchy.
    v2: Option<PathBuf>,
    nspawn: Option<Child>,
    pid1: u32,
}

impl Machine {
    fn layer(&self) -> PathBuf {
        self.dir.path().join("layer")
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Boots it and waits until systemd says it runs.
    fn boot(cgroups: Cgroups) -> Machine {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("mailha-unit-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut m = Machine {
            dir,
            cgroups: Vec::new(),
            v2: None,
            nspawn: None,
            pid1: 0,
        };
        let (layer, root) = (m.layer(), m.root());
        std::fs::create_dir_all(&layer).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        // The upper layer on a tmpfs of its own: overlayfs refuses an
        // upper inside its lower (the host's root filesystem).
        run_ok(&[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "mode=0755,size=512m",
            "mailha-unit-layer",
            layer.to_str().unwrap(),
        ]);
        for d in ["upper", "work"] {
            std::fs::create_dir_all(layer.join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir=/,upperdir={},workdir={}",
            layer.join("upper").display(),
            layer.join("work").display()
        );
        run_ok(&[
            "mount",
            "-t",
            "overlay",
            "-o",
            &opts,
            "mailha-unit-root",
            root.to_str().unwrap(),
        ]);
        // A machine of its own: none of the host's enabled services, its
        // name, a fresh machine-id (an empty file: systemd makes one).
        let etc = root.join("etc/systemd/system");
        for wants in std::fs::read_dir(&etc).unwrap().flatten() {
            if wants.file_name().to_string_lossy().ends_with(".wants") {
                for link in std::fs::read_dir(wants.path()).unwrap().flatten() {
                    std::fs::remove_file(link.path()).unwrap();
                }
            }
        }
        let _ = std::fs::remove_file(etc.join("run-rpc_pipefs.mount"));
        std::os::unix::fs::symlink("/dev/null", etc.join("run-rpc_pipefs.mount")).unwrap();
        std::fs::write(root.join("etc/hostname"), "mailha-unit\n").unwrap();
        std::fs::write(root.join("etc/machine-id"), "").unwrap();
        let agent_dir = root.join(AGENT_DIR.trim_start_matches('/'));
        std::fs::create_dir_all(&agent_dir).unwrap();
        std::fs::write(agent_dir.join("mailha"), "").unwrap();
        std::os::unix::fs::symlink("mailha", agent_dir.join("service")).unwrap();

        // nspawn uses the cgroup it starts in (no machined here): one of
        // its own in every hierarchy. A new v1 cpuset cgroup takes no
        // process until its cpus and mems are set.
        // Named after its directory: two machines of one test run apart.
        let name = m
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let mut procs_files = Vec::new();
        for h in hierarchies() {
            let d = h.dir.join(&name);
            std::fs::create_dir_all(&d).unwrap();
            m.cgroups.push(d.clone());
            if h.v2 {
                m.v2 = Some(d.clone());
            }
            if h.cpuset {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(h.dir.join(f)).unwrap();
                    std::fs::write(d.join(f), v.trim()).unwrap();
                }
            }
            procs_files.push(CString::new(d.join("cgroup.procs").to_str().unwrap()).unwrap());
        }
        let console = std::fs::File::create(m.dir.path().join("console.log")).unwrap();
        let mut c = Command::new("systemd-nspawn");
        c.args([
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--boot",
            "--machine=mailha-unit",
            "--resolv-conf=off",
            "--timezone=off",
            "--link-journal=no",
            "--console=read-only",
        ])
        .arg(format!("--directory={}", root.display()))
        .arg(format!(
            "--bind-ro={}:{AGENT_DIR}/mailha",
            env!("CARGO_BIN_EXE_mailha")
        ))
        .env_remove("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY")
        .stdin(Stdio::null())
        .stdout(console.try_clone().unwrap())
        .stderr(console)
        .process_group(0);
        // SAFETY: between fork and exec only open/write/close on paths
        // made before the fork; "0" moves the writing process.
        unsafe {
            c.pre_exec(move || {
                for f in &procs_files {
                    let fd =
                        nix::libc::open(f.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let r = nix::libc::write(fd, b"0".as_ptr().cast(), 1);
                    let e = std::io::Error::last_os_error();
                    nix::libc::close(fd);
                    if r != 1 {
                        return Err(e);
                    }
                }
                Ok(())
            });
        }
        match cgroups {
            Cgroups::V2 => c.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1"),
            Cgroups::HostDefault => &mut c,
            Cgroups::Legacy => c.env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "0"),
        };
        let child = c.spawn().unwrap();
        let nspawn_pid = child.id();
        m.nspawn = Some(child);
        // Its PID 1: the child of nspawn that is PID 1 of a PID namespace
        // of its own (the last field of NSpid). nspawn's first child is a
        // helper that exits once it has started it.
        let is_init = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))
                .is_some_and(|f| {
                    let f: Vec<&str> = f.split_whitespace().collect();
                    f.len() >= 2 && f.last() == Some(&"1")
                })
        };
        let t = Instant::now();
        m.pid1 = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children"))
                    .unwrap_or_default();
            if let Some(p) = children.split_whitespace().find(|p| is_init(p)) {
                break p.parse().unwrap();
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "systemd-nspawn started no machine: {}",
                m.console()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let t = Instant::now();
        loop {
            let o = m.exec(&["systemctl", "is-system-running", "--wait"]);
            let state = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(90),
                "not booted ({state:?}): {}",
                m.console()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// `argv` inside the machine (every namespace of its PID 1).
    fn exec(&self, argv: &[&str]) -> Output {
        let pid = self.pid1.to_string();
        run_with_deadline(
            Command::new("nsenter")
                .args(["-t", &pid, "-a", "--"])
                .args(argv),
            Duration::from_secs(120),
        )
    }

    /// `argv` inside the machine; its stdout, or the test fails.
    fn exec_ok(&self, argv: &[&str]) -> String {
        let o = self.exec(argv);
        assert!(
            o.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The agent's `action` inside the machine, as Pacemaker runs it (a
    /// clean environment, the parameters in OCF_RESKEY_*), within
    /// `deadline`: (exit code, stderr).
    fn agent(
        &self,
        action: &str,
        params: &[(&str, &str)],
        meta_timeout_ms: Option<u64>,
        deadline: Duration,
    ) -> (i32, String) {
        let pid = self.pid1.to_string();
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid, "-a", "--", "env", "-i"])
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg("MAILHA_SPOOL=/tmp/mailha-spool");
        if let Some(t) = meta_timeout_ms {
            c.arg(format!("OCF_RESKEY_CRM_meta_timeout={t}"));
        }
        for (k, v) in params {
            c.arg(format!("OCF_RESKEY_{k}={v}"));
        }
        c.arg(format!("{AGENT_DIR}/service")).arg(action);
        let o = run_with_deadline(&mut c, deadline);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// The agent's exit code, with 60 s for the action.
    fn rc(&self, action: &str, params: &[(&str, &str)]) -> i32 {
        self.agent(action, params, None, Duration::from_secs(60)).0
    }

    fn active(&self, unit: &str) -> String {
        String::from_utf8_lossy(&self.exec(&["systemctl", "is-active", unit]).stdout)
            .trim()
            .to_string()
    }

    /// Waits (up to 10 s) until `unit` is `state`.
    fn wait_state(&self, unit: &str, state: &str) {
        let t = Instant::now();
        while self.active(unit) != state {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{unit} is {}, not {state}",
                self.active(unit)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A unit file of the test's own in the machine's /etc, loaded.
    fn add_unit(&self, name: &str, text: &str) {
        std::fs::write(self.root().join("etc/systemd/system").join(name), text).unwrap();
        self.exec_ok(&["systemctl", "daemon-reload"]);
    }

    /// The pids of `unit`'s cgroup, as the machine sees them.
    fn unit_pids(&self, unit: &str) -> Vec<String> {
        let o = self.exec(&[
            "cat",
            &format!("/sys/fs/cgroup/system.slice/{unit}/cgroup.procs"),
        ]);
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // Powered off: every process of its cgroup killed at once (nspawn
        // and the machine: only what this test started), else its PID 1,
        // which ends its whole PID namespace.
        let killed = self
            .v2
            .as_ref()
            .is_some_and(|d| std::fs::write(d.join("cgroup.kill"), "1").is_ok());
        let ours = std::fs::read_to_string(format!("/proc/{}/cgroup", self.pid1)).is_ok_and(|c| {
            self.cgroups
                .iter()
                .any(|d| c.contains(&*d.file_name().unwrap().to_string_lossy()))
        });
        if !killed && self.pid1 != 0 && ours {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.pid1 as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut child) = self.nspawn.take() {
            let t = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if t.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Some(d) = &self.v2 {
            let t = Instant::now();
            while std::fs::read_to_string(d.join("cgroup.events"))
                .is_ok_and(|e| e.lines().any(|l| l == "populated 1"))
                && t.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut errors = Vec::new();
        for mnt in [self.root(), self.layer()] {
            let mut done = false;
            for _ in 0..50 {
                if Command::new("umount")
                    .arg(&mnt)
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    done = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !done {
                errors.push(format!("umount {}", mnt.display()));
            }
        }
        // The machine's systemd made cgroups under ours: deepest first,
        // once their processes are gone.
        for top in &self.cgroups {
            let mut dirs = vec![top.clone()];
            let mut i = 0;
            while i < dirs.len() {
                if let Ok(rd) = std::fs::read_dir(&dirs[i]) {
                    dirs.extend(
                        rd.flatten()
                            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                            .map(|e| e.path()),
                    );
                }
                i += 1;
            }
            for d in dirs.iter().rev() {
                let t = Instant::now();
                while std::fs::remove_dir(d).is_err() && d.exists() {
                    if t.elapsed() > Duration::from_secs(10) {
                        errors.push(format!("rmdir {}", d.display()));
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        if !errors.is_empty() {
            eprintln!("service_unit teardown left: {errors:?}");
        }
    }
}

fn prerequisites() -> bool {
    root_and_tools(
        "the unit mode tests (a booted systemd machine)",
        &[
            "/usr/sbin/mariadbd",
            "/usr/sbin/dovecot",
            "/usr/lib/postfix/sbin/master",
            "/usr/bin/systemd-nspawn",
            "/usr/bin/nsenter",
            "/usr/bin/memcached",
            "/usr/bin/strace",
            "/usr/sbin/ocf-tester",
            "/usr/bin/xmllint",
        ],
    )
}

fn with(
    base: &[(&'static str, &'static str)],
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = base
        .iter()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
        .copied()
        .collect();
    v.extend_from_slice(extra);
    v
}

#[test]
fn a_service_runs_through_its_systemd_unit() {
    if !prerequisites() {
        return;
    }
    let m = Machine::boot(Cgroups::V2);
    let memcached = MEMCACHED;

    // Stopped: no cgroup.
    assert_eq!(m.rc("monitor", memcached), 7);

    // start: systemctl start, Restart= turned off, the probe answers.
    assert_eq!(m.rc("start", memcached), 0);
    assert_eq!(m.active("memcached.service"), "active");
    assert_eq!(
        m.exec_ok(&[
            "systemctl",
            "show",
            "--property=Restart",
            "--value",
            "memcached.service"
        ]),
        "no",
        "Debian's unit says Restart=always; the drop-in turns it off"
    );
    assert!(
        m.root()
            .join("etc/systemd/system/memcached.service.d/50-mailha.conf")
            .exists()
    );
    assert_eq!(m.rc("monitor", memcached), 0);

    // The monitor creates no process: the cgroup and /proc are read.
    let mut strace = vec!["env", "-i", "PATH=/usr/bin:/bin"];
    let env: Vec<String> = memcached
        .iter()
        .map(|(k, v)| format!("OCF_RESKEY_{k}={v}"))
        .collect();
    strace.extend(env.iter().map(String::as_str));
    strace.push("strace");
    strace.extend(TRACE_PROCESSES);
    let service = format!("{AGENT_DIR}/service");
    strace.extend(["/tmp/monitor.trace", service.as_str(), "monitor"]);
    m.exec_ok(&strace);
    assert_no_process_created(&m.exec_ok(&["cat", "/tmp/monitor.trace"]));

    // kill -9: systemd does not restart it behind the cluster's back; the
    // failed unit has no cgroup, the monitor says not running.
    let pids = m.unit_pids("memcached.service");
    assert_eq!(pids.len(), 1, "{pids:?}");
    m.exec_ok(&["kill", "-9", &pids[0]]);
    m.wait_state("memcached.service", "failed");
    assert_eq!(m.rc("monitor", memcached), 7);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(m.active("memcached.service"), "failed", "not restarted");

    // A failed unit is reset and started again.
    assert_eq!(m.rc("start", memcached), 0);
    assert_eq!(m.rc("monitor", memcached), 0);

    // Stop, twice; then stopped.
    assert_eq!(m.rc("stop", memcached), 0);
    assert_eq!(m.active("memcached.service"), "inactive");
    assert_eq!(m.rc("stop", memcached), 0);
    assert_eq!(m.rc("monitor", memcached), 7);

    // Started outside Pacemaker: running, and the monitor says so.
    m.exec_ok(&["systemctl", "start", "memcached.service"]);
    let t = Instant::now();
    while m.rc("monitor", memcached) != 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "never seen running");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(m.rc("stop", memcached), 0);

    // ocf-tester (resource-agents) in unit mode.
    let mut tester = vec![
        "ocf-tester".to_string(),
        "-n".into(),
        "memcached-unit".into(),
    ];
    for (k, v) in memcached {
        tester.push("-o".into());
        tester.push(format!("{k}={v}"));
    }
    tester.push(service.clone());
    let args: Vec<&str> = tester.iter().map(String::as_str).collect();
    let o = m.exec(&args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && out.contains("passed all tests"),
        "{out}"
    );
    assert_eq!(m.active("memcached.service"), "inactive");
}

#[test]
fn a_units_stop_and_start_are_bounded_and_its_leftovers_are_seen() {
    if !prerequisites() {
        return;
    }
    let m = Machine::boot(Cgroups::V2);

    // A daemon that ignores TERM in a unit that never sends KILL and
    // waits for ever: systemd's stop cannot end it, the agent's does,
    // within the op timeout (6 s) Pacemaker gives it.
    m.add_unit(
        "mailha-stubborn.service",
        "[Service]\nExecStart=/bin/sh -c \"trap '' TERM; exec sleep infinity\"\n\
         SendSIGKILL=no\nTimeoutStopSec=infinity\n",
    );
    let stubborn = [
        ("name", "stubborn"),
        ("unit", "mailha-stubborn.service"),
        ("executable", "/usr/bin/sleep"),
    ];
    assert_eq!(m.rc("start", &stubborn), 0);
    assert_eq!(m.rc("monitor", &stubborn), 0);
    let (rc, err) = m.agent("stop", &stubborn, Some(6000), Duration::from_secs(8));
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("sending KILL"), "{err}");
    assert!(m.unit_pids("mailha-stubborn.service").is_empty());
    assert_eq!(m.rc("monitor", &stubborn), 7);

    // Its main process dies, a child it forked stays (KillMode=process):
    // the unit is failed but not empty; the monitor says failed (1), so
    // Pacemaker stops it, and the stop ends the child.
    m.add_unit(
        "mailha-leaky.service",
        "[Service]\nExecStart=/bin/sh -c \"sleep infinity & exec /usr/bin/memcached -u nobody -l 127.0.0.1 -p 11311\"\n\
         KillMode=process\n",
    );
    let leaky = [
        ("name", "leaky"),
        ("unit", "mailha-leaky.service"),
        ("executable", "/usr/bin/memcached"),
        ("probe", "memcached"),
        ("probe_port", "11311"),
    ];
    assert_eq!(m.rc("start", &leaky), 0);
    let pids = m.unit_pids("mailha-leaky.service");
    assert_eq!(pids.len(), 2, "{pids:?}");
    let main = m.exec_ok(&[
        "systemctl",
        "show",
        "--property=MainPID",
        "--value",
        "mailha-leaky.service",
    ]);
    m.exec_ok(&["kill", "-9", &main]);
    m.wait_state("mailha-leaky.service", "failed");
    let (rc, err) = m.agent("monitor", &leaky, None, Duration::from_secs(30));
    assert_eq!(rc, 1, "{err}");
    assert!(err.contains("its daemon died"), "{err}");
    assert_eq!(m.rc("stop", &leaky), 0);
    assert!(m.unit_pids("mailha-leaky.service").is_empty());
    assert_eq!(m.rc("monitor", &leaky), 7);

    // A unit this machine does not have: not installed here (Pacemaker
    // keeps it off this node), and stopped here.
    let missing = with(MEMCACHED, &[("unit", "mailha-nosuch.service")]);
    let (rc, err) = m.agent("start", &missing, None, Duration::from_secs(60));
    assert_eq!(rc, 5, "{err}");
    assert!(err.contains("not-found"), "{err}");
    assert_eq!(m.rc("stop", &missing), 0);

    // A wrapper that runs nothing of its own (as Debian's postfix.service)
    // could never be monitored: refused, naming the unit to use.
    m.add_unit(
        "mailha-wrapper.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n",
    );
    let wrapper = [("name", "wrapper"), ("unit", "mailha-wrapper.service")];
    let (rc, err) = m.agent("start", &wrapper, None, Duration::from_secs(60));
    assert_eq!(rc, 6, "{err}");
    assert!(err.contains("postfix@-.service"), "{err}");
}

/// The agent's parameters of service `name` as `mailha render cib` gives
/// them for `cfg`.
fn cib_params(cfg: &mailha::config::Config, name: &str) -> Vec<(String, String)> {
    let cib = mailha::cib::render(cfg);
    let p = cib
        .by_id(&format!("svc-{name}"))
        .unwrap_or_else(|| panic!("no svc-{name}"));
    p.find("instance_attributes")
        .unwrap()
        .children
        .iter()
        .map(|nv| {
            (
                nv.get("name").unwrap().into(),
                nv.get("value").unwrap().into(),
            )
        })
        .collect()
}

/// The `postfix` profile as the CIB gives it to the agent: MariaDB,
/// memcached, Postfix and Dovecot run by their Debian units, in order,
/// with the packages' own configuration (a minimal main.cf for Postfix,
/// which Debian installs without one here).
#[test]
fn the_postfix_profile_runs_debians_units() {
    if !prerequisites() {
        return;
    }
    let m = Machine::boot(Cgroups::V2);
    std::fs::write(
        m.root().join("etc/postfix/main.cf"),
        "compatibility_level = 3.6\nmyhostname = mailha-unit.test\n\
         inet_interfaces = loopback-only\nmydestination = localhost\n",
    )
    .unwrap();
    let cfg = load(BASE).unwrap().config;
    let names: Vec<String> = cfg.services.list.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["memcached", "mysql", "dovecot", "postfix"]);
    let params: Vec<Vec<(String, String)>> = names.iter().map(|n| cib_params(&cfg, n)).collect();
    let p = |i: usize| -> Vec<(&str, &str)> {
        params[i]
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    };
    let units = [
        "memcached.service",
        "mariadb.service",
        "dovecot.service",
        "postfix@-.service",
    ];
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(m.rc("monitor", &p(i)), 7, "{unit}");
        let (rc, err) = m.agent("start", &p(i), None, Duration::from_secs(120));
        assert_eq!(rc, 0, "{unit}: {err}");
        assert_eq!(m.active(unit), "active");
        assert_eq!(m.rc("monitor", &p(i)), 0, "{unit}");
    }
    // Postfix's master killed: its unit is failed or on its way there;
    // Pacemaker's recovery (stop, start) brings it back.
    let master = m.exec_ok(&["pgrep", "-x", "master"]);
    m.exec_ok(&["kill", "-9", &master]);
    let (rc, err) = m.agent("monitor", &p(3), None, Duration::from_secs(30));
    assert!(rc == 1 || rc == 7, "{rc}: {err}");
    assert_eq!(m.rc("stop", &p(3)), 0);
    assert_eq!(m.rc("start", &p(3)), 0);
    assert_eq!(m.rc("monitor", &p(3)), 0);
    for (i, unit) in units.iter().enumerate().rev() {
        assert_eq!(m.rc("stop", &p(i)), 0, "{unit}");
        assert_eq!(m.active(unit), "inactive", "{unit}");
        assert_eq!(m.rc("monitor", &p(i)), 7, "{unit}");
    }
}

/// Wherever systemd keeps its units (the v2 tree, a hybrid host's
/// `unified`, cgroup v1's `name=systemd` tree), the agent finds the unit.
#[test]
fn the_unit_is_found_in_every_cgroup_layout() {
    if !prerequisites() {
        return;
    }
    for layout in [Cgroups::HostDefault, Cgroups::Legacy] {
        let m = Machine::boot(layout);
        let root = m.exec_ok(&["ls", "/sys/fs/cgroup"]);
        let has = |d: &str| root.lines().any(|l| l == d);
        let tree = if has("cgroup.controllers") {
            "/sys/fs/cgroup"
        } else if has("unified") {
            "/sys/fs/cgroup/unified"
        } else {
            "/sys/fs/cgroup/systemd"
        };
        eprintln!("{layout:?}: the machine's units are in {tree}");
        if matches!(layout, Cgroups::Legacy) {
            assert_eq!(tree, "/sys/fs/cgroup/systemd", "{root}");
        }
        assert_eq!(m.rc("start", MEMCACHED), 0, "{layout:?}");
        let procs = format!("{tree}/system.slice/memcached.service/cgroup.procs");
        assert!(!m.exec_ok(&["cat", &procs]).is_empty(), "{layout:?}");
        assert_eq!(m.rc("monitor", MEMCACHED), 0, "{layout:?}");
        let pid = m.exec_ok(&["cat", &procs]);
        m.exec_ok(&["kill", "-9", pid.lines().next().unwrap()]);
        m.wait_state("memcached.service", "failed");
        assert_eq!(m.rc("monitor", MEMCACHED), 7, "{layout:?}");
        assert_eq!(m.rc("stop", MEMCACHED), 0, "{layout:?}");
    }
}
