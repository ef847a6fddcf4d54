//! The `coverage_recorder` worker: every second it looks at the cameras and the latest
//! health assessment, opens a span for each condition that began and ends each that
//! is over, and writes those changes to PostgreSQL (only changes: an idle, healthy
//! pipeline writes nothing). Alongside, a heartbeat file holds the time and the open
//! spans, rewritten every second; at start, the time since it is a `watchpost_down`
//! span and the spans it names are ended at it. Once a minute it publishes the
//! availability series, and once an hour it forgets spans past
//! `coverage.retention_days`.
//!
//! While PostgreSQL is away the changes wait in memory (at most [`MAX_PENDING`]
//! spans; past it the oldest ended ones are dropped and counted in the log).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::metrics::{CoverageMetrics, PUBLISHED};
use super::observe::{self, Conditions};
use super::report::Coverage;
use super::span::{Cause, Span, Subject};
use crate::cameras::CameraRegistry;
use crate::config::CoverageConfig;
use crate::health::Health;
use crate::names::workers;
use crate::quiet::Quiet;
use crate::store::{SpanRow, Store};
use crate::supervisor::{WorkerContext, WorkerSpec};

/// How often the conditions are looked at and the heartbeat written.
const TICK: Duration = Duration::from_secs(1);
/// How often the availability series are refreshed.
const PUBLISH_EVERY: Duration = Duration::from_secs(60);
/// How often old spans are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(3600);
/// The most span changes held while PostgreSQL is away.
pub const MAX_PENDING: usize = 10_000;
/// The longest one write may take before the next tick.
const WRITE_BUDGET: Duration = Duration::from_secs(10);
/// The longest start: until the file watcher watches (or this long has passed) the
/// time is watchpost's own, not a worker's.
const START_GRACE: Duration = Duration::from_secs(30);

/// The heartbeat file's content.
#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    /// Unix milliseconds.
    at_ms: i64,
    /// The spans open then.
    open: Vec<String>,
}

#[derive(Default)]
struct Inner {
    open: BTreeMap<(Subject, Cause), Span>,
    /// Span changes not written yet, by id (the newest version of each).
    pending: BTreeMap<String, Span>,
    /// Spans a stopped run left open, to end at its last heartbeat.
    left_open: Option<(Vec<String>, DateTime<Utc>)>,
    /// Whether the last run's heartbeat has been read (once per process).
    recovered: bool,
    /// The `watchpost_down` span of this start, open until the file watcher watches.
    starting: Option<Span>,
    /// When this run began to watch (the start ended); the history begins then.
    watching_since: Option<DateTime<Utc>>,
    /// Whether the history's start has been written.
    history_begun: bool,
    dropped: u64,
}

pub struct Recorder {
    cameras: Arc<CameraRegistry>,
    health: Arc<Health>,
    store: Arc<Store>,
    coverage: Arc<Coverage>,
    quiet: Arc<Quiet>,
    metrics: CoverageMetrics,
    heartbeat: PathBuf,
    retention: chrono::Duration,
    began: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    pub fn new(
        cfg: &CoverageConfig,
        cameras: Arc<CameraRegistry>,
        health: Arc<Health>,
        store: Arc<Store>,
        coverage: Arc<Coverage>,
        quiet: Arc<Quiet>,
        metrics: CoverageMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            cameras,
            health,
            store,
            coverage,
            quiet,
            metrics,
            heartbeat: PathBuf::from(&cfg.heartbeat_path),
            retention: chrono::Duration::days(cfg.retention_days.into()),
            began: Instant::now(),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::COVERAGE_RECORDER,
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                me.run(&ctx).await;
                Ok(())
            },
        )
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What each in-memory structure holds (`watchpost_memory_entries`).
    pub fn entries(&self) -> usize {
        let inner = self.lock();
        inner.open.len() + inner.pending.len()
    }

    async fn run(&self, ctx: &WorkerContext) {
        self.recover_at_start(crate::time::now());
        let mut next_publish = Instant::now();
        let mut next_forget = Instant::now();
        let mut published_begun = false;
        loop {
            let now = crate::time::now();
            self.observe(now);
            self.write_heartbeat(now).await;
            ctx.beat_while(WRITE_BUDGET, self.flush()).await;
            // Published at once when the history has begun, then once a minute.
            let begun = self.lock().history_begun;
            if Instant::now() >= next_publish || (begun && !published_begun) {
                published_begun = begun;
                next_publish = Instant::now() + PUBLISH_EVERY;
                ctx.beat_while(WRITE_BUDGET * 3, self.publish()).await;
            }
            if Instant::now() >= next_forget {
                next_forget = Instant::now() + FORGET_EVERY;
                match self.store.forget_spans_before(now - self.retention).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(spans = n, "coverage spans past retention forgotten")
                    }
                    _ => {}
                }
            }
            if !ctx.idle(TICK).await {
                // The heartbeat stays as it is: the next start counts from it.
                return;
            }
        }
    }

    /// Read the last run's heartbeat (once per process, not at a restart of this
    /// worker): the time since is `watchpost_down`, until this run watches, and the
    /// spans it left open end at it. A missing or unreadable file: a first start.
    fn recover_at_start(&self, now: DateTime<Utc>) {
        if std::mem::replace(&mut self.lock().recovered, true) {
            return;
        }
        let Ok(text) = std::fs::read_to_string(&self.heartbeat) else {
            return;
        };
        let Ok(beat) = serde_json::from_str::<Heartbeat>(&text) else {
            tracing::warn!(path = %self.heartbeat.display(), "heartbeat file unreadable; the time watchpost was down before this start is not known");
            return;
        };
        let Some(at) = DateTime::from_timestamp_millis(beat.at_ms).filter(|at| *at < now) else {
            return;
        };
        let mut inner = self.lock();
        inner.left_open = Some((beat.open.into_iter().take(MAX_PENDING).collect(), at));
        let down = Span {
            id: uuid::Uuid::new_v4().to_string(),
            subject: Subject::Pipeline,
            cause: Cause::WatchpostDown,
            detail: format!(
                "watchpost was not running (last heartbeat {})",
                crate::time::iso(at)
            ),
            start: at,
            end: None,
        };
        tracing::info!(since = %crate::time::iso(at), "watchpost was not running since its last heartbeat: recorded as unwatched");
        inner.pending.insert(down.id.clone(), down.clone());
        inner.starting = Some(down);
    }

    /// Open a span for each condition that began, end each that is over. A part
    /// that cannot judge yet (the cameras not read back, no health round) keeps its
    /// spans as they are.
    fn observe(&self, now: DateTime<Utc>) {
        let mut wanted = Conditions::new();
        let cameras = self
            .cameras
            .loaded()
            .then(|| self.cameras.list(false).cameras);
        let health = self.health.latest();
        if let Some(cams) = &cameras {
            observe::of_cameras(cams, &mut wanted);
            observe::of_maintenance(cams, &self.quiet, now, &mut wanted);
        }
        if let Some(h) = &health {
            observe::of_health(h, now, &mut wanted);
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        // Until the file watcher watches, the time is the start's: no worker is down.
        if inner.watching_since.is_none() {
            let watching = health.as_ref().is_some_and(|h| {
                h.workers
                    .iter()
                    .any(|w| w.name == workers::FILE_WATCHER && w.running)
            });
            if watching || self.began.elapsed() >= START_GRACE {
                inner.watching_since = Some(now);
                if let Some(mut s) = inner.starting.take() {
                    s.end = Some(now);
                    inner.pending.insert(s.id.clone(), s);
                }
            } else {
                wanted.retain(|k, _| k.0 != Subject::Pipeline);
            }
        }
        // Parts that cannot judge keep theirs.
        for (key, span) in &inner.open {
            let judged = match key.0 {
                Subject::Camera(_) => cameras.is_some(),
                Subject::Pipeline | Subject::Dependency(_) => health.is_some(),
            };
            if !judged {
                wanted.insert(
                    key.clone(),
                    observe::Holds {
                        since: span.start,
                        detail: span.detail.clone(),
                    },
                );
            }
        }
        let ended: Vec<(Subject, Cause)> = inner
            .open
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in ended {
            let Some(mut span) = inner.open.remove(&key) else {
                continue;
            };
            // A camera's span ends when its status changed (its next image, for one
            // offline), not when this look saw it.
            let end = match &key.0 {
                Subject::Camera(id) => cameras
                    .as_ref()
                    .and_then(|c| c.iter().find(|c| &c.id == id))
                    .map(|c| c.status_since)
                    .filter(|t| *t > span.start && *t <= now)
                    .unwrap_or(now),
                _ => now,
            };
            span.end = Some(end.max(span.start));
            inner.pending.insert(span.id.clone(), span);
        }
        for (key, holds) in wanted {
            if inner.open.contains_key(&key) {
                continue;
            }
            let span = Span {
                id: uuid::Uuid::new_v4().to_string(),
                subject: key.0.clone(),
                cause: key.1,
                detail: holds.detail,
                start: holds.since.min(now),
                end: None,
            };
            tracing::info!(subject = ?span.subject, cause = span.cause.as_str(), "unwatched: a coverage gap began");
            inner.pending.insert(span.id.clone(), span.clone());
            inner.open.insert(key, span);
        }
        bound(inner);
    }

    /// Rewrite the heartbeat file (a new file renamed over the old, so a crash never
    /// leaves half of one).
    async fn write_heartbeat(&self, now: DateTime<Utc>) {
        let beat = {
            let inner = self.lock();
            Heartbeat {
                at_ms: now.timestamp_millis(),
                open: inner
                    .open
                    .values()
                    .chain(inner.starting.as_ref())
                    .map(|s| s.id.clone())
                    .collect(),
            }
        };
        let path = self.heartbeat.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("tmp");
            // Serialising a struct of an integer and strings cannot fail.
            let text = serde_json::to_vec(&beat).unwrap_or_default();
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::debug!(path = %self.heartbeat.display(), error = %e, "heartbeat not written");
        }
    }

    /// Write what changed; kept for the next tick when PostgreSQL is away.
    async fn flush(&self) {
        let (left_open, begin, rows) = {
            let inner = self.lock();
            (
                inner.left_open.clone(),
                inner.watching_since.filter(|_| !inner.history_begun),
                inner.pending.values().map(row).collect::<Vec<_>>(),
            )
        };
        if let Some(t) = begin {
            if self.store.begin_coverage_history(t).await.is_ok() {
                self.lock().history_begun = true;
            }
        }
        if let Some((ids, at)) = left_open {
            if self.store.end_spans(&ids, at).await.is_err() {
                return;
            }
            self.lock().left_open = None;
        }
        if rows.is_empty() {
            return;
        }
        if self.store.save_spans(&rows).await.is_ok() {
            let mut inner = self.lock();
            for r in rows {
                // Unless it changed again meanwhile.
                if inner
                    .pending
                    .get(&r.id)
                    .is_some_and(|s| s.end == r.ended_at)
                {
                    inner.pending.remove(&r.id);
                }
            }
        }
    }

    async fn publish(&self) {
        let mut reports = Vec::new();
        for w in PUBLISHED {
            match self.coverage.availability(w).await {
                Ok(r) => reports.push(r),
                Err(_) => return,
            }
        }
        self.metrics.published(&reports);
    }
}

/// Keep at most [`MAX_PENDING`] changes: the oldest ended spans go first (an open
/// span is kept: its end must follow).
fn bound(inner: &mut Inner) {
    while inner.pending.len() > MAX_PENDING {
        let oldest = inner
            .pending
            .values()
            .filter(|s| s.end.is_some())
            .min_by_key(|s| s.start)
            .map(|s| s.id.clone());
        let Some(id) = oldest else { break };
        inner.pending.remove(&id);
        inner.dropped += 1;
        if inner.dropped == 1 || inner.dropped % 1000 == 0 {
            tracing::warn!(
                dropped = inner.dropped,
                "coverage changes dropped: PostgreSQL has been away too long"
            );
        }
    }
}

fn row(s: &Span) -> SpanRow {
    let (kind, subject) = s.subject.columns();
    SpanRow {
        id: s.id.clone(),
        subject_kind: kind.to_string(),
        subject: subject.to_string(),
        cause: s.cause.as_str().to_string(),
        detail: s.detail.clone(),
        started_at: s.start,
        ended_at: s.end,
    }
}
