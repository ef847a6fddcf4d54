//! `notify.*`: watchpost's own notifiers (MQTT with Home Assistant discovery, and
//! webhooks: ntfy, Alertmanager's webhook format, plain JSON), for users without a
//! monitoring stack. Nothing is configured by default: no notifier, nothing sent.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::check::Checks;

/// The longest notifier name.
pub const MAX_NOTIFIER_NAME: usize = 32;
/// The most webhooks.
pub const MAX_WEBHOOKS: usize = 16;
/// The most headers one webhook sends.
const MAX_HEADERS: usize = 16;
/// The labels a notifier's matchers may name (as a silence's).
pub const MATCHER_LABELS: [&str; 5] = ["alertname", "source", "camera", "severity", "host"];

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A firing alert is told again this often while it fires.
    pub repeat_seconds: f64,
    /// Tell when an alert resolves.
    pub send_resolved: bool,
    /// Where each notifier's outbox is kept (one file per notifier); every
    /// transition is written there before it is sent.
    pub outbox_dir: String,
    /// The most transitions one notifier's outbox holds (the oldest unsent is
    /// dropped past it, counted and logged).
    pub outbox_max_items: u64,
    /// The longest one delivery may take.
    pub timeout_seconds: f64,
    /// The longest wait between two tries of a delivery that failed.
    pub retry_max_seconds: f64,
    /// When the daily digest (yesterday's coverage, gaps, events and alerts) is sent
    /// to every notifier: `HH:MM` (or `HH:MM:SS`) in the machine's local time. Empty:
    /// no digest.
    pub digest_time: String,
    /// How long the one-tap action links of a notification (*Snooze 1 h*, *Snooze
    /// 8 h*, *Acknowledge*) work. They are sent only when `alerting.external_url` is
    /// set (the phone must reach watchpost there).
    pub action_ttl_seconds: f64,
    pub mqtt: MqttConfig,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            repeat_seconds: 4.0 * 3600.0,
            send_resolved: true,
            outbox_dir: "./data/notify".into(),
            outbox_max_items: 10_000,
            timeout_seconds: 10.0,
            retry_max_seconds: 60.0,
            digest_time: String::new(),
            action_ttl_seconds: 24.0 * 3600.0,
            mqtt: MqttConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

/// `notify.mqtt`: off while `url` is empty.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    pub name: String,
    /// `mqtt://host:1883` (or `mqtts://host:8883`); empty: no MQTT.
    pub url: String,
    pub username: String,
    pub password: String,
    /// Every topic starts with it (`watchpost/status`, `watchpost/alerts/<fingerprint>`).
    pub topic_prefix: String,
    /// Home Assistant's discovery prefix; empty: no discovery configs.
    pub discovery_prefix: String,
    /// Connect with TLS (also implied by `mqtts://`).
    pub tls: bool,
    /// `warning` (every alert) or `critical`.
    pub min_severity: String,
    /// Exact label values an alert must all have to be told here (as a silence's).
    pub matchers: BTreeMap<String, String>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            name: "mqtt".into(),
            url: String::new(),
            username: String::new(),
            password: String::new(),
            topic_prefix: "watchpost".into(),
            discovery_prefix: "homeassistant".into(),
            tls: false,
            min_severity: "warning".into(),
            matchers: BTreeMap::new(),
        }
    }
}

/// One `[[notify.webhooks]]` entry: a notifier of any kind but MQTT, the kind named
/// by `format`. What only one kind reads (Telegram's `chat_id`, e-mail's `from` and
/// `to`) is in `options`; the kind says which it takes (the notifier kinds check them at load).
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub name: String,
    pub url: String,
    /// The kind: `ntfy`, `alertmanager` (Alertmanager's webhook, version 4), `json`,
    /// `telegram`, `email` (checked against the registered kinds at load).
    #[serde(default = "default_format")]
    pub format: String,
    /// Sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: String,
    #[serde(default = "default_severity")]
    pub min_severity: String,
    #[serde(default)]
    pub matchers: BTreeMap<String, String>,
    /// The kind's own settings.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

fn default_format() -> String {
    "json".into()
}

fn default_severity() -> String {
    "warning".into()
}

impl MqttConfig {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }
}

// Hand-written: passwords and tokens never reach a log line through `{:?}`, and
// addresses are shown masked.
impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hooks: Vec<String> = self
            .webhooks
            .iter()
            .map(|w| {
                format!(
                    "{} ({}, {})",
                    w.name,
                    w.format,
                    crate::redact::origin(&w.url)
                )
            })
            .collect();
        f.debug_struct("NotifyConfig")
            .field("repeat_seconds", &self.repeat_seconds)
            .field("send_resolved", &self.send_resolved)
            .field("outbox_dir", &self.outbox_dir)
            .field("digest_time", &self.digest_time)
            .field("action_ttl_seconds", &self.action_ttl_seconds)
            .field("mqtt", &crate::redact::origin(&self.mqtt.url))
            .field("webhooks", &hooks)
            .finish_non_exhaustive()
    }
}

fn is_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= MAX_NOTIFIER_NAME
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn is_clean(s: &str, max: usize) -> bool {
    s.len() <= max && !s.contains(char::is_control)
}

fn check_matchers(c: &mut Checks, key: &str, m: &BTreeMap<String, String>) {
    c.check(
        m.keys().all(|k| MATCHER_LABELS.contains(&k.as_str()))
            && m.values().all(|v| !v.is_empty() && is_clean(v, 256)),
        key,
        "each key must be one of alertname, source, camera, severity, host, with a value of 1 to 256 characters",
    );
}

fn check_severity(c: &mut Checks, key: &str, s: &str) {
    c.check(
        matches!(s, "warning" | "critical"),
        key,
        "must be warning or critical",
    );
}

impl NotifyConfig {
    /// The digest's local time of day, when one is set (and valid).
    pub fn digest_at(&self) -> Option<chrono::NaiveTime> {
        let t = self.digest_time.trim();
        chrono::NaiveTime::parse_from_str(t, "%H:%M:%S")
            .or_else(|_| chrono::NaiveTime::parse_from_str(t, "%H:%M"))
            .ok()
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.digest_time.is_empty() || self.digest_at().is_some(),
            "notify.digest_time",
            "must be a local time of day as HH:MM (or HH:MM:SS), or empty for no digest",
        );
        c.positive_seconds("notify.repeat_seconds", self.repeat_seconds);
        c.check(
            self.action_ttl_seconds.is_finite()
                && (60.0..=30.0 * 86_400.0).contains(&self.action_ttl_seconds),
            "notify.action_ttl_seconds",
            "must be between 60 and 2592000 seconds (30 days)",
        );
        c.positive_seconds("notify.timeout_seconds", self.timeout_seconds);
        c.positive_seconds("notify.retry_max_seconds", self.retry_max_seconds);
        c.check(
            !self.outbox_dir.trim().is_empty(),
            "notify.outbox_dir",
            "must not be empty",
        );
        c.count(
            "notify.outbox_max_items",
            self.outbox_max_items,
            10,
            1_000_000,
        );
        let m = &self.mqtt;
        c.check(
            is_name(&m.name),
            "notify.mqtt.name",
            "must be 1 to 32 of a-z, 0-9, _ and -",
        );
        c.check(
            m.url.is_empty()
                || (m.url.len() <= 2048
                    && reqwest::Url::parse(&m.url).is_ok_and(|u| {
                        matches!(u.scheme(), "mqtt" | "mqtts" | "tcp" | "ssl")
                            && u.host_str().is_some()
                            && u.path().trim_matches('/').is_empty()
                    })),
            "notify.mqtt.url",
            "must be empty or an address such as mqtt://127.0.0.1:1883 or mqtts://broker:8883",
        );
        c.check(
            is_clean(&m.username, 256) && is_clean(&m.password, 256),
            "notify.mqtt.username",
            "username and password must be at most 256 characters without control characters",
        );
        c.check(
            !m.topic_prefix.is_empty()
                && is_clean(&m.topic_prefix, 128)
                && !m.topic_prefix.contains(['+', '#'])
                && !m.topic_prefix.starts_with('/')
                && !m.topic_prefix.ends_with('/'),
            "notify.mqtt.topic_prefix",
            "must be 1 to 128 characters without +, #, control characters or a leading or trailing /",
        );
        c.check(
            is_clean(&m.discovery_prefix, 128)
                && !m.discovery_prefix.contains(['+', '#'])
                && !m.discovery_prefix.ends_with('/'),
            "notify.mqtt.discovery_prefix",
            "must be at most 128 characters without +, #, control characters or a trailing /",
        );
        check_severity(c, "notify.mqtt.min_severity", &m.min_severity);
        check_matchers(c, "notify.mqtt.matchers", &m.matchers);
        c.count(
            "notify.webhooks",
            self.webhooks.len() as u64,
            0,
            MAX_WEBHOOKS as u64,
        );
        let mut names = vec![m.name.as_str()];
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |k: &str| format!("notify.webhooks[{i}].{k}");
            c.check(
                is_name(&w.name),
                &key("name"),
                "must be 1 to 32 of a-z, 0-9, _ and -",
            );
            c.check(
                !names.contains(&w.name.as_str()),
                &key("name"),
                "must differ from every other notifier's name (notify.mqtt.name included)",
            );
            names.push(&w.name);
            // The scheme is the notifier kind's to check, at load.
            c.check(
                w.url.len() <= 2048
                    && reqwest::Url::parse(&w.url).is_ok_and(|u| u.host_str().is_some()),
                &key("url"),
                "must be an address such as https://ntfy.sh/topic or smtps://user:password@host:465",
            );
            c.check(
                is_name(&w.format),
                &key("format"),
                "must be a notifier kind: ntfy, alertmanager, json, telegram, email",
            );
            c.check(
                w.options.len() <= MAX_HEADERS
                    && w.options.iter().all(|(k, v)| is_name(k) && is_clean(v, 1024)),
                &key("options"),
                "at most 16, each name of a-z, 0-9, _ and -, each value at most 1024 characters without control characters",
            );
            c.check(
                w.headers.len() <= MAX_HEADERS
                    && w.headers.iter().all(|(k, v)| {
                        !k.is_empty()
                            && k.len() <= 64
                            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            && is_clean(v, 1024)
                    }),
                &key("headers"),
                "at most 16, each name of letters, digits and -, each value at most 1024 characters without control characters",
            );
            c.check(
                w.token.is_empty() || (is_clean(&w.token, 1024) && !w.token.contains(' ')),
                &key("token"),
                "must be at most 1024 characters without spaces",
            );
            check_severity(c, &key("min_severity"), &w.min_severity);
            check_matchers(c, &key("matchers"), &w.matchers);
        }
    }
}
