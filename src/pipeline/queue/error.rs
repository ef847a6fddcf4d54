//! What can go wrong with a queue.

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue '{queue}' fallback spool is full ({max} items); item refused")]
    SpoolFull { queue: String, max: u64 },
    #[error("queue '{queue}' spool I/O failed: {source}")]
    Spool {
        queue: String,
        source: std::io::Error,
    },
    #[error("queue '{queue}' is unavailable: {why}")]
    Unavailable { queue: String, why: String },
}
