//! The two broadcasters that feed the hub, each a supervised worker.
//!
//! - **Event broadcaster** (`event_broadcaster`): pipeline events (detections, events,
//!   cameras, jobs) go to local clients at once and are published on Redis pub/sub
//!   (`watchpost:ws:events`), so the clients of every instance on that Redis receive
//!   them; messages from other instances arrive through the subscription. Publishing
//!   stands behind its own circuit breaker: while Redis fails, publishing is skipped
//!   and local clients are still served. Events are gathered for up to
//!   `RELAY_LINGER` (or `RELAY_MAX` of them) and published as one message: a burst of
//!   images costs a `PUBLISH` per quarter second, not one per detection; other
//!   instances' clients see them that much later, local clients at once.
//! - **System broadcaster** (`system_broadcaster`): relays this instance's system and
//!   alert events (worker, breaker, service and health changes) and sends
//!   `system.status` every 5 s.

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::hub::Hub;
use crate::breaker::{BreakerState, CallError, CircuitBreaker};
use crate::config::BreakerConfig;
use crate::events::{Channel, Event, EventBus, Reach, SystemStatus};
use crate::health::degradation::DegradationManager;
use crate::health::{Health, HealthState};
use crate::names::workers;
use crate::pipeline::Pipeline;
use crate::prom::Metrics;
use crate::redis::{KvError, RedisLink};
use crate::supervisor::{Supervisor, WorkerContext, WorkerError, WorkerSpec, WorkerStatus};

/// The Redis pub/sub channel that carries pipeline events between instances.
pub const PUBSUB_CHANNEL: &str = "watchpost:ws:events";
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(2);
/// `system.status` period.
pub const STATUS_EVERY: Duration = Duration::from_secs(5);
const BEAT_EVERY: Duration = Duration::from_secs(1);

/// A broadcaster as `/api/system/health/websocket` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BroadcasterHealth {
    pub state: BreakerState,
    pub failure_count: u32,
    pub is_degraded: bool,
    pub message: Option<String>,
}

/// How long an event waits for others to share its `PUBLISH`, at most.
const RELAY_LINGER: Duration = Duration::from_millis(250);
/// The most events in one `PUBLISH`.
const RELAY_MAX: usize = 64;

/// One message on the pub/sub channel, as older versions sent it (one event).
#[derive(Serialize, Deserialize)]
struct Relayed {
    origin: String,
    channel: String,
    message: String,
}

/// One message on the pub/sub channel: the events of one instance gathered together.
#[derive(Serialize, Deserialize)]
struct RelayedBatch {
    origin: String,
    items: Vec<RelayedItem>,
}

#[derive(Serialize, Deserialize)]
struct RelayedItem {
    channel: String,
    message: String,
}

pub struct EventBroadcaster {
    hub: Arc<Hub>,
    bus: EventBus,
    redis: Arc<RedisLink>,
    redis_url: String,
    breaker: CircuitBreaker,
    /// This instance, so its own messages coming back from Redis are skipped.
    instance: String,
    subscribed: AtomicBool,
}

impl EventBroadcaster {
    pub fn new(
        hub: Arc<Hub>,
        bus: EventBus,
        redis: Arc<RedisLink>,
        redis_url: &str,
        breaker: &BreakerConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Arc::new(Self {
            breaker: CircuitBreaker::new(workers::EVENT_BROADCASTER, breaker, metrics, bus.clone()),
            hub,
            bus,
            redis,
            redis_url: redis_url.to_string(),
            instance: uuid::Uuid::new_v4().to_string(),
            subscribed: AtomicBool::new(false),
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::EVENT_BROADCASTER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    pub fn health(&self) -> BroadcasterHealth {
        let snap = self.breaker.snapshot();
        let subscribed = self.subscribed.load(Ordering::Relaxed);
        let message = match (snap.state, subscribed) {
            (BreakerState::Closed, true) => {
                "Relaying pipeline events through Redis pub/sub".to_string()
            }
            (BreakerState::Closed, false) => {
                "Not subscribed to Redis: only this instance's events reach its clients".to_string()
            }
            _ => {
                "Redis publishing is failing: events reach this instance's clients only".to_string()
            }
        };
        BroadcasterHealth {
            state: snap.state,
            failure_count: snap.failure_count,
            is_degraded: snap.state != BreakerState::Closed || !subscribed,
            message: Some(message),
        }
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let mut rx = self.bus.subscribe();
        let mut remote: Option<redis::aio::PubSubStream> = None;
        let mut retry_at = Instant::now();
        let mut pending: Vec<RelayedItem> = Vec::new();
        let mut flush_at: Option<Instant> = None;
        loop {
            ctx.beat();
            if remote.is_none() && Instant::now() >= retry_at {
                remote = self.subscribe().await;
                self.subscribed.store(remote.is_some(), Ordering::Relaxed);
                retry_at = Instant::now() + RESUBSCRIBE_AFTER;
            }
            if pending.len() >= RELAY_MAX {
                self.publish(std::mem::take(&mut pending)).await;
                flush_at = None;
            }
            tokio::select! {
                _ = ctx.cancelled() => {
                    self.publish(pending).await;
                    return Ok(());
                }
                r = rx.recv() => match r {
                    Ok(env) if env.channel().reach() == Reach::Shared => {
                        let text: Arc<str> = Arc::from(env.to_json());
                        self.hub.deliver(env.channel(), Arc::clone(&text));
                        pending.push(RelayedItem {
                            channel: env.channel().as_str().into(),
                            message: text.to_string(),
                        });
                        flush_at.get_or_insert_with(|| Instant::now() + RELAY_LINGER);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event broadcaster fell behind the event bus");
                    }
                    Err(RecvError::Closed) => {
                        self.publish(pending).await;
                        return Ok(());
                    }
                },
                m = next(&mut remote) => match m {
                    Some(msg) => self.deliver_remote(&msg),
                    None => {
                        tracing::debug!("Redis subscription ended; subscribing again");
                        remote = None;
                        self.subscribed.store(false, Ordering::Relaxed);
                    }
                },
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {
                    self.publish(std::mem::take(&mut pending)).await;
                    flush_at = None;
                }
                _ = tokio::time::sleep(BEAT_EVERY) => {}
            }
        }
    }

    async fn subscribe(&self) -> Option<redis::aio::PubSubStream> {
        // Fail fast while the shared link says Redis is down.
        self.redis.conn().await.ok()?;
        let client = redis::Client::open(self.redis_url.as_str()).ok()?;
        let connect = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(PUBSUB_CHANNEL).await?;
            Ok::<_, redis::RedisError>(ps.into_on_message())
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT * 2, connect).await {
            Ok(Ok(stream)) => Some(stream),
            _ => None,
        }
    }

    /// Publish gathered events as one message (nothing when there are none).
    async fn publish(&self, items: Vec<RelayedItem>) {
        if items.is_empty() {
            return;
        }
        let relayed = RelayedBatch {
            origin: self.instance.clone(),
            items,
        };
        let Ok(payload) = serde_json::to_string(&relayed) else {
            return;
        };
        let redis = &self.redis;
        let result = self
            .breaker
            .call(PUBLISH_TIMEOUT, |_: &KvError| true, async move {
                let mut conn = redis.conn().await?;
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(PUBSUB_CHANNEL)
                    .arg(payload)
                    .query_async(&mut conn)
                    .await?;
                Ok(())
            })
            .await;
        match result {
            Ok(()) | Err(CallError::Rejected(_)) => {}
            Err(e) => {
                tracing::debug!(error = %e, "events not relayed through Redis; local clients still have them")
            }
        }
    }

    fn deliver_remote(&self, msg: &redis::Msg) {
        let Ok(text) = msg.get_payload::<String>() else {
            return;
        };
        let relayed = match serde_json::from_str::<RelayedBatch>(&text) {
            Ok(batch) => batch,
            // One event, from an older version.
            Err(_) => match serde_json::from_str::<Relayed>(&text) {
                Ok(one) => RelayedBatch {
                    origin: one.origin,
                    items: vec![RelayedItem {
                        channel: one.channel,
                        message: one.message,
                    }],
                },
                Err(_) => return,
            },
        };
        if relayed.origin == self.instance {
            return; // ours, already delivered locally
        }
        for item in relayed.items {
            if let Some(channel) =
                Channel::parse(&item.channel).filter(|c| c.reach() == Reach::Shared)
            {
                self.hub.deliver(channel, Arc::from(item.message));
            }
        }
    }
}

/// The next message of an optional stream (pending forever when there is none).
async fn next(stream: &mut Option<redis::aio::PubSubStream>) -> Option<redis::Msg> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

pub struct SystemBroadcaster {
    hub: Arc<Hub>,
    bus: EventBus,
    health: Arc<Health>,
    degradation: Arc<DegradationManager>,
    supervisor: Supervisor,
    pipeline: Arc<Pipeline>,
    last_tick: Mutex<Option<Instant>>,
    lagged: AtomicU32,
}

impl SystemBroadcaster {
    pub fn new(
        hub: Arc<Hub>,
        bus: EventBus,
        health: Arc<Health>,
        degradation: Arc<DegradationManager>,
        supervisor: Supervisor,
        pipeline: Arc<Pipeline>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub,
            bus,
            health,
            degradation,
            supervisor,
            pipeline,
            last_tick: Mutex::new(None),
            lagged: AtomicU32::new(0),
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::SYSTEM_BROADCASTER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    /// Closed while its loop ticks on time; open when it is not running or stalled.
    pub fn health(&self) -> BroadcasterHealth {
        let last = *self.last_tick.lock().unwrap_or_else(|p| p.into_inner());
        let missed = last.map_or(u32::MAX, |t| {
            (t.elapsed().as_secs_f64() / STATUS_EVERY.as_secs_f64()) as u32
        });
        let healthy = missed < 2;
        BroadcasterHealth {
            state: if healthy {
                BreakerState::Closed
            } else {
                BreakerState::Open
            },
            failure_count: if healthy { 0 } else { missed.min(1_000_000) },
            is_degraded: !healthy || self.lagged.load(Ordering::Relaxed) > 0,
            message: Some(if healthy {
                "Sending system.status every 5 s and relaying system events".to_string()
            } else if last.is_none() {
                "Not started".to_string()
            } else {
                "Not running: no system.status sent recently".to_string()
            }),
        }
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let mut rx = self.bus.subscribe();
        let mut status = tokio::time::interval(STATUS_EVERY);
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ctx.beat();
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                r = rx.recv() => match r {
                    Ok(env) if env.channel().reach() == Reach::Local => {
                        self.hub.publish(&env);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        self.lagged.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(missed = n, "system broadcaster fell behind the event bus");
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
                _ = status.tick() => {
                    *self.last_tick.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    self.lagged.store(0, Ordering::Relaxed);
                    self.bus.publish(Event::SystemStatus(self.status()));
                }
            }
        }
    }

    /// The periodic summary (no I/O: the latest probe round and live counters).
    pub fn status(&self) -> SystemStatus {
        let health = self.health.latest();
        let workers = self.supervisor.status().workers;
        SystemStatus {
            status: health.as_ref().map_or(HealthState::Unknown, |h| h.status),
            mode: self.degradation.mode(),
            workers_running: workers
                .iter()
                .filter(|w| w.status == WorkerStatus::Running)
                .count(),
            workers_total: workers.len(),
            breakers_open: health.as_ref().map_or(0, |h| h.circuit_breakers.open),
            queue_detection: self.pipeline.detection_queue.depth(),
            queue_analysis: self.pipeline.analysis_queue.depth(),
            dead_letters: self.pipeline.detection_queue.dead_letters()
                + self.pipeline.analysis_queue.dead_letters(),
            websocket_clients: self.hub.open_connections(),
        }
    }
}
