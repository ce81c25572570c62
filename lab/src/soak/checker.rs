//! The soak's verdict, from the recorded history alone (and the schedule
//! that names each fault's kind), on the model of Jepsen's set-full
//! checker: the mailbox is a set the clients add to (SMTP) and read
//! (IMAP); every add the server acknowledged must be in the final read,
//! once; an add whose outcome is unknown may be there or not, never
//! counted as lost.
//!
//! Beyond the set: the data never mounted on both nodes at once, each
//! fault's outage (SMTP and IMAP apart) within its kind's bound, and no
//! fence that no fault explains.

use super::history::{Event, History, ImapOutcome, Phase, SmtpOutcome};
use super::schedule::{FaultKind, Schedule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The longest outage a fault of one kind may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub smtp_ms: u64,
    pub imap_ms: u64,
}

/// Per fault kind (the drills' bounds; a table the caller owns).
pub type Bounds = BTreeMap<FaultKind, Bound>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOptions {
    pub bounds: Bounds,
    /// A fault's window is extended by this much when looking for its
    /// last failure: the outage it causes often ends after it is healed.
    pub outage_tail_ms: u64,
    /// A fence this long after a fault's end is still that fault's.
    pub fence_grace_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Everything below clean.
    pub ok: bool,
    /// The mail as the final read found it (flattened: the verdict's
    /// JSON keeps these fields at its top level).
    #[serde(flatten)]
    pub mail: SetResult,
    pub double_mounts: Vec<DoubleMount>,
    pub outages: Vec<Outage>,
    /// Steps whose outage exceeded its bound (or never ended).
    pub over_bound: Vec<usize>,
    pub spurious_fences: Vec<Fence>,
    /// The history's torn last line (a crash of the runner), skipped.
    pub torn: usize,
}

/// A stretch of sample times at which both nodes' latest samples said
/// mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleMount {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// One fault's effect on the clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub step: usize,
    pub kind: FaultKind,
    pub start_ms: u64,
    /// None: never healed within the history.
    pub end_ms: Option<u64>,
    /// From the fault's start to the first success after its last
    /// failure; 0 without failure; None when no success followed.
    pub smtp_ms: Option<u64>,
    pub imap_ms: Option<u64>,
    pub bound: Bound,
    pub within: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub t_ms: u64,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("the history names fault step {0}, which the schedule does not have")]
    UnknownStep(usize),
    #[error("the history ends fault step {0}, which it never started")]
    EndWithoutStart(usize),
    #[error("no outage bound for {}", .0.name())]
    NoBound(FaultKind),
}

pub fn check(
    history: &History,
    schedule: &Schedule,
    opts: &CheckOptions,
) -> Result<Verdict, CheckError> {
    let set = set_result(history);
    let windows = fault_windows(history, schedule)?;
    let outages = windows
        .iter()
        .map(|w| outage(history, w, &windows, opts))
        .collect::<Result<Vec<_>, _>>()?;
    let over_bound: Vec<usize> = outages
        .iter()
        .filter(|o| !o.within)
        .map(|o| o.step)
        .collect();
    let double_mounts = double_mounts(history);
    let spurious_fences = spurious_fences(history, &windows, opts.fence_grace_ms);
    let ok = set.clean()
        && double_mounts.is_empty()
        && over_bound.is_empty()
        && spurious_fences.is_empty();
    Ok(Verdict {
        ok,
        mail: set,
        double_mounts,
        outages,
        over_bound,
        spurious_fences,
        torn: history.torn,
    })
}

/// What the final read says of every message the client sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetResult {
    /// A successful final read was recorded (without one, nothing can be
    /// said of lost or duplicates, and the verdict is not ok).
    pub final_read: bool,
    /// Messages answered 250.
    pub acknowledged: usize,
    /// Acknowledged, absent from the final read.
    pub lost: Vec<String>,
    /// Not acknowledged (an unknown outcome, or not even submitted), yet
    /// seen by an earlier read and absent from the final one: once a
    /// reader saw it, it was committed, and losing it is a loss too (as
    /// set-full counts it).
    pub vanished: Vec<String>,
    /// Seen more than once in the final read.
    pub duplicates: Vec<String>,
    /// In the final read, yet never submitted or refused: the server
    /// delivered what it said it did not take.
    pub unexpected: Vec<String>,
    /// Submissions whose connection died after DATA.
    pub unknown: usize,
    /// Of those, the ones the final read has (never a fault either way).
    pub recovered: Vec<String>,
    pub refused: usize,
}

impl SetResult {
    /// Read in full, and nothing lost, vanished, duplicated or unexpected.
    pub fn clean(&self) -> bool {
        self.final_read
            && self.lost.is_empty()
            && self.vanished.is_empty()
            && self.duplicates.is_empty()
            && self.unexpected.is_empty()
    }
}

/// The best outcome each id got: a message acknowledged once is
/// acknowledged, whatever else its id met.
fn submissions(history: &History) -> BTreeMap<&str, SmtpOutcome> {
    let rank = |o: SmtpOutcome| match o {
        SmtpOutcome::Ok => 2,
        SmtpOutcome::Unknown => 1,
        SmtpOutcome::Refused => 0,
    };
    let mut out: BTreeMap<&str, SmtpOutcome> = BTreeMap::new();
    for r in &history.records {
        if let Event::Smtp { id, outcome } = &r.event {
            let e = out.entry(id.as_str()).or_insert(*outcome);
            if rank(*outcome) > rank(*e) {
                *e = *outcome;
            }
        }
    }
    out
}

/// The last successful read marked final, with its position in the
/// history.
fn final_read(history: &History) -> Option<(usize, &[String])> {
    history
        .records
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, r)| match &r.event {
            Event::Imap {
                outcome: ImapOutcome::Ok,
                ids,
                final_read: true,
            } => Some((i, ids.as_slice())),
            _ => None,
        })
}

/// Every id a successful read saw before the final one.
fn read_before(history: &History, end: usize) -> BTreeSet<&str> {
    history.records[..end]
        .iter()
        .filter_map(|r| match &r.event {
            Event::Imap {
                outcome: ImapOutcome::Ok,
                ids,
                ..
            } => Some(ids.iter().map(String::as_str)),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn set_result(history: &History) -> SetResult {
    let subs = submissions(history);
    let with = |o: SmtpOutcome| {
        subs.iter()
            .filter(move |(_, x)| **x == o)
            .map(|(id, _)| *id)
    };
    let strings = |ids: Vec<&str>| ids.into_iter().map(str::to_string).collect::<Vec<_>>();
    let mut set = SetResult {
        final_read: false,
        acknowledged: with(SmtpOutcome::Ok).count(),
        lost: Vec::new(),
        vanished: Vec::new(),
        duplicates: Vec::new(),
        unexpected: Vec::new(),
        unknown: with(SmtpOutcome::Unknown).count(),
        recovered: Vec::new(),
        refused: with(SmtpOutcome::Refused).count(),
    };
    let Some((at, read)) = final_read(history) else {
        return set;
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for id in read {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let acknowledged = |id: &&str| subs.get(id) == Some(&SmtpOutcome::Ok);
    set.final_read = true;
    set.lost = strings(
        with(SmtpOutcome::Ok)
            .filter(|id| !seen.contains_key(id))
            .collect(),
    );
    set.vanished = strings(
        read_before(history, at)
            .into_iter()
            .filter(|id| !seen.contains_key(id) && !acknowledged(id))
            .collect(),
    );
    set.duplicates = strings(
        seen.iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| *id)
            .collect(),
    );
    set.unexpected = strings(
        seen.keys()
            .filter(|id| matches!(subs.get(*id), None | Some(SmtpOutcome::Refused)))
            .copied()
            .collect(),
    );
    set.recovered = strings(
        with(SmtpOutcome::Unknown)
            .filter(|id| seen.contains_key(id))
            .collect(),
    );
    set
}

/// A fault as it happened: from its start event to its end event.
#[derive(Debug, Clone)]
struct Window {
    step: usize,
    kind: FaultKind,
    start_ms: u64,
    end_ms: Option<u64>,
}

fn fault_windows(history: &History, schedule: &Schedule) -> Result<Vec<Window>, CheckError> {
    let mut windows: Vec<Window> = Vec::new();
    for r in &history.records {
        let Event::Fault { step, phase } = &r.event else {
            continue;
        };
        let kind = schedule
            .steps
            .get(*step)
            .map(|s| s.fault.kind())
            .ok_or(CheckError::UnknownStep(*step))?;
        match phase {
            Phase::Start => windows.push(Window {
                step: *step,
                kind,
                start_ms: r.t_ms,
                end_ms: None,
            }),
            Phase::End => {
                let open = windows
                    .iter_mut()
                    .rev()
                    .find(|w| w.step == *step && w.end_ms.is_none())
                    .ok_or(CheckError::EndWithoutStart(*step))?;
                open.end_ms = Some(r.t_ms);
            }
        }
    }
    Ok(windows)
}

/// (time, success) of one channel's attempts, in time order.
pub fn attempts(history: &History, smtp: bool) -> Vec<(u64, bool)> {
    let mut out: Vec<(u64, bool)> = history
        .records
        .iter()
        .filter_map(|r| match (&r.event, smtp) {
            (Event::Smtp { outcome, .. }, true) => Some((r.t_ms, *outcome == SmtpOutcome::Ok)),
            (Event::Imap { outcome, .. }, false) => Some((r.t_ms, *outcome == ImapOutcome::Ok)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(t, _)| *t);
    out
}

/// The longest stretch of failures in `[start, until]`, each from the
/// last success before it (or `start`) to the first success after it: 0
/// when nothing failed there, None when one never ended. Two separate
/// outages in one window (a switchover's, then a node's death during it)
/// are two, not one from the first's start to the second's end. Two
/// overlapping faults each count the failures in their own window: the
/// client cannot tell which one caused them.
pub fn outage_ms(attempts: &[(u64, bool)], start: u64, until: u64) -> Option<u64> {
    let (mut worst, mut from, mut failing) = (0, start, false);
    for &(t, ok) in attempts.iter().filter(|(t, _)| *t >= start) {
        if t > until && !failing {
            break;
        }
        if ok {
            if failing {
                worst = worst.max(t - from);
                failing = false;
            }
            from = t;
        } else if t <= until {
            failing = true;
        }
    }
    (!failing).then_some(worst)
}

/// When the next fault that starts after `w` has ended begins: `w`'s
/// tail stops there, so the next fault's outage is not also counted as
/// the tail of `w`'s (in the first lab soak a killed MariaDB's 2 s showed
/// as 34 s: the storage loss 11 s after its heal fell in its tail).
fn next_start(windows: &[Window], w: &Window) -> Option<u64> {
    let end = w.end_ms?;
    windows
        .iter()
        .filter(|o| o.step != w.step && o.start_ms >= end)
        .map(|o| o.start_ms)
        .min()
}

/// The client cannot tell which of two overlapping faults caused a
/// failure, so a fault's outage is judged against the most lenient bound
/// of the faults active in its window (itself included): a killed daemon
/// during a frozen node is allowed the frozen node's time (a lab soak's
/// killed MariaDB showed 13.7 s against its 10 s: a node froze 5 s after
/// the kill).
fn outage(
    history: &History,
    w: &Window,
    windows: &[Window],
    opts: &CheckOptions,
) -> Result<Outage, CheckError> {
    let until = w.end_ms.map_or(u64::MAX, |e| {
        let tail = e.saturating_add(opts.outage_tail_ms);
        next_start(windows, w).map_or(tail, |n| tail.min(n).max(e))
    });
    let mut bound = Bound {
        smtp_ms: 0,
        imap_ms: 0,
    };
    for o in windows.iter().filter(|o| {
        o.start_ms <= until
            && o.end_ms
                .is_none_or(|e| e.saturating_add(opts.outage_tail_ms) >= w.start_ms)
    }) {
        let b = opts
            .bounds
            .get(&o.kind)
            .ok_or(CheckError::NoBound(o.kind))?;
        bound.smtp_ms = bound.smtp_ms.max(b.smtp_ms);
        bound.imap_ms = bound.imap_ms.max(b.imap_ms);
    }
    let smtp_ms = outage_ms(&attempts(history, true), w.start_ms, until);
    let imap_ms = outage_ms(&attempts(history, false), w.start_ms, until);
    let within =
        smtp_ms.is_some_and(|o| o <= bound.smtp_ms) && imap_ms.is_some_and(|o| o <= bound.imap_ms);
    Ok(Outage {
        step: w.step,
        kind: w.kind,
        start_ms: w.start_ms,
        end_ms: w.end_ms,
        smtp_ms,
        imap_ms,
        bound,
        within,
    })
}

/// At every sample time t, each node's latest sample at or before t;
/// both mounted is a double mount. Samples taken at the same t all count
/// before t is judged, so the order of lines within one instant does not
/// matter.
pub fn double_mounts(history: &History) -> Vec<DoubleMount> {
    let mut samples: Vec<(u64, &str, bool)> = history
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Mount { node, mounted } => Some((r.t_ms, node.as_str(), *mounted)),
            _ => None,
        })
        .collect();
    samples.sort_by_key(|(t, _, _)| *t);
    let mut latest: BTreeMap<&str, bool> = BTreeMap::new();
    let mut out: Vec<DoubleMount> = Vec::new();
    let mut open: Option<DoubleMount> = None;
    let mut i = 0;
    while i < samples.len() {
        let t = samples[i].0;
        while i < samples.len() && samples[i].0 == t {
            latest.insert(samples[i].1, samples[i].2);
            i += 1;
        }
        let both = latest.values().filter(|m| **m).count() >= 2;
        match (&mut open, both) {
            (Some(d), true) => d.to_ms = t,
            (None, true) => {
                open = Some(DoubleMount {
                    from_ms: t,
                    to_ms: t,
                })
            }
            (Some(_), false) => out.extend(open.take()),
            (None, false) => {}
        }
    }
    out.extend(open);
    out
}

/// Fences at a time no fault window (extended by the grace) covers.
fn spurious_fences(history: &History, windows: &[Window], grace_ms: u64) -> Vec<Fence> {
    let explained = |t: u64| {
        windows
            .iter()
            .any(|w| t >= w.start_ms && w.end_ms.is_none_or(|e| t <= e.saturating_add(grace_ms)))
    };
    history
        .records
        .iter()
        .filter_map(|r| match &r.event {
            Event::Fence { target } if !explained(r.t_ms) => Some(Fence {
                t_ms: r.t_ms,
                target: target.clone(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::history::Record;
    use crate::soak::schedule::{self, Fault, Options, Step};
    use proptest::prelude::*;

    /// A history written as the scenario reads.
    #[derive(Default)]
    struct Story(Vec<Record>);

    impl Story {
        fn at(mut self, t_ms: u64, event: Event) -> Self {
            self.0.push(Record { t_ms, event });
            self
        }
        fn smtp(self, t: u64, id: &str, outcome: SmtpOutcome) -> Self {
            let id = id.to_string();
            self.at(t, Event::Smtp { id, outcome })
        }
        fn sent(self, t: u64, id: &str) -> Self {
            self.smtp(t, id, SmtpOutcome::Ok)
        }
        fn imap(self, t: u64, ok: bool) -> Self {
            let outcome = if ok {
                ImapOutcome::Ok
            } else {
                ImapOutcome::Fail
            };
            self.at(
                t,
                Event::Imap {
                    outcome,
                    ids: Vec::new(),
                    final_read: false,
                },
            )
        }
        fn final_read(self, t: u64, ids: &[&str]) -> Self {
            let ids = ids.iter().map(|s| s.to_string()).collect();
            self.at(
                t,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids,
                    final_read: true,
                },
            )
        }
        fn mount(self, t: u64, node: &str, mounted: bool) -> Self {
            let node = node.to_string();
            self.at(t, Event::Mount { node, mounted })
        }
        fn fault(self, t: u64, step: usize, phase: Phase) -> Self {
            self.at(t, Event::Fault { step, phase })
        }
        fn fence(self, t: u64, target: &str) -> Self {
            let target = target.to_string();
            self.at(t, Event::Fence { target })
        }
        fn verdict(self) -> Verdict {
            self.verdict_with(&options())
        }
        fn verdict_with(self, opts: &CheckOptions) -> Verdict {
            let h = History {
                records: self.0,
                torn: 0,
            };
            check(&h, &two_steps(), opts).unwrap()
        }
    }

    /// Step 0 kills node1 at 30 s for 20 s, step 1 kills postfix at
    /// 120 s.
    fn two_steps() -> Schedule {
        let step = |index, start_ms, duration_ms, fault| Step {
            index,
            start_ms,
            duration_ms,
            fault,
        };
        Schedule {
            format: schedule::FORMAT,
            options: Options {
                duration_ms: 600_000,
                seed: 0,
                faults: FaultKind::defaults(false),
                services: vec!["postfix".into()],
                nodes: ["node1".into(), "node2".into()],
                nfs: false,
            },
            steps: vec![
                step(
                    0,
                    30_000,
                    20_000,
                    Fault::KillNode {
                        node: "node1".into(),
                    },
                ),
                step(
                    1,
                    120_000,
                    10_000,
                    Fault::KillDaemon {
                        service: "postfix".into(),
                    },
                ),
            ],
        }
    }

    fn options() -> CheckOptions {
        CheckOptions {
            bounds: FaultKind::ALL
                .into_iter()
                .map(|k| {
                    let b = Bound {
                        smtp_ms: 30_000,
                        imap_ms: 30_000,
                    };
                    (k, b)
                })
                .collect(),
            outage_tail_ms: 60_000,
            fence_grace_ms: 30_000,
        }
    }

    #[test]
    fn a_fault_s_tail_ends_where_the_next_fault_begins() {
        // The first lab soak: a killed daemon cost 2 s, then a storage
        // loss began within its tail; the storage loss's outage must not
        // be counted as the daemon's too.
        let long_tail = CheckOptions {
            outage_tail_ms: 100_000,
            ..options()
        };
        let v = Story::default()
            .sent(29_000, "m0")
            .fault(30_000, 0, Phase::Start)
            .smtp(31_000, "r1", SmtpOutcome::Refused)
            .sent(34_000, "m1")
            .fault(50_000, 0, Phase::End)
            .fault(120_000, 1, Phase::Start)
            .smtp(121_000, "r2", SmtpOutcome::Refused)
            .sent(125_000, "m2")
            .fault(130_000, 1, Phase::End)
            .final_read(200_000, &["m0", "m1", "m2"])
            .verdict_with(&long_tail);
        assert_eq!(v.outages[0].smtp_ms, Some(4_000), "{v:?}");
        assert_eq!(v.outages[1].smtp_ms, Some(5_000), "{v:?}");
    }

    #[test]
    fn a_clean_run_is_ok() {
        let v = Story::default()
            .sent(1_000, "m1")
            .sent(2_000, "m2")
            .imap(3_000, true)
            .final_read(9_000, &["m2", "m1"])
            .verdict();
        assert!(v.ok, "{v:?}");
        assert_eq!(v.mail.acknowledged, 2);
    }

    #[test]
    fn an_acknowledged_message_missing_from_the_final_read_is_lost() {
        let v = Story::default()
            .sent(1_000, "m1")
            .sent(2_000, "m2")
            .final_read(9_000, &["m1"])
            .verdict();
        assert_eq!(v.mail.lost, ["m2"]);
        assert!(!v.ok);
    }

    #[test]
    fn an_unknown_message_a_reader_saw_and_the_final_read_lacks_has_vanished() {
        // A reader saw it, so the store had it: the outcome the client
        // missed does not excuse losing it later.
        let v = Story::default()
            .smtp(1_000, "m1", SmtpOutcome::Unknown)
            .at(
                2_000,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids: vec!["m1".into()],
                    final_read: false,
                },
            )
            .final_read(9_000, &[])
            .verdict();
        assert_eq!(v.mail.vanished, ["m1"]);
        assert!(v.mail.lost.is_empty());
        assert!(!v.ok);
    }

    #[test]
    fn a_message_read_twice_is_a_duplicate() {
        let v = Story::default()
            .sent(1_000, "m1")
            .final_read(9_000, &["m1", "m1"])
            .verdict();
        assert_eq!(v.mail.duplicates, ["m1"]);
        assert!(v.mail.lost.is_empty());
        assert!(!v.ok);
    }

    #[test]
    fn an_unknown_outcome_that_shows_up_is_recovered_not_a_fault() {
        // The server took it and the answer was lost with the
        // connection: the message is there, which is allowed.
        let v = Story::default()
            .smtp(1_000, "m1", SmtpOutcome::Unknown)
            .final_read(9_000, &["m1"])
            .verdict();
        assert_eq!(
            (v.mail.unknown, v.mail.recovered.as_slice()),
            (1, &["m1".to_string()][..])
        );
        assert!(v.mail.unexpected.is_empty());
        assert!(v.ok, "{v:?}");
    }

    #[test]
    fn an_unknown_outcome_that_never_shows_up_is_not_lost() {
        // The connection died before the server took it: nobody was told
        // it was delivered.
        let v = Story::default()
            .smtp(1_000, "m1", SmtpOutcome::Unknown)
            .final_read(9_000, &[])
            .verdict();
        assert_eq!(v.mail.unknown, 1);
        assert!(v.mail.recovered.is_empty() && v.mail.lost.is_empty());
        assert!(v.ok, "{v:?}");
    }

    #[test]
    fn a_refused_message_that_shows_up_was_delivered_behind_the_clients_back() {
        // The client would resend it: a duplicate in the making.
        let v = Story::default()
            .smtp(1_000, "m1", SmtpOutcome::Refused)
            .final_read(9_000, &["m1"])
            .verdict();
        assert_eq!(
            (v.mail.refused, v.mail.unexpected.as_slice()),
            (1, &["m1".to_string()][..])
        );
        assert!(!v.ok);
    }

    #[test]
    fn without_a_final_read_nothing_can_be_proven() {
        let v = Story::default()
            .sent(1_000, "m1")
            .imap(2_000, true)
            .verdict();
        assert!(!v.mail.final_read && !v.ok);
        assert!(v.mail.lost.is_empty());
    }

    #[test]
    fn both_nodes_mounted_at_once_is_caught() {
        let v = Story::default()
            .mount(0, "node1", true)
            .mount(50, "node2", false)
            .mount(100, "node1", true)
            .mount(150, "node2", true)
            .mount(200, "node1", true)
            .mount(250, "node2", true)
            .mount(300, "node1", false)
            .mount(350, "node2", true)
            .final_read(9_000, &[])
            .verdict();
        assert_eq!(
            v.double_mounts,
            [DoubleMount {
                from_ms: 150,
                to_ms: 250
            }]
        );
        assert!(!v.ok);
    }

    #[test]
    fn a_handoff_whose_unmount_precedes_the_peers_mount_is_no_double_mount() {
        // node1 unmounts at 1000 and node2 mounts at 1001, the two
        // samplers out of step: at every sample time the latest samples
        // never both say mounted.
        let v = Story::default()
            .mount(900, "node1", true)
            .mount(950, "node2", false)
            .mount(1_000, "node1", false)
            .mount(1_001, "node2", true)
            .mount(1_100, "node1", false)
            .mount(1_101, "node2", true)
            .final_read(9_000, &[])
            .verdict();
        assert!(v.double_mounts.is_empty(), "{v:?}");
        assert!(v.ok);
    }

    #[test]
    fn samples_at_the_same_instant_are_judged_together() {
        // node2's mount and node1's unmount logged in the same ms, the
        // mount first: the line order alone is no double mount.
        let v = Story::default()
            .mount(0, "node1", true)
            .mount(0, "node2", false)
            .mount(100, "node2", true)
            .mount(100, "node1", false)
            .final_read(9_000, &[])
            .verdict();
        assert!(v.double_mounts.is_empty(), "{v:?}");
    }

    #[test]
    fn the_outage_runs_from_the_faults_start_to_the_first_success_after_its_last_failure() {
        let v = Story::default()
            .sent(29_000, "m1")
            .imap(29_500, true)
            .fault(30_000, 0, Phase::Start)
            .smtp(31_000, "m2", SmtpOutcome::Refused)
            .imap(31_500, false)
            .smtp(34_000, "m3", SmtpOutcome::Unknown)
            .imap(36_000, true)
            .sent(38_000, "m4")
            .fault(50_000, 0, Phase::End)
            .final_read(90_000, &["m1", "m4"])
            .verdict();
        let o = &v.outages[0];
        assert_eq!((o.step, o.kind), (0, FaultKind::KillNode));
        assert_eq!(o.smtp_ms, Some(8_000));
        assert_eq!(o.imap_ms, Some(6_000));
        assert!(o.within && v.ok, "{v:?}");
    }

    #[test]
    fn a_failure_after_the_heal_still_counts_within_the_tail() {
        // The mail comes back after the node does: the heal is not the
        // end of the outage.
        let v = Story::default()
            .fault(30_000, 0, Phase::Start)
            .smtp(31_000, "m1", SmtpOutcome::Refused)
            .fault(50_000, 0, Phase::End)
            .smtp(55_000, "m2", SmtpOutcome::Refused)
            .sent(70_000, "m3")
            .final_read(90_000, &["m3"])
            .verdict();
        assert_eq!(v.outages[0].smtp_ms, Some(40_000));
        assert_eq!(v.over_bound, [0]);
        assert!(!v.ok);
    }

    #[test]
    fn a_fault_nobody_noticed_has_no_outage() {
        let v = Story::default()
            .fault(120_000, 1, Phase::Start)
            .sent(121_000, "m1")
            .imap(121_500, true)
            .fault(130_000, 1, Phase::End)
            .final_read(190_000, &["m1"])
            .verdict();
        assert_eq!(
            (v.outages[0].smtp_ms, v.outages[0].imap_ms),
            (Some(0), Some(0))
        );
        assert!(v.ok);
    }

    #[test]
    fn an_outage_that_never_ends_is_over_its_bound() {
        let v = Story::default()
            .fault(120_000, 1, Phase::Start)
            .imap(121_000, false)
            .fault(130_000, 1, Phase::End)
            .smtp(131_000, "m1", SmtpOutcome::Refused)
            .verdict();
        assert_eq!(v.outages[0].imap_ms, None);
        assert_eq!(v.over_bound, [1]);
    }

    #[test]
    fn two_separate_outages_in_one_window_are_two() {
        // A switchover (3 s down), the mail back for 10 s, then the node
        // it moved to dies (8 s down): the worst is 8 s, not 21 s.
        let attempts = [
            (29_000, true),
            (31_000, false),
            (33_000, true),
            (40_000, true),
            (43_000, true),
            (45_000, false),
            (50_000, false),
            (51_000, true),
        ];
        assert_eq!(outage_ms(&attempts, 30_000, 60_000), Some(8_000));
        // The first stretch counts from the fault, as the drills do.
        assert_eq!(outage_ms(&attempts[..3], 30_000, 60_000), Some(3_000));
        assert_eq!(outage_ms(&attempts[..7], 30_000, 60_000), None);
        assert_eq!(outage_ms(&attempts[..2], 35_000, 60_000), Some(0));
    }

    #[test]
    fn overlapping_faults_are_judged_by_the_most_lenient_bound_among_them() {
        // Step 0 (a dead node) may cost 20 s, step 1 (a killed daemon)
        // 5 s. A 14 s outage in the daemon's window while the node is
        // dead is within; the same outage with the daemon alone is not.
        let mut opts = options();
        let b = |s: u64| Bound {
            smtp_ms: s * 1000,
            imap_ms: s * 1000,
        };
        opts.bounds.insert(FaultKind::KillNode, b(20));
        opts.bounds.insert(FaultKind::KillDaemon, b(5));
        let overlapping = Story::default()
            .fault(30_000, 0, Phase::Start)
            .fault(31_000, 1, Phase::Start)
            .smtp(32_000, "r1", SmtpOutcome::Refused)
            .sent(45_000, "m1")
            .fault(41_000, 1, Phase::End)
            .fault(50_000, 0, Phase::End)
            .final_read(90_000, &["m1"])
            .verdict_with(&opts);
        assert_eq!(overlapping.outages[1].smtp_ms, Some(14_000));
        assert_eq!(overlapping.outages[1].bound, b(20));
        assert!(overlapping.over_bound.is_empty(), "{overlapping:?}");
        let alone = Story::default()
            .fault(31_000, 1, Phase::Start)
            .smtp(32_000, "r1", SmtpOutcome::Refused)
            .sent(45_000, "m1")
            .fault(41_000, 1, Phase::End)
            .final_read(90_000, &["m1"])
            .verdict_with(&opts);
        assert_eq!(alone.outages[0].bound, b(5));
        assert_eq!(alone.over_bound, [1]);
    }

    #[test]
    fn the_bounds_come_from_the_callers_table() {
        let mut opts = options();
        opts.bounds.insert(
            FaultKind::KillNode,
            Bound {
                smtp_ms: 5_000,
                imap_ms: 30_000,
            },
        );
        let v = Story::default()
            .fault(30_000, 0, Phase::Start)
            .smtp(31_000, "m1", SmtpOutcome::Refused)
            .sent(36_000, "m2")
            .fault(50_000, 0, Phase::End)
            .final_read(90_000, &["m2"])
            .verdict_with(&opts);
        assert_eq!(v.over_bound, [0]);
        opts.bounds.remove(&FaultKind::KillNode);
        let h = History {
            records: Story::default().fault(30_000, 0, Phase::Start).0,
            torn: 0,
        };
        assert_eq!(
            check(&h, &two_steps(), &opts),
            Err(CheckError::NoBound(FaultKind::KillNode))
        );
    }

    #[test]
    fn a_fence_no_fault_explains_is_spurious() {
        let v = Story::default()
            .fault(30_000, 0, Phase::Start)
            .fence(32_000, "node1")
            .fault(50_000, 0, Phase::End)
            // Within the grace after the heal: still the fault's.
            .fence(75_000, "node1")
            // Long after, with nothing going on.
            .fence(100_000, "node2")
            .final_read(190_000, &[])
            .verdict();
        assert_eq!(
            v.spurious_fences,
            [Fence {
                t_ms: 100_000,
                target: "node2".into()
            }]
        );
        assert!(!v.ok);
    }

    #[test]
    fn a_history_naming_a_step_the_schedule_lacks_is_refused() {
        let h = History {
            records: Story::default().fault(1, 7, Phase::Start).0,
            torn: 0,
        };
        assert_eq!(
            check(&h, &two_steps(), &options()),
            Err(CheckError::UnknownStep(7))
        );
        let h = History {
            records: Story::default().fault(1, 1, Phase::End).0,
            torn: 0,
        };
        assert_eq!(
            check(&h, &two_steps(), &options()),
            Err(CheckError::EndWithoutStart(1))
        );
    }

    #[test]
    fn the_verdict_is_json() {
        let v = Story::default().final_read(1, &[]).verdict();
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(j["ok"], true);
        assert_eq!(j["lost"], serde_json::json!([]));
    }

    /// A history in which nothing failed: every submission answered 250,
    /// every read fine, the mount handed over cleanly, each fault started
    /// and ended, the final read has each message once in some order.
    fn clean_story(schedule: &Schedule, messages: usize, handoffs: &[u64], rotate: usize) -> Story {
        let mut story = Story::default();
        for s in &schedule.steps {
            story = story.fault(s.start_ms, s.index, Phase::Start).fault(
                s.end_ms(),
                s.index,
                Phase::End,
            );
        }
        let ids: Vec<String> = (0..messages).map(|i| format!("m{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            let t = i as u64 * 7_000;
            // Each reader sees every message sent so far.
            let so_far = ids[..=i].to_vec();
            story = story.sent(t, id).at(
                t + 3_000,
                Event::Imap {
                    outcome: ImapOutcome::Ok,
                    ids: so_far,
                    final_read: false,
                },
            );
        }
        // A handoff takes longer than a sampling period (the unmount,
        // the lease, then the mount), so the old node's unmount is
        // sampled before the new node's mount.
        let mut handoffs = handoffs.to_vec();
        handoffs.sort_unstable();
        let owner = |t: u64| {
            let done = handoffs.iter().filter(|h| **h <= t).count();
            let between = handoffs.iter().any(|h| *h <= t && t < h + 1_000);
            (done % 2, between)
        };
        for tick in 0..(schedule.options.duration_ms / 100) {
            for (n, offset) in [(0usize, 0u64), (1, 50)] {
                let t = tick * 100 + offset;
                let (who, moving) = owner(t);
                story = story.mount(t, ["node1", "node2"][n], who == n && !moving);
            }
        }
        let mut read: Vec<&str> = ids.iter().map(String::as_str).collect();
        let by = rotate.checked_rem(read.len()).unwrap_or(0);
        read.rotate_left(by);
        story.final_read(schedule.options.duration_ms + 1_000, &read)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn a_history_with_no_failures_is_ok(
            seed in any::<u64>(),
            messages in 0usize..150,
            handoffs in proptest::collection::vec(0u64..600_000, 0..12),
            rotate in any::<usize>(),
        ) {
            let mut o = two_steps().options;
            o.seed = seed;
            let schedule = schedule::generate(&o).unwrap();
            let story = clean_story(&schedule, messages, &handoffs, rotate);
            let h = History { records: story.0, torn: 0 };
            let v = check(&h, &schedule, &options()).unwrap();
            prop_assert!(v.ok, "{:?}", v);
            prop_assert_eq!(v.mail.acknowledged, messages);
        }
    }
}
