//! The supervisor's state machine: each worker's slot, the launch of a run with the
//! monitor that awaits it (its handle, its heartbeat deadline, its healthy-run reset,
//! a cooperative stop), `on_exit`, the one place that turns an ended run into
//! `stopped`, `crashed → restarting` (backoff) or `failed`, and the operator stop.
//! Every state change goes through `set_status`, which updates the metrics and
//! publishes `worker.status_changed`. The lock is never held across an `.await`.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error::SupervisorError;
use super::history::{History, RestartEvent, RestartStatus};
use super::metrics::{CrashCause, RestartKind, SupervisorMetrics};
use super::worker::{Heartbeat, ProblemReporter, WorkerContext, WorkerError, WorkerSpec};
use crate::config::{is_valid_worker_name, secs, SupervisorConfig};
use crate::events::{Event, EventBus, WorkerStatus, WorkerStatusChanged};

pub(super) struct Settings {
    pub(super) max_restarts: u32,
    pub(super) backoff_base: Duration,
    pub(super) backoff_max: Duration,
    pub(super) healthy_reset: Duration,
    pub(super) heartbeat_timeout: Duration,
    pub(super) grace: Duration,
}

impl Settings {
    /// min(base · 2^restart_count, max).
    pub(super) fn backoff(&self, restart_count: u32) -> Duration {
        crate::time::Backoff::new(self.backoff_base, self.backoff_max).after(restart_count)
    }
}

/// How a run ended, as seen by its monitor.
pub(super) enum Outcome {
    Returned,
    Failed(String),
    Panicked(String),
    Aborted,
    HeartbeatTimeout,
}

impl Outcome {
    pub(super) fn from_join(res: Result<Result<(), WorkerError>, tokio::task::JoinError>) -> Self {
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

pub(super) struct Run {
    pub(super) cancel: CancellationToken,
    pub(super) monitor: JoinHandle<()>,
}

pub(super) struct Slot {
    pub(super) spec: WorkerSpec,
    pub(super) status: WorkerStatus,
    pub(super) restart_count: u32,
    pub(super) last_started_at: Option<DateTime<Utc>>,
    pub(super) started: Option<Instant>,
    pub(super) last_crashed_at: Option<DateTime<Utc>>,
    pub(super) error: Option<String>,
    /// What the running worker reports it cannot do (cleared with every new run).
    pub(super) problem: Option<String>,
    /// Bumped on every launch and every operator stop; a monitor or pending restart
    /// acting for an older generation is stale and does nothing.
    pub(super) generation: u64,
    pub(super) run: Option<Run>,
    pub(super) pending_restart: Option<JoinHandle<()>>,
}

impl Slot {
    /// A registered worker, stopped.
    pub(super) fn new(spec: WorkerSpec) -> Self {
        Self {
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
        }
    }
}

pub(super) struct State {
    pub(super) running: bool,
    pub(super) workers: Vec<Slot>,
    pub(super) history: History,
}

pub(super) struct Shared {
    pub(super) settings: Settings,
    pub(super) runtime: Handle,
    pub(super) metrics: SupervisorMetrics,
    pub(super) events: EventBus,
    pub(super) root: CancellationToken,
    pub(super) state: Mutex<State>,
}

pub(super) fn find(st: &State, name: &str) -> Result<usize, SupervisorError> {
    st.workers
        .iter()
        .position(|s| s.spec.name == name)
        .ok_or_else(|| SupervisorError::UnknownWorker(name.to_string()))
}

impl Shared {
    /// Must be called inside the tokio runtime that will run the workers.
    pub(super) fn new(
        config: &SupervisorConfig,
        metrics: SupervisorMetrics,
        events: EventBus,
    ) -> Self {
        Self {
            settings: Settings {
                max_restarts: config.max_restarts,
                backoff_base: secs(config.backoff_base_seconds),
                backoff_max: secs(config.backoff_max_seconds),
                healthy_reset: secs(config.healthy_reset_seconds),
                heartbeat_timeout: secs(config.heartbeat_timeout_seconds),
                grace: secs(config.shutdown_grace_seconds),
            },
            runtime: Handle::current(),
            metrics,
            events,
            root: CancellationToken::new(),
            state: Mutex::new(State {
                running: true,
                workers: Vec::new(),
                history: History::new(config.history_size),
            }),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a supervisor bug; the state is still
        // consistent field by field, so keep serving rather than poisoning forever.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Validate the name, then lock, failing with 503-type error during shutdown.
    pub(super) fn lock_running(
        &self,
        name: &str,
    ) -> Result<MutexGuard<'_, State>, SupervisorError> {
        if !is_valid_worker_name(name) {
            return Err(SupervisorError::InvalidName(name.to_string()));
        }
        let st = self.lock();
        if !st.running {
            return Err(SupervisorError::NotRunning);
        }
        Ok(st)
    }

    pub(super) fn set_status(&self, slot: &mut Slot, status: WorkerStatus) {
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
    pub(super) fn set_problem(&self, idx: usize, generation: u64, problem: Option<String>) {
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

    pub(super) fn record(
        &self,
        st: &mut State,
        idx: usize,
        status: RestartStatus,
        error: Option<String>,
    ) {
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
    pub(super) fn launch(self: &Arc<Self>, st: &mut State, idx: usize) {
        let slot = &mut st.workers[idx];
        slot.generation += 1;
        let generation = slot.generation;
        let cancel = self.root.child_token();
        let heartbeat = Heartbeat::new();
        let reporter: ProblemReporter = {
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
    pub(super) async fn monitor(
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

    pub(super) fn name(&self, idx: usize) -> String {
        self.lock().workers[idx].spec.name.clone()
    }

    pub(super) fn healthy_run(&self, idx: usize, generation: u64) {
        let mut st = self.lock();
        let slot = &mut st.workers[idx];
        if slot.generation == generation && slot.restart_count > 0 {
            tracing::info!(worker = %slot.spec.name, "worker ran healthily; restart count reset");
            slot.restart_count = 0;
            self.metrics.consecutive_restarts(&slot.spec.name, 0);
        }
    }

    /// The single place that decides what a finished run means.
    pub(super) fn on_exit(
        self: &Arc<Self>,
        idx: usize,
        generation: u64,
        outcome: Outcome,
        cancelled: bool,
    ) {
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

    pub(super) fn restart_after_backoff(
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
    pub(super) async fn halt(&self, name: &str) -> Result<(), SupervisorError> {
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

    pub(super) fn publish_uptimes(&self) {
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
