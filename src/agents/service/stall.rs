//! When a start stops waiting for a daemon that is up but does not
//! answer (`start_stall`).
//!
//! A start used to wait for the probe until 90% of its op timeout (54 s of
//! Pacemaker's 60 s) whenever the daemon's process was up: that is right
//! for MariaDB recovering InnoDB after a crash (up, port closed, busy for
//! minutes), and wrong for a daemon that is up and will never answer (its
//! port filtered, a wedged listener): the mail waited the whole time
//! before it moved to the other node.
//!
//! So a start tells the two apart by what the daemon does while its probe
//! fails. Each look (every poll, ~50 ms) feeds `Stall::look` the daemon's
//! work so far (`Work`): the CPU time and the bytes read and written by
//! its processes, and how many listening sockets they hold. A daemon
//! *makes progress* when, since its last progress, it used at least
//! `PROGRESS_CPU` of CPU, or read and wrote at least `PROGRESS_IO`, or
//! holds a listening socket more. A start gives up (OCF_ERR_GENERIC, the
//! exit reason naming the probe's failure, the log what the daemon did) when the
//! daemon's process has been up, its probe failing, with no progress for
//! `start_stall`; it keeps waiting, up to the op timeout as before, while
//! the daemon makes progress.
//!
//! - A daemon recovering (InnoDB: reads the redo log, applies it), loading
//!   (clamd's signatures, spamd's rules) or still forking its workers uses
//!   far more than 50 ms of CPU or 1 MiB of I/O every few seconds.
//! - An idle daemon does not: a healthy Postfix whose port is filtered
//!   uses nothing until mail reaches it; MariaDB idle ~1-5 ms/s.
//! - What a daemon's own processes do counts, nothing else: the probe's
//!   own connection costs the daemon a greeting (bytes, not megabytes).
//! - Sums may drop (a process exits and nobody in the set reaps it): the
//!   mark then follows them down, so later work is still seen.
//!
//! Pure: no clock and no /proc here; the start's loop (`argv.rs`,
//! `unit.rs`) reads both and feeds them in.

use std::time::Duration;

/// CPU time that counts as progress (five of the kernel's 10 ms ticks:
/// one tick is noise).
pub const PROGRESS_CPU: Duration = Duration::from_millis(50);

/// Bytes read plus written that count as progress.
pub const PROGRESS_IO: u64 = 1 << 20;

/// What a daemon's processes have done so far: the sums over them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Work {
    /// CPU time, user + system, its children's it reaped included.
    pub cpu: Duration,
    /// Bytes read and written (`rchar` + `wchar`: files, pipes, sockets).
    pub io: u64,
    /// Listening sockets (TCP or Unix) its processes hold.
    pub listeners: u32,
}

impl Work {
    /// Work gained since `mark`, when it is progress: why, in words.
    fn progress_since(&self, mark: &Work) -> Option<String> {
        let cpu = self.cpu.saturating_sub(mark.cpu);
        let io = self.io.saturating_sub(mark.io);
        if self.listeners > mark.listeners {
            Some(format!(
                "{} listening socket(s) more",
                self.listeners - mark.listeners
            ))
        } else if cpu >= PROGRESS_CPU {
            Some(format!("{} ms of CPU", cpu.as_millis()))
        } else if io >= PROGRESS_IO {
            Some(format!("{} KiB of I/O", io / 1024))
        } else {
            None
        }
    }

    /// Each sum no higher than `other`'s (a process left the set).
    fn floor(&self, other: &Work) -> Work {
        Work {
            cpu: self.cpu.min(other.cpu),
            io: self.io.min(other.io),
            listeners: self.listeners.min(other.listeners),
        }
    }
}

/// A start that gave up: what the reason says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// How long the daemon's process has been seen up, its probe failing.
    pub up_for: Duration,
    /// How long since its last progress (at least the limit).
    pub idle: Duration,
    /// What it did in that time (below the thresholds).
    pub did: Work,
    /// Its last progress, if it made any while up: what it was and how
    /// long before giving up.
    pub last_progress: Option<(String, Duration)>,
}

/// How much of an exit reason Pacemaker keeps (it cuts the rest): what
/// matters comes first.
pub const REASON_KEPT: usize = 128;

impl Stalled {
    /// The exit reason: the service, that the start gave up and why, then
    /// the probe's failure, short enough to survive Pacemaker's cut when
    /// the failure is (`REASON_KEPT`).
    pub fn reason(&self, name: &str, failure: &str) -> String {
        format!(
            "{name}: start given up, no progress for {:.1} s: {failure}",
            self.idle.as_secs_f64()
        )
    }

    /// The whole story, for the agent's log (Pacemaker logs its output).
    pub fn detail(&self, name: &str, failure: &str, limit: Duration) -> String {
        let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
        let last = match &self.last_progress {
            Some((what, ago)) => format!("; its last progress was {what}, {} ago", secs(*ago)),
            None => String::new(),
        };
        format!(
            "{name}: gave up the start: its process is up but its probe still fails after {}, \
             with no progress for {} (start_stall {}: {} ms of CPU, {} KiB of I/O, no new listening socket{last}): {failure}",
            secs(self.up_for),
            secs(self.idle),
            humantime::format_duration(limit),
            self.did.cpu.as_millis(),
            self.did.io / 1024,
        )
    }
}

/// The start's watch over a daemon whose probe fails.
#[derive(Debug, Clone)]
pub struct Stall {
    limit: Duration,
    /// Since when the process is up with its probe failing.
    up_since: Option<Duration>,
    /// The last progress (or the first look): when, and the work then.
    mark: Option<(Duration, Work)>,
    last_progress: Option<(String, Duration)>,
}

impl Stall {
    pub fn new(limit: Duration) -> Stall {
        Stall {
            limit,
            up_since: None,
            mark: None,
            last_progress: None,
        }
    }

    /// One look, `at` since the start began, at a daemon whose probe
    /// failed: `work` is `Some` while its process is up, `None` while it is
    /// not (the start runs it again; the watch starts over). `Some(_)`:
    /// give up.
    pub fn look(&mut self, at: Duration, work: Option<Work>) -> Option<Stalled> {
        let Some(work) = work else {
            *self = Stall::new(self.limit);
            return None;
        };
        let up_since = *self.up_since.get_or_insert(at);
        let Some((mark_at, mark)) = self.mark else {
            self.mark = Some((at, work));
            return None;
        };
        if let Some(what) = work.progress_since(&mark) {
            self.last_progress = Some((what, at));
            self.mark = Some((at, work));
            return None;
        }
        let idle = at.saturating_sub(mark_at);
        if idle >= self.limit {
            return Some(Stalled {
                up_for: at.saturating_sub(up_since),
                idle,
                did: Work {
                    cpu: work.cpu.saturating_sub(mark.cpu),
                    io: work.io.saturating_sub(mark.io),
                    listeners: 0,
                },
                last_progress: self
                    .last_progress
                    .clone()
                    .map(|(what, when)| (what, at.saturating_sub(when))),
            });
        }
        self.mark = Some((mark_at, mark.floor(&work)));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(3);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn work(cpu_ms: u64, io: u64, listeners: u32) -> Work {
        Work {
            cpu: ms(cpu_ms),
            io,
            listeners,
        }
    }

    /// Looks every 50 ms from `from` to `to` (ms), the work given by `f`;
    /// the first verdict to give up, and when.
    fn run(
        stall: &mut Stall,
        from: u64,
        to: u64,
        f: impl Fn(u64) -> Option<Work>,
    ) -> Option<(u64, Stalled)> {
        (from..=to)
            .step_by(50)
            .find_map(|t| stall.look(ms(t), f(t)).map(|s| (t, s)))
    }

    #[test]
    fn an_idle_daemon_whose_port_never_answers_is_given_up_after_the_limit() {
        // Postfix up at 0.6 s behind a filtered port: a little work while
        // its workers start, then nothing.
        let mut s = Stall::new(LIMIT);
        let (at, why) = run(&mut s, 600, 60_000, |t| {
            Some(work((t.min(900) - 600) / 10, 4096, 2))
        })
        .expect("gives up");
        assert_eq!(at, 3600, "the limit after the first look");
        assert_eq!(why.idle, LIMIT);
        assert_eq!(why.up_for, LIMIT);
        assert_eq!(why.did.cpu, ms(30), "below the threshold");
        assert_eq!(why.last_progress, None);
        let failure = "postfix probe: connect 127.0.0.1:25: Connection refused (os error 111)";
        let reason = why.reason("postfix", failure);
        assert_eq!(
            reason,
            "postfix: start given up, no progress for 3.0 s: postfix probe: connect 127.0.0.1:25: Connection refused (os error 111)"
        );
        assert!(reason.len() <= REASON_KEPT, "Pacemaker keeps it whole");
        let detail = why.detail("postfix", failure, LIMIT);
        assert!(
            detail.starts_with("postfix: gave up the start: its process is up but its probe still fails after 3.0 s, with no progress for 3.0 s (start_stall 3s: 30 ms of CPU, 0 KiB of I/O"),
            "{detail}"
        );
        assert!(detail.ends_with(&format!("): {failure}")), "{detail}");
    }

    #[test]
    fn a_recovering_daemon_that_keeps_working_is_never_given_up() {
        // InnoDB crash recovery: 20% of a CPU for two minutes, then the
        // port opens (the start returns: no more looks).
        let mut s = Stall::new(LIMIT);
        assert_eq!(run(&mut s, 0, 120_000, |t| Some(work(t / 5, 0, 0))), None);
    }

    #[test]
    fn io_alone_is_progress() {
        // Reading the redo log from the page cache: little CPU, 2 MiB/s.
        let mut s = Stall::new(LIMIT);
        assert_eq!(
            run(&mut s, 0, 60_000, |t| Some(work(t / 1000, t * 2 * 1024, 0))),
            None
        );
    }

    #[test]
    fn a_new_listening_socket_is_progress() {
        // Idle, but opens a listener every 2 s (a daemon binding its
        // services one after another).
        let mut s = Stall::new(LIMIT);
        assert_eq!(
            run(&mut s, 0, 20_000, |t| Some(work(0, 0, (t / 2000) as u32))),
            None
        );
    }

    #[test]
    fn progress_that_stops_starts_the_clock_again() {
        // Busy for 5 s (recovery done), then silent with the port shut:
        // given up the limit after the last progress, which it names.
        let mut s = Stall::new(LIMIT);
        let (at, why) =
            run(&mut s, 0, 60_000, |t| Some(work(t.min(5000) / 2, 0, 0))).expect("gives up");
        assert!((8000..=8200).contains(&at), "{at}");
        assert_eq!(why.up_for, ms(at));
        let (what, ago) = why.last_progress.clone().unwrap();
        assert!(what.ends_with("ms of CPU"), "{what}");
        assert_eq!(ago, why.idle);
        assert!(
            why.detail("mysql", "x", LIMIT)
                .contains("its last progress was")
        );
    }

    #[test]
    fn a_trickle_below_the_thresholds_is_no_progress() {
        // 10 ms of CPU a second (1%): a poll loop, not work.
        let mut s = Stall::new(LIMIT);
        let (at, _) = run(&mut s, 0, 60_000, |t| Some(work(t / 100, 0, 0))).expect("gives up");
        assert_eq!(at, 3000);
    }

    #[test]
    fn work_adds_up_across_looks_until_it_is_progress() {
        // 10 ms of CPU per second: progress every 5 s, so never stalled
        // for 6 s ...
        let mut s = Stall::new(Duration::from_secs(6));
        assert_eq!(run(&mut s, 0, 60_000, |t| Some(work(t / 100, 0, 0))), None);
        // ... but stalled for 3 s.
        let mut s = Stall::new(LIMIT);
        assert!(run(&mut s, 0, 60_000, |t| Some(work(t / 100, 0, 0))).is_some());
    }

    #[test]
    fn a_process_that_went_down_starts_the_watch_over() {
        let mut s = Stall::new(LIMIT);
        assert_eq!(run(&mut s, 0, 2900, |_| Some(Work::default())), None);
        // Down (the start runs it again), then up again: a new watch.
        assert_eq!(s.look(ms(2950), None), None);
        assert_eq!(run(&mut s, 3000, 5950, |_| Some(Work::default())), None);
        let why = s.look(ms(6000), Some(Work::default())).expect("gives up");
        assert_eq!(why.up_for, LIMIT);
    }

    #[test]
    fn sums_that_drop_do_not_hide_later_work() {
        // A worker with 400 ms of CPU exits unreaped by the set: the sum
        // drops, then grows by 60 ms: progress.
        let mut s = Stall::new(LIMIT);
        assert_eq!(s.look(ms(0), Some(work(500, 0, 3))), None);
        assert_eq!(s.look(ms(1000), Some(work(100, 0, 2))), None);
        assert_eq!(s.look(ms(2000), Some(work(160, 0, 2))), None);
        // The mark moved to 2 s: nothing is given up at 3 s.
        assert_eq!(s.look(ms(3000), Some(work(160, 0, 2))), None);
        assert!(s.look(ms(5000), Some(work(160, 0, 2))).is_some());
    }
}
