//! Coverage's own series: `watchpost_camera_availability_ratio{camera,window}` and
//! `watchpost_dependency_availability_ratio{dependency,window}` over 24 h and 7 days,
//! refreshed by the recorder once a minute (at most `cameras.max_cameras` cameras); a
//! removed camera's series go at the next scrape.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus::GaugeVec;

use super::report::{AvailabilityReport, Window};
use crate::cameras::CameraRegistry;
use crate::prom::Metrics;

/// The windows published as series.
pub const PUBLISHED: [Window; 2] = [Window::Day, Window::Week];

#[derive(Clone)]
pub struct CoverageMetrics {
    camera: GaugeVec,
    dependency: GaugeVec,
    max_cameras: usize,
    /// The cameras with series now.
    published: Arc<Mutex<BTreeSet<String>>>,
}

impl CoverageMetrics {
    /// With the series of a camera `cameras` no longer has removed at each scrape.
    pub fn new(metrics: &Metrics, max_cameras: usize, cameras: &Arc<CameraRegistry>) -> Self {
        let me = Self {
            camera: metrics.float_gauges(
                "camera_availability_ratio",
                "Fraction of the window (24h, 7d) in which each camera's images would have become detections and events, over the part of it the history knows.",
                &["camera", "window"],
            ),
            dependency: metrics.float_gauges(
                "dependency_availability_ratio",
                "Fraction of the window (24h, 7d) in which each dependency was up, over the part of it the history knows.",
                &["dependency", "window"],
            ),
            max_cameras,
            published: Arc::default(),
        };
        let (hook, registry) = (me.clone(), Arc::downgrade(cameras));
        metrics.on_scrape(move || {
            if let Some(r) = registry.upgrade() {
                let list = r.list(false);
                hook.keep_cameras(&list.cameras.iter().map(|c| c.id.as_str()).collect());
            }
        });
        me
    }

    /// Remove at once the series of cameras that are no longer registered (not at the
    /// next refresh): a removed camera's series go with it.
    pub fn keep_cameras(&self, present: &BTreeSet<&str>) {
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.retain(|id| {
            let keep = present.contains(id.as_str());
            if !keep {
                for w in PUBLISHED {
                    // Absent for a window that knew nothing: nothing to remove.
                    let _ = self.camera.remove_label_values(&[id, w.as_str()]);
                }
            }
            keep
        });
    }

    /// Publish the reports of the [`PUBLISHED`] windows (series of cameras gone, or
    /// of nothing known, are removed).
    pub fn published(&self, reports: &[AvailabilityReport]) {
        self.camera.reset();
        self.dependency.reset();
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.clear();
        for r in reports {
            let window = r.window.as_str();
            for c in r.cameras.iter().take(self.max_cameras) {
                if let Some(a) = c.availability {
                    self.camera
                        .with_label_values(&[&c.camera_id, window])
                        .set(a);
                    published.insert(c.camera_id.clone());
                }
            }
            for d in &r.dependencies {
                if let Some(a) = d.availability {
                    self.dependency.with_label_values(&[&d.name, window]).set(a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coverage::report::CameraAvailability;

    #[test]
    fn a_camera_no_longer_registered_loses_its_series() {
        let m = Metrics::new();
        let cm = CoverageMetrics {
            camera: m.float_gauges("camera_availability_ratio", "h", &["camera", "window"]),
            dependency: m.float_gauges(
                "dependency_availability_ratio",
                "h",
                &["dependency", "window"],
            ),
            max_cameras: 10,
            published: Arc::default(),
        };
        let now = crate::time::now();
        let cam = |id: &str| CameraAvailability {
            camera_id: id.into(),
            name: id.into(),
            availability: Some(0.5),
            watched_seconds: 1.0,
            unwatched_seconds: 1.0,
            maintenance_seconds: 0.0,
            since: None,
        };
        let report = |w| AvailabilityReport {
            window: w,
            from: now,
            to: now,
            since: None,
            cameras: vec![cam("porch"), cam("gate")],
            dependencies: vec![],
            stored: crate::coverage::report::Stored { spans: 0, bytes: 0 },
        };
        cm.published(&[report(Window::Day), report(Window::Week)]);
        assert!(m.render().contains("camera=\"gate\",window=\"7d\""));
        cm.keep_cameras(&["porch"].into_iter().collect());
        let text = m.render();
        assert!(!text.contains("camera=\"gate\""), "{text}");
        assert!(text.contains("camera=\"porch\",window=\"24h\""), "{text}");
    }
}
