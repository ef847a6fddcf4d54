//! Windows as the API shows them: schedule, whether each holds now, its current
//! and next occurrence.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::window::{Occurrence, Scope, When, Window, WindowKind};

/// A window as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WindowView {
    pub id: String,
    pub kind: WindowKind,
    pub scope: Scope,
    pub comment: String,
    /// `api` or `config`.
    pub origin: &'static str,
    /// A one-off window's start and end.
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// A weekly window's days, local start and zone.
    pub days: Option<Vec<String>>,
    pub start: Option<String>,
    pub timezone: Option<String>,
    pub duration_seconds: f64,
    /// Whether it holds now, and its current and next occurrences.
    pub active: bool,
    pub current: Option<Span>,
    pub next: Option<Span>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl From<Occurrence> for Span {
    fn from((start, end): Occurrence) -> Self {
        Self { start, end }
    }
}

pub fn view(w: &Window, now: DateTime<Utc>) -> WindowView {
    let current = w.when.active_at(now);
    let (starts_at, ends_at, days, start, timezone, seconds) = match &w.when {
        When::Once { starts_at, ends_at } => (
            Some(*starts_at),
            Some(*ends_at),
            None,
            None,
            None,
            (*ends_at - *starts_at).num_milliseconds() as f64 / 1000.0,
        ),
        When::Weekly {
            days,
            start,
            duration,
            zone,
        } => (
            None,
            None,
            Some(
                days.iter()
                    .map(|d| d.to_string().to_ascii_lowercase())
                    .collect(),
            ),
            Some(start.format("%H:%M").to_string()),
            Some(zone.name().to_string()),
            duration.num_milliseconds() as f64 / 1000.0,
        ),
    };
    WindowView {
        id: w.id.clone(),
        kind: w.kind,
        scope: w.scope.clone(),
        comment: w.comment.clone(),
        origin: if w.from_config { "config" } else { "api" },
        starts_at,
        ends_at,
        days,
        start,
        timezone,
        duration_seconds: seconds,
        active: current.is_some(),
        current: current.map(Span::from),
        next: w.when.next_after(now).map(Span::from),
    }
}
