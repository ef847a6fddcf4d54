//! Storage's own series, one per volume (a fixed set of four): size and free space
//! of the file system holding it, its growth, and when it is forecast full.

use prometheus::{GaugeVec, IntGaugeVec};

use crate::prom::Metrics;

#[derive(Clone)]
pub struct StorageMetrics {
    size: IntGaugeVec,
    free: IntGaugeVec,
    growth: GaugeVec,
    full_at: GaugeVec,
}

impl StorageMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            size: metrics.gauges(
                "storage_size_bytes",
                "Size of the file system holding each volume watchpost writes or depends on (for postgres: the database and the free space of its volume, when on this machine).",
                &["volume"],
            ),
            free: metrics.gauges(
                "storage_free_bytes",
                "Free bytes of the file system holding each volume watchpost writes or depends on (camera_root, spool, outbox, postgres).",
                &["volume"],
            ),
            growth: metrics.float_gauges(
                "storage_growth_bytes_per_second",
                "Growth of each volume's used bytes: the least-squares slope over storage.forecast_window_seconds.",
                &["volume"],
            ),
            full_at: metrics.float_gauges(
                "storage_full_at_timestamp_seconds",
                "When each volume is forecast full at its growth (Unix time); +Inf when it is not filling or its free space is unknown.",
                &["volume"],
            ),
        }
    }

    /// Publish one volume's latest figures (a size or free space not known is not
    /// published).
    pub fn measured(
        &self,
        volume: &str,
        total: Option<f64>,
        free: Option<f64>,
        growth: Option<f64>,
        full_at: Option<f64>,
    ) {
        let clamp = |v: f64| v.max(0.0).min(i64::MAX as f64) as i64;
        if let Some(t) = total {
            self.size.with_label_values(&[volume]).set(clamp(t));
        }
        if let Some(f) = free {
            self.free.with_label_values(&[volume]).set(clamp(f));
        }
        self.growth
            .with_label_values(&[volume])
            .set(growth.unwrap_or(0.0));
        self.full_at
            .with_label_values(&[volume])
            .set(full_at.unwrap_or(f64::INFINITY));
    }
}
