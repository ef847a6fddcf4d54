//! Stuck or slow: per AI service, the requests in flight (from the first attempt to
//! the last retry) and the durations of the calls that answered over the last hour.
//! A service is *stuck* when its oldest request in flight is older than
//! `max(ai.stuck_factor × p99 of the last hour, ai.stuck_floor_seconds)`: it took a
//! request and does not answer. It is *slow* when it still answers but the median of
//! its last 5 minutes is more than `ai.slow_factor` times the median of the hour
//! before. On tokio's clock, so the tests run on a paused one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// How far back the durations go.
const HOUR: Duration = Duration::from_secs(3600);
/// The recent part a slow service is judged on.
const RECENT: Duration = Duration::from_secs(300);
/// Durations kept per service, at most (10 a second for an hour).
const CAP: usize = 36_000;
/// Answers needed in each part before a service can be called slow.
const MIN_ANSWERS: usize = 20;
/// How long a computed p99 and medians are reused.
const REUSE: Duration = Duration::from_secs(10);

/// How a service is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    Normal,
    /// It answers, ten times slower than it did.
    Slow,
    /// It took a request and has not answered for far longer than it ever takes.
    Stuck,
}

/// The rule.
#[derive(Debug, Clone, Copy)]
pub struct PaceRules {
    pub stuck_factor: f64,
    pub stuck_floor: Duration,
    pub slow_factor: f64,
}

/// One service's figures and verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct PaceView {
    pub service: String,
    pub pace: Pace,
    /// Age of the oldest request in flight.
    pub oldest_request_seconds: Option<f64>,
    /// When a request in flight counts as stuck.
    pub stuck_after_seconds: f64,
    pub p99_hour_seconds: Option<f64>,
    pub median_recent_seconds: Option<f64>,
    pub median_before_seconds: Option<f64>,
}

/// `(computed at, p99 of the hour, median of the last 5 minutes, median before)`.
type Figures = (Instant, Option<f64>, Option<f64>, Option<f64>);

#[derive(Default)]
struct Service {
    in_flight: BTreeMap<u64, Instant>,
    answers: VecDeque<(Instant, f64)>,
    cached: Option<Figures>,
}

pub struct Paces {
    rules: PaceRules,
    next: AtomicU64,
    services: Mutex<HashMap<String, Service>>,
}

/// A request in flight; it leaves when dropped.
pub struct InFlight {
    paces: Arc<Paces>,
    service: String,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(s) = self.paces.lock().get_mut(&self.service) {
            s.in_flight.remove(&self.id);
        }
    }
}

fn quantile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[i])
}

impl Paces {
    pub fn new(rules: PaceRules) -> Arc<Self> {
        Arc::new(Self {
            rules,
            next: AtomicU64::new(0),
            services: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Service>> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A request to `service` begins (its retries included).
    pub fn begin(self: &Arc<Self>, service: &str) -> InFlight {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(service.to_string())
            .or_default()
            .in_flight
            .insert(id, Instant::now());
        InFlight {
            paces: Arc::clone(self),
            service: service.to_string(),
            id,
        }
    }

    /// A call to `service` answered after `seconds`.
    pub fn answered(&self, service: &str, seconds: f64) {
        let now = Instant::now();
        let mut all = self.lock();
        let s = all.entry(service.to_string()).or_default();
        s.answers.push_back((now, seconds));
        while s
            .answers
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > HOUR)
            || s.answers.len() > CAP
        {
            s.answers.pop_front();
        }
    }

    /// How `service` is doing now.
    pub fn judge(&self, service: &str) -> PaceView {
        let now = Instant::now();
        let mut all = self.lock();
        let s = all.entry(service.to_string()).or_default();
        let oldest = s
            .in_flight
            .values()
            .min()
            .map(|t| now.duration_since(*t).as_secs_f64());
        let (p99, recent, before) = match s.cached {
            Some((at, p, r, b)) if now.duration_since(at) < REUSE => (p, r, b),
            _ => {
                let hour: Vec<f64> = s
                    .answers
                    .iter()
                    .filter(|(t, _)| now.duration_since(*t) <= HOUR)
                    .map(|(_, v)| *v)
                    .collect();
                let (recent, before): (Vec<_>, Vec<_>) = s
                    .answers
                    .iter()
                    .filter(|(t, _)| now.duration_since(*t) <= HOUR)
                    .partition(|(t, _)| now.duration_since(*t) <= RECENT);
                let median = |v: Vec<(Instant, f64)>| {
                    (v.len() >= MIN_ANSWERS)
                        .then(|| quantile(v.into_iter().map(|(_, x)| x).collect(), 0.5))
                        .flatten()
                };
                let c = (quantile(hour, 0.99), median(recent), median(before));
                s.cached = Some((now, c.0, c.1, c.2));
                c
            }
        };
        let stuck_after = (self.rules.stuck_factor * p99.unwrap_or(0.0))
            .max(self.rules.stuck_floor.as_secs_f64());
        let pace = if oldest.is_some_and(|o| o > stuck_after) {
            Pace::Stuck
        } else if matches!((recent, before), (Some(r), Some(b)) if r > self.rules.slow_factor * b) {
            Pace::Slow
        } else {
            Pace::Normal
        };
        PaceView {
            service: service.to_string(),
            pace,
            oldest_request_seconds: oldest,
            stuck_after_seconds: stuck_after,
            p99_hour_seconds: p99,
            median_recent_seconds: recent,
            median_before_seconds: before,
        }
    }

    /// Entries held (requests in flight and durations), for the memory report.
    pub fn entries(&self) -> usize {
        self.lock()
            .values()
            .map(|s| s.in_flight.len() + s.answers.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paces(factor: f64, floor: u64) -> Arc<Paces> {
        Paces::new(PaceRules {
            stuck_factor: factor,
            stuck_floor: Duration::from_secs(floor),
            slow_factor: 10.0,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_request_is_stuck_within_twice_the_p99_and_five_seconds() {
        let p = paces(2.0, 5);
        // An hour of answers in about 3 s (p99 3 s).
        for i in 0..100 {
            p.answered("yolo26", if i < 98 { 1.0 } else { 3.0 });
            tokio::time::advance(Duration::from_secs(30)).await;
        }
        let hung = p.begin("yolo26");
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(p.judge("yolo26").pace, Pace::Normal, "not before 2 × p99");
        tokio::time::advance(Duration::from_secs(6)).await;
        let v = p.judge("yolo26");
        assert_eq!(v.pace, Pace::Stuck, "{v:?}");
        assert!(v.stuck_after_seconds <= 2.0 * 3.0 + 5.0);
        drop(hung);
        assert_eq!(p.judge("yolo26").pace, Pace::Normal, "it answered");
    }

    #[tokio::test(start_paused = true)]
    async fn ten_times_slower_but_answering_is_slow_and_never_stuck() {
        let p = paces(10.0, 30);
        for _ in 0..200 {
            p.answered("yolo26", 0.1);
            tokio::time::advance(Duration::from_secs(15)).await;
        }
        assert_eq!(p.judge("yolo26").pace, Pace::Normal);
        // Ten times slower for two minutes: each request takes 1.1 s, and answers.
        for _ in 0..110 {
            let call = p.begin("yolo26");
            tokio::time::advance(Duration::from_millis(1100)).await;
            drop(call);
            p.answered("yolo26", 1.1);
            tokio::time::advance(Duration::from_secs(11)).await;
            let v = p.judge("yolo26");
            assert_ne!(v.pace, Pace::Stuck, "{v:?}");
        }
        assert_eq!(p.judge("yolo26").pace, Pace::Slow);
    }

    #[tokio::test(start_paused = true)]
    async fn without_history_the_floor_decides() {
        let p = paces(10.0, 30);
        let _call = p.begin("nemotron");
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(p.judge("nemotron").pace, Pace::Normal);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(p.judge("nemotron").pace, Pace::Stuck);
    }
}
