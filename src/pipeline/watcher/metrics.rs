//! The file watcher's metrics: what it decided about each file, and the files it has
//! seen and not yet queued or rejected, per observer kind. The hash step's duration is
//! a stage metric (`pipeline/metrics.rs`).

use prometheus::{IntCounterVec, IntGaugeVec};

use super::observer::ObserverType;
use super::result::FileResult;
use crate::names::Label;
use crate::prom::Metrics;

#[derive(Clone)]
pub struct WatcherMetrics {
    files: IntCounterVec,
    pending: IntGaugeVec,
}

impl WatcherMetrics {
    /// The families, with every result and observer kind published at 0.
    pub fn new(m: &Metrics) -> Self {
        let me = Self {
            files: m.counters(
                "watcher_files_total",
                "File watcher outcomes per file, by result; result=\"rescan\" counts full rescans after lost file events.",
                &["result"],
            ),
            pending: m.gauges(
                "watcher_pending_files",
                "Files seen by the watcher and not yet queued or rejected.",
                &["observer"],
            ),
        };
        for r in FileResult::ALL {
            me.files.with_label_values(&[r.label()]);
        }
        for o in ObserverType::ALL {
            me.pending.with_label_values(&[o.label()]).set(0);
        }
        me
    }

    pub fn file(&self, result: FileResult) {
        self.files.with_label_values(&[result.label()]).inc();
    }

    pub fn pending(&self, observer: ObserverType, pending: usize) {
        self.pending
            .with_label_values(&[observer.label()])
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }
}
