//! The log line of a change of the service's health, in words a user reads.

use crate::health::degradation::Mode;
use crate::health::{FullHealth, HealthState};

/// `health: healthy → unhealthy (postgres unhealthy (…)); mode stays normal`: what
/// changed, in words a user reads.
pub fn health_change_line(
    before: HealthState,
    now: &FullHealth,
    mode_before: Mode,
    mode: Mode,
) -> String {
    let why = now
        .message
        .split_once(": ")
        .map_or(now.message.as_str(), |(_, rest)| rest);
    let mode = if mode_before == mode {
        format!("mode stays {}", mode.as_str())
    } else {
        format!("mode {} → {}", mode_before.as_str(), mode.as_str())
    };
    format!(
        "health: {} → {} ({why}); {mode}",
        before.as_str(),
        now.status.as_str()
    )
}
