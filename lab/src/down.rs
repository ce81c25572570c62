//! `lab down`: undo everything recorded (and every name the topology could
//! have created), collecting errors and continuing; then verify and report
//! what is still there. Idempotent: a second run finds nothing to do.

use super::cmd::Cmd;
use super::node::{NodeDirs, is_mount_point};
use super::plan::{self, DownStep, NODE_EXIT_DEADLINE};
use super::proc;
use super::state::State;
use super::{Lab, LabError};
use std::path::Path;
use std::time::{Duration, Instant};

/// What `down` did and what it could not do.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DownReport {
    pub done: Vec<String>,
    pub errors: Vec<String>,
    pub leftovers: Vec<String>,
}

/// How long a loop device may stay busy after its last mount namespace
/// died (the kernel releases the mount asynchronously).
const LOOP_DETACH_DEADLINE: Duration = Duration::from_secs(5);

impl Lab<'_> {
    pub fn down(&self) -> Result<DownReport, LabError> {
        let mut rep = DownReport::default();
        let st = match self.store.load() {
            Ok(Some(s)) => s,
            Ok(None) => State::new(&self.topo.prefix, &self.base_dir),
            Err(e) => {
                rep.errors.push(format!("{e}; tearing down by name only"));
                State::new(&self.topo.prefix, &self.base_dir)
            }
        };
        // The NFS server's daemons by their recorded PIDs, before their
        // namespace goes (lab::nfs).
        let (done, errors) = self.nfs_down(&st);
        rep.done.extend(done);
        rep.errors.extend(errors);
        let proc_root = self.proc_root.clone();
        let steps = plan::plan_down(&st, |h| proc::is_alive(&proc_root, h.pid, h.start_time));
        for step in steps {
            match self.down_step(&step, &st) {
                Ok(Some(done)) => rep.done.push(done),
                Ok(None) => {}
                Err(e) => rep.errors.push(e.to_string()),
            }
        }
        if rep.errors.is_empty()
            && let Err(e) = self.store.remove()
        {
            rep.errors.push(e.to_string());
        }
        rep.leftovers = self.leftovers(&st.base_dir);
        if rep.errors.is_empty() && rep.leftovers.is_empty() {
            Ok(rep)
        } else {
            let mut all = rep.errors.clone();
            all.extend(rep.leftovers.iter().map(|l| format!("still there: {l}")));
            Err(LabError::Incomplete(all))
        }
    }

    /// TERM, then KILL, every process in a lab netns (by PID, from
    /// `ip netns pids`), waiting up to 5 s for them to go.
    fn kill_netns_processes(&self, ns: &str) -> Result<(), LabError> {
        let pids = |r: &dyn super::cmd::Runner| -> Result<Vec<String>, LabError> {
            let o = r.run(&Cmd::new("ip").args(["netns", "pids", ns]))?;
            Ok(o.stdout.split_whitespace().map(str::to_string).collect())
        };
        let first = pids(self.runner)?;
        if first.is_empty() {
            return Ok(());
        }
        let _ = self
            .runner
            .run(&Cmd::new("kill").arg("-TERM").args(first.iter().cloned()));
        let t = Instant::now();
        loop {
            let left = pids(self.runner)?;
            if left.is_empty() {
                return Ok(());
            }
            if t.elapsed() > Duration::from_secs(5) {
                let _ = self
                    .runner
                    .run(&Cmd::new("kill").arg("-KILL").args(left.iter().cloned()));
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn down_step(&self, step: &DownStep, st: &State) -> Result<Option<String>, LabError> {
        match step {
            DownStep::ReleaseFusedisks => {
                let done = self.release_fusedisks(st);
                if !done.is_empty() {
                    // The daemon polls its mode every 20 ms.
                    std::thread::sleep(Duration::from_millis(200));
                }
                Ok((!done.is_empty()).then(|| done.join("; ")))
            }
            DownStep::StopFusedisk(r) => self.stop_fusedisk(r),
            DownStep::PowerOff(h) => {
                // Re-check identity right before the kill (PID reuse).
                if !proc::is_alive(&self.proc_root, h.pid, h.start_time) {
                    return Ok(None);
                }
                self.runner
                    .run_ok(&Cmd::new("kill").args(["-KILL", &h.pid.to_string()]))?;
                let t = Instant::now();
                while proc::is_alive(&self.proc_root, h.pid, h.start_time) {
                    if t.elapsed() > NODE_EXIT_DEADLINE {
                        return Err(LabError::NodeDead {
                            node: format!(
                                "{} (killed, but still exiting: a process in D state?)",
                                h.node
                            ),
                            pid: h.pid,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                // Its supervisor (nspawn) and every process nsenter'ed in
                // go with it; the cgroup empties.
                let t = Instant::now();
                while self.node_running(&h.node) && t.elapsed() < NODE_EXIT_DEADLINE {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(Some(format!("powered off {} (PID 1 {})", h.node, h.pid)))
            }
            DownStep::UnmountNode(node) => {
                let d = NodeDirs::new(&self.base_dir, node);
                let mut done = Vec::new();
                for m in [&d.root, &d.layer] {
                    if !is_mount_point(&self.proc_root, m) {
                        continue;
                    }
                    // The node's last process may take a moment to let go
                    // of its root.
                    let t = Instant::now();
                    loop {
                        let o = self
                            .runner
                            .run(&Cmd::new("umount").arg(m.display().to_string()))?;
                        if o.success() || !is_mount_point(&self.proc_root, m) {
                            break;
                        }
                        if t.elapsed() > NODE_EXIT_DEADLINE {
                            return Err(LabError::Cmd(super::cmd::CmdError::Failed {
                                cmd: format!("umount {}", m.display()),
                                code: o.code,
                                stderr: o.stderr,
                            }));
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    done.push(m.display().to_string());
                }
                Ok((!done.is_empty()).then(|| format!("unmounted {}", done.join(", "))))
            }
            DownStep::RemoveCgroups(node) => {
                let errors = self.remove_node_cgroups(node);
                if errors.is_empty() {
                    Ok(None)
                } else {
                    Err(LabError::Incomplete(errors))
                }
            }
            DownStep::DelNetns(ns) => {
                if !Path::new("/run/netns").join(ns).exists() {
                    return Ok(None);
                }
                // Daemons the lab started there (gw's alert relay) would
                // keep the namespace alive after its name is gone.
                self.kill_netns_processes(ns)?;
                let out = self
                    .runner
                    .run(&Cmd::new("ip").args(["netns", "del", ns]))?;
                gone_or_failed(
                    out,
                    Path::new("/run/netns").join(ns).exists(),
                    "ip netns del",
                    ns,
                )?;
                Ok(Some(format!("deleted netns {ns}")))
            }
            DownStep::DelLink(l) => {
                if !Path::new("/sys/class/net").join(l).exists() {
                    return Ok(None);
                }
                // A dying netns removes its veths asynchronously: the link
                // may vanish between the check and the delete.
                let out = self.runner.run(&Cmd::new("ip").args(["link", "del", l]))?;
                gone_or_failed(
                    out,
                    Path::new("/sys/class/net").join(l).exists(),
                    "ip link del",
                    l,
                )?;
                Ok(Some(format!("deleted link {l}")))
            }
            DownStep::DetachLoop(dev) => {
                let image = st
                    .loops
                    .iter()
                    .find(|l| &l.device == dev)
                    .map(|l| l.image.clone());
                let t = Instant::now();
                loop {
                    // Only a device still backed by OUR image: the number
                    // may have been reused since.
                    let out = self.runner.run(
                        &Cmd::new("losetup")
                            .args(["--noheadings", "-O", "BACK-FILE", "--list"])
                            .arg(dev.display().to_string()),
                    )?;
                    let back = out.stdout.trim();
                    let ours = image
                        .as_ref()
                        .is_some_and(|i| Path::new(back) == i.as_path());
                    if !out.success() || !ours {
                        return Ok(None);
                    }
                    let det = self
                        .runner
                        .run(&Cmd::new("losetup").arg("-d").arg(dev.display().to_string()))?;
                    if det.success() {
                        return Ok(Some(format!("detached {}", dev.display())));
                    }
                    if t.elapsed() > LOOP_DETACH_DEADLINE {
                        return Err(LabError::Cmd(super::cmd::CmdError::Failed {
                            cmd: format!("losetup -d {}", dev.display()),
                            code: det.code,
                            stderr: det.stderr,
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Anything of ours still on the host.
    pub fn leftovers(&self, base_dir: &Path) -> Vec<String> {
        let run = |c: Cmd| self.runner.run(&c).map(|o| o.stdout).unwrap_or_default();
        let ip_link = run(Cmd::new("ip").args(["-o", "link", "show"]));
        let netns = run(Cmd::new("ip").args(["netns", "list"]));
        let losetup = run(Cmd::new("losetup").arg("-a"));
        let mounts = mounts_mentioning(&self.proc_root, &base_dir.display().to_string());
        let cgroups: Vec<std::path::PathBuf> = super::node::all_nodes(&self.topo)
            .iter()
            .flat_map(|n| self.node_cgroup_dirs(n))
            .filter(|d| d.exists())
            .collect();
        plan::leftovers(
            &self.topo, base_dir, &ip_link, &netns, &losetup, &mounts, &cgroups,
        )
    }
}

/// A failed delete is fine when the object is gone anyway.
fn gone_or_failed(
    out: super::cmd::Output,
    still_there: bool,
    what: &str,
    name: &str,
) -> Result<(), LabError> {
    if out.success() || !still_there {
        Ok(())
    } else {
        Err(LabError::Cmd(super::cmd::CmdError::Failed {
            cmd: format!("{what} {name}"),
            code: out.code,
            stderr: out.stderr,
        }))
    }
}

/// Mount lines that mention directory `needle` (or a path under it), one
/// scan per mount namespace.
fn mounts_mentioning(proc_root: &Path, needle: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(proc_root) else {
        return v;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let dir = proc_root.join(pid);
        let Ok(ns) = std::fs::read_link(dir.join("ns/mnt")) else {
            continue;
        };
        if !seen.insert(ns) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("mountinfo")) {
            // Whose namespace it is says where the copy came from.
            let cmd = std::fs::read(dir.join("cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .chars()
                        .take(80)
                        .collect::<String>()
                })
                .unwrap_or_default();
            v.extend(
                text.lines()
                    .filter(|l| super::plan::mentions_dir(l, needle))
                    .map(|l| format!("(pid {pid}: {cmd}) {l}")),
            );
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Output, Recorder};
    use crate::state::NodeRec;

    #[test]
    fn down_without_a_lab_is_a_quiet_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let lab = Lab::new(
            &r,
            "mhxnone",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let rep = lab.down().unwrap();
        assert!(rep.done.is_empty(), "{:?}", rep.done);
        // no kill, no del: only the verification reads
        for l in r.lines() {
            assert!(!l.starts_with("kill") && !l.contains(" del "), "{l}");
        }
    }

    #[test]
    fn a_dead_or_recycled_pid_1_is_never_killed() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let lab = Lab::new(
            &r,
            "mhxnone",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let mut st = State::new("mhxnone", &lab.base_dir);
        // our own PID with a wrong start time = a recycled PID
        st.nodes.push(NodeRec {
            node: "node1".into(),
            pid: std::process::id(),
            start_time: 1,
        });
        lab.store.save(&st).unwrap();
        lab.down().unwrap();
        assert!(r.lines().iter().all(|l| !l.starts_with("kill")));
        assert_eq!(lab.store.load().unwrap(), None);
    }

    #[test]
    fn errors_are_collected_and_the_state_is_kept_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new()
            .answer("losetup --noheadings", Output::ok("/base/data.img\n"))
            .answer("losetup -d", Output::failed(1, "busy"));
        let base = dir.path().join("base");
        let lab = Lab::new(&r, "mhxnone", &dir.path().join("state"), &base);
        let mut st = State::new("mhxnone", &base);
        st.loops.push(crate::state::LoopRec {
            node: "node1".into(),
            device: "/dev/loop99".into(),
            image: "/base/data.img".into(),
        });
        lab.store.save(&st).unwrap();
        let t = Instant::now();
        let e = lab.down().unwrap_err();
        assert!(t.elapsed() >= LOOP_DETACH_DEADLINE);
        assert!(e.to_string().contains("losetup -d /dev/loop99"), "{e}");
        assert!(
            lab.store.load().unwrap().is_some(),
            "state kept so `down` can be retried"
        );
    }
}
