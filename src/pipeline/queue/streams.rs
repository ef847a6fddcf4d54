//! One queue's Redis streams (the live one and its dead-letter stream), the counts
//! the API reads without touching Redis, and the queue's metrics: what the producer,
//! the consumers and the dead-letter operations share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::error::QueueError;
use super::metrics::QueueMetrics;
use crate::redis::RedisLink;

/// The consumer group every instance's consumers join.
pub const GROUP: &str = "watchpost";
/// Items sent to Redis per round trip when a fallback is replayed or dead letters are
/// requeued.
pub const REPLAY_CHUNK: usize = 500;

pub struct Streams {
    pub name: &'static str,
    pub stream: String,
    pub dead_stream: String,
    pub redis: Arc<RedisLink>,
    pub metrics: QueueMetrics,
    /// Items in the stream and in the dead-letter stream, as of the replayer's last
    /// look (read by the API without touching Redis).
    depth: AtomicU64,
    dead: AtomicU64,
}

impl Streams {
    pub fn new(name: &'static str, redis: Arc<RedisLink>, metrics: QueueMetrics) -> Self {
        Self {
            name,
            stream: format!("watchpost:queue:{name}"),
            dead_stream: format!("watchpost:queue:{name}:dead"),
            redis,
            metrics,
            depth: AtomicU64::new(0),
            dead: AtomicU64::new(0),
        }
    }

    pub fn unavailable(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::Unavailable {
            queue: self.name.into(),
            why: e.to_string(),
        }
    }

    pub fn spool_failed(&self, source: std::io::Error) -> QueueError {
        QueueError::Spool {
            queue: self.name.into(),
            source,
        }
    }

    /// Refresh the depth of the stream (taken-but-unacknowledged included), and with
    /// `dead` that of its dead letters; `None` if Redis is down (the last values stay).
    pub async fn refresh_depth(&self, dead: bool) -> Option<u64> {
        let mut conn = self.redis.conn().await.ok()?;
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(&self.stream);
        if dead {
            pipe.cmd("XLEN").arg(&self.dead_stream);
        }
        let lens: Vec<u64> = pipe.query_async(&mut conn).await.ok()?;
        let n = lens.first().copied().unwrap_or(0);
        self.depth.store(n, Ordering::Relaxed);
        self.metrics.depth_now(n);
        // The oldest item's age from its id (`<ms>-<seq>`), asked only when there is
        // one: an idle queue costs no extra command.
        let oldest = if n == 0 {
            Some(0.0)
        } else {
            let first: Option<redis::streams::StreamRangeReply> = redis::cmd("XRANGE")
                .arg(&self.stream)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .ok();
            first.and_then(|f| {
                let id = f.ids.first()?.id.clone();
                let ms: i64 = id.split('-').next()?.parse().ok()?;
                let now = crate::time::now().timestamp_millis();
                Some(((now - ms).max(0) as f64) / 1000.0)
            })
        };
        if let Some(age) = oldest {
            self.metrics.oldest_now(age);
        }
        if let Some(d) = lens.get(1) {
            self.dead_letters_now(*d);
        }
        Some(n)
    }

    /// Items in the stream as of the last refresh (no I/O).
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// Dead letters as of the last refresh or dead-lettering (no I/O).
    pub fn dead_letters(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    pub fn dead_letters_now(&self, n: u64) {
        self.dead.store(n, Ordering::Relaxed);
        self.metrics.dead_letters_now(n);
    }

    /// One more item was set aside.
    pub fn one_more_dead_letter(&self) {
        let dead = self.dead.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.dead_letters_now(dead);
    }
}
