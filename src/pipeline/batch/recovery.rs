//! Batch recovery: no detection is left without an event when Redis forgets.
//!
//! PostgreSQL remembers batch membership (`crate::store`): a detection's `batch_id`
//! is written when its batch is handed to analysis, and by its event. Every window
//! (between 5 and 30 s; and at start) the aggregator:
//!
//! 1. writes the memberships a PostgreSQL outage held back;
//! 2. checks Redis's marker (`pipeline:marker`, set once, never expired). A Redis that
//!    lost it while PostgreSQL recorded one has forgotten its data: the closed batches
//!    waiting for analysis went with it, so every batch handed off in the last day
//!    with no event is handed to analysis again, under its own id (the event is
//!    written once per batch id);
//! 3. gathers the detections no batch took that are older than a batch can stay open
//!    (twice window + idle, plus 10 s for a restart) and younger than a day, and hands
//!    them to analysis as `recovered` batches of the camera (at most `max_detections`
//!    each).
//!
//! An event never lists a detection that another event lists (`Store::insert_event`),
//! so a detection recovered while its first batch still waited somewhere becomes part
//! of whichever is analysed first, and of no other.

use std::time::Duration;
use tokio::time::Instant;

use super::aggregator::{BatchAggregator, BatchError};
use super::recovery_state::Recovery;
use super::rules::{CloseReason, ClosedBatch};
use crate::time::to_unix;

/// How far back it looks.
const LOOKBACK: chrono::Duration = chrono::Duration::days(1);
/// The most detections or batches it takes in one pass (the rest on the next).
const PASS_LIMIT: i64 = 5_000;
/// The key of the marker in `pipeline_state`.
const MARKER_KEY: &str = "redis_marker";

impl BatchAggregator {
    /// One recovery pass when it is due (see the module's text).
    pub(super) async fn recover_if_due(&self) -> Result<(), BatchError> {
        let Some(recovery) = &self.recovery else {
            return Ok(());
        };
        let now = Instant::now();
        {
            let every = Duration::from_secs_f64(self.rules.window.clamp(5.0, 30.0));
            let mut st = recovery.lock();
            if st.next.is_some_and(|n| now < n) {
                return Ok(());
            }
            st.next = Some(now + every);
        }
        let unwritten = std::mem::take(&mut recovery.lock().unwritten);
        for (i, (batch_id, ids)) in unwritten.iter().enumerate() {
            if recovery.store.assign_batch(batch_id, ids).await.is_err() {
                recovery
                    .lock()
                    .unwritten
                    .extend(unwritten[i..].iter().cloned());
                return Ok(());
            }
        }
        self.redo_forgotten(recovery).await?;
        self.gather_unbatched(recovery).await
    }

    /// Step 2: a Redis that forgot its data.
    async fn redo_forgotten(&self, recovery: &Recovery) -> Result<(), BatchError> {
        let Some(redis) = &self.redis else {
            return Ok(());
        };
        let Ok(marker) = redis.marker().await else {
            return Ok(()); // Redis away: its batches live in memory meanwhile.
        };
        let Ok(recorded) = recovery.store.pipeline_state(MARKER_KEY).await else {
            return Ok(());
        };
        if let Some(marker) = marker {
            // Redis kept its data. A record that differs (another instance marked it
            // at the same moment) is brought in step; nothing was forgotten.
            if recorded.as_deref() != Some(marker.as_str()) {
                let _ = recovery.store.set_pipeline_state(MARKER_KEY, &marker).await;
            }
            return Ok(());
        }
        if recorded.is_some() {
            let since = crate::time::now() - LOOKBACK;
            let Ok(batches) = recovery.store.unanalysed_batches(since, PASS_LIMIT).await else {
                return Ok(());
            };
            if !batches.is_empty() {
                tracing::warn!(
                    batches = batches.len(),
                    "Redis forgot its data: the batches it held for analysis are handed over again from PostgreSQL"
                );
            }
            let now = self.clock.now();
            for b in batches {
                self.hand_over(ClosedBatch {
                    batch_id: b.batch_id,
                    camera_id: b.camera_id,
                    detection_ids: b.detection_ids,
                    started_at: to_unix(b.first_at),
                    closed_at: now,
                    reason: CloseReason::Recovered,
                })
                .await?;
            }
        }
        // Marked only once everything it forgot was handed over again; the first
        // instance to mark it wins, and every instance records that mark.
        if let Ok(mark) = redis.mark(&uuid::Uuid::new_v4().to_string()).await {
            let _ = recovery.store.set_pipeline_state(MARKER_KEY, &mark).await;
        }
        Ok(())
    }

    /// Hand a recovered batch to analysis and announce it (no Redis claim: it is
    /// in no store).
    async fn hand_over(&self, closed: ClosedBatch) -> Result<ClosedBatch, BatchError> {
        self.sink
            .hand_off(&closed)
            .await
            .map_err(|e| BatchError::HandOff(closed.batch_id.clone(), e))?;
        self.closed(&closed);
        Ok(closed)
    }

    /// Step 3: detections no batch took.
    async fn gather_unbatched(&self, recovery: &Recovery) -> Result<(), BatchError> {
        let now = crate::time::now();
        let open_for = 2.0 * (self.rules.window + self.rules.idle) + 10.0;
        let before = now - chrono::Duration::milliseconds((open_for * 1000.0) as i64);
        let Ok(found) = recovery
            .store
            .unbatched_detections(now - LOOKBACK, before, PASS_LIMIT)
            .await
        else {
            return Ok(());
        };
        if found.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            detections = found.len(),
            "detections that no batch took (their batch was lost) are handed to analysis as recovered batches"
        );
        let max = self.rules.max.max(1);
        let mut i = 0;
        while i < found.len() {
            let camera = found[i].camera_id.clone();
            let mut chunk = Vec::new();
            let started = found[i].detected_at;
            while i < found.len() && found[i].camera_id == camera && chunk.len() < max {
                chunk.push(found[i].id);
                i += 1;
            }
            let closed = self
                .hand_over(ClosedBatch {
                    batch_id: format!("recovered-{}", uuid::Uuid::new_v4()),
                    camera_id: camera,
                    detection_ids: chunk,
                    started_at: to_unix(started),
                    closed_at: self.clock.now(),
                    reason: CloseReason::Recovered,
                })
                .await?;
            recovery.handed_off(&closed).await;
        }
        Ok(())
    }
}
