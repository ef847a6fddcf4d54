//! The notifiers together (the `notifier` worker): the alert engine hands every
//! transition here as it decides it; each is claimed (so several instances tell it
//! once), held back if a silence covers it, and written to the outbox of every
//! notifier that takes it; one sender per notifier delivers its outbox in order.
//! Firing alerts are told again every `notify.repeat_seconds`; a silenced one is told
//! when its silence ends, if it still fires.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::future::{join_all, BoxFuture};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::answers::{NotifierList, NotifyError, TestDelivery};
use super::channel::{Channel, Filter, NotifierView};
use super::claim::{Claims, Transition};
use super::digest::Digests;
use super::discovery::Snapshot;
use super::grouping::{Grouping, GroupingRules, Tell};
use super::kind::Deliver;
use super::kinds;
use super::message::{self, Kind};
use super::metrics::{NotifyMetrics, Outcome};
use super::mqtt::Mqtt;
use super::outbox::Outbox;
use super::tracking::Tracking;
use crate::actions::Actions;
use crate::alerts::{Alert, AlertEngine, AlertStatus, Identity, Silences, TransitionListener};
use crate::cameras::CameraRegistry;
use crate::config::{secs, AlertsConfig, NotifyConfig};
use crate::coverage::Coverage;
use crate::health::Health;
use crate::names::workers;
use crate::prom::Metrics;
use crate::quiet::Quiet;
use crate::redis::RedisLink;
use crate::store::Store;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// The most transitions waiting to be claimed and written to the outboxes (the
/// engine decides a few a minute; thousands waiting means the notifier worker is
/// stuck, and a transition past this is counted as dropped and logged).
const INTAKE: usize = 4096;

/// The longest a test waits for its acknowledgement.
pub const TEST_WITHIN: Duration = Duration::from_secs(8);

/// What the engine hands over.
enum Intake {
    /// A transition it decided.
    Decided(Alert),
    /// An alert firing since an earlier run.
    Adopted(Alert),
}

enum Transport {
    /// Every kind but MQTT: one delivery per entry.
    Kind(Box<dyn Deliver>),
    /// A broker session that publishes the state too.
    Mqtt(Box<Mqtt>),
}

struct Notifier {
    channel: Arc<Channel>,
    transport: Transport,
}

pub struct Notifiers {
    notifiers: Vec<Notifier>,
    intake: mpsc::Sender<Intake>,
    taken: tokio::sync::Mutex<mpsc::Receiver<Intake>>,
    claims: Claims,
    silences: Arc<Silences>,
    health: Arc<Health>,
    cameras: Arc<CameraRegistry>,
    identity: OnceLock<Identity>,
    tracking: Tracking,
    /// The transitions gathered by cause (`grouping.rs`).
    grouping: std::sync::Mutex<Grouping>,
    repeat: Duration,
    send_resolved: bool,
    retry_max: Duration,
    /// The daily digest, when `notify.digest_time` is set.
    digests: Option<Digests>,
    actions: Arc<Actions>,
}

pub struct NotifyDeps {
    /// `[alerts]`: the grouping's wait and the flapping rule.
    pub alerts: AlertsConfig,
    pub engine: Arc<AlertEngine>,
    pub silences: Arc<Silences>,
    pub health: Arc<Health>,
    pub cameras: Arc<CameraRegistry>,
    pub redis: Arc<RedisLink>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    /// What the daily digest reads.
    pub coverage: Arc<Coverage>,
    /// The one-tap buttons of a firing alert's notification.
    pub actions: Arc<Actions>,
    /// What Home Assistant's buttons and switch change.
    pub quiet: Arc<Quiet>,
}

impl Notifiers {
    /// Open every configured notifier's outbox (what an earlier run left unsent comes
    /// back) and listen to the alert engine.
    pub fn new(cfg: &NotifyConfig, deps: NotifyDeps) -> Result<Arc<Self>, NotifyError> {
        let mut names: Vec<String> = cfg.webhooks.iter().map(|w| w.name.clone()).collect();
        if cfg.mqtt.enabled() {
            names.insert(0, cfg.mqtt.name.clone());
        }
        let metrics = NotifyMetrics::new(&deps.metrics, &names);
        let timeout = secs(cfg.timeout_seconds);
        let retry_max = secs(cfg.retry_max_seconds);
        let dir = std::path::Path::new(&cfg.outbox_dir);
        let max = usize::try_from(cfg.outbox_max_items).unwrap_or(usize::MAX);
        let open = |name: &str| {
            Outbox::open(dir, name, max).map_err(|source| NotifyError::Outbox {
                name: name.to_string(),
                dir: cfg.outbox_dir.clone(),
                source,
            })
        };
        let mut notifiers = Vec::new();
        if cfg.mqtt.enabled() {
            let m = &cfg.mqtt;
            let id = uuid::Uuid::new_v4().simple().to_string();
            let client_id = format!("watchpost-{}", &id[..12]);
            let mqtt =
                Mqtt::new(m, &client_id, deps.quiet.clone()).map_err(|why| NotifyError::Setup {
                    name: m.name.clone(),
                    why,
                })?;
            let channel = Channel::new(
                &m.name,
                "mqtt",
                mqtt.shown.clone(),
                Filter::new(&m.min_severity, &m.matchers),
                open(&m.name)?,
                metrics.clone(),
                retry_max,
            );
            notifiers.push(Notifier {
                channel: Arc::new(channel),
                transport: Transport::Mqtt(Box::new(mqtt)),
            });
        }
        for w in &cfg.webhooks {
            let sender = kinds::make(w, timeout).map_err(|why| NotifyError::Setup {
                name: w.name.clone(),
                why,
            })?;
            let channel = Channel::new(
                &w.name,
                &w.format,
                crate::redact::origin(&w.url),
                Filter::new(&w.min_severity, &w.matchers),
                open(&w.name)?,
                metrics.clone(),
                retry_max,
            );
            notifiers.push(Notifier {
                channel: Arc::new(channel),
                transport: Transport::Kind(sender),
            });
        }
        let (intake, taken) = mpsc::channel(INTAKE);
        let digests = cfg
            .digest_at()
            .map(|at| Digests::new(at, deps.coverage.clone(), deps.store.clone()));
        let me = Arc::new(Self {
            notifiers,
            intake,
            taken: tokio::sync::Mutex::new(taken),
            claims: Claims::new(deps.redis, deps.store),
            silences: deps.silences,
            health: deps.health,
            cameras: deps.cameras,
            identity: OnceLock::new(),
            tracking: Tracking::default(),
            grouping: std::sync::Mutex::new(Grouping::new(GroupingRules {
                wait: secs(deps.alerts.group_wait_seconds),
                flap_count: usize::try_from(deps.alerts.flap_count).unwrap_or(usize::MAX),
                flap_window: secs(deps.alerts.flap_window_seconds),
            })),
            repeat: secs(cfg.repeat_seconds),
            send_resolved: cfg.send_resolved,
            retry_max,
            digests,
            actions: deps.actions,
        });
        if !me.notifiers.is_empty() {
            deps.engine.listen(me.clone());
        }
        Ok(me)
    }

    /// Who watchpost is in what it sends (set once the server is bound).
    pub fn identify(&self, identity: Identity) {
        let _ = self.identity.set(identity);
    }

    fn who(&self) -> Identity {
        self.identity.get().cloned().unwrap_or(Identity {
            instance: String::new(),
            external_url: String::new(),
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::NOTIFIER,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(self: &Arc<Self>, ctx: &WorkerContext) -> Result<(), WorkerError> {
        if self.notifiers.is_empty() {
            while ctx.idle(Duration::from_secs(3600)).await {}
            return Ok(());
        }
        let cancel = ctx.token().clone();
        let mut loops: Vec<BoxFuture<'_, ()>> = vec![
            Box::pin(self.take_transitions(&cancel)),
            Box::pin(self.repeat_loop(&cancel)),
            Box::pin(self.digest_loop(&cancel)),
        ];
        for n in &self.notifiers {
            loops.push(Box::pin(self.send_loop(n, &cancel)));
        }
        let all = join_all(loops);
        tokio::select! {
            _ = all => {}
            _ = async { while ctx.idle(Duration::from_secs(5)).await {} } => {}
        }
        Ok(())
    }

    fn grouping(&self) -> std::sync::MutexGuard<'_, Grouping> {
        // Each critical section leaves the grouping whole; survive a poisoned lock.
        self.grouping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take the engine's transitions one by one, in the order decided, gather them
    /// by cause, and tell what the grouping says is due.
    async fn take_transitions(&self, cancel: &tokio_util::sync::CancellationToken) {
        let mut rx = self.taken.lock().await;
        loop {
            let due = self.grouping().next_due();
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                a = rx.recv() => match a {
                    Some(a) => Some(a),
                    None => return,
                },
                _ = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            let (now, wall) = (Instant::now(), crate::time::now());
            let tells = {
                let mut g = self.grouping();
                let mut tells = match next {
                    Some(Intake::Decided(a)) if a.state == AlertStatus::Firing => {
                        g.fire(a, now, wall)
                    }
                    Some(Intake::Decided(a)) => g.resolve(a, now, wall),
                    Some(Intake::Adopted(a)) => g.adopt(a, now, wall),
                    None => Vec::new(),
                };
                tells.extend(g.tick(now, wall));
                tells
            };
            for t in tells {
                self.tell(t).await;
            }
        }
    }

    /// Claim, check silences, write to the outbox of every notifier that takes one
    /// of the alerts it stands for. A resolution is told whenever its firing was,
    /// whatever silence began since.
    async fn tell(&self, t: Tell) {
        let Tell {
            kind,
            alert: a,
            members,
        } = t;
        let members = if members.is_empty() {
            vec![a.clone()]
        } else {
            members
        };
        let takers: Vec<&Notifier> = self
            .notifiers
            .iter()
            .filter(|n| members.iter().any(|m| n.channel.filter.takes(m)))
            .collect();
        let firing = kind != Kind::Resolved;
        if takers.is_empty() {
            if !firing {
                self.tracking.track(&a.fingerprint, None);
            }
            return;
        }
        let decided_at = if firing {
            a.started_at
        } else {
            a.ended_at.unwrap_or_else(crate::time::now)
        };
        let claim = self
            .claims
            .transition(
                &a.fingerprint,
                Transition {
                    status: if firing {
                        AlertStatus::Firing
                    } else {
                        AlertStatus::Resolved
                    },
                    episode: a.started_at,
                    at: decided_at,
                },
            )
            .await;
        let count = |o: Outcome| takers.iter().for_each(|n| n.channel.count(o));
        let now = crate::time::now();
        let silenced = firing
            && claim.tells()
            && members
                .iter()
                .all(|m| !self.silences.silencing(m, now).is_empty());
        let was_held = self
            .tracking
            .track(&a.fingerprint, firing.then_some(silenced));
        if !claim.tells() {
            count(Outcome::Claimed);
            return;
        }
        // A resolution is held back only when its firing was (never told).
        if silenced || (!firing && was_held) {
            count(Outcome::Silenced);
            return;
        }
        if !firing && !self.send_resolved {
            return;
        }
        let value = message::for_entry(&a);
        for n in &takers {
            let _ = n.channel.push(kind, value.clone(), decided_at);
        }
    }

    /// Every day at `notify.digest_time`, yesterday's digest to every notifier (past
    /// its filter and silences: it is no alert), when this instance claimed it.
    async fn digest_loop(&self, cancel: &tokio_util::sync::CancellationToken) {
        let Some(digests) = &self.digests else {
            return;
        };
        while let Some(told) = digests.next(cancel).await {
            if let Some(alert) = told {
                let now = crate::time::now();
                for n in &self.notifiers {
                    let _ = n.channel.push(Kind::Digest, alert.clone(), now);
                }
            }
        }
    }

    /// Tell every notifier something that is no alert (past filters and silences):
    /// `what` names it (`snooze-<id>`).
    pub fn notice(&self, what: &str, summary: &str, body: &str) {
        let now = crate::time::now();
        let alert = message::for_entry(&message::notice_alert(what, summary, body, now));
        for n in &self.notifiers {
            let _ = n.channel.push(Kind::Notice, alert.clone(), now);
        }
    }

    /// Tell firing alerts again every `repeat`, and those whose silence ended.
    async fn repeat_loop(&self, cancel: &tokio_util::sync::CancellationToken) {
        let every = (self.repeat / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            self.repeat_once().await;
        }
    }

    async fn repeat_once(&self) {
        // What was told and fires still (a cause's alert stands for its alerts; it
        // is silenced when all of them are).
        let told = self.grouping().told_firing();
        let now = crate::time::now();
        let now_firing: Vec<(String, bool)> = told
            .iter()
            .map(|(a, members)| {
                let silenced = members
                    .iter()
                    .all(|m| !self.silences.silencing(m, now).is_empty());
                (a.fingerprint.clone(), silenced)
            })
            .collect();
        let due = self.tracking.due(&now_firing, Instant::now(), self.repeat);
        let by_fingerprint: BTreeMap<&str, &(Alert, Vec<Alert>)> =
            told.iter().map(|t| (t.0.fingerprint.as_str(), t)).collect();
        for (fingerprint, kind) in due {
            let Some((a, members)) = by_fingerprint.get(fingerprint.as_str()) else {
                continue;
            };
            // Acknowledged (from a notification's button): not told again.
            if kind == Kind::Repeat
                && (self.silences.acknowledged(a)
                    || (!members.is_empty()
                        && members.iter().all(|m| self.silences.acknowledged(m))))
            {
                continue;
            }
            if kind == Kind::Repeat
                && !self
                    .claims
                    .repeat(&a.fingerprint, self.repeat)
                    .await
                    .tells()
            {
                continue;
            }
            let mut a = a.clone();
            a.duration_seconds = (now - a.started_at).num_milliseconds().max(0) as f64 / 1000.0;
            let value = message::for_entry(&a);
            let takers = self
                .notifiers
                .iter()
                .filter(|n| members.iter().any(|m| n.channel.filter.takes(m)));
            for n in takers {
                let _ = n.channel.push(kind, value.clone(), now);
            }
        }
    }

    async fn send_loop(&self, n: &Notifier, cancel: &tokio_util::sync::CancellationToken) {
        match &n.transport {
            Transport::Mqtt(m) => {
                let house = || self.snapshot();
                m.run(&n.channel, &house, self.retry_max, cancel).await;
            }
            Transport::Kind(sender) => loop {
                let Some(e) = n.channel.head() else {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = n.channel.wake.notified() => continue,
                    }
                };
                n.channel.trying();
                let who = self.who();
                let mut e = e;
                if matches!(e.kind, Kind::Firing | Kind::Repeat) && e.alert.source.is_own() {
                    e.actions = self.actions.links(&e.alert).await;
                }
                let wait = match sender.deliver(&e, &who).await {
                    Ok(()) => {
                        n.channel.delivered(&e);
                        continue;
                    }
                    Err(why) => n.channel.failed(&e, &why),
                };
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            },
        }
    }

    /// The state MQTT publishes.
    fn snapshot(&self) -> Snapshot {
        Snapshot::of(&self.health, &self.cameras)
    }

    /// What the notifier worker holds in memory besides the outboxes (the grouping
    /// and the tracked notifications).
    pub fn entries(&self) -> usize {
        self.grouping().entries() + self.tracking.entries()
    }

    /// Every notifier with its state.
    pub fn list(&self) -> NotifierList {
        let notifiers: Vec<NotifierView> =
            self.notifiers.iter().map(|n| n.channel.view()).collect();
        NotifierList {
            count: notifiers.len(),
            notifiers,
            repeat_seconds: self.repeat.as_secs_f64(),
            send_resolved: self.send_resolved,
            heartbeat: None,
            timestamp: crate::time::now(),
        }
    }

    /// Send a test message through `name`'s outbox and wait for its acknowledgement.
    pub async fn test(&self, name: &str) -> Result<TestDelivery, NotifyError> {
        let n = self
            .notifiers
            .iter()
            .find(|n| n.channel.name == name)
            .ok_or_else(|| NotifyError::Unknown(name.to_string()))?;
        let started = std::time::Instant::now();
        let mut progress = n.channel.progress();
        let failures = progress.borrow().failures;
        let seq = n
            .channel
            .push(
                Kind::Test,
                message::test_alert(name, crate::time::now()),
                crate::time::now(),
            )
            .ok_or_else(|| NotifyError::OutboxFull(name.to_string()))?;
        // Delivered, or a try failed (this one or one ahead of it), or no answer.
        let done = tokio::time::timeout(
            TEST_WITHIN,
            progress.wait_for(|p| p.acked >= seq || p.failures > failures),
        )
        .await;
        let delivered = matches!(&done, Ok(Ok(p)) if p.acked >= seq);
        if delivered {
            Ok(TestDelivery {
                notifier: name.to_string(),
                delivered: true,
                seconds: started.elapsed().as_secs_f64(),
                message: format!("The test message reached {name}"),
            })
        } else {
            Err(NotifyError::NotDelivered {
                name: name.to_string(),
                why: match done {
                    Err(_) => format!("no acknowledgement within {}s", TEST_WITHIN.as_secs()),
                    Ok(_) => n
                        .channel
                        .view()
                        .last_error
                        .unwrap_or_else(|| "failed".into()),
                },
            })
        }
    }
}

impl Notifiers {
    fn hand_over(&self, item: Intake) {
        // The receiver lives as long as `self`: a send fails only when it is full.
        if let Err(e) = self.intake.try_send(item) {
            let (Intake::Decided(alert) | Intake::Adopted(alert)) = e.into_inner();
            tracing::error!(fingerprint = %alert.fingerprint, "the notifier intake is full; a transition was dropped");
            for n in self
                .notifiers
                .iter()
                .filter(|n| n.channel.filter.takes(&alert))
            {
                n.channel.count(Outcome::Dropped);
            }
        }
    }
}

impl TransitionListener for Notifiers {
    fn transition(&self, alert: &Alert) {
        self.hand_over(Intake::Decided(alert.clone()));
    }

    fn adopted(&self, alert: &Alert) {
        self.hand_over(Intake::Adopted(alert.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_error_says_the_message_waits() {
        let e = NotifyError::NotDelivered {
            name: "ntfy".into(),
            why: "answered 503: down".into(),
        };
        assert!(e.to_string().contains("stays in the outbox"));
    }
}
