//! The performance snapshot (field names of the upstream clients), the alert rule over
//! it, and the history ring with its even downsampling. Pure functions and data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::config::ThresholdsConfig;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct GpuStats {
    pub name: String,
    pub utilization: f64,
    pub vram_used_gb: f64,
    pub vram_total_gb: f64,
    pub temperature: i64,
    pub power_watts: i64,
    pub vram_percent: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Yolo26Model {
    /// `healthy`, `unhealthy` or `unreachable`.
    pub status: String,
    pub vram_gb: f64,
    pub model: String,
    pub device: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NemotronModel {
    pub status: String,
    pub slots_active: i64,
    pub slots_total: i64,
    pub context_size: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AiModels {
    pub yolo26: Yolo26Model,
    pub nemotron: NemotronModel,
}

/// Milliseconds over the window; 0 when it holds no sample (as the contract's
/// clients read them), with `samples` saying how many there were.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LatencyStats {
    pub avg: f64,
    pub p95: f64,
    pub p99: f64,
    /// Calls measured in the window (0: the figures above are not measurements).
    pub samples: u64,
}

/// Milliseconds from file to detection over the window; 0 without samples.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PipelineLatency {
    pub avg: f64,
    pub p95: f64,
    /// Images measured in the window.
    pub samples: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Throughput {
    pub images_per_min: f64,
    pub events_per_min: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueueDepths {
    pub detection: u64,
    pub analysis: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Inference {
    pub yolo26_latency_ms: LatencyStats,
    pub nemotron_latency_ms: LatencyStats,
    pub pipeline_latency_ms: PipelineLatency,
    pub throughput: Throughput,
    pub queues: QueueDepths,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PostgresStats {
    pub status: String,
    pub connections_active: i64,
    pub connections_max: i64,
    pub cache_hit_ratio: f64,
    pub transactions_per_min: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RedisStats {
    pub status: String,
    pub connected_clients: i64,
    pub memory_mb: f64,
    pub hit_ratio: f64,
    pub blocked_clients: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Databases {
    pub postgresql: Option<PostgresStats>,
    pub redis: Option<RedisStats>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostStats {
    pub cpu_percent: f64,
    pub ram_used_gb: f64,
    pub ram_total_gb: f64,
    pub ram_percent: f64,
    pub disk_used_gb: Option<f64>,
    pub disk_total_gb: Option<f64>,
    pub disk_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ContainerStatus {
    pub name: String,
    pub status: String,
    pub health: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PerfAlert {
    /// `warning` or `critical`.
    pub severity: String,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// One sample, as `/api/system/performance` answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PerformanceSnapshot {
    pub gpu: Option<GpuStats>,
    pub ai_models: Option<AiModels>,
    pub inference: Option<Inference>,
    pub databases: Option<Databases>,
    pub host: Option<HostStats>,
    pub containers: Vec<ContainerStatus>,
    pub alerts: Vec<PerfAlert>,
    pub timestamp: DateTime<Utc>,
}

impl PerformanceSnapshot {
    /// Before the first sample: every part unknown.
    pub fn empty() -> Self {
        Self {
            gpu: None,
            ai_models: None,
            inference: None,
            databases: None,
            host: None,
            containers: Vec::new(),
            alerts: Vec::new(),
            timestamp: crate::time::now(),
        }
    }
}

/// The values the thresholds apply to, by threshold name.
fn measured(s: &PerformanceSnapshot) -> [(&'static str, &'static str, Option<f64>); 7] {
    let host = s.host.as_ref();
    let inf = s.inference.as_ref();
    [
        ("cpu_percent", "Host CPU", host.map(|h| h.cpu_percent)),
        ("ram_percent", "Host RAM", host.map(|h| h.ram_percent)),
        (
            "disk_percent",
            "Disk of the camera folder",
            host.and_then(|h| h.disk_percent),
        ),
        (
            "gpu_temperature",
            "GPU temperature",
            s.gpu.as_ref().map(|g| g.temperature as f64),
        ),
        (
            "yolo26_p95_ms",
            "YOLO26 p95 latency",
            inf.filter(|i| i.yolo26_latency_ms.samples > 0)
                .map(|i| i.yolo26_latency_ms.p95),
        ),
        (
            "nemotron_p95_ms",
            "Nemotron p95 latency",
            inf.filter(|i| i.nemotron_latency_ms.samples > 0)
                .map(|i| i.nemotron_latency_ms.p95),
        ),
        (
            "redis_memory_mb",
            "Redis memory",
            s.databases
                .as_ref()
                .and_then(|d| d.redis.as_ref())
                .map(|r| r.memory_mb),
        ),
    ]
}

/// Every value at or above its threshold (critical before warning).
pub fn alerts(s: &PerformanceSnapshot, t: &ThresholdsConfig) -> Vec<PerfAlert> {
    let mut out = Vec::new();
    for ((metric, what, value), (name, warning, critical)) in measured(s).into_iter().zip(t.pairs())
    {
        debug_assert_eq!(metric, name);
        let Some(value) = value else { continue };
        let (severity, threshold) = if value >= critical {
            ("critical", critical)
        } else if value >= warning {
            ("warning", warning)
        } else {
            continue;
        };
        out.push(PerfAlert {
            severity: severity.into(),
            metric: metric.into(),
            value: (value * 100.0).round() / 100.0,
            threshold,
            message: format!(
                "{what} at {value:.1}, at or above the {severity} threshold of {threshold}"
            ),
        });
    }
    out
}

/// The time ranges the history answers.
pub const TIME_RANGES: [(&str, Duration); 3] = [
    ("5m", Duration::from_secs(300)),
    ("15m", Duration::from_secs(900)),
    ("60m", Duration::from_secs(3600)),
];

/// Snapshots returned by the history, at most.
pub const HISTORY_POINTS: usize = 60;

/// The ring of samples.
pub struct History {
    capacity: usize,
    samples: VecDeque<(Instant, Arc<PerformanceSnapshot>)>,
}

impl History {
    /// Samples held.
    pub fn entries(&self) -> usize {
        self.samples.len()
    }

    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            samples: VecDeque::new(),
        }
    }

    pub fn push(&mut self, at: Instant, s: Arc<PerformanceSnapshot>) {
        self.samples.push_back((at, s));
        while self.samples.len() > self.capacity {
            self.samples.pop_front();
        }
    }

    pub fn latest(&self) -> Option<Arc<PerformanceSnapshot>> {
        self.samples.back().map(|(_, s)| s.clone())
    }

    /// The samples of the last `window` (as of `now`), oldest first, evenly thinned to
    /// at most `HISTORY_POINTS`.
    pub fn window(&self, window: Duration, now: Instant) -> Vec<Arc<PerformanceSnapshot>> {
        let within: Vec<&Arc<PerformanceSnapshot>> = self
            .samples
            .iter()
            .filter(|(at, _)| now.duration_since(*at) < window)
            .map(|(_, s)| s)
            .collect();
        downsample(&within, HISTORY_POINTS)
            .into_iter()
            .cloned()
            .collect()
    }
}

/// At most `max` items, evenly spaced, first one kept, order kept.
pub fn downsample<T: Clone>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max {
        return items.to_vec();
    }
    (0..max)
        .map(|i| items[i * items.len() / max].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(cpu: f64) -> PerformanceSnapshot {
        PerformanceSnapshot {
            host: Some(HostStats {
                cpu_percent: cpu,
                ram_used_gb: 1.0,
                ram_total_gb: 4.0,
                ram_percent: 25.0,
                disk_used_gb: None,
                disk_total_gb: None,
                disk_percent: None,
            }),
            ..PerformanceSnapshot::empty()
        }
    }

    #[test]
    fn values_at_or_above_a_threshold_raise_alerts() {
        let t = ThresholdsConfig::default();
        assert!(alerts(&snapshot(50.0), &t).is_empty());
        let a = alerts(&snapshot(80.0), &t);
        assert_eq!(
            (a[0].severity.as_str(), a[0].metric.as_str(), a[0].threshold),
            ("warning", "cpu_percent", 80.0)
        );
        let a = alerts(&snapshot(99.0), &t);
        assert_eq!(a[0].severity, "critical");
        let low = ThresholdsConfig {
            ram_percent_warning: 10.0,
            ..t
        };
        assert_eq!(alerts(&snapshot(1.0), &low)[0].metric, "ram_percent");
    }

    /// One sample every 5 s for an hour (720), on the paused clock.
    #[tokio::test(start_paused = true)]
    async fn history_is_downsampled_evenly_oldest_first() {
        let mut h = History::new(720);
        for i in 0..720 {
            h.push(Instant::now(), Arc::new(snapshot(i as f64)));
            tokio::time::advance(Duration::from_secs(5)).await;
        }
        let now = Instant::now() - Duration::from_secs(5);
        let cpu = |v: &[Arc<PerformanceSnapshot>]| -> Vec<f64> {
            v.iter()
                .map(|s| s.host.as_ref().map_or(-1.0, |h| h.cpu_percent))
                .collect()
        };
        let hour = h.window(Duration::from_secs(3600), now);
        assert_eq!(hour.len(), 60, "720 samples → 60 for 60m");
        let c = cpu(&hour);
        assert_eq!(
            (c[0], c[1], c[59]),
            (0.0, 12.0, 708.0),
            "every twelfth, oldest first"
        );
        let quarter = h.window(Duration::from_secs(900), now);
        let c = cpu(&quarter);
        assert_eq!(quarter.len(), 60);
        assert_eq!(c[1] - c[0], 3.0, "15m: every third sample");
        assert_eq!(*c.last().unwrap_or(&0.0), 717.0);
        let five = h.window(Duration::from_secs(300), now);
        assert_eq!(five.len(), 60, "5m: all of the last 60 samples");
        assert_eq!(cpu(&five)[0], 660.0);
    }
}
