//! `nfs-hang [NODE] --mode freeze|partition`: the lab's NFS server
//! (`lab::nfs`, nfs-ganesha at 198.51.100.30) is frozen (SIGSTOP) or
//! partitioned (nft drop in its namespace) while the mail load runs, and
//! the storage agent must notice in time and stay bounded.
//!
//! What this kernel lets us show, and how (it has NO NFS client, so no
//! node can mount the export and the cluster's data stays on the shared
//! ext4 disk):
//! - the health probe, exactly as the agent runs it: `storage monitor`
//!   (ocf:mailha:storage, `nfs=198.51.100.30:/export`) in the node. The
//!   agent reads "mounted?" from mountinfo and compares the source, so the
//!   node gets a stand-in mount whose source names the export (a small
//!   tmpfs mounted as `198.51.100.30:/export`); the agent then does what it
//!   does on a real NFS mount: an RPC NULL call to the live ganesha, with
//!   its `io_timeout`. Healthy: it answers; under the fault the monitor
//!   must fail, within the monitor's op timeout (Pacemaker's limit);
//!   restored: it answers again.
//! - the bounded stop, against what behaves like a hung network mount
//!   here: a FUSE mount (bindfs) whose daemon is frozen at the same moment
//!   as the server, with a user (cwd and an open file there) and a reader
//!   stuck mid-open in it; `storage stop` with the same
//!   NFS parameters must return within its op timeout, the mount released.
//!
//! What only a kernel with an NFS client shows (backend 2, DESIGN section
//! 9): a hard mount's processes in D state, `umount -f` aborting the RPCs
//! and `umount -l` detaching, the client's "server not responding" / "OK".
//! The JSON says so (`nfs.data_on_nfs`, `nfs.what_needs_an_nfs_client`).

use super::super::nfs::{self, Fault};
use super::super::{Lab, LabError};
use serde::Serialize;
use std::time::{Duration, Instant};

/// The stand-ins in the node (fixed paths; nothing from the config).
pub const PROBE_DIR: &str = "/mnt/mailha-nfs";
pub const HUNG_DIR: &str = "/mnt/mailha-nfs-hung";
const HUNG_SRC: &str = "/var/lib/mailha-nfs-drill/src";
const SPOOL: &str = "/var/lib/mailha-nfs-drill/spool";
const AGENT: &str = "/usr/lib/ocf/resource.d/mailha/storage";

/// The probe's own deadline (the agent's `io_timeout`) and the op
/// timeouts Pacemaker would give the agent (its meta-data defaults:
/// monitor 20 s; the stop gets 10 s here, a tight but common setting).
pub const IO_TIMEOUT: &str = "2s";
pub const IO_TIMEOUT_MS: u64 = 2000;
pub const MONITOR_TIMEOUT_MS: u64 = 20_000;
pub const STOP_TIMEOUT_MS: u64 = 10_000;

/// One agent call, as the drill saw it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentRun {
    pub action: String,
    /// The OCF exit code (0 success, 1 generic error, 7 not running).
    pub rc: i32,
    pub ms: u64,
    pub timeout_ms: u64,
    /// The agent's exit reason / last log line.
    pub said: String,
}

impl AgentRun {
    pub fn in_time(&self) -> bool {
        self.ms < self.timeout_ms
    }
}

/// The `nfs` part of the drill's JSON.
#[derive(Debug, Clone, Serialize)]
pub struct NfsReport {
    pub mode: &'static str,
    pub export: String,
    pub node: String,
    /// The probe's own deadline (`io_timeout`).
    pub io_timeout_ms: u64,
    pub healthy_probe: Option<AgentRun>,
    /// The monitor under the fault; `probe_failed_in_time`: it failed and
    /// returned within the monitor's op timeout.
    pub fault_probe: Option<AgentRun>,
    pub probe_failed_in_time: bool,
    /// The stop of the hung stand-in mount; `stop_in_time`: it succeeded
    /// within its op timeout and the mount is gone.
    pub stop: Option<AgentRun>,
    pub stop_in_time: bool,
    /// Which step released the hung mount (from the agent's log).
    pub released_by: Option<String>,
    /// The monitor after the server was restored.
    pub restored_probe: Option<AgentRun>,
    pub restored: bool,
    /// Always false here: this kernel has no NFS client, so the cluster's
    /// data is on the shared ext4 disk, not on the export.
    pub data_on_nfs: bool,
    pub what_needs_an_nfs_client: &'static str,
}

impl NfsReport {
    pub fn ok(&self) -> bool {
        self.healthy_probe.as_ref().is_some_and(|p| p.rc == 0)
            && self.probe_failed_in_time
            && self.stop_in_time
            && self.restored
    }
}

pub const NEEDS_A_CLIENT: &str = "a hard NFS mount's processes in D state, umount -f aborting its RPCs and umount -l detaching it, the kernel's 'server not responding'/'OK': backend 2 (a kernel with an NFS client)";

fn setup_script() -> String {
    format!(
        "set -e
mkdir -p {PROBE_DIR} {HUNG_DIR} {HUNG_SRC} {SPOOL}
umount -l {PROBE_DIR} 2>/dev/null || true
umount -l {HUNG_DIR} 2>/dev/null || true
mount -t tmpfs -o size=1m {export} {PROBE_DIR}
echo data >{HUNG_SRC}/f
bindfs {HUNG_SRC} {HUNG_DIR}
",
        export = nfs::export_spec()
    )
}

/// The agent's argv for `action` on `directory`, with the NFS export as
/// its source (env through `env`: the node's commands get a clean one).
fn agent_argv(action: &str, directory: &str, timeout_ms: u64) -> Vec<String> {
    vec![
        "env".into(),
        "OCF_ROOT=/usr/lib/ocf".into(),
        "OCF_RESOURCE_INSTANCE=nfs-drill".into(),
        format!("MAILHA_SPOOL={SPOOL}"),
        format!("OCF_RESKEY_nfs={}", nfs::export_spec()),
        "OCF_RESKEY_fstype=nfs4".into(),
        format!("OCF_RESKEY_directory={directory}"),
        format!("OCF_RESKEY_io_timeout={IO_TIMEOUT}"),
        format!("OCF_RESKEY_CRM_meta_timeout={timeout_ms}"),
        AGENT.into(),
        action.into(),
    ]
}

/// "released by umount" (the agent's log line) -> "umount".
pub fn released_by(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let rest = l.split(" released by ").nth(1)?;
        Some(rest.split(" after ").next()?.to_string())
    })
}

impl Lab<'_> {
    fn agent(&self, node: &str, action: &str, dir: &str, timeout_ms: u64) -> AgentRun {
        let argv = agent_argv(action, dir, timeout_ms);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let t = Instant::now();
        let o = self.in_node_out(node, &argv);
        let ms = t.elapsed().as_millis() as u64;
        let (rc, said) = match o {
            Ok(o) => (
                o.code.unwrap_or(-1),
                o.stderr
                    .lines()
                    .chain(o.stdout.lines())
                    .filter(|l| !l.trim().is_empty())
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            Err(e) => (-1, e.to_string()),
        };
        AgentRun {
            action: action.into(),
            rc,
            ms,
            timeout_ms,
            said,
        }
    }

    /// Starts a background process in the node by a constant script that
    /// prints its PID (`$!`); returns (PID in the node, program name).
    fn spawn_in_node(&self, pid1: u32, script: &str, comm: &str) -> Option<(String, String)> {
        let o = self
            .runner
            .run(&super::super::plan::in_node_sh(pid1, script).deadline(Duration::from_secs(10)))
            .ok()?;
        let p = o.stdout.trim().to_string();
        (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())).then(|| (p, comm.to_string()))
    }

    fn bindfs_pid(&self, node: &str) -> Option<String> {
        let o = self
            .in_node_out(node, &["pgrep", "-n", "-x", "bindfs"])
            .ok()?;
        o.stdout
            .lines()
            .next()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    fn mounted_in(&self, node: &str, dir: &str) -> bool {
        self.in_node_out(node, &["cat", "/proc/self/mountinfo"])
            .map(|o| {
                mailha::mounts::mountinfo::find(&mailha::mounts::mountinfo::parse(&o.stdout), dir)
                    .is_some()
            })
            .unwrap_or(true)
    }

    /// The drill's fault and checks (the load and the verdict are the
    /// common frame in drill.rs). The server is restored whatever happens.
    pub(super) fn nfs_hang(
        &self,
        node: &str,
        mode: Fault,
        notes: &mut Vec<String>,
    ) -> Result<NfsReport, LabError> {
        let mut rep = NfsReport {
            mode: mode.name(),
            export: nfs::export_spec(),
            node: node.to_string(),
            io_timeout_ms: IO_TIMEOUT_MS,
            healthy_probe: None,
            fault_probe: None,
            probe_failed_in_time: false,
            stop: None,
            stop_in_time: false,
            released_by: None,
            restored_probe: None,
            restored: false,
            data_on_nfs: false,
            what_needs_an_nfs_client: NEEDS_A_CLIENT,
        };
        // Start from a working server: an interrupted earlier drill (or a
        // `lab nfs freeze` by hand) may have left it broken.
        for f in [Fault::Freeze, Fault::Partition] {
            self.nfs_restore(f)?;
        }
        let pid = self.pid1(node)?;
        let o = self.runner.run(
            &super::super::plan::in_node_sh(pid, &setup_script()).deadline(Duration::from_secs(30)),
        )?;
        if !o.success() {
            return Err(LabError::Cluster(format!(
                "nfs-hang: stand-in mounts in {node}: {}",
                o.stderr.trim()
            )));
        }
        let healthy = self.agent(node, "monitor", PROBE_DIR, MONITOR_TIMEOUT_MS);
        notes.push(format!(
            "{node}: storage monitor of {} (healthy server): rc {} in {} ms",
            rep.export, healthy.rc, healthy.ms
        ));
        rep.healthy_probe = Some(healthy);

        // A user of the mount, as a mail daemon would be: its cwd and an
        // open file there (tail re-reads it every second, so once frozen
        // it blocks in a FUSE request). The stop must find and end it.
        let mut users = Vec::new();
        users.extend(self.spawn_in_node(
            pid,
            &format!("cd {HUNG_DIR} && tail -f f >/dev/null 2>&1 & echo $!"),
            "tail",
        ));
        let bindfs = self.bindfs_pid(node);
        let faulted = self.nfs_fault(mode);
        let frozen_standin = bindfs
            .as_deref()
            .map(|p| self.in_node_out(node, &["kill", "-STOP", p]));
        if let Err(e) = &faulted {
            notes.push(format!("nfs fault {}: {e}", mode.name()));
        } else {
            notes.push(format!(
                "nfs-ganesha {}; the hung stand-in's FUSE daemon frozen too ({})",
                match mode {
                    Fault::Freeze => "frozen (SIGSTOP)",
                    Fault::Partition => "partitioned (nft drop in its namespace)",
                },
                if matches!(frozen_standin, Some(Ok(ref o)) if o.success()) {
                    "ok"
                } else {
                    "FAILED"
                }
            ));
            // And a reader blocked mid-open (it holds no fd yet, so no
            // /proc scan finds it: only a forced or lazy umount helps).
            users.extend(self.spawn_in_node(
                pid,
                &format!("cat {HUNG_DIR}/f >/dev/null 2>&1 & echo $!"),
                "cat",
            ));
            let probe = self.agent(node, "monitor", PROBE_DIR, MONITOR_TIMEOUT_MS);
            rep.probe_failed_in_time = probe.rc != 0 && probe.in_time();
            notes.push(format!(
                "{node}: storage monitor under the fault: rc {} in {} ms ({})",
                probe.rc, probe.ms, probe.said
            ));
            rep.fault_probe = Some(probe);

            let stop = self.agent(node, "stop", HUNG_DIR, STOP_TIMEOUT_MS);
            rep.released_by = released_by(&stop.said);
            rep.stop_in_time = stop.rc == 0 && stop.in_time() && !self.mounted_in(node, HUNG_DIR);
            notes.push(format!(
                "{node}: storage stop of the hung mount: rc {} in {} ms (timeout {} ms), released by {:?}",
                stop.rc, stop.ms, stop.timeout_ms, rep.released_by
            ));
            rep.stop = Some(stop);
        }

        // Restore, whatever happened above.
        if let Err(e) = self.nfs_restore(mode) {
            notes.push(format!("restoring the nfs server: {e}"));
        }
        if let Some(p) = &bindfs {
            let _ = self.in_node_out(node, &["kill", "-CONT", p]);
        }
        if faulted.is_ok() {
            let back = self.agent(node, "monitor", PROBE_DIR, MONITOR_TIMEOUT_MS);
            rep.restored = back.rc == 0;
            notes.push(format!(
                "{node}: storage monitor after the restore: rc {} in {} ms",
                back.rc, back.ms
            ));
            rep.restored_probe = Some(back);
        }

        // The stand-ins go: the probe's tmpfs, the FUSE daemon (its mount
        // was released by the stop; once thawed it ends by itself, else
        // it is killed by PID).
        // Whatever the stop left of our users (a failed stop) goes too,
        // by PID and only if it is still the program we started.
        for (p, comm) in &users {
            let now = self.in_node_out(node, &["cat", &format!("/proc/{p}/comm")]);
            if now.is_ok_and(|o| o.stdout.trim() == comm) {
                let _ = self.in_node_out(node, &["kill", "-KILL", p]);
            }
        }
        let _ = self.in_node_out(node, &["umount", PROBE_DIR]);
        let _ = self.in_node_out(node, &["umount", "-l", HUNG_DIR]);
        if let Some(p) = &bindfs {
            let t = Instant::now();
            while self.bindfs_pid(node).as_ref() == Some(p) && t.elapsed() < Duration::from_secs(3)
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            if self.bindfs_pid(node).as_ref() == Some(p) {
                let _ = self.in_node_out(node, &["kill", "-KILL", p]);
            }
        }
        faulted?;
        Ok(rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_gets_the_export_and_the_deadlines_as_parameters() {
        let a = agent_argv("monitor", PROBE_DIR, MONITOR_TIMEOUT_MS);
        assert_eq!(a[0], "env");
        assert!(a.contains(&"OCF_RESKEY_nfs=198.51.100.30:/export".to_string()));
        assert!(a.contains(&format!("OCF_RESKEY_directory={PROBE_DIR}")));
        assert!(a.contains(&"OCF_RESKEY_CRM_meta_timeout=20000".to_string()));
        assert_eq!(a[a.len() - 2..], [AGENT.to_string(), "monitor".into()]);
    }

    #[test]
    fn the_releasing_step_is_read_from_the_agent_log() {
        let log = "storage: /mnt/x: sending TERM to users [12] | storage: /mnt/x released by umount MNT_FORCE after 3.2s";
        assert_eq!(released_by(log).as_deref(), Some("umount MNT_FORCE"));
        assert_eq!(released_by("nothing"), None);
    }

    #[test]
    fn the_stand_in_is_named_after_the_export() {
        assert!(
            setup_script()
                .contains("mount -t tmpfs -o size=1m 198.51.100.30:/export /mnt/mailha-nfs\n")
        );
    }
}

#[cfg(test)]
mod parse_tests {
    use super::super::Drill;
    use super::Fault;

    #[test]
    fn nfs_hang_defaults_to_the_active_node_and_a_frozen_server() {
        assert_eq!(
            Drill::parse("nfs-hang", None, None),
            Ok(Drill::NfsHang {
                node: "active".into(),
                mode: Fault::Freeze
            })
        );
        let d = Drill::parse("nfs-hang", Some("node2"), Some("partition")).unwrap();
        assert_eq!(d.name(), "nfs-hang node2 --mode partition");
        assert!(Drill::parse("nfs-hang", None, Some("hang")).is_err());
        assert!(Drill::parse("nfs-hang", Some("gw"), None).is_err());
    }
}
