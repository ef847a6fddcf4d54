//! Cleanup service (`cleanup_service` worker): every day at `cleanup.time` (local
//! time), and right after start when the last recorded run is older than the most
//! recent scheduled time (a missed run), delete detections and events older than
//! `retention_days`, in chunks. Camera images are deleted only with
//! `cleanup.delete_media = true`, only below `camera_root`, and only once no detection
//! refers to them. Emits `job.started`, `job.progress`, `job.completed` / `job.failed`.

use chrono::{DateTime, Duration as ChronoDuration, Local, NaiveTime, TimeZone, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::camera_fs;
use super::retention::MediaBySize;
use super::retention_db::DatabaseBySize;
use crate::config::{parse_time_of_day, CleanupConfig};
use crate::events::{Deleted, Event, EventBus, JobCompleted, JobFailed, JobProgress, JobStarted};
use crate::store::{Store, StoreError};
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

const JOB: &str = "cleanup";
const CHUNK: i64 = 1000;
/// Wait before retrying when the database is unavailable or a run failed.
const RETRY: Duration = Duration::from_secs(60);

pub struct CleanupService {
    pub store: Arc<Store>,
    pub config: CleanupConfig,
    pub camera_root: PathBuf,
    pub events: EventBus,
    /// `watchpost_cleanup_deleted_total{kind,reason}`.
    pub deleted: prometheus::IntCounterVec,
    /// Retention by size, with `cleanup.max_media_bytes` set.
    pub by_size: Option<Arc<MediaBySize>>,
    /// Retention of the database by size, with `cleanup.max_database_bytes` set.
    pub database_by_size: Option<Arc<DatabaseBySize>>,
}

/// What one cleanup pass deleted (the same counts its job events carry).
pub type CleanupReport = Deleted;

/// The most recent scheduled instant at or before `now` (local `HH:MM`).
pub fn last_scheduled(now: DateTime<Local>, hour: u32, minute: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
    let today = now.date_naive().and_time(time);
    let at = |naive: chrono::NaiveDateTime| {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .unwrap_or(now)
            .with_timezone(&Utc)
    };
    let candidate = at(today);
    if candidate <= now.with_timezone(&Utc) {
        candidate
    } else {
        at(today - ChronoDuration::days(1))
    }
}

impl CleanupService {
    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::CLEANUP_SERVICE,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let (daily, ()) = tokio::join!(self.daily(ctx), self.sized(ctx));
        daily
    }

    /// Retention by size (the camera root's, the database's), every
    /// `cleanup.size_check_seconds`.
    async fn sized(&self, ctx: &WorkerContext) {
        if self.by_size.is_none() && self.database_by_size.is_none() {
            return;
        }
        let every = crate::config::secs(self.config.size_check_seconds);
        let patience = every.max(Duration::from_secs(60));
        loop {
            if let Some(m) = &self.by_size {
                ctx.beat_while(patience, m.run_once()).await;
            }
            if let Some(d) = &self.database_by_size {
                ctx.beat_while(patience, d.run_once()).await;
            }
            if !ctx.idle(every).await {
                return;
            }
        }
    }

    async fn daily(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let (hour, minute) = parse_time_of_day(&self.config.time)
            .ok_or_else(|| WorkerError::new("invalid cleanup.time"))?;
        loop {
            let wait = match self.store.last_job_run(JOB).await {
                Err(e) => {
                    tracing::debug!(error = %e, "cleanup waits for the database");
                    RETRY
                }
                Ok(last) => {
                    let due = last_scheduled(Local::now(), hour, minute);
                    if last.is_none_or(|l| l < due) {
                        match self.run_once(ctx).await {
                            Ok(_) => self.until_next(hour, minute),
                            Err(_) => RETRY,
                        }
                    } else {
                        self.until_next(hour, minute)
                    }
                }
            };
            if !ctx.idle(wait).await {
                return Ok(());
            }
        }
    }

    fn until_next(&self, hour: u32, minute: u32) -> Duration {
        let now = Local::now();
        let next = last_scheduled(now, hour, minute) + ChronoDuration::days(1);
        (next - now.with_timezone(&Utc))
            .to_std()
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(1))
    }

    /// One cleanup pass now.
    pub async fn run_once(&self, ctx: &WorkerContext) -> Result<CleanupReport, StoreError> {
        let job_id = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let cutoff =
            crate::time::now() - ChronoDuration::days(i64::from(self.config.retention_days));
        self.events.publish(Event::JobStarted(JobStarted {
            job_id: job_id.clone(),
            job_type: JOB.into(),
            retention_days: self.config.retention_days,
        }));
        let result = self.sweep(ctx, &job_id, cutoff).await;
        match &result {
            Ok(report) => {
                if let Err(e) = self.store.record_job_run(JOB, crate::time::now()).await {
                    tracing::warn!(error = %e, "cleanup ran but its run time could not be recorded");
                }
                tracing::info!(
                    detections = report.deleted_detections,
                    events = report.deleted_events,
                    files = report.deleted_files,
                    "cleanup completed"
                );
                self.events.publish(Event::JobCompleted(JobCompleted::new(
                    &job_id,
                    JOB,
                    *report,
                    started.elapsed().as_secs_f64(),
                )));
            }
            Err(e) => {
                tracing::error!(error = %e, "cleanup failed");
                self.events.publish(Event::JobFailed(JobFailed {
                    job_id: job_id.clone(),
                    job_type: JOB.into(),
                    error: e.to_string(),
                }));
            }
        }
        result
    }

    async fn sweep(
        &self,
        ctx: &WorkerContext,
        job_id: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<CleanupReport, StoreError> {
        let mut report = CleanupReport::default();
        loop {
            ctx.beat();
            let paths = self.store.delete_old_detections(cutoff, CHUNK).await?;
            if paths.is_empty() {
                break;
            }
            report.deleted_detections += paths.len() as u64;
            self.deleted
                .with_label_values(&["detections", "age"])
                .inc_by(paths.len() as u64);
            if self.config.delete_media {
                let files = self.delete_media(paths).await?;
                report.deleted_files += files;
                self.deleted
                    .with_label_values(&["media", "age"])
                    .inc_by(files);
            }
            self.progress(job_id, "detections", &report);
        }
        loop {
            ctx.beat();
            let n = self.store.delete_old_events(cutoff, CHUNK).await?;
            if n == 0 {
                break;
            }
            report.deleted_events += n;
            self.deleted.with_label_values(&["events", "age"]).inc_by(n);
            self.progress(job_id, "events", &report);
        }
        Ok(report)
    }

    fn progress(&self, job_id: &str, phase: &str, r: &CleanupReport) {
        self.events
            .publish(Event::JobProgress(JobProgress::new(job_id, JOB, phase, *r)));
    }

    /// Delete images no detection refers to any more: only below the camera root, and
    /// relative to a handle of each parent directory reached without following any
    /// symlink (`camera_fs::remove_file`), so a directory swapped for a symlink between
    /// the database round trip and the delete cannot redirect it outside the root.
    async fn delete_media(&self, mut paths: Vec<String>) -> Result<u64, StoreError> {
        paths.sort();
        paths.dedup();
        let mut deleted = 0;
        for p in paths {
            if self.store.file_referenced(&p).await? {
                continue;
            }
            let (root, path) = (self.camera_root.clone(), PathBuf::from(&p));
            let removed = tokio::task::spawn_blocking(move || camera_fs::remove_file(&root, &path))
                .await
                .map_err(|e| StoreError::Query(e.to_string()))?;
            match removed {
                Ok(true) => deleted += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(path = ?p, error = %e, "not deleting media file"),
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_scheduled_is_today_or_yesterday() {
        let now = Local
            .with_ymd_and_hms(2026, 11, 28, 10, 0, 0)
            .single()
            .expect("time");
        let three = last_scheduled(now, 3, 0).with_timezone(&Local);
        assert_eq!(three.date_naive(), now.date_naive());
        let eleven = last_scheduled(now, 11, 0).with_timezone(&Local);
        assert_eq!(
            eleven.date_naive(),
            now.date_naive() - ChronoDuration::days(1)
        );
        assert!(last_scheduled(now, 10, 0) <= now.with_timezone(&Utc));
    }
}
