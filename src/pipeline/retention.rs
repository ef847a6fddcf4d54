//! Retention by size: with `cleanup.max_media_bytes` set, every
//! `cleanup.size_check_seconds` the files below the camera root are added up, and
//! past the cap the oldest processed images are deleted (oldest modification first)
//! until it is under again. Processed: its detections are stored and analysis made
//! the event of their batch, or the watcher judged it (a picture it refused) and
//! nothing waits for detection; an image whose detection waits in a batch is kept. Never deleted: an image of an event
//! younger than `cleanup.keep_evidence_days`, or of the newest event. Deletion goes
//! through `camera_fs::remove_file` (below the root, no symlink followed); each is
//! counted (`watchpost_cleanup_deleted_total{kind="media",reason="size"}`), and the
//! last run is kept for the API and the page.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use prometheus::IntCounterVec;

use super::camera_fs;
use super::queue::Queue;
use super::watcher::{ledger_key, LedgerView};
use crate::store::Store;

/// The most files looked at in one walk (a camera root holds far fewer; past it the
/// oldest of those seen are the candidates).
const MAX_FILES: usize = 1_000_000;
/// Paths asked about in one query.
const CHUNK: usize = 1000;

/// What the last run by size did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SizeRun {
    pub at: Option<DateTime<Utc>>,
    /// Bytes below the camera root before and after, and the cap.
    pub media_bytes_before: u64,
    pub media_bytes_after: u64,
    pub max_media_bytes: u64,
    pub files_deleted: u64,
    pub bytes_deleted: u64,
    /// Over the cap but kept: images of recent events, images not processed yet.
    pub kept_as_evidence: u64,
    pub kept_unprocessed: u64,
    /// Why it deleted what it did, or why it could not get under the cap.
    pub reason: String,
}

/// One file below the root.
struct File {
    path: PathBuf,
    size: u64,
    mtime: SystemTime,
    judged: bool,
}

/// Every regular file below `root` (symlinks and special files are not followed or
/// counted), oldest first.
fn walk(root: &Path, judged: &LedgerView) -> Vec<File> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            // `DirEntry::file_type` and `metadata` do not follow symlinks.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() && files.len() < MAX_FILES {
                let Ok(meta) = entry.metadata() else {
                    continue;
                };
                let path = entry.path();
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push(File {
                    judged: judged.contains(&ledger_key(&path, meta.len(), Some(mtime))),
                    path,
                    size: meta.len(),
                    mtime,
                });
            }
        }
    }
    files.sort_by_key(|f| f.mtime);
    files
}

pub struct MediaBySize {
    pub root: PathBuf,
    pub cap: u64,
    pub keep_evidence: chrono::Duration,
    pub store: Arc<Store>,
    pub judged: LedgerView,
    pub detection: Arc<Queue>,
    pub deleted: IntCounterVec,
    pub last: Mutex<Option<SizeRun>>,
}

impl MediaBySize {
    pub fn last(&self) -> Option<SizeRun> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether nothing waits for detection (then every judged file was processed).
    async fn nothing_waits(&self) -> bool {
        self.detection.refresh_depth(false).await == Some(0)
            && self.detection.fallback_len().await == 0
    }

    /// One check, and the deletions it takes.
    pub async fn run_once(&self) -> SizeRun {
        let now = crate::time::now();
        let (root, judged) = (self.root.clone(), self.judged.clone());
        let files = tokio::task::spawn_blocking(move || walk(&root, &judged))
            .await
            .unwrap_or_default();
        let before: u64 = files.iter().map(|f| f.size).sum();
        let mut run = SizeRun {
            at: Some(now),
            media_bytes_before: before,
            media_bytes_after: before,
            max_media_bytes: self.cap,
            ..SizeRun::default()
        };
        if before <= self.cap {
            run.reason = "under the cap".into();
            return self.keep(run);
        }
        let evidence = match self.store.evidence_paths(now - self.keep_evidence).await {
            Ok(e) => e,
            Err(e) => {
                run.reason = format!("not checked: the events cannot be read ({e})");
                return self.keep(run);
            }
        };
        let idle = self.nothing_waits().await;
        let mut total = before;
        for chunk in files.chunks(CHUNK) {
            if total <= self.cap {
                break;
            }
            let paths: Vec<String> = chunk.iter().map(|f| f.path.display().to_string()).collect();
            let detected = match self.store.detected_among(&paths).await {
                Ok(d) => d,
                Err(e) => {
                    run.reason = format!("stopped: the detections cannot be read ({e})");
                    break;
                }
            };
            for (f, p) in chunk.iter().zip(&paths) {
                if total <= self.cap {
                    break;
                }
                if evidence.contains(p) {
                    run.kept_as_evidence += 1;
                    continue;
                }
                let processed = match detected.get(p) {
                    Some(analysed) => *analysed,
                    None => f.judged && idle,
                };
                if !processed {
                    run.kept_unprocessed += 1;
                    continue;
                }
                let (root, path) = (self.root.clone(), f.path.clone());
                let removed =
                    tokio::task::spawn_blocking(move || camera_fs::remove_file(&root, &path)).await;
                if let Ok(Ok(true)) = removed {
                    total = total.saturating_sub(f.size);
                    run.files_deleted += 1;
                    run.bytes_deleted += f.size;
                    self.deleted.with_label_values(&["media", "size"]).inc();
                }
            }
        }
        run.media_bytes_after = total;
        run.reason = if !run.reason.is_empty() {
            run.reason
        } else if total <= self.cap {
            format!(
                "over the cap of {} bytes: the {} oldest processed images deleted",
                self.cap, run.files_deleted
            )
        } else {
            format!(
                "still over the cap of {} bytes: what is left is evidence of recent events or not processed yet",
                self.cap
            )
        };
        if run.files_deleted > 0 {
            tracing::info!(
                files = run.files_deleted,
                bytes = run.bytes_deleted,
                cap = self.cap,
                "retention by size deleted the oldest processed images"
            );
        }
        self.keep(run)
    }

    fn keep(&self, run: SizeRun) -> SizeRun {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.clone());
        run
    }
}
