//! Cross-node deduplication: which node records an event Pacemaker fires
//! on every node.
//!
//! Pacemaker runs the alert agent on each node for node events (a member
//! joined or was lost) and for fencing events, and on one node only for
//! resource events (the node where the operation ran). Each node's sender
//! mails its own spool, so without a rule a node event would be mailed
//! twice, once by each node.
//!
//! The rule, decided when the event is recorded: **an event about node X
//! that every node sees is recorded by the nodes other than X**. In
//! mailha's two-node cluster that is exactly one node, the peer:
//!
//! - "X lost" is seen only by the survivor(s), never by X: recorded once,
//!   by the peer, which is alive (it saw the event) and whose sender is
//!   running (a clone instance on every node).
//! - "X joined" is seen by X and by the peer: only the peer records it.
//! - "X fenced" is seen by the fencer and, if it survived, by X: only the
//!   peer records it. X's own view ("I was fenced") reaches the operator
//!   through the peer's mail of the same event.
//! - In a split (each side loses the other), each side records "the other
//!   was lost": two different events, each recorded once, each true for
//!   the side that mails it.
//!
//! Why this is correct and not merely likely: the decision is a pure
//! function of the event and the recording node's own name, with no clock,
//! no network and no shared state, so both nodes decide consistently
//! however their alerts interleave; and for each (event, node) pair there is
//! one copy, so a node never records a duplicate of its own. No event is
//! dropped by both nodes: the only copy dropped is X's own, and X's peer
//! got the same event whenever X did (Pacemaker fires cluster-wide events
//! on all members), except when X is alone in the cluster, where its own
//! "X joined" is all there is and nothing is lost that another node would
//! have mailed. Events without a node name are kept (nothing to compare).
//!
//! What it does not cover: more than two nodes (each of the others would
//! record), which mailha does not build.

use super::event::{Event, Kind};

/// Pacemaker's execution status "cancelled" (PCMK_EXEC_CANCELLED).
const EXEC_CANCELLED: i32 = 1;

/// Whether the node named `local` records this event.
pub fn records_here(e: &Event, local: &str) -> bool {
    match e.kind {
        Some(Kind::Node | Kind::Fencing) => e.node.as_deref() != Some(local),
        // A recurring monitor cancelled by Pacemaker itself (before a
        // stop, or by a cleanup) is bookkeeping, not news: every restart
        // would otherwise list "monitor: Cancelled" lines.
        Some(Kind::Resource) => e.status != Some(EXEC_CANCELLED),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::time::SystemTime;

    fn pacemaker(kind: &str, node: &str, host: &str) -> Event {
        let env: Vec<(OsString, OsString)> = [("CRM_alert_kind", kind), ("CRM_alert_node", node)]
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect();
        Event::from_crm_env(env, host, SystemTime::now()).unwrap()
    }

    /// Pacemaker fires `kind` about `about` on every node in `fired_on`;
    /// returns the nodes that record it.
    fn recorders(kind: &str, about: &str, fired_on: &[&str]) -> Vec<String> {
        fired_on
            .iter()
            .filter(|n| records_here(&pacemaker(kind, about, n), n))
            .map(|n| n.to_string())
            .collect()
    }

    #[test]
    fn a_node_joining_is_recorded_once_by_its_peer() {
        assert_eq!(recorders("node", "node2", &["node1", "node2"]), ["node1"]);
    }

    #[test]
    fn a_lost_node_is_recorded_once_by_the_survivor() {
        assert_eq!(recorders("node", "node1", &["node2"]), ["node2"]);
    }

    #[test]
    fn a_fencing_is_recorded_once_even_when_the_target_survives_it() {
        assert_eq!(
            recorders("fencing", "node2", &["node1", "node2"]),
            ["node1"]
        );
        assert_eq!(recorders("fencing", "node2", &["node1"]), ["node1"]);
    }

    #[test]
    fn in_a_split_each_side_records_its_own_view_once() {
        let mut seen = recorders("node", "node2", &["node1"]);
        seen.extend(recorders("node", "node1", &["node2"]));
        assert_eq!(seen, ["node1", "node2"]);
    }

    #[test]
    fn resource_events_are_recorded_where_they_ran() {
        assert_eq!(recorders("resource", "node1", &["node1"]), ["node1"]);
    }

    #[test]
    fn a_cancelled_monitor_is_not_news() {
        let mut e = pacemaker("resource", "node1", "node1");
        e.status = Some(1);
        assert!(!records_here(&e, "node1"));
        e.status = Some(0);
        assert!(records_here(&e, "node1"));
    }

    #[test]
    fn an_event_without_a_node_is_kept() {
        let mut e = pacemaker("node", "x", "node1");
        e.node = None;
        assert!(records_here(&e, "node1"));
    }
}
