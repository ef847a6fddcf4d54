//! The silences: one row each, with its matchers as JSON and the id each
//! Alertmanager gave its copy (`remote`).

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

/// One silence, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceRow {
    pub id: String,
    pub matchers: serde_json::Value,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub remote: serde_json::Value,
}

const COLUMNS: &str = "id, matchers, starts_at, ends_at, comment, created_at, remote";

fn row(r: &tokio_postgres::Row) -> SilenceRow {
    SilenceRow {
        id: r.get(0),
        matchers: r.get(1),
        starts_at: r.get(2),
        ends_at: r.get(3),
        comment: r.get(4),
        created_at: r.get(5),
        remote: r.get(6),
    }
}

impl Store {
    /// Insert a silence, or replace the one with its id (its end and remote ids change).
    pub async fn save_silence(&self, s: &SilenceRow) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &format!(
                    "INSERT INTO silences ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET ends_at = EXCLUDED.ends_at, remote = EXCLUDED.remote"
                ),
                &[
                    &s.id,
                    &s.matchers,
                    &s.starts_at,
                    &s.ends_at,
                    &s.comment,
                    &s.created_at,
                    &s.remote,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The silences that end at or after `since` (the active and pending ones, and
    /// the recently ended), the latest-ending first, at most `limit`.
    pub async fn silences_since(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SilenceRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM silences WHERE ends_at >= $1
                         ORDER BY ends_at DESC, id LIMIT $2"
                    ),
                    &[&since, &limit],
                )
                .await?;
            Ok(rows.iter().map(row).collect())
        })
        .await
    }

    /// Delete the silences that ended before `before`, except `keep` (ended ones whose
    /// Alertmanager copies still need expiring); how many went.
    pub async fn prune_silences(
        &self,
        before: DateTime<Utc>,
        keep: &[String],
    ) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.execute(
                "DELETE FROM silences WHERE ends_at < $1 AND NOT (id = ANY($2))",
                &[&before, &keep],
            )
            .await?)
        })
        .await
    }
}
