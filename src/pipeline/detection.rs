//! Detection worker (`detection_worker`): takes images off the detection queue, reads
//! each safely from the camera folder (`camera_fs`), calls YOLO26 through its breaker,
//! stores the detections, adds them to the camera's batch and emits `detection.new`.
//! An item is acknowledged only after its results are stored and batched; while
//! YOLO26, PostgreSQL or Redis is unavailable the item is kept and retried. A file
//! that can never be read (not a regular file, too large, a symlink, a bad name,
//! unreadable), an image YOLO26 refuses (4xx) and an unreadable item go to the
//! dead-letter stream instead of blocking the queue.

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::batch::BatchAggregator;
use super::camera_fs::{self, IntakeError, READ_TIMEOUT};
use super::consume::{consume, Failure, ItemOutcome, Stage, StageSettings};
use super::metrics::{StageMetrics, Step};
use super::queue::{DeadReason, Delivery, Queue};
use super::watcher::DetectionItem;

/// New detection items read at once (their claims refreshed with the item in hand).
const DETECTION_READ_COUNT: usize = 8;
use crate::ai::{AiClients, AiError};
use crate::cameras::CameraRegistry;
use crate::events::{DetectionNew, Event, EventBus};
use crate::store::Store;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

pub struct DetectionWorker {
    pub queue: Arc<Queue>,
    pub ai: Arc<AiClients>,
    pub times: Arc<dyn super::measure::PipelineTimes>,
    pub store: Arc<Store>,
    pub batches: Arc<BatchAggregator>,
    pub cameras: Arc<CameraRegistry>,
    pub events: EventBus,
    pub metrics: StageMetrics,
    pub consumer_name: String,
    pub camera_root: PathBuf,
    pub max_file_bytes: u64,
    pub max_deliveries: u32,
}

impl DetectionWorker {
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::DETECTION_WORKER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        // Detection is fast: read a burst at once, acknowledge it at once.
        let mut consumer = self
            .queue
            .consumer(&self.consumer_name)
            .with_read_count(DETECTION_READ_COUNT);
        let settings = StageSettings {
            stage: Stage::Detection,
            budget: READ_TIMEOUT + self.ai.detect_budget() + super::consume::STAGE_SLACK,
            claim_refresh: consumer.claim_refresh(),
            max_deliveries: self.max_deliveries,
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

    /// Read the image from the camera folder: from one descriptor opened without
    /// following symlinks, off the async threads, bounded in time.
    async fn read(&self, path: &str) -> Result<Vec<u8>, IntakeError> {
        let (root, path, max) = (
            self.camera_root.clone(),
            PathBuf::from(path),
            self.max_file_bytes,
        );
        let read = tokio::task::spawn_blocking(move || {
            camera_fs::open_image(&root, &path, max)?.read_all()
        });
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(IntakeError::Io(std::io::Error::other(e))),
            Err(_) => Err(IntakeError::Io(std::io::Error::other(format!(
                "read not finished within {} s",
                READ_TIMEOUT.as_secs()
            )))),
        }
    }

    /// `Ok(outcome)` when the item is done; see [`Failure`] for the rest.
    async fn process(&self, d: &Delivery) -> Result<ItemOutcome, Failure> {
        let item: DetectionItem = serde_json::from_str(&d.payload).map_err(|e| {
            Failure::Permanent(
                DeadReason::InvalidItem,
                format!("unreadable detection item: {e}"),
            )
        })?;
        let image = match self.read(&item.file_path).await {
            Ok(b) => b,
            Err(IntakeError::Missing) => {
                tracing::warn!(path = ?item.file_path, "image vanished before detection; nothing to detect");
                return Ok(ItemOutcome::FileMissing);
            }
            Err(e) => {
                return Err(match e.refusal() {
                    Some(r) => Failure::Permanent(DeadReason::Refused(r), e.to_string()),
                    None => Failure::Item(format!("cannot read the image: {e}")),
                })
            }
        };
        if camera_fs::sha256_of(&image) != item.file_hash {
            tracing::info!(path = ?item.file_path, "image changed after it was queued; its new content is queued on its own");
            return Ok(ItemOutcome::Changed);
        }
        let base_name = std::path::Path::new(&item.file_path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("image.jpg")
            .to_string();
        let started = Instant::now();
        let result = match self.ai.detect(Bytes::from(image), &base_name).await {
            Ok(r) => r,
            Err(AiError::BadRequest { status, detail, .. }) => {
                return Err(Failure::Permanent(
                    DeadReason::Rejected,
                    format!("YOLO26 refused the image ({status}): {detail}"),
                ))
            }
            Err(e) => return Err(Failure::Dependency(e.to_string())),
        };
        self.metrics
            .timed(Step::Detect, started.elapsed().as_secs_f64());
        let started = Instant::now();
        let dependency = |e: &dyn std::fmt::Display| Failure::Dependency(e.to_string());
        let ids = self
            .store
            .store_detections(
                &item.camera_id,
                &item.file_path,
                &item.file_hash,
                item.seen_at,
                &result.detections,
            )
            .await
            .map_err(|e| dependency(&e))?;
        self.metrics
            .timed(Step::Store, started.elapsed().as_secs_f64());
        self.cameras.detected(&item.camera_id);
        for (id, det) in ids.iter().zip(&result.detections) {
            self.batches
                .add(&item.camera_id, *id)
                .await
                .map_err(|e| dependency(&e))?;
            // At-least-once, like the queue: a redelivered item announces its
            // detections again with the same ids, so clients can de-duplicate.
            self.events.publish(Event::DetectionNew(DetectionNew {
                detection_id: *id,
                camera_id: item.camera_id.clone(),
                object_type: det.object_type.clone(),
                confidence: det.confidence,
            }));
        }
        let queued_for = crate::time::now() - item.seen_at;
        self.times
            .image_detected(queued_for.num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0);
        if ids.is_empty() {
            Ok(ItemOutcome::NoDetections)
        } else {
            Ok(ItemOutcome::Stored)
        }
    }
}
