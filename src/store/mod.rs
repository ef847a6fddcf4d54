//! PostgreSQL store: a deadpool connection pool, versioned migrations applied on the
//! first successful connection (under an advisory lock, so several instances can
//! start together), and idempotent writes so at-least-once delivery never duplicates:
//! detections are unique per `(file_path, file_hash, seq)`, events per `batch_id`.
//!
//! Never blocks start-up: nothing connects until the first query, and a down database
//! is reported as [`StoreError::Unavailable`] (the caller keeps its work queued). A
//! database that does not exist yet is created when the role may (`create.rs`).

mod create;
mod error;

pub use error::StoreError;

use chrono::{DateTime, Utc};
use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::NoTls;

use crate::ai::Detection;

/// Ordered schema migrations; a version is applied once.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE cameras (
        id TEXT PRIMARY KEY,
        folder_name TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE detections (
        id BIGSERIAL PRIMARY KEY,
        camera_id TEXT NOT NULL,
        file_path TEXT NOT NULL,
        file_hash TEXT NOT NULL,
        seq INT NOT NULL,
        object_type TEXT NOT NULL,
        confidence DOUBLE PRECISION NOT NULL,
        bbox JSONB NOT NULL,
        detected_at TIMESTAMPTZ NOT NULL,
        UNIQUE (file_path, file_hash, seq)
    );
    CREATE INDEX detections_detected_at ON detections (detected_at);
    CREATE INDEX detections_camera ON detections (camera_id, detected_at);
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        batch_id TEXT NOT NULL UNIQUE,
        camera_id TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL,
        ended_at TIMESTAMPTZ NOT NULL,
        risk_score SMALLINT NOT NULL,
        risk_level TEXT NOT NULL,
        summary TEXT NOT NULL,
        reasoning TEXT NOT NULL,
        detection_ids BIGINT[] NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX events_created_at ON events (created_at);
    CREATE TABLE job_runs (
        job TEXT PRIMARY KEY,
        last_run_at TIMESTAMPTZ NOT NULL
    );",
)];

/// A stored security event as `GET /api/system/events/recent` lists it: the payload of
/// its `event.created`, and when it was created.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecentEvent {
    #[serde(flatten)]
    pub event: crate::events::EventCreated,
    pub created_at: DateTime<Utc>,
}

/// A detection row as the analysis prompt needs it.
#[derive(Debug, Clone)]
pub struct StoredDetection {
    pub id: i64,
    pub object_type: String,
    pub confidence: f64,
    pub detected_at: DateTime<Utc>,
}

pub struct NewEvent<'a> {
    pub batch_id: &'a str,
    pub camera_id: &'a str,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub risk_score: i16,
    pub risk_level: &'a str,
    pub summary: &'a str,
    pub reasoning: &'a str,
    pub detection_ids: &'a [i64],
}

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
                ..PoolConfig::default()
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
    async fn run<T>(
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
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
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
                .query_one(
                    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE state = 'active')::int8,
                            current_setting('max_connections')::int8,
                            COALESCE(sum(blks_hit)::float8 / NULLIF(sum(blks_hit) + sum(blks_read), 0), 1.0)::float8,
                            COALESCE(sum(xact_commit + xact_rollback), 0)::int8
                     FROM pg_stat_database",
                    &[],
                )
                .await?;
            Ok((row.get(0), row.get(1), row.get(2), row.get(3)))
        })
        .await
    }

    /// The newest `limit` security events, newest first.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<RecentEvent>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, batch_id, camera_id, risk_score::int8, risk_level, summary, created_at
                     FROM events ORDER BY id DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| RecentEvent {
                    event: crate::events::EventCreated {
                        event_id: r.get(0),
                        batch_id: r.get(1),
                        camera_id: r.get(2),
                        risk_score: r.get(3),
                        risk_level: r.get(4),
                        summary: r.get(5),
                    },
                    created_at: r.get(6),
                })
                .collect())
        })
        .await
    }

    /// `SELECT 1`: the health probe.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.query_one("SELECT 1", &[]).await?;
            Ok(())
        })
        .await
    }

    /// Insert a camera if unknown, refresh `last_seen_at`; `true` when it was new.
    pub async fn touch_camera(&self, id: &str, folder_name: &str) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "INSERT INTO cameras (id, folder_name) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET last_seen_at = now()
                     RETURNING (xmax = 0) AS inserted",
                    &[&id, &folder_name],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    /// Store one image's detections in one statement; idempotent per file.
    /// Returns the row ids in detection order.
    pub async fn store_detections(
        &self,
        camera_id: &str,
        file_path: &str,
        file_hash: &str,
        detected_at: DateTime<Utc>,
        detections: &[Detection],
    ) -> Result<Vec<i64>, StoreError> {
        self.run(async {
            if detections.is_empty() {
                return Ok(Vec::new());
            }
            let seq: Vec<i32> = (0..detections.len() as i32).collect();
            let types: Vec<&str> = detections.iter().map(|d| d.object_type.as_str()).collect();
            let conf: Vec<f64> = detections.iter().map(|d| d.confidence).collect();
            let bbox: Vec<serde_json::Value> = detections
                .iter()
                .map(|d| serde_json::to_value(d.bbox).unwrap_or_default())
                .collect();
            let c = self.client().await?;
            let rows = c
                .query(
                    "INSERT INTO detections
                        (camera_id, file_path, file_hash, seq, object_type, confidence, bbox, detected_at)
                     SELECT $1, $2, $3, t.s, t.o, t.c, t.b, $4
                     FROM unnest($5::int4[], $6::text[], $7::float8[], $8::jsonb[]) AS t(s, o, c, b)
                     ON CONFLICT (file_path, file_hash, seq) DO UPDATE SET seq = EXCLUDED.seq
                     RETURNING id, seq",
                    &[&camera_id, &file_path, &file_hash, &detected_at, &seq, &types, &conf, &bbox],
                )
                .await?;
            let mut ids: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
            ids.sort_unstable();
            Ok(ids.into_iter().map(|(_, id)| id).collect())
        })
        .await
    }

    pub async fn detections_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredDetection>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "SELECT id, object_type, confidence, detected_at FROM detections
                     WHERE id = ANY($1) ORDER BY detected_at, id",
                    &[&ids],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| StoredDetection {
                    id: r.get(0),
                    object_type: r.get(1),
                    confidence: r.get(2),
                    detected_at: r.get(3),
                })
                .collect())
        })
        .await
    }

    /// Insert the event of a batch; `None` when that batch already has one.
    pub async fn insert_event(&self, e: &NewEvent<'_>) -> Result<Option<i64>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt(
                    "INSERT INTO events (batch_id, camera_id, started_at, ended_at, risk_score,
                                         risk_level, summary, reasoning, detection_ids)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (batch_id) DO NOTHING
                     RETURNING id",
                    &[
                        &e.batch_id,
                        &e.camera_id,
                        &e.started_at,
                        &e.ended_at,
                        &e.risk_score,
                        &e.risk_level,
                        &e.summary,
                        &e.reasoning,
                        &e.detection_ids,
                    ],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    /// Delete up to `limit` detections older than `cutoff`; returns their file paths.
    pub async fn delete_old_detections(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    "DELETE FROM detections WHERE id IN
                        (SELECT id FROM detections WHERE detected_at < $1 ORDER BY id LIMIT $2)
                     RETURNING file_path",
                    &[&cutoff, &limit],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// Delete up to `limit` events created before `cutoff`; returns how many.
    pub async fn delete_old_events(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.execute(
                "DELETE FROM events WHERE id IN
                    (SELECT id FROM events WHERE created_at < $1 ORDER BY id LIMIT $2)",
                &[&cutoff, &limit],
            )
            .await?)
        })
        .await
    }

    /// Whether any detection still refers to this file.
    pub async fn file_referenced(&self, file_path: &str) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM detections WHERE file_path = $1)",
                    &[&file_path],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    pub async fn last_job_run(&self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_opt("SELECT last_run_at FROM job_runs WHERE job = $1", &[&job])
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    pub async fn record_job_run(&self, job: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                "INSERT INTO job_runs (job, last_run_at) VALUES ($1, $2)
                 ON CONFLICT (job) DO UPDATE SET last_run_at = EXCLUDED.last_run_at",
                &[&job, &at],
            )
            .await?;
            Ok(())
        })
        .await
    }
}

async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    // One instance migrates at a time; the lock ends with the transaction. Notices
    // ("relation … already exists, skipping") are not worth a log line at every start.
    tx.batch_execute(
        "SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock(7457001)",
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "database migration applied");
    }
    tx.commit().await?;
    Ok(())
}
