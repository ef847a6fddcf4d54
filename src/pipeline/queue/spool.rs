//! The on-disk fallback spool of one queue: an append-only file of JSON lines under
//! `queue.spool_dir`, each line flushed to disk (`fdatasync`) before the producer is
//! told the item is accepted, so a Redis outage followed by a crash or restart loses
//! nothing. A spool never deletes an item it has accepted; when full it refuses new
//! ones. Blocking file I/O runs on tokio's blocking pool.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub(super) struct Spool {
    path: PathBuf,
    count: u64,
}

impl Spool {
    /// Open (or create) `<dir>/<queue>.spool`; returns it with what a previous run left
    /// there, oldest first (read once).
    pub(super) async fn open(dir: &Path, queue: &str) -> std::io::Result<(Self, Vec<String>)> {
        let path = dir.join(format!("{queue}.spool"));
        let dir = dir.to_path_buf();
        let p = path.clone();
        let items = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            std::fs::create_dir_all(&dir)?;
            if !p.exists() {
                return Ok(Vec::new());
            }
            let (data, torn) = crate::json::read_lines_cutting_torn(&p)?;
            if torn > 0 {
                tracing::warn!(path = %p.display(), bytes = torn, "dropped a torn partial line at the end of the spool");
            }
            complete_lines(&data)
        })
        .await
        .map_err(std::io::Error::other)??;
        let count = items.len() as u64;
        Ok((Self { path, count }, items))
    }

    pub(super) fn len(&self) -> u64 {
        self.count
    }

    /// Append one item durably.
    pub(super) async fn append(&mut self, line: String) -> std::io::Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            let mut buf = line.into_bytes();
            buf.push(b'\n');
            f.write_all(&buf)?;
            f.sync_data()
        })
        .await
        .map_err(std::io::Error::other)??;
        self.count += 1;
        Ok(())
    }

    /// Every item, oldest first.
    pub(super) async fn read_all(&self) -> std::io::Result<Vec<String>> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if path.exists() {
                read_lines(&path)
            } else {
                Ok(Vec::new())
            }
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// Replace the contents with `remaining` (atomically, via a temp file + rename).
    pub(super) async fn rewrite(&mut self, remaining: Vec<String>) -> std::io::Result<()> {
        let path = self.path.clone();
        let n = remaining.len() as u64;
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let tmp = path.with_extension("spool.tmp");
            {
                let mut f = File::create(&tmp)?;
                for line in &remaining {
                    f.write_all(line.as_bytes())?;
                    f.write_all(b"\n")?;
                }
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)??;
        self.count = n;
        Ok(())
    }
}

/// Complete, non-empty lines of a spool file; a torn last line (crash mid-append) is
/// skipped, since its producer was never told it was accepted.
fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    complete_lines(&std::fs::read(path)?)
}

fn complete_lines(data: &[u8]) -> std::io::Result<Vec<String>> {
    let complete = match data.iter().rposition(|b| *b == b'\n') {
        Some(i) => &data[..=i],
        None => &data[..0],
    };
    let mut out = Vec::new();
    for line in BufReader::new(complete).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_reopen_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().expect("dir");
        let (mut s, _) = Spool::open(dir.path(), "detection").await.expect("open");
        s.append("{\"a\":1}".into()).await.expect("append");
        s.append("{\"a\":2}".into()).await.expect("append");
        // Simulate a crash in the middle of a third append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("detection.spool"))
            .expect("open file");
        f.write_all(b"{\"a\":").expect("torn write");
        let (mut s, left) = Spool::open(dir.path(), "detection").await.expect("reopen");
        assert_eq!(left, vec!["{\"a\":1}", "{\"a\":2}"]);
        assert_eq!(s.len(), 2);
        s.append("{\"a\":3}".into())
            .await
            .expect("append after torn tail");
        assert_eq!(s.read_all().await.expect("read").len(), 3);
        s.rewrite(vec!["{\"a\":1}".into(), "{\"a\":2}".into()])
            .await
            .expect("rewrite");
        assert_eq!(
            s.read_all().await.expect("read"),
            vec!["{\"a\":1}", "{\"a\":2}"]
        );
        s.rewrite(vec!["{\"a\":2}".into()]).await.expect("rewrite");
        assert_eq!(s.len(), 1);
        s.rewrite(Vec::new()).await.expect("clear");
        assert_eq!(
            Spool::open(dir.path(), "detection")
                .await
                .expect("reopen")
                .0
                .len(),
            0
        );
    }
}
