//! Alerting: events -> durable spool -> incidents -> one mail per incident.
//!
//! - `event`: the event type and the validation of Pacemaker's hostile
//!   `CRM_alert_*` environment.
//! - `spool`: one fsynced file per event; claim / done-markers give
//!   at-least-once delivery per channel (the choice is explained there).
//! - `batch`: pure grouping of events into incidents over a window.
//! - `compose`: words (en, zh-CN), HTML and the MIME message.
//! - `diag`: the redacted diagnostics bundle.
//! - `send`: SMTP, webhook and command channels, each bounded in time.
//!
//! The alert agent (`alert_mailha`) only records; the sender (`mailha alert
//! run` / `send-pending`) does everything that can be slow.

pub mod batch;
pub mod compose;
pub mod diag;
pub mod event;
pub mod owner;
pub mod repeat;
pub mod send;
pub mod spool;

use crate::config::model::{Alerts, Diagnostics, Secret};
use compose::Incident;
use send::Channel;
use spool::{Spool, SpoolError};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// This machine's host name (for the EHLO, the mail and the events).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Secrets to blank out of the diagnostics: the configured SMTP password,
/// the webhook URL, and the URL's path and query alone (where its token
/// is) should a log line have quoted them.
pub fn known_secrets(cfg: &Alerts) -> Vec<String> {
    let mut v = match cfg.smtp.as_ref().map(|s| &s.password) {
        Some(Secret::Inline(p)) => vec![p.clone()],
        Some(Secret::File(f)) => std::fs::read_to_string(f)
            .map(|p| vec![p.trim_end_matches(['\r', '\n']).to_string()])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if let Some(w) = &cfg.webhook {
        v.push(w.url.clone());
        let rest = w.url.split_once("://").map_or("", |(_, r)| r);
        if let Some(i) = rest.find(['/', '?', '#'])
            && rest.len() - i >= 8
        {
            v.push(rest[i..].to_string());
        }
    }
    v
}

/// Where the world comes from when sending: the real cluster, or a test's
/// fixed answers.
pub trait Environment {
    fn host(&self) -> String;
    fn running_on(&self) -> Option<String>;
    fn diagnostics(&self, opts: &Diagnostics, secrets: &[String]) -> String;
}

/// The real machine.
pub struct System;

impl Environment for System {
    fn host(&self) -> String {
        hostname()
    }
    fn running_on(&self) -> Option<String> {
        diag::vip_location()
    }
    fn diagnostics(&self, opts: &Diagnostics, secrets: &[String]) -> String {
        diag::collect(opts, secrets)
    }
}

/// Delay before the n-th retry (n = 1 after the first failure): 5 s
/// doubling, at most 5 min, so a relay that is down for an hour gets a try
/// every five minutes and one that blinked gets the mail seconds later.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(300))
}

/// What one channel did with one incident.
#[derive(Debug)]
pub struct Attempt {
    pub incident: String,
    pub channel: &'static str,
    pub result: Result<(), send::SendError>,
}

/// What one pass of the sender did.
#[derive(Debug, Default)]
pub struct Pass {
    pub attempts: Vec<Attempt>,
    /// Incidents delivered on every channel and moved to `sent/`.
    pub finished: Vec<String>,
    /// Incidents still waiting for their batch window.
    pub waiting: usize,
    /// Repeats of a failure mailed less than `repeat::QUIET` before, kept
    /// back unmailed and moved to `sent/`.
    pub quieted: Vec<String>,
    /// Spool files that could not be read (left in place).
    pub bad: Vec<SpoolError>,
    /// Failed attempts whose `failed-<channel>` record could not be
    /// written (the exporter undercounts them).
    pub unrecorded: Vec<SpoolError>,
}

/// Retry schedule kept across passes of `mailha alert run` (in memory: a
/// restart retries at once, which is what one wants after a restart).
#[derive(Debug, Default)]
pub struct Retries {
    next: HashMap<String, (u32, Instant)>,
}

impl Retries {
    fn due(&self, incident: &str, now: Instant) -> bool {
        self.next.get(incident).is_none_or(|(_, at)| now >= *at)
    }
    fn failed(&mut self, incident: &str, now: Instant) {
        let e = self.next.entry(incident.to_string()).or_insert((0, now));
        e.0 += 1;
        e.1 = now + backoff(e.0);
    }
    fn forget(&mut self, incident: &str) {
        self.next.remove(incident);
    }
    fn clear(&mut self) {
        self.next.clear();
    }
}

/// One pass of the sender: batch what is pending, claim the incidents
/// whose window is over, and deliver every claimed incident on every
/// channel that has not delivered it yet.
pub fn send_pending(
    spool: &Spool,
    cfg: &Alerts,
    channels: &[Box<dyn Channel>],
    env: &dyn Environment,
    retries: &mut Retries,
) -> Result<Pass, SpoolError> {
    let mut pass = Pass::default();
    // Without a channel the events stay pending, so a channel added later
    // still gets them.
    if channels.is_empty() {
        return Ok(pass);
    }
    let _lock = spool.lock()?;
    let (pending, mut bad) = spool.pending()?;
    pass.bad.append(&mut bad);
    let now_ms = event::epoch_ms(SystemTime::now());
    for b in batch::batch(&pending, cfg.batch_window, now_ms) {
        if b.ready {
            spool.claim(&b.ids)?;
        } else {
            pass.waiting += 1;
        }
    }
    let (outbox, mut bad) = spool.outbox()?;
    pass.bad.append(&mut bad);
    let now = Instant::now();
    // The sender's record of what it mailed and kept back, read once a
    // pass and only when a repeat is possible.
    let mut earlier: Option<Vec<repeat::Earlier>> = None;
    for claimed in outbox {
        if !retries.due(&claimed.id, now) {
            continue;
        }
        let signature = repeat::signature(&claimed.events);
        let at_ms = spool::id_time_ms(&claimed.id).unwrap_or(now_ms);
        let mut repeats = None;
        // An incident a channel has delivered already was decided before.
        if claimed.done.is_empty() && signature.is_some() {
            let earlier = earlier.get_or_insert_with(|| {
                let since = now_ms.saturating_sub(repeat::LOOK_BACK.as_millis() as u64);
                spool
                    .sent_since(since)
                    .into_iter()
                    .map(|i| repeat::Earlier {
                        at_ms: i.at_ms,
                        signature: repeat::signature(&i.events),
                        quieted: i.quieted,
                    })
                    .collect()
            });
            let decision = repeat::decide(signature.as_deref(), at_ms, earlier);
            earlier.push(repeat::Earlier {
                at_ms,
                signature: signature.clone(),
                quieted: decision == repeat::Decision::Quiet,
            });
            match decision {
                repeat::Decision::Quiet => {
                    spool.quiet(&claimed.id)?;
                    retries.forget(&claimed.id);
                    pass.quieted.push(claimed.id);
                    continue;
                }
                repeat::Decision::Mail { repeats: r } => repeats = r,
            }
        }
        let todo: Vec<&Box<dyn Channel>> = channels
            .iter()
            .filter(|c| !claimed.done.iter().any(|d| d == c.name()))
            .collect();
        let mut all_ok = true;
        if !todo.is_empty() {
            let inc = Incident {
                id: claimed.id.clone(),
                events: claimed.events,
                repeats,
                host: env.host(),
                running_on: env.running_on(),
                diagnostics: env.diagnostics(&cfg.diagnostics, &known_secrets(cfg)),
            };
            let composed = compose::compose(cfg, &inc);
            for ch in todo {
                let result = ch.send(&inc, &composed);
                if result.is_ok() {
                    spool.mark_done(&inc.id, ch.name())?;
                    // Something got through: whatever was backing off
                    // (a relay that was down) is tried again at once, so
                    // the incidents of an outage arrive together.
                    retries.clear();
                } else {
                    all_ok = false;
                    // Unlike a done mark (which keeps a channel from
                    // sending twice, so a pass that cannot write one
                    // stops), this record is only what the exporter
                    // counts: failing to write it costs a metric one
                    // attempt, while stopping here would skip the other
                    // channels and the backoff below, and retry a relay
                    // that is down every second.
                    if let Err(e) = spool.mark_failed(&inc.id, ch.name(), SystemTime::now()) {
                        pass.unrecorded.push(e);
                    }
                }
                pass.attempts.push(Attempt {
                    incident: inc.id.clone(),
                    channel: ch.name(),
                    result,
                });
            }
        }
        if all_ok {
            spool.finish(&claimed.id)?;
            retries.forget(&claimed.id);
            pass.finished.push(claimed.id);
        } else {
            retries.failed(&claimed.id, now);
        }
    }
    Ok(pass)
}

/// `mailha alert test`: a test incident straight to every channel (not
/// through the spool), one result per channel.
pub fn send_test(
    cfg: &Alerts,
    channels: &[Box<dyn Channel>],
    env: &dyn Environment,
) -> Vec<Attempt> {
    let host = env.host();
    let now = SystemTime::now();
    let inc = Incident {
        id: format!("test-{}", event::epoch_ms(now)),
        events: vec![(
            "test".into(),
            event::Event::new(event::Kind::Test, &host, now),
        )],
        repeats: None,
        host,
        running_on: env.running_on(),
        diagnostics: env.diagnostics(&cfg.diagnostics, &known_secrets(cfg)),
    };
    let composed = compose::compose(cfg, &inc);
    channels
        .iter()
        .map(|ch| Attempt {
            incident: inc.id.clone(),
            channel: ch.name(),
            result: ch.send(&inc, &composed),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use event::{Event, Kind};
    use std::cell::RefCell;
    use std::rc::Rc;

    struct Fixed;
    impl Environment for Fixed {
        fn host(&self) -> String {
            "mx2".into()
        }
        fn running_on(&self) -> Option<String> {
            Some("mx2".into())
        }
        fn diagnostics(&self, _: &Diagnostics, _: &[String]) -> String {
            "diag\n".into()
        }
    }

    /// A channel that records what it was given and fails while `down`.
    struct Fake {
        name: &'static str,
        sent: Rc<RefCell<Vec<(String, String)>>>,
        down: Rc<RefCell<bool>>,
    }
    impl Channel for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn send(&self, inc: &Incident, c: &compose::Composed) -> Result<(), send::SendError> {
            if *self.down.borrow() {
                return Err(send::SendError::Command {
                    program: "fake".into(),
                    reason: "down".into(),
                });
            }
            self.sent
                .borrow_mut()
                .push((inc.id.clone(), c.subject.clone()));
            Ok(())
        }
    }

    fn cfg(window: Duration) -> Alerts {
        Alerts {
            customer: "ACME".into(),
            language: crate::config::model::Language::En,
            subject: None,
            advice: None,
            batch_window: window,
            smtp: None,
            webhook: None,
            command: None,
            diagnostics: Default::default(),
        }
    }

    const TEN_S: Duration = Duration::from_secs(10);

    type Log = Rc<RefCell<Vec<(String, String)>>>;

    fn fake(name: &'static str) -> (Box<dyn Channel>, Log, Rc<RefCell<bool>>) {
        let sent = Rc::new(RefCell::new(Vec::new()));
        let down = Rc::new(RefCell::new(false));
        (
            Box::new(Fake {
                name,
                sent: sent.clone(),
                down: down.clone(),
            }),
            sent,
            down,
        )
    }

    /// One incident in a spool, the relay down (smtp fails) while the
    /// webhook delivers.
    struct RelayDown {
        t: tempfile::TempDir,
        s: Spool,
        chans: Vec<Box<dyn Channel>>,
        smtp_sent: Log,
        hook_sent: Log,
        smtp_down: Rc<RefCell<bool>>,
    }

    fn relay_down(kind: Kind) -> RelayDown {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        record(&s, kind);
        let (smtp, smtp_sent, smtp_down) = fake("smtp");
        let (hook, hook_sent, _) = fake("webhook");
        *smtp_down.borrow_mut() = true;
        RelayDown {
            t,
            s,
            chans: vec![smtp, hook],
            smtp_sent,
            hook_sent,
            smtp_down,
        }
    }

    /// Records an event as if it happened a minute ago, so that a 10 s
    /// window is over.
    fn record(s: &Spool, kind: Kind) {
        let mut e = Event::new(kind, "mx1", SystemTime::now());
        e.recorded_at_ms -= 60_000;
        s.record(&e).unwrap();
    }

    #[test]
    fn a_burst_of_events_goes_out_as_one_mail_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        record(&s, Kind::Resource);
        record(&s, Kind::Fenced);
        record(&s, Kind::Switchover);
        let (ch, sent, _) = fake("smtp");
        let chans = vec![ch];
        let mut r = Retries::default();
        let pass = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(pass.finished.len(), 1);
        assert_eq!(sent.borrow().len(), 1);
        assert!(sent.borrow()[0].1.contains("was fenced (+2 more)"));
        // Nothing is sent again, in this process or in a new one.
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        let s2 = Spool::open(t.path()).unwrap();
        send_pending(&s2, &cfg(TEN_S), &chans, &Fixed, &mut Retries::default()).unwrap();
        assert_eq!(sent.borrow().len(), 1);
    }

    /// A ping retry on mx2, a node without network: its start fails and
    /// the instance is stopped, recorded a minute ago.
    fn record_ping_retry(s: &Spool, rc: i32) {
        for (task, rc) in [("start", rc), ("stop", 0)] {
            let mut e = Event::new(Kind::Resource, "mx2", SystemTime::now());
            e.recorded_at_ms -= 60_000;
            e.node = Some("mx2".into());
            e.rsc = Some("ping".into());
            e.task = Some(task.into());
            e.interval_ms = Some(0);
            e.rc = Some(rc);
            e.target_rc = Some(0);
            s.record(&e).unwrap();
        }
    }

    #[test]
    fn a_failure_that_repeats_is_mailed_once_and_the_repeats_kept_on_record() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let (ch, sent, _) = fake("smtp");
        let chans = vec![ch];
        let mut r = Retries::default();
        record_ping_retry(&s, 1);
        let pass = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!((pass.finished.len(), pass.quieted.len()), (1, 0));
        // Twelve seconds later, the same again, twice: kept back.
        for _ in 0..2 {
            record_ping_retry(&s, 1);
            let pass = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
            assert_eq!((pass.finished.len(), pass.quieted.len()), (0, 1));
        }
        assert_eq!(sent.borrow().len(), 1);
        // On record, unmailed: the history and the exporter still see them.
        let kept = s.sent_since(0);
        assert_eq!(
            kept.iter().map(|k| k.quieted).collect::<Vec<_>>(),
            [false, true, true]
        );
        assert!(s.outbox().unwrap().0.is_empty());
        // Another result is news, and so is anything that is not a
        // resource's failure.
        record_ping_retry(&s, 7);
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        record(&s, Kind::Node);
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(sent.borrow().len(), 3, "{:?}", sent.borrow());
    }

    #[test]
    fn events_wait_for_the_batch_window() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        record(&s, Kind::Node);
        let (ch, sent, _) = fake("smtp");
        let pass = send_pending(
            &s,
            &cfg(Duration::from_secs(3600)),
            &[ch],
            &Fixed,
            &mut Retries::default(),
        )
        .unwrap();
        assert_eq!(pass.waiting, 1);
        assert!(sent.borrow().is_empty());
        assert_eq!(s.pending().unwrap().0.len(), 1);
    }

    #[test]
    fn a_relay_that_is_down_loses_nothing_and_only_the_failed_channel_retries() {
        let RelayDown {
            t,
            s,
            chans,
            smtp_sent,
            hook_sent,
            smtp_down,
        } = relay_down(Kind::LeaseLost);
        let mut r = Retries::default();
        let pass = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert!(pass.finished.is_empty());
        assert_eq!(hook_sent.borrow().len(), 1);
        // The sender restarts (new spool, new retry state); the relay is back.
        *smtp_down.borrow_mut() = false;
        let s2 = Spool::open(t.path()).unwrap();
        let pass = send_pending(&s2, &cfg(TEN_S), &chans, &Fixed, &mut Retries::default()).unwrap();
        assert_eq!(pass.finished.len(), 1);
        assert_eq!(smtp_sent.borrow().len(), 1);
        assert_eq!(hook_sent.borrow().len(), 1, "the webhook already had it");
        assert_eq!(
            smtp_sent.borrow()[0].0,
            hook_sent.borrow()[0].0,
            "same incident id"
        );
    }

    #[test]
    fn a_failed_incident_backs_off_within_one_run() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        record(&s, Kind::Node);
        let (ch, _, down) = fake("smtp");
        *down.borrow_mut() = true;
        let chans = vec![ch];
        let mut r = Retries::default();
        let p1 = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        let p2 = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(p1.attempts.len(), 1);
        assert_eq!(p2.attempts.len(), 0, "not due for 5 s");
    }

    #[test]
    fn when_the_relay_answers_again_every_waiting_incident_is_due_at_once() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        let (ch, sent, down) = fake("smtp");
        let chans = vec![ch];
        let mut r = Retries::default();
        *down.borrow_mut() = true;
        record(&s, Kind::Node);
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        record(&s, Kind::Fenced);
        // The relay is back; the newer incident goes out (the older one
        // is still backing off in this pass)...
        *down.borrow_mut() = false;
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(sent.borrow().len(), 1);
        // ...and the older one on the very next pass, not 5 s later.
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(sent.borrow().len(), 2);
    }

    fn failures(t: &tempfile::TempDir) -> std::collections::BTreeMap<String, spool::Failed> {
        let out = t.path().join("outbox");
        let mut dirs = std::fs::read_dir(&out).unwrap();
        let inc = dirs.next().expect("an incident in the outbox").unwrap();
        spool::Spool::read_failures(&inc.path())
    }

    #[test]
    fn a_failing_channel_s_attempts_are_counted_in_the_spool_while_the_other_delivers() {
        let RelayDown {
            t,
            s,
            chans,
            hook_sent,
            ..
        } = relay_down(Kind::Fenced);
        let mut r = Retries::default();
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(failures(&t)["smtp"].attempts, 1);
        assert!(!failures(&t).contains_key("webhook"));
        assert_eq!(hook_sent.borrow().len(), 1);
        assert_eq!(s.outbox().unwrap().0[0].done, vec!["webhook".to_string()]);
        // Backing off: a pass that is not due tries nothing and counts
        // nothing.
        let p = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert!(p.attempts.is_empty());
        assert_eq!(failures(&t)["smtp"].attempts, 1);
        // Due again (a restarted sender): one more failure, and the
        // webhook, done, is not tried again.
        send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut Retries::default()).unwrap();
        assert_eq!(failures(&t)["smtp"].attempts, 2);
        assert_eq!(hook_sent.borrow().len(), 1);
    }

    #[test]
    fn a_failure_that_cannot_be_recorded_still_backs_off_and_tries_the_other_channels() {
        let RelayDown {
            t,
            s,
            chans,
            hook_sent,
            ..
        } = relay_down(Kind::Fenced);
        let mut r = Retries::default();
        // Claim it, then make its failure record unwritable: a directory
        // where the temporary file goes.
        s.claim(
            &s.pending()
                .unwrap()
                .0
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>(),
        )
        .unwrap();
        let inc = s.outbox().unwrap().0[0].id.clone();
        let tmp = t.path().join("outbox").join(&inc).join(".tmp-failed-smtp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::write(tmp.join("x"), "").unwrap();
        let p = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert_eq!(p.unrecorded.len(), 1);
        assert_eq!(hook_sent.borrow().len(), 1, "the webhook still delivered");
        let p = send_pending(&s, &cfg(TEN_S), &chans, &Fixed, &mut r).unwrap();
        assert!(p.attempts.is_empty(), "still backing off");
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let s: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(s, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn without_channels_events_stay_pending() {
        let t = tempfile::tempdir().unwrap();
        let s = Spool::open(t.path()).unwrap();
        record(&s, Kind::Node);
        send_pending(&s, &cfg(TEN_S), &[], &Fixed, &mut Retries::default()).unwrap();
        assert_eq!(s.pending().unwrap().0.len(), 1);
    }

    #[test]
    fn the_test_incident_reaches_every_channel() {
        let (a, a_sent, _) = fake("smtp");
        let (b, _, b_down) = fake("webhook");
        *b_down.borrow_mut() = true;
        let res = send_test(&cfg(TEN_S), &[a, b], &Fixed);
        assert_eq!(res.len(), 2);
        assert!(res[0].result.is_ok());
        assert!(res[1].result.is_err());
        assert!(a_sent.borrow()[0].1.contains("test alert from mx2"));
    }
}
