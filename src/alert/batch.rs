//! Grouping events into incidents. Pure: no clock, no disk; the caller
//! passes the events (ordered by id) and "now".
//!
//! An incident starts at its first event and takes every event recorded
//! within `window` after it. The window is counted from the first event,
//! not from the last, so a flapping resource cannot hold a mail back
//! forever: the first mail leaves at most `window` after the first event,
//! and the flapping continues in the next incident.

use super::event::Event;
use std::time::Duration;

/// A group of events that goes out as one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Ids of the events, in order.
    pub ids: Vec<String>,
    /// The window is over: the incident can be sent.
    pub ready: bool,
}

/// Groups `events` (ordered by id, i.e. by recording) into incidents.
pub fn batch(events: &[(String, Event)], window: Duration, now_ms: u64) -> Vec<Batch> {
    let window_ms = window.as_millis() as u64;
    let mut out: Vec<Batch> = Vec::new();
    let mut start_ms: u64 = 0;
    for (id, e) in events {
        let t = e.recorded_at_ms;
        match out.last_mut() {
            // Clocks can step back: an event that looks older than the
            // incident's start still belongs to it.
            Some(b) if t < start_ms.saturating_add(window_ms) => b.ids.push(id.clone()),
            _ => {
                start_ms = t;
                out.push(Batch {
                    ids: vec![id.clone()],
                    ready: false,
                });
            }
        }
        if let Some(b) = out.last_mut() {
            b.ready = now_ms >= start_ms.saturating_add(window_ms);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::event::Kind;

    fn at(ms: u64) -> (String, Event) {
        let mut e = Event::new(Kind::Resource, "mx1", std::time::UNIX_EPOCH);
        e.recorded_at_ms = ms;
        (format!("e{ms}"), e)
    }

    fn ids(b: &Batch) -> Vec<&str> {
        b.ids.iter().map(String::as_str).collect()
    }

    const TEN_S: Duration = Duration::from_secs(10);

    #[test]
    fn nothing_recorded_nothing_to_send() {
        assert!(batch(&[], TEN_S, 1_000_000).is_empty());
    }

    #[test]
    fn a_failover_burst_becomes_one_incident() {
        let ev = [at(1_000), at(1_200), at(4_000), at(10_999)];
        let b = batch(&ev, TEN_S, 11_000);
        assert_eq!(b.len(), 1);
        assert_eq!(ids(&b[0]), ["e1000", "e1200", "e4000", "e10999"]);
        assert!(b[0].ready);
    }

    #[test]
    fn an_incident_waits_for_its_window_to_close() {
        let ev = [at(1_000), at(2_000)];
        assert!(!batch(&ev, TEN_S, 10_999)[0].ready);
        assert!(batch(&ev, TEN_S, 11_000)[0].ready);
    }

    #[test]
    fn events_after_the_window_start_a_second_incident() {
        let ev = [at(0), at(5_000), at(10_000), at(12_000)];
        let b = batch(&ev, TEN_S, 15_000);
        assert_eq!(b.len(), 2);
        assert_eq!(ids(&b[0]), ["e0", "e5000"]);
        assert!(b[0].ready);
        assert_eq!(ids(&b[1]), ["e10000", "e12000"]);
        assert!(!b[1].ready);
    }

    #[test]
    fn a_flapping_resource_cannot_hold_the_mail_back() {
        // One event every second for a minute: the first mail is ready ten
        // seconds in, not after the flapping stops.
        let ev: Vec<_> = (0..60).map(|s| at(s * 1_000)).collect();
        let b = batch(&ev, TEN_S, 60_000);
        assert_eq!(b.len(), 6);
        assert_eq!(b[0].ids.len(), 10);
        assert!(b[..5].iter().all(|b| b.ready));
    }

    #[test]
    fn a_clock_step_back_stays_in_the_incident() {
        let ev = [at(5_000), at(1_000)];
        assert_eq!(batch(&ev, TEN_S, 20_000).len(), 1);
    }

    #[test]
    fn a_zero_window_sends_each_event_alone() {
        let ev = [at(1), at(1), at(2)];
        let b = batch(&ev, Duration::ZERO, 2);
        assert_eq!(b.len(), 3);
        assert!(b.iter().all(|b| b.ready));
    }
}
