//! `[fleet]`: several instances on one Redis and PostgreSQL — how often each says it
//! is alive, and when an instance that stopped saying so counts as lost. (Each
//! instance's id is `server.instance_id`.)

use serde::{Deserialize, Serialize};

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// Each instance writes its record this often (and reads the others').
    pub heartbeat_seconds: f64,
    /// An instance whose record is older is lost: its pending work that others can
    /// do is taken over, and `WatchpostInstanceLost` fires.
    pub lost_after_seconds: f64,
    /// A lost instance is forgotten after this long.
    pub forget_after_seconds: f64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            heartbeat_seconds: 1.0,
            lost_after_seconds: 30.0,
            forget_after_seconds: 86_400.0,
        }
    }
}

impl FleetConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.heartbeat_seconds.is_finite() && (0.2..=60.0).contains(&self.heartbeat_seconds),
            "fleet.heartbeat_seconds",
            "must be between 0.2 and 60 seconds",
        );
        c.check(
            self.lost_after_seconds.is_finite()
                && self.lost_after_seconds >= 3.0 * self.heartbeat_seconds
                && self.lost_after_seconds <= 86_400.0,
            "fleet.lost_after_seconds",
            "must be at least three heartbeats and at most a day",
        );
        c.check(
            self.forget_after_seconds.is_finite()
                && self.forget_after_seconds >= self.lost_after_seconds
                && self.forget_after_seconds <= 30.0 * 86_400.0,
            "fleet.forget_after_seconds",
            "must be at least lost_after_seconds and at most 30 days",
        );
    }
}
