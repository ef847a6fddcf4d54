//! Taking items from a queue: a consumer in the group re-reads its own
//! unacknowledged items first, claims items other consumers abandoned, then reads new
//! ones; it acknowledges an item when done, keeps its claim fresh while working on
//! it, or sets it aside as a dead letter.
//!
//! A consumer may read several new items at once (`with_read_count`, for a fast
//! stage): they wait in a local buffer, their claims kept fresh with the item in hand,
//! and their acknowledgements are gathered and sent as one `XACK` and one `XDEL` when
//! the buffer is empty (or full of acknowledgements), so a burst costs three commands
//! per read instead of three per item. An acknowledgement not sent yet when the
//! process dies means that item comes again: the stages are idempotent.

use redis::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::dead::DeadReason;
use super::error::QueueError;
use super::metrics::QueueEvent;
use super::reply::{entries, read_reply_entries};
use super::streams::{Streams, GROUP};
use crate::names::Label;

/// How long one blocking read waits for new items (an idle consumer costs one read
/// per period; the abandoned-item check runs between reads).
const READ_BLOCK: Duration = Duration::from_secs(2);
/// How often a consumer looks for entries abandoned by other consumers: half the idle
/// time after which an entry counts as abandoned, within these bounds.
const CLAIM_EVERY_MIN: Duration = Duration::from_millis(100);
const CLAIM_EVERY_MAX: Duration = Duration::from_secs(5);

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

pub struct Consumer {
    queue: Arc<Streams>,
    claim_idle: Duration,
    name: String,
    conn: Option<redis::aio::MultiplexedConnection>,
    own_pending_checked: bool,
    last_claim: Option<Instant>,
    /// New items read at once.
    read_count: usize,
    /// Items read and not handed out yet.
    buffer: std::collections::VecDeque<Delivery>,
    /// Finished items whose acknowledgement is not sent yet.
    acks: Vec<String>,
}

impl Consumer {
    /// A consumer with a stable name (stable across restarts, so it re-reads its own
    /// unacknowledged items first).
    pub fn new(queue: Arc<Streams>, claim_idle: Duration, name: &str) -> Self {
        Self {
            queue,
            claim_idle,
            name: name.to_string(),
            conn: None,
            own_pending_checked: false,
            last_claim: None,
            read_count: 1,
            buffer: std::collections::VecDeque::new(),
            acks: Vec::new(),
        }
    }

    /// Read up to `n` new items at once (1: one at a time, acknowledged at once).
    pub fn with_read_count(mut self, n: usize) -> Self {
        self.read_count = n.max(1);
        self
    }

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
        // Re-read from Redis with the rest of the own pending entries.
        self.buffer.clear();
        self.queue.unavailable(e)
    }

    /// `XREADGROUP GROUP g <me> COUNT 1 [BLOCK ms] STREAMS <stream> <id>`: `0` reads
    /// this consumer's own pending entries, `>` new ones.
    fn read_group(&self, block: Option<Duration>, id: &str, count: usize) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(count);
        if let Some(b) = block {
            cmd.arg("BLOCK").arg(b.as_millis() as u64);
        }
        cmd.arg("STREAMS").arg(&self.queue.stream).arg(id);
        cmd
    }

    /// The next item: own unacknowledged ones first, then abandoned ones, then new ones
    /// (waiting up to `READ_BLOCK`). `Ok(None)` when there is nothing to do.
    pub async fn take(&mut self) -> Result<Option<Delivery>, QueueError> {
        if let Some(d) = self.buffer.pop_front() {
            return Ok(Some(d));
        }
        self.flush_acks().await?;
        let mut conn = self.conn().await?;
        let stream = self.queue.stream.clone();
        // Entries of a lost instance were handed to this consumer: read them now.
        if self.queue.take_recheck() {
            self.own_pending_checked = false;
        }
        if !self.own_pending_checked {
            let reply: redis::RedisResult<Value> =
                self.read_group(None, "0", 1).query_async(&mut conn).await;
            let reply = reply.map_err(|e| self.forget_connection(e))?;
            match read_reply_entries(&reply).into_iter().next() {
                Some((id, Some(payload))) => {
                    return Ok(Some(self.redelivery(&mut conn, id, payload).await));
                }
                Some((id, None)) => {
                    // The entry was deleted after we took it; acknowledge and move on.
                    self.ack(&id).await?;
                    return Ok(None);
                }
                None => self.own_pending_checked = true,
            }
        }
        let claim_every = (self.claim_idle / 2).clamp(CLAIM_EVERY_MIN, CLAIM_EVERY_MAX);
        if self.last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
            self.last_claim = Some(Instant::now());
            let idle_ms = self.claim_idle.as_millis() as u64;
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
                    return Ok(Some(self.redelivery(&mut conn, id, payload).await));
                }
            }
        }
        let reply: redis::RedisResult<Value> = self
            .read_group(Some(READ_BLOCK), ">", self.read_count)
            .query_async(&mut conn)
            .await;
        let reply = reply.map_err(|e| self.forget_connection(e))?;
        for (id, p) in read_reply_entries(&reply) {
            match p {
                Some(payload) => self.buffer.push_back(Delivery {
                    id,
                    payload,
                    redelivered: false,
                    deliveries: 1,
                }),
                // Deleted after it was read: nothing to do but acknowledge it.
                None => self.acks.push(id),
            }
        }
        Ok(self.buffer.pop_front())
    }

    /// Send the gathered acknowledgements: one `XACK` and one `XDEL` for them all.
    /// Kept for the next call when Redis does not answer.
    pub async fn flush_acks(&mut self) -> Result<(), QueueError> {
        if self.acks.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let stream = self.queue.stream.clone();
        let res: redis::RedisResult<()> = finish(&mut redis::pipe(), &stream, &self.acks)
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        self.queue
            .metrics
            .items(QueueEvent::Acked, self.acks.len() as u64);
        self.acks.clear();
        Ok(())
    }

    /// An item delivered before and not acknowledged (this consumer's own, or one
    /// it claimed), with the delivery count Redis keeps for it.
    async fn redelivery(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        id: String,
        payload: String,
    ) -> Delivery {
        self.queue.metrics.items(QueueEvent::Redelivered, 1);
        let deliveries = self.delivery_count(conn, &id).await;
        Delivery {
            id,
            payload,
            redelivered: true,
            deliveries,
        }
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
        let mut pipe = redis::pipe();
        pipe.atomic()
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
            .ignore();
        let res: redis::RedisResult<()> = finish(&mut pipe, &stream, &delivery.id)
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        self.queue.one_more_dead_letter();
        self.queue.metrics.dead_lettered(reason);
        tracing::error!(queue = self.queue.name, item = %delivery.id, reason = reason.label(), detail = ?detail, "item moved to the dead-letter stream; requeue it with POST /api/system/pipeline/dead-letters/{}/requeue once fixed", self.queue.name);
        Ok(())
    }

    /// Keep an item in hand: `XCLAIM … 0 <id> JUSTID` resets its idle time (without
    /// counting a delivery), so no other consumer's `XAUTOCLAIM` takes it over while
    /// this one is still working on it.
    pub async fn keep_claim(&mut self, id: &str) -> Result<(), QueueError> {
        self.keep_claims(id, &[]).await
    }

    /// [`Consumer::keep_claim`] for `id`, the buffered items and `also` (items the
    /// stage still holds after they left the buffer).
    pub async fn keep_claims(&mut self, id: &str, also: &[String]) -> Result<(), QueueError> {
        let mut conn = self.conn().await?;
        let buffered: Vec<&str> = self
            .buffer
            .iter()
            .map(|d| d.id.as_str())
            .chain(also.iter().map(String::as_str))
            .collect();
        let res: redis::RedisResult<Value> = redis::cmd("XCLAIM")
            .arg(&self.queue.stream)
            .arg(GROUP)
            .arg(&self.name)
            .arg(0)
            .arg(id)
            // The items waiting in the buffer are this consumer's too.
            .arg(&buffered)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await;
        res.map_err(|e| self.forget_connection(e))?;
        Ok(())
    }

    /// How often an item in hand must have its claim refreshed.
    pub fn claim_refresh(&self) -> Duration {
        (self.claim_idle / 3).max(CLAIM_EVERY_MIN)
    }

    /// Acknowledge and delete an item: it will not be delivered again. Sent at once
    /// when reading one at a time; otherwise gathered (see the module's comment).
    pub async fn ack(&mut self, id: &str) -> Result<(), QueueError> {
        self.ack_all(std::iter::once(id.to_string())).await
    }

    /// [`Consumer::ack`] for several items. All are kept for the next flush even when
    /// this one fails.
    pub async fn ack_all(
        &mut self,
        ids: impl IntoIterator<Item = String>,
    ) -> Result<(), QueueError> {
        for id in ids {
            if !self.acks.contains(&id) {
                self.acks.push(id);
            }
        }
        if self.read_count == 1 || self.acks.len() >= self.read_count {
            self.flush_acks().await?;
        }
        Ok(())
    }

    /// Items read and not handed out yet.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The items read and not handed out yet, in order.
    pub fn buffered_items(&self) -> impl Iterator<Item = &Delivery> {
        self.buffer.iter()
    }
}

/// Append to `pipe` the acknowledgement and deletion of `ids` on `stream`: a finished
/// item is never delivered again, and the stream does not keep it.
fn finish<'p>(
    pipe: &'p mut redis::Pipeline,
    stream: &str,
    ids: impl redis::ToRedisArgs + Copy,
) -> &'p mut redis::Pipeline {
    pipe.cmd("XACK")
        .arg(stream)
        .arg(GROUP)
        .arg(ids)
        .ignore()
        .cmd("XDEL")
        .arg(stream)
        .arg(ids)
        .ignore()
}
