//! When a volume fills (pure): a least-squares line through its recent samples of
//! used bytes, and where that line meets the volume's size. Times are seconds on
//! any clock (the sampler's), so the tests need no clock at all.

use std::collections::VecDeque;

/// One sample: when (seconds), bytes used, bytes free (`None`: unknown, as for a
/// database whose volume watchpost cannot see).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: f64,
    pub used: f64,
    pub free: Option<f64>,
}

/// The samples of one volume over the forecast window.
#[derive(Debug, Clone, Default)]
pub struct Series {
    samples: VecDeque<Sample>,
}

/// The least-squares slope of `used` over `at`, in bytes a second (`None` with
/// fewer than two samples or all at one time).
pub fn slope(samples: &VecDeque<Sample>) -> Option<f64> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    // Centred on the first sample: the times are large, their squares larger.
    let t0 = samples.front()?.at;
    let (mut st, mut su, mut stt, mut stu) = (0.0, 0.0, 0.0, 0.0);
    for s in samples {
        let t = s.at - t0;
        st += t;
        su += s.used;
        stt += t * t;
        stu += t * s.used;
    }
    let den = n * stt - st * st;
    if den.abs() < f64::EPSILON {
        return None;
    }
    Some((n * stu - st * su) / den)
}

impl Series {
    /// Add a sample and forget those older than `window` seconds before it; at most
    /// `max` are kept.
    pub fn push(&mut self, s: Sample, window: f64, max: usize) {
        self.samples.push_back(s);
        while self.samples.front().is_some_and(|f| s.at - f.at > window) || self.samples.len() > max
        {
            self.samples.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    pub fn latest(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    /// Growth in bytes a second over the window.
    pub fn growth(&self) -> Option<f64> {
        slope(&self.samples)
    }

    /// When (seconds on the samples' clock) the volume is full at this growth: the
    /// line through the samples reaches the used bytes of a full volume. `None` when
    /// not filling or the free space is unknown.
    pub fn full_at(&self) -> Option<f64> {
        let growth = self.growth().filter(|g| *g > 0.0)?;
        let last = self.latest()?;
        let capacity = last.used + last.free?;
        // The line's value at the last sample (its mean plus the slope's part), so
        // one noisy sample does not move the forecast by itself.
        let n = self.samples.len() as f64;
        let mean_t = self.samples.iter().map(|s| s.at).sum::<f64>() / n;
        let mean_u = self.samples.iter().map(|s| s.used).sum::<f64>() / n;
        let fitted_now = mean_u + growth * (last.at - mean_t);
        Some(last.at + (capacity - fitted_now).max(0.0) / growth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: f64 = 1024.0 * 1024.0;

    fn filling(n: usize, every: f64, per: f64, size: f64) -> Series {
        let mut s = Series::default();
        for i in 0..n {
            let used = i as f64 * per;
            s.push(
                Sample {
                    at: 1000.0 + i as f64 * every,
                    used,
                    free: Some(size - used),
                },
                3600.0,
                10_000,
            );
        }
        s
    }

    #[test]
    fn a_steady_fill_is_forecast_to_the_second() {
        // 1 MiB every 2 s on 64 MiB: full 128 s after the first sample.
        let s = filling(10, 2.0, MIB, 64.0 * MIB);
        assert!((s.growth().expect("growth") - MIB / 2.0).abs() < 1.0);
        assert!((s.full_at().expect("filling") - 1128.0).abs() < 1e-6);
    }

    #[test]
    fn a_volume_that_does_not_grow_is_never_full() {
        let mut s = Series::default();
        for i in 0..10 {
            s.push(
                Sample {
                    at: f64::from(i),
                    used: 5.0 * MIB - f64::from(i % 2) * MIB,
                    free: Some(10.0 * MIB),
                },
                3600.0,
                100,
            );
        }
        assert_eq!(s.full_at(), None);
        let one = filling(1, 2.0, MIB, 64.0 * MIB);
        assert_eq!((one.growth(), one.full_at()), (None, None));
    }

    #[test]
    fn the_window_and_the_cap_bound_the_samples() {
        let mut s = Series::default();
        for i in 0..100 {
            s.push(
                Sample {
                    at: f64::from(i) * 10.0,
                    used: 0.0,
                    free: None,
                },
                60.0,
                1000,
            );
        }
        assert_eq!(s.len(), 7, "the last 60 s at one sample per 10 s");
        let mut capped = Series::default();
        for i in 0..100 {
            capped.push(
                Sample {
                    at: f64::from(i),
                    used: 0.0,
                    free: None,
                },
                1e9,
                5,
            );
        }
        assert_eq!(capped.len(), 5);
    }
}
