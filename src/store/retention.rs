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

/// A table that retention of the database by size deletes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizedTable {
    Detections,
    Events,
    Alerts,
}

impl SizedTable {
    pub const ALL: [SizedTable; 3] = [Self::Detections, Self::Events, Self::Alerts];

    /// Its name in the schema (and the `kind` of `watchpost_cleanup_deleted_total`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Detections => "detections",
            Self::Events => "events",
            Self::Alerts => "alerts",
        }
    }
}

/// One table of the schema as PostgreSQL's statistics describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    pub name: String,
    /// Its files: the rows, the indexes and TOAST.
    pub total_bytes: u64,
    /// The rows' own file.
    pub heap_bytes: u64,
    pub live_rows: u64,
    pub dead_rows: u64,
    /// The average stored width of a row's columns, once ANALYZE has seen it.
    pub row_width: Option<u64>,
}

/// What may be deleted by size: nothing newer than `before`, never the newest event
/// nor the detections of a batch that has no event yet, and resolutions that an
/// Alertmanager still has to learn only when they ended before `unsent_before`.
#[derive(Debug, Clone, Copy)]
pub struct Deletable {
    pub before: DateTime<Utc>,
    pub unsent_before: DateTime<Utc>,
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Store {
    /// The database's size and each table of the current schema with its statistics
    /// (the rows of the tables retention deletes from counted exactly).
    pub async fn table_sizes(&self) -> Result<(u64, Vec<TableSize>), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let size: i64 = c
                .query_one(
                    &c.prepare_cached("SELECT pg_database_size(current_database())")
                        .await?,
                    &[],
                )
                .await?
                .get(0);
            let rows = c
                .query(
                    &c.prepare_cached(
                        "SELECT s.relname::text, pg_total_relation_size(s.relid),
                                pg_relation_size(s.relid), s.n_live_tup, s.n_dead_tup,
                                (SELECT sum(p.avg_width)::bigint FROM pg_stats p
                                  WHERE p.schemaname = s.schemaname AND p.tablename = s.relname)
                         FROM pg_stat_user_tables s WHERE s.schemaname = current_schema()",
                    )
                    .await?,
                    &[],
                )
                .await?;
            let mut tables: Vec<TableSize> = rows
                .iter()
                .map(|r| TableSize {
                    name: r.get(0),
                    total_bytes: unsigned(r.get(1)),
                    heap_bytes: unsigned(r.get(2)),
                    live_rows: unsigned(r.get(3)),
                    dead_rows: unsigned(r.get(4)),
                    row_width: r.get::<_, Option<i64>>(5).map(unsigned),
                })
                .collect();
            // The statistics' row counts of a table just deleted from and vacuumed can
            // be off by the whole deletion (the deleting session reports its counts
            // after the vacuum reset them), so the tables deleted from are counted.
            for table in SizedTable::ALL {
                if let Some(t) = tables.iter_mut().find(|t| t.name == table.name()) {
                    let sql = format!("SELECT count(*) FROM {}", table.name());
                    t.live_rows = unsigned(
                        c.query_one(&c.prepare_cached(&sql).await?, &[])
                            .await?
                            .get(0),
                    );
                    t.dead_rows = 0;
                }
            }
            Ok((unsigned(size), tables))
        })
        .await
    }

    /// Delete up to `limit` of the oldest events that `may` allows (created before
    /// `may.before`, never the newest) with their detections, in one statement;
    /// returns how many events and detections went. A detection whose batch has no
    /// event yet (waiting for analysis) is never among them.
    pub async fn delete_oldest_events(
        &self,
        may: Deletable,
        limit: i64,
    ) -> Result<(u64, u64), StoreError> {
        self.run(async {
            let c = self.client().await?;
            let row = c
                .query_one(
                    &c.prepare_cached(
                        "WITH gone AS (
                           DELETE FROM events WHERE id IN
                             (SELECT id FROM events
                              WHERE created_at < $1 AND id <> (SELECT max(id) FROM events)
                              ORDER BY id LIMIT $2)
                           RETURNING batch_id),
                         dets AS (
                           DELETE FROM detections d USING gone WHERE d.batch_id = gone.batch_id
                           RETURNING 1)
                         SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM dets)",
                    )
                    .await?,
                    &[&may.before, &limit],
                )
                .await?;
            Ok((unsigned(row.get(0)), unsigned(row.get(1))))
        })
        .await
    }

    /// Delete up to `limit` of the oldest resolved alerts that `may` allows (ended
    /// before `may.before`; a resolution no Alertmanager accepted yet only once it
    /// ended before `may.unsent_before`); returns how many went.
    pub async fn delete_oldest_alerts(
        &self,
        may: Deletable,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.run(async {
            let c = self.client().await?;
            Ok(c.execute(
                &c.prepare_cached(
                    "DELETE FROM alerts WHERE id IN
                     (SELECT id FROM alerts
                      WHERE ended_at < $1
                        AND (end_sent_at IS NOT NULL OR source = 'prometheus' OR ended_at < $3)
                      ORDER BY ended_at LIMIT $2)",
                )
                .await?,
                &[&may.before, &limit, &may.unsent_before],
            )
            .await?)
        })
        .await
    }

    /// `ANALYZE` one table (its rows' average width, before it was ever analysed).
    pub async fn analyze(&self, table: SizedTable) -> Result<(), StoreError> {
        self.run(async {
            let c = self.client().await?;
            c.batch_execute(&format!("ANALYZE {}", table.name()))
                .await?;
            Ok(())
        })
        .await
    }

    /// `VACUUM (ANALYZE)` one table, so the space of the rows just deleted is reused
    /// at once and its statistics are fresh. Not bounded like the other operations (a
    /// large table takes a while; nothing waits on it) and never counted as an outage.
    pub async fn vacuum(&self, table: SizedTable) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.batch_execute(&format!("VACUUM (ANALYZE) {}", table.name()))
            .await?;
        Ok(())
    }
}
