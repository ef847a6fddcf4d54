//! What a notifier tells, and how each format says it. Pure: no I/O.
//!
//! An outbox entry holds the alert itself (the one `Alert` shape, cut to fit every
//! transport when it is written) and what happened to it. Each format renders the
//! same entry: ntfy (a title, a message and ntfy's headers), Alertmanager's webhook
//! (version 4), the alert as JSON, and the MQTT payload (the alert as JSON).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alerts::{Alert, Candidate, Identity, Source};
use crate::events::Severity;
use crate::names::closed_set;

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

/// The most an entry's alert may take, serialised: every transport carries it (MQTT
/// takes packets up to 256 KiB, the outbox reads lines up to 256 KiB back, and the
/// Alertmanager format carries the labels twice).
pub const MAX_ALERT_BYTES: usize = 32 * 1024;
/// The most of ntfy's message body (a longer one becomes an attachment there).
const NTFY_BODY_BYTES: usize = 4000;
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
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(CUT.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", &s[..end])
}

/// A request to an ntfy topic: its body and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Ntfy {
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
}

/// ntfy's message: `Title`, `Priority` (5 for critical, 4 for warning, 3 once it
/// resolved or for a test), `Tags` (emoji short codes ntfy shows) and `Click` (the
/// status page).
pub fn ntfy(e: &Entry, who: &Identity) -> Ntfy {
    let t = &e.alert;
    let (mark, priority, tag) = match (e.kind, t.severity) {
        (Kind::Test, _) => ("TEST", "3", "test_tube"),
        (Kind::Resolved, _) => ("RESOLVED", "3", "white_check_mark"),
        (_, Severity::Critical) => ("FIRING", "5", "rotating_light"),
        _ => ("FIRING", "4", "warning"),
    };
    let title = format!("[{mark}] {}: {}", t.alertname, t.source);
    let mut body = t.summary.clone();
    if e.kind == Kind::Resolved {
        // The recovery, not the problem in the present tense.
        body = format!(
            "Resolved after {}: it had been \"{}\".",
            human_seconds(t.duration_seconds),
            t.summary
        );
    } else if !t.description.is_empty() && t.description != t.summary {
        body.push_str("\n\n");
        body.push_str(&t.description);
    }
    if e.kind == Kind::Repeat {
        body.push_str(&format!(
            "\n\nStill firing, for {} now.",
            human_seconds(t.duration_seconds)
        ));
    }
    let body = cut(&body, NTFY_BODY_BYTES);
    let tags = [tag, "watchpost", t.source.kind().as_str()];
    Ntfy {
        body,
        headers: vec![
            ("Title", header_text(&title)),
            ("Priority", priority.to_string()),
            ("Tags", tags.join(",")),
            ("Click", format!("{}#alerts", who.external_url)),
        ],
    }
}

/// Alertmanager's webhook body (version 4) for one alert, so every tool that takes
/// Alertmanager's webhooks takes watchpost's.
pub fn alertmanager(e: &Entry, receiver: &str, who: &Identity) -> serde_json::Value {
    let t = &e.alert;
    let resolved = e.kind == Kind::Resolved;
    let status = if resolved { "resolved" } else { "firing" };
    let alert = t.outside(&who.instance);
    let zero = "0001-01-01T00:00:00Z".to_string();
    let ends_at = match (resolved, t.ended_at) {
        (true, Some(end)) => end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        _ => zero,
    };
    let starts_at = t
        .started_at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{}\"}}", t.alertname),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": t.alertname},
        "commonLabels": alert.0,
        "commonAnnotations": alert.1,
        "externalURL": who.external_url,
        "alerts": [{
            "status": status,
            "labels": alert.0,
            "annotations": alert.1,
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": format!("{}#alerts", who.external_url),
            "fingerprint": t.fingerprint,
        }],
    })
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

/// A header value ntfy reads: printable ASCII as it is, anything else as an RFC 2047
/// encoded word (`=?UTF-8?Q?…?=`), which ntfy decodes.
fn header_text(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(250).collect();
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s;
    }
    let mut out = String::from("=?UTF-8?Q?");
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b',' | b':' | b'-' | b'[' | b']' => {
                out.push(b as char)
            }
            b' ' => out.push('_'),
            _ => out.push_str(&format!("={b:02X}")),
        }
    }
    out.push_str("?=");
    out
}

/// `3 h 5 min`, `12 min`, `40 s`.
fn human_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn entry(kind: Kind, severity: &str) -> Entry {
        Entry {
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

    fn who() -> Identity {
        Identity {
            instance: "nas:8000".into(),
            external_url: "http://nas.local:8000/".into(),
        }
    }

    #[test]
    fn ntfy_says_it_in_headers_with_priority_by_severity() {
        let n = ntfy(&entry(Kind::Firing, "critical"), &who());
        let h: BTreeMap<_, _> = n.headers.iter().cloned().collect();
        assert_eq!(h["Title"], "[FIRING] WatchpostCameraOffline: camera:front");
        assert_eq!(h["Priority"], "5");
        assert_eq!(h["Tags"], "rotating_light,watchpost,camera");
        assert_eq!(h["Click"], "http://nas.local:8000/#alerts");
        assert!(n.body.starts_with("camera front is offline\n\nno image"));
        let w = ntfy(&entry(Kind::Firing, "warning"), &who());
        assert_eq!(w.headers[1], ("Priority", "4".to_string()));
        let r = ntfy(&entry(Kind::Resolved, "critical"), &who());
        assert_eq!(r.headers[1], ("Priority", "3".to_string()));
        assert_eq!(
            r.body, "Resolved after 12 min: it had been \"camera front is offline\".",
            "the recovery, not the problem"
        );
    }

    #[test]
    fn a_title_that_is_not_ascii_is_an_encoded_word() {
        assert_eq!(header_text("plain [x]"), "plain [x]");
        assert_eq!(header_text("café 1"), "=?UTF-8?Q?caf=C3=A9_1?=");
        assert_eq!(header_text("a\r\nb"), "ab");
    }

    #[test]
    fn alertmanager_format_is_a_version_4_notification_of_one_alert() {
        let mut e = entry(Kind::Resolved, "critical");
        e.alert.ended_at = Some("2026-12-02T06:12:30Z".parse().expect("a time"));
        let v = alertmanager(&e, "home", &who());
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["receiver"], "home");
        let a = &v["alerts"][0];
        assert_eq!(a["labels"]["alertname"], "WatchpostCameraOffline");
        assert_eq!(a["labels"]["instance"], "nas:8000");
        assert_eq!(a["labels"]["camera"], "front");
        assert_eq!(a["labels"]["generator"], "watchpost");
        assert_eq!(a["annotations"]["summary"], "camera front is offline");
        assert_eq!(a["endsAt"], "2026-12-02T06:12:30.000Z");
        assert_eq!(a["fingerprint"], "f00d");
        let firing = alertmanager(&entry(Kind::Firing, "warning"), "home", &who());
        assert_eq!(firing["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    }

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
        let n = ntfy(
            &Entry {
                seq: 1,
                kind: Kind::Firing,
                decided_at: Utc::now(),
                alert: v,
            },
            &who(),
        );
        assert!(n.body.len() <= NTFY_BODY_BYTES);
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
