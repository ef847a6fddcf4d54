//! The pipeline stages' metrics: items finished per stage and result, and the time one
//! item spends in each timed step. The queues, the watcher and the batches own their
//! own (`queue/metrics.rs`, `watcher/metrics.rs`, `batch/metrics.rs`).

use prometheus::{HistogramVec, IntCounterVec};

use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// The queue-driven pipeline stages (the `stage` label of the item metric).
    pub enum Stage {
        Detection = "detection",
        Analysis = "analysis",
    }
}

closed_set! {
    /// How an item left a stage (the `result` label of `watchpost_pipeline_items_total`).
    pub enum ItemOutcome {
        /// Detections stored and batched.
        Stored = "stored",
        /// YOLO26 found nothing above the confidence threshold.
        NoDetections = "no_detections",
        /// A security event was written with the LLM's own assessment.
        Created = "created",
        /// A security event was written with the fallback values (the LLM failed).
        CreatedFallback = "created_fallback",
        /// The file's content changed after it was queued; the watcher queues the new
        /// content as an item of its own.
        Changed = "changed",
        /// Moved to the dead-letter stream.
        DeadLettered = "dead_lettered",
        /// The item had been finished before (a redelivery).
        Duplicate = "duplicate",
        /// The image was gone before it could be read.
        FileMissing = "file_missing",
        /// Not finished this time; retried later.
        Retried = "retried",
    }
}

closed_set! {
    /// The timed steps (the `stage` label of `watchpost_pipeline_stage_duration_seconds`).
    pub enum Step {
        /// The watcher hashing a settled file.
        Hash = "hash",
        /// YOLO26 on one image.
        Detect = "detect",
        /// Writing the detections of the images read together (one statement).
        Store = "store",
        /// The LLM on one batch.
        Analyze = "analyze",
    }
}

/// Step duration buckets, in seconds (1 ms .. 2 min).
const STEP_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

#[derive(Clone)]
pub struct StageMetrics {
    step_duration: HistogramVec,
    items: IntCounterVec,
}

impl StageMetrics {
    /// The families, with every `(stage, result)` pair and every step published at 0.
    pub fn new(m: &Metrics) -> Self {
        let me = Self {
            step_duration: m.histograms(
                "pipeline_stage_duration_seconds",
                "Time one item spends in a pipeline stage (hash, detect, store, analyze).",
                STEP_BUCKETS,
                &["stage"],
            ),
            items: m.counters(
                "pipeline_items_total",
                "Items finished by a pipeline worker, by stage and result.",
                &["stage", "result"],
            ),
        };
        for s in Stage::ALL {
            for o in ItemOutcome::ALL {
                me.items.with_label_values(&[s.label(), o.label()]);
            }
        }
        for step in Step::ALL {
            me.step_duration.with_label_values(&[step.label()]);
        }
        me
    }

    pub fn timed(&self, step: Step, seconds: f64) {
        self.step_duration
            .with_label_values(&[step.label()])
            .observe(seconds);
    }

    pub fn item(&self, stage: Stage, outcome: ItemOutcome) {
        self.items
            .with_label_values(&[stage.label(), outcome.label()])
            .inc();
    }
}
