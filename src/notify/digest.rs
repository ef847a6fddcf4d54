//! The daily digest (`notify.digest_time`, local time): one message to every notifier
//! with yesterday's availability per camera, its gaps over five minutes with their
//! cause, the security events by risk level and the alerts that fired. Built from
//! PostgreSQL (the coverage answer and two counts), claimed once across instances
//! (`Store::claim_once`), and written to each notifier's outbox like a transition,
//! so it is delivered, retried and kept across a restart the same way.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Local, NaiveDate, NaiveTime, TimeZone, Utc};

use super::message;
use crate::alerts::{Alert, Candidate, Source};
use crate::coverage::{CameraCoverage, Coverage, CoverageError};
use crate::events::Severity;
use crate::store::{Store, StoreError};

/// Gaps at least this long are listed one by one.
const LISTED_GAP_SECONDS: f64 = 300.0;
/// How long to wait before trying again when PostgreSQL cannot answer.
const RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one day's digest says.
#[derive(Debug, Clone)]
pub struct Digest {
    pub day: NaiveDate,
    pub cameras: Vec<CameraCoverage>,
    pub events_by_risk: Vec<(String, i64)>,
    pub alerts_fired: Vec<(String, i64)>,
}

/// Local midnight of `day` (the earliest, should a zone repeat it; an hour later,
/// should a zone skip it).
fn midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_time(NaiveTime::MIN);
    Local
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            Local
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| naive.and_utc(), |t| t.with_timezone(&Utc))
}

/// The next time the digest is due after `now`: today at `at` if still ahead, else
/// tomorrow (a time a daylight-saving change skips is taken an hour later).
pub fn next_due(at: NaiveTime, now: DateTime<Local>) -> DateTime<Local> {
    let mut day = now.date_naive();
    loop {
        let naive = day.and_time(at);
        let t = Local.from_local_datetime(&naive).earliest().or_else(|| {
            Local
                .from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        });
        if let Some(t) = t.filter(|t| *t > now) {
            return t;
        }
        day = day.succ_opt().unwrap_or(day);
        if day == now.date_naive() {
            // The last representable day: nothing is ever due.
            return now + chrono::Duration::days(36_500);
        }
    }
}

/// What a digest says, in words: a one-line summary and the body.
pub fn words(d: &Digest) -> (String, String) {
    let known: Vec<&CameraCoverage> = d
        .cameras
        .iter()
        .filter(|c| c.availability.is_some())
        .collect();
    let mean = if known.is_empty() {
        None
    } else {
        Some(known.iter().filter_map(|c| c.availability).sum::<f64>() / known.len() as f64)
    };
    let events: i64 = d.events_by_risk.iter().map(|(_, n)| n).sum();
    let alerts: i64 = d.alerts_fired.iter().map(|(_, n)| n).sum();
    let summary = format!(
        "{}: {} camera{}, {} watched, {events} event{}, {alerts} alert{} fired",
        d.day.format("%a %-d %b %Y"),
        d.cameras.len(),
        plural(d.cameras.len() as i64),
        mean.map_or("nothing".to_string(), percent),
        plural(events),
        plural(alerts),
    );
    let mut body = format!("Watched on {}:\n", d.day.format("%A %-d %B %Y"));
    for c in &d.cameras {
        match c.availability {
            Some(a) => body.push_str(&format!(
                "- {}: {} (unwatched {}{})\n",
                c.name,
                percent(a),
                crate::time::span_text(c.unwatched_seconds),
                if c.maintenance_seconds > 0.0 {
                    format!(
                        ", in maintenance {}",
                        crate::time::span_text(c.maintenance_seconds)
                    )
                } else {
                    String::new()
                }
            )),
            None => body.push_str(&format!("- {}: not watched by watchpost yet\n", c.name)),
        }
    }
    let long: Vec<(&str, &crate::coverage::Gap)> = d
        .cameras
        .iter()
        .flat_map(|c| c.gaps.iter().map(move |g| (c.name.as_str(), g)))
        .filter(|(_, g)| g.seconds() >= LISTED_GAP_SECONDS)
        .collect();
    if long.is_empty() {
        body.push_str("No gap over 5 minutes.\n");
    } else {
        body.push_str("Gaps over 5 minutes:\n");
        for (name, g) in long {
            body.push_str(&format!(
                "- {name} {}–{} {} ({}): {}\n",
                g.start.with_timezone(&Local).format("%H:%M"),
                g.end.with_timezone(&Local).format("%H:%M"),
                g.cause.as_str(),
                crate::time::span_text(g.seconds()),
                g.detail
            ));
        }
    }
    body.push_str(&format!(
        "Events: {}\n",
        counted(&d.events_by_risk).unwrap_or_else(|| "none".into())
    ));
    body.push_str(&format!(
        "Alerts fired: {}",
        counted(&d.alerts_fired).unwrap_or_else(|| "none".into())
    ));
    (summary, body)
}

fn percent(a: f64) -> String {
    format!("{:.2} %", a * 100.0)
}

fn plural(n: i64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn counted(items: &[(String, i64)]) -> Option<String> {
    (!items.is_empty()).then(|| {
        items
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The entry's alert: the digest in the one alert shape every kind renders (its
/// summary the title's words, its description the body).
pub fn digest_alert(d: &Digest, now: DateTime<Utc>) -> Alert {
    let (summary, body) = words(d);
    let mut c = Candidate::from_problem(&Source::Notifier("digest".into()), false, &summary);
    c.fingerprint = "digest".into();
    c.alertname = "WatchpostDailyDigest".into();
    c.labels.insert("alertname".into(), c.alertname.clone());
    c.severity = Severity::Warning;
    c.summary = summary;
    c.description = body;
    Alert::firing(&c, &uuid::Uuid::new_v4().to_string(), now, now)
}

/// Builds the digests and says when they are due.
pub struct Digests {
    pub at: NaiveTime,
    coverage: Arc<Coverage>,
    store: Arc<Store>,
}

impl Digests {
    pub fn new(at: NaiveTime, coverage: Arc<Coverage>, store: Arc<Store>) -> Self {
        Self {
            at,
            coverage,
            store,
        }
    }

    /// `day`'s digest (a local day), from PostgreSQL.
    pub async fn build(&self, day: NaiveDate) -> Result<Digest, DigestError> {
        let (from, to) = (midnight(day), midnight(day.succ_opt().unwrap_or(day)));
        Ok(Digest {
            day,
            cameras: self.coverage.report(None, from, to).await?.cameras,
            events_by_risk: self.store.events_by_risk(from, to).await?,
            alerts_fired: self.store.alerts_fired(from, to).await?,
        })
    }

    /// Wait for the next digest time, then build yesterday's digest and claim it:
    /// `Some` when this instance tells it, `None` when another did. While PostgreSQL
    /// cannot answer it tries again every minute (the digest is late, never lost,
    /// until the next one is due).
    pub async fn next(
        &self,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Option<Option<Alert>> {
        let due = next_due(self.at, Local::now());
        let wait = (due - Local::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(wait) => {}
        }
        let day = due.date_naive().pred_opt().unwrap_or(due.date_naive());
        loop {
            match self.build(day).await {
                Ok(d) => {
                    let now = crate::time::now();
                    match self.store.claim_once(&format!("digest:{day}"), now).await {
                        Ok(true) => {
                            tracing::info!(day = %day, "daily digest told");
                            return Some(Some(message::for_entry(&digest_alert(&d, now))));
                        }
                        Ok(false) => {
                            tracing::info!(day = %day, "daily digest told by another instance");
                            return Some(None);
                        }
                        Err(e) => {
                            tracing::warn!(day = %day, error = %e, "daily digest not claimed yet; trying again in a minute")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(day = %day, error = %e, "daily digest not built yet; trying again in a minute")
                }
            }
            if Local::now() >= next_due(self.at, due) {
                tracing::warn!(day = %day, "daily digest not sent: PostgreSQL did not answer all day");
                return Some(None);
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_digest_is_today_if_ahead_else_tomorrow() {
        let now = Local
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 6, 10)
                    .expect("a day")
                    .and_hms_opt(7, 0, 0)
                    .expect("a time"),
            )
            .earliest()
            .expect("a local time");
        let eight = NaiveTime::from_hms_opt(8, 0, 0).expect("08:00");
        let six = NaiveTime::from_hms_opt(6, 0, 0).expect("06:00");
        assert_eq!(next_due(eight, now).date_naive(), now.date_naive());
        assert_eq!(
            next_due(six, now).date_naive(),
            now.date_naive().succ_opt().expect("tomorrow")
        );
        assert!(next_due(eight, now) > now);
    }

    #[test]
    fn the_words_name_each_camera_its_long_gaps_the_events_and_the_alerts() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).expect("a day");
        let t = |h: u32, m: u32| {
            Local
                .from_local_datetime(&day.and_hms_opt(h, m, 0).expect("a time"))
                .earliest()
                .expect("local")
                .with_timezone(&Utc)
        };
        let gap = |a: DateTime<Utc>, b: DateTime<Utc>, cause| crate::coverage::Gap {
            start: a,
            end: b,
            cause,
            detail: "why".into(),
        };
        let d = Digest {
            day,
            cameras: vec![CameraCoverage {
                camera_id: "porch".into(),
                name: "porch".into(),
                watched_seconds: 84_000.0,
                unwatched_seconds: 2_400.0,
                maintenance_seconds: 0.0,
                availability: Some(84_000.0 / 86_400.0),
                since: None,
                gaps: vec![
                    gap(t(2, 10), t(2, 50), crate::coverage::Cause::CameraOffline),
                    gap(t(9, 0), t(9, 1), crate::coverage::Cause::DetectionDown),
                ],
            }],
            events_by_risk: vec![("high".into(), 2), ("low".into(), 5)],
            alerts_fired: vec![("WatchpostCameraOffline".into(), 1)],
        };
        let (summary, body) = words(&d);
        assert!(
            summary.contains("1 camera,") && summary.contains("97.22 %"),
            "{summary}"
        );
        assert!(body.contains("- porch: 97.22 %"), "{body}");
        assert!(body.contains("02:10–02:50 camera_offline"), "{body}");
        assert!(
            !body.contains("detection_down"),
            "a one-minute gap is not listed: {body}"
        );
        assert!(body.contains("Events: 2 high, 5 low"), "{body}");
        assert!(
            body.contains("Alerts fired: 1 WatchpostCameraOffline"),
            "{body}"
        );
    }
}
