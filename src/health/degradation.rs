//! Degradation manager (docs/behaviour.md §4): a supervised worker that reads the shared
//! prober's results every `check_interval_seconds` (a service is down after
//! `failure_threshold` consecutive failed checks and up again after one success, Redis
//! as the last probe found it), then derives the mode and the available features:
//!
//! - `normal`: every service up and Redis healthy;
//! - `degraded`: only non-critical services down, or Redis down (fallback queues);
//! - `minimal`: some critical service down;
//! - `offline`: every critical service down.
//!
//! The decision rules are plain functions (`derive_mode`, `available_features`); the
//! probe results come through [`RoundSource`] so the timing is tested on tokio's
//! paused clock. It never probes on its own: there is one prober per service.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use super::metrics::HealthMetrics;
use super::prober::{ProbeRound, Prober};
use crate::config::{secs, Config};
use crate::events::HealthState;
use crate::events::{Event, EventBus, ServiceStatusChanged};
use crate::pipeline::queue::FallbackStats;
use crate::prom::Metrics;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// Where the manager gets its probe results: the shared prober in production, a fake
/// in the paused-clock tests.
pub trait RoundSource: Send + Sync {
    fn round(&self) -> BoxFuture<'_, Arc<ProbeRound>>;
    /// Resolves when a dependency's reachability changed (a reason to check before
    /// the interval is up); never, by default.
    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
}

impl RoundSource for Arc<Prober> {
    fn round(&self) -> BoxFuture<'_, Arc<ProbeRound>> {
        Box::pin(self.current())
    }
    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.dependency_changed())
    }
}

pub use crate::events::{Mode, ServiceStatus};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceView {
    pub name: String,
    pub status: ServiceStatus,
    pub last_check: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DegradationSnapshot {
    pub mode: Mode,
    pub is_degraded: bool,
    pub redis_healthy: bool,
    pub memory_queue_size: u64,
    pub fallback_queues: BTreeMap<String, u64>,
    pub services: Vec<ServiceView>,
    pub available_features: Vec<&'static str>,
}

/// `(critical, down)` per service plus Redis health → mode.
pub fn derive_mode(services: &[(bool, bool)], redis_healthy: bool) -> Mode {
    let critical: Vec<bool> = services
        .iter()
        .filter(|(c, _)| *c)
        .map(|(_, d)| *d)
        .collect();
    if !critical.is_empty() && critical.iter().all(|d| *d) {
        Mode::Offline
    } else if critical.iter().any(|d| *d) {
        Mode::Minimal
    } else if services.iter().any(|(_, d)| *d) || !redis_healthy {
        Mode::Degraded
    } else {
        Mode::Normal
    }
}

/// Features whose services are not down: detection (yolo26), analysis (nemotron),
/// entity_tracking (clip), enrichment (florence or enrichment).
pub fn available_features(is_down: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut f = Vec::new();
    if !is_down("yolo26") {
        f.push("detection");
    }
    if !is_down("nemotron") {
        f.push("analysis");
    }
    if !is_down("clip") {
        f.push("entity_tracking");
    }
    if !is_down("florence") || !is_down("enrichment") {
        f.push("enrichment");
    }
    f
}

struct Tracked {
    name: &'static str,
    critical: bool,
    status: ServiceStatus,
    consecutive_failures: u32,
    last_check: Option<DateTime<Utc>>,
    error: Option<String>,
}

struct State {
    services: Vec<Tracked>,
    redis_healthy: bool,
    mode: Mode,
}

pub struct DegradationManager {
    source: Arc<dyn RoundSource>,
    stats: Arc<FallbackStats>,
    metrics: HealthMetrics,
    events: EventBus,
    interval: Duration,
    failure_threshold: u32,
    state: Mutex<State>,
}

impl DegradationManager {
    pub fn new(
        config: &Config,
        source: Arc<dyn RoundSource>,
        stats: Arc<FallbackStats>,
        metrics: Arc<Metrics>,
        events: EventBus,
    ) -> Self {
        let services: Vec<Tracked> = config
            .ai
            .services()
            .into_iter()
            .map(|(name, s)| Tracked {
                name,
                critical: s.critical,
                status: ServiceStatus::Unknown,
                consecutive_failures: 0,
                last_check: None,
                error: None,
            })
            .collect();
        // Until Redis has answered a PING it is not known to be healthy.
        let mode = derive_mode(
            &services
                .iter()
                .map(|s| (s.critical, false))
                .collect::<Vec<_>>(),
            false,
        );
        let metrics = HealthMetrics::new(&metrics);
        metrics.mode_changed(mode);
        Self {
            source,
            stats,
            metrics,
            events,
            interval: secs(config.degradation.check_interval_seconds),
            failure_threshold: config.degradation.failure_threshold.max(1),
            state: Mutex::new(State {
                services,
                redis_healthy: false,
                mode,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The supervised worker: check now, then every `check_interval_seconds`.
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::DEGRADATION_MANAGER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    /// Check every `check_interval_seconds`, and at once when PostgreSQL or Redis
    /// comes or goes (readiness then follows within a round, not an interval).
    pub async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        loop {
            let started = Instant::now();
            self.check_once().await;
            let wait = ctx.idle(self.interval.saturating_sub(started.elapsed()));
            tokio::select! {
                go_on = wait => {
                    if !go_on {
                        return Ok(());
                    }
                }
                () = self.source.changed() => {}
            }
        }
    }

    /// Read the current probe round and apply it.
    pub async fn check_once(&self) {
        let round = self.source.round().await;
        self.apply(&round);
    }

    fn apply(&self, round: &ProbeRound) {
        let mut st = self.lock();
        for result in &round.ai_services {
            let Some(svc) = st.services.iter_mut().find(|s| s.name == result.name) else {
                continue;
            };
            let previous = svc.status;
            svc.last_check = Some(result.last_check);
            if result.status == HealthState::Healthy {
                svc.consecutive_failures = 0;
                svc.error = None;
                svc.status = ServiceStatus::Healthy;
            } else {
                svc.consecutive_failures += 1;
                svc.error = result.error.clone().or_else(|| Some("unhealthy".into()));
                // Below the threshold the status stays what it was.
                if svc.consecutive_failures >= self.failure_threshold {
                    svc.status = ServiceStatus::Unhealthy;
                }
            }
            // The first "healthy" after start is not news; every other change is.
            let first_healthy =
                previous == ServiceStatus::Unknown && svc.status == ServiceStatus::Healthy;
            if previous != svc.status && !first_healthy {
                match svc.status {
                    ServiceStatus::Unhealthy => tracing::warn!(
                        service = svc.name,
                        error = svc.error.as_deref().unwrap_or("unhealthy"),
                        "AI service unreachable: {}",
                        impact(svc.name)
                    ),
                    _ => tracing::info!(service = svc.name, "AI service is healthy again"),
                }
                self.events
                    .publish(Event::ServiceStatusChanged(ServiceStatusChanged {
                        service: svc.name.to_string(),
                        status: svc.status,
                        previous_status: previous,
                        consecutive_failures: svc.consecutive_failures,
                        error: svc.error.clone(),
                    }));
            }
        }
        st.redis_healthy = round.redis.status == HealthState::Healthy;
        let mode = derive_mode(
            &st.services
                .iter()
                .map(|s| (s.critical, s.status == ServiceStatus::Unhealthy))
                .collect::<Vec<_>>(),
            st.redis_healthy,
        );
        if mode != st.mode {
            let previous = st.mode;
            st.mode = mode;
            self.metrics.mode_changed(mode);
            // A worse mode is a warning; a recovery (including the first check after
            // start, which leaves the cautious start-up mode) is news, not a warning.
            if mode > previous {
                tracing::warn!(
                    from = previous.as_str(),
                    to = mode.as_str(),
                    "degradation mode changed"
                );
            } else {
                tracing::info!(
                    from = previous.as_str(),
                    to = mode.as_str(),
                    "degradation mode changed"
                );
            }
        }
    }

    pub fn mode(&self) -> Mode {
        self.lock().mode
    }

    pub fn snapshot(&self) -> DegradationSnapshot {
        let st = self.lock();
        DegradationSnapshot {
            mode: st.mode,
            is_degraded: st.mode != Mode::Normal,
            redis_healthy: st.redis_healthy,
            memory_queue_size: self.stats.memory_total(),
            fallback_queues: self.stats.disk_by_queue(),
            services: st
                .services
                .iter()
                .map(|s| ServiceView {
                    name: s.name.to_string(),
                    status: s.status,
                    last_check: s.last_check,
                    consecutive_failures: s.consecutive_failures,
                    error_message: s.error.clone(),
                })
                .collect(),
            available_features: features_of(&st.services),
        }
    }
}

fn features_of(services: &[Tracked]) -> Vec<&'static str> {
    available_features(|name| {
        services
            .iter()
            .any(|s| s.name == name && s.status == ServiceStatus::Unhealthy)
    })
}

/// What an outage of `service` means for the pipeline, for the one log line.
fn impact(service: &str) -> &'static str {
    match service {
        "yolo26" => "images wait in the detection queue until it is back",
        "nemotron" => "security events are written with fallback risk values until it is back",
        _ => "the features that need it are unavailable until it is back",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn mode_rules() {
        // (critical, down): yolo26, nemotron critical; three others not.
        let svc = |down: &[usize]| -> Vec<(bool, bool)> {
            (0..5).map(|i| (i < 2, down.contains(&i))).collect()
        };
        assert_eq!(derive_mode(&svc(&[]), true), Mode::Normal);
        assert!(Mode::Normal < Mode::Degraded && Mode::Degraded < Mode::Minimal);
        assert!(Mode::Minimal < Mode::Offline);
        assert_eq!(derive_mode(&svc(&[]), false), Mode::Degraded);
        assert_eq!(derive_mode(&svc(&[3]), true), Mode::Degraded);
        assert_eq!(derive_mode(&svc(&[0]), true), Mode::Minimal);
        assert_eq!(derive_mode(&svc(&[1, 2, 3, 4]), true), Mode::Minimal);
        assert_eq!(derive_mode(&svc(&[0, 1]), true), Mode::Offline);
    }

    #[test]
    fn feature_rules() {
        let all = available_features(|_| false);
        assert_eq!(
            all,
            ["detection", "analysis", "entity_tracking", "enrichment"]
        );
        let f = available_features(|n| n == "florence");
        assert!(f.contains(&"enrichment"), "enrichment service still up");
        let f = available_features(|n| n == "florence" || n == "enrichment" || n == "yolo26");
        assert_eq!(f, ["analysis", "entity_tracking"]);
    }

    /// Services listed in `down` fail their checks.
    struct FakeProbe {
        down: Mutex<HashSet<&'static str>>,
    }

    impl RoundSource for FakeProbe {
        fn round(&self) -> BoxFuture<'_, Arc<ProbeRound>> {
            use super::super::prober::{AiServiceHealth, InfraHealth};
            let down = self.down.lock().expect("lock").clone();
            let state = |name: &str| {
                if down.contains(name) {
                    HealthState::Unhealthy
                } else {
                    HealthState::Healthy
                }
            };
            let infra = |name: &str| InfraHealth {
                name: name.into(),
                status: state(name),
                message: String::new(),
                details: None,
                latency_ms: None,
                error: None,
            };
            let round = ProbeRound {
                taken: Instant::now(),
                checked_at: crate::time::now(),
                postgres: infra("postgres"),
                redis: infra("redis"),
                ai_services: crate::ai::SERVICE_NAMES
                    .iter()
                    .map(|n| AiServiceHealth {
                        name: n.to_string(),
                        display_name: n.to_string(),
                        status: state(n),
                        url: String::new(),
                        response_time_ms: None,
                        error: down.contains(n).then(|| "HTTP 500".to_string()),
                        circuit_state: crate::breaker::BreakerState::Closed,
                        last_check: crate::time::now(),
                        critical: *n == "yolo26" || *n == "nemotron",
                        details: None,
                    })
                    .collect(),
            };
            Box::pin(async move { Arc::new(round) })
        }
    }

    fn manager(probe: Arc<FakeProbe>) -> Arc<DegradationManager> {
        Arc::new(DegradationManager::new(
            &Config::default(),
            probe,
            Arc::new(FallbackStats::default()),
            Arc::new(Metrics::new()),
            EventBus::new(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn down_after_three_failed_checks_and_up_after_one_success() {
        let probe = Arc::new(FakeProbe {
            down: Mutex::new(HashSet::from(["clip"])),
        });
        let m = manager(probe.clone());
        m.check_once().await;
        m.check_once().await;
        assert_eq!(m.mode(), Mode::Normal, "two failures are not enough");
        m.check_once().await;
        assert_eq!(m.mode(), Mode::Degraded);
        let snap = m.snapshot();
        let clip = snap
            .services
            .iter()
            .find(|s| s.name == "clip")
            .expect("clip");
        assert_eq!(
            (clip.status, clip.consecutive_failures),
            (ServiceStatus::Unhealthy, 3)
        );
        assert_eq!(clip.error_message.as_deref(), Some("HTTP 500"));
        assert!(!snap.available_features.contains(&"entity_tracking"));
        probe.down.lock().expect("lock").clear();
        m.check_once().await;
        assert_eq!(m.mode(), Mode::Normal);
    }

    /// With the default settings (15 s checks, 3 failures), a critical service that
    /// goes down is reported `minimal` 30–45 s later, depending on where in the check
    /// period it failed.
    #[tokio::test(start_paused = true)]
    async fn time_to_minimal_with_defaults_is_between_30_and_45_seconds() {
        for offset_ms in [1u64, 7_500, 14_999] {
            let probe = Arc::new(FakeProbe {
                down: Mutex::new(HashSet::new()),
            });
            let m = manager(probe.clone());
            let sup = crate::supervisor::Supervisor::new(
                &Config::default().supervisor,
                Arc::new(Metrics::new()),
                EventBus::new(),
            );
            sup.register(m.worker(false)).expect("register");
            sup.start_all();
            tokio::time::sleep(Duration::from_millis(offset_ms)).await;
            probe.down.lock().expect("lock").insert("yolo26");
            let went_down = Instant::now();
            crate::time::until_within(Duration::from_secs(120), "minimal mode", || {
                m.mode() == Mode::Minimal
            })
            .await;
            let took = went_down.elapsed().as_secs_f64();
            assert!(
                (29.9..=45.1).contains(&took),
                "offset {offset_ms} ms: {took} s"
            );
            sup.shutdown().await;
        }
    }
}
