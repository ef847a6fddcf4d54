//! What causes what: watchpost's own dependency tree, so that one root cause is one
//! notification. Every alert is labelled with its cause (`cause`), when it has one:
//! - PostgreSQL and Redis are their own causes (`postgres`, `redis`);
//! - an AI service and its breaker have the AI host in their URL as cause
//!   (`ai_host:10.0.0.5`): five services on one box are one box;
//! - an offline camera has its configured group as cause (`camera_group:<name>`,
//!   `[cameras.groups]`), or, when three or more cameras without a group go offline
//!   in the same check, those cameras together (`cameras:<first id>`);
//! - a Prometheus alert received through the webhook has its `dependency` label's
//!   cause (a Prometheus rule about yolo26 is about yolo26's host).
//!
//! The alerts of one cause stay separate alerts (decided, stored, listed, each with
//! its `cause` label); the notifiers tell them together as one alert of source
//! `cause:<key>`, made here ([`group_alert`]), naming what is affected.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::alert::{fingerprint, Alert, AlertStatus, Candidate, AFFECTED_LABEL, CAUSE_LABEL};
use crate::events::{Severity, Source, SourceKind};

/// Cameras without a group that go offline in one check and count as one cause.
pub const BURST: usize = 3;
/// The most names an `affected` label lists (the rest are counted).
const MAX_NAMED: usize = 12;

pub struct Causes {
    /// AI service (and its breaker) → the host in its URL.
    ai_hosts: BTreeMap<String, String>,
    /// Camera → its configured group.
    groups: BTreeMap<String, String>,
    bursts: Mutex<Bursts>,
}

/// Cameras without a group that went offline together, and the offline ones seen
/// at the last look (a camera new to that set went offline in this check).
#[derive(Default)]
struct Bursts {
    cause: BTreeMap<String, String>,
    seen: BTreeSet<String>,
}

impl Causes {
    /// `ai`: each AI service's name and URL; `groups`: `[cameras.groups]`.
    pub fn new<'a>(
        ai: impl IntoIterator<Item = (&'a str, &'a str)>,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Self {
        let ai_hosts = ai
            .into_iter()
            .filter_map(|(name, url)| {
                let host = reqwest::Url::parse(url).ok()?.host_str()?.to_string();
                Some((name.to_string(), host))
            })
            .collect();
        let groups = groups
            .iter()
            .flat_map(|(g, cams)| cams.iter().map(move |c| (c.clone(), g.clone())))
            .collect();
        Self {
            ai_hosts,
            groups,
            bursts: Mutex::new(Bursts::default()),
        }
    }

    /// Label each candidate with its cause (see the module's doc). Called once per
    /// evaluation with every problem present.
    pub fn label(&self, candidates: &mut [Candidate]) {
        let offline: BTreeSet<String> = candidates
            .iter()
            .filter(|c| c.alertname == "WatchpostCameraOffline")
            .filter_map(|c| match &c.source {
                Source::Camera(id) if !self.groups.contains_key(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        let bursts = {
            // Each critical section leaves the map whole; survive a poisoned lock.
            let mut b = self.bursts.lock().unwrap_or_else(|p| p.into_inner());
            b.cause.retain(|cam, _| offline.contains(cam));
            let new: Vec<String> = offline.difference(&b.seen).cloned().collect();
            if new.len() >= BURST {
                let key = format!("cameras:{}", new[0]);
                for cam in new {
                    b.cause.insert(cam, key.clone());
                }
            }
            b.seen = offline;
            b.cause.clone()
        };
        self.assign(candidates, &bursts);
    }

    /// Label received alerts (Prometheus's) with their cause.
    pub fn label_received(&self, candidates: &mut [Candidate]) {
        self.assign(candidates, &BTreeMap::new());
    }

    fn assign(&self, candidates: &mut [Candidate], bursts: &BTreeMap<String, String>) {
        for c in candidates.iter_mut() {
            let cause = match &c.source {
                Source::Camera(id) if c.alertname == "WatchpostCameraOffline" => self
                    .groups
                    .get(id)
                    .map(|g| format!("camera_group:{g}"))
                    .or_else(|| bursts.get(id).cloned()),
                Source::Prometheus => c
                    .labels
                    .get("dependency")
                    .and_then(|d| self.of_dependency(d)),
                other => other.subject().map_or_else(
                    || self.of_dependency(&other.to_string()),
                    |s| match other.kind() {
                        SourceKind::Ai | SourceKind::Breaker => self.of_dependency(s),
                        _ => None,
                    },
                ),
            };
            if let Some(cause) = cause {
                c.labels.insert(CAUSE_LABEL.into(), cause);
            }
        }
    }

    /// The cause of a dependency by name (`postgres`, `redis`, an AI service).
    fn of_dependency(&self, name: &str) -> Option<String> {
        match name {
            "postgres" | "redis" => Some(name.to_string()),
            ai => self.ai_hosts.get(ai).map(|h| format!("ai_host:{h}")),
        }
    }
}

/// A cause in words, and the name of its alert.
fn describe(cause: &str) -> (&'static str, String) {
    match cause.split_once(':') {
        Some(("ai_host", host)) => ("WatchpostAIHostDown", format!("AI host {host}")),
        Some(("camera_group", g)) => ("WatchpostCameraGroupOffline", format!("camera group {g}")),
        Some(("cameras", _)) => (
            "WatchpostCamerasOffline",
            "cameras offline together".to_string(),
        ),
        _ => match cause {
            "postgres" => ("WatchpostDependencyDown", "PostgreSQL".to_string()),
            "redis" => ("WatchpostDependencyDown", "Redis".to_string()),
            other => ("WatchpostCause", other.to_string()),
        },
    }
}

/// What an alert's notification names as affected: its subject (`yolo26`, `porch`),
/// or, for a received one, its `dependency` label.
fn affected_name(a: &Alert) -> String {
    a.source
        .subject()
        .map(str::to_string)
        .or_else(|| a.labels.get("dependency").cloned())
        .unwrap_or_else(|| a.source.to_string())
}

/// One alert for the alerts of one cause (`members`, in the order they fired), as
/// the notifiers tell it: its source is `cause:<key>`, its severity the highest, its
/// start the first member's, and it names what is affected in its `affected` label
/// and its summary ("AI host 10.0.0.5 is down: yolo26, nemotron, clip").
pub fn group_alert(
    cause: &str,
    id: &str,
    members: &[&Alert],
    ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Alert {
    let (alertname, what) = describe(cause);
    let mut names: Vec<String> = Vec::new();
    for m in members {
        let n = affected_name(m);
        if !names.contains(&n) {
            names.push(n);
        }
    }
    let mut named = names
        .iter()
        .take(MAX_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_NAMED {
        named.push_str(&format!(" and {} more", names.len() - MAX_NAMED));
    }
    let severity = members
        .iter()
        .map(|m| m.severity)
        .max()
        .unwrap_or(Severity::Warning);
    let started_at = members.iter().map(|m| m.started_at).min().unwrap_or(now);
    let source = Source::Cause(cause.to_string());
    let verb = if alertname.ends_with("Offline") {
        "offline"
    } else {
        "down"
    };
    let summary = format!("{what} is {verb}: {named}");
    let description = members
        .iter()
        .map(|m| format!("- {}", m.summary))
        .collect::<Vec<_>>()
        .join("\n");
    let affected = format!("{what}: {named}");
    let mut c = Candidate {
        fingerprint: fingerprint(alertname, &source),
        alertname: alertname.to_string(),
        source: source.clone(),
        severity,
        summary,
        description,
        labels: BTreeMap::from([
            ("alertname".to_string(), alertname.to_string()),
            ("severity".to_string(), severity.as_str().to_string()),
            ("source".to_string(), source.to_string()),
            (CAUSE_LABEL.to_string(), cause.to_string()),
            (AFFECTED_LABEL.to_string(), affected),
        ]),
        started_at: None,
    };
    if let Some(m) = members.first() {
        if let Some(rb) = m.labels.get("runbook_url") {
            c.labels.insert("runbook_url".into(), rb.clone());
        }
    }
    let mut a = Alert::firing(&c, id, started_at, ended_at.unwrap_or(now));
    if let Some(end) = ended_at {
        a.state = AlertStatus::Resolved;
        a.ended_at = Some(end);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes() -> Causes {
        Causes::new(
            [
                ("yolo26", "http://10.0.0.5:8001"),
                ("nemotron", "http://10.0.0.5:8002"),
                ("clip", "http://10.0.0.6:8003"),
            ],
            &BTreeMap::from([(
                "poe".to_string(),
                vec!["porch".to_string(), "garage".to_string()],
            )]),
        )
    }

    fn camera(id: &str) -> Candidate {
        Candidate::for_camera(&crate::cameras::CameraProblem {
            camera: id.into(),
            status: crate::events::CameraStatus::Offline,
            critical: false,
            reason: "no image".into(),
        })
    }

    fn cause(c: &Candidate) -> Option<&str> {
        c.labels.get(CAUSE_LABEL).map(String::as_str)
    }

    #[test]
    fn services_on_one_host_share_a_cause_and_a_dependency_is_its_own() {
        let mut cs = vec![
            Candidate::from_problem(&Source::Ai("yolo26".into()), true, "down"),
            Candidate::from_problem(&Source::Breaker("nemotron".into()), true, "open"),
            Candidate::from_problem(&Source::Ai("clip".into()), false, "down"),
            Candidate::from_problem(&Source::Postgres, true, "down"),
            Candidate::from_problem(&Source::Worker("detection".into()), true, "stopped"),
        ];
        causes().label(&mut cs);
        let got: Vec<Option<&str>> = cs.iter().map(cause).collect();
        assert_eq!(
            got,
            vec![
                Some("ai_host:10.0.0.5"),
                Some("ai_host:10.0.0.5"),
                Some("ai_host:10.0.0.6"),
                Some("postgres"),
                None
            ]
        );
    }

    #[test]
    fn cameras_are_grouped_by_their_group_or_by_going_offline_together() {
        let c = causes();
        let mut cs = vec![camera("porch"), camera("a"), camera("b")];
        c.label(&mut cs);
        assert_eq!(cause(&cs[0]), Some("camera_group:poe"));
        assert_eq!(cause(&cs[1]), None, "two together are not a burst");
        // Three more in the next check: a burst of their own; a and b stay alone.
        let mut cs = vec![
            camera("a"),
            camera("b"),
            camera("c"),
            camera("d"),
            camera("e"),
        ];
        c.label(&mut cs);
        let got: Vec<Option<&str>> = cs.iter().map(cause).collect();
        assert_eq!(
            got,
            vec![
                None,
                None,
                Some("cameras:c"),
                Some("cameras:c"),
                Some("cameras:c")
            ]
        );
        // The burst's cause stays while they are offline.
        let mut cs = vec![camera("c"), camera("d")];
        c.label(&mut cs);
        assert_eq!(cause(&cs[1]), Some("cameras:c"));
    }

    #[test]
    fn a_received_alert_has_its_dependency_cause() {
        let mut c = Candidate::from_problem(&Source::Prometheus, true, "yolo26 down");
        c.labels.insert("dependency".into(), "yolo26".into());
        let mut cs = vec![c];
        causes().label(&mut cs);
        assert_eq!(cause(&cs[0]), Some("ai_host:10.0.0.5"));
    }

    #[test]
    fn a_cause_alert_names_what_is_affected() {
        let now = Utc::now();
        let a = |s: Source, sev| {
            let c = Candidate::from_problem(&s, sev, "down");
            Alert::firing(&c, "x", now, now)
        };
        let m = [
            a(Source::Ai("yolo26".into()), true),
            a(Source::Breaker("yolo26".into()), false),
            a(Source::Ai("nemotron".into()), false),
        ];
        let g = group_alert(
            "ai_host:10.0.0.5",
            "g1",
            &m.iter().collect::<Vec<_>>(),
            None,
            now,
        );
        assert_eq!(g.alertname, "WatchpostAIHostDown");
        assert_eq!(g.summary, "AI host 10.0.0.5 is down: yolo26, nemotron");
        assert_eq!(
            g.labels[AFFECTED_LABEL],
            "AI host 10.0.0.5: yolo26, nemotron"
        );
        assert_eq!(g.severity, Severity::Critical);
        assert_eq!(g.source.to_string(), "cause:ai_host:10.0.0.5");
        let r = group_alert(
            "ai_host:10.0.0.5",
            "g1",
            &m.iter().collect::<Vec<_>>(),
            Some(now),
            now,
        );
        assert_eq!(
            (r.state, r.fingerprint),
            (AlertStatus::Resolved, g.fingerprint)
        );
    }
}
