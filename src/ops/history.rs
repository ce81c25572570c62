//! `mailha history [--since 24h]`: what happened to the mail, as a
//! timeline an operator reads at 3 a.m., from what the nodes already keep:
//! Pacemaker's operation history and failures (crm_mon: the last
//! operations of each resource on each node), its fencing history, and
//! the alert spool's events (this node's record of every alert, kept
//! after delivery). Entries close together (within `GAP`) make one
//! incident with its cause (the first failure, fence or node loss; a
//! planned move has none), its duration and where the mail ran after it.

use crate::alert::event::{Event, Kind as EventKind};
use crate::cib::xml::El;
use std::time::Duration;

/// Entries further apart than this are separate incidents: a failover's
/// steps follow each other within seconds; a slow start (InnoDB recovery)
/// may split one in two, each part with its own cause.
pub const GAP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Failure,
    Fence,
    Node,
    Started,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the epoch.
    pub at_ms: u64,
    pub node: Option<String>,
    pub resource: Option<String>,
    pub kind: Kind,
    pub what: String,
    /// "pacemaker" (crm_mon), "fencing" or "alerts" (the spool).
    pub source: &'static str,
    /// The parts `what` was worded from, so the status page can word it
    /// in another language; not in the JSON.
    #[serde(skip)]
    pub detail: Option<Detail>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detail {
    /// An operation of the entry's resource on its node failed.
    Failed { task: String, result: String },
    /// `by` fenced the entry's node.
    Fenced {
        action: String,
        by: String,
        status: String,
    },
    /// The entry's node changed membership (`member`, `lost`, ...).
    Membership { state: String },
}

/// Pacemaker's text times: `Wed Nov 25 16:03:28 2026` (ctime, the node's
/// local time: converted with the C library's `mktime`, as Pacemaker
/// formatted it) or `2026-11-25 16:03:28[Z]` (UTC).
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(s.trim_end_matches('Z')) {
        return t
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_millis() as u64);
    }
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, mon, day, hms, year] = f[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS.iter().position(|m| *m == mon)? as i32;
    let mut t = hms.split(':').map(|x| x.parse::<i32>().ok());
    let (h, m, sec) = (t.next()??, t.next()??, t.next()??);
    // SAFETY: a zeroed tm is valid input to mktime; all fields set below.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year.parse::<i32>().ok()? - 1900;
    tm.tm_mon = mon;
    tm.tm_mday = day.parse().ok()?;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    tm.tm_isdst = -1;
    // SAFETY: mktime reads and normalises the struct we own.
    let secs = unsafe { nix::libc::mktime(&mut tm) };
    (secs >= 0).then(|| secs as u64 * 1000)
}

/// A daemon's death systemd told at once (`crm_resource --fail`, the
/// operation `asyncmon`), in words.
pub fn told_death(rsc: &str, node: &str) -> String {
    format!("{rsc} ended of itself on {node} (told at once by systemd)")
}

/// Whether a resource is part of the mail's stack (what the timeline and
/// the status page show).
pub fn is_stack(id: &str) -> bool {
    // Fence devices and the clones on both nodes (the network check, the
    // config sync, the alert sender) are not the mail.
    !id.starts_with("fence-")
        && ![
            crate::cib::PING_ID,
            crate::cib::CONFIG_SYNC_ID,
            crate::agents::sender::RSC_ID,
        ]
        .contains(&id)
}

/// The operations crm_mon still shows (`--include=all`): starts and stops
/// of the mail's resources, failed operations, fencing actions.
pub fn from_crm_mon(xml: &str) -> Result<Vec<Entry>, String> {
    let root = El::parse(xml).map_err(|e| format!("crm_mon's answer: {e}"))?;
    let mut out = Vec::new();
    if let Some(h) = root.find("node_history") {
        for node in h.children.iter().filter(|n| n.name == "node") {
            let name = node.get("name").unwrap_or_default();
            for r in node
                .children
                .iter()
                .filter(|r| r.name == "resource_history")
            {
                let id = r.get("id").unwrap_or_default();
                if !is_stack(id) {
                    continue;
                }
                for op in r.children.iter().filter(|o| o.name == "operation_history") {
                    let (task, rc) = (op.get("task").unwrap_or_default(), op.get("rc"));
                    let probe = task == "monitor" && op.get("interval").is_none_or(|i| i == "0ms");
                    let Some(at) = op.get("last-rc-change").and_then(parse_time) else {
                        continue;
                    };
                    let kind = match (task, rc) {
                        ("start", Some("0")) => Kind::Started,
                        ("stop", Some("0")) => Kind::Stopped,
                        // A probe's "not running" is an answer, not a failure.
                        (_, Some("0")) | (_, Some("7")) if probe => continue,
                        (_, Some("0")) => continue,
                        _ => Kind::Failure,
                    };
                    let what = match kind {
                        Kind::Started => format!("{id} started on {name}"),
                        Kind::Stopped => format!("{id} stopped on {name}"),
                        _ if task == crate::status::TOLD_DEATH_TASK => told_death(id, name),
                        _ => format!(
                            "{id} {task} failed on {name}: {}",
                            op.get("rc_text").unwrap_or("?")
                        ),
                    };
                    out.push(Entry {
                        at_ms: at,
                        node: Some(name.to_string()),
                        resource: Some(id.to_string()),
                        kind,
                        what,
                        source: "pacemaker",
                        detail: (kind == Kind::Failure).then(|| Detail::Failed {
                            task: task.to_string(),
                            result: op.get("rc_text").unwrap_or("?").to_string(),
                        }),
                    });
                }
            }
        }
    }
    if let Some(f) = root.find("fence_history") {
        for e in f.children.iter().filter(|e| e.name == "fence_event") {
            let at = e
                .get("completed")
                .or(e.get("completed-date"))
                .and_then(parse_time);
            let Some(at) = at else { continue };
            out.push(Entry {
                at_ms: at,
                node: e.get("target").map(str::to_string),
                resource: None,
                kind: Kind::Fence,
                what: format!(
                    "{} of {} by {}: {}",
                    e.get("action").unwrap_or("fence"),
                    e.get("target").unwrap_or("?"),
                    e.get("delegate").unwrap_or("?"),
                    e.get("status").unwrap_or("?")
                ),
                source: "fencing",
                detail: Some(Detail::Fenced {
                    action: e.get("action").unwrap_or("fence").to_string(),
                    by: e.get("delegate").unwrap_or("?").to_string(),
                    status: e.get("status").unwrap_or("?").to_string(),
                }),
            });
        }
    }
    Ok(out)
}

/// The spool's events: failures (not a probe's "not running"), starts
/// and stops of the mail's resources, node and fencing events.
pub fn from_events(events: &[Event]) -> Vec<Entry> {
    events
        .iter()
        .filter_map(|e| {
            let node = e.node.clone();
            let (kind, what) = match e.kind? {
                EventKind::Node => (
                    Kind::Node,
                    format!(
                        "node {} {}",
                        node.as_deref().unwrap_or("?"),
                        e.desc.as_deref().unwrap_or("changed")
                    ),
                ),
                EventKind::Fencing => (
                    Kind::Fence,
                    e.desc.clone().unwrap_or_else(|| "fencing".into()),
                ),
                // mailha's own agents' notes: the keeper fenced this
                // node, lost the lease, a stop had to escalate.
                k
                @ (EventKind::Fenced | EventKind::LeaseLost | EventKind::StorageStopEscalated) => (
                    if k == EventKind::Fenced {
                        Kind::Fence
                    } else {
                        Kind::Failure
                    },
                    format!(
                        "{}{}",
                        node.as_deref()
                            .map(|n| format!("{n}: "))
                            .unwrap_or_default(),
                        e.desc.as_deref().unwrap_or("?")
                    ),
                ),
                EventKind::Resource => {
                    let rsc = e.rsc.as_deref()?;
                    if !is_stack(rsc) {
                        return None;
                    }
                    let task = e.task.as_deref().unwrap_or("?");
                    let on = node.as_deref().unwrap_or("?");
                    if e.failed() && task == crate::status::TOLD_DEATH_TASK {
                        (Kind::Failure, told_death(rsc, on))
                    } else if e.failed() {
                        (
                            Kind::Failure,
                            format!(
                                "{rsc} {task} failed on {on}: {}",
                                e.desc.as_deref().unwrap_or("?")
                            ),
                        )
                    } else if task == "start" {
                        (Kind::Started, format!("{rsc} started on {on}"))
                    } else if task == "stop" {
                        (Kind::Stopped, format!("{rsc} stopped on {on}"))
                    } else {
                        return None;
                    }
                }
                _ => return None,
            };
            let detail = match (e.kind?, kind) {
                (EventKind::Node, _) => Some(Detail::Membership {
                    state: e.desc.clone().unwrap_or_else(|| "changed".into()),
                }),
                (EventKind::Resource, Kind::Failure) => Some(Detail::Failed {
                    task: e.task.clone().unwrap_or_else(|| "?".into()),
                    result: e.desc.clone().unwrap_or_else(|| "?".into()),
                }),
                _ => None,
            };
            Some(Entry {
                at_ms: e.recorded_at_ms,
                node,
                resource: e.rsc.clone(),
                kind,
                what,
                source: "alerts",
                detail,
            })
        })
        .collect()
}

/// A time as both nodes' logs can be matched against it: UTC, to the
/// second (`2026-11-25 16:03:28`).
pub fn utc(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// Both sources in time order; the same happening seen twice (by crm_mon
/// and by an alert, within 5 s) once, Pacemaker's copy kept.
pub fn merge(mut a: Vec<Entry>, b: Vec<Entry>, since_ms: u64) -> Vec<Entry> {
    for e in b {
        let dup = a.iter().any(|x| {
            x.kind == e.kind
                && x.node == e.node
                && x.resource == e.resource
                && x.at_ms.abs_diff(e.at_ms) <= 5_000
        });
        if !dup {
            a.push(e);
        }
    }
    a.retain(|e| e.at_ms >= since_ms);
    a.sort_by(|x, y| (x.at_ms, &x.what).cmp(&(y.at_ms, &y.what)));
    a
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Incident {
    pub start_ms: u64,
    pub end_ms: u64,
    pub seconds: f64,
    /// The first failure, fence or node event; None: a planned change.
    pub cause: Option<String>,
    /// Where the VIP started last in the incident.
    pub mail_on: Option<String>,
    pub entries: Vec<Entry>,
}

impl Entry {
    /// Whether this entry can be what set an incident off: a failure, a
    /// fence, a node lost. A node joining (`member`: the cluster forming
    /// at boot, a fenced node back) is something that happened, never a
    /// cause: taken for one, a boot chained to a later failover made the
    /// failover begin at the boot.
    pub fn is_cause(&self) -> bool {
        match self.kind {
            Kind::Failure | Kind::Fence => true,
            Kind::Node => !matches!(
                &self.detail,
                Some(Detail::Membership { state }) if state == "member"
            ),
            Kind::Started | Kind::Stopped => false,
        }
    }
}

/// An incident's cause: its first failure, fence or node loss.
pub fn cause(entries: &[Entry]) -> Option<&Entry> {
    entries.iter().find(|e| e.is_cause())
}

/// Entries grouped into incidents: a gap longer than `gap` starts a new
/// one.
pub fn incidents(entries: &[Entry], gap: Duration) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    for e in entries {
        match out.last_mut() {
            Some(i) if e.at_ms.saturating_sub(i.end_ms) <= gap.as_millis() as u64 => {
                i.end_ms = e.at_ms;
                i.entries.push(e.clone());
            }
            _ => out.push(Incident {
                start_ms: e.at_ms,
                end_ms: e.at_ms,
                seconds: 0.0,
                cause: None,
                mail_on: None,
                entries: vec![e.clone()],
            }),
        }
    }
    for i in &mut out {
        i.seconds = (i.end_ms - i.start_ms) as f64 / 1000.0;
        i.cause = cause(&i.entries).map(|e| e.what.clone());
        i.mail_on = i
            .entries
            .iter()
            .rev()
            .find(|e| e.kind == Kind::Started && e.resource.as_deref() == Some(crate::cib::VIP_ID))
            .and_then(|e| e.node.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRM_MON: &str = r#"<pacemaker-result>
<node_history>
  <node name="mail1">
    <resource_history id="vip" orphan="false" migration-threshold="3">
      <operation_history call="10" task="start" rc="0" rc_text="ok" last-rc-change="2026-11-25 16:00:00"/>
      <operation_history call="11" task="monitor" rc="0" rc_text="ok" interval="10000ms" last-rc-change="2026-11-25 16:00:01"/>
      <operation_history call="30" task="stop" rc="0" rc_text="ok" last-rc-change="2026-11-25 16:03:30"/>
    </resource_history>
    <resource_history id="svc-postfix" orphan="false">
      <operation_history call="3" task="monitor" rc="7" rc_text="not running" last-rc-change="2026-11-25 15:59:00"/>
      <operation_history call="29" task="monitor" rc="7" rc_text="not running" interval="2000ms" last-rc-change="2026-11-25 16:03:28"/>
    </resource_history>
    <resource_history id="ping"><operation_history task="start" rc="0" last-rc-change="2026-11-25 16:03:29"/></resource_history>
  </node>
  <node name="mail2">
    <resource_history id="vip"><operation_history call="5" task="start" rc="0" rc_text="ok" last-rc-change="2026-11-25 16:03:33"/></resource_history>
  </node>
</node_history>
<fence_history>
  <fence_event action="reboot" target="mail1" delegate="mail2" status="success" completed="2026-11-25 16:03:31Z"/>
</fence_history>
</pacemaker-result>"#;

    fn ms(s: &str) -> u64 {
        parse_time(s).unwrap()
    }

    #[test]
    fn pacemakers_times_are_read_in_both_forms() {
        assert_eq!(ms("2026-11-25 16:03:28"), 1_795_622_608_000);
        assert_eq!(ms("2026-11-25T16:03:28Z"), 1_795_622_608_000);
        // ctime is local time: it agrees with the C library's own view.
        assert!(parse_time("Wed Nov 25 16:03:28 2026").is_some());
        assert!(parse_time("Wed Nov 99 16:03:28").is_none());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn a_death_systemd_told_reads_as_such_not_as_a_simulated_failure() {
        let xml = r#"<pacemaker-result><node_history><node name="mail1">
    <resource_history id="svc-postfix" orphan="false">
      <operation_history call="-1" task="asyncmon" rc="1" rc_text="error" last-rc-change="2026-11-25 16:03:28"/>
    </resource_history>
  </node></node_history></pacemaker-result>"#;
        let e = from_crm_mon(xml).unwrap();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(
            e[0].what,
            "svc-postfix ended of itself on mail1 (told at once by systemd)"
        );
        assert_eq!(e[0].kind, Kind::Failure);
    }

    #[test]
    fn a_failover_reads_as_one_incident_with_its_cause_and_where_the_mail_went() {
        let e = from_crm_mon(CRM_MON).unwrap();
        let shown: Vec<&str> = e.iter().map(|x| x.what.as_str()).collect();
        assert!(shown.contains(&"vip started on mail1"), "{shown:?}");
        assert!(
            shown.contains(&"svc-postfix monitor failed on mail1: not running"),
            "{shown:?}"
        );
        assert!(!shown.iter().any(|s| s.contains("ping")), "{shown:?}");
        assert!(
            !shown
                .iter()
                .any(|s| s.contains("15:59") || s.contains("call")),
            "a probe's not running is no failure: {shown:?}"
        );
        let failure = e.iter().find(|x| x.kind == Kind::Failure).unwrap();
        assert_eq!(
            failure.detail,
            Some(Detail::Failed {
                task: "monitor".into(),
                result: "not running".into()
            }),
            "the parts, for the status page to word in Chinese"
        );
        let all = merge(e, Vec::new(), 0);
        let inc = incidents(&all, GAP);
        assert_eq!(inc.len(), 2, "{inc:#?}");
        assert_eq!(inc[0].cause, None, "the first start was planned");
        let i = &inc[1];
        assert_eq!(
            i.cause.as_deref(),
            Some("svc-postfix monitor failed on mail1: not running")
        );
        assert_eq!(i.mail_on.as_deref(), Some("mail2"));
        assert_eq!(i.seconds, 5.0);
        assert!(
            i.entries
                .iter()
                .any(|x| x.kind == Kind::Fence && x.what == "reboot of mail1 by mail2: success")
        );
    }

    #[test]
    fn a_node_joining_is_no_cause_its_loss_is() {
        let node = |s: &str, state: &str| -> Event {
            serde_json::from_value(serde_json::json!({
                "kind": "node", "host": "mail2", "recorded_at_ms": ms(s),
                "node": "mail1", "desc": state
            }))
            .unwrap()
        };
        let start: Event = serde_json::from_value(serde_json::json!({
            "kind": "resource", "host": "mail2", "recorded_at_ms": ms("2026-11-25 16:00:05"),
            "node": "mail2", "rsc": "vip", "task": "start", "rc": 0, "target_rc": 0,
            "status": 0, "desc": "ok"
        }))
        .unwrap();
        // The cluster forming at boot: a join, then the mail starts.
        let boot = from_events(&[node("2026-11-25 16:00:00", "member"), start.clone()]);
        let inc = incidents(&merge(Vec::new(), boot, 0), GAP);
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].cause, None, "a planned start: {inc:#?}");
        // A node lost, then the mail starts on the other.
        let lost = from_events(&[node("2026-11-25 16:00:00", "lost"), start]);
        let inc = incidents(&merge(Vec::new(), lost, 0), GAP);
        assert_eq!(inc[0].cause.as_deref(), Some("node mail1 lost"));
    }

    #[test]
    fn an_alert_seen_also_by_crm_mon_is_listed_once_and_since_cuts_the_past() {
        let pcmk = from_crm_mon(CRM_MON).unwrap();
        let ev: Event = serde_json::from_value(serde_json::json!({
            "kind": "resource", "host": "mail2", "recorded_at_ms": ms("2026-11-25 16:03:34"),
            "node": "mail2", "rsc": "vip", "task": "start", "rc": 0, "target_rc": 0,
            "status": 0, "desc": "ok"
        }))
        .unwrap();
        let node: Event = serde_json::from_value(serde_json::json!({
            "kind": "node", "host": "mail2", "recorded_at_ms": ms("2026-11-25 16:03:29"),
            "node": "mail1", "desc": "lost"
        }))
        .unwrap();
        let alerts = from_events(&[ev, node]);
        assert_eq!(alerts.len(), 2);
        let all = merge(pcmk, alerts, ms("2026-11-25 16:01:00"));
        assert_eq!(
            all.iter()
                .filter(|e| e.what == "vip started on mail2")
                .count(),
            1,
            "{all:#?}"
        );
        assert!(all.iter().any(|e| e.what == "node mail1 lost"));
        assert!(all.iter().all(|e| e.at_ms >= ms("2026-11-25 16:01:00")));
        let inc = incidents(&all, GAP);
        assert_eq!(inc.len(), 1);
        assert_eq!(
            inc[0].cause.as_deref(),
            Some("svc-postfix monitor failed on mail1: not running")
        );
    }
}
