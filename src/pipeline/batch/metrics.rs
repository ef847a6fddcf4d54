//! The batch aggregator's metrics: open batches by where they are kept, closed
//! batches by reason with their size and age, the oldest open batch's age and the
//! configured window.

use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec};

use crate::events::CloseReason;
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// Where an open batch is kept (the `store` label of `watchpost_batches_open`).
    pub enum KeptIn {
        Redis = "redis",
        /// This instance's memory, while Redis is away.
        Memory = "memory",
    }
}

const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0];
const AGE_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0, 300.0];

#[derive(Clone)]
pub struct BatchMetrics {
    open: IntGaugeVec,
    closed: IntCounterVec,
    size: HistogramVec,
    age: HistogramVec,
    oldest: GaugeVec,
    window: GaugeVec,
}

impl BatchMetrics {
    /// The families, with every close reason and both stores at 0 and the window set.
    pub fn new(m: &Metrics, window_seconds: f64) -> Self {
        let me = Self {
            open: m.gauges(
                "batches_open",
                "Open detection batches, by where they are kept (redis or memory).",
                &["store"],
            ),
            closed: m.counters(
                "batches_closed_total",
                "Detection batches closed and handed to analysis, by reason.",
                &["reason"],
            ),
            size: m.histograms(
                "batch_detections",
                "Detections in a closed batch.",
                SIZE_BUCKETS,
                &["reason"],
            ),
            age: m.histograms(
                "batch_age_seconds",
                "Age of a batch when it closed.",
                AGE_BUCKETS,
                &["reason"],
            ),
            oldest: m.float_gauges(
                "batch_oldest_open_seconds",
                "Age of the oldest open batch (0 when none is open).",
                &[],
            ),
            window: m.float_gauges(
                "batch_window_seconds",
                "Configured batch window: a batch closes at most this long after it opened.",
                &[],
            ),
        };
        for r in CloseReason::ALL {
            me.closed.with_label_values(&[r.label()]);
            me.size.with_label_values(&[r.label()]);
            me.age.with_label_values(&[r.label()]);
        }
        me.open_now(0, 0);
        me.oldest_open(0.0);
        me.window.with_label_values::<&str>(&[]).set(window_seconds);
        me
    }

    pub fn open_now(&self, redis: usize, memory: usize) {
        for (kept, n) in [(KeptIn::Redis, redis), (KeptIn::Memory, memory)] {
            self.open
                .with_label_values(&[kept.label()])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    pub fn oldest_open(&self, seconds: f64) {
        self.oldest
            .with_label_values::<&str>(&[])
            .set(seconds.max(0.0));
    }

    pub fn closed(&self, reason: CloseReason, detections: usize, age_seconds: f64) {
        let reason = reason.label();
        self.closed.with_label_values(&[reason]).inc();
        self.size
            .with_label_values(&[reason])
            .observe(detections as f64);
        self.age.with_label_values(&[reason]).observe(age_seconds);
    }
}
