//! How a window is written down: in the config (`[[maintenance.windows]]`), in a
//! request to the API, and in its stored row; and the errors of reading one.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::{weekday, Scope, When, Window, WindowKind};
use crate::config::RecurringWindow;
use crate::store::{StoreError, WindowRow};

/// How a window's schedule is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Schedule {
    Once {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Weekly {
        days: Vec<String>,
        start: String,
        duration_seconds: f64,
        timezone: String,
    },
}

/// A window asked for through the API.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// `maintenance` (default) or `snooze` (starts now; needs an end).
    pub kind: Option<WindowKind>,
    pub scope: Scope,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    /// Weekly: `mon` … `sun`, with `start` (`HH:MM`) and `timezone`.
    pub days: Option<Vec<String>>,
    pub start: Option<String>,
    pub timezone: Option<String>,
    pub comment: Option<String>,
}

impl NewWindow {
    /// A snooze of `scope` from now for `seconds`.
    pub fn snooze(scope: Scope, seconds: f64, comment: String) -> Self {
        Self {
            kind: Some(WindowKind::Snooze),
            scope,
            starts_at: None,
            ends_at: None,
            duration_seconds: Some(seconds),
            days: None,
            start: None,
            timezone: None,
            comment: Some(comment),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QuietError {
    #[error("{0}")]
    Invalid(String),
    #[error("No maintenance window or snooze {0:?}")]
    Unknown(String),
    #[error(
        "The window {0:?} comes from the config file ([[maintenance.windows]]); change it there"
    )]
    FromConfig(String),
    #[error("Windows are kept in PostgreSQL, which is unreachable: {0}; nothing was changed")]
    Unavailable(#[from] StoreError),
}

pub(super) fn invalid(s: impl Into<String>) -> QuietError {
    QuietError::Invalid(s.into())
}

/// The scope a config window names (`camera:porch`, checked at load).
fn scope_of(text: &str) -> Scope {
    match text.split_once(':') {
        Some(("camera", n)) => Scope::Camera(n.into()),
        Some(("camera_group", n)) => Scope::CameraGroup(n.into()),
        Some(("dependency", n)) => Scope::Dependency(n.into()),
        _ => Scope::Everything,
    }
}

pub(super) fn weekly(
    days: &[String],
    start: &str,
    seconds: f64,
    zone: &str,
) -> Result<When, QuietError> {
    let days = days
        .iter()
        .map(|d| {
            weekday(d).ok_or_else(|| {
                invalid(format!(
                    "'days' must name days of the week as mon … sun (got {d:?})"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if days.is_empty() {
        return Err(invalid("'days' must name at least one day"));
    }
    let start = NaiveTime::parse_from_str(start, "%H:%M").map_err(|_| {
        invalid(format!(
            "'start' must be a local time as HH:MM (got {start:?})"
        ))
    })?;
    let zone = if zone.is_empty() { "UTC" } else { zone };
    let zone: chrono_tz::Tz = zone.parse().map_err(|_| {
        invalid(format!(
            "'timezone' must be an IANA zone such as Europe/Berlin (got {zone:?})"
        ))
    })?;
    if !(seconds.is_finite() && (60.0..=7.0 * 86_400.0).contains(&seconds)) {
        return Err(invalid(
            "'duration_seconds' must be from 60 to 604800 (7 days)",
        ));
    }
    Ok(When::Weekly {
        days,
        start,
        duration: Duration::milliseconds((seconds * 1000.0) as i64),
        zone,
    })
}

pub(super) fn from_config(i: usize, w: &RecurringWindow) -> Option<Window> {
    Some(Window {
        id: format!("config-{i}"),
        kind: WindowKind::Maintenance,
        scope: scope_of(&w.scope),
        when: weekly(&w.days, &w.start, w.duration_seconds, &w.timezone).ok()?,
        comment: if w.comment.is_empty() {
            w.name.clone()
        } else {
            format!("{}: {}", w.name, w.comment)
        },
        created_at: DateTime::UNIX_EPOCH,
        from_config: true,
    })
}

pub(super) fn from_row(r: WindowRow) -> Option<Window> {
    let schedule: Schedule = serde_json::from_value(r.schedule).ok()?;
    let when = match schedule {
        Schedule::Once { starts_at, ends_at } => When::Once {
            starts_at,
            ends_at: r.ended_at.map_or(ends_at, |e| e.min(ends_at)),
        },
        Schedule::Weekly { .. } if r.ended_at.is_some() => return None,
        Schedule::Weekly {
            days,
            start,
            duration_seconds,
            timezone,
        } => weekly(&days, &start, duration_seconds, &timezone).ok()?,
    };
    Some(Window {
        id: r.id,
        kind: WindowKind::parse(&r.kind)?,
        scope: serde_json::from_value(r.scope).ok()?,
        when,
        comment: r.comment,
        created_at: r.created_at,
        from_config: false,
    })
}

fn schedule_of(when: &When) -> Schedule {
    match when {
        When::Once { starts_at, ends_at } => Schedule::Once {
            starts_at: *starts_at,
            ends_at: *ends_at,
        },
        When::Weekly {
            days,
            start,
            duration,
            zone,
        } => Schedule::Weekly {
            days: days
                .iter()
                .map(|d| d.to_string().to_ascii_lowercase())
                .collect(),
            start: start.format("%H:%M").to_string(),
            duration_seconds: duration.num_milliseconds() as f64 / 1000.0,
            timezone: zone.name().to_string(),
        },
    }
}

pub(super) fn row(w: &Window, ended_at: Option<DateTime<Utc>>) -> WindowRow {
    WindowRow {
        id: w.id.clone(),
        kind: w.kind.as_str().to_string(),
        // Serialising these plain structs cannot fail.
        scope: serde_json::to_value(&w.scope).unwrap_or_default(),
        schedule: serde_json::to_value(schedule_of(&w.when)).unwrap_or_default(),
        comment: w.comment.clone(),
        created_at: w.created_at,
        ended_at,
    }
}
