//! File watcher (`file_watcher` worker, behaviour.md §4): a recursive `notify` watch of
//! `camera_root` (inotify, or the polling watcher when the native one cannot start or
//! `file_watcher.polling = true`). A file is taken once it has a supported extension,
//! is at least `min_file_bytes`, its size has been stable for `stable_seconds` (or a
//! close-after-write was seen), after a `debounce_ms` quiet time. Its SHA-256 is
//! de-duplicated atomically in Redis (`SET NX EX`, in memory while Redis is down), and
//! it goes to the detection queue. A ledger under `queue.spool_dir` remembers queued
//! files, so the catch-up scan at start (for files that arrived while watchpost was
//! down) never queues one twice. Losing `camera_root` is a crash; the restarted worker
//! recreates it. Hashing and scans run on the blocking pool.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::kv::RedisLink;
use super::queue::{Queue, QueueError};
use crate::config::{secs, Config};
use crate::events::EventBus;
use crate::prom::Metrics;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
/// Wait before retrying a file the queue refused (spool full).
const REFUSED_RETRY: Duration = Duration::from_secs(5);

/// One image handed to the detection queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DetectionItem {
    pub file_path: String,
    pub camera_id: String,
    pub file_hash: String,
    pub file_size: u64,
    pub seen_at: chrono::DateTime<Utc>,
}

/// `Front Door` → `front_door`: trim, lower-case, spaces and hyphens to `_`, other
/// non-word characters dropped.
pub fn normalize_camera_id(folder: &str) -> String {
    folder
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('_'),
            c if c.is_alphanumeric() || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObserverType {
    Native,
    Polling,
}

/// What `/api/system/pipeline` reports about the watcher.
#[derive(Default)]
pub struct WatcherStatus {
    observer: Mutex<Option<ObserverType>>,
    pending: AtomicUsize,
}

impl WatcherStatus {
    pub fn observer_type(&self) -> Option<ObserverType> {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pending_tasks(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

/// Atomic "first time we see this hash" with a TTL: Redis `SET NX EX`, or an
/// in-memory map while Redis is unreachable.
pub struct Dedupe {
    redis: Arc<RedisLink>,
    ttl: Duration,
    memory: Mutex<HashMap<String, Instant>>,
}

impl Dedupe {
    pub fn new(redis: Arc<RedisLink>, ttl: Duration) -> Self {
        Self {
            redis,
            ttl,
            memory: Mutex::new(HashMap::new()),
        }
    }

    fn key(hash: &str) -> String {
        format!("watchpost:dedupe:{hash}")
    }

    /// `true` when `hash` was not seen within the TTL (and is now marked seen).
    pub async fn first_seen(&self, hash: &str) -> bool {
        let ttl = self.ttl.as_secs().max(1);
        if let Ok(mut conn) = self.redis.conn().await {
            let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(Self::key(hash))
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl)
                .query_async(&mut conn)
                .await;
            if let Ok(v) = set {
                return v.is_some();
            }
        }
        let mut mem = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        mem.retain(|_, at| now.duration_since(*at) < self.ttl);
        if mem.contains_key(hash) {
            false
        } else {
            mem.insert(hash.to_string(), now);
            true
        }
    }

    /// Undo `first_seen` (the file could not be queued and will be retried).
    pub async fn forget(&self, hash: &str) {
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
        if let Ok(mut conn) = self.redis.conn().await {
            let _: redis::RedisResult<()> = redis::cmd("DEL")
                .arg(Self::key(hash))
                .query_async(&mut conn)
                .await;
        }
    }
}

/// Files already queued, identified by path, size and modification time.
/// Files already queued, identified by path, size and modification time. The file
/// keeps the full lines (for compaction); memory keeps a 128-bit digest of each, so
/// hundreds of thousands of images cost a few MiB.
struct Ledger {
    path: PathBuf,
    seen: HashSet<u128>,
}

fn ledger_key(path: &Path, size: u64, mtime: Option<SystemTime>) -> String {
    let nanos = mtime
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{nanos}\t{size}\t{}", path.display())
}

fn digest(key: &str) -> u128 {
    let d = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_le_bytes(first)
}

impl Ledger {
    /// Load, dropping entries whose files no longer exist (compaction).
    fn load(path: PathBuf) -> std::io::Result<Self> {
        let mut seen = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut out = String::with_capacity(text.len());
            for line in text.lines() {
                let file = line.splitn(3, '\t').nth(2).unwrap_or_default();
                if !file.is_empty() && Path::new(file).exists() && seen.insert(digest(line)) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, out)?;
            std::fs::rename(&tmp, &path)?;
        } else if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self { path, seen })
    }

    fn contains(&self, key: &str) -> bool {
        self.seen.contains(&digest(key))
    }

    fn record(&mut self, key: String) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(format!("{key}\n").as_bytes())?;
        self.seen.insert(digest(&key));
        Ok(())
    }
}

/// A file waiting for its quiet time and stable size.
#[derive(Debug)]
struct Pending {
    last_event: Instant,
    size: Option<u64>,
    stable_since: Instant,
    closed: bool,
    retry_at: Option<Instant>,
}

impl Pending {
    fn new(now: Instant) -> Self {
        Self {
            last_event: now,
            size: None,
            stable_since: now,
            closed: false,
            retry_at: None,
        }
    }

    /// Quiet for `debounce` since the last event, and not waiting for a retry.
    fn quiet(&self, now: Instant, debounce: Duration) -> bool {
        now.duration_since(self.last_event) >= debounce && self.retry_at.is_none_or(|t| now >= t)
    }

    /// Record the current size; `true` when the file may be taken: a close-after-write
    /// was seen, its size has not changed for `stable`, or (catch-up) it was last
    /// modified at least `stable` ago.
    fn observe(
        &mut self,
        size: u64,
        age: Option<Duration>,
        now: Instant,
        stable: Duration,
    ) -> bool {
        if self.size != Some(size) {
            self.size = Some(size);
            self.stable_since = now;
            return self.closed || age.is_some_and(|a| a >= stable);
        }
        self.closed || now.duration_since(self.stable_since) >= stable
    }
}

enum FsEvent {
    Touched(PathBuf),
    Closed(PathBuf),
    DirCreated(PathBuf),
    /// The OS dropped events (inotify queue overflow) or the watcher failed: rescan.
    Rescan,
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
            metrics,
            status: Arc::new(WatcherStatus::default()),
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
                *me.status.observer.lock().unwrap_or_else(|p| p.into_inner()) = None;
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
            .unwrap_or_else(|p| p.into_inner()) = Some(observer_type);
        let observer_label = match observer_type {
            ObserverType::Native => "native",
            ObserverType::Polling => "polling",
        };
        tracing::info!(root = %self.root.display(), observer = observer_label, "file watcher started");

        let mut known_cameras: HashSet<String> = HashSet::new();
        let mut pending: HashMap<PathBuf, Pending> = HashMap::new();
        let now = Instant::now();
        // Catch-up: files that arrived while we were not running. Old files are stable.
        for (path, camera_dir) in existing {
            if let Some(dir) = camera_dir {
                known_cameras.insert(normalize_camera_id(&dir));
            }
            if let Some(path) = path {
                let mut p = Pending::new(now);
                p.last_event = now.checked_sub(self.debounce).unwrap_or(now);
                pending.insert(path, p);
            }
        }

        let tick = (self.debounce / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        loop {
            self.status.pending.store(pending.len(), Ordering::Relaxed);
            self.metrics.watcher_pending(observer_label, pending.len());
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
                self.metrics.watcher_file("rescan");
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
                        p.retry_at = Some(Instant::now() + REFUSED_RETRY);
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
    ) -> Result<&'static str, &'static str> {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Ok("ignored_root");
        };
        let mut parts = rel.components();
        let folder = match (parts.next(), parts.next()) {
            (Some(Component::Normal(first)), Some(_)) => first.to_string_lossy().to_string(),
            _ => return Ok("ignored_root"),
        };
        if !has_image_extension(path) {
            tracing::debug!(path = %path.display(), "ignoring a file without an image extension");
            return Ok("rejected_extension");
        }
        if size < self.min_bytes {
            tracing::info!(path = %path.display(), size, min = self.min_bytes, "rejecting a file below the minimum size");
            return Ok("rejected_size");
        }
        let camera_id = normalize_camera_id(&folder);
        if camera_id.is_empty() {
            return Ok("ignored_root");
        }
        let key = ledger_key(path, size, mtime);
        if ledger.contains(&key) {
            return Ok("already_processed");
        }
        let started = std::time::Instant::now();
        let p = path.to_path_buf();
        let hash = match tokio::task::spawn_blocking(move || hash_file(&p)).await {
            Ok(Ok(h)) => h,
            _ => {
                tracing::warn!(path = %path.display(), "cannot read file; will retry");
                return Err("error");
            }
        };
        self.metrics
            .stage_timed("hash", started.elapsed().as_secs_f64());
        if !self.dedupe.first_seen(&hash).await {
            tracing::info!(path = %path.display(), "skipping duplicate image content");
            return Ok("duplicate");
        }
        self.note_camera_dir(&self.root.join(&folder), known);
        let item = DetectionItem {
            file_path: path.display().to_string(),
            camera_id,
            file_hash: hash.clone(),
            file_size: size,
            seen_at: Utc::now(),
        };
        let payload = serde_json::to_string(&item).map_err(|_| "error")?;
        match self.queue.push(&payload).await {
            Ok(_) => {
                if let Err(e) = ledger.record(key) {
                    tracing::warn!(error = %e, "cannot append to the watcher ledger");
                }
                Ok("queued")
            }
            Err(e) => {
                self.dedupe.forget(&hash).await;
                match e {
                    QueueError::SpoolFull { .. } => Err("refused"),
                    _ => {
                        tracing::error!(error = %e, path = %path.display(), "cannot queue file; will retry");
                        Err("error")
                    }
                }
            }
        }
    }
}

/// Start the native watcher (or the polling one) on `root`; blocking (a recursive
/// inotify watch walks the tree).
fn start_observer(
    root: &Path,
    polling: bool,
    polling_interval: Duration,
    tx: mpsc::UnboundedSender<FsEvent>,
) -> Result<(Box<dyn notify::Watcher + Send>, ObserverType), WorkerError> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        let event = match res {
            Ok(e) if !e.need_rescan() => e,
            _ => {
                let _ = tx.send(FsEvent::Rescan);
                return;
            }
        };
        use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};
        for path in event.paths {
            let msg = match event.kind {
                EventKind::Create(CreateKind::Folder) => FsEvent::DirCreated(path),
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => FsEvent::Closed(path),
                EventKind::Create(_) | EventKind::Modify(_) => FsEvent::Touched(path),
                _ => continue,
            };
            let _ = tx.send(msg);
        }
    };
    let native = if polling {
        None
    } else {
        match notify::recommended_watcher(handler.clone()) {
            Ok(mut w) => match w.watch(root, RecursiveMode::Recursive) {
                Ok(()) => Some(Box::new(w) as Box<dyn notify::Watcher + Send>),
                Err(e) => {
                    tracing::warn!(error = %e, "native file watcher failed; falling back to polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "native file watcher unavailable; falling back to polling");
                None
            }
        }
    };
    if let Some(w) = native {
        return Ok((w, ObserverType::Native));
    }
    let cfg = notify::Config::default().with_poll_interval(polling_interval);
    let mut w = notify::PollWatcher::new(handler, cfg)
        .map_err(|e| WorkerError::new(format!("cannot start the polling watcher: {e}")))?;
    w.watch(root, RecursiveMode::Recursive)
        .map_err(|e| WorkerError::new(format!("cannot watch {}: {e}", root.display())))?;
    Ok((Box::new(w), ObserverType::Polling))
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

fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// Every file below `root` (for the catch-up scan) and every camera folder:
/// `(Some(file), None)` or `(None, Some(folder name))`.
fn scan(root: &Path) -> Vec<(Option<PathBuf>, Option<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if dir == root {
                        out.push((None, Some(entry.file_name().to_string_lossy().to_string())));
                    }
                    stack.push(path);
                }
                Ok(t) if t.is_file() => out.push((Some(path), None)),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_are_normalised() {
        assert_eq!(normalize_camera_id("Front Door"), "front_door");
        assert_eq!(normalize_camera_id("  Back-Yard #2 "), "back_yard_2");
        assert_eq!(normalize_camera_id("garage"), "garage");
        assert_eq!(normalize_camera_id("!!!"), "");
    }

    const DEBOUNCE: Duration = Duration::from_millis(500);
    const STABLE: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn debounce_waits_for_quiet_after_the_last_event() {
        let mut p = Pending::new(Instant::now());
        tokio::time::advance(Duration::from_millis(400)).await;
        p.last_event = Instant::now(); // another write event
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(!p.quiet(Instant::now(), DEBOUNCE));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(p.quiet(Instant::now(), DEBOUNCE));
        p.retry_at = Some(Instant::now() + REFUSED_RETRY);
        assert!(
            !p.quiet(Instant::now(), DEBOUNCE),
            "a refused file waits for its retry"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn size_must_stay_stable_unless_close_after_write_was_seen() {
        let mut p = Pending::new(Instant::now());
        assert!(!p.observe(100, Some(Duration::ZERO), Instant::now(), STABLE));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !p.observe(200, Some(Duration::ZERO), Instant::now(), STABLE),
            "still growing"
        );
        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(!p.observe(200, None, Instant::now(), STABLE));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            p.observe(200, None, Instant::now(), STABLE),
            "stable for 2 s"
        );

        let mut closed = Pending::new(Instant::now());
        closed.closed = true;
        assert!(closed.observe(300, Some(Duration::ZERO), Instant::now(), STABLE));

        let mut old = Pending::new(Instant::now());
        assert!(
            old.observe(300, Some(Duration::from_secs(60)), Instant::now(), STABLE),
            "catch-up file"
        );
    }

    #[test]
    fn ledger_survives_reload_and_forgets_deleted_files() {
        let dir = tempfile::tempdir().expect("dir");
        let kept = dir.path().join("kept.png");
        let gone = dir.path().join("gone.png");
        std::fs::write(&kept, b"k").expect("write");
        std::fs::write(&gone, b"g").expect("write");
        let ledger_path = dir.path().join("spool").join("ledger.log");
        let mut ledger = Ledger::load(ledger_path.clone()).expect("load");
        let (k1, k2) = (ledger_key(&kept, 1, None), ledger_key(&gone, 1, None));
        ledger.record(k1.clone()).expect("record");
        ledger.record(k2.clone()).expect("record");
        std::fs::remove_file(&gone).expect("remove");
        let ledger = Ledger::load(ledger_path.clone()).expect("reload");
        assert!(ledger.contains(&k1));
        assert!(!ledger.contains(&k2));
        assert!(
            !ledger.contains(&ledger_key(&kept, 2, None)),
            "a changed size is a new file"
        );
        assert_eq!(
            std::fs::read_to_string(ledger_path)
                .expect("read")
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn only_images_by_extension_case_insensitively() {
        assert!(has_image_extension(Path::new("a/b.JPG")));
        assert!(has_image_extension(Path::new("a/b.jpeg")));
        assert!(has_image_extension(Path::new("a/b.Png")));
        assert!(!has_image_extension(Path::new("a/b.txt")));
        assert!(!has_image_extension(Path::new("a/jpg")));
    }
}
