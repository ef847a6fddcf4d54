//! The MQTT notifier: one session with the broker at a time, driven by one task.
//!
//! On connect it publishes `online` on the availability topic (the last will says
//! `offline`, so the broker tells when watchpost dies), Home Assistant's discovery
//! configs and the state topics (all retained), then keeps the state topics current
//! (every second, only what changed) and sends the outbox: one alert at a time, at
//! QoS 1, taken out of the outbox only on the broker's PUBACK. Retained state is sent
//! at QoS 0 and published again on every new session, so the only acknowledged
//! publish in flight is the outbox's head: any PUBACK is its.
//!
//! A lost connection ends the session; the next one starts from nothing after a
//! backoff (the head is sent again: at least once). On shutdown it says `offline`
//! itself and disconnects.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ClientError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::channel::{backoff, Channel, DeliveryError};
use super::commands::{self, Command};
use super::discovery::{Snapshot, Topics};
use super::message::{self, Entry, Kind};
use crate::config::MqttConfig;
use crate::quiet::Quiet;

/// The longest wait for the broker's CONNACK, or a PUBACK.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How often the state topics are compared with the service.
const STATE_EVERY: Duration = Duration::from_secs(1);
/// Requests queued towards the event loop.
const REQUESTS: usize = 256;
/// The largest packet sent or taken (the broker's default limit is higher).
const MAX_PACKET: usize = 256 * 1024;
/// What a PUBLISH adds to its topic and payload, at most (fixed header, lengths,
/// packet id).
const PUBLISH_OVERHEAD: usize = 16;

pub struct Mqtt {
    options: MqttOptions,
    pub topics: Topics,
    pub shown: String,
    /// What Home Assistant's button and switch change.
    quiet: Arc<Quiet>,
}

impl Mqtt {
    pub fn new(cfg: &MqttConfig, client_id: &str, quiet: Arc<Quiet>) -> Result<Self, String> {
        let (options, shown) = options(cfg, client_id)?;
        Ok(Self {
            options,
            topics: Topics::new(&cfg.topic_prefix, &cfg.discovery_prefix),
            shown,
            quiet,
        })
    }
}

/// The broker session's options (address, credentials from the settings or the URL,
/// TLS, the last will) and the address as shown.
fn options(cfg: &MqttConfig, client_id: &str) -> Result<(MqttOptions, String), String> {
    let url = reqwest::Url::parse(&cfg.url).map_err(|e| e.to_string())?;
    let tls = cfg.tls || matches!(url.scheme(), "mqtts" | "ssl");
    let host = url
        .host_str()
        .ok_or("no host")?
        .trim_matches(['[', ']'])
        .to_string();
    let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
    let topics = Topics::new(&cfg.topic_prefix, &cfg.discovery_prefix);
    let mut options = MqttOptions::new(client_id, host, port);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    options.set_last_will(LastWill::new(
        topics.availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let user = if cfg.username.is_empty() {
        percent_decode(url.username())
    } else {
        cfg.username.clone()
    };
    let pass = if cfg.password.is_empty() {
        url.password().map(percent_decode).unwrap_or_default()
    } else {
        cfg.password.clone()
    };
    if !user.is_empty() {
        options.set_credentials(user, pass);
    }
    if tls {
        options.set_transport(Transport::tls_with_config(tls_config()?.into()));
    }
    Ok((options, crate::redact::origin(&cfg.url)))
}

impl Mqtt {
    /// Run sessions until `cancel`; `house` reads the state to publish.
    pub async fn run(
        &self,
        ch: &Channel,
        house: &(dyn Fn() -> Snapshot + Send + Sync),
        retry_max: Duration,
        cancel: &CancellationToken,
    ) {
        let mut failures = 0u32;
        loop {
            match self.session(ch, house, cancel).await {
                Ok(()) => return,
                Err(why) => {
                    failures += 1;
                    if failures == 1 || failures % 20 == 0 {
                        tracing::warn!(notifier = %ch.name, broker = %self.shown, error = %why, "MQTT broker not reached; alerts wait in the outbox");
                    }
                    ch.connected(false, Some(why));
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff(failures, retry_max)) => {}
            }
        }
    }

    async fn session(
        &self,
        ch: &Channel,
        house: &(dyn Fn() -> Snapshot + Send + Sync),
        cancel: &CancellationToken,
    ) -> Result<(), String> {
        let (client, mut events) = AsyncClient::new(self.options.clone(), REQUESTS);
        let connected = tokio::time::timeout(ANSWER_WITHIN, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(crate::redact::foreign(&crate::redact::error(&e), 200)),
                }
            }
        })
        .await
        .map_err(|_| format!("no CONNACK within {}s", ANSWER_WITHIN.as_secs()))?;
        connected?;
        // Home Assistant's commands (a button per camera, the notifications switch).
        for topic in [
            self.topics.camera_snooze("+"),
            self.topics.notifications_set(),
        ] {
            client
                .try_subscribe(topic, QoS::AtLeastOnce)
                .map_err(|e| e.to_string())?;
        }
        ch.connected(true, None);
        tracing::info!(notifier = %ch.name, broker = %self.shown, "connected to the MQTT broker");

        let mut retained: BTreeMap<String, String> = BTreeMap::new();
        let mut queue: VecDeque<(String, String)> = VecDeque::new();
        queue.push_back((self.topics.availability(), "online".into()));
        self.refresh(house(), &mut retained, &mut queue);
        // The head in flight, and when its PUBACK is due.
        let mut in_flight: Option<(Entry, Instant)> = None;
        let mut tick = tokio::time::interval(STATE_EVERY);
        loop {
            while let Some((topic, payload)) = queue.front() {
                match client.try_publish(topic.clone(), QoS::AtMostOnce, true, payload.clone()) {
                    Ok(()) => {
                        queue.pop_front();
                    }
                    Err(ClientError::TryRequest(_)) => break, // full: after the next poll
                    Err(e) => return Err(e.to_string()),
                }
            }
            if in_flight.is_none() {
                if let Some(e) = ch.head() {
                    let topic = match e.kind {
                        Kind::Test => self.topics.test(),
                        Kind::Digest => self.topics.digest(),
                        Kind::Notice => self.topics.notice(),
                        _ => self.topics.alert(e.fingerprint()),
                    };
                    let payload = message::plain(&e).to_string();
                    let size = topic.len() + payload.len() + PUBLISH_OVERHEAD;
                    if size > MAX_PACKET {
                        // Sent, it would end the session, and again after each
                        // reconnect: it can never go.
                        ch.undeliverable(
                            &e,
                            &format!("{size} bytes is over MQTT's packet limit of {MAX_PACKET}"),
                        );
                        continue;
                    }
                    if client
                        .try_publish(topic, QoS::AtLeastOnce, false, payload)
                        .is_ok()
                    {
                        ch.trying();
                        in_flight = Some((e, Instant::now() + ANSWER_WITHIN));
                    }
                }
            }
            let due = in_flight.as_ref().map(|(_, at)| *at);
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = client.try_publish(self.topics.availability(), QoS::AtMostOnce, true, "offline");
                    let _ = client.try_disconnect();
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Ok(ev) = events.poll().await {
                            if matches!(ev, Event::Outgoing(Outgoing::Disconnect)) {
                                break;
                            }
                        }
                    }).await;
                    return Ok(());
                }
                ev = events.poll() => match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        if let Some((e, _)) = in_flight.take() {
                            ch.delivered(&e);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if let Some(cmd) = commands::parse(&self.topics, &p.topic, &p.payload, p.retain) {
                            self.obey(ch, cmd, house).await;
                            self.refresh(house(), &mut retained, &mut queue);
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let why = crate::redact::foreign(&crate::redact::error(&err), 200);
                        if let Some((e, _)) = in_flight.take() {
                            ch.failed(&e, &DeliveryError::Unreachable(why.clone()));
                        }
                        return Err(why);
                    }
                },
                _ = tick.tick() => self.refresh(house(), &mut retained, &mut queue),
                _ = ch.wake.notified(), if in_flight.is_none() => {}
                _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    if let Some((e, _)) = in_flight.take() {
                        let why = format!("no PUBACK within {}s", ANSWER_WITHIN.as_secs());
                        ch.failed(&e, &DeliveryError::Unreachable(why.clone()));
                        return Err(why);
                    }
                }
            }
        }
    }

    /// Do what Home Assistant asked (the windows are PostgreSQL's: a failure is
    /// logged, and the switch shows the state as it is).
    async fn obey(&self, ch: &Channel, cmd: Command, house: &(dyn Fn() -> Snapshot + Send + Sync)) {
        let cameras = house().cameras;
        let known = |id: &str| cameras.iter().any(|(c, _, _)| c == id);
        match commands::obey(&self.quiet, cmd, known).await {
            Ok(done) => tracing::info!(notifier = %ch.name, "Home Assistant: {done}"),
            Err(e) => {
                tracing::warn!(notifier = %ch.name, error = %e, "a command from Home Assistant was not done")
            }
        }
    }

    /// Queue the discovery configs and state messages that differ from what this
    /// session published; a camera that is gone gets an empty config (Home Assistant
    /// removes its entity).
    fn refresh(
        &self,
        mut s: Snapshot,
        published: &mut BTreeMap<String, String>,
        queue: &mut VecDeque<(String, String)>,
    ) {
        s.notifications = self.quiet.everything_snoozed(crate::time::now()).is_empty();
        let mut now = self.topics.discovery(&s);
        now.extend(self.topics.state(&s));
        let gone: Vec<String> = published
            .keys()
            .filter(|t| t.ends_with("/config") && !now.contains_key(*t))
            .cloned()
            .collect();
        for topic in gone {
            published.remove(&topic);
            queue.push_back((topic, String::new()));
        }
        // Discovery configs before state: Home Assistant knows an entity before its
        // first value.
        for pass_config in [true, false] {
            for (topic, payload) in &now {
                if topic.ends_with("/config") != pass_config {
                    continue;
                }
                if published.get(topic) != Some(payload) {
                    published.insert(topic.clone(), payload.clone());
                    queue.push_back((topic.clone(), payload.clone()));
                }
            }
        }
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// TLS with the web's root certificates (compiled in: no system store needed).
fn tls_config() -> Result<rustls::ClientConfig, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_url_when_not_given_apart() {
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(percent_decode("plain%"), "plain%");
        let cfg = MqttConfig {
            url: "mqtt://user:secret@127.0.0.1:1883".into(),
            ..MqttConfig::default()
        };
        let (options, shown) = options(&cfg, "watchpost-test").unwrap();
        assert_eq!(shown, "mqtt://127.0.0.1:1883");
        assert_eq!(options.broker_address(), ("127.0.0.1".to_string(), 1883));
        let login = options.credentials().expect("credentials from the URL");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("user", "secret")
        );
    }
}
