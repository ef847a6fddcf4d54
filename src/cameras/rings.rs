//! Counts per time bucket over a fixed span (the last minute by second, the last hour
//! by minute, the last day by hour), in constant memory. Times are unix seconds; a
//! time older than the span is not counted, and a clock that steps back only lands in
//! an older bucket.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeRing {
    /// Seconds per bucket.
    width: f64,
    /// The index (`t / width`) of the newest bucket.
    newest: i64,
    counts: Vec<u32>,
}

impl TimeRing {
    pub fn new(width: f64, buckets: usize) -> Self {
        Self {
            width,
            newest: 0,
            counts: vec![0; buckets.max(1)],
        }
    }

    fn len(&self) -> i64 {
        self.counts.len() as i64
    }

    fn index(&self, t: f64) -> i64 {
        (t / self.width).floor() as i64
    }

    fn slot(&self, index: i64) -> usize {
        // `rem_euclid` of a positive length is in 0..len.
        index.rem_euclid(self.len()) as usize
    }

    /// Move the newest bucket forward to `index`, emptying the buckets passed over.
    fn advance(&mut self, index: i64) {
        if index <= self.newest {
            return;
        }
        if index - self.newest >= self.len() {
            self.counts.iter_mut().for_each(|c| *c = 0);
        } else {
            for i in self.newest + 1..=index {
                let s = self.slot(i);
                self.counts[s] = 0;
            }
        }
        self.newest = index;
    }

    pub fn add(&mut self, t: f64, n: u32) {
        let index = self.index(t);
        self.advance(index);
        if index <= self.newest - self.len() {
            return; // older than the span
        }
        let s = self.slot(index);
        self.counts[s] = self.counts[s].saturating_add(n);
    }

    /// The counts of the span ending at `now`, oldest first.
    pub fn series(&self, now: f64) -> Vec<u32> {
        let end = self.index(now);
        (end - self.len() + 1..=end)
            .map(|i| {
                if i > self.newest || i <= self.newest - self.len() {
                    0
                } else {
                    self.counts[self.slot(i)]
                }
            })
            .collect()
    }

    /// Everything counted in the span ending at `now`.
    pub fn total(&self, now: f64) -> u64 {
        self.series(now).iter().map(|&c| u64::from(c)).sum()
    }

    /// When the span ending at `now` starts (the oldest bucket's start).
    pub fn span_start(&self, now: f64) -> f64 {
        (self.index(now) - self.len() + 1) as f64 * self.width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fall_out_of_the_span_as_time_passes() {
        let mut r = TimeRing::new(60.0, 60);
        let t0 = 1_800_000_000.0;
        r.add(t0, 1);
        r.add(t0 + 30.0, 2);
        r.add(t0 + 61.0, 4);
        assert_eq!(r.total(t0 + 61.0), 7);
        // 59 minutes later the first minute is still in the hour; 60, it is not.
        assert_eq!(r.total(t0 + 59.0 * 60.0), 7);
        assert_eq!(r.total(t0 + 60.0 * 60.0), 4);
        assert_eq!(r.total(t0 + 10_000.0), 0);
        let s = r.series(t0 + 61.0);
        assert_eq!(s.len(), 60);
        assert_eq!(&s[58..], &[3, 4]);
    }

    #[test]
    fn a_step_back_lands_in_an_older_bucket_and_ancient_times_are_dropped() {
        let mut r = TimeRing::new(1.0, 60);
        let t0 = 1_800_000_000.0;
        r.add(t0 + 10.0, 1);
        r.add(t0 + 5.0, 1);
        r.add(t0 - 1000.0, 1);
        assert_eq!(r.total(t0 + 10.0), 2);
        // Far ahead: everything is gone, nothing panics.
        r.add(t0 + 1e6, 1);
        assert_eq!(r.total(t0 + 1e6), 1);
    }
}
