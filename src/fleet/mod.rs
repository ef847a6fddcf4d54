//! The fleet: several instances on one Redis and PostgreSQL. Each writes its record
//! every `fleet.heartbeat_seconds` (the `fleet` worker: Redis hash
//! `watchpost:instances`, and its PostgreSQL row every 15 s, read instead while Redis
//! is away) and reads the others'. An instance whose record is older than
//! `fleet.lost_after_seconds` is lost: every instance still up hands the lost one's
//! pending analysis items to its own consumer at once (and its detection items, when
//! they read the same camera root), then deletes its consumers, whose pending lists
//! are then empty; `WatchpostInstanceLost` fires (the alert engine's `FleetProblems`).
//! A lost instance is forgotten after `fleet.forget_after_seconds`; one stopped on
//! purpose takes its record away as it stops.
//! `GET /api/system/instances` reads the latest judgement from memory.
//!
//! Cameras: every `CAMERAS_EVERY` each instance shares the cameras it owns (hash
//! `watchpost:fleet:cameras`, rewritten when they changed) and reads everyone's, so
//! any instance lists the fleet's cameras with their host (`camera_list`), and
//! answers an action on another host's camera with where to go (`FleetError`).

pub mod cameras;
pub mod record;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::IntGaugeVec;

use crate::cameras::{CameraList, CameraRegistry};
use crate::config::{secs, FleetConfig};
use crate::pipeline::batch::BatchAggregator;
use crate::pipeline::queue::Queue;
use crate::prom::Metrics;
use crate::redis::RedisLink;
use crate::store::Store;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};
use cameras::SharedCameras;
pub use record::{InstanceRecord, InstanceStatus, InstanceView, Pending};

/// The Redis hash of every instance's record.
const RECORDS: &str = "watchpost:instances";
/// The PostgreSQL row is written this often.
const STORE_EVERY: Duration = Duration::from_secs(15);
/// The pending counts are measured this often.
const PENDING_EVERY: Duration = Duration::from_secs(5);
/// The Redis hash of every instance's shared cameras.
const SHARED_CAMERAS: &str = "watchpost:fleet:cameras";
/// The cameras are shared and read this often...
const CAMERAS_EVERY: Duration = Duration::from_secs(5);
/// ...and written again at least this often when nothing changed (a Redis that
/// lost its data has them back).
const CAMERAS_REWRITE: Duration = Duration::from_secs(60);

/// An answer this instance cannot give: the camera is another host's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("Camera '{camera}' belongs to instance '{instance}' (its API: {address}): send the request there")]
    Elsewhere {
        camera: String,
        instance: String,
        address: String,
    },
}

/// Who this instance is.
#[derive(Debug, Clone)]
pub struct Me {
    pub id: String,
    pub address: String,
    pub started_at: DateTime<Utc>,
}

/// This instance's id: `server.instance_id`, else `queue.consumer_id`, else the host
/// name and the port it binds.
pub fn instance_id(configured: &str, consumer_id: &str, host: &str, bind: &str) -> String {
    if !configured.is_empty() {
        return configured.to_string();
    }
    if !consumer_id.is_empty() {
        return consumer_id.to_string();
    }
    let port = bind.rsplit(':').next().unwrap_or("");
    format!("{host}:{port}")
}

/// The queues whose work can be taken over, this instance's consumers in them, and
/// the batches (a lost instance's open ones are closed by the others).
pub struct Queues {
    pub detection: Arc<Queue>,
    pub analysis: Arc<Queue>,
    pub detection_consumer: String,
    pub analysis_consumer: String,
    pub batches: Arc<BatchAggregator>,
}

pub struct Fleet {
    me: Me,
    config: FleetConfig,
    redis: Arc<RedisLink>,
    store: Arc<Store>,
    cameras: Arc<CameraRegistry>,
    queues: Queues,
    latest: Mutex<Vec<InstanceView>>,
    /// Lost instances whose work was taken over (forgotten when they come back).
    handled: Mutex<HashSet<String>>,
    /// Pending items per consumer, as last measured.
    live: Mutex<BTreeMap<String, u64>>,
    instances: IntGaugeVec,
    /// Every other instance's shared cameras, as last read.
    shared: Mutex<Vec<SharedCameras>>,
    /// Moves when `shared` changes.
    shared_version: AtomicU64,
    /// What this instance last shared, and when.
    sent: Mutex<Option<(String, tokio::time::Instant)>>,
}

impl Fleet {
    pub fn new(
        me: Me,
        config: FleetConfig,
        redis: Arc<RedisLink>,
        store: Arc<Store>,
        cameras: Arc<CameraRegistry>,
        queues: Queues,
        metrics: &Metrics,
    ) -> Self {
        let instances = metrics.gauges(
            "fleet_instances",
            "Instances of watchpost sharing this Redis and PostgreSQL, by status (up, or lost: no heartbeat for fleet.lost_after_seconds).",
            &["status"],
        );
        for s in [InstanceStatus::Up, InstanceStatus::Lost] {
            instances.with_label_values(&[s.as_str()]);
        }
        Self {
            me,
            config,
            redis,
            store,
            cameras,
            queues,
            latest: Mutex::new(Vec::new()),
            handled: Mutex::new(HashSet::new()),
            live: Mutex::new(BTreeMap::new()),
            instances,
            shared: Mutex::new(Vec::new()),
            shared_version: AtomicU64::new(0),
            sent: Mutex::new(None),
        }
    }

    /// This instance's id.
    pub fn id(&self) -> &str {
        &self.me.id
    }

    /// Every instance as last judged (no I/O).
    pub fn view(&self) -> Vec<InstanceView> {
        lock(&self.latest).clone()
    }

    /// The instances lost now, this one aside.
    pub fn lost(&self) -> Vec<InstanceView> {
        self.view()
            .into_iter()
            .filter(|v| v.status == InstanceStatus::Lost && v.id != self.me.id)
            .collect()
    }

    /// Every camera of the fleet: this instance's with everyone else's as last
    /// shared, each with its host (no I/O).
    pub fn camera_list(&self, hourly: bool) -> CameraList {
        let lost: HashSet<String> = self.lost().into_iter().map(|v| v.id).collect();
        cameras::compose(
            &self.me.id,
            self.cameras.scope(),
            self.cameras.list(hourly),
            &lock(&self.shared),
            &lost,
            hourly,
        )
    }

    /// A stamp that moves when the fleet's camera list changes.
    pub fn cameras_version(&self) -> u64 {
        self.cameras
            .version()
            .wrapping_add(self.shared_version.load(Ordering::Relaxed) << 32)
    }

    /// Whether a camera is to be asked of another instance: `Ok` when this one holds
    /// it (or nobody does: the registry answers), else where to go.
    pub fn camera_here(&self, id: &str) -> Result<(), FleetError> {
        if self.cameras.holds(id) {
            return Ok(());
        }
        let shared = lock(&self.shared);
        let Some(s) = shared
            .iter()
            .find(|s| s.instance != self.me.id && s.cameras.iter().any(|c| c.id == id))
        else {
            return Ok(());
        };
        let address = self
            .view()
            .into_iter()
            .find(|v| v.id == s.instance)
            .map_or_else(|| "not known".to_string(), |v| v.address);
        Err(FleetError::Elsewhere {
            camera: id.to_string(),
            instance: s.instance.clone(),
            address,
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::FLEET,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let every = secs(self.config.heartbeat_seconds);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stored: Option<tokio::time::Instant> = None;
        let mut counted: Option<tokio::time::Instant> = None;
        let mut shared: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = ctx.cancelled() => {
                    self.leave().await;
                    return Ok(());
                }
            }
            ctx.beat();
            if counted.is_none_or(|t| t.elapsed() >= PENDING_EVERY) {
                counted = Some(tokio::time::Instant::now());
                self.count_pending().await;
            }
            if shared.is_none_or(|t| t.elapsed() >= CAMERAS_EVERY) {
                shared = Some(tokio::time::Instant::now());
                self.share_cameras().await;
            }
            let store_now = stored.is_none_or(|t| t.elapsed() >= STORE_EVERY);
            if store_now {
                stored = Some(tokio::time::Instant::now());
            }
            ctx.beat_while(every.max(Duration::from_secs(10)), self.beat(store_now))
                .await;
        }
    }

    fn record(&self, now: DateTime<Utc>) -> InstanceRecord {
        let live = lock(&self.live);
        let own = |c: &str| live.get(c).copied().unwrap_or(0);
        InstanceRecord {
            id: self.me.id.clone(),
            address: self.me.address.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.me.started_at,
            heartbeat_at: now,
            cameras: self.cameras.owned(),
            detection_consumer: self.queues.detection_consumer.clone(),
            analysis_consumer: self.queues.analysis_consumer.clone(),
            detection_stream: self.queues.detection.stream_key().to_string(),
            pending: Pending {
                detection: own(&self.queues.detection_consumer),
                analysis: own(&self.queues.analysis_consumer),
            },
        }
    }

    /// Pending items per consumer of the analysis queue and of this instance's
    /// detection stream (kept as they were while Redis is away).
    async fn count_pending(&self) {
        let mut live = BTreeMap::new();
        for q in [&self.queues.analysis, &self.queues.detection] {
            match q.pending_by_consumer().await {
                Ok(counts) => live.extend(counts),
                Err(_) => return,
            }
        }
        *lock(&self.live) = live;
    }

    /// One heartbeat: write this instance's record, read everyone's, judge them and
    /// act on the lost.
    async fn beat(&self, store_now: bool) {
        let now = crate::time::now();
        let mine = self.record(now);
        let Ok(text) = serde_json::to_string(&mine) else {
            return;
        };
        let raw = match self.exchange(&mine.id, &text).await {
            Some(raw) => raw,
            None => match self.store.instance_records().await {
                Ok(rows) => rows,
                Err(_) => return,
            },
        };
        if store_now {
            if let Err(e) = self.store.record_instance(&mine.id, &text, now).await {
                tracing::debug!(error = %e, "the instance's record waits for PostgreSQL");
            }
        }
        let mut records = record::parse_records(raw.iter().map(String::as_str));
        // What it reads of itself may be an older copy (PostgreSQL): its own is now.
        records.retain(|r| r.id != mine.id);
        records.push(mine);
        let views = {
            let live = lock(&self.live);
            record::judge(&records, now, self.config.lost_after_seconds, &live)
        };
        for status in [InstanceStatus::Up, InstanceStatus::Lost] {
            let n = views.iter().filter(|v| v.status == status).count();
            self.instances
                .with_label_values(&[status.as_str()])
                .set(n as i64);
        }
        *lock(&self.latest) = views.clone();
        self.cameras.fleet_up(
            views
                .iter()
                .filter(|v| v.status == InstanceStatus::Up)
                .map(|v| v.id.clone())
                .collect(),
        );
        for v in &views {
            match v.status {
                InstanceStatus::Up => {
                    lock(&self.handled).remove(&v.id);
                }
                InstanceStatus::Lost
                    if v.heartbeat_age_seconds > self.config.forget_after_seconds =>
                {
                    self.forget(&v.id).await;
                }
                InstanceStatus::Lost => {
                    if !lock(&self.handled).contains(&v.id) {
                        if let Some(r) = records.iter().find(|r| r.id == v.id) {
                            self.take_over(r).await;
                        }
                    }
                }
            }
        }
    }

    /// Share the cameras this instance owns (when they changed, or a minute passed)
    /// and read everyone's, in one round trip; kept as they were while Redis is away.
    async fn share_cameras(&self) {
        let mine = SharedCameras {
            instance: self.me.id.clone(),
            scope: self.cameras.scope().to_string(),
            cameras: self
                .cameras
                .list(true)
                .cameras
                .into_iter()
                .filter(|c| c.host == self.me.id)
                .collect(),
        };
        let Ok(text) = serde_json::to_string(&mine) else {
            return;
        };
        let write = lock(&self.sent)
            .as_ref()
            .is_none_or(|(t, at)| *t != text || at.elapsed() >= CAMERAS_REWRITE);
        let Ok(mut conn) = self.redis.conn().await else {
            return;
        };
        let mut pipe = redis::pipe();
        if write {
            pipe.cmd("HSET")
                .arg(SHARED_CAMERAS)
                .arg(&self.me.id)
                .arg(&text)
                .ignore();
        }
        pipe.cmd("HVALS").arg(SHARED_CAMERAS);
        let Ok((all,)): Result<(Vec<String>,), _> = pipe.query_async(&mut conn).await else {
            return;
        };
        if write {
            *lock(&self.sent) = Some((text, tokio::time::Instant::now()));
        }
        let mut others =
            cameras::parse_shared(all.iter().map(String::as_str), record::MAX_INSTANCES);
        others.retain(|s| s.instance != self.me.id);
        others.sort_by(|a, b| a.instance.cmp(&b.instance));
        let mut current = lock(&self.shared);
        if *current != others {
            *current = others;
            self.shared_version.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Write this instance's record and read everyone's in one round trip; `None`
    /// while Redis is away.
    async fn exchange(&self, id: &str, text: &str) -> Option<Vec<String>> {
        let mut conn = self.redis.conn().await.ok()?;
        let mut pipe = redis::pipe();
        pipe.cmd("HSET").arg(RECORDS).arg(id).arg(text).ignore();
        pipe.cmd("HVALS").arg(RECORDS);
        let (all,): (Vec<String>,) = pipe.query_async(&mut conn).await.ok()?;
        Some(all)
    }

    /// Hand a lost instance's pending work that this one can do to this one's
    /// consumers, and delete its consumers once they hold nothing.
    async fn take_over(&self, lost: &InstanceRecord) {
        let q = &self.queues;
        // Its open batches: read now, closed at their deadlines.
        q.batches.look_again();
        let mut done = hand_over(
            &q.analysis,
            &lost.id,
            &lost.analysis_consumer,
            &q.analysis_consumer,
        )
        .await;
        if lost.detection_stream == q.detection.stream_key() {
            done &= hand_over(
                &q.detection,
                &lost.id,
                &lost.detection_consumer,
                &q.detection_consumer,
            )
            .await;
        } else if lost.pending.detection > 0 {
            tracing::warn!(instance = %lost.id, items = lost.pending.detection, "a lost instance's detection items wait for it: their pictures are on its camera root, which no other instance sees");
        }
        if done {
            let mut handled = lock(&self.handled);
            if handled.len() < record::MAX_INSTANCES {
                handled.insert(lost.id.clone());
            }
        }
    }

    /// Stopped on purpose: take this instance's record away, so the others do not
    /// count it lost (what it holds is claimed after the idle time, as usual).
    async fn leave(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.remove(&self.me.id)).await;
    }

    async fn forget(&self, id: &str) {
        self.remove(id).await;
        lock(&self.handled).remove(id);
        tracing::info!(instance = %id, "a lost instance is forgotten");
    }

    /// An instance's record and shared cameras, from Redis and PostgreSQL.
    async fn remove(&self, id: &str) {
        if let Ok(mut conn) = self.redis.conn().await {
            let _: Result<(), _> = redis::pipe()
                .cmd("HDEL")
                .arg(RECORDS)
                .arg(id)
                .cmd("HDEL")
                .arg(SHARED_CAMERAS)
                .arg(id)
                .query_async(&mut conn)
                .await;
        }
        let _ = self.store.forget_instance(id).await;
    }
}

/// One queue's part of a takeover; whether it is done (Redis answered).
async fn hand_over(queue: &Queue, lost: &str, from: &str, to: &str) -> bool {
    match queue.take_over(from, to).await {
        Ok(n) => {
            if n > 0 {
                tracing::warn!(instance = %lost, items = n, queue = queue.name(), "took over the pending work of a lost instance");
            }
            true
        }
        Err(_) => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_configured_or_the_consumer_s_or_the_host_and_port() {
        assert_eq!(instance_id("cam-box", "c1", "h", "0.0.0.0:8000"), "cam-box");
        assert_eq!(instance_id("", "c1", "h", "0.0.0.0:8000"), "c1");
        assert_eq!(instance_id("", "", "h", "0.0.0.0:8000"), "h:8000");
        assert_eq!(instance_id("", "", "h", "[::1]:9000"), "h:9000");
    }
}
