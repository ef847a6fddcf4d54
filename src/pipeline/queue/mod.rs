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

mod consumer;
mod dead;
mod error;
mod metrics;
mod producer;
mod reply;
mod spool;
mod stats;
mod streams;

pub use consumer::{Consumer, Delivery};
pub use dead::{DeadLetter, DeadReason};
pub use error::QueueError;
pub use producer::Placement;
pub use stats::FallbackStats;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{secs, QueueConfig};
use crate::prom::Metrics;
use crate::redis::RedisLink;
use metrics::QueueMetrics;
use producer::Producer;
use spool::Spool;
use streams::Streams;

/// One queue: its streams, its producer side (with the fallback) and the settings its
/// consumers share.
pub struct Queue {
    streams: Arc<Streams>,
    producer: Producer,
    claim_idle: Duration,
    /// Streams whose entries this queue still has to take over (see [`Queue::adopt`]).
    to_adopt: std::sync::Mutex<Vec<String>>,
}

impl Queue {
    /// Open a queue, loading whatever a previous run left in its spool; with a
    /// `scope`, the queue of that scope alone (see [`Streams::new`]).
    pub async fn open(
        name: &'static str,
        scope: Option<&str>,
        cfg: &QueueConfig,
        redis: Arc<RedisLink>,
        stats: Arc<FallbackStats>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, QueueError> {
        let streams = Arc::new(Streams::new(
            name,
            scope,
            redis,
            QueueMetrics::new::<DeadReason>(&metrics, name),
        ));
        let (spool, left) = Spool::open(Path::new(&cfg.spool_dir), name)
            .await
            .map_err(|source| streams.spool_failed(source))?;
        if !left.is_empty() {
            tracing::warn!(
                queue = name,
                items = left.len(),
                "fallback spool holds items from an earlier run; they will be replayed into Redis"
            );
        }
        let producer = Producer::new(
            streams.clone(),
            spool,
            left,
            cfg.memory_capacity,
            cfg.spool_max_items,
            stats,
        )
        .await;
        Ok(Self {
            streams,
            producer,
            claim_idle: secs(cfg.claim_idle_seconds),
            to_adopt: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Entries taken and not acknowledged, per consumer (`XPENDING`).
    pub async fn pending_by_consumer(&self) -> Result<Vec<(String, u64)>, QueueError> {
        self.streams.pending_by_consumer().await
    }

    /// Hand a lost consumer's entries to `to` now, and delete it once it holds none.
    pub async fn take_over(&self, from: &str, to: &str) -> Result<u64, QueueError> {
        self.streams.take_over(from, to).await
    }

    /// The Redis key of the live stream.
    pub fn stream_key(&self) -> &str {
        &self.streams.stream
    }

    /// Take over the entries of the streams `keys` (an earlier name of this queue),
    /// now if Redis answers, else at the replayer's next rounds until done.
    pub async fn adopt(&self, keys: Vec<String>) {
        self.lock_adopt().extend(keys);
        self.adopt_pending().await;
    }

    fn lock_adopt(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.to_adopt.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The adoptions still to do; each done one is forgotten.
    async fn adopt_pending(&self) {
        let keys = self.lock_adopt().clone();
        for key in keys {
            match self.streams.adopt(&key).await {
                Ok(moved) => {
                    if moved > 0 {
                        tracing::info!(queue = self.name(), from = %key, to = %self.streams.stream, items = moved, "queue items taken over from an earlier stream");
                    }
                    self.lock_adopt().retain(|k| k != &key);
                }
                Err(e) => {
                    tracing::debug!(queue = self.name(), error = %e, "taking over an earlier stream postponed");
                    return;
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        self.streams.name
    }

    /// Accept an item: into Redis, or into the fallback while Redis is down (or while
    /// older fallback items still wait, to keep order).
    pub async fn push(&self, payload: &str) -> Result<Placement, QueueError> {
        self.producer.push(payload).await
    }

    /// Several items, in order (see [`Producer::push_all`]).
    pub async fn push_all(&self, payloads: &[String]) -> Vec<Result<Placement, QueueError>> {
        self.producer.push_all(payloads).await
    }

    /// Items waiting in the fallback.
    pub async fn fallback_len(&self) -> u64 {
        self.producer.fallback_len().await
    }

    /// Move the fallback into Redis, oldest first (see [`Producer::replay`]), and
    /// finish taking over earlier streams.
    pub async fn replay(&self) -> Result<usize, QueueError> {
        if !self.lock_adopt().is_empty() {
            self.adopt_pending().await;
        }
        self.producer.replay().await
    }

    /// Whether earlier streams still wait to be taken over.
    pub fn adopting(&self) -> bool {
        !self.lock_adopt().is_empty()
    }

    /// Refresh the stream's and the dead letters' depth; `None` if Redis is down.
    pub async fn refresh_depth(&self, dead: bool) -> Option<u64> {
        self.streams.refresh_depth(dead).await
    }

    /// Items in the stream as of the last refresh (no I/O).
    pub fn depth(&self) -> u64 {
        self.streams.depth()
    }

    /// Dead letters as of the last refresh or dead-lettering (no I/O).
    pub fn dead_letters(&self) -> u64 {
        self.streams.dead_letters()
    }

    /// The oldest `limit` dead letters and how many there are in all.
    pub async fn list_dead(&self, limit: usize) -> Result<(u64, Vec<DeadLetter>), QueueError> {
        self.streams.list_dead(limit).await
    }

    /// Move every dead letter back onto the live queue; returns how many moved.
    pub async fn requeue_dead(&self) -> Result<u64, QueueError> {
        self.streams.requeue_dead().await
    }

    /// A consumer with a stable name (stable across restarts, so it re-reads its own
    /// unacknowledged items first).
    pub fn consumer(&self, consumer_name: &str) -> Consumer {
        Consumer::new(self.streams.clone(), self.claim_idle, consumer_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_redis() -> Arc<RedisLink> {
        Arc::new(crate::redis::dead_link())
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
            None,
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
            None,
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
