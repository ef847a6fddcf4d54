//! What a supervised worker is: a factory the supervisor can call again for every
//! (re)start, and the context each run receives (cancellation + heartbeat).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a worker run ended with an error. Workers return this; the supervisor records
/// its text as the crash `error`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct WorkerError(pub String);

impl WorkerError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

pub type WorkerFuture = Pin<Box<dyn Future<Output = Result<(), WorkerError>> + Send>>;
type Factory = dyn Fn(WorkerContext) -> WorkerFuture + Send + Sync;

/// A worker as registered with the supervisor.
#[derive(Clone)]
pub struct WorkerSpec {
    pub name: String,
    pub critical: bool,
    pub(crate) factory: Arc<Factory>,
}

impl WorkerSpec {
    /// `run` is called once per (re)start with a fresh context.
    pub fn new<F, Fut>(name: impl Into<String>, critical: bool, run: F) -> Self
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), WorkerError>> + Send + 'static,
    {
        Self {
            name: name.into(),
            critical,
            factory: Arc::new(move |ctx| Box::pin(run(ctx))),
        }
    }
}

impl WorkerSpec {
    /// A worker whose every run is `run(target, ctx)` on one shared component.
    pub fn shared<T, F, Fut>(
        name: impl Into<String>,
        critical: bool,
        target: Arc<T>,
        run: F,
    ) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn(Arc<T>, WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), WorkerError>> + Send + 'static,
    {
        Self::new(name, critical, move |ctx| run(Arc::clone(&target), ctx))
    }
}

/// Handed to every worker run: a cancellation token (the cooperative stop signal) and
/// a heartbeat. A worker that neither beats nor finishes within
/// `heartbeat_timeout_seconds` is aborted and counted as crashed.
#[derive(Clone)]
pub struct WorkerContext {
    name: Arc<str>,
    cancel: CancellationToken,
    heartbeat: Heartbeat,
    /// How often `idle` beats while waiting (a third of the heartbeat timeout).
    beat_every: Duration,
    reporter: Option<ProblemReporter>,
}

/// How a run tells its supervisor what it cannot do (`None`: it can again).
pub(crate) type ProblemReporter = Arc<dyn Fn(Option<String>) + Send + Sync>;

impl WorkerContext {
    pub(crate) fn new(
        name: Arc<str>,
        cancel: CancellationToken,
        heartbeat: Heartbeat,
        heartbeat_timeout: Duration,
    ) -> Self {
        Self {
            name,
            cancel,
            heartbeat,
            beat_every: (heartbeat_timeout / 3).max(Duration::from_millis(10)),
            reporter: None,
        }
    }

    pub(crate) fn with_reporter(mut self, reporter: ProblemReporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// Tell the supervisor this run cannot do its work (`Some(why)`), or can again
    /// (`None`). The worker keeps running (it is not a crash: restarting would not
    /// help); the supervisor's status shows `problem`, and `watchpost_worker_state`
    /// shows `impaired` instead of `running`. Repeating the same report does nothing.
    pub fn report_problem(&self, problem: Option<String>) {
        if let Some(report) = &self.reporter {
            report(problem);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Record that the worker is alive and making progress.
    pub fn beat(&self) {
        self.heartbeat.beat();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the supervisor asks this run to stop.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The stop token, for handing to sub-tasks.
    pub fn token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Await `work`, beating meanwhile for at most `budget`: the longest that work may
    /// legitimately take (a call with its own timeouts declares their sum). A heartbeat
    /// proves that the loop is alive, not that a dependency is fast, so a slow but
    /// bounded call never kills its worker. Work that outlives its budget (a deadlock,
    /// an await with no timeout) stops the beating, and the supervisor's heartbeat
    /// check catches it `heartbeat_timeout_seconds` later.
    pub async fn beat_while<F: std::future::Future>(&self, budget: Duration, work: F) -> F::Output {
        let deadline = Instant::now() + budget;
        tokio::pin!(work);
        loop {
            let now = Instant::now();
            if now >= deadline {
                return work.await;
            }
            self.beat();
            let step = (deadline - now).min(self.beat_every);
            tokio::select! {
                out = &mut work => return out,
                _ = tokio::time::sleep(step) => {}
            }
        }
    }

    /// Wait `duration` (beating regularly, so any wait is safe) or until stopped;
    /// returns `false` when stopped.
    pub async fn idle(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            self.beat();
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            let step = (deadline - now).min(self.beat_every);
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                _ = tokio::time::sleep(step) => {}
            }
        }
    }
}

/// Last time the worker showed life, on tokio's clock (so paused-clock tests work).
#[derive(Clone)]
pub(crate) struct Heartbeat(Arc<Mutex<Instant>>);

impl Heartbeat {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    pub(crate) fn beat(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(crate) fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
