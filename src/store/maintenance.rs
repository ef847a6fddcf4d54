//! Maintenance windows and snoozes made through the API: one row each, its scope and
//! its schedule as JSON (read back by `quiet`), ended early by setting `ended_at`.

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
    /// The key that signs the one-tap action links: the stored one, or `fresh`,
    /// stored now when there is none (the first instance to ask decides).
    pub async fn action_key(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO action_key (id, key, created_at) VALUES (1, $1, now())
                     ON CONFLICT (id) DO NOTHING",
                )
                .await?,
                &[&fresh],
            )
            .await?;
            let row = c
                .query_one(
                    &c.prepare_cached("SELECT key FROM action_key WHERE id = 1")
                        .await?,
                    &[],
                )
                .await?;
            Ok(row.get(0))
        })
        .await
    }

    /// Use an action link once: `true` the first time its `nonce` is used anywhere.
    /// Used links are forgotten once expired (they are refused as expired then).
    pub async fn use_action(
        &self,
        nonce: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached("DELETE FROM actions_used WHERE expires_at < $1")
                    .await?,
                &[&now],
            )
            .await?;
            Ok(c.query_opt(
                &c.prepare_cached(
                    "INSERT INTO actions_used (nonce, used_at, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (nonce) DO NOTHING RETURNING 1",
                )
                .await?,
                &[&nonce, &now, &expires_at],
            )
            .await?
            .is_some())
        })
        .await
    }

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

impl Store {
    /// Forget that an action link was used (its action could not be done).
    pub async fn release_action(&self, nonce: &str) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached("DELETE FROM actions_used WHERE nonce = $1")
                    .await?,
                &[&nonce],
            )
            .await?;
            Ok(())
        })
        .await
    }
}

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
}

impl Store {
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

    /// Which of `paths` have detections stored (they went through detection).
    pub async fn detected_among(
        &self,
        paths: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT DISTINCT file_path FROM detections WHERE file_path = ANY($1)",
                    )
                    .await?,
                    &[&paths],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }
}
