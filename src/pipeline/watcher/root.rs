//! The camera root's lifecycle, apart from what is done with its files: the watch is
//! set up at start, set up again when the root was replaced (or removed and
//! recreated), the root is recreated when it stays missing, and when it cannot be
//! watched the watcher says why (in its status, and to the supervisor as `impaired`)
//! and tries again, never crash-looping on it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

use super::native::{Reader, Tree};
use super::observer::{start_polling, EventSink, ObserverType};
use crate::names::Label;
use crate::pipeline::camera_fs::dir_identity;

/// Wait before trying again to set up a watch that could not be set up.
const WATCH_RETRY: Duration = Duration::from_secs(5);
/// How long a root that disappeared stays missing before the watcher recreates it.
const RECREATE_AFTER: Duration = Duration::from_secs(2);

/// What `/api/system/pipeline` reports about the watcher.
pub struct WatcherStatus {
    active: AtomicBool,
    /// Why no watch is established (while `active` is false), for the API.
    problem: Mutex<Option<String>>,
    /// The observer in use, or the last one used (the configured kind before the first
    /// start), so it is never unknown.
    observer: Mutex<ObserverType>,
    pending: AtomicUsize,
}

impl WatcherStatus {
    pub fn new(configured: ObserverType) -> Self {
        Self {
            active: AtomicBool::new(false),
            problem: Mutex::new(None),
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

    /// Why the watcher is not watching, if it says.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_pending(&self, n: usize) {
        self.pending.store(n, Ordering::Relaxed);
    }

    /// The run ended: nothing is watched or pending.
    pub fn stopped(&self) {
        self.active.store(false, Ordering::Relaxed);
        self.pending.store(0, Ordering::Relaxed);
    }

    fn set_problem(&self, problem: Option<String>) {
        self.active.store(problem.is_none(), Ordering::Relaxed);
        *self.problem.lock().unwrap_or_else(|p| p.into_inner()) = problem;
    }

    fn set_observer(&self, kind: ObserverType) {
        *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = kind;
    }
}

/// The watch on the root, with the identity of the directory it watches.
struct Watch {
    /// The running observer ([`Reader`] or `notify`'s polling watcher), kept only to
    /// be dropped: dropping it stops it.
    _observer: Box<dyn Send>,
    identity: (u64, u64),
}

/// A watch set up, not yet reading: the native one is read on the runtime
/// ([`Reader`]), the polling one reads on its own thread.
enum Started {
    Native(Tree),
    Polling(notify::PollWatcher),
}

/// Set up the native watch, or the polling one when polling is configured or the
/// native one cannot be set up; blocking (it walks the tree).
fn start_observer(
    root: &Path,
    polling: bool,
    polling_interval: Duration,
    sink: EventSink,
) -> Result<Started, String> {
    if !polling {
        match Tree::watch(root) {
            Ok(tree) => return Ok(Started::Native(tree)),
            Err(e) => {
                tracing::warn!(error = %e, "native file watcher failed; falling back to polling")
            }
        }
    }
    start_polling(root, polling_interval, sink).map(Started::Polling)
}

/// What a check of the root found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootCheck {
    /// The watched directory is still the root.
    Watching,
    /// A new watch was set up (at start, or on a replaced root): what was pending
    /// belongs to the old one, and the root must be walked (files that landed before
    /// the watch raise no event).
    Started,
    /// Nothing is watched (the reason is in the status).
    NotWatching,
}

/// The root and its watch.
pub struct RootWatch {
    root: PathBuf,
    polling: bool,
    polling_interval: Duration,
    /// How long the native observer gathers events between reads.
    gather: Duration,
    watch: Option<Watch>,
    retry_at: Option<Instant>,
    /// Since when the root has been missing: it is recreated after a grace period, so
    /// an operator's `mv cams cams.old; mkdir cams` is not raced.
    missing_since: Option<Instant>,
}

impl RootWatch {
    pub fn new(root: &Path, polling: bool, polling_interval: Duration, gather: Duration) -> Self {
        Self {
            root: root.to_path_buf(),
            polling,
            polling_interval,
            gather,
            watch: None,
            retry_at: None,
            missing_since: None,
        }
    }

    pub fn is_watching(&self) -> bool {
        self.watch.is_some()
    }

    /// Make sure the root is the directory being watched (see the module's doc).
    pub async fn check(&mut self, sink: &EventSink, status: &WatcherStatus) -> RootCheck {
        let identity = match dir_identity(&self.root) {
            Some(id) => Some(id),
            None if std::fs::symlink_metadata(&self.root).is_err() => {
                // Never there: create it at once. Removed while watched: give the
                // operator a moment to put a new one in place, then recreate it.
                if self.watch.is_some() {
                    self.missing_since = Some(Instant::now());
                }
                if self
                    .missing_since
                    .is_some_and(|t| t.elapsed() < RECREATE_AFTER)
                {
                    let why = format!(
                        "camera root {:?} is missing; it is recreated if it stays missing",
                        self.root
                    );
                    return self.lost(status, why);
                }
                match std::fs::create_dir_all(&self.root) {
                    Ok(()) => dir_identity(&self.root),
                    Err(e) => {
                        let why = format!("cannot create camera root {:?}: {e}", self.root);
                        return self.lost(status, why);
                    }
                }
            }
            None => None,
        };
        self.missing_since = None;
        let Some(identity) = identity else {
            let why = format!(
                "camera root {:?} is not a directory; move it away or fix file_watcher.camera_root",
                self.root
            );
            return self.lost(status, why);
        };
        if let Some(w) = &self.watch {
            if w.identity == identity {
                return RootCheck::Watching;
            }
            tracing::warn!(root = ?self.root, "camera root was replaced; watching the new directory");
            self.watch = None;
        }
        if self.retry_at.is_some_and(|t| Instant::now() < t) {
            return RootCheck::NotWatching;
        }
        let (root, polling, interval, s) = (
            self.root.clone(),
            self.polling,
            self.polling_interval,
            sink.clone(),
        );
        // Watch first, then walk: a file that lands in between is seen twice (and
        // taken once), never missed.
        let started =
            tokio::task::spawn_blocking(move || start_observer(&root, polling, interval, s))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r)
                .and_then(|started| match started {
                    Started::Native(tree) => Reader::start(tree, sink.clone(), self.gather)
                        .map(|r| (Box::new(r) as Box<dyn Send>, ObserverType::Native))
                        .map_err(|e| format!("cannot read file events: {e}")),
                    Started::Polling(w) => {
                        Ok((Box::new(w) as Box<dyn Send>, ObserverType::Polling))
                    }
                });
        match started {
            Ok((observer, kind)) => {
                status.set_observer(kind);
                self.watch = Some(Watch {
                    _observer: observer,
                    identity,
                });
                self.retry_at = None;
                status.set_problem(None);
                tracing::info!(root = ?self.root, observer = kind.label(), "file watcher started");
                RootCheck::Started
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + WATCH_RETRY);
                let why = format!("cannot watch camera root {:?}: {e}", self.root);
                self.lost(status, why)
            }
        }
    }

    /// Not watching, for `why` (logged once per distinct reason).
    fn lost(&mut self, status: &WatcherStatus, why: String) -> RootCheck {
        self.watch = None;
        if status.problem().as_deref() != Some(why.as_str()) {
            tracing::error!(problem = %why, "file watcher is not watching");
            status.set_problem(Some(why));
        }
        RootCheck::NotWatching
    }
}
