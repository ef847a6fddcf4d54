//! Problem sources: what can go wrong, said by each capability that knows. The
//! engine takes the list (registered at start) and asks each, every evaluation,
//! for the problems present now. A source that cannot judge yet (no probe round,
//! the cameras not read back, no sample) answers `None`, and the engine keeps the
//! alerts of its kinds as they are. A new kind of problem is one source here and one
//! registration line (`service.rs`). (The sources read their capability; they live
//! here because every capability is on a floor below the alerts.)

use std::sync::Arc;

use super::alert::Candidate;
use crate::ai::{AiClients, Pace};
use crate::cameras::CameraRegistry;
use crate::events::{Source, SourceKind};
use crate::fleet::Fleet;
use crate::health::Health;
use crate::perf::sampler::PerfSampler;
use crate::storage::{Storage, CAMERA_ROOT};

/// A volume forecast full soon.
pub const FILLING_UP: &str = "WatchpostStorageFillingUp";

pub trait ProblemSource: Send + Sync {
    /// The kinds of source its alerts are about.
    fn kinds(&self) -> &'static [SourceKind];
    /// The problems present now; `None` while it cannot judge.
    fn problems(&self) -> Option<Vec<Candidate>>;
}

/// The health assessment: PostgreSQL, Redis, the AI services, the workers and the
/// breakers (the prober's last round, no I/O).
pub struct HealthProblems(pub Arc<Health>);

impl ProblemSource for HealthProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[
            SourceKind::Postgres,
            SourceKind::Redis,
            SourceKind::Ai,
            SourceKind::Worker,
            SourceKind::Breaker,
        ]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        let h = self.0.latest()?;
        Some(
            h.problems
                .iter()
                .map(|(source, p)| Candidate::from_problem(source, p.critical, &p.message))
                .collect(),
        )
    }
}

/// The cameras: offline, frozen, flooding.
pub struct CameraProblems(pub Arc<CameraRegistry>);

impl ProblemSource for CameraProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[SourceKind::Camera]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        Some(
            self.0
                .problems()?
                .iter()
                .map(Candidate::for_camera)
                .collect(),
        )
    }
}

/// Storage: the disk of the camera folder at or above
/// `performance.thresholds.disk_percent_*` fires `WatchpostDiskSpaceLow` (warning,
/// or critical) about `storage:camera_root`, from the sampler's latest sample.
/// The disk of the camera folder past its thresholds (the performance sampler), and
/// every volume forecast full within `storage.alert_lead_seconds` (the storage
/// sampler: `WatchpostStorageFillingUp`).
pub struct StorageProblems(pub Arc<PerfSampler>, pub Arc<Storage>);

impl ProblemSource for StorageProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[SourceKind::Storage]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        let s = self.0.latest()?;
        let now = crate::time::now();
        let filling = self.1.filling_up(now).into_iter().map(|v| {
            let left = v.full_at.map_or(0, |at| (at - now).num_seconds().max(0));
            Candidate::from_problem(
                &Source::Storage(v.name.into()),
                false,
                &format!(
                    "The volume {} ({}) is forecast full in {} (at {}), growing {:.1} MiB an hour",
                    v.name,
                    crate::redact::text(&v.path),
                    crate::time::human_seconds(left as f64),
                    v.full_at.map_or_else(String::new, |t| t
                        .format("%Y-%m-%d %H:%M:%S UTC")
                        .to_string()),
                    v.growth_bytes_per_hour.unwrap_or(0.0) / (1024.0 * 1024.0)
                ),
            )
            .named(FILLING_UP)
        });
        Some(
            s.alerts
                .iter()
                .filter(|a| a.metric == "disk_percent")
                .map(|a| {
                    Candidate::from_problem(
                        &Source::Storage(CAMERA_ROOT.into()),
                        a.severity == "critical",
                        &format!(
                            "The disk of the camera folder is {:.1}% full, at or above the {} threshold of {}%",
                            a.value, a.severity, a.threshold
                        ),
                    )
                })
                .chain(filling)
                .collect(),
        )
    }
}

/// An AI service that took a request and does not answer (`WatchpostAIStuck`:
/// critical for a critical service), or that answers ten times slower than it did
/// (`WatchpostAISlow`, a warning): `ai::Paces`, from memory.
pub struct AiPaceProblems(pub Arc<AiClients>);

/// A service that does not answer a request it took.
pub const AI_STUCK: &str = "WatchpostAIStuck";
/// A service that answers, far slower than it did.
pub const AI_SLOW: &str = "WatchpostAISlow";

impl ProblemSource for AiPaceProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[SourceKind::Ai]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        let critical: std::collections::HashSet<&str> = self
            .0
            .services()
            .iter()
            .filter(|s| s.critical)
            .map(|s| s.name)
            .collect();
        let secs = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |s| format!("{s:.2} s"));
        Some(
            self.0
                .paces()
                .into_iter()
                .filter_map(|v| {
                    let source = Source::Ai(v.service.clone());
                    match v.pace {
                        Pace::Normal => None,
                        Pace::Stuck => Some(
                            Candidate::from_problem(
                                &source,
                                critical.contains(v.service.as_str()),
                                &format!(
                                    "{} has had a request in flight for {:.0} s without an answer (stuck after {:.0} s: the larger of ai.stuck_factor × its p99 of the last hour, {}, and ai.stuck_floor_seconds)",
                                    v.service,
                                    v.oldest_request_seconds.unwrap_or(0.0),
                                    v.stuck_after_seconds,
                                    secs(v.p99_hour_seconds)
                                ),
                            )
                            .named(AI_STUCK),
                        ),
                        Pace::Slow => Some(
                            Candidate::from_problem(
                                &source,
                                false,
                                &format!(
                                    "{} answers, but slowly: {} (median of the last 5 minutes) against {} in the hour before",
                                    v.service,
                                    secs(v.median_recent_seconds),
                                    secs(v.median_before_seconds)
                                ),
                            )
                            .named(AI_SLOW),
                        ),
                    }
                })
                .collect(),
        )
    }
}

/// Another instance of the fleet lost (no heartbeat for `fleet.lost_after_seconds`):
/// `WatchpostInstanceLost`, from the fleet's latest judgement (memory). Every
/// instance decides it; the shared history and the claims make it one alert and one
/// notification.
pub struct FleetProblems(pub Arc<Fleet>);

impl ProblemSource for FleetProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[SourceKind::Instance]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        Some(
            self.0
                .lost()
                .iter()
                .map(|v| {
                    Candidate::from_problem(
                        &Source::Instance(v.id.clone()),
                        false,
                        &format!(
                            "The instance {} ({}) has not been heard from for {}: its analysis work is taken over by the others; detection items of pictures only it sees wait for it",
                            v.id,
                            v.address,
                            crate::time::human_seconds(v.heartbeat_age_seconds)
                        ),
                    )
                })
                .collect(),
        )
    }
}
