//! Booting a lab node again after a reset (its holder killed: by a drill,
//! or by its emulated watchdog): a new holder, the node's private mounts,
//! its network links, its device names, its watchdog, sshd, the lease
//! keeper, then corosync and Pacemaker, as a machine's boot would. The
//! node's private tree (configs, CIB, logs) and its loop devices are kept;
//! its storage path, failed by a watchdog reset, works again.

use super::plan::{self, DATA_DEV, LEASE_DEV};
use super::topology::NODES;
use super::{Lab, LabError, holder, watchdog};
use std::time::Duration;

/// `mknod` lines for a node's device names from its loop devices
/// (`(image file name, minor)`).
pub fn mknod_script(loops: &[(String, u32)]) -> String {
    let mut s = String::from("set -e\n");
    for (image, minor) in loops {
        let dev = if image == "lease.img" {
            LEASE_DEV
        } else {
            DATA_DEV
        };
        s.push_str(&format!("mknod {dev} b 7 {minor}\n"));
    }
    s
}

impl Lab<'_> {
    /// Boots `node` again. Refuses while its holder still runs.
    pub fn restart_node(&self, node: &str) -> Result<(), LabError> {
        let pid = self.boot_node(node)?;
        self.start_stack_in(pid)
    }

    /// Corosync, then Pacemaker, in the node of holder `pid`.
    pub fn start_stack_in(&self, pid: u32) -> Result<(), LabError> {
        for c in mailha::setup::stack_commands(mailha::setup::InitSystem::SysV, true, false) {
            self.runner
                .run_ok(&plan::in_node(pid, &c).deadline(Duration::from_secs(90)))?;
        }
        Ok(())
    }

    /// Boots `node` up to its keeper, without the cluster stack; returns
    /// the new holder's PID.
    pub fn boot_node(&self, node: &str) -> Result<u32, LabError> {
        let mut st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        let n = NODES
            .iter()
            .copied()
            .find(|n| self.topo.node_name(*n) == node)
            .ok_or_else(|| LabError::UnknownNode(node.to_string()))?;
        if let Some(h) = st.holder(node)
            && holder::is_alive(&self.proc_root, h.pid, h.start_time)
        {
            return Err(LabError::Cluster(format!("{node} is still running")));
        }
        // A reset failed the node's storage path (its watchdog switched
        // it to eio): a booting machine has its disk again, once the old
        // mount is gone (a late write must not land under the peer).
        if super::fusedisk::get_mode(&self.base_dir, node) != Some(super::fusedisk::Mode::Ok) {
            let mut notes = Vec::new();
            if !self.restore_disk_path_within(node, Duration::from_secs(60), &mut notes) {
                return Err(LabError::Cluster(notes.join("; ")));
            }
        }
        let rec = self.start_holder(node)?;
        st.holders.retain(|h| h.node != node);
        st.holders.push(rec.clone());
        st.holders.sort_by(|a, b| a.node.cmp(&b.node));
        self.store.save(&st)?;
        let root = plan::node_root(&self.base_dir, node);
        self.runner.run_ok(&plan::in_node_sh(
            rec.pid,
            &plan::node_mount_script(&root, node),
        ))?;
        // The host ends are already recorded in the state (from `up`).
        for (_, cmd) in plan::node_links(&self.topo, n, rec.pid) {
            self.runner.run_ok(&cmd)?;
        }
        let loops: Vec<(String, u32)> = st
            .loops
            .iter()
            .filter(|l| l.node == node)
            .filter_map(|l| {
                Some((
                    l.image.file_name()?.to_string_lossy().into_owned(),
                    super::up::loop_minor(&l.device)?,
                ))
            })
            .collect();
        self.runner
            .run_ok(&plan::in_node_sh(rec.pid, &mknod_script(&loops)))?;
        let cfg_path = root.join(mailha::config::DEFAULT_PATH.trim_start_matches('/'));
        let cfg = mailha::config::load(&cfg_path)
            .map_err(|e| LabError::Cluster(format!("{}: {e}", cfg_path.display())))?;
        let lease = watchdog::timeout_for(&cfg.config);
        if let Some(t) = lease {
            let log = self.base_dir.join(node).join("watchdog.log");
            let disk = super::fusedisk::mode_file(&self.base_dir, node);
            watchdog::spawn(&self.exe, &rec, t, &disk, &log)?;
        }
        self.runner.run_ok(
            &plan::in_node(rec.pid, &["service", "ssh", "start"]).deadline(Duration::from_secs(30)),
        )?;
        if lease.is_some() {
            watchdog::start_keepers(self.runner, &[rec.pid])?;
        }
        Ok(rec.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_follow_the_image_each_loop_device_serves() {
        let s = mknod_script(&[("data.img".into(), 4), ("lease.img".into(), 5)]);
        assert_eq!(
            s,
            "set -e\nmknod /dev/lab/data b 7 4\nmknod /dev/lab/lease b 7 5\n"
        );
    }
}
