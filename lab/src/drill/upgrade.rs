//! The `upgrade` drill (issue 13): a newer mailha package installed with
//! `dpkg -i` on a node under mail load (the standby, as docs/operations.md
//! says, or the node running the mail, the harder case), then the lease
//! keeper restarted onto the new binary, as an administrator upgrades.
//! Neither may cost the mail anything: the package starts, stops and
//! restarts nothing by itself (the cluster stack keeps its processes), and
//! a keeper restart while it holds the lease keeps the lease, fences
//! nothing and moves nothing.

use super::super::package::{file_name, upgraded_version};
use super::super::{Lab, LabError};
use super::NOT_MET;
use std::time::{Duration, Instant};

/// The units whose processes an upgrade must leave running.
const STACK: [&str; 3] = ["corosync", "pacemaker", "mailha-lease"];

/// How long the drill watches the mail after the keeper's restart.
const WATCH: Duration = Duration::from_secs(15);

/// The version after `installed` in the drill's series: `X` -> `X+lab1`,
/// `X+labN` -> `X+lab(N+1)` (each sorts after the one before in dpkg).
pub fn next_version(installed: &str) -> String {
    if let Some((base, n)) = installed.rsplit_once("+lab")
        && let Ok(n) = n.parse::<u32>()
    {
        return upgraded_version(base, n + 1);
    }
    upgraded_version(installed, 1)
}

impl Lab<'_> {
    fn main_pid(&self, node: &str, unit: &str) -> Result<u32, LabError> {
        let o = self.in_node_out(node, &["systemctl", "show", "-P", "MainPID", unit])?;
        Ok(o.stdout.trim().parse().unwrap_or(0))
    }

    /// Runs the upgrade on `node`; returns when the package went in (ms,
    /// the client log's clock).
    pub(super) fn upgrade(&self, node: &str, notes: &mut Vec<String>) -> Result<u128, LabError> {
        let st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        let Some(package) = st.package else {
            return Err(LabError::Cluster(
                "the nodes did not install mailha from its package: bring the lab up with --deb (MAILHA_LAB_DEB)".into(),
            ));
        };
        let pid1 = self.pid1(node)?;
        let installed = self.installed_version(pid1)?;
        let version = next_version(&installed);
        let dir = self.base_dir.join("packages").join("upgrade");
        let deb = self.reversioned(&package, &dir, &version)?;
        let root = super::super::node::NodeDirs::new(&self.base_dir, node).root;
        let in_node = self.stage_package(&deb, &root)?;
        // The documented rolling upgrade installs on the standby first
        // (its keeper idle), the drill's harder case on the node that
        // holds: after the restart each keeper is back in the role it had.
        let held = self.keeper_status(node)?.holds;
        let before: Vec<u32> = STACK
            .iter()
            .map(|u| self.main_pid(node, u))
            .collect::<Result<_, _>>()?;

        let at = super::super::load::now_ms();
        let t = Instant::now();
        self.dpkg_install(node, pid1, &in_node)?;
        notes.push(format!(
            "{node}: dpkg -i {} ({installed} -> {version}) in {:.2} s",
            file_name(&version),
            t.elapsed().as_secs_f64()
        ));
        let now = self.installed_version(pid1)?;
        if now != version {
            notes.push(format!(
                "{NOT_MET}: {node} has mailha {now} after the upgrade, not {version}"
            ));
        }
        for (unit, pid) in STACK.iter().zip(&before) {
            let after = self.main_pid(node, unit)?;
            if after != *pid {
                notes.push(format!(
                    "{NOT_MET}: the package restarted or stopped {unit} on {node} (MainPID {pid} -> {after})"
                ));
            }
        }

        // The administrator's step: the keeper onto the new binary.
        let o = self.in_node_out(node, &["systemctl", "restart", "mailha-lease"])?;
        if !o.success() {
            notes.push(format!(
                "{NOT_MET}: systemctl restart mailha-lease on {node}: {}",
                o.stderr.trim()
            ));
        }
        notes.push(format!("{node}: mailha-lease restarted"));
        for (unit, pid) in STACK.iter().zip(&before).take(2) {
            let after = self.main_pid(node, unit)?;
            if after != *pid {
                notes.push(format!(
                    "{NOT_MET}: restarting the keeper restarted {unit} on {node} (MainPID {pid} -> {after})"
                ));
            }
        }
        let t = Instant::now();
        while t.elapsed() < WATCH {
            std::thread::sleep(Duration::from_millis(500));
        }
        match self.keeper_status(node) {
            Ok(s) if s.holds == held && s.self_fenced.is_none() => notes.push(format!(
                "{node}'s new keeper {} the lease ({})",
                if held { "holds" } else { "does not hold" },
                s.role
            )),
            Ok(s) => notes.push(format!(
                "{NOT_MET}: {node}'s keeper after the restart: role {}, holds {}, self-fenced {:?}",
                s.role, s.holds, s.self_fenced
            )),
            Err(e) => notes.push(format!("{NOT_MET}: {node}'s keeper: {e}")),
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_upgrade_of_the_drill_gets_the_next_version() {
        assert_eq!(next_version("0.1.0-1"), "0.1.0-1+lab1");
        assert_eq!(next_version("0.1.0-1+lab1"), "0.1.0-1+lab2");
        assert_eq!(next_version("0.1.0-1+lab9"), "0.1.0-1+lab10");
    }
}
