//! The queues' metrics: depth, fallback items, item events, dead letters. Every
//! label value is a queue name (`detection`, `analysis`) or a closed set.

use prometheus::{IntCounterVec, IntGaugeVec};

use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// What happened to items of a queue (`watchpost_queue_items_total{event}`).
    pub enum QueueEvent {
        EnqueuedRedis = "enqueued_redis",
        EnqueuedFallback = "enqueued_fallback",
        /// The fallback spool was full.
        Refused = "refused",
        /// Moved from the fallback into Redis.
        Replayed = "replayed",
        /// Delivered again (taken before and not acknowledged).
        Redelivered = "redelivered",
        Acked = "acked",
        /// Moved from the dead-letter stream back onto the queue.
        Requeued = "requeued",
    }
}

closed_set! {
    /// Where a queue's fallback keeps items while Redis is away.
    pub enum FallbackStore {
        Memory = "memory",
        Disk = "disk",
    }
}

/// One queue's series.
#[derive(Clone)]
pub struct QueueMetrics {
    queue: &'static str,
    depth: IntGaugeVec,
    fallback: IntGaugeVec,
    items: IntCounterVec,
    dead: IntGaugeVec,
    dead_lettered: IntCounterVec,
    oldest: prometheus::GaugeVec,
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl QueueMetrics {
    /// The families, with `queue`'s series at 0: depth, fallback, every item event
    /// and every dead-letter reason `R`.
    pub fn new<R: Label>(m: &Metrics, queue: &'static str) -> Self {
        let me = Self {
            queue,
            depth: m.gauges(
                "queue_depth",
                "Items in a Redis queue stream, taken-but-unacknowledged ones included.",
                &["queue"],
            ),
            fallback: m.gauges(
                "queue_fallback_items",
                "Items waiting in a queue's fallback while Redis is unavailable, by store (memory mirror, disk spool).",
                &["queue", "store"],
            ),
            items: m.counters(
                "queue_items_total",
                "Queue item events: enqueued_redis, enqueued_fallback, refused, replayed, redelivered, acked, requeued.",
                &["queue", "event"],
            ),
            dead: m.gauges(
                "queue_dead_letters",
                "Items waiting in a queue's dead-letter stream (failed permanently or too often; requeue them through the API).",
                &["queue"],
            ),
            dead_lettered: m.counters(
                "queue_dead_lettered_total",
                "Items moved to a queue's dead-letter stream, by reason.",
                &["queue", "reason"],
            ),
            oldest: m.float_gauges(
                "queue_oldest_item_age_seconds",
                "Age of the oldest item in a Redis queue stream (waiting or taken and not acknowledged); 0 when it is empty.",
                &["queue"],
            ),
        };
        me.oldest_now(0.0);
        me.depth_now(0);
        me.dead_letters_now(0);
        me.fallback_now(0, 0);
        for event in QueueEvent::ALL {
            me.items.with_label_values(&[queue, event.label()]);
        }
        for r in R::all() {
            me.dead_lettered.with_label_values(&[queue, r.label()]);
        }
        me
    }

    pub fn depth_now(&self, items: u64) {
        self.depth
            .with_label_values(&[self.queue])
            .set(gauge(items));
    }

    pub fn oldest_now(&self, seconds: f64) {
        self.oldest.with_label_values(&[self.queue]).set(seconds);
    }

    pub fn dead_letters_now(&self, items: u64) {
        self.dead.with_label_values(&[self.queue]).set(gauge(items));
    }

    pub fn fallback_now(&self, memory: u64, disk: u64) {
        for (store, n) in [(FallbackStore::Memory, memory), (FallbackStore::Disk, disk)] {
            self.fallback
                .with_label_values(&[self.queue, store.label()])
                .set(gauge(n));
        }
    }

    pub fn items(&self, event: QueueEvent, n: u64) {
        self.items
            .with_label_values(&[self.queue, event.label()])
            .inc_by(n);
    }

    pub fn dead_lettered(&self, reason: impl Label) {
        self.dead_lettered
            .with_label_values(&[self.queue, reason.label()])
            .inc();
    }
}
