//! The alert engine (`alert_engine` worker): the one place that decides alerts and
//! announces health changes. Every `alerts.evaluate_interval_seconds` it reads the
//! latest assessment (the prober's last round with the supervisor's workers and the
//! breakers; no I/O), lets the rules decide, publishes `alert.created` /
//! `alert.resolved` and `system.health_changed`, and writes the history.
//!
//! The history survives restarts: at start the firing rows are loaded and taken over,
//! so a problem still present stays the same alert (no second `alert.created`) and one
//! that is gone is resolved. Writes go through an in-order outbox: while PostgreSQL is
//! away the engine keeps deciding in memory and writes everything, in order, when it
//! is back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::alert::{Alert, Candidate, SourceKind};
use super::metrics::AlertMetrics;
use super::rules::{Change, Rules};
use crate::cameras::CameraRegistry;
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

struct State {
    rules: Rules,
    outbox: VecDeque<Write>,
    /// Have the firing rows of the history been taken over yet?
    loaded: bool,
    /// The health status and mode last announced.
    announced: Option<(HealthState, Mode)>,
}

/// A page of the history.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    pub items: Vec<Alert>,
    pub pagination: Pagination,
}

/// The history cannot be read now: the firing alerts as the engine holds them.
#[derive(Debug, thiserror::Error)]
#[error("The alert history cannot be read now (PostgreSQL: {why}); the alerts firing now are listed from memory")]
pub struct HistoryUnavailable {
    pub why: String,
    pub firing: Vec<Alert>,
}

pub struct AlertEngine {
    health: Arc<Health>,
    cameras: Arc<CameraRegistry>,
    store: Arc<Store>,
    events: EventBus,
    metrics: AlertMetrics,
    interval: Duration,
    state: Mutex<State>,
}

impl AlertEngine {
    pub fn new(
        cfg: &AlertsConfig,
        health: Arc<Health>,
        cameras: Arc<CameraRegistry>,
        store: Arc<Store>,
        events: EventBus,
        metrics: &Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            health,
            cameras,
            store,
            events,
            metrics: AlertMetrics::new(metrics),
            interval: secs(cfg.evaluate_interval_seconds),
            state: Mutex::new(State {
                rules: Rules::new(
                    secs(cfg.for_critical_seconds),
                    secs(cfg.for_warning_seconds),
                ),
                outbox: VecDeque::new(),
                loaded: false,
                announced: None,
            }),
        })
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
            let stored = Alert::from_row(row, now);
            if let Some(mine) = st.rules.adopt(stored) {
                st.outbox
                    .retain(|w| !matches!(w, Write::Open(r) if r.id == mine.id));
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
        let held = |camera: bool| -> Vec<Candidate> {
            st.rules
                .firing()
                .filter(|a| (SourceKind::of(&a.source) == SourceKind::Camera) == camera)
                .map(Candidate::from_alert)
                .collect()
        };
        let mut candidates: Vec<Candidate> = match h {
            Some(h) => h
                .problems
                .iter()
                .map(|(source, p)| Candidate::from_problem(source, p.critical, &p.message))
                .collect(),
            None => held(false),
        };
        match self.cameras.problems() {
            Some(problems) => candidates.extend(problems.iter().map(Candidate::for_camera)),
            None => candidates.extend(held(true)),
        }
        let changes = st
            .rules
            .observe(tokio::time::Instant::now(), now, &candidates, || {
                uuid::Uuid::new_v4().to_string()
            });
        for change in changes {
            match change {
                Change::Fired(a) => {
                    self.metrics.fired(SourceKind::of(&a.source), a.severity);
                    st.outbox.push_back(Write::Open(a.row()));
                    self.events.publish(Event::AlertCreated(AlertCreated {
                        alert_id: a.id,
                        fingerprint: a.fingerprint,
                        alertname: a.alertname,
                        severity: a.severity,
                        source: a.source,
                        message: a.summary,
                        started_at: a.started_at,
                    }));
                }
                Change::Resolved(a) => {
                    let ended_at = a.ended_at.unwrap_or(now);
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
                        source: a.source,
                        started_at: a.started_at,
                        ended_at,
                    }));
                }
            }
        }
        let count = |s: Severity| st.rules.firing().filter(|a| a.severity == s).count();
        self.metrics.firing_now(count);
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

    /// Firing alerts as the engine holds them (stored or not yet).
    pub fn firing(&self) -> Vec<Alert> {
        let st = self.lock();
        let unwritten: Vec<&str> = st
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
            .cloned()
            .map(|mut a| {
                a.stored = !unwritten.contains(&a.id.as_str());
                a
            })
            .collect();
        out.sort_by_key(|a| std::cmp::Reverse(a.started_at));
        out
    }

    /// A page of the history, newest first; while PostgreSQL is away, the firing
    /// alerts from memory (those matching the query's source).
    pub async fn history(&self, q: &AlertQuery) -> Result<AlertPage, HistoryUnavailable> {
        match self.store.list_alerts(q).await {
            Ok((rows, total)) => {
                let now = crate::time::now();
                let items: Vec<Alert> = rows.into_iter().map(|r| Alert::from_row(r, now)).collect();
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
                        q.source
                            .as_deref()
                            .is_none_or(|s| a.source == s || a.source.split(':').next() == Some(s))
                    })
                    .collect(),
            }),
        }
    }
}

/// `health: healthy → unhealthy (postgres unhealthy (…)); mode stays normal`: what
/// changed, in words a user reads.
fn health_change_line(
    before: HealthState,
    now: &FullHealth,
    mode_before: Mode,
    mode: Mode,
) -> String {
    let why = now
        .message
        .split_once(": ")
        .map_or(now.message.as_str(), |(_, rest)| rest);
    let mode = if mode_before == mode {
        format!("mode stays {}", mode.as_str())
    } else {
        format!("mode {} → {}", mode_before.as_str(), mode.as_str())
    };
    format!(
        "health: {} → {} ({why}); {mode}",
        before.as_str(),
        now.status.as_str()
    )
}
