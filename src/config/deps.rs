//! The dependencies watchpost talks to: `[redis]`, `[postgres]`, `[prometheus]` and
//! `[ai]` (the five AI services and how they are called).

use serde::{Deserialize, Serialize};

use super::check::Checks;
use super::urls::is_http_url;

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
    /// A request in flight longer than `max(stuck_factor × p99 of the last hour,
    /// stuck_floor_seconds)` means the service is stuck (`WatchpostAIStuck`).
    pub stuck_factor: f64,
    pub stuck_floor_seconds: f64,
    /// A service whose median of the last 5 minutes is this many times that of the
    /// hour before is slow (`WatchpostAISlow`, a warning).
    pub slow_factor: f64,
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
            stuck_factor: 10.0,
            stuck_floor_seconds: 30.0,
            slow_factor: 10.0,
            yolo26: svc(8095, "YOLO26 Object Detection", true),
            nemotron: svc(8091, "Nemotron LLM Risk Analysis", true),
            florence: svc(8092, "Florence-2 Vision Language", false),
            clip: svc(8093, "CLIP Embedding Service", false),
            enrichment: svc(8094, "Enrichment Service", false),
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.url.starts_with("redis://") || self.url.starts_with("rediss://"),
            "redis.url",
            "must start with redis:// or rediss://",
        );
    }
}

impl PostgresConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.url.starts_with("postgres://") || self.url.starts_with("postgresql://"),
            "postgres.url",
            "must start with postgres:// or postgresql://",
        );
    }
}

impl PrometheusConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            is_http_url(&self.url),
            "prometheus.url",
            "must be an http:// or https:// URL",
        );
        c.positive_seconds("prometheus.timeout_seconds", self.timeout_seconds);
    }
}

impl AiConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        for (name, svc) in self.services() {
            c.check(
                is_http_url(&svc.url),
                &format!("ai.{name}.url"),
                "must be an http:// or https:// URL",
            );
        }
        c.positive_seconds("ai.connect_timeout_seconds", self.connect_timeout_seconds);
        c.positive_seconds("ai.detect_timeout_seconds", self.detect_timeout_seconds);
        c.positive_seconds("ai.analysis_timeout_seconds", self.analysis_timeout_seconds);
        c.seconds("ai.retry_base_seconds", self.retry_base_seconds);
        c.count("ai.max_attempts", self.max_attempts.into(), 1, 10);
        for (key, v) in [
            ("ai.stuck_factor", self.stuck_factor),
            ("ai.slow_factor", self.slow_factor),
        ] {
            c.check(
                v.is_finite() && (1.0..=1000.0).contains(&v),
                key,
                "must be between 1 and 1000",
            );
        }
        c.positive_seconds("ai.stuck_floor_seconds", self.stuck_floor_seconds);
        c.check(
            (0.0..=1.0).contains(&self.detection_confidence_threshold),
            "ai.detection_confidence_threshold",
            "must be between 0 and 1",
        );
    }
}
