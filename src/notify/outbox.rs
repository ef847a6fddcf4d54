//! One notifier's outbox: every transition is written here (appended to
//! `<dir>/<name>.jsonl` and synced) before it is sent, and taken out only once the
//! receiver acknowledged it (`<dir>/<name>.sent` holds the newest acknowledged
//! `seq`, replaced atomically). A restart reads back what was not acknowledged, in
//! order. A line torn by a crash is cut off the file (it was never reported written),
//! so the next entry starts on a line of its own. The file
//! is emptied whenever everything in it is sent, and rewritten with only the unsent
//! entries when it grows past `COMPACT_BYTES`.
//!
//! Bounded: past `max` unsent entries the oldest is dropped (the caller counts and
//! logs it). When the disk refuses a write the entry is kept in memory and the error
//! reported, so a full disk delays durability, never the message.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::message::{Entry, Kind};
use crate::alerts::Alert;

/// A file this large with entries still unsent is rewritten without the sent ones.
const COMPACT_BYTES: u64 = 1 << 20;
/// The longest line read back (a longer one is not an entry of ours).
const MAX_LINE: usize = 256 * 1024;

pub struct Outbox {
    log: PathBuf,
    sent: PathBuf,
    pending: VecDeque<Entry>,
    next_seq: u64,
    max: usize,
    /// Bytes in the log file.
    bytes: u64,
}

/// What `push` did besides keeping the entry.
#[derive(Debug, Default, PartialEq)]
pub struct Pushed {
    /// A test was not kept: the outbox is full, and a test never displaces a
    /// transition.
    pub refused: bool,
    /// An unsent entry had to go to make room (a waiting test if there is one, else
    /// the oldest transition).
    pub dropped: Option<Entry>,
    /// The disk refused the write: the entry is only in memory.
    pub not_durable: Option<String>,
}

impl Outbox {
    /// Open (or create) the outbox of notifier `name` in `dir`.
    pub fn open(dir: &Path, name: &str, max: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let log = dir.join(format!("{name}.jsonl"));
        let sent = dir.join(format!("{name}.sent"));
        let acked: u64 = std::fs::read_to_string(&sent)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut pending = VecDeque::new();
        let mut newest = acked;
        let mut bytes = 0;
        let mut unread = 0usize;
        if log.exists() {
            // A torn last line is cut off the file: the next entry must not be glued
            // to it (and lost with it at the following start).
            let (data, torn) = crate::json::read_lines_cutting_torn(&log)?;
            unread += usize::from(torn > 0);
            bytes = data.len() as u64;
            for line in data.split(|b| *b == b'\n') {
                // Too long to be one of ours (entries are cut to fit), or torn by a
                // crash (never reported written).
                let entry = (line.len() <= MAX_LINE)
                    .then(|| serde_json::from_slice::<Entry>(line).ok())
                    .flatten();
                let Some(e) = entry else {
                    unread += usize::from(!line.is_empty());
                    continue;
                };
                newest = newest.max(e.seq);
                if e.seq > acked {
                    pending.push_back(e);
                }
            }
        }
        if unread > 0 {
            tracing::warn!(outbox = %log.display(), lines = unread, "outbox lines that are not entries (torn by a crash, or too long) were skipped");
        }
        while pending.len() > max {
            pending.pop_front();
        }
        Ok(Self {
            log,
            sent,
            pending,
            next_seq: newest + 1,
            max: max.max(1),
            bytes,
        })
    }

    /// Keep a new entry (a transition on disk, synced, before this returns; a test in
    /// memory only: nobody waits for it across a restart). A test never displaces a
    /// transition: it is refused when the outbox is full, and it is the first to go
    /// when a transition needs its room.
    pub fn push(&mut self, kind: Kind, alert: Alert, decided_at: DateTime<Utc>) -> Pushed {
        let test = kind == Kind::Test;
        if test && self.pending.len() >= self.max {
            return Pushed {
                refused: true,
                ..Pushed::default()
            };
        }
        let e = Entry {
            seq: self.next_seq,
            kind,
            decided_at,
            alert,
            actions: Vec::new(),
        };
        self.next_seq += 1;
        let mut out = Pushed::default();
        if !test {
            if let Err(why) = self.append(&e) {
                out.not_durable = Some(why.to_string());
            }
        }
        self.pending.push_back(e);
        if self.pending.len() > self.max {
            let at = self
                .pending
                .iter()
                .position(|e| e.kind == Kind::Test)
                .unwrap_or(0);
            out.dropped = self.pending.remove(at);
        }
        out
    }

    fn append(&mut self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        f.write_all(&line)?;
        f.sync_data()?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// The `seq` of the newest entry pushed.
    pub fn newest_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The oldest unsent entry.
    pub fn head(&self) -> Option<&Entry> {
        self.pending.front()
    }

    /// Unsent entries.
    pub fn depth(&self) -> usize {
        self.pending.len()
    }

    /// The receiver acknowledged entry `seq` (the head): it is never sent again.
    pub fn ack(&mut self, seq: u64) -> std::io::Result<()> {
        while self.pending.front().is_some_and(|e| e.seq <= seq) {
            self.pending.pop_front();
        }
        replace(&self.sent, seq.to_string().as_bytes())?;
        if self.pending.is_empty() {
            // Everything sent: the log starts again (seq keeps counting from `.sent`).
            File::create(&self.log)?.sync_all()?;
            self.bytes = 0;
        } else if self.bytes > COMPACT_BYTES {
            let mut body = Vec::new();
            for e in self.pending.iter().filter(|e| e.kind != Kind::Test) {
                body.extend(serde_json::to_vec(e).map_err(std::io::Error::other)?);
                body.push(b'\n');
            }
            replace(&self.log, &body)?;
            self.bytes = body.len() as u64;
        }
        Ok(())
    }
}

/// Write `path` whole or not at all (a temp file, synced, renamed over it).
fn replace(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(n: u32) -> Alert {
        let mut a = super::super::message::test_alert("hook", Utc::now());
        a.fingerprint = format!("f{n}");
        a
    }

    #[test]
    fn what_is_not_acknowledged_comes_back_in_order_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "ntfy", 100).unwrap();
        for n in 1..=3 {
            assert_eq!(
                o.push(Kind::Firing, alert(n), Utc::now()),
                Pushed::default()
            );
        }
        let first = o.head().unwrap().seq;
        o.ack(first).unwrap();
        drop(o);
        let mut o = Outbox::open(dir.path(), "ntfy", 100).unwrap();
        assert_eq!(o.depth(), 2);
        assert_eq!(o.head().unwrap().alert.fingerprint, "f2");
        // Numbering goes on after the newest ever written.
        o.push(Kind::Resolved, alert(4), Utc::now());
        let seqs: Vec<u64> = o.pending.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        for s in seqs {
            o.ack(s).unwrap();
        }
        assert_eq!(
            std::fs::metadata(dir.path().join("ntfy.jsonl"))
                .unwrap()
                .len(),
            0
        );
        let mut o = Outbox::open(dir.path(), "ntfy", 100).unwrap();
        assert_eq!(o.depth(), 0);
        o.push(Kind::Firing, alert(5), Utc::now());
        assert_eq!(o.head().unwrap().seq, 5, "a sent seq is never reused");
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 100).unwrap();
        o.push(Kind::Firing, alert(1), Utc::now());
        drop(o);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("hook.jsonl"))
            .unwrap();
        f.write_all(b"{\"seq\":2,\"kind\":\"fir").unwrap();
        let o = Outbox::open(dir.path(), "hook", 100).unwrap();
        assert_eq!(o.depth(), 1);
    }

    #[test]
    fn an_entry_pushed_after_a_torn_reopen_survives_the_next_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 100).unwrap();
        o.push(Kind::Firing, alert(1), Utc::now());
        drop(o);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("hook.jsonl"))
            .unwrap();
        f.write_all(b"{\"seq\":2,\"kind\":\"fir").unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 100).unwrap();
        o.push(Kind::Resolved, alert(3), Utc::now());
        drop(o);
        let o = Outbox::open(dir.path(), "hook", 100).unwrap();
        let kept: Vec<&str> = o
            .pending
            .iter()
            .map(|e| e.alert.fingerprint.as_str())
            .collect();
        assert_eq!(kept, ["f1", "f3"], "the entry after the torn line is kept");
    }

    #[test]
    fn past_its_bound_the_oldest_goes_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 2).unwrap();
        o.push(Kind::Firing, alert(1), Utc::now());
        o.push(Kind::Firing, alert(2), Utc::now());
        let p = o.push(Kind::Firing, alert(3), Utc::now());
        assert_eq!(p.dropped.unwrap().alert.fingerprint, "f1");
        assert_eq!(o.depth(), 2);
    }

    #[test]
    fn a_test_never_displaces_a_transition() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 2).unwrap();
        o.push(Kind::Firing, alert(1), Utc::now());
        let t = o.push(Kind::Test, alert(9), Utc::now());
        assert_eq!(t, Pushed::default(), "room for a test");
        // A transition needs the room: the test goes, not the older transition.
        let p = o.push(Kind::Resolved, alert(2), Utc::now());
        assert_eq!(p.dropped.unwrap().kind, Kind::Test);
        let kept: Vec<&str> = o
            .pending
            .iter()
            .map(|e| e.alert.fingerprint.as_str())
            .collect();
        assert_eq!(kept, ["f1", "f2"]);
        // Full of transitions: a test is refused, and nothing is dropped.
        let t = o.push(Kind::Test, alert(9), Utc::now());
        assert!(t.refused && t.dropped.is_none());
        assert_eq!(o.depth(), 2);
        // A test is not written: it does not come back after a restart.
        let mut o = Outbox::open(dir.path(), "other", 5).unwrap();
        o.push(Kind::Test, alert(9), Utc::now());
        drop(o);
        assert_eq!(Outbox::open(dir.path(), "other", 5).unwrap().depth(), 0);
    }

    #[test]
    fn an_unwritable_dir_keeps_the_entry_in_memory_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), "hook", 10).unwrap();
        std::fs::remove_dir_all(dir.path()).unwrap();
        let p = o.push(Kind::Firing, alert(1), Utc::now());
        assert!(p.not_durable.is_some());
        assert_eq!(o.depth(), 1);
    }
}
