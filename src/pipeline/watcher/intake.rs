//! Intake: the loop over the camera root's files (the `file_watcher` worker). Observer
//! events come through a bounded channel into a per-path `Pending`; files due are
//! looked at in trips off the async threads and taken as a group (`take.rs`); the
//! root's lifecycle is `root.rs`'s. See the folder's `mod.rs` for the rules it keeps.
use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::dedupe::Dedupe;
use super::ledger::{ledger_key, Ledger, LedgerView};
use super::metrics::WatcherMetrics;
use super::observer::{EventSink, FsEvent, ObserverType, EVENT_CHANNEL_CAPACITY};
use super::pending::{remember, Pending, Ready, RETRY_AFTER};
use super::result::FileResult;
use super::root::{RootCheck, RootWatch, WatcherStatus};
use super::scan::scan;
use crate::cameras::CameraRegistry;
use crate::config::{secs, Config};
use crate::names::Label;
use crate::pipeline::camera_fs::Refusal;
use crate::pipeline::metrics::StageMetrics;
use crate::pipeline::queue::Queue;
use crate::prom::Metrics;
use crate::redis::RedisLink;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// Files waiting for a decision, at most; beyond it new paths wait for a later walk.
const MAX_PENDING: usize = 50_000;
/// The camera root is checked (replaced, removed) at least this often.
const ROOT_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Files looked at (`lstat`, then hashed) in one trip off the async threads.
const STAT_CHUNK: usize = 64;
/// Refused files remembered per run, at most.
const MAX_REFUSED: usize = 50_000;
/// The loop's working state.
struct Lane {
    pending: HashMap<PathBuf, Pending>,
    /// A walk stopped at the pending limit, or events overflowed: walk again.
    rescan: bool,
    /// Files refused in this run (by ledger key: path, size, mtime), so an unchanged
    /// file reported again (a walk and an event racing) is neither judged, counted
    /// nor logged twice. Bounded: cleared when full.
    refused: HashSet<String>,
    root: RootWatch,
}

pub struct FileWatcher {
    pub(super) root: PathBuf,
    pub(super) polling: bool,
    pub(super) polling_interval: Duration,
    pub(super) debounce: Duration,
    pub(super) stable: Duration,
    pub(super) min_bytes: u64,
    pub(super) max_bytes: u64,
    pub(super) ledger_path: PathBuf,
    /// The judged files in memory (shared with the size it reports).
    pub(super) ledger_view: LedgerView,
    pub(super) queue: Arc<Queue>,
    pub(super) cameras: Arc<CameraRegistry>,
    pub(super) dedupe: Dedupe,
    pub(super) metrics: WatcherMetrics,
    pub(super) stages: StageMetrics,
    pub(super) status: Arc<WatcherStatus>,
    /// What was refused in the last hour, for the page.
    pub(super) refusals: super::refusals::RecentRefusals,
}

impl FileWatcher {
    /// The files it has judged (queued, or skipped as duplicates), to read.
    pub fn judged(&self) -> LedgerView {
        self.ledger_view.clone()
    }

    pub fn new(
        config: &Config,
        queue: Arc<Queue>,
        cameras: Arc<CameraRegistry>,
        redis: Arc<RedisLink>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let fw = &config.file_watcher;
        let ledger_view = LedgerView::default();
        let dedupe = Dedupe::new(redis, secs(fw.dedupe_ttl_seconds));
        metrics.entries("watcher_ledger", {
            let v = ledger_view.clone();
            move || v.entries()
        });
        metrics.entries("watcher_dedupe_memory", dedupe.memory_entries());
        Self {
            root: absolute(Path::new(&fw.camera_root)),
            polling: fw.polling,
            polling_interval: secs(fw.polling_interval_seconds),
            debounce: Duration::from_millis(fw.debounce_ms),
            stable: secs(fw.stable_seconds),
            min_bytes: fw.min_file_bytes,
            max_bytes: fw.max_file_bytes,
            ledger_path: Path::new(&config.queue.spool_dir).join("watcher-ledger.log"),
            ledger_view,
            queue,
            cameras,
            dedupe,
            status: Arc::new(WatcherStatus::new(if fw.polling {
                ObserverType::Polling
            } else {
                ObserverType::Native
            })),
            metrics: WatcherMetrics::new(&metrics),
            stages: StageMetrics::new(&metrics),
            refusals: super::refusals::RecentRefusals::default(),
        }
    }

    /// watchpost's own file at the top of the root (the root's marker, or its draft):
    /// never judged, never counted.
    fn is_own(&self, path: &Path) -> bool {
        path.parent() == Some(self.root.as_path())
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(super::identity::MARKER))
    }

    /// Count what was decided about a file (and keep a refusal for the page).
    fn decided(&self, result: FileResult) {
        self.metrics.file(result);
        self.refusals.note(result);
    }

    /// How many files were refused in the last hour, by reason.
    pub fn refused_last_hour(&self) -> std::collections::BTreeMap<String, u64> {
        self.refusals.last_hour()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn status(&self) -> &Arc<WatcherStatus> {
        &self.status
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            crate::names::workers::FILE_WATCHER,
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                let result = me.run(&ctx).await;
                me.status.stopped();
                result
            },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let (ledger_path, view) = (self.ledger_path.clone(), self.ledger_view.clone());
        let mut ledger = tokio::task::spawn_blocking(move || Ledger::load_into(ledger_path, view))
            .await
            .map_err(|e| WorkerError::new(e.to_string()))?
            .map_err(|e| WorkerError::new(format!("cannot load the watcher ledger: {e}")))?;
        let (tx, mut rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let sink = EventSink {
            tx,
            overflow: Arc::new(AtomicBool::new(false)),
        };
        let tick = (self.debounce / 4).clamp(Duration::from_millis(20), Duration::from_millis(250));
        let mut lane = Lane {
            pending: HashMap::new(),
            rescan: false,
            refused: HashSet::new(),
            // The native observer reads at most once a tick while events keep coming:
            // a file's quiet time starts at most a tick late.
            root: RootWatch::new(&self.root, self.polling, self.polling_interval, tick),
        };
        loop {
            ctx.beat();
            self.check_root(&mut lane, &sink, &ledger).await;
            // A root that cannot be watched is the supervisor's business too: it shows
            // in its status and as `impaired` in `watchpost_worker_state`.
            ctx.report_problem(self.status.problem());
            let observer = self.status.observer_type();
            self.status.set_pending(lane.pending.len());
            self.metrics.pending(observer, lane.pending.len());
            tokio::select! {
                _ = ctx.cancelled() => return Ok(()),
                ev = rx.recv() => {
                    // The loop holds a sender (in `sink`), so the channel never closes.
                    if let Some(ev) = ev {
                        self.on_event(ev, &mut lane);
                    }
                    while let Ok(ev) = rx.try_recv() {
                        self.on_event(ev, &mut lane);
                    }
                }
                _ = tokio::time::sleep_until(self.next_look(&lane, tick)) => {}
            }
            if sink.overflow.swap(false, Ordering::Relaxed) {
                tracing::warn!("file events arrived faster than they could be handled; rescanning the camera root");
                self.on_event(FsEvent::Rescan, &mut lane);
            }
            if !lane.root.is_watching() {
                continue;
            }
            if lane.rescan && lane.pending.len() < MAX_PENDING / 2 {
                lane.rescan = false;
                self.walk(&self.root.clone(), &mut lane, &ledger).await;
            }
            self.evaluate(ctx, &mut lane, &mut ledger).await;
        }
    }

    /// When the loop next has something to do without an event: the first pending
    /// file due, but not sooner than a `tick` from now, and at least every
    /// [`ROOT_CHECK_EVERY`] (the root's check).
    fn next_look(&self, lane: &Lane, tick: Duration) -> Instant {
        let now = Instant::now();
        let due = lane
            .pending
            .values()
            .map(|p| p.due(self.debounce))
            .min()
            .unwrap_or(now + ROOT_CHECK_EVERY);
        due.clamp(now + tick, now + ROOT_CHECK_EVERY)
    }

    /// Make sure the root is the directory being watched; a new watch starts afresh
    /// with a walk of the root.
    async fn check_root(&self, lane: &mut Lane, sink: &EventSink, ledger: &Ledger) {
        match lane.root.check(sink, &self.status).await {
            RootCheck::Watching => {}
            RootCheck::Started => {
                lane.pending.clear();
                self.walk(&self.root.clone(), lane, ledger).await;
            }
            RootCheck::NotWatching => lane.pending.clear(),
        }
    }

    /// Walk `dir` for files not judged yet, up to the room left in `pending`.
    async fn walk(&self, dir: &Path, lane: &mut Lane, ledger: &Ledger) {
        let room = MAX_PENDING.saturating_sub(lane.pending.len());
        let (dir2, view) = (dir.to_path_buf(), ledger.view());
        let found = tokio::task::spawn_blocking(move || scan(&dir2, &view, room))
            .await
            .unwrap_or_default();
        let now = Instant::now();
        for file in found.files.into_iter().filter(|f| !self.is_own(f)) {
            lane.pending
                .entry(file)
                .or_insert_with(|| Pending::found(now, self.debounce));
        }
        lane.rescan |= found.truncated;
    }

    fn on_event(&self, ev: FsEvent, lane: &mut Lane) {
        let now = Instant::now();
        let (path, closed) = match ev {
            FsEvent::DirCreated(dir) => {
                // Files written into a new folder before its watch was added raise no
                // event of their own; `evaluate` walks the folder once it is quiet.
                (dir, false)
            }
            FsEvent::Rescan => {
                tracing::warn!("file events were lost; rescanning the camera root");
                self.decided(FileResult::Rescan);
                lane.rescan = true;
                return;
            }
            FsEvent::Gone(p) => {
                lane.pending.remove(&p);
                return;
            }
            FsEvent::Touched(p) => (p, false),
            FsEvent::Closed(p) => (p, true),
        };
        if path == self.root || !path.starts_with(&self.root) || self.is_own(&path) {
            return;
        }
        if !lane.pending.contains_key(&path) && lane.pending.len() >= MAX_PENDING {
            lane.rescan = true; // picked up by a later walk
            return;
        }
        lane.pending
            .entry(path)
            .or_insert_with(|| Pending::new(now))
            .touched(now, closed);
    }

    /// Take every pending file that is quiet and stable. Files due together are looked
    /// at together: one `lstat` trip, one hashing trip, one de-duplication round trip
    /// and one queue round trip per group of up to [`STAT_CHUNK`].
    async fn evaluate(&self, ctx: &WorkerContext, lane: &mut Lane, ledger: &mut Ledger) {
        let now = Instant::now();
        let candidates: Vec<PathBuf> = lane
            .pending
            .iter()
            .filter(|(_, p)| p.quiet(now, self.debounce))
            .map(|(k, _)| k.clone())
            .collect();
        for chunk in candidates.chunks(STAT_CHUNK) {
            ctx.beat();
            // A trip that did not come back says nothing of the files: they stay
            // pending for the next look (never taken for gone).
            let Some(metas) = lstat_all(chunk.to_vec()).await else {
                continue;
            };
            let mut ready = Vec::new();
            for (path, meta) in chunk.iter().zip(metas) {
                if let Some(r) = self.judge(lane, ledger, path, meta, now).await {
                    ready.push(r);
                }
            }
            if ready.is_empty() {
                continue;
            }
            for (r, result) in self.take_all(ctx, ready, ledger).await {
                self.decided(result.unwrap_or_else(|e| e));
                match result {
                    Ok(result) => {
                        lane.pending.remove(&r.path);
                        if result.is_refusal() {
                            remember(&mut lane.refused, r.key, MAX_REFUSED);
                        }
                    }
                    Err(_) => {
                        if let Some(p) = lane.pending.get_mut(&r.path) {
                            p.retry_at = Some(Instant::now() + RETRY_AFTER);
                        }
                    }
                }
            }
        }
    }

    /// Decide on one quiet file from what `lstat` said of it: gone, a folder to walk,
    /// refused, still settling, or ready to be taken (`Some`).
    async fn judge(
        &self,
        lane: &mut Lane,
        ledger: &mut Ledger,
        path: &Path,
        meta: Option<std::fs::Metadata>,
        now: Instant,
    ) -> Option<Ready> {
        let Some(meta) = meta else {
            lane.pending.remove(path); // vanished before it was taken
            return None;
        };
        if meta.is_dir() {
            lane.pending.remove(path);
            self.walk(path, lane, ledger).await;
            return None;
        }
        let key = ledger_key(path, meta.len(), meta.modified().ok());
        if lane.refused.contains(&key) {
            lane.pending.remove(path); // refused before, unchanged since
            return None;
        }
        if !meta.is_file() {
            lane.pending.remove(path);
            remember(&mut lane.refused, key, MAX_REFUSED);
            let (refusal, why) = if meta.file_type().is_symlink() {
                (
                    Refusal::Symlink,
                    "a symbolic link (never followed below the root)",
                )
            } else {
                (Refusal::NotRegular, "not a regular file")
            };
            let result = self.refused(path, refusal, why);
            self.decided(result);
            return None;
        }
        let p = lane.pending.get_mut(path)?;
        let size = meta.len();
        let age = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        p.observe(size, age, now, self.stable).then(|| Ready {
            path: path.to_path_buf(),
            size,
            key,
        })
    }

    /// Log a refused file once (it leaves `pending`, so it is not looked at again
    /// until it changes); the caller counts it.
    pub(super) fn refused(&self, path: &Path, refusal: Refusal, why: &str) -> FileResult {
        let result = FileResult::from(refusal);
        tracing::warn!(path = ?path, reason = result.label(), detail = %why, "refusing a file in the camera folder");
        result
    }
}

/// `lstat` of each path (the entry itself, never what a symlink points at), in one
/// trip off the async threads; `None` for an entry that is gone (or cannot be read),
/// and `None` as a whole when the trip itself failed.
async fn lstat_all(paths: Vec<PathBuf>) -> Option<Vec<Option<std::fs::Metadata>>> {
    tokio::task::spawn_blocking(move || {
        paths
            .iter()
            .map(|p| std::fs::symlink_metadata(p).ok())
            .collect()
    })
    .await
    .ok()
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
