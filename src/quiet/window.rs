//! Maintenance windows and snoozes (pure): what a window covers (its [`Scope`]) and
//! when ([`When`]: once, or every week on some days at a local time in an IANA zone),
//! and when its occurrences are. Occurrences are computed in the window's zone: a
//! start that a daylight-saving change skips (02:30 on a day without 02:30) begins at
//! the change (03:00); a start that happens twice (a day with two 02:30) begins once,
//! at the first.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
    Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::events::Source;
use crate::names::closed_set;

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Scope {
    /// Every alert.
    Everything,
    /// One camera, by id.
    Camera(String),
    /// The cameras of a group (`cameras.groups`).
    CameraGroup(String),
    /// One dependency: `postgres`, `redis` or an AI service's name.
    Dependency(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Everything => f.write_str("everything"),
            Self::Camera(n) => write!(f, "camera {n}"),
            Self::CameraGroup(n) => write!(f, "camera group {n}"),
            Self::Dependency(n) => f.write_str(n),
        }
    }
}

impl Scope {
    /// Whether an alert about `source` is in this scope; `group_of` names the groups
    /// of a camera.
    pub fn covers(&self, source: &Source, in_group: impl Fn(&str, &str) -> bool) -> bool {
        match (self, source) {
            (Self::Everything, _) => true,
            (Self::Camera(id), Source::Camera(c)) => id == c,
            (Self::CameraGroup(g), Source::Camera(c)) => in_group(g, c),
            (Self::CameraGroup(g), Source::Cause(c)) => c.strip_prefix("camera_group:") == Some(g),
            (Self::Dependency(d), Source::Postgres) => d == "postgres",
            (Self::Dependency(d), Source::Redis) => d == "redis",
            (Self::Dependency(d), Source::Ai(s) | Source::Breaker(s)) => d == s,
            _ => false,
        }
    }

    /// The scope that is what an alert about `source` is about, when a window can
    /// name it (a camera, a camera group's cause, a dependency).
    pub fn of_source(source: &Source) -> Option<Self> {
        Some(match source {
            Source::Camera(c) => Self::Camera(c.clone()),
            Source::Cause(c) => Self::CameraGroup(c.strip_prefix("camera_group:")?.to_string()),
            Source::Postgres => Self::Dependency("postgres".into()),
            Source::Redis => Self::Dependency("redis".into()),
            Source::Ai(s) | Source::Breaker(s) => Self::Dependency(s.clone()),
            _ => return None,
        })
    }

    /// Whether camera `id` is in this scope (coverage records its time as
    /// maintenance).
    pub fn covers_camera(&self, id: &str, in_group: impl Fn(&str, &str) -> bool) -> bool {
        self.covers(&Source::Camera(id.to_string()), in_group)
    }
}

/// When a window is.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Once {
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    Weekly {
        days: Vec<Weekday>,
        start: NaiveTime,
        duration: Duration,
        zone: Tz,
    },
}

/// One occurrence: `[start, end)`.
pub type Occurrence = (DateTime<Utc>, DateTime<Utc>);

/// The instant a local reading names in `zone`: the first of two, or the change
/// itself for a reading a change skips.
pub fn resolve(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(t) = zone.from_local_datetime(&local).earliest() {
        return t.with_timezone(&Utc);
    }
    // In a gap: the first minute that exists after it is the change (gaps are whole
    // minutes, at most a few hours).
    let mut probe = local.with_second(0).unwrap_or(local);
    for _ in 0..(26 * 60) {
        probe += Duration::minutes(1);
        if let Some(t) = zone.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
    }
    // No zone has a gap this long; read it as UTC rather than fail.
    local.and_utc()
}

impl When {
    /// The occurrence that holds at `t`, if any.
    pub fn active_at(&self, t: DateTime<Utc>) -> Option<Occurrence> {
        self.occurrences_around(t)
            .into_iter()
            .find(|(s, e)| *s <= t && t < *e)
    }

    /// The first occurrence that starts after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<Occurrence> {
        self.occurrences_around(t)
            .into_iter()
            .filter(|(s, _)| *s > t)
            .min_by_key(|(s, _)| *s)
    }

    /// Whether no occurrence holds at or after `t`.
    pub fn over_at(&self, t: DateTime<Utc>) -> bool {
        match self {
            Self::Once { ends_at, .. } => *ends_at <= t,
            Self::Weekly { days, .. } => days.is_empty(),
        }
    }

    /// The occurrences that can hold within a week either side of `t` (a duration
    /// is at most a week).
    fn occurrences_around(&self, t: DateTime<Utc>) -> Vec<Occurrence> {
        match self {
            Self::Once { starts_at, ends_at } => vec![(*starts_at, *ends_at)],
            Self::Weekly {
                days,
                start,
                duration,
                zone,
            } => {
                let today = t.with_timezone(zone).date_naive();
                (-8..=8)
                    .filter_map(|k| today.checked_add_signed(Duration::days(k)))
                    .filter(|d: &NaiveDate| days.contains(&d.weekday()))
                    .map(|d| {
                        let s = resolve(*zone, d.and_time(*start));
                        (s, s + *duration)
                    })
                    .collect()
            }
        }
    }
}

closed_set! {
    /// A maintenance window (planned) or a snooze (from now, for a while).
    #[derive(Deserialize)]
    pub enum WindowKind {
        Maintenance = "maintenance",
        Snooze = "snooze",
    }
}

/// One window in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub id: String,
    pub kind: WindowKind,
    pub scope: Scope,
    pub when: When,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    /// From `[[maintenance.windows]]` (cannot be ended through the API).
    pub from_config: bool,
}

/// A day of the week as written in the config and the API (`mon` … `sun`).
pub fn weekday(text: &str) -> Option<Weekday> {
    Some(match text.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn weekly(days: &[Weekday], hm: (u32, u32), minutes: i64, zone: Tz) -> When {
        When::Weekly {
            days: days.to_vec(),
            start: NaiveTime::from_hms_opt(hm.0, hm.1, 0).expect("a time"),
            duration: Duration::minutes(minutes),
            zone,
        }
    }

    const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    #[test]
    fn berlin_spring_forward_starts_a_0230_window_at_0300() {
        // 29 March 2026: 02:00 CET → 03:00 CEST; 02:30 does not exist.
        let w = weekly(&ALL, (2, 30), 60, chrono_tz::Europe::Berlin);
        let (s, e) = w.next_after(utc("2026-03-28T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-03-29T01:00:00Z"), "03:00 CEST");
        assert_eq!(e, utc("2026-03-29T02:00:00Z"));
        // The day before and after: 02:30 local as usual.
        let (s, _) = w.next_after(utc("2026-03-29T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-03-30T00:30:00Z"), "02:30 CEST");
    }

    #[test]
    fn berlin_fall_back_runs_a_0230_window_once() {
        // 25 October 2026: 03:00 CEST → 02:00 CET; 02:30 happens twice.
        let w = weekly(&ALL, (2, 30), 30, chrono_tz::Europe::Berlin);
        let from = utc("2026-10-24T12:00:00Z");
        let (s, e) = w.next_after(from).expect("next");
        assert_eq!(s, utc("2026-10-25T00:30:00Z"), "the first 02:30 (CEST)");
        assert_eq!(e, utc("2026-10-25T01:00:00Z"));
        // The second 02:30 (01:30 UTC) is not a second occurrence.
        assert_eq!(w.active_at(utc("2026-10-25T01:40:00Z")), None);
        let (next, _) = w.next_after(s).expect("the day after");
        assert_eq!(next, utc("2026-10-26T01:30:00Z"), "02:30 CET");
    }

    #[test]
    fn new_york_across_both_changes() {
        // 8 March 2026: 02:00 EST → 03:00 EDT; 1 November 2026: 02:00 EDT → 01:00 EST.
        let w = weekly(&ALL, (2, 15), 30, chrono_tz::America::New_York);
        let (s, _) = w.next_after(utc("2026-03-07T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-03-08T07:00:00Z"), "03:00 EDT, the change");
        let (s, _) = w.next_after(utc("2026-03-08T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-03-09T06:15:00Z"), "02:15 EDT");
        // 01:30 happens twice on 1 November: once, the first (EDT).
        let w = weekly(&ALL, (1, 30), 20, chrono_tz::America::New_York);
        let (s, _) = w.next_after(utc("2026-10-31T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-11-01T05:30:00Z"), "01:30 EDT");
        assert_eq!(
            w.active_at(utc("2026-11-01T06:35:00Z")),
            None,
            "not again at 01:30 EST"
        );
        let (s, _) = w.next_after(utc("2026-11-01T12:00:00Z")).expect("next");
        assert_eq!(s, utc("2026-11-02T06:30:00Z"), "01:30 EST");
    }

    #[test]
    fn a_window_that_spans_midnight_holds_after_it_only_on_its_days() {
        // Saturdays 23:00 for 3 hours, in UTC for clarity.
        let w = weekly(&[Weekday::Sat], (23, 0), 180, chrono_tz::UTC);
        // Saturday 5 December 2026, 23:30 and Sunday 01:30: inside.
        assert!(w.active_at(utc("2026-12-05T23:30:00Z")).is_some());
        let (s, e) = w
            .active_at(utc("2026-12-06T01:30:00Z"))
            .expect("after midnight");
        assert_eq!(
            (s, e),
            (utc("2026-12-05T23:00:00Z"), utc("2026-12-06T02:00:00Z"))
        );
        // Sunday 02:00: over; Friday 23:30: not one of its days.
        assert_eq!(w.active_at(utc("2026-12-06T02:00:00Z")), None);
        assert_eq!(w.active_at(utc("2026-12-04T23:30:00Z")), None);
    }

    #[test]
    fn scopes_cover_what_they_name() {
        let no_group = |_: &str, _: &str| false;
        let porch = Source::Camera("porch".into());
        assert!(Scope::Everything.covers(&porch, no_group));
        assert!(Scope::Camera("porch".into()).covers(&porch, no_group));
        assert!(!Scope::Camera("gate".into()).covers(&porch, no_group));
        assert!(
            Scope::CameraGroup("front".into()).covers(&porch, |g, c| g == "front" && c == "porch")
        );
        assert!(Scope::Dependency("yolo26".into()).covers(&Source::Ai("yolo26".into()), no_group));
        assert!(Scope::Dependency("redis".into()).covers(&Source::Redis, no_group));
        assert!(!Scope::Dependency("redis".into()).covers(&porch, no_group));
        // The scope of an alert's source covers that source.
        for source in [
            porch.clone(),
            Source::Redis,
            Source::Breaker("yolo26".into()),
            Source::Cause("camera_group:front".into()),
        ] {
            let scope = Scope::of_source(&source).expect("a scope");
            assert!(scope.covers(&source, no_group), "{scope} covers {source}");
        }
        assert_eq!(
            Scope::of_source(&Source::Worker("cleanup_service".into())),
            None
        );
    }
}
