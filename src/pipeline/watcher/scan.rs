//! Directory walks of the camera root (blocking; run on the blocking pool). A walk
//! never follows a symlink (entry types come from `readdir`, not `stat`), skips files
//! the ledger has already judged, and stops after `limit` new files (the caller asks
//! again once it has room).

use std::path::{Path, PathBuf};

use super::ledger::{ledger_key, LedgerView};

/// What a walk found.
#[derive(Debug, Default)]
pub struct Found {
    /// Files not judged before, up to the limit.
    pub files: Vec<PathBuf>,
    /// The limit was reached; more files may be waiting.
    pub truncated: bool,
}

/// Walk `dir` (the root or a folder below it).
pub fn scan(dir: &Path, judged: &LedgerView, limit: usize) -> Found {
    let mut found = Found::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_) => {
                    // Symlinks and special files are listed too: the watcher refuses
                    // them with a counted reason instead of ignoring them silently.
                    // `DirEntry::metadata` does not follow symlinks.
                    if let Ok(meta) = entry.metadata() {
                        if judged.contains(&ledger_key(&path, meta.len(), meta.modified().ok())) {
                            continue;
                        }
                    }
                    if found.files.len() >= limit {
                        found.truncated = true;
                        return found;
                    }
                    found.files.push(path);
                }
                Err(_) => {}
            }
        }
    }
    found
}
