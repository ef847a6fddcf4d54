//! Typed configuration: one struct with a documented default for every key, loaded from
//! an optional TOML file and then overridden by `WATCHPOST_<SECTION>__<KEY>` environment
//! variables. Loading reports every bad key at once. This module does no I/O besides
//! reading the file it is given and never logs (the config holds API keys).

mod load;

pub use load::{ConfigError, ENV_PREFIX};

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The whole configuration. Every section and key has a working default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub redis: RedisConfig,
    pub postgres: PostgresConfig,
    pub prometheus: PrometheusConfig,
    pub ai: AiConfig,
    pub file_watcher: FileWatcherConfig,
    pub batch: BatchConfig,
    pub supervisor: SupervisorConfig,
    pub breaker: BreakerConfig,
    pub health: HealthConfig,
    pub degradation: DegradationConfig,
    pub queue: QueueConfig,
    pub cleanup: CleanupConfig,
    pub performance: PerformanceConfig,
    pub websocket: WebSocketConfig,
}

/// A worker name: `^[a-zA-Z][a-zA-Z0-9_]*$`, at most 64 bytes so it stays usable as a
/// metric label. Config validation and the supervisor's registry share this one rule.
pub fn is_valid_worker_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Turn a configured number of seconds into a `Duration` (validated non-negative and finite).
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds; loopback by default.
    pub bind: String,
    /// Number of actix HTTP worker threads.
    pub workers: usize,
    /// Browser origins (`scheme://host[:port]`) other than watchpost's own that may
    /// POST and open the WebSocket; listing any also enables CORS answers for them.
    /// docs/behaviour.md §9 has the reasoning.
    pub allowed_origins: Vec<String>,
    /// Host names under which watchpost answers, besides IP literals, `localhost` and
    /// the machine's own host names (DNS rebinding defence, whatever the bind
    /// address). `*` turns the check off.
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            workers: 2,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// API keys accepted in `X-API-Key`; empty means POSTs only from loopback.
    pub api_keys: Vec<String>,
    /// Require the key (or loopback) for GETs as well.
    pub protect_reads: bool,
}

// Hand-written so that API keys can never reach a log line through `{:?}`.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("protect_reads", &self.protect_reads)
            .finish()
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &crate::redact::url(&self.url))
            .finish()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    pub url: String,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &crate::redact::url(&self.url))
            .finish()
    }
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/watchpost".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExporterConfig {
    pub name: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusConfig {
    pub url: String,
    pub timeout_seconds: f64,
    pub exporters: Vec<ExporterConfig>,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9090".into(),
            timeout_seconds: 5.0,
            // None by default: a bare host has no exporters, and made-up names would
            // show as DNS failures. Compose and scripts/stack.sh list theirs.
            exporters: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AiServiceConfig {
    pub url: String,
    pub display_name: String,
    pub critical: bool,
}

/// The five AI services, in registry order, and the client settings they share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AiConfig {
    /// Detections below this confidence are dropped.
    pub detection_confidence_threshold: f64,
    pub connect_timeout_seconds: f64,
    /// Whole-request timeout of one YOLO26 `/detect` attempt.
    pub detect_timeout_seconds: f64,
    /// Whole-request timeout of one Nemotron `/completion` attempt.
    pub analysis_timeout_seconds: f64,
    /// Attempts per detection/analysis call (4xx answers are never retried).
    pub max_attempts: u32,
    /// Wait before retry n is `retry_base_seconds · 2^(n-1)` (1 s, then 2 s).
    pub retry_base_seconds: f64,
    pub yolo26: AiServiceConfig,
    pub nemotron: AiServiceConfig,
    pub florence: AiServiceConfig,
    pub clip: AiServiceConfig,
    pub enrichment: AiServiceConfig,
}

impl AiConfig {
    /// `(name, config)` in registry order.
    pub fn services(&self) -> [(&'static str, &AiServiceConfig); 5] {
        [
            ("yolo26", &self.yolo26),
            ("nemotron", &self.nemotron),
            ("florence", &self.florence),
            ("clip", &self.clip),
            ("enrichment", &self.enrichment),
        ]
    }
}

impl Default for AiConfig {
    fn default() -> Self {
        let svc = |port: u16, display: &str, critical: bool| AiServiceConfig {
            url: format!("http://127.0.0.1:{port}"),
            display_name: display.into(),
            critical,
        };
        Self {
            detection_confidence_threshold: 0.5,
            connect_timeout_seconds: 10.0,
            detect_timeout_seconds: 30.0,
            analysis_timeout_seconds: 120.0,
            max_attempts: 3,
            retry_base_seconds: 1.0,
            yolo26: svc(8095, "YOLO26 Object Detection", true),
            nemotron: svc(8091, "Nemotron LLM Risk Analysis", true),
            florence: svc(8092, "Florence-2 Vision Language", false),
            clip: svc(8093, "CLIP Embedding Service", false),
            enrichment: svc(8094, "Enrichment Service", false),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileWatcherConfig {
    pub camera_root: String,
    pub polling: bool,
    pub polling_interval_seconds: f64,
    pub debounce_ms: u64,
    pub stable_seconds: f64,
    pub min_file_bytes: u64,
    /// Larger files are refused unread (the camera folder is untrusted).
    pub max_file_bytes: u64,
    pub dedupe_ttl_seconds: f64,
}

impl Default for FileWatcherConfig {
    fn default() -> Self {
        Self {
            camera_root: "./data/cameras".into(),
            polling: false,
            polling_interval_seconds: 1.0,
            debounce_ms: 500,
            stable_seconds: 2.0,
            min_file_bytes: 10_240,
            max_file_bytes: 50 * 1024 * 1024,
            dedupe_ttl_seconds: 300.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    pub window_seconds: f64,
    pub idle_timeout_seconds: f64,
    pub max_detections: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            window_seconds: 90.0,
            idle_timeout_seconds: 30.0,
            max_detections: 500,
        }
    }
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub spool_dir: String,
    pub memory_capacity: usize,
    pub spool_max_items: u64,
    /// An item another consumer took and has not acknowledged for this long is
    /// delivered again (the consumer is presumed dead).
    pub claim_idle_seconds: f64,
    /// This instance's name in the queues' consumer groups; empty means the host
    /// name. Set it when several instances run on one host.
    pub consumer_id: String,
    /// An item delivered more often than this without being finished (it keeps
    /// crashing or hanging its worker) moves to the queue's dead-letter stream.
    pub max_deliveries: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            spool_dir: "./data/spool".into(),
            memory_capacity: 1000,
            spool_max_items: 100_000,
            claim_idle_seconds: 60.0,
            consumer_id: String::new(),
            max_deliveries: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    pub retention_days: u32,
    /// Local time of day, `HH:MM`.
    pub time: String,
    pub delete_media: bool,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            time: "03:00".into(),
            delete_media: false,
        }
    }
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

impl Config {
    /// Load from an optional TOML file, then apply `WATCHPOST_*` overrides from `env`.
    /// Returns every problem found, not just the first.
    pub fn load(
        file: Option<&std::path::Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        load::load(file, env)
    }

    /// Semantic checks beyond types; returns `key: problem` lines.
    fn validate(&self) -> Vec<String> {
        let mut bad = Vec::new();
        let mut check = |ok: bool, key: &str, why: &str| {
            if !ok {
                bad.push(format!("{key}: {why}"));
            }
        };
        check(
            self.server.bind.parse::<std::net::SocketAddr>().is_ok(),
            "server.bind",
            "must be an IP:port address such as 127.0.0.1:8000",
        );
        check(
            self.server.allowed_origins.iter().all(|o| is_origin(o)),
            "server.allowed_origins",
            "each entry must be an origin such as http://dash.example or https://grafana.lan:3000 (scheme, host and optional port; no path, no wildcard)",
        );
        check(
            self.server.allowed_hosts.iter().all(|h| is_host_name(h)),
            "server.allowed_hosts",
            "each entry must be a host name or IP address without scheme or port (such as watchpost.lan or 192.168.1.20), or * to turn the check off",
        );
        check(
            self.auth.api_keys.iter().all(|k| !k.trim().is_empty()),
            "auth.api_keys",
            "keys must not be empty",
        );
        check(
            self.redis.url.starts_with("redis://") || self.redis.url.starts_with("rediss://"),
            "redis.url",
            "must start with redis:// or rediss://",
        );
        check(
            self.postgres.url.starts_with("postgres://")
                || self.postgres.url.starts_with("postgresql://"),
            "postgres.url",
            "must start with postgres:// or postgresql://",
        );
        check(
            is_http_url(&self.prometheus.url),
            "prometheus.url",
            "must be an http:// or https:// URL",
        );
        for (name, svc) in self.ai.services() {
            check(
                is_http_url(&svc.url),
                &format!("ai.{name}.url"),
                "must be an http:// or https:// URL",
            );
        }
        let positive = [
            (
                "prometheus.timeout_seconds",
                self.prometheus.timeout_seconds,
            ),
            (
                "file_watcher.polling_interval_seconds",
                self.file_watcher.polling_interval_seconds,
            ),
            (
                "ai.connect_timeout_seconds",
                self.ai.connect_timeout_seconds,
            ),
            ("ai.detect_timeout_seconds", self.ai.detect_timeout_seconds),
            (
                "ai.analysis_timeout_seconds",
                self.ai.analysis_timeout_seconds,
            ),
            ("batch.window_seconds", self.batch.window_seconds),
            (
                "batch.idle_timeout_seconds",
                self.batch.idle_timeout_seconds,
            ),
            (
                "supervisor.backoff_base_seconds",
                self.supervisor.backoff_base_seconds,
            ),
            (
                "supervisor.backoff_max_seconds",
                self.supervisor.backoff_max_seconds,
            ),
            (
                "supervisor.healthy_reset_seconds",
                self.supervisor.healthy_reset_seconds,
            ),
            (
                "supervisor.heartbeat_timeout_seconds",
                self.supervisor.heartbeat_timeout_seconds,
            ),
            (
                "breaker.recovery_timeout_seconds",
                self.breaker.recovery_timeout_seconds,
            ),
            (
                "health.probe_timeout_seconds",
                self.health.probe_timeout_seconds,
            ),
            (
                "degradation.check_interval_seconds",
                self.degradation.check_interval_seconds,
            ),
            (
                "performance.sample_interval_seconds",
                self.performance.sample_interval_seconds,
            ),
            ("queue.claim_idle_seconds", self.queue.claim_idle_seconds),
            (
                "websocket.ping_interval_seconds",
                self.websocket.ping_interval_seconds,
            ),
        ];
        for (key, value) in positive {
            check(
                value.is_finite() && value > 0.0 && value < 1e9,
                key,
                "must be a number of seconds greater than 0",
            );
        }
        let non_negative = [
            (
                "file_watcher.stable_seconds",
                self.file_watcher.stable_seconds,
            ),
            (
                "file_watcher.dedupe_ttl_seconds",
                self.file_watcher.dedupe_ttl_seconds,
            ),
            (
                "supervisor.shutdown_grace_seconds",
                self.supervisor.shutdown_grace_seconds,
            ),
            ("health.cache_ttl_seconds", self.health.cache_ttl_seconds),
            ("ai.retry_base_seconds", self.ai.retry_base_seconds),
        ];
        for (key, value) in non_negative {
            check(
                value.is_finite() && (0.0..1e9).contains(&value),
                key,
                "must be a number of seconds, 0 or more",
            );
        }
        // Counts, each within a range that keeps every use of it finite and sane.
        let counts: [(&str, u64, u64, u64); 19] = [
            (
                "batch.max_detections",
                self.batch.max_detections,
                1,
                100_000,
            ),
            ("ai.max_attempts", self.ai.max_attempts.into(), 1, 10),
            (
                "breaker.failure_threshold",
                self.breaker.failure_threshold.into(),
                1,
                1000,
            ),
            (
                "breaker.half_open_max_calls",
                self.breaker.half_open_max_calls.into(),
                1,
                1000,
            ),
            (
                "breaker.success_threshold",
                self.breaker.success_threshold.into(),
                1,
                1000,
            ),
            (
                "degradation.failure_threshold",
                self.degradation.failure_threshold.into(),
                1,
                1000,
            ),
            (
                "supervisor.max_restarts",
                self.supervisor.max_restarts.into(),
                0,
                1000,
            ),
            (
                "supervisor.history_size",
                self.supervisor.history_size as u64,
                1,
                100_000,
            ),
            (
                "queue.memory_capacity",
                self.queue.memory_capacity as u64,
                1,
                1_000_000,
            ),
            (
                "queue.spool_max_items",
                self.queue.spool_max_items,
                1,
                100_000_000,
            ),
            (
                "queue.max_deliveries",
                self.queue.max_deliveries.into(),
                1,
                1000,
            ),
            (
                "cleanup.retention_days",
                self.cleanup.retention_days.into(),
                1,
                36_500,
            ),
            (
                "performance.history_size",
                self.performance.history_size as u64,
                1,
                100_000,
            ),
            (
                "file_watcher.debounce_ms",
                self.file_watcher.debounce_ms,
                0,
                3_600_000,
            ),
            (
                "file_watcher.min_file_bytes",
                self.file_watcher.min_file_bytes,
                0,
                1 << 30,
            ),
            (
                "file_watcher.max_file_bytes",
                self.file_watcher.max_file_bytes,
                1,
                1 << 30,
            ),
            ("server.workers", self.server.workers as u64, 1, 64),
            (
                "websocket.client_buffer",
                self.websocket.client_buffer as u64,
                1,
                100_000,
            ),
            (
                "websocket.max_clients",
                self.websocket.max_clients as u64,
                1,
                100_000,
            ),
        ];
        for (key, value, min, max) in counts {
            check(
                (min..=max).contains(&value),
                key,
                &format!("must be between {min} and {max}"),
            );
        }
        check(
            self.file_watcher.min_file_bytes <= self.file_watcher.max_file_bytes,
            "file_watcher.min_file_bytes",
            "must not be larger than file_watcher.max_file_bytes",
        );
        check(
            self.supervisor.backoff_max_seconds >= self.supervisor.backoff_base_seconds,
            "supervisor.backoff_max_seconds",
            "must not be smaller than supervisor.backoff_base_seconds",
        );
        check(
            parse_time_of_day(&self.cleanup.time).is_some(),
            "cleanup.time",
            "must be a time of day HH:MM (00:00 to 23:59)",
        );
        check(
            (0.0..=1.0).contains(&self.ai.detection_confidence_threshold),
            "ai.detection_confidence_threshold",
            "must be between 0 and 1",
        );
        check(
            !self.file_watcher.camera_root.trim().is_empty(),
            "file_watcher.camera_root",
            "must not be empty",
        );
        check(
            !self.queue.spool_dir.trim().is_empty(),
            "queue.spool_dir",
            "must not be empty",
        );
        check(
            self.queue.consumer_id.len() <= 64
                && self
                    .queue
                    .consumer_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)),
            "queue.consumer_id",
            "must be at most 64 letters, digits, '_', '.' or '-' (empty: the host name)",
        );
        for (name, warning, critical) in self.performance.thresholds.pairs() {
            check(
                warning.is_finite() && critical.is_finite() && (0.0..=1e9).contains(&warning),
                &format!("performance.thresholds.{name}_warning"),
                "must be a number from 0 up",
            );
            check(
                critical >= warning,
                &format!("performance.thresholds.{name}_critical"),
                "must not be smaller than its warning threshold",
            );
        }
        for (i, worker) in self.supervisor.critical_workers.iter().enumerate() {
            check(
                is_valid_worker_name(worker),
                &format!("supervisor.critical_workers[{i}]"),
                "must match ^[a-zA-Z][a-zA-Z0-9_]*$",
            );
        }
        bad
    }

    /// Whether a supervised worker is marked critical (`supervisor.critical_workers`).
    pub fn is_critical_worker(&self, name: &str) -> bool {
        self.supervisor.critical_workers.iter().any(|w| w == name)
    }
}

fn is_origin(value: &str) -> bool {
    normalise_origin(value).is_some()
}

fn is_host_name(value: &str) -> bool {
    value == "*" || normalise_host(value).is_some()
}

/// A host name or IP literal, lower-cased (IPv6 in brackets), or `None` when `value`
/// is not one (no scheme, port, path or wildcard).
pub fn normalise_host(value: &str) -> Option<String> {
    let v = value.trim().to_ascii_lowercase();
    if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| format!("[{ip}]"));
    }
    if let Ok(ip) = v.parse::<std::net::Ipv6Addr>() {
        return Some(format!("[{ip}]"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (v.len() <= 253 && v.split('.').all(label_ok)).then_some(v)
}

/// Split `host[:port]` (IPv6 in brackets) into a normalised host and the port.
pub fn split_authority(value: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (h, rest) = value.split_at(end + 1);
        match rest {
            "" => (h, None),
            _ => (h, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => None,
    };
    Some((normalise_host(host)?, port))
}

/// An origin `scheme://host[:port]` normalised the way browsers send it (lower case,
/// default port omitted), or `None` when `value` is not one.
pub fn normalise_origin(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_authority(rest)?;
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    matches!(rest, Some(host) if !host.is_empty() && !host.starts_with('/'))
}

/// Parse `HH:MM` into `(hour, minute)`.
pub fn parse_time_of_day(value: &str) -> Option<(u32, u32)> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}
