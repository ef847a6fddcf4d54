//! What batch recovery keeps between its passes (`recovery.rs` runs them): when the
//! next pass is due, and the batch memberships a PostgreSQL outage held back.

use std::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

use super::rules::ClosedBatch;
use crate::store::Store;

#[derive(Default)]
pub(super) struct State {
    pub(super) next: Option<Instant>,
    /// Memberships not written yet (PostgreSQL was away).
    pub(super) unwritten: Vec<(String, Vec<i64>)>,
}

pub struct Recovery {
    pub(super) store: std::sync::Arc<Store>,
    state: Mutex<State>,
}

impl Recovery {
    pub fn new(store: std::sync::Arc<Store>) -> Self {
        Self {
            store,
            state: Mutex::new(State::default()),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the state whole; survive a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record that a batch went to analysis (kept for later while PostgreSQL is away).
    pub async fn handed_off(&self, b: &ClosedBatch) {
        if let Err(e) = self.store.assign_batch(&b.batch_id, &b.detection_ids).await {
            tracing::debug!(batch_id = %b.batch_id, error = %e, "batch membership not written yet");
            let mut st = self.lock();
            if st.unwritten.len() < 100_000 {
                st.unwritten
                    .push((b.batch_id.clone(), b.detection_ids.clone()));
            }
        }
    }
}
