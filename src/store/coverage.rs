//! Coverage: the spans in which images would not have become detections and events
//! (a camera offline, a worker or a service down, watchpost not running), one row
//! each, written when a span opens and when it ends; and when that history begins.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

/// One span as stored: what it is about (`camera` + id, `pipeline`, `dependency` +
/// name), its cause, why in words, and its interval (`ended_at` NULL while open).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow {
    pub id: String,
    pub subject_kind: String,
    pub subject: String,
    pub cause: String,
    pub detail: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// Which spans a coverage query reads.
#[derive(Debug, Clone, Copy)]
pub enum SpanFilter<'a> {
    /// One camera's and the pipeline's.
    Camera(&'a str),
    /// Every span.
    All,
}

/// A camera as coverage names it: its id, folder and when it was first seen.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraSince {
    pub id: String,
    pub folder: String,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, subject_kind, subject, cause, detail, started_at, ended_at";

impl Store {
    /// Insert these spans, or set the end of those already there, in one transaction.
    pub async fn save_spans(&self, rows: &[SpanRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(&format!(
                    "INSERT INTO coverage_spans ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET ended_at = EXCLUDED.ended_at"
                ))
                .await?;
            for r in rows {
                tx.execute(
                    &st,
                    &[
                        &r.id,
                        &r.subject_kind,
                        &r.subject,
                        &r.cause,
                        &r.detail,
                        &r.started_at,
                        &r.ended_at,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// End these spans at `at`, unless ended already (the spans a run left open when
    /// it stopped, ended at its last heartbeat).
    pub async fn end_spans(&self, ids: &[String], at: DateTime<Utc>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "UPDATE coverage_spans SET ended_at = GREATEST(started_at, $2)
                     WHERE id = ANY($1) AND ended_at IS NULL",
                )
                .await?,
                &[&ids, &at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The spans of `filter` that overlap `[from, to)`, oldest first.
    pub async fn spans_between(
        &self,
        filter: SpanFilter<'_>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SpanRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = match filter {
                SpanFilter::Camera(id) => {
                    c.query(
                        &c.prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM coverage_spans
                             WHERE ((subject_kind = 'camera' AND subject = $3) OR subject_kind = 'pipeline')
                               AND started_at < $2 AND (ended_at IS NULL OR ended_at > $1)
                             ORDER BY started_at"
                        ))
                        .await?,
                        &[&from, &to, &id],
                    )
                    .await?
                }
                SpanFilter::All => {
                    c.query(
                        &c.prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM coverage_spans
                             WHERE started_at < $2 AND (ended_at IS NULL OR ended_at > $1)
                             ORDER BY started_at"
                        ))
                        .await?,
                        &[&from, &to],
                    )
                    .await?
                }
            };
            Ok(rows
                .iter()
                .map(|r| SpanRow {
                    id: r.get(0),
                    subject_kind: r.get(1),
                    subject: r.get(2),
                    cause: r.get(3),
                    detail: r.get(4),
                    started_at: r.get(5),
                    ended_at: r.get(6),
                })
                .collect())
        })
        .await
    }

    /// The coverage history begins `now`, unless it began already.
    pub async fn begin_coverage_history(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO coverage_history (since) VALUES ($1) ON CONFLICT (one) DO NOTHING",
                )
                .await?,
                &[&now],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// When the coverage history begins (`None`: no run has recorded it yet).
    pub async fn coverage_history_start(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                &c.prepare_cached("SELECT since FROM coverage_history")
                    .await?,
                &[],
            )
            .await?
            .map(|r| r.get(0)))
        })
        .await
    }

    /// Every stored camera with when it was first seen.
    pub async fn cameras_since(&self) -> Result<Vec<CameraSince>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT DISTINCT ON (id) id, folder_name, created_at FROM cameras ORDER BY id, created_at",
                    )
                    .await?,
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| CameraSince {
                    id: r.get(0),
                    folder: r.get(1),
                    created_at: r.get(2),
                })
                .collect())
        })
        .await
    }

    /// How many spans are stored, and the bytes of their table with its indexes.
    pub async fn spans_stored(&self) -> Result<(i64, i64), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    &c.prepare_cached(
                        "SELECT count(*), pg_total_relation_size('coverage_spans') FROM coverage_spans",
                    )
                    .await?,
                    &[],
                )
                .await?;
            Ok((row.get(0), row.get(1)))
        })
        .await
    }

    /// Delete the spans that ended before `before`; how many.
    pub async fn forget_spans_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.execute(
                &c.prepare_cached("DELETE FROM coverage_spans WHERE ended_at < $1")
                    .await?,
                &[&before],
            )
            .await?)
        })
        .await
    }
}
