//! The one formula that ties the lease's timeouts together (docs/lease.md
//! has the proof sketch). With `I` the deadline of one lease I/O and `W`
//! the watchdog timeout:
//!
//! ```text
//! renew      R = 2 I          a renewal is started every R
//! renew_fail F = 8 I          no successful renewal for F: self-fence, stop petting
//! margin     M = max(I, 100 ms)
//! host_dead  H = F + W + I + M  a peer whose counter did not move for H is gone
//! window       = 2 I          collision window of an acquire
//! ```
//!
//! R and F follow sanlock (renewal 2 x io_timeout, renewal fail 8 x
//! io_timeout). sanlock's host_dead is F + W; mailha adds I because an
//! observer cannot know when, inside its read, the block was sampled, nor
//! when inside the holder's write the block landed; and a margin M for
//! what the proof takes as instantaneous and a real machine does not: the
//! pet written a moment after the keeper looked at its clock, the
//! watchdog's own latency from expiry to reset (a kernel timer; a
//! hardware counter whose driver rounded the timeout *down*, the keeper
//! refuses one rounded up), and clock-rate drift between the two machines
//! (parts per million). M is at least 100 ms however short I is.
//!
//! `Timing::check` states the inequalities the proof needs; any set of
//! numbers that passes them is safe, the standard formula is one such set.

use std::time::Duration;

/// The smallest margin host_dead keeps (see the module's formula).
pub const MIN_MARGIN: Duration = Duration::from_millis(100);

/// host_dead's margin for an I/O deadline `io`.
pub fn margin(io: Duration) -> Duration {
    io.max(MIN_MARGIN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timing {
    pub io_timeout: Duration,
    pub renew: Duration,
    pub renew_fail: Duration,
    pub watchdog: Duration,
    pub host_dead: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("io_timeout must be at least 1ms")]
    ZeroIo,
    #[error(
        "renew ({renew:?}) is shorter than io_timeout ({io:?}): a renewal would start before the previous one's deadline"
    )]
    RenewBeforeDeadline { renew: Duration, io: Duration },
    #[error(
        "renew_fail ({fail:?}) is under 2 x renew ({renew:?}): one late renewal would already self-fence the node"
    )]
    FailTooShort { fail: Duration, renew: Duration },
    #[error("the watchdog timeout ({watchdog:?}) is shorter than io_timeout ({io:?})")]
    WatchdogUnderIo { watchdog: Duration, io: Duration },
    #[error(
        "the watchdog timeout ({0:?}) must be a whole number of seconds, at least 1s (the kernel's watchdog API counts seconds)"
    )]
    WatchdogGranularity(Duration),
    #[error(
        "host_dead ({host_dead:?}) is under renew_fail + watchdog + io_timeout + margin ({needed:?}): a frozen holder could still write when its peer takes over"
    )]
    HostDeadTooShort {
        host_dead: Duration,
        needed: Duration,
    },
}

impl Timing {
    /// The standard numbers for an I/O deadline and a watchdog timeout.
    pub fn standard(io_timeout: Duration, watchdog: Duration) -> Result<Timing, TimingError> {
        let t = Timing {
            io_timeout,
            renew: io_timeout * 2,
            renew_fail: io_timeout * 8,
            watchdog,
            host_dead: io_timeout * 8 + watchdog + io_timeout + margin(io_timeout),
        };
        t.check()?;
        Ok(t)
    }

    /// The inequalities docs/lease.md's proof relies on.
    pub fn check(&self) -> Result<(), TimingError> {
        let io = self.io_timeout;
        if io < Duration::from_millis(1) {
            return Err(TimingError::ZeroIo);
        }
        if self.renew < io {
            return Err(TimingError::RenewBeforeDeadline {
                renew: self.renew,
                io,
            });
        }
        if self.renew_fail < self.renew * 2 {
            return Err(TimingError::FailTooShort {
                fail: self.renew_fail,
                renew: self.renew,
            });
        }
        if self.watchdog < io {
            return Err(TimingError::WatchdogUnderIo {
                watchdog: self.watchdog,
                io,
            });
        }
        let needed = self.min_host_dead();
        if self.host_dead < needed {
            return Err(TimingError::HostDeadTooShort {
                host_dead: self.host_dead,
                needed,
            });
        }
        Ok(())
    }

    /// `check` plus what a real watchdog device imposes.
    pub fn check_for_device(&self) -> Result<(), TimingError> {
        self.check()?;
        let w = self.watchdog;
        if w < Duration::from_secs(1) || w.subsec_nanos() != 0 {
            return Err(TimingError::WatchdogGranularity(w));
        }
        Ok(())
    }

    /// The shortest host_dead that keeps the invariant.
    pub fn min_host_dead(&self) -> Duration {
        self.renew_fail + self.watchdog + self.io_timeout + margin(self.io_timeout)
    }

    /// How long an acquirer waits between its claim landing and reading
    /// the peer again.
    pub fn collision_window(&self) -> Duration {
        self.io_timeout * 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_defaults_give_the_documented_numbers() {
        // docs/lease.md: io_timeout 1s and watchdog 5s (mailha.toml's
        // defaults) make renew 2s, renew_fail 8s, host_dead 15s.
        let t = Timing::standard(S(1), S(5)).unwrap();
        assert_eq!(
            (t.renew, t.renew_fail, t.host_dead, t.collision_window()),
            (S(2), S(8), S(15), S(2))
        );
        t.check_for_device().unwrap();
    }

    #[test]
    fn sanlocks_default_numbers_fit_the_same_inequalities_once_2io_is_added() {
        // sanlock: io_timeout 10s, renewal 20s, fail 80s, watchdog 60s,
        // host_dead 140s. The same numbers with mailha's host_dead: 160s.
        let t = Timing::standard(S(10), S(60)).unwrap();
        assert_eq!((t.renew, t.renew_fail, t.host_dead), (S(20), S(80), S(160)));
        let sanlock = Timing {
            host_dead: S(140),
            ..t
        };
        assert!(matches!(
            sanlock.check(),
            Err(TimingError::HostDeadTooShort { .. })
        ));
    }

    #[test]
    fn a_host_dead_one_millisecond_short_is_refused() {
        let t = Timing::standard(Duration::from_millis(250), S(2)).unwrap();
        let short = Timing {
            host_dead: t.host_dead - Duration::from_millis(1),
            ..t
        };
        assert_eq!(
            short.check(),
            Err(TimingError::HostDeadTooShort {
                host_dead: Duration::from_millis(4499),
                needed: Duration::from_millis(4500),
            })
        );
    }

    #[test]
    fn each_inequality_is_enforced() {
        let t = Timing::standard(S(1), S(5)).unwrap();
        let bad = [
            Timing {
                io_timeout: Duration::ZERO,
                ..t
            },
            Timing {
                renew: Duration::from_millis(999),
                ..t
            },
            Timing {
                renew_fail: S(3),
                ..t
            },
            Timing {
                watchdog: Duration::from_millis(500),
                host_dead: S(20),
                ..t
            },
        ];
        let errs: Vec<_> = bad.iter().map(|b| b.check().unwrap_err()).collect();
        assert!(matches!(errs[0], TimingError::ZeroIo));
        assert!(matches!(errs[1], TimingError::RenewBeforeDeadline { .. }));
        assert!(matches!(errs[2], TimingError::FailTooShort { .. }));
        assert!(matches!(errs[3], TimingError::WatchdogUnderIo { .. }));
    }

    #[test]
    fn a_short_io_timeout_still_leaves_the_margin() {
        // 20 ms lease I/O, 1 s watchdog: renew_fail 160 ms, and host_dead
        // keeps 100 ms of margin, not 20 ms.
        let t = Timing::standard(Duration::from_millis(20), S(1)).unwrap();
        assert_eq!(t.host_dead, Duration::from_millis(160 + 1000 + 20 + 100));
        let short = Timing {
            host_dead: Duration::from_millis(160 + 1000 + 40),
            ..t
        };
        assert!(matches!(
            short.check(),
            Err(TimingError::HostDeadTooShort { .. })
        ));
    }

    #[test]
    fn a_real_watchdog_needs_whole_seconds() {
        let t = Timing::standard(Duration::from_millis(100), Duration::from_millis(1500)).unwrap();
        assert_eq!(
            t.check_for_device(),
            Err(TimingError::WatchdogGranularity(Duration::from_millis(
                1500
            )))
        );
    }
}
