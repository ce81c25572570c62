//! A lab node: a Debian machine that boots systemd, as an administrator's
//! server does (DESIGN section 9, "Nodes that boot systemd").
//!
//! - **Its disk**: an overlay whose lower layer is the host's root
//!   filesystem (read-only: the host's packages are the node's) and whose
//!   upper layer lives on a tmpfs of the node's own (`{base}/nodeN/layer`;
//!   an upper on the host's root filesystem would lie inside the lower one,
//!   which overlayfs refuses). Everything the node writes (its config, the
//!   CIB, its journal, packages it installs) lands there and survives the
//!   node's resets: the tmpfs is the host's, not the node's. `lab down`
//!   throws it away.
//! - **Its boot**: `systemd-nspawn -b` on that tree, with systemd as PID 1,
//!   journald, its own hostname, machine-id and network (two veths that
//!   nspawn makes, whose host ends the lab puts on the bridges), booted
//!   from a cgroup of its own in every hierarchy (nspawn, told not to
//!   register with a machined the host does not have, uses the cgroup it
//!   starts in; two nodes started from one cgroup would collide), with the
//!   pure cgroup v2 a Debian 12 machine has.
//! - **Its devices**: the node's OWN loop devices for the shared images and
//!   its watchdog FIFO are bound into `/dev/lab` at every boot, so units
//!   that start at boot (the lease keeper) find them.
//! - **Power**: a reset is `cgroup.kill` of the node's cgroup (every
//!   process at once, frozen ones too, like SIGKILL to its PID 1); a freeze
//!   is `cgroup.freeze` of that cgroup.
//!
//! Every command inside a node runs through `nsenter -t PID1 -a`.

use super::cmd::Cmd;
use super::plan;
use super::state::NodeRec;
use super::topology::{NODES, Net, Topology};
use super::{Lab, LabError};
use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a node may take from `systemd-nspawn` to a running system.
pub const BOOT_DEADLINE: Duration = Duration::from_secs(90);
/// How long a killed node may take to have no process left (a process in
/// D state on a hung disk keeps it; the watchdog fails that path first).
pub const POWER_OFF_DEADLINE: Duration = Duration::from_secs(10);
/// The node's tmpfs: a cap, not a reservation (it holds what the node
/// writes: configs, the CIB, logs, installed packages).
const LAYER_SIZE: &str = "2g";

/// Where a node lives on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDirs {
    /// `{base}/nodeN`.
    pub dir: PathBuf,
    /// The tmpfs holding the overlay's upper and work directories.
    pub layer: PathBuf,
    /// The node's root: the overlay's mount point (what the host reads and
    /// writes as the node's disk).
    pub root: PathBuf,
    /// The node's `/dev/lab`: device nodes of its own loop devices and its
    /// watchdog FIFO, in a directory bound into the node at each boot (the
    /// directory, not each node: a stock Filesystem agent unmounts every
    /// mount of its device, and a bound device node is one).
    pub dev: PathBuf,
    /// The FIFO the node's keeper pets (`/dev/lab/watchdog` inside).
    pub fifo: PathBuf,
    /// systemd-nspawn's output: the node's console.
    pub console: PathBuf,
    /// systemd-nspawn's exit status for the boot that ended (`boot_argv`):
    /// 133 when the node rebooted itself (reboot(2) inside it).
    pub exit: PathBuf,
}

impl NodeDirs {
    pub fn new(base: &Path, node: &str) -> NodeDirs {
        let dir = base.join(node);
        NodeDirs {
            layer: dir.join("layer"),
            root: plan::node_root(base, node),
            dev: dir.join("dev"),
            fifo: dir.join("dev").join("watchdog"),
            console: dir.join("console.log"),
            exit: dir.join("nspawn.exit"),
            dir,
        }
    }

    pub fn upper(&self) -> PathBuf {
        self.layer.join("upper")
    }

    pub fn work(&self) -> PathBuf {
        self.layer.join("work")
    }
}

/// The commands that give a node its disk: the tmpfs, its directories,
/// then the overlay (both under the lab's shared base dir: `base_mount`).
pub fn mount_cmds(d: &NodeDirs, node: &str, lower: &Path) -> [Cmd; 3] {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.display(),
        d.upper().display(),
        d.work().display()
    );
    [
        Cmd::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("mode=0755,size={LAYER_SIZE}"))
            .arg(format!("layer-{node}"))
            .arg(d.layer.display().to_string()),
        Cmd::new("mkdir")
            .arg("-p")
            .arg(d.upper().display().to_string())
            .arg(d.work().display().to_string()),
        Cmd::new("mount")
            .args(["-t", "overlay", "-o"])
            .arg(opts)
            .arg(format!("root-{node}"))
            .arg(d.root.display().to_string()),
    ]
}

/// The lab's base dir bound onto itself and made recursively shared, before
/// anything is mounted under it. Mount namespaces made later as slaves of
/// the host's (the lab's fusedisk, NFS and load processes; another lab's)
/// take copies of the nodes' disks; an unmount reaches those copies only
/// when the unmounted mount's parent is shared (the host's own mounts are
/// private), and without that a copy would keep a node's whole disk (its
/// tmpfs) alive until that process ends. What such a namespace keeps after
/// `lab down` is only the empty bind of the base dir.
pub fn base_mount_cmds(base: &Path) -> [Cmd; 2] {
    let b = base.display().to_string();
    [
        Cmd::new("mount").args(["--bind", &b, &b]),
        Cmd::new("mount").args(["--make-rshared", &b]),
    ]
}

/// One cgroup hierarchy mounted on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub dir: PathBuf,
    /// cgroup v2 (the unified hierarchy: freeze and kill live there).
    pub v2: bool,
    /// A v1 cpuset hierarchy: a new cgroup there takes no process until
    /// its cpus and mems are set.
    pub cpuset: bool,
}

/// Every cgroup hierarchy in `mountinfo` (the host's /proc/self/mountinfo).
pub fn hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mount_point = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let super_opts = r.nth(1).unwrap_or("");
            (fstype == "cgroup" || fstype == "cgroup2").then(|| Hierarchy {
                v2: fstype == "cgroup2",
                cpuset: fstype == "cgroup" && super_opts.split(',').any(|o| o == "cpuset"),
                dir: PathBuf::from(mount_point),
            })
        })
        .collect()
}

/// Each node's real-time budget where cgroups ration it (microseconds
/// per CPU per second): far above what corosync and the keeper use (they
/// sleep between heartbeats), low enough that a runaway real-time task
/// in one node leaves the host and the other node running.
pub const NODE_RT_RUNTIME_US: u64 = 200_000;

/// How a node boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootTarget {
    /// The machine's default: everything enabled starts (the lease keeper,
    /// corosync and Pacemaker once `mailha setup` enabled them).
    Default,
    /// Up to basic.target: nothing of the cluster, no sshd; a drill sets
    /// its faults up, then starts `multi-user.target`.
    Basic,
}

/// What one boot of a node is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub node: String,
    pub root: PathBuf,
    /// (host end, name inside): eth0 on lan, eth1 on hb.
    pub veths: Vec<(String, String)>,
    /// (host path, path inside): the node's /dev/lab, /dev/fuse.
    pub binds: Vec<(PathBuf, String)>,
    /// Host paths the node must not reach through its lower layer (the
    /// lab's base dir: the images behind its loop devices), each covered
    /// by an empty tmpfs (nspawn's --inaccessible needs a host systemd's
    /// /run/systemd/inaccessible).
    pub inaccessible: Vec<PathBuf>,
    pub target: BootTarget,
}

/// The argv of one boot.
pub fn nspawn_argv(l: &Launch) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "systemd-nspawn".into(),
        "--quiet".into(),
        // No machined on the host; the cgroup we start in is the node's.
        "--register=no".into(),
        "--keep-unit".into(),
        "--boot".into(),
        format!("--directory={}", l.root.display()),
        format!("--hostname={}", l.node),
        format!("--machine={}", l.node),
        // The node's own /etc/resolv.conf and timezone stay as the lab
        // wrote them.
        "--resolv-conf=off".into(),
        "--timezone=off".into(),
        // Its journal is its own (persistent in its /var/log/journal).
        "--link-journal=no".into(),
        "--console=read-only".into(),
        // What root has on a real server and nspawn withholds by default:
        // the lease keeper locks its memory (mlockall) and asks the OOM
        // killer to pass it over, as sbd does. (A host that lacks one
        // itself, as this one lacks CAP_SYS_RESOURCE, cannot pass it on:
        // the keeper then says what it could not do.)
        "--capability=CAP_IPC_LOCK,CAP_SYS_RESOURCE".into(),
    ];
    for (host, inner) in &l.veths {
        v.push(format!("--network-veth-extra={host}:{inner}"));
    }
    for (host, inner) in &l.binds {
        v.push(format!("--bind={}:{inner}", host.display()));
    }
    for p in &l.inaccessible {
        v.push(format!("--tmpfs={}:mode=0000,size=4k", p.display()));
    }
    if l.target == BootTarget::Basic {
        // systemd in a container reads its own arguments as the kernel
        // command line.
        v.push("--".into());
        v.push("systemd.unit=basic.target".into());
    }
    v
}

/// systemd-nspawn's exit status when its container rebooted itself
/// (systemd-nspawn(1): with `--keep-unit` it exits instead of booting the
/// container again, so that its caller does what a service manager would).
pub const REBOOTED: i32 = 133;

/// The argv that runs one boot's `nspawn` and then records its exit status
/// in `exit` (written whole: a temporary file renamed). The lab's process
/// that starts a boot does not live as long as the boot (`lab up` exits),
/// so the status would otherwise be lost; a small shell in the node's
/// cgroup waits for nspawn instead, and goes with the boot.
pub fn boot_argv(exit: &Path, nspawn: &[String]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        r#""$@"; echo $? > "$0.tmp" && mv "$0.tmp" "$0""#.into(),
        exit.display().to_string(),
    ];
    v.extend_from_slice(nspawn);
    v
}

/// The exit status the last boot of a node's nspawn recorded, once there.
pub fn exit_status(d: &NodeDirs) -> Option<i32> {
    std::fs::read_to_string(&d.exit).ok()?.trim().parse().ok()
}

/// The host path of a node's cgroup in `h`.
pub fn cgroup_dir(h: &Hierarchy, name: &str) -> PathBuf {
    h.dir.join(name)
}

/// Among `pids`, the container's init: the process whose innermost PID
/// (the last field of `NSpid:` in /proc/PID/status) is 1 in a nested PID
/// namespace.
pub fn is_container_init(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|rest| {
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.len() >= 2 && f.last() == Some(&"1")
        })
        .unwrap_or(false)
}

impl Lab<'_> {
    /// Makes the base dir a shared mount of its own (`base_mount_cmds`);
    /// idempotent.
    pub fn mount_base(&self) -> Result<(), LabError> {
        if !is_mount_point(&self.proc_root, &self.base_dir) {
            for c in base_mount_cmds(&self.base_dir) {
                self.runner.run_ok(&c)?;
            }
        }
        Ok(())
    }

    /// The node's cgroup name (the same in every hierarchy).
    pub fn node_cgroup_name(&self, node: &str) -> String {
        if self.topo.prefix.is_empty() {
            format!("mailha-lab-{node}")
        } else {
            format!("mailha-lab-{}-{node}", self.topo.prefix)
        }
    }

    fn hierarchies(&self) -> Vec<Hierarchy> {
        hierarchies(
            &std::fs::read_to_string(self.proc_root.join("self/mountinfo")).unwrap_or_default(),
        )
    }

    /// The node's cgroup in the unified (v2) hierarchy: where it is frozen
    /// and killed.
    pub fn node_cgroup_v2(&self, node: &str) -> Result<PathBuf, LabError> {
        self.hierarchies()
            .into_iter()
            .find(|h| h.v2)
            .map(|h| cgroup_dir(&h, &self.node_cgroup_name(node)))
            .ok_or_else(|| LabError::Cluster("no cgroup v2 hierarchy on this host".into()))
    }

    /// Gives a node its disk over `lower` (the host's root, or a release
    /// tree; idempotent: an existing overlay is kept, as a machine keeps
    /// its disk across a reset).
    pub fn mount_node_root(&self, node: &str, lower: &Path) -> Result<NodeDirs, LabError> {
        let d = NodeDirs::new(&self.base_dir, node);
        for p in [&d.layer, &d.root] {
            std::fs::create_dir_all(p).map_err(LabError::io(p))?;
        }
        if !is_mount_point(&self.proc_root, &d.root) {
            let [tmpfs, dirs, overlay] = mount_cmds(&d, node, lower);
            if !is_mount_point(&self.proc_root, &d.layer) {
                self.runner.run_ok(&tmpfs)?;
            }
            self.runner.run_ok(&dirs)?;
            let o = self.runner.run(&overlay)?;
            if !o.success() {
                return Err(LabError::Cluster(format!(
                    "{node}: {} cannot be the lower layer of the node's disk (an overlay): {}",
                    if lower == Path::new("/") {
                        "the host's root filesystem".to_string()
                    } else {
                        lower.display().to_string()
                    },
                    o.stderr.trim()
                )));
            }
        }
        Ok(d)
    }

    /// Boots `node` (its disk mounted, its loop devices attached) and waits
    /// until systemd says the system runs. Returns its PID 1.
    pub fn launch_node(&self, l: &Launch) -> Result<NodeRec, LabError> {
        let name = self.node_cgroup_name(&l.node);
        // The node's own cgroup in every hierarchy, emptied of a previous
        // boot's frozen state.
        let mut procs_files = Vec::new();
        for h in self.hierarchies() {
            let dir = cgroup_dir(&h, &name);
            std::fs::create_dir_all(&dir).map_err(|e| {
                LabError::Cluster(format!(
                    "{}: cannot make its cgroup {}: {e}",
                    l.node,
                    dir.display()
                ))
            })?;
            if h.cpuset {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(h.dir.join(f)).unwrap_or_default();
                    std::fs::write(dir.join(f), v.trim()).map_err(LabError::io(&dir.join(f)))?;
                }
            }
            if h.v2 {
                let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
            }
            // A kernel with RT group scheduling (this host's v1 cpu
            // hierarchy) gives a new cgroup no real-time time at all, so
            // SCHED_RR fails with EPERM in it: corosync and the lease
            // keeper would run at normal priority, as on no real server
            // (Debian's kernel has no RT group scheduling).
            let rt = dir.join("cpu.rt_runtime_us");
            if rt.exists()
                && let Err(e) = std::fs::write(&rt, NODE_RT_RUNTIME_US.to_string())
            {
                eprintln!(
                    "{}: no real-time budget ({}: {e}): corosync and the keeper run at normal priority",
                    l.node,
                    rt.display()
                );
            }
            procs_files.push(
                CString::new(dir.join("cgroup.procs").display().to_string())
                    .map_err(|e| LabError::Cluster(e.to_string()))?,
            );
        }
        let d = NodeDirs::new(&self.base_dir, &l.node);
        let console = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&d.console)
            .map_err(LabError::io(&d.console))?;
        // A status left by an earlier boot is not this one's.
        let _ = std::fs::remove_file(&d.exit);
        let argv = boot_argv(&d.exit, &nspawn_argv(l));
        let mut c = Command::new(&argv[0]);
        c.args(&argv[1..])
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .stdin(Stdio::null())
            .stdout(console.try_clone().map_err(LabError::io(&d.console))?)
            .stderr(console)
            .process_group(0);
        // SAFETY: between fork and exec only open/write/close on paths
        // prepared before the fork: "0" moves the writing process.
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
        // Long-lived by design (it is the node); a thread reaps it when the
        // node goes, so no zombie stands for it.
        let mut child = c.spawn().map_err(|source| LabError::Io {
            path: PathBuf::from("systemd-nspawn"),
            source,
        })?;
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        let v2 = self.node_cgroup_v2(&l.node)?;
        let t = Instant::now();
        let rec = loop {
            if let Some(pid) = find_init(&self.proc_root, &v2)
                && let Some((_, start_time)) = super::proc::identity(&self.proc_root, pid)
            {
                break NodeRec {
                    node: l.node.clone(),
                    pid,
                    start_time,
                };
            }
            if t.elapsed() > Duration::from_secs(20) {
                return Err(LabError::Cluster(format!(
                    "{}: systemd-nspawn started no container within 20 s: {}",
                    l.node,
                    tail(&d.console, 10)
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for (host, _) in &l.veths {
            let t = Instant::now();
            while !Path::new("/sys/class/net").join(host).exists() {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err(LabError::Cluster(format!(
                        "{}: systemd-nspawn made no link {host}",
                        l.node
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Ok(rec)
    }

    /// Waits until the node's systemd finished booting (`running`, or
    /// `degraded` with the failed units named).
    pub fn wait_booted(&self, rec: &NodeRec) -> Result<String, LabError> {
        let t = Instant::now();
        loop {
            let o = self.runner.run(
                &plan::in_node(rec.pid, &["systemctl", "is-system-running", "--wait"])
                    .deadline(BOOT_DEADLINE),
            );
            let state = o
                .as_ref()
                .map(|o| o.stdout.trim().to_string())
                .unwrap_or_default();
            match state.as_str() {
                "running" => return Ok(state),
                "degraded" => {
                    let failed = self
                        .runner
                        .run(&plan::in_node(
                            rec.pid,
                            &["systemctl", "--failed", "--no-legend", "--plain"],
                        ))
                        .map(|o| o.stdout)
                        .unwrap_or_default();
                    return Ok(format!("degraded: {}", failed.trim().replace('\n', "; ")));
                }
                // Before its manager listens (a few ms into the boot),
                // systemctl fails. (A boot to basic.target is "running"
                // once there: that is its default target.)
                _ => {}
            }
            if t.elapsed() > BOOT_DEADLINE {
                return Err(LabError::Cluster(format!(
                    "{}: not booted within {} s ({state:?}): {}",
                    rec.node,
                    BOOT_DEADLINE.as_secs(),
                    tail(&NodeDirs::new(&self.base_dir, &rec.node).console, 10)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Puts the host ends of the node's veths on the bridges.
    pub fn attach_node_links(&self, n: u8) -> Result<(), LabError> {
        for net in Net::ALL {
            let host = self.topo.node_veth(n, net);
            self.runner.run_ok(&Cmd::new("ip").args([
                "link",
                "set",
                &host,
                "master",
                &self.topo.bridge(net),
                "up",
            ]))?;
        }
        Ok(())
    }

    /// Whether any process of the node is left (its cgroup is populated).
    pub fn node_running(&self, node: &str) -> bool {
        self.node_cgroup_v2(node)
            .ok()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.events")).ok())
            .is_some_and(|e| e.lines().any(|l| l == "populated 1"))
    }

    /// A power cut: every process of the node killed at once; waits until
    /// none is left.
    pub fn power_off(&self, node: &str) -> Result<(), LabError> {
        let dir = self.node_cgroup_v2(node)?;
        if !dir.exists() {
            return Ok(());
        }
        let kill = dir.join("cgroup.kill");
        std::fs::write(&kill, "1").map_err(LabError::io(&kill))?;
        self.await_no_processes(node, "after cgroup.kill (D state on a hung disk?)")
    }

    /// Waits until no process of the node's last boot is left. Its PID 1
    /// dies first; its `systemd-nspawn` then cleans up for a moment while
    /// it still holds the lock on the node's root, and a new nspawn on
    /// that root exits at once ("Directory tree ... is currently busy"):
    /// a boot must wait for the whole cgroup, not for PID 1 alone.
    pub fn await_no_processes(&self, node: &str, after: &str) -> Result<(), LabError> {
        let t = Instant::now();
        while self.node_running(node) {
            if t.elapsed() > POWER_OFF_DEADLINE {
                return Err(LabError::Cluster(format!(
                    "{node}: processes of its last boot left {} s {after}",
                    POWER_OFF_DEADLINE.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Freezes every process of the node (cgroup v2 freezer): it stops as
    /// a hung machine does, without a chance to react.
    pub fn freeze(&self, node: &str, frozen: bool) -> Result<(), LabError> {
        let f = self.node_cgroup_v2(node)?.join("cgroup.freeze");
        std::fs::write(&f, if frozen { "1" } else { "0" }).map_err(LabError::io(&f))
    }

    /// The node's cgroup directory in every hierarchy.
    pub fn node_cgroup_dirs(&self, node: &str) -> Vec<PathBuf> {
        let name = self.node_cgroup_name(node);
        self.hierarchies()
            .iter()
            .map(|h| cgroup_dir(h, &name))
            .collect()
    }

    /// Removes the node's cgroups in every hierarchy, deepest first (the
    /// node's systemd made sub-cgroups under ours). Errors are collected.
    pub fn remove_node_cgroups(&self, node: &str) -> Vec<String> {
        let mut errors = Vec::new();
        for dir in self.node_cgroup_dirs(node) {
            if dir.exists()
                && let Err(e) = remove_cgroup_tree(&dir)
            {
                errors.push(format!("{}: {e}", dir.display()));
            }
        }
        errors
    }

    /// The boot of `node` as `up` and `restart` give it.
    pub fn launch_spec(&self, n: u8, target: BootTarget) -> Launch {
        let node = self.topo.node_name(n);
        let d = NodeDirs::new(&self.base_dir, &node);
        let binds = vec![
            (d.dev.clone(), plan::DEV_DIR.to_string()),
            // FUSE in a node: the nfs-hang drill's stand-in of a hung mount.
            (PathBuf::from("/dev/fuse"), "/dev/fuse".to_string()),
        ];
        Launch {
            node,
            root: d.root,
            veths: Net::ALL
                .iter()
                .map(|net| (self.topo.node_veth(n, *net), net.node_ifname().to_string()))
                .collect(),
            binds,
            inaccessible: vec![self.base_dir.clone()],
            target,
        }
    }
}

/// Fills a node's `/dev/lab` (on the host) with device nodes of its loop
/// devices (`(image file name, /dev/loopN)`): `data`, `lease`.
pub fn make_dev_dir(d: &NodeDirs, loops: &[(String, PathBuf)]) -> Result<(), LabError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::create_dir_all(&d.dev).map_err(LabError::io(&d.dev))?;
    std::fs::set_permissions(&d.dev, std::fs::Permissions::from_mode(0o755))
        .map_err(LabError::io(&d.dev))?;
    for (image, loop_dev) in loops {
        let name = if image == "lease.img" {
            plan::LEASE_DEV
        } else {
            plan::DATA_DEV
        };
        let path = d.dev.join(name.rsplit('/').next().expect("a file name"));
        let rdev = std::fs::metadata(loop_dev)
            .map_err(LabError::io(loop_dev))?
            .rdev();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LabError::io(&path)(e));
            }
            _ => {}
        }
        nix::sys::stat::mknod(
            &path,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            rdev,
        )
        .map_err(|e| LabError::io(&path)(e.into()))?;
    }
    Ok(())
}

/// The container's init among the processes of the cgroup tree `dir`.
pub fn find_init(proc_root: &Path, dir: &Path) -> Option<u32> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let status = std::fs::read_to_string(proc_root.join(pid.to_string()).join("status"))
                .unwrap_or_default();
            if is_container_init(&status) {
                return Some(pid);
            }
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    None
}

fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup_tree(&e.path())?;
        }
    }
    std::fs::remove_dir(dir)
}

/// Whether `p` is a mount point in the host's mount table.
pub fn is_mount_point(proc_root: &Path, p: &Path) -> bool {
    let mi = std::fs::read_to_string(proc_root.join("self/mountinfo")).unwrap_or_default();
    let p = p.display().to_string();
    mailha::mounts::mountinfo::parse(&mi)
        .iter()
        .any(|e| e.mount_point == p)
}

/// The last `n` lines of a file, for an error message.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every node name the topology has (teardown walks them all).
pub fn all_nodes(t: &Topology) -> Vec<String> {
    NODES.iter().map(|n| t.node_name(*n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_of_a_hybrid_host_are_every_v1_controller_and_the_unified_one() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n\
                  31 25 0:27 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n\
                  35 25 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  36 25 0:32 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n\
                  22 1 254:0 / / rw - ext4 /dev/vda rw\n";
        let h = hierarchies(mi);
        assert_eq!(h.len(), 4);
        assert!(h[0].cpuset && !h[0].v2);
        assert!(!h[1].cpuset);
        assert!(h[2].v2);
        assert_eq!(h[2].dir, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn the_container_init_is_pid_1_of_a_nested_namespace() {
        assert!(is_container_init("Name:\tsystemd\nNSpid:\t13861\t1\n"));
        assert!(!is_container_init("Name:\tinit\nNSpid:\t1\n"), "the host's");
        assert!(!is_container_init("Name:\tsshd\nNSpid:\t14000\t87\n"));
        assert!(!is_container_init("Name:\tx\n"));
    }

    #[test]
    fn a_boot_records_the_exit_status_of_nspawn_for_whoever_outlives_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = NodeDirs::new(dir.path(), "node1");
        std::fs::create_dir_all(&d.dir).unwrap();
        let argv = boot_argv(&d.exit, &["sh".into(), "-c".into(), "exit 133".into()]);
        let st = Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
        assert!(st.success());
        assert_eq!(exit_status(&d), Some(REBOOTED));
        let argv = boot_argv(&d.exit, &["false".into()]);
        Command::new(&argv[0]).args(&argv[1..]).status().unwrap();
        assert_eq!(exit_status(&d), Some(1));
    }

    #[test]
    fn a_boot_binds_the_nodes_own_devices_and_hides_the_lab_dir() {
        let l = Launch {
            node: "node1".into(),
            root: "/var/lib/mailha-lab/node1/root".into(),
            veths: vec![
                ("n1-lan".into(), "eth0".into()),
                ("n1-hb".into(), "eth1".into()),
            ],
            binds: vec![("/var/lib/mailha-lab/node1/dev".into(), "/dev/lab".into())],
            inaccessible: vec!["/var/lib/mailha-lab".into()],
            target: BootTarget::Default,
        };
        let a = nspawn_argv(&l).join(" ");
        for want in [
            "--register=no --keep-unit --boot",
            "--directory=/var/lib/mailha-lab/node1/root",
            "--network-veth-extra=n1-lan:eth0 --network-veth-extra=n1-hb:eth1",
            "--bind=/var/lib/mailha-lab/node1/dev:/dev/lab",
            "--tmpfs=/var/lib/mailha-lab:mode=0000,size=4k",
            "--capability=CAP_IPC_LOCK,CAP_SYS_RESOURCE",
        ] {
            assert!(a.contains(want), "{want} in {a}");
        }
        assert!(!a.contains("systemd.unit"));
        let basic = nspawn_argv(&Launch {
            target: BootTarget::Basic,
            ..l
        });
        assert_eq!(
            &basic[basic.len() - 2..],
            ["--", "systemd.unit=basic.target"]
        );
    }

    #[test]
    fn a_host_root_that_cannot_be_a_lower_layer_is_named_as_such() {
        use crate::cmd::{Output, Recorder};
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new().answer(
            "-t overlay",
            Output {
                code: Some(32),
                stdout: String::new(),
                stderr: "mount: wrong fs type, bad option, bad superblock".into(),
            },
        );
        let mut lab = Lab::new(&r, "mhx", &dir.path().join("st"), &dir.path().join("base"));
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/mountinfo"), "").unwrap();
        lab.proc_root = proc_root;
        let e = lab
            .mount_node_root("node1", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node1: the host's root filesystem cannot be the lower layer")
                && e.contains("wrong fs type"),
            "{e}"
        );
    }

    #[test]
    fn a_nodes_disk_is_an_overlay_over_the_host_root_with_a_tmpfs_upper() {
        let d = NodeDirs::new(Path::new("/b"), "node2");
        let c: Vec<String> = mount_cmds(&d, "node2", Path::new("/"))
            .iter()
            .map(|c| c.display())
            .collect();
        assert!(c[0].starts_with("mount -t tmpfs"), "{c:?}");
        assert!(c[0].ends_with("layer-node2 /b/node2/layer"), "{c:?}");
        assert_eq!(
            c[2],
            "mount -t overlay -o lowerdir=/,upperdir=/b/node2/layer/upper,workdir=/b/node2/layer/work root-node2 /b/node2/root"
        );
    }
}
