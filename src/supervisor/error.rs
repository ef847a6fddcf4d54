//! What a supervisor operation can refuse.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("Invalid worker name '{0}': it must start with a letter and contain only letters, digits and underscores")]
    InvalidName(String),
    #[error("Worker '{0}' not found")]
    UnknownWorker(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Worker supervisor is not running")]
    NotRunning,
}
