//! The loop shared by the queue-driven stages (`detection_worker`, `analysis_worker`):
//! take an item, process it until it is done, acknowledge it.
//!
//! - Processing runs under [`WorkerContext::beat_while`] with the stage's budget (the
//!   sum of its calls' own timeouts), so a slow but bounded dependency never kills the
//!   worker, while a stuck one is still caught by the heartbeat.
//! - While an item is in hand its claim is refreshed every `claim_refresh`, so no other
//!   consumer takes it over however long the work takes.
//! - `Err(why)` from `process` means "a dependency is away": the item is kept and
//!   retried with backoff. Only `Ok` acknowledges it.
//! - When the worker is asked to stop, an item in hand stays unacknowledged and is
//!   delivered again.
//!
//! The queue is reached through [`Source`], so the loop's timing is unit-tested on the
//! paused clock without Redis.

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

use super::queue::{Consumer, Delivery, QueueError};
use super::Backoff;
use crate::prom::{Label, Metrics};
use crate::supervisor::{WorkerContext, WorkerError};

/// Where a stage's items come from.
pub trait Source: Send {
    /// The next item, or `Ok(None)` when there is nothing to do right now.
    fn take(&mut self) -> BoxFuture<'_, Result<Option<Delivery>, QueueError>>;
    /// Done with `id`: it is never delivered again.
    fn ack<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Still working on `id`: reset its idle time so no other consumer claims it.
    fn keep_claim<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;
}

impl Source for Consumer {
    fn take(&mut self) -> BoxFuture<'_, Result<Option<Delivery>, QueueError>> {
        Box::pin(Consumer::take(self))
    }
    fn ack<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(Consumer::ack(self, id))
    }
    fn keep_claim<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(Consumer::keep_claim(self, id))
    }
}

/// The queue-driven pipeline stages (the `stage` label of the item metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Detection,
    Analysis,
}

impl Label for Stage {
    fn label(self) -> &'static str {
        match self {
            Self::Detection => "detection",
            Self::Analysis => "analysis",
        }
    }
    fn all() -> &'static [Self] {
        &[Self::Detection, Self::Analysis]
    }
}

/// How an item left a stage (the `result` label of `watchpost_pipeline_items_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Detections stored and batched.
    Stored,
    /// YOLO26 found nothing above the confidence threshold.
    NoDetections,
    /// A security event was written with the LLM's own assessment.
    Created,
    /// A security event was written with the fallback values (the LLM failed).
    CreatedFallback,
    /// The item had been finished before (a redelivery).
    Duplicate,
    /// The item's payload could not be read.
    InvalidItem,
    /// The image was gone before it could be read.
    FileMissing,
    /// YOLO26 refused the image (4xx).
    Rejected,
    /// Not finished this time; retried later.
    Retried,
}

impl Label for ItemOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::NoDetections => "no_detections",
            Self::Created => "created",
            Self::CreatedFallback => "created_fallback",
            Self::Duplicate => "duplicate",
            Self::InvalidItem => "invalid_item",
            Self::FileMissing => "file_missing",
            Self::Rejected => "rejected",
            Self::Retried => "retried",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Stored,
            Self::NoDetections,
            Self::Created,
            Self::CreatedFallback,
            Self::Duplicate,
            Self::InvalidItem,
            Self::FileMissing,
            Self::Rejected,
            Self::Retried,
        ]
    }
}

/// A stage's timing settings.
#[derive(Debug, Clone, Copy)]
pub struct StageSettings {
    pub stage: Stage,
    /// The longest one `process` call may legitimately take.
    pub budget: Duration,
    /// How often the claim on an item in hand is refreshed.
    pub claim_refresh: Duration,
}

/// Run the stage until the worker is asked to stop. See the module docs.
pub async fn consume<S, F, Fut>(
    ctx: &WorkerContext,
    source: &mut S,
    metrics: &Arc<Metrics>,
    settings: StageSettings,
    process: F,
) -> Result<(), WorkerError>
where
    S: Source,
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Result<ItemOutcome, String>>,
{
    let stage = settings.stage;
    let mut idle = Backoff::new();
    'items: while !ctx.is_cancelled() {
        ctx.beat();
        let taken = tokio::select! {
            _ = ctx.cancelled() => break,
            r = ctx.beat_while(settings.budget, source.take()) => r,
        };
        let delivery = match taken {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(stage = stage.label(), error = %e, "queue unavailable");
                if !idle.wait(ctx).await {
                    break;
                }
                continue;
            }
        };
        idle.reset();
        let mut backoff = Backoff::new();
        let outcome = loop {
            ctx.beat();
            let work = ctx.beat_while(settings.budget, process(delivery.clone()));
            tokio::pin!(work);
            let mut refresh = tokio::time::interval(settings.claim_refresh);
            refresh.tick().await; // the first tick is immediate
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = refresh.tick() => {
                        if let Err(e) = source.keep_claim(&delivery.id).await {
                            tracing::debug!(stage = stage.label(), error = %e, "cannot refresh the claim on an item in hand");
                        }
                    }
                }
            };
            match result {
                Ok(outcome) => break outcome,
                Err(why) => {
                    tracing::warn!(stage = stage.label(), item = %delivery.id, error = %why, delay_seconds = backoff.peek().as_secs_f64(), "item delayed; will retry");
                    metrics.pipeline_item(stage, ItemOutcome::Retried);
                    if !backoff.wait(ctx).await {
                        break 'items;
                    }
                }
            }
        };
        metrics.pipeline_item(stage, outcome);
        // Until acknowledged the item would come again; processing is idempotent, so
        // retrying the acknowledgement is all that is needed.
        while let Err(e) = source.ack(&delivery.id).await {
            tracing::warn!(stage = stage.label(), error = %e, "cannot acknowledge item; retrying");
            if !backoff.wait(ctx).await {
                break 'items;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SupervisorConfig;
    use crate::events::EventBus;
    use crate::supervisor::{RestartStatus, Supervisor, WorkerSpec, WorkerStatus};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Items in memory; records acknowledgements and claim refreshes.
    #[derive(Clone, Default)]
    struct Memory {
        items: Arc<Mutex<VecDeque<Delivery>>>,
        acked: Arc<Mutex<Vec<String>>>,
        refreshed: Arc<Mutex<u32>>,
    }

    impl Source for Memory {
        fn take(&mut self) -> BoxFuture<'_, Result<Option<Delivery>, QueueError>> {
            let next = self.items.lock().expect("lock").pop_front();
            Box::pin(async move {
                if next.is_none() {
                    // Like a blocking read that found nothing.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(next)
            })
        }
        fn ack<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
            self.acked.lock().expect("lock").push(id.to_string());
            Box::pin(async { Ok(()) })
        }
        fn keep_claim<'a>(&'a mut self, _id: &'a str) -> BoxFuture<'a, Result<(), QueueError>> {
            *self.refreshed.lock().expect("lock") += 1;
            Box::pin(async { Ok(()) })
        }
    }

    const HEARTBEAT: Duration = Duration::from_secs(3);

    fn supervisor() -> Supervisor {
        let cfg = SupervisorConfig {
            heartbeat_timeout_seconds: HEARTBEAT.as_secs_f64(),
            max_restarts: 0,
            ..SupervisorConfig::default()
        };
        Supervisor::new(&cfg, Arc::new(Metrics::new()), EventBus::new())
    }

    /// A stage worker over `memory` whose every item takes `work` (forever if `None`),
    /// with a budget of `budget`.
    fn stage(memory: Memory, work: Option<Duration>, budget: Duration) -> WorkerSpec {
        WorkerSpec::new("detection_worker", false, move |ctx| {
            let mut source = memory.clone();
            async move {
                let settings = StageSettings {
                    stage: Stage::Detection,
                    budget,
                    claim_refresh: Duration::from_secs(1),
                };
                consume(
                    &ctx,
                    &mut source,
                    &Arc::new(Metrics::new()),
                    settings,
                    |_d| async move {
                        match work {
                            Some(d) => tokio::time::sleep(d).await,
                            None => std::future::pending::<()>().await,
                        }
                        Ok(ItemOutcome::Stored)
                    },
                )
                .await
            }
        })
    }

    fn one_item() -> Memory {
        let m = Memory::default();
        m.items.lock().expect("lock").push_back(Delivery {
            id: "1-0".into(),
            payload: "{}".into(),
            redelivered: false,
        });
        m
    }

    #[tokio::test(start_paused = true)]
    async fn work_five_times_longer_than_the_heartbeat_finishes_without_a_crash() {
        let memory = one_item();
        let sup = supervisor();
        sup.register(stage(memory.clone(), Some(HEARTBEAT * 5), HEARTBEAT * 6))
            .expect("register");
        sup.start_all();
        while memory.acked.lock().expect("lock").is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(*memory.acked.lock().expect("lock"), vec!["1-0".to_string()]);
        assert_eq!(
            sup.worker_status("detection_worker"),
            Some(WorkerStatus::Running)
        );
        assert_eq!(sup.history(None, 10, 0).pagination.total, 0, "no crash");
        assert!(
            *memory.refreshed.lock().expect("lock") >= 14,
            "the claim was refreshed every second while the item was in hand"
        );
        sup.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn work_that_never_ends_is_still_caught_by_the_heartbeat() {
        let memory = one_item();
        let sup = supervisor();
        let budget = HEARTBEAT * 2;
        sup.register(stage(memory.clone(), None, budget))
            .expect("register");
        sup.start_all();
        let started = tokio::time::Instant::now();
        while sup.worker_status("detection_worker") != Some(WorkerStatus::Failed) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caught_after = started.elapsed();
        assert!(
            caught_after >= budget && caught_after <= budget + HEARTBEAT + Duration::from_secs(1),
            "caught after {caught_after:?}"
        );
        let page = sup.history(None, 10, 0);
        assert_eq!(page.items[0].status, RestartStatus::Failed);
        assert_eq!(page.items[0].error.as_deref(), Some("heartbeat timeout"));
        assert!(memory.acked.lock().expect("lock").is_empty());
    }
}
