//! Adding detections to their cameras' open batches: one at a time, or several in one
//! round trip when none of them can fill a batch.

use std::collections::HashMap;

use super::aggregator::{BatchAggregator, BatchError, Seen};
use super::redis_store::RedisStore;
use super::rules::CloseReason;
use super::store::{self, BatchState, BatchStore};

impl BatchAggregator {
    /// Add a stored detection to its camera's open batch (closing it at max size).
    pub async fn add(&self, camera_id: &str, detection_id: i64) -> Result<(), BatchError> {
        let now = self.clock.now();
        // A camera whose batch lives in memory keeps using it until it closes.
        if !self.memory.has_camera(camera_id) {
            if let Some(redis) = &self.redis {
                match redis.add(camera_id, detection_id, now).await {
                    Ok(added) => {
                        self.note_added(camera_id, &added, now);
                        self.close_if_full(redis, camera_id, added, now).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, camera_id, "keeping the batch in memory");
                    }
                }
            }
        }
        let b = self.memory.add_now(camera_id, detection_id, now);
        self.publish_gauge();
        if b.detections.len() >= self.rules.max {
            self.close(&self.memory, &b, CloseReason::MaxSize, now)
                .await?;
        }
        Ok(())
    }

    /// [`BatchAggregator::add`] for several detections, in order. While Redis holds
    /// the batches and none of these detections can fill its camera's batch (as far
    /// as this instance has seen), they go in one round trip; otherwise one by one, so
    /// a batch closes at `max_detections` exactly as with single adds.
    pub async fn add_all(&self, items: &[(&str, i64)]) -> Result<(), BatchError> {
        let pipelined = match &self.redis {
            Some(redis) if items.len() > 1 && self.none_can_fill(items) => {
                let now = self.clock.now();
                match redis.add_all(items, now).await {
                    Ok(added) => {
                        for ((camera_id, _), added) in items.iter().zip(&added) {
                            self.note_added(camera_id, added, now);
                        }
                        // Another instance adding at the same moment can still fill
                        // a batch: close it as a single add would.
                        for ((camera_id, _), added) in items.iter().zip(added) {
                            self.close_if_full(redis, camera_id, added, now).await?;
                        }
                        true
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "pipelined batch adds failed; adding one by one");
                        false
                    }
                }
            }
            _ => false,
        };
        if !pipelined {
            for (camera_id, detection_id) in items {
                self.add(camera_id, *detection_id).await?;
            }
        }
        Ok(())
    }

    /// Close a Redis batch that an add made full (`max_detections`).
    async fn close_if_full(
        &self,
        redis: &RedisStore,
        camera_id: &str,
        added: store::Added,
        now: f64,
    ) -> Result<(), BatchError> {
        if added.count < self.rules.max {
            return Ok(());
        }
        let stub = BatchState {
            batch_id: added.batch_id,
            camera_id: camera_id.to_string(),
            detections: Vec::new(),
            started_at: added.started_at,
            last_activity: now,
        };
        self.close(redis, &stub, CloseReason::MaxSize, now).await?;
        Ok(())
    }

    /// True when no camera of `items` keeps its batch in memory, and adding them all
    /// leaves each camera's current batch (as mirrored) below `max_detections`.
    fn none_can_fill(&self, items: &[(&str, i64)]) -> bool {
        let mut per_camera: HashMap<&str, usize> = HashMap::new();
        for (camera_id, _) in items {
            *per_camera.entry(camera_id).or_default() += 1;
        }
        let mirror = self.mirror();
        per_camera.into_iter().all(|(camera_id, n)| {
            let current = mirror
                .iter()
                .filter(|s| s.camera_id == camera_id)
                .map(|s| s.count)
                .max()
                .unwrap_or(0);
            !self.memory.has_camera(camera_id) && current + n < self.rules.max
        })
    }

    /// Keep the mirror current between ticks.
    fn note_added(&self, camera_id: &str, added: &store::Added, now: f64) {
        let mut mirror = self.mirror();
        match mirror.iter_mut().find(|s| s.batch_id == added.batch_id) {
            Some(seen) => {
                seen.count = added.count;
                seen.last_activity = now;
            }
            None => mirror.push(Seen {
                batch_id: added.batch_id.clone(),
                camera_id: camera_id.to_string(),
                count: added.count,
                started_at: added.started_at,
                last_activity: now,
            }),
        }
        drop(mirror);
        self.publish_gauge();
    }
}
