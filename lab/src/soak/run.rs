//! `mailha-lab soak run`: the schedule's faults thrown at a running lab
//! under the drills' mail load, the history recorded as it happens, then
//! the checker's verdict, all in one folder a failed soak is replayed
//! from (`schedule.json`, `history.jsonl`, the client's logs, both nodes'
//! Pacemaker logs, `verdict.json`, `report.html`).
//!
//! Nothing resets the lab between faults: a fault is healed as the
//! schedule says (a cut lifted, a disk path given back, a dead node booted
//! again) and the cluster must recover by itself. The steps run one after
//! the other on this thread, at their scheduled times; a heal that waits
//! (a node booting) delays what follows, and the history records when
//! each step really began and ended, which is what the checker reads.
//!
//! Every kind is wired but nfs-hang: the lab's mail cannot live on NFS
//! (these hosts' kernels have no NFS client; the nfs-hang drill checks
//! the agents on stand-in mounts instead), so a soak has no NFS store to
//! hang. It is refused by name.
//!
//! The nodes' watchdogs boot a reset node again from the lab binary's copy
//! `up` made (`Lab::helper_exe`): rebuild the lab during a soak and the
//! nodes still come back.

use super::checker::{self, Bound, Bounds, CheckOptions, Verdict};
use super::history::{Event, HistoryWriter, ImapOutcome, Phase, Record, SmtpOutcome};
use super::schedule::{Fault, FaultKind, Schedule, StorageMode};
use crate::drill;
use crate::fusedisk::Mode;
use crate::load::{self, Attempt};
use crate::state::NodeRec;
use crate::topology::Aux;
use crate::{Lab, LabError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The kinds the runner can inject and heal.
pub const WIRED: [FaultKind; 9] = [
    FaultKind::KillDaemon,
    FaultKind::FailDaemon,
    FaultKind::StorageLoss,
    FaultKind::CutPing,
    FaultKind::CutHeartbeat,
    FaultKind::KillNode,
    FaultKind::FreezeNode,
    FaultKind::Switchover,
    FaultKind::Apply,
];

/// The longest client outage each kind may cause in a soak: the drills'
/// worst on the systemd nodes (README, "Recovery"), doubled, since in a
/// soak a fault may meet another and the 2-core host runs both nodes and
/// the load. kill-daemon's covers MariaDB's restart with its dependants.
/// An apply and a cut heartbeat move nothing, but a killed daemon may
/// overlap them and its outage counts in their windows too.
pub fn bounds() -> Bounds {
    let b = |s: u64| Bound {
        smtp_ms: s * 1000,
        imap_ms: s * 1000,
    };
    [
        (FaultKind::KillDaemon, b(10)),
        (FaultKind::FailDaemon, b(20)),
        (FaultKind::StorageLoss, b(20)),
        (FaultKind::CutHeartbeat, b(10)),
        (FaultKind::Apply, b(10)),
        (FaultKind::CutPing, b(20)),
        (FaultKind::KillNode, b(20)),
        (FaultKind::FreezeNode, b(20)),
        (FaultKind::Switchover, b(10)),
    ]
    .into_iter()
    .collect()
}

/// Kinds in `schedule` the runner cannot inject yet, by name.
pub fn unwired(schedule: &Schedule) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = schedule
        .options
        .faults
        .iter()
        .filter(|k| !WIRED.contains(k))
        .map(|k| k.name())
        .collect();
    v.dedup();
    v
}

/// How a step's fault is taken back.
enum Heal {
    Nothing,
    /// An argv to run in a node (cut-ping's undo).
    Undo(String, Vec<String>),
    Disk(String, NodeRec),
    /// A node killed or frozen: booted again.
    Boot {
        node: String,
        before: NodeRec,
        frozen: bool,
    },
    /// A daemon's port given back, then its failures cleaned up as an
    /// operator does once the cause is fixed (docs/operations.md): the
    /// failed start bans it from that node until `failure_timeout`
    /// (10 min by default), and the cluster would stay one node short.
    Port {
        undo: Vec<String>,
        service: String,
    },
    /// The heartbeat given back to a node the guard fenced (reset: it
    /// boots by itself, the cut went with its old network namespace) or
    /// did not (the cut lifted).
    Heartbeat {
        node: String,
        before: NodeRec,
        undo: Vec<Vec<String>>,
    },
    /// The canary service the apply added, removed by another apply.
    Apply,
}

/// The service an `apply` step adds to the running config and takes away
/// at its end: a live change of the CIB that must not touch the mail.
/// Each add is tagged (a comment line), so it is a file no generation had
/// before: the same bytes again would be an older generation's very file,
/// which `mailha apply` rightly refuses as a stale copy (a 1 h soak's
/// second add was refused so).
const CANARY_MARK: &str = "\n# mailha-lab soak canary ";
const CANARY_BODY: &str = "\n[services.soakcanary]\nagent = \"ocf:pacemaker:Dummy\"\n";

/// `text` with one canary, tagged `tag`, at its end (any earlier one
/// taken out first: a node the last removal did not reach still has it).
fn with_canary(text: &str, tag: &str) -> String {
    let base = without_canary(text).unwrap_or_else(|| text.to_string());
    format!("{base}{CANARY_MARK}{tag}{CANARY_BODY}")
}

/// `text` without its canary; None when it has none.
fn without_canary(text: &str) -> Option<String> {
    let start = text.find(CANARY_MARK)?;
    let body = start + text[start..].find(CANARY_BODY)?;
    Some(format!(
        "{}{}",
        &text[..start],
        &text[body + CANARY_BODY.len()..]
    ))
}

/// Runs `argv` (node first) in that node.
fn node_argv(argv: &[String]) -> Option<(&str, Vec<&str>)> {
    let (node, rest) = argv.split_first()?;
    Some((node.as_str(), rest.iter().map(String::as_str).collect()))
}

/// The other node.
fn peer(node: &str) -> &'static str {
    if node == "node1" { "node2" } else { "node1" }
}

/// The history file, shared by the sampler thread and the steps.
type Writer = Arc<Mutex<HistoryWriter<std::fs::File>>>;

/// What runs while a soak's history is recorded.
struct Recording {
    w: Writer,
    /// The history's zero (unix ms).
    t0: u64,
    /// Set: the recorders stop.
    stop: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<()>,
    holders: std::thread::JoinHandle<()>,
    loader: std::process::Child,
    log: PathBuf,
    /// Created: the load stops.
    stop_file: PathBuf,
    run_id: String,
}

fn record(w: &Writer, t0: u64, event: Event) {
    let t_ms = (load::now_ms() as u64).saturating_sub(t0);
    if let Ok(mut w) = w.lock() {
        // A write that fails loses one sample, never the soak; the
        // reader tolerates a torn last line.
        let _ = w.append(&Record { t_ms, event });
    }
}

/// The nodes as the lab's state records them now (a reset node's new
/// PID 1 once its boot is recorded); none while the state cannot be read.
fn recorded_nodes(store: &crate::state::StateStore) -> Vec<NodeRec> {
    store
        .load()
        .ok()
        .flatten()
        .map(|st| st.nodes)
        .unwrap_or_default()
}

impl Lab<'_> {
    /// Runs `schedule` against the lab, writing everything into `out`;
    /// the checker's verdict (also in `out/verdict.json`).
    pub fn soak_run(&self, schedule: &Schedule, out: &Path) -> Result<Verdict, LabError> {
        let missing = unwired(schedule);
        if !missing.is_empty() {
            return Err(LabError::Cluster(format!(
                "the soak runner cannot inject {} yet (use --faults with {})",
                missing.join(", "),
                WIRED.map(FaultKind::name).join(",")
            )));
        }
        std::fs::create_dir_all(out).map_err(LabError::io(out))?;
        let put = |name: &str, text: &str| {
            let p = out.join(name);
            std::fs::write(&p, text).map_err(LabError::io(&p))
        };
        put("schedule.json", &schedule.to_json())?;
        let max = Duration::from_millis(schedule.options.duration_ms) + Duration::from_secs(900);
        let rec = self.soak_record(out, &format!("soak-{}", schedule.options.seed), max)?;
        let mut notes = Vec::new();
        self.soak_steps(schedule, &rec.w, rec.t0, &mut notes);
        let h = self.soak_finish(rec, out, &mut notes)?;
        let verdict = checker::check(&h, schedule, &check_options())
            .map_err(|e| LabError::Cluster(e.to_string()))?;
        put(
            "verdict.json",
            &serde_json::to_string_pretty(&verdict).unwrap_or_default(),
        )?;
        // The page is for people: a soak whose page failed is still judged.
        if let Err(e) = super::report::write(out, schedule, &h.records, &verdict, &notes) {
            notes.push(format!("report.html not written: {e}"));
        }
        put("notes.txt", &(notes.join("\n") + "\n"))?;
        Ok(verdict)
    }

    /// No faults of its own: the mail load, the mounts, the fences and
    /// the lease holder recorded while something else (Pacemaker's CTS,
    /// `bench/cts.sh`) works the cluster, until `until` says so or `max`
    /// has passed. Then the cluster is cleaned up and healed, and the
    /// final read done, as after a soak. `out` gets the history, the
    /// client's logs, both nodes' logs and `observed.json` (the history's
    /// zero as unix ms, what `mailha-lab cts judge` aligns CTS's log by).
    pub fn soak_observe(
        &self,
        out: &Path,
        until: &dyn Fn() -> bool,
        max: Duration,
    ) -> Result<PathBuf, LabError> {
        std::fs::create_dir_all(out).map_err(LabError::io(out))?;
        let rec = self.soak_record(
            out,
            &format!("observe-{}", load::now_ms()),
            max + Duration::from_secs(900),
        )?;
        let t0 = rec.t0;
        let stacks = self.soak_stacks(rec.w.clone(), t0, rec.stop.clone());
        let observed = out.join("observed.json");
        std::fs::write(
            &observed,
            serde_json::json!({ "t0_unix_ms": t0, "run_id": rec.run_id }).to_string(),
        )
        .map_err(LabError::io(&observed))?;
        let began = Instant::now();
        while !until() && began.elapsed() < max {
            std::thread::sleep(Duration::from_millis(500));
        }
        let mut notes = Vec::new();
        self.soak_finish(rec, out, &mut notes)?;
        let _ = stacks.join();
        let p = out.join("notes.txt");
        std::fs::write(&p, notes.join("\n") + "\n").map_err(LabError::io(&p))?;
        Ok(out.join("history.jsonl"))
    }

    /// Waits for a healthy cluster, then starts the recorders (mounts and
    /// resets every 100 ms, the lease holder) and the mail load.
    fn soak_record(&self, out: &Path, run_id: &str, max: Duration) -> Result<Recording, LabError> {
        self.wait_healthy(Duration::from_secs(120))?;
        let history = out.join("history.jsonl");
        let w: Writer = Arc::new(Mutex::new(
            HistoryWriter::append_to(&history).map_err(|e| LabError::Cluster(e.to_string()))?,
        ));
        let t0 = load::now_ms() as u64;
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = self.soak_sampler(w.clone(), t0, stop.clone());
        let holders = self.soak_holders(w.clone(), t0, stop.clone());
        let (log, stop_file) = (out.join("load.log"), out.join("stop"));
        let loader = self.spawn_load(run_id, &log, &stop_file, Some(max), true)?;
        Ok(Recording {
            w,
            t0,
            stop,
            sampler,
            holders,
            loader,
            log,
            stop_file,
            run_id: run_id.to_string(),
        })
    }

    /// After the faults: the cluster cleaned up and healthy, the load
    /// stopped, the client's logs and the final read into the history,
    /// the recorders stopped, the nodes' logs kept; the history read back.
    fn soak_finish(
        &self,
        rec: Recording,
        out: &Path,
        notes: &mut Vec<String>,
    ) -> Result<super::history::History, LabError> {
        let Recording {
            w,
            t0,
            stop: stop_sampler,
            sampler,
            holders,
            mut loader,
            log,
            stop_file: stop,
            run_id,
        } = rec;
        // The cluster heals by itself; then, as an operator would after a
        // night of faults, the failures are cleaned up and the mail must
        // run with everything started.
        std::thread::sleep(Duration::from_secs(20));
        if let Ok((st, _)) = self.any_status() {
            let n = st.active_node.unwrap_or_else(|| "node1".into());
            let _ = self.in_node_out(&n, &["crm_resource", "--cleanup"]);
        }
        if let Err(e) = self.wait_healthy(Duration::from_secs(180)) {
            notes.push(format!("not healthy after the soak: {e}"));
        }
        std::thread::sleep(Duration::from_secs(5));
        crate::drill::stop_load(&mut loader, &stop);

        // The client's logs into the history, then the final read: every
        // message of this soak in the mailbox, repeats kept.
        for r in client_records(&log, t0, &format!("<drill-{run_id}-")) {
            if let Ok(mut w) = w.lock() {
                let _ = w.append(&r);
            }
        }
        let final_ids = self.soak_final_read(&run_id, out, notes);
        record(
            &w,
            t0,
            match final_ids {
                Some(ids) => Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids,
                    final_read: true,
                },
                None => Event::Imap {
                    outcome: ImapOutcome::Fail,
                    ids: Vec::new(),
                    final_read: true,
                },
            },
        );
        stop_sampler.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        let _ = holders.join();
        drop(w);
        for n in ["node1", "node2"] {
            let from =
                crate::plan::node_root(&self.base_dir, n).join("var/log/pacemaker/pacemaker.log");
            let _ = std::fs::copy(&from, out.join(format!("{n}-pacemaker.log")));
        }

        let history = out.join("history.jsonl");
        super::history::read_file(&history).map_err(|e| LabError::Cluster(e.to_string()))
    }

    /// Every 100 ms: each node's mount table (is the data mounted?), and
    /// a node whose boot ended (a reset, a fence, a power cut) as a fence
    /// of it, once per boot.
    fn soak_sampler(
        &self,
        w: Writer,
        t0: u64,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let (store, proc_root) = (self.store.clone(), self.proc_root.clone());
        std::thread::spawn(move || {
            let mut ended: Vec<(String, u32)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let nodes = recorded_nodes(&store);
                for n in &nodes {
                    let alive = crate::proc::is_alive(&proc_root, n.pid, n.start_time);
                    record(
                        &w,
                        t0,
                        Event::Mount {
                            node: n.node.clone(),
                            mounted: alive && drill::data_mounted(&proc_root, n.pid),
                        },
                    );
                    if !alive && !ended.contains(&(n.node.clone(), n.pid)) {
                        ended.push((n.node.clone(), n.pid));
                        record(
                            &w,
                            t0,
                            Event::Fence {
                                target: n.node.clone(),
                            },
                        );
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }

    /// Every second: which node's lease keeper says it holds the lease
    /// (`mailha lease status` in each node; both, should it ever happen,
    /// comma-separated), recorded when it changes. The guard's own view,
    /// beside the mounts the other sampler sees.
    fn soak_holders(
        &self,
        w: Writer,
        t0: u64,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let (topo, store, base_dir, proc_root) = (
            self.topo.clone(),
            self.store.clone(),
            self.base_dir.clone(),
            self.proc_root.clone(),
        );
        let (exe, mailha, deb) = (self.exe.clone(), self.mailha.clone(), self.deb.clone());
        std::thread::spawn(move || {
            let runner = crate::cmd::SystemRunner;
            let lab = Lab {
                runner: &runner,
                topo,
                store,
                base_dir,
                proc_root,
                exe,
                mailha,
                deb,
            };
            let mut last: Option<Option<String>> = None;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let held: Vec<&str> = ["node1", "node2"]
                    .into_iter()
                    .filter(|n| lab.keeper_status(n).is_ok_and(|s| s.holds))
                    .collect();
                let lease = (!held.is_empty()).then(|| held.join(","));
                if last.as_ref() != Some(&lease) {
                    record(
                        &w,
                        t0,
                        Event::Holder {
                            lease: lease.clone(),
                            mail: None,
                        },
                    );
                    last = Some(lease);
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
            }
        })
    }

    /// Every second: whether each node's Pacemaker runs (`systemctl
    /// is-active pacemaker` in the node, 5 s deadline; a node that is off
    /// runs nothing), recorded when it changes.
    fn soak_stacks(
        &self,
        w: Writer,
        t0: u64,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let (store, proc_root) = (self.store.clone(), self.proc_root.clone());
        std::thread::spawn(move || {
            let runner = crate::cmd::SystemRunner;
            let mut last: [Option<bool>; 2] = [None, None];
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let nodes = recorded_nodes(&store);
                for (i, name) in ["node1", "node2"].into_iter().enumerate() {
                    let up = nodes
                        .iter()
                        .find(|n| n.node == name)
                        .filter(|n| crate::proc::is_alive(&proc_root, n.pid, n.start_time))
                        .is_some_and(|n| {
                            let argv = ["systemctl", "is-active", "--quiet", "pacemaker"];
                            let c =
                                crate::plan::in_node(n.pid, &argv).deadline(Duration::from_secs(5));
                            crate::cmd::Runner::run(&runner, &c).is_ok_and(|o| o.success())
                        });
                    if last[i] != Some(up) {
                        record(
                            &w,
                            t0,
                            Event::Stack {
                                node: name.to_string(),
                                up,
                            },
                        );
                        last[i] = Some(up);
                    }
                }
                std::thread::sleep(Duration::from_secs(1).saturating_sub(t.elapsed()));
            }
        })
    }

    /// The steps at their times: each start injected, each end healed.
    fn soak_steps(&self, schedule: &Schedule, w: &Writer, t0: u64, notes: &mut Vec<String>) {
        let mut events: Vec<(u64, bool, usize)> = schedule
            .steps
            .iter()
            .flat_map(|s| [(s.start_ms, true, s.index), (s.end_ms(), false, s.index)])
            .collect();
        // At one instant, heals before injections.
        events.sort_by_key(|(t, start, i)| (*t, *start, *i));
        let mut heals: Vec<Option<Heal>> = schedule.steps.iter().map(|_| None).collect();
        // Each note also goes to stderr as it happens: an hour's soak is
        // watched, not only read afterwards.
        let mut note = |n: String| {
            eprintln!("soak: {n}");
            notes.push(n);
        };
        for (at, start, i) in events {
            let now = (load::now_ms() as u64).saturating_sub(t0);
            if at > now {
                std::thread::sleep(Duration::from_millis(at - now));
            }
            let step = &schedule.steps[i];
            if start {
                record(
                    w,
                    t0,
                    Event::Fault {
                        step: i,
                        phase: Phase::Start,
                    },
                );
                match self.soak_inject(&step.fault) {
                    Ok((heal, what)) => {
                        note(format!("step {i} at {} s: {what}", at / 1000));
                        heals[i] = Some(heal);
                    }
                    Err(e) => note(format!(
                        "step {i}: {} not injected: {e}",
                        step.fault.kind().name()
                    )),
                }
            } else {
                if let Some(h) = heals[i].take()
                    && let Err(e) = self.soak_heal(h)
                {
                    note(format!("step {i}: heal: {e}"));
                }
                record(
                    w,
                    t0,
                    Event::Fault {
                        step: i,
                        phase: Phase::End,
                    },
                );
            }
        }
    }

    /// Where the mail runs now, and the other node.
    fn soak_roles(&self) -> (String, String) {
        let active = self
            .any_status()
            .ok()
            .and_then(|(s, _)| s.active_node)
            .unwrap_or_else(|| "node1".into());
        let standby = peer(&active).to_string();
        (active, standby)
    }

    /// `node` as the schedule names it: a node, or a role resolved now.
    fn soak_node(&self, node: &str) -> String {
        let (active, standby) = self.soak_roles();
        match node {
            super::schedule::ACTIVE => active,
            super::schedule::STANDBY => standby,
            n => n.to_string(),
        }
    }

    fn soak_inject(&self, f: &Fault) -> Result<(Heal, String), LabError> {
        Ok(match f {
            Fault::KillDaemon { service } => {
                let (process, _) = drill::daemon(service).ok_or_else(|| {
                    LabError::Cluster(format!("the lab has no daemon {service:?}"))
                })?;
                // A daemon being restarted (an overlapping kill of another
                // one restarts its dependants) is killed once it is back.
                let t = Instant::now();
                let (node, pid) = loop {
                    let (node, _) = self.soak_roles();
                    match self.oldest_pid(&node, process) {
                        Some(pid) => break (node, pid),
                        None if t.elapsed() < Duration::from_secs(20) => {
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        None => {
                            return Err(LabError::Cluster(format!(
                                "{process} is not running on {node}"
                            )));
                        }
                    }
                };
                self.in_node_out(&node, &["kill", "-9", &pid])?;
                (
                    Heal::Nothing,
                    format!("killed {process} (pid {pid}) on {node}"),
                )
            }
            Fault::StorageLoss { node, mode } => {
                let node = self.soak_node(node);
                let before = self.node_rec(&node)?;
                let m = match mode {
                    StorageMode::Eio => Mode::Eio,
                    StorageMode::Hang => Mode::Hang,
                };
                self.break_disk_path(&node, m)?;
                (
                    Heal::Disk(node.clone(), before),
                    format!("{node}: disk path {}", m.name()),
                )
            }
            Fault::CutPing { node } => {
                let node = self.soak_node(node);
                let undo = self.cut_ping(&node)?;
                (
                    Heal::Undo(node.clone(), undo),
                    format!("{node}: ping target cut"),
                )
            }
            Fault::KillNode { node } | Fault::FreezeNode { node } => {
                let node = self.soak_node(node);
                let before = self.node_rec(&node)?;
                let frozen = matches!(f, Fault::FreezeNode { .. });
                if frozen {
                    self.freeze_node(&node)?;
                } else {
                    self.kill_node(&node)?;
                }
                (
                    Heal::Boot {
                        node: node.clone(),
                        before,
                        frozen,
                    },
                    format!("{} {node}", if frozen { "froze" } else { "killed" }),
                )
            }
            Fault::Switchover => {
                let (from, to) = self.soak_roles();
                let o = self.in_node_out(&from, &["mailha", "switchover", "--to", &to])?;
                (
                    Heal::Nothing,
                    format!(
                        "mailha switchover {from} -> {to}: {}",
                        if o.success() { "done" } else { o.stderr.trim() }
                    ),
                )
            }
            Fault::FailDaemon { service } => {
                let (_, port) = drill::daemon(service).ok_or_else(|| {
                    LabError::Cluster(format!("the lab has no daemon {service:?}"))
                })?;
                let (node, _) = self.soak_roles();
                let undo = self.reject_port(&node, port)?;
                (
                    Heal::Port {
                        undo,
                        service: service.clone(),
                    },
                    format!("{node}: tcp port {port} ({service}) rejected"),
                )
            }
            Fault::CutHeartbeat => {
                let (_, standby) = self.soak_roles();
                let before = self.node_rec(&standby)?;
                let undo = self.cut_heartbeat(&standby)?;
                (
                    Heal::Heartbeat {
                        node: standby.clone(),
                        before,
                        undo,
                    },
                    format!("{standby}: corosync UDP dropped both ways"),
                )
            }
            Fault::Apply => {
                let (node, _) = self.soak_roles();
                let what = self.soak_apply(&node, true)?;
                (Heal::Apply, what)
            }
            other => {
                return Err(LabError::Cluster(format!(
                    "{} is not wired into the runner",
                    other.kind().name()
                )));
            }
        })
    }

    /// Adds (or takes away) the canary service in `node`'s config and
    /// applies it, which sends the file to the peer too.
    fn soak_apply(&self, node: &str, add: bool) -> Result<String, LabError> {
        let path = crate::plan::node_root(&self.base_dir, node).join("etc/mailha/mailha.toml");
        let text = std::fs::read_to_string(&path).map_err(LabError::io(&path))?;
        let changed = if add {
            let tag = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            with_canary(&text, &tag.to_string())
        } else if let Some(t) = without_canary(&text) {
            t
        } else {
            return Ok(format!("{node}: no canary in its config to take away"));
        };
        std::fs::write(&path, changed).map_err(LabError::io(&path))?;
        // Taking it away gives back the very file of an older generation,
        // which `mailha apply` refuses as a stale copy unless told that
        // the revert is meant (`--force`), as an operator reverting is.
        let argv: &[&str] = if add {
            &["mailha", "apply"]
        } else {
            &["mailha", "apply", "--force"]
        };
        let o = self.in_node_out(node, argv)?;
        let what = format!(
            "{node}: mailha apply ({} the canary service): {}",
            if add { "adds" } else { "takes away" },
            if o.success() {
                "done".to_string()
            } else {
                format!("exit {:?}: {}", o.code, o.stderr.trim())
            }
        );
        // A refused add is a fault not injected (the step's note says
        // so, and the suite's soak fails on it), not a step that ran.
        if add && !o.success() {
            // The file back as it was: the node's config stays the one
            // that runs.
            std::fs::write(&path, &text).map_err(LabError::io(&path))?;
            return Err(LabError::Cluster(what));
        }
        Ok(what)
    }

    fn soak_heal(&self, h: Heal) -> Result<(), LabError> {
        match h {
            Heal::Nothing => Ok(()),
            Heal::Undo(node, argv) => {
                let a: Vec<&str> = argv.iter().map(String::as_str).collect();
                self.in_node_out(&node, &a).map(drop)
            }
            Heal::Port { undo, service } => {
                if let Some((node, a)) = node_argv(&undo) {
                    self.in_node_out(node, &a)?;
                }
                let (active, _) = self.soak_roles();
                self.in_node_out(&active, &["mailha", "cleanup", &service])
                    .map(drop)
            }
            Heal::Heartbeat { node, before, undo } => {
                if !crate::proc::is_alive(&self.proc_root, before.pid, before.start_time) {
                    return self.await_reboot(&node, &before);
                }
                for c in &undo {
                    if let Some((n, a)) = node_argv(c) {
                        self.in_node_out(n, &a)?;
                    }
                }
                Ok(())
            }
            Heal::Apply => {
                // The file went to both nodes; the one running the mail
                // takes the canary away (from the other if it must).
                let (active, standby) = self.soak_roles();
                let mut what = self.soak_apply(&active, false)?;
                if what.contains("no canary") {
                    what = self.soak_apply(&standby, false)?;
                }
                // A refused apply is the soak's to report, not to hide.
                if what.ends_with(": done") {
                    Ok(())
                } else {
                    Err(LabError::Cluster(what))
                }
            }
            Heal::Disk(node, before) => {
                let mut notes = Vec::new();
                if !self.restore_disk_path(&node, &mut notes) {
                    let _ = self.in_node_out(peer(&node), &["crm_resource", "--cleanup"]);
                    self.restore_disk_path_within(&node, Duration::from_secs(120), &mut notes);
                }
                // The guard may have fenced the node: its watchdog reset
                // it, and it boots again by itself.
                if !crate::proc::is_alive(&self.proc_root, before.pid, before.start_time) {
                    self.await_reboot(&node, &before)?;
                }
                Ok(())
            }
            Heal::Boot {
                node,
                before,
                frozen,
            } => {
                let up = || crate::proc::is_alive(&self.proc_root, before.pid, before.start_time);
                if frozen && !up() {
                    // Its watchdog reset it; it boots again by itself.
                    return self.await_reboot(&node, &before);
                }
                if up() {
                    // Not reset (no guard): ended as an operator would. Then
                    // thawed, or its frozen nspawn never reaps the dead
                    // PID 1 (the stock replay's node stayed down so).
                    let _ = self.kill_node(&node);
                    if frozen {
                        let _ = self.freeze(&node, false);
                    }
                    let t = Instant::now();
                    while up() && t.elapsed() < Duration::from_secs(30) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                self.restart_node(&node)
            }
        }
    }

    /// The soak's messages as a mail client reads them over IMAP on the
    /// VIP from the client namespace, after the queue of the node that
    /// runs the mail is flushed; every message listed (a message delivered
    /// twice, twice). None when the mailbox could not be read.
    fn soak_final_read(
        &self,
        run_id: &str,
        out: &Path,
        notes: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let (active, _) = self.soak_roles();
        if let Some(q) = self.deliver_queued(&active) {
            notes.push(format!("mail queue on {active} not empty after 60 s: {q}"));
        }
        let file = out.join("final-read.txt");
        let run = crate::cmd::Cmd::new("ip")
            .args(["netns", "exec", &self.topo.netns(Aux::Client)])
            .arg(self.exe.display().to_string())
            .args(["imap-read", "--vip", &self.topo.vip().to_string(), "--out"])
            .arg(file.display().to_string())
            .deadline(Duration::from_secs(60));
        match self.runner.run(&run) {
            Ok(o) if o.success() => {}
            Ok(o) => {
                notes.push(format!("the final IMAP read failed: {}", o.stderr.trim()));
                return None;
            }
            Err(e) => {
                notes.push(format!("the final IMAP read failed: {e}"));
                return None;
            }
        }
        let mine = format!("<drill-{run_id}-");
        Some(
            std::fs::read_to_string(&file)
                .ok()?
                .lines()
                .filter(|id| id.starts_with(&mine))
                .map(str::to_string)
                .collect(),
        )
    }
}

/// The client's SMTP and IMAP logs as history records (times since
/// `t0`): an accepted message, one whose fate is unknown, and attempts
/// that were refused (no id of theirs can be delivered: each gets its
/// own placeholder); each IMAP read with the ids it found that start
/// with `mine` (the soak's own; older mail in the box is no part of it).
pub fn client_records(smtp_log: &Path, t0: u64, mine: &str) -> Vec<Record> {
    let rel = |ms: u128| (ms as u64).saturating_sub(t0);
    let mut out = Vec::new();
    let text = std::fs::read_to_string(smtp_log).unwrap_or_default();
    for (ms, a) in text.lines().filter_map(load::parse_line) {
        let (id, outcome) = match a {
            Attempt::Accepted(id) => (id, SmtpOutcome::Ok),
            Attempt::Unknown(id) => (id, SmtpOutcome::Unknown),
            Attempt::Greeted | Attempt::Down => (format!("refused-{ms}"), SmtpOutcome::Refused),
        };
        out.push(Record {
            t_ms: rel(ms),
            event: Event::Smtp { id, outcome },
        });
    }
    let imap = std::fs::read_to_string(load::imap_log(smtp_log)).unwrap_or_default();
    for (ms, ok, ids) in imap.lines().filter_map(load::parse_imap_read) {
        out.push(Record {
            t_ms: rel(ms),
            event: Event::Imap {
                outcome: if ok {
                    ImapOutcome::Ok
                } else {
                    ImapOutcome::Fail
                },
                ids: ids.into_iter().filter(|id| id.starts_with(mine)).collect(),
                final_read: false,
            },
        });
    }
    out.sort_by_key(|r| r.t_ms);
    out
}

/// The checker's verdict on a soak's folder (its `schedule.json` and
/// `history.jsonl`), with the runner's bounds: a verdict recomputed, or
/// a history judged by a newer checker.
pub fn check_dir(dir: &Path) -> Result<Verdict, String> {
    let text = std::fs::read_to_string(dir.join("schedule.json"))
        .map_err(|e| format!("{}: {e}", dir.join("schedule.json").display()))?;
    let s = Schedule::from_json(&text).map_err(|e| e.to_string())?;
    let h = super::history::read_file(&dir.join("history.jsonl")).map_err(|e| e.to_string())?;
    checker::check(&h, &s, &check_options()).map_err(|e| e.to_string())
}

/// What the runner judges by: its bounds, a fault's effects counted for
/// 30 s after its heal, a fence within 30 s of a fault's end explained.
pub fn check_options() -> CheckOptions {
    CheckOptions {
        bounds: bounds(),
        outage_tail_ms: 30_000,
        fence_grace_ms: 30_000,
    }
}

/// `{base}/soak/<unix ms>-seed<N>`: one folder per soak.
pub fn out_dir(base_dir: &Path, seed: u64) -> PathBuf {
    base_dir
        .join("soak")
        .join(format!("{}-seed{seed}", load::now_ms()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_canary_is_a_file_no_generation_had_and_its_removal_gives_the_file_back() {
        let conf = "[cluster]\nname = \"lab\"\n";
        let a = with_canary(conf, "1");
        let b = with_canary(conf, "2");
        assert_ne!(a, b, "two adds are two files");
        assert!(a.ends_with("agent = \"ocf:pacemaker:Dummy\"\n"), "{a}");
        assert_eq!(without_canary(&a).as_deref(), Some(conf));
        assert_eq!(without_canary(conf), None);
        // A node that still has an older canary gets one, not two.
        let again = with_canary(&a, "3");
        assert_eq!(again.matches("[services.soakcanary]").count(), 1, "{again}");
        assert_eq!(without_canary(&again).as_deref(), Some(conf));
    }

    #[test]
    fn the_client_s_logs_become_smtp_and_imap_events_in_time_order() {
        let d = tempfile::tempdir().unwrap();
        let smtp = d.path().join("load.log");
        std::fs::write(
            &smtp,
            "1000 accepted <drill-soak-1-1@x>\n1100 down\n1200 unknown <drill-soak-1-3@x>\n1300 greeted\n",
        )
        .unwrap();
        std::fs::write(
            load::imap_log(&smtp),
            "1050 imap ok <drill-soak-1-1@x> <older@x>\n1150 imap down\n",
        )
        .unwrap();
        let r = client_records(&smtp, 1000, "<drill-soak-1-");
        let kinds: Vec<(u64, String)> = r
            .iter()
            .map(|r| {
                (
                    r.t_ms,
                    match &r.event {
                        Event::Smtp { id, outcome } => format!("smtp {id} {outcome:?}"),
                        Event::Imap { outcome, ids, .. } => format!("imap {outcome:?} {ids:?}"),
                        e => format!("{e:?}"),
                    },
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, "smtp <drill-soak-1-1@x> Ok".to_string()),
                (50, "imap Ok [\"<drill-soak-1-1@x>\"]".into()),
                (100, "smtp refused-1100 Refused".into()),
                (150, "imap Fail []".into()),
                (200, "smtp <drill-soak-1-3@x> Unknown".into()),
                (300, "smtp refused-1300 Refused".into()),
            ]
        );
    }

    #[test]
    fn every_wired_kind_has_a_bound_and_the_rest_are_named() {
        let b = bounds();
        assert!(WIRED.iter().all(|k| b.contains_key(k)));
        let s = super::super::schedule::plan(
            Duration::from_secs(600),
            1,
            Some("kill-daemon,fail-daemon,apply,nfs-hang"),
            crate::provision::Profile::Postfix,
            true,
        )
        .unwrap();
        assert_eq!(unwired(&s), vec!["nfs-hang"]);
    }
}
