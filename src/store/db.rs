//! The store itself: a deadpool connection pool, versioned migrations applied on the
//! first successful connection (under an advisory lock, so several instances can
//! start together), and idempotent writes so at-least-once delivery never duplicates:
//! detections are unique per `(file_path, file_hash, seq)`, events per `batch_id`.
//!
//! Never blocks start-up: nothing connects until the first query, and a down database
//! is reported as [`StoreError::Unavailable`] (the caller keeps its work queued). A
//! database that does not exist yet is created when the role may (`create.rs`).

use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::NoTls;

use super::create;
use super::error::StoreError;
use super::schema::migrate;

/// Bound on one store operation (connection wait + queries); past it the database
/// counts as unavailable and the caller keeps its work.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Store {
    pool: Pool,
    /// The configured URL (with its password: never shown; `shown_url` is).
    url: String,
    migrated: Mutex<bool>,
    shown_url: String,
    /// Has the current outage been logged (so it is logged once)?
    outage_logged: std::sync::atomic::AtomicBool,
    /// Bumped whenever the database becomes reachable or unreachable.
    reachability: tokio::sync::watch::Sender<u64>,
    /// Held while the missing database is being created.
    creating: Mutex<()>,
}

impl Store {
    /// Build the pool (no connection is made here).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let cfg = deadpool_postgres::Config {
            url: Some(url.to_string()),
            manager: Some(ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            }),
            pool: Some(PoolConfig {
                max_size: 8,
                timeouts: Timeouts {
                    wait: Some(Duration::from_secs(5)),
                    create: Some(Duration::from_secs(3)),
                    recycle: Some(Duration::from_secs(3)),
                },
                // The most recently used connection first: a quiet service keeps
                // using one connection, whose statements are prepared already (each
                // prepare on another connection is a transaction of its own, and
                // first-in-first-out would rotate through all of them).
                queue_mode: deadpool_postgres::QueueMode::Lifo,
            }),
            ..deadpool_postgres::Config::default()
        };
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|e| StoreError::Query(format!("invalid postgres configuration: {e}")))?;
        Ok(Self {
            pool,
            url: url.to_string(),
            migrated: Mutex::new(false),
            shown_url: crate::redact::url(url),
            outage_logged: std::sync::atomic::AtomicBool::new(false),
            reachability: tokio::sync::watch::channel(0).0,
            creating: Mutex::new(()),
        })
    }

    /// Changes whenever the database becomes reachable or unreachable (so health can
    /// be re-assessed at once rather than at the next check interval).
    pub fn reachability_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.reachability.subscribe()
    }

    /// Run one operation bounded by [`OPERATION_TIMEOUT`], and log the database's
    /// reachability once per change (never per attempt).
    pub(super) async fn run<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        use std::sync::atomic::Ordering;
        let result = match tokio::time::timeout(OPERATION_TIMEOUT, op).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {} s",
                OPERATION_TIMEOUT.as_secs()
            ))),
        };
        match &result {
            Err(StoreError::Unavailable(why)) => {
                if !self.outage_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(url = %self.shown_url, error = %why, "PostgreSQL unreachable: images and batches stay queued until it is back");
                    self.reachability.send_modify(|n| *n += 1);
                }
            }
            _ => {
                if self.outage_logged.swap(false, Ordering::Relaxed) {
                    tracing::info!(url = %self.shown_url, "PostgreSQL is reachable again: queued work resumes");
                    self.reachability.send_modify(|n| *n += 1);
                }
            }
        }
        result
    }

    /// A pooled connection, with the database created if it is missing and the schema
    /// migrated on first use.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let mut client = match self.pool.get().await {
            Ok(c) => c,
            Err(e) if create::is_missing_database(&e) => {
                // One attempt at a time: the first callers after start all find the
                // database missing. Whoever waited finds it created.
                let _one = self.creating.lock().await;
                match self.pool.get().await {
                    Ok(c) => c,
                    Err(e) if create::is_missing_database(&e) => {
                        create::create_database(&self.url).await?;
                        self.pool.get().await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        let mut migrated = self.migrated.lock().await;
        if !*migrated {
            migrate(&mut client).await?;
            *migrated = true;
        }
        Ok(client)
    }

    /// Active connections, max connections, buffer cache hit ratio and transactions
    /// (committed + rolled back) since the statistics were reset, for the performance
    /// view.
    pub async fn activity(&self) -> Result<(i64, i64, f64, i64), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(&c.prepare_cached("SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'active')::int8,
                            current_setting('max_connections')::int8,
                            COALESCE(sum(blks_hit)::float8 / NULLIF(sum(blks_hit) + sum(blks_read), 0), 1.0)::float8,
                            COALESCE(sum(xact_commit + xact_rollback), 0)::int8
                     FROM pg_stat_database").await?,
                    &[],
                )
                .await?;
            Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
        })
        .await
    }

    /// `SELECT 1`: the health probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.query_one(&c.prepare_cached("SELECT 1").await?, &[])
                .await?;
            Ok(())
        })
        .await
    }
}
