//! The decision, as a pure state machine: which problems fire, which resolve. A
//! problem must hold for its severity's `for:` before it fires (critical: 0 s by
//! default, warning: 30 s), as a Prometheus rule's `for:` does; a firing alert
//! resolves as soon as its problem is gone. The times come in as arguments (tokio's
//! clock for `for:`, the wall clock for what is shown), so the rules are tested without
//! a runtime.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

use super::alert::{Alert, Candidate, CAUSE_LABEL};

use crate::events::Severity;

/// What changed in one evaluation.
#[derive(Debug, Clone)]
pub enum Change {
    Fired(Alert),
    Resolved(Alert),
}

#[derive(Debug)]
struct Pending {
    since: Instant,
    since_wall: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Rules {
    for_critical: Duration,
    for_warning: Duration,
    pending: BTreeMap<String, Pending>,
    firing: BTreeMap<String, Alert>,
}

impl Rules {
    pub fn new(for_critical: Duration, for_warning: Duration) -> Self {
        Self {
            for_critical,
            for_warning,
            pending: BTreeMap::new(),
            firing: BTreeMap::new(),
        }
    }

    fn hold(&self, severity: Severity) -> Duration {
        match severity {
            Severity::Critical => self.for_critical,
            Severity::Warning => self.for_warning,
        }
    }

    /// The problems present at `now`: fire those that held long enough, resolve the
    /// firing ones that are gone. `new_id` names a new firing.
    pub fn observe(
        &mut self,
        now: Instant,
        wall: DateTime<Utc>,
        problems: &[Candidate],
        mut new_id: impl FnMut() -> String,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        let present: BTreeMap<&str, &Candidate> = problems
            .iter()
            .map(|c| (c.fingerprint.as_str(), c))
            .collect();
        let gone: Vec<String> = self
            .firing
            .keys()
            .filter(|fp| !present.contains_key(fp.as_str()))
            .cloned()
            .collect();
        for fp in gone {
            if let Some(mut a) = self.firing.remove(&fp) {
                a.state = super::alert::AlertStatus::Resolved;
                a.ended_at = Some(wall);
                a.duration_seconds =
                    (wall - a.started_at).num_milliseconds().max(0) as f64 / 1000.0;
                changes.push(Change::Resolved(a));
            }
        }
        self.pending
            .retain(|fp, _| present.contains_key(fp.as_str()));
        for (fp, c) in present {
            if let Some(a) = self.firing.get_mut(fp) {
                // Still firing: its words may change (an error's text), not its identity.
                a.summary.clone_from(&c.summary);
                a.duration_seconds =
                    (wall - a.started_at).num_milliseconds().max(0) as f64 / 1000.0;
                continue;
            }
            if let Some(started) = c.started_at {
                // Held elsewhere already: fires at once, from when it started there.
                self.pending.remove(fp);
                let alert = Alert::firing(c, &new_id(), started, wall);
                self.firing.insert(fp.to_string(), alert.clone());
                changes.push(Change::Fired(alert));
                continue;
            }
            let hold = self.hold(c.severity);
            let since = self.pending.entry(fp.to_string()).or_insert(Pending {
                since: now,
                since_wall: wall,
            });
            if now.duration_since(since.since) >= hold {
                let started = since.since_wall;
                self.pending.remove(fp);
                let alert = Alert::firing(c, &new_id(), started, wall);
                self.firing.insert(fp.to_string(), alert.clone());
                changes.push(Change::Fired(alert));
            }
        }
        // A cause that fires confirms the problems it explains: they fire at once
        // rather than after their own `for:` (a host that is down is down for all
        // its services), so that its notification names them all.
        let confirmed: std::collections::BTreeSet<&str> = self
            .firing
            .values()
            .filter_map(|a| a.labels.get(CAUSE_LABEL).map(String::as_str))
            .collect();
        let now_confirmed: Vec<&Candidate> = problems
            .iter()
            .filter(|c| self.pending.contains_key(&c.fingerprint))
            .filter(|c| {
                c.labels
                    .get(CAUSE_LABEL)
                    .is_some_and(|cause| confirmed.contains(cause.as_str()))
            })
            .collect();
        for c in now_confirmed {
            if let Some(p) = self.pending.remove(&c.fingerprint) {
                let alert = Alert::firing(c, &new_id(), p.since_wall, wall);
                self.firing.insert(c.fingerprint.clone(), alert.clone());
                changes.push(Change::Fired(alert));
            }
        }
        changes
    }

    /// Take over an alert that was already firing (loaded from the history at start):
    /// it keeps its id and start, and its problem does not wait for `for:` again.
    pub fn adopt(&mut self, alert: Alert) -> Option<Alert> {
        self.pending.remove(&alert.fingerprint);
        self.firing.insert(alert.fingerprint.clone(), alert)
    }

    /// Alerts firing and problems pending.
    pub fn entries(&self) -> usize {
        self.firing.len() + self.pending.len()
    }

    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.firing.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(source: &str, critical: bool) -> Candidate {
        let source = crate::events::Source::parse(source).expect("a source");
        Candidate::from_problem(&source, critical, &format!("{source} unhealthy"))
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id{n}")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_critical_problem_fires_at_once_and_resolves_when_gone() {
        let mut r = Rules::new(Duration::ZERO, Duration::from_secs(30));
        let mut id = ids();
        let pg = [problem("postgres", true)];
        let c = r.observe(Instant::now(), crate::time::now(), &pg, &mut id);
        assert!(
            matches!(&c[..], [Change::Fired(a)] if a.id == "id1" && a.source.to_string() == "postgres")
        );
        assert!(
            r.observe(Instant::now(), crate::time::now(), &pg, &mut id)
                .is_empty(),
            "no repeat"
        );
        let c = r.observe(Instant::now(), crate::time::now(), &[], &mut id);
        assert!(matches!(&c[..], [Change::Resolved(a)] if a.id == "id1" && a.ended_at.is_some()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_warning_fires_only_after_its_for_and_a_blip_never_does() {
        let mut r = Rules::new(Duration::ZERO, Duration::from_secs(30));
        let mut id = ids();
        let fl = [problem("ai:florence", false)];
        let first = crate::time::now();
        assert!(r.observe(Instant::now(), first, &fl, &mut id).is_empty());
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(r
            .observe(Instant::now(), crate::time::now(), &fl, &mut id)
            .is_empty());
        // Gone for one evaluation: the wait starts again.
        assert!(r
            .observe(Instant::now(), crate::time::now(), &[], &mut id)
            .is_empty());
        assert!(r
            .observe(Instant::now(), crate::time::now(), &fl, &mut id)
            .is_empty());
        tokio::time::advance(Duration::from_secs(30)).await;
        let c = r.observe(Instant::now(), crate::time::now(), &fl, &mut id);
        assert!(matches!(&c[..], [Change::Fired(_)]), "{c:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_adopted_alert_keeps_its_id_and_start_and_resolves_like_any() {
        let mut r = Rules::new(Duration::ZERO, Duration::from_secs(30));
        let mut id = ids();
        let fl = problem("ai:florence", false);
        let then = crate::time::now() - chrono::Duration::hours(1);
        r.adopt(Alert::firing(&fl, "stored-1", then, crate::time::now()));
        assert!(
            r.observe(
                Instant::now(),
                crate::time::now(),
                std::slice::from_ref(&fl),
                &mut id
            )
            .is_empty(),
            "still firing: no second alert, no wait"
        );
        let c = r.observe(Instant::now(), crate::time::now(), &[], &mut id);
        match &c[..] {
            [Change::Resolved(a)] => {
                assert_eq!((a.id.as_str(), a.started_at), ("stored-1", then));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_firing_cause_confirms_its_other_problems_at_once() {
        let mut r = Rules::new(Duration::ZERO, Duration::from_secs(30));
        let mut id = ids();
        let with_cause = |c: Candidate| {
            let mut c = c;
            c.labels
                .insert(CAUSE_LABEL.into(), "ai_host:10.0.0.5".into());
            c
        };
        let clip = with_cause(problem("ai:clip", false));
        let other = problem("ai:florence", false);
        let c = r.observe(
            Instant::now(),
            crate::time::now(),
            &[clip.clone(), other.clone()],
            &mut id,
        );
        assert!(c.is_empty(), "warnings wait for their for:");
        tokio::time::advance(Duration::from_secs(2)).await;
        let yolo = with_cause(problem("ai:yolo26", true));
        let c = r.observe(
            Instant::now(),
            crate::time::now(),
            &[clip, other, yolo],
            &mut id,
        );
        let fired: Vec<String> = c
            .iter()
            .filter_map(|c| match c {
                Change::Fired(a) => Some(a.source.to_string()),
                Change::Resolved(_) => None,
            })
            .collect();
        assert_eq!(
            fired,
            vec!["ai:yolo26", "ai:clip"],
            "florence has no cause: it waits"
        );
    }
}
