//! Wall-clock timestamps as the API shows them: UTC, at most microsecond precision, so
//! every ISO-8601 string carries at most 6 fractional digits (clients such as Python's
//! `datetime.fromisoformat` before 3.11 reject more).

use chrono::{DateTime, SecondsFormat, SubsecRound, TimeZone, Utc};

/// Now, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The one way a timestamp is written as text: UTC with `Z`, at most 6 fractional
/// digits (`2025-12-27T10:30:00Z`, `…:00.123456Z`). Serialised `DateTime<Utc>` fields
/// look the same, as long as their value has at most microseconds ([`now`], [`parse`]).
pub fn iso(t: DateTime<Utc>) -> String {
    t.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An RFC 3339 timestamp from elsewhere (Prometheus writes nanoseconds and offsets),
/// in UTC and truncated to microseconds.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc).trunc_subsecs(6))
}

/// Now as unix seconds with microsecond precision.
pub fn now_unix() -> f64 {
    to_unix(now())
}

pub fn to_unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 1e6
}

/// Unix seconds → timestamp (microsecond precision); out-of-range values give now.
pub fn unix_to_datetime(secs: f64) -> DateTime<Utc> {
    Utc.timestamp_micros((secs * 1e6) as i64)
        .single()
        .unwrap_or_else(now)
}

/// Serialise a number of seconds as an integer when it is whole (`90`, not `90.0`), as
/// the API contract shows durations; fractional values stay fractional.
pub fn whole_seconds<S: serde::Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        s.serialize_i64(*value as i64)
    } else {
        s.serialize_f64(*value)
    }
}

/// A duration in seconds as a person writes it: `2`, `0.5`, `1.25`.
pub fn seconds_text(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{}", (s * 1000.0).round() / 1000.0)
    }
}

/// A length of time as a person says it: `45 s`, `31 min`, `2 h 4 min`, `3 d 2 h`.
pub fn span_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=99 => format!("{s} s"),
        100..=5_999 => format!("{} min", (s + 30) / 60),
        6_000..=172_799 => {
            let m = (s + 30) / 60;
            match m % 60 {
                0 => format!("{} h", m / 60),
                r => format!("{} h {r} min", m / 60),
            }
        }
        _ => {
            let h = (s + 1_800) / 3_600;
            match h % 24 {
                0 => format!("{} d", h / 24),
                r => format!("{} d {r} h", h / 24),
            }
        }
    }
}

/// For tests on tokio's paused clock: poll `done` every `step` of virtual time and
/// panic once `limit` of virtual time has passed without it, so a regression fails
/// the test instead of hanging the suite.
/// Exponential backoff, the one used everywhere (worker restarts, AI retries,
/// notifier retries): the wait before try `n` (counted from 0) is `base · 2ⁿ`, at most
/// `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: std::time::Duration,
    pub max: std::time::Duration,
}

impl Backoff {
    pub fn new(base: std::time::Duration, max: std::time::Duration) -> Self {
        Self { base, max }
    }

    /// The wait after `n` failures in a row (0: `base`).
    pub fn after(&self, n: u32) -> std::time::Duration {
        let factor = 2f64.powi(n.min(62) as i32);
        let secs = (self.base.as_secs_f64() * factor).min(self.max.as_secs_f64());
        std::time::Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.max)
    }
}

/// A span of seconds as people say it: `3 h 5 min`, `12 min`, `40 s`.
pub fn human_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
pub(crate) async fn until_within(
    limit: std::time::Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let step = std::time::Duration::from_millis(100);
    let started = tokio::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() <= limit,
            "not within {limit:?} of virtual time: {what}"
        );
        tokio::time::sleep(step).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(span_text(45.0), "45 s");
        assert_eq!(span_text(1_860.0), "31 min");
        assert_eq!(span_text(7_440.0), "2 h 4 min");
        assert_eq!(span_text(7_200.0), "2 h");
        assert_eq!(span_text(266_400.0), "3 d 2 h");
    }

    #[test]
    fn timestamps_have_at_most_six_fractional_digits() {
        let text = serde_json::to_string(&now()).expect("json");
        let frac = text
            .trim_matches('"')
            .trim_end_matches('Z')
            .split('.')
            .nth(1)
            .unwrap_or("");
        assert!(frac.len() <= 6, "{text}");
        let t = unix_to_datetime(1_703_678_400.123_456_7);
        assert_eq!(t.timestamp_subsec_micros(), 123_456);
    }

    #[test]
    fn whole_durations_serialise_as_integers() {
        #[derive(serde::Serialize)]
        struct D {
            #[serde(serialize_with = "whole_seconds")]
            a: f64,
            #[serde(serialize_with = "whole_seconds")]
            b: f64,
        }
        let text = serde_json::to_string(&D { a: 90.0, b: 1.5 }).expect("json");
        assert_eq!(text, r#"{"a":90,"b":1.5}"#);
    }

    #[test]
    fn backoff_doubles_from_its_base_up_to_its_ceiling() {
        let b = Backoff::new(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(30),
        );
        let waits: Vec<u64> = (0..7).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.after(u32::MAX).as_secs(), 30);
        let small = Backoff::new(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(3600),
        );
        assert_eq!(small.after(2), std::time::Duration::from_millis(200));
    }
}
