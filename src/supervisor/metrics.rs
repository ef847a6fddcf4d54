//! The supervisor's metrics: each worker's state (one 0/1 series per state), its
//! restarts, crashes, uptime and restart latency. Every label value is a worker name
//! (registered, validated) or comes from a closed set below.

use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec};

use crate::events::WorkerStatus;
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// Why a run ended without being asked to (`watchpost_worker_crashes_total{cause}`).
    pub enum CrashCause {
        Panic = "panic",
        Error = "error",
        Exited = "exited",
        HeartbeatTimeout = "heartbeat_timeout",
    }
}

closed_set! {
    /// Who restarted a worker (`watchpost_worker_restarts_total{kind}`).
    pub enum RestartKind {
        Automatic = "automatic",
        Manual = "manual",
    }
}

/// The `state` label: the supervisor's status, or `impaired` for a running worker
/// that reports it cannot do its work (then `running` is 0, so a rule on
/// `state="running"` sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShownState {
    Status(WorkerStatus),
    Impaired,
}

const SHOWN_STATES: [ShownState; 6] = [
    ShownState::Status(WorkerStatus::Running),
    ShownState::Status(WorkerStatus::Stopped),
    ShownState::Status(WorkerStatus::Crashed),
    ShownState::Status(WorkerStatus::Restarting),
    ShownState::Status(WorkerStatus::Failed),
    ShownState::Impaired,
];

impl Label for ShownState {
    fn label(self) -> &'static str {
        match self {
            Self::Status(s) => s.as_str(),
            Self::Impaired => "impaired",
        }
    }
    fn all() -> &'static [Self] {
        &SHOWN_STATES
    }
}

/// Restart latency buckets, in seconds (10 µs .. 100 ms): the restart itself is a
/// spawn, the backoff wait is not counted.
const RESTART_LATENCY_BUCKETS: &[f64] = &[
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
];

#[derive(Clone)]
pub struct SupervisorMetrics {
    state: IntGaugeVec,
    consecutive_restarts: IntGaugeVec,
    max_restarts: IntGaugeVec,
    restarts: IntCounterVec,
    crashes: IntCounterVec,
    uptime: GaugeVec,
    restart_latency: HistogramVec,
    critical: IntGaugeVec,
}

impl SupervisorMetrics {
    pub fn new(m: &Metrics) -> Self {
        Self {
            state: m.gauges(
                "worker_state",
                "Supervised worker state: 1 for the current state, 0 for the others (impaired: running but unable to do its work).",
                &["worker", "state"],
            ),
            consecutive_restarts: m.gauges(
                "worker_consecutive_restarts",
                "Restarts counted against max_restarts (decays to 0 after a healthy run).",
                &["worker"],
            ),
            max_restarts: m.gauges(
                "worker_max_restarts",
                "Automatic restarts allowed before a worker is marked failed.",
                &["worker"],
            ),
            restarts: m.counters(
                "worker_restarts_total",
                "Worker restarts, automatic and manual.",
                &["worker", "kind"],
            ),
            crashes: m.counters(
                "worker_crashes_total",
                "Worker crashes (panic, error, unexpected exit or heartbeat timeout).",
                &["worker", "cause"],
            ),
            uptime: m.float_gauges(
                "worker_uptime_seconds",
                "Seconds since the worker was last started; 0 when not running.",
                &["worker"],
            ),
            restart_latency: m.histograms(
                "worker_restart_latency_seconds",
                "Time from a crash being seen to the worker running again, minus the backoff wait.",
                RESTART_LATENCY_BUCKETS,
                &["worker"],
            ),
            critical: m.gauges(
                "worker_critical",
                "1 when the worker is critical (the service is unhealthy and not ready while it is not running).",
                &["worker"],
            ),
        }
    }

    /// A worker is known: publish its series so dashboards see it before any event.
    pub fn registered(&self, worker: &str, max_restarts: u32, critical: bool) {
        self.critical
            .with_label_values(&[worker])
            .set(i64::from(critical));
        self.uptime.with_label_values(&[worker]).set(0.0);
        self.restart_latency.with_label_values(&[worker]);
        self.max_restarts
            .with_label_values(&[worker])
            .set(max_restarts.into());
        self.consecutive_restarts
            .with_label_values(&[worker])
            .set(0);
        for kind in RestartKind::ALL {
            self.restarts.with_label_values(&[worker, kind.label()]);
        }
        for cause in CrashCause::ALL {
            self.crashes.with_label_values(&[worker, cause.label()]);
        }
        self.status_changed(worker, WorkerStatus::Stopped);
    }

    fn show(&self, worker: &str, shown: ShownState) {
        for s in ShownState::all() {
            self.state
                .with_label_values(&[worker, s.label()])
                .set(i64::from(*s == shown));
        }
    }

    pub fn status_changed(&self, worker: &str, status: WorkerStatus) {
        self.show(worker, ShownState::Status(status));
    }

    /// A running worker reports it cannot do its work (`true`), or can again.
    pub fn impaired(&self, worker: &str, impaired: bool) {
        self.show(
            worker,
            if impaired {
                ShownState::Impaired
            } else {
                ShownState::Status(WorkerStatus::Running)
            },
        );
    }

    pub fn consecutive_restarts(&self, worker: &str, count: u32) {
        self.consecutive_restarts
            .with_label_values(&[worker])
            .set(count.into());
    }

    pub fn crashed(&self, worker: &str, cause: CrashCause) {
        self.crashes
            .with_label_values(&[worker, cause.label()])
            .inc();
    }

    pub fn restarted(&self, worker: &str, kind: RestartKind) {
        self.restarts
            .with_label_values(&[worker, kind.label()])
            .inc();
    }

    pub fn restart_latency(&self, worker: &str, seconds: f64) {
        self.restart_latency
            .with_label_values(&[worker])
            .observe(seconds);
    }

    pub fn uptime(&self, worker: &str, seconds: f64) {
        self.uptime.with_label_values(&[worker]).set(seconds);
    }
}
