//! The AI clients' metric: the duration of every HTTP request to an AI service, by
//! service (configured), operation and outcome (closed sets).

use prometheus::HistogramVec;

use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// What a request to an AI service was for.
    pub enum Operation {
        Detect = "detect",
        Completion = "completion",
        Health = "health",
    }
}

closed_set! {
    /// How one request to an AI service ended.
    pub enum Outcome {
        Ok = "ok",
        ClientError = "client_error",
        ServerError = "server_error",
        Timeout = "timeout",
        ConnectError = "connect_error",
        /// A 2xx answer whose body could not be used.
        InvalidResponse = "invalid_response",
        /// Not made: the service's breaker was open.
        Rejected = "rejected",
    }
}

/// Request duration buckets, in seconds (5 ms .. 2 min: a detection is tens of
/// milliseconds, an LLM completion can take a minute).
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

#[derive(Clone)]
pub struct AiMetrics {
    request_duration: HistogramVec,
}

impl AiMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            request_duration: m.histograms(
                "ai_request_duration_seconds",
                "Duration of one HTTP request to an AI service, by service, operation and outcome.",
                REQUEST_BUCKETS,
                &["service", "operation", "outcome"],
            ),
        }
    }

    /// Publish the request series of a service's operations at 0 (successful
    /// outcome; other outcomes appear when they happen).
    pub fn service_known(&self, service: &str, operations: &[Operation]) {
        for op in operations {
            self.request_duration
                .with_label_values(&[service, op.label(), Outcome::Ok.label()]);
        }
    }

    pub fn request(&self, service: &str, operation: Operation, outcome: Outcome, seconds: f64) {
        self.request_duration
            .with_label_values(&[service, operation.label(), outcome.label()])
            .observe(seconds);
    }
}
