//! Putting items on a queue: into Redis, or into the queue's fallback while Redis is
//! away (every item appended durably to the on-disk spool and mirrored in a bounded
//! memory buffer), and replaying the fallback into Redis, in order, once it is back.

use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Mutex;

use super::error::QueueError;
use super::metrics::QueueEvent;
use super::reply::push_entry;
use super::spool::Spool;
use super::stats::FallbackStats;
use super::streams::{Streams, REPLAY_CHUNK};
use crate::redis::KvError;

/// Where an accepted item went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    Redis,
    Fallback,
}

struct Fallback {
    memory: VecDeque<String>,
    spool: Spool,
}

pub struct Producer {
    q: Arc<Streams>,
    fallback: Mutex<Fallback>,
    memory_capacity: usize,
    spool_max: u64,
    stats: Arc<FallbackStats>,
}

impl Producer {
    /// `left` is what an earlier run left in the spool (replayed first).
    pub async fn new(
        q: Arc<Streams>,
        spool: Spool,
        left: Vec<String>,
        memory_capacity: usize,
        spool_max: u64,
        stats: Arc<FallbackStats>,
    ) -> Self {
        let memory: VecDeque<String> = left.into_iter().take(memory_capacity).collect();
        let me = Self {
            q,
            fallback: Mutex::new(Fallback { memory, spool }),
            memory_capacity,
            spool_max,
            stats,
        };
        me.publish_fallback(&*me.fallback.lock().await);
        me
    }

    /// Where the fallback stands, for the degradation view and the metrics.
    fn publish_fallback(&self, fb: &Fallback) {
        let (mem, disk) = (fb.memory.len() as u64, fb.spool.len());
        self.stats.set(self.q.name, mem, disk);
        self.q.metrics.fallback_now(mem, disk);
    }

    async fn xadd(&self, payload: &str) -> Result<(), KvError> {
        let mut conn = self.q.redis.conn().await?;
        let _: String = redis::cmd("XADD")
            .arg(&self.q.stream)
            .arg("*")
            .arg("p")
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn xadd_all(&self, payloads: &[String]) -> Result<(), KvError> {
        let mut conn = self.q.redis.conn().await?;
        let mut pipe = redis::pipe();
        for p in payloads {
            push_entry(&mut pipe, &self.q.stream, p);
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
                    self.q.metrics.items(QueueEvent::EnqueuedRedis, 1);
                    return Ok(Placement::Redis);
                }
                Err(e) => {
                    tracing::warn!(queue = self.q.name, error = %e, "redis unavailable; using the fallback queue");
                }
            }
        }
        if fb.spool.len() >= self.spool_max {
            self.q.metrics.items(QueueEvent::Refused, 1);
            tracing::error!(
                queue = self.q.name,
                max = self.spool_max,
                "fallback spool full; refusing item"
            );
            return Err(QueueError::SpoolFull {
                queue: self.q.name.into(),
                max: self.spool_max,
            });
        }
        fb.spool
            .append(payload.to_string())
            .await
            .map_err(|source| self.q.spool_failed(source))?;
        if fb.memory.len() < self.memory_capacity {
            fb.memory.push_back(payload.to_string());
        }
        self.q.metrics.items(QueueEvent::EnqueuedFallback, 1);
        self.publish_fallback(&fb);
        Ok(Placement::Fallback)
    }

    /// Items waiting in the fallback.
    /// [`Producer::push`] for several items, in order: one pipelined round trip while
    /// Redis answers and nothing waits in the spool; otherwise one by one. A pipeline
    /// that failed half-way may have queued some of its items, which are then queued
    /// again: the stages are idempotent, so that costs a repeated step, not a row.
    pub async fn push_all(&self, payloads: &[String]) -> Vec<Result<Placement, QueueError>> {
        if payloads.len() > 1 {
            let fb = self.fallback.lock().await;
            if fb.spool.len() == 0 {
                match self.xadd_all(payloads).await {
                    Ok(()) => {
                        self.q
                            .metrics
                            .items(QueueEvent::EnqueuedRedis, payloads.len() as u64);
                        return payloads.iter().map(|_| Ok(Placement::Redis)).collect();
                    }
                    Err(e) => {
                        tracing::debug!(queue = self.q.name, error = %e, "pipelined push failed; pushing one by one");
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(payloads.len());
        for p in payloads {
            out.push(self.push(p).await);
        }
        out
    }

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
        self.q
            .redis
            .ping()
            .await
            .map_err(|e| self.q.unavailable(e))?;
        let items = fb
            .spool
            .read_all()
            .await
            .map_err(|source| self.q.spool_failed(source))?;
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
            .map_err(|source| self.q.spool_failed(source))?;
        self.publish_fallback(&fb);
        if sent > 0 {
            self.q.metrics.items(QueueEvent::Replayed, sent as u64);
            tracing::info!(
                queue = self.q.name,
                replayed = sent,
                left = fb.spool.len(),
                "fallback replayed into redis"
            );
        }
        match failure {
            Some(e) if sent == 0 => Err(self.q.unavailable(e)),
            _ => Ok(sent),
        }
    }
}
