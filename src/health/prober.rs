//! The one prober of every dependency: PostgreSQL (`SELECT 1`), Redis (`PING`, `INFO
//! server`, `INFO persistence`) and each AI service's `GET /health`. All probes of a
//! round run concurrently, each bounded by `health.probe_timeout_seconds`. Concurrent
//! callers join the round in flight, and a round younger than
//! `health.cache_ttl_seconds` is reused, so any number of readers (the full health
//! endpoint, the degradation manager, readiness, the status broadcaster) cause at most
//! one probe of each service at a time. Rounds run on the main runtime, never on an
//! HTTP worker's.
//!
//! Probes never feed the circuit breakers (see `AiClients::check_health`).

use chrono::{DateTime, Utc};
use futures_util::future::{join_all, BoxFuture, FutureExt, Shared};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::time::Instant;

use super::metrics::HealthMetrics;
use crate::ai::AiClients;
use crate::breaker::BreakerState;
use crate::config::{secs, HealthConfig};
use crate::events::HealthState;
use crate::prom::Metrics;
use crate::redis::{parse_info, KvError, RedisLink};
use crate::store::{Store, StoreError};

/// PostgreSQL or Redis as the full health check shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InfraHealth {
    pub name: String,
    pub status: HealthState,
    pub message: String,
    pub details: Option<BTreeMap<String, String>>,
    /// Probe round trip, when it answered.
    #[serde(skip)]
    pub latency_ms: Option<f64>,
    /// Why it is unhealthy.
    #[serde(skip)]
    pub error: Option<String>,
}

/// One AI service as the full health check shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AiServiceHealth {
    pub name: String,
    pub display_name: String,
    pub status: HealthState,
    pub url: String,
    pub response_time_ms: Option<f64>,
    /// `Connection refused`, `Timeout after 2s`, `HTTP 500`, `circuit breaker open`, …
    pub error: Option<String>,
    pub circuit_state: BreakerState,
    pub last_check: DateTime<Utc>,
    #[serde(skip)]
    pub critical: bool,
    /// The service's own `/health` JSON (model, device, slots, …).
    #[serde(skip)]
    pub details: Option<serde_json::Value>,
}

/// The results of one round.
#[derive(Debug, Clone)]
pub struct ProbeRound {
    /// When it finished, on tokio's clock (for the cache).
    pub taken: Instant,
    pub checked_at: DateTime<Utc>,
    pub postgres: InfraHealth,
    pub redis: InfraHealth,
    pub ai_services: Vec<AiServiceHealth>,
}

type RoundFuture = Shared<BoxFuture<'static, Arc<ProbeRound>>>;

#[derive(Default)]
struct Inner {
    latest: Option<Arc<ProbeRound>>,
    in_flight: Option<RoundFuture>,
}

pub struct Prober {
    store: Arc<Store>,
    redis: Arc<RedisLink>,
    ai: Arc<AiClients>,
    metrics: HealthMetrics,
    timeout: Duration,
    ttl: Duration,
    runtime: Handle,
    inner: Mutex<Inner>,
}

impl Prober {
    /// Must be called inside the runtime the rounds should run on (the main one).
    pub fn new(
        cfg: &HealthConfig,
        store: Arc<Store>,
        redis: Arc<RedisLink>,
        ai: Arc<AiClients>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let metrics = HealthMetrics::new(&metrics);
        for dependency in ["postgres", "redis"]
            .into_iter()
            .chain(ai.services().iter().map(|s| s.name))
        {
            metrics.dependency_known(dependency);
        }
        Arc::new(Self {
            store,
            redis,
            ai,
            metrics,
            timeout: secs(cfg.probe_timeout_seconds),
            ttl: secs(cfg.cache_ttl_seconds),
            runtime: Handle::current(),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each critical section leaves the state whole; survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves when PostgreSQL or Redis has become reachable or unreachable since the
    /// call (what a reader of the rounds wants to re-check at once).
    pub async fn dependency_changed(&self) {
        let (mut pg, mut redis) = (
            self.store.reachability_changes(),
            self.redis.reachability_changes(),
        );
        tokio::select! {
            _ = pg.changed() => {}
            _ = redis.changed() => {}
        }
    }

    /// The latest finished round, however old (no I/O).
    pub fn latest(&self) -> Option<Arc<ProbeRound>> {
        self.lock().latest.clone()
    }

    /// A round no older than the cache TTL: the cached one, the one in flight, or a
    /// new one.
    pub async fn current(self: &Arc<Self>) -> Arc<ProbeRound> {
        let round = {
            let mut inner = self.lock();
            if let Some(latest) = &inner.latest {
                if latest.taken.elapsed() < self.ttl {
                    return latest.clone();
                }
            }
            match &inner.in_flight {
                Some(f) => f.clone(),
                None => {
                    let me = Arc::clone(self);
                    let task = self.runtime.spawn(async move { me.probe_all().await });
                    let me = Arc::clone(self);
                    let fut = async move {
                        let round = Arc::new(match task.await {
                            Ok(r) => r,
                            Err(_) => me.unknown_round("the probe round was aborted"),
                        });
                        let mut inner = me.lock();
                        inner.latest = Some(round.clone());
                        inner.in_flight = None;
                        round
                    }
                    .boxed()
                    .shared();
                    inner.in_flight = Some(fut.clone());
                    fut
                }
            }
        };
        round.await
    }

    /// Probe everything once, concurrently, each bounded by the probe timeout.
    async fn probe_all(&self) -> ProbeRound {
        let bound = self.timeout + Duration::from_millis(100);
        let postgres = async {
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(bound, self.store.ping()).await;
            let elapsed = started.elapsed();
            self.metrics
                .dependency_probed("postgres", elapsed.as_secs_f64());
            let (status, message, error) = match result {
                Ok(Ok(())) => (
                    HealthState::Healthy,
                    "Database operational".to_string(),
                    None,
                ),
                Ok(Err(e)) => {
                    // `StoreError::Unavailable` says "database unavailable" itself: name
                    // only its cause, so the message does not say it twice.
                    let why = match e {
                        StoreError::Unavailable(cause) => cause,
                        other => other.to_string(),
                    };
                    (
                        HealthState::Unhealthy,
                        format!("Database unavailable: {why}"),
                        Some(why),
                    )
                }
                Err(_) => {
                    let why = format!("Timeout after {}s", crate::time::seconds_text(self.timeout));
                    (
                        HealthState::Unhealthy,
                        format!("Database unavailable: {why}"),
                        Some(why),
                    )
                }
            };
            InfraHealth {
                name: "postgres".into(),
                latency_ms: (status == HealthState::Healthy)
                    .then_some(elapsed.as_secs_f64() * 1000.0),
                status,
                message,
                details: None,
                error,
            }
        };
        let redis = async {
            let started = std::time::Instant::now();
            let result = tokio::time::timeout(bound, self.probe_redis()).await;
            let elapsed = started.elapsed();
            self.metrics
                .dependency_probed("redis", elapsed.as_secs_f64());
            match result {
                Ok(Ok(mut h)) => {
                    h.latency_ms = Some(elapsed.as_secs_f64() * 1000.0);
                    h
                }
                Ok(Err(why)) => unhealthy_redis(why),
                Err(_) => unhealthy_redis(format!(
                    "Timeout after {}s",
                    crate::time::seconds_text(self.timeout)
                )),
            }
        };
        let ai = join_all(self.ai.services().iter().map(|svc| async move {
            let started = std::time::Instant::now();
            let checked = tokio::time::timeout(bound, self.ai.check_health(svc.name)).await;
            self.metrics
                .dependency_probed(svc.name, started.elapsed().as_secs_f64());
            let timed_out = || {
                Some(format!(
                    "Timeout after {}s",
                    crate::time::seconds_text(self.timeout)
                ))
            };
            let (status, response_time_ms, error, circuit_state, last_check, details) =
                match checked {
                    Ok(Ok(c)) => (
                        if c.healthy {
                            HealthState::Healthy
                        } else {
                            HealthState::Unhealthy
                        },
                        c.response_time_ms,
                        c.error,
                        c.circuit_state,
                        c.checked_at,
                        c.details,
                    ),
                    Ok(Err(e)) => (
                        HealthState::Unhealthy,
                        None,
                        Some(e.to_string()),
                        BreakerState::Closed,
                        crate::time::now(),
                        None,
                    ),
                    Err(_) => (
                        HealthState::Unhealthy,
                        None,
                        timed_out(),
                        BreakerState::Closed,
                        crate::time::now(),
                        None,
                    ),
                };
            AiServiceHealth {
                name: svc.name.to_string(),
                display_name: svc.display_name.clone(),
                status,
                url: crate::redact::url(&svc.url),
                response_time_ms,
                error,
                circuit_state,
                last_check,
                critical: svc.critical,
                details,
            }
        }));
        let (postgres, redis, ai_services) = tokio::join!(postgres, redis, ai);
        self.metrics
            .dependency_up("postgres", postgres.status == HealthState::Healthy);
        self.metrics
            .dependency_up("redis", redis.status == HealthState::Healthy);
        for s in &ai_services {
            self.metrics
                .dependency_up(&s.name, s.status == HealthState::Healthy);
        }
        ProbeRound {
            taken: Instant::now(),
            checked_at: crate::time::now(),
            postgres,
            redis,
            ai_services,
        }
    }

    /// `PING`, `INFO server` and `INFO persistence` in one round trip.
    async fn probe_redis(&self) -> Result<InfraHealth, String> {
        let mut conn = self.redis.conn().await.map_err(|e| match e {
            // Said once, by the caller's "Redis unavailable: …".
            KvError::Unavailable(cause) => cause,
            other => other.to_string(),
        })?;
        let (pong, server, persistence): (String, String, String) = redis::pipe()
            .cmd("PING")
            .cmd("INFO")
            .arg("server")
            .cmd("INFO")
            .arg("persistence")
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        if pong != "PONG" {
            return Err(format!("unexpected PING answer {pong:?}"));
        }
        let find = |text: &str, key: &str| {
            parse_info(text)
                .into_iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        };
        let version = find(&server, "redis_version").unwrap_or_else(|| "unknown".into());
        let aof = find(&persistence, "aof_enabled").is_some_and(|v| v == "1");
        let mut details = BTreeMap::from([
            ("redis_version".to_string(), version),
            (
                "aof_enabled".to_string(),
                if aof { "yes" } else { "no" }.to_string(),
            ),
        ]);
        let message = if aof {
            "Redis connected".to_string()
        } else {
            let warning = "no AOF: queued work and open batches are lost if Redis crashes";
            details.insert("persistence_warning".into(), warning.into());
            format!("Redis connected; {warning}")
        };
        Ok(InfraHealth {
            name: "redis".into(),
            status: HealthState::Healthy,
            message,
            details: Some(details),
            latency_ms: None,
            error: None,
        })
    }

    fn unknown_round(&self, why: &str) -> ProbeRound {
        let infra = |name: &str| InfraHealth {
            name: name.into(),
            status: HealthState::Unknown,
            message: why.to_string(),
            details: None,
            latency_ms: None,
            error: Some(why.to_string()),
        };
        ProbeRound {
            taken: Instant::now(),
            checked_at: crate::time::now(),
            postgres: infra("postgres"),
            redis: infra("redis"),
            ai_services: Vec::new(),
        }
    }
}

fn unhealthy_redis(why: String) -> InfraHealth {
    InfraHealth {
        name: "redis".into(),
        status: HealthState::Unhealthy,
        message: format!("Redis unavailable: {why}"),
        details: None,
        latency_ms: None,
        error: Some(why),
    }
}
