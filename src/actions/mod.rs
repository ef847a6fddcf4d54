//! One tap on the phone: signed, single-use links a notification carries
//! (*Snooze 1 h*, *Snooze 8 h*, *Acknowledge*), each scoped to the alert it was sent
//! for, and what `POST /api/actions/{token}` does with one.
//!
//! - The links are made as a notification is delivered (so a message that waited in
//!   an outbox still gets links that work for `notify.action_ttl_seconds`), only when
//!   `alerting.external_url` says where the phone reaches watchpost.
//! - They are signed with one key shared by every instance through PostgreSQL (made
//!   by the first instance that needs it), so a link works on any instance; a used
//!   link is stored, so a replay is refused on every instance too.
//! - A snooze is a snooze window on what the alert is about (its camera, its camera
//!   group, its dependency); an alert a window cannot name (a worker, storage,
//!   Prometheus's) gets a silence on its `alertname` and `source` for that time.
//!   *Acknowledge* marks this episode of the alert: shown, never told again while it
//!   fires, not silenced.
//!
//! `token.rs` signs and verifies (pure).

mod token;

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

pub use token::{sign, ActionKind, Grant};

use crate::alerts::{Alert, NewSilence, SilenceError, Silences};
use crate::events::Source;
use crate::quiet::{NewWindow, Quiet, QuietError, Scope};
use crate::store::{Store, StoreError};

/// One button of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLink {
    pub action: ActionKind,
    pub label: &'static str,
    /// `<alerting.external_url>/api/actions/<token>`: a secret (it authorises the
    /// action), never logged.
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("This action link is not valid: it was not made by this watchpost, or it was changed")]
    Invalid,
    #[error("This action link expired at {0}; snooze or acknowledge on the status page instead")]
    Expired(DateTime<Utc>),
    #[error("This action link was used already; each link works once")]
    Used,
    #[error("Actions need PostgreSQL, which is unreachable: {0}; nothing was done, the link still works")]
    Unavailable(#[from] StoreError),
    #[error(transparent)]
    Quiet(#[from] QuietError),
    #[error(transparent)]
    Silence(#[from] SilenceError),
}

/// What a link did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Done {
    pub action: ActionKind,
    /// The alert the link was sent for.
    pub alert_id: String,
    pub alertname: String,
    pub source: Source,
    /// A snooze: the window made (or the silence, for an alert a window cannot
    /// name) and when it ends.
    pub window_id: Option<String>,
    pub silence_id: Option<String>,
    pub until: Option<DateTime<Utc>>,
    /// *Acknowledge*: when.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// In words, for the person who tapped.
    pub message: String,
}

pub struct Actions {
    store: Arc<Store>,
    quiet: Arc<Quiet>,
    silences: Arc<Silences>,
    /// `alerting.external_url` without its trailing `/`; `None`: no links.
    base: Option<String>,
    ttl: chrono::Duration,
    key: OnceLock<Vec<u8>>,
}

impl Actions {
    pub fn new(
        external_url: &str,
        ttl_seconds: f64,
        store: Arc<Store>,
        quiet: Arc<Quiet>,
        silences: Arc<Silences>,
    ) -> Arc<Self> {
        let base = external_url.trim().trim_end_matches('/');
        Arc::new(Self {
            store,
            quiet,
            silences,
            base: (!base.is_empty()).then(|| base.to_string()),
            ttl: chrono::Duration::milliseconds((ttl_seconds * 1000.0) as i64),
            key: OnceLock::new(),
        })
    }

    /// The shared key, read (or made) once.
    async fn key(&self) -> Result<&[u8], StoreError> {
        if let Some(k) = self.key.get() {
            return Ok(k);
        }
        // 244 random bits (two version-4 UUIDs, from the system's random source).
        let fresh: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.into_bytes())
            .collect();
        let stored = self.store.action_key(&fresh).await?;
        Ok(self.key.get_or_init(|| stored))
    }

    /// The buttons of a notification about `a` (none without `alerting.external_url`,
    /// or while the key cannot be read).
    pub async fn links(&self, a: &Alert) -> Vec<ActionLink> {
        let Some(base) = &self.base else {
            return Vec::new();
        };
        let Ok(key) = self.key().await else {
            return Vec::new();
        };
        let expires_at = crate::time::now() + self.ttl;
        ActionKind::ALL
            .iter()
            .map(|&action| {
                let grant = Grant {
                    action,
                    alert_id: a.id.clone(),
                    fingerprint: a.fingerprint.clone(),
                    alertname: a.alertname.clone(),
                    source: a.source.clone(),
                    expires_at,
                    nonce: uuid::Uuid::new_v4().simple().to_string(),
                };
                ActionLink {
                    action,
                    label: action.label(),
                    url: format!("{base}/api/actions/{}", token::sign(key, &grant)),
                }
            })
            .collect()
    }

    /// Do what `token` grants, once.
    pub async fn redeem(&self, token: &str) -> Result<Done, ActionError> {
        let now = crate::time::now();
        let key = self.key().await?;
        let grant = token::verify(key, token, now).map_err(|r| match r {
            token::Refusal::Invalid => ActionError::Invalid,
            token::Refusal::Expired(at) => ActionError::Expired(at),
        })?;
        if !self
            .store
            .use_action(&grant.nonce, now, grant.expires_at)
            .await?
        {
            return Err(ActionError::Used);
        }
        let done = self.perform(&grant).await;
        if done.is_err() {
            // Nothing was done: the link works again.
            if let Err(e) = self.store.release_action(&grant.nonce).await {
                tracing::debug!(error = %e, "a failed action's link stays used");
            }
        }
        done
    }

    async fn perform(&self, g: &Grant) -> Result<Done, ActionError> {
        let mut done = Done {
            action: g.action,
            alert_id: g.alert_id.clone(),
            alertname: g.alertname.clone(),
            source: g.source.clone(),
            window_id: None,
            silence_id: None,
            until: None,
            acknowledged_at: None,
            message: String::new(),
        };
        let Some(seconds) = g.action.snooze_seconds() else {
            let at = self.quiet.acknowledge(&g.fingerprint).await?;
            done.acknowledged_at = Some(at);
            done.message = format!(
                "{} on {} acknowledged: it is not told again while it fires",
                g.alertname, g.source
            );
            return Ok(done);
        };
        let comment = format!(
            "{} from a notification of {}",
            g.action.label(),
            g.alertname
        );
        match Scope::of_source(&g.source) {
            Some(scope) => {
                let w = self
                    .quiet
                    .create(NewWindow::snooze(scope, seconds, comment))
                    .await?;
                done.message = format!("{} snoozed", w.scope);
                done.until = w.ends_at;
                done.window_id = Some(w.id);
            }
            None => {
                let s = self
                    .silences
                    .create(NewSilence {
                        matchers: crate::alerts::SilenceMatchers {
                            alertname: Some(g.alertname.clone()),
                            source: Some(g.source.to_string()),
                            ..Default::default()
                        },
                        starts_at: None,
                        ends_at: None,
                        duration_seconds: Some(seconds),
                        comment,
                    })
                    .await?;
                done.message = format!("{} on {} silenced", g.alertname, g.source);
                done.until = Some(s.ends_at);
                done.silence_id = Some(s.id);
            }
        }
        if let Some(until) = done.until {
            done.message = format!(
                "{} until {}",
                done.message,
                until.format("%Y-%m-%d %H:%M UTC")
            );
        }
        Ok(done)
    }
}
