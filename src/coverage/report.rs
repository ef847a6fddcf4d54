//! The read side: a camera's gaps over an interval (`GET /api/system/coverage`) and
//! the fraction of a window each camera was watched and each dependency up (`GET
//! /api/system/availability`), computed exactly from the stored spans. Reads only:
//! nothing here writes or publishes.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::span::{covered, gaps, seconds, Cause, Gap, Span, Subject};
use crate::names::closed_set;
use crate::store::{CameraSince, SpanFilter, SpanRow, Store, StoreError};

/// The longest interval one coverage question may span.
pub const MAX_INTERVAL_DAYS: i64 = 90;

closed_set! {
    /// The windows availability is asked over.
    pub enum Window {
        Day = "24h",
        Week = "7d",
        Month = "30d",
        Quarter = "90d",
    }
}

impl Window {
    pub fn length(self) -> Duration {
        match self {
            Self::Day => Duration::days(1),
            Self::Week => Duration::days(7),
            Self::Month => Duration::days(30),
            Self::Quarter => Duration::days(90),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("Coverage is read from PostgreSQL, which is unreachable: {0}")]
    Unavailable(#[from] StoreError),
    #[error("No camera {0:?} is known")]
    UnknownCamera(String),
}

/// `GET /api/system/coverage`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageReport {
    pub from: DateTime<Utc>,
    /// The end asked, or now when that is later.
    pub to: DateTime<Utc>,
    pub cameras: Vec<CameraCoverage>,
}

/// One camera's coverage over the interval.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraCoverage {
    pub camera_id: String,
    /// Its folder in the camera root.
    pub name: String,
    pub watched_seconds: f64,
    pub unwatched_seconds: f64,
    /// In maintenance windows or snoozes: neither watched nor unwatched.
    pub maintenance_seconds: f64,
    /// Watched over known (less maintenance), 0 to 1; `null` when nothing of the
    /// interval is known.
    pub availability: Option<f64>,
    /// Where what is known starts, when later than `from` (the history or the camera
    /// is younger): the seconds and the fraction are over the known part only.
    pub since: Option<DateTime<Utc>>,
    pub gaps: Vec<Gap>,
}

/// `GET /api/system/availability`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AvailabilityReport {
    pub window: Window,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the history starts, when that is later than `from`.
    pub since: Option<DateTime<Utc>>,
    pub cameras: Vec<CameraAvailability>,
    pub dependencies: Vec<DependencyAvailability>,
    /// What the history takes in PostgreSQL.
    pub stored: Stored,
}

/// The stored history's size.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stored {
    pub spans: i64,
    /// The table with its indexes.
    pub bytes: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CameraAvailability {
    pub camera_id: String,
    pub name: String,
    pub availability: Option<f64>,
    pub watched_seconds: f64,
    pub unwatched_seconds: f64,
    pub maintenance_seconds: f64,
    pub since: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DependencyAvailability {
    pub name: String,
    /// Up over known, 0 to 1; `null` when nothing of the window is known.
    pub availability: Option<f64>,
    pub up_seconds: f64,
    pub down_seconds: f64,
    pub since: Option<DateTime<Utc>>,
}

pub struct Coverage {
    store: Arc<Store>,
    min_gap: Duration,
    dependencies: Vec<String>,
}

/// The stored spans, read back (a row this version cannot read is left out).
fn spans(rows: Vec<SpanRow>) -> Vec<Span> {
    rows.into_iter()
        .filter_map(|r| {
            Some(Span {
                subject: Subject::from_columns(&r.subject_kind, &r.subject)?,
                cause: Cause::parse(&r.cause)?,
                id: r.id,
                detail: r.detail,
                start: r.started_at,
                end: r.ended_at,
            })
        })
        .collect()
}

impl Coverage {
    /// `dependencies`: the names whose availability is reported.
    pub fn new(store: Arc<Store>, min_gap_seconds: f64, dependencies: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            store,
            min_gap: Duration::milliseconds((min_gap_seconds * 1000.0) as i64),
            dependencies,
        })
    }

    /// Every camera's (or one camera's) gaps over `[from, to]`.
    pub async fn report(
        &self,
        camera: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<CoverageReport, CoverageError> {
        Ok(self.read(camera, from, to).await?.0)
    }

    /// The report, with the spans it was made from and when the history starts.
    async fn read(
        &self,
        camera: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(CoverageReport, Vec<Span>, Option<DateTime<Utc>>), CoverageError> {
        let to = to.min(crate::time::now());
        let mut cameras = self.store.cameras_since().await?;
        if let Some(id) = camera {
            cameras.retain(|c| c.id == id);
            if cameras.is_empty() {
                return Err(CoverageError::UnknownCamera(id.to_string()));
            }
        }
        let since = self.store.coverage_history_start().await?;
        let filter = camera.map_or(SpanFilter::All, SpanFilter::Camera);
        let all = spans(self.store.spans_between(filter, from, to).await?);
        let mut by_subject: HashMap<&Subject, Vec<&Span>> = HashMap::new();
        for s in &all {
            by_subject.entry(&s.subject).or_default().push(s);
        }
        let pipeline = by_subject
            .get(&Subject::Pipeline)
            .cloned()
            .unwrap_or_default();
        let report = CoverageReport {
            from,
            to,
            cameras: cameras
                .iter()
                .map(|c| {
                    let own = by_subject.get(&Subject::Camera(c.id.clone()));
                    self.camera(
                        c,
                        own.map_or(&[][..], Vec::as_slice),
                        &pipeline,
                        from,
                        to,
                        since,
                    )
                })
                .collect(),
        };
        Ok((report, all, since))
    }

    fn camera(
        &self,
        c: &CameraSince,
        own: &[&Span],
        pipeline: &[&Span],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
    ) -> CameraCoverage {
        let known_from = known_from(from, since, Some(c.created_at));
        let mut mine: Vec<&Span> = own.to_vec();
        mine.extend(pipeline.iter().copied());
        let (gaps, known) = match known_from {
            Some(k) if k < to => (gaps(&mine, k, to, self.min_gap), seconds(to - k)),
            _ => (Vec::new(), 0.0),
        };
        let planned: f64 = gaps
            .iter()
            .filter(|g| g.cause == Cause::Maintenance)
            .map(Gap::seconds)
            .sum();
        let unwatched: f64 = gaps.iter().map(Gap::seconds).sum::<f64>() - planned;
        let known = known - planned;
        CameraCoverage {
            camera_id: c.id.clone(),
            name: c.folder.clone(),
            watched_seconds: round3(known - unwatched),
            unwatched_seconds: round3(unwatched),
            maintenance_seconds: round3(planned),
            availability: fraction(known - unwatched, known),
            since: known_from.filter(|k| *k > from),
            gaps,
        }
    }

    /// The fraction of `window` (to now) each camera was watched and each dependency
    /// up, over the part of it the history knows.
    pub async fn availability(&self, window: Window) -> Result<AvailabilityReport, CoverageError> {
        let to = crate::time::now();
        let from = to - window.length();
        let (report, all, since) = self.read(None, from, to).await?;
        let (spans, bytes) = self.store.spans_stored().await?;
        let deps: Vec<&Span> = all
            .iter()
            .filter(|s| matches!(s.subject, Subject::Dependency(_)))
            .collect();
        let known_from = known_from(from, since, None);
        let dependencies = self
            .dependencies
            .iter()
            .map(|name| {
                let subject = Subject::Dependency(name.clone());
                let mine: Vec<&Span> = deps
                    .iter()
                    .copied()
                    .filter(|s| s.subject == subject)
                    .collect();
                let (known, down) = match known_from {
                    Some(k) if k < to => (seconds(to - k), seconds(covered(&mine, k, to))),
                    _ => (0.0, 0.0),
                };
                DependencyAvailability {
                    name: name.clone(),
                    availability: fraction(known - down, known),
                    up_seconds: round3(known - down),
                    down_seconds: round3(down),
                    since: known_from.filter(|k| *k > from),
                }
            })
            .collect();
        Ok(AvailabilityReport {
            window,
            from,
            to,
            since: known_from.filter(|k| *k > from),
            cameras: report
                .cameras
                .into_iter()
                .map(|c| CameraAvailability {
                    camera_id: c.camera_id,
                    name: c.name,
                    availability: c.availability,
                    watched_seconds: c.watched_seconds,
                    unwatched_seconds: c.unwatched_seconds,
                    maintenance_seconds: c.maintenance_seconds,
                    since: c.since,
                })
                .collect(),
            dependencies,
            stored: Stored { spans, bytes },
        })
    }
}

/// Where what is known of `[from, …]` starts: not before the history, nor before the
/// camera was first seen; `None` while there is no history at all.
fn known_from(
    from: DateTime<Utc>,
    history: Option<DateTime<Utc>>,
    camera: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let h = history?;
    Some(from.max(h).max(camera.unwrap_or(h)))
}

fn fraction(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| ((part / whole).clamp(0.0, 1.0) * 1e6).round() / 1e6)
}

fn round3(x: f64) -> f64 {
    (x.max(0.0) * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_known_starts_with_the_history_and_the_camera() {
        let t = |s: i64| DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range");
        assert_eq!(
            known_from(t(0), None, Some(t(5))),
            None,
            "no history: nothing known"
        );
        assert_eq!(known_from(t(0), Some(t(10)), Some(t(5))), Some(t(10)));
        assert_eq!(known_from(t(0), Some(t(10)), Some(t(20))), Some(t(20)));
        assert_eq!(known_from(t(30), Some(t(10)), Some(t(20))), Some(t(30)));
    }

    #[test]
    fn a_fraction_of_nothing_known_is_none_never_a_hundred_percent() {
        assert_eq!(fraction(0.0, 0.0), None);
        assert_eq!(fraction(45.0, 60.0), Some(0.75));
        assert_eq!(fraction(61.0, 60.0), Some(1.0));
    }
}
