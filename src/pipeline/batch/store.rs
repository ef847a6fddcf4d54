//! The one interface both batch stores (Redis, memory) offer the aggregator.

use futures_util::future::BoxFuture;

/// An open (or claimed) batch. Times are unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchState {
    pub batch_id: String,
    pub camera_id: String,
    /// Detection ids, without duplicates.
    pub detections: Vec<i64>,
    pub started_at: f64,
    pub last_activity: f64,
}

/// The camera's batch right after an add.
#[derive(Debug, Clone, PartialEq)]
pub struct Added {
    pub batch_id: String,
    /// Detections in the batch now.
    pub count: usize,
    pub started_at: f64,
}

/// Where open batches live. Closing is claim → hand off → finish; a claimed batch
/// whose hand-off failed is released (memory) or found again by `orphans` (Redis).
pub trait BatchStore: Send + Sync {
    /// Add a detection to the camera's open batch, creating it if needed.
    fn add<'a>(
        &'a self,
        camera_id: &'a str,
        detection_id: i64,
        now: f64,
    ) -> BoxFuture<'a, Result<Added, String>>;

    /// Every open batch.
    fn open(&self) -> BoxFuture<'_, Result<Vec<BatchState>, String>>;

    /// Detach `batch` from its camera for closing; `Ok(None)` when someone else (another
    /// instance) already did. Returns the batch as stored at the moment of the claim.
    fn claim<'a>(
        &'a self,
        batch: &'a BatchState,
        now: f64,
    ) -> BoxFuture<'a, Result<Option<BatchState>, String>>;

    /// The hand-off of a claimed batch failed: keep it for a later attempt.
    fn release(&self, batch: BatchState) -> BoxFuture<'_, Result<(), String>>;

    /// The claimed batch was handed off: forget it.
    fn finish<'a>(&'a self, batch_id: &'a str) -> BoxFuture<'a, Result<(), String>>;

    /// Batches claimed long ago and never finished (a crash between claim and
    /// hand-off, in any instance), each re-claimed for this caller.
    fn orphans(&self, now: f64) -> BoxFuture<'_, Result<Vec<BatchState>, String>>;
}
