//! Batch membership, as PostgreSQL remembers it: a detection's `batch_id` is written
//! when its batch is handed to analysis (and by its event), so PostgreSQL knows which
//! detections no batch took yet and which batches never became an event. The batch
//! recovery (`crate::pipeline::batch`) reads both when Redis forgot its batches.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

/// A batch PostgreSQL knows was handed to analysis, with no event yet.
#[derive(Debug, Clone, PartialEq)]
pub struct UnanalysedBatch {
    pub batch_id: String,
    pub camera_id: String,
    pub detection_ids: Vec<i64>,
    pub first_at: DateTime<Utc>,
}

/// A detection no batch took.
#[derive(Debug, Clone, PartialEq)]
pub struct Unbatched {
    pub id: i64,
    pub camera_id: String,
    pub detected_at: DateTime<Utc>,
}

impl Store {
    /// Record that these detections were handed to analysis as `batch_id` (a
    /// detection that already has a batch keeps it).
    pub async fn assign_batch(&self, batch_id: &str, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "UPDATE detections SET batch_id = $1 WHERE id = ANY($2) AND batch_id IS NULL",
                )
                .await?,
                &[&batch_id, &ids],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Detections stored between `from` and `to` that no batch took and no event
    /// lists, by camera and id (at most `limit`).
    pub async fn unbatched_detections(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Unbatched>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT d.id, d.camera_id, d.detected_at FROM detections d
                     WHERE d.batch_id IS NULL AND d.detected_at >= $1 AND d.detected_at < $2
                       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.detection_ids @> ARRAY[d.id])
                     ORDER BY d.camera_id, d.id LIMIT $3",
                    )
                    .await?,
                    &[&from, &to, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| Unbatched {
                    id: r.get(0),
                    camera_id: r.get(1),
                    detected_at: r.get(2),
                })
                .collect())
        })
        .await
    }

    /// Batches handed to analysis since `from` that have no event (at most `limit`).
    pub async fn unanalysed_batches(
        &self,
        from: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<UnanalysedBatch>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(&c.prepare_cached("SELECT d.batch_id, min(d.camera_id), array_agg(d.id ORDER BY d.id), min(d.detected_at)
                     FROM detections d
                     WHERE d.batch_id IS NOT NULL AND d.detected_at >= $1
                       AND NOT EXISTS (SELECT 1 FROM events e WHERE e.batch_id = d.batch_id)
                     GROUP BY d.batch_id ORDER BY min(d.detected_at) LIMIT $2").await?,
                    &[&from, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| UnanalysedBatch {
                    batch_id: r.get(0),
                    camera_id: r.get(1),
                    detection_ids: r.get(2),
                    first_at: r.get(3),
                })
                .collect())
        })
        .await
    }

    /// A value the pipeline keeps across restarts (`redis_run_id`).
    pub async fn pipeline_state(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.query_opt(
                &c.prepare_cached("SELECT value FROM pipeline_state WHERE key = $1")
                    .await?,
                &[&key],
            )
            .await?
            .map(|r| r.get(0)))
        })
        .await
    }

    pub async fn set_pipeline_state(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO pipeline_state (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                )
                .await?,
                &[&key, &value],
            )
            .await?;
            Ok(())
        })
        .await
    }
}
