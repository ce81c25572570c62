//! Repeats of one failure: mailed once, then at most every `QUIET`, with a
//! count. Pure: no clock, no disk.
//!
//! Some failures come back every few seconds for as long as their cause
//! lasts. A node whose ping targets do not answer retries its ping start
//! every ~12 s (the ping clone's failure-timeout is short so that the node
//! is a standby again soon after its network returns), and each retry is an
//! incident of its own: "ping start failed on node2, ping stopped". Mailed
//! each time, an hour without network is 300 mails, and the one that says
//! something new is lost among them.
//!
//! The rule: an incident made only of resource events, with a failure
//! among them, that is the same as one mailed less than `QUIET` before
//! (the same resources, operations, nodes and results; times and texts
//! left out) is not mailed. It is kept in `sent/` marked `quieted`, so
//! `mailha history` and the exporter still see it. The first one of the
//! same kind after `QUIET` is mailed and says how many were quieted since
//! the mail before. Never quieted: an incident holding anything but
//! resource events (a node lost, a fence, the lease, a switchover, a
//! test), one with no failure, and a failure that differs in any field
//! above (another rc, another node, another operation): that is news.

use super::event::{Event, Kind};
use std::collections::BTreeSet;
use std::time::Duration;

/// At most one mail per kind of repeated failure in this time.
pub const QUIET: Duration = Duration::from_secs(30 * 60);

/// How far back the sender looks for earlier incidents: two quiet
/// windows, so the mail that ends one window always finds the mail that
/// opened it and counts every repeat in between.
pub const LOOK_BACK: Duration = Duration::from_secs(2 * 30 * 60);

/// What makes two incidents the same failure; None for an incident that
/// is always mailed.
pub fn signature(events: &[(String, Event)]) -> Option<String> {
    let mut any_failed = false;
    let mut parts = BTreeSet::new();
    for (_, e) in events {
        if e.kind() != Kind::Resource {
            return None;
        }
        any_failed |= e.failed();
        parts.insert(format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            e.node, e.rsc, e.task, e.interval_ms, e.rc, e.target_rc, e.status
        ));
    }
    any_failed.then(|| parts.into_iter().collect::<Vec<_>>().join("\n"))
}

/// An incident the sender handled before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    /// When it began, ms since the epoch.
    pub at_ms: u64,
    pub signature: Option<String>,
    /// Kept back as a repeat rather than mailed.
    pub quieted: bool,
}

/// What to do with an incident whose window is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Mail it; `repeats` says how many of the same were quieted since
    /// the last mail of it, and when the first of them began.
    Mail { repeats: Option<(u32, u64)> },
    /// The same failure was mailed less than `QUIET` before.
    Quiet,
}

/// Decides for an incident of `signature` beginning at `at_ms`, given the
/// incidents the sender handled before it.
pub fn decide(signature: Option<&str>, at_ms: u64, earlier: &[Earlier]) -> Decision {
    let Some(sig) = signature else {
        return Decision::Mail { repeats: None };
    };
    let same: Vec<&Earlier> = earlier
        .iter()
        .filter(|e| e.signature.as_deref() == Some(sig) && e.at_ms <= at_ms)
        .collect();
    let last_mail = same.iter().filter(|e| !e.quieted).map(|e| e.at_ms).max();
    if let Some(t) = last_mail
        && at_ms < t.saturating_add(QUIET.as_millis() as u64)
    {
        return Decision::Quiet;
    }
    let since_mail: Vec<u64> = same
        .iter()
        .filter(|e| e.quieted && last_mail.is_none_or(|t| e.at_ms > t))
        .map(|e| e.at_ms)
        .collect();
    let repeats = since_mail
        .iter()
        .min()
        .map(|first| (since_mail.len() as u32, *first));
    Decision::Mail { repeats }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    const MIN: u64 = 60_000;

    fn op(node: &str, rsc: &str, task: &str, rc: i32) -> (String, Event) {
        let mut e = Event::new(Kind::Resource, node, SystemTime::UNIX_EPOCH);
        e.node = Some(node.into());
        e.rsc = Some(rsc.into());
        e.task = Some(task.into());
        e.interval_ms = Some(0);
        e.rc = Some(rc);
        e.target_rc = Some(0);
        e.desc = Some(format!("pid {rc}{node}"));
        ("id".into(), e)
    }

    /// A ping retry on a node without network: the start fails, the
    /// instance is stopped.
    fn ping_retry(node: &str) -> Vec<(String, Event)> {
        vec![op(node, "ping", "start", 1), op(node, "ping", "stop", 0)]
    }

    fn mailed(at_ms: u64, events: &[(String, Event)]) -> Earlier {
        Earlier {
            at_ms,
            signature: signature(events),
            quieted: false,
        }
    }

    fn quieted(at_ms: u64, events: &[(String, Event)]) -> Earlier {
        Earlier {
            quieted: true,
            ..mailed(at_ms, events)
        }
    }

    #[test]
    fn an_hour_of_ping_retries_every_twelve_seconds_is_two_mails_the_second_with_a_count() {
        let retry = ping_retry("node2");
        let sig = signature(&retry);
        let mut earlier = Vec::new();
        let mut mails = Vec::new();
        for i in 0..300u64 {
            let at = i * 12_000;
            match decide(sig.as_deref(), at, &earlier) {
                Decision::Mail { repeats } => {
                    mails.push((at, repeats));
                    earlier.push(mailed(at, &retry));
                }
                Decision::Quiet => earlier.push(quieted(at, &retry)),
            }
        }
        // The first at once; the next when the quiet half hour is over,
        // counting the 149 kept back; the rest of the hour is quiet.
        assert_eq!(mails, vec![(0, None), (30 * MIN, Some((149, 12_000)))]);
    }

    #[test]
    fn the_same_failure_with_another_result_or_on_another_node_is_news() {
        let first = ping_retry("node2");
        let earlier = [mailed(0, &first)];
        let other_node = ping_retry("node1");
        let other_rc = vec![
            op("node2", "ping", "start", 7),
            op("node2", "ping", "stop", 0),
        ];
        let other_rsc = vec![op("node2", "svc-dovecot", "start", 1)];
        for e in [&other_node, &other_rc, &other_rsc] {
            assert_eq!(
                decide(signature(e).as_deref(), MIN, &earlier),
                Decision::Mail { repeats: None },
                "{e:?}"
            );
        }
        // Its text (an exit reason naming a pid) is no difference.
        let mut same = ping_retry("node2");
        same[0].1.desc = Some("another pid".into());
        assert_eq!(
            decide(signature(&same).as_deref(), MIN, &earlier),
            Decision::Quiet
        );
    }

    #[test]
    fn a_fence_a_lost_node_or_a_success_is_always_mailed() {
        let mut with_node = ping_retry("node2");
        with_node.push((
            "n".into(),
            Event::new(Kind::Node, "node1", SystemTime::UNIX_EPOCH),
        ));
        assert_eq!(signature(&with_node), None);
        let fenced = vec![(
            "f".into(),
            Event::new(Kind::Fencing, "node1", SystemTime::UNIX_EPOCH),
        )];
        assert_eq!(signature(&fenced), None);
        let back = vec![op("node2", "ping", "start", 0)];
        assert_eq!(signature(&back), None, "no failure: the network is back");
        assert_eq!(signature(&[]), None);
        assert_eq!(decide(None, 0, &[]), Decision::Mail { repeats: None });
    }

    #[test]
    fn repeats_whose_mail_fell_out_of_sight_are_counted_in_the_next_mail() {
        let retry = ping_retry("node2");
        let sig = signature(&retry);
        // The mail that opened the window is older than the look-back;
        // the repeats after it are still there.
        let earlier = [quieted(10 * MIN, &retry), quieted(11 * MIN, &retry)];
        assert_eq!(
            decide(sig.as_deref(), 12 * MIN, &earlier),
            Decision::Mail {
                repeats: Some((2, 10 * MIN))
            }
        );
    }
}
