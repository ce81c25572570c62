//! The lab's NFS server (DESIGN section 9): nfs-ganesha (userspace: this
//! kernel has no NFS server) in the `nfs` network namespace at
//! 198.51.100.30, exporting `{base}/nfs/export` as `/export` (NFSv4
//! pseudo path) and by its path (NFSv3), over TCP.
//!
//! Why rpcbind too: ganesha registers its programs with the portmapper at
//! start and exits when it cannot (measured here: "Cannot register NFS V3
//! on UDP", exit status 2). rpcbind is found through a file,
//! `/run/rpcbind.sock`, and unix sockets cross network namespaces, so a
//! second lab's (or the host's) rpcbind would be shared: both daemons run
//! in a mount namespace of their own (a slave of the host's, so the
//! host's unmounts still reach it) with a private tmpfs on `/run`;
//! rpcbind first, ganesha joining its network and mount namespaces.
//! Both are started by hand, their host PIDs and start times recorded in
//! the lab state before anything waits on them, so `lab down` kills
//! exactly them.
//!
//! `lab up` always starts it (with `--infra-only` too): the drills and
//! tests need the server whatever the cluster's config says, the
//! cluster's data cannot be on NFS here anyway (no NFS client), and it
//! costs ~1 s and ~20 MB.
//!
//! Faults (`Fault`): freeze (SIGSTOP: the kernel still completes TCP
//! connects, nothing answers) and partition (an nft drop table in the nfs
//! namespace: connects time out). `restore` undoes either.

use super::cmd::Cmd;
use super::state::{ProcRec, State};
use super::topology::Aux;
use super::{Lab, LabError};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The NFS port (ganesha's default; rpcbind knows it too).
pub const PORT: u16 = 2049;
/// The export's NFSv4 pseudo path.
pub const PSEUDO: &str = "/export";
/// The nft table a partition adds in the nfs namespace.
pub const CUT_TABLE: &str = "mailha_nfs_cut";
/// A file the export carries, so a client can show it reads real data.
pub const HELLO: &str = "hello.txt";
pub const HELLO_TEXT: &str = "served by the lab's nfs-ganesha\n";

const RPCBIND: &str = "/usr/sbin/rpcbind";
const GANESHA: &str = "/usr/bin/ganesha.nfsd";
/// rpcbind's socket appearing; ganesha answering an RPC NULL call
/// (measured: ~1 s; its grace period does not delay NULL calls).
const RPCBIND_DEADLINE: Duration = Duration::from_secs(5);
const GANESHA_DEADLINE: Duration = Duration::from_secs(20);
/// The deadline of `lab nfs status`'s RPC NULL call.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// TERM -> gone, before KILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The programs the server needs (checked by `lab up`'s prerequisites).
pub const PROGRAMS: [&str; 2] = [RPCBIND, GANESHA];

pub fn addr() -> Ipv4Addr {
    Aux::Nfs.addr()
}

/// `host:/export`, as the storage agent's `nfs` parameter names it.
pub fn export_spec() -> String {
    format!("{}:{PSEUDO}", addr())
}

/// The server's files: `{base}/nfs/{ganesha.conf,export/,recovery/,*.log}`.
pub fn dir(base_dir: &Path) -> PathBuf {
    base_dir.join("nfs")
}

pub fn export_dir(base_dir: &Path) -> PathBuf {
    dir(base_dir).join("export")
}

pub fn log_file(base_dir: &Path) -> PathBuf {
    dir(base_dir).join("ganesha.log")
}

/// ganesha.conf: NFSv3 and v4 over TCP, no NLM/RQUOTA (nothing here would
/// use them), a short grace period (a freshly started lab has no clients
/// to wait for), the recovery state under our dir instead of /var/lib/nfs.
pub fn ganesha_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# written by `mailha lab up`: the lab's NFS server
NFS_CORE_PARAM {{
  NFS_Port = {PORT};
  Protocols = 3, 4;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}}
NFSV4 {{
  RecoveryBackend = fs;
  RecoveryRoot = {d}/recovery;
  Grace_Period = 5;
  Lease_Lifetime = 5;
}}
EXPORT {{
  Export_Id = 1;
  Path = {d}/export;
  Pseudo = {PSEUDO};
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3, 4;
  Transports = TCP;
  SecType = sys;
  FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"
    )
}

/// How the server breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGSTOP of ganesha: connects still complete, no RPC is answered.
    Freeze,
    /// Every packet to the nfs namespace dropped: connects time out.
    Partition,
}

impl Fault {
    pub fn parse(s: &str) -> Option<Fault> {
        match s {
            "freeze" => Some(Fault::Freeze),
            "partition" => Some(Fault::Partition),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Fault::Freeze => "freeze",
            Fault::Partition => "partition",
        }
    }
}

/// The nft commands (argv) of a partition in the nfs namespace: every
/// packet in or out of its lan interface dropped (loopback untouched).
pub fn partition_argvs() -> Vec<Vec<&'static str>> {
    super::plan::nft_drop(CUT_TABLE, &["iifname", "eth0"], &["oifname", "eth0"])
}

/// An RPC NULL call to the lab's server from inside network namespace
/// `ns` (a thread that joined it: setns of a network namespace is per
/// thread). The storage agent's own probe, `agents::storage::nfs::ping`.
pub fn ping_in_netns(ns: &str, timeout: Duration) -> Result<(), String> {
    let path = Path::new("/run/netns").join(ns);
    let f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let h = std::thread::spawn(move || -> Result<(), String> {
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        mailha::agents::storage::nfs::ping(&addr().to_string(), PORT, timeout)
    });
    h.join()
        .map_err(|_| "the probe thread panicked".to_string())?
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) -> Result<(), String> {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig)
        .map_err(|e| format!("kill -{sig} {pid}: {e}"))
}

impl Lab<'_> {
    fn nfs_netns(&self) -> String {
        self.topo.netns(Aux::Nfs)
    }

    /// Starts rpcbind and ganesha in the nfs namespace (which exists:
    /// `plan::aux_links`) and waits until ganesha answers an RPC NULL call.
    pub(super) fn nfs_up(&self, st: &mut State) -> Result<(), LabError> {
        let missing: Vec<String> = PROGRAMS
            .iter()
            .filter(|p| !Path::new(p).exists())
            .map(|p| p.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(LabError::Prerequisites(missing));
        }
        let d = dir(&self.base_dir);
        for sub in [d.join("export"), d.join("recovery")] {
            std::fs::create_dir_all(&sub).map_err(LabError::io(&sub))?;
        }
        let conf = d.join("ganesha.conf");
        std::fs::write(&conf, ganesha_conf(&d)).map_err(LabError::io(&conf))?;
        let hello = d.join("export").join(HELLO);
        std::fs::write(&hello, HELLO_TEXT).map_err(LabError::io(&hello))?;
        let netns_path = Path::new("/run/netns").join(self.nfs_netns());
        let net = std::fs::File::open(&netns_path).map_err(LabError::io(&netns_path))?;

        let out = |name: &str| -> Result<(std::fs::File, std::fs::File), LabError> {
            let p = d.join(name);
            let f = std::fs::File::create(&p).map_err(LabError::io(&p))?;
            let g = f.try_clone().map_err(LabError::io(&p))?;
            Ok((f, g))
        };
        let (o, e) = out("rpcbind.out")?;
        let mut c = Command::new(RPCBIND);
        c.arg("-f")
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .process_group(0);
        // SAFETY: only syscalls between fork and exec (paths are short
        // literals: nix builds their C strings on the stack).
        unsafe {
            c.pre_exec(move || {
                use nix::mount::{MsFlags, mount};
                use nix::sched::{CloneFlags, setns, unshare};
                setns(&net, CloneFlags::CLONE_NEWNET)?;
                unshare(CloneFlags::CLONE_NEWNS)?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_SLAVE,
                    None::<&str>,
                )?;
                mount(
                    Some("tmpfs"),
                    "/run",
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some("mode=0755,size=16m"),
                )?;
                Ok(())
            });
        }
        let rpcbind = self.spawn_recorded(st, "rpcbind", &mut c)?;

        let sock = self
            .proc_root
            .join(rpcbind.to_string())
            .join("root/run/rpcbind.sock");
        let t = Instant::now();
        while !sock.exists() {
            if t.elapsed() > RPCBIND_DEADLINE {
                return Err(LabError::Cluster(format!(
                    "rpcbind in {} made no socket within {RPCBIND_DEADLINE:?}",
                    self.nfs_netns()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        let ns_of = |kind: &str| {
            let p = self.proc_root.join(format!("{rpcbind}/ns/{kind}"));
            std::fs::File::open(&p).map_err(LabError::io(&p))
        };
        let (net, mnt) = (ns_of("net")?, ns_of("mnt")?);
        let (o, e) = out("ganesha.out")?;
        let mut c = Command::new(GANESHA);
        c.arg("-F")
            .arg("-L")
            .arg(log_file(&self.base_dir))
            .arg("-f")
            .arg(&conf)
            .arg("-p")
            .arg(d.join("ganesha.pid"))
            .stdin(Stdio::null())
            .stdout(o)
            .stderr(e)
            .process_group(0);
        // SAFETY: only syscalls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                use nix::sched::{CloneFlags, setns};
                setns(&net, CloneFlags::CLONE_NEWNET)?;
                setns(&mnt, CloneFlags::CLONE_NEWNS)?;
                nix::unistd::chdir("/")?;
                Ok(())
            });
        }
        let ganesha = self.spawn_recorded(st, "ganesha", &mut c)?;

        let t = Instant::now();
        loop {
            let last = match ping_in_netns(&self.nfs_netns(), Duration::from_millis(500)) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if !self.proc_root.join(ganesha.to_string()).exists() || t.elapsed() > GANESHA_DEADLINE
            {
                let log = std::fs::read_to_string(log_file(&self.base_dir)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(LabError::Cluster(format!(
                    "nfs-ganesha did not answer within {GANESHA_DEADLINE:?} ({last}); its log ends: {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Spawns a long-lived daemon (never waited for: `lab down` ends it)
    /// and records it in the state at once.
    fn spawn_recorded(&self, st: &mut State, name: &str, c: &mut Command) -> Result<u32, LabError> {
        let child = c.spawn().map_err(LabError::io(Path::new(name)))?;
        let pid = child.id();
        let start_time = super::proc::identity(&self.proc_root, pid)
            .map(|(_, t)| t)
            .ok_or_else(|| LabError::Cluster(format!("{name} (pid {pid}) exited at once")))?;
        st.nfs.push(ProcRec {
            name: name.to_string(),
            pid,
            start_time,
        });
        self.store.save(st)?;
        Ok(pid)
    }

    /// Ends the recorded NFS daemons, ganesha first: SIGCONT (a stopped
    /// process does not act on TERM), TERM, then KILL after a grace time.
    /// Returns what it did; errors as text (`down` collects them).
    pub(super) fn nfs_down(&self, st: &State) -> (Vec<String>, Vec<String>) {
        use nix::sys::signal::Signal;
        let (mut done, mut errors) = (Vec::new(), Vec::new());
        let alive = |r: &ProcRec| super::proc::is_alive(&self.proc_root, r.pid, r.start_time);
        for r in st.nfs.iter().rev().filter(|r| alive(r)) {
            for sig in [Signal::SIGCONT, Signal::SIGTERM] {
                if let Err(e) = signal(r.pid, sig) {
                    errors.push(e);
                }
            }
            let t = Instant::now();
            while alive(r) && t.elapsed() < STOP_GRACE {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive(r) {
                let _ = signal(r.pid, Signal::SIGKILL);
                let t = Instant::now();
                while alive(r) && t.elapsed() < STOP_GRACE {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            if alive(r) {
                errors.push(format!("{} (pid {}) survived KILL", r.name, r.pid));
            } else {
                done.push(format!("stopped {} (pid {})", r.name, r.pid));
            }
        }
        (done, errors)
    }

    /// The running ganesha's record (identity-checked).
    fn ganesha(&self) -> Result<ProcRec, LabError> {
        let st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        st.nfs
            .iter()
            .find(|r| r.name == "ganesha")
            .filter(|r| super::proc::is_alive(&self.proc_root, r.pid, r.start_time))
            .cloned()
            .ok_or_else(|| LabError::Cluster("the lab's nfs-ganesha is not running".into()))
    }

    fn in_nfs_netns(&self, argv: &[&str]) -> Result<(), LabError> {
        let c = Cmd::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.nfs_netns()))
            .arg("--")
            .args(argv.iter().copied())
            .deadline(Duration::from_secs(10));
        self.runner.run_ok(&c)?;
        Ok(())
    }

    /// Breaks the NFS server.
    pub fn nfs_fault(&self, f: Fault) -> Result<(), LabError> {
        match f {
            Fault::Freeze => {
                let g = self.ganesha()?;
                signal(g.pid, nix::sys::signal::Signal::SIGSTOP).map_err(LabError::Cluster)?;
                // The stop reaches every thread asynchronously (one in the
                // kernel stops when it returns): the fault is in place
                // once the process shows as stopped, not when kill returns
                // (a status read at once saw it still running).
                let t = Instant::now();
                while !self.stopped(g.pid) {
                    if t.elapsed() > Duration::from_secs(5) {
                        return Err(LabError::Cluster(format!(
                            "nfs-ganesha ({}) not stopped 5 s after SIGSTOP",
                            g.pid
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(())
            }
            Fault::Partition => {
                // A table left by an interrupted drill would make `add
                // table` succeed anyway, and the rules double: start clean.
                let _ = self.in_nfs_netns(&["nft", "delete", "table", "inet", CUT_TABLE]);
                for argv in partition_argvs() {
                    self.in_nfs_netns(&argv)?;
                }
                Ok(())
            }
        }
    }

    /// Undoes `nfs_fault(f)`; safe to call when it is not in place.
    pub fn nfs_restore(&self, f: Fault) -> Result<(), LabError> {
        match f {
            Fault::Freeze => {
                let g = self.ganesha()?;
                signal(g.pid, nix::sys::signal::Signal::SIGCONT).map_err(LabError::Cluster)
            }
            Fault::Partition => {
                let c = Cmd::new("nsenter")
                    .arg(format!("--net=/run/netns/{}", self.nfs_netns()))
                    .args(["--", "nft", "delete", "table", "inet", CUT_TABLE])
                    .deadline(Duration::from_secs(10));
                // Absent already: nothing to undo.
                let _ = self.runner.run(&c)?;
                Ok(())
            }
        }
    }

    /// Whether `pid` is stopped (state T in /proc/PID/stat).
    fn stopped(&self, pid: u32) -> bool {
        let stat =
            std::fs::read_to_string(self.proc_root.join(format!("{pid}/stat"))).unwrap_or_default();
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            == Some("T")
    }

    /// Whether the server is frozen / partitioned now and whether it
    /// answers an RPC NULL call from the client namespace (`lab nfs`).
    pub fn nfs_state(&self) -> Result<serde_json::Value, LabError> {
        let g = self.ganesha()?;
        let frozen = self.stopped(g.pid);
        let c = Cmd::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.nfs_netns()))
            .args(["--", "nft", "list", "table", "inet", CUT_TABLE])
            .deadline(Duration::from_secs(10));
        let partitioned = self.runner.run(&c)?.success();
        // From the client namespace: a partition drops the lan side only.
        let t = Instant::now();
        let answers = ping_in_netns(&self.topo.netns(Aux::Client), PROBE_TIMEOUT);
        Ok(serde_json::json!({
            "export": export_spec(),
            "ganesha_pid": g.pid,
            "frozen": frozen,
            "partitioned": partitioned,
            "answers": answers.is_ok(),
            "probe_ms": t.elapsed().as_millis() as u64,
            "probe_timeout_ms": PROBE_TIMEOUT.as_millis() as u64,
            "error": answers.err(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_lives_at_the_reserved_address() {
        assert_eq!(export_spec(), "198.51.100.30:/export");
    }

    #[test]
    fn the_config_exports_one_directory_over_tcp_and_keeps_state_in_our_dir() {
        let c = ganesha_conf(Path::new("/var/lib/mailha-lab-x/nfs"));
        assert!(
            c.contains("Path = /var/lib/mailha-lab-x/nfs/export;"),
            "{c}"
        );
        assert!(c.contains("Pseudo = /export;"), "{c}");
        assert!(
            c.contains("RecoveryRoot = /var/lib/mailha-lab-x/nfs/recovery;"),
            "{c}"
        );
        assert!(c.contains("Transports = TCP;"), "{c}");
        assert_eq!(c.matches('{').count(), c.matches('}').count());
    }

    #[test]
    fn faults_parse_by_name() {
        for f in [Fault::Freeze, Fault::Partition] {
            assert_eq!(Fault::parse(f.name()), Some(f));
        }
        assert_eq!(Fault::parse("hang"), None);
    }

    #[test]
    fn a_partition_drops_the_lan_side_only() {
        let v = partition_argvs();
        assert!(v.iter().all(|a| a[0] == "nft" && a.contains(&CUT_TABLE)));
        assert!(v.iter().any(|a| a.ends_with(&["iifname", "eth0", "drop"])));
        assert!(v.iter().any(|a| a.ends_with(&["oifname", "eth0", "drop"])));
    }
}
