//! `[coverage]`: which minutes went unwatched, and how long that is remembered.

use serde::{Deserialize, Serialize};

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CoverageConfig {
    /// Stored gaps and outages are kept this many days (the longest window asked is
    /// 90 days).
    pub retention_days: u32,
    /// Two gaps of the same cause closer together than this, or one of them shorter,
    /// are shown as one (a gap is never dropped, nor joined to another cause). 0: as
    /// recorded.
    pub min_gap_seconds: f64,
    /// A small local file written every second with the time (and the gaps open): at
    /// start, the time since it is recorded as `watchpost_down`.
    pub heartbeat_path: String,
}

impl Default for CoverageConfig {
    fn default() -> Self {
        Self {
            retention_days: 90,
            min_gap_seconds: 0.0,
            heartbeat_path: "./data/heartbeat.json".into(),
        }
    }
}

impl CoverageConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.count(
            "coverage.retention_days",
            self.retention_days.into(),
            1,
            3650,
        );
        c.seconds("coverage.min_gap_seconds", self.min_gap_seconds);
        c.check(
            !self.heartbeat_path.trim().is_empty(),
            "coverage.heartbeat_path",
            "must be a file path",
        );
    }
}
