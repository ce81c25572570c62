//! Pacemaker's Cluster Test Suite (CTS 2.1.5) judged by the mail
//! (issue 19): `bench/cts.sh` runs CTS against the lab while
//! `mailha-lab soak observe` records the mail load, the mounts, the
//! fences and the lease holder; `mailha-lab cts judge` then puts CTS's
//! own verdicts beside what the client saw. CTS passing while the mail
//! was down is not a pass.
//!
//! Pure: CTS's log text and a recorded history in, a verdict out.
//!
//! Each test's window runs from its "Running test" line to the next one
//! (or to the tear-down); the mail's longest outage in it is judged
//! against the bound of the drill the test amounts to for the mail
//! (`expectation`). A window in which, at some moment, no node ran
//! Pacemaker (the history's `stack` samples: CTS stops the whole cluster
//! in many tests, in its set-up and its tear-down, or restarts the only
//! node left) takes the mail down by design: its outage is reported, and
//! only has to end. Which tests do that is read from what happened, not
//! assumed from their names.

use crate::soak::checker::{self, DoubleMount, Fence, SetResult};
use crate::soak::history::{Event, History};
use crate::soak::run::bounds;
use crate::soak::schedule::FaultKind;
use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};

/// One test as CTS ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtsTest {
    pub name: String,
    /// The node CTS chose for it.
    pub node: String,
    /// Its number in the run (CTS's `[  n]`).
    pub count: u32,
    /// Unix ms of its "Running test" line (CTS logs whole seconds).
    pub start_unix_ms: u64,
    pub skipped: bool,
    /// What CTS said against it, as it said it: "FAILED", "Setup
    /// failed", "Teardown failed", an audit failure, BadNews.
    pub complaints: Vec<String>,
}

impl CtsTest {
    /// CTS's own verdict: nothing said against it in its window.
    pub fn passed(&self) -> bool {
        self.complaints.is_empty()
    }
}

/// A CTS run's log, read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtsRun {
    pub seed: Option<String>,
    /// Unix ms of the log's first line (the run's set-up starts there).
    pub start_unix_ms: Option<u64>,
    /// Unix ms of its last line.
    pub end_unix_ms: Option<u64>,
    pub tests: Vec<CtsTest>,
    /// "TESTS COMPLETED" was logged: the run was not cut short.
    pub completed: bool,
    /// Unix ms of the tear-down after the last test, which stops the
    /// cluster on every node ("Stopping Cluster Manager on all nodes").
    pub teardown_unix_ms: Option<u64>,
    /// What CTS logged against the run's set-up, before the first test.
    pub setup_complaints: Vec<String>,
    /// What it logged against the tear-down (an audit of the stopped
    /// cluster: a stale IPC file...).
    pub teardown_complaints: Vec<String>,
    /// CTS's warnings: what an audit found, logged just before the
    /// audit's "FAILED".
    pub warnings: Vec<Warning>,
}

/// A part of the run, in the order of CTS's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    SetUp,
    /// The test at this index of `CtsRun::tests`.
    Test(usize),
    TearDown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub unix_ms: u64,
    pub section: Section,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CtsError {
    #[error("line {line}: {what}")]
    Line { line: usize, what: String },
    #[error("CTS's log names no test")]
    NoTests,
}

/// Unix ms of CTS's stamp "Dec 06 20:04:07" (UTC: `bench/cts.sh` runs
/// CTS with TZ=UTC), in the year that puts it nearest `near_unix_ms`.
fn stamp_ms(stamp: &str, near_unix_ms: u64) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mut it = stamp.split_whitespace();
    let name = it.next()?;
    let month = MONTHS.iter().position(|m| *m == name)? + 1;
    let day: u32 = it.next()?.parse().ok()?;
    let time = it.next()?;
    let year_of = |ms: u64| {
        let s = humantime::format_rfc3339(UNIX_EPOCH + Duration::from_millis(ms)).to_string();
        s.get(..4).and_then(|y| y.parse::<i64>().ok())
    };
    let near_year = year_of(near_unix_ms)?;
    (near_year - 1..=near_year + 1)
        .filter_map(|y| {
            let t =
                humantime::parse_rfc3339(&format!("{y:04}-{month:02}-{day:02}T{time}Z")).ok()?;
            Some(t.duration_since(UNIX_EPOCH).ok()?.as_millis() as u64)
        })
        .min_by_key(|ms| ms.abs_diff(near_unix_ms))
}

/// CTS's log (its stdout, or `--outputfile`; debug lines are skipped):
/// each line is "<Mon DD HH:MM:SS>\t[<host> ]<text>".
pub fn parse_log(text: &str, near_unix_ms: u64) -> Result<CtsRun, CtsError> {
    let mut run = CtsRun {
        seed: None,
        start_unix_ms: None,
        end_unix_ms: None,
        tests: Vec::new(),
        completed: false,
        teardown_unix_ms: None,
        setup_complaints: Vec::new(),
        teardown_complaints: Vec::new(),
        warnings: Vec::new(),
    };
    for (i, line) in text.lines().enumerate() {
        let Some((stamp, rest)) = line.split_once('\t') else {
            continue;
        };
        let Some(at) = stamp_ms(stamp, near_unix_ms) else {
            continue;
        };
        let msg = rest.trim();
        if msg.contains(" debug: ") || msg.starts_with("debug: ") {
            continue;
        }
        run.start_unix_ms.get_or_insert(at);
        run.end_unix_ms = Some(at);
        if let Some(seed) = msg.split("Random Seed:").nth(1) {
            run.seed = Some(seed.trim().to_string());
        }
        if let Some(after) = msg.split("Running test ").nth(1) {
            let bad = |what: &str| CtsError::Line {
                line: i + 1,
                what: format!("{what}: {msg:?}"),
            };
            let mut words = after.split_whitespace();
            let name = words.next().ok_or_else(|| bad("no test name"))?;
            let node = words
                .next()
                .and_then(|w| w.strip_prefix('(')?.strip_suffix(')'))
                .ok_or_else(|| bad("no node"))?;
            let count = after
                .rsplit_once('[')
                .and_then(|(_, c)| c.trim_end_matches(']').trim().parse().ok())
                .ok_or_else(|| bad("no test number"))?;
            run.tests.push(CtsTest {
                name: name.to_string(),
                node: node.to_string(),
                count,
                start_unix_ms: at,
                skipped: false,
                complaints: Vec::new(),
            });
            continue;
        }
        if msg.ends_with("Stopping Cluster Manager on all nodes") && !run.tests.is_empty() {
            run.teardown_unix_ms = Some(at);
            continue;
        }
        if msg.contains("TESTS COMPLETED") {
            run.completed = true;
            continue;
        }
        if msg.starts_with("Warning: ") {
            let section = match (run.teardown_unix_ms, run.tests.len()) {
                (Some(_), _) => Section::TearDown,
                (None, 0) => Section::SetUp,
                (None, n) => Section::Test(n - 1),
            };
            run.warnings.push(Warning {
                unix_ms: at,
                section,
                text: msg.to_string(),
            });
            continue;
        }
        let against = msg.contains(" FAILED")
            || msg.ends_with("Setup failed")
            || msg.ends_with("Teardown failed")
            || msg.contains("BadNews:");
        let skipped = msg.ends_with("Skipped");
        if against && run.teardown_unix_ms.is_some() {
            run.teardown_complaints.push(msg.to_string());
            continue;
        }
        match run.tests.last_mut() {
            Some(t) if against => t.complaints.push(msg.to_string()),
            Some(t) if skipped => t.skipped = true,
            None if against => run.setup_complaints.push(msg.to_string()),
            _ => {}
        }
    }
    if run.tests.is_empty() {
        return Err(CtsError::NoTests);
    }
    Ok(run)
}

/// What a window's outage is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Like the drill of this kind: its outage must stay within the
    /// soak's bound for it.
    Like(FaultKind),
    /// No node ran Pacemaker at some moment of the window: no mail
    /// without a cluster, by design. The outage only has to end.
    ClusterStopped,
}

/// The drill each of CTS 2.1.5's tests amounts to for the mail while a
/// node still runs the cluster. A test not named here is judged as the
/// worst drill (a node's death).
pub fn expectation(test: &str) -> FaultKind {
    use FaultKind::*;
    match test {
        // Nodes' stacks stopped or started, one or several (stopping the
        // mail's node is a planned move), a standby.
        "Flip" | "Restart" | "Standby" | "RestartOnebyOne" | "StartOnebyOne" | "SimulStart"
        | "SimulStop" | "StopOnebyOne" | "PartialStart" | "SpecialTest1" | "NearQuorumPoint" => {
            Switchover
        }
        // Maintenance, and the stack restarted under unmanaged
        // resources: nothing may move or stop.
        "MaintenanceMode" | "Reattach" => Apply,
        // One resource failed and recovered in place.
        "ResourceRecover" => KillDaemon,
        // A node fenced, a Pacemaker daemon killed (the controller's
        // death may get the node fenced).
        _ => KillNode,
    }
}

/// The stretches of history time in which every node's Pacemaker was
/// down (None: still at the history's end). A node counts as up until
/// its first `stack` sample says otherwise: the observer starts on a
/// healthy cluster.
pub fn cluster_stopped(history: &History) -> Vec<(u64, Option<u64>)> {
    let mut up: std::collections::BTreeMap<&str, bool> = Default::default();
    let mut spans = Vec::new();
    let mut since: Option<u64> = None;
    let mut records: Vec<_> = history.records.iter().collect();
    records.sort_by_key(|r| r.t_ms);
    for r in records {
        let Event::Stack { node, up: is_up } = &r.event else {
            continue;
        };
        up.insert(node, *is_up);
        let all_down = up.len() >= 2 && up.values().all(|u| !u);
        match (since, all_down) {
            (None, true) => since = Some(r.t_ms),
            (Some(s), false) => {
                spans.push((s, Some(r.t_ms)));
                since = None;
            }
            _ => {}
        }
    }
    if let Some(s) = since {
        spans.push((s, None));
    }
    spans
}

/// A Pacemaker daemon its node's pacemakerd saw die of SIGKILL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kill {
    pub node: String,
    pub daemon: String,
    pub pid: u32,
    pub unix_ms: u64,
}

/// The SIGKILLs pacemakerd logged in a node's journal (`journalctl -o
/// short-iso`): "2026-12-06T20:49:47+0000 node2 pacemakerd[89379]:
/// warning: pacemaker-schedulerd[89388] terminated with signal 9 (Killed)".
pub fn sigkills(journal: &str) -> Vec<Kill> {
    journal
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let unix_ms = iso_ms(words.next()?)?;
            let node = words.next()?;
            if !words.next()?.starts_with("pacemakerd[") {
                return None;
            }
            let (before, _) = line.split_once(" terminated with signal 9")?;
            let (daemon, pid) = before.rsplit(' ').next()?.split_once('[')?;
            Some(Kill {
                node: node.to_string(),
                daemon: daemon.to_string(),
                pid: pid.strip_suffix(']')?.parse().ok()?,
                unix_ms,
            })
        })
        .collect()
}

/// Unix ms of a short-iso stamp, "2026-12-06T20:49:47+0000".
fn iso_ms(stamp: &str) -> Option<u64> {
    let (local, offset) = stamp.split_at_checked(19)?;
    let t = humantime::parse_rfc3339(&format!("{local}Z")).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
    let (sign, hhmm) = match offset.strip_prefix('+') {
        Some(rest) => (1, rest),
        None => (-1, offset.strip_prefix('-')?),
    };
    let hours: i64 = hhmm.get(..2)?.parse().ok()?;
    let minutes: i64 = hhmm.get(2..)?.trim_start_matches(':').parse().ok()?;
    u64::try_from(ms - sign * (hours * 60 + minutes) * 60_000).ok()
}

/// A complaint of CTS's that is not held against the run, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excused {
    pub window: String,
    pub complaint: String,
    pub why: Vec<String>,
}

/// Why a FileAudit failure logged in a window is CTS's own doing, or
/// None. FileAudit fails on libqb IPC directories left in a stopped
/// node's /dev/shm (then removes them). Such a directory is removed by
/// its server, the daemon named first in its name (qb-SERVER-CLIENT-..):
/// one killed with SIGKILL never can (the next boot's /dev/shm is a new
/// tmpfs). CTS's ComponentFail kills
/// Pacemaker's daemons so on purpose. The failure is excused only when
/// every warning before it is such a directory, left by a daemon the
/// node's own pacemakerd saw die of signal 9 during a ComponentFail
/// test; a core file, or a directory of any other origin, keeps it.
fn file_audit_excuse(run: &CtsRun, section: Section, kills: &[Kill]) -> Option<Vec<String>> {
    let component_fail = |at: u64| {
        run.tests.iter().enumerate().find(|(i, t)| {
            let end = run
                .tests
                .get(i + 1)
                .map(|n| n.start_unix_ms)
                .or(run.teardown_unix_ms)
                .unwrap_or(u64::MAX);
            t.name == "ComponentFail" && t.start_unix_ms <= at && at <= end
        })
    };
    let warnings: Vec<&str> = run
        .warnings
        .iter()
        .filter(|w| w.section == section)
        .map(|w| w.text.as_str())
        .collect();
    if warnings.is_empty() {
        return None;
    }
    warnings
        .iter()
        .map(|w| {
            let rest = w.strip_prefix("Warning: Stale IPC file on ")?;
            let (node, listing) = rest.split_once(':')?;
            let dir = listing.split_whitespace().last()?;
            let server: u32 = dir.strip_prefix("qb-")?.split('-').next()?.parse().ok()?;
            let kill = kills.iter().find(|k| k.node == node && k.pid == server)?;
            let (_, test) = component_fail(kill.unix_ms)?;
            Some(format!(
                "{dir} on {node}: the IPC directory of {}[{}], killed with SIGKILL by ComponentFail [{}]",
                kill.daemon, kill.pid, test.count
            ))
        })
        .collect()
}

/// The mail during one window of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The test's name, or "set-up" before the first test.
    pub test: String,
    pub count: u32,
    pub node: String,
    /// Times since the history's t0.
    pub start_ms: u64,
    pub end_ms: u64,
    pub expect: Expect,
    /// The longest SMTP / IMAP outage in the window (from the last
    /// success before it to the first success after it); None: it never
    /// ended within the history.
    pub smtp_ms: Option<u64>,
    pub imap_ms: Option<u64>,
    /// The bound it was held to (None: the cluster was stopped).
    pub bound_ms: Option<u64>,
    /// The first stretch of the window with no node running Pacemaker.
    pub cluster_stopped: Option<(u64, Option<u64>)>,
    pub within: bool,
    pub cts_passed: bool,
    pub cts_skipped: bool,
    /// What CTS said against the window and is held against the run.
    pub complaints: Vec<String>,
}

/// CTS's verdicts and the mail's, side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// CTS passed every test, the run completed, and the mail was fine:
    /// nothing lost, no double mount, every outage within its bound.
    pub ok: bool,
    pub seed: Option<String>,
    pub cts_completed: bool,
    pub cts_passed: usize,
    pub cts_failed: usize,
    /// The mail as the final read found it: acknowledged, lost,
    /// vanished, duplicates...
    #[serde(flatten)]
    pub mail: SetResult,
    pub double_mounts: Vec<DoubleMount>,
    pub fences: Vec<Fence>,
    pub windows: Vec<Window>,
    /// Windows whose outage was over its bound, or never ended.
    pub over_bound: Vec<String>,
    /// CTS's complaints not held against the run (`file_audit_excuse`).
    pub excused: Vec<Excused>,
}

/// CTS's run judged by the history recorded beside it; `t0_unix_ms` is
/// the history's zero; `kills` are the SIGKILLs the nodes' journals
/// logged (`sigkills`), which may excuse a FileAudit failure.
pub fn judge(run: &CtsRun, history: &History, t0_unix_ms: u64, kills: &[Kill]) -> Verdict {
    let rel = |ms: u64| ms.saturating_sub(t0_unix_ms);
    let set = checker::set_result(history);
    let a = Attempts {
        smtp: checker::attempts(history, true),
        imap: checker::attempts(history, false),
    };
    let stopped = cluster_stopped(history);
    let history_end = history.records.iter().map(|r| r.t_ms).max().unwrap_or(0);
    let run_end = run.end_unix_ms.map(rel).unwrap_or(history_end);
    let bounds = bounds();
    let mut excused = Vec::new();
    // CTS's complaints in a section, less those excused.
    let mut sift = |window: &str, section: Section, complaints: &[String]| -> Vec<String> {
        complaints
            .iter()
            .filter(|c| {
                let why = c
                    .starts_with("Audit FileAudit FAILED")
                    .then(|| file_audit_excuse(run, section, kills))
                    .flatten();
                match why {
                    Some(why) => {
                        excused.push(Excused {
                            window: window.to_string(),
                            complaint: c.to_string(),
                            why,
                        });
                        false
                    }
                    None => true,
                }
            })
            .cloned()
            .collect()
    };
    let mut windows = Vec::new();
    let first_test = run.tests.first().map(|t| rel(t.start_unix_ms));
    if let (Some(start), Some(first)) = (run.start_unix_ms.map(rel), first_test) {
        let s = Span {
            test: "set-up",
            count: 0,
            node: "",
            start_ms: start,
            end_ms: first,
            kind: FaultKind::Switchover,
            cts_skipped: false,
            complaints: sift("set-up", Section::SetUp, &run.setup_complaints),
        };
        windows.push(window(s, &a, &stopped, &bounds));
    }
    let teardown = run.teardown_unix_ms.map(rel);
    for (i, t) in run.tests.iter().enumerate() {
        let end = run
            .tests
            .get(i + 1)
            .map(|n| rel(n.start_unix_ms))
            .or(teardown)
            .unwrap_or(run_end.max(rel(t.start_unix_ms)));
        let name = format!("{} [{}]", t.name, t.count);
        let s = Span {
            test: &t.name,
            count: t.count,
            node: &t.node,
            start_ms: rel(t.start_unix_ms),
            end_ms: end,
            kind: expectation(&t.name),
            cts_skipped: t.skipped,
            complaints: sift(&name, Section::Test(i), &t.complaints),
        };
        windows.push(window(s, &a, &stopped, &bounds));
    }
    if let Some(start) = teardown {
        let s = Span {
            test: "tear-down",
            count: 0,
            node: "",
            start_ms: start,
            end_ms: run_end.max(start),
            kind: FaultKind::Switchover,
            cts_skipped: false,
            complaints: sift("tear-down", Section::TearDown, &run.teardown_complaints),
        };
        windows.push(window(s, &a, &stopped, &bounds));
    }
    let over_bound: Vec<String> = windows
        .iter()
        .filter(|w| !w.within)
        .map(|w| format!("{} [{}]", w.test, w.count))
        .collect();
    let double_mounts = checker::double_mounts(history);
    let fences = history
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Fence { target } => Some(Fence {
                t_ms: r.t_ms,
                target: target.clone(),
            }),
            _ => None,
        })
        .collect();
    let cts_failed = windows.iter().filter(|w| !w.cts_passed).count();
    let ok = run.completed
        && cts_failed == 0
        && set.clean()
        && double_mounts.is_empty()
        && over_bound.is_empty();
    Verdict {
        ok,
        seed: run.seed.clone(),
        cts_completed: run.completed,
        cts_passed: windows
            .iter()
            .filter(|w| w.count > 0 && w.cts_passed)
            .count(),
        cts_failed,
        mail: set,
        double_mounts,
        fences,
        windows,
        over_bound,
        excused,
    }
}

/// The client's attempts, each channel in time order.
struct Attempts {
    smtp: Vec<(u64, bool)>,
    imap: Vec<(u64, bool)>,
}

/// A window of the run, before the mail's outage in it is judged.
struct Span<'a> {
    test: &'a str,
    count: u32,
    node: &'a str,
    start_ms: u64,
    end_ms: u64,
    kind: FaultKind,
    cts_skipped: bool,
    /// CTS's complaints less the excused: any fails the window.
    complaints: Vec<String>,
}

fn window(
    s: Span,
    a: &Attempts,
    stopped: &[(u64, Option<u64>)],
    bounds: &checker::Bounds,
) -> Window {
    let smtp_ms = checker::outage_ms(&a.smtp, s.start_ms, s.end_ms);
    let imap_ms = checker::outage_ms(&a.imap, s.start_ms, s.end_ms);
    let cluster_stopped = stopped
        .iter()
        .find(|(from, to)| *from <= s.end_ms && to.is_none_or(|to| to >= s.start_ms))
        .copied();
    let expect = match cluster_stopped {
        Some(_) => Expect::ClusterStopped,
        None => Expect::Like(s.kind),
    };
    let bound_ms = match expect {
        Expect::Like(kind) => bounds.get(&kind).map(|b| b.smtp_ms.min(b.imap_ms)),
        Expect::ClusterStopped => None,
    };
    let within = match (smtp_ms, imap_ms) {
        (Some(m), Some(i)) => bound_ms.is_none_or(|b| m <= b && i <= b),
        _ => false,
    };
    Window {
        test: s.test.to_string(),
        count: s.count,
        node: s.node.to_string(),
        start_ms: s.start_ms,
        end_ms: s.end_ms,
        expect,
        smtp_ms,
        imap_ms,
        bound_ms,
        cluster_stopped,
        within,
        cts_passed: s.complaints.is_empty(),
        cts_skipped: s.cts_skipped,
        complaints: s.complaints,
    }
}

/// The verdict for people: one line per window, then the totals.
pub fn summary(v: &Verdict) -> String {
    use std::fmt::Write;
    let secs = |ms: Option<u64>| {
        ms.map_or("never ended".to_string(), |m| {
            format!("{:.1} s", m as f64 / 1000.0)
        })
    };
    let mut s = String::new();
    for w in &v.windows {
        let _ = writeln!(
            s,
            "{:>3} {:<16} {:<6} CTS {:<7} mail: smtp {:>12} imap {:>12}  {}",
            w.count,
            w.test,
            w.node,
            if w.cts_skipped {
                "skipped"
            } else if w.cts_passed {
                "passed"
            } else {
                "FAILED"
            },
            secs(w.smtp_ms),
            secs(w.imap_ms),
            match (w.bound_ms, w.within) {
                (Some(b), true) => format!("within {} s", b / 1000),
                (Some(b), false) => format!("OVER {} s", b / 1000),
                (None, true) => "no node ran Pacemaker: by design".to_string(),
                (None, false) => "no node ran Pacemaker; the mail NEVER came BACK".to_string(),
            }
        );
    }
    for e in &v.excused {
        let _ = writeln!(s, "excused in {}: {:?}, because", e.window, e.complaint);
        for why in &e.why {
            let _ = writeln!(s, "    {why}");
        }
    }
    let _ = writeln!(
        s,
        "{}: CTS passed {} failed {}{}; mail: acknowledged {}, lost {}, vanished {}, duplicates {}, double mounts {}, fences {}, over bound {}",
        if v.ok { "ok" } else { "NOT OK" },
        v.cts_passed,
        v.cts_failed,
        if v.cts_completed {
            ""
        } else {
            " (run cut short)"
        },
        v.mail.acknowledged,
        v.mail.lost.len(),
        v.mail.vanished.len(),
        v.mail.duplicates.len(),
        v.double_mounts.len(),
        v.fences.len(),
        v.over_bound.len()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::history::{ImapOutcome, Record, SmtpOutcome};

    /// 2026-12-06T20:04:07Z
    const T: u64 = 1_796_587_447_000;

    const LOG: &str = "\
Dec 06 20:04:07\tRandom Seed:            1
Dec 06 20:04:13\tvm debug: lw: fast-start: Looking for regex: Running test Fake (node9) [  9]
Dec 06 20:04:20\tContinuing with journal-based log reader
Dec 06 20:05:07\tRunning test Flip                  (node1)       [  1]
Dec 06 20:06:07\tRunning test ResourceRecover       (node2)       [  2]
Dec 06 20:06:30\tTest ResourceRecover                 FAILED: Recovery of svc-postfix not detected
Dec 06 20:07:07\tRunning test SimulStop             (node2)       [  3]
Dec 06 20:07:10\tSkipped
Dec 06 20:08:07\tRunning test Standby               (node1)       [  4]
Dec 06 20:08:30\tBadNews: Dec 06 20:08:29 node1 pacemaker-controld[1]: error: oops
Dec 06 20:09:07\tStopping Cluster Manager on all nodes
Dec 06 20:09:27\t<<<<<<<<<<<<<<<< TESTS COMPLETED
";

    #[test]
    fn the_log_gives_each_test_its_window_and_what_cts_said_of_it() {
        let run = parse_log(LOG, T).unwrap();
        assert_eq!(run.seed.as_deref(), Some("1"));
        assert_eq!(run.start_unix_ms, Some(T));
        assert_eq!(run.end_unix_ms, Some(T + 320_000));
        assert_eq!(run.teardown_unix_ms, Some(T + 300_000));
        assert!(run.completed);
        let names: Vec<_> = run
            .tests
            .iter()
            .map(|t| {
                (
                    t.name.as_str(),
                    t.node.as_str(),
                    t.count,
                    t.passed(),
                    t.skipped,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("Flip", "node1", 1, true, false),
                ("ResourceRecover", "node2", 2, false, false),
                ("SimulStop", "node2", 3, true, true),
                ("Standby", "node1", 4, false, false),
            ],
            "a debug line quoting a pattern is no test"
        );
        assert_eq!(run.tests[0].start_unix_ms, T + 60_000);
        assert!(run.tests[1].complaints[0].contains("not detected"));
    }

    #[test]
    fn a_stamp_takes_the_year_nearest_the_run_across_new_year() {
        let new_year_2027 = 1_798_761_600_000;
        assert_eq!(
            stamp_ms("Dec 31 23:59:59", new_year_2027 + 5_000),
            Some(new_year_2027 - 1_000)
        );
        assert_eq!(
            stamp_ms("Jan 01 00:00:01", new_year_2027 - 5_000),
            Some(new_year_2027 + 1_000)
        );
        assert_eq!(stamp_ms("Foo 01 00:00:01", T), None);
    }

    #[test]
    fn a_log_without_tests_is_refused() {
        assert_eq!(
            parse_log("Dec 06 20:04:07\tRandom Seed: 1\n", T),
            Err(CtsError::NoTests)
        );
    }

    fn smtp(t_ms: u64, ok: bool, id: &str) -> Record {
        Record {
            t_ms,
            event: Event::Smtp {
                id: id.to_string(),
                outcome: if ok {
                    SmtpOutcome::Ok
                } else {
                    SmtpOutcome::Refused
                },
            },
        }
    }

    fn imap(t_ms: u64, ids: &[&str], final_read: bool) -> Record {
        Record {
            t_ms,
            event: Event::Imap {
                outcome: ImapOutcome::Ok,
                ids: ids.iter().map(|s| s.to_string()).collect(),
                final_read,
            },
        }
    }

    fn stack(t_ms: u64, node: &str, up: bool) -> Record {
        Record {
            t_ms,
            event: Event::Stack {
                node: node.to_string(),
                up,
            },
        }
    }

    /// The history's zero 1 s before CTS's first line; mail every second
    /// from 0 to 310 s but where `down` says; both nodes' Pacemaker down
    /// where `stopped` says.
    fn history(down: &[(u64, u64)], stopped: &[(u64, u64)], lose: Option<&str>) -> History {
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for s in 0..310u64 {
            let t = s * 1000;
            let ok = !down.iter().any(|(a, b)| t >= *a && t < *b);
            let id = format!("m{s}");
            records.push(smtp(t, ok, &id));
            records.push(imap(t + 500, &[], false));
            if ok && Some(id.as_str()) != lose {
                ids.push(id);
            }
        }
        for (a, b) in stopped {
            records.push(stack(*a, "node2", false));
            records.push(stack(*a + 200, "node1", false));
            records.push(stack(*b, "node1", true));
            records.push(stack(*b + 300, "node2", true));
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        records.push(imap(320_000, &refs, true));
        History { records, torn: 0 }
    }

    fn passing_log() -> CtsRun {
        let log = LOG
            .replace("FAILED: Recovery of svc-postfix not detected", "x")
            .replace("BadNews: ", "");
        parse_log(&log, T).unwrap()
    }

    #[test]
    fn cts_passing_while_the_mail_was_down_too_long_is_not_a_pass() {
        let run = passing_log();
        let t0 = T - 1000;
        // The set-up restarts the cluster: down 30 s, no node ran
        // Pacemaker. Flip (a planned move, the other node up) down 25 s:
        // over switchover's 10 s. SimulStop down 40 s, the cluster stopped.
        let h = history(
            &[(5_000, 35_000), (70_000, 95_000), (190_000, 230_000)],
            &[(6_000, 33_000), (191_000, 228_000)],
            None,
        );
        let v = judge(&run, &h, t0, &[]);
        assert_eq!(v.cts_failed, 0);
        assert!(!v.ok);
        assert_eq!(v.over_bound, ["Flip [1]"]);
        let flip = &v.windows[1];
        assert_eq!((flip.smtp_ms, flip.bound_ms), (Some(26_000), Some(10_000)));
        let (setup, simulstop) = (&v.windows[0], &v.windows[3]);
        assert!(setup.within && simulstop.within, "{v:#?}");
        assert_eq!(simulstop.expect, Expect::ClusterStopped);
        assert_eq!(simulstop.cluster_stopped, Some((191_200, Some(228_000))));
        assert_eq!(v.windows.last().unwrap().test, "tear-down");
        assert!(v.mail.lost.is_empty());
        assert!(summary(&v).contains("OVER 10 s"), "{}", summary(&v));
    }

    #[test]
    fn a_cluster_stopped_is_read_from_what_happened_not_from_the_test_s_name() {
        let run = passing_log();
        let t0 = T - 1000;
        // Flip took the last node running Pacemaker down: no move was
        // possible, the 25 s are by design. SimulStop's 40 s with a node
        // up all along (one stack stopped at a time) are a move's, over.
        let h = history(
            &[(70_000, 95_000), (190_000, 230_000)],
            &[(71_000, 93_000)],
            None,
        );
        let v = judge(&run, &h, t0, &[]);
        assert_eq!(v.windows[1].expect, Expect::ClusterStopped);
        assert!(v.windows[1].within);
        assert_eq!(v.windows[3].expect, Expect::Like(FaultKind::Switchover));
        assert_eq!(v.over_bound, ["SimulStop [3]"]);
    }

    #[test]
    fn all_passed_and_the_mail_within_bounds_is_ok_and_a_lost_message_is_not() {
        let run = passing_log();
        let t0 = T - 1000;
        let stopped = [(6_000, 33_000), (191_000, 228_000)];
        let h = history(
            &[(5_000, 35_000), (70_000, 74_000), (190_000, 230_000)],
            &stopped,
            None,
        );
        let v = judge(&run, &h, t0, &[]);
        assert!(v.ok, "{}", summary(&v));
        let h = history(&[(70_000, 74_000)], &[], Some("m100"));
        let v = judge(&run, &h, t0, &[]);
        assert!(!v.ok);
        assert_eq!(v.mail.lost, ["m100"]);
    }

    #[test]
    fn a_cts_failure_fails_the_run_even_with_the_mail_fine() {
        let run = parse_log(LOG, T).unwrap();
        let v = judge(&run, &history(&[], &[], None), T - 1000, &[]);
        assert_eq!(v.cts_failed, 2);
        assert!(!v.ok);
        assert!(v.over_bound.is_empty());
    }

    #[test]
    fn an_audit_failed_at_the_tear_down_is_the_tear_down_s_not_the_last_test_s() {
        let log = LOG.replace(
            "Dec 06 20:09:27\t<<<",
            "Dec 06 20:09:20\tAudit FileAudit FAILED.\nDec 06 20:09:27\t<<<",
        );
        let run = parse_log(&log, T).unwrap();
        assert_eq!(run.teardown_complaints, ["Audit FileAudit FAILED."]);
        assert_eq!(run.tests[3].complaints.len(), 1, "Standby's BadNews only");
        let v = judge(&run, &history(&[], &[], None), T - 1000, &[]);
        assert_eq!(v.cts_failed, 3);
        assert!(!v.windows.last().unwrap().cts_passed);
    }

    #[test]
    fn a_cluster_stopped_by_the_test_must_still_bring_the_mail_back() {
        let run = parse_log(LOG, T).unwrap();
        // Down from SimulStop (180 s) to the end of the history, the
        // cluster stopped all along.
        let h = history(&[(190_000, 400_000)], &[(191_000, 400_000)], None);
        let v = judge(&run, &h, T - 1000, &[]);
        assert!(v.over_bound.iter().any(|w| w == "SimulStop [3]"), "{v:#?}");
        assert!(summary(&v).contains("NEVER came BACK"), "{}", summary(&v));
    }

    /// CTS's log of a run whose last test is ComponentFail (from 20:08:07,
    /// the tear-down from 20:09:07), then a FileAudit failure at the
    /// tear-down with the warnings given.
    fn component_fail_log(warnings: &[&str]) -> CtsRun {
        let mut audit = String::new();
        for w in warnings {
            audit.push_str(&format!("Dec 06 20:09:20\tWarning: {w}\n"));
        }
        let log = passing_log_text()
            .replace(
                "Running test Standby               (node1)",
                "Running test ComponentFail         (node2)",
            )
            .replace(
                "Dec 06 20:09:27\t<<<",
                &format!("{audit}Dec 06 20:09:20\tAudit FileAudit FAILED.\nDec 06 20:09:27\t<<<"),
            );
        parse_log(&log, T).unwrap()
    }

    fn passing_log_text() -> String {
        LOG.replace("FAILED: Recovery of svc-postfix not detected", "x")
            .replace("BadNews: ", "")
    }

    /// node2's pacemakerd: the scheduler (pid 89388) killed at 20:08:40,
    /// during ComponentFail, as CTS's `killall -9` does.
    const NODE2_JOURNAL: &str = "\
2026-12-06T20:08:39+0000 node2 pacemaker-schedulerd[89388]:  notice: Starting Pacemaker scheduler
2026-12-06T20:08:40+0000 node2 pacemakerd[89379]:  warning: pacemaker-schedulerd[89388] terminated with signal 9 (Killed)
2026-12-06T20:08:40+0000 node2 pacemakerd[89379]:  error: pacemaker-controld[89389] exited with status 1 (Error occurred)
2026-12-06T21:08:41+0100 node2 pacemakerd[89379]:  warning: pacemaker-attrd[4242] terminated with signal 9 (Killed)
2026-12-06T20:08:41+0000 node2 mailha[1]: warning: x[5] terminated with signal 9 (Killed)
";

    #[test]
    fn the_journal_names_each_daemon_pacemakerd_saw_killed() {
        let kills = sigkills(NODE2_JOURNAL);
        let seen: Vec<_> = kills
            .iter()
            .map(|k| (k.node.as_str(), k.daemon.as_str(), k.pid, k.unix_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("node2", "pacemaker-schedulerd", 89388, T + 273_000),
                ("node2", "pacemaker-attrd", 4242, T + 274_000),
            ],
            "an exit with a status is no kill, an offset is honoured, and only pacemakerd's word counts"
        );
    }

    const STALE_SCHEDULER: &str = "Stale IPC file on node2: drwxrwx--- 2 hacluster haclient  40 Dec  6 20:08 qb-89388-89389-7-fBetdQ";

    #[test]
    fn a_stale_ipc_dir_of_a_daemon_component_fail_killed_is_cts_s_own_doing() {
        let run = component_fail_log(&[STALE_SCHEDULER]);
        let v = judge(
            &run,
            &history(&[], &[], None),
            T - 1000,
            &sigkills(NODE2_JOURNAL),
        );
        assert_eq!(v.cts_failed, 0, "{}", summary(&v));
        assert!(v.ok, "{}", summary(&v));
        assert_eq!(v.excused.len(), 1);
        assert_eq!(v.excused[0].window, "tear-down");
        assert!(
            v.excused[0].why[0]
                .contains("pacemaker-schedulerd[89388], killed with SIGKILL by ComponentFail [4]"),
            "{:?}",
            v.excused
        );
        assert!(
            summary(&v).contains("excused in tear-down"),
            "{}",
            summary(&v)
        );
    }

    #[test]
    fn the_excuse_holds_in_the_test_whose_audit_found_the_directory() {
        // ComponentFail [3] killed the scheduler at 20:07:40; the audit
        // after Standby [4], which stopped node2, found its directory
        // (seen in the 3-round run: FileAudit after the next Flip).
        let log = passing_log_text()
            .replace(
                "Running test SimulStop             (node2)",
                "Running test ComponentFail         (node2)",
            )
            .replace("Dec 06 20:07:10\tSkipped\n", "")
            .replace(
                "Dec 06 20:09:07\tStopping",
                &format!(
                    "Dec 06 20:08:50\tWarning: {STALE_SCHEDULER}\nDec 06 20:08:50\tAudit FileAudit FAILED.\nDec 06 20:09:07\tStopping"
                ),
            );
        let run = parse_log(&log, T).unwrap();
        assert_eq!(run.tests[3].complaints, ["Audit FileAudit FAILED."]);
        let journal = NODE2_JOURNAL.replace("20:08:40", "20:07:40");
        let v = judge(
            &run,
            &history(&[], &[], None),
            T - 1000,
            &sigkills(&journal),
        );
        assert_eq!(
            (v.ok, v.cts_failed, v.cts_passed),
            (true, 0, 4),
            "{}",
            summary(&v)
        );
        assert_eq!(v.excused[0].window, "Standby [4]");
        // The same audit with the kill in Standby's own window: no excuse.
        let v = judge(
            &run,
            &history(&[], &[], None),
            T - 1000,
            &sigkills(NODE2_JOURNAL),
        );
        assert_eq!((v.ok, v.cts_failed), (false, 1));
    }

    #[test]
    fn a_file_audit_failure_cts_did_not_cause_still_fails_the_run() {
        let kills = sigkills(NODE2_JOURNAL);
        let judged = |warnings: &[&str], kills: &[Kill]| {
            let v = judge(
                &component_fail_log(warnings),
                &history(&[], &[], None),
                T - 1000,
                kills,
            );
            (v.ok, v.cts_failed, v.excused.len())
        };
        // No journal: nothing says the scheduler was killed.
        assert_eq!(judged(&[STALE_SCHEDULER], &[]), (false, 1, 0));
        // A directory whose server nobody killed.
        let other = STALE_SCHEDULER.replace("qb-89388", "qb-777");
        assert_eq!(judged(&[&other], &kills), (false, 1, 0));
        // The killed scheduler's, but a core file beside it.
        let core = "Pacemaker core file on node2: -rw------- 1 root root 1 core.89388";
        assert_eq!(judged(&[STALE_SCHEDULER, core], &kills), (false, 1, 0));
        // A FileAudit failure with no warning at all.
        assert_eq!(judged(&[], &kills), (false, 1, 0));
        // The same kill in a test that is not ComponentFail (Standby):
        // nothing of CTS's made it, so nothing excuses it.
        let log = passing_log_text().replace(
            "Dec 06 20:09:27\t<<<",
            &format!(
                "Dec 06 20:09:20\tWarning: {STALE_SCHEDULER}\nDec 06 20:09:20\tAudit FileAudit FAILED.\nDec 06 20:09:27\t<<<"
            ),
        );
        let v = judge(
            &parse_log(&log, T).unwrap(),
            &history(&[], &[], None),
            T - 1000,
            &kills,
        );
        assert_eq!((v.ok, v.cts_failed, v.excused.len()), (false, 1, 0));
    }
}
