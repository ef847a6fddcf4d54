//! The watcher's ledger: every file it has judged (queued, or skipped as a duplicate),
//! identified by path, size and modification time, kept under the spool directory. A
//! restart (during a Redis outage, or after the de-duplication TTL) therefore never
//! queues a file that was already decided. Files that failed a deterministic filter
//! (type, size) are not recorded; checking them again is cheap and harmless.
//!
//! One line per file: `<mtime ns>\t<size>\t<path as hex bytes>`. Paths are stored as
//! bytes (hex), so names that are not UTF-8 or hold a newline cannot break a line or
//! collide. The file keeps the full lines (for compaction at load); memory keeps a
//! 128-bit digest of each, so hundreds of thousands of images cost a few MiB.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

pub struct Ledger {
    path: PathBuf,
    seen: LedgerView,
    /// The ledger opened for appending, kept between records (dropped on an error,
    /// so the next record opens it again).
    file: Option<std::fs::File>,
}

/// A read-only handle on the judged files, for walks on the blocking pool.
#[derive(Clone, Default)]
pub struct LedgerView(Arc<Mutex<HashSet<u128>>>);

impl LedgerView {
    fn lock(&self) -> MutexGuard<'_, HashSet<u128>> {
        // Inserts and lookups leave the set whole; survive a poisoned lock.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn contains(&self, key: &str) -> bool {
        self.lock().contains(&digest(key))
    }

    /// Files judged and kept.
    pub fn entries(&self) -> usize {
        self.lock().len()
    }
}

/// The ledger line of a file.
pub fn ledger_key(path: &Path, size: u64, mtime: Option<SystemTime>) -> String {
    let nanos = mtime
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{nanos}\t{size}\t{}", hex(path.as_os_str().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn digest(key: &str) -> u128 {
    let d = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&d[..16]);
    u128::from_le_bytes(first)
}

impl Ledger {
    /// Load, dropping entries whose files no longer exist (compaction). Blocking.
    #[cfg(test)]
    pub fn load(path: PathBuf) -> std::io::Result<Self> {
        Self::load_into(path, LedgerView::default())
    }

    /// Load into `view` (shared with whoever reports its size), dropping entries
    /// whose files no longer exist (compaction). Blocking.
    pub fn load_into(path: PathBuf, view: LedgerView) -> std::io::Result<Self> {
        let mut seen = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let mut out = String::with_capacity(text.len());
            for line in text.lines() {
                let Some(file) = line.splitn(3, '\t').nth(2).and_then(unhex) else {
                    continue; // a torn or foreign line
                };
                let file = PathBuf::from(OsString::from_vec(file));
                if file.symlink_metadata().is_ok() && seen.insert(digest(line)) {
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
        *view.lock() = seen;
        Ok(Self {
            path,
            seen: view,
            file: None,
        })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.seen.contains(key)
    }

    pub fn view(&self) -> LedgerView {
        self.seen.clone()
    }

    /// Append a judged file. Blocking (one small append).
    pub fn record(&mut self, key: String) -> std::io::Result<()> {
        let f = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            ),
        };
        if let Err(e) = f.write_all(format!("{key}\n").as_bytes()) {
            self.file = None;
            return Err(e);
        }
        self.seen.lock().insert(digest(&key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn names_with_newlines_or_invalid_utf8_keep_their_own_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let names: [&[u8]; 3] = [b"a_\xff.jpg", b"a_\xfd.jpg", b"line\nbreak.jpg"];
        let paths: Vec<PathBuf> = names
            .iter()
            .map(|n| dir.path().join(std::ffi::OsStr::from_bytes(n)))
            .collect();
        let ledger_path = dir.path().join("ledger.log");
        let mut ledger = Ledger::load(ledger_path.clone()).expect("load");
        for p in &paths {
            std::fs::write(p, b"x").expect("write");
            ledger.record(ledger_key(p, 1, None)).expect("record");
        }
        let ledger = Ledger::load(ledger_path).expect("reload");
        for p in &paths {
            assert!(ledger.contains(&ledger_key(p, 1, None)), "{p:?}");
        }
        assert_eq!(
            ledger.seen.lock().len(),
            3,
            "no two names collapsed into one"
        );
    }
}
