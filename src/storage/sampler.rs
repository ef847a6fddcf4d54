//! The `storage_sampler` worker: each volume measured every
//! `storage.sample_interval_seconds` (`statvfs` on the blocking pool; the database's
//! size from `pg_database_size` and, when PostgreSQL is on this machine and its data
//! directory readable, that volume's free space), its samples kept over the forecast
//! window, the latest figures published.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::disk::{disk_usage, CAMERA_ROOT};
use super::forecast::{Sample, Series};
use super::metrics::StorageMetrics;
use crate::config::{secs, Config};
use crate::names::workers;
use crate::pipeline::retention::SizeRun;
use crate::pipeline::retention_db::DatabaseRun;
use crate::store::Store;
use crate::supervisor::WorkerSpec;

/// The most samples kept per volume (a week at one a minute is 10,080).
const MAX_SAMPLES: usize = 20_000;
/// The longest one round of measurements may take.
const ROUND_BUDGET: Duration = Duration::from_secs(30);

/// One volume as the API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct VolumeView {
    /// `camera_root`, `spool`, `outbox` or `postgres`.
    pub name: &'static str,
    /// The directory measured (for `postgres`, its data directory when known, else
    /// its address without credentials).
    pub path: String,
    pub total_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
    /// The file system's used bytes; for `postgres`, the database's size (and
    /// `total_bytes`, `free_bytes` are those of its file system, when on this
    /// machine).
    pub used_bytes: Option<u64>,
    pub growth_bytes_per_hour: Option<f64>,
    /// When it is forecast full at that growth; null when it is not filling (or its
    /// free space is unknown).
    pub full_at: Option<DateTime<Utc>>,
    /// Samples in the forecast window.
    pub samples: usize,
}

/// `GET /api/system/storage`.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StorageView {
    pub volumes: Vec<VolumeView>,
    /// The last retention run by size (`cleanup.max_media_bytes`): what, how much,
    /// why; null when it is off or has not run.
    pub cleanup: Option<SizeRun>,
    /// The last retention run of the database by size (`cleanup.max_database_bytes`);
    /// null when it is off or has not run.
    pub database_cleanup: Option<DatabaseRun>,
    pub timestamp: DateTime<Utc>,
}

/// One measurement: what the volume uses (for `postgres`, the database's size) and
/// the free space and size of its file system, when known.
#[derive(Debug, Clone, Copy)]
struct Measured {
    used: f64,
    free: Option<f64>,
    total: Option<f64>,
}

/// `(used, total)` of the file system holding `dir`, on the blocking pool.
async fn statvfs(dir: PathBuf) -> Option<(f64, f64)> {
    tokio::task::spawn_blocking(move || disk_usage(&dir))
        .await
        .ok()
        .flatten()
}

/// Where a volume is.
#[derive(Debug, Clone)]
enum Place {
    Dir(PathBuf),
    Database { shown: String, local: bool },
}

pub struct Storage {
    store: Arc<Store>,
    places: Vec<(&'static str, Place)>,
    interval: Duration,
    window: f64,
    lead: f64,
    series: Mutex<BTreeMap<&'static str, Series>>,
    latest: Mutex<Vec<VolumeView>>,
    metrics: StorageMetrics,
}

/// Whether a PostgreSQL address is on this machine (loopback, or a socket).
fn local_database(url: &str) -> bool {
    match reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
    {
        Some(h) => {
            let h = h.trim_matches(['[', ']']);
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        // No host: a Unix socket.
        None => true,
    }
}

impl Storage {
    pub fn new(cfg: &Config, store: Arc<Store>, metrics: StorageMetrics) -> Arc<Self> {
        let s = &cfg.storage;
        // The directories' series from the first scrape (the worker measures the
        // database too, and everything again each interval).
        for (name, dir) in [
            (CAMERA_ROOT, &cfg.file_watcher.camera_root),
            ("spool", &cfg.queue.spool_dir),
            ("outbox", &cfg.notify.outbox_dir),
        ] {
            if let Some((used, total)) = disk_usage(std::path::Path::new(dir)) {
                metrics.measured(name, Some(total), Some(total - used), None, None);
            }
        }
        // The database's size needs it to answer; its forecast series are there.
        metrics.measured("postgres", None, None, None, None);
        Arc::new(Self {
            store,
            places: vec![
                (
                    CAMERA_ROOT,
                    Place::Dir(cfg.file_watcher.camera_root.clone().into()),
                ),
                ("spool", Place::Dir(cfg.queue.spool_dir.clone().into())),
                ("outbox", Place::Dir(cfg.notify.outbox_dir.clone().into())),
                (
                    "postgres",
                    Place::Database {
                        shown: crate::redact::origin(&cfg.postgres.url),
                        local: local_database(&cfg.postgres.url),
                    },
                ),
            ],
            interval: secs(s.sample_interval_seconds),
            window: s.forecast_window_seconds,
            lead: s.alert_lead_seconds,
            series: Mutex::default(),
            latest: Mutex::default(),
            metrics,
        })
    }

    fn latest(&self) -> MutexGuard<'_, Vec<VolumeView>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The latest figures of every volume measured so far.
    pub fn view(&self) -> StorageView {
        StorageView {
            volumes: self.latest().clone(),
            cleanup: None,
            database_cleanup: None,
            timestamp: crate::time::now(),
        }
    }

    /// The volumes forecast full within `storage.alert_lead_seconds` of `now`, with
    /// their figures.
    pub fn filling_up(&self, now: DateTime<Utc>) -> Vec<VolumeView> {
        let lead = chrono::Duration::milliseconds((self.lead * 1000.0) as i64);
        self.latest()
            .iter()
            .filter(|v| v.full_at.is_some_and(|at| at - now <= lead))
            .cloned()
            .collect()
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::STORAGE_SAMPLER,
            critical,
            Arc::clone(self),
            |me, ctx| async move {
                // At a fixed rate (not an interval after each round), so samples of
                // something that grows at a fixed rate are evenly spaced.
                let mut next = tokio::time::Instant::now();
                loop {
                    ctx.beat_while(ROUND_BUDGET, me.sample_once()).await;
                    let now = tokio::time::Instant::now();
                    next = (next + me.interval).max(now);
                    if !ctx.idle(next - now).await {
                        return Ok(());
                    }
                }
            },
        )
    }

    /// Measure every volume once.
    pub async fn sample_once(&self) {
        let now = crate::time::now();
        let at = now.timestamp_millis() as f64 / 1000.0;
        let mut views = Vec::with_capacity(self.places.len());
        for (name, place) in &self.places {
            let (path, measured) = match place {
                Place::Dir(dir) => (dir.display().to_string(), self.directory(dir).await),
                Place::Database { shown, local } => self.database(shown, *local).await,
            };
            let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
            let s = series.entry(name).or_default();
            let mut total = None;
            if let Some(m) = measured {
                total = m.total;
                s.push(
                    Sample {
                        at,
                        used: m.used,
                        free: m.free,
                    },
                    self.window,
                    MAX_SAMPLES,
                );
            }
            let last = s.latest();
            let growth = s.growth();
            let full_at = s.full_at();
            let free = last.and_then(|l| l.free);
            self.metrics.measured(name, total, free, growth, full_at);
            views.push(VolumeView {
                name,
                path,
                total_bytes: total.map(|t| t as u64),
                free_bytes: last.and_then(|l| l.free.map(|f| f as u64)),
                used_bytes: last.map(|l| l.used as u64),
                growth_bytes_per_hour: growth.map(|g| g * 3600.0),
                full_at: full_at.and_then(|t| DateTime::from_timestamp_millis((t * 1000.0) as i64)),
                samples: s.len(),
            });
        }
        *self.latest() = views;
    }

    /// The file system holding `dir`.
    async fn directory(&self, dir: &std::path::Path) -> Option<Measured> {
        statvfs(dir.to_path_buf())
            .await
            .map(|(used, total)| Measured {
                used,
                free: Some(total - used),
                total: Some(total),
            })
    }

    /// The database's size as its used bytes; the size and free space of its file
    /// system when PostgreSQL is on this machine and says where its data is. The
    /// path shown.
    async fn database(&self, shown: &str, local: bool) -> (String, Option<Measured>) {
        let Ok((size, dir)) = self.store.database_size().await else {
            return (shown.to_string(), None);
        };
        let used = size.max(0) as f64;
        match dir.filter(|_| local) {
            Some(d) => {
                let fs = statvfs(PathBuf::from(&d)).await;
                let measured = Measured {
                    used,
                    free: fs.map(|(u, t)| t - u),
                    total: fs.map(|(_, t)| t),
                };
                (d, Some(measured))
            }
            None => (
                shown.to_string(),
                Some(Measured {
                    used,
                    free: None,
                    total: None,
                }),
            ),
        }
    }
}
