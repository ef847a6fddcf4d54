//! The fleet's records: each instance's own, written every few heartbeats, so the
//! fleet is known while Redis is away.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

/// The most records read back.
const MAX_RECORDS: i64 = 256;

impl Store {
    /// Write (or replace) an instance's record.
    pub async fn record_instance(
        &self,
        id: &str,
        record: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO instances (id, record, heartbeat_at) VALUES ($1, $2::text::jsonb, $3)
                     ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record, heartbeat_at = EXCLUDED.heartbeat_at",
                )
                .await?,
                &[&id, &record, &at],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Every instance's record as written, the most recent first (at most 256).
    pub async fn instance_records(&self) -> Result<Vec<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT record::text FROM instances ORDER BY heartbeat_at DESC LIMIT $1",
                    )
                    .await?,
                    &[&MAX_RECORDS],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    pub async fn forget_instance(&self, id: &str) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached("DELETE FROM instances WHERE id = $1")
                    .await?,
                &[&id],
            )
            .await?;
            Ok(())
        })
        .await
    }
}
