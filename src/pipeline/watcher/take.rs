//! Taking the files that are ready: the checks that need no reading, then, for a
//! group of files due together, one hashing trip off the async threads, one
//! de-duplication round trip and one queue round trip.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::intake::FileWatcher;
use super::item::{has_image_extension, normalize_camera_id, DetectionItem};
use super::ledger::Ledger;
use super::pending::Ready;
use super::result::FileResult;
use crate::cameras::Admission;
use crate::pipeline::camera_fs::is_clean_name;
use crate::pipeline::camera_fs::{self, IntakeError, Refusal, READ_TIMEOUT};
use crate::pipeline::metrics::Step;
use crate::pipeline::queue::QueueError;
use crate::supervisor::WorkerContext;

/// A hashing trip starts no new file after this long (the rest wait for the next).
const HASH_TRIP: Duration = Duration::from_secs(1);

impl FileWatcher {
    /// The checks on a ready file that need no reading: its camera folder and id, or
    /// the final result when it is not taken.
    fn check(&self, r: &Ready, ledger: &Ledger) -> Result<(String, String), FileResult> {
        let path = r.path.as_path();
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Err(FileResult::IgnoredRoot);
        };
        if !rel.components().all(|c| match c {
            Component::Normal(n) => is_clean_name(n),
            _ => false,
        }) {
            tracing::warn!(path = ?path, reason = "rejected_name", "refusing a file whose name is not valid UTF-8 or holds control characters");
            return Err(FileResult::RejectedName);
        }
        let mut parts = rel.components();
        let folder = match (parts.next(), parts.next()) {
            (Some(Component::Normal(first)), Some(_)) => first.to_string_lossy().to_string(),
            _ => return Err(FileResult::IgnoredRoot),
        };
        if !has_image_extension(path) {
            tracing::debug!(path = ?path, "ignoring a file without an image extension");
            return Err(FileResult::RejectedExtension);
        }
        if r.size < self.min_bytes {
            tracing::info!(path = ?path, size = r.size, min = self.min_bytes, "rejecting a file below the minimum size");
            return Err(FileResult::RejectedSize);
        }
        if r.size > self.max_bytes {
            self.refused(
                path,
                Refusal::TooLarge,
                &format!("{} bytes, above the limit of {}", r.size, self.max_bytes),
            );
            return Err(FileResult::RejectedTooLarge);
        }
        let camera_id = normalize_camera_id(&folder);
        if camera_id.is_empty() {
            return Err(FileResult::IgnoredRoot);
        }
        if ledger.contains(&r.key) {
            return Err(FileResult::AlreadyProcessed);
        }
        Ok((folder, camera_id))
    }

    /// Filter, hash, de-duplicate and queue ready files, in order. Per file, `Ok` is
    /// final and `Err` means try again later.
    pub(super) async fn take_all(
        &self,
        ctx: &WorkerContext,
        ready: Vec<Ready>,
        ledger: &mut Ledger,
    ) -> Vec<(Ready, Result<FileResult, FileResult>)> {
        let mut done = Vec::with_capacity(ready.len());
        let mut checked = Vec::new();
        for r in ready {
            match self.check(&r, ledger) {
                Ok(names) => checked.push((r, names)),
                Err(result) => done.push((r, Ok(result))),
            }
        }
        // Hash them in one trip off the async threads.
        let started = std::time::Instant::now();
        let (root, max) = (self.root.clone(), self.max_bytes);
        let paths: Vec<PathBuf> = checked.iter().map(|(r, _)| r.path.clone()).collect();
        let hashing = tokio::task::spawn_blocking(move || hash_all(&root, &paths, max));
        let budget = READ_TIMEOUT + HASH_TRIP;
        let hashes = match ctx
            .beat_while(budget, tokio::time::timeout(budget, hashing))
            .await
        {
            Ok(Ok(h)) => Some(h),
            Ok(Err(_)) | Err(_) => None,
        };
        let Some(hashes) = hashes else {
            tracing::warn!(
                files = checked.len(),
                "reading the files did not finish in time; will retry"
            );
            done.extend(
                checked
                    .into_iter()
                    .map(|(r, _)| (r, Err(FileResult::Error))),
            );
            return done;
        };
        let hashed = hashes.len().max(1);
        self.stages
            .timed(Step::Hash, started.elapsed().as_secs_f64() / hashed as f64);
        // Files past the trip's budget were not read: they stay pending, due at once.
        checked.truncate(hashes.len());
        let mut admitted = Vec::new();
        for ((r, (folder, camera_id)), hash) in checked.into_iter().zip(hashes) {
            let hash = match hash {
                Ok(h) => h,
                Err(IntakeError::Missing) => {
                    done.push((r, Ok(FileResult::IgnoredRoot)));
                    continue;
                }
                Err(e) => {
                    let result = match e.refusal() {
                        Some(refusal) => Ok(self.refused(&r.path, refusal, &e.to_string())),
                        None => {
                            tracing::warn!(path = ?r.path, error = %e, "cannot read file; will retry");
                            Err(FileResult::Error)
                        }
                    };
                    done.push((r, result));
                    continue;
                }
            };
            // The camera registry counts the image (a sign of life, whatever happens
            // to it), and may skip it: a new folder beyond the limit, a flood, a
            // disabled camera. Skipped images are judged (in the ledger); refused
            // folders are not.
            match self.cameras.admit(&camera_id, &folder) {
                Admission::Take => {
                    self.cameras
                        .picture(&camera_id, &hash, &r.path.to_string_lossy());
                    admitted.push((r, camera_id, hash));
                }
                Admission::Skip(skip) => {
                    let result = FileResult::from(skip);
                    if !result.is_refusal() {
                        record(ledger, r.key.clone());
                    }
                    done.push((r, Ok(result)));
                }
            }
        }
        if admitted.is_empty() {
            return done;
        }
        let hashes: Vec<String> = admitted.iter().map(|(_, _, h)| h.clone()).collect();
        let first = self.dedupe.first_seen_all(&hashes).await;
        let (mut queued, mut payloads) = (Vec::new(), Vec::new());
        for ((r, camera_id, hash), first) in admitted.into_iter().zip(first) {
            if !first {
                tracing::info!(path = ?r.path, "skipping duplicate image content");
                // Judged: a restart (even during a Redis outage, or after the TTL)
                // must not queue it again.
                record(ledger, r.key.clone());
                done.push((r, Ok(FileResult::Duplicate)));
                continue;
            }
            let item = DetectionItem {
                // Valid UTF-8: checked above, so this is the exact path, not a lossy one.
                file_path: r.path.to_string_lossy().into_owned(),
                camera_id,
                file_hash: hash,
                file_size: r.size,
                seen_at: crate::time::now(),
            };
            match serde_json::to_string(&item) {
                Ok(payload) => {
                    queued.push((r, item.file_hash));
                    payloads.push(payload);
                }
                Err(_) => done.push((r, Err(FileResult::Error))),
            }
        }
        let pushed = self.queue.push_all(&payloads).await;
        for ((r, hash), pushed) in queued.into_iter().zip(pushed) {
            let result = match pushed {
                Ok(_) => {
                    record(ledger, r.key.clone());
                    Ok(FileResult::Queued)
                }
                Err(e) => {
                    self.dedupe.forget(&hash).await;
                    match e {
                        QueueError::SpoolFull { .. } => Err(FileResult::Refused),
                        _ => {
                            tracing::error!(error = %e, path = ?r.path, "cannot queue file; will retry");
                            Err(FileResult::Error)
                        }
                    }
                }
            };
            done.push((r, result));
        }
        done
    }
}

/// Append to the ledger; a failure is logged (the file may then be judged again
/// after a restart, which the queue's idempotence absorbs).
fn record(ledger: &mut Ledger, key: String) {
    if let Err(e) = ledger.record(key) {
        tracing::warn!(error = %e, "cannot append to the watcher ledger");
    }
}

/// SHA-256 of each file, in order, each read from one descriptor opened without
/// following symlinks, within one [`HASH_TRIP`] (the result may be shorter than
/// `paths`). Blocking.
fn hash_all(root: &Path, paths: &[PathBuf], max: u64) -> Vec<Result<String, IntakeError>> {
    camera_fs::within_trip(paths, HASH_TRIP, |p| {
        camera_fs::open_image(root, p, max).and_then(|f| f.sha256())
    })
}
