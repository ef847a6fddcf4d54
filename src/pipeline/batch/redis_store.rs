//! Batches in Redis, shared by every instance on that Redis.
//!
//! Keys: `batch:{camera_id}:current` → `<batch id>|<started_at>`, and per batch
//! `batch:{id}:camera_id`, `batch:{id}:started_at` and `batch:{id}:entries` (a list
//! of `<detection id>:<added at>`: its length is the count, its newest time the last
//! activity), each with a TTL of the window plus an hour set once, when the batch is
//! made (a batch closes within its window, so an add never refreshes them; a batch
//! that outlives its keys, its aggregator stopped for an hour, is found again from
//! PostgreSQL by `recovery.rs`). An add to an open batch is three commands: the
//! script, its `GET` of the pointer and one `RPUSH`. A detection added twice (a
//! redelivery) is listed twice and read once; it only counts twice towards
//! `max_detections`. Two indexes replace key scans: the set `batch:open` (ids of open
//! batches, maintained by the add and claim scripts) and the sorted set
//! `batch:closing` (claimed ids scored by claim time, removed once handed off).
//! Reading the open batches is one `SMEMBERS` and one pipelined read, never a `SCAN`.

use futures_util::future::BoxFuture;
use std::sync::Arc;

use super::store::{Added, BatchState, BatchStore};
use crate::redis::{Conn, RedisLink};

/// Added to the window for the TTL of a batch's keys.
const KEY_TTL_SLACK_SECONDS: u64 = 3600;
/// Set once and never expired: a Redis without it has forgotten its data.
const MARKER: &str = "pipeline:marker";
const OPEN_INDEX: &str = "batch:open";
const CLOSING_INDEX: &str = "batch:closing";
/// A claimed batch not handed off after this long is an orphan.
const ORPHAN_AFTER_SECONDS: f64 = 10.0;

/// Add a detection atomically; create the batch (and index it) if the camera has
/// none. Returns the batch id, its count and its start.
const ADD_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
local entry = ARGV[4] .. ':' .. ARGV[3]
if not cur then
  local id = ARGV[1]
  local list = 'batch:' .. id .. ':entries'
  redis.call('SET', KEYS[1], id .. '|' .. ARGV[3], 'EX', ARGV[5])
  redis.call('SET', 'batch:' .. id .. ':camera_id', ARGV[2], 'EX', ARGV[5])
  redis.call('SET', 'batch:' .. id .. ':started_at', ARGV[3], 'EX', ARGV[5])
  redis.call('SADD', 'batch:open', id)
  redis.call('RPUSH', list, entry)
  redis.call('EXPIRE', list, ARGV[5])
  return {id, 1, ARGV[3]}
end
local sep = string.find(cur, '|', 1, true)
if not sep then
  -- A pointer an older version wrote (the id alone): made in the current form.
  local started = redis.call('GET', 'batch:' .. cur .. ':started_at') or ARGV[3]
  redis.call('SET', KEYS[1], cur .. '|' .. started, 'KEEPTTL')
  cur = cur .. '|' .. started
  sep = string.find(cur, '|', 1, true)
end
local id = string.sub(cur, 1, sep - 1)
local n = redis.call('RPUSH', 'batch:' .. id .. ':entries', entry)
return {id, n, string.sub(cur, sep + 1)}
";

/// Claim: whoever removes the id from the open index wins; the batch is detached from
/// its camera and recorded as closing.
const CLAIM_SCRIPT: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and (cur == ARGV[1] or string.sub(cur, 1, #ARGV[1] + 1) == ARGV[1] .. '|') then
  redis.call('DEL', KEYS[1])
end
if redis.call('SREM', 'batch:open', ARGV[1]) == 1 then
  redis.call('ZADD', 'batch:closing', ARGV[2], ARGV[1])
  return 1
end
return 0
";

/// Re-claim an orphan: only if it is still closing and its claim is older than the
/// cutoff (so two instances do not take it at once).
const RECLAIM_SCRIPT: &str = r"
local at = redis.call('ZSCORE', 'batch:closing', ARGV[1])
if at and tonumber(at) <= tonumber(ARGV[2]) then
  redis.call('ZADD', 'batch:closing', ARGV[3], ARGV[1])
  return 1
end
return 0
";

pub struct RedisStore {
    redis: Arc<RedisLink>,
    /// The TTL of a new batch's keys.
    key_ttl_seconds: u64,
    /// Camera and start of the batches read or made here (they never change while a
    /// batch lives), so a later read fetches only its entries.
    known: std::sync::Mutex<std::collections::HashMap<String, (String, f64)>>,
}

/// The most batches `known` remembers (open batches are far fewer; past it, it
/// starts again).
const KNOWN_MAX: usize = 4096;

impl RedisStore {
    pub fn new(redis: Arc<RedisLink>, window_seconds: f64) -> Self {
        Self {
            redis,
            key_ttl_seconds: window_seconds.max(0.0).ceil() as u64 + KEY_TTL_SLACK_SECONDS,
            known: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (String, f64)>> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, id: &str, camera: &str, started_at: f64) {
        let mut k = self.known();
        if k.len() >= KNOWN_MAX && !k.contains_key(id) {
            k.clear();
        }
        k.insert(id.to_string(), (camera.to_string(), started_at));
    }

    async fn conn(&self) -> Result<Conn, String> {
        self.redis.conn().await.map_err(|e| e.to_string())
    }

    /// The marker this Redis holds (`pipeline:marker`); `None` when it holds none
    /// (a Redis that forgot its data, or one never marked).
    pub async fn marker(&self) -> Result<Option<String>, String> {
        let mut conn = self.conn().await?;
        redis::cmd("GET")
            .arg(MARKER)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    /// Mark this Redis with `value` unless it is marked already (no expiry: the mark
    /// lives as long as Redis's data); the mark it holds afterwards.
    pub async fn mark(&self, value: &str) -> Result<String, String> {
        let mut conn = self.conn().await?;
        let (mark,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(MARKER)
            .arg(value)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(MARKER)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(mark)
    }

    /// Read batches by id, in one round trip; `None` for an id whose keys are gone.
    async fn read(&self, ids: &[String]) -> Result<Vec<(String, Option<BatchState>)>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await?;
        let known: Vec<Option<(String, f64)>> = {
            let k = self.known();
            ids.iter().map(|id| k.get(id).cloned()).collect()
        };
        let mut pipe = redis::pipe();
        for (id, k) in ids.iter().zip(&known) {
            if k.is_none() {
                pipe.get(format!("batch:{id}:camera_id"))
                    .get(format!("batch:{id}:started_at"));
            }
            pipe.lrange(format!("batch:{id}:entries"), 0, -1);
        }
        let values: Vec<redis::Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let mut values = values.into_iter();
        let mut next = || values.next().unwrap_or(redis::Value::Nil);
        let mut out = Vec::with_capacity(ids.len());
        for (id, k) in ids.iter().zip(known) {
            let meta = match k {
                Some(m) => Some(m),
                None => {
                    let camera: Option<String> = redis::FromRedisValue::from_redis_value(next())
                        .map_err(|e| e.to_string())?;
                    let started: Option<f64> = redis::FromRedisValue::from_redis_value(next())
                        .map_err(|e| e.to_string())?;
                    camera.zip(started)
                }
            };
            let entries: Vec<String> =
                redis::FromRedisValue::from_redis_value(next()).map_err(|e| e.to_string())?;
            // A live batch has at least the entry that made it: none means its keys
            // are gone.
            let state = match meta {
                Some((camera_id, started_at)) if !entries.is_empty() => {
                    self.remember(id, &camera_id, started_at);
                    let (detections, last) = parse_entries(&entries);
                    Some(BatchState {
                        batch_id: id.clone(),
                        camera_id,
                        detections,
                        started_at,
                        last_activity: last.unwrap_or(started_at).max(started_at),
                    })
                }
                _ => {
                    self.known().remove(id);
                    None
                }
            };
            out.push((id.clone(), state));
        }
        Ok(out)
    }
}

/// A batch's entries (`<detection id>:<added at>`): its detections, sorted and each
/// once, and the time of its newest add. An entry that does not parse is skipped.
fn parse_entries(entries: &[String]) -> (Vec<i64>, Option<f64>) {
    let mut detections = Vec::with_capacity(entries.len());
    let mut last: Option<f64> = None;
    for e in entries {
        let Some((d, at)) = e.split_once(':') else {
            continue;
        };
        let (Ok(d), Ok(at)) = (d.parse::<i64>(), at.parse::<f64>()) else {
            continue;
        };
        detections.push(d);
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    detections.sort_unstable();
    detections.dedup();
    (detections, last)
}

impl RedisStore {
    /// [`BatchStore::add`] for several detections, in order, in one round trip (a
    /// pipeline of the add script). `Err` when the pipeline failed (the script not
    /// loaded yet, Redis away): some adds may have run, and adding them again lists
    /// those detections twice, which reads as once.
    pub async fn add_all(&self, items: &[(&str, i64)], now: f64) -> Result<Vec<Added>, String> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for (camera_id, detection_id) in items {
            pipe.invoke_script(&self.add_invocation(camera_id, *detection_id, now));
        }
        let replies: Vec<AddReply> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        Ok(items
            .iter()
            .zip(replies)
            .map(|((camera_id, _), reply)| self.added(camera_id, reply))
            .collect())
    }

    /// The add script's call for one detection (a new batch's id made in case the
    /// camera has none).
    fn add_invocation(
        &self,
        camera_id: &str,
        detection_id: i64,
        now: f64,
    ) -> redis::ScriptInvocation<'static> {
        let mut invocation = ADD.key(format!("batch:{camera_id}:current"));
        invocation
            .arg(uuid::Uuid::new_v4().to_string())
            .arg(camera_id)
            .arg(now)
            .arg(detection_id)
            .arg(self.key_ttl_seconds);
        invocation
    }

    /// What the add script answered, with the batch's camera and start remembered.
    fn added(&self, camera_id: &str, (batch_id, count, started_at): AddReply) -> Added {
        self.remember(&batch_id, camera_id, started_at);
        Added {
            batch_id,
            count,
            started_at,
        }
    }
}

/// The add script's answer: the batch id, its count and its start.
type AddReply = (String, usize, f64);

/// The add script, hashed once.
static ADD: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(ADD_SCRIPT));

impl BatchStore for RedisStore {
    fn add<'a>(
        &'a self,
        camera_id: &'a str,
        detection_id: i64,
        now: f64,
    ) -> BoxFuture<'a, Result<Added, String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let reply: AddReply = self
                .add_invocation(camera_id, detection_id, now)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Ok(self.added(camera_id, reply))
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<Vec<BatchState>, String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let ids: Vec<String> = redis::cmd("SMEMBERS")
                .arg(OPEN_INDEX)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let mut open = Vec::with_capacity(ids.len());
            for (id, state) in self.read(&ids).await? {
                match state {
                    Some(s) => open.push(s),
                    None => {
                        // Its keys expired (no activity for an hour while no instance
                        // ran): nothing is left to hand off.
                        let _: redis::RedisResult<()> = redis::cmd("SREM")
                            .arg(OPEN_INDEX)
                            .arg(&id)
                            .query_async(&mut conn)
                            .await;
                    }
                }
            }
            Ok(open)
        })
    }

    fn claim<'a>(
        &'a self,
        batch: &'a BatchState,
        now: f64,
    ) -> BoxFuture<'a, Result<Option<BatchState>, String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let won: i64 = redis::Script::new(CLAIM_SCRIPT)
                .key(format!("batch:{}:current", batch.camera_id))
                .arg(&batch.batch_id)
                .arg(now)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            if won == 0 {
                return Ok(None);
            }
            // Re-read: detections added between the listing and the claim count too.
            match self.read(std::slice::from_ref(&batch.batch_id)).await {
                Ok(mut v) => Ok(v.pop().and_then(|(_, s)| s)),
                // Claimed but unreadable now: the orphan sweep will hand it off.
                Err(e) => Err(e),
            }
        })
    }

    fn release(&self, _batch: BatchState) -> BoxFuture<'_, Result<(), String>> {
        // It stays in the closing index; the orphan sweep retries it.
        Box::pin(async { Ok(()) })
    }

    fn finish<'a>(&'a self, batch_id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.known().remove(batch_id);
            let mut conn = self.conn().await?;
            redis::pipe()
                .atomic()
                .del(&[
                    format!("batch:{batch_id}:camera_id"),
                    format!("batch:{batch_id}:entries"),
                    format!("batch:{batch_id}:started_at"),
                    // Written by older versions; gone with the batch all the same.
                    format!("batch:{batch_id}:detections"),
                    format!("batch:{batch_id}:last_activity"),
                ])
                .ignore()
                .zrem(CLOSING_INDEX, batch_id)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn orphans(&self, now: f64) -> BoxFuture<'_, Result<Vec<BatchState>, String>> {
        Box::pin(async move {
            let mut conn = self.conn().await?;
            let cutoff = now - ORPHAN_AFTER_SECONDS;
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(CLOSING_INDEX)
                .arg("-inf")
                .arg(cutoff)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            let mut mine = Vec::new();
            for id in ids {
                let won: i64 = redis::Script::new(RECLAIM_SCRIPT)
                    .arg(&id)
                    .arg(cutoff)
                    .arg(now)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                if won == 1 {
                    mine.push(id);
                }
            }
            let mut out = Vec::new();
            for (id, state) in self.read(&mine).await? {
                match state {
                    Some(s) => out.push(s),
                    None => {
                        let _: redis::RedisResult<()> = redis::cmd("ZREM")
                            .arg(CLOSING_INDEX)
                            .arg(&id)
                            .query_async(&mut conn)
                            .await;
                    }
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_entries;

    #[test]
    fn entries_give_each_detection_once_and_the_newest_add() {
        let e: Vec<String> = ["7:100.5", "3:101", "7:102.25", "bad", "x:1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(parse_entries(&e), (vec![3, 7], Some(102.25)));
        assert_eq!(parse_entries(&[]), (vec![], None));
    }
}
