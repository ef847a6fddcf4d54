//! Batch aggregator (`batch_aggregator` worker, behaviour.md §4): one open batch per
//! camera, kept in Redis under `batch:{camera_id}:current` → id and
//! `batch:{id}:camera_id|detections|started_at|last_activity` (TTL 3600 s) so several
//! instances share batches, or in memory while Redis is down. A batch closes when it
//! is `window_seconds` old, idle for `idle_timeout_seconds`, or holds
//! `max_detections`. Closing claims the batch atomically (only one instance wins),
//! hands it to the analysis sink, and only then deletes its keys; a batch whose
//! hand-off failed stays in Redis and is retried by the sweep.
//!
//! Time: batch timestamps are unix seconds (shared between instances) derived from
//! tokio's clock (`WallClock`), so window/idle rules are tested on the paused clock.

use chrono::{DateTime, TimeZone, Utc};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kv::RedisLink;
use super::queue::Queue;
use crate::config::{secs, BatchConfig};
use crate::events::EventBus;
use crate::prom::Metrics;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

const KEY_TTL_SECONDS: u64 = 3600;

/// Why a batch closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    Window,
    Idle,
    MaxSize,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Window => "window",
            Self::Idle => "idle",
            Self::MaxSize => "max_size",
        }
    }
}

/// A closed batch as handed to the analysis queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClosedBatch {
    pub batch_id: String,
    pub camera_id: String,
    pub detection_ids: Vec<i64>,
    /// Unix seconds.
    pub started_at: f64,
    pub closed_at: f64,
    pub reason: CloseReason,
}

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

/// Unix time derived from tokio's clock (so paused-clock tests control it).
pub struct WallClock {
    base_unix: f64,
    base: tokio::time::Instant,
}

impl WallClock {
    pub fn new() -> Self {
        Self {
            base_unix: Utc::now().timestamp_micros() as f64 / 1e6,
            base: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> f64 {
        self.base_unix + self.base.elapsed().as_secs_f64()
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}

pub fn unix_to_datetime(secs: f64) -> DateTime<Utc> {
    Utc.timestamp_micros((secs * 1e6) as i64)
        .single()
        .unwrap_or_else(Utc::now)
}

struct Rules {
    window: f64,
    idle: f64,
    max: usize,
}

impl Rules {
    /// The close rule, in priority order: size, window, idle.
    fn due(
        &self,
        started_at: f64,
        last_activity: f64,
        count: usize,
        now: f64,
    ) -> Option<CloseReason> {
        if count >= self.max {
            Some(CloseReason::MaxSize)
        } else if now - started_at >= self.window {
            Some(CloseReason::Window)
        } else if now - last_activity >= self.idle {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
struct MemBatch {
    batch_id: String,
    detections: Vec<i64>,
    started_at: f64,
    last_activity: f64,
}

/// Adds detections atomically; creates the batch if the camera has none.
const ADD_SCRIPT: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then
  id = ARGV[1]
  redis.call('SET', KEYS[1], id, 'EX', ARGV[5])
  redis.call('SET', 'batch:' .. id .. ':camera_id', ARGV[2], 'EX', ARGV[5])
  redis.call('SET', 'batch:' .. id .. ':started_at', ARGV[3], 'EX', ARGV[5])
end
redis.call('SADD', 'batch:' .. id .. ':detections', ARGV[4])
redis.call('EXPIRE', 'batch:' .. id .. ':detections', ARGV[5])
redis.call('SET', 'batch:' .. id .. ':last_activity', ARGV[3], 'EX', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {id, redis.call('SCARD', 'batch:' .. id .. ':detections')}
";

/// Detach the batch from its camera if it is still the current one (one winner).
const CLAIM_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

pub struct BatchAggregator {
    redis: Option<Arc<RedisLink>>,
    sink: Arc<dyn BatchSink>,
    memory: Mutex<HashMap<String, MemBatch>>,
    rules: Rules,
    window_seconds: f64,
    idle_seconds: f64,
    clock: WallClock,
    events: EventBus,
    metrics: Arc<Metrics>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("cannot hand batch {0} to analysis: {1}")]
    HandOff(String, String),
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
            redis,
            sink,
            memory: Mutex::new(HashMap::new()),
            rules: Rules {
                window: cfg.window_seconds,
                idle: cfg.idle_timeout_seconds,
                max: usize::try_from(cfg.max_detections).unwrap_or(usize::MAX),
            },
            window_seconds: cfg.window_seconds,
            idle_seconds: cfg.idle_timeout_seconds,
            clock: WallClock::new(),
            events,
            metrics,
        }
    }

    pub fn window_seconds(&self) -> f64 {
        self.window_seconds
    }

    pub fn idle_timeout_seconds(&self) -> f64 {
        self.idle_seconds
    }

    fn mem(&self) -> std::sync::MutexGuard<'_, HashMap<String, MemBatch>> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a stored detection to its camera's open batch (closing it at max size).
    pub async fn add(&self, camera_id: &str, detection_id: i64) -> Result<(), BatchError> {
        let now = self.clock.now();
        // A camera whose batch lives in memory keeps using it until it closes.
        let in_memory = self.mem().contains_key(camera_id);
        if !in_memory {
            if let Some(redis) = &self.redis {
                match self.add_redis(redis, camera_id, detection_id, now).await {
                    Ok((id, count)) => {
                        if count >= self.rules.max {
                            self.close_redis(redis, camera_id, &id, CloseReason::MaxSize, now)
                                .await?;
                        }
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, camera_id, "redis unavailable; keeping the batch in memory");
                    }
                }
            }
        }
        let full = {
            let mut mem = self.mem();
            let b = mem
                .entry(camera_id.to_string())
                .or_insert_with(|| MemBatch {
                    batch_id: uuid::Uuid::new_v4().to_string(),
                    detections: Vec::new(),
                    started_at: now,
                    last_activity: now,
                });
            if !b.detections.contains(&detection_id) {
                b.detections.push(detection_id);
            }
            b.last_activity = now;
            b.detections.len() >= self.rules.max
        };
        if full {
            self.close_memory(camera_id, CloseReason::MaxSize, now)
                .await?;
        }
        Ok(())
    }

    async fn add_redis(
        &self,
        redis: &RedisLink,
        camera_id: &str,
        detection_id: i64,
        now: f64,
    ) -> Result<(String, usize), String> {
        let mut conn = redis.conn().await.map_err(|e| e.to_string())?;
        let (id, count): (String, usize) = redis::Script::new(ADD_SCRIPT)
            .key(format!("batch:{camera_id}:current"))
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(camera_id)
            .arg(now)
            .arg(detection_id)
            .arg(KEY_TTL_SECONDS)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok((id, count))
    }

    /// Close every batch that is due; also retries hand-offs that failed earlier.
    pub async fn tick(&self) -> Result<usize, BatchError> {
        let now = self.clock.now();
        let mut closed = 0;
        let due: Vec<(String, CloseReason)> = self
            .mem()
            .iter()
            .filter_map(|(cam, b)| {
                self.rules
                    .due(b.started_at, b.last_activity, b.detections.len(), now)
                    .map(|r| (cam.clone(), r))
            })
            .collect();
        for (cam, reason) in due {
            self.close_memory(&cam, reason, now).await?;
            closed += 1;
        }
        if let Some(redis) = &self.redis {
            if let Ok(open) = self.redis_batches(redis).await {
                for b in open {
                    if let Some(reason) =
                        self.rules
                            .due(b.started_at, b.last_activity, b.detections.len(), now)
                    {
                        if self
                            .close_redis(redis, &b.camera_id, &b.batch_id, reason, now)
                            .await?
                        {
                            closed += 1;
                        }
                    }
                }
                let _ = self.sweep_orphans(redis, now).await;
            }
        }
        Ok(closed)
    }

    async fn close_memory(
        &self,
        camera_id: &str,
        reason: CloseReason,
        now: f64,
    ) -> Result<(), BatchError> {
        let Some(b) = self.mem().remove(camera_id) else {
            return Ok(());
        };
        let closed = ClosedBatch {
            batch_id: b.batch_id.clone(),
            camera_id: camera_id.to_string(),
            detection_ids: b.detections.clone(),
            started_at: b.started_at,
            closed_at: now,
            reason,
        };
        if let Err(e) = self.sink.hand_off(&closed).await {
            // Put it back: nothing is dropped; the next tick retries.
            self.mem().entry(camera_id.to_string()).or_insert(b);
            return Err(BatchError::HandOff(closed.batch_id, e));
        }
        self.closed(&closed);
        Ok(())
    }

    /// Claim and hand off one Redis batch; `Ok(false)` if another instance won.
    async fn close_redis(
        &self,
        redis: &RedisLink,
        camera_id: &str,
        batch_id: &str,
        reason: CloseReason,
        now: f64,
    ) -> Result<bool, BatchError> {
        let claimed: i64 = match redis.conn().await {
            Ok(mut conn) => redis::Script::new(CLAIM_SCRIPT)
                .key(format!("batch:{camera_id}:current"))
                .arg(batch_id)
                .invoke_async(&mut conn)
                .await
                .unwrap_or(0),
            Err(_) => 0,
        };
        if claimed == 0 {
            return Ok(false);
        }
        self.hand_off_redis(redis, batch_id, reason, now).await?;
        Ok(true)
    }

    /// Read a detached batch, hand it off, then delete its keys.
    async fn hand_off_redis(
        &self,
        redis: &RedisLink,
        batch_id: &str,
        reason: CloseReason,
        now: f64,
    ) -> Result<(), BatchError> {
        let fail = |e: String| BatchError::HandOff(batch_id.to_string(), e);
        let Some(b) = read_batch(redis, batch_id).await.map_err(fail)? else {
            return Ok(());
        };
        let closed = ClosedBatch {
            batch_id: batch_id.to_string(),
            camera_id: b.camera_id,
            detection_ids: b.detections,
            started_at: b.started_at,
            closed_at: now,
            reason,
        };
        self.sink.hand_off(&closed).await.map_err(fail)?;
        let mut conn = redis.conn().await.map_err(|e| fail(e.to_string()))?;
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(format!("batch:{batch_id}:camera_id"))
            .arg(format!("batch:{batch_id}:detections"))
            .arg(format!("batch:{batch_id}:started_at"))
            .arg(format!("batch:{batch_id}:last_activity"))
            .query_async(&mut conn)
            .await;
        self.closed(&closed);
        Ok(())
    }

    /// Batches detached from their camera but never handed off (a crash or a failed
    /// hand-off between claim and delete) are handed off now.
    async fn sweep_orphans(&self, redis: &RedisLink, now: f64) -> Result<(), String> {
        let mut conn = redis.conn().await.map_err(|e| e.to_string())?;
        let keys = scan_keys(&mut conn, "batch:*:camera_id").await?;
        for key in keys {
            let Some(batch_id) = key
                .strip_prefix("batch:")
                .and_then(|k| k.strip_suffix(":camera_id"))
            else {
                continue;
            };
            let camera: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let Some(camera) = camera else { continue };
            let current: Option<String> = redis::cmd("GET")
                .arg(format!("batch:{camera}:current"))
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if current.as_deref() != Some(batch_id) {
                tracing::warn!(batch_id, camera_id = %camera, "handing off an orphaned batch");
                self.hand_off_redis(redis, batch_id, CloseReason::Window, now)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    fn closed(&self, b: &ClosedBatch) {
        let age = b.closed_at - b.started_at;
        self.metrics
            .batch_closed(b.reason.as_str(), b.detection_ids.len(), age);
        tracing::info!(batch_id = %b.batch_id, camera_id = %b.camera_id, detections = b.detection_ids.len(), reason = b.reason.as_str(), "batch closed");
        self.events.publish(
            "detection.batch",
            "detections",
            serde_json::json!({
                "batch_id": b.batch_id,
                "camera_id": b.camera_id,
                "detection_count": b.detection_ids.len(),
                "detection_ids": b.detection_ids,
                "started_at": unix_to_datetime(b.started_at),
                "closed_at": unix_to_datetime(b.closed_at),
                "reason": b.reason.as_str(),
            }),
        );
    }

    async fn redis_batches(&self, redis: &RedisLink) -> Result<Vec<RedisBatch>, String> {
        let mut conn = redis.conn().await.map_err(|e| e.to_string())?;
        let keys = scan_keys(&mut conn, "batch:*:current").await?;
        let mut out = Vec::new();
        for key in keys {
            let id: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(id) = id {
                if let Some(b) = read_batch(redis, &id).await? {
                    out.push(RedisBatch { batch_id: id, ..b });
                }
            }
        }
        Ok(out)
    }

    /// Every open batch, Redis and memory, oldest first.
    pub async fn open_batches(&self) -> Vec<OpenBatch> {
        let now = self.clock.now();
        let mut all: Vec<OpenBatch> = self
            .mem()
            .iter()
            .map(|(cam, b)| OpenBatch {
                batch_id: b.batch_id.clone(),
                camera_id: cam.clone(),
                detection_count: b.detections.len(),
                started_at: b.started_at,
                age_seconds: round2(now - b.started_at),
                last_activity_seconds: round2(now - b.last_activity),
            })
            .collect();
        let in_memory = all.len();
        let mut in_redis = 0;
        if let Some(redis) = &self.redis {
            if let Ok(batches) = self.redis_batches(redis).await {
                in_redis = batches.len();
                all.extend(batches.into_iter().map(|b| OpenBatch {
                    age_seconds: round2(now - b.started_at),
                    last_activity_seconds: round2(now - b.last_activity),
                    detection_count: b.detections.len(),
                    batch_id: b.batch_id,
                    camera_id: b.camera_id,
                    started_at: b.started_at,
                }));
            }
        }
        self.metrics.batches_open(in_redis, in_memory);
        all.sort_by(|a, b| a.started_at.total_cmp(&b.started_at));
        all
    }

    /// The supervised worker: tick every tenth of the shortest rule (50 ms–1 s).
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            "batch_aggregator",
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
            if !ctx.idle(every).await {
                return Ok(());
            }
        }
    }
}

fn round2(x: f64) -> f64 {
    (x.max(0.0) * 100.0).round() / 100.0
}

struct RedisBatch {
    batch_id: String,
    camera_id: String,
    detections: Vec<i64>,
    started_at: f64,
    last_activity: f64,
}

async fn read_batch(redis: &RedisLink, batch_id: &str) -> Result<Option<RedisBatch>, String> {
    let mut conn = redis.conn().await.map_err(|e| e.to_string())?;
    let (camera, started, last, detections): (Option<String>, Option<f64>, Option<f64>, Vec<i64>) =
        redis::pipe()
            .get(format!("batch:{batch_id}:camera_id"))
            .get(format!("batch:{batch_id}:started_at"))
            .get(format!("batch:{batch_id}:last_activity"))
            .smembers(format!("batch:{batch_id}:detections"))
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    let (Some(camera_id), Some(started_at)) = (camera, started) else {
        return Ok(None);
    };
    let mut detections = detections;
    detections.sort_unstable();
    Ok(Some(RedisBatch {
        batch_id: batch_id.to_string(),
        camera_id,
        detections,
        started_at,
        last_activity: last.unwrap_or(started_at),
    }))
}

async fn scan_keys(
    conn: &mut redis::aio::ConnectionManager,
    pattern: &str,
) -> Result<Vec<String>, String> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await
            .map_err(|e| e.to_string())?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
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
        assert!(agg.open_batches().await.is_empty());
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
        let open = agg.open_batches().await;
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
        let open = agg.open_batches().await;
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
