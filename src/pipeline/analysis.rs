//! Analysis worker (`analysis_worker`): takes closed batches off the analysis queue,
//! asks Nemotron for a risk assessment (the §3 fallback values when the LLM fails),
//! writes one `events` row per batch (`batch_id` is unique, so a redelivered batch
//! cannot create a second event) and emits `event.created` for a new event. While
//! PostgreSQL is down the batch stays queued and is retried with backoff.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use super::batch::ClosedBatch;
use super::consume::{consume, Failure, ItemOutcome, Stage, StageSettings};
use super::metrics::{StageMetrics, Step};
use super::queue::{DeadReason, Delivery, Queue};
use crate::ai::AiClients;
use crate::cameras::CameraRegistry;
use crate::events::{Event, EventBus, EventCreated};
use crate::store::{NewEvent, Store, StoredDetection};
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};
use crate::time::unix_to_datetime;

pub struct AnalysisWorker {
    pub queue: Arc<Queue>,
    pub ai: Arc<AiClients>,
    pub times: Arc<dyn super::measure::PipelineTimes>,
    pub store: Arc<Store>,
    pub cameras: Arc<CameraRegistry>,
    pub events: EventBus,
    pub metrics: StageMetrics,
    pub consumer_name: String,
    pub max_deliveries: u32,
}

/// The prompt for one batch: camera, time window and every detection.
pub fn build_prompt(batch: &ClosedBatch, detections: &[StoredDetection]) -> String {
    let mut p = String::from(
        "You are a home security analyst. Assess the risk of the following camera activity.\n",
    );
    let _ = writeln!(p, "Camera: {}", batch.camera_id);
    let _ = writeln!(
        p,
        "Window: {} to {}",
        unix_to_datetime(batch.started_at).format("%Y-%m-%d %H:%M:%S UTC"),
        unix_to_datetime(batch.closed_at).format("%H:%M:%S UTC")
    );
    let _ = writeln!(p, "Detections ({}):", detections.len());
    for d in detections {
        let _ = writeln!(
            p,
            "- {} {} (confidence {:.2})",
            d.detected_at.format("%H:%M:%S"),
            d.object_type,
            d.confidence
        );
    }
    p.push_str(
        "Answer with one JSON object: {\"risk_score\": 0-100 integer, \"risk_level\": \
         \"low|medium|high|critical\", \"summary\": one sentence, \"reasoning\": short explanation}.\n",
    );
    p
}

impl AnalysisWorker {
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::ANALYSIS_WORKER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let mut consumer = self.queue.consumer(&self.consumer_name);
        let settings = StageSettings {
            stage: Stage::Analysis,
            budget: self.ai.analysis_budget() + super::consume::STAGE_SLACK,
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

    async fn process(&self, d: &Delivery) -> Result<ItemOutcome, Failure> {
        let batch: ClosedBatch = serde_json::from_str(&d.payload).map_err(|e| {
            Failure::Permanent(
                DeadReason::InvalidItem,
                format!("unreadable analysis item: {e}"),
            )
        })?;
        let detections = self
            .store
            .detections_by_ids(&batch.detection_ids)
            .await
            .map_err(|e| Failure::Dependency(e.to_string()))?;
        let started = Instant::now();
        let risk = self
            .ai
            .analyze_or_fallback(&build_prompt(&batch, &detections))
            .await;
        self.metrics
            .timed(Step::Analyze, started.elapsed().as_secs_f64());
        let event = NewEvent {
            batch_id: &batch.batch_id,
            camera_id: &batch.camera_id,
            started_at: unix_to_datetime(batch.started_at),
            ended_at: unix_to_datetime(batch.closed_at),
            risk_score: i16::from(risk.risk_score),
            risk_level: risk.risk_level.as_str(),
            summary: &risk.summary,
            reasoning: &risk.reasoning,
            detection_ids: &batch.detection_ids,
        };
        match self
            .store
            .insert_event(&event)
            .await
            .map_err(|e| Failure::Dependency(e.to_string()))?
        {
            Some(event_id) => {
                tracing::info!(event_id, batch_id = %batch.batch_id, risk_score = risk.risk_score, "security event created");
                self.times.event_created();
                self.cameras.event_created(&batch.camera_id);
                self.events.publish(Event::EventCreated(EventCreated {
                    event_id,
                    batch_id: batch.batch_id.clone(),
                    camera_id: batch.camera_id.clone(),
                    risk_score: i64::from(risk.risk_score),
                    risk_level: risk.risk_level.as_str().into(),
                    summary: risk.summary.clone(),
                }));
                Ok(if risk.fallback {
                    ItemOutcome::CreatedFallback
                } else {
                    ItemOutcome::Created
                })
            }
            None => Ok(ItemOutcome::Duplicate),
        }
    }
}
