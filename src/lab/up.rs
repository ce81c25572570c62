//! `lab up`, the infrastructure part: holders with private mounts,
//! bridges and veths, the gw and client namespaces, the shared data disk
//! and the lease disk with one loop device per node per image.
//! Every object is recorded in the state before it is created.

use super::cmd::Cmd;
use super::holder;
use super::plan::{self, Creates, DATA_DEV, LEASE_DEV};
use super::state::{HolderRec, LoopRec, State};
use super::topology::{Aux, NODES, overlapping_route};
use super::{Lab, LabError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Image sizes (sparse files).
pub const DATA_IMAGE_SIZE: u64 = 1 << 30;
pub const LEASE_IMAGE_SIZE: u64 = 4 << 20;

/// What `up` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpReport {
    pub holders: Vec<HolderRec>,
    pub loops: Vec<LoopRec>,
    pub seconds: f64,
}

impl Lab<'_> {
    /// Refuses when not root, when a lab is up, when a lab subnet overlaps
    /// a host route, or when one of our names is taken.
    pub fn preflight(&self) -> Result<(), LabError> {
        let status = std::fs::read_to_string(self.proc_root.join("self/status"))
            .map_err(LabError::io(&self.proc_root))?;
        if holder::effective_uid(&status) != Some(0) {
            return Err(LabError::NotRoot);
        }
        if self.store.load()?.is_some() {
            return Err(LabError::AlreadyUp(self.store.path()));
        }
        let routes = self
            .runner
            .run_ok(&Cmd::new("ip").args(["-o", "-4", "route", "show", "table", "all"]))?;
        if let Some(r) = overlapping_route(&routes.stdout) {
            return Err(LabError::RouteOverlap(r));
        }
        for l in self.topo.host_links() {
            if Path::new("/sys/class/net").join(&l).exists() {
                return Err(LabError::LinkExists(l));
            }
        }
        for a in Aux::ALL {
            if Path::new("/run/netns").join(self.topo.netns(a)).exists() {
                return Err(LabError::NetnsExists(self.topo.netns(a)));
            }
        }
        Ok(())
    }

    /// Brings the infrastructure up. A refusal (preflight) changes nothing
    /// (in particular it never touches a lab that is already up); a failure
    /// after that tears down what was built and reports both.
    pub fn up(&self) -> Result<UpReport, LabError> {
        let t0 = Instant::now();
        self.preflight()?;
        match self.build(t0) {
            Ok(rep) => Ok(rep),
            Err(e) => match self.down() {
                Ok(_) => Err(e),
                Err(LabError::Incomplete(mut left)) => {
                    left.insert(0, format!("lab up failed: {e}; teardown then failed too:"));
                    Err(LabError::Incomplete(left))
                }
                Err(d) => Err(LabError::Incomplete(vec![e.to_string(), d.to_string()])),
            },
        }
    }

    fn build(&self, t0: Instant) -> Result<UpReport, LabError> {
        let mut st = State::new(&self.topo.prefix, &self.base_dir);
        self.store.save(&st)?;
        std::fs::create_dir_all(&self.base_dir).map_err(LabError::io(&self.base_dir))?;

        for n in NODES {
            let node = self.topo.node_name(n);
            let root = plan::node_root(&self.base_dir, &node);
            let marker = self.base_dir.join(&node).join(".seeded");
            if !marker.exists() {
                let script = plan::seed_script(&root, &self.topo, &node);
                self.runner.run_ok(
                    &Cmd::new("/bin/sh")
                        .args(["-c", &script])
                        .deadline(Duration::from_secs(60)),
                )?;
                std::fs::write(&marker, "").map_err(LabError::io(&marker))?;
            }
        }
        st.phase = "holders".into();
        self.store.save(&st)?;
        for n in NODES {
            let node = self.topo.node_name(n);
            let rec = self.start_holder(&node)?;
            st.holders.push(rec.clone());
            self.store.save(&st)?;
            let root = plan::node_root(&self.base_dir, &node);
            self.runner.run_ok(&plan::in_node_sh(
                rec.pid,
                &plan::node_mount_script(&root, &node),
            ))?;
        }

        st.phase = "network".into();
        self.store.save(&st)?;
        let mut steps = plan::bridges(&self.topo);
        for n in NODES {
            let pid = st.holders[usize::from(n - 1)].pid;
            steps.extend(plan::node_links(&self.topo, n, pid));
        }
        steps.extend(plan::aux_links(&self.topo));
        for (creates, cmd) in steps {
            match creates {
                Creates::Link(l) => st.links.push(l),
                Creates::Netns(n) => st.netns.push(n),
                Creates::Nothing => {}
            }
            self.store.save(&st)?;
            self.runner.run_ok(&cmd)?;
        }

        st.phase = "disks".into();
        self.store.save(&st)?;
        let data = self.base_dir.join("data.img");
        let lease = self.base_dir.join("lease.img");
        make_sparse(&data, DATA_IMAGE_SIZE)?;
        make_sparse(&lease, LEASE_IMAGE_SIZE)?;
        // MMP: a second mount through another device is refused (measured:
        // after ~23 s); a holder kill unmounts cleanly, so no MMP wait then.
        self.runner.run_ok(
            &Cmd::new("mkfs.ext4")
                .args(["-q", "-F", "-O", "mmp", "-L", "maildata"])
                .arg(data.display().to_string())
                .deadline(Duration::from_secs(60)),
        )?;
        for n in NODES {
            let node = self.topo.node_name(n);
            let pid = st.holders[usize::from(n - 1)].pid;
            let mut minors = Vec::new();
            for image in [&data, &lease] {
                let out = self.runner.run_ok(
                    &Cmd::new("losetup")
                        .args(["-f", "--show", "--direct-io=on"])
                        .arg(image.display().to_string()),
                )?;
                let device = PathBuf::from(out.stdout.trim());
                st.loops.push(LoopRec {
                    node: node.clone(),
                    device: device.clone(),
                    image: image.clone(),
                });
                self.store.save(&st)?;
                minors.push(loop_minor(&device).ok_or_else(|| LabError::Io {
                    path: device.clone(),
                    source: std::io::Error::other("not a /dev/loopN path"),
                })?);
            }
            // Same path in both nodes, each node's own device; never
            // LABEL=/UUID=: both devices carry the same UUID.
            let script = format!(
                "set -e\nmknod {DATA_DEV} b 7 {}\nmknod {LEASE_DEV} b 7 {}\n",
                minors[0], minors[1]
            );
            self.runner.run_ok(&plan::in_node_sh(pid, &script))?;
        }
        st.phase = "infrastructure up".into();
        self.store.save(&st)?;
        Ok(UpReport {
            holders: st.holders.clone(),
            loops: st.loops.clone(),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    /// Starts one holder and returns its record (host PID + start time).
    fn start_holder(&self, node: &str) -> Result<HolderRec, LabError> {
        let mut c = Command::new("unshare");
        c.args(holder::unshare_argv(&self.exe))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // Long-lived by design: the holder is the node. Not waited for.
        let child = c.spawn().map_err(|source| LabError::Io {
            path: PathBuf::from("unshare"),
            source,
        })?;
        let upid = child.id();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            for pid in holder::children(&self.proc_root, upid) {
                if let Some((exe, start_time)) = holder::identity(&self.proc_root, pid)
                    && exe == self.exe
                {
                    return Ok(HolderRec {
                        node: node.to_string(),
                        pid,
                        start_time,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(LabError::HolderNotFound(node.to_string()))
    }
}

fn make_sparse(path: &Path, size: u64) -> Result<(), LabError> {
    let f = std::fs::File::create(path).map_err(LabError::io(path))?;
    f.set_len(size).map_err(LabError::io(path))
}

/// 7 = the loop major; the minor is N of /dev/loopN.
pub fn loop_minor(device: &Path) -> Option<u32> {
    device.to_str()?.strip_prefix("/dev/loop")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::cmd::{Output, Recorder};

    #[test]
    fn loop_minor_reads_the_device_number() {
        assert_eq!(loop_minor(Path::new("/dev/loop12")), Some(12));
        assert_eq!(loop_minor(Path::new("/dev/sda")), None);
    }

    #[test]
    fn preflight_refuses_an_overlapping_host_route() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new().answer(
            "route show",
            Output::ok("default via 10.9.8.1 dev eth0\n198.51.100.0/25 dev wg0 scope link\n"),
        );
        let mut lab = Lab::new(
            &r,
            "mhxtest",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        // Pretend to be root: a fake /proc with a self/status.
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/status"), "Uid:\t0\t0\t0\t0\n").unwrap();
        lab.proc_root = proc_root.clone();
        let e = lab.preflight().unwrap_err();
        assert!(
            matches!(e, LabError::RouteOverlap(ref l) if l.starts_with("198.51.100.0/25")),
            "{e}"
        );

        std::fs::write(
            proc_root.join("self/status"),
            "Uid:\t1000\t1000\t1000\t1000\n",
        )
        .unwrap();
        assert!(matches!(lab.preflight().unwrap_err(), LabError::NotRoot));
    }

    #[test]
    fn preflight_refuses_a_second_lab() {
        let dir = tempfile::tempdir().unwrap();
        let r = Recorder::new();
        let mut lab = Lab::new(
            &r,
            "mhxtest",
            &dir.path().join("state"),
            &dir.path().join("base"),
        );
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::write(proc_root.join("self/status"), "Uid:\t0\t0\t0\t0\n").unwrap();
        lab.proc_root = proc_root;
        let mut running = State::new("mhxtest", &lab.base_dir);
        running.phase = "infrastructure up".into();
        lab.store.save(&running).unwrap();
        assert!(matches!(
            lab.preflight().unwrap_err(),
            LabError::AlreadyUp(_)
        ));
        // Regression (found in the lab): a refused `up` must not tear down
        // the lab that is already up.
        assert!(matches!(lab.up().unwrap_err(), LabError::AlreadyUp(_)));
        assert!(r.lines().is_empty(), "{:?}", r.lines());
        assert_eq!(lab.store.load().unwrap(), Some(running));
    }
}
