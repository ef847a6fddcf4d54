//! What the observers report, and the `notify` crate's polling observer (used when
//! the native one, `native.rs`, cannot start or polling is configured). Neither
//! follows symlinks. Their events are reduced to what the watcher loop needs
//! (`FsEvent`) and sent through a bounded channel; when the channel is full the event
//! is dropped and the overflow flag set, which the loop answers with one rescan (like
//! a lost-events signal).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events buffered between the observer thread and the watcher loop.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;

pub enum FsEvent {
    Touched(PathBuf),
    Closed(PathBuf),
    /// Moved away from this name: nothing to look at there any more.
    Gone(PathBuf),
    DirCreated(PathBuf),
    /// The OS dropped events (inotify queue overflow) or the watcher failed: rescan.
    Rescan,
}

/// Where the observer's events go.
#[derive(Clone)]
pub struct EventSink {
    pub tx: mpsc::Sender<FsEvent>,
    /// Set when an event could not be buffered.
    pub overflow: Arc<AtomicBool>,
}

impl EventSink {
    pub(super) fn send(&self, ev: FsEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(ev) {
            self.overflow.store(true, Ordering::Relaxed);
        }
    }
}

/// Set up the `notify` crate's polling watcher on `root`; blocking (it walks the
/// tree). `Err` says why it could not be set up.
pub fn start_polling(
    root: &Path,
    polling_interval: Duration,
    sink: EventSink,
) -> Result<notify::PollWatcher, String> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        let event = match res {
            Ok(e) if !e.need_rescan() => e,
            _ => {
                sink.send(FsEvent::Rescan);
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
            sink.send(msg);
        }
    };
    let cfg = notify::Config::default()
        .with_follow_symlinks(false)
        .with_poll_interval(polling_interval);
    let mut w = notify::PollWatcher::new(handler, cfg)
        .map_err(|e| format!("cannot start the polling watcher: {e}"))?;
    w.watch(root, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {root:?}: {e}"))?;
    Ok(w)
}

crate::names::closed_set! {
    /// How the watcher learns of files: the OS's notifications, or polling.
    pub enum ObserverType {
        Native = "native",
        Polling = "polling",
    }
}
