//! `mailha lab drill NAME`: inject one fault into the running lab, measure
//! from the client's side, check the invariants, and leave the cluster
//! healthy for the next drill (DESIGN section 9, the JSON contract).
//!
//! Around every drill: a mail load from the client namespace (`load.rs`),
//! a sampler reading both nodes' mount tables every 100 ms
//! (`double_mounts`), and at the end a check that every message that got
//! a 250 is in the mailbox (`lost`).

pub mod nfs;
pub mod storage;
pub mod switchover;
pub mod timeline;
pub mod upgrade;

use super::fusedisk::Mode;
#[path = "drill_lease.rs"]
mod lease;

use super::load::{self, Attempt};
use super::plan::{self, DATA_MOUNT};
use super::{Lab, LabError};
use mailha::status::Status;
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drill {
    /// kill -9 of the daemon's main process on the active node.
    KillDaemon(String),
    /// The daemon runs but stops answering (its port rejected on the
    /// active node only): it fails until it moves.
    FailDaemon(String),
    /// One node's path to the shared disk fails (EIO) or hangs.
    StorageLoss { node: String, mode: Mode },
    /// The ping target unreachable from one node only.
    CutPing(String),
    /// Both corosync links dropped on the standby: it is fenced through
    /// the lease, the mail stays where it is (drill_lease.rs).
    CutHeartbeat,
    /// Every process of NODE killed at once (its PID 1), then NODE booted
    /// again (drill_lease.rs).
    KillNode(String),
    /// NODE frozen (cgroup freezer): its watchdog must reset it before the
    /// peer takes the lease; then NODE booted again.
    FreezeNode(String),
    /// Both nodes killed, then booted together with the heartbeat cut:
    /// at most one may mount; the cut is then lifted (drill_lease.rs).
    SimulStart,
    /// Pacemaker's scheduler killed (kill -9) on the node running the
    /// mail, made the DC first (Pacemaker's own CTS ComponentFail): its
    /// controller exits and restarts, the new DC erases the node's
    /// transient attributes (pingd among them), and the mail must keep
    /// running there (issue 19).
    KillScheduler,
    /// The lab's NFS server frozen or partitioned: the storage agent's
    /// probe fails in time, its stop stays bounded (drill/nfs.rs).
    NfsHang {
        node: String,
        mode: super::nfs::Fault,
    },
    /// A newer mailha package installed on NODE (dpkg -i) under load and
    /// its lease keeper restarted: nothing may move (drill/upgrade.rs).
    Upgrade(String),
    /// A planned switchover under load: `mailha switchover` run on the
    /// active node (`stock`: `crm_resource --move` of the chain's root,
    /// then `--clear` once the mail moved, as an operator does by hand);
    /// nothing may be left pinned.
    Switchover { stock: bool },
    /// `mailha standby` of the active node under load, then `mailha
    /// online` of it: the mail moves once, nothing is left in standby.
    Standby,
    /// `mailha maintenance on`, postfix's master killed, 10 s in which
    /// nothing may restart it, `mailha maintenance off`: recovered_s is
    /// from `off` to the first accepted mail.
    Maintenance,
}

impl Drill {
    /// `arg` is the SERVICE or NODE the drill names; `mode` only for
    /// storage-loss (eio|hang).
    pub fn parse(name: &str, service: Option<&str>, mode: Option<&str>) -> Result<Drill, String> {
        let svc = || {
            service
                .map(str::to_string)
                .ok_or_else(|| format!("drill {name} needs a SERVICE"))
        };
        let node = || match service {
            Some(n @ ("node1" | "node2" | "active")) => Ok(n.to_string()),
            _ => Err(format!(
                "drill {name} needs a NODE (node1, node2, or active: wherever the mail runs)"
            )),
        };
        match name {
            "kill-daemon" => Ok(Drill::KillDaemon(svc()?)),
            "fail-daemon" => Ok(Drill::FailDaemon(svc()?)),
            "storage-loss" => Ok(Drill::StorageLoss {
                node: node()?,
                mode: match mode.map(Mode::parse) {
                    Some(Some(m)) if m != Mode::Ok => m,
                    _ => return Err("storage-loss NODE needs --mode eio|hang".into()),
                },
            }),
            "cut-ping" => Ok(Drill::CutPing(node()?)),
            "cut-heartbeat" => Ok(Drill::CutHeartbeat),
            "kill-node" => Ok(Drill::KillNode(svc()?)),
            "freeze-node" => Ok(Drill::FreezeNode(svc()?)),
            "simul-start" => Ok(Drill::SimulStart),
            "kill-scheduler" => Ok(Drill::KillScheduler),
            "standby" => Ok(Drill::Standby),
            "maintenance" => Ok(Drill::Maintenance),
            "switchover" => Ok(Drill::Switchover {
                stock: match mode {
                    None | Some("mailha") => false,
                    Some("stock") => true,
                    Some(m) => {
                        return Err(format!("switchover takes --mode mailha|stock, not {m:?}"));
                    }
                },
            }),
            "upgrade" => Ok(Drill::Upgrade(if service.is_some() {
                node()?
            } else {
                "active".into()
            })),
            "nfs-hang" => Ok(Drill::NfsHang {
                node: if service.is_some() {
                    node()?
                } else {
                    "active".into()
                },
                mode: match mode.map(super::nfs::Fault::parse) {
                    None => super::nfs::Fault::Freeze,
                    Some(Some(f)) => f,
                    Some(None) => return Err("nfs-hang takes --mode freeze|partition".into()),
                },
            }),
            _ => Err(format!(
                "unknown drill {name:?}: kill-daemon SERVICE, fail-daemon SERVICE, storage-loss NODE --mode eio|hang, cut-ping NODE, cut-heartbeat, kill-node NODE, freeze-node NODE, simul-start, kill-scheduler, switchover [--mode mailha|stock], standby, maintenance, nfs-hang [NODE] [--mode freeze|partition], upgrade [NODE]"
            )),
        }
    }
    pub fn name(&self) -> String {
        match self {
            Drill::KillDaemon(s) => format!("kill-daemon {s}"),
            Drill::FailDaemon(s) => format!("fail-daemon {s}"),
            Drill::StorageLoss { node, mode } => {
                format!("storage-loss {node} --mode {}", mode.name())
            }
            Drill::CutPing(n) => format!("cut-ping {n}"),
            Drill::CutHeartbeat => "cut-heartbeat".into(),
            Drill::KillNode(n) => format!("kill-node {n}"),
            Drill::FreezeNode(n) => format!("freeze-node {n}"),
            Drill::SimulStart => "simul-start".into(),
            Drill::KillScheduler => "kill-scheduler".into(),
            Drill::Upgrade(n) => format!("upgrade {n}"),
            Drill::Switchover { stock: false } => "switchover".into(),
            Drill::Switchover { stock: true } => "switchover --mode stock".into(),
            Drill::Standby => "standby".into(),
            Drill::Maintenance => "maintenance".into(),
            Drill::NfsHang { node, mode } => format!("nfs-hang {node} --mode {}", mode.name()),
        }
    }
}

/// The lab's daemons: service name -> (process name, port it serves).
pub fn daemon(service: &str) -> Option<(&'static str, u16)> {
    Some(match service {
        "postfix" => ("master", 25),
        "dovecot" => ("dovecot", 143),
        "mysql" => ("mariadbd", 3306),
        "memcached" => ("memcached", 11211),
        // The eyou profile's names for the same daemons (the stand-in,
        // eyou_tree.rs).
        "smtp" => ("master", 25),
        "imap" => ("dovecot", 143),
        "memcache_session" => ("memcached", 11211),
        _ => return None,
    })
}

/// The nodes the drills run on (see `Report::backend`).
pub const BACKEND: &str = "nspawn";

/// The JSON contract (DESIGN section 9).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub drill: String,
    /// Which kind of node ran it: `nspawn` (systemd nodes booted by
    /// systemd-nspawn; it was `namespaces` for the older holder nodes,
    /// so benchmark histories tell the two apart).
    pub backend: &'static str,
    /// Fault -> the service answers on the VIP again; null if it did not.
    pub recovered_s: Option<f64>,
    pub switched: bool,
    pub accepted: usize,
    pub lost: usize,
    pub double_mounts: usize,
    pub ok: bool,
    pub node_before: Option<String>,
    pub node_after: Option<String>,
    /// Resources started again after the fault, in start order (from the
    /// operation history).
    pub restarted: Vec<String>,
    /// Every stop Pacemaker ran on the node the mail left, with its
    /// duration and its timeout (storage-loss: each must succeed in time).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stops: Vec<storage::OpRun>,
    /// nfs-hang: the probe and stop measurements (drill/nfs.rs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nfs: Option<nfs::NfsReport>,
    pub notes: Vec<String>,
    /// Where the time went: the first event of each phase after the fault
    /// (`timeline.rs`), from both nodes' journals, the watchdogs' logs and
    /// the client's SMTP and IMAP logs.
    pub phases: Vec<timeline::Phase>,
}

/// From the load log: the first time (ms) at or after `from` of an
/// attempt that `good` accepts.
pub fn first_after(
    log: &[(u128, Attempt)],
    from: u128,
    good: impl Fn(&Attempt) -> bool,
) -> Option<u128> {
    log.iter()
        .find(|(t, a)| *t >= from && good(a))
        .map(|(t, _)| *t)
}

/// For a fault the mail must not notice: the end of the client's first
/// outage after `from` (or its first accepted mail when there was none),
/// and a NOT_MET note when any of its mail failed after `from`.
/// The start of kill-scheduler's note when Pacemaker fenced the node.
pub(crate) const PACEMAKER_FENCED: &str = "Pacemaker fenced";

fn unharmed_since(
    log: &[(u128, Attempt)],
    from: u128,
    what: &str,
    notes: &mut Vec<String>,
) -> Option<f64> {
    if let Some(bad) = log
        .iter()
        .find(|(t, a)| *t >= from && !matches!(a, Attempt::Accepted(_)))
    {
        notes.push(format!(
            "{NOT_MET}: the client's mail failed {:.1} s after {what}",
            (bad.0 - from) as f64 / 1000.0
        ));
    }
    outage_end_after(log, from).map(|ms| (ms - from) as f64 / 1000.0)
}

/// The end of the first outage the client saw from `from` on: the first
/// accepted mail after the first failed attempt, or, when nothing failed,
/// the first accepted mail. None when none came.
pub fn outage_end_after(log: &[(u128, Attempt)], from: u128) -> Option<u128> {
    let accepted = |a: &Attempt| matches!(a, Attempt::Accepted(_));
    match log.iter().find(|(t, a)| *t >= from && !accepted(a)) {
        Some((bad, _)) => first_after(log, *bad, accepted),
        None => first_after(log, from, accepted),
    }
}

pub fn accepted_ids(log: &[(u128, Attempt)]) -> BTreeSet<String> {
    log.iter()
        .filter_map(|(_, a)| match a {
            Attempt::Accepted(id) => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Message-IDs found in a Maildir (headers only, first 8 KiB per file).
pub fn maildir_ids(maildir: &Path) -> BTreeSet<String> {
    maildir_id_list(maildir).into_iter().collect()
}

/// Every message's Message-ID in a Maildir, one per file: a message
/// delivered twice is listed twice (the soak's checker counts repeats).
pub fn maildir_id_list(maildir: &Path) -> Vec<String> {
    use std::io::Read;
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = std::fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let mut buf = vec![0u8; 8192];
            let n = std::fs::File::open(e.path())
                .and_then(|mut f| f.read(&mut buf))
                .unwrap_or(0);
            let text = String::from_utf8_lossy(&buf[..n]);
            for l in text.lines() {
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l
                    .strip_prefix("Message-ID:")
                    .or_else(|| l.strip_prefix("Message-Id:"))
                {
                    out.push(v.trim().to_string());
                    break;
                }
            }
        }
    }
    out
}

/// Ends the mail load `spawn_load` started: its stop file, then up to
/// 15 s for it to finish its session and exit, then SIGKILL.
pub fn stop_load(loader: &mut std::process::Child, stop: &Path) {
    let _ = std::fs::write(stop, b"");
    let t = Instant::now();
    while loader.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if loader.try_wait().ok().flatten().is_none() {
        let _ = loader.kill();
        let _ = loader.wait();
    }
}

/// Whether the shared data is mounted in the node whose PID 1 is `pid`
/// (its mount table, read from the host).
pub fn data_mounted(proc_root: &Path, pid: u32) -> bool {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("mountinfo"))
        .map(|m| {
            mailha::mounts::mountinfo::find(&mailha::mounts::mountinfo::parse(&m), DATA_MOUNT)
                .is_some()
        })
        .unwrap_or(false)
}

/// The Maildir the load delivers to, as the host sees it in the node
/// whose PID 1 is `pid`.
pub fn load_maildir(pid: u32) -> PathBuf {
    PathBuf::from(format!(
        "/proc/{pid}/root{DATA_MOUNT}/vmail/lab.test/user1/Maildir"
    ))
}

/// Start call ids from crm_mon's operation history: (resource, call) of
/// every start on `node`, in call order.
pub fn starts(crm_mon_xml: &str, node: &str) -> Vec<(String, u64)> {
    let Ok(root) = mailha::cib::xml::El::parse(crm_mon_xml) else {
        return vec![];
    };
    let mut out = Vec::new();
    if let Some(h) = root.find("node_history") {
        for n in h.children.iter().filter(|n| n.get("name") == Some(node)) {
            for r in &n.children {
                for op in &r.children {
                    if op.get("task") == Some("start")
                        && let (Some(id), Some(call)) =
                            (r.get("id"), op.get("call").and_then(|c| c.parse().ok()))
                    {
                        out.push((id.to_string(), call));
                    }
                }
            }
        }
    }
    out.sort_by_key(|(_, c)| *c);
    out
}

/// fail-daemon's recovery includes the start on the failing node, which
/// gives up once the daemon is up, fails its probe and makes no progress
/// for `start_stall`, before the cluster moves.
/// After the recovery condition: the seconds from the fault to the first
/// load attempt from now on that `good` accepts (the client's view), or
/// None when none comes within 20 s.
pub(super) fn seconds_until(
    read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
    fault_ms: u128,
    good: impl Fn(&Attempt) -> bool,
) -> Option<f64> {
    poll_log(read_log, fault_ms, |log, since| {
        first_after(log, since, &good)
    })
}

/// What a node's log gained since byte `from` (empty when unreadable).
fn log_since(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path)
        && f.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = f.take(64 << 20).read_to_string(&mut text);
    }
    text
}

/// After a reset: did the new holder's storage start clear the stale ext4
/// MMP block the reset node left, or wait it out (agents::storage::mmp)?
pub fn mmp_note(peer_log: &str, target: &str, peer: &str) -> String {
    use mailha::agents::storage::mmp::{LOG_CLEARED, LOG_KERNEL_WAITS};
    if peer_log.contains(LOG_CLEARED) {
        format!("{peer} cleared the MMP block {target} left (the lease proved the reset)")
    } else if peer_log.contains(LOG_KERNEL_WAITS) {
        format!("{peer} waited out the MMP block {target} left")
    } else {
        format!("{peer} found the MMP block clean")
    }
}

/// Polls the load log for up to 20 s until `find` (given the log and the
/// instant the polling began) names an attempt; its seconds since the
/// fault.
fn poll_log(
    read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
    fault_ms: u128,
    find: impl Fn(&[(u128, Attempt)], u128) -> Option<u128>,
) -> Option<f64> {
    let since = load::now_ms();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Some(ms) = find(&read_log(), since) {
            return Some((ms - fault_ms) as f64 / 1000.0);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// After the mail moved (seen at `since`, by a crm_mon poll every 0.5-1 s):
/// the seconds from the fault to the first `good` attempt that ended the
/// outage going on then, i.e. the first good one after the last bad one
/// logged after the fault and before `since`. Unlike `seconds_until`, the
/// drill's own polling latency does not count as downtime; with no bad
/// attempt logged (no outage seen) it is `seconds_until`. None when none
/// comes within 20 s.
pub(super) fn seconds_until_outage_end(
    read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
    fault_ms: u128,
    good: impl Fn(&Attempt) -> bool,
) -> Option<f64> {
    poll_log(read_log, fault_ms, |log, since| {
        outage_end(log, fault_ms, since, &good)
    })
}

/// The pure part of `seconds_until_outage_end`.
pub fn outage_end(
    log: &[(u128, Attempt)],
    fault_ms: u128,
    since: u128,
    good: impl Fn(&Attempt) -> bool,
) -> Option<u128> {
    let last_bad = log
        .iter()
        .filter(|(t, a)| *t >= fault_ms && *t < since && !good(a))
        .map(|(t, _)| *t)
        .max();
    first_after(log, last_bad.unwrap_or(since), good)
}

const RECOVERY_DEADLINE: Duration = Duration::from_secs(180);
/// How long cut-heartbeat watches a cluster without the guard: corosync
/// declares the peer lost after ~2 s (token 1 s), Pacemaker then starts
/// the standby's copy within seconds.
const UNGUARDED_CUT: Duration = Duration::from_secs(20);
/// Notes that make a drill fail whatever its numbers say.
pub const INVARIANT_BROKEN: &str = "INVARIANT BROKEN";
pub const NOT_MET: &str = "EXPECTATION NOT MET";
const HEALTHY_DEADLINE: Duration = Duration::from_secs(120);

impl Lab<'_> {
    pub(crate) fn pid1(&self, node: &str) -> Result<u32, LabError> {
        let st = self
            .store
            .load()?
            .ok_or_else(|| LabError::NotUp(self.store.path()))?;
        st.node(node)
            .map(|h| h.pid)
            .ok_or_else(|| LabError::UnknownNode(node.to_string()))
    }

    pub(super) fn in_node_out(
        &self,
        node: &str,
        argv: &[&str],
    ) -> Result<super::cmd::Output, LabError> {
        let pid = self.pid1(node)?;
        Ok(self
            .runner
            .run(&plan::in_node(pid, argv).deadline(Duration::from_secs(30)))?)
    }

    fn crm_mon(&self, node: &str) -> Result<(Status, String), LabError> {
        let o = self.in_node_out(
            node,
            &["crm_mon", "--one-shot", "--output-as=xml", "--include=all"],
        )?;
        let st = mailha::status::parse(&o.stdout).map_err(|e| LabError::Cluster(e.to_string()))?;
        Ok((st, o.stdout))
    }

    /// Any live node's view of the cluster.
    pub(super) fn any_status(&self) -> Result<(Status, String), LabError> {
        self.crm_mon("node1").or_else(|_| self.crm_mon("node2"))
    }

    pub(crate) fn wait_healthy(&self, deadline: Duration) -> Result<(Status, String), LabError> {
        let t = Instant::now();
        loop {
            let last = match self.any_status() {
                Ok((st, xml)) => {
                    let failed = st.resources.iter().any(|r| r.failed) || !st.failures.is_empty();
                    let all = st.resources.iter().all(|r| r.role == "Started");
                    let online = st.nodes.iter().filter(|n| n.online).count();
                    if online == 2 && all && !failed && st.active_node.is_some() {
                        return Ok((st, xml));
                    }
                    format!("{online} nodes online, all started: {all}, failures: {failed}")
                }
                Err(e) => e.to_string(),
            };
            if t.elapsed() > deadline {
                return Err(LabError::Cluster(format!(
                    "not healthy within {deadline:?}: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub(super) fn oldest_pid(&self, node: &str, process: &str) -> Option<String> {
        let o = self
            .in_node_out(node, &["pgrep", "-x", "-o", process])
            .ok()?;
        o.stdout
            .lines()
            .next()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// The mail load (`<exe> load`) in the client namespace, against the
    /// VIP: SMTP sessions logged into `log`, IMAP logins beside it (with
    /// `imap_ids`, reads of the new mail's ids), until `stop` exists or
    /// `max` (the load's own default when None).
    pub(crate) fn spawn_load(
        &self,
        run_id: &str,
        log: &Path,
        stop: &Path,
        max: Option<Duration>,
        imap_ids: bool,
    ) -> Result<std::process::Child, LabError> {
        let mut c = std::process::Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.topo.netns(super::topology::Aux::Client),
        ])
        .arg(&self.exe)
        .args(["load", "--vip", &self.topo.vip().to_string()])
        .args(["--run-id", run_id, "--log"])
        .arg(log)
        .arg("--stop")
        .arg(stop);
        if let Some(m) = max {
            c.arg("--max")
                .arg(humantime::format_duration(m).to_string());
        }
        if imap_ids {
            c.arg("--imap-ids");
        }
        c.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(LabError::io(Path::new("ip netns exec")))
    }

    /// Flushes `n`'s mail queue (a delivery cut short by a fault is
    /// deferred for minimal_backoff_time, 300 s) until it is empty, for
    /// up to 60 s; what is still queued then (its first lines), or None.
    pub(crate) fn deliver_queued(&self, n: &str) -> Option<String> {
        let _ = self.in_node_out(n, &["postqueue", "-f"]);
        let t = Instant::now();
        let mut flushed = t;
        let mut queue = String::new();
        while t.elapsed() < Duration::from_secs(60) {
            match self.in_node_out(n, &["postqueue", "-p"]) {
                Ok(o) if o.stdout.contains("Mail queue is empty") => return None,
                Ok(o) => queue = o.stdout,
                Err(_) => {}
            }
            if flushed.elapsed() >= Duration::from_secs(10) {
                let _ = self.in_node_out(n, &["postqueue", "-f"]);
                flushed = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        (!queue.is_empty()).then(|| queue.lines().take(12).collect::<Vec<_>>().join(" | "))
    }

    /// Rejects tcp `port` in `node` (fail-daemon's fault): the daemon
    /// runs on but answers nobody. Returns the argv, node first, that
    /// takes it back.
    pub(crate) fn reject_port(&self, node: &str, port: u16) -> Result<Vec<String>, LabError> {
        let p = port.to_string();
        let rule: &[&str] = &[
            "input", "tcp", "dport", &p, "reject", "with", "tcp", "reset",
        ];
        let undo = self.nft_table(node, "mailha_drill", &[("input", "input")], &[rule])?;
        Ok(std::iter::once(node.to_string()).chain(undo).collect())
    }

    /// Runs one drill and returns its report.
    pub fn drill(&self, d: &Drill) -> Result<Report, LabError> {
        // Start from a clean slate: failures left by an earlier drill (or a
        // slow moment of the machine) would make every check ambiguous.
        if let Ok((st, _)) = self.any_status()
            && (!st.failures.is_empty() || st.resources.iter().any(|r| r.fail_count > 0))
        {
            let _ = self.in_node_out(
                st.dc.as_deref().unwrap_or("node1"),
                &["crm_resource", "--cleanup"],
            );
        }
        let (before, before_xml) = self.wait_healthy(HEALTHY_DEADLINE)?;
        let active = before
            .active_node
            .clone()
            .ok_or_else(|| LabError::Cluster("the mail runs nowhere".into()))?;
        let svc = match d {
            Drill::KillDaemon(s) | Drill::FailDaemon(s) => s.clone(),
            Drill::StorageLoss { .. }
            | Drill::CutPing(_)
            | Drill::CutHeartbeat
            | Drill::KillNode(_)
            | Drill::FreezeNode(_)
            | Drill::SimulStart
            | Drill::KillScheduler
            | Drill::Upgrade(_)
            | Drill::Switchover { .. }
            | Drill::Standby
            | Drill::Maintenance
            | Drill::NfsHang { .. } => "postfix".into(),
        };
        let (process, port) = daemon(&svc)
            .ok_or_else(|| LabError::Cluster(format!("the lab has no daemon {svc:?}")))?;
        let mut notes = Vec::new();

        let run_id = format!("{}", load::now_ms());
        let dir = self.base_dir.join("drills").join(&run_id);
        std::fs::create_dir_all(&dir).map_err(LabError::io(&dir))?;
        let (log, stop) = (dir.join("load.log"), dir.join("stop"));

        // The mount sampler: both nodes' mount tables, every 100 ms.
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let doubles = Arc::new(AtomicUsize::new(0));
        let holders: Vec<u32> = ["node1", "node2"]
            .iter()
            .filter_map(|n| self.pid1(n).ok())
            .collect();
        let sampler = {
            let (stop_sampler, doubles) = (stop_sampler.clone(), doubles.clone());
            let proc_root = self.proc_root.clone();
            let store = self.store.clone();
            std::thread::spawn(move || {
                while !stop_sampler.load(Ordering::Relaxed) {
                    // A node booted again during the drill has a new
                    // holder: follow the state file.
                    let holders: Vec<u32> = store
                        .load()
                        .ok()
                        .flatten()
                        .map(|st| st.nodes.iter().map(|h| h.pid).collect())
                        .unwrap_or_else(|| holders.clone());
                    let mounted = holders
                        .iter()
                        .filter(|pid| data_mounted(&proc_root, **pid))
                        .count();
                    if mounted >= 2 {
                        doubles.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };

        // The mail load, from the client namespace.
        let mut loader = self.spawn_load(&run_id, &log, &stop, None, false)?;
        let read_log = || -> Vec<(u128, Attempt)> {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter_map(load::parse_line)
                .collect()
        };
        let warm = Instant::now();
        while accepted_ids(&read_log()).len() < 3 && warm.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }

        // The fault.
        let fault_ms = load::now_ms();
        let fault_at = Instant::now();
        let mut undo: Vec<Vec<String>> = Vec::new();
        let mut nfs_report = None;
        // Each drill: its fault and the wait for recovery; then the one
        // common end (more load, the verdict, the cleanup).
        let (recovered, early_stops) = match d {
            Drill::NfsHang { node, mode } => {
                let node = if node == "active" { &active } else { node };
                nfs_report = Some(self.nfs_hang(node, *mode, &mut notes)?);
                // The mail never depended on the export: it flowed on. The
                // first mail accepted after the fault, counted from it.
                let accepted = |a: &Attempt| matches!(a, Attempt::Accepted(_));
                let recovered = first_after(&read_log(), fault_ms, accepted)
                    .map(|ms| (ms - fault_ms) as f64 / 1000.0);
                (recovered, vec![])
            }
            Drill::StorageLoss { node, mode } => {
                let node = if node == "active" { &active } else { node };
                let before = self.node_rec(node)?;
                self.break_disk_path(node, *mode)?;
                notes.push(format!("{node}: disk path {}", mode.name()));
                let recovered = if *node == active {
                    self.wait_moved(&active, fault_at, fault_ms, &read_log, &mut notes)
                } else {
                    // The passive node's path: nothing may move; the
                    // mail keeps flowing.
                    std::thread::sleep(Duration::from_secs(30));
                    seconds_until(&read_log, fault_ms, |a| matches!(a, Attempt::Accepted(_)))
                };
                // The stops as Pacemaker ran them, before any cleanup
                // wipes a failed one from the history.
                let early = self
                    .any_status()
                    .map(|(_, x)| storage::ops(&x, &self.cib_resources(), node, "stop"))
                    .unwrap_or_default();
                // Give the path back before the cleanup: EIO first, so
                // the stuck processes die; a blocked stop keeps the mount
                // until a cleanup lets Pacemaker stop it (the start on the
                // broken node then fails, the mail goes to the peer).
                if !self.restore_disk_path(node, &mut notes) {
                    let _ = self.in_node_out(
                        if node == "node1" { "node2" } else { "node1" },
                        &["crm_resource", "--cleanup"],
                    );
                    self.restore_disk_path_within(node, Duration::from_secs(120), &mut notes);
                }
                // With lease fencing the broken node fences itself and its
                // watchdog resets it; it then boots again by itself.
                if !super::proc::is_alive(&self.proc_root, before.pid, before.start_time) {
                    notes.push(format!("{node} was fenced (reset)"));
                    match self.await_reboot(node, &before) {
                        Ok(()) => notes.push(format!("{node} booted again by itself")),
                        Err(e) => notes.push(format!("{node} did not boot again: {e}")),
                    }
                }
                (recovered, early)
            }
            Drill::CutPing(node) => {
                let node = if node == "active" { &active } else { node };
                let u = self.cut_ping(node)?;
                undo.push(std::iter::once(node.clone()).chain(u).collect());
                notes.push(format!("{node}: the ping target is unreachable"));
                let recovered = if *node == active {
                    self.wait_moved(&active, fault_at, fault_ms, &read_log, &mut notes)
                } else {
                    std::thread::sleep(Duration::from_secs(15));
                    seconds_until(&read_log, fault_ms, |a| matches!(a, Attempt::Accepted(_)))
                };
                (recovered, vec![])
            }
            Drill::KillDaemon(_) => {
                let pid = self.oldest_pid(&active, process).ok_or_else(|| {
                    LabError::Cluster(format!("{process} is not running on {active}"))
                })?;
                self.in_node_out(&active, &["kill", "-9", &pid])?;
                notes.push(format!("killed {process} (pid {pid} in {active})"));
                // Recovered: a new main process, and the VIP answers after
                // it: the end of the client's outage going on when this
                // loop saw the new process (its own polling, 0.2 s and a
                // crm_mon, is no downtime: once the daemon's death reached
                // Pacemaker at once, it was most of the number).
                let mut recovered = None;
                while fault_at.elapsed() < RECOVERY_DEADLINE {
                    let node = self
                        .any_status()
                        .ok()
                        .and_then(|(s, _)| s.active_node)
                        .unwrap_or(active.clone());
                    if let Some(new) = self.oldest_pid(&node, process)
                        && (new != pid || node != active)
                    {
                        recovered =
                            seconds_until_outage_end(&read_log, fault_ms, |a| *a != Attempt::Down);
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                (recovered, vec![])
            }
            Drill::KillNode(target) | Drill::FreezeNode(target) => {
                // "active": whichever node runs the mail (benches repeat it).
                let target = if target == "active" { &active } else { target };
                let peer = if target == "node1" { "node2" } else { "node1" };
                let mut frozen = false;
                let mut mmp_log = None;
                // Whether the node runs the split-brain guard (the stock
                // profile has no keeper): then its watchdog resets it.
                let guarded = self.keeper_status(target).is_ok();
                // This boot of the node: a reset ends it, and the boot its
                // watchdog starts then is another.
                let before = self.node_rec(target)?;
                let up = |r: &super::state::NodeRec| {
                    super::proc::is_alive(&self.proc_root, r.pid, r.start_time)
                };
                if let Drill::KillNode(_) = d {
                    let pid = self.kill_node(target)?;
                    notes.push(format!(
                        "killed every process of {target} (SIGKILL to its PID 1, {pid})"
                    ));
                } else {
                    let peer_log = super::plan::node_root(&self.base_dir, peer)
                        .join("var/log/pacemaker/pacemaker.log");
                    let log_from = std::fs::metadata(&peer_log).map_or(0, |m| m.len());
                    mmp_log = Some((peer_log, log_from));
                    self.freeze_node(target)?;
                    frozen = true;
                    notes.push(format!("froze {target}"));
                    // The invariant, seen from outside: the frozen node is
                    // reset by its watchdog before the peer holds the lease.
                    let (mut reset_at, mut taken_at) = (None, None);
                    let t = Instant::now();
                    while guarded
                        && t.elapsed() < Duration::from_secs(60)
                        && (reset_at.is_none() || taken_at.is_none())
                    {
                        if reset_at.is_none() && !up(&before) {
                            reset_at = Some(t.elapsed().as_secs_f64());
                        }
                        if taken_at.is_none() && self.keeper_status(peer).is_ok_and(|s| s.holds) {
                            taken_at = Some(t.elapsed().as_secs_f64());
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let secs =
                        |x: Option<f64>| x.map_or("never".to_string(), |x| format!("{x:.2} s"));
                    if guarded {
                        notes.push(format!(
                            "{target} reset by its watchdog at {}, {peer} held the lease at {} (after the freeze)",
                            secs(reset_at),
                            secs(taken_at)
                        ));
                    } else {
                        notes.push(format!(
                            "{target} has no split-brain guard: no watchdog resets it"
                        ));
                    }
                    match (reset_at, taken_at) {
                        (Some(r), Some(h)) if h < r => notes.push(format!(
                            "{INVARIANT_BROKEN}: {peer} held the lease while {target} was frozen"
                        )),
                        (None, Some(_)) => notes.push(format!(
                            "{INVARIANT_BROKEN}: {peer} held the lease and {target} was never reset"
                        )),
                        _ => {}
                    }
                }
                let recovered =
                    self.wait_mail_moved(target, &read_log, fault_ms, RECOVERY_DEADLINE);
                if let (true, Some((path, from))) = (guarded, &mmp_log) {
                    notes.push(mmp_note(&log_since(path, *from), target, peer));
                }
                let t = Instant::now();
                while guarded && up(&before) && t.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let mut reset = guarded && frozen && !up(&before);
                if up(&before) {
                    // No watchdog reset it (the stock profile has none):
                    // the drill does, as an operator would.
                    let _ = self.kill_node(target);
                    notes.push(format!("{target} was never reset: killed by the drill"));
                    reset = false;
                    let t = Instant::now();
                    while up(&before) && t.elapsed() < Duration::from_secs(30) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                if frozen && !reset {
                    let _ = self.freeze(target, false);
                }
                // A node its watchdog reset boots again by itself (as a
                // machine does); one the drill killed is booted by it.
                let booted = if reset {
                    self.await_reboot(target, &before)
                        .map(|()| "booted again by itself")
                } else {
                    self.restart_node(target).map(|()| "booted again")
                };
                match booted {
                    Ok(how) => notes.push(format!("{target} {how}")),
                    Err(e) => notes.push(format!("booting {target} again failed: {e}")),
                }
                (recovered, Vec::new())
            }
            Drill::SimulStart => {
                let nodes = ["node1", "node2"];
                for n in nodes {
                    self.kill_node(n)?;
                }
                let t = Instant::now();
                while nodes.iter().any(|n| self.node_alive(n))
                    && t.elapsed() < Duration::from_secs(30)
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                // A mail accepted before the kill landed is no recovery.
                let down_ms = load::now_ms();
                notes.push("both nodes killed; both booted with the heartbeat cut".into());
                // Each boots to basic.target (nothing of the cluster yet),
                // gets the cut, then the rest of its boot.
                for n in nodes {
                    self.boot_node(n, super::node::BootTarget::Basic)?;
                }
                for n in nodes {
                    self.cut_heartbeat(n)?;
                }
                for n in nodes {
                    match self.in_node_out(n, &["systemctl", "start", "multi-user.target"]) {
                        Ok(o) if o.success() => {}
                        Ok(o) => notes.push(format!(
                            "starting {n}'s multi-user.target: {}",
                            o.stderr.trim()
                        )),
                        Err(e) => notes.push(format!("starting {n}'s multi-user.target: {e}")),
                    }
                }
                let (ever, most) = self.watch_mounts(Duration::from_secs(30));
                notes.push(format!(
                    "30 s cut off from each other: nodes that mounted the data {ever:?}, at most {most} at once"
                ));
                let holders: Vec<&str> = nodes
                    .iter()
                    .copied()
                    .filter(|n| self.keeper_status(n).is_ok_and(|s| s.holds))
                    .collect();
                notes.push(format!("lease holders at the end of the cut: {holders:?}"));
                if most > 1 {
                    notes.push(format!("{INVARIANT_BROKEN}: both nodes mounted the data"));
                } else if ever.len() != 1 {
                    notes.push(format!(
                        "{NOT_MET}: exactly one node mounts while they are cut off from each other"
                    ));
                }
                // Mail that came back while they were cut off counts from
                // the kill; else from when the cut was lifted.
                let during_cut =
                    first_after(&read_log(), down_ms, |a| matches!(a, Attempt::Accepted(_)))
                        .map(|ms| (ms - fault_ms) as f64 / 1000.0);
                for n in nodes {
                    let _ =
                        self.in_node_out(n, &["nft", "delete", "table", "inet", lease::CUT_TABLE]);
                }
                notes.push("cut lifted".into());
                let after_cut = self.wait_mail_moved("", &read_log, fault_ms, RECOVERY_DEADLINE);
                (during_cut.or(after_cut), Vec::new())
            }
            Drill::KillScheduler => {
                let standby = if active == "node1" { "node2" } else { "node1" };
                let killed_ms = self.kill_scheduler(&active, standby, &mut notes)?;
                // From the kill (a restart of the standby's Pacemaker
                // before it is no fault). A fenced node's mail moves: an
                // outage, measured like a dead node's.
                let log = read_log();
                let recovered = if notes.iter().any(|n| n.starts_with(PACEMAKER_FENCED)) {
                    outage_end_after(&log, killed_ms).map(|ms| (ms - killed_ms) as f64 / 1000.0)
                } else {
                    unharmed_since(&log, killed_ms, "the kill", &mut notes)
                };
                (recovered, Vec::new())
            }
            Drill::Upgrade(n) => {
                let node = if n == "active" { active.as_str() } else { n };
                let at = self.upgrade(node, &mut notes)?;
                (
                    unharmed_since(&read_log(), at, "the upgrade began", &mut notes),
                    Vec::new(),
                )
            }
            Drill::Standby => {
                let recovered = self.standby(&active, fault_ms, &read_log, &mut notes)?;
                (recovered, Vec::new())
            }
            Drill::Maintenance => {
                let recovered = self.maintenance(&active, process, &read_log, &mut notes)?;
                (recovered, Vec::new())
            }
            Drill::Switchover { stock } => {
                let recovered =
                    self.switchover(&active, *stock, fault_ms, &read_log, &mut notes)?;
                (recovered, Vec::new())
            }
            Drill::CutHeartbeat => {
                let standby = if active == "node1" { "node2" } else { "node1" };
                // Without the guard (no keeper) nothing will fence the
                // standby: watch what the cut does for a while instead.
                let guarded = self.keeper_status(standby).is_ok();
                let before = self.node_rec(standby)?;
                undo.extend(self.cut_heartbeat(standby)?);
                notes.push(format!("{standby}: corosync UDP dropped both ways"));
                let mut recovered = None;
                let first_mail = || {
                    // Mail kept flowing: the first accepted mail after the
                    // standby was fenced, counted from the cut.
                    seconds_until(&read_log, fault_ms, |a| matches!(a, Attempt::Accepted(_)))
                };
                if !guarded {
                    std::thread::sleep(UNGUARDED_CUT);
                    notes.push(format!(
                        "no split-brain guard: {standby} cut off for {} s, nothing fences it",
                        UNGUARDED_CUT.as_secs()
                    ));
                } else {
                    match self.wait_fenced_or_reset(standby, &before, Duration::from_secs(60)) {
                        Some(lease::FenceSeen::Reset) => {
                            notes.push(format!(
                                "{standby} fenced itself and was reset (its keeper reboots it after the ack)"
                            ));
                            recovered = first_mail();
                            // The cut was in the old boot's network
                            // namespace: it went with it.
                            undo.retain(|c| c.first().map(String::as_str) != Some(standby));
                            match self.await_reboot(standby, &before) {
                                Ok(()) => notes.push(format!("{standby} booted again by itself")),
                                Err(e) => notes.push(format!("{NOT_MET}: {e}")),
                            }
                        }
                        Some(lease::FenceSeen::StayedUp(st)) => {
                            // Only a keeper told not to reset may leave
                            // its node up: a fence means off or reset.
                            let not_met = if st.reset == "none" {
                                String::new()
                            } else {
                                format!("{NOT_MET}: ")
                            };
                            notes.push(format!(
                                "{not_met}{standby} fenced itself: {}, but stayed up (reset = {:?})",
                                st.self_fenced.as_deref().unwrap_or("?"),
                                st.reset
                            ));
                            recovered = first_mail();
                            undo.extend(lease::restart_commands().into_iter().map(|mut c| {
                                c.insert(0, standby.to_string());
                                c
                            }));
                        }
                        None => notes.push(format!("{standby} was not fenced within 60 s")),
                    }
                }
                (recovered, Vec::new())
            }
            Drill::FailDaemon(_) => {
                // Reject the daemon's port in the active node only: it keeps
                // running but answers nobody, so every probe fails.
                undo.push(self.reject_port(&active, port)?);
                notes.push(format!("{active}: tcp port {port} rejected"));
                let mut recovered = None;
                while fault_at.elapsed() < RECOVERY_DEADLINE {
                    if let Ok((s, _)) = self.any_status()
                        && let Some(now) = s.active_node.clone()
                        && now != active
                        && s.resources.iter().any(|r| {
                            r.id == format!("svc-{svc}")
                                && r.role == "Started"
                                && r.nodes.contains(&now)
                        })
                    {
                        recovered = seconds_until(&read_log, fault_ms, |a| {
                            matches!(a, Attempt::Accepted(_))
                        });
                        break;
                    }
                    // crm_mon costs CPU: on two cores, asking often slows
                    // the very recovery being measured.
                    std::thread::sleep(Duration::from_secs(1));
                }
                (recovered, vec![])
            }
        };
        let mut rep = self.finish(
            d,
            before_xml,
            active,
            recovered,
            undo,
            notes,
            &read_log,
            &stop,
            &mut loader,
            sampler,
            stop_sampler,
            doubles,
            early_stops,
        )?;
        rep.phases = self.timeline(fault_ms, &read_log(), &log);
        if let Some(n) = nfs_report {
            rep.ok &= n.ok();
            rep.nfs = Some(n);
        }
        Ok(rep)
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        d: &Drill,
        before_xml: String,
        active: String,
        recovered: Option<f64>,
        undo: Vec<Vec<String>>,
        mut notes: Vec<String>,
        read_log: &dyn Fn() -> Vec<(u128, Attempt)>,
        stop: &Path,
        loader: &mut std::process::Child,
        sampler: std::thread::JoinHandle<()>,
        stop_sampler: Arc<AtomicBool>,
        doubles: Arc<AtomicUsize>,
        early_stops: Vec<storage::OpRun>,
    ) -> Result<Report, LabError> {
        // A little more load after the recovery, then stop it.
        std::thread::sleep(Duration::from_secs(2));
        stop_load(loader, stop);
        for u in &undo {
            let argv: Vec<&str> = u[1..].iter().map(|s| s.as_str()).collect();
            if let Err(e) = self.in_node_out(&u[0], &argv) {
                notes.push(format!("undo on {}: {e}", u[0]));
            }
        }
        // The operation history as the recovery left it (a cleanup below
        // wipes it).
        let recovery_xml = self.any_status().map(|(_, x)| x).unwrap_or_default();
        let mut stops = early_stops;
        if let Drill::StorageLoss { .. } | Drill::CutPing(_) = d {
            for s in storage::ops(&recovery_xml, &self.cib_resources(), &active, "stop") {
                if !stops.contains(&s) {
                    stops.push(s);
                }
            }
        }
        // Healthy again: fail counts cleared, everything started.
        let node_for_cleanup = self
            .any_status()
            .ok()
            .and_then(|(s, _)| s.active_node)
            .unwrap_or(active.clone());
        let _ = self.in_node_out(&node_for_cleanup, &["crm_resource", "--cleanup"]);
        let after = self.wait_healthy(HEALTHY_DEADLINE);
        let (after_status, _) = self
            .any_status()
            .unwrap_or((Status::default(), String::new()));
        let node_after = after_status.active_node.clone();

        // lost: wait for the queue to drain on the active node, then look
        // for every accepted Message-ID in the mailbox.
        let log = read_log();
        let accepted = accepted_ids(&log);
        let mut lost = accepted.len();
        if let Some(n) = &node_after {
            // A delivery cut short by the fault is deferred, and Postfix
            // would retry it only after minimal_backoff_time (300 s): a
            // flush asks for the retry now, as an operator would after a
            // failover. Deferred is not lost, but the drill counts what
            // reached the mailbox, so it must be delivered in time.
            if let Some(queue) = self.deliver_queued(n) {
                notes.push(format!("mail queue on {n} not empty after 60 s: {queue}"));
            }
            if let Ok(pid) = self.pid1(n) {
                let found = maildir_ids(&load_maildir(pid));
                lost = accepted.difference(&found).count();
            }
        }
        stop_sampler.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let double_mounts = doubles.load(Ordering::Relaxed);

        let restarted: Vec<String> = match (d, &node_after) {
            (Drill::KillDaemon(_), Some(n)) => {
                let before_calls: BTreeSet<(String, u64)> =
                    starts(&before_xml, n).into_iter().collect();
                starts(&recovery_xml, n)
                    .into_iter()
                    .filter(|s| !before_calls.contains(s))
                    .map(|(r, _)| r)
                    .collect()
            }
            _ => vec![],
        };
        let switched = node_after.as_deref() != Some(active.as_str());
        // None: either node may end up with the mail.
        let expect_switch = match d {
            Drill::FailDaemon(_) | Drill::Switchover { .. } | Drill::Standby => Some(true),
            Drill::StorageLoss { node, .. } | Drill::CutPing(node) => {
                Some(*node == active || node == "active")
            }
            Drill::KillNode(n) | Drill::FreezeNode(n) => Some(*n == active || n == "active"),
            Drill::SimulStart => None,
            // Pacemaker may fence the node whose controller it lost (see
            // `kill_scheduler`): then the mail must have moved.
            Drill::KillScheduler if notes.iter().any(|n| n.starts_with(PACEMAKER_FENCED)) => {
                Some(true)
            }
            Drill::KillDaemon(_)
            | Drill::Maintenance
            | Drill::CutHeartbeat
            | Drill::KillScheduler
            | Drill::Upgrade(_)
            | Drill::NfsHang { .. } => Some(false),
        };
        for s in stops.iter().filter(|s| !s.in_time()) {
            notes.push(format!(
                "stop of {} on {} returned {} after {} ms (timeout {:?} ms)",
                s.resource, s.node, s.rc, s.exec_ms, s.timeout_ms
            ));
        }
        if let Err(e) = &after {
            notes.push(format!("not healthy afterwards: {e}"));
        }
        let ok = recovered.is_some()
            && lost == 0
            && double_mounts == 0
            && expect_switch.is_none_or(|e| switched == e)
            && stops.iter().all(|s| s.in_time())
            && after.is_ok()
            && !notes
                .iter()
                .any(|n| n.starts_with(INVARIANT_BROKEN) || n.starts_with(NOT_MET));
        Ok(Report {
            drill: d.name(),
            backend: BACKEND,
            recovered_s: recovered,
            switched,
            accepted: accepted.len(),
            lost,
            double_mounts,
            ok,
            node_before: Some(active),
            node_after,
            restarted,
            stops,
            nfs: None,
            notes,
            // filled by `drill` (it knows the fault's moment and the logs)
            phases: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drills_parse_with_their_service() {
        assert_eq!(
            Drill::parse("kill-daemon", Some("postfix"), None),
            Ok(Drill::KillDaemon("postfix".into()))
        );
        assert!(Drill::parse("kill-daemon", None, None).is_err());
        assert!(Drill::parse("nuke", Some("x"), None).is_err());
        assert_eq!(
            Drill::parse("storage-loss", Some("node1"), Some("hang")),
            Ok(Drill::StorageLoss {
                node: "node1".into(),
                mode: Mode::Hang
            })
        );
        assert!(Drill::parse("storage-loss", Some("node1"), None).is_err());
        assert!(Drill::parse("storage-loss", Some("node1"), Some("ok")).is_err());
        assert!(Drill::parse("storage-loss", Some("client"), Some("eio")).is_err());
        assert_eq!(
            Drill::parse("cut-ping", Some("node2"), None),
            Ok(Drill::CutPing("node2".into()))
        );
        assert_eq!(Drill::parse("standby", None, None), Ok(Drill::Standby));
        assert_eq!(
            Drill::parse("maintenance", None, None),
            Ok(Drill::Maintenance)
        );
        assert_eq!(Drill::Standby.name(), "standby");
        assert_eq!(
            Drill::parse("switchover", None, Some("stock")),
            Ok(Drill::Switchover { stock: true })
        );
    }

    #[test]
    fn an_outage_ends_with_the_first_accepted_mail_after_the_first_failure() {
        use Attempt::*;
        let log = vec![
            (10, Accepted("a".into())),
            (20, Down),
            (30, Greeted),
            (40, Accepted("b".into())),
            (50, Down),
            (60, Accepted("c".into())),
        ];
        assert_eq!(outage_end_after(&log, 15), Some(40));
        assert_eq!(outage_end_after(&log, 5), Some(40));
        // no failure after the moment: its first accepted mail
        let calm = vec![(10, Accepted("a".into())), (20, Accepted("b".into()))];
        assert_eq!(outage_end_after(&calm, 15), Some(20));
        assert_eq!(outage_end_after(&[(10, Down)], 5), None);
    }

    #[test]
    fn recovery_is_the_first_answer_after_the_moment() {
        let log = vec![
            (10, Attempt::Greeted),
            (20, Attempt::Down),
            (30, Attempt::Down),
            (40, Attempt::Accepted("<a>".into())),
        ];
        let answered = |a: &Attempt| *a != Attempt::Down;
        assert_eq!(first_after(&log, 15, answered), Some(40));
        assert_eq!(first_after(&log, 41, answered), None);
        assert_eq!(first_after(&log, 0, answered), Some(10));
        assert_eq!(accepted_ids(&log).len(), 1);
    }

    #[test]
    fn the_freeze_note_says_what_the_new_holders_storage_start_did_with_mmp() {
        use mailha::agents::storage::mmp::{LOG_CLEARED, LOG_KERNEL_WAITS};
        let note = |log: &str| mmp_note(log, "node1", "node2");
        assert!(
            note(&format!(
                "fs-data_start_0 [ storage: /dev/lab/data: {LOG_CLEARED} ]"
            ))
            .contains("cleared")
        );
        assert!(note(&format!("... so {LOG_KERNEL_WAITS} (~42 s) decides")).contains("waited out"));
        assert!(note("").contains("found the MMP block clean"));
    }

    #[test]
    fn the_outage_ends_at_the_first_mail_after_the_last_failure_not_when_the_drill_looked() {
        let acc = |id: &str| Attempt::Accepted(id.into());
        let accepted = |a: &Attempt| matches!(a, Attempt::Accepted(_));
        // Fault at 100; the old node still accepts at 150, is down from
        // 200 to 400, the new one accepts from 500; the drill's status
        // poll saw the move at 800.
        let log = vec![
            (50, acc("<a>")),
            (150, acc("<b>")),
            (200, Attempt::Down),
            (400, Attempt::Greeted),
            (500, acc("<c>")),
            (900, acc("<d>")),
        ];
        assert_eq!(outage_end(&log, 100, 800, accepted), Some(500));
        // Seen while still down: the first mail after that.
        assert_eq!(outage_end(&log, 100, 300, accepted), Some(500));
        // No failure logged after the fault: the first mail from `since`.
        assert_eq!(outage_end(&log, 450, 800, accepted), Some(900));
        assert_eq!(outage_end(&log, 100, 950, accepted), Some(500));
    }

    #[test]
    fn message_ids_are_read_from_maildir_headers_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("new")).unwrap();
        std::fs::create_dir_all(d.path().join("cur")).unwrap();
        std::fs::write(
            d.path().join("new/1"),
            "Subject: x\nMessage-ID: <a@b>\n\nMessage-ID: <not@header>\n",
        )
        .unwrap();
        std::fs::write(d.path().join("cur/2"), "Message-Id: <c@d>\n\n").unwrap();
        let ids = maildir_ids(d.path());
        assert_eq!(
            ids.into_iter().collect::<Vec<_>>(),
            vec!["<a@b>".to_string(), "<c@d>".to_string()]
        );
    }

    #[test]
    fn starts_come_from_the_operation_history_in_call_order() {
        let xml = r#"<pacemaker-result><node_history><node name="node1">
<resource_history id="svc-postfix"><operation_history call="9" task="start"/><operation_history call="10" task="monitor"/></resource_history>
<resource_history id="svc-mysql"><operation_history call="7" task="start"/></resource_history>
</node></node_history></pacemaker-result>"#;
        assert_eq!(
            starts(xml, "node1"),
            vec![("svc-mysql".to_string(), 7), ("svc-postfix".to_string(), 9)]
        );
    }
}
