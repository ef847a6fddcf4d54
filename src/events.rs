//! The internal event bus: domain code publishes typed events (`worker.status_changed`,
//! `circuit_breaker.state_changed`, …) here; the WebSocket layer relays them to
//! clients. Publishing never blocks and never fails: with no subscriber the event is
//! simply not delivered, and a slow subscriber lags (it is the subscriber's job to
//! notice `RecvError::Lagged`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

/// Capacity of the broadcast ring; a subscriber more than this many events behind lags.
const BUS_CAPACITY: usize = 1024;

/// One event as the WebSocket layer will send it: `{"type","channel","data","timestamp"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub event_type: &'static str,
    pub channel: &'static str,
    pub data: serde_json::Value,
    pub timestamp: DateTime<Utc>,
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(BUS_CAPACITY);
        Self { tx }
    }

    pub fn publish(
        &self,
        event_type: &'static str,
        channel: &'static str,
        data: serde_json::Value,
    ) {
        // `send` only fails when nobody listens, which is fine.
        let _ = self.tx.send(Event {
            event_type,
            channel,
            data,
            timestamp: crate::time::now(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
