//! File watcher (`file_watcher` worker, docs/behaviour.md §4): a recursive watch of
//! `camera_root` (inotify, read in bulk on the runtime, `native.rs`; or the `notify`
//! crate's polling watcher when the native one cannot start or
//! `file_watcher.polling = true`). A file is taken once it has a supported extension,
//! is at least `min_file_bytes`, its size has been stable for `stable_seconds` (or a
//! close-after-write was seen), after a `debounce_ms` quiet time. Its SHA-256 is
//! de-duplicated atomically in Redis (`SET NX EX`, in memory while Redis is down), and
//! it goes to the detection queue. A ledger under `queue.spool_dir` remembers every
//! judged file, so the catch-up scan at start never judges one twice.
//!
//! The camera folder is untrusted (`camera_fs`): nothing below the root is followed
//! through a symlink, files are opened once and checked on the descriptor (regular,
//! at most `max_file_bytes`), names that are not clean UTF-8 are refused with a
//! counted reason, and every name is logged escaped. Everything is bounded: the event
//! channel (overflow becomes one rescan), the pending set and each walk (a walk stops
//! at the room left and is resumed later), and every read (off the async threads,
//! under the heartbeat budget). The root is checked at least every second: replaced,
//! it is watched again; removed, it is recreated; not a directory, the watcher reports why
//! it is not running and waits, without crashing.

mod dedupe;
mod identity;
mod intake;
mod item;
mod ledger;
mod metrics;
mod native;
mod observer;
mod pending;
mod refusals;
mod result;
mod root;
mod scan;
mod take;

pub use dedupe::Dedupe;
pub use identity::{root_identity, RootIdentity, MARKER};
pub use intake::FileWatcher;
pub use item::{has_image_extension, normalize_camera_id, DetectionItem};
pub use ledger::{ledger_key, LedgerView};
pub use observer::ObserverType;
pub use result::FileResult;
pub use root::WatcherStatus;
