//! The split-brain guard's drills (issue 6), a child of `drill` so they
//! share its node helpers. `cut-heartbeat`: both corosync links between
//! the nodes dropped on the standby (client and gw untouched); the guard
//! must keep the mail where it is, fence the standby through the lease
//! and never mount the data twice. Undone by lifting the cut and starting
//! the fenced standby's keeper and cluster stack again (a fenced keeper
//! holds nothing until it is restarted).

use super::super::LabError;
use super::super::watchdog::KEEPER_START;
use super::Lab;
use mailha::lease::client::Status;
use std::time::{Duration, Instant};

/// The nft table a cut lives in, inside the standby.
pub const CUT_TABLE: &str = "mailha_cut";

/// knet's ports: link 0 on 5405, link 1 on 5406 (corosync's default
/// mcastport and the one after it, as mailha's corosync.conf leaves them).
const KNET_PORTS: &str = "5405-5406";

/// The nft commands that cut the heartbeat in a node: corosync's UDP in
/// and out, nothing else (SMTP, ping, ssh and the lease disk still work).
pub fn cut_commands() -> Vec<Vec<&'static str>> {
    super::super::plan::nft_drop(
        CUT_TABLE,
        &["udp", "dport", KNET_PORTS],
        &["udp", "dport", KNET_PORTS],
    )
}

/// Restarting a fenced node's guard and stack, in order: the old keeper
/// gone (its socket name freed), a new one, then corosync and Pacemaker.
pub fn restart_commands(keeper_pid: u32) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut v = vec![
        s(&[
            "sh",
            "-c",
            "kill \"$1\"; while kill -0 \"$1\" 2>/dev/null; do sleep 0.1; done",
            "sh",
            &keeper_pid.to_string(),
        ]),
        s(&["sh", "-c", KEEPER_START]),
        // The new keeper answers before the stack probes the lease.
        s(&[
            "sh",
            "-c",
            "for i in $(seq 50); do mailha lease status >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1",
        ]),
    ];
    for c in mailha::setup::stack_commands(mailha::setup::InitSystem::SysV, true, false) {
        v.push(s(&c));
    }
    v
}

impl Lab<'_> {
    pub(super) fn keeper_status(&self, node: &str) -> Result<Status, LabError> {
        let o = self.in_node_out(node, &["mailha", "lease", "status"])?;
        serde_json::from_str(&o.stdout).map_err(|e| {
            LabError::Cluster(format!(
                "{node}: lease keeper: {e}: {}{}",
                o.stdout,
                o.stderr.trim()
            ))
        })
    }

    /// Cuts the heartbeat in `node`; returns the undo commands.
    pub(super) fn cut_heartbeat(&self, node: &str) -> Result<Vec<Vec<String>>, LabError> {
        let undo = vec![vec![
            node.to_string(),
            "nft".into(),
            "delete".into(),
            "table".into(),
            "inet".into(),
            CUT_TABLE.into(),
        ]];
        for argv in cut_commands() {
            let o = self.in_node_out(node, &argv)?;
            if !o.success() {
                return Err(LabError::Cluster(format!(
                    "nft in {node}: {}",
                    o.stderr.trim()
                )));
            }
        }
        Ok(undo)
    }

    /// Waits until `node`'s keeper says it fenced itself.
    pub(super) fn wait_fenced(&self, node: &str, deadline: Duration) -> Option<Status> {
        let t = Instant::now();
        while t.elapsed() < deadline {
            if let Ok(st) = self.keeper_status(node)
                && st.role == "fenced"
            {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_drops_only_corosync_udp() {
        let rules: Vec<String> = cut_commands().iter().map(|c| c.join(" ")).collect();
        assert!(
            rules
                .iter()
                .any(|r| r.ends_with("in udp dport 5405-5406 drop"))
        );
        assert!(
            rules
                .iter()
                .any(|r| r.ends_with("out udp dport 5405-5406 drop"))
        );
        assert!(!rules.iter().any(|r| r.contains("tcp")), "SMTP stays up");
    }

    #[test]
    fn a_fenced_node_restarts_keeper_first_then_corosync_then_pacemaker() {
        let v: Vec<String> = restart_commands(42).iter().map(|c| c.join(" ")).collect();
        assert!(v[0].ends_with("sh 42"));
        assert!(v[1].contains("service mailha-lease start"));
        assert_eq!(
            &v[3..],
            ["service corosync start", "service pacemaker start"]
        );
    }
}

/// Where the cgroup v2 hierarchy is mounted (a hybrid host mounts it at
/// /sys/fs/cgroup/unified), from mountinfo text.
pub fn cgroup2_root(mountinfo: &str) -> Option<std::path::PathBuf> {
    mailha::mounts::mountinfo::parse(mountinfo)
        .into_iter()
        .find(|e| e.fstype == "cgroup2")
        .map(|e| std::path::PathBuf::from(e.mount_point))
}

impl Lab<'_> {
    /// Kills every process of `node` at once: SIGKILL to its PID 1.
    pub(super) fn kill_node(&self, node: &str) -> Result<u32, LabError> {
        let pid = self.holder_pid(node)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .map_err(|e| LabError::Cluster(format!("killing {node}'s PID 1 ({pid}): {e}")))?;
        Ok(pid)
    }

    /// Whether `node`'s holder (as recorded) still runs.
    pub(super) fn node_alive(&self, node: &str) -> bool {
        self.store
            .load()
            .ok()
            .flatten()
            .and_then(|st| st.holder(node).cloned())
            .is_some_and(|h| super::super::holder::is_alive(&self.proc_root, h.pid, h.start_time))
    }

    /// Freezes every process of `node` in a cgroup v2 of its own (frozen
    /// tasks still die of SIGKILL there, as the watchdog's reset needs).
    /// Returns the cgroup's directory, to remove once the node is gone.
    pub(super) fn freeze_node(&self, node: &str) -> Result<std::path::PathBuf, LabError> {
        let pid = self.holder_pid(node)?;
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let root = cgroup2_root(&mi)
            .ok_or_else(|| LabError::Cluster("no cgroup2 hierarchy on this host".into()))?;
        let dir = root.join(format!("mailha-lab-{}-{node}", self.topo.prefix));
        std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let ns =
            |p: u32| std::fs::read_link(self.proc_root.join(p.to_string()).join("ns/pid")).ok();
        let node_ns = ns(pid);
        // Twice: a process forked while the first pass ran joins its
        // parent's cgroup only if the parent had moved already.
        for _ in 0..2 {
            for p in mailha::procs::all(&self.proc_root) {
                if p == pid || (node_ns.is_some() && ns(p) == node_ns) {
                    let _ = std::fs::write(dir.join("cgroup.procs"), p.to_string());
                }
            }
        }
        let f = dir.join("cgroup.freeze");
        std::fs::write(&f, "1").map_err(LabError::io(&f))?;
        Ok(dir)
    }

    /// Waits until the mail runs on another node than `from`, then for the
    /// client's first accepted mail: seconds from the fault.
    pub(super) fn wait_mail_moved(
        &self,
        from: &str,
        read_log: &dyn Fn() -> Vec<(u128, super::Attempt)>,
        fault_ms: u128,
        deadline: Duration,
    ) -> Option<f64> {
        let t = Instant::now();
        while t.elapsed() < deadline {
            if let Ok((s, _)) = self.any_status()
                && let Some(now) = s.active_node.clone()
                && now != from
                && s.resources
                    .iter()
                    .any(|r| r.id == "svc-postfix" && r.role == "Started" && r.nodes.contains(&now))
            {
                return super::seconds_until_outage_end(read_log, fault_ms, |a| {
                    matches!(a, super::Attempt::Accepted(_))
                });
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        None
    }
}

impl Lab<'_> {
    /// For `span`: the nodes that had the data mounted at some sample, and
    /// the most nodes that had it at once (every 100 ms, following the
    /// state file's holders).
    pub(super) fn watch_mounts(&self, span: Duration) -> (Vec<String>, usize) {
        let mut ever = std::collections::BTreeSet::new();
        let mut most = 0;
        let t = Instant::now();
        while t.elapsed() < span {
            let holders = self
                .store
                .load()
                .ok()
                .flatten()
                .map(|s| s.holders)
                .unwrap_or_default();
            let mut now = 0;
            for h in holders {
                let mi = std::fs::read_to_string(
                    self.proc_root.join(h.pid.to_string()).join("mountinfo"),
                )
                .unwrap_or_default();
                let entries = mailha::mounts::mountinfo::parse(&mi);
                if mailha::mounts::mountinfo::find(&entries, super::DATA_MOUNT).is_some() {
                    now += 1;
                    ever.insert(h.node);
                }
            }
            most = most.max(now);
            std::thread::sleep(Duration::from_millis(100));
        }
        (ever.into_iter().collect(), most)
    }
}

#[cfg(test)]
mod cgroup_tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_on_a_hybrid_host() {
        let mi = "30 25 0:26 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n\
                  35 25 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_root(mi),
            Some(std::path::PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_root(""), None);
    }
}
