//! Silences: "do not send this out for a while". A silence holds exact matchers on
//! an alert's `alertname`, `source`, `camera` and `severity`, a start and an end. A
//! silenced alert is still decided, stored and listed (marked `silenced`), but not
//! sent out. Silences are stored in PostgreSQL (`crate::store`) and held in memory
//! for matching; each configured Alertmanager gets a copy (`sender.rs` keeps them in
//! step), so a silence made here also quiets what Prometheus's rules send there.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::alert::Alert;
use crate::quiet::Quiet;
use crate::store::{SilenceRow, Store, StoreError};

/// The labels a silence may match on.
pub const MATCHER_NAMES: [&str; 5] = ["alertname", "source", "camera", "severity", "host"];
/// The most silences active or pending at once.
pub const MAX_SILENCES: usize = 1000;
/// The longest silence.
pub const MAX_DURATION_SECONDS: f64 = 366.0 * 86_400.0;
/// Ended silences are listed for this long after their end, then deleted.
const LIST_ENDED_FOR: chrono::Duration = chrono::Duration::days(7);
/// How often ended silences are deleted.
const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);
/// How far from now a silence may start (either way).
const START_WITHIN: chrono::Duration = chrono::Duration::days(366);

/// `pending` (not started), `active` or `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

/// A silence as `GET /api/system/alerts/silences` lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: String,
    /// Exact values an alert's labels must all have (`alertname`, `source`,
    /// `camera`, `severity`).
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub state: SilenceState,
    /// How many of the configured Alertmanagers hold a copy now.
    pub alertmanagers_synced: usize,
}

/// What a silence matches: at least one of these labels, each an exact value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct SilenceMatchers {
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub alertname: Option<String>,
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub source: Option<String>,
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub camera: Option<String>,
    #[schema(pattern = "^(critical|warning)$")]
    pub severity: Option<String>,
    /// The instance an alert about its own things is about (its `host` label).
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f]+$")]
    pub host: Option<String>,
}

impl SilenceMatchers {
    fn into_map(self) -> BTreeMap<String, String> {
        [
            ("alertname", self.alertname),
            ("source", self.source),
            ("camera", self.camera),
            ("severity", self.severity),
            ("host", self.host),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
    }
}

/// The length of a silence given neither an end nor a duration (as `amtool`'s).
pub const DEFAULT_DURATION_SECONDS: f64 = 3600.0;

/// A new silence, as `POST /api/system/alerts/silences` takes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    pub matchers: SilenceMatchers,
    /// Default: now.
    pub starts_at: Option<DateTime<Utc>>,
    /// At most one of this and `duration_seconds`; it must be in the future.
    pub ends_at: Option<DateTime<Utc>>,
    /// How long from `starts_at`; neither this nor `ends_at`: one hour.
    #[schema(exclusive_minimum = 0.0, maximum = 31622400.0)]
    pub duration_seconds: Option<f64>,
    /// Why (shown next to it, and sent to Alertmanager).
    #[serde(default)]
    #[schema(max_length = 1000)]
    pub comment: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("{0}")]
    Invalid(String),
    #[error("No silence {0:?}")]
    NotFound(String),
    #[error("Too many silences: at most {MAX_SILENCES} may be active or pending")]
    TooMany,
    #[error("The silences cannot be read or changed now (PostgreSQL: {0}); nothing was changed")]
    Unavailable(String),
}

impl From<StoreError> for SilenceError {
    fn from(e: StoreError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

/// The copy one Alertmanager holds: its id there, and whether it was expired there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Remote {
    pub id: String,
    #[serde(default)]
    pub expired: bool,
}

/// A silence as held in memory: what the API shows, and its copies.
#[derive(Debug, Clone)]
pub struct Held {
    pub id: String,
    pub matchers: BTreeMap<String, String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    /// Per Alertmanager (keyed by `sender::am_key`).
    pub remote: BTreeMap<String, Remote>,
    /// Ended by a user before its time: its copies must be expired too.
    pub ended_early: bool,
}

impl Held {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now >= self.ends_at {
            SilenceState::Expired
        } else if now < self.starts_at {
            SilenceState::Pending
        } else {
            SilenceState::Active
        }
    }

    /// Whether it must still be held: not ended, or ended early with a copy in an
    /// Alertmanager that is not expired yet.
    fn still_needed(&self, now: DateTime<Utc>) -> bool {
        self.state(now) != SilenceState::Expired
            || (self.ended_early && self.remote.values().any(|r| !r.expired))
    }

    /// Whether it silences `alert` at `now`.
    pub fn silences(&self, alert: &Alert, now: DateTime<Utc>) -> bool {
        self.state(now) == SilenceState::Active
            && self
                .matchers
                .iter()
                .all(|(name, value)| alert.label(name).as_deref() == Some(value.as_str()))
    }

    fn view(&self, now: DateTime<Utc>) -> Silence {
        Silence {
            id: self.id.clone(),
            matchers: self.matchers.clone(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            comment: self.comment.clone(),
            created_at: self.created_at,
            state: self.state(now),
            alertmanagers_synced: self
                .remote
                .values()
                .filter(|r| !r.id.is_empty() && r.expired == self.ended_early)
                .count(),
        }
    }

    fn row(&self) -> SilenceRow {
        SilenceRow {
            id: self.id.clone(),
            matchers: serde_json::to_value(&self.matchers).unwrap_or_default(),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            comment: self.comment.clone(),
            created_at: self.created_at,
            remote: serde_json::json!({
                "copies": self.remote,
                "ended_early": self.ended_early,
            }),
        }
    }

    fn from_row(r: SilenceRow) -> Self {
        Self {
            matchers: serde_json::from_value(r.matchers).unwrap_or_default(),
            remote: serde_json::from_value(r.remote["copies"].clone()).unwrap_or_default(),
            ended_early: r.remote["ended_early"].as_bool().unwrap_or(false),
            id: r.id,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            comment: r.comment,
            created_at: r.created_at,
        }
    }
}

/// Check a new silence and turn it into one, at `now`.
pub fn check(new: NewSilence, now: DateTime<Utc>) -> Result<Held, SilenceError> {
    let bad = |m: String| Err(SilenceError::Invalid(m));
    let matchers = new.matchers.into_map();
    if matchers.is_empty() {
        return bad(
            "'matchers' must name at least one of alertname, source, camera, severity, host".into(),
        );
    }
    for (name, value) in &matchers {
        if !MATCHER_NAMES.contains(&name.as_str()) {
            return bad(format!(
                "Matcher {name:?} is not one of alertname, source, camera, severity, host"
            ));
        }
        if name == "severity" && !matches!(value.as_str(), "critical" | "warning") {
            return bad(format!(
                "Matcher \"severity\" must be critical or warning (got {value:?})"
            ));
        }
        if value.is_empty() || value.len() > 256 || value.contains(char::is_control) {
            return bad(format!(
                "Matcher {name:?} must be 1 to 256 characters without control characters"
            ));
        }
    }
    if new.comment.len() > 1000 || new.comment.contains(|c: char| c.is_control() && c != '\n') {
        return bad("'comment' must be at most 1000 characters without control characters".into());
    }
    let starts_at = new.starts_at.unwrap_or(now);
    if (starts_at - now).abs() > START_WITHIN {
        return bad(format!(
            "'starts_at' must be within {} days of now",
            START_WITHIN.num_days()
        ));
    }
    // `starts_at` is within a year of now, so adding at most a year cannot overflow.
    let ends_at = match (new.ends_at, new.duration_seconds) {
        (Some(end), None) => end,
        (None, Some(d)) if d.is_finite() && d > 0.0 && d <= MAX_DURATION_SECONDS => {
            // Bounded above, so the milliseconds fit.
            starts_at + chrono::Duration::milliseconds((d * 1000.0) as i64)
        }
        (None, Some(_)) => {
            return bad(format!(
                "'duration_seconds' must be more than 0 and at most {MAX_DURATION_SECONDS}"
            ))
        }
        (None, None) => starts_at + chrono::Duration::seconds(DEFAULT_DURATION_SECONDS as i64),
        (Some(_), Some(_)) => {
            return bad("Give at most one of 'ends_at' and 'duration_seconds'".into())
        }
    };
    if ends_at <= starts_at {
        return bad("'ends_at' must be after 'starts_at'".into());
    }
    if ends_at <= now {
        return bad("'ends_at' must be in the future".into());
    }
    if (ends_at - starts_at).num_seconds() as f64 > MAX_DURATION_SECONDS {
        return bad(format!(
            "A silence may last at most {} days",
            MAX_DURATION_SECONDS / 86_400.0
        ));
    }
    Ok(Held {
        id: uuid::Uuid::new_v4().to_string(),
        matchers,
        starts_at,
        ends_at,
        comment: new.comment,
        created_at: now,
        remote: BTreeMap::new(),
        ended_early: false,
    })
}

struct Inner {
    /// Silences not yet ended, and ended ones whose copies still need expiring.
    held: Vec<Held>,
    loaded: bool,
    /// The silences being stored now, each holding a slot (so concurrent creations
    /// cannot pass the limit together; one that a read back holds already is
    /// counted once).
    reserving: std::collections::BTreeSet<String>,
    /// When ended silences were last deleted from the store.
    pruned_at: Option<DateTime<Utc>>,
}

/// A slot under `MAX_SILENCES` held while a silence is stored; given back when
/// dropped (stored or not, finished or abandoned).
struct Slot<'a>(&'a Silences, String);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut inner = self.0.lock();
        inner.reserving.remove(&self.1);
    }
}

impl Inner {
    /// Hold `silence` unless it is held already: a silence created while the stored
    /// ones are read back is stored first, so the read may find it before `create`
    /// holds it.
    fn hold(&mut self, silence: Held) {
        if !self.held.iter().any(|h| h.id == silence.id) {
            self.held.push(silence);
        }
    }
}

/// The silences, held in memory and stored.
pub struct Silences {
    store: Arc<Store>,
    quiet: Arc<Quiet>,
    inner: Mutex<Inner>,
    changed: Arc<tokio::sync::Notify>,
}

impl Silences {
    /// `quiet`: the maintenance windows and snoozes, which hold alerts as silences do.
    pub fn new(
        store: Arc<Store>,
        changed: Arc<tokio::sync::Notify>,
        quiet: Arc<Quiet>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            quiet,
            inner: Mutex::new(Inner {
                held: Vec::new(),
                loaded: false,
                reserving: Default::default(),
                pruned_at: None,
            }),
            changed,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each critical section leaves the list whole; survive a poisoned lock.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Read the stored silences back (once; until it works, nothing is silenced
    /// that was silenced before a restart).
    pub async fn load(&self) -> Result<(), StoreError> {
        if self.lock().loaded {
            return Ok(());
        }
        let now = crate::time::now();
        let rows = self.stored(now).await?;
        let mut inner = self.lock();
        for row in rows {
            let held = Held::from_row(row);
            if held.still_needed(now) {
                inner.hold(held);
            }
        }
        inner.loaded = true;
        drop(inner);
        self.changed.notify_one();
        Ok(())
    }

    /// Read the stored silences again (another instance made or ended one): those
    /// new here are held, and one ended there ends here. Nothing held is dropped (a
    /// silence made here meanwhile may not have been in the read).
    pub async fn reload(&self) -> Result<(), StoreError> {
        let now = crate::time::now();
        let rows = self.stored(now).await?;
        let mut inner = self.lock();
        for row in rows {
            let held = Held::from_row(row);
            match inner.held.iter_mut().find(|h| h.id == held.id) {
                Some(h) if held.ends_at < h.ends_at => {
                    h.ends_at = held.ends_at;
                    h.ended_early = held.ended_early;
                }
                Some(_) => {}
                None if held.still_needed(now) => inner.hold(held),
                None => {}
            }
        }
        inner.loaded = true;
        drop(inner);
        self.changed.notify_one();
        Ok(())
    }

    /// The stored silences that end within the last week or later.
    async fn stored(&self, now: DateTime<Utc>) -> Result<Vec<SilenceRow>, StoreError> {
        self.store
            .silences_since(now - LIST_ENDED_FOR, MAX_SILENCES as i64 * 2)
            .await
    }

    pub fn loaded(&self) -> bool {
        self.lock().loaded
    }

    /// Create a silence: stored first, then held.
    pub async fn create(&self, new: NewSilence) -> Result<Silence, SilenceError> {
        let now = crate::time::now();
        let held = check(new, now)?;
        let _slot = self.reserve(&held.id, now)?;
        self.store.save_silence(&held.row()).await?;
        let view = held.view(now);
        tracing::info!(silence = %held.id, matchers = ?held.matchers, ends_at = %held.ends_at, "silence created");
        self.lock().hold(held);
        self.changed.notify_one();
        self.quiet.changed().await;
        Ok(view)
    }

    /// Take one of the `MAX_SILENCES` slots, counting those being stored now.
    fn reserve(&self, id: &str, now: DateTime<Utc>) -> Result<Slot<'_>, SilenceError> {
        let mut inner = self.lock();
        let active = inner
            .held
            .iter()
            .filter(|h| h.state(now) != SilenceState::Expired)
            .filter(|h| !inner.reserving.contains(&h.id))
            .count();
        if active + inner.reserving.len() >= MAX_SILENCES {
            return Err(SilenceError::TooMany);
        }
        inner.reserving.insert(id.to_string());
        Ok(Slot(self, id.to_string()))
    }

    /// End a silence now (an ended one stays as it is).
    pub async fn expire(&self, id: &str) -> Result<Silence, SilenceError> {
        let now = crate::time::now();
        let found = self.lock().held.iter().find(|h| h.id == id).cloned();
        let mut held = match found {
            Some(h) => h,
            None => {
                // Not held: an ended one from the store, or none.
                let rows = self.stored(now).await?;
                return rows
                    .into_iter()
                    .map(Held::from_row)
                    .find(|h| h.id == id)
                    .map(|h| h.view(now))
                    .ok_or_else(|| SilenceError::NotFound(id.to_string()));
            }
        };
        if held.state(now) != SilenceState::Expired {
            held.ends_at = now.max(held.starts_at);
            held.ended_early = true;
            self.store.save_silence(&held.row()).await?;
            tracing::info!(silence = %held.id, "silence ended");
        }
        let view = held.view(now);
        if let Some(h) = self.lock().held.iter_mut().find(|h| h.id == id) {
            *h = held;
        }
        self.changed.notify_one();
        self.quiet.changed().await;
        Ok(view)
    }

    /// Every silence that ends within the last week or later, the latest-ending first.
    pub async fn list(&self) -> Result<Vec<Silence>, SilenceError> {
        let now = crate::time::now();
        let rows = self.stored(now).await?;
        let inner = self.lock();
        Ok(rows
            .into_iter()
            .map(|r| {
                // What memory holds is newer (copies made since it was stored).
                match inner.held.iter().find(|h| h.id == r.id) {
                    Some(h) => h.view(now),
                    None => Held::from_row(r).view(now),
                }
            })
            .collect())
    }

    /// The ids of the active silences that silence `alert`.
    pub fn silencing(&self, alert: &Alert, now: DateTime<Utc>) -> Vec<String> {
        let mut ids: Vec<String> = self
            .lock()
            .held
            .iter()
            .filter(|h| h.silences(alert, now))
            .map(|h| h.id.clone())
            .collect();
        ids.extend(self.quiet.holding(&alert.source, now));
        ids
    }

    /// Mark `alert` with what holds it now: silences and windows (`silenced_by`), the
    /// windows alone (`in_maintenance`), and its acknowledgement.
    pub fn mark(&self, alert: &mut Alert, now: DateTime<Utc>) {
        alert.silenced_by = self.silencing(alert, now);
        alert.in_maintenance = self.quiet.holding(&alert.source, now);
        alert.acknowledged_at = self
            .quiet
            .acknowledged(&alert.fingerprint, alert.started_at);
    }

    /// Whether this episode of `alert` was acknowledged.
    pub fn acknowledged(&self, alert: &Alert) -> bool {
        self.quiet
            .acknowledged(&alert.fingerprint, alert.started_at)
            .is_some()
    }

    /// A copy of what is held (for the sender to bring Alertmanager in step).
    pub fn held(&self) -> Vec<Held> {
        self.lock().held.clone()
    }

    /// Record what an Alertmanager now holds of a silence, store it, and forget a
    /// silence that has ended with every copy expired.
    pub async fn record_remote(
        &self,
        id: &str,
        am: &str,
        remote: Remote,
    ) -> Result<(), StoreError> {
        let now = crate::time::now();
        let row = {
            let mut inner = self.lock();
            let Some(h) = inner.held.iter_mut().find(|h| h.id == id) else {
                return Ok(());
            };
            h.remote.insert(am.to_string(), remote);
            h.row()
        };
        self.store.save_silence(&row).await?;
        self.lock().held.retain(|h| h.still_needed(now));
        Ok(())
    }

    /// Forget ended silences that need nothing more.
    pub fn prune(&self) {
        let now = crate::time::now();
        self.lock().held.retain(|h| h.still_needed(now));
    }

    /// Delete the stored silences that ended longer ago than they are listed (at
    /// most once an hour; those whose copies still need expiring are kept).
    pub async fn prune_stored(&self) {
        let now = crate::time::now();
        let keep: Vec<String> = {
            let inner = self.lock();
            if inner.pruned_at.is_some_and(|at| now - at < PRUNE_EVERY) {
                return;
            }
            inner.held.iter().map(|h| h.id.clone()).collect()
        };
        match self.store.prune_silences(now - LIST_ENDED_FOR, &keep).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(silences = n, "ended silences deleted after a week");
                }
                self.lock().pruned_at = Some(now);
            }
            Err(e) => tracing::debug!(error = %e, "ended silences not deleted yet"),
        }
    }
}

#[cfg(test)]
#[path = "silences_tests.rs"]
mod tests;
