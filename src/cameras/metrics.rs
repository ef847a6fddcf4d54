//! The cameras' metrics. A `camera` label exists only for a registered camera (at
//! most `cameras.max_cameras`), and its series go when the camera is removed.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};

use crate::events::CameraStatus;
use crate::names::{closed_set, Label};
use crate::prom::Metrics;

closed_set! {
    /// Why an image or a folder from the camera folder was not taken.
    pub enum Skip {
        /// A new folder beyond `cameras.max_cameras`.
        TooManyCameras = "too_many_cameras",
        /// A folder whose name makes no camera id of at most 64 bytes, or holds a
        /// format character (invisible, or reordering what is shown).
        BadName = "bad_name",
        /// A folder whose camera id is already another folder's (`Front Door`,
        /// `front-door` and `FRONT_DOOR` are all `front_door`): the first keeps it.
        IdTaken = "id_taken",
        /// Beyond `cameras.max_images_per_minute`.
        Flooding = "flooding",
        /// The camera is disabled.
        Disabled = "disabled",
    }
}

#[derive(Clone)]
pub struct CameraMetrics {
    last_image: GaugeVec,
    images: IntCounterVec,
    skipped: IntCounterVec,
    status: IntGaugeVec,
    expected_silence: GaugeVec,
    by_status: IntGaugeVec,
    folders_refused: IntCounterVec,
}

impl CameraMetrics {
    pub fn new(m: &Metrics) -> Self {
        let me = Self {
            last_image: m.float_gauges(
                "camera_last_image_timestamp_seconds",
                "When the camera's last image arrived (unix time).",
                &["camera"],
            ),
            images: m.counters(
                "camera_images_total",
                "Images that arrived from the camera, taken or skipped.",
                &["camera"],
            ),
            skipped: m.counters(
                "camera_images_skipped_total",
                "Images of the camera that were not taken, by reason (flooding, disabled).",
                &["camera", "reason"],
            ),
            status: m.gauges(
                "camera_status",
                "Camera status: 1 for the current status, 0 for the others.",
                &["camera", "status"],
            ),
            expected_silence: m.float_gauges(
                "camera_expected_silence_seconds",
                "The longest silence expected of the camera now (learned, configured or its heartbeat); stale past it, offline past twice it.",
                &["camera"],
            ),
            by_status: m.gauges(
                "cameras",
                "Cameras by status.",
                &["status"],
            ),
            folders_refused: m.counters(
                "camera_folders_refused_total",
                "Folders of the camera root that were not made cameras, by reason (each folder counted once per run).",
                &["reason"],
            ),
        };
        for s in CameraStatus::ALL {
            me.by_status.with_label_values(&[s.label()]).set(0);
        }
        for r in [Skip::TooManyCameras, Skip::BadName, Skip::IdTaken] {
            me.folders_refused.with_label_values(&[r.label()]);
        }
        me
    }

    /// A camera is known: its series, from 0 (counters count this process's images,
    /// as Prometheus expects).
    pub fn known(&self, camera: &str, status: CameraStatus) {
        self.images.with_label_values(&[camera]);
        for r in [Skip::Flooding, Skip::Disabled] {
            self.skipped.with_label_values(&[camera, r.label()]);
        }
        self.status_now(camera, status);
    }

    pub fn status_now(&self, camera: &str, status: CameraStatus) {
        for s in CameraStatus::ALL {
            self.status
                .with_label_values(&[camera, s.label()])
                .set(i64::from(*s == status));
        }
    }

    pub fn image(&self, camera: &str, at: f64) {
        self.images.with_label_values(&[camera]).inc();
        self.last_image.with_label_values(&[camera]).set(at);
    }

    pub fn last_image_at(&self, camera: &str, at: f64) {
        self.last_image.with_label_values(&[camera]).set(at);
    }

    pub fn skipped(&self, camera: &str, reason: Skip) {
        self.skipped
            .with_label_values(&[camera, reason.label()])
            .inc();
    }

    pub fn expected_silence(&self, camera: &str, seconds: f64) {
        self.expected_silence
            .with_label_values(&[camera])
            .set(seconds);
    }

    pub fn folder_refused(&self, reason: Skip) {
        self.folders_refused
            .with_label_values(&[reason.label()])
            .inc();
    }

    /// How many cameras have each status now.
    pub fn counts(&self, count: impl Fn(CameraStatus) -> usize) {
        for s in CameraStatus::ALL {
            self.by_status
                .with_label_values(&[s.label()])
                .set(i64::try_from(count(*s)).unwrap_or(i64::MAX));
        }
    }

    /// The camera is gone: so are its series.
    pub fn forget(&self, camera: &str) {
        let _ = self.images.remove_label_values(&[camera]);
        let _ = self.last_image.remove_label_values(&[camera]);
        let _ = self.expected_silence.remove_label_values(&[camera]);
        for r in [Skip::Flooding, Skip::Disabled] {
            let _ = self.skipped.remove_label_values(&[camera, r.label()]);
        }
        for s in CameraStatus::ALL {
            let _ = self.status.remove_label_values(&[camera, s.label()]);
        }
    }
}
