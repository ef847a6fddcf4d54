//! Batches kept in this process while Redis is unreachable. A camera whose batch
//! lives here keeps using it until it closes, so one camera never has two batches.

use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::store::{Added, BatchState, BatchStore};

#[derive(Default)]
pub struct MemoryStore {
    batches: Mutex<HashMap<String, BatchState>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, BatchState>> {
        // Each critical section leaves the map whole; survive a poisoned lock.
        self.batches.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_camera(&self, camera_id: &str) -> bool {
        self.lock().contains_key(camera_id)
    }

    /// Every open memory batch.
    pub fn snapshot(&self) -> Vec<BatchState> {
        self.lock().values().cloned().collect()
    }

    /// Add synchronously (memory never fails).
    pub fn add_now(&self, camera_id: &str, detection_id: i64, now: f64) -> BatchState {
        let mut map = self.lock();
        let b = map
            .entry(camera_id.to_string())
            .or_insert_with(|| BatchState {
                batch_id: uuid::Uuid::new_v4().to_string(),
                camera_id: camera_id.to_string(),
                detections: Vec::new(),
                started_at: now,
                last_activity: now,
            });
        if !b.detections.contains(&detection_id) {
            b.detections.push(detection_id);
        }
        b.last_activity = now;
        b.clone()
    }
}

impl BatchStore for MemoryStore {
    fn add<'a>(
        &'a self,
        camera_id: &'a str,
        detection_id: i64,
        now: f64,
    ) -> BoxFuture<'a, Result<Added, String>> {
        let b = self.add_now(camera_id, detection_id, now);
        Box::pin(async move {
            Ok(Added {
                batch_id: b.batch_id,
                count: b.detections.len(),
                started_at: b.started_at,
            })
        })
    }

    fn open(&self) -> BoxFuture<'_, Result<Vec<BatchState>, String>> {
        let all = self.snapshot();
        Box::pin(async move { Ok(all) })
    }

    fn claim<'a>(
        &'a self,
        batch: &'a BatchState,
        _now: f64,
    ) -> BoxFuture<'a, Result<Option<BatchState>, String>> {
        let mut map = self.lock();
        let won = match map.get(&batch.camera_id) {
            Some(b) if b.batch_id == batch.batch_id => map.remove(&batch.camera_id),
            _ => None,
        };
        Box::pin(async move { Ok(won) })
    }

    fn release<'a>(&'a self, batch: BatchState) -> BoxFuture<'a, Result<(), String>> {
        // The hand-off failed: put it back (unless the camera started a new batch, in
        // which case merge, so nothing is dropped).
        let mut map = self.lock();
        match map.get_mut(&batch.camera_id) {
            Some(current) => {
                for d in batch.detections {
                    if !current.detections.contains(&d) {
                        current.detections.push(d);
                    }
                }
                current.started_at = current.started_at.min(batch.started_at);
            }
            None => {
                map.insert(batch.camera_id.clone(), batch);
            }
        }
        Box::pin(async { Ok(()) })
    }

    fn finish<'a>(&'a self, _batch_id: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn orphans(&self, _now: f64) -> BoxFuture<'_, Result<Vec<BatchState>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}
