//! Circuit breakers (docs/behaviour.md §2): one per AI service, in config order.
//!
//! closed → open after `failure_threshold` consecutive failures; open → half_open on
//! the first call after `recovery_timeout_seconds`; half_open admits at most
//! `half_open_max_calls` concurrent trial calls; `success_threshold` trial successes
//! close it; any trial failure re-opens it. Every call is bounded by a timeout given
//! to [`CircuitBreaker::call`], and a timeout is a failure, so half_open cannot stick.
//! Which errors count as failures is the caller's decision (4xx answers do not).
//!
//! Must not: know about HTTP or perform I/O itself. Time comes from tokio (paused-clock
//! tests); reported times are wall-clock UTC.

pub mod metrics;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use crate::config::{secs, BreakerConfig};
use crate::events::{CircuitBreakerStateChanged, Event, EventBus};
use crate::prom::Metrics;
use metrics::{BreakerMetrics, CallResult};

pub use crate::events::BreakerState;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BreakerError {
    #[error("Circuit breaker '{0}' not found; valid breakers: {1}")]
    Unknown(String, String),
    #[error(
        "Invalid circuit breaker name '{0}': use 1-64 characters of letters, digits, '_' or '-'"
    )]
    InvalidName(String),
}

/// Why a guarded call did not produce the callee's answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError<E> {
    #[error("circuit breaker '{0}' is open; call rejected")]
    Rejected(String),
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Inner(E),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreakerSettingsView {
    pub failure_threshold: u32,
    /// Seconds an open breaker waits before it admits a trial call.
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub recovery_timeout: f64,
    pub half_open_max_calls: u32,
    pub success_threshold: u32,
    /// The same as `recovery_timeout`, with its unit in the name.
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub recovery_timeout_seconds: f64,
}

/// One breaker as `/api/system/circuit-breakers` shows it: the field names and types
/// that existing clients of this API read, plus ISO timestamps beside the unix ones.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BreakerSnapshot {
    pub name: String,
    pub state: BreakerState,
    /// Consecutive failures (compared with `failure_threshold`).
    pub failure_count: u32,
    /// Consecutive successes (in half_open, compared with `success_threshold`).
    pub success_count: u32,
    pub total_calls: u64,
    pub rejected_calls: u64,
    /// Unix seconds of the last failure, or null.
    pub last_failure_time: Option<f64>,
    /// Unix seconds at which the breaker last opened, while it is open or half-open.
    pub opened_at: Option<f64>,
    pub config: BreakerSettingsView,
    /// `last_failure_time` as an ISO timestamp.
    pub last_failure: Option<DateTime<Utc>>,
    pub last_state_change: Option<DateTime<Utc>>,
}

struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    consecutive_successes: u32,
    trials_in_flight: u32,
    opened_at: Instant,
    opened_at_wall: Option<DateTime<Utc>>,
    /// Bumped on every transition; outcomes of calls admitted in an older epoch update
    /// the counters but never drive a transition.
    epoch: u64,
    total_calls: u64,
    rejected_calls: u64,
    last_failure: Option<DateTime<Utc>>,
    last_state_change: Option<DateTime<Utc>>,
}

pub struct CircuitBreaker {
    name: String,
    failure_threshold: u32,
    recovery_timeout: Duration,
    half_open_max_calls: u32,
    success_threshold: u32,
    inner: Mutex<Inner>,
    metrics: BreakerMetrics,
    events: EventBus,
}

/// Admission ticket for one call.
struct Permit {
    epoch: u64,
    trial: bool,
}

impl CircuitBreaker {
    pub fn new(name: &str, cfg: &BreakerConfig, metrics: Arc<Metrics>, events: EventBus) -> Self {
        let metrics = BreakerMetrics::new(&metrics);
        metrics.registered(name);
        Self {
            name: name.to_string(),
            failure_threshold: cfg.failure_threshold.max(1),
            recovery_timeout: secs(cfg.recovery_timeout_seconds),
            half_open_max_calls: cfg.half_open_max_calls.max(1),
            success_threshold: cfg.success_threshold.max(1),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                consecutive_successes: 0,
                trials_in_flight: 0,
                opened_at: Instant::now(),
                opened_at_wall: None,
                epoch: 0,
                total_calls: 0,
                rejected_calls: 0,
                last_failure: None,
                last_state_change: None,
            }),
            metrics,
            events,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the state consistent; survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state. An open breaker whose recovery timeout has passed is shown
    /// (and counted) as `half_open` from that moment, not only after the next call.
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        inner.state
    }

    /// open → half_open once the recovery timeout has passed.
    fn refresh(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open && inner.opened_at.elapsed() >= self.recovery_timeout {
            self.transition(inner, BreakerState::HalfOpen);
        }
    }

    /// For health probes, which never feed a breaker: `true` while the breaker is open
    /// and still inside its recovery timeout. The service is then known to be failing
    /// and a probe reports it unhealthy without a call. Once a trial would be allowed
    /// the probe calls the service as usual; the next real call is the breaker's trial.
    pub fn blocks_probe(&self) -> bool {
        self.state() == BreakerState::Open
    }

    /// Run `call` through the breaker, bounded by `timeout`. `is_failure` decides
    /// whether an `Err` counts against the service (4xx answers should not).
    pub async fn call<T, E, F>(
        &self,
        timeout: Duration,
        is_failure: impl Fn(&E) -> bool,
        call: F,
    ) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self
            .acquire()
            .ok_or_else(|| CallError::Rejected(self.name.clone()))?;
        let mut guard = PermitGuard {
            breaker: self,
            permit: Some(permit),
        };
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(v)) => {
                guard.finish(CallResult::Success);
                Ok(v)
            }
            Ok(Err(e)) => {
                guard.finish(if is_failure(&e) {
                    CallResult::Failure
                } else {
                    CallResult::ClientError
                });
                Err(CallError::Inner(e))
            }
            Err(_) => {
                guard.finish(CallResult::Failure);
                Err(CallError::Timeout(timeout))
            }
        }
    }

    fn acquire(&self) -> Option<Permit> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let admitted = match inner.state {
            BreakerState::Closed => Some(Permit {
                epoch: inner.epoch,
                trial: false,
            }),
            BreakerState::HalfOpen if inner.trials_in_flight < self.half_open_max_calls => {
                inner.trials_in_flight += 1;
                Some(Permit {
                    epoch: inner.epoch,
                    trial: true,
                })
            }
            _ => None,
        };
        inner.total_calls += 1;
        if admitted.is_none() {
            inner.rejected_calls += 1;
            self.metrics.rejected(&self.name);
        }
        admitted
    }

    fn complete(&self, permit: Permit, outcome: CallResult) {
        let mut inner = self.lock();
        if permit.trial && permit.epoch == inner.epoch {
            inner.trials_in_flight = inner.trials_in_flight.saturating_sub(1);
        }
        self.metrics.call(&self.name, outcome);
        let current = permit.epoch == inner.epoch;
        match outcome {
            CallResult::Success => {
                inner.consecutive_failures = 0;
                inner.consecutive_successes += 1;
                if current
                    && inner.state == BreakerState::HalfOpen
                    && inner.consecutive_successes >= self.success_threshold
                {
                    self.transition(&mut inner, BreakerState::Closed);
                }
            }
            CallResult::Failure => {
                inner.consecutive_successes = 0;
                inner.consecutive_failures += 1;
                inner.last_failure = Some(crate::time::now());
                if current {
                    match inner.state {
                        BreakerState::HalfOpen => self.transition(&mut inner, BreakerState::Open),
                        BreakerState::Closed
                            if inner.consecutive_failures >= self.failure_threshold =>
                        {
                            self.transition(&mut inner, BreakerState::Open)
                        }
                        _ => {}
                    }
                }
            }
            // A bad request says nothing about the service's health.
            CallResult::ClientError | CallResult::Abandoned => {}
        }
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) {
        let from = inner.state;
        if from == to {
            return;
        }
        inner.state = to;
        inner.epoch += 1;
        inner.trials_in_flight = 0;
        inner.last_state_change = Some(crate::time::now());
        match to {
            BreakerState::Open => {
                inner.opened_at = Instant::now();
                inner.opened_at_wall = Some(crate::time::now());
                inner.consecutive_successes = 0;
            }
            BreakerState::HalfOpen => inner.consecutive_successes = 0,
            BreakerState::Closed => {
                inner.consecutive_failures = 0;
                inner.opened_at_wall = None;
            }
        }
        // Debug: an open breaker makes the service's probes report it unhealthy, and
        // the degradation manager logs the outage once (warn) and its end once (info);
        // the transitions are in the metrics, the API and the WebSocket.
        tracing::debug!(breaker = %self.name, from = from.as_str(), to = to.as_str(), "circuit breaker state changed");
        self.metrics.transition(&self.name, from, to);
        self.events.publish(Event::CircuitBreakerStateChanged(
            CircuitBreakerStateChanged {
                name: self.name.clone(),
                previous_state: from,
                new_state: to,
                failure_count: inner.consecutive_failures,
            },
        ));
    }

    /// Force `closed`; returns the state before.
    pub fn reset(&self) -> BreakerState {
        let mut inner = self.lock();
        let previous = inner.state;
        self.transition(&mut inner, BreakerState::Closed);
        inner.consecutive_failures = 0;
        inner.consecutive_successes = 0;
        previous
    }

    /// A stamp that changes whenever the snapshot would (state, counters, times).
    pub fn version(&self) -> u64 {
        use crate::json::{mix, STAMP_SEED};
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let mut v = mix(STAMP_SEED, inner.epoch);
        for x in [
            inner.total_calls,
            inner.rejected_calls,
            u64::from(inner.consecutive_failures),
            u64::from(inner.consecutive_successes),
        ] {
            v = mix(v, x);
        }
        v
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let recovery = self.recovery_timeout.as_secs_f64();
        BreakerSnapshot {
            name: self.name.clone(),
            state: inner.state,
            failure_count: inner.consecutive_failures,
            success_count: inner.consecutive_successes,
            total_calls: inner.total_calls,
            rejected_calls: inner.rejected_calls,
            last_failure_time: inner.last_failure.map(crate::time::to_unix),
            opened_at: inner.opened_at_wall.map(crate::time::to_unix),
            config: BreakerSettingsView {
                failure_threshold: self.failure_threshold,
                recovery_timeout: recovery,
                half_open_max_calls: self.half_open_max_calls,
                success_threshold: self.success_threshold,
                recovery_timeout_seconds: recovery,
            },
            last_failure: inner.last_failure,
            last_state_change: inner.last_state_change,
        }
    }
}

/// Releases a half-open trial slot even when the caller drops the call future.
struct PermitGuard<'a> {
    breaker: &'a CircuitBreaker,
    permit: Option<Permit>,
}

impl PermitGuard<'_> {
    fn finish(&mut self, outcome: CallResult) {
        if let Some(p) = self.permit.take() {
            self.breaker.complete(p, outcome);
        }
    }
}

impl Drop for PermitGuard<'_> {
    fn drop(&mut self) {
        self.finish(CallResult::Abandoned);
    }
}

/// All breakers, in config order.
pub struct BreakerRegistry {
    breakers: Vec<Arc<CircuitBreaker>>,
}

impl BreakerRegistry {
    pub fn new(
        names: &[&str],
        cfg: &BreakerConfig,
        metrics: Arc<Metrics>,
        events: EventBus,
    ) -> Self {
        let breakers: Vec<Arc<CircuitBreaker>> = names
            .iter()
            .map(|n| Arc::new(CircuitBreaker::new(n, cfg, metrics.clone(), events.clone())))
            .collect();
        // A scrape sees an open breaker turn half-open when its timeout passes, even
        // if nothing else looked at it.
        let weak: Vec<std::sync::Weak<CircuitBreaker>> =
            breakers.iter().map(Arc::downgrade).collect();
        metrics.on_scrape(move || {
            for b in weak.iter().filter_map(std::sync::Weak::upgrade) {
                b.state();
            }
        });
        Self { breakers }
    }

    pub fn all(&self) -> &[Arc<CircuitBreaker>] {
        &self.breakers
    }

    /// A stamp over every breaker's [`CircuitBreaker::version`].
    pub fn version(&self) -> u64 {
        self.breakers.iter().fold(crate::json::STAMP_SEED, |v, b| {
            crate::json::mix(v, b.version())
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<CircuitBreaker>> {
        self.breakers.iter().find(|b| b.name == name)
    }

    /// Validate and look up a name coming from a request.
    pub fn lookup(&self, name: &str) -> Result<&Arc<CircuitBreaker>, BreakerError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(BreakerError::InvalidName(name.to_string()));
        }
        self.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.breakers.iter().map(|b| b.name.as_str()).collect();
            BreakerError::Unknown(name.to_string(), names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests;
