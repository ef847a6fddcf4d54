//! The notifiers' metrics: what became of each transition
//! (`watchpost_notifications_total{notifier,result}`), what waits in each outbox
//! (`watchpost_notification_outbox_depth{notifier}`) and how long a transition took
//! from its decision to the receiver's acknowledgement
//! (`watchpost_notification_latency_seconds{notifier}`). The `notifier` label takes
//! the configured names only (at most 17); every value is published at 0.

use prometheus::{HistogramVec, IntCounterVec, IntGaugeVec};

use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// What became of one transition (or one try of it) for one notifier.
    pub enum Outcome {
        /// The receiver acknowledged it.
        Sent = "sent",
        /// A try failed; it stays in the outbox and is tried again.
        Failed = "failed",
        /// Refused as malformed five times in a row: dropped, logged.
        Rejected = "rejected",
        /// Held back by a silence.
        Silenced = "silenced",
        /// Another instance tells it.
        Claimed = "claimed_elsewhere",
        /// The outbox was full: the oldest unsent transition was dropped.
        Dropped = "dropped",
    }
}

#[derive(Clone)]
pub struct NotifyMetrics {
    total: IntCounterVec,
    depth: IntGaugeVec,
    latency: HistogramVec,
}

impl NotifyMetrics {
    pub fn new(metrics: &Metrics, notifiers: &[String]) -> Self {
        let total = metrics.counters(
            "notifications_total",
            "Alert transitions for each notifier, by what became of them (failed counts tries).",
            &["notifier", "result"],
        );
        let depth = metrics.gauges(
            "notification_outbox_depth",
            "Transitions waiting in each notifier's outbox.",
            &["notifier"],
        );
        let latency = metrics.histograms(
            "notification_latency_seconds",
            "From an alert transition's decision to its receiver's acknowledgement.",
            &[
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 1800.0,
            ],
            &["notifier"],
        );
        for n in notifiers {
            for o in Outcome::all() {
                total.with_label_values(&[n.as_str(), o.label()]);
            }
            depth.with_label_values(&[n.as_str()]).set(0);
            latency.with_label_values(&[n.as_str()]);
        }
        Self {
            total,
            depth,
            latency,
        }
    }

    pub fn counted(&self, notifier: &str, outcome: Outcome) {
        self.total
            .with_label_values(&[notifier, outcome.label()])
            .inc();
    }

    pub fn waiting(&self, notifier: &str, depth: usize) {
        self.depth
            .with_label_values(&[notifier])
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub fn delivered_after(&self, notifier: &str, seconds: f64) {
        self.latency
            .with_label_values(&[notifier])
            .observe(seconds.max(0.0));
        self.counted(notifier, Outcome::Sent);
    }
}
