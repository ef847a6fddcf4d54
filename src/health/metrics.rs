//! Health's metrics: each dependency's last probe (up, duration) and the pipeline's
//! degradation mode (one 0/1 series per mode). Dependency names are `postgres`,
//! `redis` and the configured AI services.

use prometheus::{HistogramVec, IntGaugeVec};

use crate::events::Mode;
use crate::names::Label;
use crate::prom::Metrics;

/// Probe duration buckets, in seconds (1 ms .. 5 s; the probe timeout bounds it).
const PROBE_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone)]
pub struct HealthMetrics {
    up: IntGaugeVec,
    probe_duration: HistogramVec,
    mode: IntGaugeVec,
}

impl HealthMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            up: m.gauges(
                "dependency_up",
                "1 when the last health probe of a dependency (postgres, redis, each AI service) succeeded.",
                &["dependency"],
            ),
            probe_duration: m.histograms(
                "dependency_probe_duration_seconds",
                "Duration of one dependency health probe.",
                PROBE_BUCKETS,
                &["dependency"],
            ),
            mode: m.gauges(
                "degradation_mode",
                "Pipeline degradation mode: 1 for the current mode, 0 for the others.",
                &["mode"],
            ),
        }
    }

    /// A probed dependency exists: publish it as down until its first probe.
    pub fn dependency_known(&self, dependency: &str) {
        self.up.with_label_values(&[dependency]).set(0);
        self.probe_duration.with_label_values(&[dependency]);
    }

    pub fn dependency_probed(&self, dependency: &str, seconds: f64) {
        self.probe_duration
            .with_label_values(&[dependency])
            .observe(seconds);
    }

    /// The outcome of a round's probe of `dependency`.
    pub fn dependency_up(&self, dependency: &str, up: bool) {
        self.up.with_label_values(&[dependency]).set(i64::from(up));
    }

    pub fn mode_changed(&self, mode: Mode) {
        for m in Mode::ALL {
            self.mode
                .with_label_values(&[m.label()])
                .set(i64::from(*m == mode));
        }
    }
}
