//! A drill's timeline (issue 16): where the seconds of an outage go, from
//! the fault to the first mail the client got through again. Each phase is
//! the first event after the fault that says so, read from both nodes'
//! journals (Pacemaker's controller and fencer, corosync, the lease
//! keeper), the emulated watchdogs' logs and the client's load logs. The
//! nodes are containers on one host: their wall clocks are the host's, so
//! events of both nodes and the client compare directly (on two machines
//! they would need each node's own clock; see docs/recovery.md).
//! Pure: events in, phases out.

use super::super::load::Attempt;
use serde::Serialize;

/// One line of a log, with when and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unix milliseconds.
    pub at_ms: u128,
    pub node: String,
    pub text: String,
}

/// One phase of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// `detected`, `fencing requested`, `fenced`, `stopped svc-NAME`,
    /// `vip down`, `unmounted`, `lease released`, `lease held`, `mounted`,
    /// `vip up`, `started svc-NAME`, `first smtp 250`, `first imap login`.
    pub phase: String,
    /// Seconds from the fault.
    pub at_s: f64,
    /// The node the event came from (none for the client's).
    pub node: Option<String>,
    /// The line that says so.
    pub source: String,
}

/// Events from `journalctl -o json --output-fields=MESSAGE` lines of `node`.
pub fn parse_journal(json_lines: &str, node: &str) -> Vec<Event> {
    json_lines
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let us: u128 = v.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
            // journald stores a message that is not valid UTF-8 as bytes.
            let text = match v.get("MESSAGE")? {
                serde_json::Value::String(s) => s.trim().to_string(),
                serde_json::Value::Array(b) => String::from_utf8_lossy(
                    &b.iter()
                        .filter_map(|x| x.as_u64().map(|x| x as u8))
                        .collect::<Vec<u8>>(),
                )
                .trim()
                .to_string(),
                _ => return None,
            };
            Some(Event {
                at_ms: us / 1000,
                node: node.to_string(),
                text,
            })
        })
        .collect()
}

/// Events from an emulated watchdog's log (`<unix ms> watchdog: ...`).
pub fn parse_watchdog_log(text: &str, node: &str) -> Vec<Event> {
    text.lines()
        .filter_map(|l| {
            let (ms, rest) = l.split_once(' ')?;
            Some(Event {
                at_ms: ms.parse().ok()?,
                node: node.to_string(),
                text: rest.trim().to_string(),
            })
        })
        .collect()
}

/// Whether an operation's result line says it succeeded: Pacemaker 2.1
/// ends it with ": ok", 3.0 with ": OK".
fn result_ok(text: &str) -> bool {
    text.ends_with(": ok") || text.ends_with(": OK")
}

/// The resource a successful `op` (start, stop) result line is about,
/// when its id begins with `prefix`: `Result of stop operation for
/// svc-postfix on node1: ok` -> `svc-postfix`.
fn succeeded<'a>(text: &'a str, op: &str, prefix: &str) -> Option<&'a str> {
    let rest = text
        .split(&format!("Result of {op} operation for "))
        .nth(1)?;
    let id = rest.split_whitespace().next()?;
    (id.starts_with(prefix) && result_ok(text)).then_some(id)
}

/// Which phase a line marks, if any.
fn phase_of(text: &str) -> Option<String> {
    // A planned move (switchover, standby) and a recovery in place go
    // through the stops first: on the timeline too (issue 16, item 6).
    if let Some(id) = succeeded(text, "stop", "svc-") {
        return Some(format!("stopped {id}"));
    }
    if succeeded(text, "stop", "vip").is_some() {
        return Some("vip down".into());
    }
    if succeeded(text, "stop", "fs-").is_some() {
        return Some("unmounted".into());
    }
    if text.contains("lease-keeper: released") {
        return Some("lease released".into());
    }
    // `asyncmon`: a failure told by `crm_resource --fail`, which mailha
    // runs when systemd says a daemon's unit ended of itself.
    if ((text.contains("Result of monitor operation for")
        || text.contains("Result of asyncmon operation for"))
        && !result_ok(text))
        || text.contains("state is now lost")
        || text.contains("not petted for")
        || text.contains("lease-keeper: fencing this node")
    {
        return Some("detected".into());
    }
    if text.contains("wants to fence") || text.contains("posting fence request") {
        return Some("fencing requested".into());
    }
    if text.contains("Operation '") && text.contains("targeting") && text.contains("OK") {
        return Some("fenced".into());
    }
    if text.contains("the data lease is ours") {
        return Some("lease held".into());
    }
    if succeeded(text, "start", "fs-").is_some() {
        return Some("mounted".into());
    }
    if succeeded(text, "start", "vip").is_some() {
        return Some("vip up".into());
    }
    if let Some(id) = succeeded(text, "start", "svc-") {
        return Some(format!("started {id}"));
    }
    None
}

/// The timeline of a drill whose fault came at `fault_ms`: the first event
/// of each phase after it, in time order, then the client's first accepted
/// mail and first IMAP login after its outage (if it had one).
pub fn phases(
    fault_ms: u128,
    events: &[Event],
    smtp: &[(u128, Attempt)],
    imap: &[(u128, bool)],
) -> Vec<Phase> {
    let at = |ms: u128| (ms.saturating_sub(fault_ms)) as f64 / 1000.0;
    let mut sorted: Vec<&Event> = events.iter().filter(|e| e.at_ms >= fault_ms).collect();
    sorted.sort_by_key(|e| e.at_ms);
    let mut v: Vec<Phase> = Vec::new();
    for e in sorted {
        if let Some(p) = phase_of(&e.text)
            && !v.iter().any(|x| x.phase == p)
        {
            v.push(Phase {
                phase: p,
                at_s: at(e.at_ms),
                node: Some(e.node.clone()),
                source: e.text.clone(),
            });
        }
    }
    // The client: the first success after its first failure since the
    // fault; the first success at all when nothing failed.
    let end = |ok: &dyn Fn(usize) -> bool, times: &dyn Fn(usize) -> u128, n: usize| {
        let after: Vec<usize> = (0..n).filter(|i| times(*i) >= fault_ms).collect();
        let first_bad = after.iter().find(|i| !ok(**i));
        match first_bad {
            Some(b) => after
                .iter()
                .find(|i| **i > *b && ok(**i))
                .map(|i| times(*i)),
            None => after.iter().find(|i| ok(**i)).map(|i| times(*i)),
        }
    };
    if let Some(ms) = end(
        &|i| matches!(smtp[i].1, Attempt::Accepted(_)),
        &|i| smtp[i].0,
        smtp.len(),
    ) {
        v.push(Phase {
            phase: "first smtp 250".into(),
            at_s: at(ms),
            node: None,
            source: "the client's mail load".into(),
        });
    }
    if let Some(ms) = end(&|i| imap[i].1, &|i| imap[i].0, imap.len()) {
        v.push(Phase {
            phase: "first imap login".into(),
            at_s: at(ms),
            node: None,
            source: "the client's IMAP logins".into(),
        });
    }
    v.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    v
}

impl super::Lab<'_> {
    /// The drill's timeline from what the nodes and the client logged
    /// since `fault_ms` (`smtp_log_path`: the load's log; the IMAP log lies
    /// beside it). A node that does not answer adds no events.
    pub(super) fn timeline(
        &self,
        fault_ms: u128,
        smtp: &[(u128, Attempt)],
        smtp_log_path: &std::path::Path,
    ) -> Vec<Phase> {
        let since = format!("@{}", fault_ms / 1000);
        let mut events = Vec::new();
        for node in super::super::node::all_nodes(&self.topo) {
            if let Ok(o) = self.in_node_out(
                &node,
                &[
                    "journalctl",
                    "--no-pager",
                    "-o",
                    "json",
                    "--output-fields=MESSAGE",
                    "--since",
                    &since,
                    "-u",
                    "pacemaker",
                    "-u",
                    "corosync",
                    "-u",
                    "mailha-lease",
                ],
            ) {
                events.extend(parse_journal(&o.stdout, &node));
            }
            let wd = self.base_dir.join(&node).join("watchdog.log");
            events.extend(parse_watchdog_log(
                &std::fs::read_to_string(wd).unwrap_or_default(),
                &node,
            ));
        }
        let imap: Vec<(u128, bool)> =
            std::fs::read_to_string(super::super::load::imap_log(smtp_log_path))
                .unwrap_or_default()
                .lines()
                .filter_map(super::super::load::parse_imap_line)
                .collect();
        phases(fault_ms, &events, smtp, &imap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ms: u128, node: &str, text: &str) -> Event {
        Event {
            at_ms: ms,
            node: node.into(),
            text: text.into(),
        }
    }

    #[test]
    fn a_node_death_reads_as_detected_fenced_held_mounted_vip_services_then_mail() {
        let events = vec![
            ev(
                900,
                "node2",
                "notice: Result of start operation for vip on node2: ok",
            ),
            ev(1_200, "node2", "notice: Node node1 state is now lost"),
            ev(
                1_300,
                "node2",
                "notice: Client pacemaker-controld.515 wants to fence (reboot) node1 using any device",
            ),
            ev(2_000, "node2", "lease-keeper: the data lease is ours"),
            ev(
                2_100,
                "node2",
                "notice: Operation 'reboot' [2084] targeting node1 using fence-node1 returned 0",
            ),
            ev(
                2_150,
                "node2",
                "notice: Operation 'reboot' targeting node1 by node2 for pacemaker-controld.515@node2: OK (complete)",
            ),
            ev(
                2_600,
                "node2",
                "notice: Result of start operation for fs-data on node2: ok",
            ),
            ev(
                2_800,
                "node2",
                "notice: Result of start operation for vip on node2: ok",
            ),
            ev(
                3_100,
                "node2",
                "notice: Result of start operation for svc-postfix on node2: ok",
            ),
            ev(
                3_000,
                "node2",
                "notice: Result of start operation for svc-mysql on node2: ok",
            ),
        ];
        let smtp = vec![
            (950, Attempt::Accepted("<a>".into())),
            (1_100, Attempt::Down),
            (3_300, Attempt::Accepted("<b>".into())),
        ];
        let imap = vec![(1_050, false), (3_400, true)];
        let p = phases(1_000, &events, &smtp, &imap);
        let names: Vec<&str> = p.iter().map(|x| x.phase.as_str()).collect();
        assert_eq!(
            names,
            [
                "detected",
                "fencing requested",
                "lease held",
                "fenced",
                "mounted",
                "vip up",
                "started svc-mysql",
                "started svc-postfix",
                "first smtp 250",
                "first imap login"
            ]
        );
        assert_eq!(p[0].at_s, 0.2);
        assert_eq!(p[0].node.as_deref(), Some("node2"));
        // the VIP started before the fault is no phase of this one
        assert_eq!(p[5].at_s, 1.8);
        assert_eq!(p[8].at_s, 2.3);
        assert_eq!(p[9].at_s, 2.4);
    }

    #[test]
    fn a_planned_move_shows_its_stops_before_the_starts() {
        let ev = |ms, node: &str, text: &str| Event {
            at_ms: ms,
            node: node.into(),
            text: text.into(),
        };
        let events = [
            ev(
                1_100,
                "node1",
                " notice: Result of stop operation for svc-postfix on node1: ok",
            ),
            ev(
                2_200,
                "node1",
                " notice: Result of stop operation for svc-dovecot on node1: ok",
            ),
            ev(
                2_250,
                "node1",
                " notice: Result of stop operation for vip on node1: ok",
            ),
            ev(
                2_300,
                "node1",
                " notice: Result of stop operation for fs-data on node1: OK",
            ),
            ev(2_350, "node1", "lease-keeper: released"),
            ev(2_900, "node2", "lease-keeper: the data lease is ours"),
            ev(
                2_950,
                "node1",
                " notice: Result of stop operation for svc-mysql on node1: error",
            ),
        ];
        let p = phases(1_000, &events, &[], &[]);
        let names: Vec<&str> = p.iter().map(|x| x.phase.as_str()).collect();
        assert_eq!(
            names,
            [
                "stopped svc-postfix",
                "stopped svc-dovecot",
                "vip down",
                "unmounted",
                "lease released",
                "lease held"
            ],
            "a failed stop is no phase"
        );
        assert_eq!(p[4].node.as_deref(), Some("node1"));
    }

    #[test]
    fn journal_json_and_watchdog_logs_become_events() {
        let j = "{\"__REALTIME_TIMESTAMP\":\"1796436948489111\",\"MESSAGE\":\" notice: Result of monitor operation for svc-postfix on node1: not running\"}\n\
                 {\"__REALTIME_TIMESTAMP\":\"1796436948489999\",\"MESSAGE\":[104,105]}\n\
                 not json\n";
        let e = parse_journal(j, "node1");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].at_ms, 1796436948489);
        assert_eq!(phase_of(&e[0].text).as_deref(), Some("detected"));
        assert_eq!(e[1].text, "hi");
        let w = parse_watchdog_log(
            "1796431438007 watchdog: not petted for 2013 ms: resetting the node\njunk\n",
            "node1",
        );
        assert_eq!(w.len(), 1);
        assert_eq!(phase_of(&w[0].text).as_deref(), Some("detected"));
    }

    #[test]
    fn pacemaker_30s_result_lines_mark_the_same_phases() {
        // Debian 13's Pacemaker 3.0 says "OK" where 2.1 says "ok" (seen:
        // the trixie drills' timelines had no mounted/vip/started phases).
        assert_eq!(
            phase_of("notice: Result of start operation for fs-data on node2: OK").as_deref(),
            Some("mounted")
        );
        assert_eq!(
            phase_of("notice: Result of start operation for svc-mysql on node2: OK").as_deref(),
            Some("started svc-mysql")
        );
        assert_eq!(
            phase_of("notice: Result of monitor operation for ping on node1: OK"),
            None,
            "a monitor that passed detects nothing"
        );
        assert_eq!(
            phase_of("notice: Result of monitor operation for svc-postfix on node1: Not running")
                .as_deref(),
            Some("detected")
        );
        assert_eq!(
            phase_of(
                "notice: Result of asyncmon operation for svc-postfix on node1: error (Simulated failure)"
            )
            .as_deref(),
            Some("detected")
        );
    }
}
