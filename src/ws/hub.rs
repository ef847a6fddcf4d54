//! The WebSocket hub: the connected clients, their channel subscriptions, and the
//! fan-out of messages to them. Each client has a bounded queue; a client whose queue
//! is full (it stopped reading, or reads slower than events arrive) is dropped instead
//! of slowing the others. A message is serialised once and shared by every client.
//!
//! Open connections are counted by [`Admission`]s, not by registrations: the edge
//! takes one before the upgrade and holds it for as long as the connection is open,
//! so `websocket.max_clients` bounds sockets, tasks and memory even while a dropped
//! client's connection is still being torn down. A client the hub drops is also told
//! at once (its [`Connection::kicked`] token), so its socket task stops whatever
//! write it is waiting on.
//!
//! Transport-free: the HTTP edge (`api/ws.rs`) owns the socket, pings and timeouts,
//! and feeds client text into [`Connection::handle_text`]; [`Liveness`] is its ping
//! rule.

use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use super::metrics::DropReason;
use super::metrics::WsMetrics;
use crate::events::{Channel, Envelope, Event, SystemError, SystemSubscribed};
use crate::prom::Metrics;

/// Largest client message accepted.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 4096;

struct Client {
    tx: mpsc::Sender<Arc<str>>,
    channels: HashSet<Channel>,
    kicked: CancellationToken,
}

pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    /// Why each recently dropped client was dropped (read by its connection).
    dropped: Mutex<HashMap<u64, DropReason>>,
    next_id: AtomicU64,
    buffer: usize,
    /// Open connections (admissions held) and their limit.
    open: AtomicUsize,
    max_open: usize,
    metrics: WsMetrics,
}

/// One open connection's place under `websocket.max_clients`; dropping it frees the
/// place. The edge holds it until the connection itself is closed.
pub struct Admission {
    hub: Arc<Hub>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let now = self.hub.open.fetch_sub(1, Ordering::AcqRel) - 1;
        self.hub.metrics.clients(now);
    }
}

/// One connected client, as its socket task holds it. Dropping it unregisters it.
pub struct Connection {
    id: u64,
    hub: Arc<Hub>,
    kicked: CancellationToken,
    /// Messages to send, in order; `None` once the hub dropped this client.
    pub rx: mpsc::Receiver<Arc<str>>,
}

/// The ping rule of one socket: a ping at once and then every `every`; a client that
/// has not answered the previous ping with a pong by the next tick is unresponsive.
/// Only a pong counts: a client that keeps sending but never reads never sees a ping,
/// so it is dropped one period after it connected, or at most two periods after it
/// stopped reading, whatever it sends.
#[derive(Debug)]
pub struct Liveness {
    every: Duration,
    /// When the oldest ping still unanswered was sent.
    waiting_since: Option<Instant>,
}

/// What the socket does on a ping tick.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// Send a ping.
    Ping,
    /// Drop the client: a ping went unanswered for a whole period.
    Unresponsive,
}

impl Liveness {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            waiting_since: None,
        }
    }

    pub fn every(&self) -> Duration {
        self.every
    }

    /// A tick of the ping interval at `now`.
    pub fn tick(&mut self, now: Instant) -> Tick {
        match self.waiting_since {
            Some(sent) if now.duration_since(sent) >= self.every => Tick::Unresponsive,
            Some(_) => Tick::Ping,
            None => {
                self.waiting_since = Some(now);
                Tick::Ping
            }
        }
    }

    /// The client answered a ping.
    pub fn pong(&mut self) {
        self.waiting_since = None;
    }
}

#[derive(Deserialize)]
struct ClientMessage {
    action: String,
    #[serde(default)]
    channels: Vec<String>,
}

impl Hub {
    /// `buffer`: messages queued per client before it counts as slow; `max_open`:
    /// connections open at once (`websocket.max_clients`).
    pub fn new(buffer: usize, max_open: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        let metrics = WsMetrics::new(&metrics);
        Arc::new(Self {
            clients: Mutex::new(HashMap::new()),
            dropped: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            buffer: buffer.max(1),
            open: AtomicUsize::new(0),
            max_open,
            metrics,
        })
    }

    /// A place for one more open connection, or `None` at `max_open` (checked and
    /// taken in one atomic step, so racing upgrades cannot pass the limit).
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_open).then_some(n + 1)
            })
            .ok()?;
        self.metrics.clients(taken + 1);
        Some(Admission {
            hub: Arc::clone(self),
        })
    }

    /// Connections open now (admissions held).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn max_open(&self) -> usize {
        self.max_open
    }

    /// Clients connected, and drop reasons not read yet.
    pub fn entries(&self) -> usize {
        let dropped = self.dropped.lock().map_or(0, |d| d.len());
        self.lock().len() + dropped
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.clients.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Clients registered with the hub (receiving or able to subscribe).
    pub fn client_count(&self) -> usize {
        self.lock().len()
    }

    /// Register a new client (subscribed to nothing yet).
    pub fn connect(self: &Arc<Self>) -> Connection {
        let (tx, rx) = mpsc::channel(self.buffer);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kicked = CancellationToken::new();
        self.lock().insert(
            id,
            Client {
                tx,
                channels: HashSet::new(),
                kicked: kicked.clone(),
            },
        );
        Connection {
            id,
            hub: Arc::clone(self),
            kicked,
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
            self.metrics.messages_sent(channel, sent);
        }
        for id in slow {
            tracing::warn!(
                client = id,
                "dropping a WebSocket client that does not keep up"
            );
            self.drop_client(id, DropReason::Slow);
        }
    }

    /// Disconnect a client: its connection sees its queue end and its `kicked` token
    /// cancelled.
    pub fn drop_client(&self, id: u64, reason: DropReason) {
        let removed = {
            let mut clients = self.lock();
            let removed = clients.remove(&id);
            if removed.is_some() {
                // Counted before the client leaves the count (the lock is still
                // held), so the two are never seen disagreeing.
                self.metrics.client_dropped(reason);
            }
            removed
        };
        if let Some(client) = removed {
            self.dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, reason);
            client.kicked.cancel();
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

    /// Cancelled when the hub drops this client (slow, or ended by its socket).
    pub fn kicked(&self) -> CancellationToken {
        self.kicked.clone()
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
            status: crate::events::CameraStatus::Online,
            previous_status: None,
            reason: "first image from this folder".into(),
            folder: "Porch".into(),
        }))
    }

    #[tokio::test]
    async fn only_subscribers_of_a_channel_receive_it() {
        let hub = Hub::new(8, 10, Arc::new(Metrics::new()));
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
        let hub = Hub::new(8, 10, Arc::new(Metrics::new()));
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
        let hub = Hub::new(4, 10, Arc::new(Metrics::new()));
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
        assert!(
            stuck.kicked().is_cancelled(),
            "its socket task is told at once"
        );
        assert_eq!(hub.client_count(), 1);
    }

    #[tokio::test]
    async fn admissions_bound_open_connections_and_free_their_place_on_drop() {
        let hub = Hub::new(4, 2, Arc::new(Metrics::new()));
        let a = hub.admit().expect("first");
        let _b = hub.admit().expect("second");
        assert!(hub.admit().is_none(), "the limit holds");
        assert_eq!(hub.open_connections(), 2);
        // A client the hub dropped still holds its place until its connection closes.
        let conn = hub.connect();
        hub.drop_client(conn.id(), DropReason::Slow);
        assert!(hub.admit().is_none());
        drop(a);
        assert_eq!(hub.open_connections(), 1);
        assert!(hub.admit().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_never_reads_is_unresponsive_one_period_after_it_connected() {
        let every = Duration::from_secs(30);
        let mut live = Liveness::new(every);
        let start = Instant::now();
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        assert_eq!(
            live.tick(Instant::now()),
            Tick::Ping,
            "the first ping at once"
        );
        ticks.tick().await;
        assert_eq!(live.tick(Instant::now()), Tick::Unresponsive);
        assert_eq!(Instant::now() - start, every);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_unresponsive_within_two_periods() {
        let every = Duration::from_secs(30);
        let mut live = Liveness::new(every);
        let mut ticks = tokio::time::interval(every);
        for _ in 0..3 {
            ticks.tick().await;
            assert_eq!(live.tick(Instant::now()), Tick::Ping);
            live.pong();
        }
        // It stops reading just after answering the last ping.
        let stopped = Instant::now();
        let verdict = loop {
            ticks.tick().await;
            if live.tick(Instant::now()) == Tick::Unresponsive {
                break Instant::now();
            }
            assert!(Instant::now() - stopped <= every * 2, "never dropped");
        };
        assert!(verdict - stopped <= every * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_answers_pings_stays() {
        let every = Duration::from_secs(30);
        let mut live = Liveness::new(every);
        let mut ticks = tokio::time::interval(every);
        for _ in 0..100 {
            ticks.tick().await;
            assert_eq!(live.tick(Instant::now()), Tick::Ping);
            tokio::time::advance(Duration::from_millis(5)).await;
            live.pong();
        }
    }
}
