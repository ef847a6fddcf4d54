//! The pipeline's rows: cameras, detections (unique per `(file_path, file_hash, seq)`),
//! security events (unique per `batch_id`) and the cleanup's job runs. Every write is
//! idempotent, so at-least-once delivery never duplicates.

use chrono::{DateTime, Utc};

use super::db::Store;
use super::error::StoreError;
use crate::ai::Detection;

/// A stored security event as `GET /api/system/events/recent` lists it: the payload of
/// its `event.created`, and when it was created.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecentEvent {
    #[serde(flatten)]
    pub event: crate::events::EventCreated,
    pub created_at: DateTime<Utc>,
    /// The picture of its first detection (`GET /api/system/thumbnail?path=` shows it
    /// small, while cleanup has not removed it).
    pub image_path: Option<String>,
}

/// A detection row as the analysis prompt needs it.
#[derive(Debug, Clone)]
pub struct StoredDetection {
    pub id: i64,
    pub object_type: String,
    pub confidence: f64,
    pub detected_at: DateTime<Utc>,
}

/// One image's detections, to be stored with [`Store::store_images`].
pub struct ImageDetections<'a> {
    pub camera_id: &'a str,
    pub file_path: &'a str,
    pub file_hash: &'a str,
    pub detected_at: DateTime<Utc>,
    pub detections: &'a [Detection],
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

impl Store {
    /// The newest `limit` security events, newest first.
    pub async fn recent_events(&self, limit: i64) -> Result<Vec<RecentEvent>, StoreError> {
        self.events_where(None, limit).await
    }

    /// The newest `limit` events of one camera.
    pub async fn camera_events(
        &self,
        camera_id: &str,
        limit: i64,
    ) -> Result<Vec<RecentEvent>, StoreError> {
        self.events_where(Some(camera_id), limit).await
    }

    async fn events_where(
        &self,
        camera_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecentEvent>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(&c.prepare_cached("SELECT id, batch_id, camera_id, risk_score::int8, risk_level, summary, created_at,
                       (SELECT d.file_path FROM detections d WHERE d.id = e.detection_ids[1])
                     FROM events e WHERE ($1::text IS NULL OR camera_id = $1)
                     ORDER BY id DESC LIMIT $2").await?,
                    &[&camera_id, &limit],
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
                    image_path: r.get(7),
                })
                .collect())
        })
        .await
    }

    /// The stored detections of one picture (its row ids and detections, in detection
    /// order): empty when it has none stored.
    pub async fn stored_detections(
        &self,
        file_path: &str,
        file_hash: &str,
    ) -> Result<(Vec<i64>, Vec<Detection>), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT id, object_type, confidence, bbox FROM detections
                         WHERE file_path = $1 AND file_hash = $2 ORDER BY seq",
                    )
                    .await?,
                    &[&file_path, &file_hash],
                )
                .await?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut detections = Vec::with_capacity(rows.len());
            for r in &rows {
                let Ok(bbox) = serde_json::from_value(r.get(3)) else {
                    // Not readable as this version writes it: detect it again.
                    return Ok((Vec::new(), Vec::new()));
                };
                ids.push(r.get(0));
                detections.push(Detection {
                    object_type: r.get(1),
                    confidence: r.get(2),
                    bbox,
                });
            }
            Ok((ids, detections))
        })
        .await
    }

    /// Store the detections of several images (of any cameras) in one statement, so
    /// one transaction; idempotent per `(file_path, file_hash, seq)`. Returns each
    /// image's row ids in detection order, in the order the images were given. An
    /// image given twice is written once and gets the same ids both times.
    pub async fn store_images(
        &self,
        images: &[ImageDetections<'_>],
    ) -> Result<Vec<Vec<i64>>, StoreError> {
        use std::collections::{HashMap, HashSet};
        let mut cams: Vec<&str> = Vec::new();
        let mut paths: Vec<&str> = Vec::new();
        let mut hashes: Vec<&str> = Vec::new();
        let mut ats: Vec<DateTime<Utc>> = Vec::new();
        let mut seq: Vec<i32> = Vec::new();
        let mut types: Vec<&str> = Vec::new();
        let mut conf: Vec<f64> = Vec::new();
        let mut bbox: Vec<serde_json::Value> = Vec::new();
        // One row per key: a statement may not update the same row twice.
        let mut seen = HashSet::new();
        for img in images {
            if !seen.insert((img.file_path, img.file_hash)) {
                continue;
            }
            for (i, d) in img.detections.iter().enumerate() {
                cams.push(img.camera_id);
                paths.push(img.file_path);
                hashes.push(img.file_hash);
                ats.push(img.detected_at);
                seq.push(i as i32);
                types.push(&d.object_type);
                conf.push(d.confidence);
                bbox.push(serde_json::to_value(d.bbox).unwrap_or_default());
            }
        }
        if seq.is_empty() {
            return Ok(vec![Vec::new(); images.len()]);
        }
        let rows = self
            .run(async {
                let c = self.client().await?;
                let rows = c
                    .query(&c.prepare_cached("INSERT INTO detections
                            (camera_id, file_path, file_hash, seq, object_type, confidence, bbox, detected_at)
                         SELECT t.cam, t.path, t.hash, t.s, t.o, t.c, t.b, t.at
                         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[],
                                     $5::int4[], $6::text[], $7::float8[], $8::jsonb[])
                              AS t(cam, path, hash, at, s, o, c, b)
                         ON CONFLICT (file_path, file_hash, seq) DO UPDATE SET seq = EXCLUDED.seq
                         RETURNING id, file_path, file_hash, seq").await?,
                        &[&cams, &paths, &hashes, &ats, &seq, &types, &conf, &bbox],
                    )
                    .await?;
                Ok(rows)
            })
            .await?;
        let mut by_image: HashMap<(String, String), Vec<(i32, i64)>> = HashMap::new();
        for r in &rows {
            by_image
                .entry((r.get(1), r.get(2)))
                .or_default()
                .push((r.get(3), r.get(0)));
        }
        Ok(images
            .iter()
            .map(|img| {
                let mut ids = by_image
                    .get(&(img.file_path.to_string(), img.file_hash.to_string()))
                    .cloned()
                    .unwrap_or_default();
                ids.sort_unstable();
                ids.into_iter().map(|(_, id)| id).collect()
            })
            .collect())
    }

    pub async fn detections_by_ids(&self, ids: &[i64]) -> Result<Vec<StoredDetection>, StoreError> {
        self.run(async {
            let c = self.client().await?;
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT id, object_type, confidence, detected_at FROM detections
                     WHERE id = ANY($1) ORDER BY detected_at, id",
                    )
                    .await?,
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
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // One event per detection: events of one camera are written one at a time,
            // and a detection already in an event (a batch recovered twice, or
            // recovered while its first batch still waited for analysis) is left out.
            tx.execute(&tx.prepare_cached("SELECT pg_advisory_xact_lock(hashtext('events:' || $1))").await?,
                &[&e.camera_id],
            )
            .await?;
            let remaining: Vec<i64> = tx
                .query_one(&tx.prepare_cached("SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest($1::bigint[]) AS x
                     WHERE NOT EXISTS (SELECT 1 FROM events ev WHERE ev.detection_ids @> ARRAY[x])").await?,
                    &[&e.detection_ids],
                )
                .await?
                .get(0);
            if remaining.is_empty() && !e.detection_ids.is_empty() {
                tx.commit().await?;
                return Ok(None);
            }
            let row = tx
                .query_opt(&tx.prepare_cached("INSERT INTO events (batch_id, camera_id, started_at, ended_at, risk_score,
                                         risk_level, summary, reasoning, detection_ids)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (batch_id) DO NOTHING
                     RETURNING id").await?,
                    &[
                        &e.batch_id,
                        &e.camera_id,
                        &e.started_at,
                        &e.ended_at,
                        &e.risk_score,
                        &e.risk_level,
                        &e.summary,
                        &e.reasoning,
                        &remaining,
                    ],
                )
                .await?;
            if row.is_some() {
                tx.execute(&tx.prepare_cached("UPDATE detections SET batch_id = $1 WHERE id = ANY($2) AND batch_id IS NULL").await?,
                    &[&e.batch_id, &remaining],
                )
                .await?;
            }
            tx.commit().await?;
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
                    &c.prepare_cached(
                        "DELETE FROM detections WHERE id IN
                        (SELECT id FROM detections WHERE detected_at < $1 ORDER BY id LIMIT $2)
                     RETURNING file_path",
                    )
                    .await?,
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
                &c.prepare_cached(
                    "DELETE FROM events WHERE id IN
                    (SELECT id FROM events WHERE created_at < $1 ORDER BY id LIMIT $2)",
                )
                .await?,
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
                    &c.prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM detections WHERE file_path = $1)",
                    )
                    .await?,
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
                .query_opt(
                    &c.prepare_cached("SELECT last_run_at FROM job_runs WHERE job = $1")
                        .await?,
                    &[&job],
                )
                .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    pub async fn record_job_run(&self, job: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.execute(
                &c.prepare_cached(
                    "INSERT INTO job_runs (job, last_run_at) VALUES ($1, $2)
                 ON CONFLICT (job) DO UPDATE SET last_run_at = EXCLUDED.last_run_at",
                )
                .await?,
                &[&job, &at],
            )
            .await?;
            Ok(())
        })
        .await
    }
}
