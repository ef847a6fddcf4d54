//! Detection worker (`detection_worker`): takes images off the detection queue, calls
//! YOLO26 through its breaker, stores the detections, adds them to the camera's batch
//! and emits `detection.new`. An item is acknowledged only after its results are
//! stored and batched; while YOLO26, PostgreSQL or Redis is unavailable the item is
//! kept and retried with backoff. Only a permanent problem (file gone, image rejected
//! by YOLO26 with a 4xx, unreadable item) acknowledges an item without results, with
//! an error log and a metric.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

use super::batch::BatchAggregator;
use super::consume::{consume, ItemOutcome, Stage, StageSettings};
use super::queue::{Delivery, Queue};
use super::store::Store;
use super::watcher::DetectionItem;
use crate::ai::{AiClients, AiError};
use crate::events::EventBus;
use crate::prom::Metrics;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

pub struct DetectionWorker {
    pub queue: Arc<Queue>,
    pub ai: Arc<AiClients>,
    pub store: Arc<Store>,
    pub batches: Arc<BatchAggregator>,
    pub events: EventBus,
    pub metrics: Arc<Metrics>,
    pub consumer_name: String,
}

impl DetectionWorker {
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            "detection_worker",
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let mut consumer = self.queue.consumer(&self.consumer_name);
        let settings = StageSettings {
            stage: Stage::Detection,
            budget: self.ai.detect_budget() + super::STAGE_SLACK,
            claim_refresh: consumer.claim_refresh(),
        };
        consume(
            ctx,
            &mut consumer,
            &self.metrics,
            settings,
            |d| async move { self.process(&d).await },
        )
        .await
    }

    /// `Ok(outcome)` when the item is done, `Err(why)` to retry it later.
    async fn process(&self, d: &Delivery) -> Result<ItemOutcome, String> {
        let item: DetectionItem = match serde_json::from_str(&d.payload) {
            Ok(i) => i,
            Err(e) => {
                tracing::error!(item = %d.id, error = %e, "unreadable detection item; dropping it");
                return Ok(ItemOutcome::InvalidItem);
            }
        };
        let image = match tokio::fs::read(&item.file_path).await {
            Ok(b) => Bytes::from(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::error!(path = %item.file_path, "image vanished before detection; nothing to detect");
                return Ok(ItemOutcome::FileMissing);
            }
            Err(e) => return Err(format!("cannot read {}: {e}", item.file_path)),
        };
        let started = Instant::now();
        let result = match self.ai.detect(image, &item.file_path).await {
            Ok(r) => r,
            Err(AiError::BadRequest { status, detail, .. }) => {
                tracing::error!(path = %item.file_path, status, detail = %detail, "YOLO26 rejected the image");
                return Ok(ItemOutcome::Rejected);
            }
            Err(e) => return Err(e.to_string()),
        };
        self.metrics
            .stage_timed("detect", started.elapsed().as_secs_f64());
        let started = Instant::now();
        let folder = std::path::Path::new(&item.file_path)
            .parent()
            .and_then(|p| p.file_name())
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        if let Err(e) = self.store.touch_camera(&item.camera_id, &folder).await {
            return Err(e.to_string());
        }
        let ids = match self
            .store
            .store_detections(
                &item.camera_id,
                &item.file_path,
                &item.file_hash,
                item.seen_at,
                &result.detections,
            )
            .await
        {
            Ok(ids) => ids,
            Err(e) => return Err(e.to_string()),
        };
        self.metrics
            .stage_timed("store", started.elapsed().as_secs_f64());
        for (id, det) in ids.iter().zip(&result.detections) {
            if let Err(e) = self.batches.add(&item.camera_id, *id).await {
                return Err(e.to_string());
            }
            // At-least-once, like the queue: a redelivered item announces its
            // detections again with the same ids, so clients can de-duplicate.
            self.events.publish(
                "detection.new",
                "detections",
                serde_json::json!({
                    "detection_id": id,
                    "camera_id": item.camera_id,
                    "object_type": det.object_type,
                    "confidence": det.confidence,
                }),
            );
        }
        if ids.is_empty() {
            Ok(ItemOutcome::NoDetections)
        } else {
            Ok(ItemOutcome::Stored)
        }
    }
}
