//! The notify observer: the native (inotify) watcher, or the polling one when the
//! native one cannot start or polling is configured. Neither follows symlinks. Its
//! events are reduced to what the watcher loop needs (`FsEvent`) and sent through a
//! bounded channel; when the channel is full the event is dropped and the overflow
//! flag set, which the loop answers with one rescan (like a lost-events signal).

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
    fn send(&self, ev: FsEvent) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(ev) {
            self.overflow.store(true, Ordering::Relaxed);
        }
    }
}

/// Start the native watcher (or the polling one) on `root`; blocking (a recursive
/// inotify watch walks the tree). `Err` says why no watch could be set up.
pub fn start_observer(
    root: &Path,
    polling: bool,
    polling_interval: Duration,
    sink: EventSink,
) -> Result<(Box<dyn notify::Watcher + Send>, ObserverType), String> {
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
    let no_follow = notify::Config::default().with_follow_symlinks(false);
    let native = if polling {
        None
    } else {
        match notify::RecommendedWatcher::new(handler.clone(), no_follow) {
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
    let cfg = no_follow.with_poll_interval(polling_interval);
    let mut w = notify::PollWatcher::new(handler, cfg)
        .map_err(|e| format!("cannot start the polling watcher: {e}"))?;
    w.watch(root, RecursiveMode::Recursive)
        .map_err(|e| format!("cannot watch {root:?}: {e}"))?;
    Ok((Box::new(w), ObserverType::Polling))
}

crate::names::closed_set! {
    /// How the watcher learns of files: the OS's notifications, or polling.
    pub enum ObserverType {
        Native = "native",
        Polling = "polling",
    }
}
