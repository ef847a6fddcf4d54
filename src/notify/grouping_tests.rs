//! The grouping on tokio's paused clock: what is told, when, and how often.

use super::*;
use crate::alerts::{Candidate, SourceKind};
use crate::notify::message::FLAPPING_LABEL;

const WAIT: Duration = Duration::from_secs(10);

fn rules() -> GroupingRules {
    GroupingRules {
        wait: WAIT,
        flap_count: 3,
        flap_window: Duration::from_secs(600),
    }
}

fn alert(source: Source, cause: Option<&str>) -> Alert {
    let mut c = Candidate::from_problem(&source, true, &format!("{source} is down"));
    if let Some(cause) = cause {
        c.labels.insert(CAUSE_LABEL.into(), cause.into());
    }
    Alert::firing(
        &c,
        &uuid::Uuid::new_v4().to_string(),
        Utc::now(),
        Utc::now(),
    )
}

fn ai(name: &str) -> Alert {
    alert(Source::Ai(name.into()), Some("ai_host:10.0.0.5"))
}

fn resolved(a: &Alert) -> Alert {
    let mut r = a.clone();
    r.state = AlertStatus::Resolved;
    r.ended_at = Some(Utc::now());
    r
}

/// Drives a `Grouping` as the notifier does: transitions in, ticks when due.
struct Run {
    g: Grouping,
    told: Vec<Tell>,
}

impl Run {
    fn new(rules: GroupingRules) -> Self {
        Self {
            g: Grouping::new(rules),
            told: Vec::new(),
        }
    }

    fn fire(&mut self, a: &Alert) {
        let t = self.g.fire(a.clone(), Instant::now(), Utc::now());
        self.told.extend(t);
    }

    fn resolve(&mut self, a: &Alert) {
        let t = self.g.resolve(resolved(a), Instant::now(), Utc::now());
        self.told.extend(t);
    }

    /// Let `d` pass, ticking whenever something is due.
    async fn pass(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            let next = self.g.next_due().filter(|t| *t <= end);
            let Some(at) = next else {
                tokio::time::advance(end.saturating_duration_since(Instant::now())).await;
                return;
            };
            tokio::time::advance(at.saturating_duration_since(Instant::now())).await;
            let t = self.g.tick(Instant::now(), Utc::now());
            self.told.extend(t);
        }
    }

    fn titles(&self) -> Vec<(Kind, String)> {
        self.told
            .iter()
            .map(|t| (t.kind, t.alert.summary.clone()))
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn five_services_of_one_host_are_one_firing_and_one_resolution() {
    let mut r = Run::new(rules());
    let names = ["yolo26", "nemotron", "florence", "clip", "enrichment"];
    let alerts: Vec<Alert> = names.iter().map(|n| ai(n)).collect();
    for a in &alerts {
        r.fire(a);
        r.pass(Duration::from_millis(700)).await;
    }
    assert!(r.told.is_empty(), "nothing before the wait is over");
    r.pass(WAIT).await;
    assert_eq!(r.told.len(), 1, "{:?}", r.titles());
    let t = &r.told[0];
    assert_eq!(t.kind, Kind::Firing);
    assert_eq!(t.alert.source.kind(), SourceKind::Cause);
    assert_eq!(
        t.alert.summary,
        "AI host 10.0.0.5 is down: yolo26, nemotron, florence, clip, enrichment"
    );
    assert_eq!(t.members.len(), 5);
    // A breaker that opens later is explained by the same cause: not told.
    let breaker = alert(Source::Breaker("yolo26".into()), Some("ai_host:10.0.0.5"));
    r.fire(&breaker);
    r.pass(Duration::from_secs(30)).await;
    for a in alerts.iter().chain([&breaker]) {
        r.resolve(a);
    }
    r.pass(WAIT).await;
    assert_eq!(r.told.len(), 2, "{:?}", r.titles());
    let t = &r.told[1];
    assert_eq!(t.kind, Kind::Resolved);
    assert_eq!(t.alert.fingerprint, r.told[0].alert.fingerprint);
    assert_eq!(t.alert.state, AlertStatus::Resolved);
}

#[tokio::test(start_paused = true)]
async fn a_lone_alert_is_told_as_itself_after_the_wait_and_no_later() {
    let mut r = Run::new(rules());
    let a = alert(Source::Postgres, Some("postgres"));
    r.fire(&a);
    r.pass(WAIT - Duration::from_millis(1)).await;
    assert!(r.told.is_empty());
    r.pass(Duration::from_millis(1)).await;
    assert_eq!(r.told.len(), 1);
    assert_eq!(r.told[0].alert.fingerprint, a.fingerprint, "told as itself");
    r.resolve(&a);
    r.pass(WAIT).await;
    assert_eq!(r.told[1].kind, Kind::Resolved);
    assert_eq!(r.told[1].alert.fingerprint, a.fingerprint);
}

#[tokio::test(start_paused = true)]
async fn a_blip_shorter_than_the_wait_is_told_nothing_and_a_quick_return_continues() {
    let mut r = Run::new(rules());
    let a = alert(Source::Redis, None);
    r.fire(&a);
    r.pass(Duration::from_secs(3)).await;
    r.resolve(&a);
    r.pass(Duration::from_secs(60)).await;
    assert!(r.told.is_empty());
    let mut r = Run::new(rules());
    r.fire(&a);
    r.pass(WAIT).await;
    assert_eq!(r.told.len(), 1);
    // Resolved, back within the wait: the same episode, nothing more told.
    r.resolve(&a);
    r.pass(Duration::from_secs(5)).await;
    r.fire(&a);
    r.pass(Duration::from_secs(60)).await;
    assert_eq!(r.told.len(), 1, "{:?}", r.titles());
}

#[tokio::test(start_paused = true)]
async fn an_alert_that_outlives_its_cause_is_told_on_its_own() {
    let mut r = Run::new(rules());
    let pg = alert(Source::Postgres, Some("postgres"));
    let mut rule = alert(Source::Prometheus, Some("postgres"));
    rule.fingerprint = "am_1".into();
    rule.labels.insert("dependency".into(), "postgres".into());
    r.fire(&pg);
    r.fire(&rule);
    r.pass(WAIT).await;
    assert_eq!(r.told.len(), 1, "one notification for the cause");
    r.resolve(&pg);
    let kinds: Vec<(Kind, &str)> = r
        .told
        .iter()
        .skip(1)
        .map(|t| (t.kind, t.alert.fingerprint.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (Kind::Resolved, r.told[0].alert.fingerprint.as_str()),
            (Kind::Firing, "am_1")
        ]
    );
    r.resolve(&rule);
    r.pass(WAIT).await;
    assert_eq!(
        r.told.last().map(|t| (t.kind, t.alert.fingerprint.clone())),
        Some((Kind::Resolved, "am_1".to_string()))
    );
}

#[tokio::test(start_paused = true)]
async fn a_dependency_flapping_ten_times_in_five_minutes_is_told_at_most_three_times() {
    // A crash loop: down for 5 s every 30 s, ten times.
    let mut r = Run::new(rules());
    let a = alert(Source::Ai("yolo26".into()), Some("ai_host:10.0.0.5"));
    for _ in 0..10 {
        r.fire(&a);
        r.pass(Duration::from_secs(5)).await;
        r.resolve(&a);
        r.pass(Duration::from_secs(25)).await;
    }
    r.pass(Duration::from_secs(3600)).await;
    let told = r.titles();
    assert!(told.len() <= 3, "{told:?}");
    assert!(told[0].1.contains("changed 4 times"), "{told:?}");
    assert!(r.told[0].alert.labels.contains_key(FLAPPING_LABEL));
    let last = r.told.last().expect("told");
    assert_eq!(last.kind, Kind::Resolved, "stable again, and resolved");
    assert_eq!(last.alert.fingerprint, r.told[0].alert.fingerprint);
}

#[tokio::test(start_paused = true)]
async fn longer_flaps_are_told_until_they_are_seen_to_flap_then_once_more() {
    // Down 15 s, up 15 s: each change outlasts the wait.
    let mut r = Run::new(rules());
    let a = alert(Source::Redis, None);
    for _ in 0..10 {
        r.fire(&a);
        r.pass(Duration::from_secs(15)).await;
        r.resolve(&a);
        r.pass(Duration::from_secs(15)).await;
    }
    r.pass(Duration::from_secs(3600)).await;
    let told = r.titles();
    assert!(told.len() <= 5, "flap_count + 2 at most: {told:?}");
    assert_eq!(told.last().map(|t| t.0), Some(Kind::Resolved));
}

#[tokio::test(start_paused = true)]
async fn a_flapping_group_still_firing_when_stable_is_told_firing_then_resolved() {
    let mut r = Run::new(rules());
    let a = alert(Source::Redis, None);
    for _ in 0..3 {
        r.fire(&a);
        r.pass(Duration::from_secs(2)).await;
        r.resolve(&a);
        r.pass(Duration::from_secs(2)).await;
    }
    r.fire(&a);
    r.pass(Duration::from_secs(700)).await;
    let kinds: Vec<Kind> = r.told.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, vec![Kind::Firing, Kind::Firing], "{:?}", r.titles());
    assert!(!r.told[1].alert.labels.contains_key(FLAPPING_LABEL));
    r.resolve(&a);
    r.pass(WAIT).await;
    assert_eq!(r.told.last().map(|t| t.kind), Some(Kind::Resolved));
}

#[tokio::test(start_paused = true)]
async fn what_is_kept_stays_bounded() {
    let mut r = Run::new(rules());
    for i in 0..200 {
        let a = alert(Source::Camera(format!("c{i}")), None);
        r.fire(&a);
        r.resolve(&a);
    }
    r.pass(Duration::from_secs(601)).await;
    assert!(r.g.groups.is_empty());
    assert!(r.g.group_of.is_empty());
    r.fire(&alert(Source::Redis, None));
    assert_eq!(
        r.g.changes.len(),
        1,
        "changes older than the window are forgotten"
    );
}

#[tokio::test(start_paused = true)]
async fn an_alert_taken_over_at_start_and_resolved_at_once_is_told_resolved() {
    let mut r = Run::new(rules());
    let a = alert(Source::Ai("clip".into()), Some("ai_host:10.0.0.6"));
    let t = r.g.adopt(a.clone(), Instant::now(), Utc::now());
    assert!(t.is_empty());
    r.resolve(&a);
    r.pass(WAIT).await;
    let kinds: Vec<(Kind, String)> = r
        .told
        .iter()
        .map(|t| (t.kind, t.alert.fingerprint.clone()))
        .collect();
    assert_eq!(kinds, vec![(Kind::Resolved, a.fingerprint.clone())]);
}
