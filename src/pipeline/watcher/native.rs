//! The native observer: inotify on the camera root and every folder below it, read on
//! the runtime itself (no thread of its own).
//!
//! Why not the `notify` crate's inotify watcher (still used for polling): it watches
//! `IN_OPEN` (every read of an image, ours included, raised an event), it wakes its
//! own thread for each batch of events and hands them over one by one. Here only what
//! the watcher loop needs is asked for (created, written, closed after writing, moved),
//! and the events are read in bulk: after a read that found events, the reader waits
//! `gather` (a quarter of the debounce) before reading again, so a burst of images
//! costs one wake-up per `gather`, not several per image. The kernel queues the events
//! meanwhile; if its queue overflows, the loop is told to rescan (`IN_Q_OVERFLOW`).
//!
//! Never through a symlink: folders are found by `readdir` types (a symlink is not a
//! folder) and watched with `IN_DONT_FOLLOW | IN_ONLYDIR`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::task::JoinHandle;

use super::observer::{EventSink, FsEvent};
use super::pending::remember;

/// Bytes read from the inotify descriptor at once (an event is 16 bytes plus its name).
const READ_BUFFER: usize = 64 * 1024;

fn mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MODIFY
        | WatchMask::CLOSE_WRITE
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DONT_FOLLOW
        | WatchMask::ONLYDIR
        | WatchMask::EXCL_UNLINK
}

/// Files remembered as closed after writing (and renames of such files), so a file
/// written under a temporary name and renamed into place counts as closed under its
/// new name (one look at it, not two). Forgotten all at once past this many: a file
/// forgotten is only looked at twice.
const MAX_REMEMBERED: usize = 4096;

/// The watched folders, by watch descriptor. Blocking to build (it walks the tree).
pub struct Tree {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// Files whose last write event was their close.
    closed: HashSet<PathBuf>,
    /// Rename cookies of such files moved away (their `MOVED_TO` is closed too).
    closed_moves: HashSet<u32>,
}

impl AsRawFd for Tree {
    fn as_raw_fd(&self) -> RawFd {
        self.inotify.as_raw_fd()
    }
}

impl Tree {
    /// Watch `root` and every folder below it. `Err` when the root cannot be watched
    /// (or the system's watch limit is reached): the caller falls back to polling.
    pub fn watch(root: &Path) -> io::Result<Self> {
        let mut tree = Self {
            inotify: Inotify::init()?,
            dirs: HashMap::new(),
            closed: HashSet::new(),
            closed_moves: HashSet::new(),
        };
        tree.add(root)?;
        Ok(tree)
    }

    /// Watch `dir` and the folders below it. Each folder is watched before it is
    /// listed, so a folder made in between raises an event of its own. A folder below
    /// `dir` that went (or became something else) meanwhile is skipped; the system's
    /// watch limit is an error.
    fn add(&mut self, dir: &Path) -> io::Result<()> {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let wd = match self.inotify.watches().add(&d, mask()) {
                Ok(wd) => wd,
                Err(e) if d != dir && e.raw_os_error() != Some(libc::ENOSPC) => continue,
                Err(e) => return Err(e),
            };
            if let Ok(entries) = std::fs::read_dir(&d) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        stack.push(entry.path());
                    }
                }
            }
            self.dirs.insert(wd, d);
        }
        Ok(())
    }

    /// A folder moved away: forget it and what is below it (it may now be outside the
    /// root; if it moved within, its new place is watched afresh).
    fn forget(&mut self, dir: &Path) {
        let gone: Vec<WatchDescriptor> = self
            .dirs
            .iter()
            .filter(|(_, p)| p.starts_with(dir))
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in gone {
            self.dirs.remove(&wd);
            let _ = self.inotify.watches().remove(wd);
        }
    }

    /// Read every queued event into `out`, until none is left.
    fn drain(&mut self, buf: &mut [u8], out: &mut Vec<FsEvent>) -> io::Result<()> {
        loop {
            let mut new_dirs = Vec::new();
            let mut moved_dirs = Vec::new();
            let events = match self.inotify.read_events(buf) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            for event in events {
                let mask = event.mask;
                if mask.contains(EventMask::Q_OVERFLOW) {
                    out.push(FsEvent::Rescan);
                    continue;
                }
                if mask.contains(EventMask::IGNORED) {
                    // The kernel dropped the watch (its folder was removed).
                    self.dirs.remove(&event.wd);
                    continue;
                }
                let (Some(dir), Some(name)) = (self.dirs.get(&event.wd), event.name) else {
                    continue;
                };
                let path = dir.join(name);
                if mask.contains(EventMask::ISDIR) {
                    if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                        new_dirs.push(path);
                    } else if mask.contains(EventMask::MOVED_FROM) {
                        moved_dirs.push(path);
                    }
                } else if mask.contains(EventMask::CLOSE_WRITE) {
                    remember(&mut self.closed, path.clone(), MAX_REMEMBERED);
                    out.push(FsEvent::Closed(path));
                } else if mask.contains(EventMask::MOVED_FROM) {
                    if self.closed.remove(&path) {
                        remember(&mut self.closed_moves, event.cookie, MAX_REMEMBERED);
                    }
                    out.push(FsEvent::Gone(path));
                } else if mask.contains(EventMask::MOVED_TO) {
                    if self.closed_moves.remove(&event.cookie) {
                        remember(&mut self.closed, path.clone(), MAX_REMEMBERED);
                        out.push(FsEvent::Closed(path));
                    } else {
                        // Another file under this name now (deletions are not
                        // watched, so an old mark may still be there).
                        self.closed.remove(&path);
                        out.push(FsEvent::Touched(path));
                    }
                } else {
                    // Created or written: not closed any more.
                    self.closed.remove(&path);
                    out.push(FsEvent::Touched(path));
                }
            }
            for dir in moved_dirs {
                self.forget(&dir);
            }
            for dir in new_dirs {
                match self.add(&dir) {
                    Ok(()) => {}
                    // Gone again, or no longer a folder (a symlink put in its place
                    // is never followed): nothing to watch.
                    Err(e)
                        if e.kind() == io::ErrorKind::NotFound
                            || matches!(e.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)) =>
                    {
                        continue
                    }
                    Err(e) => {
                        // Not watched (the system's watch limit): a scan still finds
                        // what is in it now.
                        tracing::warn!(dir = ?dir, error = %e, "cannot watch a new camera folder; rescanning");
                        out.push(FsEvent::Rescan);
                    }
                }
                out.push(FsEvent::DirCreated(dir));
            }
        }
    }
}

/// The reader of a [`Tree`], running while this is alive.
pub struct Reader {
    task: JoinHandle<()>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The task owns the descriptor: aborting it closes it and every watch.
        self.task.abort();
    }
}

impl Reader {
    /// Read `tree`'s events into `sink`, at most once per `gather` while they keep
    /// coming. Must be called on the runtime.
    pub fn start(tree: Tree, sink: EventSink, gather: Duration) -> io::Result<Self> {
        // SAFETY: `Tree` owns its `Inotify`, whose descriptor stays open and the same
        // for as long as the `Tree` lives (nothing replaces or closes it), and the
        // `AsyncFd` owns the `Tree`.
        let fd = unsafe { AsyncFd::register_with_interest(tree, Interest::READABLE) }
            .map_err(io::Error::from)?;
        let task = tokio::spawn(read_loop(fd, sink, gather));
        Ok(Self { task })
    }
}

async fn read_loop(mut fd: AsyncFd<Tree>, sink: EventSink, gather: Duration) {
    let mut buf = vec![0u8; READ_BUFFER];
    let mut out = Vec::new();
    loop {
        let mut guard = match fd.readable_mut().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "the file watcher's inotify descriptor failed; rescanning");
                sink.send(FsEvent::Rescan);
                return;
            }
        };
        let drained = guard.get_inner_mut().drain(&mut buf, &mut out);
        // Everything queued was read (`drain` stops at `WouldBlock`, or failed).
        guard.clear_ready();
        drop(guard);
        if let Err(e) = drained {
            tracing::warn!(error = %e, "cannot read file events; rescanning");
            out.push(FsEvent::Rescan);
        }
        if out.is_empty() {
            continue;
        }
        for ev in out.drain(..) {
            sink.send(ev);
        }
        tokio::time::sleep(gather).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn sink() -> (EventSink, mpsc::Receiver<FsEvent>) {
        let (tx, rx) = mpsc::channel(1024);
        let overflow = Arc::new(AtomicBool::new(false));
        (EventSink { tx, overflow }, rx)
    }

    /// Receive events until `want` says yes (or fail after 10 s, never on time alone).
    async fn until(rx: &mut mpsc::Receiver<FsEvent>, mut want: impl FnMut(&FsEvent) -> bool) {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(ev) = rx.recv().await {
                if want(&ev) {
                    return;
                }
            }
        })
        .await;
        assert!(found.is_ok(), "the event never came");
    }

    fn is_closed(ev: &FsEvent, p: &Path) -> bool {
        matches!(ev, FsEvent::Closed(q) if q == p)
    }

    /// Wait for `p` to be touched, failing if it is reported closed first.
    async fn touched_not_closed(rx: &mut mpsc::Receiver<FsEvent>, p: &Path) {
        until(rx, |ev| {
            assert!(!is_closed(ev, p), "closed before it was");
            matches!(ev, FsEvent::Touched(q) if q == p)
        })
        .await;
    }

    #[tokio::test]
    async fn files_in_new_folders_are_seen_and_symlinked_folders_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("cam1")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let tree = Tree::watch(root.path()).unwrap();
        assert_eq!(tree.dirs.len(), 2, "the root and cam1, not the symlink");
        let (s, mut rx) = sink();
        let _reader = Reader::start(tree, s, Duration::from_millis(20)).unwrap();

        let a = root.path().join("cam1/a.jpg");
        std::fs::write(&a, b"x").unwrap();
        until(&mut rx, |ev| is_closed(ev, &a)).await;

        // A folder made after the start is watched from its creation on.
        let cam2 = root.path().join("cam2");
        std::fs::create_dir(&cam2).unwrap();
        until(
            &mut rx,
            |ev| matches!(ev, FsEvent::DirCreated(d) if *d == cam2),
        )
        .await;
        let b = cam2.join("b.jpg");
        std::fs::write(&b, b"x").unwrap();
        until(&mut rx, |ev| is_closed(ev, &b)).await;

        // A folder moved out of the root is no longer reported (once its move was
        // read: the first marker), and a file written through the symlink never was.
        // The second marker, written last, proves both were read past.
        let away = outside.path().join("cam2");
        std::fs::rename(&cam2, &away).unwrap();
        let moved = root.path().join("cam1/moved.jpg");
        std::fs::write(&moved, b"x").unwrap();
        until(&mut rx, |ev| is_closed(ev, &moved)).await;
        std::fs::write(away.join("c.jpg"), b"x").unwrap();
        std::fs::write(outside.path().join("d.jpg"), b"x").unwrap();
        let marker = root.path().join("cam1/marker.jpg");
        std::fs::write(&marker, b"x").unwrap();
        until(&mut rx, |ev| {
            if let FsEvent::Touched(p) | FsEvent::Closed(p) = ev {
                assert!(
                    p.starts_with(root.path()),
                    "an event from outside the root: {p:?}"
                );
                assert!(!p.ends_with("c.jpg") && !p.ends_with("d.jpg"), "{p:?}");
            }
            is_closed(ev, &marker)
        })
        .await;
    }

    #[tokio::test]
    async fn a_kernel_queue_overflow_becomes_one_rescan() {
        let root = tempfile::tempdir().unwrap();
        let tree = Tree::watch(root.path()).unwrap();
        let (tx, mut rx) = mpsc::channel(1_000_000);
        let s = EventSink {
            tx,
            overflow: Arc::new(AtomicBool::new(false)),
        };
        // After a read that found events the reader waits `gather` before reading
        // again: long enough to write more events than the kernel queues.
        let _reader = Reader::start(tree, s, Duration::from_secs(2)).unwrap();
        let first = root.path().join("first.jpg");
        std::fs::write(&first, b"x").unwrap();
        until(&mut rx, |ev| is_closed(ev, &first)).await;
        let queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(16_384);
        // Each file is created, written and closed: three events.
        for n in 0..queued / 2 {
            std::fs::write(root.path().join(format!("f{n}.jpg")), b"x").unwrap();
        }
        let marker = root.path().join("marker.jpg");
        let mut rescans = 0;
        until(&mut rx, |ev| {
            if matches!(ev, FsEvent::Rescan) {
                rescans += 1;
                // Written only now, after the overflow was read: its own events come
                // after it.
                std::fs::write(&marker, b"x").unwrap();
            }
            is_closed(ev, &marker)
        })
        .await;
        assert_eq!(rescans, 1, "one overflow, one rescan");
    }

    #[tokio::test]
    async fn a_file_closed_then_renamed_into_place_is_closed_under_its_new_name() {
        use std::io::Write;
        let root = tempfile::tempdir().unwrap();
        let (s, mut rx) = sink();
        let _reader = Reader::start(Tree::watch(root.path()).unwrap(), s, Duration::ZERO).unwrap();
        let (tmp, a) = (root.path().join(".a.tmp"), root.path().join("a.jpg"));
        std::fs::write(&tmp, b"x").unwrap();
        std::fs::rename(&tmp, &a).unwrap();
        let mut tmp_gone = false;
        until(&mut rx, |ev| {
            tmp_gone |= matches!(ev, FsEvent::Gone(p) if *p == tmp);
            is_closed(ev, &a)
        })
        .await;
        assert!(tmp_gone, "the temporary name was not reported gone first");

        // Renamed while still open for writing: only touched, closed when it is.
        let (tmp, b) = (root.path().join(".b.tmp"), root.path().join("b.jpg"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(b"x").unwrap();
        std::fs::rename(&tmp, &b).unwrap();
        touched_not_closed(&mut rx, &b).await;
        drop(f);
        until(&mut rx, |ev| is_closed(ev, &b)).await;

        // b.jpg closed, then deleted (not watched), then an open file renamed to that
        // name and on again: still only touched, the old mark does not carry over.
        std::fs::remove_file(&b).unwrap();
        let mut g = std::fs::File::create(&tmp).unwrap();
        g.write_all(b"x").unwrap();
        std::fs::rename(&tmp, &b).unwrap();
        let c = root.path().join("c.jpg");
        std::fs::rename(&b, &c).unwrap();
        touched_not_closed(&mut rx, &c).await;
        drop(g);
    }

    #[test]
    fn a_symlinked_folder_is_refused_as_not_a_folder() {
        // What `drain` skips quietly when a new folder was swapped for a symlink.
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        let mut tree = Tree::watch(root.path()).unwrap();
        let err = tree.add(&link).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
            "{err}"
        );
        assert_eq!(tree.dirs.len(), 1, "only the root is watched");
    }

    #[tokio::test]
    async fn reading_an_image_raises_no_event() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a.jpg");
        std::fs::write(&a, b"x").unwrap();
        let (s, mut rx) = sink();
        let _reader = Reader::start(Tree::watch(root.path()).unwrap(), s, Duration::ZERO).unwrap();
        std::fs::read(&a).unwrap();
        let marker = root.path().join("marker.jpg");
        std::fs::write(&marker, b"x").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
        let Ok(Some(FsEvent::Touched(p))) = first else {
            panic!("expected the marker's creation first");
        };
        assert_eq!(p, marker, "the read of a.jpg raised an event");
    }
}
