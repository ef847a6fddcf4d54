//! The cameras the registry knows, with what it learned about each (its rhythm,
//! counts and status, as one JSON document), written in batches by the camera
//! watchdog and read back at start.

use super::db::Store;
use super::error::StoreError;

/// One camera as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRow {
    pub id: String,
    pub folder: String,
    /// What the registry keeps about it (`None` for a row from before it kept any).
    pub state: Option<serde_json::Value>,
}

impl Store {
    /// Every camera, the most recently seen first.
    pub async fn load_cameras(&self) -> Result<Vec<CameraRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT id, folder_name, state FROM cameras ORDER BY last_seen_at DESC, id",
                    )
                    .await?,
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| CameraRow {
                    id: r.get(0),
                    folder: r.get(1),
                    state: r.get(2),
                })
                .collect())
        })
        .await
    }

    /// Write these cameras (insert or replace) and delete `deleted`, in one
    /// transaction.
    pub async fn save_cameras(
        &self,
        rows: &[CameraRow],
        deleted: &[String],
    ) -> Result<(), StoreError> {
        if rows.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            if !rows.is_empty() {
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let folders: Vec<&str> = rows.iter().map(|r| r.folder.as_str()).collect();
                let states: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| r.state.clone().unwrap_or(serde_json::Value::Null))
                    .collect();
                tx.execute(
                    &tx.prepare_cached(
                        "INSERT INTO cameras (id, folder_name, state, last_seen_at)
                     SELECT id, folder, state, now()
                     FROM UNNEST($1::text[], $2::text[], $3::jsonb[]) AS t(id, folder, state)
                     ON CONFLICT (id) DO UPDATE
                     SET folder_name = EXCLUDED.folder_name, state = EXCLUDED.state,
                         last_seen_at = now()",
                    )
                    .await?,
                    &[&ids, &folders, &states],
                )
                .await?;
            }
            if !deleted.is_empty() {
                tx.execute(
                    &tx.prepare_cached("DELETE FROM cameras WHERE id = ANY($1)")
                        .await?,
                    &[&deleted],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
