//! The WebSocket hub: the connected clients, their channel subscriptions, and the
//! fan-out of messages to them. Each client has a bounded queue; a client whose queue
//! is full (it stopped reading, or reads slower than events arrive) is dropped instead
//! of slowing the others. A message is serialised once and shared by every client.
//!
//! Transport-free: the HTTP edge (`api/ws.rs`) owns the socket, pings and timeouts,
//! and feeds client text into [`Connection::handle_text`].

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

use crate::events::{Channel, Envelope, Event, SystemError, SystemSubscribed};
use crate::prom::{Label, Metrics};

/// Largest client message accepted.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

/// Why a client was dropped (the `reason` label of the drop counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its queue filled up: it does not read fast enough.
    Slow,
    /// It stopped answering pings.
    Unresponsive,
    /// A write to it did not finish in time.
    WriteTimeout,
    /// It closed the connection (or the server is shutting down).
    Closed,
}

impl Label for DropReason {
    fn label(self) -> &'static str {
        match self {
            Self::Slow => "slow",
            Self::Unresponsive => "unresponsive",
            Self::WriteTimeout => "write_timeout",
            Self::Closed => "closed",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Slow,
            Self::Unresponsive,
            Self::WriteTimeout,
            Self::Closed,
        ]
    }
}

struct Client {
    tx: mpsc::Sender<Arc<str>>,
    channels: HashSet<Channel>,
}

pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    /// Why each recently dropped client was dropped (read by its connection).
    dropped: Mutex<HashMap<u64, DropReason>>,
    next_id: AtomicU64,
    buffer: usize,
    metrics: Arc<Metrics>,
}

/// One connected client, as its socket task holds it. Dropping it unregisters it.
pub struct Connection {
    id: u64,
    hub: Arc<Hub>,
    /// Messages to send, in order; `None` once the hub dropped this client.
    pub rx: mpsc::Receiver<Arc<str>>,
}

#[derive(Deserialize)]
struct ClientMessage {
    action: String,
    #[serde(default)]
    channels: Vec<String>,
}

impl Hub {
    /// `buffer`: messages queued per client before it counts as slow.
    pub fn new(buffer: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        metrics.websocket_known::<Channel, DropReason>();
        Arc::new(Self {
            clients: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            buffer: buffer.max(1),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn client_count(&self) -> usize {
        self.lock().len()
    }

    /// Register a new client (subscribed to nothing yet).
    pub fn connect(self: &Arc<Self>) -> Connection {
        let (tx, rx) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let count = {
            let mut clients = self.lock();
            clients.insert(
                id,
                Client {
                    tx,
                    channels: HashSet::new(),
                },
            );
            clients.len()
        };
        self.metrics.websocket_clients(count);
        Connection {
            id,
            hub: Arc::clone(self),
            rx,
        }
    }

    /// Send an event to every client subscribed to its channel.
    pub fn publish(&self, envelope: &Envelope) {
        self.deliver(envelope.channel(), Arc::from(envelope.to_json()));
    }

    /// Send an already serialised message to every client subscribed to `channel`;
    /// a client whose queue is full is dropped.
    pub fn deliver(&self, channel: Channel, text: Arc<str>) {
        let mut slow = Vec::new();
        let mut sent = 0u64;
        {
            let clients = self.lock();
            for (id, c) in clients
                .iter()
                .filter(|(_, c)| c.channels.contains(&channel))
            {
                match c.tx.try_send(Arc::clone(&text)) {
                    Ok(()) => sent += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        if sent > 0 {
            self.metrics.websocket_messages_sent(channel, sent);
        }
        for id in slow {
            tracing::warn!(
                client = id,
                "dropping a WebSocket client that does not keep up"
            );
            self.drop_client(id, DropReason::Slow);
        }
    }

    /// Disconnect a client (its connection sees its queue end).
    pub fn drop_client(&self, id: u64, reason: DropReason) {
        let removed = {
            let mut clients = self.lock();
            let removed = clients.remove(&id).is_some();
            (removed, clients.len())
        };
        if removed.0 {
            self.dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, reason);
            self.metrics.websocket_client_dropped(reason);
            self.metrics.websocket_clients(removed.1);
        }
    }

    fn set_channels(&self, id: u64, update: impl FnOnce(&mut HashSet<Channel>)) -> Vec<String> {
        let mut clients = self.lock();
        match clients.get_mut(&id) {
            Some(c) => {
                update(&mut c.channels);
                let mut names: Vec<String> = Channel::ALL
                    .iter()
                    .filter(|ch| c.channels.contains(ch))
                    .map(|ch| ch.as_str().to_string())
                    .collect();
                names.shrink_to_fit();
                names
            }
            None => Vec::new(),
        }
    }
}

fn reply(event: Event) -> Arc<str> {
    Arc::from(Envelope::new(event).to_json())
}

fn error(code: &str, message: String) -> Arc<str> {
    reply(Event::SystemError(SystemError {
        code: code.into(),
        message,
    }))
}

impl Connection {
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Act on one text message from the client; the answer to send back (a
    /// `system.subscribed` or a `system.error`, never a disconnect).
    pub fn handle_text(&self, text: &str) -> Arc<str> {
        if text.len() > MAX_CLIENT_MESSAGE_BYTES {
            return error(
                "message_too_large",
                format!("Messages are limited to {MAX_CLIENT_MESSAGE_BYTES} bytes"),
            );
        }
        let msg: ClientMessage = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                return error(
                    "invalid_json",
                    format!("Expected {{\"action\": \"subscribe\"|\"unsubscribe\", \"channels\": [...]}}: {e}"),
                )
            }
        };
        let subscribe = match msg.action.as_str() {
            "subscribe" => true,
            "unsubscribe" => false,
            other => {
                return error(
                    "unknown_action",
                    format!(
                        "Unknown action '{}'; use subscribe or unsubscribe",
                        other.escape_debug()
                    ),
                )
            }
        };
        let mut channels = Vec::with_capacity(msg.channels.len());
        for name in &msg.channels {
            match Channel::parse(name) {
                Some(c) => channels.push(c),
                None => {
                    let valid: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
                    return error(
                        "unknown_channel",
                        format!(
                            "Unknown channel '{}'; valid channels: {}",
                            name.escape_debug(),
                            valid.join(", ")
                        ),
                    );
                }
            }
        }
        let now = self.hub.set_channels(self.id, |set| {
            for c in channels {
                if subscribe {
                    set.insert(c);
                } else {
                    set.remove(&c);
                }
            }
        });
        reply(Event::SystemSubscribed(SystemSubscribed { channels: now }))
    }

    /// Why the hub dropped this client, once its queue has ended.
    pub fn drop_reason(&self) -> Option<DropReason> {
        self.hub
            .dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&self.id)
            .copied()
    }

    /// The socket task ends this client for `reason`.
    pub fn end(&self, reason: DropReason) {
        self.hub.drop_client(self.id, reason);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.drop_client(self.id, DropReason::Closed);
        self.hub
            .dropped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::CameraStatusChanged;

    fn camera() -> Envelope {
        Envelope::new(Event::CameraStatusChanged(CameraStatusChanged {
            camera_id: "porch".into(),
            status: "online".into(),
            folder: "Porch".into(),
        }))
    }

    #[tokio::test]
    async fn only_subscribers_of_a_channel_receive_it() {
        let hub = Hub::new(8, Arc::new(Metrics::new()));
        let mut cams = hub.connect();
        let mut sys = hub.connect();
        let ack = cams.handle_text(r#"{"action":"subscribe","channels":["cameras"]}"#);
        assert!(ack.contains("system.subscribed") && ack.contains("cameras"));
        sys.handle_text(r#"{"action":"subscribe","channels":["system"]}"#);
        hub.publish(&camera());
        assert!(cams
            .rx
            .try_recv()
            .expect("delivered")
            .contains("camera.status_changed"));
        assert!(sys.rx.try_recv().is_err(), "not subscribed to cameras");
        cams.handle_text(r#"{"action":"unsubscribe","channels":["cameras"]}"#);
        hub.publish(&camera());
        assert!(cams.rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn bad_messages_get_an_error_reply_not_a_disconnect() {
        let hub = Hub::new(8, Arc::new(Metrics::new()));
        let c = hub.connect();
        for (text, code) in [
            ("not json", "invalid_json"),
            (r#"{"action":"dance","channels":[]}"#, "unknown_action"),
            (
                r#"{"action":"subscribe","channels":["weather"]}"#,
                "unknown_channel",
            ),
        ] {
            let r = c.handle_text(text);
            assert!(r.contains("system.error") && r.contains(code), "{r}");
        }
        assert!(c
            .handle_text(&"x".repeat(5000))
            .contains("message_too_large"));
        assert_eq!(hub.client_count(), 1, "still connected");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_and_the_others_keep_receiving() {
        let hub = Hub::new(4, Arc::new(Metrics::new()));
        let stuck = hub.connect();
        let mut reader = hub.connect();
        for c in [&stuck, &reader] {
            c.handle_text(r#"{"action":"subscribe","channels":["cameras"]}"#);
        }
        let mut received = 0;
        for _ in 0..20 {
            hub.publish(&camera());
            while reader.rx.try_recv().is_ok() {
                received += 1;
            }
        }
        assert_eq!(received, 20, "the reading client got everything");
        assert_eq!(stuck.drop_reason(), Some(DropReason::Slow));
        assert_eq!(hub.client_count(), 1);
    }
}
