//! Problem sources: what can go wrong, said by each capability that knows. The
//! engine takes the list (registered at start) and asks each, every evaluation,
//! for the problems present now. A source that cannot judge yet (no probe round,
//! the cameras not read back, no sample) answers `None`, and the engine keeps the
//! alerts of its kinds as they are. A new kind of problem is one source and one
//! registration line (`service.rs`).

use std::sync::Arc;

use super::alert::Candidate;
use crate::cameras::CameraRegistry;
use crate::events::SourceKind;
use crate::health::Health;

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
