//! A camera's rhythm: how long it usually stays silent, learned from the gaps between
//! its images, by the hour of day the silence starts in (a camera that is quiet all
//! night is not late at 02:00; the same silence at 14:00 is news).
//!
//! Kept compactly: per hour of day, gaps are counted in logarithmic buckets (1 s,
//! 1.5 s, 2.25 s, … up to about 3 days), each weighted by its length, so the statistic
//! is "how long the silences are that the camera's silent time is spent in", not
//! dominated by the many short gaps inside a burst of motion. Old gaps fade: every
//! weight halves in `HALF_LIFE`, so a gap a week old counts a twentieth of a new one.
//! No query, no per-image allocation: learning and asking are a few array operations.

use serde::{Deserialize, Serialize};

/// Buckets per hour: upper bounds 1.5^0 … 1.5^(BUCKETS-1) seconds (the last ≈ 3.4 d).
const BUCKETS: usize = 32;
const GROWTH: f64 = 1.5;
/// A week-old gap weighs 1/20 of a new one: 7 d × ln 2 / ln 20.
const HALF_LIFE: f64 = 7.0 * 86_400.0 * std::f64::consts::LN_2 / 2.995_732_273_553_991;
/// The share of silent time spent in gaps at most as long as the expected silence.
const QUANTILE: f64 = 0.95;
/// Fewer (faded) gaps than this in all: too little history.
const MIN_GAPS: f64 = 10.0;
/// Fewer than this around the hour the silence started: use the whole day's gaps.
const MIN_GAPS_NEAR: f64 = 3.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rhythm {
    /// Faded total length of the gaps, by hour of day and bucket.
    weight: Vec<Vec<f64>>,
    /// Faded number of the gaps, by hour of day and bucket.
    count: Vec<Vec<f64>>,
    /// When the weights were last faded (unix seconds).
    faded_at: f64,
}

impl Default for Rhythm {
    fn default() -> Self {
        Self {
            weight: vec![vec![0.0; BUCKETS]; 24],
            count: vec![vec![0.0; BUCKETS]; 24],
            faded_at: 0.0,
        }
    }
}

fn bucket(gap: f64) -> usize {
    if gap <= 1.0 {
        return 0;
    }
    ((gap.ln() / GROWTH.ln()).ceil() as usize).min(BUCKETS - 1)
}

fn upper(bucket: usize) -> f64 {
    GROWTH.powi(bucket as i32)
}

fn hour_of_day(t: f64) -> usize {
    ((t / 3600.0).floor() as i64).rem_euclid(24) as usize
}

impl Rhythm {
    /// A stored rhythm of the wrong shape (another version) is forgotten, not trusted.
    pub fn is_well_formed(&self) -> bool {
        self.weight.len() == 24
            && self.count.len() == 24
            && self
                .weight
                .iter()
                .chain(&self.count)
                .all(|b| b.len() == BUCKETS && b.iter().all(|w| w.is_finite() && *w >= 0.0))
    }

    fn fade(&mut self, now: f64) {
        if now <= self.faded_at {
            return;
        }
        let factor = 0.5f64.powf((now - self.faded_at) / HALF_LIFE);
        for row in self.weight.iter_mut().chain(self.count.iter_mut()) {
            row.iter_mut().for_each(|w| *w *= factor);
        }
        self.faded_at = now;
    }

    /// A silence from `start` that lasted `gap` seconds, ending at `now`.
    pub fn learn(&mut self, start: f64, gap: f64, now: f64) {
        if !(gap.is_finite() && gap >= 0.0) {
            return;
        }
        self.fade(now);
        let (h, b) = (hour_of_day(start), bucket(gap));
        self.weight[h][b] += gap;
        self.count[h][b] += 1.0;
    }

    /// The longest silence to expect when one starts at `start`, within `min..=max`;
    /// `max` when there is too little history. The flag says whether it was learned.
    pub fn expected(&self, start: f64, min: f64, max: f64) -> (f64, bool) {
        let total: f64 = self.count.iter().flatten().sum();
        let total_weight: f64 = self.weight.iter().flatten().sum();
        if total < MIN_GAPS || total_weight < 2.0 * max {
            return (max, false);
        }
        let h = hour_of_day(start);
        let near = [(h + 23) % 24, h, (h + 1) % 24];
        let near_count: f64 = near
            .iter()
            .map(|&i| self.count[i].iter().sum::<f64>())
            .sum();
        let hours: Vec<usize> = if near_count >= MIN_GAPS_NEAR {
            near.to_vec()
        } else {
            (0..24).collect()
        };
        let by_bucket: Vec<f64> = (0..BUCKETS)
            .map(|b| hours.iter().map(|&i| self.weight[i][b]).sum())
            .collect();
        let sum: f64 = by_bucket.iter().sum();
        let mut seen = 0.0;
        let mut at = BUCKETS - 1;
        for (b, w) in by_bucket.iter().enumerate() {
            seen += w;
            if seen >= QUANTILE * sum {
                at = b;
                break;
            }
        }
        (upper(at).clamp(min, max), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: f64 = 86_400.0;
    const MIN: f64 = 900.0;
    const MAX: f64 = DAY;

    /// A camera that sends a burst of 20 images (2 s apart) every 30 min from 06:00 to
    /// 22:00, and nothing at night, for `days` days from a midnight.
    fn day_camera(days: usize) -> (Rhythm, f64) {
        let mut r = Rhythm::default();
        let t0 = 1_799_971_200.0; // a midnight (UTC)
        let mut last: Option<f64> = None;
        for d in 0..days {
            let mut t = t0 + d as f64 * DAY + 6.0 * 3600.0;
            while t < t0 + d as f64 * DAY + 22.0 * 3600.0 {
                for i in 0..20 {
                    let now = t + i as f64 * 2.0;
                    if let Some(prev) = last {
                        r.learn(prev, now - prev, now);
                    }
                    last = Some(now);
                }
                t += 1800.0;
            }
        }
        (r, t0 + days as f64 * DAY)
    }

    #[test]
    fn too_little_history_gives_the_maximum() {
        let (r, _) = day_camera(0);
        assert_eq!(r.expected(0.0, MIN, MAX), (MAX, false));
        let mut r = Rhythm::default();
        for i in 0..5 {
            r.learn(i as f64 * 60.0, 60.0, (i + 1) as f64 * 60.0);
        }
        assert_eq!(r.expected(400.0, MIN, MAX).0, MAX);
    }

    #[test]
    fn the_night_is_expected_and_a_silent_afternoon_is_not() {
        let (r, midnight) = day_camera(7);
        let (afternoon, learned) = r.expected(midnight + 14.0 * 3600.0, MIN, MAX);
        assert!(learned);
        // Daytime silences are 30 min (minus the burst): expected within a bucket of it.
        assert!((1800.0..=4000.0).contains(&afternoon), "{afternoon}");
        // A silence starting at 22:00 is the night: 8 hours.
        let (night, _) = r.expected(midnight + 22.0 * 3600.0 - 1.0, MIN, MAX);
        assert!(night >= 8.0 * 3600.0, "{night}");
        assert!(night <= MAX);
    }

    #[test]
    fn bounds_hold_and_bursts_do_not_shrink_the_silence() {
        let mut r = Rhythm::default();
        // 1,000 gaps of 0.5 s and two hours of silences of 10 min: the short gaps
        // are most gaps, but hardly any of the silent time.
        let mut t = 1_800_000_000.0;
        for _ in 0..1000 {
            r.learn(t, 0.5, t + 0.5);
            t += 0.5;
        }
        for _ in 0..12 {
            r.learn(t, 600.0, t + 600.0);
            t += 600.0;
        }
        let (e, learned) = r.expected(t, 60.0, 3600.0);
        assert!(learned);
        assert!((600.0..=900.0).contains(&e), "{e}");
        assert_eq!(r.expected(t, 1200.0, 3600.0).0, 1200.0, "min holds");
        assert_eq!(r.expected(t, 60.0, 300.0).0, 300.0, "max holds");
    }

    #[test]
    fn old_gaps_fade() {
        let mut r = Rhythm::default();
        let t = 1_800_000_000.0;
        for i in 0..20 {
            r.learn(t + i as f64 * 7200.0, 7200.0, t + (i + 1) as f64 * 7200.0);
        }
        let later = t + 14.0 * DAY;
        for i in 0..40 {
            let s = later + i as f64 * 1200.0;
            r.learn(s, 1200.0, s + 1200.0);
        }
        // Two weeks on, the new 20-min rhythm wins over the old 2-hour one.
        let (e, learned) = r.expected(later + 40.0 * 1200.0, 60.0, 4.0 * 3600.0);
        assert!(learned);
        assert!(e < 7200.0, "{e}");
    }
}
