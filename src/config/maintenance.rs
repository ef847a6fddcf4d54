//! `[maintenance]`: the longest snooze, and the recurring maintenance windows
//! (`[[maintenance.windows]]`; one-off windows and snoozes are made through the API).

use serde::{Deserialize, Serialize};

use super::check::Checks;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Every snooze ends, at the latest this long after it began (7 days).
    pub max_snooze_seconds: f64,
    pub windows: Vec<RecurringWindow>,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            max_snooze_seconds: 7.0 * 86_400.0,
            windows: Vec::new(),
        }
    }
}

/// A window every week on `days` at `start` (local time in `timezone`), for
/// `duration_seconds`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RecurringWindow {
    pub name: String,
    /// `everything`, `camera:<id>`, `camera_group:<name>` or `dependency:<name>`.
    pub scope: String,
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`.
    pub start: String,
    pub duration_seconds: f64,
    /// An IANA zone name (`Europe/Berlin`); empty: `UTC`.
    pub timezone: String,
    pub comment: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Whether `scope` is written as the config takes it.
pub fn is_scope_text(scope: &str) -> bool {
    if scope == "everything" {
        return true;
    }
    let Some((kind, name)) = scope.split_once(':') else {
        return false;
    };
    matches!(kind, "camera" | "camera_group" | "dependency")
        && (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl MaintenanceConfig {
    pub(super) fn validate(&self, c: &mut Checks) {
        c.check(
            self.max_snooze_seconds.is_finite()
                && (60.0..=366.0 * 86_400.0).contains(&self.max_snooze_seconds),
            "maintenance.max_snooze_seconds",
            "must be a number of seconds from 60 to a year",
        );
        c.count("maintenance.windows", self.windows.len() as u64, 0, 64);
        for (i, w) in self.windows.iter().enumerate() {
            let key = format!("maintenance.windows[{i}]");
            c.check(
                (1..=64).contains(&w.name.len()),
                &format!("{key}.name"),
                "must be 1 to 64 characters",
            );
            c.check(
                is_scope_text(&w.scope),
                &format!("{key}.scope"),
                "must be everything, camera:<id>, camera_group:<name> or dependency:<name>",
            );
            c.check(
                !w.days.is_empty()
                    && w.days
                        .iter()
                        .all(|d| DAYS.contains(&d.to_ascii_lowercase().as_str())),
                &format!("{key}.days"),
                "must list days of the week as mon, tue, wed, thu, fri, sat or sun",
            );
            c.check(
                chrono::NaiveTime::parse_from_str(&w.start, "%H:%M").is_ok(),
                &format!("{key}.start"),
                "must be a local time of day as HH:MM",
            );
            c.check(
                w.duration_seconds.is_finite()
                    && (60.0..=7.0 * 86_400.0).contains(&w.duration_seconds),
                &format!("{key}.duration_seconds"),
                "must be a number of seconds from 60 to 7 days",
            );
            c.check(
                w.timezone.is_empty() || w.timezone.parse::<chrono_tz::Tz>().is_ok(),
                &format!("{key}.timezone"),
                "must be an IANA time zone name such as Europe/Berlin",
            );
        }
    }
}
