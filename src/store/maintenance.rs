//! Maintenance windows and snoozes made through the API: one row each, its scope and
//! its schedule as JSON (read back by `quiet`), ended early by setting `ended_at`;
//! and the acknowledgements of alerts (the newest per fingerprint).

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

#[derive(Debug, Clone, PartialEq)]
pub struct WindowRow {
    pub id: String,
    /// `maintenance` or `snooze`.
    pub kind: String,
    pub scope: serde_json::Value,
    pub schedule: serde_json::Value,
    pub comment: String,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, scope, schedule, comment, created_at, ended_at";

impl Store {
    pub async fn save_window(&self, w: &WindowRow) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(&format!(
                    "INSERT INTO maintenance_windows ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (id) DO UPDATE SET ended_at = EXCLUDED.ended_at"
                ))
                .await?,
                &[
                    &w.id,
                    &w.kind,
                    &w.scope,
                    &w.schedule,
                    &w.comment,
                    &w.created_at,
                    &w.ended_at,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The windows not ended before `since`, oldest first, at most `limit`.
    pub async fn windows_since(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<WindowRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM maintenance_windows
                         WHERE ended_at IS NULL OR ended_at >= $1
                         ORDER BY created_at, id LIMIT $2"
                    ))
                    .await?,
                    &[&since, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| WindowRow {
                    id: r.get(0),
                    kind: r.get(1),
                    scope: r.get(2),
                    schedule: r.get(3),
                    comment: r.get(4),
                    created_at: r.get(5),
                    ended_at: r.get(6),
                })
                .collect())
        })
        .await
    }
}

impl Store {
    /// Record that the alert `fingerprint` was acknowledged at `at`.
    pub async fn acknowledge(
        &self,
        fingerprint: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO acknowledgements (fingerprint, acknowledged_at) VALUES ($1, $2)
                     ON CONFLICT (fingerprint) DO UPDATE SET acknowledged_at = EXCLUDED.acknowledged_at",
                )
                .await?,
                &[&fingerprint, &at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The acknowledgements made since `since`, at most `limit`, newest first.
    pub async fn acknowledgements(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT fingerprint, acknowledged_at FROM acknowledgements
                         WHERE acknowledged_at >= $1 ORDER BY acknowledged_at DESC LIMIT $2",
                    )
                    .await?,
                    &[&since, &limit],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }
}
