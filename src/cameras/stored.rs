//! The registry's rows in PostgreSQL and its place in the fleet: the camera root
//! its cameras are stored under, which instances are up (a camera whose owner is not
//! is taken over), reading them back at start and writing what changed.

use std::sync::atomic::Ordering;

use super::camera::Camera;
use super::registry::{is_valid_camera_id, CameraRegistry, Entry};
use crate::store::{CameraRow, CameraWriter, StoreError};
use crate::time::now_unix;

impl CameraRegistry {
    /// The camera root's identity: its cameras are stored under it. Set once, before
    /// the watchdog first reads them (a second call is ignored).
    pub fn set_scope(&self, scope: &str) {
        let _ = self.scope.set(scope.to_string());
    }

    /// The instances up now (the fleet says so each heartbeat): a camera another
    /// one of them writes is left to it, one whose writer is not up is taken over.
    pub fn fleet_up(&self, up: Vec<String>) {
        let mut orphaned = false;
        {
            let mut inner = self.lock();
            for e in inner.cameras.values_mut() {
                if e.owner
                    .as_ref()
                    .is_some_and(|o| *o != self.me && !up.contains(o))
                {
                    // Its owner is gone: written (taken over) at the next write, which
                    // the moved version asks for at once (until it is taken over).
                    orphaned = true;
                    e.dirty = true;
                }
            }
        }
        *self.up.lock().unwrap_or_else(|p| p.into_inner()) = Some(up);
        if orphaned {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The camera root's identity its cameras are stored under.
    pub fn scope(&self) -> &str {
        // Set by the pipeline before any worker starts; a registry without a
        // pipeline (unit tests) keeps its cameras under the empty scope.
        self.scope.get().map_or("", String::as_str)
    }

    /// The ids of the cameras this instance owns (writes), or will once written.
    pub fn owned(&self) -> Vec<String> {
        self.lock()
            .cameras
            .iter()
            .filter(|(_, e)| e.owner.as_ref().is_none_or(|o| *o == self.me))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Read back the stored cameras. A camera that arrived before (PostgreSQL was
    /// slow at start) keeps its newest image time and counts on top of what was
    /// stored; a stored state this version cannot read starts afresh.
    pub async fn load(&self) -> Result<usize, StoreError> {
        let rows = self.store.load_cameras(self.scope()).await?;
        let now = now_unix();
        let mut inner = self.lock();
        let mut n = 0;
        for row in rows {
            if !is_valid_camera_id(&row.id) {
                continue;
            }
            let stored = row
                .state
                .and_then(|s| serde_json::from_value::<Camera>(s).ok())
                .filter(Camera::is_well_formed);
            let Some(mut cam) = stored else {
                continue; // a row from before the registry kept state: it comes back with its next image
            };
            let fits = inner.cameras.len() < self.cfg.max_cameras;
            match inner.cameras.remove(&row.id) {
                Some(arrived) => {
                    cam.last_image_at = match (cam.last_image_at, arrived.cam.last_image_at) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        (a, b) => a.or(b),
                    };
                    cam.images_total += arrived.cam.images_total;
                    cam.skipped_total += arrived.cam.skipped_total;
                }
                None if !fits => continue,
                None => {}
            }
            self.metrics.known(&row.id, cam.status);
            if let Some(t) = cam.last_image_at {
                self.metrics.last_image_at(&row.id, t);
            }
            let mut entry = Entry::new(cam, false);
            entry.owner = (!row.owner.is_empty()).then_some(row.owner);
            inner.cameras.insert(row.id, entry);
            n += 1;
        }
        inner.loaded = true;
        drop(inner);
        self.version.fetch_add(1, Ordering::Relaxed);
        self.check_at(now);
        Ok(n)
    }

    /// Write every changed camera, and delete the removed ones, in one transaction.
    /// On failure they stay marked and are written next time.
    pub async fn flush(&self) -> Result<usize, StoreError> {
        let scope = self.scope();
        let up = self.up.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let writer = CameraWriter {
            scope,
            owner: &self.me,
            up: up.as_deref(),
        };
        let (rows, deleted) = {
            let mut inner = self.lock();
            let rows: Vec<CameraRow> = inner
                .cameras
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(id, e)| {
                    e.dirty = false;
                    CameraRow {
                        id: id.clone(),
                        folder: e.cam.folder.clone(),
                        state: serde_json::to_value(&e.cam).ok(),
                        owner: self.me.clone(),
                    }
                })
                .collect();
            (rows, std::mem::take(&mut inner.deleted))
        };
        match self.store.save_cameras(writer, &rows, &deleted).await {
            Ok(owners) => {
                let mut inner = self.lock();
                let mut moved = false;
                for (id, owner) in owners {
                    if let Some(e) = inner.cameras.get_mut(&id) {
                        // Another instance writes it: try again next time, so it is
                        // taken over once that one is no longer up.
                        e.dirty |= owner != self.me;
                        moved |= e.owner.as_deref() != Some(owner.as_str());
                        e.owner = Some(owner);
                    }
                }
                drop(inner);
                if moved {
                    self.version.fetch_add(1, Ordering::Relaxed);
                }
                Ok(rows.len())
            }
            Err(e) => {
                let mut inner = self.lock();
                for r in &rows {
                    if let Some(entry) = inner.cameras.get_mut(&r.id) {
                        entry.dirty = true;
                    }
                }
                let mut deleted = deleted;
                deleted.append(&mut inner.deleted);
                inner.deleted = deleted;
                Err(e)
            }
        }
    }
}
