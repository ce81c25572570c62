//! Booting a lab node again after a reset (a drill's power cut, or its
//! emulated watchdog): the same disk (its overlay, kept as a machine keeps
//! its disk), its loop devices bound in again, a watchdog for the new
//! boot, and systemd brings up what the node has enabled (sshd; once
//! `mailha setup` ran: the lease keeper, corosync and Pacemaker), as a
//! machine's boot would. Its storage path, failed by a watchdog reset,
//! works again first.

use super::node::BootTarget;
use super::topology::NODES;
use super::{Lab, LabError, proc, watchdog};
use std::time::Duration;

impl Lab<'_> {
    /// Boots `node` again and waits until its systemd says it runs.
    /// Refuses while it still runs.
    pub fn restart_node(&self, node: &str) -> Result<(), LabError> {
        self.boot_node(node, BootTarget::Default).map(|_| ())
    }

    /// Boots `node` to `target` and waits for the boot; returns the new
    /// PID 1.
    pub fn boot_node(&self, node: &str, target: BootTarget) -> Result<u32, LabError> {
        let mut st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        let n = NODES
            .iter()
            .copied()
            .find(|n| self.topo.node_name(*n) == node)
            .ok_or_else(|| LabError::UnknownNode(node.to_string()))?;
        if st.phase == super::down::TEARING_DOWN {
            return Err(LabError::Cluster(format!(
                "{node} is not booted: the lab is being torn down"
            )));
        }
        if let Some(h) = st.node(node)
            && proc::is_alive(&self.proc_root, h.pid, h.start_time)
        {
            return Err(LabError::Cluster(format!("{node} is still running")));
        }
        self.await_no_processes(node, "after its PID 1 died")?;
        // A reset failed the node's storage path (its watchdog switched
        // it to eio): a booting machine has its disk again, once the old
        // mount is gone (a late write must not land under the peer).
        if super::fusedisk::get_mode(&self.base_dir, node) != Some(super::fusedisk::Mode::Ok) {
            let mut notes = Vec::new();
            if !self.restore_disk_path_within(node, Duration::from_secs(60), &mut notes) {
                return Err(LabError::Cluster(notes.join("; ")));
            }
        }
        let root = super::plan::node_root(&self.base_dir, node);
        let cfg_path = root.join(mailha::config::DEFAULT_PATH.trim_start_matches('/'));
        // Before `mailha setup` wrote one, the node has no config: no
        // keeper, no watchdog.
        let lease = match std::fs::read_to_string(&cfg_path) {
            Ok(_) => {
                let cfg = mailha::config::load(&cfg_path)
                    .map_err(|e| LabError::Cluster(format!("{}: {e}", cfg_path.display())))?;
                watchdog::timeout_for(&cfg.config)
            }
            Err(_) => None,
        };
        let rec = self.boot(n, &st, lease, target)?;
        st.nodes.retain(|h| h.node != node);
        st.nodes.push(rec.clone());
        st.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        self.store.save(&st)?;
        self.wait_booted(&rec)?;
        Ok(rec.pid)
    }
}
