//! How long the keeper's slot writes take: a fixed-bucket histogram the
//! keeper fills and reports over its socket (`client::Status`), for the
//! exporter's `mailha_lease_renewal_duration_seconds`.
//!
//! A renewal that lands late is the first sign of a lease disk going bad:
//! the keeper fences itself when writes miss `renew_fail`, so an operator
//! wants to see the tail creep up long before that. Pure: durations in,
//! counts out; the keeper measures.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Upper bounds in seconds. From a local SSD (well under a millisecond)
/// to the slowest io_timeout `Timing::check` accepts: every bucket an
/// operator's alert could sit on, and few enough to stay cheap per scrape.
pub const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counts per bucket (not cumulative: `counts[i]` holds the durations in
/// (BOUNDS[i-1], BOUNDS[i]]; the last slot those above every bound).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub counts: Vec<u64>,
    pub sum_s: f64,
    pub count: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BOUNDS.len() + 1],
            sum_s: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, d: Duration) {
        if self.counts.len() != BOUNDS.len() + 1 {
            self.counts = vec![0; BOUNDS.len() + 1];
        }
        let s = d.as_secs_f64();
        let i = BOUNDS.iter().position(|b| s <= *b).unwrap_or(BOUNDS.len());
        self.counts[i] += 1;
        self.sum_s += s;
        self.count += 1;
    }

    /// (upper bound, cumulative count) as Prometheus wants them, ending
    /// with +Inf = count. None when the counts do not match BOUNDS (a
    /// keeper of another version): better no histogram than a wrong one.
    pub fn cumulative(&self) -> Option<Vec<(f64, u64)>> {
        if self.counts.len() != BOUNDS.len() + 1 || self.counts.iter().sum::<u64>() != self.count {
            return None;
        }
        let mut acc = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            out.push((BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), acc));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_renewal_lands_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::new();
        h.observe(Duration::from_micros(300)); // an SSD
        h.observe(ms(1)); // exactly on a bound: that bucket (le)
        h.observe(ms(30)); // a busy SAN
        h.observe(ms(3000)); // beyond every bound
        let c = h.cumulative().unwrap();
        assert_eq!(c[0], (0.0005, 1));
        assert_eq!(c[1], (0.001, 2));
        assert_eq!(c[5], (0.025, 2));
        assert_eq!(c[6], (0.05, 3));
        assert_eq!(c[11], (2.5, 3));
        assert_eq!(c[12].1, 4);
        assert!(c[12].0.is_infinite());
        assert_eq!(h.count, 4);
        assert!((h.sum_s - 3.0313).abs() < 1e-9);
    }

    #[test]
    fn counts_of_another_shape_give_no_histogram_rather_than_a_wrong_one() {
        let h = Histogram {
            counts: vec![1, 2, 3],
            sum_s: 1.0,
            count: 6,
        };
        assert_eq!(h.cumulative(), None);
        let mut h = Histogram::new();
        h.observe(ms(1));
        h.count = 5;
        assert_eq!(h.cumulative(), None);
    }

    #[test]
    fn an_empty_histogram_is_all_zero_up_to_inf() {
        let c = Histogram::new().cumulative().unwrap();
        assert_eq!(c.len(), BOUNDS.len() + 1);
        assert!(c.iter().all(|(_, n)| *n == 0));
    }
}
