//! The lab's backend 2 (DESIGN section 9): User-mode Linux guests, for
//! what this host's kernel lacks. Here: a real kernel NFS client, so the
//! lease on a file on NFS runs on the code path a customer's machine runs
//! (`tests/uml_lease_nfs.rs`), and a real kernel watchdog (softdog).
//!
//! A guest is one `linux.uml` process (and the host processes it makes
//! for its own, all in its process group), started by us in a process
//! group of its own, so it is powered off by one SIGKILL to exactly that
//! group. Its root is the host's `/` through hostfs, read-only; its `/run`
//! and `/tmp` are tmpfs; its kernel modules are the package's
//! (`/usr/lib/uml/modules`), loaded with `modprobe -d` from a tmpfs root
//! that links to them (no overlay on the read-only root needed).
//! Networking: a tap on the lab's `lan` bridge, the vector transport with
//! `gro=1` (without it TCP loses 25-40% of packets), a fixed MAC.
//!
//! How the host talks to a guest: a mailbox directory shared through
//! hostfs (read-write). The host drops `cmd/N.json` (an argv and a
//! deadline; renamed into place, so never read half-written); PID 1 of
//! the guest (`mailha-lab uml-guest`, `guest_main`) runs it with
//! `exec::run` and answers `out/N.json` (fsynced: hostfs keeps written
//! pages in the guest's cache until then, then renamed). No shell, no
//! network service, no keys; the guest's console goes to `console.log`.
//!
//! Every wait has a deadline: the boot, each command (the guest enforces
//! it, the host waits a margin longer), the power-off.

use mailha::exec::{self, Output};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The UML kernel (Debian `user-mode-linux`).
pub const KERNEL: &str = "/usr/bin/linux.uml";
/// Its modules (NFS client, softdog).
pub const MODULES: &str = "/usr/lib/uml/modules";
/// mount.nfs (Debian `nfs-common`), run inside the guest.
pub const MOUNT_NFS: &str = "/sbin/mount.nfs";
/// The guest's memory (a keeper and mount.nfs need little).
const MEM: &str = "256M";
/// Measured: ~2 s to `ready`; generous, as the host is shared.
const BOOT_DEADLINE: Duration = Duration::from_secs(60);
/// How much longer than a command's deadline the host waits for its
/// answer (the guest's polling, hostfs, a busy host).
const ANSWER_MARGIN: Duration = Duration::from_secs(10);
/// How often each side looks at the mailbox.
const POLL: Duration = Duration::from_millis(20);
/// Where the mailbox appears inside the guest.
pub const GUEST_CTL: &str = "/run/mailha-uml";
/// The guest's copy of mailha, in its directory (`Guest::exe`).
const GUEST_EXE: &str = "mailha";
/// The guest's copy of the lab's binary: its PID 1 (`mailha-lab uml-guest`).
const GUEST_INIT: &str = "mailha-lab";
/// Where background commands' output goes inside the guest (tmpfs: read
/// it with `Guest::log`).
pub const GUEST_LOGS: &str = "/run/mailha-uml-logs";
/// The guest's softdog, set to panic (and the UML process to exit) when
/// it fires: a reset the host can see. The UML kernel's own harddog holds
/// the legacy `/dev/watchdog` (and needs a host helper), so softdog is
/// the second watchdog device.
pub const WATCHDOG: &str = "/dev/watchdog1";

#[derive(Debug, thiserror::Error)]
pub enum UmlError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Exec(#[from] exec::ExecError),
    #[error("{what}: {why}")]
    Failed { what: String, why: String },
    #[error("{guest}: {what}: no answer within {}", humantime::format_duration(*.deadline))]
    Deadline {
        guest: String,
        what: String,
        deadline: Duration,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UmlError {
    let what = what.into();
    move |source| UmlError::Io { what, source }
}

/// One guest as the host starts it.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    /// The guest's host name (the keeper's node name).
    pub name: String,
    /// Its tap on the host, enslaved to `bridge`.
    pub tap: String,
    pub bridge: String,
    /// Its address on the bridge's /24.
    pub addr: Ipv4Addr,
    /// The host directory of its mailbox and console log.
    pub dir: PathBuf,
}

impl GuestSpec {
    /// A fixed, locally administered MAC from the address (DESIGN: a
    /// fixed MAC per node, so a rebooted guest is the same host to the
    /// bridge and the server).
    pub fn mac(&self) -> String {
        let o = self.addr.octets();
        format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    }

    /// The kernel command line; `exe` is the lab's binary, the guest's init.
    /// Arguments after `--` go to init.
    pub fn kernel_args(&self, exe: &Path) -> Vec<String> {
        vec![
            format!("mem={MEM}"),
            "root=/dev/root".into(),
            "rootfstype=hostfs".into(),
            "rootflags=/".into(),
            "ro".into(),
            // mconsole's socket dir in our directory, not ~/.uml.
            format!("uml_dir={}", self.dir.display()),
            format!("umid={}", self.name),
            "con0=fd:0,fd:1".into(),
            "con=null".into(),
            format!(
                "vec0:transport=tap,ifname={},depth=128,gro=1,mac={}",
                self.tap,
                self.mac()
            ),
            format!("init={}", exe.display()),
            "--".into(),
            "uml-guest".into(),
            "--name".into(),
            self.name.clone(),
            "--addr".into(),
            format!("{}/24", self.addr),
            "--ctl".into(),
            self.dir.display().to_string(),
        ]
    }
}

/// A command in the mailbox.
#[derive(Debug, Serialize, Deserialize)]
struct Cmd {
    argv: Vec<String>,
    deadline_ms: u64,
    /// Run in the background, output to this file under `GUEST_LOGS`.
    background: Option<String>,
}

/// Its answer.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    pid: Option<u32>,
    error: Option<String>,
}

/// A running guest. Dropping it powers it off and removes its tap.
pub struct Guest {
    pub spec: GuestSpec,
    child: Option<Child>,
    pub pid: u32,
    seq: u64,
}

/// A command that must succeed, with a deadline (host side: taps; guest
/// side: modules, addresses).
fn checked(argv: &[&str], deadline: Duration) -> Result<(), UmlError> {
    let o = exec::run(argv, &[], None, deadline)?;
    if !o.success() {
        return Err(UmlError::Failed {
            what: argv.join(" "),
            why: o.stderr.trim().to_string(),
        });
    }
    Ok(())
}

fn host_cmd(argv: &[&str]) -> Result<(), UmlError> {
    checked(argv, Duration::from_secs(10))
}

impl Guest {
    /// Creates the tap, starts the kernel, waits until the guest's PID 1
    /// says ready. On failure nothing is left (the guest's Drop). `init`
    /// is the lab's binary (the guest's PID 1), `mailha` the product the
    /// guest runs.
    pub fn boot(spec: GuestSpec, init: &Path, mailha: &Path) -> Result<Guest, UmlError> {
        let _ = std::fs::remove_dir_all(&spec.dir);
        for d in ["cmd", "out"] {
            std::fs::create_dir_all(spec.dir.join(d))
                .map_err(io(format!("{}", spec.dir.display())))?;
        }
        // The guest sees the host's tree, but with tmpfs over /run and
        // /tmp: a binary built under /tmp (a CI clone) would vanish there.
        // A copy in the guest's own directory is reachable both as init
        // (before those mounts) and afterwards through the mailbox.
        let own = spec.dir.join(GUEST_EXE);
        std::fs::copy(mailha, &own).map_err(io(format!("{}", own.display())))?;
        let own_init = spec.dir.join(GUEST_INIT);
        std::fs::copy(init, &own_init).map_err(io(format!("{}", own_init.display())))?;
        let exe = own_init.as_path();
        // A tap of this name is ours (named from the lab's prefix): one
        // left by a run that was killed before its Drop goes first.
        let _ = host_cmd(&["ip", "link", "del", &spec.tap]);
        host_cmd(&["ip", "tuntap", "add", "dev", &spec.tap, "mode", "tap"])?;
        let mut g = Guest {
            spec,
            child: None,
            pid: 0,
            seq: 0,
        };
        host_cmd(&[
            "ip",
            "link",
            "set",
            &g.spec.tap,
            "master",
            &g.spec.bridge,
            "up",
        ])?;
        let console =
            std::fs::File::create(g.spec.dir.join("console.log")).map_err(io("console.log"))?;
        let child = Command::new(KERNEL)
            .args(g.spec.kernel_args(exe))
            .stdin(Stdio::null())
            .stdout(console.try_clone().map_err(io("console.log"))?)
            .stderr(console)
            // Its own process group: the power-off kills exactly it.
            .process_group(0)
            .current_dir(&g.spec.dir)
            .spawn()
            .map_err(io(KERNEL))?;
        g.pid = child.id();
        g.child = Some(child);
        let t0 = Instant::now();
        while !g.spec.dir.join("ready").exists() {
            if let Some(st) = g.exited() {
                return Err(UmlError::Failed {
                    what: format!("booting {}", g.spec.name),
                    why: format!("the kernel exited ({st}): {}", g.console_tail()),
                });
            }
            if t0.elapsed() > BOOT_DEADLINE {
                return Err(UmlError::Deadline {
                    guest: g.spec.name.clone(),
                    what: format!("boot: {}", g.console_tail()),
                    deadline: BOOT_DEADLINE,
                });
            }
            std::thread::sleep(POLL);
        }
        Ok(g)
    }

    /// mailha as the guest runs it: the copy `boot` made, seen through
    /// the mailbox.
    pub fn exe(&self) -> PathBuf {
        Path::new(GUEST_CTL).join(GUEST_EXE)
    }

    /// The last lines of the console.
    pub fn console_tail(&self) -> String {
        let s = std::fs::read_to_string(self.spec.dir.join("console.log")).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The kernel's exit status, if it has exited (a power-off, a panic:
    /// the softdog firing).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Waits up to `deadline` for the kernel to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                return Some(s);
            }
            if t0.elapsed() > deadline {
                return None;
            }
            std::thread::sleep(POLL);
        }
    }

    fn ask(&mut self, cmd: &Cmd, wait: Duration) -> Result<Answer, UmlError> {
        self.seq += 1;
        let name = format!("{:08}.json", self.seq);
        let tmp = self.spec.dir.join("cmd").join(format!(".{name}"));
        std::fs::write(&tmp, serde_json::to_vec(cmd).expect("serializes"))
            .map_err(io(tmp.display().to_string()))?;
        std::fs::rename(&tmp, self.spec.dir.join("cmd").join(&name))
            .map_err(io(tmp.display().to_string()))?;
        let out = self.spec.dir.join("out").join(&name);
        let t0 = Instant::now();
        loop {
            if let Ok(b) = std::fs::read(&out) {
                let _ = std::fs::remove_file(&out);
                let a: Answer = serde_json::from_slice(&b).map_err(|e| UmlError::Failed {
                    what: format!("{}: answer {name}", self.spec.name),
                    why: e.to_string(),
                })?;
                if let Some(e) = a.error {
                    return Err(UmlError::Failed {
                        what: format!("{}: {}", self.spec.name, cmd.argv.join(" ")),
                        why: e,
                    });
                }
                return Ok(a);
            }
            if let Some(st) = self.exited() {
                return Err(UmlError::Failed {
                    what: format!("{}: {}", self.spec.name, cmd.argv.join(" ")),
                    why: format!("the guest is gone ({st})"),
                });
            }
            if t0.elapsed() > wait {
                return Err(UmlError::Deadline {
                    guest: self.spec.name.clone(),
                    what: cmd.argv.join(" "),
                    deadline: wait,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs `argv` in the guest with `deadline` (killed there past it).
    pub fn run(&mut self, argv: &[&str], deadline: Duration) -> Result<Output, UmlError> {
        let cmd = Cmd {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            deadline_ms: deadline.as_millis() as u64,
            background: None,
        };
        let a = self.ask(&cmd, deadline + ANSWER_MARGIN)?;
        Ok(Output {
            code: a.code,
            stdout: a.stdout,
            stderr: a.stderr,
            truncated: false,
        })
    }

    /// Starts `argv` in the guest in the background, its output to `log`
    /// (read with `log`); its PID in the guest.
    pub fn spawn(&mut self, argv: &[&str], log: &str) -> Result<u32, UmlError> {
        let cmd = Cmd {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            deadline_ms: 0,
            background: Some(log.to_string()),
        };
        let a = self.ask(&cmd, ANSWER_MARGIN)?;
        a.pid.ok_or_else(|| UmlError::Failed {
            what: format!("{}: {}", self.spec.name, argv.join(" ")),
            why: "no pid".into(),
        })
    }

    /// A background command's output so far.
    pub fn log(&mut self, log: &str) -> String {
        let p = format!("{GUEST_LOGS}/{log}");
        match self.run(&["/bin/cat", &p], Duration::from_secs(5)) {
            Ok(o) => o.stdout,
            Err(e) => format!("({p}: {e})"),
        }
    }

    /// Pulls the plug: SIGKILL to the guest's process group (ours: we
    /// made it), then reaps the kernel process.
    pub fn power_off(&mut self) {
        if let Some(mut c) = self.child.take() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(self.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let t0 = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t0.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(POLL);
            }
            // The kernel's helper processes share its group; a last
            // SIGKILL to the group catches any that outlived it.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(self.pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            self.child = Some(c);
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.power_off();
        let _ = exec::run(
            &["ip", "link", "del", &self.spec.tap],
            &[],
            None,
            Duration::from_secs(10),
        );
    }
}

/// PID 1 of a guest (`mailha-lab uml-guest`): makes the read-only host
/// root a small machine (tmpfs /run and /tmp, modules, the address, the
/// host name), says ready, then serves the mailbox for ever.
pub fn guest_main(name: &str, addr: &str, ctl: &Path) -> Result<(), UmlError> {
    use nix::mount::{MsFlags, mount};
    let m = |src: &str, dst: &str, fs: &str, data: Option<&str>| {
        mount(Some(src), dst, Some(fs), MsFlags::empty(), data).map_err(|e| UmlError::Failed {
            what: format!("mount {fs} on {dst}"),
            why: e.to_string(),
        })
    };
    m("proc", "/proc", "proc", None)?;
    m("sys", "/sys", "sysfs", None)?;
    m("tmpfs", "/run", "tmpfs", Some("mode=0755"))?;
    m("tmpfs", "/tmp", "tmpfs", Some("mode=1777"))?;
    for d in [GUEST_CTL, GUEST_LOGS] {
        std::fs::create_dir_all(d).map_err(io(d))?;
    }
    m(
        "none",
        GUEST_CTL,
        "hostfs",
        Some(&ctl.display().to_string()),
    )?;
    // modprobe -d ROOT looks in ROOT/lib/modules/$(uname -r).
    let release = nix::sys::utsname::uname()
        .map_err(|e| UmlError::Failed {
            what: "uname".into(),
            why: e.to_string(),
        })?
        .release()
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir_all("/run/modroot/lib/modules").map_err(io("/run/modroot"))?;
    std::os::unix::fs::symlink(
        Path::new(MODULES).join(&release),
        Path::new("/run/modroot/lib/modules").join(&release),
    )
    .map_err(io("/run/modroot"))?;
    let t = Duration::from_secs(20);
    let steps: [&[&str]; 6] = [
        &["/usr/sbin/modprobe", "-d", "/run/modroot", "nfsv3"],
        &["/usr/sbin/modprobe", "-d", "/run/modroot", "nfsv4"],
        &[
            "/usr/sbin/modprobe",
            "-d",
            "/run/modroot",
            "softdog",
            "soft_panic=1",
        ],
        &["/usr/sbin/ip", "link", "set", "lo", "up"],
        &["/usr/sbin/ip", "addr", "add", addr, "dev", "vec0"],
        &["/usr/sbin/ip", "link", "set", "vec0", "up"],
    ];
    for argv in steps {
        checked(argv, t)?;
    }
    nix::unistd::sethostname(name).map_err(|e| UmlError::Failed {
        what: "sethostname".into(),
        why: e.to_string(),
    })?;
    write_synced(&Path::new(GUEST_CTL).join("ready"), b"ready\n")?;
    serve_mailbox(Path::new(GUEST_CTL))
}

/// Writes and fsyncs (hostfs keeps pages in the guest until then), then
/// renames into place.
fn write_synced(path: &Path, data: &[u8]) -> Result<(), UmlError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io(tmp.display().to_string()))?;
    f.write_all(data).map_err(io(tmp.display().to_string()))?;
    f.sync_all().map_err(io(tmp.display().to_string()))?;
    std::fs::rename(&tmp, path).map_err(io(path.display().to_string()))
}

fn serve_mailbox(ctl: &Path) -> Result<(), UmlError> {
    let cmd_dir = ctl.join("cmd");
    let out_dir = ctl.join("out");
    let mut children: Vec<Child> = Vec::new();
    loop {
        // PID 1 reaps: our background children, and orphans.
        children.retain_mut(|c| c.try_wait().ok().flatten().is_none());
        while let Ok(s) = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(-1),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) {
            if s == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        let mut names: Vec<String> = std::fs::read_dir(&cmd_dir)
            .map_err(io(cmd_dir.display().to_string()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
            .collect();
        names.sort();
        for name in names {
            let p = cmd_dir.join(&name);
            let answer = match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Cmd>(&b).map_err(|e| e.to_string()))
            {
                Err(e) => Answer::error(e),
                Ok(c) => execute(c, &mut children),
            };
            let _ = std::fs::remove_file(&p);
            write_synced(
                &out_dir.join(&name),
                &serde_json::to_vec(&answer).expect("serializes"),
            )?;
        }
        std::thread::sleep(POLL);
    }
}

impl Answer {
    fn error(e: String) -> Answer {
        Answer {
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            pid: None,
            error: Some(e),
        }
    }
}

fn execute(c: Cmd, children: &mut Vec<Child>) -> Answer {
    if c.argv.is_empty() {
        return Answer::error("an empty argv".into());
    }
    if let Some(log) = c.background {
        let path = Path::new(GUEST_LOGS).join(&log);
        let f = match std::fs::File::create(&path) {
            Ok(f) => f,
            Err(e) => return Answer::error(format!("{}: {e}", path.display())),
        };
        let err = match f.try_clone() {
            Ok(f) => f,
            Err(e) => return Answer::error(e.to_string()),
        };
        return match Command::new(&c.argv[0])
            .args(&c.argv[1..])
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(err)
            .spawn()
        {
            Ok(child) => {
                let pid = child.id();
                children.push(child);
                Answer {
                    code: None,
                    stdout: String::new(),
                    stderr: String::new(),
                    pid: Some(pid),
                    error: None,
                }
            }
            Err(e) => Answer::error(format!("{}: {e}", c.argv[0])),
        };
    }
    match exec::run(&c.argv, &[], None, Duration::from_millis(c.deadline_ms)) {
        Ok(o) => Answer {
            code: o.code,
            stdout: o.stdout,
            stderr: o.stderr,
            pid: None,
            error: None,
        },
        Err(e) => Answer::error(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GuestSpec {
        GuestSpec {
            name: "node1".into(),
            tap: "mhuu1".into(),
            bridge: "mhulan".into(),
            addr: Ipv4Addr::new(198, 51, 100, 41),
            dir: "/var/lib/mailha-lab-mhu-uml/node1".into(),
        }
    }

    #[test]
    fn a_guest_has_a_fixed_locally_administered_mac_from_its_address() {
        assert_eq!(spec().mac(), "02:00:c6:33:64:29");
    }

    #[test]
    fn the_kernel_line_roots_on_the_hosts_tree_read_only_and_hands_init_its_arguments() {
        let a = spec().kernel_args(Path::new("/usr/sbin/mailha"));
        for want in [
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            "init=/usr/sbin/mailha",
            "uml_dir=/var/lib/mailha-lab-mhu-uml/node1",
            "vec0:transport=tap,ifname=mhuu1,depth=128,gro=1,mac=02:00:c6:33:64:29",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} in {a:?}");
        }
        let after: Vec<&str> = a
            .iter()
            .skip_while(|x| *x != "--")
            .skip(1)
            .map(String::as_str)
            .collect();
        assert_eq!(
            after,
            [
                "uml-guest",
                "--name",
                "node1",
                "--addr",
                "198.51.100.41/24",
                "--ctl",
                "/var/lib/mailha-lab-mhu-uml/node1"
            ]
        );
    }

    #[test]
    fn a_command_and_its_answer_cross_the_mailbox_as_json() {
        let c = Cmd {
            argv: vec!["/bin/true".into()],
            deadline_ms: 500,
            background: None,
        };
        let back: Cmd = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back.argv, c.argv);
        let mut kids = Vec::new();
        let a = execute(back, &mut kids);
        assert_eq!((a.code, a.error), (Some(0), None));
        let a = execute(
            Cmd {
                argv: vec![],
                deadline_ms: 1,
                background: None,
            },
            &mut kids,
        );
        assert!(a.error.is_some());
    }
}
