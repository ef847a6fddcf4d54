//! Alertmanager's webhook payload (version 4), checked and turned into what the
//! engine takes: per alert its fingerprint, whether it fires, and the candidate it
//! becomes (source `prometheus`). Pure: no I/O, no engine.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

use super::alert::{Candidate, GENERATOR, GENERATOR_LABEL};
use crate::events::{Severity, Source};

/// The most alerts one notification may carry.
pub const MAX_ALERTS: usize = 1000;
/// The most labels (or annotations) one alert may carry.
const MAX_LABELS: usize = 64;
/// The longest label name or value, annotation or group key.
const MAX_TEXT: usize = 4096;

/// The most received alerts held firing at once: a notification that would hold
/// more is refused whole (429) and counted.
pub const MAX_RECEIVED: usize = 5_000;

/// Why a webhook notification was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(transparent)]
    Unprocessable(#[from] Unprocessable),
    #[error("Too many received alerts: at most {MAX_RECEIVED} are held firing at once and this notification would hold {would}; nothing was taken")]
    TooMany { would: usize },
}

/// What one webhook notification did: `{status, received, processed, message}`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Receipt {
    /// `success`.
    pub status: String,
    /// Alerts in the notification.
    pub received: usize,
    /// Alerts that changed something (new, resolved, or changed words).
    pub processed: usize,
    pub message: String,
}

/// The webhook's body, as Alertmanager sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    /// `4`.
    #[schema(pattern = "^4$")]
    pub version: String,
    #[schema(max_length = 4096)]
    pub group_key: String,
    /// `firing` or `resolved` (of the group).
    #[schema(pattern = "^(firing|resolved)$")]
    pub status: String,
    #[schema(max_length = 4096)]
    pub receiver: String,
    #[schema(max_items = 1000)]
    pub alerts: Vec<PayloadAlert>,
    /// How many alerts Alertmanager left out (`max_alerts`); 0 for a whole group.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub truncated_alerts: i64,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
}

/// One alert of the payload.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayloadAlert {
    /// `firing` or `resolved`.
    #[schema(pattern = "^(firing|resolved)$")]
    pub status: String,
    /// Must hold a non-empty `alertname`; at most 64 labels.
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    /// Zero (`0001-01-01T00:00:00Z`) while firing.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, rename = "generatorURL")]
    #[schema(max_length = 4096)]
    pub generator_url: String,
    #[schema(pattern = "^[0-9a-fA-F]{1,64}$")]
    pub fingerprint: String,
}

/// One alert, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub fingerprint: String,
    pub firing: bool,
    pub candidate: Candidate,
    /// One of watchpost's own alerts, come back through Alertmanager: already known.
    pub own: bool,
}

/// A payload that cannot be taken, and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unprocessable(pub String);

/// The prefix of a received alert's fingerprint: received alerts live in their own
/// namespace (watchpost's own fingerprints are 16 hex digits), so a caller cannot
/// name, and so hide or replace, one of watchpost's own alerts.
pub const RECEIVED_PREFIX: &str = "am_";

/// A text of at most `MAX_TEXT` bytes without control characters.
fn text_ok(s: &str) -> bool {
    s.len() <= MAX_TEXT && !s.contains(char::is_control)
}

/// An annotation's value: line breaks and tabs are allowed (descriptions span lines).
fn prose_ok(s: &str) -> bool {
    s.len() <= MAX_TEXT && !s.contains(|c: char| c.is_control() && !matches!(c, '\n' | '\t'))
}

/// A label (or annotation) name as Alertmanager takes it: `[a-zA-Z_][a-zA-Z0-9_]*`.
/// One it refuses would make it refuse every alert sent with it.
pub fn label_name_ok(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Check a payload and turn each alert into what the engine takes.
pub fn read(p: &Payload) -> Result<Vec<Incoming>, Unprocessable> {
    let bad = |m: String| Err(Unprocessable(m));
    if p.version != "4" {
        return bad(format!(
            "Only version 4 of Alertmanager's webhook payload is understood (got {:?})",
            p.version.chars().take(16).collect::<String>()
        ));
    }
    if !matches!(p.status.as_str(), "firing" | "resolved") {
        return bad("'status' must be firing or resolved".into());
    }
    if !text_ok(&p.group_key) || !text_ok(&p.receiver) || !text_ok(&p.external_url) {
        return bad(format!(
            "'groupKey', 'receiver' and 'externalURL' must be at most {MAX_TEXT} bytes without control characters"
        ));
    }
    if p.truncated_alerts < 0 {
        return bad("'truncatedAlerts' must not be negative".into());
    }
    if p.alerts.len() > MAX_ALERTS {
        return bad(format!("At most {MAX_ALERTS} alerts per notification"));
    }
    let mut out = Vec::with_capacity(p.alerts.len());
    for (i, a) in p.alerts.iter().enumerate() {
        let firing = match a.status.as_str() {
            "firing" => true,
            "resolved" => false,
            _ => return bad(format!("alerts[{i}].status must be firing or resolved")),
        };
        if a.fingerprint.is_empty()
            || a.fingerprint.len() > 64
            || !a.fingerprint.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return bad(format!(
                "alerts[{i}].fingerprint must be 1 to 64 hex digits"
            ));
        }
        if a.labels.len() > MAX_LABELS || a.annotations.len() > MAX_LABELS {
            return bad(format!(
                "alerts[{i}] has more than {MAX_LABELS} labels or annotations"
            ));
        }
        if let Some(name) = a
            .labels
            .keys()
            .chain(a.annotations.keys())
            .find(|k| !label_name_ok(k))
        {
            return bad(format!(
                "alerts[{i}]: {:?} is not a label or annotation name (letters, digits and _, not starting with a digit), as Alertmanager requires",
                name.chars().take(64).collect::<String>()
            ));
        }
        if a.labels.values().any(|v| !text_ok(v))
            || a.annotations.values().any(|v| !prose_ok(v))
            || !text_ok(&a.generator_url)
        {
            return bad(format!(
                "alerts[{i}]: every text must be at most {MAX_TEXT} bytes without control characters (annotations may hold line breaks and tabs)"
            ));
        }
        let Some(alertname) = a.labels.get("alertname").filter(|n| !n.is_empty()) else {
            return bad(format!("alerts[{i}] has no alertname label"));
        };
        let severity = match a.labels.get("severity").map(String::as_str) {
            Some("critical") => Severity::Critical,
            _ => Severity::Warning,
        };
        let summary = a
            .annotations
            .get("summary")
            .cloned()
            .unwrap_or_else(|| alertname.clone());
        let description = a
            .annotations
            .get("description")
            .cloned()
            .unwrap_or_default();
        let mut labels = a.labels.clone();
        if let Some(url) = a.annotations.get("runbook_url") {
            labels.insert("runbook_url".into(), url.clone());
        }
        let fingerprint = format!("{RECEIVED_PREFIX}{}", a.fingerprint.to_ascii_lowercase());
        out.push(Incoming {
            fingerprint: fingerprint.clone(),
            firing,
            own: a.labels.get(GENERATOR_LABEL).map(String::as_str) == Some(GENERATOR),
            candidate: Candidate {
                fingerprint,
                alertname: alertname.clone(),
                source: Source::Prometheus,
                severity,
                summary: summary.chars().take(1024).collect(),
                description: description.chars().take(MAX_TEXT).collect(),
                labels,
                started_at: Some(a.starts_at),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: serde_json::Value) -> Payload {
        serde_json::from_value(json).expect("shape")
    }

    fn sample(status: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "4", "groupKey": "{}:{alertname=\"WatchpostExporterDown\"}",
            "status": status, "receiver": "watchpost",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "WatchpostExporterDown", "severity": "critical", "job": "redis-exporter"},
                "annotations": {"summary": "redis-exporter is down", "runbook_url": "docs/runbook.md#watchpostexporterdown"},
                "startsAt": "2026-12-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3d4e5f60718"
            }]
        })
    }

    #[test]
    fn an_alertmanager_notification_becomes_prometheus_alerts() {
        let got = read(&payload(sample("firing"))).expect("valid");
        assert_eq!(got.len(), 1);
        let a = &got[0];
        assert!(a.firing && !a.own);
        assert_eq!(a.candidate.source, Source::Prometheus);
        assert_eq!(a.candidate.severity, Severity::Critical);
        assert_eq!(a.candidate.summary, "redis-exporter is down");
        assert_eq!(a.candidate.fingerprint, "am_a1b2c3d4e5f60718");
        assert_eq!(
            a.candidate.labels["runbook_url"],
            "docs/runbook.md#watchpostexporterdown"
        );
        assert!(!read(&payload(sample("resolved"))).expect("valid")[0].firing);
    }

    #[test]
    fn a_payload_that_cannot_be_taken_says_why() {
        for (edit, why) in [
            (serde_json::json!({"version": "3"}), "version 4"),
            (serde_json::json!({"status": "pending"}), "'status'"),
        ] {
            let mut p = sample("firing");
            for (k, v) in edit.as_object().expect("object") {
                p[k] = v.clone();
            }
            let err = read(&payload(p)).expect_err(why).to_string();
            assert!(err.contains(why), "{err}");
        }
        let mut p = sample("firing");
        p["alerts"][0]["fingerprint"] = "not hex!".into();
        assert!(read(&payload(p)).is_err());
        for (labels, why) in [
            (
                serde_json::json!({"alertname": "X", "bad key": "v"}),
                "not a label",
            ),
            (
                serde_json::json!({"alertname": "X", "1st": "v"}),
                "not a label",
            ),
            (serde_json::json!({"alertname": "X\u{0}"}), "control"),
            (
                serde_json::json!({"alertname": "X", "job": "a\nb"}),
                "control",
            ),
        ] {
            let mut p = sample("firing");
            p["alerts"][0]["labels"] = labels;
            let err = read(&payload(p)).expect_err(why).to_string();
            assert!(err.contains(why), "{err}");
        }
        let mut p = sample("firing");
        p["alerts"][0]["annotations"]["description"] = "two\nlines\tand a tab".into();
        assert!(read(&payload(p)).is_ok(), "a description may span lines");
        let mut p = sample("firing");
        p["alerts"][0]["annotations"]["description"] = "a\u{1b}[31m".into();
        assert!(read(&payload(p)).is_err(), "but holds no escape sequence");
        let mut p = sample("firing");
        p["alerts"][0]["labels"] = serde_json::json!({"severity": "warning"});
        assert!(read(&payload(p))
            .expect_err("no name")
            .to_string()
            .contains("alertname"));
    }
}
