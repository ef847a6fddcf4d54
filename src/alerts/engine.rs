//! The alert engine (`alert_engine` worker): the one place that decides alerts and
//! announces health changes. Every `alerts.evaluate_interval_seconds` it reads the
//! latest assessment (the prober's last round with the supervisor's workers and the
//! breakers; no I/O), lets the rules decide, publishes `alert.created` /
//! `alert.resolved` and `system.health_changed`, and writes the history.
//!
//! Prometheus's alerts come in through Alertmanager's webhook (`receive`): each is
//! an alert of source `prometheus`, keyed by Alertmanager's fingerprint, firing until
//! Alertmanager says it resolved (or a full notification of its group leaves it
//! out). They are decided, published and stored like the engine's own.
//!
//! The history survives restarts: at start the firing rows are loaded and taken over,
//! so a problem still present stays the same alert (no second `alert.created`) and one
//! that is gone is resolved. Writes go through an in-order outbox: while PostgreSQL is
//! away the engine keeps deciding in memory and writes everything, in order, when it
//! is back.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::alert::{Alert, AlertPage, Candidate, HistoryUnavailable};
use super::causes::Causes;
use super::health_line::health_change_line;
use super::metrics::{AlertMetrics, Received};
use super::problems::ProblemSource;
use super::rules::{Change, Rules};
use super::silences::Silences;
use super::webhook::{self, Payload, Receipt, Refused, MAX_RECEIVED};
use crate::config::{secs, AlertsConfig};
use crate::events::{AlertCreated, AlertResolved, Event, EventBus, Severity, SystemHealthChanged};
use crate::health::degradation::Mode;
use crate::health::{FullHealth, Health, HealthState};
use crate::json::Pagination;
use crate::names::workers;
use crate::prom::Metrics;
use crate::store::{AlertQuery, AlertRow, AlertState, Store, StoreError};
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// A write of the history, in the order the decisions were made.
#[derive(Debug, Clone)]
enum Write {
    Open(AlertRow),
    Close {
        id: String,
        ended_at: chrono::DateTime<chrono::Utc>,
    },
}

/// A Prometheus alert that Alertmanager says fires.
#[derive(Debug, Clone)]
struct External {
    candidate: Candidate,
    /// The group it came in (unknown for one taken over at start).
    group: Option<String>,
}

/// The most resolutions waiting for the sender (it takes them every round).
const RESOLVED_OUT: usize = 10_000;

struct State {
    /// watchpost's own alerts, decided every evaluation.
    rules: Rules,
    /// Received alerts, in their own namespace: decided only when a notification
    /// changes them, so holding many costs nothing per evaluation.
    received: Rules,
    /// Prometheus's alerts firing now, by their (namespaced) fingerprint.
    external: BTreeMap<String, External>,
    /// Resolutions the sender has not taken yet.
    resolved_out: VecDeque<Alert>,
    outbox: VecDeque<Write>,
    /// Have the firing rows of the history been taken over yet?
    loaded: bool,
    /// The health status and mode last announced.
    announced: Option<(HealthState, Mode)>,
}

/// Told of every firing and resolution the engine decides, as it decides it (the
/// notifiers listen). Called inside the decision: it must only hand the alert on.
pub trait TransitionListener: Send + Sync {
    fn transition(&self, alert: &Alert);
    /// An alert firing since an earlier run, taken over at start (it may have been
    /// told then).
    fn adopted(&self, alert: &Alert);
}

pub struct AlertEngine {
    listener: std::sync::OnceLock<Arc<dyn TransitionListener>>,
    /// `alerting.runbook_base_url`, ending with `/` (unset: no runbook is a link).
    runbooks: std::sync::OnceLock<String>,
    /// This instance's id: the `host` label of its host-local alerts.
    host: std::sync::OnceLock<String>,
    health: Arc<Health>,
    /// Every capability's problems (`problems.rs`), registered at start.
    sources: Vec<Arc<dyn ProblemSource>>,
    silences: Arc<Silences>,
    /// What causes what: every candidate is labelled with its cause.
    causes: Causes,
    /// Woken on every change the sender should act on.
    changed: Arc<tokio::sync::Notify>,
    store: Arc<Store>,
    events: EventBus,
    metrics: AlertMetrics,
    interval: Duration,
    state: Mutex<State>,
}

impl AlertEngine {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: &AlertsConfig,
        health: Arc<Health>,
        sources: Vec<Arc<dyn ProblemSource>>,
        silences: Arc<Silences>,
        causes: Causes,
        changed: Arc<tokio::sync::Notify>,
        store: Arc<Store>,
        events: EventBus,
        metrics: &Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            listener: std::sync::OnceLock::new(),
            runbooks: std::sync::OnceLock::new(),
            host: std::sync::OnceLock::new(),
            health,
            sources,
            silences,
            causes,
            changed,
            store,
            events,
            metrics: AlertMetrics::new(metrics),
            interval: secs(cfg.evaluate_interval_seconds),
            state: Mutex::new(State {
                rules: Rules::new(
                    secs(cfg.for_critical_seconds),
                    secs(cfg.for_warning_seconds),
                ),
                // A received alert held its `for:` where it was decided.
                received: Rules::new(Duration::ZERO, Duration::ZERO),
                external: BTreeMap::new(),
                resolved_out: VecDeque::new(),
                outbox: VecDeque::new(),
                loaded: false,
                announced: None,
            }),
        })
    }

    /// This instance's id (set once, at start): the `host` of its host-local alerts;
    /// another host's, found firing in the shared history, are left to that host.
    pub fn on_host(&self, instance: &str) {
        let _ = self.host.set(instance.to_string());
    }

    /// Link runbooks under `base` in what is listed (set once, at start; empty: the
    /// shipped runbook as watchpost serves it, and nothing else).
    pub fn link_runbooks_under(&self, base: &str) {
        if !base.is_empty() {
            let base = if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            };
            let _ = self.runbooks.set(base);
        }
    }

    /// Tell `listener` of every transition from now on (set once, at start).
    pub fn listen(&self, listener: Arc<dyn TransitionListener>) {
        let _ = self.listener.set(listener);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the state whole; survive a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::ALERT_ENGINE,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        loop {
            // Store operations are bounded (10 s each); a long outbox is written a
            // bounded slice at a time.
            ctx.beat_while(Duration::from_secs(60), self.evaluate_once())
                .await;
            if !ctx.idle(self.interval).await {
                return Ok(());
            }
        }
    }

    /// One evaluation: take over the stored firing alerts (once), decide, announce,
    /// write.
    pub async fn evaluate_once(&self) {
        if !self.lock().loaded {
            if let Ok(rows) = self.store.firing_alerts().await {
                self.take_over(rows);
            }
        }
        if !self.silences.loaded() {
            if let Err(e) = self.silences.load().await {
                tracing::debug!(error = %e, "silences not read yet");
            }
        }
        self.silences.prune_stored().await;
        let health = self.health.latest();
        self.decide(health.as_ref());
        self.flush().await;
    }

    /// The firing rows of the history become this engine's firing alerts. One that
    /// this run already fired (PostgreSQL was away at start) keeps the stored id and
    /// start, and its own row is not written again.
    fn take_over(&self, rows: Vec<AlertRow>) {
        let now = crate::time::now();
        let mut st = self.lock();
        for row in rows {
            let Some(stored) = Alert::from_row(row, now) else {
                continue;
            };
            if self
                .host
                .get()
                .is_some_and(|me| stored.is_another_host_s(me))
            {
                continue; // decided and resolved by its own host
            }
            let kept = stored.clone();
            let adopted = if !stored.source.is_own() {
                // Alertmanager tells when it resolves; until then it fires.
                st.external
                    .entry(stored.fingerprint.clone())
                    .or_insert_with(|| External {
                        candidate: Candidate::from_alert(&stored),
                        group: None,
                    });
                st.received.adopt(stored)
            } else {
                st.rules.adopt(stored)
            };
            match adopted {
                Some(mine) => st
                    .outbox
                    .retain(|w| !matches!(w, Write::Open(r) if r.id == mine.id)),
                // Firing since an earlier run: the listener hears of it as firing
                // (the notifiers' claims know whether it was told), so that its
                // resolution is told in the shape its firing was.
                None => {
                    if let Some(l) = self.listener.get() {
                        l.adopted(&kept);
                    }
                }
            }
        }
        st.loaded = true;
    }

    /// Decide on the health assessment and the cameras. What cannot be judged yet (no
    /// probe round, or the stored cameras not read back) keeps its alerts as they are.
    fn decide(&self, h: Option<&FullHealth>) {
        let now = crate::time::now();
        let mode = self.health.mode();
        let mut st = self.lock();
        let mut candidates: Vec<Candidate> = Vec::new();
        for source in &self.sources {
            match source.problems() {
                Some(problems) => candidates.extend(problems),
                // It cannot judge yet: its alerts stay as they are.
                None => candidates.extend(
                    st.rules
                        .firing()
                        .filter(|a| source.kinds().contains(&a.source.kind()))
                        .map(Candidate::from_alert),
                ),
            }
        }
        if let Some(host) = self.host.get() {
            candidates.iter_mut().for_each(|c| c.on_host(host));
        }
        self.causes.label(&mut candidates);
        let changes = st
            .rules
            .observe(tokio::time::Instant::now(), now, &candidates, new_id);
        self.apply(&mut st, changes, now);
        self.count_firing(&st);
        let Some(h) = h else {
            return;
        };
        // The service's health, announced when its status or the mode changes.
        if st.announced != Some((h.status, mode)) {
            if let Some((before, mode_before)) = st.announced {
                tracing::info!("{}", health_change_line(before, h, mode_before, mode));
            }
            self.events
                .publish(Event::SystemHealthChanged(SystemHealthChanged {
                    status: h.status,
                    previous_status: st.announced.map(|(s, _)| s),
                    ready: h.ready,
                    mode,
                    previous_mode: st.announced.map(|(_, m)| m),
                    message: h.message.clone(),
                }));
            st.announced = Some((h.status, mode));
        }
    }

    /// Announce, hand on and queue for the history what one decision changed.
    fn apply(&self, st: &mut State, changes: Vec<Change>, now: chrono::DateTime<chrono::Utc>) {
        if changes.is_empty() {
            return;
        }
        self.changed.notify_one();
        for change in changes {
            match change {
                Change::Fired(a) => {
                    self.metrics.fired(a.source.kind(), a.severity);
                    if let Some(l) = self.listener.get() {
                        l.transition(&a);
                    }
                    st.outbox.push_back(Write::Open(a.row()));
                    self.events.publish(Event::AlertCreated(AlertCreated {
                        alert_id: a.id,
                        fingerprint: a.fingerprint,
                        alertname: a.alertname,
                        severity: a.severity,
                        source: a.source.to_string(),
                        message: a.summary,
                        started_at: a.started_at,
                    }));
                }
                Change::Resolved(mut a) => {
                    let ended_at = a.ended_at.unwrap_or(now);
                    a.ended_at = Some(ended_at);
                    a.state = super::alert::AlertStatus::Resolved;
                    if let Some(l) = self.listener.get() {
                        l.transition(&a);
                    }
                    // Only watchpost's own alerts go out to Alertmanager.
                    if a.source.is_own() {
                        if st.resolved_out.len() >= RESOLVED_OUT {
                            // The sender is far behind: the stored history still has it.
                            st.resolved_out.pop_front();
                        }
                        st.resolved_out.push_back(a.clone());
                    }
                    st.outbox.push_back(Write::Close {
                        id: a.id.clone(),
                        ended_at,
                    });
                    self.events.publish(Event::AlertResolved(AlertResolved {
                        message: format!("{} is fine again", a.source),
                        alert_id: a.id,
                        fingerprint: a.fingerprint,
                        alertname: a.alertname,
                        severity: a.severity,
                        source: a.source.to_string(),
                        started_at: a.started_at,
                        ended_at,
                    }));
                }
            }
        }
    }

    /// `watchpost_alerts_firing`: what fires now, own and received (alerts taken over
    /// at start fire without a change).
    fn count_firing(&self, st: &State) {
        let count = |s: Severity| {
            st.rules
                .firing()
                .chain(st.received.firing())
                .filter(|a| a.severity == s)
                .count()
        };
        self.metrics.firing_now(count);
    }

    /// Write the outbox in order; stop at the first failure and try again next time.
    async fn flush(&self) {
        const SLICE: usize = 100;
        for _ in 0..SLICE {
            let Some(next) = self.lock().outbox.front().cloned() else {
                return;
            };
            let written = match &next {
                Write::Open(row) => self.store.open_alert(row).await,
                Write::Close { id, ended_at } => self.store.close_alert(id, *ended_at).await,
            };
            match written {
                Ok(()) => {
                    self.lock().outbox.pop_front();
                }
                // Unavailable: kept for the next evaluation. A query error would repeat
                // forever: logged and dropped (the decision was published already).
                Err(StoreError::Unavailable(_)) => return,
                Err(StoreError::Query(why)) => {
                    tracing::error!(error = %why, write = ?next, "alert history write failed; skipped");
                    self.lock().outbox.pop_front();
                }
            }
        }
    }

    /// What the engine holds in memory: alerts firing and pending (own and
    /// received), history writes waiting, resolutions the sender has not taken.
    pub fn entries(&self) -> usize {
        let st = self.lock();
        st.rules.entries() + st.received.entries() + st.outbox.len() + st.resolved_out.len()
    }

    /// Firing alerts as the engine holds them (stored or not yet).
    pub fn firing(&self) -> Vec<Alert> {
        let st = self.lock();
        let unwritten: BTreeSet<&str> = st
            .outbox
            .iter()
            .filter_map(|w| match w {
                Write::Open(r) => Some(r.id.as_str()),
                Write::Close { .. } => None,
            })
            .collect();
        let mut out: Vec<Alert> = st
            .rules
            .firing()
            .chain(st.received.firing())
            .cloned()
            .map(|mut a| {
                a.stored = !unwritten.contains(&a.id.as_str());
                a
            })
            .collect();
        drop(st);
        let now = crate::time::now();
        for a in &mut out {
            self.silences.mark(a, now);
            a.link_runbook(self.runbooks.get().map(String::as_str));
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.started_at));
        out
    }

    /// The resolutions decided since the last call (for the sender).
    pub fn take_resolved(&self) -> Vec<Alert> {
        self.lock().resolved_out.drain(..).collect()
    }

    /// Take Alertmanager's webhook notification: each alert fires or resolves as an
    /// alert of source `prometheus`; a repeat changes nothing. Watchpost's own alerts
    /// coming back are counted and left alone.
    pub async fn receive(&self, p: &Payload) -> Result<Receipt, Refused> {
        let incoming = webhook::read(p)?;
        let (mut processed, mut unchanged) = (0usize, 0usize);
        {
            let mut st = self.lock();
            let new_firing: BTreeSet<&str> = incoming
                .iter()
                .filter(|i| i.firing && !i.own && !st.external.contains_key(&i.fingerprint))
                .map(|i| i.fingerprint.as_str())
                .collect();
            let would = st.external.len() + new_firing.len();
            if would > MAX_RECEIVED {
                drop(st);
                self.metrics.received(Received::Refused, incoming.len());
                return Err(Refused::TooMany { would });
            }
            let mut named = BTreeSet::new();
            for inc in incoming {
                named.insert(inc.fingerprint.clone());
                if inc.own {
                    unchanged += 1;
                    continue;
                }
                if inc.firing {
                    let same = st
                        .external
                        .get(&inc.fingerprint)
                        .is_some_and(|e| e.candidate == inc.candidate);
                    st.external.insert(
                        inc.fingerprint,
                        External {
                            candidate: inc.candidate,
                            group: Some(p.group_key.clone()),
                        },
                    );
                    if same {
                        unchanged += 1;
                    } else {
                        processed += 1;
                    }
                } else if st.external.remove(&inc.fingerprint).is_some() {
                    processed += 1;
                } else {
                    unchanged += 1;
                }
            }
            // A whole notification lists every alert of its group: one it leaves
            // out is no longer there.
            if p.truncated_alerts == 0 {
                let before = st.external.len();
                st.external.retain(|fp, e| {
                    e.group.as_deref() != Some(p.group_key.as_str()) || named.contains(fp)
                });
                processed += before - st.external.len();
            }
            if processed > 0 {
                let mut candidates: Vec<Candidate> =
                    st.external.values().map(|e| e.candidate.clone()).collect();
                self.causes.label_received(&mut candidates);
                let now = crate::time::now();
                let changes =
                    st.received
                        .observe(tokio::time::Instant::now(), now, &candidates, new_id);
                self.apply(&mut st, changes, now);
                self.count_firing(&st);
            }
        }
        self.metrics.received(Received::Processed, processed);
        self.metrics.received(Received::Unchanged, unchanged);
        if processed > 0 {
            self.flush().await;
        }
        Ok(Receipt {
            status: "success".into(),
            received: p.alerts.len(),
            processed,
            message: format!(
                "{} alert(s) received, {processed} changed something",
                p.alerts.len()
            ),
        })
    }

    /// The alerts' own metrics (the sender counts its calls there).
    pub fn metrics(&self) -> &AlertMetrics {
        &self.metrics
    }

    /// A page of the history, newest first; while PostgreSQL is away, the firing
    /// alerts from memory (those matching the query's source).
    pub async fn history(&self, q: &AlertQuery) -> Result<AlertPage, HistoryUnavailable> {
        match self.store.list_alerts(q).await {
            Ok((rows, total)) => {
                let now = crate::time::now();
                let items: Vec<Alert> = rows
                    .into_iter()
                    .filter_map(|r| Alert::from_row(r, now))
                    .map(|mut a| {
                        if a.ended_at.is_none() {
                            self.silences.mark(&mut a, now);
                        }
                        a.link_runbook(self.runbooks.get().map(String::as_str));
                        a
                    })
                    .collect();
                let pagination = Pagination::new(
                    usize::try_from(total).unwrap_or(0),
                    usize::try_from(q.limit).unwrap_or(0),
                    usize::try_from(q.offset).unwrap_or(0),
                    items.len(),
                );
                Ok(AlertPage { items, pagination })
            }
            Err(e) => Err(HistoryUnavailable {
                why: e.to_string(),
                firing: self
                    .firing()
                    .into_iter()
                    .filter(|_| q.state != AlertState::Resolved)
                    .filter(|a| {
                        q.source.as_deref().is_none_or(|s| {
                            a.source.to_string() == s || a.source.kind().as_str() == s
                        })
                    })
                    .collect(),
            }),
        }
    }
}

/// The id of a new firing.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
