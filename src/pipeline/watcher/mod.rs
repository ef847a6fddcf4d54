//! File watcher (`file_watcher` worker, docs/behaviour.md §4): a recursive `notify` watch of
//! `camera_root` (inotify, or the polling watcher when the native one cannot start or
//! `file_watcher.polling = true`). A file is taken once it has a supported extension,
//! is at least `min_file_bytes`, its size has been stable for `stable_seconds` (or a
//! close-after-write was seen), after a `debounce_ms` quiet time. Its SHA-256 is
//! de-duplicated atomically in Redis (`SET NX EX`, in memory while Redis is down), and
//! it goes to the detection queue. A ledger under `queue.spool_dir` remembers queued
//! files, so the catch-up scan at start (for files that arrived while watchpost was
//! down) never queues one twice. Losing `camera_root` is a crash; the restarted worker
//! recreates it. Hashing and scans run on the blocking pool.

mod dedupe;
mod item;
mod ledger;
mod observer;
mod pending;
mod scan;

pub use dedupe::Dedupe;
pub use item::{has_image_extension, normalize_camera_id, DetectionItem};

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::queue::{Queue, QueueError};
use crate::config::{secs, Config};
use crate::events::EventBus;
use crate::prom::{Label, Metrics};
use crate::redis::RedisLink;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};
use ledger::{ledger_key, Ledger};
use observer::{start_observer, FsEvent};
use pending::{Pending, RETRY_AFTER};
use scan::{hash_file, scan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObserverType {
    Native,
    Polling,
}

impl Label for ObserverType {
    fn label(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Polling => "polling",
        }
    }
    fn all() -> &'static [Self] {
        &[Self::Native, Self::Polling]
    }
}

/// What the watcher decided about one file (the `result` label of
/// `watchpost_watcher_files_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileResult {
    /// A full rescan after lost file events (counted once per rescan).
    Rescan,
    Queued,
    /// Same content as a file seen within the de-duplication TTL.
    Duplicate,
    /// Judged before (in the ledger).
    AlreadyProcessed,
    RejectedExtension,
    RejectedSize,
    /// Directly in the root, or in a folder whose name gives no camera id.
    IgnoredRoot,
    /// The queue's spool is full; retried later.
    Refused,
    /// Could not be read or queued this time; retried later.
    Error,
}

impl Label for FileResult {
    fn label(self) -> &'static str {
        match self {
            Self::Rescan => "rescan",
            Self::Queued => "queued",
            Self::Duplicate => "duplicate",
            Self::AlreadyProcessed => "already_processed",
            Self::RejectedExtension => "rejected_extension",
            Self::RejectedSize => "rejected_size",
            Self::IgnoredRoot => "ignored_root",
            Self::Refused => "refused",
            Self::Error => "error",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Rescan,
            Self::Queued,
            Self::Duplicate,
            Self::AlreadyProcessed,
            Self::RejectedExtension,
            Self::RejectedSize,
            Self::IgnoredRoot,
            Self::Refused,
            Self::Error,
        ]
    }
}

/// What `/api/system/pipeline` reports about the watcher.
pub struct WatcherStatus {
    active: AtomicBool,
    /// The observer in use, or the last one used (the configured kind before the first
    /// start), so it is never unknown.
    observer: Mutex<ObserverType>,
    pending: AtomicUsize,
}

impl WatcherStatus {
    fn new(configured: ObserverType) -> Self {
        Self {
            active: AtomicBool::new(false),
            observer: Mutex::new(configured),
            pending: AtomicUsize::new(0),
        }
    }

    /// Is a watch established right now?
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn observer_type(&self) -> ObserverType {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pending_tasks(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

pub struct FileWatcher {
    root: PathBuf,
    polling: bool,
    polling_interval: Duration,
    debounce: Duration,
    stable: Duration,
    min_bytes: u64,
    ledger_path: PathBuf,
    queue: Arc<Queue>,
    dedupe: Dedupe,
    events: EventBus,
    metrics: Arc<Metrics>,
    status: Arc<WatcherStatus>,
}

impl FileWatcher {
    pub fn new(
        config: &Config,
        queue: Arc<Queue>,
        redis: Arc<RedisLink>,
        events: EventBus,
        metrics: Arc<Metrics>,
    ) -> Self {
        let fw = &config.file_watcher;
        metrics.watcher_known::<FileResult>();
        Self {
            root: absolute(Path::new(&fw.camera_root)),
            polling: fw.polling,
            polling_interval: secs(fw.polling_interval_seconds),
            debounce: Duration::from_millis(fw.debounce_ms),
            stable: secs(fw.stable_seconds),
            min_bytes: fw.min_file_bytes,
            ledger_path: Path::new(&config.queue.spool_dir).join("watcher-ledger.log"),
            queue,
            dedupe: Dedupe::new(redis, secs(fw.dedupe_ttl_seconds)),
            events,
            status: Arc::new(WatcherStatus::new(if fw.polling {
                ObserverType::Polling
            } else {
                ObserverType::Native
            })),
            metrics,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn status(&self) -> &Arc<WatcherStatus> {
        &self.status
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            "file_watcher",
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                let result = me.run(&ctx).await;
                me.status.active.store(false, Ordering::Relaxed);
                me.status.pending.store(0, Ordering::Relaxed);
                result
            },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let root = self.root.clone();
        let ledger_path = self.ledger_path.clone();
        let mut ledger = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            std::fs::create_dir_all(&root)?;
            Ledger::load(ledger_path)
        })
        .await
        .map_err(|e| WorkerError::new(e.to_string()))?
        .map_err(|e| WorkerError::new(format!("cannot prepare {}: {e}", self.root.display())))?;

        // Watch first, then scan: a file that lands in between is seen twice (and
        // taken once), never missed.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (root, polling, interval) = (self.root.clone(), self.polling, self.polling_interval);
        let (_observer, observer_type) =
            tokio::task::spawn_blocking(move || start_observer(&root, polling, interval, tx))
                .await
                .map_err(|e| WorkerError::new(e.to_string()))??;
        let root = self.root.clone();
        let existing = tokio::task::spawn_blocking(move || scan(&root))
            .await
            .map_err(|e| WorkerError::new(e.to_string()))?;
        *self
            .status
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = observer_type;
        self.status.active.store(true, Ordering::Relaxed);
        tracing::info!(root = ?self.root, observer = observer_type.label(), "file watcher started");

        let mut known_cameras: HashSet<String> = HashSet::new();
        let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
        let now = Instant::now();
        // Catch-up: files that arrived while we were not running. Old files are stable.
        for (path, camera_dir) in existing {
            if let Some(dir) = camera_dir {
                known_cameras.insert(normalize_camera_id(&dir));
            }
            if let Some(path) = path {
                pending.insert(path, Pending::found(now, self.debounce));
            }
        }

        let tick = (self.debounce / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        loop {
            self.status.pending.store(pending.len(), Ordering::Relaxed);
            self.metrics.watcher_pending(observer_type, pending.len());
            ctx.beat();
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                ev = rx.recv() => {
                    let Some(ev) = ev else {
                        return Err(WorkerError::new("file watcher event stream ended"));
                    };
                    self.on_event(ev, &mut pending, &mut known_cameras);
                    // Drain whatever else is ready before evaluating.
                    while let Ok(ev) = rx.try_recv() {
                        self.on_event(ev, &mut pending, &mut known_cameras);
                    }
                }
                _ = tokio::time::sleep(tick) => {}
            }
            if !tokio::fs::try_exists(&self.root).await.unwrap_or(false) {
                return Err(WorkerError::new(format!(
                    "camera root {} was deleted",
                    self.root.display()
                )));
            }
            self.evaluate(ctx, &mut pending, &mut ledger, &mut known_cameras)
                .await;
        }
    }

    fn on_event(
        &self,
        ev: FsEvent,
        pending: &mut HashMap<PathBuf, Pending>,
        known: &mut HashSet<String>,
    ) {
        let now = Instant::now();
        let (path, closed) = match ev {
            FsEvent::DirCreated(dir) => {
                self.note_camera_dir(&dir, known);
                // Files written into a new folder before its watch was added raise no
                // event of their own; `evaluate` scans the folder once it is quiet.
                (dir, false)
            }
            FsEvent::Rescan => {
                // Queue the root itself: `evaluate` scans a pending folder, and the
                // ledger makes files already queued cheap to skip.
                tracing::warn!("file events were lost; rescanning the camera root");
                self.metrics.watcher_file(FileResult::Rescan);
                pending
                    .entry(self.root.clone())
                    .or_insert_with(|| Pending::new(now));
                return;
            }
            FsEvent::Touched(p) => (p, false),
            FsEvent::Closed(p) => (p, true),
        };
        if path == self.root {
            return;
        }
        let entry = pending.entry(path).or_insert_with(|| Pending::new(now));
        entry.last_event = now;
        entry.closed |= closed;
    }

    fn note_camera_dir(&self, dir: &Path, known: &mut HashSet<String>) {
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return;
        };
        let mut parts = rel.components();
        if let (Some(Component::Normal(first)), None) = (parts.next(), parts.next()) {
            let folder = first.to_string_lossy().to_string();
            let camera_id = normalize_camera_id(&folder);
            if !camera_id.is_empty() && known.insert(camera_id.clone()) {
                tracing::info!(camera_id = %camera_id, folder = %folder, "new camera folder");
                self.events.publish(
                    "camera.status_changed",
                    "cameras",
                    serde_json::json!({"camera_id": camera_id, "status": "online", "folder": folder}),
                );
            }
        }
    }

    /// Take every pending file that is quiet and stable.
    async fn evaluate(
        &self,
        ctx: &WorkerContext,
        pending: &mut HashMap<PathBuf, Pending>,
        ledger: &mut Ledger,
        known: &mut HashSet<String>,
    ) {
        let now = Instant::now();
        let candidates: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, p)| p.quiet(now, self.debounce))
            .map(|(k, _)| k.clone())
            .collect();
        for path in candidates {
            ctx.beat();
            let meta = match tokio::fs::metadata(&path).await {
                Ok(m) => m,
                Err(_) => {
                    pending.remove(&path); // vanished before it was taken
                    continue;
                }
            };
            if meta.is_dir() {
                pending.remove(&path);
                self.note_camera_dir(&path, known);
                let dir = path.clone();
                let found = tokio::task::spawn_blocking(move || scan(&dir))
                    .await
                    .unwrap_or_default();
                for file in found.into_iter().filter_map(|(f, _)| f) {
                    pending.entry(file).or_insert_with(|| Pending::new(now));
                }
                continue;
            }
            let Some(p) = pending.get_mut(&path) else {
                continue;
            };
            let size = meta.len();
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok());
            if !p.observe(size, age, now, self.stable) {
                continue;
            }
            match self
                .take(&path, size, meta.modified().ok(), ledger, known)
                .await
            {
                Ok(result) => {
                    self.metrics.watcher_file(result);
                    pending.remove(&path);
                }
                Err(result) => {
                    self.metrics.watcher_file(result);
                    if let Some(p) = pending.get_mut(&path) {
                        p.retry_at = Some(Instant::now() + RETRY_AFTER);
                    }
                }
            }
        }
    }

    /// Filter, hash, de-duplicate and queue one stable file. `Ok(result)` is final;
    /// `Err(result)` means try again later.
    async fn take(
        &self,
        path: &Path,
        size: u64,
        mtime: Option<SystemTime>,
        ledger: &mut Ledger,
        known: &mut HashSet<String>,
    ) -> Result<FileResult, FileResult> {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Ok(FileResult::IgnoredRoot);
        };
        let mut parts = rel.components();
        let folder = match (parts.next(), parts.next()) {
            (Some(Component::Normal(first)), Some(_)) => first.to_string_lossy().to_string(),
            _ => return Ok(FileResult::IgnoredRoot),
        };
        if !has_image_extension(path) {
            tracing::debug!(path = %path.display(), "ignoring a file without an image extension");
            return Ok(FileResult::RejectedExtension);
        }
        if size < self.min_bytes {
            tracing::info!(path = %path.display(), size, min = self.min_bytes, "rejecting a file below the minimum size");
            return Ok(FileResult::RejectedSize);
        }
        let camera_id = normalize_camera_id(&folder);
        if camera_id.is_empty() {
            return Ok(FileResult::IgnoredRoot);
        }
        let key = ledger_key(path, size, mtime);
        if ledger.contains(&key) {
            return Ok(FileResult::AlreadyProcessed);
        }
        let started = std::time::Instant::now();
        let p = path.to_path_buf();
        let hash = match tokio::task::spawn_blocking(move || hash_file(&p)).await {
            Ok(Ok(h)) => h,
            _ => {
                tracing::warn!(path = %path.display(), "cannot read file; will retry");
                return Err(FileResult::Error);
            }
        };
        self.metrics
            .stage_timed("hash", started.elapsed().as_secs_f64());
        if !self.dedupe.first_seen(&hash).await {
            tracing::info!(path = ?path, "skipping duplicate image content");
            // Judged: a restart (even during a Redis outage, or after the TTL) must
            // not queue it again.
            if let Err(e) = ledger.record(key) {
                tracing::warn!(error = %e, "cannot append to the watcher ledger");
            }
            return Ok(FileResult::Duplicate);
        }
        self.note_camera_dir(&self.root.join(&folder), known);
        let item = DetectionItem {
            file_path: path.display().to_string(),
            camera_id,
            file_hash: hash.clone(),
            file_size: size,
            seen_at: crate::time::now(),
        };
        let payload = serde_json::to_string(&item).map_err(|_| FileResult::Error)?;
        match self.queue.push(&payload).await {
            Ok(_) => {
                if let Err(e) = ledger.record(key) {
                    tracing::warn!(error = %e, "cannot append to the watcher ledger");
                }
                Ok(FileResult::Queued)
            }
            Err(e) => {
                self.dedupe.forget(&hash).await;
                match e {
                    QueueError::SpoolFull { .. } => Err(FileResult::Refused),
                    _ => {
                        tracing::error!(error = %e, path = %path.display(), "cannot queue file; will retry");
                        Err(FileResult::Error)
                    }
                }
            }
        }
    }
}

/// Absolute form of `p` without `.` components (`./data/cameras` → `/cwd/data/cameras`).
fn absolute(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}
