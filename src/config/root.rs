//! The whole configuration: one struct of sections, each with a working default, and
//! the semantic checks that run once every value has its type (`load.rs`).

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::cameras::CamerasConfig;
use super::check::Checks;
use super::coverage::CoverageConfig;
use super::deps::{AiConfig, PostgresConfig, PrometheusConfig, RedisConfig};
use super::fleet::FleetConfig;
use super::maintenance::MaintenanceConfig;
use super::notify::NotifyConfig;
use super::pipeline::{BatchConfig, CleanupConfig, FileWatcherConfig, QueueConfig};
use super::runtime::{
    AlertingConfig, AlertsConfig, BreakerConfig, DegradationConfig, HealthConfig,
    PerformanceConfig, SupervisorConfig, WebSocketConfig,
};
use super::server::{AuthConfig, ServerConfig};
use super::storage::{HeartbeatConfig, StorageConfig};

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
    pub alerts: AlertsConfig,
    pub alerting: AlertingConfig,
    pub cameras: CamerasConfig,
    pub coverage: CoverageConfig,
    pub maintenance: MaintenanceConfig,
    pub notify: NotifyConfig,
    pub storage: StorageConfig,
    pub heartbeat: HeartbeatConfig,
    pub fleet: FleetConfig,
}

/// Turn a configured number of seconds into a `Duration` (validated non-negative and finite).
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

impl Config {
    /// Semantic checks beyond types, section by section; returns `key: problem` lines.
    pub(super) fn validate(&self) -> Vec<String> {
        let mut c = Checks::default();
        self.server.validate(&mut c);
        self.auth.validate(&mut c);
        self.redis.validate(&mut c);
        self.postgres.validate(&mut c);
        self.prometheus.validate(&mut c);
        self.ai.validate(&mut c);
        self.file_watcher.validate(&mut c);
        self.batch.validate(&mut c);
        self.supervisor.validate(&mut c);
        self.breaker.validate(&mut c);
        self.health.validate(&mut c);
        self.degradation.validate(&mut c);
        self.queue.validate(&mut c);
        self.cleanup.validate(&mut c);
        self.performance.validate(&mut c);
        self.websocket.validate(&mut c);
        self.alerts.validate(&mut c);
        self.alerting.validate(&mut c);
        self.cameras.validate(&mut c);
        self.coverage.validate(&mut c);
        self.maintenance.validate(&mut c);
        self.notify.validate(&mut c);
        self.storage.validate(&mut c);
        self.heartbeat.validate(&mut c);
        self.fleet.validate(&mut c);
        c.into_problems()
    }

    /// Whether a supervised worker is marked critical (`supervisor.critical_workers`).
    pub fn is_critical_worker(&self, name: &str) -> bool {
        self.supervisor.critical_workers.iter().any(|w| w == name)
    }
}
