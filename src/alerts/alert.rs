//! One alert: what a problem becomes once the engine decides it fires. Its
//! `fingerprint` names the problem (the same for every firing of it); its `id` names
//! one firing (a row of the history).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;

use crate::cameras::CameraProblem;
use crate::events::{CameraStatus, Severity, Source, SourceKind};
use crate::store::AlertRow;

/// The alert's name for a kind of source, as Prometheus and Alertmanager would show it.
pub fn alertname_of(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Postgres | SourceKind::Redis | SourceKind::Ai => "WatchpostDependencyDown",
        SourceKind::Worker => "WatchpostWorkerNotRunning",
        SourceKind::Breaker => "WatchpostCircuitBreakerOpen",
        SourceKind::Camera => "WatchpostCameraOffline",
        SourceKind::Storage => "WatchpostDiskSpaceLow",
        SourceKind::Prometheus => "PrometheusAlert",
        SourceKind::Notifier => "WatchpostNotifierTest",
        SourceKind::Cause => "WatchpostCause",
        SourceKind::Instance => "WatchpostInstanceLost",
    }
}

/// The label that names the thing (`dependency`, `worker`, …), if any.
fn subject_label(kind: SourceKind) -> Option<&'static str> {
    match kind {
        SourceKind::Postgres | SourceKind::Redis | SourceKind::Ai => Some("dependency"),
        SourceKind::Worker => Some("worker"),
        SourceKind::Breaker => Some("breaker"),
        SourceKind::Camera => Some("camera"),
        SourceKind::Storage => Some("volume"),
        SourceKind::Notifier => Some("notifier"),
        SourceKind::Cause => Some("cause"),
        SourceKind::Instance => Some("fleet_instance"),
        SourceKind::Prometheus => None,
    }
}

/// A problem that may become an alert: everything but the firing's id and times.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub fingerprint: String,
    pub alertname: String,
    pub source: Source,
    pub severity: Severity,
    pub summary: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    /// Set when the problem already fired elsewhere (a Prometheus rule held its own
    /// `for:`): it fires at once, started then.
    pub started_at: Option<DateTime<Utc>>,
}

impl Candidate {
    /// Mark it as about `host`'s own things when it is (`SourceKind::is_host_local`).
    pub fn on_host(&mut self, host: &str) {
        if self.source.kind().is_host_local() {
            self.labels.insert(HOST_LABEL.to_string(), host.to_string());
        }
    }

    /// A camera in trouble (`camera:<id>`): offline (warning, or critical when the
    /// camera is marked critical), frozen or flooding (warnings), each its own alert.
    pub fn for_camera(p: &CameraProblem) -> Self {
        let (alertname, severity, what) = match p.status {
            CameraStatus::Offline if p.critical => {
                ("WatchpostCameraOffline", Severity::Critical, "is offline")
            }
            CameraStatus::Offline => ("WatchpostCameraOffline", Severity::Warning, "is offline"),
            CameraStatus::Frozen => (
                "WatchpostCameraFrozen",
                Severity::Warning,
                "sends the same picture again and again",
            ),
            _ => (
                "WatchpostCameraFlooding",
                Severity::Warning,
                "sends more images than it should; the extra ones are skipped",
            ),
        };
        let source = Source::Camera(p.camera.clone());
        let labels = BTreeMap::from([
            ("alertname".to_string(), alertname.to_string()),
            ("severity".to_string(), severity.as_str().to_string()),
            ("source".to_string(), source.to_string()),
            ("camera".to_string(), p.camera.clone()),
        ]);
        Self {
            fingerprint: fingerprint(alertname, &source),
            alertname: alertname.to_string(),
            summary: format!("camera {} {what}", p.camera),
            description: format!("Camera {} {what}: {}.", p.camera, p.reason),
            source,
            severity,
            labels,
            started_at: None,
        }
    }

    /// The problem of an alert that fires now, taken as still present (while what it
    /// is about cannot be judged yet).
    pub fn from_alert(a: &Alert) -> Self {
        Self {
            fingerprint: a.fingerprint.clone(),
            alertname: a.alertname.clone(),
            source: a.source.clone(),
            severity: a.severity,
            summary: a.summary.clone(),
            description: a.description.clone(),
            labels: a.labels.clone(),
            started_at: (!a.source.is_own()).then_some(a.started_at),
        }
    }

    /// A problem of the health assessment (PostgreSQL, an AI service, a worker, …).
    /// The same problem under another alert name (a second kind of problem of one
    /// source, as a volume low on space and one filling up).
    pub fn named(mut self, alertname: &str) -> Self {
        self.alertname = alertname.to_string();
        self.labels
            .insert("alertname".to_string(), alertname.to_string());
        self.fingerprint = fingerprint(alertname, &self.source);
        self
    }

    pub fn from_problem(source: &Source, critical: bool, message: &str) -> Self {
        let kind = source.kind();
        let severity = if critical {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let alertname = alertname_of(kind).to_string();
        let mut labels = BTreeMap::from([
            ("alertname".to_string(), alertname.clone()),
            ("severity".to_string(), severity.as_str().to_string()),
            ("source".to_string(), source.to_string()),
        ]);
        if let (Some(key), Some(subject)) = (subject_label(kind), source.subject()) {
            labels.insert(key.to_string(), subject.to_string());
        } else if let Some(key) = subject_label(kind) {
            labels.insert(key.to_string(), source.to_string());
        }
        let description = match kind {
            SourceKind::Postgres | SourceKind::Redis | SourceKind::Ai => {
                format!("{message}. Work that needs it waits in its queue; nothing is lost.")
            }
            SourceKind::Worker => format!(
                "{message}. A critical worker not running makes watchpost unhealthy and not ready."
            ),
            SourceKind::Breaker => {
                format!("{message}: calls are refused until a trial call succeeds.")
            }
            _ => message.to_string(),
        };
        Self {
            fingerprint: fingerprint(&alertname, source),
            alertname,
            source: source.clone(),
            severity,
            summary: message.to_string(),
            description,
            labels,
            started_at: None,
        }
    }
}

/// 16 hex digits of SHA-256 over the alert's name and source: stable across restarts
/// and instances, like Alertmanager's fingerprints.
pub fn fingerprint(alertname: &str, source: &Source) -> String {
    let digest = sha2::Sha256::digest(format!("{alertname}\u{0}{source}").as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The label naming the instance an alert about one instance's own things is about
/// (`SourceKind::is_host_local`).
pub const HOST_LABEL: &str = "host";

/// The label naming an alert's cause (`causes.rs`).
pub const CAUSE_LABEL: &str = "cause";
/// The label of a cause's alert naming what it affects (notifications put it in
/// their title).
pub const AFFECTED_LABEL: &str = "affected";

/// The label that marks watchpost's own alerts (`generator="watchpost"`), so that
/// they are not taken back in when Alertmanager routes them to this webhook.
pub const GENERATOR_LABEL: &str = "generator";
pub const GENERATOR: &str = "watchpost";

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// An alert as `GET /api/system/alerts` lists it: the one shape every view renders
/// from (the history's row, the events, Alertmanager, every notifier), and what a
/// notifier's outbox keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// This firing (a row of the history).
    pub id: String,
    /// The problem (the same for every firing of it).
    pub fingerprint: String,
    pub alertname: String,
    pub source: Source,
    pub severity: Severity,
    pub summary: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub state: AlertStatus,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// How long it fired (so far, while firing).
    #[serde(serialize_with = "crate::time::whole_seconds")]
    pub duration_seconds: f64,
    /// Whether the history in PostgreSQL has it yet (false while it is down).
    #[serde(default)]
    pub stored: bool,
    /// The active silences that keep it from being sent out (empty: it is sent).
    #[serde(default)]
    pub silenced_by: Vec<String>,
    /// The maintenance windows or snoozes holding it now (it is shown and stored,
    /// never told while one does).
    #[serde(default)]
    pub in_maintenance: Vec<String>,
    /// When someone acknowledged this episode (from a notification's button): it is
    /// not told again while it fires, and not silenced either.
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Its runbook as a link: the shipped runbook watchpost serves, or under
    /// `alerting.runbook_base_url` (null otherwise: a runbook reference from outside
    /// is only ever shown as text).
    #[serde(default)]
    pub runbook_link: Option<String>,
}

impl Alert {
    /// About another instance's own things (its `host` label is not `me`): held and
    /// resolved by that instance alone.
    pub fn is_another_host_s(&self, me: &str) -> bool {
        self.source.kind().is_host_local() && self.labels.get(HOST_LABEL).is_some_and(|h| h != me)
    }

    /// A firing that has not ended, at `now`.
    pub fn firing(c: &Candidate, id: &str, started_at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            id: id.to_string(),
            fingerprint: c.fingerprint.clone(),
            alertname: c.alertname.clone(),
            source: c.source.clone(),
            severity: c.severity,
            summary: c.summary.clone(),
            description: c.description.clone(),
            labels: c.labels.clone(),
            state: AlertStatus::Firing,
            started_at,
            ended_at: None,
            duration_seconds: seconds_between(started_at, now),
            stored: false,
            silenced_by: Vec::new(),
            in_maintenance: Vec::new(),
            acknowledged_at: None,
            runbook_link: None,
        }
    }

    /// From a stored row, at `now`; `None` for a row whose source this version does
    /// not know (it stays in the table, unread).
    pub fn from_row(r: AlertRow, now: DateTime<Utc>) -> Option<Self> {
        let labels: BTreeMap<String, String> = serde_json::from_value(r.labels).unwrap_or_default();
        let Some(source) = Source::parse(&r.source) else {
            tracing::debug!(source = ?r.source, id = %r.id, "an alert row of an unknown source is skipped");
            return None;
        };
        Some(Self {
            duration_seconds: seconds_between(r.started_at, r.ended_at.unwrap_or(now)),
            state: if r.ended_at.is_some() {
                AlertStatus::Resolved
            } else {
                AlertStatus::Firing
            },
            id: r.id,
            fingerprint: r.fingerprint,
            alertname: r.alertname,
            source,
            severity: Severity::parse(&r.severity).unwrap_or(Severity::Warning),
            summary: r.summary,
            description: r.description,
            labels,
            started_at: r.started_at,
            ended_at: r.ended_at,
            stored: true,
            silenced_by: Vec::new(),
            in_maintenance: Vec::new(),
            acknowledged_at: None,
            runbook_link: None,
        })
    }

    /// The value of its label `name`, as silences and notifiers' matchers see it
    /// (`alertname`, `source` and `severity` are its fields; others its labels).
    pub fn label(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match name {
            "alertname" => Some(Cow::Borrowed(self.alertname.as_str())),
            "source" => Some(Cow::Owned(self.source.to_string())),
            "severity" => Some(Cow::Borrowed(self.severity.as_str())),
            other => self.labels.get(other).map(|v| Cow::Borrowed(v.as_str())),
        }
    }

    /// Its runbook reference: the `runbook_url` it came with, or the shipped
    /// runbook's section for its name.
    pub fn runbook_ref(&self) -> String {
        self.labels
            .get("runbook_url")
            .cloned()
            .unwrap_or_else(|| format!("docs/runbook.md#{}", self.alertname.to_ascii_lowercase()))
    }

    /// Link its runbook (see [`runbook_link`]).
    pub fn link_runbook(&mut self, base: Option<&str>) {
        self.runbook_link = runbook_link(&self.runbook_ref(), base);
    }

    /// Its labels and annotations as tools outside see them (Alertmanager, webhooks).
    /// Labels: its own, plus `alertname`, `severity`, `source`, `instance`, `cause`
    /// (its source when it shares no cause: Alertmanager groups watchpost's alerts by
    /// it) and the generator mark by which watchpost knows its own alerts when they
    /// come back.
    /// Annotations: summary, description, and the runbook section.
    pub fn outside(&self, instance: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let mut labels = self.labels.clone();
        labels.remove("runbook_url");
        labels.insert("alertname".into(), self.alertname.clone());
        labels.insert("severity".into(), self.severity.as_str().to_string());
        labels.insert("source".into(), self.source.to_string());
        labels.insert("instance".into(), instance.to_string());
        labels
            .entry(CAUSE_LABEL.into())
            .or_insert_with(|| self.source.to_string());
        labels.insert(GENERATOR_LABEL.into(), GENERATOR.into());
        let annotations = BTreeMap::from([
            ("summary".to_string(), self.summary.clone()),
            ("description".to_string(), self.description.clone()),
            ("runbook_url".to_string(), self.runbook_ref()),
        ]);
        (labels, annotations)
    }

    pub fn row(&self) -> AlertRow {
        AlertRow {
            id: self.id.clone(),
            fingerprint: self.fingerprint.clone(),
            alertname: self.alertname.clone(),
            source: self.source.to_string(),
            severity: self.severity.as_str().to_string(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            labels: serde_json::to_value(&self.labels).unwrap_or_default(),
            started_at: self.started_at,
            ended_at: self.ended_at,
        }
    }
}

/// The shipped runbook as this binary serves it (`GET /docs/runbook`).
pub const SERVED_RUNBOOK: &str = "/docs/runbook";

/// A runbook reference as a link, only where it is known to be safe:
/// - a shipped reference (`docs/…`, relative, without `..`): resolved against `base`
///   (`alerting.runbook_base_url`, ending with `/`), or, with no base, the shipped
///   runbook's section as watchpost serves it (`/docs/runbook#section`);
/// - an address that starts with `base`.
///
/// Anything else (`https://evil.example/login` on a received alert) is no link.
pub fn runbook_link(reference: &str, base: Option<&str>) -> Option<String> {
    let base = base.filter(|b| b.ends_with('/'));
    let clean = |s: &str| !s.contains("..") && !s.contains(char::is_whitespace);
    if reference.starts_with("docs/") && clean(reference) {
        return match base {
            Some(b) => Some(format!("{b}{reference}")),
            None => reference
                .strip_prefix("docs/runbook.md")
                .filter(|rest| rest.is_empty() || rest.starts_with('#'))
                .map(|rest| format!("{SERVED_RUNBOOK}{rest}")),
        };
    }
    let base = base?;
    (reference.starts_with(base) && clean(&reference[base.len()..])).then(|| reference.to_string())
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// A page of the history.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub pagination: crate::json::Pagination,
}

/// The history cannot be read now: the firing alerts as the engine holds them.
#[derive(Debug, thiserror::Error)]
#[error("The alert history cannot be read now (PostgreSQL: {why}); the alerts firing now are listed from memory")]
pub struct HistoryUnavailable {
    pub why: String,
    pub firing: Vec<Alert>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_becomes_a_labelled_candidate_with_a_stable_fingerprint() {
        let florence = Source::Ai("florence".into());
        let c = Candidate::from_problem(&florence, false, "florence unhealthy (refused)");
        assert_eq!(c.alertname, "WatchpostDependencyDown");
        assert_eq!(c.severity, Severity::Warning);
        assert_eq!(c.labels["dependency"], "florence");
        assert_eq!(c.labels["source"], "ai:florence");
        assert_eq!(c.fingerprint.len(), 16);
        assert_eq!(
            c.fingerprint,
            Candidate::from_problem(&florence, true, "other words").fingerprint,
            "the same problem, whatever its wording"
        );
        assert_ne!(
            c.fingerprint,
            Candidate::from_problem(&Source::Ai("clip".into()), false, "x").fingerprint
        );
    }

    #[test]
    fn only_a_runbook_under_the_configured_base_is_a_link() {
        let base = Some("https://wiki.example/watchpost/");
        assert_eq!(
            runbook_link("docs/runbook.md#watchpostcameraoffline", base).as_deref(),
            Some("https://wiki.example/watchpost/docs/runbook.md#watchpostcameraoffline")
        );
        assert_eq!(
            runbook_link("https://wiki.example/watchpost/extra.md#x", base).as_deref(),
            Some("https://wiki.example/watchpost/extra.md#x")
        );
        for foreign in [
            "https://evil.example/login",
            "https://wiki.example/watchpost.evil.example/x",
            "https://wiki.example/watchpost/../../login",
            "docs/../../etc",
            "javascript:alert(1)",
        ] {
            assert_eq!(runbook_link(foreign, base), None, "{foreign}");
        }
        // No base: the shipped runbook links to the copy watchpost serves, and nothing
        // else links.
        assert_eq!(
            runbook_link("docs/runbook.md#watchpostcameraoffline", None).as_deref(),
            Some("/docs/runbook#watchpostcameraoffline")
        );
        assert_eq!(runbook_link("docs/alerting.md#x", None), None);
        assert_eq!(runbook_link("https://evil.example/login", None), None);
    }
}
