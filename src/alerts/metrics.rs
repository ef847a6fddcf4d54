//! The alerts' own metrics: alerts firing now by severity, every firing by the kind
//! of thing it was about, the calls to Alertmanager and the alerts its webhook
//! brought (bounded labels, every value published at 0).

use prometheus::{IntCounterVec, IntGaugeVec};

use crate::events::{Severity, SourceKind};
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// How a call to an Alertmanager ended.
    pub enum SendResult {
        /// It accepted what was sent.
        Success = "success",
        /// Not reached, or no answer in time: sent again on the next round.
        Unreachable = "unreachable",
        /// It answered with an error.
        Refused = "refused",
    }
}

closed_set! {
    /// What became of one alert of Alertmanager's webhook.
    pub enum Received {
        /// Taken into the engine (new, or a change of state).
        Processed = "processed",
        /// Already known as it is (a repeat, or one of watchpost's own coming back).
        Unchanged = "unchanged",
        /// Not taken: the notification would have held more received alerts than
        /// the engine keeps (answered 429).
        Refused = "refused",
    }
}

#[derive(Clone)]
pub struct AlertMetrics {
    firing: IntGaugeVec,
    total: IntCounterVec,
    sends: IntCounterVec,
    received: IntCounterVec,
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
        let sends = metrics.counters(
            "alertmanager_sends_total",
            "Calls to Alertmanagers (alerts and silences), by result.",
            &["result"],
        );
        let received = metrics.counters(
            "alertmanager_webhook_alerts_total",
            "Alerts received on Alertmanager's webhook, by what became of them.",
            &["result"],
        );
        for s in Severity::all() {
            firing.with_label_values(&[s.label()]).set(0);
            // A cause is what a notification is about, never an alert the engine fires.
            for k in SourceKind::ALL.iter().filter(|k| **k != SourceKind::Cause) {
                total.with_label_values(&[k.label(), s.label()]);
            }
        }
        for r in SendResult::ALL {
            sends.with_label_values(&[r.label()]);
        }
        for r in Received::ALL {
            received.with_label_values(&[r.label()]);
        }
        Self {
            firing,
            total,
            sends,
            received,
        }
    }

    pub fn sent(&self, result: SendResult) {
        self.sends.with_label_values(&[result.label()]).inc();
    }

    pub fn received(&self, result: Received, n: usize) {
        self.received
            .with_label_values(&[result.label()])
            .inc_by(n as u64);
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
