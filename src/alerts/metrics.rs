//! The alert engine's own metrics: alerts firing now by severity, and every firing by
//! the kind of thing it was about (bounded labels, every value published at 0).

use prometheus::{IntCounterVec, IntGaugeVec};

use super::alert::SourceKind;
use crate::events::Severity;
use crate::names::Label;
use crate::prom::Metrics;

#[derive(Clone)]
pub struct AlertMetrics {
    firing: IntGaugeVec,
    total: IntCounterVec,
}

impl AlertMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let firing = metrics.gauges(
            "alerts_firing",
            "Alerts firing now, by severity.",
            &["severity"],
        );
        let total = metrics.counters(
            "alerts_total",
            "Alerts that fired, by the kind of thing they were about and severity.",
            &["source_kind", "severity"],
        );
        for s in Severity::all() {
            firing.with_label_values(&[s.label()]).set(0);
            for k in SourceKind::all() {
                total.with_label_values(&[k.label(), s.label()]);
            }
        }
        Self { firing, total }
    }

    pub fn fired(&self, kind: SourceKind, severity: Severity) {
        self.total
            .with_label_values(&[kind.label(), severity.label()])
            .inc();
    }

    /// How many alerts fire now, of each severity.
    pub fn firing_now(&self, counts: impl Fn(Severity) -> usize) {
        for s in Severity::all() {
            self.firing
                .with_label_values(&[s.label()])
                .set(i64::try_from(counts(*s)).unwrap_or(i64::MAX));
        }
    }
}
