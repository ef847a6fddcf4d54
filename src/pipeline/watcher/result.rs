//! What the watcher decided about one file: the `result` label of
//! `watchpost_watcher_files_total`, and whether the ledger remembers it.

use crate::cameras::Skip;
use crate::names::closed_set;
use crate::pipeline::camera_fs::Refusal;

closed_set! {
    pub enum FileResult {
        /// A full rescan after lost file events (counted once per rescan).
        Rescan = "rescan",
        Queued = "queued",
        /// Same content as a file seen within the de-duplication TTL.
        Duplicate = "duplicate",
        /// Judged before (in the ledger).
        AlreadyProcessed = "already_processed",
        RejectedExtension = "rejected_extension",
        RejectedSize = "rejected_size",
        /// Directly in the root, or in a folder whose name gives no camera id.
        IgnoredRoot = "ignored_root",
        /// The queue's spool is full; retried later.
        Refused = "refused",
        /// Could not be read or queued this time; retried later.
        Error = "error",
        /// A symlink (never followed below the root).
        RejectedSymlink = "rejected_symlink",
        /// A directory, FIFO, socket or device where a file was expected.
        RejectedNotRegular = "rejected_not_regular",
        /// Above `max_file_bytes` (refused unread).
        RejectedTooLarge = "rejected_too_large",
        /// A name that is not valid UTF-8 or holds control characters.
        RejectedName = "rejected_name",
        /// No permission to read it.
        RejectedUnreadable = "rejected_unreadable",
        /// Its folder would be a camera beyond `cameras.max_cameras` (not remembered:
        /// once there is room, its next images are taken).
        TooManyCameras = "too_many_cameras",
        /// Its folder's camera id belongs to another folder (not remembered: once
        /// that camera is removed, its next images are taken).
        CameraIdTaken = "camera_id_taken",
        /// Its camera floods (more than `cameras.max_images_per_minute`).
        SkippedFlooding = "skipped_flooding",
        /// Its camera is disabled.
        SkippedDisabled = "skipped_disabled",
    }
}

impl FileResult {
    /// A final "no" that the ledger does not record (it is cheap to decide again).
    pub fn is_refusal(self) -> bool {
        !matches!(
            self,
            Self::Rescan
                | Self::Queued
                | Self::Duplicate
                | Self::AlreadyProcessed
                | Self::Refused
                | Self::Error
                | Self::SkippedFlooding
                | Self::SkippedDisabled
        )
    }
}

impl From<Refusal> for FileResult {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Outside => Self::IgnoredRoot,
            Refusal::BadName => Self::RejectedName,
            Refusal::Symlink => Self::RejectedSymlink,
            Refusal::NotRegular => Self::RejectedNotRegular,
            Refusal::TooLarge => Self::RejectedTooLarge,
            Refusal::Unreadable => Self::RejectedUnreadable,
        }
    }
}

impl From<Skip> for FileResult {
    fn from(s: Skip) -> Self {
        match s {
            Skip::TooManyCameras => Self::TooManyCameras,
            Skip::BadName => Self::RejectedName,
            Skip::IdTaken => Self::CameraIdTaken,
            Skip::Flooding => Self::SkippedFlooding,
            Skip::Disabled => Self::SkippedDisabled,
        }
    }
}
