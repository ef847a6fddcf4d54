//! Every metric watchpost exports is defined here, and only here. Call sites use
//! intent-named methods (`metrics.worker_crashed("file_watcher")`); they never build
//! metric names or label vectors. Label values come from closed sets (enums rendered by
//! `as_str`) or configured names, so cardinality stays bounded.
//!
//! The `expect("valid metric")` calls are on proven invariants: every name, help text
//! and label set here is a constant, and constructing `Metrics` in any test would fail
//! if one were invalid.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::Mutex;

use crate::names::Label;

const NAMESPACE: &str = "watchpost";

/// Buckets for HTTP handling time, in seconds (0.5 ms .. 10 s).
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Worker states, as reported by the supervisor (one 0/1 series each).
/// The supervisor's states, and `impaired`: running but reporting that it cannot do its
/// work (then `running` is 0, so a rule on `state="running"` sees it).
pub const WORKER_STATES: [&str; 6] = [
    "running",
    "stopped",
    "crashed",
    "restarting",
    "failed",
    "impaired",
];

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
    worker_critical: IntGaugeVec,
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
    // queues
    queue_depth: IntGaugeVec,
    queue_fallback: IntGaugeVec,
    queue_items: IntCounterVec,
    queue_dead: IntGaugeVec,
    queue_dead_lettered: IntCounterVec,
    // watcher, batches, pipeline stages
    watcher_files: IntCounterVec,
    watcher_pending: IntGaugeVec,
    batches_open: IntGaugeVec,
    batches_closed: IntCounterVec,
    batch_size: HistogramVec,
    batch_age: HistogramVec,
    batch_oldest: GaugeVec,
    batch_window: GaugeVec,
    stage_duration: HistogramVec,
    pipeline_items: IntCounterVec,
    // WebSocket
    ws_connections: IntGaugeVec,
    ws_messages: IntCounterVec,
    ws_dropped: IntCounterVec,
}

/// The options of a family: `watchpost_<name>` with its help text.
pub fn opts(name: &str, help: &str) -> Opts {
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
                    opts("worker_state", "Supervised worker state: 1 for the current state, 0 for the others (impaired: running but unable to do its work)."),
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
            worker_critical: register(
                r,
                IntGaugeVec::new(
                    opts("worker_critical", "1 when the worker is critical (the service is unhealthy and not ready while it is not running)."),
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
                    opts("dependency_up", "1 when the last health probe of a dependency (postgres, redis, each AI service) succeeded."),
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
            queue_depth: register(
                r,
                IntGaugeVec::new(
                    opts("queue_depth", "Items in a Redis queue stream, taken-but-unacknowledged ones included."),
                    &["queue"],
                )
                .expect("valid metric"),
            ),
            queue_fallback: register(
                r,
                IntGaugeVec::new(
                    opts("queue_fallback_items", "Items waiting in a queue's fallback while Redis is unavailable, by store (memory mirror, disk spool)."),
                    &["queue", "store"],
                )
                .expect("valid metric"),
            ),
            queue_items: register(
                r,
                IntCounterVec::new(
                    opts("queue_items_total", "Queue item events: enqueued_redis, enqueued_fallback, refused, replayed, redelivered, acked, requeued."),
                    &["queue", "event"],
                )
                .expect("valid metric"),
            ),
            queue_dead: register(
                r,
                IntGaugeVec::new(
                    opts("queue_dead_letters", "Items waiting in a queue's dead-letter stream (failed permanently or too often; requeue them through the API)."),
                    &["queue"],
                )
                .expect("valid metric"),
            ),
            queue_dead_lettered: register(
                r,
                IntCounterVec::new(
                    opts("queue_dead_lettered_total", "Items moved to a queue's dead-letter stream, by reason."),
                    &["queue", "reason"],
                )
                .expect("valid metric"),
            ),
            watcher_files: register(
                r,
                IntCounterVec::new(
                    opts("watcher_files_total", "File watcher outcomes per file, by result; result=\"rescan\" counts full rescans after lost file events."),
                    &["result"],
                )
                .expect("valid metric"),
            ),
            watcher_pending: register(
                r,
                IntGaugeVec::new(
                    opts("watcher_pending_files", "Files seen by the watcher and not yet queued or rejected."),
                    &["observer"],
                )
                .expect("valid metric"),
            ),
            batches_open: register(
                r,
                IntGaugeVec::new(
                    opts("batches_open", "Open detection batches, by where they are kept (redis or memory)."),
                    &["store"],
                )
                .expect("valid metric"),
            ),
            batches_closed: register(
                r,
                IntCounterVec::new(
                    opts("batches_closed_total", "Detection batches closed and handed to analysis, by reason."),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            batch_size: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new("batch_detections", "Detections in a closed batch.")
                        .namespace(NAMESPACE)
                        .buckets(vec![1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0]),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            batch_age: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new("batch_age_seconds", "Age of a batch when it closed.")
                        .namespace(NAMESPACE)
                        .buckets(vec![1.0, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0, 300.0]),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            batch_oldest: register(
                r,
                GaugeVec::new(
                    opts("batch_oldest_open_seconds", "Age of the oldest open batch (0 when none is open)."),
                    &[],
                )
                .expect("valid metric"),
            ),
            batch_window: register(
                r,
                GaugeVec::new(
                    opts("batch_window_seconds", "Configured batch window: a batch closes at most this long after it opened."),
                    &[],
                )
                .expect("valid metric"),
            ),
            stage_duration: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "pipeline_stage_duration_seconds",
                        "Time one item spends in a pipeline stage (hash, detect, store, analyze).",
                    )
                    .namespace(NAMESPACE)
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0]),
                    &["stage"],
                )
                .expect("valid metric"),
            ),
            pipeline_items: register(
                r,
                IntCounterVec::new(
                    opts("pipeline_items_total", "Items finished by a pipeline worker, by stage and result."),
                    &["stage", "result"],
                )
                .expect("valid metric"),
            ),
            ws_connections: register(
                r,
                IntGaugeVec::new(
                    opts("websocket_connections", "WebSocket clients connected now."),
                    &[],
                )
                .expect("valid metric"),
            ),
            ws_messages: register(
                r,
                IntCounterVec::new(
                    opts("websocket_messages_sent_total", "Messages queued to WebSocket clients, by channel (one per client)."),
                    &["channel"],
                )
                .expect("valid metric"),
            ),
            ws_dropped: register(
                r,
                IntCounterVec::new(
                    opts("websocket_clients_dropped_total", "WebSocket clients disconnected, by reason (slow, unresponsive, write_timeout, closed)."),
                    &["reason"],
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

    /// Register a family that a capability defines in its own metrics module (it
    /// then owns the family and its intent-named methods).
    pub fn register<C: prometheus::core::Collector + Clone + 'static>(&self, c: C) -> C {
        register(&self.registry, c)
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
    pub fn worker_registered(&self, worker: &str, max_restarts: u32, critical: bool) {
        self.worker_critical
            .with_label_values(&[worker])
            .set(i64::from(critical));
        self.worker_uptime.with_label_values(&[worker]).set(0.0);
        self.worker_restart_latency.with_label_values(&[worker]);
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

    /// A running worker reports it cannot do its work (`true`), or can again.
    pub fn worker_impaired(&self, worker: &str, impaired: bool) {
        self.worker_state_changed(worker, if impaired { "impaired" } else { "running" });
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
        for from in BREAKER_STATES {
            for to in BREAKER_STATES.iter().filter(|t| **t != from) {
                self.breaker_transitions
                    .with_label_values(&[breaker, from, to]);
            }
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

    /// A probed dependency exists: publish it as down until its first probe.
    pub fn dependency_known(&self, dependency: &str) {
        self.dependency_up.with_label_values(&[dependency]).set(0);
        self.dependency_probe_duration
            .with_label_values(&[dependency]);
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

impl Metrics {
    // ---- queues ----

    pub fn queue_depth(&self, queue: &str, items: u64) {
        self.queue_depth
            .with_label_values(&[queue])
            .set(i64::try_from(items).unwrap_or(i64::MAX));
    }

    pub fn queue_fallback_items(&self, queue: &str, memory: u64, disk: u64) {
        for (store, n) in [("memory", memory), ("disk", disk)] {
            self.queue_fallback
                .with_label_values(&[queue, store])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// An item was accepted; `placement` renders as `redis` or `fallback`.
    pub fn queue_item_enqueued(&self, queue: &str, placement: impl Label) {
        let event = format!("enqueued_{}", placement.label());
        self.queue_items.with_label_values(&[queue, &event]).inc();
    }

    pub fn queue_dead_letters(&self, queue: &str, items: u64) {
        self.queue_dead
            .with_label_values(&[queue])
            .set(i64::try_from(items).unwrap_or(i64::MAX));
    }

    pub fn queue_item_dead_lettered(&self, queue: &str, reason: impl Label) {
        self.queue_dead_lettered
            .with_label_values(&[queue, reason.label()])
            .inc();
    }

    pub fn queue_items_requeued(&self, queue: &str, n: u64) {
        self.queue_items
            .with_label_values(&[queue, "requeued"])
            .inc_by(n);
    }

    /// Publish a queue's series at 0: depth, fallback, every item event and every
    /// dead-letter reason.
    pub fn queue_known<R: Label>(&self, queue: &str) {
        self.queue_depth(queue, 0);
        self.queue_dead_letters(queue, 0);
        self.queue_fallback_items(queue, 0, 0);
        for event in QUEUE_EVENTS {
            self.queue_items.with_label_values(&[queue, event]);
        }
        for r in R::all() {
            self.queue_dead_lettered
                .with_label_values(&[queue, r.label()]);
        }
    }

    pub fn queue_item_refused(&self, queue: &str) {
        self.queue_items
            .with_label_values(&[queue, "refused"])
            .inc();
    }

    pub fn queue_items_replayed(&self, queue: &str, n: u64) {
        self.queue_items
            .with_label_values(&[queue, "replayed"])
            .inc_by(n);
    }

    pub fn queue_item_redelivered(&self, queue: &str) {
        self.queue_items
            .with_label_values(&[queue, "redelivered"])
            .inc();
    }

    pub fn queue_item_acked(&self, queue: &str) {
        self.queue_items.with_label_values(&[queue, "acked"]).inc();
    }

    // ---- watcher, batches, stages ----

    /// Publish every watcher result and every observer kind at 0.
    pub fn watcher_known<R: Label, O: Label>(&self) {
        for r in R::all() {
            self.watcher_files.with_label_values(&[r.label()]);
        }
        for o in O::all() {
            self.watcher_pending.with_label_values(&[o.label()]).set(0);
        }
    }

    pub fn watcher_file(&self, result: impl Label) {
        self.watcher_files
            .with_label_values(&[result.label()])
            .inc();
    }

    pub fn watcher_pending(&self, observer: impl Label, pending: usize) {
        self.watcher_pending
            .with_label_values(&[observer.label()])
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    pub fn batches_open(&self, redis: usize, memory: usize) {
        for (store, n) in [("redis", redis), ("memory", memory)] {
            self.batches_open
                .with_label_values(&[store])
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Publish every close reason at 0, both open-batch stores, and the window.
    pub fn batches_known<R: Label>(&self, window_seconds: f64) {
        for r in R::all() {
            self.batches_closed.with_label_values(&[r.label()]);
            self.batch_size.with_label_values(&[r.label()]);
            self.batch_age.with_label_values(&[r.label()]);
        }
        self.batches_open(0, 0);
        self.batch_oldest_open(0.0);
        self.batch_window
            .with_label_values::<&str>(&[])
            .set(window_seconds);
    }

    pub fn batch_oldest_open(&self, seconds: f64) {
        self.batch_oldest
            .with_label_values::<&str>(&[])
            .set(seconds.max(0.0));
    }

    pub fn batch_closed(&self, reason: impl Label, detections: usize, age_seconds: f64) {
        let reason = reason.label();
        self.batches_closed.with_label_values(&[reason]).inc();
        self.batch_size
            .with_label_values(&[reason])
            .observe(detections as f64);
        self.batch_age
            .with_label_values(&[reason])
            .observe(age_seconds);
    }

    /// Publish every `(stage, outcome)` pair and every timed step at 0.
    pub fn pipeline_stages_known<S: Label, O: Label>(&self) {
        for s in S::all() {
            for o in O::all() {
                self.pipeline_items
                    .with_label_values(&[s.label(), o.label()]);
            }
        }
        for step in TIMED_STEPS {
            self.stage_duration.with_label_values(&[step]);
        }
    }

    /// Publish the request series of an AI service's operations at 0 (successful
    /// outcome; other outcomes appear when they happen).
    pub fn ai_service_known(&self, service: &str, operations: &[&str]) {
        for op in operations {
            self.ai_request_duration
                .with_label_values(&[service, op, "ok"]);
        }
    }

    /// Publish a route's request series at 0 (status 200).
    pub fn http_route_known(&self, method: &str, route: &str) {
        let method = bounded_method(method);
        self.http_requests
            .with_label_values(&[method, route, "200"]);
        self.http_duration.with_label_values(&[method, route]);
    }

    /// Publish the WebSocket series at 0.
    pub fn websocket_known<C: Label, R: Label>(&self) {
        self.websocket_clients(0);
        for c in C::all() {
            self.ws_messages.with_label_values(&[c.label()]);
        }
        for r in R::all() {
            self.ws_dropped.with_label_values(&[r.label()]);
        }
    }

    pub fn websocket_clients(&self, n: usize) {
        self.ws_connections
            .with_label_values::<&str>(&[])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn websocket_messages_sent(&self, channel: impl Label, n: u64) {
        self.ws_messages
            .with_label_values(&[channel.label()])
            .inc_by(n);
    }

    pub fn websocket_client_dropped(&self, reason: impl Label) {
        self.ws_dropped.with_label_values(&[reason.label()]).inc();
    }

    pub fn stage_timed(&self, stage: &str, seconds: f64) {
        self.stage_duration
            .with_label_values(&[stage])
            .observe(seconds);
    }

    pub fn pipeline_item(&self, stage: impl Label, outcome: impl Label) {
        self.pipeline_items
            .with_label_values(&[stage.label(), outcome.label()])
            .inc();
    }
}

/// Closed set of `watchpost_queue_items_total{event}`.
pub const QUEUE_EVENTS: [&str; 7] = [
    "enqueued_redis",
    "enqueued_fallback",
    "refused",
    "replayed",
    "redelivered",
    "acked",
    "requeued",
];

/// The timed steps of `watchpost_pipeline_stage_duration_seconds{stage}`.
pub const TIMED_STEPS: [&str; 4] = ["hash", "detect", "store", "analyze"];

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
        m.worker_registered("file_watcher", 5, true);
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
