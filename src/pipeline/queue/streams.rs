//! One queue's Redis streams (the live one and its dead-letter stream), the counts
//! the API reads without touching Redis, and the queue's metrics: what the producer,
//! the consumers and the dead-letter operations share.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Set when entries were handed to this instance's consumer (a lost instance's):
    /// the consumer re-reads its own pending entries at its next take.
    recheck: AtomicBool,
}

impl Streams {
    /// The streams of queue `name`; with a `scope`, those of that scope alone
    /// (`watchpost:queue:<name>:<scope>`): the detection queue of one camera root.
    pub fn new(
        name: &'static str,
        scope: Option<&str>,
        redis: Arc<RedisLink>,
        metrics: QueueMetrics,
    ) -> Self {
        let stream = match scope {
            Some(scope) => format!("watchpost:queue:{name}:{scope}"),
            None => format!("watchpost:queue:{name}"),
        };
        Self {
            name,
            dead_stream: format!("{stream}:dead"),
            stream,
            redis,
            metrics,
            depth: AtomicU64::new(0),
            dead: AtomicU64::new(0),
            recheck: AtomicBool::new(false),
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

    /// Take over what the streams `from` (and `from:dead`) hold, when they are not
    /// this queue's: the streams of the queue before it was scoped, or of this
    /// instance's earlier scope. When this queue's stream does not exist yet, the old
    /// one is renamed (atomic: its consumer group and pending entries come along);
    /// otherwise its entries are moved over in chunks (each chunk added and deleted in
    /// one transaction; a crash between chunks leaves nothing lost, at worst an
    /// entry twice, which the pipeline's writes absorb). Returns the entries moved.
    pub async fn adopt(&self, from: &str) -> Result<u64, QueueError> {
        if from == self.stream {
            return Ok(0);
        }
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        let mut moved = 0;
        for (old, new) in [
            (from.to_string(), self.stream.clone()),
            (format!("{from}:dead"), self.dead_stream.clone()),
        ] {
            let len: u64 = redis::cmd("XLEN")
                .arg(&old)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
            if len == 0 {
                continue;
            }
            let renamed: bool = redis::cmd("RENAMENX")
                .arg(&old)
                .arg(&new)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
            if renamed {
                moved += len;
                continue;
            }
            // Bounded: one pass over what was there (entries added meanwhile wait for
            // the next adoption).
            for _ in 0..=len.div_ceil(REPLAY_CHUNK as u64) {
                let reply: redis::Value = redis::cmd("XRANGE")
                    .arg(&old)
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(REPLAY_CHUNK)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                let chunk = super::reply::fields_of(&reply);
                if chunk.is_empty() {
                    break;
                }
                let mut pipe = redis::pipe();
                pipe.atomic();
                for (id, fields) in &chunk {
                    let mut add = redis::cmd("XADD");
                    add.arg(&new).arg("*");
                    for (field, value) in fields {
                        add.arg(field).arg(value);
                    }
                    pipe.add_command(add).ignore();
                    pipe.cmd("XDEL").arg(&old).arg(id).ignore();
                }
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| self.unavailable(e))?;
                moved += chunk.len() as u64;
            }
        }
        Ok(moved)
    }

    /// Whether entries were handed to this instance's consumer since it last asked.
    pub fn take_recheck(&self) -> bool {
        self.recheck.swap(false, Ordering::AcqRel)
    }

    /// Entries taken and not acknowledged, per consumer of the group.
    pub async fn pending_by_consumer(&self) -> Result<Vec<(String, u64)>, QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        let reply: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(GROUP)
            .query_async(&mut conn)
            .await;
        let reply = match reply {
            Ok(r) => r,
            // No stream or no group yet: nothing pending.
            Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
            Err(e) => return Err(self.unavailable(e)),
        };
        let redis::Value::Array(parts) = reply else {
            return Ok(Vec::new());
        };
        let Some(redis::Value::Array(consumers)) = parts.get(3) else {
            return Ok(Vec::new());
        };
        Ok(consumers
            .iter()
            .filter_map(|c| {
                let redis::Value::Array(pair) = c else {
                    return None;
                };
                let name = super::reply::text(pair.first()?)?;
                let count = super::reply::text(pair.get(1)?)?.parse().ok()?;
                Some((name, count))
            })
            .collect())
    }

    /// Hand every entry consumer `from` took and did not acknowledge to consumer `to`
    /// at once (not after the idle time), then delete `from` from the group: its
    /// pending list is empty, so nothing is dropped with it. Returns how many moved.
    pub async fn take_over(&self, from: &str, to: &str) -> Result<u64, QueueError> {
        let mut conn = self.redis.conn().await.map_err(|e| self.unavailable(e))?;
        let mut moved = 0u64;
        // Bounded: 100 rounds of 1,000 (a consumer holds a handful).
        for _ in 0..100 {
            let reply: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
                .arg(&self.stream)
                .arg(GROUP)
                .arg("-")
                .arg("+")
                .arg(1000)
                .arg(from)
                .query_async(&mut conn)
                .await;
            let ids: Vec<String> = match reply {
                Ok(redis::Value::Array(entries)) => entries
                    .iter()
                    .filter_map(|e| match e {
                        redis::Value::Array(f) => super::reply::text(f.first()?),
                        _ => None,
                    })
                    .collect(),
                Ok(_) => Vec::new(),
                Err(e) if e.code() == Some("NOGROUP") => return Ok(0),
                Err(e) => return Err(self.unavailable(e)),
            };
            if ids.is_empty() {
                break;
            }
            let mut claim = redis::cmd("XCLAIM");
            claim.arg(&self.stream).arg(GROUP).arg(to).arg(0);
            for id in &ids {
                claim.arg(id);
            }
            claim.arg("JUSTID");
            let _: redis::Value = claim
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
            moved += ids.len() as u64;
        }
        if moved > 0 {
            self.recheck.store(true, Ordering::Release);
        }
        let left: redis::Value = redis::cmd("XPENDING")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(from)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.unavailable(e))?;
        if matches!(&left, redis::Value::Array(a) if a.is_empty()) {
            let _: redis::Value = redis::cmd("XGROUP")
                .arg("DELCONSUMER")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(from)
                .query_async(&mut conn)
                .await
                .map_err(|e| self.unavailable(e))?;
        }
        Ok(moved)
    }

    /// One more item was set aside.
    pub fn one_more_dead_letter(&self) {
        let dead = self.dead.fetch_add(1, Ordering::Relaxed) + 1;
        self.metrics.dead_letters_now(dead);
    }
}
