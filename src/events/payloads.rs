//! The payload (`data`) of every event type. Each derives `ToSchema`, from which the
//! registry's `payload_schema` is generated, and offers an example. Nested structs are
//! inlined so every schema stands alone.

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::states::{
    BreakerState, CameraStatus, CloseReason, HealthState, Mode, ServiceStatus, Severity,
    WorkerStatus,
};

/// Payloads provide an example for the registry.
pub trait Example {
    fn example() -> Self;
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetectionNew {
    pub detection_id: i64,
    pub camera_id: String,
    pub object_type: String,
    pub confidence: f64,
}

impl Example for DetectionNew {
    fn example() -> Self {
        Self {
            detection_id: 123,
            camera_id: "front_door".into(),
            object_type: "person".into(),
            confidence: 0.95,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetectionBatch {
    pub batch_id: String,
    pub camera_id: String,
    pub detection_count: usize,
    pub detection_ids: Vec<i64>,
    pub started_at: DateTime<Utc>,
    pub closed_at: DateTime<Utc>,
    #[schema(inline)]
    pub reason: CloseReason,
}

impl Example for DetectionBatch {
    fn example() -> Self {
        Self {
            batch_id: "550e8400-e29b-41d4-a716-446655440000".into(),
            camera_id: "front_door".into(),
            detection_count: 2,
            detection_ids: vec![123, 124],
            started_at: at(1_766_831_400),
            closed_at: at(1_766_831_490),
            reason: CloseReason::Window,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventCreated {
    pub event_id: i64,
    pub batch_id: String,
    pub camera_id: String,
    pub risk_score: i64,
    /// `low`, `medium`, `high` or `critical`.
    pub risk_level: String,
    pub summary: String,
}

impl Example for EventCreated {
    fn example() -> Self {
        Self {
            event_id: 456,
            batch_id: "550e8400-e29b-41d4-a716-446655440000".into(),
            camera_id: "front_door".into(),
            risk_score: 75,
            risk_level: "high".into(),
            summary: "Person detected at front door".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventUpdated {
    pub event_id: i64,
    pub camera_id: String,
    pub risk_score: i64,
    pub risk_level: String,
    pub summary: String,
}

impl Example for EventUpdated {
    fn example() -> Self {
        Self {
            event_id: 456,
            camera_id: "front_door".into(),
            risk_score: 40,
            risk_level: "medium".into(),
            summary: "Delivery person at front door".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertCreated {
    /// This firing's id (the row of `GET /api/system/alerts`).
    pub alert_id: String,
    /// The same for every firing of the same problem.
    pub fingerprint: String,
    /// `WatchpostDependencyDown`, `WatchpostWorkerNotRunning`,
    /// `WatchpostCircuitBreakerOpen`.
    pub alertname: String,
    #[schema(inline)]
    pub severity: Severity,
    /// What the alert is about: `postgres`, `redis`, `ai:<service>`,
    /// `worker:<name>` or `breaker:<name>`.
    pub source: String,
    pub message: String,
    pub started_at: DateTime<Utc>,
}

impl Example for AlertCreated {
    fn example() -> Self {
        Self {
            alert_id: "2b1f3c4d-0000-4000-8000-000000000001".into(),
            fingerprint: "5f2c9a7b1e3d4c60".into(),
            alertname: "WatchpostDependencyDown".into(),
            severity: Severity::Critical,
            source: "postgres".into(),
            message: "postgres unhealthy (Database unavailable: Connection refused)".into(),
            started_at: at(1_766_831_400),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertResolved {
    pub alert_id: String,
    pub fingerprint: String,
    pub alertname: String,
    #[schema(inline)]
    pub severity: Severity,
    pub source: String,
    pub message: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
}

impl Example for AlertResolved {
    fn example() -> Self {
        Self {
            alert_id: "2b1f3c4d-0000-4000-8000-000000000001".into(),
            fingerprint: "5f2c9a7b1e3d4c60".into(),
            alertname: "WatchpostDependencyDown".into(),
            severity: Severity::Critical,
            source: "postgres".into(),
            message: "postgres is fine again".into(),
            started_at: at(1_766_831_400),
            ended_at: at(1_766_831_442),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CameraStatusChanged {
    pub camera_id: String,
    #[schema(inline)]
    pub status: CameraStatus,
    /// `null` for a camera seen for the first time.
    #[schema(inline)]
    pub previous_status: Option<CameraStatus>,
    /// Why, in words (`no image for 31 min; it is usually silent at most 15 min`).
    pub reason: String,
    /// The folder's name.
    pub folder: String,
}

impl Example for CameraStatusChanged {
    fn example() -> Self {
        Self {
            camera_id: "front_door".into(),
            status: CameraStatus::Offline,
            previous_status: Some(CameraStatus::Stale),
            reason: "no image for 2 h 4 min; it is usually silent at most 1 h 2 min".into(),
            folder: "Front Door".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStarted {
    pub job_id: String,
    pub job_type: String,
    pub retention_days: u32,
}

impl Example for JobStarted {
    fn example() -> Self {
        Self {
            job_id: "7d9f0e1a-0000-4000-8000-000000000002".into(),
            job_type: "cleanup".into(),
            retention_days: 30,
        }
    }
}

/// What a cleanup has deleted so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub deleted_detections: u64,
    pub deleted_events: u64,
    pub deleted_files: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobProgress {
    pub job_id: String,
    pub job_type: String,
    /// `detections` or `events`.
    pub phase: String,
    pub deleted_detections: u64,
    pub deleted_events: u64,
    pub deleted_files: u64,
}

impl JobProgress {
    pub fn new(job_id: &str, job_type: &str, phase: &str, d: Deleted) -> Self {
        Self {
            job_id: job_id.into(),
            job_type: job_type.into(),
            phase: phase.into(),
            deleted_detections: d.deleted_detections,
            deleted_events: d.deleted_events,
            deleted_files: d.deleted_files,
        }
    }
}

impl Example for JobProgress {
    fn example() -> Self {
        Self::new(
            "7d9f0e1a-0000-4000-8000-000000000002",
            "cleanup",
            "detections",
            Deleted {
                deleted_detections: 1000,
                ..Deleted::default()
            },
        )
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobCompleted {
    pub job_id: String,
    pub job_type: String,
    pub deleted_detections: u64,
    pub deleted_events: u64,
    pub deleted_files: u64,
    pub duration_seconds: f64,
}

impl JobCompleted {
    pub fn new(job_id: &str, job_type: &str, d: Deleted, duration_seconds: f64) -> Self {
        Self {
            job_id: job_id.into(),
            job_type: job_type.into(),
            deleted_detections: d.deleted_detections,
            deleted_events: d.deleted_events,
            deleted_files: d.deleted_files,
            duration_seconds,
        }
    }
}

impl Example for JobCompleted {
    fn example() -> Self {
        Self::new(
            "7d9f0e1a-0000-4000-8000-000000000002",
            "cleanup",
            Deleted {
                deleted_detections: 1520,
                deleted_events: 31,
                deleted_files: 0,
            },
            0.84,
        )
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobFailed {
    pub job_id: String,
    pub job_type: String,
    pub error: String,
}

impl Example for JobFailed {
    fn example() -> Self {
        Self {
            job_id: "7d9f0e1a-0000-4000-8000-000000000002".into(),
            job_type: "cleanup".into(),
            error: "database unavailable: Connection refused".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemHealthChanged {
    #[schema(inline)]
    pub status: HealthState,
    #[schema(inline)]
    pub previous_status: Option<HealthState>,
    pub ready: bool,
    #[schema(inline)]
    pub mode: Mode,
    #[schema(inline)]
    pub previous_mode: Option<Mode>,
    pub message: String,
}

impl Example for SystemHealthChanged {
    fn example() -> Self {
        Self {
            status: HealthState::Degraded,
            previous_status: Some(HealthState::Healthy),
            ready: true,
            mode: Mode::Degraded,
            previous_mode: Some(Mode::Normal),
            message: "Degraded: florence unhealthy".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemStatus {
    // Overall health from the latest probe round (`unknown`: no round yet). Not a doc
    // comment: on an inlined enum, utoipa would turn it into an `allOf` with an object.
    #[schema(inline)]
    pub status: HealthState,
    #[schema(inline)]
    pub mode: Mode,
    pub workers_running: usize,
    pub workers_total: usize,
    pub breakers_open: usize,
    pub queue_detection: u64,
    pub queue_analysis: u64,
    pub dead_letters: u64,
    pub websocket_clients: usize,
}

impl Example for SystemStatus {
    fn example() -> Self {
        Self {
            status: HealthState::Healthy,
            mode: Mode::Normal,
            workers_running: 9,
            workers_total: 9,
            breakers_open: 0,
            queue_detection: 3,
            queue_analysis: 0,
            dead_letters: 0,
            websocket_clients: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceStatusChanged {
    pub service: String,
    #[schema(inline)]
    pub status: ServiceStatus,
    #[schema(inline)]
    pub previous_status: ServiceStatus,
    pub consecutive_failures: u32,
    pub error: Option<String>,
}

impl Example for ServiceStatusChanged {
    fn example() -> Self {
        Self {
            service: "florence".into(),
            status: ServiceStatus::Unhealthy,
            previous_status: ServiceStatus::Healthy,
            consecutive_failures: 3,
            error: Some("Connection refused".into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkerStatusChanged {
    pub worker_name: String,
    #[schema(inline)]
    pub status: WorkerStatus,
    #[schema(inline)]
    pub previous_status: WorkerStatus,
    pub restart_count: u32,
    pub error: Option<String>,
}

impl Example for WorkerStatusChanged {
    fn example() -> Self {
        Self {
            worker_name: "detection_worker".into(),
            status: WorkerStatus::Restarting,
            previous_status: WorkerStatus::Crashed,
            restart_count: 1,
            error: Some("Connection reset by peer".into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CircuitBreakerStateChanged {
    pub name: String,
    #[schema(inline)]
    pub previous_state: BreakerState,
    #[schema(inline)]
    pub new_state: BreakerState,
    pub failure_count: u32,
}

impl Example for CircuitBreakerStateChanged {
    fn example() -> Self {
        Self {
            name: "yolo26".into(),
            previous_state: BreakerState::Closed,
            new_state: BreakerState::Open,
            failure_count: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemSubscribed {
    /// The channels this connection receives now.
    pub channels: Vec<String>,
}

impl Example for SystemSubscribed {
    fn example() -> Self {
        Self {
            channels: vec!["events".into(), "system".into()],
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SystemError {
    /// `invalid_json`, `unknown_action`, `unknown_channel` or `message_too_large`.
    pub code: String,
    pub message: String,
}

impl Example for SystemError {
    fn example() -> Self {
        Self {
            code: "unknown_channel".into(),
            message: "Unknown channel 'weather'; valid channels: detections, events, alerts, cameras, jobs, system".into(),
        }
    }
}
