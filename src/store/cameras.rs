//! The cameras the registry knows, with what it learned about each (its rhythm,
//! counts and status, as one JSON document), written in batches by the camera
//! watchdog and read back at start. A camera is a folder of one camera root (the
//! root's identity is its `scope`: hosts with folders of the same name keep two
//! rows) and is written by one instance at a time, its `owner`: another instance
//! writes it only once the owner is not among the instances up.

use std::collections::BTreeMap;

use super::db::Store;
use super::error::StoreError;

/// One camera as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraRow {
    pub id: String,
    pub folder: String,
    /// What the registry keeps about it (`None` for a row from before it kept any).
    pub state: Option<serde_json::Value>,
    /// The instance that wrote it (read back; a write names its own in `CameraWriter`).
    pub owner: String,
}

/// Who may write a root's cameras.
#[derive(Debug, Clone, Copy)]
pub struct CameraWriter<'a> {
    /// The camera root's identity.
    pub scope: &'a str,
    /// This instance.
    pub owner: &'a str,
    /// The instances up now (a row owned by another one is left to it), or `None`
    /// while the fleet is not known yet (rows owned by another are then left alone).
    pub up: Option<&'a [String]>,
}

impl Store {
    /// Every camera of this camera root, the most recently seen first. Rows from
    /// before cameras had a root are adopted by the first root that reads them.
    pub async fn load_cameras(&self, scope: &str) -> Result<Vec<CameraRow>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "UPDATE cameras SET scope = $1 WHERE scope = ''
                     AND id NOT IN (SELECT id FROM cameras WHERE scope = $1)",
                )
                .await?,
                &[&scope],
            )
            .await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT id, folder_name, state, owner FROM cameras WHERE scope = $1
                         ORDER BY last_seen_at DESC, id",
                    )
                    .await?,
                    &[&scope],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| CameraRow {
                    id: r.get(0),
                    folder: r.get(1),
                    state: r.get(2),
                    owner: r.get(3),
                })
                .collect())
        })
        .await
    }

    /// Write these cameras (insert or replace, those this instance may write) and
    /// delete `deleted`, in one transaction. Answers the owner of each camera of
    /// `rows` after the write (this instance, or the one that kept it).
    pub async fn save_cameras(
        &self,
        writer: CameraWriter<'_>,
        rows: &[CameraRow],
        deleted: &[String],
    ) -> Result<BTreeMap<String, String>, StoreError> {
        if rows.is_empty() && deleted.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.run(async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let mut owners = BTreeMap::new();
            if !rows.is_empty() {
                let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
                let folders: Vec<&str> = rows.iter().map(|r| r.folder.as_str()).collect();
                let states: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| r.state.clone().unwrap_or(serde_json::Value::Null))
                    .collect();
                let known = writer.up.is_some();
                let up: Vec<&str> = writer
                    .up
                    .unwrap_or_default()
                    .iter()
                    .map(String::as_str)
                    .collect();
                tx.execute(
                    &tx.prepare_cached(
                        "INSERT INTO cameras (scope, id, folder_name, state, owner, last_seen_at)
                     SELECT $4, id, folder, state, $5, now()
                     FROM UNNEST($1::text[], $2::text[], $3::jsonb[]) AS t(id, folder, state)
                     ON CONFLICT (scope, id) DO UPDATE
                     SET folder_name = EXCLUDED.folder_name, state = EXCLUDED.state,
                         owner = EXCLUDED.owner, last_seen_at = now()
                     WHERE cameras.owner IN (EXCLUDED.owner, '')
                        OR ($6 AND cameras.owner <> ALL($7::text[]))",
                    )
                    .await?,
                    &[
                        &ids,
                        &folders,
                        &states,
                        &writer.scope,
                        &writer.owner,
                        &known,
                        &up,
                    ],
                )
                .await?;
                for r in tx
                    .query(
                        &tx.prepare_cached(
                            "SELECT id, owner FROM cameras WHERE scope = $1 AND id = ANY($2)",
                        )
                        .await?,
                        &[&writer.scope, &ids],
                    )
                    .await?
                {
                    owners.insert(r.get(0), r.get(1));
                }
            }
            if !deleted.is_empty() {
                tx.execute(
                    &tx.prepare_cached("DELETE FROM cameras WHERE scope = $1 AND id = ANY($2)")
                        .await?,
                    &[&writer.scope, &deleted],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(owners)
        })
        .await
    }
}
