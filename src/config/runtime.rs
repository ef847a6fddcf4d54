//! How watchpost runs itself: `[supervisor]`, `[breaker]`, `[health]`,
//! `[degradation]`, `[websocket]` and `[performance]`.

use serde::{Deserialize, Serialize};

use super::check::Checks;

/// A worker name: `^[a-zA-Z][a-zA-Z0-9_]*$`, at most 64 bytes so it stays usable as a
/// metric label. Config validation and the supervisor's registry share this one rule.
pub fn is_valid_worker_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisorConfig {
    pub max_restarts: u32,
    pub backoff_base_seconds: f64,
    pub backoff_max_seconds: f64,
    pub healthy_reset_seconds: f64,
    pub heartbeat_timeout_seconds: f64,
    pub history_size: usize,
    pub shutdown_grace_seconds: f64,
    /// Workers whose failure makes the service unhealthy/not ready.
    pub critical_workers: Vec<String>,
}

impl Default for SupervisorConfig {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            backoff_base_seconds: 1.0,
            backoff_max_seconds: 60.0,
            healthy_reset_seconds: 300.0,
            heartbeat_timeout_seconds: 60.0,
            history_size: 1000,
            shutdown_grace_seconds: 5.0,
            critical_workers: vec![crate::names::workers::FILE_WATCHER.into()],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    pub failure_threshold: u32,
    pub recovery_timeout_seconds: f64,
    pub half_open_max_calls: u32,
    pub success_threshold: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            recovery_timeout_seconds: 30.0,
            half_open_max_calls: 3,
            success_threshold: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    pub probe_timeout_seconds: f64,
    pub cache_ttl_seconds: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            probe_timeout_seconds: 2.0,
            cache_ttl_seconds: 1.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DegradationConfig {
    pub check_interval_seconds: f64,
    pub failure_threshold: u32,
}

impl Default for DegradationConfig {
    fn default() -> Self {
        Self {
            check_interval_seconds: 15.0,
            failure_threshold: 3,
        }
    }
}

/// `[alerts]`: how the alert engine decides.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How long a critical problem must hold before its alert fires (a `for:`).
    pub for_critical_seconds: f64,
    /// The same for a warning (a short blip of a non-critical service is not news).
    pub for_warning_seconds: f64,
    /// How often the engine looks at the assessment (and writes its history).
    pub evaluate_interval_seconds: f64,
    /// A cause's notification waits this long after its first alert, gathering what
    /// else it explains (Alertmanager's `group_wait`); a resolution is told once it
    /// has held this long (an alert back within it is one episode).
    pub group_wait_seconds: f64,
    /// More changes than this (firing or resolved) in `flap_window_seconds`: the
    /// alert flaps, and is told once as flapping and once when stable again.
    pub flap_count: u32,
    pub flap_window_seconds: f64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            for_critical_seconds: 0.0,
            for_warning_seconds: 30.0,
            evaluate_interval_seconds: 1.0,
            group_wait_seconds: 10.0,
            flap_count: 3,
            flap_window_seconds: 600.0,
        }
    }
}

impl AlertsConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.seconds("alerts.for_critical_seconds", self.for_critical_seconds);
        c.seconds("alerts.for_warning_seconds", self.for_warning_seconds);
        c.positive_seconds(
            "alerts.evaluate_interval_seconds",
            self.evaluate_interval_seconds,
        );
        c.check(
            self.group_wait_seconds.is_finite()
                && (0.0..=3600.0).contains(&self.group_wait_seconds),
            "alerts.group_wait_seconds",
            "must be between 0 and 3600 seconds",
        );
        c.count("alerts.flap_count", self.flap_count.into(), 2, 1000);
        c.check(
            self.flap_window_seconds.is_finite()
                && (self.group_wait_seconds..=86_400.0).contains(&self.flap_window_seconds)
                && self.flap_window_seconds > 0.0,
            "alerts.flap_window_seconds",
            "must be more than 0, at least alerts.group_wait_seconds and at most a day",
        );
    }
}

/// `[alerting]`: where the alerts go out and how Alertmanager's come in.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// Alertmanagers to send watchpost's alerts to (`http://alertmanager:9093`); each
    /// gets every alert, as Prometheus does. Empty: alerts stay in watchpost.
    pub alertmanager_urls: Vec<String>,
    /// A firing alert is sent again this often (Alertmanager forgets an alert that
    /// is not re-sent: it resolves itself after four of these).
    pub resend_seconds: f64,
    /// The longest one call to an Alertmanager may take.
    pub timeout_seconds: f64,
    /// A bearer token that Alertmanager's webhook may send instead of an API key
    /// (`POST /api/webhooks/alerts`). Empty: only the API key (or loopback).
    pub webhook_token: String,
    /// The `instance` label of watchpost's alerts. Empty: `<host name>:<port>`.
    pub instance: String,
    /// Where people reach the status page (the alerts' link). Empty: `http://<bind>/`.
    pub external_url: String,
    /// Where the shipped docs are readable (`https://wiki.example/watchpost/`): the
    /// page links an alert's runbook only under this address (the shipped
    /// `docs/runbook.md#…` references resolved against it). Empty: runbooks are shown
    /// as text, never as links.
    pub runbook_base_url: String,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            alertmanager_urls: Vec::new(),
            resend_seconds: 60.0,
            timeout_seconds: 5.0,
            webhook_token: String::new(),
            instance: String::new(),
            external_url: String::new(),
            runbook_base_url: String::new(),
        }
    }
}

// Hand-written so that the webhook token never reaches a log line through `{:?}`, and
// the Alertmanager addresses only masked.
impl std::fmt::Debug for AlertingConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self
            .alertmanager_urls
            .iter()
            .map(|u| crate::redact::url(u))
            .collect();
        f.debug_struct("AlertingConfig")
            .field("alertmanager_urls", &urls)
            .field("resend_seconds", &self.resend_seconds)
            .field("timeout_seconds", &self.timeout_seconds)
            .field(
                "webhook_token",
                &if self.webhook_token.is_empty() {
                    "(none)"
                } else {
                    "(redacted)"
                },
            )
            .field("instance", &self.instance)
            .field("external_url", &crate::redact::url(&self.external_url))
            .field(
                "runbook_base_url",
                &crate::redact::url(&self.runbook_base_url),
            )
            .finish()
    }
}

impl AlertingConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.alertmanager_urls.iter().all(|u| is_http_url(u)),
            "alerting.alertmanager_urls",
            "each entry must be an http:// or https:// address such as http://127.0.0.1:9093",
        );
        c.count(
            "alerting.alertmanager_urls",
            self.alertmanager_urls.len() as u64,
            0,
            8,
        );
        c.positive_seconds("alerting.resend_seconds", self.resend_seconds);
        c.positive_seconds("alerting.timeout_seconds", self.timeout_seconds);
        c.check(
            self.webhook_token.is_empty()
                || (self.webhook_token.len() >= 16
                    && !self.webhook_token.contains(char::is_whitespace)),
            "alerting.webhook_token",
            "must be empty or at least 16 characters without spaces",
        );
        c.check(
            self.instance.len() <= 256 && !self.instance.contains(char::is_control),
            "alerting.instance",
            "must be at most 256 characters without control characters",
        );
        c.check(
            self.external_url.is_empty() || is_http_url(&self.external_url),
            "alerting.external_url",
            "must be empty or an http:// or https:// address",
        );
        c.check(
            self.runbook_base_url.is_empty()
                || (is_http_url(&self.runbook_base_url)
                    && !self.runbook_base_url.contains(['?', '#'])),
            "alerting.runbook_base_url",
            "must be empty or an http:// or https:// address without a query, such as https://wiki.example/watchpost/",
        );
    }
}

fn is_http_url(u: &str) -> bool {
    u.len() <= 2048
        && reqwest::Url::parse(u)
            .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some())
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Messages queued per client; a client that falls this far behind is dropped.
    pub client_buffer: usize,
    /// Most clients connected at once; an upgrade beyond it is answered 503.
    pub max_clients: usize,
    /// Seconds between pings; a client silent for two periods is dropped.
    pub ping_interval_seconds: f64,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            client_buffer: 256,
            max_clients: 1000,
            ping_interval_seconds: 30.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PerformanceConfig {
    pub sample_interval_seconds: f64,
    pub history_size: usize,
    pub thresholds: ThresholdsConfig,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        Self {
            sample_interval_seconds: 5.0,
            history_size: 720,
            thresholds: ThresholdsConfig::default(),
        }
    }
}

/// When a performance value raises an alert in `/api/system/performance` (at or above
/// the threshold).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdsConfig {
    pub cpu_percent_warning: f64,
    pub cpu_percent_critical: f64,
    pub ram_percent_warning: f64,
    pub ram_percent_critical: f64,
    pub disk_percent_warning: f64,
    pub disk_percent_critical: f64,
    pub gpu_temperature_warning: f64,
    pub gpu_temperature_critical: f64,
    pub yolo26_p95_ms_warning: f64,
    pub yolo26_p95_ms_critical: f64,
    pub nemotron_p95_ms_warning: f64,
    pub nemotron_p95_ms_critical: f64,
    pub redis_memory_mb_warning: f64,
    pub redis_memory_mb_critical: f64,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        Self {
            cpu_percent_warning: 80.0,
            cpu_percent_critical: 95.0,
            ram_percent_warning: 85.0,
            ram_percent_critical: 95.0,
            disk_percent_warning: 80.0,
            disk_percent_critical: 90.0,
            gpu_temperature_warning: 75.0,
            gpu_temperature_critical: 85.0,
            yolo26_p95_ms_warning: 200.0,
            yolo26_p95_ms_critical: 500.0,
            nemotron_p95_ms_warning: 10_000.0,
            nemotron_p95_ms_critical: 30_000.0,
            redis_memory_mb_warning: 100.0,
            redis_memory_mb_critical: 500.0,
        }
    }
}

impl ThresholdsConfig {
    /// `(name, warning, critical)` for every threshold pair.
    pub fn pairs(&self) -> [(&'static str, f64, f64); 7] {
        [
            (
                "cpu_percent",
                self.cpu_percent_warning,
                self.cpu_percent_critical,
            ),
            (
                "ram_percent",
                self.ram_percent_warning,
                self.ram_percent_critical,
            ),
            (
                "disk_percent",
                self.disk_percent_warning,
                self.disk_percent_critical,
            ),
            (
                "gpu_temperature",
                self.gpu_temperature_warning,
                self.gpu_temperature_critical,
            ),
            (
                "yolo26_p95_ms",
                self.yolo26_p95_ms_warning,
                self.yolo26_p95_ms_critical,
            ),
            (
                "nemotron_p95_ms",
                self.nemotron_p95_ms_warning,
                self.nemotron_p95_ms_critical,
            ),
            (
                "redis_memory_mb",
                self.redis_memory_mb_warning,
                self.redis_memory_mb_critical,
            ),
        ]
    }
}

impl SupervisorConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds("supervisor.backoff_base_seconds", self.backoff_base_seconds);
        c.positive_seconds("supervisor.backoff_max_seconds", self.backoff_max_seconds);
        c.positive_seconds(
            "supervisor.healthy_reset_seconds",
            self.healthy_reset_seconds,
        );
        c.positive_seconds(
            "supervisor.heartbeat_timeout_seconds",
            self.heartbeat_timeout_seconds,
        );
        c.seconds(
            "supervisor.shutdown_grace_seconds",
            self.shutdown_grace_seconds,
        );
        c.count("supervisor.max_restarts", self.max_restarts.into(), 0, 1000);
        c.count(
            "supervisor.history_size",
            self.history_size as u64,
            1,
            100_000,
        );
        c.check(
            self.backoff_max_seconds >= self.backoff_base_seconds,
            "supervisor.backoff_max_seconds",
            "must not be smaller than supervisor.backoff_base_seconds",
        );
        for (i, worker) in self.critical_workers.iter().enumerate() {
            c.check(
                is_valid_worker_name(worker),
                &format!("supervisor.critical_workers[{i}]"),
                "must match ^[a-zA-Z][a-zA-Z0-9_]*$",
            );
        }
    }
}

impl BreakerConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds(
            "breaker.recovery_timeout_seconds",
            self.recovery_timeout_seconds,
        );
        c.count(
            "breaker.failure_threshold",
            self.failure_threshold.into(),
            1,
            1000,
        );
        c.count(
            "breaker.half_open_max_calls",
            self.half_open_max_calls.into(),
            1,
            1000,
        );
        c.count(
            "breaker.success_threshold",
            self.success_threshold.into(),
            1,
            1000,
        );
    }
}

impl HealthConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds("health.probe_timeout_seconds", self.probe_timeout_seconds);
        c.seconds("health.cache_ttl_seconds", self.cache_ttl_seconds);
    }
}

impl DegradationConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds(
            "degradation.check_interval_seconds",
            self.check_interval_seconds,
        );
        c.count(
            "degradation.failure_threshold",
            self.failure_threshold.into(),
            1,
            1000,
        );
    }
}

impl WebSocketConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds(
            "websocket.ping_interval_seconds",
            self.ping_interval_seconds,
        );
        c.count(
            "websocket.client_buffer",
            self.client_buffer as u64,
            1,
            100_000,
        );
        c.count("websocket.max_clients", self.max_clients as u64, 1, 100_000);
    }
}

impl PerformanceConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds(
            "performance.sample_interval_seconds",
            self.sample_interval_seconds,
        );
        c.count(
            "performance.history_size",
            self.history_size as u64,
            1,
            100_000,
        );
        for (name, warning, critical) in self.thresholds.pairs() {
            c.check(
                warning.is_finite() && critical.is_finite() && (0.0..=1e9).contains(&warning),
                &format!("performance.thresholds.{name}_warning"),
                "must be a number from 0 up",
            );
            c.check(
                critical >= warning,
                &format!("performance.thresholds.{name}_critical"),
                "must not be smaller than its warning threshold",
            );
        }
    }
}
