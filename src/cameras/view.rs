//! The cameras as the API shows them: the list, one camera's detail, and the folders
//! that were not made cameras. Plain data, filled by the registry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::camera::Basis;
use super::metrics::Skip;
use crate::events::CameraStatus;
use crate::store::RecentEvent;

/// A camera as the API lists it (what a glance needs; `CameraDetail` has the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CameraSummary {
    pub id: String,
    /// The instance whose camera root holds its folder (its owner, which writes its
    /// state).
    pub host: String,
    /// Its id in the fleet: `id`, or `host/id` when another host has a camera of
    /// the same id.
    pub fleet_id: String,
    /// The folder's name in the camera root.
    pub folder: String,
    #[schema(inline)]
    pub status: CameraStatus,
    pub status_since: DateTime<Utc>,
    /// Why it has this status, in words.
    pub reason: String,
    pub last_image_at: Option<DateTime<Utc>>,
    /// The newest image taken from it (`GET /api/system/thumbnail?path=` shows it
    /// small), while it is there.
    pub last_image_path: Option<String>,
    pub images_last_hour: u64,
    /// The longest silence expected of it now: `stale` past it, `offline` past twice
    /// it (for a heartbeat camera: one and two heartbeats, plus the grace).
    pub expected_silence_seconds: f64,
    /// Images per hour over the last 24 hours, oldest first (the last is this hour):
    /// listed with `?hourly=true`, always in the detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly_images: Option<Vec<u32>>,
}

/// A folder of the camera root that was not made a camera, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RefusedFolder {
    /// The folder's name (never one holding a control or format character as it is:
    /// such a name is refused and shown escaped).
    pub folder: String,
    /// The camera id its name makes (empty when it makes none).
    pub camera_id: String,
    #[schema(inline)]
    pub reason: Skip,
    /// Why, in words, and what to do.
    pub detail: String,
    /// When it was first refused in this run.
    pub since: DateTime<Utc>,
}

/// `GET /api/system/cameras`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraList {
    pub cameras: Vec<CameraSummary>,
    pub count: usize,
    pub max_cameras: usize,
    /// Folders not made cameras in this run (the 20 most recent), so a folder whose
    /// pictures go nowhere is seen.
    pub refused_folders: Vec<RefusedFolder>,
    /// Whether the cameras stored by earlier runs have been read back yet (false
    /// while PostgreSQL is away at start).
    pub loaded: bool,
    /// When this list was made (answers are reused for up to half a second).
    pub timestamp: DateTime<Utc>,
}

/// `GET /api/system/cameras/{id}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraDetail {
    #[serde(flatten)]
    pub camera: CameraSummary,
    pub last_detection_at: Option<DateTime<Utc>>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub images_last_day: u64,
    /// Images not taken since it was first seen (flooding, disabled).
    pub images_skipped: u64,
    /// How `expected_silence_seconds` was made.
    #[schema(inline)]
    pub expected_silence_basis: Basis,
    /// Its `offline` alert is critical.
    pub critical: bool,
    /// When the first hour of `hourly_images` starts.
    pub hourly_since: DateTime<Utc>,
    /// Its newest events (at most 10), or `null` when PostgreSQL cannot be read.
    pub recent_events: Option<Vec<RecentEvent>>,
    /// Why `recent_events` is `null`.
    pub recent_events_error: Option<String>,
}

/// A folder name as it may be shown: control and format characters escaped
/// (`\u{202e}`), everything else as it is.
pub(super) fn shown_name(folder: &str) -> String {
    folder
        .chars()
        .map(|c| {
            let mut buf = [0u8; 4];
            if c.is_control() || crate::names::has_format_char(c.encode_utf8(&mut buf)) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
