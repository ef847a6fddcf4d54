//! One notifier as the rest of the module sees it: what it takes (`Filter`), its
//! outbox, what wakes its sender, and its state as the API shows it. The state is a
//! breaker's: `closed` while deliveries succeed, `open` after `OPEN_AFTER` failures in
//! a row (the next try waits for its backoff), `half_open` while that try runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::message::{Entry, Kind};
use super::metrics::{NotifyMetrics, Outcome};
use super::outbox::Outbox;
use crate::alerts::Alert;
use crate::events::{BreakerState, Severity};

/// Failures in a row that open a notifier's breaker.
pub const OPEN_AFTER: u32 = 3;
/// Refusals of one entry as malformed (400, 413, 422) before it is dropped.
pub const REJECT_AFTER: u32 = 5;

/// Why a delivery failed. Every text is masked (`crate::redact`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// Not reached, or no answer in time.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Reached, and refused.
    #[error("answered {status}: {body}")]
    Refused { status: u16, body: String },
}

impl DeliveryError {
    /// The receiver says this message itself is wrong (not the receiver's state).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                status: 400 | 413 | 422,
                ..
            }
        )
    }
}

/// What a notifier takes: a severity at least this, and labels with these values.
#[derive(Debug, Clone)]
pub struct Filter {
    pub min_severity: Severity,
    pub matchers: BTreeMap<String, String>,
}

impl Filter {
    pub fn new(min_severity: &str, matchers: &BTreeMap<String, String>) -> Self {
        Self {
            min_severity: Severity::parse(min_severity).unwrap_or(Severity::Warning),
            matchers: matchers.clone(),
        }
    }

    pub fn takes(&self, a: &Alert) -> bool {
        a.severity >= self.min_severity
            && self
                .matchers
                .iter()
                .all(|(k, v)| a.label(k).as_deref() == Some(v.as_str()))
    }
}

/// A notifier as `GET /api/system/notifiers` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotifierView {
    pub name: String,
    /// `mqtt`, or the webhook's format: `ntfy`, `alertmanager`, `json`.
    pub kind: String,
    /// Where it sends (credentials masked).
    pub target: String,
    // `closed` (delivering), `open` (failing; the next try waits for its backoff) or
    // `half_open` (that try is running). (A doc comment here would turn the inlined
    // enum into an `allOf` with an object in the OpenAPI document.)
    #[schema(inline)]
    pub state: BreakerState,
    /// Transitions waiting in its outbox.
    pub queue_depth: usize,
    /// For MQTT: connected to the broker now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    pub consecutive_failures: u32,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    // Alerts of at least this severity are told here.
    #[schema(inline)]
    pub min_severity: Severity,
    /// Exact label values an alert must have to be told here.
    pub matchers: BTreeMap<String, String>,
}

#[derive(Default)]
struct Status {
    failures: u32,
    trying: bool,
    connected: Option<bool>,
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(String, DateTime<Utc>)>,
    /// Refusals of the head as malformed, in a row.
    rejections: u32,
}

pub struct Channel {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub filter: Filter,
    outbox: Mutex<Outbox>,
    status: Mutex<Status>,
    /// Woken when something is pushed (or a test asks to be sent).
    pub wake: tokio::sync::Notify,
    metrics: NotifyMetrics,
    retry_max: Duration,
    /// What a test waits for.
    progress: tokio::sync::watch::Sender<Progress>,
}

/// A notifier's progress: the newest acknowledged `seq`, and failed tries so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub acked: u64,
    pub failures: u64,
}

impl Channel {
    pub fn new(
        name: &str,
        kind: &str,
        target: String,
        filter: Filter,
        outbox: Outbox,
        metrics: NotifyMetrics,
        retry_max: Duration,
    ) -> Self {
        metrics.waiting(name, outbox.depth());
        Self {
            name: name.to_string(),
            kind: kind.to_string(),
            target,
            filter,
            outbox: Mutex::new(outbox),
            status: Mutex::new(Status::default()),
            wake: tokio::sync::Notify::new(),
            metrics,
            retry_max,
            progress: tokio::sync::watch::channel(Progress::default()).0,
        }
    }

    /// Watch acknowledgements and failures.
    pub fn progress(&self) -> tokio::sync::watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        // Each critical section leaves the outbox whole; survive a poisoned lock.
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keep a transition for sending (on disk before this returns) and wake the
    /// sender; its `seq`, or `None` for a test refused because the outbox is full.
    pub fn push(&self, kind: Kind, alert: Alert, decided_at: DateTime<Utc>) -> Option<u64> {
        let (pushed, depth, seq) = {
            let mut o = self.outbox();
            let p = o.push(kind, alert, decided_at);
            (p, o.depth(), o.newest_seq())
        };
        if pushed.refused {
            return None;
        }
        if let Some(why) = pushed.not_durable {
            tracing::error!(notifier = %self.name, error = %why, "cannot write the notification outbox; the transition is kept in memory only");
        }
        match pushed.dropped {
            Some(old) if old.kind == Kind::Test => {
                tracing::info!(notifier = %self.name, seq = old.seq, "notification outbox full; a waiting test message was dropped to make room");
            }
            Some(old) => {
                self.metrics.counted(&self.name, Outcome::Dropped);
                tracing::error!(notifier = %self.name, seq = old.seq, fingerprint = %old.fingerprint(), "notification outbox full; its oldest transition was dropped");
            }
            None => {}
        }
        self.metrics.waiting(&self.name, depth);
        self.wake.notify_one();
        Some(seq)
    }

    /// The oldest unsent transition.
    pub fn head(&self) -> Option<Entry> {
        self.outbox().head().cloned()
    }

    /// A try is starting.
    pub fn trying(&self) {
        self.status().trying = true;
    }

    /// The receiver acknowledged `e`.
    pub fn delivered(&self, e: &Entry) {
        let depth = {
            let mut o = self.outbox();
            if let Err(why) = o.ack(e.seq) {
                tracing::error!(notifier = %self.name, error = %why, "cannot record a delivery in the outbox; it may be sent again after a restart");
            }
            o.depth()
        };
        self.metrics.waiting(&self.name, depth);
        self.progress.send_modify(|p| p.acked = p.acked.max(e.seq));
        let seconds = (crate::time::now() - e.decided_at).num_milliseconds() as f64 / 1000.0;
        if e.kind != Kind::Test {
            self.metrics.delivered_after(&self.name, seconds);
        }
        let mut st = self.status();
        if st.failures >= OPEN_AFTER {
            tracing::info!(notifier = %self.name, "notifier delivers again; what waited is sent in order");
        }
        st.failures = 0;
        st.rejections = 0;
        st.trying = false;
        st.last_success = Some(crate::time::now());
        // Delivering again: an earlier failure is history (the log keeps it).
        st.last_error = None;
    }

    /// A try of `e` failed: how long to wait before the next one. An entry refused as
    /// malformed `REJECT_AFTER` times in a row is dropped (it would block the rest).
    pub fn failed(&self, e: &Entry, why: &DeliveryError) -> Duration {
        self.metrics.counted(&self.name, Outcome::Failed);
        let wait = self.note_failure(e, why);
        // Told to waiting tests only now that `last_error` says why.
        self.progress.send_modify(|p| p.failures += 1);
        wait
    }

    fn note_failure(&self, e: &Entry, why: &DeliveryError) -> Duration {
        let mut st = self.status();
        st.failures += 1;
        st.trying = false;
        st.last_error = Some((why.to_string(), crate::time::now()));
        if st.failures == OPEN_AFTER {
            tracing::warn!(notifier = %self.name, target = %self.target, error = %why, "notifier failing; transitions wait in its outbox and are tried again with backoff");
        }
        if why.is_malformed() {
            st.rejections += 1;
            if st.rejections >= REJECT_AFTER {
                st.rejections = 0;
                drop(st);
                tracing::error!(notifier = %self.name, seq = e.seq, fingerprint = %e.fingerprint(), error = %why, "the receiver refuses this transition as malformed; dropped");
                self.metrics.counted(&self.name, Outcome::Rejected);
                let depth = {
                    let mut o = self.outbox();
                    let _ = o.ack(e.seq);
                    o.depth()
                };
                self.metrics.waiting(&self.name, depth);
                return Duration::ZERO;
            }
        } else {
            st.rejections = 0;
        }
        backoff(st.failures, self.retry_max)
    }

    /// `e` can never be delivered by this transport (it cannot be encoded within the
    /// transport's limits): dropped, counted as `rejected`, logged, and shown as the
    /// notifier's last error, so it cannot block what waits behind it.
    pub fn undeliverable(&self, e: &Entry, why: &str) {
        tracing::error!(notifier = %self.name, seq = e.seq, fingerprint = %e.fingerprint(), error = %why, "a transition cannot be delivered by this notifier; dropped");
        self.metrics.counted(&self.name, Outcome::Rejected);
        let depth = {
            let mut o = self.outbox();
            if let Err(err) = o.ack(e.seq) {
                tracing::error!(notifier = %self.name, error = %err, "cannot record the drop in the outbox");
            }
            o.depth()
        };
        self.metrics.waiting(&self.name, depth);
        let mut st = self.status();
        st.trying = false;
        st.last_error = Some((
            format!("transition {} dropped: {why}", e.seq),
            crate::time::now(),
        ));
    }

    /// Connected to the broker (MQTT), or not: a refused connection counts as a
    /// failure of the notifier (its state opens), a connection closes it again.
    pub fn connected(&self, up: bool, why: Option<String>) {
        let mut st = self.status();
        st.connected = Some(up);
        if up {
            st.failures = 0;
        } else {
            st.failures += 1;
        }
        if let Some(why) = why {
            st.last_error = Some((why, crate::time::now()));
            drop(st);
            self.progress.send_modify(|p| p.failures += 1);
        }
    }

    pub fn count(&self, outcome: Outcome) {
        self.metrics.counted(&self.name, outcome);
    }

    pub fn view(&self) -> NotifierView {
        let depth = self.outbox().depth();
        let st = self.status();
        let state = match (st.failures >= OPEN_AFTER, st.trying) {
            (false, _) => BreakerState::Closed,
            (true, true) => BreakerState::HalfOpen,
            (true, false) => BreakerState::Open,
        };
        NotifierView {
            name: self.name.clone(),
            kind: self.kind.clone(),
            target: self.target.clone(),
            state,
            queue_depth: depth,
            connected: st.connected,
            consecutive_failures: st.failures,
            last_success: st.last_success,
            last_error: st.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: st.last_error.as_ref().map(|(_, at)| *at),
            min_severity: self.filter.min_severity,
            matchers: self.filter.matchers.clone(),
        }
    }
}

/// 1 s, 2 s, 4 s, … up to `max`, after `failures` failures in a row.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    crate::time::Backoff::new(Duration::from_secs(1), max).after(failures.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(1000, max), max);
    }

    #[test]
    fn a_filter_takes_by_severity_and_labels() {
        let clip = crate::alerts::Source::Ai("clip".into());
        let c = crate::alerts::Candidate::from_problem(&clip, false, "clip unhealthy");
        let a = Alert::firing(&c, "id", Utc::now(), Utc::now());
        assert!(Filter::new("warning", &BTreeMap::new()).takes(&a));
        assert!(!Filter::new("critical", &BTreeMap::new()).takes(&a));
        let m = BTreeMap::from([("source".to_string(), "ai:clip".to_string())]);
        assert!(Filter::new("warning", &m).takes(&a));
        let m = BTreeMap::from([("camera".to_string(), "front".to_string())]);
        assert!(!Filter::new("warning", &m).takes(&a));
        let m = BTreeMap::from([("severity".to_string(), "warning".to_string())]);
        assert!(Filter::new("warning", &m).takes(&a));
    }

    #[test]
    fn only_a_malformed_message_counts_towards_dropping_it() {
        let refused = |status| DeliveryError::Refused {
            status,
            body: String::new(),
        };
        assert!(refused(400).is_malformed());
        assert!(refused(422).is_malformed());
        assert!(!refused(401).is_malformed());
        assert!(!refused(503).is_malformed());
        assert!(!DeliveryError::Unreachable("x".into()).is_malformed());
    }
}
