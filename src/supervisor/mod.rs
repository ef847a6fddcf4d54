//! The worker supervisor (docs/behaviour.md §1): owns named background workers, each a
//! tokio task made by a factory that is called again for every restart. It awaits each
//! task's handle, so a panic, an `Err`, an unexpected return or a missed heartbeat is
//! seen at once and handled by one method (`Shared::on_exit`, in `machine.rs`, the
//! state machine). Restarts use exponential backoff, give up after `max_restarts`
//! (`failed`), and the count decays after a healthy run. This file is the operator's
//! side: register, start, stop, restart, reset, status, history, shutdown.
//!
//! Must not: know about HTTP, hold its lock across an `.await`, or spawn on the caller's
//! runtime (API handlers run on actix's per-thread runtimes; workers run on the main
//! runtime captured at construction).

mod error;
mod history;
mod machine;
pub mod metrics;
mod worker;

pub use error::SupervisorError;
pub use history::{HistoryPage, RestartEvent, RestartStatus};
pub use worker::{WorkerContext, WorkerError, WorkerFuture, WorkerSpec};

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::{Arc, Weak};
use tokio::task::JoinHandle;

use crate::config::{is_valid_worker_name, SupervisorConfig};
use crate::events::EventBus;
use crate::prom::Metrics;
use machine::{find, Shared, Slot};
use metrics::{RestartKind, SupervisorMetrics};

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

/// Cheap to clone; all clones share one supervisor.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl Supervisor {
    /// Must be called inside the tokio runtime that will run the workers.
    pub fn new(config: &SupervisorConfig, metrics: Arc<Metrics>, events: EventBus) -> Self {
        let shared = Arc::new(Shared::new(
            config,
            SupervisorMetrics::new(&metrics),
            events,
        ));
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
        st.workers.push(Slot::new(spec));
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

#[cfg(test)]
mod tests;
