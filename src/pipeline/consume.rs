//! The loop shared by the queue-driven stages (`detection_worker`, `analysis_worker`):
//! take an item, process it until it is done, acknowledge it.
//!
//! - Processing runs under [`WorkerContext::beat_while`] with the stage's budget (the
//!   sum of its calls' own timeouts), so a slow but bounded dependency never kills the
//!   worker, while a stuck one is still caught by the heartbeat.
//! - While an item is in hand its claim is refreshed every `claim_refresh`, so no other
//!   consumer takes it over however long the work takes.
//! - `process` answers `Ok(outcome)` (done: acknowledge), or a [`Failure`]: a
//!   dependency is away (keep the item, retry with backoff for as long as it takes),
//!   the item failed on its own (retry, at most `max_deliveries` times), or the item
//!   can never succeed (dead-letter it at once). An item delivered more than
//!   `max_deliveries` times (it keeps crashing or hanging its worker) is dead-lettered
//!   before it is processed again. Nothing waits behind a poisoned item, and nothing is
//!   dropped: a dead letter keeps its payload and reason for an operator to requeue.
//! - When the worker is asked to stop, an item in hand stays unacknowledged and is
//!   delivered again.
//!
//! The queue is reached through [`Source`], so the loop's timing is unit-tested on the
//! paused clock without Redis.

use futures_util::future::BoxFuture;
use std::time::Duration;

use super::metrics::StageMetrics;
use super::queue::{Consumer, DeadReason, Delivery, QueueError};
use crate::names::Label;
use crate::supervisor::{WorkerContext, WorkerError};

/// Time a stage item may spend outside its AI calls (database writes, batch
/// updates, each bounded by its own timeout), added to the AI budget.
pub(crate) const STAGE_SLACK: Duration = Duration::from_secs(60);

/// Retry delay for workers waiting on an unavailable dependency: 0.2 s doubling to 10 s.
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(10);

    pub(crate) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub(crate) fn peek(&self) -> Duration {
        self.next
    }

    /// Wait the current delay (false when the worker is asked to stop), then double it.
    pub(crate) async fn wait(&mut self, ctx: &WorkerContext) -> bool {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        ctx.idle(d).await
    }
}

/// Where a stage's items come from.
pub trait Source: Send {
    /// The next item, or `Ok(None)` when there is nothing to do right now.
    fn take(&mut self) -> BoxFuture<'_, Result<Option<Delivery>, QueueError>>;
    /// Done with `id`: it is never delivered again.
    fn ack<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Still working on `id`: reset its idle time so no other consumer claims it.
    fn keep_claim<'a>(&'a mut self, id: &'a str) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Move the item to the dead-letter stream (and off the live queue).
    fn dead_letter<'a>(
        &'a mut self,
        delivery: &'a Delivery,
        reason: DeadReason,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>>;
    /// Send acknowledgements gathered and not sent yet (on the way out).
    fn flush(&mut self) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }
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
    fn dead_letter<'a>(
        &'a mut self,
        delivery: &'a Delivery,
        reason: DeadReason,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(Consumer::dead_letter(self, delivery, reason, detail))
    }
    fn flush(&mut self) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(Consumer::flush_acks(self))
    }
}

/// Why `process` did not finish an item.
#[derive(Debug, Clone)]
pub enum Failure {
    /// A dependency (an AI service, PostgreSQL, Redis) is away: every item would fail
    /// alike, so keep this one and retry with backoff for as long as it takes.
    Dependency(String),
    /// This item failed on its own (an I/O error reading its file, say): retried, at
    /// most `max_deliveries` times, then dead-lettered.
    Item(String),
    /// This item can never succeed: dead-lettered at once.
    Permanent(DeadReason, String),
}

pub use super::metrics::{ItemOutcome, Stage};

/// A stage's timing settings.
#[derive(Debug, Clone, Copy)]
pub struct StageSettings {
    pub stage: Stage,
    /// The longest one `process` call may legitimately take.
    pub budget: Duration,
    /// How often the claim on an item in hand is refreshed.
    pub claim_refresh: Duration,
    /// Deliveries (or item-level failures) an item gets before it is dead-lettered.
    pub max_deliveries: u32,
}

/// How an item left the loop.
enum Done {
    Finished(ItemOutcome),
    Dead(DeadReason, String),
}

/// Run the stage until the worker is asked to stop. See the module docs.
pub async fn consume<S, F, Fut>(
    ctx: &WorkerContext,
    source: &mut S,
    metrics: &StageMetrics,
    settings: StageSettings,
    process: F,
) -> Result<(), WorkerError>
where
    S: Source,
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Result<ItemOutcome, Failure>>,
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
        let mut item_failures = 0u32;
        let limit = u64::from(settings.max_deliveries);
        let done = if delivery.deliveries > limit {
            Done::Dead(
                DeadReason::TooManyDeliveries,
                format!(
                    "delivered {} times without being finished",
                    delivery.deliveries
                ),
            )
        } else {
            loop {
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
                let why = match result {
                    Ok(outcome) => break Done::Finished(outcome),
                    Err(Failure::Permanent(reason, why)) => break Done::Dead(reason, why),
                    Err(Failure::Item(why)) => {
                        item_failures += 1;
                        if u64::from(item_failures) + delivery.deliveries > limit {
                            break Done::Dead(DeadReason::KeepsFailing, why);
                        }
                        why
                    }
                    Err(Failure::Dependency(why)) => why,
                };
                // Per retry: debug. An outage is logged once by whoever owns the
                // dependency (the Redis link, the store, the degradation manager).
                tracing::debug!(stage = stage.label(), item = %delivery.id, error = %why, delay_seconds = backoff.peek().as_secs_f64(), "item delayed; will retry");
                metrics.item(stage, ItemOutcome::Retried);
                if !backoff.wait(ctx).await {
                    break 'items;
                }
            }
        };
        // Until acknowledged (or dead-lettered) the item would come again; processing
        // is idempotent, so retrying this last step is all that is needed.
        loop {
            let finished = match &done {
                Done::Finished(_) => source.ack(&delivery.id).await,
                Done::Dead(reason, why) => source.dead_letter(&delivery, *reason, why).await,
            };
            match finished {
                Ok(()) => break,
                Err(e) => {
                    tracing::debug!(stage = stage.label(), error = %e, "cannot finish item; retrying");
                    if !backoff.wait(ctx).await {
                        break 'items;
                    }
                }
            }
        }
        metrics.item(
            stage,
            match done {
                Done::Finished(outcome) => outcome,
                Done::Dead(..) => ItemOutcome::DeadLettered,
            },
        );
    }
    // What was finished is not delivered again after a graceful stop (bounded: the
    // stop must not wait on a Redis that is away).
    if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(2), source.flush()).await {
        tracing::debug!(stage = stage.label(), error = %e, "acknowledgements not sent on the way out; those items come again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SupervisorConfig;
    use crate::events::EventBus;
    use crate::prom::Metrics;
    use crate::supervisor::{RestartStatus, Supervisor, WorkerSpec, WorkerStatus};
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    /// Items in memory; records acknowledgements, dead letters and claim refreshes.
    #[derive(Clone, Default)]
    struct Memory {
        items: Arc<Mutex<VecDeque<Delivery>>>,
        acked: Arc<Mutex<Vec<String>>>,
        dead: Arc<Mutex<Vec<(String, DeadReason)>>>,
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
        fn dead_letter<'a>(
            &'a mut self,
            delivery: &'a Delivery,
            reason: DeadReason,
            _detail: &'a str,
        ) -> BoxFuture<'a, Result<(), QueueError>> {
            self.dead
                .lock()
                .expect("lock")
                .push((delivery.id.clone(), reason));
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
                    max_deliveries: 5,
                };
                consume(
                    &ctx,
                    &mut source,
                    &StageMetrics::new(&Metrics::new()),
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
        m.items.lock().expect("lock").push_back(delivery("1-0", 1));
        m
    }

    fn delivery(id: &str, deliveries: u64) -> Delivery {
        Delivery {
            id: id.into(),
            payload: "{}".into(),
            redelivered: deliveries > 1,
            deliveries,
        }
    }

    /// Runs `consume` over `memory` with `process` until every item has left.
    async fn drain<F, Fut>(memory: &Memory, items: usize, process: F)
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ItemOutcome, Failure>> + Send + 'static,
    {
        let sup = supervisor();
        let m = memory.clone();
        let process = Arc::new(process);
        sup.register(WorkerSpec::new("detection_worker", false, move |ctx| {
            let mut source = m.clone();
            let process = process.clone();
            async move {
                let settings = StageSettings {
                    stage: Stage::Detection,
                    budget: Duration::from_secs(60),
                    claim_refresh: Duration::from_secs(1),
                    max_deliveries: 3,
                };
                consume(
                    &ctx,
                    &mut source,
                    &StageMetrics::new(&Metrics::new()),
                    settings,
                    |d| process(d),
                )
                .await
            }
        }))
        .expect("register");
        sup.start_all();
        crate::time::until_within(Duration::from_secs(3600), "every item settled", || {
            memory.acked.lock().expect("lock").len() + memory.dead.lock().expect("lock").len()
                >= items
        })
        .await;
        sup.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_poisoned_item_is_dead_lettered_and_nothing_waits_behind_it() {
        let memory = Memory::default();
        {
            let mut items = memory.items.lock().expect("lock");
            items.push_back(delivery("1-0", 1)); // can never succeed
            items.push_back(delivery("2-0", 1)); // fails on its own every time
            items.push_back(delivery("3-0", 4)); // delivered 4 times already
            items.push_back(delivery("4-0", 1)); // fine
        }
        drain(&memory, 4, |d| async move {
            match d.id.as_str() {
                "1-0" => Err(Failure::Permanent(DeadReason::InvalidItem, "bad".into())),
                "2-0" => Err(Failure::Item("EIO".into())),
                "3-0" => panic!("must not be processed again"),
                _ => Ok(ItemOutcome::Stored),
            }
        })
        .await;
        assert_eq!(
            *memory.dead.lock().expect("lock"),
            vec![
                ("1-0".to_string(), DeadReason::InvalidItem),
                ("2-0".to_string(), DeadReason::KeepsFailing),
                ("3-0".to_string(), DeadReason::TooManyDeliveries),
            ]
        );
        assert_eq!(*memory.acked.lock().expect("lock"), vec!["4-0".to_string()]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dependency_outage_is_retried_for_as_long_as_it_takes() {
        let memory = one_item();
        let calls = Arc::new(Mutex::new(0u32));
        let c = calls.clone();
        drain(&memory, 1, move |_d| {
            let c = c.clone();
            async move {
                let mut n = c.lock().expect("lock");
                *n += 1;
                if *n < 20 {
                    Err(Failure::Dependency("yolo26 is unavailable".into()))
                } else {
                    Ok(ItemOutcome::Stored)
                }
            }
        })
        .await;
        assert!(memory.dead.lock().expect("lock").is_empty());
        assert_eq!(*memory.acked.lock().expect("lock"), vec!["1-0".to_string()]);
        assert_eq!(*calls.lock().expect("lock"), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn work_five_times_longer_than_the_heartbeat_finishes_without_a_crash() {
        let memory = one_item();
        let sup = supervisor();
        sup.register(stage(memory.clone(), Some(HEARTBEAT * 5), HEARTBEAT * 6))
            .expect("register");
        sup.start_all();
        crate::time::until_within(HEARTBEAT * 10, "the item acknowledged", || {
            !memory.acked.lock().expect("lock").is_empty()
        })
        .await;
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
        crate::time::until_within(budget * 20, "the worker failed", || {
            sup.worker_status("detection_worker") == Some(WorkerStatus::Failed)
        })
        .await;
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
