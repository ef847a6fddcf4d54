//! Sliding windows of watchpost's own measurements (AI call latencies, pipeline
//! latency, finished events), read by the performance sampler: no Prometheus round
//! trip. Each window keeps the last `SPAN` of samples, at most `CAP` of them.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How far back a window looks.
pub const SPAN: Duration = Duration::from_secs(300);
/// Samples kept per window, at most.
const CAP: usize = 10_000;

#[derive(Default)]
pub struct Window {
    samples: Mutex<VecDeque<(Instant, f64)>>,
}

/// Average and tail of a window, in the unit recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub avg: f64,
    pub p95: f64,
    pub p99: f64,
    pub count: usize,
}

impl Window {
    fn prune(q: &mut VecDeque<(Instant, f64)>, now: Instant) {
        while q
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > SPAN)
            || q.len() > CAP
        {
            q.pop_front();
        }
    }

    pub fn record(&self, value: f64) {
        let now = Instant::now();
        let mut q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        q.push_back((now, value));
        Self::prune(&mut q, now);
    }

    /// Over the whole span; `None` without samples.
    pub fn summary(&self) -> Option<Summary> {
        let now = Instant::now();
        let mut q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        Self::prune(&mut q, now);
        if q.is_empty() {
            return None;
        }
        let mut values: Vec<f64> = q.iter().map(|(_, v)| *v).collect();
        drop(q);
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
            values[i]
        };
        Some(Summary {
            avg: values.iter().sum::<f64>() / values.len() as f64,
            p95: rank(0.95),
            p99: rank(0.99),
            count: values.len(),
        })
    }

    /// Samples recorded within the last `d`.
    pub fn count_within(&self, d: Duration) -> usize {
        let now = Instant::now();
        let q = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        q.iter()
            .rev()
            .take_while(|(t, _)| now.duration_since(*t) <= d)
            .count()
    }
}

/// The windows the pipeline feeds.
#[derive(Default)]
pub struct InferenceWindows {
    /// Successful YOLO26 `/detect` calls, milliseconds.
    pub yolo26: Window,
    /// Successful Nemotron `/completion` calls, milliseconds.
    pub nemotron: Window,
    /// From an image being queued to its detections being stored, milliseconds (one
    /// sample per image).
    pub pipeline: Window,
    /// Security events written (the value is unused).
    pub events: Window,
}

impl InferenceWindows {
    /// The latency window of an AI service's work calls, if it has one.
    pub fn for_service(&self, service: &str) -> Option<&Window> {
        match service {
            "yolo26" => Some(&self.yolo26),
            "nemotron" => Some(&self.nemotron),
            _ => None,
        }
    }
}

impl crate::ai::CallTimes for InferenceWindows {
    fn call_done(&self, service: &str, millis: f64) {
        if let Some(w) = self.for_service(service) {
            w.record(millis);
        }
    }
}

impl crate::pipeline::measure::PipelineTimes for InferenceWindows {
    fn image_detected(&self, millis: f64) {
        self.pipeline.record(millis);
    }

    fn event_created(&self) {
        self.events.record(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn percentiles_over_the_span_only() {
        let w = Window::default();
        for v in 1..=100 {
            w.record(f64::from(v));
        }
        let s = w.summary().expect("samples");
        assert_eq!((s.p95, s.p99, s.count), (95.0, 99.0, 100));
        assert!((s.avg - 50.5).abs() < 1e-9);
        assert_eq!(w.count_within(Duration::from_secs(60)), 100);
        tokio::time::advance(SPAN + Duration::from_secs(1)).await;
        w.record(7.0);
        let s = w.summary().expect("one sample");
        assert_eq!((s.count, s.p99), (1, 7.0), "older samples left the window");
    }
}
