//! What keeps images from becoming detections and events right now (pure): from the
//! cameras as the registry lists them and the latest health assessment, the set of
//! conditions that hold, each with when it began and why.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::span::{Cause, Subject};
use crate::breaker::BreakerState;
use crate::cameras::CameraSummary;
use crate::events::{CameraStatus, HealthState};
use crate::health::FullHealth;
use crate::names::workers;
use crate::quiet::Quiet;

/// The AI service that detects, and the one that analyses.
const DETECTION_SERVICE: &str = "yolo26";
const ANALYSIS_SERVICE: &str = "nemotron";

/// One condition that holds: since when, and why in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Holds {
    pub since: DateTime<Utc>,
    pub detail: String,
}

pub type Conditions = BTreeMap<(Subject, Cause), Holds>;

/// The cameras' conditions. A camera offline is unwatched from its last image (not
/// from when it was judged offline), one frozen or disabled from when it became so.
pub fn of_cameras(cameras: &[CameraSummary], into: &mut Conditions) {
    for c in cameras {
        let cause = match c.status {
            CameraStatus::Offline => Cause::CameraOffline,
            CameraStatus::Frozen => Cause::CameraFrozen,
            CameraStatus::Disabled => Cause::CameraDisabled,
            CameraStatus::Online | CameraStatus::Stale | CameraStatus::Flooding => continue,
        };
        let since = match (cause, c.last_image_at) {
            (Cause::CameraOffline, Some(t)) => t.min(c.status_since),
            _ => c.status_since,
        };
        into.insert(
            (Subject::Camera(c.id.clone()), cause),
            Holds {
                since,
                detail: c.reason.clone(),
            },
        );
    }
}

/// The cameras a maintenance window or snooze covers now.
pub fn of_maintenance(
    cameras: &[CameraSummary],
    quiet: &Quiet,
    now: DateTime<Utc>,
    into: &mut Conditions,
) {
    for c in cameras {
        let holding = quiet.holding(&crate::events::Source::Camera(c.id.clone()), now);
        if !holding.is_empty() {
            into.insert(
                (Subject::Camera(c.id.clone()), Cause::Maintenance),
                Holds {
                    since: now,
                    detail: format!("in maintenance ({})", holding.join(", ")),
                },
            );
        }
    }
}

/// The pipeline's and the dependencies' conditions, seen at `now`: the file watcher,
/// detection (YOLO26, its breaker, the detection worker), analysis (Nemotron, its
/// breaker, the batch aggregator, the analysis worker), and every dependency that is
/// unhealthy.
pub fn of_health(h: &FullHealth, now: DateTime<Utc>, into: &mut Conditions) {
    let mut hold = |subject: Subject, cause: Cause, detail: String| {
        into.entry((subject, cause))
            .or_insert(Holds { since: now, detail });
    };
    for w in h.workers.iter().filter(|w| !w.running) {
        let cause = match w.name.as_str() {
            workers::FILE_WATCHER => Cause::WatcherDown,
            workers::DETECTION_WORKER => Cause::DetectionDown,
            workers::ANALYSIS_WORKER | workers::BATCH_AGGREGATOR => Cause::AnalysisDown,
            _ => continue,
        };
        hold(
            Subject::Pipeline,
            cause,
            format!("worker {} not running", w.name),
        );
    }
    for s in &h.ai_services {
        let down = s.status == HealthState::Unhealthy;
        let open = s.circuit_state == BreakerState::Open;
        if !down && !open {
            continue;
        }
        let why = if down {
            format!(
                "{} unavailable ({})",
                s.display_name,
                s.error.as_deref().unwrap_or("no answer")
            )
        } else {
            format!("{}'s circuit breaker open", s.display_name)
        };
        if down {
            hold(
                Subject::Dependency(s.name.clone()),
                Cause::DependencyDown,
                why.clone(),
            );
        }
        match s.name.as_str() {
            DETECTION_SERVICE => hold(Subject::Pipeline, Cause::DetectionDown, why),
            ANALYSIS_SERVICE => hold(Subject::Pipeline, Cause::AnalysisDown, why),
            _ => {}
        }
    }
    for (name, i) in [("postgres", &h.postgres), ("redis", &h.redis)] {
        if i.status == HealthState::Unhealthy {
            hold(
                Subject::Dependency(name.into()),
                Cause::DependencyDown,
                format!("{} unavailable ({})", i.name, i.message),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    fn camera(id: &str, status: CameraStatus, since: i64, last: Option<i64>) -> CameraSummary {
        CameraSummary {
            id: id.into(),
            host: "here".into(),
            fleet_id: id.into(),
            folder: id.into(),
            status,
            status_since: at(since),
            reason: format!("{} since {since}", status.as_str()),
            last_image_at: last.map(at),
            last_image_path: None,
            images_last_hour: 0,
            expected_silence_seconds: 60.0,
            hourly_images: None,
        }
    }

    #[test]
    fn an_offline_camera_is_unwatched_from_its_last_image_others_from_their_change() {
        let mut c = Conditions::new();
        of_cameras(
            &[
                camera("porch", CameraStatus::Offline, 100, Some(40)),
                camera("gate", CameraStatus::Frozen, 90, Some(95)),
                camera("shed", CameraStatus::Disabled, 80, None),
                camera("yard", CameraStatus::Stale, 70, Some(60)),
                camera("road", CameraStatus::Flooding, 70, Some(99)),
            ],
            &mut c,
        );
        let got: Vec<(String, Cause, DateTime<Utc>)> = c
            .iter()
            .map(|((s, cause), h)| (format!("{s:?}"), *cause, h.since))
            .collect();
        assert_eq!(
            got,
            [
                ("Camera(\"gate\")".to_string(), Cause::CameraFrozen, at(90)),
                (
                    "Camera(\"porch\")".to_string(),
                    Cause::CameraOffline,
                    at(40)
                ),
                (
                    "Camera(\"shed\")".to_string(),
                    Cause::CameraDisabled,
                    at(80)
                ),
            ],
            "stale and flooding cameras are still watched"
        );
    }
}
