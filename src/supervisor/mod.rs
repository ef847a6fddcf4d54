//! The worker supervisor (docs/behaviour.md §1): owns named background workers, each a
//! tokio task made by a factory that is called again for every restart. It awaits each
//! task's handle, so a panic, an `Err`, an unexpected return or a missed heartbeat is
//! seen at once and handled by one method (`Shared::on_exit`). Restarts use exponential
//! backoff, give up after `max_restarts` (`failed`), and the count decays after a
//! healthy run. Every state change goes through `Slot::set_status`, which also updates
//! the metrics and publishes `worker.status_changed`.
//!
//! Must not: know about HTTP, hold its lock across an `.await`, or spawn on the caller's
//! runtime (API handlers run on actix's per-thread runtimes; workers run on the main
//! runtime captured at construction).

mod history;
pub mod metrics;
mod worker;

pub use history::{HistoryPage, RestartEvent, RestartStatus};
pub use worker::{WorkerContext, WorkerError, WorkerFuture, WorkerSpec};

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{is_valid_worker_name, secs, SupervisorConfig};
use crate::events::{Event, EventBus, WorkerStatusChanged};
use crate::prom::Metrics;
use history::History;
use metrics::{CrashCause, RestartKind, SupervisorMetrics};
use worker::Heartbeat;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    #[error("Invalid worker name '{0}': it must start with a letter and contain only letters, digits and underscores")]
    InvalidName(String),
    #[error("Worker '{0}' not found")]
    UnknownWorker(String),
    #[error("{0}")]
    Conflict(String),
    #[error("Worker supervisor is not running")]
    NotRunning,
}

pub use crate::events::WorkerStatus;

/// One worker as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub name: String,
    pub status: WorkerStatus,
    pub restart_count: u32,
    pub max_restarts: u32,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_crashed_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
    /// Set while a running worker reports that it cannot do its work (the file
    /// watcher whose camera root is not a directory); `null` otherwise.
    pub problem: Option<String>,
    #[serde(skip)]
    pub critical: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SupervisorStatus {
    pub running: bool,
    pub worker_count: usize,
    pub workers: Vec<WorkerInfo>,
}

struct Settings {
    max_restarts: u32,
    backoff_base: Duration,
    backoff_max: Duration,
    healthy_reset: Duration,
    heartbeat_timeout: Duration,
    grace: Duration,
}

impl Settings {
    /// min(base · 2^restart_count, max).
    fn backoff(&self, restart_count: u32) -> Duration {
        let factor = 2f64.powi(restart_count.min(62) as i32);
        let secs = (self.backoff_base.as_secs_f64() * factor).min(self.backoff_max.as_secs_f64());
        Duration::from_secs_f64(secs)
    }
}

/// How a run ended, as seen by its monitor.
enum Outcome {
    Returned,
    Failed(String),
    Panicked(String),
    Aborted,
    HeartbeatTimeout,
}

impl Outcome {
    fn from_join(res: Result<Result<(), WorkerError>, tokio::task::JoinError>) -> Self {
        match res {
            Ok(Ok(())) => Self::Returned,
            Ok(Err(e)) => Self::Failed(e.0),
            Err(e) if e.is_panic() => {
                let payload = e.into_panic();
                let msg = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Self::Panicked(msg)
            }
            Err(_) => Self::Aborted,
        }
    }

    /// `(metric cause, error text)` for a crash.
    fn describe(&self) -> (CrashCause, String) {
        match self {
            Self::Returned => (CrashCause::Exited, "worker exited unexpectedly".into()),
            Self::Failed(e) => (CrashCause::Error, e.clone()),
            Self::Panicked(m) => (CrashCause::Panic, format!("panic: {m}")),
            Self::Aborted => (CrashCause::Exited, "worker task was aborted".into()),
            Self::HeartbeatTimeout => (CrashCause::HeartbeatTimeout, "heartbeat timeout".into()),
        }
    }
}

struct Run {
    cancel: CancellationToken,
    monitor: JoinHandle<()>,
}

struct Slot {
    spec: WorkerSpec,
    status: WorkerStatus,
    restart_count: u32,
    last_started_at: Option<DateTime<Utc>>,
    started: Option<Instant>,
    last_crashed_at: Option<DateTime<Utc>>,
    error: Option<String>,
    /// What the running worker reports it cannot do (cleared with every new run).
    problem: Option<String>,
    /// Bumped on every launch and every operator stop; a monitor or pending restart
    /// acting for an older generation is stale and does nothing.
    generation: u64,
    run: Option<Run>,
    pending_restart: Option<JoinHandle<()>>,
}

struct State {
    running: bool,
    workers: Vec<Slot>,
    history: History,
}

struct Shared {
    settings: Settings,
    runtime: Handle,
    metrics: SupervisorMetrics,
    events: EventBus,
    root: CancellationToken,
    state: Mutex<State>,
}

/// Cheap to clone; all clones share one supervisor.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// Must be called inside the tokio runtime that will run the workers.
    pub fn new(config: &SupervisorConfig, metrics: Arc<Metrics>, events: EventBus) -> Self {
        let shared = Arc::new(Shared {
            settings: Settings {
                max_restarts: config.max_restarts,
                backoff_base: secs(config.backoff_base_seconds),
                backoff_max: secs(config.backoff_max_seconds),
                healthy_reset: secs(config.healthy_reset_seconds),
                heartbeat_timeout: secs(config.heartbeat_timeout_seconds),
                grace: secs(config.shutdown_grace_seconds),
            },
            runtime: Handle::current(),
            metrics: SupervisorMetrics::new(&metrics),
            events,
            root: CancellationToken::new(),
            state: Mutex::new(State {
                running: true,
                workers: Vec::new(),
                history: History::new(config.history_size),
            }),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        metrics.on_scrape(move || {
            if let Some(shared) = weak.upgrade() {
                shared.publish_uptimes();
            }
        });
        Self { shared }
    }

    /// Add a worker (stopped until [`Supervisor::start_all`] or an API start).
    pub fn register(&self, spec: WorkerSpec) -> Result<(), SupervisorError> {
        if !is_valid_worker_name(&spec.name) {
            return Err(SupervisorError::InvalidName(spec.name));
        }
        let mut st = self.shared.lock();
        if st.workers.iter().any(|s| s.spec.name == spec.name) {
            return Err(SupervisorError::Conflict(format!(
                "Worker '{}' is already registered",
                spec.name
            )));
        }
        self.shared.metrics.registered(
            &spec.name,
            self.shared.settings.max_restarts,
            spec.critical,
        );
        st.workers.push(Slot {
            spec,
            status: WorkerStatus::Stopped,
            restart_count: 0,
            last_started_at: None,
            started: None,
            last_crashed_at: None,
            error: None,
            problem: None,
            generation: 0,
            run: None,
            pending_restart: None,
        });
        Ok(())
    }

    /// Start every registered worker that is stopped.
    pub fn start_all(&self) {
        let mut st = self.shared.lock();
        for idx in 0..st.workers.len() {
            if st.workers[idx].status == WorkerStatus::Stopped {
                self.shared.launch(&mut st, idx);
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.shared.lock().running
    }

    pub fn status(&self) -> SupervisorStatus {
        let st = self.shared.lock();
        let max = self.shared.settings.max_restarts;
        let workers: Vec<WorkerInfo> = st
            .workers
            .iter()
            .map(|s| WorkerInfo {
                name: s.spec.name.clone(),
                status: s.status,
                restart_count: s.restart_count,
                max_restarts: max,
                last_started_at: s.last_started_at,
                last_crashed_at: s.last_crashed_at,
                error: s.error.clone(),
                problem: s.problem.clone(),
                critical: s.spec.critical,
            })
            .collect();
        SupervisorStatus {
            running: st.running,
            worker_count: workers.len(),
            workers,
        }
    }

    /// A stamp that changes whenever what [`Supervisor::status`] shows changes (for
    /// memoised answers).
    pub fn version(&self) -> u64 {
        use crate::json::{mix, STAMP_SEED};
        let st = self.shared.lock();
        let mut v = mix(STAMP_SEED, u64::from(st.running));
        v = mix(v, st.history.pushed());
        for s in &st.workers {
            v = mix(v, s.status as u64);
            v = mix(v, u64::from(s.restart_count));
            v = mix(v, s.generation);
            v = mix(v, s.error.as_ref().map_or(0, |e| e.len() as u64 + 1));
            v = mix(v, s.problem.as_ref().map_or(0, |p| p.len() as u64 + 1));
        }
        v
    }

    /// The status of one worker, if registered.
    pub fn worker_status(&self, name: &str) -> Option<WorkerStatus> {
        let st = self.shared.lock();
        st.workers
            .iter()
            .find(|s| s.spec.name == name)
            .map(|s| s.status)
    }

    /// Start a `stopped`, `crashed` or `failed` worker (from `failed` the count returns to 0).
    pub fn start_worker(&self, name: &str) -> Result<(), SupervisorError> {
        let mut st = self.shared.lock_running(name)?;
        let idx = find(&st, name)?;
        let slot = &mut st.workers[idx];
        match slot.status {
            WorkerStatus::Running | WorkerStatus::Restarting => {
                return Err(SupervisorError::Conflict(format!(
                    "Worker '{name}' is already running"
                )))
            }
            WorkerStatus::Stopped => {}
            WorkerStatus::Crashed | WorkerStatus::Failed => {
                if let Some(p) = slot.pending_restart.take() {
                    p.abort();
                }
                slot.restart_count = 0;
                self.shared.metrics.consecutive_restarts(name, 0);
                self.shared
                    .record(&mut st, idx, RestartStatus::Manual, None);
                self.shared.metrics.restarted(name, RestartKind::Manual);
            }
        }
        self.shared.launch(&mut st, idx);
        Ok(())
    }

    /// Stop a `running`, `restarting` or `crashed` worker: a pending restart is
    /// cancelled, the run gets `shutdown_grace_seconds` to finish, then it is aborted.
    pub async fn stop_worker(&self, name: &str) -> Result<(), SupervisorError> {
        {
            let st = self.shared.lock_running(name)?;
            let idx = find(&st, name)?;
            if matches!(
                st.workers[idx].status,
                WorkerStatus::Stopped | WorkerStatus::Failed
            ) {
                return Err(SupervisorError::Conflict(format!(
                    "Worker '{name}' is not running"
                )));
            }
        }
        self.shared.halt(name).await
    }

    /// Restart from any state: stop if needed, count back to 0, start; history `manual`.
    pub async fn restart_worker(&self, name: &str) -> Result<(), SupervisorError> {
        {
            let st = self.shared.lock_running(name)?;
            find(&st, name)?;
        }
        self.shared.halt(name).await?;
        let mut st = self.shared.lock_running(name)?;
        let idx = find(&st, name)?;
        let slot = &mut st.workers[idx];
        if matches!(
            slot.status,
            WorkerStatus::Running | WorkerStatus::Restarting
        ) {
            // Another operator call started it while we were stopping it.
            return Ok(());
        }
        slot.restart_count = 0;
        self.shared.metrics.consecutive_restarts(name, 0);
        self.shared.launch(&mut st, idx);
        self.shared
            .record(&mut st, idx, RestartStatus::Manual, None);
        self.shared.metrics.restarted(name, RestartKind::Manual);
        Ok(())
    }

    /// Count back to 0; a `failed` worker is then started again (history `manual`).
    pub fn reset_worker(&self, name: &str) -> Result<(), SupervisorError> {
        let mut st = self.shared.lock_running(name)?;
        let idx = find(&st, name)?;
        st.workers[idx].restart_count = 0;
        self.shared.metrics.consecutive_restarts(name, 0);
        if st.workers[idx].status == WorkerStatus::Failed {
            self.shared.launch(&mut st, idx);
            self.shared
                .record(&mut st, idx, RestartStatus::Manual, None);
            self.shared.metrics.restarted(name, RestartKind::Manual);
        }
        Ok(())
    }

    /// Newest-first page of the restart history, optionally for one worker.
    pub fn history(&self, worker_name: Option<&str>, limit: usize, offset: usize) -> HistoryPage {
        self.shared.lock().history.page(worker_name, limit, offset)
    }

    /// Stop every worker (each within its grace period) and refuse further control calls.
    pub async fn shutdown(&self) {
        let monitors: Vec<JoinHandle<()>> = {
            let mut st = self.shared.lock();
            st.running = false;
            st.workers
                .iter_mut()
                .filter_map(|slot| {
                    slot.generation += 1;
                    if let Some(p) = slot.pending_restart.take() {
                        p.abort();
                    }
                    slot.run.take().map(|run| {
                        run.cancel.cancel();
                        run.monitor
                    })
                })
                .collect()
        };
        self.shared.root.cancel();
        for m in monitors {
            let _ = m.await;
        }
        let mut st = self.shared.lock();
        for idx in 0..st.workers.len() {
            if st.workers[idx].status != WorkerStatus::Failed {
                self.shared
                    .set_status(&mut st.workers[idx], WorkerStatus::Stopped);
            }
        }
    }
}

fn find(st: &State, name: &str) -> Result<usize, SupervisorError> {
    st.workers
        .iter()
        .position(|s| s.spec.name == name)
        .ok_or_else(|| SupervisorError::UnknownWorker(name.to_string()))
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a supervisor bug; the state is still
        // consistent field by field, so keep serving rather than poisoning forever.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validate the name, then lock, failing with 503-type error during shutdown.
    fn lock_running(&self, name: &str) -> Result<MutexGuard<'_, State>, SupervisorError> {
        if !is_valid_worker_name(name) {
            return Err(SupervisorError::InvalidName(name.to_string()));
        }
        let st = self.lock();
        if !st.running {
            return Err(SupervisorError::NotRunning);
        }
        Ok(st)
    }

    fn set_status(&self, slot: &mut Slot, status: WorkerStatus) {
        let previous = slot.status;
        slot.status = status;
        slot.problem = None;
        if status != WorkerStatus::Running {
            slot.started = None;
        }
        self.metrics.status_changed(&slot.spec.name, status);
        if previous != status {
            self.events
                .publish(Event::WorkerStatusChanged(WorkerStatusChanged {
                    worker_name: slot.spec.name.clone(),
                    status,
                    previous_status: previous,
                    restart_count: slot.restart_count,
                    error: slot.error.clone(),
                }));
        }
    }

    /// A running worker's report that it cannot (or can again) do its work. Stale
    /// reports (from an older run) do nothing; the state stays `running`, the metric
    /// shows `impaired`, and the change is logged once.
    fn set_problem(&self, idx: usize, generation: u64, problem: Option<String>) {
        let mut st = self.lock();
        let Some(slot) = st.workers.get_mut(idx) else {
            return;
        };
        if slot.generation != generation
            || slot.status != WorkerStatus::Running
            || slot.problem == problem
        {
            return;
        }
        match &problem {
            Some(p) => {
                tracing::error!(worker = %slot.spec.name, problem = %p, "worker is running but cannot do its work")
            }
            None => tracing::info!(worker = %slot.spec.name, "worker can do its work again"),
        }
        self.metrics.impaired(&slot.spec.name, problem.is_some());
        slot.problem = problem;
    }

    fn record(&self, st: &mut State, idx: usize, status: RestartStatus, error: Option<String>) {
        let slot = &st.workers[idx];
        let event = RestartEvent {
            worker_name: slot.spec.name.clone(),
            timestamp: crate::time::now(),
            attempt: slot.restart_count,
            status,
            error,
        };
        st.history.push(event);
    }

    /// Spawn a new run of worker `idx` and its monitor. Caller holds the lock.
    fn launch(self: &Arc<Self>, st: &mut State, idx: usize) {
        let slot = &mut st.workers[idx];
        slot.generation += 1;
        let generation = slot.generation;
        let cancel = self.root.child_token();
        let heartbeat = Heartbeat::new();
        let reporter: worker::ProblemReporter = {
            let shared = Arc::downgrade(self);
            Arc::new(move |problem| {
                if let Some(shared) = shared.upgrade() {
                    shared.set_problem(idx, generation, problem);
                }
            })
        };
        let ctx = WorkerContext::new(
            Arc::from(slot.spec.name.as_str()),
            cancel.clone(),
            heartbeat.clone(),
            self.settings.heartbeat_timeout,
        )
        .with_reporter(reporter);
        let task = self.runtime.spawn((slot.spec.factory)(ctx));
        let started = Instant::now();
        let monitor = self.runtime.spawn(Arc::clone(self).monitor(
            idx,
            generation,
            task,
            cancel.clone(),
            heartbeat,
            started,
        ));
        slot.run = Some(Run { cancel, monitor });
        slot.last_started_at = Some(crate::time::now());
        self.set_status(slot, WorkerStatus::Running);
        slot.started = Some(started);
        tracing::info!(worker = %slot.spec.name, restart_count = slot.restart_count, "worker started");
    }

    /// Watches one run: its exit, its heartbeat, its healthy-run reset, and a
    /// cooperative stop (grace period, then abort).
    async fn monitor(
        self: Arc<Self>,
        idx: usize,
        generation: u64,
        mut task: JoinHandle<Result<(), WorkerError>>,
        cancel: CancellationToken,
        heartbeat: Heartbeat,
        started: Instant,
    ) {
        let s = &self.settings;
        let mut healthy_at = Some(started + s.healthy_reset);
        let outcome = loop {
            let beat_deadline = heartbeat.last() + s.heartbeat_timeout;
            tokio::select! {
                res = &mut task => break Outcome::from_join(res),
                _ = cancel.cancelled() => {
                    break match tokio::time::timeout(s.grace, &mut task).await {
                        Ok(res) => Outcome::from_join(res),
                        Err(_) => {
                            tracing::warn!(worker = %self.name(idx), "worker did not stop within the grace period; aborting it");
                            task.abort();
                            let _ = (&mut task).await;
                            Outcome::Aborted
                        }
                    };
                }
                _ = tokio::time::sleep_until(beat_deadline) => {
                    if heartbeat.last() + s.heartbeat_timeout <= Instant::now() {
                        task.abort();
                        let _ = (&mut task).await;
                        break Outcome::HeartbeatTimeout;
                    }
                }
                _ = tokio::time::sleep_until(healthy_at.unwrap_or(started)), if healthy_at.is_some() => {
                    healthy_at = None;
                    self.healthy_run(idx, generation);
                }
            }
        };
        self.on_exit(idx, generation, outcome, cancel.is_cancelled());
    }

    fn name(&self, idx: usize) -> String {
        self.lock().workers[idx].spec.name.clone()
    }

    fn healthy_run(&self, idx: usize, generation: u64) {
        let mut st = self.lock();
        let slot = &mut st.workers[idx];
        if slot.generation == generation && slot.restart_count > 0 {
            tracing::info!(worker = %slot.spec.name, "worker ran healthily; restart count reset");
            slot.restart_count = 0;
            self.metrics.consecutive_restarts(&slot.spec.name, 0);
        }
    }

    /// The single place that decides what a finished run means.
    fn on_exit(self: &Arc<Self>, idx: usize, generation: u64, outcome: Outcome, cancelled: bool) {
        let mut st = self.lock();
        if st.workers[idx].generation != generation {
            return; // an operator stop or a newer run owns this worker now
        }
        let slot = &mut st.workers[idx];
        slot.run = None;
        if cancelled {
            self.set_status(slot, WorkerStatus::Stopped);
            return;
        }
        let crashed_at = Instant::now();
        let (cause, error) = outcome.describe();
        tracing::warn!(worker = %slot.spec.name, cause = cause.as_str(), error = %error, restart_count = slot.restart_count, "worker crashed");
        slot.last_crashed_at = Some(crate::time::now());
        slot.error = Some(error.clone());
        self.metrics.crashed(&slot.spec.name, cause);
        let attempt_error = Some(error);
        if slot.restart_count < self.settings.max_restarts {
            self.set_status(slot, WorkerStatus::Crashed);
            let backoff = self.settings.backoff(slot.restart_count);
            self.set_status(slot, WorkerStatus::Restarting);
            let me = Arc::clone(self);
            slot.pending_restart = Some(self.runtime.spawn(async move {
                if !backoff.is_zero() {
                    tokio::time::sleep(backoff).await;
                }
                me.restart_after_backoff(idx, generation, crashed_at, backoff);
            }));
            self.record(&mut st, idx, RestartStatus::Crashed, attempt_error);
        } else {
            self.set_status(slot, WorkerStatus::Failed);
            tracing::error!(worker = %slot.spec.name, max_restarts = self.settings.max_restarts, "worker exceeded max_restarts; not restarting it");
            self.record(&mut st, idx, RestartStatus::Failed, attempt_error);
        }
    }

    fn restart_after_backoff(
        self: &Arc<Self>,
        idx: usize,
        generation: u64,
        crashed_at: Instant,
        backoff: Duration,
    ) {
        let mut st = self.lock();
        let running = st.running;
        let slot = &mut st.workers[idx];
        if !running || slot.generation != generation || slot.status != WorkerStatus::Restarting {
            return;
        }
        slot.pending_restart = None;
        slot.restart_count += 1;
        let name = slot.spec.name.clone();
        self.metrics.consecutive_restarts(&name, slot.restart_count);
        self.launch(&mut st, idx);
        self.record(&mut st, idx, RestartStatus::Success, None);
        self.metrics.restarted(&name, RestartKind::Automatic);
        let latency = crashed_at.elapsed().saturating_sub(backoff);
        self.metrics.restart_latency(&name, latency.as_secs_f64());
    }

    /// Operator stop: cancel any pending restart and the current run, wait for it
    /// (bounded by the grace period), then mark it `stopped`.
    async fn halt(&self, name: &str) -> Result<(), SupervisorError> {
        let (monitor, generation) = {
            let mut st = self.lock_running(name)?;
            let idx = find(&st, name)?;
            let slot = &mut st.workers[idx];
            slot.generation += 1;
            if let Some(p) = slot.pending_restart.take() {
                p.abort();
            }
            let monitor = slot.run.take().map(|run| {
                run.cancel.cancel();
                run.monitor
            });
            (monitor, slot.generation)
        };
        if let Some(m) = monitor {
            let _ = m.await;
        }
        let mut st = self.lock();
        let idx = find(&st, name)?;
        let slot = &mut st.workers[idx];
        if slot.generation == generation {
            self.set_status(slot, WorkerStatus::Stopped);
            tracing::info!(worker = %name, "worker stopped by operator");
        }
        Ok(())
    }

    fn publish_uptimes(&self) {
        let st = self.lock();
        for slot in &st.workers {
            let up = slot
                .started
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0);
            self.metrics.uptime(&slot.spec.name, up);
        }
    }
}

#[cfg(test)]
mod tests;
