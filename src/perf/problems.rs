//! What can go wrong with storage, as a problem source of the alert engine: the
//! disk of the camera folder at or above `performance.thresholds.disk_percent_*`
//! fires `WatchpostDiskSpaceLow` (warning, or critical) about `storage:camera_root`.
//! Judged from the sampler's latest sample (no I/O).

use std::sync::Arc;

use super::sampler::PerfSampler;
use crate::alerts::{Candidate, ProblemSource};
use crate::events::{Source, SourceKind};

/// The volume the thresholds are measured on.
pub const CAMERA_ROOT: &str = "camera_root";

pub struct StorageProblems(pub Arc<PerfSampler>);

impl ProblemSource for StorageProblems {
    fn kinds(&self) -> &'static [SourceKind] {
        &[SourceKind::Storage]
    }

    fn problems(&self) -> Option<Vec<Candidate>> {
        let s = self.0.latest()?;
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
                .collect(),
        )
    }
}
