//! Alerts: the one place that decides them. The engine (`engine.rs`, the
//! `alert_engine` worker) reads the health assessment (dependencies, AI services,
//! workers, breakers), lets the rules (`rules.rs`: a `for:` per severity) decide what
//! fires and what resolves, and is the only publisher of `alert.created`,
//! `alert.resolved` and `system.health_changed`. Every firing is a row of the history
//! in PostgreSQL (`crate::store`), kept across restarts. Reading health or alerts
//! announces nothing.
//!
//! - `alert.rs`: the alert, its fingerprint, its name and labels by the kind of source;
//! - `rules.rs`: the decision, pure; `engine.rs`: the worker, the outbox, the history
//!   (`health_line.rs`: the log line of a health change);
//! - `causes.rs`: what causes what (the `cause` label), and a cause's alert;
//! - `problems.rs`: problem sources, the list the engine asks (health, cameras,
//!   storage);
//! - `webhook.rs`: Alertmanager's webhook payload, checked, as Prometheus alerts;
//! - `silences.rs`: what holds an alert back from being sent, stored and in memory;
//! - `sender.rs`: the `alert_sender` worker, the alerts and silences out to
//!   Alertmanager (`alertmanager.rs`: its API);
//! - `metrics.rs`: `watchpost_alerts_firing`, `watchpost_alerts_total`,
//!   `watchpost_alertmanager_sends_total`, `watchpost_alertmanager_webhook_alerts_total`.

mod alert;
mod alertmanager;
mod causes;
mod engine;
mod health_line;
mod metrics;
mod problems;
mod rules;
mod sender;
mod silences;
mod webhook;

pub use crate::events::{Source, SourceKind};
pub use alert::{
    Alert, AlertPage, AlertStatus, Candidate, HistoryUnavailable, AFFECTED_LABEL, CAUSE_LABEL,
};
pub use alertmanager::outside_client;
pub use causes::{group_alert, Causes};
pub use engine::{AlertEngine, TransitionListener};
pub use problems::{
    AiPaceProblems, CameraProblems, FleetProblems, HealthProblems, ProblemSource, StorageProblems,
};
pub use sender::{Identity, Sender};
pub use silences::{NewSilence, Silence, SilenceError, SilenceMatchers, SilenceState, Silences};
pub use webhook::{Payload, PayloadAlert, Receipt, Refused, Unprocessable, MAX_RECEIVED};
