//! Health: the one prober of every dependency (`prober.rs`), the degradation manager
//! that derives the pipeline's mode from it (`degradation.rs`), and the assessment of
//! the whole service (this file): full health, readiness, and the problems the alert
//! engine (`crate::alerts`) decides on. Reading health announces nothing.
//!
//! Rules (docs/behaviour.md §5): PostgreSQL, Redis, every critical AI service and every
//! critical worker are critical. Any critical problem → `unhealthy` (not ready, 503);
//! only non-critical problems → `degraded` (ready, 200); none → `healthy`. Readiness
//! needs PostgreSQL, Redis and every critical worker, from the latest cached round.
//!
//! Must not: probe on its own (the prober does), or know about HTTP.

pub mod degradation;
pub mod metrics;
pub mod prober;

pub use crate::events::HealthState;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::breaker::{BreakerRegistry, BreakerState};
use crate::events::Source;
use crate::json::OrderedMap;
use crate::names::workers;
use crate::pipeline::watcher::WatcherStatus;
use crate::supervisor::{Supervisor, WorkerStatus};
use degradation::DegradationManager;
use prober::{AiServiceHealth, InfraHealth, ProbeRound, Prober};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreakerSummary {
    pub total: usize,
    pub open: usize,
    pub half_open: usize,
    pub closed: usize,
    /// Every breaker's state, keyed by name in registry order.
    #[schema(value_type = std::collections::HashMap<String, BreakerState>)]
    pub breakers: OrderedMap<BreakerState>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerHealth {
    pub name: String,
    pub running: bool,
    pub critical: bool,
}

/// `GET /api/system/health/full`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FullHealth {
    pub status: HealthState,
    pub ready: bool,
    pub message: String,
    pub postgres: InfraHealth,
    pub redis: InfraHealth,
    pub ai_services: Vec<AiServiceHealth>,
    pub circuit_breakers: BreakerSummary,
    pub workers: Vec<WorkerHealth>,
    pub version: &'static str,
    pub timestamp: DateTime<Utc>,
    /// Every problem found, keyed by source (what the alert engine decides on).
    #[serde(skip)]
    pub problems: BTreeMap<Source, Problem>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckResult {
    pub status: HealthState,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

/// `GET /ready` and `GET /api/system/health/ready`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `database` and `redis`, from the latest probe round.
    pub checks: BTreeMap<String, CheckResult>,
    pub workers: Vec<WorkerHealth>,
    /// Why it is not ready (empty when ready).
    pub reasons: Vec<String>,
    /// When the probe results were taken.
    pub checked_at: Option<DateTime<Utc>>,
    pub timestamp: DateTime<Utc>,
}

/// One problem of the assessment, for the alert engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub critical: bool,
    pub message: String,
}

/// The assessment of the whole service.
pub struct Health {
    prober: Arc<Prober>,
    breakers: Arc<BreakerRegistry>,
    supervisor: Supervisor,
    watcher: Arc<WatcherStatus>,
    degradation: Arc<DegradationManager>,
}

impl Health {
    pub fn new(
        prober: Arc<Prober>,
        breakers: Arc<BreakerRegistry>,
        supervisor: Supervisor,
        watcher: Arc<WatcherStatus>,
        degradation: Arc<DegradationManager>,
    ) -> Self {
        Self {
            prober,
            breakers,
            supervisor,
            watcher,
            degradation,
        }
    }

    pub fn prober(&self) -> &Arc<Prober> {
        &self.prober
    }

    /// Full health from a round no older than the cache TTL (probing if needed).
    pub async fn full(&self) -> FullHealth {
        let round = self.prober.current().await;
        self.full_from(&round)
    }

    /// Full health from `round`. A read: it announces nothing (the alert engine
    /// decides what changed).
    pub fn full_from(&self, round: &ProbeRound) -> FullHealth {
        self.assess(round)
    }

    /// A stamp that changes whenever the full health of `round` would: the round
    /// itself, the workers, the breakers, the watcher and the degradation mode.
    pub fn version(&self, round: &Arc<ProbeRound>) -> u64 {
        use crate::json::mix;
        let mut v = mix(self.supervisor.version(), Arc::as_ptr(round) as u64);
        v = mix(v, self.breakers.version());
        v = mix(v, u64::from(self.watcher.is_active()));
        mix(v, self.degradation.mode() as u64)
    }

    /// Full health from the latest round, however old; `None` before the first
    /// round. No I/O.
    pub fn latest(&self) -> Option<FullHealth> {
        let round = self.prober.latest()?;
        Some(self.assess(&round))
    }

    /// The degradation mode now.
    pub fn mode(&self) -> degradation::Mode {
        self.degradation.mode()
    }

    /// Every supervised worker; the file watcher counts as running only while it
    /// watches the camera root.
    fn workers(&self) -> Vec<WorkerHealth> {
        self.supervisor
            .status()
            .workers
            .into_iter()
            .map(|w| WorkerHealth {
                running: w.status == WorkerStatus::Running
                    && (w.name != workers::FILE_WATCHER || self.watcher.is_active()),
                name: w.name,
                critical: w.critical,
            })
            .collect()
    }

    fn breaker_summary(&self) -> BreakerSummary {
        let states: Vec<(String, BreakerState)> = self
            .breakers
            .all()
            .iter()
            .map(|b| (b.name().to_string(), b.state()))
            .collect();
        let count = |s: BreakerState| states.iter().filter(|(_, x)| *x == s).count();
        BreakerSummary {
            total: states.len(),
            open: count(BreakerState::Open),
            half_open: count(BreakerState::HalfOpen),
            closed: count(BreakerState::Closed),
            breakers: OrderedMap(states),
        }
    }

    /// The assessment of one round together with the live workers and breakers.
    pub fn assess(&self, round: &ProbeRound) -> FullHealth {
        let workers = self.workers();
        let breakers = self.breaker_summary();
        let mut ai_services = round.ai_services.clone();
        for s in &mut ai_services {
            if let Some(b) = self.breakers.get(&s.name) {
                s.circuit_state = b.state();
            }
        }
        let problems = problems(round, &ai_services, &workers, &breakers);
        let critical: Vec<&str> = problems
            .values()
            .filter(|p| p.critical)
            .map(|p| p.message.as_str())
            .collect();
        let minor: Vec<&str> = problems
            .values()
            .filter(|p| !p.critical)
            .map(|p| p.message.as_str())
            .collect();
        let (status, message) = if !critical.is_empty() {
            (
                HealthState::Unhealthy,
                format!("Unhealthy: {}", critical.join("; ")),
            )
        } else if !minor.is_empty() {
            (
                HealthState::Degraded,
                format!("Degraded: {}", minor.join("; ")),
            )
        } else {
            (HealthState::Healthy, "All systems operational".to_string())
        };
        FullHealth {
            ready: status != HealthState::Unhealthy,
            status,
            message,
            postgres: round.postgres.clone(),
            redis: round.redis.clone(),
            ai_services,
            circuit_breakers: breakers,
            workers,
            timestamp: crate::time::now(),
            version: env!("CARGO_PKG_VERSION"),
            problems,
        }
    }

    /// Readiness from the latest round (no I/O).
    pub fn readiness(&self) -> Readiness {
        let round = self.prober.latest();
        let workers = self.workers();
        let mut reasons = Vec::new();
        let mut checks = BTreeMap::new();
        match &round {
            None => reasons.push("no health probe has completed yet".to_string()),
            Some(r) => {
                for (key, infra) in [("database", &r.postgres), ("redis", &r.redis)] {
                    if infra.status != HealthState::Healthy {
                        reasons.push(format!("{}: {}", infra.name, infra.message));
                    }
                    checks.insert(
                        key.to_string(),
                        CheckResult {
                            status: infra.status,
                            latency_ms: infra.latency_ms,
                            error: infra.error.clone(),
                        },
                    );
                }
            }
        }
        for w in workers.iter().filter(|w| w.critical && !w.running) {
            reasons.push(format!("critical worker {} is not running", w.name));
        }
        let ready = reasons.is_empty();
        Readiness {
            ready,
            status: if ready { "ready" } else { "not_ready" },
            checks,
            workers,
            reasons,
            checked_at: round.map(|r| r.checked_at),
            timestamp: crate::time::now(),
        }
    }
}

/// Every problem of a round, keyed by its source.
fn problems(
    round: &ProbeRound,
    ai: &[AiServiceHealth],
    workers: &[WorkerHealth],
    breakers: &BreakerSummary,
) -> BTreeMap<Source, Problem> {
    let mut m = BTreeMap::new();
    for (i, source) in [
        (&round.postgres, Source::Postgres),
        (&round.redis, Source::Redis),
    ] {
        if i.status != HealthState::Healthy {
            m.insert(
                source,
                Problem {
                    critical: true,
                    message: format!("{} unhealthy ({})", i.name, i.message),
                },
            );
        }
    }
    add_ai_and_worker_problems(&mut m, ai, workers, breakers);
    m
}

fn add_ai_and_worker_problems(
    m: &mut BTreeMap<Source, Problem>,
    ai: &[AiServiceHealth],
    workers: &[WorkerHealth],
    breakers: &BreakerSummary,
) {
    for s in ai.iter().filter(|s| s.status != HealthState::Healthy) {
        m.insert(
            Source::Ai(s.name.clone()),
            Problem {
                critical: s.critical,
                message: format!(
                    "{} unhealthy ({})",
                    s.name,
                    s.error.as_deref().unwrap_or("no answer")
                ),
            },
        );
    }
    for w in workers.iter().filter(|w| !w.running) {
        m.insert(
            Source::Worker(w.name.clone()),
            Problem {
                critical: w.critical,
                message: format!("worker {} not running", w.name),
            },
        );
    }
    for (name, state) in &breakers.breakers.0 {
        if *state == BreakerState::Open {
            m.entry(Source::Breaker(name.clone())).or_insert(Problem {
                critical: false,
                message: format!("circuit breaker {name} open"),
            });
        }
    }
}
