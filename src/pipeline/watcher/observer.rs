//! The notify observer: the native (inotify) watcher, or the polling one when the
//! native one cannot start or polling is configured. Its events are reduced to what
//! the watcher loop needs (`FsEvent`).

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

use super::ObserverType;
use crate::supervisor::WorkerError;

pub enum FsEvent {
    Touched(PathBuf),
    Closed(PathBuf),
    DirCreated(PathBuf),
    /// The OS dropped events (inotify queue overflow) or the watcher failed: rescan.
    Rescan,
}

/// Start the native watcher (or the polling one) on `root`; blocking (a recursive
/// inotify watch walks the tree).
pub fn start_observer(
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
