//! What a notifier tells, and how each format says it. Pure: no I/O.
//!
//! An outbox entry holds the alert itself (the one `Alert` shape, cut to fit every
//! transport when it is written) and what happened to it. Each format renders the
//! same entry; what every kind shares is here: the entry, the cut to fit, the words
//! people read ([`said`]), and the alert as JSON (`json` kind, MQTT payload). Each
//! kind's own format is in its file under `kinds/`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::actions::ActionLink;
use crate::alerts::{Alert, Candidate, Source, AFFECTED_LABEL};
use crate::events::Severity;
use crate::names::closed_set;

/// The label that marks a flapping notification (its title says `FLAPPING`).
pub const FLAPPING_LABEL: &str = "flapping";

closed_set! {
    /// What an entry tells.
    #[derive(serde::Deserialize)]
    pub enum Kind {
        /// The alert started firing.
        Firing = "firing",
        /// It fires still (`notify.repeat_seconds` after it was last told).
        Repeat = "repeat",
        /// It ended.
        Resolved = "resolved",
        /// An operator's test (`POST /api/system/notifiers/{name}/test`).
        Test = "test",
        /// The daily digest (`notify.digest_time`).
        Digest = "digest",
        /// Something people should know that is no alert (a snooze ended).
        Notice = "notice",
    }
}

/// One transition for one notifier, as its outbox keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// Its place in the notifier's outbox (increasing, never reused).
    pub seq: u64,
    pub kind: Kind,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
    /// The alert, as the API lists it.
    pub alert: Alert,
    /// The one-tap buttons, made as it is delivered (never kept in the outbox: each
    /// works for `notify.action_ttl_seconds` from the delivery).
    #[serde(skip)]
    pub actions: Vec<ActionLink>,
}

impl Entry {
    /// The alert's fingerprint (the MQTT topic's last level).
    pub fn fingerprint(&self) -> &str {
        &self.alert.fingerprint
    }
}

/// The entry of a test message: an alert about the notifier itself.
pub fn test_alert(notifier: &str, now: DateTime<Utc>) -> Alert {
    let source = Source::Notifier(notifier.to_string());
    let mut c = Candidate::from_problem(
        &source,
        false,
        &format!("Test message from watchpost to {notifier}"),
    );
    c.fingerprint = "test".into();
    c.severity = Severity::Warning;
    c.description = "Sent from the status page or POST /api/system/notifiers/{name}/test: if you read this, this notifier works.".into();
    Alert::firing(&c, &uuid::Uuid::new_v4().to_string(), now, now)
}

/// The entry of a notice: a message in the one alert shape (its summary the title's
/// words, its description the body), about `what` (`notice:<what>`).
pub fn notice_alert(what: &str, summary: &str, body: &str, now: DateTime<Utc>) -> Alert {
    let mut c =
        Candidate::from_problem(&Source::Notifier(format!("notice:{what}")), false, summary);
    c.fingerprint = format!("notice-{what}");
    c.alertname = "WatchpostNotice".into();
    c.labels.insert("alertname".into(), c.alertname.clone());
    c.summary = summary.to_string();
    c.description = body.to_string();
    Alert::firing(&c, &uuid::Uuid::new_v4().to_string(), now, now)
}

/// The most an entry's alert may take, serialised: every transport carries it (MQTT
/// takes packets up to 256 KiB, the outbox reads lines up to 256 KiB back, and the
/// Alertmanager format carries the labels twice).
pub const MAX_ALERT_BYTES: usize = 32 * 1024;
/// What a text cut to fit ends with.
const CUT: &str = "…";

/// The alert an entry keeps: cut to [`MAX_ALERT_BYTES`].
pub fn for_entry(a: &Alert) -> Alert {
    fit(a, MAX_ALERT_BYTES)
}

/// `a`, cut until it serialises to at most `max` bytes: its description, then its
/// summary, then its longest label values, then labels other than the ones that
/// name it (`alertname`, `severity`, `source` and the subject's).
pub fn fit(a: &Alert, max: usize) -> Alert {
    let size = |a: &Alert| serde_json::to_vec(a).map_or(usize::MAX, |v| v.len());
    let mut a = a.clone();
    let mut over = size(&a).saturating_sub(max);
    if over == 0 {
        return a;
    }
    let keep = a.description.len().saturating_sub(over + CUT.len());
    a.description = cut(&a.description, keep);
    over = size(&a).saturating_sub(max);
    if over > 0 {
        a.summary = cut(&a.summary, 256);
        over = size(&a).saturating_sub(max);
    }
    if over > 0 {
        for v in a.labels.values_mut() {
            *v = cut(v, 256);
        }
        over = size(&a).saturating_sub(max);
    }
    if over > 0 {
        const NAMING: [&str; 7] = [
            "alertname",
            "severity",
            "source",
            "camera",
            "dependency",
            "worker",
            "breaker",
        ];
        a.labels.retain(|k, _| NAMING.contains(&k.as_str()));
        a.description = cut(&a.description, 0);
    }
    a
}

/// `s` cut to at most `max` bytes (at a character boundary), marked when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(CUT.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &s[..end])
}

/// The `json` format and the MQTT payload: the alert as the API lists it, with what
/// happened (`notification`: firing, repeat, resolved or test).
pub fn plain(e: &Entry) -> serde_json::Value {
    #[derive(Serialize)]
    struct Told<'a> {
        #[serde(flatten)]
        alert: &'a Alert,
        notification: Kind,
    }
    serde_json::to_value(Told {
        alert: &e.alert,
        notification: e.kind,
    })
    .unwrap_or_default()
}

/// What a notification says to a person: a title (marked `FIRING`, `RESOLVED` or
/// `TEST`) naming the alert and what it is about, and a body (uncut; each kind cuts
/// it to its transport's limit with [`cut`]). ntfy, Telegram and e-mail say the same.
pub struct Said {
    pub title: String,
    pub body: String,
}

pub fn said(e: &Entry) -> Said {
    let t = &e.alert;
    let mark = match e.kind {
        Kind::Test => "TEST",
        Kind::Digest => "DIGEST",
        Kind::Notice => "NOTICE",
        Kind::Resolved => "RESOLVED",
        _ if t.labels.contains_key(FLAPPING_LABEL) => "FLAPPING",
        _ => "FIRING",
    };
    // What is affected: a cause's list, a received alert's dependency, or the source.
    let about = t
        .labels
        .get(AFFECTED_LABEL)
        .or(match t.source {
            Source::Prometheus => t.labels.get("dependency"),
            _ => None,
        })
        .cloned()
        .unwrap_or_else(|| t.source.to_string());
    if matches!(e.kind, Kind::Digest | Kind::Notice) {
        let mark = if e.kind == Kind::Digest {
            "DIGEST"
        } else {
            "NOTICE"
        };
        return Said {
            title: format!("[{mark}] {}", t.summary),
            body: t.description.clone(),
        };
    }
    let title = format!("[{mark}] {}: {about}", t.alertname);
    let mut body = t.summary.clone();
    if e.kind == Kind::Resolved {
        // The recovery, not the problem in the present tense.
        body = format!(
            "Resolved after {}: it had been \"{}\".",
            crate::time::human_seconds(t.duration_seconds),
            t.summary
        );
    } else if !t.description.is_empty() && t.description != t.summary {
        body.push_str("\n\n");
        body.push_str(&t.description);
    }
    if e.kind == Kind::Repeat {
        body.push_str(&format!(
            "\n\nStill firing, for {} now.",
            crate::time::human_seconds(t.duration_seconds)
        ));
    }
    Said { title, body }
}

/// Entries and identities for the kinds' tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use crate::alerts::Identity;

    pub fn entry(kind: Kind, severity: &str) -> Entry {
        Entry {
            actions: Vec::new(),
            seq: 1,
            kind,
            decided_at: Utc::now(),
            alert: serde_json::from_value(serde_json::json!({
                "id": "a1", "fingerprint": "f00d", "alertname": "WatchpostCameraOffline",
                "source": "camera:front", "severity": severity,
                "summary": "camera front is offline", "description": "no image for 10 min",
                "labels": {"camera": "front", "source": "camera:front"},
                "state": "firing", "started_at": "2026-12-02T06:00:00Z", "ended_at": null,
                "duration_seconds": 750.0, "stored": true, "silenced_by": [],
                "runbook_link": null,
            }))
            .expect("an alert"),
        }
    }

    pub fn who() -> Identity {
        Identity {
            instance: "nas:8000".into(),
            external_url: "http://nas.local:8000/".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::entry;
    use super::*;

    #[test]
    fn an_alert_is_cut_to_fit_every_transport() {
        let c = Candidate::from_problem(&Source::Ai("clip".into()), false, "clip unhealthy");
        let mut a = Alert::firing(&c, "id", Utc::now(), Utc::now());
        assert_eq!(
            fit(&a, MAX_ALERT_BYTES).labels,
            a.labels,
            "a small one as it is"
        );
        a.description = "d".repeat(300_000);
        for n in 0..63 {
            a.labels.insert(format!("l{n}"), "v\u{e9}".repeat(2000));
        }
        let v = for_entry(&a);
        let bytes = serde_json::to_vec(&v).unwrap().len();
        assert!(bytes <= MAX_ALERT_BYTES, "{bytes}");
        assert_eq!(v.labels["source"], "ai:clip", "what names it is kept");
        assert_eq!(v.summary, "clip unhealthy");
        assert_eq!(cut("aé", 2), "…".chars().take(1).collect::<String>());
    }

    #[test]
    fn plain_is_the_alert_with_what_happened() {
        let v = plain(&entry(Kind::Repeat, "warning"));
        assert_eq!(v["notification"], "repeat");
        assert_eq!(v["fingerprint"], "f00d");
        assert_eq!(entry(Kind::Test, "warning").fingerprint(), "f00d");
        // What the outbox keeps reads back as the same alert.
        let e = entry(Kind::Firing, "warning");
        let back: Entry = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert_eq!(back, e);
    }
}
