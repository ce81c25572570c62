//! The storage and network drills: `storage-loss NODE --mode eio|hang`
//! (one node's path to the shared disk breaks, `lab::fusedisk`) and
//! `cut-ping NODE` (the ping target unreachable from one node only, nft in
//! that node). Both expect the mail to leave NODE when it was the active
//! one; storage-loss also reads every stop on NODE from Pacemaker's
//! operation history: each must have succeeded within its op timeout.

use super::super::fusedisk::{self, Mode};
use super::super::load::Attempt;
use super::super::{Lab, LabError};
use mailha::cib::xml::El;
use serde::Serialize;
use std::time::{Duration, Instant};

/// One stop (or other operation) Pacemaker ran, from its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpRun {
    pub resource: String,
    pub node: String,
    pub task: String,
    pub rc: i32,
    pub exec_ms: u64,
    /// The op's timeout in the CIB (ms), when found.
    pub timeout_ms: Option<u64>,
}

impl OpRun {
    pub fn in_time(&self) -> bool {
        self.rc == 0 && self.timeout_ms.is_none_or(|t| self.exec_ms < t)
    }
}

/// Every `task` operation on `node` in crm_mon's history (incl. failed
/// ones, from `<failures>`), with the timeouts of the CIB's ops.
pub fn ops(crm_mon_xml: &str, cib_xml: &str, node: &str, task: &str) -> Vec<OpRun> {
    let Ok(root) = El::parse(crm_mon_xml) else {
        return vec![];
    };
    let cib = El::parse(cib_xml).ok();
    let timeout = |rsc: &str| -> Option<u64> {
        let p = cib.as_ref()?.by_id(rsc)?;
        let ops = p.find("operations")?;
        let op = ops.children.iter().find(|o| o.get("name") == Some(task))?;
        humantime::parse_duration(op.get("timeout")?)
            .ok()
            .map(|d| d.as_millis() as u64)
    };
    let mut out = Vec::new();
    if let Some(h) = root.find("node_history") {
        for n in h.children.iter().filter(|n| n.get("name") == Some(node)) {
            for r in &n.children {
                let Some(id) = r.get("id") else { continue };
                for op in r.children.iter().filter(|o| o.get("task") == Some(task)) {
                    out.push(OpRun {
                        resource: id.to_string(),
                        node: node.to_string(),
                        task: task.to_string(),
                        rc: op.get("rc").and_then(|v| v.parse().ok()).unwrap_or(-1),
                        exec_ms: op
                            .get("exec-time")
                            .map(|v| v.trim_end_matches("ms"))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0),
                        timeout_ms: timeout(id),
                    });
                }
            }
        }
    }
    // A failed op may be listed only among the failures.
    if let Some(f) = root.find("failures") {
        for e in &f.children {
            let (Some(key), Some(n)) = (e.get("op_key"), e.get("node")) else {
                continue;
            };
            if n != node || !key.contains(&format!("_{task}_")) {
                continue;
            }
            let rsc = key.split(&format!("_{task}_")).next().unwrap_or(key);
            if out.iter().any(|o| o.resource == rsc && o.rc != 0) {
                continue;
            }
            out.push(OpRun {
                resource: rsc.to_string(),
                node: node.to_string(),
                task: task.to_string(),
                rc: e.get("exitcode").and_then(|v| v.parse().ok()).unwrap_or(1),
                exec_ms: e
                    .get("exec-time")
                    .map(|v| v.trim_end_matches("ms"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                timeout_ms: timeout(rsc),
            });
        }
    }
    out.dedup_by(|a, b| a.resource == b.resource && a.rc == b.rc && a.exec_ms == b.exec_ms);
    out
}

/// How long a drill waits for the mail to leave the broken node.
const MOVE_DEADLINE: Duration = Duration::from_secs(150);
/// How long the lazily detached filesystem of a released node may take to
/// go away before its path is switched back to ok.
const DETACH_DEADLINE: Duration = Duration::from_secs(30);

impl Lab<'_> {
    /// Waits until the mail runs on another node than `from` (postfix
    /// started there), then returns the client's view of the recovery.
    /// Stops early (None) when Pacemaker gave up: a resource on `from`
    /// blocked or unmanaged after a failed stop.
    pub(super) fn wait_moved(
        &self,
        from: &str,
        fault_at: Instant,
        fault_ms: u128,
        read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
        notes: &mut Vec<String>,
    ) -> Option<f64> {
        while fault_at.elapsed() < MOVE_DEADLINE {
            if let Ok((s, _)) = self.any_status() {
                if let Some(now) = s.active_node.clone()
                    && now != from
                    && s.resources.iter().any(|r| {
                        r.id == "svc-postfix" && r.role == "Started" && r.nodes.contains(&now)
                    })
                {
                    notes.push(format!(
                        "the drill saw the mail on {now} {:.1}s after the fault",
                        fault_at.elapsed().as_secs_f64()
                    ));
                    return super::seconds_until_outage_end(read_log, fault_ms, |a| {
                        matches!(a, Attempt::Accepted(_))
                    });
                }
                let blocked: Vec<String> = s
                    .resources
                    .iter()
                    .filter(|r| !r.managed && r.nodes.iter().any(|n| n == from))
                    .map(|r| r.id.clone())
                    .collect();
                let failed_stop = s
                    .failures
                    .iter()
                    .any(|f| f.task == "stop" && f.node == from);
                if failed_stop && !blocked.is_empty() {
                    notes.push(format!(
                        "after {:.1}s: a stop failed on {from} and Pacemaker blocked {} (stonith-enabled={}: no fencing, so no recovery)",
                        fault_at.elapsed().as_secs_f64(),
                        blocked.join(", "),
                        s.stonith_enabled
                    ));
                    return None;
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        notes.push(format!(
            "the mail did not leave {from} within {}s",
            MOVE_DEADLINE.as_secs()
        ));
        None
    }

    /// Breaks `node`'s path to the shared disk.
    pub(crate) fn break_disk_path(&self, node: &str, mode: Mode) -> Result<(), LabError> {
        fusedisk::set_mode(&self.base_dir, node, mode).map_err(LabError::io(&self.base_dir))
    }

    /// Gives `node` its disk path back, safely: first every parked request
    /// fails (EIO), so processes stuck on the old mount die and the
    /// lazily detached filesystem goes away; only then `ok` (a request that
    /// completed late would write stale data under the peer's mount).
    pub(crate) fn restore_disk_path(&self, node: &str, notes: &mut Vec<String>) -> bool {
        self.restore_disk_path_within(node, DETACH_DEADLINE, notes)
    }

    /// As `restore_disk_path`; Ok when the path is ok again.
    pub(crate) fn restore_disk_path_within(
        &self,
        node: &str,
        deadline: Duration,
        notes: &mut Vec<String>,
    ) -> bool {
        if fusedisk::get_mode(&self.base_dir, node) == Some(Mode::Ok) {
            return true;
        }
        // Applied before anything else: the requests parked under the hang
        // fail, as the node's stuck I/O would; given back under `ok` they
        // would land late, after the node's newer writes.
        if !fusedisk::set_mode_applied(&self.base_dir, node, Mode::Eio, Duration::from_secs(5)) {
            notes.push(format!(
                "{node}: the disk path's daemon did not apply eio within 5 s"
            ));
            return false;
        }
        let devices: Vec<String> = self
            .store
            .load()
            .ok()
            .flatten()
            .map(|st| {
                st.loops
                    .iter()
                    .filter(|l| l.node == node)
                    .filter_map(|l| l.device.file_name()?.to_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let t = Instant::now();
        // ext4 lists each mounted filesystem (also a detached one still
        // held) under /sys/fs/ext4/<device>.
        let alive = || {
            devices
                .iter()
                .filter(|d| std::path::Path::new("/sys/fs/ext4").join(d).exists())
                .cloned()
                .collect::<Vec<_>>()
        };
        while !alive().is_empty() && t.elapsed() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let left = alive();
        if left.is_empty() {
            let _ = fusedisk::set_mode(&self.base_dir, node, Mode::Ok);
            notes.push(format!(
                "{node}'s disk path restored after its old mount was gone ({:.1}s)",
                t.elapsed().as_secs_f64()
            ));
            true
        } else {
            notes.push(format!(
                "{node}: ext4 still mounted on {left:?} after {}s; its disk path stays eio",
                deadline.as_secs()
            ));
            false
        }
    }

    /// The ping target unreachable from `node` only: nft drops its
    /// packets both ways inside that node. Returns the undo command.
    pub(crate) fn cut_ping(&self, node: &str) -> Result<Vec<String>, LabError> {
        let gw = super::super::topology::Aux::Gw.addr().to_string();
        self.nft_table(
            node,
            "mailha_drill_ping",
            &[("out", "output"), ("in", "input")],
            &[
                &["out", "ip", "daddr", &gw, "drop"],
                &["in", "ip", "saddr", &gw, "drop"],
            ],
        )
    }

    /// An nft table in `node` with `chains` (name, hook) and `rules` (a
    /// chain, then the rule); returns the argv that deletes it again.
    pub(crate) fn nft_table(
        &self,
        node: &str,
        table: &str,
        chains: &[(&str, &str)],
        rules: &[&[&str]],
    ) -> Result<Vec<String>, LabError> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut cmds = vec![words(&["nft", "add", "table", "inet", table])];
        for (name, hook) in chains {
            let mut c = words(&["nft", "add", "chain", "inet", table, name]);
            c.push(format!("{{ type filter hook {hook} priority -10 ; }}"));
            cmds.push(c);
        }
        for r in rules {
            let mut c = words(&["nft", "add", "rule", "inet", table]);
            c.extend(words(r));
            cmds.push(c);
        }
        for argv in &cmds {
            let a: Vec<&str> = argv.iter().map(String::as_str).collect();
            let o = self.in_node_out(node, &a)?;
            if !o.success() {
                return Err(LabError::Cluster(format!(
                    "nft in {node}: {}",
                    o.stderr.trim()
                )));
            }
        }
        Ok(words(&["nft", "delete", "table", "inet", table]))
    }

    /// The CIB's resources section (op timeouts), from any node.
    pub(super) fn cib_resources(&self) -> String {
        for n in ["node1", "node2"] {
            if let Ok(o) = self.in_node_out(n, &["cibadmin", "--query", "--scope", "resources"])
                && o.success()
            {
                return o.stdout;
            }
        }
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MON: &str = r#"<pacemaker-result><node_history><node name="node1">
<resource_history id="svc-postfix"><operation_history call="20" task="stop" rc="0" rc_text="ok" exec-time="1200ms"/></resource_history>
<resource_history id="fs-data"><operation_history call="21" task="stop" rc="1" rc_text="error" exec-time="54000ms"/><operation_history call="9" task="start" rc="0" exec-time="30ms"/></resource_history>
</node><node name="node2"><resource_history id="fs-data"><operation_history call="3" task="stop" rc="0" exec-time="5ms"/></resource_history></node></node_history>
<failures><failure op_key="vip_stop_0" node="node1" exitcode="1" exec-time="61000"/></failures></pacemaker-result>"#;
    const CIB: &str = r#"<resources><primitive id="fs-data"><operations><op id="a" name="start" timeout="60s"/><op id="b" name="stop" timeout="60s"/></operations></primitive>
<primitive id="vip"><operations><op id="c" name="stop" timeout="20s"/></operations></primitive></resources>"#;

    #[test]
    fn stops_come_from_the_history_and_the_failures_with_their_timeouts() {
        let v = ops(MON, CIB, "node1", "stop");
        assert_eq!(v.len(), 3, "{v:?}");
        let fs = v.iter().find(|o| o.resource == "fs-data").unwrap();
        assert_eq!((fs.rc, fs.exec_ms, fs.timeout_ms), (1, 54000, Some(60000)));
        assert!(!fs.in_time(), "a failed stop is not a stop in time");
        let pf = v.iter().find(|o| o.resource == "svc-postfix").unwrap();
        assert!(pf.in_time(), "no timeout known: rc 0 is enough");
        let vip = v.iter().find(|o| o.resource == "vip").unwrap();
        assert_eq!(
            (vip.rc, vip.exec_ms, vip.timeout_ms),
            (1, 61000, Some(20000))
        );
        assert!(ops(MON, CIB, "node2", "stop")[0].in_time());
    }
}
