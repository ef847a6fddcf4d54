//! Perf's own series: the size and free space of the volumes watchpost writes to
//! (`watchpost_storage_size_bytes`, `watchpost_storage_free_bytes`, by `volume`).

use prometheus::IntGaugeVec;

use crate::prom::Metrics;

#[derive(Clone)]
pub struct StorageMetrics {
    size: IntGaugeVec,
    free: IntGaugeVec,
}

impl StorageMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            size: metrics.gauges(
                "storage_size_bytes",
                "Size of the file system holding each volume watchpost writes to.",
                &["volume"],
            ),
            free: metrics.gauges(
                "storage_free_bytes",
                "Free bytes on the file system holding each volume watchpost writes to.",
                &["volume"],
            ),
        }
    }

    /// `volume` (a fixed name: `camera_root`) measured: `used` of `total` bytes.
    pub fn measured(&self, volume: &'static str, used: f64, total: f64) {
        let clamp = |v: f64| v.max(0.0).min(i64::MAX as f64) as i64;
        self.size.with_label_values(&[volume]).set(clamp(total));
        self.free
            .with_label_values(&[volume])
            .set(clamp(total - used));
    }
}
