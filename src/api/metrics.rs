//! The HTTP server's metrics: requests answered and the time to answer them, by
//! method (a closed set: a client cannot grow it), route template (the matched
//! resource's, or `unmatched`) and status code.

use prometheus::{HistogramVec, IntCounterVec};

use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// The `method` label: the standard methods, and `OTHER` for any other.
    pub enum Method {
        Get = "GET",
        Head = "HEAD",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Options = "OPTIONS",
        Other = "OTHER",
    }
}

impl Method {
    pub fn of(method: &str) -> Self {
        Self::parse(method)
            .filter(|m| *m != Self::Other)
            .unwrap_or(Self::Other)
    }
}

/// Buckets for HTTP handling time, in seconds (0.5 ms .. 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            requests: m.counters(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status code.",
                &["method", "route", "status"],
            ),
            duration: m.histograms(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route template.",
                HTTP_BUCKETS,
                &["method", "route"],
            ),
        }
    }

    /// One answered request. `route` is the matched template (or `unmatched`).
    pub fn served(&self, method: Method, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method.label(), route, &status.to_string()])
            .inc();
        self.duration
            .with_label_values(&[method.label(), route])
            .observe(seconds);
    }

    /// Publish a route's request series at 0 (status 200).
    pub fn route_known(&self, method: Method, route: &str) {
        self.requests
            .with_label_values(&[method.label(), route, "200"]);
        self.duration.with_label_values(&[method.label(), route]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_method_is_other() {
        assert_eq!(Method::of("GET"), Method::Get);
        assert_eq!(Method::of("BREW"), Method::Other);
        assert_eq!(Method::of("OTHER"), Method::Other);
        let m = Metrics::new();
        let http = HttpMetrics::new(&m);
        http.served(Method::of("BREW"), "unmatched", 404, 0.001);
        http.served(Method::Get, "/health", 200, 0.001);
        let text = m.render();
        assert!(text.contains("method=\"OTHER\""));
        assert!(text.contains(
            "watchpost_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
        ));
    }
}
