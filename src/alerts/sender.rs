//! The `alert_sender` worker: watchpost's alerts out to Alertmanager, as Prometheus
//! sends them. On every change, and every `alerting.resend_seconds` while anything
//! fires, it posts every firing alert that no silence holds back (`endsAt` four
//! resends ahead, so Alertmanager resolves it by itself if watchpost dies) and every
//! resolution not yet accepted (with its `endsAt`). A resolution is kept until an
//! Alertmanager accepts it, in memory and in the alert table (`end_sent_at`), so an
//! Alertmanager that was away, or a restart, loses none. The same round brings each
//! Alertmanager's copies of the silences in step, and those of the maintenance
//! windows and snoozes (reconciled with what it lists: any instance can do it).

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::alert::{Alert, GENERATOR, GENERATOR_LABEL};
use super::alertmanager::{Alertmanager, AmError, PostableAlert};
use super::engine::AlertEngine;
use super::metrics::SendResult;
use super::silences::{Remote, SilenceState, Silences};
use crate::config::{secs, AlertingConfig};
use crate::names::workers;
use crate::quiet::{mirror, Copy, LabelMatch, Quiet};
use crate::store::Store;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// Resolutions older than this are not sent any more (Alertmanager has long
/// forgotten the alert).
const RESOLUTIONS_FOR: chrono::Duration = chrono::Duration::days(7);

/// Who watchpost is in its alerts' labels, and where its page is.
#[derive(Debug, Clone)]
pub struct Identity {
    pub instance: String,
    pub external_url: String,
}

#[derive(Default)]
struct State {
    /// Resolutions not yet accepted, by alert id.
    unsent: BTreeMap<String, Alert>,
    /// Accepted resolutions whose mark is not stored yet, with the rounds tried.
    to_mark: Vec<(String, u32)>,
    /// Have the stored unsent resolutions been read back?
    loaded: bool,
    /// Alertmanagers whose failure has been logged (until they answer again).
    failing: BTreeMap<String, bool>,
    /// Per Alertmanager, the window copies it was last brought in step with, and
    /// when (looked at again after [`WINDOWS_LOOKED_AGAIN`] even without a change).
    windows_in_step: BTreeMap<String, (Vec<String>, tokio::time::Instant)>,
}

/// How often an Alertmanager's copies of the windows are listed again though
/// nothing changed here (another instance, or a person, may have changed them).
const WINDOWS_LOOKED_AGAIN: Duration = Duration::from_secs(300);

pub struct Sender {
    engine: Arc<AlertEngine>,
    silences: Arc<Silences>,
    quiet: Arc<Quiet>,
    store: Arc<Store>,
    managers: Vec<Alertmanager>,
    resend: Duration,
    /// Set once the server is bound (its port is part of the default `instance`).
    identity: std::sync::OnceLock<Identity>,
    changed: Arc<tokio::sync::Notify>,
    state: Mutex<State>,
}

impl Sender {
    pub fn new(
        cfg: &AlertingConfig,
        engine: Arc<AlertEngine>,
        silences: Arc<Silences>,
        quiet: Arc<Quiet>,
        store: Arc<Store>,
        changed: Arc<tokio::sync::Notify>,
    ) -> Arc<Self> {
        let timeout = secs(cfg.timeout_seconds);
        Arc::new(Self {
            engine,
            silences,
            quiet,
            store,
            managers: cfg
                .alertmanager_urls
                .iter()
                .map(|u| Alertmanager::new(u, timeout))
                .collect(),
            resend: secs(cfg.resend_seconds),
            identity: std::sync::OnceLock::new(),
            changed,
            state: Mutex::new(State::default()),
        })
    }

    /// Who watchpost is in its alerts (once, when the server is bound).
    pub fn identify(&self, identity: Identity) {
        let _ = self.identity.set(identity);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each critical section leaves the state whole; survive a poisoned lock.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::ALERT_SENDER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        if self.managers.is_empty() {
            // Nothing to send to: the resolutions are not kept either.
            while ctx.idle(Duration::from_secs(3600)).await {
                self.engine.take_resolved();
            }
            return Ok(());
        }
        let windows = self.quiet.touched();
        loop {
            ctx.beat_while(Duration::from_secs(60), self.send_once())
                .await;
            tokio::select! {
                () = self.changed.notified() => {}
                () = windows.notified() => {}
                keep = ctx.idle(self.resend) => if !keep { return Ok(()) },
            }
        }
    }

    /// One round: the alerts, the resolutions, the silences.
    pub async fn send_once(&self) {
        let now = crate::time::now();
        self.read_back_resolutions(now).await;
        {
            let fresh = self.engine.take_resolved();
            let mut st = self.lock();
            for a in fresh {
                st.unsent.insert(a.id.clone(), a);
            }
            st.unsent
                .retain(|_, a| a.ended_at.is_none_or(|e| now - e < RESOLUTIONS_FOR));
        }
        // Only watchpost's own alerts: a received one came from an Alertmanager already
        // (sending it back would double it there, under watchpost's name).
        let firing: Vec<Alert> = self
            .engine
            .firing()
            .into_iter()
            .filter(|a| a.silenced_by.is_empty() && a.source.is_own())
            .collect();
        let unsent: Vec<Alert> = self.lock().unsent.values().cloned().collect();
        let batch: Vec<PostableAlert> = firing
            .iter()
            .map(|a| {
                self.postable(
                    a,
                    now + chrono::Duration::from_std(self.resend * 4).unwrap_or_default(),
                )
            })
            .chain(
                unsent
                    .iter()
                    .map(|a| self.postable(a, a.ended_at.unwrap_or(now))),
            )
            .collect();
        if !batch.is_empty() {
            let mut accepted = false;
            for am in &self.managers {
                let result = am.post_alerts(&batch).await;
                accepted |= result.is_ok();
                self.count(am, "alerts", result.as_ref().err());
            }
            if accepted {
                let mut st = self.lock();
                for a in &unsent {
                    st.unsent.remove(&a.id);
                    st.to_mark.push((a.id.clone(), 0));
                }
            }
        }
        self.mark_sent(now).await;
        self.sync_silences().await;
        self.sync_windows(now).await;
    }

    /// The stored resolutions no Alertmanager accepted (once, when it can).
    async fn read_back_resolutions(&self, now: DateTime<Utc>) {
        if self.lock().loaded {
            return;
        }
        if let Ok(rows) = self.store.unsent_resolutions(now - RESOLUTIONS_FOR).await {
            let mut st = self.lock();
            for a in rows.into_iter().filter_map(|r| Alert::from_row(r, now)) {
                if a.source.is_own() {
                    st.unsent.entry(a.id.clone()).or_insert(a);
                }
            }
            st.loaded = true;
        }
    }

    /// Store the marks of accepted resolutions. A row whose close the engine has not
    /// written yet is tried again on the next rounds (a few; past them it is only
    /// sent once more after a restart, which Alertmanager takes as a repeat).
    async fn mark_sent(&self, now: DateTime<Utc>) {
        const ROUNDS: u32 = 30;
        let pending = std::mem::take(&mut self.lock().to_mark);
        if pending.is_empty() {
            return;
        }
        let ids: Vec<String> = pending.iter().map(|(id, _)| id.clone()).collect();
        match self.store.resolutions_sent(&ids, now).await {
            Ok(marked) => {
                let left = pending
                    .into_iter()
                    .filter(|(id, _)| !marked.contains(id))
                    .map(|(id, n)| (id, n + 1))
                    .filter(|(_, n)| *n < ROUNDS);
                self.lock().to_mark.extend(left);
            }
            Err(e) => {
                tracing::debug!(error = %e, "sent resolutions not marked yet; kept for the next round");
                self.lock().to_mark.extend(pending);
            }
        }
    }

    /// Alertmanager's copy of an alert: its labels plus `instance` and `generator`,
    /// its words as annotations, the status page as its link.
    fn postable(&self, a: &Alert, ends_at: DateTime<Utc>) -> PostableAlert {
        let (instance, page) = self
            .identity
            .get()
            .map_or(("", ""), |i| (i.instance.as_str(), i.external_url.as_str()));
        let (labels, annotations) = a.outside(instance);
        PostableAlert {
            labels,
            annotations,
            starts_at: a.started_at,
            ends_at,
            generator_url: format!("{page}#alerts"),
        }
    }

    /// Count one call; log a failure once per Alertmanager, and its return.
    fn count(&self, am: &Alertmanager, what: &str, err: Option<&AmError>) {
        let metrics = self.engine.metrics();
        let mut st = self.lock();
        let was_failing = st.failing.get(&am.key).copied().unwrap_or(false);
        match err {
            None => {
                metrics.sent(SendResult::Success);
                if was_failing {
                    tracing::info!(alertmanager = %am.shown, "Alertmanager answers again; what waited is sent");
                }
                st.failing.insert(am.key.clone(), false);
            }
            Some(e) => {
                metrics.sent(match e {
                    AmError::Unreachable(_) => SendResult::Unreachable,
                    AmError::Refused { .. } => SendResult::Refused,
                });
                if !was_failing {
                    tracing::warn!(alertmanager = %am.shown, error = %e, what, "cannot send to Alertmanager; alerts and silences are kept and sent when it answers");
                }
                st.failing.insert(am.key.clone(), true);
            }
        }
    }

    /// Give each Alertmanager a copy of every silence not ended, and expire the copies
    /// of those ended early.
    async fn sync_silences(&self) {
        let now = crate::time::now();
        for held in self.silences.held() {
            for am in &self.managers {
                let copy = held.remote.get(&am.key).cloned().unwrap_or_default();
                let state = held.state(now);
                let result = if held.ended_early && !copy.id.is_empty() && !copy.expired {
                    am.expire_silence(&copy.id).await.map(|()| Remote {
                        id: copy.id.clone(),
                        expired: true,
                    })
                } else if state != SilenceState::Expired && copy.id.is_empty() {
                    // Scoped to watchpost's own alerts: a `severity` or `camera` silence
                    // must not quiet other systems' alerts in a shared Alertmanager.
                    let mut matchers = held.matchers.clone();
                    matchers.insert(GENERATOR_LABEL.into(), GENERATOR.into());
                    let matchers: Vec<LabelMatch> = matchers
                        .iter()
                        .map(|(k, v)| LabelMatch::equal(k, v))
                        .collect();
                    am.create_silence(&matchers, held.starts_at, held.ends_at, &held.comment)
                        .await
                        .map(|id| Remote { id, expired: false })
                } else {
                    continue;
                };
                self.count(am, "silences", result.as_ref().err());
                if let Ok(remote) = result {
                    if let Err(e) = self.silences.record_remote(&held.id, &am.key, remote).await {
                        tracing::debug!(error = %e, "silence copy not stored yet");
                    }
                }
            }
        }
        self.silences.prune();
    }

    /// Bring each Alertmanager's copies of the windows in step with what they should
    /// be now: the missing ones made, those of a window ended early or removed (and
    /// doubles, when two instances made one at once) expired. Copies that ran out
    /// are Alertmanager's to expire.
    async fn sync_windows(&self, now: DateTime<Utc>) {
        let wanted: Vec<Copy> = self.quiet.copies(now);
        let tags: Vec<String> = wanted.iter().map(|c| c.tag.clone()).collect();
        for am in &self.managers {
            let fresh = self
                .lock()
                .windows_in_step
                .get(&am.key)
                .is_some_and(|(t, at)| *t == tags && at.elapsed() < WINDOWS_LOOKED_AGAIN);
            if fresh {
                continue;
            }
            let result = self.bring_in_step(am, &wanted).await;
            self.count(am, "silences", result.as_ref().err());
            if result.is_ok() {
                self.lock()
                    .windows_in_step
                    .insert(am.key.clone(), (tags.clone(), tokio::time::Instant::now()));
            }
        }
    }

    async fn bring_in_step(&self, am: &Alertmanager, wanted: &[Copy]) -> Result<(), AmError> {
        let listed = am.own_silences(GENERATOR).await?;
        let mut held: Vec<&str> = Vec::new();
        for s in &listed {
            let Some(tag) = mirror::tag_of(&s.comment) else {
                continue;
            };
            if wanted.iter().any(|c| c.tag == tag) && !held.contains(&tag) {
                held.push(tag);
            } else {
                am.expire_silence(&s.id).await?;
            }
        }
        for c in wanted.iter().filter(|c| !held.contains(&c.tag.as_str())) {
            let mut matchers = vec![LabelMatch::equal(GENERATOR_LABEL, GENERATOR)];
            matchers.extend(c.matchers.iter().cloned());
            am.create_silence(&matchers, c.starts_at, c.ends_at, &c.comment)
                .await?;
        }
        Ok(())
    }
}
