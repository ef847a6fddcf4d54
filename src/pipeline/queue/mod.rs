//! Durable work queues (`detection`, `analysis`), at-least-once.
//!
//! Normal path: a Redis Stream per queue with one consumer group. A consumer first
//! re-reads its own pending entries (items it took before a crash), periodically
//! claims entries other consumers left pending longer than `claim_idle_seconds`
//! (XAUTOCLAIM), then reads new ones. An item leaves the stream only when acknowledged.
//!
//! Fallback path: while Redis is unreachable, producers write into the queue's fallback:
//! every item is appended durably to the on-disk spool (so a crash or restart loses
//! nothing) and mirrored in a bounded memory buffer (`memory_capacity`). While the
//! fallback holds anything, new items go there too, so order is kept. The replay
//! worker moves the fallback into Redis in order once Redis is back, then clears it.
//! A full spool refuses new items (error log + metric); accepted items are never dropped.

mod spool;
mod stats;

pub use stats::FallbackStats;

use redis::Value;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::camera_fs::Refusal;
use crate::config::{secs, QueueConfig};
use crate::names::Label;
use crate::prom::Metrics;
use crate::redis::{KvError, RedisLink};
use spool::Spool;

const GROUP: &str = "watchpost";
/// How long one blocking read waits for new items.
const READ_BLOCK: Duration = Duration::from_millis(500);
/// Items sent to Redis per round trip when a fallback is replayed.
const REPLAY_CHUNK: usize = 500;
/// How often a consumer looks for entries abandoned by other consumers: half the idle
/// time after which an entry counts as abandoned, within these bounds.
const CLAIM_EVERY_MIN: Duration = Duration::from_millis(100);
const CLAIM_EVERY_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue '{queue}' fallback spool is full ({max} items); item refused")]
    SpoolFull { queue: String, max: u64 },
    #[error("queue '{queue}' spool I/O failed: {source}")]
    Spool {
        queue: String,
        source: std::io::Error,
    },
    #[error("queue '{queue}' is unavailable: {why}")]
    Unavailable { queue: String, why: String },
}

/// Where an accepted item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Redis,
    Fallback,
}

impl Label for Placement {
    fn label(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Fallback => "fallback",
        }
    }
    fn all() -> &'static [Self] {
        &[Self::Redis, Self::Fallback]
    }
}

/// Why an item went to its queue's dead-letter stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadReason {
    /// The camera file was refused (see `camera_fs::Refusal`).
    Refused(Refusal),
    /// The AI service refused the input (4xx).
    Rejected,
    /// The item's payload could not be read.
    InvalidItem,
    /// Delivered more than `max_deliveries` times without being finished.
    TooManyDeliveries,
    /// It kept failing on its own (not a dependency outage) `max_deliveries` times.
    KeepsFailing,
}

impl Label for DeadReason {
    fn label(self) -> &'static str {
        match self {
            Self::Refused(r) => r.label(),
            Self::Rejected => "rejected",
            Self::InvalidItem => "invalid_item",
            Self::TooManyDeliveries => "too_many_deliveries",
            Self::KeepsFailing => "keeps_failing",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Refused(Refusal::Outside),
            Self::Refused(Refusal::BadName),
            Self::Refused(Refusal::Symlink),
            Self::Refused(Refusal::NotRegular),
            Self::Refused(Refusal::TooLarge),
            Self::Refused(Refusal::Unreadable),
            Self::Rejected,
            Self::InvalidItem,
            Self::TooManyDeliveries,
            Self::KeepsFailing,
        ]
    }
}

/// Longest text of a dead letter's field that is shown (its detail, or a payload
/// that is not JSON); longer ones are cut, marked with `…`.
const DEAD_FIELD_MAX: usize = 1024;

/// One dead letter as an operator sees it: why, when, and the item itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Its id in the dead-letter stream.
    pub id: String,
    /// A `watchpost_queue_dead_lettered_total` reason label (`symlink`, `rejected`, …).
    pub reason: String,
    /// The error that sent it there.
    pub detail: String,
    /// Deliveries before it was set aside.
    pub deliveries: u64,
    /// When it was set aside (RFC 3339), as recorded.
    pub dead_lettered_at: Option<String>,
    /// The queued item (for detection: `file_path`, `camera_id`, `file_hash`, …).
    #[schema(value_type = Object)]
    pub item: serde_json::Value,
}

impl DeadLetter {
    fn from_fields(id: String, fields: &[(String, String)]) -> Self {
        let get = |k: &str| {
            fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        let payload = get("p").unwrap_or_default();
        Self {
            id,
            reason: bounded(get("reason").unwrap_or("unknown")),
            detail: bounded(get("detail").unwrap_or_default()),
            deliveries: get("deliveries").and_then(|d| d.parse().ok()).unwrap_or(0),
            // Written by `time::iso`; older entries (`+00:00`) are rewritten the same way.
            dead_lettered_at: get("at")
                .map(|at| crate::time::parse(at).map_or_else(|| bounded(at), crate::time::iso)),
            item: serde_json::from_str(payload)
                .unwrap_or_else(|_| serde_json::Value::String(bounded(payload))),
        }
    }
}

/// `s` cut to `DEAD_FIELD_MAX` bytes at a character boundary.
fn bounded(s: &str) -> String {
    if s.len() <= DEAD_FIELD_MAX {
        return s.to_string();
    }
    let mut end = DEAD_FIELD_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

struct Fallback {
    memory: VecDeque<String>,
    spool: Spool,
}

pub struct Queue {
    name: &'static str,
    stream: String,
    dead_stream: String,
    /// Items in the stream and in the dead-letter stream, as of the replayer's last
    /// look (read by the API without touching Redis).
    depth: AtomicU64,
    dead: AtomicU64,
    redis: Arc<RedisLink>,
    memory_capacity: usize,
    spool_max: u64,
    claim_idle: Duration,
    fallback: Mutex<Fallback>,
    stats: Arc<FallbackStats>,
    metrics: Arc<Metrics>,
}

/// One item handed to a consumer; acknowledge it with [`Consumer::ack`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub payload: String,
    /// True when this item was delivered before and not acknowledged.
    pub redelivered: bool,
    /// How many times it has been delivered, this time included.
    pub deliveries: u64,
}

impl Queue {
    /// Open a queue, loading whatever a previous run left in its spool.
    pub async fn open(
        name: &'static str,
        cfg: &QueueConfig,
        redis: Arc<RedisLink>,
        stats: Arc<FallbackStats>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, QueueError> {
        let (spool, left) =
            Spool::open(Path::new(&cfg.spool_dir), name)
                .await
                .map_err(|source| QueueError::Spool {
                    queue: name.into(),
                    source,
                })?;
        if !left.is_empty() {
            tracing::warn!(
                queue = name,
                items = left.len(),
                "fallback spool holds items from an earlier run; they will be replayed into Redis"
            );
        }
        let memory: VecDeque<String> = left.into_iter().take(cfg.memory_capacity).collect();
        metrics.queue_known::<DeadReason>(name);
        let q = Self {
            name,
            stream: format!("watchpost:queue:{name}"),
            dead_stream: format!("watchpost:queue:{name}:dead"),
            depth: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            redis,
            memory_capacity: cfg.memory_capacity,
            spool_max: cfg.spool_max_items,
            claim_idle: secs(cfg.claim_idle_seconds),
            fallback: Mutex::new(Fallback { memory, spool }),
            stats,
            metrics,
        };
        q.publish_fallback(&*q.fallback.lock().await);
        Ok(q)
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    fn publish_fallback(&self, fb: &Fallback) {
        let (mem, disk) = (fb.memory.len() as u64, fb.spool.len());
        self.stats.set(self.name, mem, disk);
        self.metrics.queue_fallback_items(self.name, mem, disk);
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::Unavailable {
            queue: self.name.into(),
            why: e.to_string(),
        }
    }

    async fn xadd(&self, payload: &str) -> Result<(), KvError> {
        let mut conn = self.redis.conn().await?;
        let _: String = redis::cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("p")
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn xadd_all(&self, payloads: &[String]) -> Result<(), KvError> {
        let mut conn = self.redis.conn().await?;
        let mut pipe = redis::pipe();
        for p in payloads {
            push_entry(&mut pipe, &self.stream, p);
        }
        let _: () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Accept an item: into Redis, or into the fallback while Redis is down (or while
    /// older fallback items still wait, to keep order).
    pub async fn push(&self, payload: &str) -> Result<Placement, QueueError> {
        let mut fb = self.fallback.lock().await;
        if fb.spool.len() == 0 {
            match self.xadd(payload).await {
                Ok(()) => {
                    self.metrics
                        .queue_item_enqueued(self.name, Placement::Redis);
                    return Ok(Placement::Redis);
                }
                Err(e) => {
                    tracing::warn!(queue = self.name, error = %e, "redis unavailable; using the fallback queue");
                }
            }
        }
        if fb.spool.len() >= self.spool_max {
            self.metrics.queue_item_refused(self.name);
            tracing::error!(
                queue = self.name,
                max = self.spool_max,
                "fallback spool full; refusing item"
            );
            return Err(QueueError::SpoolFull {
                queue: self.name.into(),
                max: self.spool_max,
            });
        }
        fb.spool
            .append(payload.to_string())
            .await
            .map_err(|source| QueueError::Spool {
                queue: self.name.into(),
                source,
            })?;
        if fb.memory.len() < self.memory_capacity {
            fb.memory.push_back(payload.to_string());
        }
        self.metrics
            .queue_item_enqueued(self.name, Placement::Fallback);
        self.publish_fallback(&fb);
        Ok(Placement::Fallback)
    }

    /// Items waiting in the fallback.
    pub async fn fallback_len(&self) -> u64 {
        self.fallback.lock().await.spool.len()
    }

    /// Move the fallback into Redis, oldest first. Stops at the first Redis error and
    /// keeps the rest. Returns how many items moved.
    pub async fn replay(&self) -> Result<usize, QueueError> {
        let mut fb = self.fallback.lock().await;
        if fb.spool.len() == 0 {
            return Ok(0);
        }
        // Do not read the whole spool every second of a long outage.
        self.redis.ping().await.map_err(|e| self.unavailable(e))?;
        let items = fb
            .spool
            .read_all()
            .await
            .map_err(|source| QueueError::Spool {
                queue: self.name.into(),
                source,
            })?;
        // Pipelined in chunks: one round trip per REPLAY_CHUNK items. A chunk that fails
        // part-way is sent again next time; downstream writes are idempotent.
        let mut sent = 0;
        let mut failure = None;
        for chunk in items.chunks(REPLAY_CHUNK) {
            match self.xadd_all(chunk).await {
                Ok(()) => sent += chunk.len(),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let remaining: Vec<String> = items[sent..].to_vec();
        fb.memory = remaining
            .iter()
            .take(self.memory_capacity)
            .cloned()
            .collect();
        fb.spool
            .rewrite(remaining)
            .await
            .map_err(|source| QueueError::Spool {
                queue: self.name.into(),
                source,
            })?;
        self.publish_fallback(&fb);
        if sent > 0 {
            self.metrics.queue_items_replayed(self.name, sent as u64);
            tracing::info!(
                queue = self.name,
                replayed = sent,
                left = fb.spool.len(),
                "fallback replayed into redis"
            );
        }
        match failure {
            Some(e) if sent == 0 => Err(self.unavailable(e)),
            _ => Ok(sent),
        }
    }

    /// Refresh the depth of the stream (taken-but-unacknowledged included) and of its
    /// dead letters; `None` if Redis is down (the last values stay).
    pub async fn refresh_depth(&self) -> Option<(u64, u64)> {
        let mut conn = self.redis.conn().await.ok()?;
        let (n, dead): (u64, u64) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.stream)
            .cmd("XLEN")
            .arg(&self.dead_stream)
            .query_async(&mut conn)
            .await
            .ok()?;
        self.depth.store(n, Ordering::Relaxed);
        self.dead.store(dead, Ordering::Relaxed);
        self.metrics.queue_depth(self.name, n);
        self.metrics.queue_dead_letters(self.name, dead);
        Some((n, dead))
    }

    /// Items in the stream as of the last refresh (no I/O).
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Dead letters as of the last refresh or dead-lettering (no I/O).
    pub fn dead_letters(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    /// The oldest `limit` dead letters (what an operator must fix first) and how many
    /// there are in all, read in one round trip. Fields are bounded for display; the
    /// stream itself is not changed.
    pub async fn list_dead(&self, limit: usize) -> Result<(u64, Vec<DeadLetter>), QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        let (total, reply): (u64, Value) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.dead_stream)
            .cmd("XRANGE")
            .arg(&self.dead_stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let items: Vec<DeadLetter> = fields_of(&reply)
            .into_iter()
            .map(|(id, fields)| DeadLetter::from_fields(id, &fields))
            .collect();
        Ok((total, items))
    }

    /// Move every dead letter back onto the live queue (oldest first), each in one
    /// transaction (add live, delete dead), so none is lost or doubled. Returns how
    /// many moved. The items get a fresh delivery count.
    pub async fn requeue_dead(&self) -> Result<u64, QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        // Only what is dead now: an item that fails again while this runs is
        // dead-lettered after `last`, and must wait for the next requeue (otherwise the
        // two would chase each other for as long as the item keeps failing).
        let newest: Value = redis::cmd("XREVRANGE")
            .arg(&self.dead_stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        let Some(last) = entries(&newest).into_iter().next().map(|(id, _)| id) else {
            return Ok(0);
        };
        let mut moved = 0;
        let mut from = "-".to_string();
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(&self.dead_stream)
                .arg(&from)
                .arg(&last)
                .arg("COUNT")
                .arg(REPLAY_CHUNK)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
            let batch = entries(&reply);
            let Some((tail, _)) = batch.last() else {
                break;
            };
            // Exclusive start for the next chunk (`(` needs Redis 6.2).
            from = format!("({tail}");
            for (id, payload) in batch {
                let mut pipe = redis::pipe();
                pipe.atomic();
                if let Some(p) = &payload {
                    push_entry(&mut pipe, &self.stream, p);
                }
                pipe.cmd("XDEL").arg(&self.dead_stream).arg(&id).ignore();
                let _: () = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                if payload.is_some() {
                    moved += 1;
                }
            }
        }
        self.dead.store(0, Ordering::Relaxed);
        self.metrics.queue_dead_letters(self.name, 0);
        if moved > 0 {
            self.metrics.queue_items_requeued(self.name, moved);
            tracing::info!(queue = self.name, items = moved, "dead letters requeued");
        }
        Ok(moved)
    }

    /// A consumer with a stable name (stable across restarts, so it re-reads its own
    /// unacknowledged items first).
    pub fn consumer(self: &Arc<Self>, consumer_name: &str) -> Consumer {
        Consumer {
            queue: Arc::clone(self),
            name: consumer_name.to_string(),
            conn: None,
            own_pending_checked: false,
            last_claim: None,
        }
    }
}

pub struct Consumer {
    queue: Arc<Queue>,
    name: String,
    conn: Option<redis::aio::MultiplexedConnection>,
    own_pending_checked: bool,
    last_claim: Option<Instant>,
}

impl Consumer {
    async fn conn(&mut self) -> Result<redis::aio::MultiplexedConnection, QueueError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        let mut c = self
            .queue
            .redis
            .dedicated(READ_BLOCK + Duration::from_secs(2))
            .await
            .map_err(|e| self.queue.unavailable(e))?;
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.queue.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        if let Err(e) = created {
            if e.code() != Some("BUSYGROUP") {
                return Err(self.queue.unavailable(e));
            }
        }
        self.conn = Some(c.clone());
        Ok(c)
    }

    /// Drop a broken connection; after reconnecting, re-read this consumer's own
    /// unacknowledged items first (a reply lost with the connection leaves one).
    fn forget_connection<E: std::fmt::Display>(&mut self, e: E) -> QueueError {
        self.conn = None;
        self.own_pending_checked = false;
        self.queue.unavailable(e)
    }

    /// `XREADGROUP GROUP g <me> COUNT 1 [BLOCK ms] STREAMS <stream> <id>`: `0` reads
    /// this consumer's own pending entries, `>` new ones.
    fn read_group(&self, block: Option<Duration>, id: &str) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(1);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.queue.stream).arg(id);
        cmd
    }

    /// The next item: own unacknowledged ones first, then abandoned ones, then new ones
    /// (waiting up to half a second). `Ok(None)` when there is nothing to do.
    pub async fn take(&mut self) -> Result<Option<Delivery>, QueueError> {
        let mut conn = self.conn().await?;
        let stream = self.queue.stream.clone();
        if !self.own_pending_checked {
            let reply: redis::RedisResult<Value> =
                self.read_group(None, "0").query_async(&mut conn).await;
            let reply = reply.map_err(|e| self.forget_connection(e))?;
            match read_reply_entries(&reply).into_iter().next() {
                Some((id, Some(payload))) => {
                    self.queue.metrics.queue_item_redelivered(self.queue.name);
                    let deliveries = self.delivery_count(&mut conn, &id).await;
                    return Ok(Some(Delivery {
                        id,
                        payload,
                        redelivered: true,
                        deliveries,
                    }));
                }
                Some((id, None)) => {
                    // The entry was deleted after we took it; acknowledge and move on.
                    self.ack(&id).await?;
                    return Ok(None);
                }
                None => self.own_pending_checked = true,
            }
        }
        let claim_every = (self.queue.claim_idle / 2).clamp(CLAIM_EVERY_MIN, CLAIM_EVERY_MAX);
        if self.last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
            self.last_claim = Some(Instant::now());
            let idle_ms = self.queue.claim_idle.as_millis() as u64;
            let reply: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(GROUP)
                .arg(&self.name)
                .arg(idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await;
            let reply = reply.map_err(|e| self.forget_connection(e))?;
            if let Value::Array(parts) = &reply {
                if let Some((id, Some(payload))) =
                    parts.get(1).map(entries).and_then(|e| e.into_iter().next())
                {
                    tracing::info!(queue = self.queue.name, id = %id, "claimed an item abandoned by another consumer");
                    self.queue.metrics.queue_item_redelivered(self.queue.name);
                    let deliveries = self.delivery_count(&mut conn, &id).await;
                    return Ok(Some(Delivery {
                        id,
                        payload,
                        redelivered: true,
                        deliveries,
                    }));
                }
            }
        }
        let reply: redis::RedisResult<Value> = self
            .read_group(Some(READ_BLOCK), ">")
            .query_async(&mut conn)
            .await;
        let reply = reply.map_err(|e| self.forget_connection(e))?;
        Ok(read_reply_entries(&reply).into_iter().find_map(|(id, p)| {
            p.map(|payload| Delivery {
                id,
                payload,
                redelivered: false,
                deliveries: 1,
            })
        }))
    }

    /// The delivery count Redis keeps for a pending entry (1 if it cannot be read).
    async fn delivery_count(&self, conn: &mut redis::aio::MultiplexedConnection, id: &str) -> u64 {
        let reply: redis::RedisResult<Value> = redis::cmd("XPENDING")
            .arg(&self.queue.stream)
            .arg(GROUP)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(conn)
            .await;
        match reply {
            Ok(Value::Array(rows)) => match rows.first() {
                Some(Value::Array(fields)) => match fields.get(3) {
                    Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(1),
                    _ => 1,
                },
                _ => 1,
            },
            _ => 1,
        }
    }

    /// Move an item to the queue's dead-letter stream with its reason, and acknowledge
    /// it on the live queue, in one transaction: nothing waits behind it any more, and
    /// nothing is lost (an operator can requeue it).
    pub async fn dead_letter(
        &mut self,
        delivery: &Delivery,
        reason: DeadReason,
        detail: &str,
    ) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let stream = self.queue.stream.clone();
        let res: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&self.queue.dead_stream)
            .arg("*")
            .arg("p")
            .arg(&delivery.payload)
            .arg("reason")
            .arg(reason.label())
            .arg("detail")
            .arg(detail)
            .arg("source_id")
            .arg(&delivery.id)
            .arg("deliveries")
            .arg(delivery.deliveries)
            .arg("at")
            .arg(crate::time::iso(crate::time::now()))
            .ignore()
            .cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&delivery.id)
            .ignore()
            .cmd("XDEL")
            .arg(&stream)
            .arg(&delivery.id)
            .ignore()
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        let dead = self.queue.dead.fetch_add(1, Ordering::Relaxed) + 1;
        self.queue
            .metrics
            .queue_item_dead_lettered(self.queue.name, reason);
        self.queue.metrics.queue_dead_letters(self.queue.name, dead);
        tracing::error!(queue = self.queue.name, item = %delivery.id, reason = reason.label(), detail = ?detail, "item moved to the dead-letter stream; requeue it with POST /api/system/pipeline/dead-letters/{}/requeue once fixed", self.queue.name);
        Ok(())
    }

    /// Keep an item in hand: `XCLAIM … 0 <id> JUSTID` resets its idle time (without
    /// counting a delivery), so no other consumer's `XAUTOCLAIM` takes it over while
    /// this one is still working on it.
    pub async fn keep_claim(&mut self, id: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let res: redis::RedisResult<Value> = redis::cmd("XCLAIM")
            .arg(&self.queue.stream)
            .arg(GROUP)
            .arg(&self.name)
            .arg(0)
            .arg(id)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        Ok(())
    }

    /// How often an item in hand must have its claim refreshed.
    pub fn claim_refresh(&self) -> Duration {
        (self.queue.claim_idle / 3).max(CLAIM_EVERY_MIN)
    }

    /// Acknowledge and delete an item: it will not be delivered again.
    pub async fn ack(&mut self, id: &str) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let stream = self.queue.stream.clone();
        let res: redis::RedisResult<()> = redis::pipe()
            .cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&stream)
            .arg(id)
            .ignore()
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        self.queue.metrics.queue_item_acked(self.queue.name);
        Ok(())
    }
}

/// Entries of an XREADGROUP reply: `[[stream, [[id, [field, value, ...]], ...]]]`.
fn read_reply_entries(v: &Value) -> Vec<(String, Option<String>)> {
    match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(kv) => kv.get(1).map(entries),
                _ => None,
            })
            .flatten()
            .collect(),
        Value::Map(streams) => streams.iter().flat_map(|(_, e)| entries(e)).collect(),
        _ => Vec::new(),
    }
}

/// `[[id, [field, value, ...]], ...]` → `(id, value of field "p")`; a deleted entry has
/// no fields.
fn entries(v: &Value) -> Vec<(String, Option<String>)> {
    fields_of(v)
        .into_iter()
        .map(|(id, fields)| {
            let payload = fields.into_iter().find(|(k, _)| k == "p").map(|(_, p)| p);
            (id, payload)
        })
        .collect()
}

/// Every entry of an `XRANGE` reply with all its fields (unreadable ones left out).
fn fields_of(v: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let id = text(parts.first()?)?;
            let fields = match parts.get(1) {
                Some(Value::Array(kvs)) => kvs
                    .chunks(2)
                    .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
                    .collect(),
                _ => Vec::new(),
            };
            Some((id, fields))
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Queue an `XADD <stream> * p <payload>` (its answer ignored) on a pipeline.
fn push_entry(pipe: &mut redis::Pipeline, stream: &str, payload: &str) {
    pipe.cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("p")
        .arg(payload)
        .ignore();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_redis() -> Arc<RedisLink> {
        Arc::new(crate::redis::dead_link())
    }

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_dead_letter_shows_its_item_and_bounds_what_it_shows() {
        let d = DeadLetter::from_fields(
            "1-0".into(),
            &kv(&[
                ("p", r#"{"file_path":"/cams/a.jpg","camera_id":"a"}"#),
                ("reason", "symlink"),
                ("detail", "a symlink"),
                ("deliveries", "2"),
                ("at", "2026-11-29T07:00:00+00:00"),
            ]),
        );
        assert_eq!(d.item["file_path"], "/cams/a.jpg");
        assert_eq!((d.reason.as_str(), d.deliveries), ("symlink", 2));
        // Written `+00:00` by older versions; shown in the one form.
        assert_eq!(d.dead_lettered_at.as_deref(), Some("2026-11-29T07:00:00Z"));

        // A payload that is not JSON is shown as text; a long detail is cut on a
        // character boundary; missing fields have plain defaults.
        let long = "é".repeat(DEAD_FIELD_MAX);
        let d = DeadLetter::from_fields("2-0".into(), &kv(&[("p", "not json"), ("detail", &long)]));
        assert_eq!(d.item, serde_json::Value::String("not json".into()));
        assert!(d.detail.ends_with('…'));
        assert!(d.detail.len() <= DEAD_FIELD_MAX + '…'.len_utf8());
        assert_eq!((d.reason.as_str(), d.deliveries), ("unknown", 0));
        assert_eq!(d.dead_lettered_at, None);
    }

    #[tokio::test]
    async fn a_full_spool_refuses_new_items_and_keeps_the_old_ones() {
        let dir = tempfile::tempdir().expect("dir");
        let cfg = QueueConfig {
            spool_dir: dir.path().display().to_string(),
            memory_capacity: 2,
            spool_max_items: 3,
            claim_idle_seconds: 60.0,
            consumer_id: String::new(),
            max_deliveries: 5,
        };
        let stats = Arc::new(FallbackStats::default());
        let q = Queue::open(
            "detection",
            &cfg,
            dead_redis(),
            stats.clone(),
            Arc::new(Metrics::new()),
        )
        .await
        .expect("open");
        for i in 0..3 {
            assert_eq!(
                q.push(&format!("{{\"n\":{i}}}")).await.expect("accepted"),
                Placement::Fallback
            );
        }
        assert!(matches!(
            q.push("{\"n\":3}").await,
            Err(QueueError::SpoolFull { max: 3, .. })
        ));
        assert_eq!(q.fallback_len().await, 3);
        assert_eq!(stats.memory_total(), 2, "memory mirror is bounded");
        assert_eq!(stats.disk_by_queue().get("detection"), Some(&3));
        // Replay needs Redis: nothing is lost while it is away.
        assert!(q.replay().await.is_err());
        drop(q);
        let q = Queue::open(
            "detection",
            &cfg,
            dead_redis(),
            stats,
            Arc::new(Metrics::new()),
        )
        .await
        .expect("reopen");
        assert_eq!(q.fallback_len().await, 3, "the spool survives a restart");
    }
}
