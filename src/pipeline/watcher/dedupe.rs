//! Atomic "first time we see this content" with a TTL: Redis `SET NX EX` (shared by
//! every instance), or an in-memory map while Redis is unreachable.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use crate::redis::RedisLink;

/// Entries the memory fallback prunes per call, at most (so no call does a full sweep).
const PRUNE_PER_CALL: usize = 64;

pub struct Dedupe {
    redis: Arc<RedisLink>,
    ttl: Duration,
    memory: Arc<Mutex<Memory>>,
}

/// Hashes seen while Redis was away, with their insertion order for pruning.
#[derive(Default)]
struct Memory {
    seen: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl Memory {
    /// Drop a bounded number of expired entries, oldest first.
    fn prune(&mut self, now: Instant, ttl: Duration) {
        for _ in 0..PRUNE_PER_CALL {
            match self.order.front() {
                Some((at, _)) if now.duration_since(*at) >= ttl => {
                    if let Some((at, hash)) = self.order.pop_front() {
                        if self.seen.get(&hash) == Some(&at) {
                            self.seen.remove(&hash);
                        }
                    }
                }
                _ => break,
            }
        }
    }
}

impl Dedupe {
    pub fn new(redis: Arc<RedisLink>, ttl: Duration) -> Self {
        Self {
            redis,
            ttl,
            memory: Arc::new(Mutex::new(Memory::default())),
        }
    }

    /// How many hashes the memory fallback holds (for `watchpost_memory_entries`).
    pub fn memory_entries(&self) -> impl Fn() -> usize + Send + Sync + 'static {
        let memory = self.memory.clone();
        move || memory.lock().map_or(0, |m| m.seen.len())
    }

    fn key(hash: &str) -> String {
        format!("watchpost:dedupe:{hash}")
    }

    fn memory(&self) -> MutexGuard<'_, Memory> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `true` when `hash` was not seen within the TTL (and is now marked seen).
    pub async fn first_seen(&self, hash: &str) -> bool {
        self.first_seen_all(&[hash.to_string()]).await[0]
    }

    /// [`Dedupe::first_seen`] for several hashes, in order, in one round trip (a
    /// pipeline of `SET NX EX`): of two equal hashes only the first is new.
    pub async fn first_seen_all(&self, hashes: &[String]) -> Vec<bool> {
        let ttl = self.ttl.as_secs().max(1);
        if let Ok(mut conn) = self.redis.conn().await {
            let mut pipe = redis::pipe();
            for h in hashes {
                pipe.cmd("SET")
                    .arg(Self::key(h))
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl);
            }
            let set: redis::RedisResult<Vec<Option<String>>> = pipe.query_async(&mut conn).await;
            if let Ok(v) = set {
                if v.len() == hashes.len() {
                    return v.into_iter().map(|r| r.is_some()).collect();
                }
            }
        }
        let now = Instant::now();
        let mut mem = self.memory();
        mem.prune(now, self.ttl);
        hashes
            .iter()
            .map(|hash| match mem.seen.get(hash) {
                Some(at) if now.duration_since(*at) < self.ttl => false,
                _ => {
                    mem.seen.insert(hash.clone(), now);
                    mem.order.push_back((now, hash.clone()));
                    true
                }
            })
            .collect()
    }

    /// Undo `first_seen` (the file could not be queued and will be retried).
    pub async fn forget(&self, hash: &str) {
        self.memory().seen.remove(hash);
        if let Ok(mut conn) = self.redis.conn().await {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(Self::key(hash))
                .query_async(&mut conn)
                .await;
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.memory().seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead_redis() -> Arc<RedisLink> {
        Arc::new(crate::redis::dead_link())
    }

    #[tokio::test(start_paused = true)]
    async fn memory_fallback_expires_entries_a_few_at_a_time() {
        let d = Dedupe::new(dead_redis(), Duration::from_secs(300));
        assert!(d.first_seen("a").await);
        assert!(!d.first_seen("a").await, "seen within the TTL");
        for i in 0..200 {
            assert!(d.first_seen(&format!("h{i}")).await);
        }
        tokio::time::advance(Duration::from_secs(301)).await;
        assert!(d.first_seen("a").await, "expired");
        assert!(
            d.remembered() > 100,
            "one call prunes a bounded number of entries, not all"
        );
        for i in 0..10 {
            d.first_seen(&format!("x{i}")).await;
        }
        assert!(d.remembered() < 30, "later calls finish the pruning");
    }
}
