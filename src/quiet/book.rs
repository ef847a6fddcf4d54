//! The windows in force: the config's recurring ones and those made through the API
//! (stored in PostgreSQL), shared by every instance within two seconds: a change
//! bumps `quiet:version` in Redis, and the `maintenance` worker of every instance
//! reads that key each second and, when it moved, the windows again (every 10 s
//! while Redis is away). Reads are from memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};

use super::mirror::{copies, Copy};
use super::view::{view, WindowView};
use super::window::{Scope, When, Window, WindowKind};
use super::written::{from_config, from_row, invalid, row, weekly, NewWindow, QuietError};
use crate::config::MaintenanceConfig;
use crate::events::Source;
use crate::names::workers;
use crate::redis::RedisLink;
use crate::store::{Store, StoreError};
use crate::supervisor::{WorkerContext, WorkerSpec};

/// The Redis key every change bumps.
const VERSION_KEY: &str = "quiet:version";
/// How often the key is read.
const LOOK_EVERY: StdDuration = StdDuration::from_secs(1);
/// How often the windows are read again while Redis cannot say whether they changed.
const REREAD_WITHOUT_REDIS: StdDuration = StdDuration::from_secs(10);
/// The most windows kept from the API.
pub const MAX_WINDOWS: i64 = 1000;
/// How long a window changed here is remembered as such (far longer than a reload).
const KEEP_CHANGED_HERE: StdDuration = StdDuration::from_secs(60);
/// The most acknowledgements held, and how far back they are read (an alert that
/// fires longer is acknowledged again if needed).
const MAX_ACKS: i64 = 10_000;
const ACKS_FOR: Duration = Duration::days(30);

/// What runs when another instance changed what holds alerts back.
type OnChange = Box<dyn Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;
/// What runs when a snooze ends (on the one instance that claimed telling it).
type OnEnd = Box<dyn Fn(Window) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>;

pub struct Quiet {
    store: Arc<Store>,
    /// The shared version this instance has applied (its own changes count as
    /// applied when nobody else changed anything between).
    applied: std::sync::atomic::AtomicI64,
    on_change: Mutex<Vec<OnChange>>,
    on_snooze_end: Mutex<Vec<OnEnd>>,
    redis: Arc<RedisLink>,
    groups: BTreeMap<String, Vec<String>>,
    max_snooze: Duration,
    configured: Vec<Window>,
    stored: Mutex<Vec<Window>>,
    /// When each alert was last acknowledged, by fingerprint.
    acks: Mutex<BTreeMap<String, DateTime<Utc>>>,
    /// Windows made or ended here lately, and when (a reload that began before
    /// keeps them as they are here).
    changed_here: Mutex<BTreeMap<String, tokio::time::Instant>>,
    /// Woken at every change, this instance's or another's (the Alertmanager copies
    /// are brought in step then).
    touched: Arc<tokio::sync::Notify>,
}

impl Quiet {
    pub fn new(
        cfg: &MaintenanceConfig,
        groups: BTreeMap<String, Vec<String>>,
        store: Arc<Store>,
        redis: Arc<RedisLink>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            redis,
            groups,
            max_snooze: Duration::milliseconds((cfg.max_snooze_seconds * 1000.0) as i64),
            configured: cfg
                .windows
                .iter()
                .enumerate()
                .filter_map(|(i, w)| from_config(i, w))
                .collect(),
            stored: Mutex::new(Vec::new()),
            acks: Mutex::new(BTreeMap::new()),
            changed_here: Mutex::new(BTreeMap::new()),
            on_change: Mutex::new(Vec::new()),
            applied: std::sync::atomic::AtomicI64::new(-1),
            on_snooze_end: Mutex::new(Vec::new()),
            touched: Arc::default(),
        })
    }

    /// Woken at every change of the windows, here or on another instance.
    pub fn touched(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.touched)
    }

    /// The silences each Alertmanager should hold for the windows at `now`.
    pub fn copies(&self, now: DateTime<Utc>) -> Vec<Copy> {
        let stored = self.lock();
        let all = self.configured.iter().chain(stored.iter());
        copies(all, now, |g| {
            self.groups.get(g).cloned().unwrap_or_default()
        })
    }

    /// Run `f` whenever the shared version moves (another instance changed a window,
    /// a snooze or a silence): the silences are read again through it.
    pub fn on_change(
        &self,
        f: impl Fn() -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + 'static,
    ) {
        self.on_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Window>> {
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn in_group(&self, group: &str, camera: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|cams| cams.iter().any(|c| c == camera))
    }

    fn all(&self) -> Vec<Window> {
        let mut all = self.configured.clone();
        all.extend(self.lock().iter().cloned());
        all
    }

    /// The windows that hold an alert about `source` at `now` (their ids).
    /// Asked for every alert listed and every camera each second: no window is
    /// copied.
    pub fn holding(&self, source: &Source, now: DateTime<Utc>) -> Vec<String> {
        let stored = self.lock();
        self.configured
            .iter()
            .chain(stored.iter())
            .filter(|w| w.when.active_at(now).is_some())
            .filter(|w| w.scope.covers(source, |g, c| self.in_group(g, c)))
            .map(|w| w.id.clone())
            .collect()
    }

    /// The snoozes of everything that hold at `now` (their ids): while one does,
    /// nobody is told anything.
    pub fn everything_snoozed(&self, now: DateTime<Utc>) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|w| w.kind == WindowKind::Snooze && w.scope == Scope::Everything)
            .filter(|w| w.when.active_at(now).is_some())
            .map(|w| w.id.clone())
            .collect()
    }

    /// The longest snooze (`maintenance.max_snooze_seconds`), in seconds.
    pub fn max_snooze_seconds(&self) -> f64 {
        self.max_snooze.num_milliseconds() as f64 / 1000.0
    }

    /// Whether camera `id` is in a window at `now` (coverage counts it as
    /// maintenance).
    pub fn camera_held(&self, id: &str, now: DateTime<Utc>) -> bool {
        !self
            .holding(&Source::Camera(id.to_string()), now)
            .is_empty()
    }

    /// Every window, with whether it holds now and its next occurrence; those over
    /// for more than a day are left out.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<WindowView> {
        self.all()
            .into_iter()
            .filter(|w| match w.when {
                When::Once { ends_at, .. } => now - ends_at < Duration::days(1),
                When::Weekly { .. } => true,
            })
            .map(|w| view(&w, now))
            .collect()
    }

    /// Run `f` when a snooze ends (its end reached or ended early), once across
    /// instances: its end is told.
    pub fn on_snooze_end(
        &self,
        f: impl Fn(Window) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + 'static,
    ) {
        self.on_snooze_end
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    /// Whether `w` covers an alert about `source`.
    pub fn covers(&self, w: &Window, source: &Source) -> bool {
        w.scope.covers(source, |g, c| self.in_group(g, c))
    }

    /// The snoozes that ended in `(after, now]`, each claimed once across instances;
    /// the hooks run for those this instance claimed.
    async fn tell_ended_snoozes(&self, after: DateTime<Utc>, now: DateTime<Utc>) {
        let ended: Vec<Window> = self
            .lock()
            .iter()
            .filter(|w| w.kind == WindowKind::Snooze)
            .filter(|w| matches!(w.when, When::Once { ends_at, .. } if after < ends_at && ends_at <= now))
            .cloned()
            .collect();
        for w in ended {
            match self
                .store
                .claim_once(&format!("snooze-end:{}", w.id), now)
                .await
            {
                Ok(true) => {
                    let hooks: Vec<_> = self
                        .on_snooze_end
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .iter()
                        .map(|f| f(w.clone()))
                        .collect();
                    for h in hooks {
                        h.await;
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, snooze = %w.id, "the end of a snooze not claimed; not told")
                }
            }
        }
    }

    /// Read the stored windows again.
    pub async fn reload(&self) -> Result<usize, StoreError> {
        let now = crate::time::now();
        // A window made or ended here while this read runs may be missing from it
        // (stored after the read began): what changed here since is kept as it is.
        let began = tokio::time::Instant::now();
        let rows = self
            .store
            .windows_since(now - Duration::days(1), MAX_WINDOWS)
            .await?;
        let acks = self
            .store
            .acknowledgements(now - ACKS_FOR, MAX_ACKS)
            .await?;
        let mut windows: Vec<Window> = rows.into_iter().filter_map(from_row).collect();
        let since_read: Vec<String> = {
            let mut here = self.changed_here.lock().unwrap_or_else(|p| p.into_inner());
            here.retain(|_, at| at.elapsed() < KEEP_CHANGED_HERE);
            here.iter()
                .filter(|(_, at)| **at >= began)
                .map(|(id, _)| id.clone())
                .collect()
        };
        let n = windows.len();
        {
            let mut held = self.lock();
            for id in since_read {
                // As it is here: made, ended early, or (a weekly one) stopped.
                windows.retain(|x| x.id != id);
                if let Some(w) = held.iter().find(|w| w.id == id) {
                    windows.push(w.clone());
                }
            }
            *held = windows;
        }
        // Acknowledgements only ever move forward: the newer of the two is kept.
        let mut held = self.acks();
        for (fp, at) in acks {
            let e = held.entry(fp).or_insert(at);
            *e = (*e).max(at);
        }
        Ok(n)
    }

    /// Note that window `id` was made or ended here, now (after it was stored).
    fn changed_here(&self, id: &str) {
        self.changed_here
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), tokio::time::Instant::now());
    }

    fn acks(&self) -> MutexGuard<'_, BTreeMap<String, DateTime<Utc>>> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Acknowledge the alert `fingerprint` now (stored first; every instance applies
    /// it within 2 s): it is shown acknowledged and not told again while it fires.
    pub async fn acknowledge(&self, fingerprint: &str) -> Result<DateTime<Utc>, QuietError> {
        let now = crate::time::now();
        self.store.acknowledge(fingerprint, now).await?;
        self.acks().insert(fingerprint.to_string(), now);
        self.changed().await;
        Ok(now)
    }

    /// When the episode of `fingerprint` that started at `started_at` was
    /// acknowledged, if it was (an acknowledgement of an earlier episode is not).
    pub fn acknowledged(
        &self,
        fingerprint: &str,
        started_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.acks()
            .get(fingerprint)
            .copied()
            .filter(|at| *at >= started_at)
    }

    /// Make a window (stored first; nothing changes while PostgreSQL is away).
    pub async fn create(&self, ask: NewWindow) -> Result<WindowView, QuietError> {
        let now = crate::time::now();
        let kind = ask.kind.unwrap_or(WindowKind::Maintenance);
        let comment = ask.comment.unwrap_or_default();
        if comment.len() > 1024 || comment.chars().any(char::is_control) {
            return Err(invalid(
                "'comment' must be at most 1024 characters, without control characters",
            ));
        }
        match &ask.scope {
            Scope::Everything => {}
            Scope::Camera(n) | Scope::CameraGroup(n) | Scope::Dependency(n) => {
                if !(1..=64).contains(&n.len())
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    return Err(invalid(
                        "'scope.name' must be 1 to 64 letters, digits, '_' or '-'",
                    ));
                }
            }
        }
        let when = match (&ask.days, kind) {
            (Some(_), WindowKind::Snooze) => {
                return Err(invalid(
                    "A snooze starts now and ends once: it takes no 'days'",
                ))
            }
            (Some(days), WindowKind::Maintenance) => weekly(
                days,
                ask.start.as_deref().unwrap_or(""),
                ask.duration_seconds.unwrap_or(0.0),
                ask.timezone.as_deref().unwrap_or(""),
            )?,
            (None, _) => {
                let starts_at = match kind {
                    WindowKind::Snooze if ask.starts_at.is_some() => {
                        return Err(invalid("A snooze starts now: it takes no 'starts_at'"))
                    }
                    WindowKind::Snooze => now,
                    WindowKind::Maintenance => ask.starts_at.unwrap_or(now),
                };
                let ends_at =
                    match (ask.ends_at, ask.duration_seconds) {
                        (Some(e), None) => e,
                        (None, Some(s)) if s.is_finite() && s > 0.0 && s < 1e9 => {
                            starts_at + Duration::milliseconds((s * 1000.0) as i64)
                        }
                        _ => return Err(invalid(
                            "Give the window an end: 'ends_at' or 'duration_seconds' (one of them)",
                        )),
                    };
                if ends_at <= starts_at || ends_at <= now {
                    return Err(invalid(
                        "'ends_at' must be after the start and in the future",
                    ));
                }
                if kind == WindowKind::Snooze && ends_at - starts_at > self.max_snooze {
                    return Err(invalid(format!(
                        "A snooze lasts at most {} s (maintenance.max_snooze_seconds)",
                        self.max_snooze.num_seconds()
                    )));
                }
                When::Once { starts_at, ends_at }
            }
        };
        let w = Window {
            id: uuid::Uuid::new_v4().to_string(),
            kind,
            scope: ask.scope,
            when,
            comment,
            created_at: now,
            from_config: false,
        };
        self.store.save_window(&row(&w, None)).await?;
        self.lock().push(w.clone());
        self.changed_here(&w.id);
        self.changed().await;
        Ok(view(&w, now))
    }

    /// End a window now (a snooze or a one-off window ends early; a weekly one stops).
    pub async fn end(&self, id: &str) -> Result<WindowView, QuietError> {
        let now = crate::time::now();
        if self.configured.iter().any(|w| w.id == id) {
            return Err(QuietError::FromConfig(id.to_string()));
        }
        let w = self
            .lock()
            .iter()
            .find(|w| w.id == id)
            .cloned()
            .ok_or_else(|| QuietError::Unknown(id.to_string()))?;
        self.store.save_window(&row(&w, Some(now))).await?;
        let mut ended = w.clone();
        {
            let mut stored = self.lock();
            stored.retain(|x| x.id != id);
            if let When::Once { starts_at, ends_at } = w.when {
                ended.when = When::Once {
                    starts_at: starts_at.min(now),
                    ends_at: ends_at.min(now),
                };
                stored.push(ended.clone());
            }
        }
        self.changed_here(id);
        self.changed().await;
        Ok(view(&ended, now))
    }

    /// Tell every instance (through Redis) that what holds alerts back changed (a
    /// window, a snooze or a silence).
    pub async fn changed(&self) {
        self.touched.notify_one();
        if let Ok(mut conn) = self.redis.conn().await {
            let bumped: Result<i64, _> = redis::cmd("INCR")
                .arg(VERSION_KEY)
                .query_async(&mut conn)
                .await;
            match bumped {
                // Nobody else changed anything since this instance last applied a
                // version: this one is applied already.
                Ok(v) => {
                    let _ = self.applied.compare_exchange(
                        v - 1,
                        v,
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                    );
                }
                Err(e) => {
                    tracing::debug!(error = %e, "windows changed; other instances read them within 10 s")
                }
            }
        }
    }

    async fn version(&self) -> Option<i64> {
        let mut conn = self.redis.conn().await.ok()?;
        redis::cmd("GET")
            .arg(VERSION_KEY)
            .query_async::<Option<i64>>(&mut conn)
            .await
            .ok()
            .map(|v| v.unwrap_or(0))
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::MAINTENANCE,
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                me.run(&ctx).await;
                Ok(())
            },
        )
    }

    /// Read the windows at start, then again whenever the version in Redis moves
    /// (every 10 s while Redis is away).
    async fn run(&self, ctx: &WorkerContext) {
        let mut loaded = false;
        let mut last_read = tokio::time::Instant::now();
        let mut looked = crate::time::now();
        loop {
            let version = self.version().await;
            let seen =
                Some(self.applied.load(std::sync::atomic::Ordering::SeqCst)).filter(|v| *v >= 0);
            let due = !loaded
                || (version.is_some() && version != seen)
                || (version.is_none() && last_read.elapsed() >= REREAD_WITHOUT_REDIS);
            if due {
                last_read = tokio::time::Instant::now();
                match ctx
                    .beat_while(StdDuration::from_secs(15), self.reload())
                    .await
                {
                    Ok(_) => {
                        self.touched.notify_one();
                        if loaded {
                            let hooks: Vec<_> = self
                                .on_change
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .iter()
                                .map(|f| f())
                                .collect();
                            for h in hooks {
                                ctx.beat_while(StdDuration::from_secs(15), h).await;
                            }
                        }
                        loaded = true;
                        if let Some(v) = version {
                            self.applied.store(v, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "windows not read; kept as they were"),
                }
            }
            let now = crate::time::now();
            ctx.beat_while(
                StdDuration::from_secs(15),
                self.tell_ended_snoozes(looked, now),
            )
            .await;
            looked = now;
            if !ctx.idle(LOOK_EVERY).await {
                return;
            }
        }
    }
}
