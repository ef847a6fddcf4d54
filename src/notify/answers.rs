//! What the notifiers answer through the API: the list, a test's outcome, and their
//! errors (mapped to HTTP in one place, `api/error.rs`).

use chrono::{DateTime, Utc};

use super::channel::NotifierView;
use super::heartbeat::HeartbeatView;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("No notifier named '{0}' (GET /api/system/notifiers lists them)")]
    Unknown(String),
    #[error("The test message to '{name}' was not delivered ({why}); it stays in the outbox and is sent when the receiver answers")]
    NotDelivered { name: String, why: String },
    #[error("The outbox of '{0}' is full of transitions waiting for its receiver; a test message would push one out, so none was sent")]
    OutboxFull(String),
    #[error("cannot open the outbox of notifier '{name}' in {dir}: {source}")]
    Outbox {
        name: String,
        dir: String,
        source: std::io::Error,
    },
    #[error("notifier '{name}': {why}")]
    Setup { name: String, why: String },
}

/// `GET /api/system/notifiers`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NotifierList {
    pub notifiers: Vec<NotifierView>,
    pub count: usize,
    /// A firing alert is told again this often.
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub repeat_seconds: f64,
    /// Resolutions are told too.
    pub send_resolved: bool,
    /// The dead man's switch (`[heartbeat]`), when configured.
    pub heartbeat: Option<HeartbeatView>,
    pub timestamp: DateTime<Utc>,
}

/// What `POST /api/system/notifiers/{name}/test` did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TestDelivery {
    pub notifier: String,
    /// `true`: the receiver acknowledged it.
    pub delivered: bool,
    /// Seconds from the request to the acknowledgement.
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub seconds: f64,
    pub message: String,
}
