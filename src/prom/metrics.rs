//! Every metric watchpost exports is defined here, and only here. Call sites use
//! intent-named methods (`metrics.worker_crashed("file_watcher")`); they never build
//! metric names or label vectors. Label values come from closed sets (enums rendered by
//! `as_str`) or configured names, so cardinality stays bounded.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Mutex;

const NAMESPACE: &str = "watchpost";

/// Buckets for HTTP handling time, in seconds (0.5 ms .. 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Worker states, as reported by the supervisor (one 0/1 series each).
pub const WORKER_STATES: [&str; 5] = ["running", "stopped", "crashed", "restarting", "failed"];

type RefreshHook = Box<dyn Fn() + Send + Sync>;

/// The registry and every metric family.
pub struct Metrics {
    registry: Registry,
    refresh_hooks: Mutex<Vec<RefreshHook>>,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    // supervisor
    worker_state: IntGaugeVec,
    worker_restart_count: IntGaugeVec,
    worker_max_restarts: IntGaugeVec,
    worker_restarts: IntCounterVec,
    worker_crashes: IntCounterVec,
    worker_uptime: GaugeVec,
    worker_restart_latency: HistogramVec,
    // circuit breakers
    breaker_state: IntGaugeVec,
    breaker_calls: IntCounterVec,
    breaker_rejections: IntCounterVec,
    breaker_transitions: IntCounterVec,
    // AI services and dependencies
    ai_request_duration: HistogramVec,
    dependency_up: IntGaugeVec,
    dependency_probe_duration: HistogramVec,
    degradation_mode: IntGaugeVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    // Names are unique constants of this module; a clash is a programming error caught
    // by the first test that builds `Metrics`.
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered twice");
    c
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = &registry;

        let build_info = register(
            r,
            IntGaugeVec::new(
                opts("build_info", "Build information; the value is always 1."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::new(
                    std::process::id() as i32,
                    NAMESPACE,
                ),
            ))
            .expect("process collector registered once");

        Self {
            http_requests: register(
                r,
                IntCounterVec::new(
                    opts("http_requests_total", "HTTP requests answered, by method, route template and status code."),
                    &["method", "route", "status"],
                )
                .expect("valid metric"),
            ),
            http_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "http_request_duration_seconds",
                        "Time to answer an HTTP request, by method and route template.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(HTTP_BUCKETS.to_vec()),
                    &["method", "route"],
                )
                .expect("valid metric"),
            ),
            worker_state: register(
                r,
                IntGaugeVec::new(
                    opts("worker_state", "Supervised worker state: 1 for the current state, 0 for the others."),
                    &["worker", "state"],
                )
                .expect("valid metric"),
            ),
            worker_restart_count: register(
                r,
                IntGaugeVec::new(
                    opts("worker_consecutive_restarts", "Restarts counted against max_restarts (decays to 0 after a healthy run)."),
                    &["worker"],
                )
                .expect("valid metric"),
            ),
            worker_max_restarts: register(
                r,
                IntGaugeVec::new(
                    opts("worker_max_restarts", "Automatic restarts allowed before a worker is marked failed."),
                    &["worker"],
                )
                .expect("valid metric"),
            ),
            worker_restarts: register(
                r,
                IntCounterVec::new(
                    opts("worker_restarts_total", "Worker restarts, automatic and manual."),
                    &["worker", "kind"],
                )
                .expect("valid metric"),
            ),
            worker_crashes: register(
                r,
                IntCounterVec::new(
                    opts("worker_crashes_total", "Worker crashes (panic, error, unexpected exit or heartbeat timeout)."),
                    &["worker", "cause"],
                )
                .expect("valid metric"),
            ),
            worker_uptime: register(
                r,
                GaugeVec::new(
                    opts("worker_uptime_seconds", "Seconds since the worker was last started; 0 when not running."),
                    &["worker"],
                )
                .expect("valid metric"),
            ),
            worker_restart_latency: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "worker_restart_latency_seconds",
                        "Time from a crash being seen to the worker running again, minus the backoff wait.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(vec![0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1]),
                    &["worker"],
                )
                .expect("valid metric"),
            ),
            breaker_state: register(
                r,
                IntGaugeVec::new(
                    opts("circuit_breaker_state", "Circuit breaker state: 1 for the current state, 0 for the others."),
                    &["breaker", "state"],
                )
                .expect("valid metric"),
            ),
            breaker_calls: register(
                r,
                IntCounterVec::new(
                    opts("circuit_breaker_calls_total", "Calls admitted through a breaker, by result (success, failure, client_error, abandoned)."),
                    &["breaker", "result"],
                )
                .expect("valid metric"),
            ),
            breaker_rejections: register(
                r,
                IntCounterVec::new(
                    opts("circuit_breaker_rejections_total", "Calls rejected without being made because the breaker was open or its half-open trials were taken."),
                    &["breaker"],
                )
                .expect("valid metric"),
            ),
            breaker_transitions: register(
                r,
                IntCounterVec::new(
                    opts("circuit_breaker_transitions_total", "Circuit breaker state changes, by from and to state."),
                    &["breaker", "from", "to"],
                )
                .expect("valid metric"),
            ),
            ai_request_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "ai_request_duration_seconds",
                        "Duration of one HTTP request to an AI service, by service, operation and outcome.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
                    &["service", "operation", "outcome"],
                )
                .expect("valid metric"),
            ),
            dependency_up: register(
                r,
                IntGaugeVec::new(
                    opts("dependency_up", "1 when the last health check of a dependency succeeded (AI services: as judged by the degradation manager)."),
                    &["dependency"],
                )
                .expect("valid metric"),
            ),
            dependency_probe_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "dependency_probe_duration_seconds",
                        "Duration of one dependency health probe.",
                    )
                    .namespace(NAMESPACE)
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
                    &["dependency"],
                )
                .expect("valid metric"),
            ),
            degradation_mode: register(
                r,
                IntGaugeVec::new(
                    opts("degradation_mode", "Pipeline degradation mode: 1 for the current mode, 0 for the others."),
                    &["mode"],
                )
                .expect("valid metric"),
            ),
            registry,
            refresh_hooks: Mutex::new(Vec::new()),
        }
    }

    /// Run `hook` right before every scrape (for gauges derived from live state).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.refresh_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(hook));
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        for hook in self
            .refresh_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            hook();
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    // ---- HTTP ----

    /// One answered request. `route` is the matched template (or `unmatched`).
    pub fn http_request_served(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = bounded_method(method);
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    // ---- supervisor ----

    /// A worker is known: publish its static series so dashboards see it before any event.
    pub fn worker_registered(&self, worker: &str, max_restarts: u32) {
        self.worker_max_restarts
            .with_label_values(&[worker])
            .set(max_restarts.into());
        self.worker_restart_count
            .with_label_values(&[worker])
            .set(0);
        for kind in ["automatic", "manual"] {
            self.worker_restarts.with_label_values(&[worker, kind]);
        }
        for cause in CRASH_CAUSES {
            self.worker_crashes.with_label_values(&[worker, cause]);
        }
        self.worker_state_changed(worker, "stopped");
    }

    pub fn worker_state_changed(&self, worker: &str, state: &str) {
        for s in WORKER_STATES {
            self.worker_state
                .with_label_values(&[worker, s])
                .set(i64::from(s == state));
        }
    }

    pub fn worker_restart_count_changed(&self, worker: &str, count: u32) {
        self.worker_restart_count
            .with_label_values(&[worker])
            .set(count.into());
    }

    /// `cause` is one of [`CRASH_CAUSES`].
    pub fn worker_crashed(&self, worker: &str, cause: &str) {
        self.worker_crashes
            .with_label_values(&[worker, cause])
            .inc();
    }

    pub fn worker_restarted(&self, worker: &str, manual: bool) {
        let kind = if manual { "manual" } else { "automatic" };
        self.worker_restarts
            .with_label_values(&[worker, kind])
            .inc();
    }

    pub fn worker_restart_latency(&self, worker: &str, seconds: f64) {
        self.worker_restart_latency
            .with_label_values(&[worker])
            .observe(seconds);
    }

    pub fn worker_uptime(&self, worker: &str, seconds: f64) {
        self.worker_uptime.with_label_values(&[worker]).set(seconds);
    }
}

impl Metrics {
    // ---- circuit breakers ----

    /// Publish a breaker's series (closed, zero counts) as soon as it exists.
    pub fn breaker_registered(&self, breaker: &str) {
        for result in BREAKER_RESULTS {
            self.breaker_calls.with_label_values(&[breaker, result]);
        }
        self.breaker_rejections.with_label_values(&[breaker]);
        self.set_breaker_state(breaker, "closed");
    }

    fn set_breaker_state(&self, breaker: &str, state: &str) {
        for s in BREAKER_STATES {
            self.breaker_state
                .with_label_values(&[breaker, s])
                .set(i64::from(s == state));
        }
    }

    /// `result` is one of [`BREAKER_RESULTS`].
    pub fn breaker_call(&self, breaker: &str, result: &str) {
        self.breaker_calls
            .with_label_values(&[breaker, result])
            .inc();
    }

    pub fn breaker_rejected(&self, breaker: &str) {
        self.breaker_rejections.with_label_values(&[breaker]).inc();
    }

    pub fn breaker_transition(&self, breaker: &str, from: &str, to: &str) {
        self.breaker_transitions
            .with_label_values(&[breaker, from, to])
            .inc();
        self.set_breaker_state(breaker, to);
    }

    // ---- AI services, dependencies, degradation ----

    /// One HTTP request to an AI service; `outcome` is `ok`, `client_error`,
    /// `server_error`, `timeout`, `connect_error` or `rejected`.
    pub fn ai_request(&self, service: &str, operation: &str, outcome: &str, seconds: f64) {
        self.ai_request_duration
            .with_label_values(&[service, operation, outcome])
            .observe(seconds);
    }

    pub fn dependency_state(&self, dependency: &str, up: bool) {
        self.dependency_up
            .with_label_values(&[dependency])
            .set(i64::from(up));
    }

    pub fn dependency_probed(&self, dependency: &str, seconds: f64) {
        self.dependency_probe_duration
            .with_label_values(&[dependency])
            .observe(seconds);
    }

    pub fn degradation_mode_changed(&self, mode: &str) {
        for m in DEGRADATION_MODES {
            self.degradation_mode
                .with_label_values(&[m])
                .set(i64::from(m == mode));
        }
    }
}

/// Closed label sets.
pub const BREAKER_STATES: [&str; 3] = ["closed", "open", "half_open"];
pub const BREAKER_RESULTS: [&str; 4] = ["success", "failure", "client_error", "abandoned"];
pub const DEGRADATION_MODES: [&str; 4] = ["normal", "degraded", "minimal", "offline"];

/// Closed set of crash causes for `watchpost_worker_crashes_total{cause}`.
pub const CRASH_CAUSES: [&str; 4] = ["panic", "error", "exited", "heartbeat_timeout"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Map any method to a closed set so a client cannot grow the label space.
fn bounded_method(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_prefix_help_and_build_info() {
        let m = Metrics::new();
        m.http_request_served("GET", "/health", 200, 0.001);
        m.http_request_served("BREW", "unmatched", 404, 0.001);
        m.worker_registered("file_watcher", 5);
        let text = m.render();
        assert!(text.contains("watchpost_build_info{version=\""));
        assert!(text.contains(
            "watchpost_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1"
        ));
        assert!(text.contains("method=\"OTHER\""));
        assert!(
            text.contains("watchpost_worker_state{state=\"stopped\",worker=\"file_watcher\"} 1")
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("watchpost_"), "unprefixed series: {line}");
        }
    }
}
