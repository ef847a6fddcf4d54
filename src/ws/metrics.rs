//! The WebSocket's metrics: clients connected, messages queued per channel, clients
//! dropped per reason. Every label value is a closed set.

use prometheus::{IntCounterVec, IntGaugeVec};

use crate::events::Channel;
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// Why a client was dropped (the `reason` label of the drop counter).
    pub enum DropReason {
        /// Its queue filled up: it does not read fast enough.
        Slow = "slow",
        /// It stopped answering pings.
        Unresponsive = "unresponsive",
        /// A write to it did not finish in time.
        WriteTimeout = "write_timeout",
        /// It closed the connection (or the server is shutting down).
        Closed = "closed",
    }
}

#[derive(Clone)]
pub struct WsMetrics {
    connections: IntGaugeVec,
    messages: IntCounterVec,
    dropped: IntCounterVec,
}

impl WsMetrics {
    /// The families, with every series published at 0.
    pub fn new(m: &Metrics) -> Self {
        let me = Self {
            connections: m.gauges("websocket_connections", "WebSocket clients connected now.", &[]),
            messages: m.counters(
                "websocket_messages_sent_total",
                "Messages queued to WebSocket clients, by channel (one per client).",
                &["channel"],
            ),
            dropped: m.counters(
                "websocket_clients_dropped_total",
                "WebSocket clients disconnected, by reason (slow, unresponsive, write_timeout, closed).",
                &["reason"],
            ),
        };
        me.clients(0);
        for c in Channel::ALL {
            me.messages.with_label_values(&[c.label()]);
        }
        for r in DropReason::ALL {
            me.dropped.with_label_values(&[r.label()]);
        }
        me
    }

    pub fn clients(&self, n: usize) {
        self.connections
            .with_label_values::<&str>(&[])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn messages_sent(&self, channel: Channel, n: u64) {
        self.messages
            .with_label_values(&[channel.label()])
            .inc_by(n);
    }

    pub fn client_dropped(&self, reason: DropReason) {
        self.dropped.with_label_values(&[reason.label()]).inc();
    }
}
