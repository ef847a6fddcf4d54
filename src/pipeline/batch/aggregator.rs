//! The batch aggregator (`batch_aggregator` worker): the batches it holds, in Redis
//! or in memory, and when they close. See the folder's `mod.rs` for the rules.
use futures_util::future::BoxFuture;
use serde::Serialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::clock::WallClock;
use super::memory::MemoryStore;
use super::metrics::BatchMetrics;
use super::recovery_state::Recovery;
use super::redis_store::RedisStore;
use super::rules::{CloseReason, ClosedBatch, Rules};
use super::store::{BatchState, BatchStore};
use crate::config::{secs, BatchConfig};
use crate::events::{DetectionBatch, Event, EventBus};
use crate::names::Label;
use crate::pipeline::queue::Queue;
use crate::prom::Metrics;
use crate::redis::RedisLink;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};
use crate::time::unix_to_datetime;

/// An open batch as `/api/system/pipeline` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenBatch {
    pub batch_id: String,
    pub camera_id: String,
    pub detection_count: usize,
    /// Unix seconds (the one float timestamp of the contract).
    pub started_at: f64,
    pub age_seconds: f64,
    pub last_activity_seconds: f64,
}

/// Where closed batches go.
pub trait BatchSink: Send + Sync {
    fn hand_off(&self, batch: &ClosedBatch) -> BoxFuture<'_, Result<(), String>>;
}

impl BatchSink for Queue {
    fn hand_off(&self, batch: &ClosedBatch) -> BoxFuture<'_, Result<(), String>> {
        let payload = serde_json::to_string(batch);
        Box::pin(async move {
            let payload = payload.map_err(|e| e.to_string())?;
            self.push(&payload)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot hand batch {0} to analysis: {1}")]
    HandOff(String, String),
}

/// A Redis batch as last seen (the mirror behind the API and the gauge).
#[derive(Debug, Clone)]
pub(super) struct Seen {
    pub(super) batch_id: String,
    pub(super) camera_id: String,
    pub(super) count: usize,
    pub(super) started_at: f64,
    pub(super) last_activity: f64,
}

impl From<&BatchState> for Seen {
    fn from(b: &BatchState) -> Self {
        Self {
            batch_id: b.batch_id.clone(),
            camera_id: b.camera_id.clone(),
            count: b.detections.len(),
            started_at: b.started_at,
            last_activity: b.last_activity,
        }
    }
}

pub struct BatchAggregator {
    pub(super) redis: Option<RedisStore>,
    pub(super) memory: MemoryStore,
    pub(super) sink: Arc<dyn BatchSink>,
    pub(super) rules: Rules,
    pub(super) clock: WallClock,
    pub(super) mirror: Mutex<Vec<Seen>>,
    pub(super) events: EventBus,
    pub(super) metrics: BatchMetrics,
    /// PostgreSQL's memory of batch membership (`recovery.rs`); `None` in unit tests.
    pub(super) recovery: Option<Recovery>,
    /// When the orphan sweep last looked (unix seconds on `clock`).
    pub(super) last_sweep: Mutex<f64>,
    /// When the open batches were last read from Redis (unix seconds on `clock`).
    last_look: Mutex<f64>,
    /// A read of the open batches asked for (an instance was lost, or a read failed).
    look_asked: AtomicBool,
}

/// The orphan sweep looks this often (an orphan is one after 10 s).
const SWEEP_EVERY_SECONDS: f64 = 5.0;

/// With no batch it knows due, an instance reads the open batches this often: to
/// find batches that another instance opened and can no longer close (the fleet asks
/// for a read at once when an instance is lost), and to show the others' batches.
const LOOK_EVERY_SECONDS: f64 = 60.0;

/// Whether to read the open batches now: a batch this instance knows of is due by
/// what it last saw (another instance may have added to it since: the read says),
/// a read was asked for, or the last one is `LOOK_EVERY_SECONDS` old.
fn look_due(known: &[Seen], rules: &Rules, now: f64, last_look: f64, asked: bool) -> bool {
    asked
        || now - last_look >= LOOK_EVERY_SECONDS
        || known.iter().any(|s| {
            rules
                .due(s.started_at, s.last_activity, s.count, now)
                .is_some()
        })
}

impl BatchAggregator {
    pub fn new(
        cfg: &BatchConfig,
        redis: Option<Arc<RedisLink>>,
        sink: Arc<dyn BatchSink>,
        events: EventBus,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            recovery: None,
            last_sweep: Mutex::new(f64::MIN),
            last_look: Mutex::new(f64::MIN),
            look_asked: AtomicBool::new(false),
            redis: redis.map(|r| RedisStore::new(r, cfg.window_seconds)),
            memory: MemoryStore::default(),
            sink,
            rules: Rules {
                window: cfg.window_seconds,
                idle: cfg.idle_timeout_seconds,
                max: usize::try_from(cfg.max_detections).unwrap_or(usize::MAX),
            },
            clock: WallClock::new(),
            mirror: Mutex::new(Vec::new()),
            events,
            metrics: BatchMetrics::new(&metrics, cfg.window_seconds),
        }
    }

    /// Remember batch membership in PostgreSQL and recover what Redis forgets.
    pub fn with_recovery(mut self, store: Arc<crate::store::Store>) -> Self {
        self.recovery = Some(Recovery::new(store));
        self
    }

    /// Read the open batches at the next tick (an instance was lost: its batches are
    /// closed by the others).
    pub fn look_again(&self) {
        self.look_asked.store(true, Ordering::Relaxed);
    }

    pub fn window_seconds(&self) -> f64 {
        self.rules.window
    }

    pub fn idle_timeout_seconds(&self) -> f64 {
        self.rules.idle
    }

    pub(super) fn mirror(&self) -> MutexGuard<'_, Vec<Seen>> {
        // Each critical section leaves the list whole; survive a poisoned lock.
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close every batch that is due; hand off orphans; refresh the mirror.
    pub async fn tick(&self) -> Result<usize, BatchError> {
        let now = self.clock.now();
        let mut closed = 0;
        for b in self.memory.snapshot() {
            if let Some(reason) =
                self.rules
                    .due(b.started_at, b.last_activity, b.detections.len(), now)
            {
                if self.close(&self.memory, &b, reason, now).await? {
                    closed += 1;
                }
            }
        }
        if let Some(redis) = &self.redis {
            let look = {
                let last = *self.last_look.lock().unwrap_or_else(|p| p.into_inner());
                let asked = self.look_asked.swap(false, Ordering::Relaxed);
                look_due(&self.mirror(), &self.rules, now, last, asked)
            };
            if look {
                match redis.open().await {
                    Ok(open) => {
                        *self.last_look.lock().unwrap_or_else(|p| p.into_inner()) = now;
                        *self.mirror() = open.iter().map(Seen::from).collect();
                        for b in &open {
                            if let Some(reason) = self.rules.due(
                                b.started_at,
                                b.last_activity,
                                b.detections.len(),
                                now,
                            ) {
                                if self.close(redis, b, reason, now).await? {
                                    closed += 1;
                                }
                            }
                        }
                    }
                    Err(e) => {
                        self.look_asked.store(true, Ordering::Relaxed);
                        tracing::debug!(error = %e, "redis batches not readable this tick");
                    }
                }
            }
            let sweep = {
                let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
                let due = now - *last >= SWEEP_EVERY_SECONDS;
                if due {
                    *last = now;
                }
                due
            };
            if sweep {
                match redis.orphans(now).await {
                    Ok(orphans) => {
                        for b in orphans {
                            tracing::warn!(batch_id = %b.batch_id, camera_id = %b.camera_id, "handing off a batch that was claimed but never handed off");
                            self.hand_off(redis, b, CloseReason::Recovered, now).await?;
                            closed += 1;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "orphan sweep postponed"),
                }
            }
        }
        self.publish_gauge();
        Ok(closed)
    }

    /// Claim and hand off one batch; `Ok(false)` if someone else claimed it first.
    pub(super) async fn close(
        &self,
        store: &dyn BatchStore,
        batch: &BatchState,
        reason: CloseReason,
        now: f64,
    ) -> Result<bool, BatchError> {
        let claimed = match store.claim(batch, now).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                self.forget(&batch.batch_id);
                return Ok(false);
            }
            Err(e) => {
                tracing::debug!(batch_id = %batch.batch_id, error = %e, "cannot claim the batch now");
                return Ok(false);
            }
        };
        self.hand_off(store, claimed, reason, now).await?;
        Ok(true)
    }

    /// Hand a claimed batch to analysis, then forget it; on failure keep it.
    async fn hand_off(
        &self,
        store: &dyn BatchStore,
        b: BatchState,
        reason: CloseReason,
        now: f64,
    ) -> Result<(), BatchError> {
        let closed = ClosedBatch {
            batch_id: b.batch_id.clone(),
            camera_id: b.camera_id.clone(),
            detection_ids: b.detections.clone(),
            started_at: b.started_at,
            closed_at: now,
            reason,
        };
        if !closed.detection_ids.is_empty() {
            if let Err(e) = self.sink.hand_off(&closed).await {
                let _ = store.release(b).await;
                return Err(BatchError::HandOff(closed.batch_id, e));
            }
        }
        if let Some(r) = &self.recovery {
            r.handed_off(&closed).await;
        }
        if let Err(e) = store.finish(&closed.batch_id).await {
            // Handed off but still indexed: the sweep hands it off again later, and the
            // analysis writes one event per batch id, so this costs time, not data.
            tracing::warn!(batch_id = %closed.batch_id, error = %e, "cannot forget a handed-off batch");
        }
        self.forget(&closed.batch_id);
        self.closed(&closed);
        Ok(())
    }

    fn forget(&self, batch_id: &str) {
        self.mirror().retain(|s| s.batch_id != batch_id);
        self.publish_gauge();
    }

    pub(super) fn publish_gauge(&self) {
        let now = self.clock.now();
        let memory = self.memory.snapshot();
        let mirror = self.mirror();
        let oldest = memory
            .iter()
            .map(|b| b.started_at)
            .chain(mirror.iter().map(|s| s.started_at))
            .fold(now, f64::min);
        self.metrics.open_now(mirror.len(), memory.len());
        drop(mirror);
        self.metrics.oldest_open(now - oldest);
    }

    pub(super) fn closed(&self, b: &ClosedBatch) {
        let age = b.closed_at - b.started_at;
        self.metrics.closed(b.reason, b.detection_ids.len(), age);
        tracing::info!(batch_id = %b.batch_id, camera_id = %b.camera_id, detections = b.detection_ids.len(), reason = b.reason.label(), "batch closed");
        self.events.publish(Event::DetectionBatch(DetectionBatch {
            batch_id: b.batch_id.clone(),
            camera_id: b.camera_id.clone(),
            detection_count: b.detection_ids.len(),
            detection_ids: b.detection_ids.clone(),
            started_at: unix_to_datetime(b.started_at),
            closed_at: unix_to_datetime(b.closed_at),
            reason: b.reason,
        }));
    }

    /// Every open batch, Redis (as of the last tick or add) and memory, oldest first.
    /// No I/O.
    pub fn open_batches(&self) -> Vec<OpenBatch> {
        let now = self.clock.now();
        let view = |batch_id: &str, camera_id: &str, count, started_at: f64, last: f64| OpenBatch {
            batch_id: batch_id.to_string(),
            camera_id: camera_id.to_string(),
            detection_count: count,
            started_at,
            age_seconds: round2(now - started_at),
            last_activity_seconds: round2(now - last),
        };
        let mut all: Vec<OpenBatch> = self
            .memory
            .snapshot()
            .iter()
            .map(|b| {
                view(
                    &b.batch_id,
                    &b.camera_id,
                    b.detections.len(),
                    b.started_at,
                    b.last_activity,
                )
            })
            .collect();
        all.extend(self.mirror().iter().map(|s| {
            view(
                &s.batch_id,
                &s.camera_id,
                s.count,
                s.started_at,
                s.last_activity,
            )
        }));
        all.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
        all
    }

    /// The supervised worker: tick every tenth of the shortest rule (50 ms–1 s).
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::BATCH_AGGREGATOR,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let every = secs(self.rules.window.min(self.rules.idle) / 10.0)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "batch hand-off failed; will retry");
            }
            if let Err(e) = ctx
                .beat_while(Duration::from_secs(60), self.recover_if_due())
                .await
            {
                tracing::warn!(error = %e, "batch recovery hand-off failed; will retry");
            }
            if !ctx.idle(every).await {
                return Ok(());
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x.max(0.0) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BatchConfig;

    #[derive(Default)]
    struct Collect(Mutex<Vec<ClosedBatch>>);

    impl BatchSink for Collect {
        fn hand_off(&self, batch: &ClosedBatch) -> BoxFuture<'_, Result<(), String>> {
            self.0.lock().expect("lock").push(batch.clone());
            Box::pin(async { Ok(()) })
        }
    }

    fn aggregator(window: f64, idle: f64, max: u64) -> (BatchAggregator, Arc<Collect>) {
        let sink = Arc::new(Collect::default());
        let cfg = BatchConfig {
            window_seconds: window,
            idle_timeout_seconds: idle,
            max_detections: max,
        };
        let agg = BatchAggregator::new(
            &cfg,
            None,
            sink.clone(),
            EventBus::new(),
            Arc::new(Metrics::new()),
        );
        (agg, sink)
    }

    async fn advance(s: f64) {
        tokio::time::advance(Duration::from_secs_f64(s)).await;
    }

    #[test]
    fn the_open_batches_are_read_when_one_known_is_due_asked_for_or_a_minute_passed() {
        let rules = Rules {
            window: 90.0,
            idle: 30.0,
            max: 500,
        };
        let seen = |last: f64| Seen {
            batch_id: "b".into(),
            camera_id: "porch".into(),
            count: 1,
            started_at: 0.0,
            last_activity: last,
        };
        // Nothing known, read 10 s ago: no read (an idle instance asks nothing).
        assert!(!look_due(&[], &rules, 100.0, 90.0, false));
        assert!(look_due(&[], &rules, 100.0, 90.0, true), "asked");
        assert!(look_due(&[], &rules, 150.0, 90.0, false), "a minute passed");
        assert!(look_due(&[], &rules, 0.0, f64::MIN, false), "never read");
        // A known batch: read at its deadline (idle 30 s after its last add).
        assert!(!look_due(&[seen(60.0)], &rules, 89.9, 60.0, false));
        assert!(look_due(&[seen(60.0)], &rules, 90.0, 60.0, false));
    }

    #[tokio::test(start_paused = true)]
    async fn closes_by_window_even_while_busy() {
        let (agg, sink) = aggregator(90.0, 30.0, 500);
        for _ in 0..8 {
            agg.add("front_door", rand_id()).await.expect("add");
            advance(10.0).await;
            agg.tick().await.expect("tick");
        }
        advance(9.9).await;
        agg.add("front_door", rand_id()).await.expect("add");
        agg.tick().await.expect("tick");
        assert!(
            sink.0.lock().expect("lock").is_empty(),
            "89.9 s: still open"
        );
        agg.add("front_door", rand_id()).await.expect("add");
        advance(0.1).await;
        agg.tick().await.expect("tick");
        let closed = sink.0.lock().expect("lock").clone();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].reason, CloseReason::Window);
        assert_eq!(closed[0].detection_ids.len(), 10);
        assert!((closed[0].closed_at - closed[0].started_at - 90.0).abs() < 1e-3);
    }

    #[tokio::test(start_paused = true)]
    async fn closes_by_idle_timeout() {
        let (agg, sink) = aggregator(90.0, 30.0, 500);
        agg.add("backyard", 1).await.expect("add");
        advance(20.0).await;
        agg.add("backyard", 2).await.expect("add");
        advance(29.9).await;
        agg.tick().await.expect("tick");
        assert!(sink.0.lock().expect("lock").is_empty());
        advance(0.1).await;
        agg.tick().await.expect("tick");
        let closed = sink.0.lock().expect("lock").clone();
        assert_eq!((closed.len(), closed[0].reason), (1, CloseReason::Idle));
        assert_eq!(closed[0].detection_ids, vec![1, 2]);
        assert!(agg.open_batches().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn closes_at_max_size_immediately() {
        let (agg, sink) = aggregator(90.0, 30.0, 3);
        for id in 1..=3 {
            agg.add("garage", id).await.expect("add");
        }
        let closed = sink.0.lock().expect("lock").clone();
        assert_eq!((closed.len(), closed[0].reason), (1, CloseReason::MaxSize));
        agg.add("garage", 4).await.expect("add");
        let open = agg.open_batches();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].detection_count, 1);
        assert_ne!(open[0].batch_id, closed[0].batch_id);
    }

    #[tokio::test(start_paused = true)]
    async fn one_batch_per_camera_and_duplicates_ignored() {
        let (agg, _sink) = aggregator(90.0, 30.0, 500);
        agg.add("a", 1).await.expect("add");
        agg.add("a", 1).await.expect("redelivered detection");
        agg.add("b", 2).await.expect("add");
        advance(5.0).await;
        let open = agg.open_batches();
        assert_eq!(open.len(), 2);
        let a = open.iter().find(|b| b.camera_id == "a").expect("a");
        assert_eq!(a.detection_count, 1);
        assert!((a.age_seconds - 5.0).abs() < 0.01);
    }

    fn rand_id() -> i64 {
        static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
