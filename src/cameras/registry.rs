//! The camera registry: every camera the camera folder has shown, held in memory and
//! written to PostgreSQL in batches. The watcher asks it before taking an image
//! (`admit`: a new camera beyond `cameras.max_cameras`, a flood, a disabled camera
//! are skipped) and tells it what the picture was (`picture`); the stages tell it of
//! detections and events. Every change of a camera's status is published
//! (`camera.status_changed`, with the previous status and the reason) and shown in the
//! metrics; the alert engine reads the problems. Reads never publish.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::camera::{Arrival, Camera, Judging};
use super::metrics::{CameraMetrics, Skip};
use super::view::{shown_name, CameraDetail, CameraList, CameraSummary, RefusedFolder};
use crate::config::CamerasConfig;
use crate::events::{CameraStatus, CameraStatusChanged, Event, EventBus};
use crate::prom::Metrics;
use crate::store::Store;
use crate::time::{now_unix, unix_to_datetime};

/// Folders refused in this run, remembered so each is counted and logged once.
const MAX_REFUSED: usize = 10_000;
/// Refused folders listed with the cameras (the most recent).
const LIST_REFUSED: usize = 20;
/// The longest camera id kept (it is a metric label and a path segment).
const MAX_ID_BYTES: usize = 64;
/// Events listed with one camera.
const RECENT_EVENTS: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CameraError {
    #[error("Camera '{0}' not found; the cameras are listed at GET /api/system/cameras")]
    Unknown(String),
    #[error("Invalid camera id '{0}': a camera id is the folder name in lower case, letters, digits and _ only, at most 64 bytes")]
    InvalidId(String),
}

/// What the watcher does with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Take,
    Skip(Skip),
}

/// A camera in trouble, for the alert engine.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraProblem {
    pub camera: String,
    pub status: CameraStatus,
    pub critical: bool,
    pub reason: String,
}

pub(super) struct Entry {
    pub(super) cam: Camera,
    /// Changed since it was last written.
    pub(super) dirty: bool,
    /// The instance that writes it, as the last write found (`None` before one).
    pub(super) owner: Option<String>,
}

impl Entry {
    pub(super) fn new(cam: Camera, dirty: bool) -> Self {
        Self {
            cam,
            dirty,
            owner: None,
        }
    }
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) cameras: BTreeMap<String, Entry>,
    pub(super) loaded: bool,
    /// Removed cameras whose rows are still to be deleted.
    pub(super) deleted: Vec<String>,
    /// Refused folders by name, with why.
    refused: BTreeMap<String, RefusedFolder>,
    limit_logged: bool,
}

pub struct CameraRegistry {
    pub(super) cfg: CamerasConfig,
    judging: Judging,
    pub(super) store: Arc<Store>,
    events: EventBus,
    pub(super) metrics: CameraMetrics,
    inner: Mutex<Inner>,
    pub(super) version: AtomicU64,
    /// This instance's id: its cameras' `host`, and their owner in PostgreSQL.
    pub(super) me: String,
    /// The camera root's identity (set by the pipeline once it has read it).
    pub(super) scope: OnceLock<String>,
    /// The instances up now, as the fleet last said (`None` before it said).
    pub(super) up: Mutex<Option<Vec<String>>>,
}

/// A valid camera id: what `normalize_camera_id` makes of a clean folder name.
pub fn is_valid_camera_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .chars()
            .all(|c| (c.is_alphanumeric() && !c.is_uppercase()) || c == '_')
}

impl CameraRegistry {
    pub fn new(
        cfg: &CamerasConfig,
        store: Arc<Store>,
        events: EventBus,
        metrics: &Metrics,
        instance: &str,
    ) -> Arc<Self> {
        let me = Arc::new(Self {
            me: instance.to_string(),
            scope: OnceLock::new(),
            up: Mutex::new(None),
            judging: Judging::from_config(cfg),
            cfg: cfg.clone(),
            store,
            events,
            metrics: CameraMetrics::new(metrics),
            inner: Mutex::new(Inner::default()),
            version: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&me);
        metrics.on_scrape(move || {
            if let Some(me) = weak.upgrade() {
                me.publish_expectations();
            }
        });
        me
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every critical section leaves the map whole; survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A stamp that changes whenever a camera's status or set changes.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Whether this instance holds a camera of this id (its root has the folder).
    pub fn holds(&self, id: &str) -> bool {
        self.lock().cameras.contains_key(id)
    }

    /// Whether the stored cameras have been read back.
    pub fn loaded(&self) -> bool {
        self.lock().loaded
    }

    /// An image of `camera` (folder `folder`) arrived: take it or skip it.
    pub fn admit(&self, camera: &str, folder: &str) -> Admission {
        self.admit_at(camera, folder, now_unix())
    }

    pub fn admit_at(&self, camera: &str, folder: &str, now: f64) -> Admission {
        let mut inner = self.lock();
        let owner = inner.cameras.get(camera).map(|e| e.cam.folder.clone());
        if let Some(owner) = owner.as_ref().filter(|o| *o != folder) {
            // A look-alike folder (`FRONT_DOOR` beside `Front Door`): its images
            // would keep the other folder's camera alive.
            let why = format!(
                "its camera id '{camera}' belongs to the folder {owner:?}; remove that camera (DELETE /api/system/cameras/{camera}) to let this folder take it"
            );
            return Admission::Skip(self.refuse(
                &mut inner,
                Skip::IdTaken,
                camera,
                folder,
                now,
                why,
            ));
        }
        if owner.is_none() {
            if let Some(skip) = self.refuse_new(&mut inner, camera, folder) {
                return Admission::Skip(skip);
            }
            inner.cameras.insert(
                camera.to_string(),
                Entry::new(Camera::new(folder, now), true),
            );
            self.metrics.known(camera, CameraStatus::Online);
            tracing::info!(camera_id = %camera, folder = ?folder, "new camera");
            self.events
                .publish(Event::CameraStatusChanged(CameraStatusChanged {
                    camera_id: camera.to_string(),
                    status: CameraStatus::Online,
                    previous_status: None,
                    reason: "first image from this folder".into(),
                    folder: folder.to_string(),
                }));
            self.version.fetch_add(1, Ordering::Relaxed);
        }
        let o = self.cfg.override_for(camera);
        let Some(entry) = inner.cameras.get_mut(camera) else {
            return Admission::Take; // inserted above
        };
        let arrival = entry.cam.arrive(now, o, &self.judging);
        entry.dirty = true;
        self.metrics.image(camera, now);
        let admission = match arrival {
            Arrival::Take => Admission::Take,
            Arrival::Flooding => Admission::Skip(Skip::Flooding),
            Arrival::Disabled => Admission::Skip(Skip::Disabled),
        };
        if let Admission::Skip(reason) = admission {
            self.metrics.skipped(camera, reason);
        }
        self.settle(&mut inner, camera, now);
        admission
    }

    /// Whether a new folder may become a camera; why not, counted and logged once.
    fn refuse_new(&self, inner: &mut Inner, camera: &str, folder: &str) -> Option<Skip> {
        let now = now_unix();
        let (skip, why) = if crate::names::has_format_char(folder) {
            (
                Skip::BadName,
                "its name holds an invisible or direction-changing character (Unicode format character), so it could pass for another folder; rename it".to_string(),
            )
        } else if !is_valid_camera_id(camera) {
            (
                Skip::BadName,
                "its name does not make a camera id of 1 to 64 bytes of letters, digits and _; rename it".to_string(),
            )
        } else if inner.cameras.len() >= self.cfg.max_cameras {
            (
                Skip::TooManyCameras,
                format!(
                    "there are {} cameras already (cameras.max_cameras); remove one or raise the limit",
                    self.cfg.max_cameras
                ),
            )
        } else {
            return None;
        };
        Some(self.refuse(inner, skip, camera, folder, now, why))
    }

    /// Refuse `folder`: counted, remembered for the list and logged, once per run.
    fn refuse(
        &self,
        inner: &mut Inner,
        skip: Skip,
        camera: &str,
        folder: &str,
        now: f64,
        why: String,
    ) -> Skip {
        if inner.refused.contains_key(folder) {
            return skip;
        }
        if inner.refused.len() >= MAX_REFUSED {
            inner.refused.clear();
        }
        self.metrics.folder_refused(skip);
        match skip {
            Skip::TooManyCameras if inner.limit_logged => {
                tracing::debug!(folder = ?folder, "folder refused: too many cameras")
            }
            Skip::TooManyCameras => {
                inner.limit_logged = true;
                tracing::warn!(
                    folder = ?folder,
                    max_cameras = self.cfg.max_cameras,
                    "camera limit reached: further folders are refused and counted in watchpost_camera_folders_refused_total; remove a camera or raise cameras.max_cameras"
                );
            }
            _ => tracing::warn!(folder = ?folder, reason = skip.as_str(), "folder refused: {why}"),
        }
        inner.refused.insert(
            folder.to_string(),
            RefusedFolder {
                // Shown as `?` formatting shows it: control and format characters
                // escaped, so a name cannot reorder the page.
                folder: shown_name(folder),
                camera_id: camera.to_string(),
                reason: skip,
                detail: why,
                since: unix_to_datetime(now),
            },
        );
        self.version.fetch_add(1, Ordering::Relaxed);
        skip
    }

    /// The content hash of an image taken from `camera`, and where it is.
    pub fn picture(&self, camera: &str, hash: &str, path: &str) {
        let now = now_unix();
        let mut inner = self.lock();
        if let Some(e) = inner.cameras.get_mut(camera) {
            e.cam.picture(hash, &self.judging);
            e.cam.last_image_path = Some(path.to_string());
            e.dirty = true;
            self.settle(&mut inner, camera, now);
        }
    }

    /// Detections of an image of `camera` were stored.
    pub fn detected(&self, camera: &str) {
        let now = now_unix();
        if let Some(e) = self.lock().cameras.get_mut(camera) {
            e.cam.last_detection_at = Some(now);
            e.dirty = true;
        }
    }

    /// A security event of `camera` was written.
    pub fn event_created(&self, camera: &str) {
        let now = now_unix();
        if let Some(e) = self.lock().cameras.get_mut(camera) {
            e.cam.last_event_at = Some(now);
            e.dirty = true;
        }
    }

    /// Judge `camera` at `now`; publish a change of status.
    fn settle(&self, inner: &mut Inner, camera: &str, now: f64) {
        let o = self.cfg.override_for(camera);
        let Some(e) = inner.cameras.get_mut(camera) else {
            return;
        };
        let (status, reason) = e.cam.judge(now, o, &self.judging);
        if status == e.cam.status {
            return;
        }
        let previous = e.cam.status;
        e.cam.status = status;
        e.cam.status_since = now;
        e.cam.reason.clone_from(&reason);
        e.dirty = true;
        self.metrics.status_now(camera, status);
        match status {
            CameraStatus::Online | CameraStatus::Disabled => {
                tracing::info!(camera_id = %camera, from = previous.as_str(), to = status.as_str(), reason = %reason, "camera status changed")
            }
            _ => {
                tracing::warn!(camera_id = %camera, from = previous.as_str(), to = status.as_str(), reason = %reason, "camera status changed")
            }
        }
        self.events
            .publish(Event::CameraStatusChanged(CameraStatusChanged {
                camera_id: camera.to_string(),
                status,
                previous_status: Some(previous),
                reason,
                folder: e.cam.folder.clone(),
            }));
        self.version.fetch_add(1, Ordering::Relaxed);
    }

    /// Judge every camera now (the watchdog's pass).
    pub fn check(&self) {
        self.check_at(now_unix());
    }

    pub fn check_at(&self, now: f64) {
        let mut inner = self.lock();
        let ids: Vec<String> = inner.cameras.keys().cloned().collect();
        for id in &ids {
            self.settle(&mut inner, id, now);
        }
        let count = |s: CameraStatus| inner.cameras.values().filter(|e| e.cam.status == s).count();
        self.metrics.counts(count);
    }

    /// The expected silences, for a scrape.
    fn publish_expectations(&self) {
        let inner = self.lock();
        for (id, e) in &inner.cameras {
            let d = e.cam.deadlines(self.cfg.override_for(id), &self.judging);
            self.metrics.expected_silence(id, d.expected);
            if let Some(t) = e.cam.last_image_at {
                self.metrics.last_image_at(id, t);
            }
        }
    }

    fn summary(&self, id: &str, e: &Entry, now: f64, hourly: bool) -> CameraSummary {
        let cam = &e.cam;
        let d = cam.deadlines(self.cfg.override_for(id), &self.judging);
        CameraSummary {
            id: id.to_string(),
            host: e.owner.clone().unwrap_or_else(|| self.me.clone()),
            fleet_id: id.to_string(),
            folder: cam.folder.clone(),
            status: cam.status,
            status_since: unix_to_datetime(cam.status_since),
            reason: cam.reason_at(now, self.cfg.override_for(id), &self.judging),
            last_image_at: cam.last_image_at.map(unix_to_datetime),
            last_image_path: cam.last_image_path.clone(),
            images_last_hour: cam.images_last_hour(now),
            expected_silence_seconds: d.expected,
            hourly_images: hourly.then(|| cam.hourly(now).0),
        }
    }

    /// Every camera, by id; with `hourly`, each with its images per hour.
    pub fn list(&self, hourly: bool) -> CameraList {
        let now = now_unix();
        let inner = self.lock();
        let cameras: Vec<CameraSummary> = inner
            .cameras
            .iter()
            .map(|(id, e)| self.summary(id, e, now, hourly))
            .collect();
        let mut refused_folders: Vec<RefusedFolder> = inner.refused.values().cloned().collect();
        refused_folders.sort_by_key(|r| std::cmp::Reverse(r.since));
        refused_folders.truncate(LIST_REFUSED);
        CameraList {
            count: cameras.len(),
            cameras,
            max_cameras: self.cfg.max_cameras,
            refused_folders,
            loaded: inner.loaded,
            timestamp: unix_to_datetime(now),
        }
    }

    fn known(&self, id: &str) -> Result<(), CameraError> {
        if !is_valid_camera_id(id) {
            return Err(CameraError::InvalidId(id.to_string()));
        }
        Ok(())
    }

    /// One camera with its last 24 hours and its newest events.
    pub async fn detail(&self, id: &str) -> Result<CameraDetail, CameraError> {
        self.known(id)?;
        let now = now_unix();
        let mut detail = {
            let inner = self.lock();
            let e = inner
                .cameras
                .get(id)
                .ok_or_else(|| CameraError::Unknown(id.to_string()))?;
            let o = self.cfg.override_for(id);
            CameraDetail {
                camera: self.summary(id, e, now, true),
                last_detection_at: e.cam.last_detection_at.map(unix_to_datetime),
                last_event_at: e.cam.last_event_at.map(unix_to_datetime),
                images_last_day: e.cam.images_last_day(now),
                images_skipped: e.cam.skipped_total,
                expected_silence_basis: e.cam.deadlines(o, &self.judging).basis,
                critical: o.is_some_and(|o| o.critical),
                hourly_since: unix_to_datetime(e.cam.hourly(now).1),
                recent_events: None,
                recent_events_error: None,
            }
        };
        match self.store.camera_events(id, RECENT_EVENTS).await {
            Ok(events) => detail.recent_events = Some(events),
            Err(e) => detail.recent_events_error = Some(e.to_string()),
        }
        Ok(detail)
    }

    /// Turn a camera off (its images are skipped, nothing is judged) or on again.
    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<CameraSummary, CameraError> {
        self.known(id)?;
        let now = now_unix();
        let mut inner = self.lock();
        let e = inner
            .cameras
            .get_mut(id)
            .ok_or_else(|| CameraError::Unknown(id.to_string()))?;
        e.cam.set_disabled(disabled);
        e.dirty = true;
        self.settle(&mut inner, id, now);
        let e = inner
            .cameras
            .get(id)
            .ok_or_else(|| CameraError::Unknown(id.to_string()))?;
        Ok(self.summary(id, e, now, false))
    }

    /// Forget a camera: its state, its rhythm and its series. If its folder sends
    /// again, it comes back as a new camera.
    pub fn remove(&self, id: &str) -> Result<(), CameraError> {
        self.known(id)?;
        let mut inner = self.lock();
        if inner.cameras.remove(id).is_none() {
            return Err(CameraError::Unknown(id.to_string()));
        }
        inner.deleted.push(id.to_string());
        inner.refused.clear();
        inner.limit_logged = false;
        self.metrics.forget(id);
        self.version.fetch_add(1, Ordering::Relaxed);
        tracing::info!(camera_id = %id, "camera removed by an operator");
        Ok(())
    }

    /// The cameras in trouble (offline, frozen, flooding), or `None` until the stored
    /// cameras have been read back (their alerts are then neither raised nor resolved).
    pub fn problems(&self) -> Option<Vec<CameraProblem>> {
        let inner = self.lock();
        if !inner.loaded {
            return None;
        }
        Some(
            inner
                .cameras
                .iter()
                .filter(|(_, e)| {
                    matches!(
                        e.cam.status,
                        CameraStatus::Offline | CameraStatus::Frozen | CameraStatus::Flooding
                    )
                })
                .map(|(id, e)| CameraProblem {
                    camera: id.clone(),
                    status: e.cam.status,
                    critical: self.cfg.override_for(id).is_some_and(|o| o.critical),
                    // An alert's words are stored: a time, not a duration that would
                    // be wrong a minute later.
                    reason: match (e.cam.status, e.cam.last_image_at) {
                        (CameraStatus::Offline, Some(t)) => {
                            format!("no image since {}", crate::time::iso(unix_to_datetime(t)))
                        }
                        _ => e.cam.reason.clone(),
                    },
                })
                .collect(),
        )
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
