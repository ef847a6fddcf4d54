//! Notifications: watchpost tells someone itself, without a monitoring stack. Every
//! alert transition the engine decides goes to the notifiers that take it (MQTT with
//! Home Assistant discovery; webhooks in ntfy's, Alertmanager's or plain JSON
//! format), through a durable outbox per notifier, in order, once across instances.
//!
//! - `notifiers.rs`: the `notifier` worker: intake, claims, silences, repeats, the
//!   senders, the API's list and test;
//! - `answers.rs`: the list, a test's outcome and the errors the API shows;
//! - `channel.rs`: one notifier's filter, outbox, state (a breaker's) and view;
//! - `outbox.rs`: the outbox on disk; `claim.rs`: who tells a transition;
//!   `tracking.rs`: which firing alerts are due a repeat or were held back;
//! - `digest.rs`: the daily digest (yesterday's coverage, events and alerts);
//! - `message.rs`: what is told: the entry, the cut to fit, the words (pure);
//! - `kind.rs`: what a notifier kind is (a plug-in: checks its settings, renders and
//!   delivers an entry); `kinds/`: one file per kind, one registry line each;
//! - `http.rs`: what the HTTP kinds share; `mqtt.rs`: the broker session;
//!   `discovery.rs`: the retained state and Home Assistant's discovery configs (pure);
//!   `commands.rs`: what Home Assistant's button and switch ask (snoozes);
//! - `heartbeat.rs`: the dead man's switch (`[heartbeat]`), its own worker;
//! - `metrics.rs`: `watchpost_notifications_total`,
//!   `watchpost_notification_outbox_depth`, `watchpost_notification_latency_seconds`.

mod answers;
mod channel;
pub mod claim;
mod commands;
mod digest;
mod discovery;
mod grouping;
mod heartbeat;
mod http;
mod kind;
mod kinds;
mod message;
mod metrics;
mod mqtt;
mod notifiers;
mod outbox;
mod tracking;

pub use answers::{NotifierList, NotifyError, TestDelivery};
pub use channel::NotifierView;
pub use heartbeat::{Heartbeat, HeartbeatView};
pub use notifiers::{Notifiers, NotifyDeps, TEST_WITHIN};

/// The problems of the notifier kinds' own settings (`Config::load_checked`).
pub fn check_config(cfg: &crate::config::Config) -> Vec<String> {
    kinds::check(&cfg.notify)
}
