//! The circuit breakers' metrics: state (one 0/1 series per state), calls by result,
//! rejections and transitions. Label values are breaker names (the configured AI
//! services and the Redis publisher) or closed sets.

use prometheus::{IntCounterVec, IntGaugeVec};

use crate::events::BreakerState;
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// How an admitted call ended (`watchpost_circuit_breaker_calls_total{result}`).
    pub enum CallResult {
        Success = "success",
        Failure = "failure",
        /// The service refused the request itself (a 4xx): not the service's fault.
        ClientError = "client_error",
        /// The caller dropped the call before it finished (e.g. shutdown).
        Abandoned = "abandoned",
    }
}

#[derive(Clone)]
pub struct BreakerMetrics {
    state: IntGaugeVec,
    calls: IntCounterVec,
    rejections: IntCounterVec,
    transitions: IntCounterVec,
}

impl BreakerMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            state: m.gauges(
                "circuit_breaker_state",
                "Circuit breaker state: 1 for the current state, 0 for the others.",
                &["breaker", "state"],
            ),
            calls: m.counters(
                "circuit_breaker_calls_total",
                "Calls admitted through a breaker, by result (success, failure, client_error, abandoned).",
                &["breaker", "result"],
            ),
            rejections: m.counters(
                "circuit_breaker_rejections_total",
                "Calls rejected without being made because the breaker was open or its half-open trials were taken.",
                &["breaker"],
            ),
            transitions: m.counters(
                "circuit_breaker_transitions_total",
                "Circuit breaker state changes, by from and to state.",
                &["breaker", "from", "to"],
            ),
        }
    }

    /// Publish a breaker's series (closed, zero counts) as soon as it exists.
    pub fn registered(&self, breaker: &str) {
        for result in CallResult::ALL {
            self.calls.with_label_values(&[breaker, result.label()]);
        }
        for from in BreakerState::ALL {
            for to in BreakerState::ALL.iter().filter(|t| *t != from) {
                self.transitions
                    .with_label_values(&[breaker, from.label(), to.label()]);
            }
        }
        self.rejections.with_label_values(&[breaker]);
        self.show(breaker, BreakerState::Closed);
    }

    fn show(&self, breaker: &str, state: BreakerState) {
        for s in BreakerState::ALL {
            self.state
                .with_label_values(&[breaker, s.label()])
                .set(i64::from(*s == state));
        }
    }

    pub fn call(&self, breaker: &str, result: CallResult) {
        self.calls
            .with_label_values(&[breaker, result.label()])
            .inc();
    }

    pub fn rejected(&self, breaker: &str) {
        self.rejections.with_label_values(&[breaker]).inc();
    }

    pub fn transition(&self, breaker: &str, from: BreakerState, to: BreakerState) {
        self.transitions
            .with_label_values(&[breaker, from.label(), to.label()])
            .inc();
        self.show(breaker, to);
    }
}
