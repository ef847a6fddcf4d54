//! One root cause, one notification: the transitions the engine decides, gathered
//! by cause before they are told. Pure (the times come in as arguments), tested on
//! tokio's paused clock.
//!
//! - Alerts with the same `cause` label are one group; an alert without a cause is a
//!   group of its own.
//! - A group is told `group_wait` after its first alert fired, with every alert that
//!   fired meanwhile: one alert alone is told as itself, several as one alert of
//!   their cause naming what is affected ([`crate::alerts::group_alert`]). An alert
//!   that joins a group already told is not told again: its cause was.
//! - A group is told resolved once all its alerts have been resolved for
//!   `group_wait` (one back within that time continues the episode), in the shape
//!   its firing was told: a told firing always gets its resolution. A group that
//!   fired and resolved within `group_wait` is told nothing.
//! - When the alert whose source is the cause itself resolves (PostgreSQL back)
//!   while others of its group still fire, the group is told resolved and each
//!   remaining alert is told on its own: it outlived its cause.
//! - More than `flap_count` changes of a group in `flap_window`: it flaps. It is
//!   told once as flapping (in place of whatever was waiting), then nothing until
//!   it has had no change for `flap_window`; then its state is told once.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::message::{Kind, FLAPPING_LABEL};
use crate::alerts::{group_alert, Alert, AlertStatus, Source, SourceKind, CAUSE_LABEL};

/// Something to tell: the alert as told, and the alerts it stands for (the filters
/// and silences of the notifiers look at those).
#[derive(Debug, Clone, PartialEq)]
pub struct Tell {
    pub kind: Kind,
    pub alert: Alert,
    pub members: Vec<Alert>,
}

#[derive(Debug, Clone, Copy)]
pub struct GroupingRules {
    pub wait: Duration,
    pub flap_count: usize,
    pub flap_window: Duration,
}

#[derive(Debug)]
struct Group {
    /// Firing now, by fingerprint.
    members: BTreeMap<String, Alert>,
    /// The members as they resolved (the resolution names them).
    gone: BTreeMap<String, Alert>,
    /// When the first member fired (this episode).
    since: Instant,
    /// The firing as told (its shape is kept for the resolution).
    told: Option<Alert>,
    /// When the last member resolved (the resolution waits `wait`).
    quiet_since: Option<Instant>,
    /// Told as flapping; nothing else is told until it is stable.
    flapping: bool,
    /// Holds alerts firing since an earlier run, which may have been told then:
    /// its resolution is told (the claims know whether its firing was).
    adopted: bool,
    /// The id of this episode's cause alert.
    id: String,
}

#[derive(Debug)]
pub struct Grouping {
    rules: GroupingRules,
    groups: BTreeMap<String, Group>,
    /// Which group each firing alert is in.
    group_of: BTreeMap<String, String>,
    /// Each group's recent changes (a first alert firing, the last one resolving),
    /// kept across episodes: a group that comes and goes within `wait` flaps too.
    /// Bounded: at most `flap_count + 1` per group, none older than `flap_window`.
    changes: BTreeMap<String, VecDeque<Instant>>,
}

/// The group an alert belongs to: its cause, or itself.
fn key_of(a: &Alert) -> String {
    a.labels
        .get(CAUSE_LABEL)
        .cloned()
        .unwrap_or_else(|| format!("alert:{}", a.fingerprint))
}

impl Group {
    fn new(now: Instant) -> Self {
        Self {
            members: BTreeMap::new(),
            gone: BTreeMap::new(),
            since: now,
            told: None,
            quiet_since: None,
            flapping: false,
            adopted: false,
            id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The group as one alert: a lone alert as itself, several as their cause's.
    fn shape(&self, key: &str, ended_at: Option<DateTime<Utc>>, wall: DateTime<Utc>) -> Alert {
        let all: Vec<&Alert> = {
            let mut v: Vec<&Alert> = self.members.values().chain(self.gone.values()).collect();
            v.sort_by_key(|a| (a.started_at, a.fingerprint.clone()));
            v
        };
        match (key.strip_prefix("alert:"), all.as_slice()) {
            (Some(_), _) | (None, [_]) => {
                let mut a = (*all[0]).clone();
                if let Some(end) = ended_at {
                    a.state = AlertStatus::Resolved;
                    a.ended_at = Some(end);
                }
                a
            }
            _ => group_alert(key, &self.id, &all, ended_at, wall),
        }
    }

    fn all(&self) -> Vec<Alert> {
        self.members
            .values()
            .chain(self.gone.values())
            .cloned()
            .collect()
    }
}

impl Grouping {
    pub fn new(rules: GroupingRules) -> Self {
        Self {
            rules,
            groups: BTreeMap::new(),
            group_of: BTreeMap::new(),
            changes: BTreeMap::new(),
        }
    }

    /// Count a change of `key`'s group; whether it flaps now.
    fn changed(&mut self, key: &str, now: Instant) -> bool {
        let rules = self.rules;
        // Forget the groups whose changes are all older than the window.
        self.changes.retain(|_, c| {
            c.back()
                .is_some_and(|t| now.duration_since(*t) <= rules.flap_window)
        });
        let c = self.changes.entry(key.to_string()).or_default();
        c.push_back(now);
        while c
            .front()
            .is_some_and(|t| now.duration_since(*t) > rules.flap_window)
            || c.len() > rules.flap_count + 1
        {
            c.pop_front();
        }
        c.len() > rules.flap_count
    }

    /// The last change of `key`'s group.
    fn last_change(&self, key: &str) -> Option<Instant> {
        self.changes.get(key).and_then(|c| c.back().copied())
    }

    /// `a` fired.
    pub fn fire(&mut self, a: Alert, now: Instant, wall: DateTime<Utc>) -> Vec<Tell> {
        let key = key_of(&a);
        self.group_of.insert(a.fingerprint.clone(), key.clone());
        let g = self
            .groups
            .entry(key.clone())
            .or_insert_with(|| Group::new(now));
        let first = g.members.is_empty();
        g.gone.remove(&a.fingerprint);
        g.members.insert(a.fingerprint.clone(), a);
        if !first {
            return Vec::new();
        }
        if g.quiet_since.take().is_some() {
            // Back within the wait after its resolution: the same episode, and the
            // resolution was no change.
            if let Some(c) = self.changes.get_mut(&key) {
                c.pop_back();
            }
            return Vec::new();
        }
        if g.told.is_none() {
            g.since = now;
        }
        let flaps = self.changed(&key, now);
        self.flap(&key, flaps, wall)
    }

    /// `a` has fired since an earlier run (taken over at start).
    pub fn adopt(&mut self, a: Alert, now: Instant, wall: DateTime<Utc>) -> Vec<Tell> {
        let key = key_of(&a);
        let tells = self.fire(a, now, wall);
        if let Some(g) = self.groups.get_mut(&key) {
            g.adopted = true;
        }
        tells
    }

    /// `a` resolved.
    pub fn resolve(&mut self, a: Alert, now: Instant, wall: DateTime<Utc>) -> Vec<Tell> {
        let Some(key) = self.group_of.remove(&a.fingerprint) else {
            return Vec::new();
        };
        let Some(g) = self.groups.get_mut(&key) else {
            return Vec::new();
        };
        if g.members.remove(&a.fingerprint).is_none() {
            return Vec::new();
        }
        // The alert whose source is the cause itself (PostgreSQL's, Redis's).
        let is_root = matches!(
            (&a.source, key.as_str()),
            (Source::Postgres, "postgres") | (Source::Redis, "redis")
        );
        g.gone.insert(a.fingerprint.clone(), a);
        if !g.members.is_empty() {
            if is_root && g.told.is_some() && !g.flapping {
                return self.outlived(&key, wall);
            }
            return Vec::new();
        }
        if g.told.is_some() || g.flapping || g.adopted {
            // Told once it held for the wait (`tick`); one back within it continues
            // the episode (and takes this change back).
            g.quiet_since = Some(now);
        } else {
            // Fired and resolved before it was told: nothing to tell, but a change.
            self.groups.remove(&key);
        }
        let flaps = self.changed(&key, now);
        self.flap(&key, flaps, wall)
    }

    /// The cause of `key` resolved while alerts it explained still fire: the cause
    /// is told resolved, and each of those alerts on its own.
    fn outlived(&mut self, key: &str, wall: DateTime<Utc>) -> Vec<Tell> {
        let Some(g) = self.groups.remove(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(told) = &g.told {
            let mut r = told.clone();
            r.state = AlertStatus::Resolved;
            r.ended_at = Some(wall);
            out.push(Tell {
                kind: Kind::Resolved,
                alert: r,
                members: g.all(),
            });
        }
        for (fp, m) in g.members {
            let own = format!("alert:{fp}");
            let mut alone = Group::new(g.since);
            alone.told = Some(m.clone());
            alone.members.insert(fp.clone(), m.clone());
            self.group_of.insert(fp, own.clone());
            self.groups.insert(own, alone);
            out.push(Tell {
                kind: Kind::Firing,
                members: vec![m.clone()],
                alert: m,
            });
        }
        out
    }

    /// The group started flapping (`flaps`): told once as such.
    fn flap(&mut self, key: &str, flaps: bool, wall: DateTime<Utc>) -> Vec<Tell> {
        if !flaps {
            return Vec::new();
        }
        let changes = self.changes.get(key).map_or(0, VecDeque::len);
        let Some(g) = self.groups.get_mut(key) else {
            return Vec::new();
        };
        if g.flapping {
            return Vec::new();
        }
        g.flapping = true;
        let mut a = g.shape(key, None, wall);
        a.state = AlertStatus::Firing;
        a.ended_at = None;
        a.labels.insert(FLAPPING_LABEL.into(), "true".into());
        a.summary = format!(
            "{}: it changed {} times within {} min, and is told again once it is stable",
            a.summary,
            changes,
            self.rules.flap_window.as_secs().div_ceil(60)
        );
        g.told = Some(a.clone());
        vec![Tell {
            kind: Kind::Firing,
            alert: a,
            members: g.all(),
        }]
    }

    /// What is due at `now`: groups whose wait is over, resolutions that held, and
    /// flapping groups that are stable again.
    pub fn tick(&mut self, now: Instant, wall: DateTime<Utc>) -> Vec<Tell> {
        let wait = self.rules.wait;
        let window = self.rules.flap_window;
        let mut out = Vec::new();
        let mut done = Vec::new();
        self.changes
            .retain(|_, c| c.back().is_some_and(|t| now.duration_since(*t) <= window));
        for (key, g) in self.groups.iter_mut() {
            if g.flapping {
                let last = self.changes.get(key).and_then(|c| c.back().copied());
                if last.is_some_and(|t| now.duration_since(t) < window) {
                    continue;
                }
                g.flapping = false;
                let flap = g.told.take();
                if g.members.is_empty() {
                    if let Some(mut r) = flap {
                        r.state = AlertStatus::Resolved;
                        r.ended_at = Some(wall);
                        r.summary = format!(
                            "{}: stable again, and resolved",
                            g.shape(key, None, wall).summary
                        );
                        out.push(Tell {
                            kind: Kind::Resolved,
                            alert: r,
                            members: g.all(),
                        });
                    }
                    done.push(key.clone());
                } else {
                    let a = g.shape(key, None, wall);
                    g.told = Some(a.clone());
                    g.quiet_since = None;
                    out.push(Tell {
                        kind: Kind::Firing,
                        alert: a,
                        members: g.all(),
                    });
                }
                continue;
            }
            if g.told.is_none() && !g.members.is_empty() && now.duration_since(g.since) >= wait {
                let a = g.shape(key, None, wall);
                g.told = Some(a.clone());
                out.push(Tell {
                    kind: Kind::Firing,
                    alert: a,
                    members: g.all(),
                });
            } else if let Some(quiet) = g.quiet_since {
                if now.duration_since(quiet) >= wait {
                    // An adopted group resolved before it was told again: in the
                    // shape it was told in by the earlier run.
                    let told = g.told.clone().unwrap_or_else(|| g.shape(key, None, wall));
                    let ended = g
                        .gone
                        .values()
                        .filter_map(|a| a.ended_at)
                        .max()
                        .unwrap_or(wall);
                    let mut r = if told.source.kind() == SourceKind::Cause {
                        g.shape(key, Some(ended), wall)
                    } else {
                        let mut r = told.clone();
                        r.state = AlertStatus::Resolved;
                        r.ended_at = Some(ended);
                        r
                    };
                    r.duration_seconds =
                        (ended - r.started_at).num_milliseconds().max(0) as f64 / 1000.0;
                    out.push(Tell {
                        kind: Kind::Resolved,
                        alert: r,
                        members: g.all(),
                    });
                    done.push(key.clone());
                }
            }
        }
        for key in done {
            if let Some(g) = self.groups.remove(&key) {
                for fp in g.members.keys() {
                    self.group_of.remove(fp);
                }
            }
        }
        out
    }

    /// Groups, alerts in them and groups' recent changes held.
    pub fn entries(&self) -> usize {
        self.groups.len()
            + self.group_of.len()
            + self.changes.values().map(VecDeque::len).sum::<usize>()
    }

    /// When `tick` has something to do next.
    pub fn next_due(&self) -> Option<Instant> {
        let wait = self.rules.wait;
        self.groups
            .iter()
            .filter_map(|(key, g)| {
                if g.flapping {
                    Some(self.last_change(key).unwrap_or(g.since) + self.rules.flap_window)
                } else if g.told.is_none() && !g.members.is_empty() {
                    Some(g.since + wait)
                } else {
                    g.quiet_since.map(|q| q + wait)
                }
            })
            .min()
    }

    /// The firing notifications told and not resolved yet: (as told, the alerts it
    /// stands for). The repeats and the silences' ends look at these.
    pub fn told_firing(&self) -> Vec<(Alert, Vec<Alert>)> {
        self.groups
            .values()
            .filter(|g| g.quiet_since.is_none() && !g.members.is_empty())
            .filter_map(|g| Some((g.told.clone()?, g.members.values().cloned().collect())))
            .collect()
    }
}

#[cfg(test)]
#[path = "grouping_tests.rs"]
mod tests;
