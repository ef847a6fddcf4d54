//! A notifier kind as a plug-in: what one kind of notifier (ntfy, Telegram, e-mail, …)
//! adds to what every notifier shares. The outbox, the claims, the retries with
//! backoff, the breaker-like state and the send loop are written once (`channel.rs`,
//! `notifiers.rs`); a kind only says which addresses and options it takes, and how
//! it renders and delivers one outbox entry. Each kind is one file under `kinds/`
//! and one line in `kinds/mod.rs`; an HTTP kind is only a pure renderer.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::channel::DeliveryError;
use super::message::Entry;
use crate::alerts::Identity;
use crate::config::WebhookConfig;

/// Delivers one entry. `Ok` once the receiver acknowledged it.
pub trait Deliver: Send + Sync {
    fn deliver<'a>(
        &'a self,
        e: &'a Entry,
        who: &'a Identity,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// One option a kind reads from its entry (`[[notify.webhooks]]`).
pub struct Opt {
    pub name: &'static str,
    pub required: bool,
    /// What a good value looks like (said when one is missing or wrong).
    pub what: &'static str,
    pub valid: fn(&str) -> bool,
}

/// What a kind is made from: its entry and the shared settings.
pub struct Setup<'a> {
    pub cfg: &'a WebhookConfig,
    /// The longest one delivery may take (`notify.timeout_seconds`).
    pub timeout: Duration,
}

impl Setup<'_> {
    /// An option's value (checked before the kind is made).
    pub fn option(&self, name: &str) -> &str {
        self.cfg.options.get(name).map_or("", String::as_str)
    }
}

/// What an HTTP kind posts for one entry.
pub enum Body {
    Json(serde_json::Value),
    /// UTF-8 text with headers of the kind's own.
    Text {
        text: String,
        headers: Vec<(&'static str, String)>,
    },
}

/// An HTTP kind's renderer: pure, from the entry, who sends it, and its config.
pub type Render = fn(&Entry, &Identity, &WebhookConfig) -> Body;

/// How a kind's deliverer is made.
pub enum Make {
    /// POST what `render` makes to the address with `path` appended (the shared
    /// HTTP sender: headers, bearer token, masking).
    Http { path: &'static str, render: Render },
    /// A deliverer of its own (another protocol).
    Own(fn(&Setup) -> Result<Box<dyn Deliver>, String>),
}

/// A kind of notifier.
pub struct NotifierKind {
    /// The `format` that selects it.
    pub name: &'static str,
    /// The address schemes it takes (`https`, `smtps`, …).
    pub schemes: &'static [&'static str],
    /// The options it reads; any other is refused.
    pub options: &'static [Opt],
    pub make: Make,
}

/// The schemes of every HTTP kind.
const WEB: &[&str] = &["https", "http"];

impl NotifierKind {
    /// An HTTP kind: its name, options, the path it posts to and its renderer.
    pub const fn http(
        name: &'static str,
        options: &'static [Opt],
        path: &'static str,
        render: Render,
    ) -> Self {
        Self {
            name,
            schemes: WEB,
            options,
            make: Make::Http { path, render },
        }
    }

    /// Whether `headers` and `token` (HTTP's) mean anything to it.
    pub fn is_http(&self) -> bool {
        matches!(self.make, Make::Http { .. })
    }
}
