//! Detection worker (`detection_worker`): takes images off the detection queue, reads
//! each safely from the camera folder (`camera_fs`), calls YOLO26 through its breaker,
//! stores the detections, adds them to the camera's batch and emits `detection.new`.
//! An item is acknowledged only after its results are stored and batched; while
//! YOLO26, PostgreSQL or Redis is unavailable the item is kept and retried.
//!
//! Images read from the queue together (up to [`DETECTION_READ_COUNT`]) are detected
//! one by one into a [`Stash`] and stored together: one `INSERT` (one PostgreSQL
//! transaction) for all their detections, when nothing more is in hand, when the
//! stash is full, or when an item fails. Their acknowledgements are held back by
//! [`Stashing`] until the stash is empty, so no item is acknowledged before its
//! detections are stored and batched; a crash in between means they come again, and
//! storing is idempotent per file. A file
//! that can never be read (not a regular file, too large, a symlink, a bad name,
//! unreadable), an image YOLO26 refuses (4xx) and an unreadable item go to the
//! dead-letter stream instead of blocking the queue.

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::batch::BatchAggregator;
use super::camera_fs::{self, IntakeError, READ_TIMEOUT};
use super::consume::{consume, Failure, ItemOutcome, Source, Stage, StageSettings};
use super::metrics::{StageMetrics, Step};
use super::queue::{DeadReason, Delivery, Queue, QueueError};
use super::watcher::DetectionItem;

use crate::ai::{AiClients, AiError, Detection};
use crate::cameras::CameraRegistry;
use crate::events::{DetectionNew, Event, EventBus};
use crate::store::{ImageDetections, Store, StoreError};
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};
use futures_util::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

/// New detection items read at once (their claims refreshed with the item in hand),
/// and the most images stored in one statement.
pub(crate) const DETECTION_READ_COUNT: usize = 8;
/// The images of a burst read ahead in one trip off the async threads: at most this
/// many bytes in all, and no new file started after [`READ_AHEAD_TRIP`].
const READ_AHEAD_BYTES: u64 = 32 * 1024 * 1024;
const READ_AHEAD_TRIP: std::time::Duration = std::time::Duration::from_secs(1);

/// One detected image whose detections are not stored and batched yet.
struct Stashed {
    delivery_id: String,
    item: DetectionItem,
    detections: Vec<Detection>,
    /// Row ids once stored.
    ids: Option<Vec<i64>>,
}

/// The images of one run of the worker that are detected and not settled yet, and how
/// many items the consumer still holds unread by the stage.
#[derive(Default)]
pub(crate) struct Stash {
    entries: tokio::sync::Mutex<VecDeque<Stashed>>,
    in_hand: AtomicUsize,
    /// The images of the current burst, read ahead in one trip, by delivery id.
    read_ahead: std::sync::Mutex<HashMap<String, Result<Vec<u8>, IntakeError>>>,
}

impl Stash {
    fn read_ahead(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<Vec<u8>, IntakeError>>> {
        // Inserts and removals leave the map whole; survive a poisoned lock.
        self.read_ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The image of `delivery_id` if it was read ahead (once).
    fn take_read(&self, delivery_id: &str) -> Option<Result<Vec<u8>, IntakeError>> {
        self.read_ahead().remove(delivery_id)
    }

    async fn is_empty(&self) -> bool {
        self.entries.lock().await.is_empty()
    }

    /// The stashed items' delivery ids; none while a settle holds the stash. The
    /// claim refresh runs while `process` is not polled (`consume`'s select), so it
    /// must never wait for a lock `process` holds across its I/O; the stash's claims
    /// are refreshed on the next tick.
    fn ids(&self) -> Vec<String> {
        self.entries
            .try_lock()
            .map(|entries| entries.iter().map(|e| e.delivery_id.clone()).collect())
            .unwrap_or_default()
    }
}

/// The detection queue's consumer, holding back acknowledgements while the stash is
/// not empty (see the module docs).
struct Stashing<'a> {
    consumer: super::queue::Consumer,
    stash: &'a Stash,
    worker: &'a DetectionWorker,
    held: Vec<String>,
}

impl Stashing<'_> {
    /// Hand the held acknowledgements to the consumer once the stash is empty.
    async fn release(&mut self) -> Result<(), QueueError> {
        if self.held.is_empty() || !self.stash.is_empty().await {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.consumer.ack_all(held).await
    }
}

impl Source for Stashing<'_> {
    fn take(&mut self) -> BoxFuture<'_, Result<Option<Delivery>, QueueError>> {
        Box::pin(async move {
            self.release().await?;
            let taken = self.consumer.take().await;
            self.stash
                .in_hand
                .store(self.consumer.buffered(), Ordering::Relaxed);
            if let Ok(Some(d)) = &taken {
                if self.consumer.buffered() > 0 && !self.stash.read_ahead().contains_key(&d.id) {
                    let burst: Vec<&Delivery> = std::iter::once(d)
                        .chain(self.consumer.buffered_items())
                        .collect();
                    let read = self.worker.read_ahead(&burst).await;
                    *self.stash.read_ahead() = read;
                }
            }
            taken
        })
    }
    fn ack<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            if !self.held.iter().any(|h| h == id) {
                self.held.push(id.to_string());
            }
            self.release().await
        })
    }
    fn keep_claim<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let stashed = self.stash.ids();
            self.consumer.keep_claims(id, &stashed).await
        })
    }
    fn dead_letter<'a>(
        &'a mut self,
        delivery: &'a Delivery,
        reason: DeadReason,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(self.consumer.dead_letter(delivery, reason, detail))
    }
    fn flush(&mut self) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            // On the way out: settle what is stashed if the stores answer; otherwise
            // those items stay unacknowledged and come again.
            if let Err(e) = self.worker.settle(self.stash).await {
                tracing::debug!(error = %e, "detections not stored on the way out; those images come again");
                return Ok(());
            }
            self.release().await?;
            self.consumer.flush_acks().await
        })
    }
}

/// Why stashed images could not be settled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Batch(#[from] super::batch::BatchError),
}

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
        // Detection is fast: read a burst at once, store and acknowledge it at once.
        let consumer = self
            .queue
            .consumer(&self.consumer_name)
            .with_read_count(DETECTION_READ_COUNT);
        let settings = StageSettings {
            stage: Stage::Detection,
            budget: READ_TIMEOUT + self.ai.detect_budget() + super::consume::STAGE_SLACK,
            claim_refresh: consumer.claim_refresh(),
            max_deliveries: self.max_deliveries,
        };
        // A new stash per run: what a crashed run stashed was never acknowledged.
        let stash = Stash::default();
        let mut source = Stashing {
            consumer,
            stash: &stash,
            worker: self,
            held: Vec::new(),
        };
        let stash = &stash;
        consume(ctx, &mut source, &self.metrics, settings, |d| async move {
            self.process(&d, stash).await
        })
        .await
    }

    /// Detect one item into the stash, then settle the stash when nothing more is in
    /// hand, when it is full, or when this item failed (nothing stashed waits behind
    /// an item that retries). A stash that cannot be settled makes the item wait as
    /// for any unavailable dependency: its acknowledgement must not be sent before
    /// the stash's are.
    async fn process(&self, d: &Delivery, stash: &Stash) -> Result<ItemOutcome, Failure> {
        let outcome = self.detect_into(d, stash).await;
        let full = stash.entries.lock().await.len() >= DETECTION_READ_COUNT;
        if outcome.is_err() || full || stash.in_hand.load(Ordering::Relaxed) == 0 {
            if let Err(e) = self.settle(stash).await {
                return Err(Failure::Dependency(e.to_string()));
            }
        }
        outcome
    }

    /// Store the stashed images' detections in one statement, then add them to their
    /// cameras' batches and announce them, oldest image first. A failed call is
    /// resumed: stored images are not stored again.
    async fn settle(&self, stash: &Stash) -> Result<(), SettleError> {
        let mut entries = stash.entries.lock().await;
        let unstored: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].ids.is_none())
            .collect();
        if !unstored.is_empty() {
            let started = Instant::now();
            let images: Vec<ImageDetections<'_>> = unstored
                .iter()
                .map(|&i| {
                    let e = &entries[i];
                    ImageDetections {
                        camera_id: &e.item.camera_id,
                        file_path: &e.item.file_path,
                        file_hash: &e.item.file_hash,
                        detected_at: e.item.seen_at,
                        detections: &e.detections,
                    }
                })
                .collect();
            let ids = self.store.store_images(&images).await?;
            self.metrics
                .timed(Step::Store, started.elapsed().as_secs_f64());
            for (i, ids) in unstored.into_iter().zip(ids) {
                entries[i].ids = Some(ids);
            }
        }
        // Every detection, oldest image first, in one call (after a failed call,
        // detections added before are listed twice, which reads as once).
        let adds: Vec<(&str, i64)> = entries
            .iter()
            .flat_map(|e| {
                let ids = e.ids.as_deref().unwrap_or_default();
                ids.iter().map(move |id| (e.item.camera_id.as_str(), *id))
            })
            .collect();
        self.batches.add_all(&adds).await?;
        for e in entries.drain(..) {
            self.cameras.detected(&e.item.camera_id);
            let ids = e.ids.unwrap_or_default();
            for (id, det) in ids.iter().zip(&e.detections) {
                // At-least-once, like the queue: a redelivered item announces its
                // detections again with the same ids, so clients can de-duplicate.
                self.events.publish(Event::DetectionNew(DetectionNew {
                    detection_id: *id,
                    camera_id: e.item.camera_id.clone(),
                    object_type: det.object_type.clone(),
                    confidence: det.confidence,
                }));
            }
            let queued_for = crate::time::now() - e.item.seen_at;
            self.times
                .image_detected(queued_for.num_microseconds().unwrap_or(0).max(0) as f64 / 1000.0);
        }
        Ok(())
    }

    /// Read the images of a burst (new items read together) in one trip off the async
    /// threads, bounded in bytes and time; what is not read here is read on its own.
    async fn read_ahead(
        &self,
        burst: &[&Delivery],
    ) -> HashMap<String, Result<Vec<u8>, IntakeError>> {
        let mut total = 0u64;
        let mut wanted = Vec::new();
        for d in burst {
            let Ok(item) = serde_json::from_str::<DetectionItem>(&d.payload) else {
                continue;
            };
            total = total.saturating_add(item.file_size);
            if total > READ_AHEAD_BYTES {
                break;
            }
            wanted.push((d.id.clone(), PathBuf::from(item.file_path)));
        }
        let (root, max) = (self.camera_root.clone(), self.max_file_bytes);
        let read = tokio::task::spawn_blocking(move || {
            camera_fs::within_trip(wanted, READ_AHEAD_TRIP, |(id, path)| {
                let read = camera_fs::open_image(&root, &path, max).and_then(|f| f.read_all());
                (id, read)
            })
            .into_iter()
            .collect::<HashMap<_, _>>()
        });
        match tokio::time::timeout(READ_TIMEOUT + READ_AHEAD_TRIP, read).await {
            Ok(Ok(out)) => out,
            _ => HashMap::new(),
        }
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

    /// `Ok(outcome)` when the item is detected and stashed (or needs nothing more);
    /// see [`Failure`] for the rest. An item already stashed (retried because the
    /// stash could not be settled) is not detected again.
    async fn detect_into(&self, d: &Delivery, stash: &Stash) -> Result<ItemOutcome, Failure> {
        if let Some(e) = stash
            .entries
            .lock()
            .await
            .iter()
            .find(|e| e.delivery_id == d.id)
        {
            return Ok(outcome_of(&e.detections));
        }
        let item: DetectionItem = serde_json::from_str(&d.payload).map_err(|e| {
            Failure::Permanent(
                DeadReason::InvalidItem,
                format!("unreadable detection item: {e}"),
            )
        })?;
        // Delivered before (its instance was killed or lost before acknowledging
        // it): a picture whose detections are stored is not sent to the detector
        // again. (A picture with no detection leaves nothing stored, so it is.)
        if d.redelivered {
            let (ids, detections) = self
                .store
                .stored_detections(&item.file_path, &item.file_hash)
                .await
                .map_err(|e| Failure::Dependency(e.to_string()))?;
            if !ids.is_empty() {
                drop(stash.take_read(&d.id)); // read ahead, not needed
                let outcome = outcome_of(&detections);
                stash.entries.lock().await.push_back(Stashed {
                    delivery_id: d.id.clone(),
                    item,
                    detections,
                    ids: Some(ids),
                });
                return Ok(outcome);
            }
        }
        let read = match stash.take_read(&d.id) {
            Some(r) => r,
            None => self.read(&item.file_path).await,
        };
        let image = match read {
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
        let outcome = outcome_of(&result.detections);
        stash.entries.lock().await.push_back(Stashed {
            delivery_id: d.id.clone(),
            item,
            detections: result.detections,
            ids: None,
        });
        Ok(outcome)
    }
}

/// How a detected image counts: stored, or nothing to store.
fn outcome_of(detections: &[Detection]) -> ItemOutcome {
    if detections.is_empty() {
        ItemOutcome::NoDetections
    } else {
        ItemOutcome::Stored
    }
}
