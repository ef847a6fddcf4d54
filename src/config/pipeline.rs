//! The pipeline's sections: `[file_watcher]`, `[batch]`, `[queue]` and `[cleanup]`.

use serde::{Deserialize, Serialize};

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FileWatcherConfig {
    pub camera_root: String,
    pub polling: bool,
    pub polling_interval_seconds: f64,
    pub debounce_ms: u64,
    pub stable_seconds: f64,
    pub min_file_bytes: u64,
    /// Larger files are refused unread (the camera folder is untrusted).
    pub max_file_bytes: u64,
    pub dedupe_ttl_seconds: f64,
}

impl Default for FileWatcherConfig {
    fn default() -> Self {
        Self {
            camera_root: "./data/cameras".into(),
            polling: false,
            polling_interval_seconds: 1.0,
            debounce_ms: 500,
            stable_seconds: 2.0,
            min_file_bytes: 10_240,
            max_file_bytes: 50 * 1024 * 1024,
            dedupe_ttl_seconds: 300.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    pub window_seconds: f64,
    pub idle_timeout_seconds: f64,
    pub max_detections: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            window_seconds: 90.0,
            idle_timeout_seconds: 30.0,
            max_detections: 500,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    pub spool_dir: String,
    pub memory_capacity: usize,
    pub spool_max_items: u64,
    /// An item another consumer took and has not acknowledged for this long is
    /// delivered again (the consumer is presumed dead).
    pub claim_idle_seconds: f64,
    /// This instance's name in the queues' consumer groups; empty means the host
    /// name. Set it when several instances run on one host.
    pub consumer_id: String,
    /// An item delivered more often than this without being finished (it keeps
    /// crashing or hanging its worker) moves to the queue's dead-letter stream.
    pub max_deliveries: u32,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            spool_dir: "./data/spool".into(),
            memory_capacity: 1000,
            spool_max_items: 100_000,
            claim_idle_seconds: 60.0,
            consumer_id: String::new(),
            max_deliveries: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CleanupConfig {
    pub retention_days: u32,
    /// Local time of day, `HH:MM`.
    pub time: String,
    pub delete_media: bool,
    /// Retention by size (0: off): past this many bytes of files below the camera
    /// root, the oldest processed images are deleted until it is under again.
    pub max_media_bytes: u64,
    /// Retention of the database by size (0: off): past this many bytes of data held,
    /// the oldest detections, then events, then resolved alerts are deleted.
    pub max_database_bytes: u64,
    /// An image referenced by an event younger than this is never deleted by size
    /// (the newest event's images never are).
    pub keep_evidence_days: u32,
    /// How often the sizes are checked (with `max_media_bytes` or `max_database_bytes`
    /// set).
    pub size_check_seconds: f64,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            retention_days: 30,
            time: "03:00".into(),
            delete_media: false,
            max_media_bytes: 0,
            max_database_bytes: 0,
            keep_evidence_days: 7,
            size_check_seconds: 60.0,
        }
    }
}

impl FileWatcherConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds(
            "file_watcher.polling_interval_seconds",
            self.polling_interval_seconds,
        );
        c.seconds("file_watcher.stable_seconds", self.stable_seconds);
        c.seconds("file_watcher.dedupe_ttl_seconds", self.dedupe_ttl_seconds);
        c.count("file_watcher.debounce_ms", self.debounce_ms, 0, 3_600_000);
        c.count(
            "file_watcher.min_file_bytes",
            self.min_file_bytes,
            0,
            1 << 30,
        );
        c.count(
            "file_watcher.max_file_bytes",
            self.max_file_bytes,
            1,
            1 << 30,
        );
        c.check(
            self.min_file_bytes <= self.max_file_bytes,
            "file_watcher.min_file_bytes",
            "must not be larger than file_watcher.max_file_bytes",
        );
        c.check(
            !self.camera_root.trim().is_empty(),
            "file_watcher.camera_root",
            "must not be empty",
        );
    }
}

impl BatchConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds("batch.window_seconds", self.window_seconds);
        c.positive_seconds("batch.idle_timeout_seconds", self.idle_timeout_seconds);
        c.count("batch.max_detections", self.max_detections, 1, 100_000);
    }
}

impl QueueConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.positive_seconds("queue.claim_idle_seconds", self.claim_idle_seconds);
        c.count(
            "queue.memory_capacity",
            self.memory_capacity as u64,
            1,
            1_000_000,
        );
        c.count(
            "queue.spool_max_items",
            self.spool_max_items,
            1,
            100_000_000,
        );
        c.count("queue.max_deliveries", self.max_deliveries.into(), 1, 1000);
        c.check(
            !self.spool_dir.trim().is_empty(),
            "queue.spool_dir",
            "must not be empty",
        );
        c.check(
            self.consumer_id.len() <= 64
                && self
                    .consumer_id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch)),
            "queue.consumer_id",
            "must be at most 64 letters, digits, '_', '.' or '-' (empty: the host name)",
        );
    }
}

/// The smallest database cap accepted: an empty database takes about 8 MiB.
const MIN_DATABASE_BYTES: u64 = 16 * 1024 * 1024;

impl CleanupConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.count(
            "cleanup.retention_days",
            self.retention_days.into(),
            1,
            36_500,
        );
        c.check(
            parse_time_of_day(&self.time).is_some(),
            "cleanup.time",
            "must be a time of day HH:MM (00:00 to 23:59)",
        );
        c.count(
            "cleanup.keep_evidence_days",
            self.keep_evidence_days.into(),
            0,
            36_500,
        );
        c.check(
            self.max_database_bytes == 0 || self.max_database_bytes >= MIN_DATABASE_BYTES,
            "cleanup.max_database_bytes",
            "must be 0 (off) or at least 16777216 (16 MiB: an empty database takes about 8)",
        );
        c.check(
            self.size_check_seconds.is_finite()
                && (0.5..=86_400.0).contains(&self.size_check_seconds),
            "cleanup.size_check_seconds",
            "must be between 0.5 and 86400 seconds",
        );
    }
}

/// Parse `HH:MM` into `(hour, minute)`.
pub fn parse_time_of_day(value: &str) -> Option<(u32, u32)> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}
