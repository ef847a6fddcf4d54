//! What storage and retention by size read: the database's size, the images that
//! are evidence of events, and which images went through detection.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;

impl Store {
    /// The database's size in bytes, and its data directory when this role may read
    /// it (a superuser, or a member of `pg_read_all_settings`).
    pub async fn database_size(&self) -> Result<(i64, Option<String>), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    &c.prepare_cached(
                        "SELECT pg_database_size(current_database()),
                                (SELECT setting FROM pg_settings WHERE name = 'data_directory')",
                    )
                    .await?,
                    &[],
                )
                .await?;
            Ok((row.get(0), row.get(1)))
        })
        .await
    }

    /// The images that events created since `since` refer to, and those of the
    /// newest event whatever its age (evidence that retention by size keeps).
    pub async fn evidence_paths(
        &self,
        since: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT DISTINCT d.file_path FROM detections d
                         JOIN events e ON d.id = ANY(e.detection_ids)
                         WHERE e.created_at >= $1
                            OR e.id = (SELECT max(id) FROM events)",
                    )
                    .await?,
                    &[&since],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    /// For each of `paths` that has detections stored, whether the pipeline is done
    /// with it: every one of its detections is in a batch that analysis made an event
    /// of. An image whose detection waits in an open or unanalysed batch is not done
    /// (it is about to be evidence).
    pub async fn detected_among(
        &self,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, bool>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT d.file_path,
                                bool_and(d.batch_id IS NOT NULL AND EXISTS
                                    (SELECT 1 FROM events e WHERE e.batch_id = d.batch_id))
                         FROM detections d WHERE d.file_path = ANY($1)
                         GROUP BY d.file_path",
                    )
                    .await?,
                    &[&paths],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }
}
