//! `[storage]`: how often each volume is measured and how far its growth is
//! forecast; `[heartbeat]`: the dead man's switch watchpost pings.

use serde::{Deserialize, Serialize};

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Each volume's size and free space are measured this often.
    pub sample_interval_seconds: f64,
    /// The growth is the least-squares slope over this much of the latest samples.
    pub forecast_window_seconds: f64,
    /// `WatchpostStorageFillingUp` fires when a volume is forecast full sooner.
    pub alert_lead_seconds: f64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            sample_interval_seconds: 60.0,
            forecast_window_seconds: 6.0 * 3600.0,
            alert_lead_seconds: 6.0 * 3600.0,
        }
    }
}

impl StorageConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.sample_interval_seconds.is_finite()
                && (0.5..=3600.0).contains(&self.sample_interval_seconds),
            "storage.sample_interval_seconds",
            "must be between 0.5 and 3600 seconds",
        );
        c.check(
            self.forecast_window_seconds.is_finite()
                && self.forecast_window_seconds >= 2.0 * self.sample_interval_seconds
                && self.forecast_window_seconds <= 7.0 * 86_400.0,
            "storage.forecast_window_seconds",
            "must hold at least two samples and be at most 7 days",
        );
        c.positive_seconds("storage.alert_lead_seconds", self.alert_lead_seconds);
    }
}

/// `[heartbeat]`: off while `url` is empty.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Pinged every `interval_seconds` while nothing critical fires (healthchecks.io,
    /// an Uptime Kuma push monitor, a Gatus external endpoint, any URL).
    pub url: String,
    /// Pinged at once when a critical alert fires, and each interval while one does.
    /// Empty: `url` + `/fail`.
    pub fail_url: String,
    pub interval_seconds: f64,
    /// The longest one ping may take.
    pub timeout_seconds: f64,
    /// `GET` (healthchecks.io, Uptime Kuma's push monitors) or `POST` (Gatus's
    /// external endpoints, with its token in the URL's query or a proxy's header).
    pub method: String,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            fail_url: String::new(),
            interval_seconds: 60.0,
            timeout_seconds: 10.0,
            method: "GET".into(),
        }
    }
}

impl std::fmt::Debug for HeartbeatConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URLs of such services hold their check's secret id in the path: only
        // their origin is shown.
        f.debug_struct("HeartbeatConfig")
            .field("url", &crate::redact::origin(&self.url))
            .field("fail_url", &crate::redact::origin(&self.fail_url))
            .field("interval_seconds", &self.interval_seconds)
            .finish_non_exhaustive()
    }
}

impl HeartbeatConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// Where a failure is told.
    pub fn fail(&self) -> String {
        if self.fail_url.trim().is_empty() {
            format!("{}/fail", self.url.trim_end_matches('/'))
        } else {
            self.fail_url.clone()
        }
    }

    pub(super) fn validate(&self, c: &mut Checks) {
        let http = |u: &str| super::urls::is_http_url(u);
        c.check(
            self.url.is_empty() || http(&self.url),
            "heartbeat.url",
            "must be an http(s) address, or empty for no dead man's switch",
        );
        c.check(
            self.fail_url.is_empty() || http(&self.fail_url),
            "heartbeat.fail_url",
            "must be an http(s) address, or empty for url + /fail",
        );
        c.check(
            self.interval_seconds.is_finite() && (1.0..=86_400.0).contains(&self.interval_seconds),
            "heartbeat.interval_seconds",
            "must be between 1 and 86400 seconds",
        );
        c.positive_seconds("heartbeat.timeout_seconds", self.timeout_seconds);
        c.check(
            matches!(self.method.as_str(), "GET" | "POST"),
            "heartbeat.method",
            "must be GET or POST",
        );
    }
}
